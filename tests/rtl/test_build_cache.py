"""Simulator builds never go stale: a build cached by one checkout is not reused by another.

The failure this reproduces (issue 9): a Verilator build's Makefile names cocotb's
``verilator.cpp`` by absolute path; when a second checkout (its own ``.venv``, its own
cocotb) reused the build the first had cached under ``~/.cache/vmxu``, every Verilator run
failed once the first checkout was gone ("No rule to make target .../cocotb/share/lib/
verilator/verilator.cpp"). Here the first checkout is a copy of cocotb on another path, used
to build, then deleted; the second run, with this environment's cocotb and the same cache
directory, must build and pass.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cocotb
import cocotb_tools
import pygpi
import pytest

from vmxu.sim.cocotb.toolchain import SIMULATORS

PROBE = Path(__file__).with_name("cache_probe.py")


def _probe(sim: str, cache: Path, first: Path | None) -> subprocess.CompletedProcess:
    path = [str(PROBE.parent)] + ([str(first)] if first is not None else [])
    env = {**os.environ, "VMXU_BUILD_DIR": str(cache), "PYTHONPATH": os.pathsep.join(path)}
    env.pop("VMXU_WAVES", None)
    return subprocess.run([sys.executable, str(PROBE), sim], env=env, capture_output=True, text=True)


@pytest.mark.parametrize("sim", SIMULATORS)
def test_a_second_checkout_rebuilds_instead_of_reusing_the_first_ones_build(sim, tmp_path):
    cache = tmp_path / "cache"
    first = tmp_path / "first-checkout" / "site-packages"
    for package in (cocotb, cocotb_tools, pygpi):
        source = Path(package.__file__).parent
        shutil.copytree(source, first / source.name)
    built = _probe(sim, cache, first)
    assert built.returncode == 0, built.stdout + built.stderr
    assert str(first) in "".join(p.read_text(errors="replace") for p in cache.rglob("*.mk")) or sim == "icarus"
    shutil.rmtree(tmp_path / "first-checkout")
    again = _probe(sim, cache, None)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1/1 cocotb tests passed" in again.stdout
