"""Entry points that run the cocotb harness from the command line (``vmxu replay``, ``vmxu bench``, ``vmxu run``)."""

import json
import tempfile
from pathlib import Path
from typing import Any

from .build import SOC, SOC_GUESTS, UNIT, Design, run_cocotb, wave_suffix

__all__ = ["run_replay", "run_bench", "run_image"]

_UNIT_MODULE = "vmxu.sim.cocotb.unit_tests"
_SOC_MODULE = "vmxu.sim.cocotb.soc_tests"


def _run(design: Design, module: str, test: str, sim: str, env: dict[str, str], waves: Path | None, what: str):
    """Run one cocotb test; with ``waves``, record the run's waveform there (VCD or FST after its suffix)."""
    if waves is not None:
        wave_suffix(waves)  # a bad suffix is refused before anything is built
    results = run_cocotb(design, sim, module, testcase=[test], extra_env=env, waves=waves, run_name=test)
    if results.failed:
        raise RuntimeError(f"the {sim} {what} failed:\n{results.summary()}")


def run_replay(script: Path, sim: str, waves: Path | None = None) -> list[dict[str, Any]]:
    """The results of a transaction script on the RTL unit in ``sim``."""
    with tempfile.TemporaryDirectory(prefix="vmxu-replay-") as tmp:
        out = Path(tmp) / "results.jsonl"
        env = {"VMXU_REPLAY_SCRIPT": str(Path(script).resolve()), "VMXU_REPLAY_RESULTS": str(out)}
        _run(UNIT, _UNIT_MODULE, "replay", sim, env, waves, "replay run")
        return [json.loads(line) for line in out.read_text().splitlines()]


def run_bench(sim: str, waves: Path | None = None) -> list[dict[str, Any]]:
    """Latency in cycles of each operation class (sim/cocotb/bench.py)."""
    with tempfile.TemporaryDirectory(prefix="vmxu-bench-") as tmp:
        out = Path(tmp) / "bench.json"
        _run(UNIT, _UNIT_MODULE, "bench", sim, {"VMXU_BENCH_RESULTS": str(out)}, waves, "benchmark")
        return json.loads(out.read_text())


def run_image(
    image: Path,
    sim: str,
    *,
    max_cycles: int,
    waves: Path | None = None,
    trace: Path | None = None,
    lockstep: bool = False,
    guests: bool = False,
    smm_times: bool = False,
) -> dict[str, Any]:
    """Run a firmware image on the SoC in ``sim`` (sim/cocotb/soc_tests.py): console, counts, exit code.
    With ``guests``, on the SoC whose core runs guests (``SOC_GUESTS``, docs/guests.md); with ``smm_times``,
    the cycles of SMM's transitions too (sim/iss/smm.py ``TransitionTimes``)."""
    with tempfile.TemporaryDirectory(prefix="vmxu-run-") as tmp:
        out = Path(tmp) / "result.json"
        env = {"VMXU_IMAGE": str(Path(image).resolve()), "VMXU_MAX_CYCLES": str(max_cycles), "VMXU_RESULT": str(out)}
        if trace is not None:
            env["VMXU_TRACE"] = str(Path(trace).resolve())
        if lockstep:
            env["VMXU_LOCKSTEP"] = "1"
        if guests:
            env["VMXU_GUESTS"] = "1"
        if smm_times:
            env["VMXU_SMM_TIMES"] = "1"
        _run(SOC_GUESTS if guests else SOC, _SOC_MODULE, "run", sim, env, waves, "run")
        return json.loads(out.read_text())
