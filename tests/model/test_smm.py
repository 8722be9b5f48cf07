"""SMI delivery and RSM under the default treatment (SDM vol. 3C ch. 34, vol. 2B RSM; REPLAY.md "SMM").

Offsets are from SMBASE and are the SDM's (table 34-3 lists them from SMBASE + 0x8000: 7EF8H there is
SMBASE + 0xFEF8 here); the few slots the SDM saves without naming an offset (segment access rights,
interruptibility) are found through rtl/arch/smm.py's ``SLOT_BY_ELEMENT``.
"""

from __future__ import annotations

import pytest
from model_setup import VMCS_A, enable_vmx, expect, vmwrite_all

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import PIN
from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.ops import Op, Status, Vector
from vmxu.rtl.arch.smm import SLOT_BY_ELEMENT
from vmxu.rtl.arch.state import AR, CR0, CR4, INTERRUPTIBILITY, RFLAGS

SMBASE_RESET = 0x3_0000
#: A relocation target inside the 1-MiB RAM (the classic 0xA0000 SMRAM).
NEW_SMBASE = 0xA_0000

# Table 34-3 offsets (SMBASE + 0x8000 + the table's 7xxxH offset).
OFF_CR0 = 0xFFF8
OFF_CR3 = 0xFFF0
OFF_RFLAGS = 0xFFE8
OFF_EFER = 0xFFE0
OFF_RIP = 0xFFD8
OFF_DR7 = 0xFFC8
OFF_SELECTOR = {"tr": 0xFFC4, "ldtr": 0xFFC0, "gs": 0xFFBC, "fs": 0xFFB8, "ds": 0xFFB4, "ss": 0xFFB0}
OFF_SELECTOR |= {"cs": 0xFFAC, "es": 0xFFA8}
OFF_RSP = 0xFF7C
OFF_AUTO_HALT = 0xFF00  # the doubleword: I/O restart word at 7F00H, auto HALT restart word at 7F02H
OFF_REVISION = 0xFEFC
OFF_SMBASE = 0xFEF8
OFF_LDTR_BASE_LOW = 0xFE9C
OFF_IDTR_BASE_LOW = 0xFE94
OFF_GDTR_BASE_LOW = 0xFE8C
OFF_CR4 = 0xFE40
OFF_IDTR_BASE_HIGH = 0xFDD8
OFF_LDTR_BASE_HIGH = 0xFDD4
OFF_GDTR_BASE_HIGH = 0xFDD0

#: Distinctive values for every element the SDM's map names, set before an SMI.
DISTINCT = {
    "cr0": CR0.PG | CR0.NE | CR0.ET | CR0.TS | CR0.EM | CR0.MP | CR0.PE,
    "cr3": 0x0001_2000,
    "cr4": CR4.PAE | CR4.TSD | (1 << 9) | (1 << 16),
    "rflags": 0x0020_0000 | RFLAGS.IF | RFLAGS.ZF | RFLAGS.PF | RFLAGS.FIXED1,
    "efer": 0x801,
    "rip": 0x0000_7FFF_1234_5678,
    "rsp": 0x0000_7FFE_8765_4320,
    "dr7": 0x455,
    "tr.selector": 0x0040,
    "ldtr.selector": 0x0038,
    "gs.selector": 0x0033,
    "fs.selector": 0x002B,
    "ds.selector": 0x0023,
    "ss.selector": 0x0018,
    "cs.selector": 0x0010,
    "es.selector": 0x0008,
    "gdtr.base": 0x0000_7FF1_ABCD_1000,
    "idtr.base": 0x0000_7FF2_ABCD_2000,
    "ldtr.base": 0x0000_7FF3_ABCD_3000,
}
#: Elements of the map the SDM saves without naming an offset, set too for the "RSM restores all" test.
DISTINCT_HIDDEN = {
    "es.base": 0x1000,
    "ds.limit": 0xFFFFF,
    "fs.base": 0x7FFF_0000_1000,
    "gs.base": 0x7FFF_0000_2000,
    "tr.limit": 0x67,
    "gdtr.limit": 0x3F,
    "idtr.limit": 0x7FF,
    "pat": 0x0006_0504_0100_0706,
    "sysenter_cs": 0x10,
    "sysenter_esp": 0x7FFF_0000_3000,
    "sysenter_eip": 0x7FFF_0000_4000,
    "pending_debug": 0x4000,
}


