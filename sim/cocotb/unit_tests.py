"""cocotb tests of the VMX unit against the reference model (run by tests/rtl/test_unit.py)."""

import cocotb

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import Op, OperandSize
from vmxu.rtl.arch.state import element_id

from .unit_tb import Scoreboard, UnitTB

VMXON_REGION = 0x1000
VMCS_REGIONS = [0x2000 + 0x1000 * i for i in range(6)]


async def vmm_setup(sb: Scoreboard) -> None:
    await sb.execute(Op.WRMSR, msrs.IA32_FEATURE_CONTROL, 0x5)
    await sb.execute(Op.SET, element_id("cr0"), 0x8000_0021)
    await sb.execute(Op.SET, element_id("cr4"), 0x2000)
    for region in [VMXON_REGION, *VMCS_REGIONS]:
        sb.write_memory(region, 4, msrs.VMCS_REVISION_ID)
    await sb.execute(Op.VMXON, value=VMXON_REGION)


@cocotb.test()
async def test_smoke(dut):
    tb = UnitTB(dut)
    await tb.start()
    sb = Scoreboard(tb)
    await vmm_setup(sb)
    await sb.execute(Op.VMCLEAR, value=VMCS_REGIONS[0])
    await sb.execute(Op.VMPTRLD, value=VMCS_REGIONS[0])
    await sb.execute(Op.VMWRITE, FIELD_BY_NAME["GUEST_RIP"].encoding, 0x1234_5678_9ABC)
    await sb.execute(Op.VMREAD, FIELD_BY_NAME["GUEST_RIP"].encoding)
    await sb.execute(Op.VMREAD, FIELD_BY_NAME["GUEST_RIP"].encoding, size=OperandSize.S32)
    await sb.execute(Op.VMPTRST)
    await sb.execute(Op.VMREAD, 0x1234)
    await sb.execute(Op.VMREAD, FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding)
    await sb.execute(Op.VMLAUNCH)
    await sb.execute(Op.VMCLEAR, value=VMCS_REGIONS[0])
    await sb.execute(Op.GET, element_id("rflags"))

