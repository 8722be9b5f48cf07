# amaranth: UnusedElaboratable=no
"""The unit's latency table and every block's latency property, pinned in Amaranth's simulator.

One scenario plays the benchmark's operations (sim/cocotb/bench.py) on a
``VmxUnit`` with a memory that acknowledges one clock after the strobe and a
requester that takes each response at once. For every operation it pins the
unit's latency (``VmxUnit.latency``), the dispatcher's share
(``Dispatcher.latency``) and the latency of the block that carried it out,
from its ``start`` to its ``done``; and every region command, entry-check walk
and transition the scenario caused against ``RegionPort.latency``,
``EntryChecker.latency`` and ``Transitions.latency``.
"""

from dataclasses import dataclass

import pytest
from amaranth import Value
from amaranth.sim import Simulator

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.state import element_id
from vmxu.rtl.vmcs.region import RegionCommand
from vmxu.rtl.vmx.unit import EXIT_ROWS, VmxUnit
from vmxu.sim import presets
from vmxu.sim.cocotb.bench import BROKEN_GUEST_FIELD, EXIT_MEMORY, MEMORY_FIELD, MSEG, ON_DIE_FIELD, guest_exits
from vmxu.sim.cocotb.stimulus import VMCS_REGIONS, MemoryWrite, RandomProgram

DUAL_MONITOR_ROWS = (
    "VMCALL (dual-monitor activation)",
    "SMM VM exit (SMI, from VMX root)",
    "VMLAUNCH returning from SMM (to VMX root)",
    "VMRESUME returning from SMM (to VMX root)",
)


@dataclass(frozen=True)
class Measured:
    name: str
    status: Status
    unit_cycles: int
    block: str | None
    block_cycles: int | None