def get(model, name):
    return expect(model.get(name), Status.OK).value


def put(model, name, value):
    expect(model.set(name, value), Status.OK)


def smi(model):
    return expect(model.execute(Op.SMI), Status.OK)


def rsm(model):
    return expect(model.execute(Op.RSM), Status.OK)


def smram(model, offset, size=4, smbase=SMBASE_RESET):
    return model.memory.read(smbase + offset, size)


def write_smram(model, offset, value, size=4, smbase=SMBASE_RESET):
    model.memory.write(smbase + offset, size, value)


def expect_fault(outcome, vector):
    expect(outcome, Status.FAULT)
    assert outcome.vector == vector, f"expected vector {int(vector)}, got {outcome}"
    return outcome


def set_distinct(model, values=DISTINCT):
    for name, value in values.items():
        put(model, name, value)


def hidden_offset(name):
    """The project's slot of an element the SDM saves without naming where (rtl/arch/smm.py)."""
    return SLOT_BY_ELEMENT[name].offset


def dpl(ar):
    return (ar & AR.DPL_MASK) >> AR.DPL_SHIFT


def launch(model):
    expect(model.vmlaunch(), Status.ENTERED)
    assert model.non_root


# -- 1. SMI delivery: the state SMM starts with (table 34-4) -----------------------------------------


def test_smbase_is_0x30000_after_reset(model):
    """SDM 34.11: the default SMBASE after reset (and INIT) is 30000H."""
    assert get(model, "smbase") == SMBASE_RESET


def test_smi_enters_smm_at_smbase_plus_8000(model):
    """SDM 34.5.1 table 34-4: CS.selector = SMBASE >> 4 (3000H), CS.base = SMBASE (30000H), EIP = 8000H,
    EFLAGS = 2; the processor is in SMM."""
    set_distinct(model)
    outcome = smi(model)
    assert not outcome.pending
    assert get(model, "smm") == 1
    assert get(model, "cs.selector") == 0x3000
    assert get(model, "cs.base") == 0x3_0000
    assert get(model, "cs.limit") == 0xFFFF_FFFF
    assert get(model, "rip") == 0x8000
    assert get(model, "rflags") == 0x2


def test_smi_clears_cr0_pe_em_ts_pg_and_keeps_the_rest(model):
    """SDM 34.5.1 table 34-4: CR0's PE, EM, TS and PG flags are set to 0, the others are unmodified."""
    put(model, "cr0", CR0.PG | CR0.NE | CR0.ET | CR0.TS | CR0.EM | CR0.MP | CR0.PE)
    smi(model)
    assert get(model, "cr0") == CR0.NE | CR0.ET | CR0.MP


def test_smi_clears_cr4_and_loads_dr7_400(model):
    """SDM 34.5.1 table 34-4: CR4 is cleared to zero; DR7 = 00000400H."""
    put(model, "cr4", DISTINCT["cr4"])
    put(model, "dr7", DISTINCT["dr7"])
    smi(model)
    assert get(model, "cr4") == 0
    assert get(model, "dr7") == 0x400


@pytest.mark.parametrize("seg", ["ds", "es", "fs", "gs", "ss"])
def test_smi_loads_flat_data_segments(model, seg):
    """SDM 34.5.1 table 34-4: DS, ES, FS, GS, SS selectors 0000H, bases 0, limits 0FFFFFFFFH."""
    put(model, f"{seg}.selector", 0x2B)
    put(model, f"{seg}.base", 0x1234_5000)
    put(model, f"{seg}.limit", 0xFFF)
    smi(model)
    assert get(model, f"{seg}.selector") == 0
    assert get(model, f"{seg}.base") == 0
    assert get(model, f"{seg}.limit") == 0xFFFF_FFFF


def test_smi_blocks_smis_and_nmis_and_is_active(model):
    """SDM 34.3.1 and 34.8: in SMM further SMIs and NMIs are blocked (interruptibility 0CH: bit 2 blocking by
    SMI, bit 3 blocking by NMI); the processor runs the handler (activity 0, active)."""
    smi(model)
    assert get(model, "interruptibility") == 0xC
    assert get(model, "activity") == 0


