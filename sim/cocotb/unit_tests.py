"""cocotb tests of the VMX unit: every operation runs on the RTL and on the model, and they must agree.

Run by tests/rtl/test_unit.py (pytest) through ``build.run_cocotb``; the knobs
come from the environment so one simulator build serves every run:

- ``VMXU_RANDOM_OPERATIONS``: operations in the random differential run (default 10000).
- ``VMXU_VECTORS``: a directory of transaction scripts; each becomes a test.
- ``VMXU_REPLAY_SCRIPT`` / ``VMXU_REPLAY_RESULTS``: ``vmxu replay --sim`` runs one
  script on the RTL alone and writes its results there (test ``replay``).
- ``VMXU_BENCH_RESULTS``: where the ``bench`` test writes its latencies.

The random run is seeded by cocotb's ``RANDOM_SEED`` (printed at start); to
replay a failure, run again with ``COCOTB_RANDOM_SEED`` set to it.
"""

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import Op
from vmxu.rtl.arch.smm import MSEG_FEATURE_IA32E
from vmxu.sim import presets
from vmxu.sim.model.request import Request
from vmxu.sim.replay.result import format_outcome, format_rejected
from vmxu.sim.replay.script import Rejected, parse_script

from .bench import MSEG, measure_latencies
from .rtl_platform import RtlPlatform
from .stimulus import VMCS_REGIONS, MemoryWrite, RandomProgram
from .unit_tb import Scoreboard, UnitTB

_VECTORS = Path(os.environ["VMXU_VECTORS"]) if os.environ.get("VMXU_VECTORS") else None
_VECTOR_NAMES = sorted(p.stem for p in _VECTORS.glob("*.jsonl")) if _VECTORS else []


async def _start(dut, *, stall: float = 0.0, seed: int = 0) -> Scoreboard:
    tb = UnitTB(dut, stall=stall, rng=random.Random(seed))
    await tb.start()
    return Scoreboard(tb)


@cocotb.test(skip=os.environ.get("VMXU_RANDOM_OPERATIONS") == "0")
async def random_differential(dut):
    """A long seeded random sequence, with random bus wait states and response backpressure."""
    operations = int(os.environ.get("VMXU_RANDOM_OPERATIONS", "10000"))
    seed = cocotb.RANDOM_SEED
    dut._log.info(f"random differential run: {operations} operations, seed {seed}")
    sb = await _start(dut, stall=0.15, seed=seed)
    program = RandomProgram(seed)
    steps = iter(program.operations())
    for step in program.setup():
        await _apply(sb, step)
    while sb.operations < operations:
        await _apply(sb, next(steps))
    dut._log.info(
        f"{sb.operations} operations agreed, and {sb.checks} GETs and VMREADs comparing machine state and VMCS "
        f"after each transition; bus: {sb.tb.bus_words_read} words read, {sb.tb.bus_words_written} written"
    )
    dut._log.info("coverage: " + ", ".join(f"{k} x{n}" for k, n in sorted(sb.coverage.items())))


@cocotb.test(skip="VMXU_RANDOM_DUAL_MONITOR" not in os.environ)
async def random_dual_monitor(dut):
    """The random sequence after firmware enabled the dual-monitor treatment (an MSEG header; in SMM,
    IA32_SMM_MONITOR_CTL := MSEG | valid), with a VMCALL now and then that activates it or is an SMM VM exit:
    SMM VM exits from SMIs and VMCALLs, returns from SMM and guests in SMM as the random requests make them."""
    operations = int(os.environ["VMXU_RANDOM_DUAL_MONITOR"])
    seed = cocotb.RANDOM_SEED
    rng = random.Random(seed)
    dut._log.info(f"random dual-monitor run: {operations} operations, seed {seed}")
    sb = await _start(dut, stall=0.15, seed=seed)
    for offset, value in presets.mseg_header(features=MSEG_FEATURE_IA32E).items():  # an STM for any mode
        sb.write_memory(MSEG + offset, 4, value)
    for request in (Request(Op.SMI), Request(Op.WRMSR, msrs.IA32_SMM_MONITOR_CTL, MSEG | 1), Request(Op.RSM)):
        await sb.perform(request)
    program = RandomProgram(seed)
    steps = iter(program.operations())
    for step in program.setup():
        await _apply(sb, step)
    # The treatment activated at once (a clear VMCS with valid controls and host state, VMCALL): each run
    # starts in the STM, whatever the seed; the random VMCALLs may activate it again after a deactivation.
    region = VMCS_REGIONS[0]
    first = [Request(Op.VMCLEAR, value=region), Request(Op.VMPTRLD, value=region)]
    fields = presets.launchable_fields()
    first += [Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value) for name, value in fields.items()]
    activations = 0
    for request in [*first, Request(Op.VMCALL)]:
        await _apply(sb, request)
    activations += sb.model.dual_monitor_active
    while sb.operations < operations:
        step = next(steps)
        active = sb.model.dual_monitor_active
        for request in _stm_action(sb.model, rng) or [Request(Op.VMCALL) if rng.random() < 0.02 else step]:
            await _apply(sb, request)
        activations += sb.model.dual_monitor_active and not active
    dut._log.info(f"{sb.operations} operations agreed; the treatment activated {activations} times")
    dut._log.info("coverage: " + ", ".join(f"{k} x{n}" for k, n in sorted(sb.coverage.items())))
    assert activations, "the run never activated the dual-monitor treatment: it tested nothing of it"


