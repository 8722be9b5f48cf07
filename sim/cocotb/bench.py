# amaranth: UnusedElaboratable=no
# (``latency_table`` makes a VmxUnit only to read its table.)
"""Latency of the VMX unit's operations, measured in RTL simulation (``vmxu bench``).

Cycles run from the clock edge that accepts a request to the edge that takes
its response, with a memory that acknowledges one clock after the strobe (zero
wait states) and a requester that takes responses at once. Every operation
also runs on the model, so a number is only printed for a correct outcome.
Each measured row is named after the row of the unit's latency table it
measures (``VmxUnit.latency``, ``latency_table``), which ``vmxu bench``
compares it with.
"""

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import PIN, PROC
from vmxu.rtl.arch.events import ExceptionVector
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.layout import LOCATION, Storage
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.state import CR0, element_id
from vmxu.rtl.vmx.unit import VmxUnit
from vmxu.sim import presets
from vmxu.sim.model.request import Request

from .stimulus import VMCS_REGIONS, RandomProgram
from .unit_tb import Scoreboard

__all__ = [
    "measure_latencies",
    "latency_table",
    "guest_exits",
    "SUBJECTS",
    "ON_DIE_FIELD",
    "MEMORY_FIELD",
    "BROKEN_GUEST_FIELD",
    "EXIT_MEMORY",
]

ON_DIE_FIELD = "GUEST_RIP"
MEMORY_FIELD = "EPT_POINTER"
#: A guest-state field whose breaking fails the entry's guest-state checks (RFLAGS bit 1 is reserved as 1).
BROKEN_GUEST_FIELD = "GUEST_RFLAGS"
CAPABILITY_MSR = "IA32_VMX_BASIC"
assert LOCATION[FIELD_BY_NAME[ON_DIE_FIELD].encoding].storage == Storage.ON_DIE
assert LOCATION[FIELD_BY_NAME[MEMORY_FIELD].encoding].storage == Storage.MEMORY
#: What the rows measure, where the class leaves a choice.
SUBJECTS = (
    f"on-die field {ON_DIE_FIELD}, memory-resident field {MEMORY_FIELD} (both 64-bit), "
    f"capability MSR {CAPABILITY_MSR}, elements cr0 (GET) and rsp (SET); "
    f"a guest of sim/presets.py launchable_fields, no MSR lists, nothing injected; "
    f"guest state broken by {BROKEN_GUEST_FIELD} bit 1 = 0"
)


def latency_table() -> dict[str, int]:
    """The latency table (``VmxUnit.latency``) of the unit the bench runs: ``build.UNIT``, the default ``VmxUnit``."""
    return VmxUnit().latency