# -- 2. The state-save map (table 34-3) ------------------------------------------------------------


def test_map_holds_smbase_and_the_revision_identifier(model):
    """SDM 34.4.1 table 34-3 and 34.11: 7EF8H holds SMBASE, 7EFCH the SMM revision identifier (here 20064H:
    the Intel 64 map's revision 64H with bit 17, SMBASE relocation supported)."""
    smi(model)
    assert smram(model, OFF_SMBASE) == SMBASE_RESET
    revision = smram(model, OFF_REVISION)
    assert revision == 0x2_0064
    assert revision >> 17 & 1 == 1


@pytest.mark.parametrize(
    ("name", "offset", "size"),
    [
        ("cr0", OFF_CR0, 8),
        ("cr3", OFF_CR3, 8),
        ("rflags", OFF_RFLAGS, 8),
        ("efer", OFF_EFER, 8),
        ("rip", OFF_RIP, 8),
        ("dr7", OFF_DR7, 8),
        *[(f"{seg}.selector", offset, 4) for seg, offset in OFF_SELECTOR.items()],
        ("rsp", OFF_RSP, 8),
        ("cr4", OFF_CR4, 4),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_map_saves_element_at_its_sdm_offset(model, name, offset, size):
    """SDM 34.4.1 table 34-3 (Intel 64 map): CR0 7FF8H, CR3 7FF0H, RFLAGS 7FE8H, IA32_EFER 7FE0H, RIP 7FD8H,
    DR7 7FC8H, TR/LDTR/GS/FS/DS/SS/CS/ES selectors 7FC4H down to 7FA8H, RSP 7F7CH, CR4 7E40H hold the values
    the SMI interrupted."""
    set_distinct(model)
    smi(model)
    assert smram(model, offset, size) == DISTINCT[name]


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("gdtr.base", OFF_GDTR_BASE_LOW, OFF_GDTR_BASE_HIGH),
        ("idtr.base", OFF_IDTR_BASE_LOW, OFF_IDTR_BASE_HIGH),
        ("ldtr.base", OFF_LDTR_BASE_LOW, OFF_LDTR_BASE_HIGH),
    ],
)
def test_map_saves_descriptor_table_base_in_two_halves(model, name, low, high):
    """SDM 34.4.1 table 34-3: GDT/IDT/LDT base lower 32 bits at 7E8CH/7E94H/7E9CH, upper 32 bits at
    7DD0H/7DD8H/7DD4H."""
    set_distinct(model)
    smi(model)
    assert smram(model, low) == DISTINCT[name] & 0xFFFF_FFFF
    assert smram(model, high) == DISTINCT[name] >> 32


def test_smi_in_vmx_operation_saves_cr4_with_vmxe_clear(in_root):
    """SDM 34.14.1: SMI delivery in VMX operation clears CR4.VMXE before ordinary SMI delivery saves the
    state, so the CR4 image at 7E40H has VMXE = 0."""
    put(in_root, "cr4", CR4.VMXE | CR4.PAE)
    smi(in_root)
    assert smram(in_root, OFF_CR4, 8) == CR4.PAE
    assert get(in_root, "cr4") == 0


# -- 3. RSM restores the map; auto HALT restart (34.10) ---------------------------------------------


def test_rsm_restores_every_element_of_the_map(model):
    """SDM vol. 2B RSM and 34.4.1: RSM restores the processor state from the state-save map; changes the
    handler made to the registers themselves are undone."""
    set_distinct(model)
    set_distinct(model, DISTINCT_HIDDEN)
    before = dict(model.elements)
    smi(model)
    handler = {
        "cr0": CR0.NE | CR0.PE,
        "cr3": 0x5000,
        "rip": 0x8123,
        "rsp": 0x7000,
        "rflags": RFLAGS.FIXED1 | RFLAGS.CF,
        "efer": 0,
        "ds.selector": 0x7,
        "es.base": 0x2000,
        "gdtr.base": 0x9000,
        "idtr.limit": 0x10,
        "pat": 0x0606_0606_0606_0606,
        "sysenter_eip": 0x1,
    }
    set_distinct(model, handler)
    rsm(model)
    after = dict(model.elements)
    assert {k: hex(v) for k, v in after.items() if before[k] != v} == {}


