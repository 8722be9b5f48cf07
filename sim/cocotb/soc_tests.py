"""cocotb tests of the SoC: run firmware images, alone or in lockstep with the ISS (run by tests/soc/ and `vmxu run`).

Knobs from the environment (one simulator build serves every image):

- ``VMXU_IMAGE``: the image (ELF or raw binary at 0); ``VMXU_MAX_CYCLES``;
  ``VMXU_RESULT``: where test ``run`` writes its result (JSON);
  ``VMXU_TRACE``: also write the retired-instruction trace there (samples every cycle);
  ``VMXU_LOCKSTEP=1``: step the ISS with every record and stop at the first difference.
  ``VMXU_GUESTS=1``: the ISS runs guests (``Iss(guests=True)``), for the SoC built with them.
  ``VMXU_SMM_TIMES=1``: also time SMM's transitions (``TransitionTimes``: samples every cycle).
- ``VMXU_PROGRAMS``: a directory of images; test ``program`` runs each in lockstep.
- ``VMXU_BUTTON_CYCLE``: test ``button`` runs ``VMXU_IMAGE`` and presses the SMI button (``Soc.smi_button``,
  one cycle) at that cycle.
"""

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles

from vmxu.sim.firmware_run import ram_image
from vmxu.sim.iss.core import Iss
from vmxu.sim.iss.lockstep import LockstepChecker
from vmxu.sim.iss.smm import TransitionTimes
from vmxu.sim.iss.trace import format_retired

from .soc_tb import SocTB

_PROGRAMS = Path(os.environ["VMXU_PROGRAMS"]) if os.environ.get("VMXU_PROGRAMS") else None
_PROGRAM_NAMES = sorted(p.name for p in _PROGRAMS.iterdir() if p.suffix in (".elf", ".bin")) if _PROGRAMS else []


async def run_in_lockstep(tb: SocTB, segments: dict[int, bytes], max_cycles: int, trace=None, times=None):
    """Check every record against the ISS; return the number checked (LockstepMismatch on a difference)."""
    checker = LockstepChecker(Iss(segments, lockstep=True, guests=os.environ.get("VMXU_GUESTS") == "1"))
    while True:
        record = await tb.next_record(max_cycles)
        if record is None:
            return checker.checked
        checker.check(record)
        _follow(tb, record, trace, times)


def _follow(tb: SocTB, record, trace, times: TransitionTimes | None) -> None:  # noqa: ANN001 - a Retired
    if trace is not None:
        trace.write(format_retired(record) + "\n")
    if times is not None:
        times.note(record, int(tb.dut.cycles.value))


@cocotb.test(skip="VMXU_IMAGE" not in os.environ)
async def run(dut):
    """`vmxu run IMAGE --sim icarus|verilator`: the image on the SoC, its console, cycles and exit code."""
    path = Path(os.environ["VMXU_IMAGE"])
    max_cycles = int(os.environ.get("VMXU_MAX_CYCLES", "10000000"))
    image, segments = ram_image(path)
    tb = SocTB(dut)
    await tb.start(image)
    started = time.monotonic()
    trace_path = os.environ.get("VMXU_TRACE")
    times = TransitionTimes() if os.environ.get("VMXU_SMM_TIMES") == "1" else None
    checked = None
    if os.environ.get("VMXU_LOCKSTEP") == "1" or trace_path or times is not None:
        with open(trace_path or os.devnull, "w") as trace:
            trace = trace if trace_path else None
            if os.environ.get("VMXU_LOCKSTEP") == "1":
                checked = await run_in_lockstep(tb, segments, max_cycles, trace, times)
            else:
                while (record := await tb.next_record(max_cycles)) is not None:
                    _follow(tb, record, trace, times)
        result = tb.result()
    else:
        result = await tb.run(max_cycles)
    result.seconds = time.monotonic() - started
    Path(os.environ["VMXU_RESULT"]).write_text(
        json.dumps(
            {
                **result.__dict__,
                "reason": result.reason,
                "lockstep_records": checked,
                "smm_times": None if times is None else {"smi": times.smi, "rsm": times.rsm},
            }
        )
    )


@cocotb.test(skip="VMXU_BUTTON_CYCLE" not in os.environ)
async def button(dut):
    """The image on the SoC with its SMI button pressed once (docs/smm-soc.md); the result as test ``run``'s."""
    image, _ = ram_image(Path(os.environ["VMXU_IMAGE"]))
    tb = SocTB(dut)
    await tb.start(image)
    await ClockCycles(dut.clk, int(os.environ["VMXU_BUTTON_CYCLE"]))
    dut.smi_button.value = 1
    await ClockCycles(dut.clk, 1)
    dut.smi_button.value = 0
    result = await tb.run(int(os.environ.get("VMXU_MAX_CYCLES", "100000")))
    Path(os.environ["VMXU_RESULT"]).write_text(json.dumps({**result.__dict__, "reason": result.reason}))


@cocotb.test(skip=not _PROGRAM_NAMES)
@cocotb.parametrize(program=_PROGRAM_NAMES or [""])
async def program(dut, program: str):
    """A core-verification program, in lockstep with the ISS; it must end with the finisher's pass."""
    image, segments = ram_image(_PROGRAMS / program)
    tb = SocTB(dut)
    await tb.start(image)
    checked = await run_in_lockstep(tb, segments, 2_000_000)
    result = tb.result()
    dut._log.info(f"{program}: {checked} records agreed; {result.cycles} cycles; {result.reason}")
    assert result.exit_code == 0, f"{program}: {result.reason}; console: {result.console!r}"