def _simulate(entries: int):
    unit = VmxUnit(cache_entries=entries)
    memory: dict[int, int] = {}
    watched = {
        "accept": unit.req.valid & unit.req.ready,
        "respond": unit.resp.valid & unit.resp.ready,
        "status": unit.resp.status.as_value(),
        "region_start": unit.region.command.start,
        "region_done": unit.region.command.done,
        "region_cmd": unit.region.command.cmd.as_value(),
        "checks_start": unit.checker.checks.start,
        "checks_done": unit.checker.checks.done,
        "transition_start": unit.transitions.entry.start,
        "transition_done": unit.transitions.entry.done,
        "transition_status": unit.transitions.entry.outcome.status.as_value(),
        "exit_start": unit.transitions.exit.start,
        "exit_done": unit.transitions.exit.done,
    }
    blocks = list(unit.dispatcher.blocks)  # BLOCKS, and the dual-monitor block
    for name in blocks:
        port = getattr(unit.dispatcher, name)
        watched[f"{name}_start"] = port.start
        watched[f"{name}_done"] = port.done
    trace: list[dict[str, int]] = []
    measured: list[Measured] = []
    dual_begin: list[int] = []  # the trace's index where the dual-monitor operations begin

    async def testbench(ctx):
        slave = {"ack": False, "pending": False}

        async def cycle():
            """Record this cycle, let the clock tick, then play the bus slave for the next cycle."""
            trace.append({name: ctx.get(Value.cast(signal)) for name, signal in watched.items()})
            await ctx.tick()
            strobe = ctx.get(unit.bus.cyc) and ctx.get(unit.bus.stb)
            if slave["ack"]:
                ctx.set(unit.bus.ack, 0)
                slave["ack"], slave["pending"] = False, bool(strobe)
            elif slave["pending"]:
                address = ctx.get(unit.bus.adr)
                if ctx.get(unit.bus.we):
                    memory[address] = ctx.get(unit.bus.dat_w)
                else:
                    ctx.set(unit.bus.dat_r, memory.get(address, 0))
                ctx.set(unit.bus.ack, 1)
                slave["ack"], slave["pending"] = True, False
            elif strobe:
                slave["pending"] = True

        async def execute(op, index=0, value=0, size=OperandSize.S64, *, name=None, expect=None):
            ctx.set(unit.req.op, op)
            ctx.set(unit.req.size, size)
            ctx.set(unit.req.index, index)
            ctx.set(unit.req.value, value)
            ctx.set(unit.req.valid, 1)
            while not ctx.get(unit.req.ready):
                await cycle()
            await cycle()
            accepted = len(trace) - 1
            ctx.set(unit.req.valid, 0)
            while not ctx.get(unit.resp.valid):
                await cycle()
            await cycle()
            answered = len(trace) - 1
            status = Status(trace[answered]["status"])
            if expect is not None:
                assert status == expect, f"{name}: {status}"
            window = range(accepted + 1, answered + 1)
            block = block_cycles = None
            for block_name in blocks:
                starts = [i for i in window if trace[i][f"{block_name}_start"]]
                if starts:
                    done = next(i for i in window if i >= starts[0] and trace[i][f"{block_name}_done"])
                    block, block_cycles = block_name, done - starts[0]
            if name is not None:
                measured.append(Measured(name, status, answered - accepted, block, block_cycles))

        ctx.set(unit.resp.ready, 1)
        setup = list(RandomProgram(0).setup())
        for step in setup[:-1]:
            if isinstance(step, MemoryWrite):
                memory[step.addr // 4] = step.value
            else:
                await execute(step.op, step.index, step.value, step.size)
        vmxon = setup[-1].value
        on_die = FIELD_BY_NAME[ON_DIE_FIELD].encoding
        in_memory = FIELD_BY_NAME[MEMORY_FIELD].encoding
        first, *others = VMCS_REGIONS
        await execute(Op.VMXON, value=vmxon, name="VMXON", expect=Status.SUCCEED)
        await execute(Op.VMCLEAR, value=first, name="VMCLEAR (not cached)", expect=Status.SUCCEED)
        await execute(Op.VMPTRLD, value=first, name="VMPTRLD (not cached: fill)", expect=Status.SUCCEED)
        await execute(Op.VMPTRLD, value=first, name="VMPTRLD (cached)", expect=Status.SUCCEED)
        await execute(Op.VMWRITE, on_die, 0x1234, name="VMWRITE on-die (64-bit)", expect=Status.SUCCEED)
        await execute(Op.VMREAD, on_die, name="VMREAD on-die (64-bit)", expect=Status.SUCCEED)
        await execute(Op.VMREAD, on_die, size=OperandSize.S32, name="VMREAD on-die (32-bit)", expect=Status.SUCCEED)
        await execute(Op.VMWRITE, in_memory, 0x5000, name="VMWRITE memory (64-bit)", expect=Status.SUCCEED)
        await execute(Op.VMREAD, in_memory, name="VMREAD memory (64-bit)", expect=Status.SUCCEED)
        await execute(Op.VMREAD, in_memory, size=OperandSize.S32, name="VMREAD memory (32-bit)", expect=Status.SUCCEED)
        await execute(Op.VMREAD, 0x7FFE, name="VMREAD unsupported (VMfailValid 12)", expect=Status.FAIL_VALID)
        await execute(Op.VMPTRST, name="VMPTRST", expect=Status.SUCCEED)
        await execute(Op.VMLAUNCH, name="VMLAUNCH (checks' verdict)", expect=Status.FAIL_VALID)
        # A guest: entries, exits, and an entry whose guest state fails a check.
        fields = presets.launchable_fields()
        for field, value in fields.items():
            await execute(Op.VMWRITE, FIELD_BY_NAME[field].encoding, value, expect=Status.SUCCEED)
        await execute(Op.VMLAUNCH, name="VMLAUNCH to entered", expect=Status.ENTERED)
        await execute(Op.VMCALL, name="VM exit (VMCALL)", expect=Status.EXITED)
        await execute(Op.VMRESUME, name="VMRESUME to entered", expect=Status.ENTERED)
        await execute(Op.CPUID, name="VM exit (CPUID)", expect=Status.EXITED)
        for address, value in EXIT_MEMORY.items():
            memory[address // 4] = value
        for name, controls, event in guest_exits(fields):
            for field, value in controls.items():
                await execute(Op.VMWRITE, FIELD_BY_NAME[field].encoding, value, expect=Status.SUCCEED)
            await execute(Op.VMRESUME, expect=Status.ENTERED)
            await execute(event.op, event.index, event.value, event.size, name=name, expect=Status.EXITED)
        broken = FIELD_BY_NAME[BROKEN_GUEST_FIELD].encoding
        await execute(Op.VMWRITE, broken, fields[BROKEN_GUEST_FIELD] & ~0b10, expect=Status.SUCCEED)
        await execute(Op.VMRESUME, name="VM-entry failure (guest state)", expect=Status.ENTRY_FAILED)
        # Fill the cache with dirty VMCSs: the least recently used one (the first) is the victim.
        filled = others[: entries - 1]
        for region in filled:
            await execute(Op.VMPTRLD, value=region)
            await execute(Op.VMWRITE, on_die, region)
        newest = others[entries - 1]
        await execute(Op.VMPTRLD, value=newest, name="VMPTRLD (not cached: write-back + fill)", expect=Status.SUCCEED)
        await execute(Op.VMCLEAR, value=filled[-1], name="VMCLEAR (cached, dirty: write-back)", expect=Status.SUCCEED)
        await execute(Op.VMCLEAR, value=newest, name="VMCLEAR (cached, clean)", expect=Status.SUCCEED)
        await execute(Op.RDMSR, msrs.IA32_VMX_BASIC, name="RDMSR (capability MSR)", expect=Status.OK)
        await execute(Op.GET, element_id("cr0"), name="GET", expect=Status.OK)
        await execute(Op.SET, element_id("rsp"), 0x8000, name="SET", expect=Status.OK)
        await execute(Op.VMXOFF, name=f"VMXOFF ({entries - 2} dirty)", expect=Status.SUCCEED)
        await execute(Op.VMXON, value=vmxon, expect=Status.SUCCEED)
        await execute(Op.VMXOFF, name="VMXOFF (nothing to write back)", expect=Status.SUCCEED)
        # SMM under the default treatment: the save map, SMM's loads; RSM's restore.
        await execute(Op.SMI, name="SMI (delivered)", expect=Status.OK)
        await execute(Op.RSM, name="RSM", expect=Status.OK)
        # The dual-monitor treatment (SDM 34.15): IA32_SMM_MONITOR_CTL set in SMM, the activation, a return from
        # SMM to VMX root operation, an SMI there (an SMM VM exit), the return again.
        dual_begin.append(len(trace))
        for offset, value in presets.mseg_header().items():
            memory[(MSEG + offset) // 4] = value
        await execute(Op.SMI, expect=Status.OK)
        await execute(Op.WRMSR, msrs.IA32_SMM_MONITOR_CTL, MSEG | msrs.SMM_MONITOR_CTL_VALID, expect=Status.OK)
        await execute(Op.RSM, expect=Status.OK)
        await execute(Op.VMXON, value=vmxon, expect=Status.SUCCEED)
        await execute(Op.VMCLEAR, value=first, expect=Status.SUCCEED)
        await execute(Op.VMPTRLD, value=first, expect=Status.SUCCEED)
        # The controls and the host state (the return's checks); the guest state is the one the activation saves.
        for field, value in presets.host_fields().items():
            await execute(Op.VMWRITE, FIELD_BY_NAME[field].encoding, value, expect=Status.SUCCEED)
        await execute(Op.VMCALL, name="VMCALL (dual-monitor activation)", expect=Status.EXITED)
        await execute(Op.VMLAUNCH, name="VMLAUNCH returning from SMM (to VMX root)", expect=Status.ENTERED)
        await execute(Op.SMI, name="SMM VM exit (SMI, from VMX root)", expect=Status.EXITED)
        await execute(Op.VMRESUME, name="VMRESUME returning from SMM (to VMX root)", expect=Status.ENTERED)

    sim = Simulator(unit)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return unit, trace[: dual_begin[0]], measured


@pytest.fixture(scope="module", params=[2, 4], ids=lambda n: f"{n}-entries")
def simulated(request):
    return _simulate(request.param)


def test_every_operation_takes_the_latency_of_the_table(simulated):
    unit, _, measured = simulated
    table = unit.latency
    for m in measured:
        if m.name.startswith("VMXOFF (") and m.name.endswith(" dirty)"):
            dirty = unit.cache_entries - 2
            expected = unit.dispatcher.latency + unit.pointers.vmxoff_latency(dirty=dirty)
            if dirty == 2:
                assert table["VMXOFF (two dirty VMCSs written back)"] == expected
        else:
            expected = table[m.name]
        assert m.unit_cycles == expected, m
    names = {m.name for m in measured}
    assert set(table) - names <= {"VMXOFF (two dirty VMCSs written back)"}


def test_the_table_is_the_dispatchers_share_plus_the_blocks(simulated):
    unit, _, measured = simulated
    for m in measured:
        assert m.block is not None, m
        assert m.unit_cycles == unit.dispatcher.latency + m.block_cycles, m
        block = getattr(unit, m.block)
        if m.name in DUAL_MONITOR_ROWS:
            # The dual-monitor block (with the transitions' exit and the pointer block's switch), or the entry
            # (with the dual-monitor block's checks and finish): their rows compose several blocks' latencies.
            assert m.block in ("dual", "entry"), m
            assert m.block_cycles == unit.latency[m.name] - unit.dispatcher.latency, m
        elif m.name in EXIT_ROWS:
            # The guest events decide, the transitions exit.
            assert m.block == "events", m
            exit_cycles = block.latency[EXIT_ROWS[m.name]] + unit.transitions.latency["exited"]
            assert m.block_cycles == exit_cycles, m
        elif m.name in block.latency:
            assert m.block_cycles == block.latency[m.name], m
        else:
            assert m.block_cycles == unit.pointers.vmxoff_latency(dirty=unit.cache_entries - 2), m


def test_the_table_with_four_entries_is_what_the_bench_measured():
    """The numbers `vmxu bench` printed (4 cache entries). Against the one-FSM engine before the split, no
    operation got slower but the checks' verdict, three cycles more: the check walk also loads the exception
    bitmap for the exit decision, and the checker registers its start and its verdict (off the critical paths
    of the dispatcher). The guest rows are the first transitions' numbers."""
    assert VmxUnit(cache_entries=4).latency == {
        "VMXON": 4,
        "VMCLEAR (not cached)": 4,
        "VMPTRLD (not cached: fill)": 380,
        "VMPTRLD (cached)": 4,
        "VMWRITE on-die (64-bit)": 2,
        "VMREAD on-die (64-bit)": 2,
        "VMREAD on-die (32-bit)": 2,
        "VMWRITE memory (64-bit)": 6,
        "VMREAD memory (64-bit)": 6,
        "VMREAD memory (32-bit)": 4,
        "VMREAD unsupported (VMfailValid 12)": 2,
        "VMPTRST": 2,
        "VMLAUNCH (checks' verdict)": 47,
        "VMLAUNCH to entered": 116,
        "VMRESUME to entered": 116,
        "VM-entry failure (guest state)": 167,
        "VM exit (VMCALL)": 72,
        "VM exit (CPUID)": 72,
        "VM exit (HLT)": 72,
        "VM exit (RDTSC)": 72,
        "VM exit (OUT, unconditional I/O exiting)": 72,
        "VM exit (IN, I/O bitmap)": 76,
        "VM exit (RDMSR, MSR bitmap)": 75,
        "VM exit (MOV to CR0, guest/host mask)": 74,
        "VM exit (#GP, exception bitmap)": 72,
        "VM exit (external interrupt)": 72,
        "VM exit (NMI)": 72,
        "VM exit (preemption timer)": 74,
        "VMPTRLD (not cached: write-back + fill)": 848,
        "VMCLEAR (cached, dirty: write-back)": 472,
        "VMCLEAR (cached, clean)": 4,
        "RDMSR (capability MSR)": 2,
        "GET": 2,
        "SET": 3,
        "VMXOFF (two dirty VMCSs written back)": 946,
        "VMXOFF (nothing to write back)": 10,
        "SMI (delivered)": 277,
        "RSM": 212,
        "VMCALL (dual-monitor activation)": 180,
        "SMM VM exit (SMI, from VMX root)": 88,
        "VMLAUNCH returning from SMM (to VMX root)": 127,
        "VMRESUME returning from SMM (to VMX root)": 127,
    }


def _spans(trace, start, done):
    """(first cycle, last cycle) of each command on a start/done handshake; a start may run on into the next."""
    spans, begin = [], None
    for i, sample in enumerate(trace):
        if begin is None and sample[start]:
            begin = i
        if begin is not None and sample[done]:
            spans.append((begin, i))
            begin = None
    return spans


def test_region_commands_take_the_region_ports_latency(simulated):
    unit, trace, _ = simulated
    spans = _spans(trace, "region_start", "region_done")
    seen = set()
    for begin, end in spans:
        command = RegionCommand(trace[begin]["region_cmd"])
        seen.add(command)
        assert end - begin + 1 == unit.region.latency[command], (command, begin)
    assert seen == set(RegionCommand)


def test_entry_checks_and_transition_take_their_latency(simulated):
    unit, trace, _ = simulated
    checks = _spans(trace, "checks_start", "checks_done")
    assert len(checks) == 4 + len(EXIT_ROWS) - 2  # the failing VMLAUNCH, the entries, the failed entry
    assert all(end - begin == unit.checker.latency for begin, end in checks)
    entries = _spans(trace, "transition_start", "transition_done")
    outcomes = [Status(trace[end]["transition_status"]) for _, end in entries]
    entered = len(EXIT_ROWS)  # the VMLAUNCH, and a VMRESUME before each exit but the first
    assert outcomes == [Status.ENTERED] * entered + [Status.ENTRY_FAILED]
    cycles = [end - begin for begin, end in entries]
    latency = unit.transitions.latency
    assert cycles == [latency["entered"]] * entered + [latency["failed"]]
    exits = _spans(trace, "exit_start", "exit_done")
    assert [end - begin for begin, end in exits] == [latency["exited"]] * len(EXIT_ROWS)