def test_rsm_loads_the_fields_the_handler_edited(model):
    """SDM 34.4.1: the handler may change fields of the state-save map; RSM loads the changed values into the
    registers (RIP 7FD8H, RSP 7F7CH, CR3 7FF0H, DS selector 7FB4H)."""
    set_distinct(model)
    smi(model)
    write_smram(model, OFF_RIP, 0x0000_1234_0000_ABCD, 8)
    write_smram(model, OFF_RSP, 0x0000_4321_0000_DCB0, 8)
    write_smram(model, OFF_CR3, 0x0004_5000, 8)
    write_smram(model, OFF_SELECTOR["ds"], 0x0053)
    rsm(model)
    assert get(model, "rip") == 0x0000_1234_0000_ABCD
    assert get(model, "rsp") == 0x0000_4321_0000_DCB0
    assert get(model, "cr3") == 0x0004_5000
    assert get(model, "ds.selector") == 0x0053


def test_smi_outside_hlt_writes_auto_halt_restart_0(model):
    """SDM 34.10: the auto HALT restart field (7F02H, bit 0) is 0 when the SMI did not interrupt the HLT
    state."""
    write_smram(model, OFF_AUTO_HALT, 0xFFFF_FFFF)
    smi(model)
    assert smram(model, OFF_AUTO_HALT) >> 16 & 1 == 0


def test_smi_in_hlt_state_sets_auto_halt_restart_and_rsm_halts_again(model):
    """SDM 34.10: an SMI in the HLT state writes 1 to bit 0 of the auto HALT restart field (7F02H); RSM with
    that bit 1 returns the processor to the HLT state."""
    expect(model.execute(Op.HLT), Status.OK)
    assert get(model, "activity") == 1
    smi(model)
    assert get(model, "activity") == 0
    assert smram(model, OFF_AUTO_HALT) == 1 << 16
    rsm(model)
    assert get(model, "activity") == 1
    assert get(model, "smm") == 0


def test_rsm_with_auto_halt_restart_cleared_does_not_halt(model):
    """SDM 34.10: if the handler clears bit 0 of the auto HALT restart field, RSM returns to the instruction
    after the HLT (the processor is active)."""
    expect(model.execute(Op.HLT), Status.OK)
    rip = get(model, "rip")
    smi(model)
    write_smram(model, OFF_AUTO_HALT, 0)
    rsm(model)
    assert get(model, "activity") == 0
    assert get(model, "rip") == rip


# -- 4. SMBASE relocation (34.11) -------------------------------------------------------------------


def test_smbase_relocation_takes_effect_at_the_next_smi(model):
    """SDM 34.11: a new value written to the SMBASE field (7EF8H) is loaded into SMBASE by RSM; the next SMI
    saves its map at the new SMBASE and enters with CS.base = the new SMBASE, CS.selector = SMBASE >> 4."""
    smi(model)
    write_smram(model, OFF_SMBASE, NEW_SMBASE)
    rsm(model)
    assert get(model, "smbase") == NEW_SMBASE
    put(model, "rip", 0x4444)
    smi(model)
    assert get(model, "cs.base") == NEW_SMBASE
    assert get(model, "cs.selector") == NEW_SMBASE >> 4
    assert get(model, "rip") == 0x8000
    assert smram(model, OFF_SMBASE, smbase=NEW_SMBASE) == NEW_SMBASE
    assert smram(model, OFF_REVISION, smbase=NEW_SMBASE) == 0x2_0064
    assert smram(model, OFF_RIP, 8, smbase=NEW_SMBASE) == 0x4444
    assert smram(model, OFF_RIP, 8) != 0x4444  # the old map is not written again


# -- 5. RSM outside SMM; shutdown on an invalid saved state (vol. 2B RSM, 34.14.2) ------------------


def test_rsm_outside_smm_is_ud(model):
    """SDM vol. 2B RSM: outside SMM, RSM raises #UD (vector 6) and changes nothing."""
    outcome = expect_fault(model.execute(Op.RSM), Vector.UD)
    assert outcome.vector == 6
    assert outcome.changes == ()


