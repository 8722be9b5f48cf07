"""Run a firmware image on the ISS or on the RTL SoC, the same way whatever the backend (`vmxu run`, `vmxu demo`).

RTL runs go to the fastest harness that can do what is asked: the native
Verilator binary (sim/native) for a plain run on Verilator, cocotb
(sim/cocotb/soc_tests.py) for Icarus, for waveforms, traces and lockstep, and
for the SoC whose core runs guests (``guests``, docs/guests.md).
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vmxu.rtl.arch.soc import RAM

__all__ = ["RunOutcome", "ram_image", "run_firmware", "EXIT_CYCLE_LIMIT", "BACKENDS"]

BACKENDS = ("iss", "icarus", "verilator")
#: The exit code a run stopped by its limit reports (the finisher's codes are 0..65535).
EXIT_CYCLE_LIMIT = 0x1_0000


@dataclass
class RunOutcome:
    backend: str
    console: str
    instructions: int
    exit_code: int  # the finisher's code, or EXIT_CYCLE_LIMIT
    seconds: float
    cycles: int | None = None  # None on the ISS, which has no clock
    trace: list[str] | None = None
    lockstep_records: int | None = None
    #: The cycles of SMM's transitions ({"smi": [...], "rsm": [...]}, sim/iss/smm.py ``TransitionTimes``).
    smm_times: dict[str, list[int]] | None = None

    @property
    def reason(self) -> str:
        if self.exit_code == EXIT_CYCLE_LIMIT:
            return "the cycle limit was reached" if self.cycles is not None else "the instruction limit was reached"
        return "passed" if self.exit_code == 0 else f"failed with code {self.exit_code}"


def ram_image(path: Path) -> tuple[bytes, dict[int, bytes]]:
    """The bytes of RAM from address 0 that hold an ELF or raw image, and its segments."""
    from vmxu.sim.iss.run import load_image

    segments, entry = load_image(path)
    if entry != RAM.base:
        raise ValueError(f"{path}: the SoC starts at {RAM.base:#x}, the image's entry point is {entry:#x}")
    if any(not RAM.contains(base, len(data)) for base, data in segments.items()):
        raise ValueError(f"{path}: the image does not fit RAM ({RAM.base:#x}..{RAM.end:#x})")
    end = max(base + len(data) for base, data in segments.items())
    image = bytearray(end - RAM.base)
    for base, data in segments.items():
        image[base - RAM.base : base - RAM.base + len(data)] = data
    return bytes(image), segments


def run_firmware(
    path: Path,
    backend: str,
    *,
    max_cycles: int,
    waves: Path | None = None,
    trace: bool = False,
    lockstep: bool = False,
    echo: bool = False,
    guests: bool = False,
    smm_times: bool = False,
) -> RunOutcome:
    """Run ``path`` (ELF or raw binary at 0) on ``backend``; on the ISS the limit counts instructions."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "iss":
        if waves is not None or lockstep:
            raise ValueError("--waves and --lockstep need an RTL simulator (--sim icarus or verilator)")
        from vmxu.sim.iss.run import run_image

        started = time.monotonic()
        result = run_image(path, max_instructions=max_cycles, trace=trace, guests=guests)
        if echo:
            print(result.console, end="")
        exit_code = result.exit_code if result.exit_code is not None else EXIT_CYCLE_LIMIT
        return RunOutcome(
            "iss", result.console, result.instructions, exit_code, time.monotonic() - started, trace=result.trace
        )
    image, _ = ram_image(path)
    if backend == "verilator" and waves is None and not trace and not lockstep and not guests and not smm_times:
        from vmxu.sim.native.run import run_native

        r = run_native(image, max_cycles, echo=echo)
        return RunOutcome("verilator", r["console"], r["instructions"], r["exit_code"], r["seconds"], r["cycles"])
    from vmxu.sim.cocotb.runner import run_image as run_cocotb_image

    with tempfile.TemporaryDirectory(prefix="vmxu-trace-") as tmp:
        trace_path = Path(tmp) / "trace.txt" if trace else None
        r = run_cocotb_image(
            path,
            backend,
            max_cycles=max_cycles,
            waves=waves,
            trace=trace_path,
            lockstep=lockstep,
            guests=guests,
            smm_times=smm_times,
        )
        lines = trace_path.read_text().splitlines() if trace_path is not None else None
    if echo:
        print(r["console"], end="")
    return RunOutcome(
        backend,
        r["console"],
        r["instructions"],
        r["exit_code"],
        r["seconds"],
        r["cycles"],
        lines,
        r["lockstep_records"],
        r.get("smm_times"),
    )