async def measure_latencies(sb: Scoreboard) -> list[dict]:
    rows: list[dict] = []

    async def measure(name: str, op: Op, index: int = 0, value: int = 0, size=OperandSize.S64, expect=None):
        await measure_request(name, Request(op, index, value, size), expect)

    async def measure_request(name: str, request: Request, expect: Status):
        timed = await sb.perform(request)
        if timed.outcome.status != expect:
            raise AssertionError(f"{name}: expected {expect.name}, got {timed.outcome}")
        rows.append({"operation": name, "cycles": timed.cycles, "status": timed.outcome.status.name.lower()})

    setup = list(RandomProgram(0).setup())
    for step in setup[:-1]:  # everything up to VMXON
        if hasattr(step, "op"):
            await sb.execute(step.op, step.index, step.value, step.size)
        else:
            sb.write_memory(step.addr, step.nbytes, step.value)
    await measure("VMXON", Op.VMXON, value=setup[-1].value, expect=Status.SUCCEED)
    a, b, c, d, e, f = VMCS_REGIONS
    await measure("VMCLEAR (not cached)", Op.VMCLEAR, value=a, expect=Status.SUCCEED)
    await measure("VMPTRLD (not cached: fill)", Op.VMPTRLD, value=a, expect=Status.SUCCEED)
    await measure("VMPTRLD (cached)", Op.VMPTRLD, value=a, expect=Status.SUCCEED)
    on_die = FIELD_BY_NAME[ON_DIE_FIELD].encoding
    memory = FIELD_BY_NAME[MEMORY_FIELD].encoding
    await measure("VMWRITE on-die (64-bit)", Op.VMWRITE, on_die, 0x1234, expect=Status.SUCCEED)
    await measure("VMREAD on-die (64-bit)", Op.VMREAD, on_die, expect=Status.SUCCEED)
    await measure("VMREAD on-die (32-bit)", Op.VMREAD, on_die, size=OperandSize.S32, expect=Status.SUCCEED)
    await measure("VMWRITE memory (64-bit)", Op.VMWRITE, memory, 0x5000, expect=Status.SUCCEED)
    await measure("VMREAD memory (64-bit)", Op.VMREAD, memory, expect=Status.SUCCEED)
    await measure("VMREAD memory (32-bit)", Op.VMREAD, memory, size=OperandSize.S32, expect=Status.SUCCEED)
    await measure("VMREAD unsupported (VMfailValid 12)", Op.VMREAD, 0x7FFE, expect=Status.FAIL_VALID)
    await measure("VMPTRST", Op.VMPTRST, expect=Status.SUCCEED)
    # The controls of a fresh VMCS fail checks 7 and 8: the verdict comes after the whole walk.
    await measure("VMLAUNCH (checks' verdict)", Op.VMLAUNCH, expect=Status.FAIL_VALID)
    for region in (b, c, d):
        await sb.execute(Op.VMPTRLD, value=region)
        await sb.execute(Op.VMWRITE, on_die, region)
    # Cache full of dirty VMCSs: the least recently used one (a) is written back first.
    await measure("VMPTRLD (not cached: write-back + fill)", Op.VMPTRLD, value=e, expect=Status.SUCCEED)
    await measure("VMCLEAR (cached, dirty: write-back)", Op.VMCLEAR, value=d, expect=Status.SUCCEED)
    await measure("VMCLEAR (cached, clean)", Op.VMCLEAR, value=e, expect=Status.SUCCEED)
    await measure("RDMSR (capability MSR)", Op.RDMSR, getattr(msrs, CAPABILITY_MSR), expect=Status.OK)
    await measure("GET", Op.GET, element_id("cr0"), expect=Status.OK)
    await measure("SET", Op.SET, element_id("rsp"), 0x8000, expect=Status.OK)
    await measure("VMXOFF (two dirty VMCSs written back)", Op.VMXOFF, expect=Status.SUCCEED)
    await sb.execute(Op.VMXON, value=setup[-1].value)
    await measure("VMXOFF (nothing to write back)", Op.VMXOFF, expect=Status.SUCCEED)
    await sb.execute(Op.VMXON, value=setup[-1].value)
    await _measure_guest(measure_request, sb, f)
    # SMM under the default treatment, from VMX root operation (the map saved, SMM's state loaded; back).
    await measure("SMI (delivered)", Op.SMI, expect=Status.OK)
    await _measure_dual_monitor(measure, measure_request, sb, a)
    return rows


#: The MSEG the dual-monitor rows activate the treatment with (its header: sim/presets.py ``mseg_header``).
MSEG = 0x8_0000


async def _measure_dual_monitor(measure, measure_request, sb: Scoreboard, region: int) -> None:
    """The dual-monitor treatment (SDM 34.15): in SMM (after the SMI above) IA32_SMM_MONITOR_CTL := MSEG | valid,
    RSM; the activation by VMCALL on ``region``; the return from SMM to VMX root operation (no current VMCS
    after it: the link pointer is all ones); an SMI there: an SMM VM exit to the STM, which makes the
    SMM-transfer VMCS current again (cached); the return again."""
    for offset, value in presets.mseg_header().items():
        sb.write_memory(MSEG + offset, 4, value)
    await sb.execute(Op.WRMSR, msrs.IA32_SMM_MONITOR_CTL, MSEG | msrs.SMM_MONITOR_CTL_VALID)
    await measure("RSM", Op.RSM, expect=Status.OK)
    await sb.execute(Op.VMCLEAR, value=region)
    await sb.execute(Op.VMPTRLD, value=region)
    for name, value in presets.launchable_fields().items():
        await sb.execute(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value)
    await measure("VMCALL (dual-monitor activation)", Op.VMCALL, expect=Status.EXITED)
    await measure_request("VMLAUNCH returning from SMM (to VMX root)", Request(Op.VMLAUNCH), Status.ENTERED)
    await measure("SMM VM exit (SMI, from VMX root)", Op.SMI, expect=Status.EXITED)
    await measure_request("VMRESUME returning from SMM (to VMX root)", Request(Op.VMRESUME), Status.ENTERED)