def test_rsm_in_vmx_root_outside_smm_is_ud(in_root):
    """SDM vol. 2B RSM: in VMX root operation outside SMM, RSM raises #UD (vector 6)."""
    expect_fault(in_root.execute(Op.RSM), Vector.UD)
    assert in_root.in_vmx_operation


@pytest.mark.parametrize(
    ("offset", "size", "image"),
    [
        pytest.param(OFF_CR4, 4, CR4.VMXE, id="cr4-vmxe"),
        pytest.param(OFF_CR4, 4, 1 << 15, id="cr4-reserved-bit-15"),
        pytest.param(OFF_CR0 + 4, 4, 1, id="cr0-bit-32"),
        pytest.param(OFF_CR0, 4, CR0.PG | CR0.ET, id="cr0-pg-without-pe"),
        pytest.param(OFF_CR0, 4, CR0.NW | CR0.ET | CR0.PE, id="cr0-nw-without-cd"),
    ],
)
def test_rsm_shuts_down_on_an_invalid_saved_state(model, offset, size, image):
    """SDM vol. 2B RSM: a reserved CR4 bit, CR0 PG = 1 with PE = 0 or NW = 1 with CD = 0 (and CR0's reserved
    bits 63:32) in the map make RSM shut the processor down; 34.14.2: so does CR4.VMXE = 1 in the CR4 image.
    Every later operation answers SHUTDOWN (REPLAY.md: abort 0 for RSM)."""
    smi(model)
    write_smram(model, offset, image, size)
    outcome = model.execute(Op.RSM)
    assert outcome.status == Status.SHUTDOWN
    assert outcome.abort == 0
    assert model.shutdown == 0
    for later in (model.get("cr0"), model.execute(Op.RSM), model.execute(Op.SMI), model.rdmsr(msrs.IA32_VMX_BASIC)):
        assert later.status == Status.SHUTDOWN
        assert later.abort == 0


# -- 6. SMI blocking and the one pending SMI (34.3.1, REPLAY.md "SMM") ------------------------------


def test_smi_in_smm_is_held_pending_and_changes_nothing(model):
    """SDM 34.3.1: SMIs are blocked in SMM; REPLAY.md "SMM": the SMI answers ok with pending and the state and
    the map stay as they were."""
    put(model, "rip", 0x1111)
    smi(model)
    put(model, "rsp", 0x2222)
    elements = dict(model.elements)
    memory = model.memory.words()
    outcome = smi(model)
    assert outcome.pending is True
    assert outcome.changes == ()
    assert dict(model.elements) == elements
    assert model.memory.words() == memory
    assert smram(model, OFF_RIP, 8) == 0x1111


def test_pending_smi_is_delivered_at_once_after_rsm(model):
    """SDM 34.3.1 and REPLAY.md "SMM": one pending SMI is kept however many arrive in SMM; it is delivered as
    soon as RSM completes (the next operation sees SMM, the map written again with the restored state); the
    second RSM leaves SMM."""
    put(model, "rip", 0x1111)
    smi(model)
    assert smi(model).pending
    assert smi(model).pending
    put(model, "rip", 0x8888)
    write_smram(model, OFF_RIP, 0x5555, 8)
    outcome = rsm(model)
    assert not outcome.pending
    assert get(model, "smm") == 1
    assert get(model, "rip") == 0x8000
    assert smram(model, OFF_RIP, 8) == 0x5555  # saved by the second delivery: the state RSM restored
    rsm(model)
    assert get(model, "smm") == 0
    assert get(model, "rip") == 0x5555
    expect_fault(model.execute(Op.RSM), Vector.UD)  # no third SMI was kept


def test_pending_smi_is_delivered_at_the_relocated_smbase(model):
    """SDM 34.11 and REPLAY.md "SMM": the SMI pending at RSM is delivered with the SMBASE that RSM loaded from
    the map: its map is written at the new SMBASE and CS.base is the new SMBASE."""
    put(model, "rip", 0x1111)
    smi(model)
    assert smi(model).pending
    write_smram(model, OFF_SMBASE, NEW_SMBASE)
    rsm(model)
    assert get(model, "smm") == 1
    assert get(model, "smbase") == NEW_SMBASE
    assert get(model, "cs.base") == NEW_SMBASE
    assert smram(model, OFF_SMBASE, smbase=NEW_SMBASE) == NEW_SMBASE
    assert smram(model, OFF_RIP, 8, smbase=NEW_SMBASE) == 0x1111
    rsm(model)
    assert get(model, "smm") == 0
    assert get(model, "rip") == 0x1111


