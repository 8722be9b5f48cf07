"""Latency of the VMX unit's operations, measured in RTL simulation (``vmxu bench``).

Cycles run from the clock edge that accepts a request to the edge that takes
its response, with a memory that acknowledges one clock after the strobe (zero
wait states) and a requester that takes responses at once. Every operation
also runs on the model, so a number is only printed for a correct outcome.
"""

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.layout import LOCATION, Storage
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.state import element_id

from .stimulus import VMCS_REGIONS, RandomProgram
from .unit_tb import Scoreboard

__all__ = ["measure_latencies", "ON_DIE_FIELD", "MEMORY_FIELD"]

ON_DIE_FIELD = "GUEST_RIP"
MEMORY_FIELD = "EPT_POINTER"
assert LOCATION[FIELD_BY_NAME[ON_DIE_FIELD].encoding].storage == Storage.ON_DIE
assert LOCATION[FIELD_BY_NAME[MEMORY_FIELD].encoding].storage == Storage.MEMORY


async def measure_latencies(sb: Scoreboard) -> list[dict]:
    rows: list[dict] = []

    async def measure(name: str, op: Op, index: int = 0, value: int = 0, size=OperandSize.S64, expect=None):
        timed = await sb.execute(op, index, value, size)
        if expect is not None and timed.outcome.status != expect:
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
    await measure(f"VMWRITE on-die ({ON_DIE_FIELD}, 64-bit)", Op.VMWRITE, on_die, 0x1234, expect=Status.SUCCEED)
    await measure(f"VMREAD on-die ({ON_DIE_FIELD}, 64-bit)", Op.VMREAD, on_die, expect=Status.SUCCEED)
    await measure(
        f"VMREAD on-die ({ON_DIE_FIELD}, 32-bit)", Op.VMREAD, on_die, size=OperandSize.S32, expect=Status.SUCCEED
    )
    await measure(f"VMWRITE memory ({MEMORY_FIELD}, 64-bit)", Op.VMWRITE, memory, 0x5000, expect=Status.SUCCEED)
    await measure(f"VMREAD memory ({MEMORY_FIELD}, 64-bit)", Op.VMREAD, memory, expect=Status.SUCCEED)
    await measure(
        f"VMREAD memory ({MEMORY_FIELD}, 32-bit)", Op.VMREAD, memory, size=OperandSize.S32, expect=Status.SUCCEED
    )
    await measure("VMREAD unsupported (VMfailValid 12)", Op.VMREAD, 0x7FFE, expect=Status.FAIL_VALID)
    await measure("VMPTRST", Op.VMPTRST, expect=Status.SUCCEED)
    await measure("VMLAUNCH (checks 7 and 8, fail)", Op.VMLAUNCH, expect=Status.FAIL_VALID)
    for region in (b, c, d):
        await sb.execute(Op.VMPTRLD, value=region)
        await sb.execute(Op.VMWRITE, on_die, region)
    # Cache full of dirty VMCSs: the least recently used one (a) is written back first.
    await measure("VMPTRLD (not cached: write-back + fill)", Op.VMPTRLD, value=e, expect=Status.SUCCEED)
    await measure("VMCLEAR (cached, dirty: write-back)", Op.VMCLEAR, value=d, expect=Status.SUCCEED)
    await measure("VMCLEAR (cached, clean)", Op.VMCLEAR, value=e, expect=Status.SUCCEED)
    await measure("RDMSR (IA32_VMX_BASIC)", Op.RDMSR, msrs.IA32_VMX_BASIC, expect=Status.OK)
    await measure("GET (cr0)", Op.GET, element_id("cr0"), expect=Status.OK)
    await measure("SET (rsp)", Op.SET, element_id("rsp"), 0x8000, expect=Status.OK)
    await measure("VMXOFF (two dirty VMCSs written back)", Op.VMXOFF, expect=Status.SUCCEED)
    return rows