def _stm_action(model, rng: random.Random) -> list | None:
    """Now and then, what an STM does in SMM (VMX root operation): the return from SMM through the SMM-transfer
    VMCS (made current first, sometimes deactivating), or a guest with "entry to SMM" (the legacy handler).
    None: the random program's next request."""
    if not (model.dual_monitor_active and model.in_smm and not model.non_root) or rng.random() > 0.05:
        return None
    transfer = model.dual.transfer
    entry = FIELD_BY_NAME["VM_ENTRY_CONTROLS"].encoding
    if rng.random() < 0.7:
        requests = [Request(Op.VMPTRLD, value=transfer)]
        launched = model.launch_state(transfer) & 1
        if rng.random() < 0.2:
            requests.append(Request(Op.VMWRITE, entry, ENTRY.true_default1 | ENTRY.bit("DEACT_DUAL_MONITOR")))
        return [*requests, Request(Op.VMRESUME if launched else Op.VMLAUNCH)]
    region = rng.choice([r for r in VMCS_REGIONS if r != transfer])
    requests = [Request(Op.VMCLEAR, value=region), Request(Op.VMPTRLD, value=region)]
    fields = presets.launchable_fields() | {
        "VM_ENTRY_CONTROLS": ENTRY.true_default1 | ENTRY.bit("SMM"),
        "GUEST_INTERRUPTIBILITY_INFO": 4,
    }
    requests += [Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value) for name, value in fields.items()]
    return [*requests, Request(Op.VMLAUNCH)]


async def _apply(sb: Scoreboard, step) -> None:
    if isinstance(step, MemoryWrite):
        sb.write_memory(step.addr, step.nbytes, step.value)
    else:
        await sb.perform(step)


@cocotb.test(skip=not _VECTOR_NAMES)
@cocotb.parametrize(vector=_VECTOR_NAMES or [""])
async def vector(dut, vector: str):
    """A directed SDM-rule script (tests/vectors), in lockstep with the model, with bus wait states."""
    sb = await _start(dut, stall=0.1, seed=len(vector))
    items = parse_script((_VECTORS / f"{vector}.jsonl").read_text())
    for item in items:
        assert not isinstance(item, Rejected), f"{vector}.jsonl line {item.line}: {item.why}"
        await RtlPlatform(sb.tb, scoreboard=sb).perform(item)


@cocotb.test(skip="VMXU_REPLAY_SCRIPT" not in os.environ)
async def replay(dut):
    """``vmxu replay FILE --sim icarus|verilator``: the script on the RTL alone."""
    tb = UnitTB(dut)
    await tb.start()
    platform = RtlPlatform(tb)
    results = []
    for item in parse_script(Path(os.environ["VMXU_REPLAY_SCRIPT"]).read_text()):
        if isinstance(item, Rejected):
            results.append(format_rejected(item))
        else:
            results.append(format_outcome(item, await platform.perform(item)))
    await ClockCycles(dut.clk, 4)  # a waveform (--waves) shows the unit idle after the last response
    Path(os.environ["VMXU_REPLAY_RESULTS"]).write_text("".join(json.dumps(r) + "\n" for r in results))


@cocotb.test(skip="VMXU_BENCH_RESULTS" not in os.environ)
async def bench(dut):
    """Latency of each operation class, zero-wait-state bus, checked against the model as it goes."""
    sb = await _start(dut)
    table = await measure_latencies(sb)
    Path(os.environ["VMXU_BENCH_RESULTS"]).write_text(json.dumps(table, indent=1))