# -- 7. The default treatment with VMX (34.14.1, 34.14.2) -------------------------------------------


def test_smi_in_vmx_root_leaves_vmx_operation(with_current):
    """SDM 34.14.1: SMI delivery leaves VMX operation and clears CR4.VMXE, so VMX instructions (VMPTRST, VMXON)
    raise #UD in SMM (SDM 30.3: #UD if CR4.VMXE = 0 / outside VMX operation)."""
    smi(with_current)
    assert not with_current.in_vmx_operation
    assert get(with_current, "cr4") & CR4.VMXE == 0
    expect_fault(with_current.vmptrst(), Vector.UD)
    expect_fault(with_current.vmxon(0x1000), Vector.UD)


def test_rsm_returns_to_vmx_root_with_the_same_current_vmcs(with_current):
    """SDM 34.14.2: RSM re-enters VMX root operation, restores CR4.VMXE = 1 and the current-VMCS pointer (VMPTRST
    stores it)."""
    smi(with_current)
    rsm(with_current)
    assert with_current.in_vmx_operation
    assert not with_current.non_root
    assert get(with_current, "cr4") & CR4.VMXE
    assert expect(with_current.vmptrst(), Status.SUCCEED).value == VMCS_A


def test_rsm_to_vmx_sets_the_fixed_cr0_bits(with_current):
    """SDM 34.14.2: RSM back to VMX operation sets to their fixed values the CR0 and CR4 bits VMX operation fixes
    (23.8; IA32_VMX_CR0_FIXED0 = 80000021H: PE, NE, PG), even when the handler cleared them in the images."""
    smi(with_current)
    cr0 = smram(with_current, OFF_CR0, 8)
    assert cr0 & 0x8000_0021 == 0x8000_0021
    write_smram(with_current, OFF_CR0, cr0 & ~(CR0.PE | CR0.NE | CR0.PG), 8)
    rsm(with_current)
    assert get(with_current, "cr0") & 0x8000_0021 == 0x8000_0021
    assert get(with_current, "cr4") & CR4.VMXE


def test_smi_outside_vmx_operation_keeps_cr4_vmxe_across_rsm(model):
    """SDM 34.14.1/34.14.2: the SMI saves CR4.VMXE inside the processor and clears it before the save (image
    VMXE = 0); RSM restores it from there, without entering VMX operation when the SMI found none."""
    enable_vmx(model)
    smi(model)
    assert smram(model, OFF_CR4, 8) & CR4.VMXE == 0
    rsm(model)
    assert get(model, "cr4") & CR4.VMXE
    assert not model.in_vmx_operation


def test_smi_in_vmx_non_root_returns_to_non_root(launchable):
    """SDM 34.14.1/34.14.2: an SMI in VMX non-root operation leaves VMX operation; RSM returns to non-root
    operation with the guest's state, where CPUID causes a VM exit (reason 10, SDM 25.1.2)."""
    launch(launchable)
    rip = get(launchable, "rip")
    smi(launchable)
    assert not launchable.non_root
    assert not launchable.in_vmx_operation
    rsm(launchable)
    assert launchable.non_root
    assert get(launchable, "rip") == rip
    exited = expect(launchable.execute(Op.CPUID), Status.EXITED)
    assert exited.reason == ExitReason.CPUID == 10


def test_rsm_to_vmx_restores_ss_dpl_from_inside_the_processor(with_current):
    """SDM 34.14.1/34.14.2: SS.DPL is VMX-critical state: RSM back to VMX operation restores the value the SMI
    saved inside the processor, not an SS.AR DPL the handler wrote in the map."""
    ar = get(with_current, "ss.ar")
    assert dpl(ar) == 0
    smi(with_current)
    write_smram(with_current, hidden_offset("ss.ar"), ar | 3 << AR.DPL_SHIFT)
    rsm(with_current)
    assert dpl(get(with_current, "ss.ar")) == 0