async def _measure_guest(measure_request, sb: Scoreboard, region: int) -> None:
    """VM entries and exits of a guest in ``region``, which nothing is cached for."""
    await sb.execute(Op.VMCLEAR, value=region)
    await sb.execute(Op.VMPTRLD, value=region)
    fields = presets.launchable_fields()
    for name, value in fields.items():
        await sb.execute(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value)
    await measure_request("VMLAUNCH to entered", Request(Op.VMLAUNCH), Status.ENTERED)
    await measure_request("VM exit (VMCALL)", Request(Op.VMCALL), Status.EXITED)
    await measure_request("VMRESUME to entered", Request(Op.VMRESUME), Status.ENTERED)
    await measure_request("VM exit (CPUID)", Request(Op.CPUID), Status.EXITED)
    for name, controls, event in guest_exits(fields):
        for field, value in controls.items():
            await sb.execute(Op.VMWRITE, FIELD_BY_NAME[field].encoding, value)
        for addr, value in EXIT_MEMORY.items():
            sb.write_memory(addr, 4, value)
        await sb.execute(Op.VMRESUME)
        await measure_request(name, event, Status.EXITED)
    broken = FIELD_BY_NAME[BROKEN_GUEST_FIELD].encoding
    await sb.execute(Op.VMWRITE, broken, fields[BROKEN_GUEST_FIELD] & ~0b10)
    await measure_request("VM-entry failure (guest state)", Request(Op.VMRESUME), Status.ENTRY_FAILED)


#: The bitmaps of the conditional exits: I/O port 0x80 and RDMSR of IA32_SYSENTER_CS (0x174) exit.
IO_BITMAP, MSR_BITMAP = 0x6000, 0x7000


def _bitmap_word(base: int, bit: int) -> tuple[int, int]:
    """The 32-bit word of a bitmap at ``base`` that holds bit ``bit``, with only that bit set."""
    return base + 4 * (bit // 32), 1 << (bit % 32)


#: Word address -> value: the bits of the bitmaps above.
EXIT_MEMORY = dict([_bitmap_word(IO_BITMAP, 0x80), _bitmap_word(MSR_BITMAP, 0x174)])


def guest_exits(fields: dict[str, int]) -> list[tuple[str, dict[str, int], Request]]:
    """Each kind of VM exit but VMCALL and CPUID: its row, the controls it needs, the guest event."""
    proc = fields["CPU_BASED_VM_EXEC_CONTROL"]
    pin = fields["PIN_BASED_VM_EXEC_CONTROL"]

    def with_proc(*names):
        return {"CPU_BASED_VM_EXEC_CONTROL": proc | sum(PROC.bit(n) for n in names)}

    def with_pin(*names):
        return {"PIN_BASED_VM_EXEC_CONTROL": pin | sum(PIN.bit(n) for n in names)}

    return [
        ("VM exit (HLT)", with_proc("HLT_EXITING"), Request(Op.HLT)),
        ("VM exit (RDTSC)", with_proc("RDTSC_EXITING"), Request(Op.RDTSC)),
        ("VM exit (OUT, unconditional I/O exiting)", with_proc("UNCOND_IO_EXITING"), Request(Op.OUT, 0x80)),
        (
            "VM exit (IN, I/O bitmap)",
            {**with_proc("USE_IO_BITMAPS"), "IO_BITMAP_A": IO_BITMAP, "IO_BITMAP_B": IO_BITMAP + 0x1000},
            Request(Op.IN, 0x80),
        ),
        (
            "VM exit (RDMSR, MSR bitmap)",
            {**with_proc("USE_MSR_BITMAPS"), "MSR_BITMAP": MSR_BITMAP},
            Request(Op.RDMSR, 0x174),
        ),
        (
            "VM exit (MOV to CR0, guest/host mask)",
            {**with_proc(), "CR0_GUEST_HOST_MASK": CR0.TS, "CR0_READ_SHADOW": 0},
            Request(Op.SET, element_id("cr0"), fields["GUEST_CR0"] | CR0.TS),
        ),
        (
            "VM exit (#GP, exception bitmap)",
            {**with_proc(), "EXCEPTION_BITMAP": 1 << ExceptionVector.GP},
            Request(Op.EXCEPTION, ExceptionVector.GP),
        ),
        ("VM exit (external interrupt)", with_pin("EXT_INTR_EXITING"), Request(Op.INTERRUPT, 0x20)),
        ("VM exit (NMI)", with_pin("NMI_EXITING"), Request(Op.NMI)),
        (
            "VM exit (preemption timer)",
            {**with_pin("ACTIVATE_PREEMPTION_TIMER"), "VMX_PREEMPTION_TIMER_VALUE": 1},
            Request(Op.RUN, value=1 << 12),
        ),
    ]
