"""GET / SET of machine-state elements (docs/semantics.md "GET / SET")."""

from __future__ import annotations

import pytest
from model_setup import CR0_PROTECTED_PAGING, SS_AR_CPL3, expect

from vmxu.rtl.arch.ops import Op, Status, Vector
from vmxu.rtl.arch.state import CR0, CR4, EFER, ELEMENT_BY_NAME, ELEMENTS, RFLAGS, element_id

NON_CANONICAL = 0x0000_8000_0000_0000


def expect_gp(outcome):
    expect(outcome, Status.FAULT)
    assert outcome.vector == Vector.GP


@pytest.mark.parametrize("element", ELEMENTS, ids=lambda e: e.name)
def test_get_returns_power_up_value(model, element):
    """SDM 3A table 9-1: state after power-up (RESET)."""
    outcome = expect(model.get(element.name), Status.OK)
    assert outcome.value == element.reset


def test_get_and_set_address_elements_by_row_number(model):
    """docs/semantics.md port table: the index of GET/SET is the element's row in rtl/arch/state.py."""
    number = element_id("rsp")
    assert ELEMENTS[number].name == "rsp"
    expect(model.execute(Op.SET, index=number, value=0x1234), Status.OK)
    assert model.execute(Op.GET, index=number).value == 0x1234


UNCONSTRAINED = [
    e for e in ELEMENTS if e.settable and not (e.reserved or e.force1 or e.force0 or e.memory_types or e.cr0_rules)
]


@pytest.mark.parametrize("element", UNCONSTRAINED, ids=lambda e: e.name)
def test_set_stores_any_value_of_an_unconstrained_element(model, element):
    """docs/semantics.md SET: a value no rule refuses is stored as written."""
    value = 0x0000_7FFF_DEAD_BEEF & element.mask
    expect(model.set(element.name, value), Status.OK)
    assert model.get(element.name).value == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("cr0", 1 << 32),
        ("cr3", 1 << 32),
        ("cr4", 1 << 12),
        ("dr7", 1 << 32),
        ("rflags", 1 << 3),
        ("rflags", 1 << 22),
        ("efer", 1 << 1),
        ("debugctl", 1 << 2),
        ("perf_global_ctrl", 1 << 2),
    ],
)
def test_set_refuses_reserved_bits(model, name, value):
    """SDM 3A 2.5 / vol. 4: setting a reserved bit of a control register or MSR raises #GP(0)."""
    before = model.get(name).value
    expect_gp(model.set(name, value))
    assert model.get(name).value == before


@pytest.mark.parametrize("name", ["fs.base", "gs.base", "sysenter_esp", "sysenter_eip"])
def test_set_refuses_non_canonical_base(model, name):
    """SDM vol. 4 / 2B WRMSR: IA32_FS_BASE, IA32_GS_BASE, IA32_SYSENTER_ESP/EIP must be canonical."""
    expect_gp(model.set(name, NON_CANONICAL))
    expect(model.set(name, 0xFFFF_8000_0000_0000), Status.OK)


def test_set_accepts_non_canonical_base_of_other_segments(model):
    """Only the MSR-backed bases are canonical-checked; es.base has no WRMSR."""
    expect(model.set("es.base", NON_CANONICAL), Status.OK)


def test_set_refuses_invalid_pat_memory_type(model):
    """SDM 3A 11.12.2: a PAT entry of 2, 3 or 8-255 raises #GP(0)."""
    expect_gp(model.set("pat", 0x0007_0406_0007_0402))
    expect_gp(model.set("pat", 0x0800_0000_0000_0000))
    expect(model.set("pat", 0x0706_0504_0100_0706), Status.OK)


def test_set_cr0_refuses_paging_without_protection(model):
    """SDM 3A 4.1.3 / MOV CR0: PG = 1 with PE = 0 raises #GP(0)."""
    expect_gp(model.set("cr0", CR0.PG))


def test_set_cr0_refuses_not_write_through_without_cache_disable(model):
    """SDM 3A 2.5 / MOV CR0: NW = 1 with CD = 0 raises #GP(0)."""
    expect_gp(model.set("cr0", CR0.NW | CR0.PE))
    expect(model.set("cr0", CR0.NW | CR0.CD | CR0.PE), Status.OK)


def test_set_cr0_outside_vmx_fixed_bits_is_allowed_outside_vmx_operation(model):
    """SDM 23.8: the fixed bits bind only in VMX operation."""
    expect(model.set("cr0", CR0.PE), Status.OK)
    expect(model.set("cr4", 0), Status.OK)


def test_set_cr0_outside_fixed_bits_faults_in_vmx_operation(in_root):
    """SDM 23.8: in VMX operation, clearing a bit CR0_FIXED0 requires raises #GP(0)."""
    expect_gp(in_root.set("cr0", CR0_PROTECTED_PAGING & ~CR0.NE))
    assert in_root.get("cr0").value == CR0_PROTECTED_PAGING


def test_set_cr4_vmxe_cannot_be_cleared_in_vmx_operation(in_root):
    """SDM 23.8: CR4.VMXE is fixed to 1 in VMX operation (IA32_VMX_CR4_FIXED0)."""
    expect_gp(in_root.set("cr4", 0))
    expect(in_root.set("cr4", CR4.VMXE | CR4.PAE), Status.OK)


def test_set_dr7_forces_bit_10_and_clears_bits_11_12_14_15(model):
    """SDM 3A 17.2.4: DR7 bit 10 reads 1; bits 11, 12, 14 and 15 read 0."""
    expect(model.set("dr7", 0), Status.OK)
    assert model.get("dr7").value == 0x400
    expect(model.set("dr7", 0xFFFF_FFFF), Status.OK)
    assert model.get("dr7").value == 0xFFFF_27FF


def test_set_rflags_forces_bit_1(model):
    """SDM 1 3.4.3: RFLAGS bit 1 is reserved as 1."""
    expect(model.set("rflags", 0), Status.OK)
    assert model.get("rflags").value == RFLAGS.FIXED1


def test_set_has_no_cpl_check(model):
    """docs/semantics.md choice 13: GET/SET are the platform's view, not MOV instructions."""
    expect(model.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect(model.set("cr0", CR0_PROTECTED_PAGING), Status.OK)
    assert model.get("cr0").value == CR0_PROTECTED_PAGING


def test_set_fault_changes_no_flags(model):
    """docs/semantics.md: a FAULT leaves RFLAGS and everything else unchanged."""
    expect(model.set("rflags", RFLAGS.ARITHMETIC), Status.OK)
    expect_gp(model.set("efer", 1 << 1))
    assert model.get("rflags").value == RFLAGS.ARITHMETIC | RFLAGS.FIXED1


def test_efer_lma_is_written_directly(model):
    """docs/semantics.md choice 3: no paging, so EFER.LMA is written by SET."""
    expect(model.set("efer", EFER.LMA | EFER.LME), Status.OK)
    assert model.get("efer").value == EFER.LMA | EFER.LME


def test_set_value_wider_than_the_element_is_a_caller_error(model):
    """docs/semantics.md: a value wider than the element is malformed (the replay parser rejects it)."""
    assert ELEMENT_BY_NAME["cs.selector"].bits == 16
    with pytest.raises(ValueError, match="16 bits"):
        model.set("cs.selector", 0x1_0000)


def test_unknown_element_number_is_a_caller_error(model):
    """The port's element numbers are the rows of state.ELEMENTS."""
    with pytest.raises(ValueError, match="no machine-state element"):
        model.execute(Op.GET, index=len(ELEMENTS))