def test_rsm_outside_vmx_takes_ss_dpl_from_the_map(model):
    """SDM vol. 2B RSM (no VMX-critical state without VMX operation, 34.14.2): the SS access rights are
    restored from the map, so the handler's DPL edit takes effect."""
    ar = get(model, "ss.ar")
    smi(model)
    write_smram(model, hidden_offset("ss.ar"), ar | 3 << AR.DPL_SHIFT)
    rsm(model)
    assert dpl(get(model, "ss.ar")) == 3


def test_rsm_to_vmx_restores_rflags_vm_from_inside_the_processor(with_current):
    """SDM 34.14.1/34.14.2: RFLAGS.VM is VMX-critical state: an RFLAGS.VM = 1 the handler wrote at 7FE8H is
    ignored by RSM back to VMX operation (VM stays 0); the other RFLAGS bits come from the map."""
    smi(with_current)
    write_smram(with_current, OFF_RFLAGS, RFLAGS.VM | RFLAGS.IF | RFLAGS.FIXED1, 8)
    rsm(with_current)
    assert get(with_current, "rflags") == RFLAGS.IF | RFLAGS.FIXED1


def test_rsm_to_vmx_restores_sti_and_mov_ss_blocking_from_inside_the_processor(with_current):
    """SDM 34.14.1/34.14.2: blocking by STI and by MOV SS is VMX-critical state: RSM back to VMX operation
    restores what the SMI found (STI blocking), not the handler's edit (MOV-SS blocking only)."""
    put(with_current, "interruptibility", INTERRUPTIBILITY.BLOCKING_BY_STI)
    smi(with_current)
    write_smram(with_current, hidden_offset("interruptibility"), INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
    rsm(with_current)
    assert get(with_current, "interruptibility") == INTERRUPTIBILITY.BLOCKING_BY_STI


def test_rsm_to_vmx_root_sets_cs_and_ss_rpl_to_ss_dpl(with_current):
    """SDM 34.14.2: with RFLAGS.VM = 0, RSM back to VMX root operation sets CS.RPL and SS.RPL to SS.DPL (0
    here), whatever RPL the selectors at 7FACH and 7FB0H hold."""
    put(with_current, "cs.selector", 0x10)
    put(with_current, "ss.selector", 0x18)
    smi(with_current)
    write_smram(with_current, OFF_SELECTOR["cs"], 0x13)
    write_smram(with_current, OFF_SELECTOR["ss"], 0x1B)
    rsm(with_current)
    assert get(with_current, "cs.selector") == 0x10
    assert get(with_current, "ss.selector") == 0x18


def test_rsm_to_non_root_restores_virtual_nmi_blocking_from_inside_the_processor(launchable):
    """SDM 34.14.1/34.14.2: in VMX non-root operation with "virtual NMIs", virtual-NMI blocking is VMX-critical
    state: RSM restores the value the SMI found (0), not a bit 3 the handler set in the map."""
    vmwrite_all(
        launchable,
        {
            PIN.vmcs_field: PIN.true_default1 | PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS"),
            "GUEST_INTERRUPTIBILITY_INFO": 0,
        },
    )
    launch(launchable)
    smi(launchable)
    offset = hidden_offset("interruptibility")
    write_smram(launchable, offset, smram(launchable, offset) | INTERRUPTIBILITY.BLOCKING_BY_NMI)
    rsm(launchable)
    assert launchable.non_root
    assert get(launchable, "interruptibility") & INTERRUPTIBILITY.BLOCKING_BY_NMI == 0


def test_pending_smi_after_rsm_to_vmx_leaves_vmx_again(with_current):
    """SDM 34.14.1/34.14.2 and REPLAY.md "SMM": an SMI held in SMM is delivered right after RSM re-entered VMX
    root operation, so it leaves VMX operation again (CR4 image VMXE = 0); the next RSM returns to VMX root
    with the same current VMCS."""
    smi(with_current)
    assert smi(with_current).pending
    rsm(with_current)
    assert get(with_current, "smm") == 1
    assert not with_current.in_vmx_operation
    assert smram(with_current, OFF_CR4, 8) & CR4.VMXE == 0
    rsm(with_current)
    assert with_current.in_vmx_operation
    assert expect(with_current.vmptrst(), Status.SUCCEED).value == VMCS_A


# -- 8. CR4.VMXE in SMM (34.14.3) -------------------------------------------------------------------


def test_setting_cr4_vmxe_in_smm_is_gp(in_root):
    """SDM 34.14.3: under the default treatment CR4.VMXE is reserved in SMM: a MOV to CR4 setting it raises
    #GP (vector 13) and changes nothing."""
    smi(in_root)
    outcome = expect_fault(in_root.set("cr4", CR4.VMXE), Vector.GP)
    assert outcome.vector == 13
    assert outcome.changes == ()
    assert get(in_root, "cr4") == 0
    put(in_root, "cr4", CR4.PAE)  # the other bits stay writable
    assert get(in_root, "cr4") == CR4.PAE


# -- 9. IA32_SMBASE and IA32_SMM_MONITOR_CTL (A.6, 34.15.5) ------------------------------------------


def test_rdmsr_smbase_faults_outside_smm_and_reads_smbase_in_smm(model):
    """SDM A.6 (IA32_VMX_MISC bit 15): RDMSR of IA32_SMBASE (9EH) reads SMBASE in SMM; outside SMM it raises
    #GP(0)."""
    expect_fault(model.rdmsr(0x9E), Vector.GP)
    smi(model)
    assert expect(model.rdmsr(0x9E), Status.OK).value == SMBASE_RESET
    write_smram(model, OFF_SMBASE, NEW_SMBASE)
    rsm(model)
    expect_fault(model.rdmsr(0x9E), Vector.GP)
    smi(model)
    assert expect(model.rdmsr(0x9E), Status.OK).value == NEW_SMBASE


def test_wrmsr_smbase_always_faults(model):
    """SDM A.6 / vol. 4 (IA32_SMBASE is read-only): WRMSR to 9EH raises #GP(0) outside and inside SMM and SMBASE
    keeps its value."""
    expect_fault(model.wrmsr(0x9E, NEW_SMBASE), Vector.GP)
    smi(model)
    expect_fault(model.wrmsr(0x9E, NEW_SMBASE), Vector.GP)
    assert get(model, "smbase") == SMBASE_RESET


def test_smm_monitor_ctl_is_writable_only_in_smm(model):
    """SDM 34.15.5: WRMSR to IA32_SMM_MONITOR_CTL (9BH) raises #GP outside SMM; in SMM a value with only the
    valid bit (0) and the MSEG base (bits 31:12) is written and reads back, also after RSM."""
    value = 1 | 0x1234_5000
    expect_fault(model.wrmsr(0x9B, value), Vector.GP)
    assert model.rdmsr(0x9B).value == 0
    smi(model)
    expect(model.wrmsr(0x9B, value), Status.OK)
    assert expect(model.rdmsr(0x9B), Status.OK).value == value
    rsm(model)
    assert expect(model.rdmsr(0x9B), Status.OK).value == value


@pytest.mark.parametrize("bit", [1, 2, 3, 11, 32, 63])
def test_smm_monitor_ctl_reserved_bits_fault_in_smm(model, bit):
    """SDM 34.15.5: in SMM, WRMSR to IA32_SMM_MONITOR_CTL with a reserved bit raises #GP (bit 1, bits 11:3,
    63:32; bit 2 because IA32_VMX_MISC bit 28 is 0) and the MSR keeps its value."""
    assert msrs.VMX_MISC.smm_monitor_ctl_bit2 == 0
    smi(model)
    expect(model.wrmsr(0x9B, 0x0010_0000), Status.OK)
    expect_fault(model.wrmsr(0x9B, 1 | 1 << bit), Vector.GP)
    assert model.rdmsr(0x9B).value == 0x0010_0000


# -- 10. RSM unblocks SMIs -------------------------------------------------------------------------


def test_rsm_clears_smi_blocking(model):
    """SDM 34.3.1 and vol. 2B RSM: RSM ends SMI blocking: the restored interruptibility has bit 2 clear even if
    the image has it set, and the next SMI is delivered, not held."""
    smi(model)
    offset = hidden_offset("interruptibility")
    assert smram(model, offset) == 0
    write_smram(model, offset, INTERRUPTIBILITY.BLOCKING_BY_SMI)
    rsm(model)
    assert get(model, "interruptibility") == 0
    assert not smi(model).pending
    assert get(model, "smm") == 1
