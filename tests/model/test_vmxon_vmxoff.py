"""VMXON, VMXOFF and the checks every VMX instruction starts with (SDM 30.3)."""

from __future__ import annotations

import pytest
from model_setup import (
    CR0_PROTECTED_PAGING,
    OUTSIDE_RAM,
    SS_AR_CPL3,
    VMCS_A,
    VMXON_REGION,
    enable_vmx,
    expect,
    load_new_vmcs,
    write_revision,
)

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.ops import Status, Vector
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER, RFLAGS


@pytest.fixture
def ready(model):
    """Everything VMXON needs: FEATURE_CONTROL locked and enabled, CR0/CR4 fixed bits, a VMXON region."""
    enable_vmx(model)
    write_revision(model, VMXON_REGION)
    return model


def expect_fault(outcome, vector):
    expect(outcome, Status.FAULT)
    assert outcome.vector == vector, outcome
    return outcome


# -- VMXON outside VMX operation --------------------------------------------------------


def test_vmxon_enters_vmx_root_operation_with_no_current_vmcs(ready):
    """SDM 30.3 VMXON: a valid region enters VMX root operation, current-VMCS pointer all ones, VMsucceed."""
    expect(ready.vmxon(VMXON_REGION), Status.SUCCEED)
    assert ready.in_vmx_operation
    assert ready.vmxon_pointer == VMXON_REGION
    assert ready.current_vmcs_pointer is None
    assert ready.vmptrst().value == 0xFFFF_FFFF_FFFF_FFFF


def test_vmxon_ud_when_cr0_pe_clear(ready):
    """SDM 30.3 VMXON: #UD if CR0.PE = 0."""
    expect(ready.set("cr0", CR0.NE), Status.OK)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.UD)
    assert not ready.in_vmx_operation


def test_vmxon_ud_when_cr4_vmxe_clear(ready):
    """SDM 30.3 VMXON: #UD if CR4.VMXE = 0."""
    expect(ready.set("cr4", 0), Status.OK)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.UD)


def test_vmxon_ud_in_virtual_8086_mode(ready):
    """SDM 30.3 VMXON: #UD if RFLAGS.VM = 1."""
    expect(ready.set("rflags", RFLAGS.VM), Status.OK)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.UD)


def test_vmxon_ud_in_compatibility_mode(ready):
    """SDM 30.3 VMXON: #UD in compatibility mode (IA32_EFER.LMA = 1, CS.L = 0)."""
    expect(ready.set("efer", EFER.LMA | EFER.LME), Status.OK)
    assert not ready.get("cs.ar").value & AR.L
    expect_fault(ready.vmxon(VMXON_REGION), Vector.UD)


def test_vmxon_allowed_in_64bit_mode(ready):
    """SDM 30.3 VMXON: 64-bit mode (LMA = 1, CS.L = 1) is not compatibility mode."""
    expect(ready.set("efer", EFER.LMA | EFER.LME), Status.OK)
    expect(ready.set("cs.ar", 0x9B | AR.L), Status.OK)
    expect(ready.vmxon(VMXON_REGION), Status.SUCCEED)


def test_vmxon_gp_at_cpl_above_0(ready):
    """SDM 30.3 VMXON: #GP(0) if CPL > 0."""
    expect(ready.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.GP)


def test_vmxon_ud_checks_come_before_cpl(ready):
    """SDM 30.3 VMXON: the #UD conditions are checked before CPL."""
    expect(ready.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect(ready.set("cr4", 0), Status.OK)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.UD)


@pytest.mark.parametrize("cleared", [CR0.NE, CR0.PG], ids=["NE", "PG"])
def test_vmxon_gp_when_cr0_violates_fixed0(ready, cleared):
    """SDM 30.3 VMXON / 23.8: #GP(0) if CR0 has a 0 where IA32_VMX_CR0_FIXED0 has a 1."""
    expect(ready.set("cr0", CR0_PROTECTED_PAGING & ~cleared), Status.OK)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.GP)


def test_vmxon_gp_when_cr4_violates_fixed1(ready):
    """SDM 30.3 VMXON / 23.8: #GP(0) if CR4 has a 1 where IA32_VMX_CR4_FIXED1 has a 0.

    SET refuses such a CR4 (those bits are reserved), so the value is stored
    behind the rules to reach the VMXON check itself.
    """
    bit = 1 << 12
    assert not msrs.CR4_FIXED1 & bit
    ready.state.store("cr4", CR4.VMXE | bit)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.GP)


def test_vmxon_gp_when_cr0_bits_63_32_set(ready):
    """docs/semantics.md VMXON: the full 64-bit CR0 must satisfy FIXED1 (whose bits 63:32 are 0)."""
    ready.state.store("cr0", CR0_PROTECTED_PAGING | 1 << 32)
    expect_fault(ready.vmxon(VMXON_REGION), Vector.GP)


@pytest.mark.parametrize(
    "feature_control",
    [
        0,
        msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX,
        msrs.FEATURE_CONTROL_LOCK,
        msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_IN_SMX,
    ],
    ids=["reset", "enabled-unlocked", "locked-disabled", "locked-smx-only"],
)
def test_vmxon_gp_unless_feature_control_locked_and_enabled(model, feature_control):
    """SDM 30.3 VMXON / 23.7: #GP(0) if IA32_FEATURE_CONTROL bit 0 (lock) or bit 2 (VMX outside SMX) is 0."""
    expect(model.wrmsr(msrs.IA32_FEATURE_CONTROL, feature_control), Status.OK)
    expect(model.set("cr0", CR0_PROTECTED_PAGING), Status.OK)
    expect(model.set("cr4", CR4.VMXE), Status.OK)
    write_revision(model, VMXON_REGION)
    expect_fault(model.vmxon(VMXON_REGION), Vector.GP)


def test_vmxon_gp_comes_before_the_address_checks(model):
    """SDM 30.3 VMXON: the #GP conditions are checked before the VMXON pointer."""
    expect(model.set("cr0", CR0_PROTECTED_PAGING), Status.OK)
    expect(model.set("cr4", CR4.VMXE), Status.OK)
    expect_fault(model.vmxon(VMXON_REGION + 1), Vector.GP)


@pytest.mark.parametrize(
    "addr",
    [VMXON_REGION + 0x10, VMXON_REGION + 1, 1 << 32, 1 << 63 | VMXON_REGION],
    ids=["unaligned-16", "unaligned-1", "bit-32", "bit-63"],
)
def test_vmxon_fail_invalid_for_bad_address(ready, addr):
    """SDM 30.3 VMXON: VMfailInvalid if the pointer is not 4-KiB aligned or sets bits beyond MAXPHYADDR (32)."""
    expect(ready.vmxon(addr), Status.FAIL_INVALID)
    assert not ready.in_vmx_operation


def test_vmxon_fail_invalid_for_wrong_revision(ready):
    """SDM 30.3 VMXON: VMfailInvalid if bits 30:0 of the region's first dword differ from the revision identifier."""
    write_revision(ready, VMXON_REGION, msrs.VMCS_REVISION_ID + 1)
    expect(ready.vmxon(VMXON_REGION), Status.FAIL_INVALID)


def test_vmxon_fail_invalid_for_shadow_indicator(ready):
    """SDM 30.3 VMXON: VMfailInvalid if bit 31 of the region's first dword is 1."""
    write_revision(ready, VMXON_REGION, msrs.VMCS_REVISION_ID | 1 << 31)
    expect(ready.vmxon(VMXON_REGION), Status.FAIL_INVALID)


def test_vmxon_fail_invalid_for_region_outside_ram(ready):
    """docs/semantics.md bus errors: a region outside RAM reads all ones, so VMXON is VMfailInvalid."""
    expect(ready.vmxon(OUTSIDE_RAM), Status.FAIL_INVALID)


# -- VMXON in VMX root operation ---------------------------------------------------


def test_vmxon_in_root_fails_invalid_without_current_vmcs(in_root):
    """SDM 30.3 VMXON: in VMX root operation, VMfail(15); without a current VMCS that is VMfailInvalid."""
    expect(in_root.vmxon(VMXON_REGION), Status.FAIL_INVALID)
    assert in_root.in_vmx_operation


def test_vmxon_in_root_fails_valid_15_with_current_vmcs(with_current):
    """SDM 30.3 VMXON: in VMX root operation with a current VMCS, VMfailValid(15)."""
    outcome = expect(with_current.vmxon(VMXON_REGION), Status.FAIL_VALID)
    assert outcome.error == VmError.VMXON_IN_ROOT
    assert with_current.vmread("VM_INSTRUCTION_ERROR").value == 15


def test_vmxon_in_root_gp_at_cpl_above_0(in_root):
    """SDM 30.3 VMXON: in VMX root operation, #GP(0) if CPL > 0."""
    expect(in_root.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect_fault(in_root.vmxon(VMXON_REGION), Vector.GP)


# -- VMXOFF -------------------------------------------------------------------------------


def test_vmxoff_leaves_vmx_operation(with_current):
    """SDM 30.3 VMXOFF: leave VMX operation, VMsucceed; VMX instructions then raise #UD."""
    expect(with_current.vmxoff(), Status.SUCCEED)
    assert not with_current.in_vmx_operation
    assert with_current.current_vmcs_pointer is None
    assert with_current.vmxon_pointer is None
    expect_fault(with_current.vmptrst(), Vector.UD)


def test_vmxoff_ud_outside_vmx_operation(model):
    """SDM 30.3 VMXOFF: #UD outside VMX operation."""
    expect_fault(model.vmxoff(), Vector.UD)


def test_vmxoff_then_vmxon_again(in_root):
    """SDM 30.3: after VMXOFF, VMXON enters VMX operation again."""
    expect(in_root.vmxoff(), Status.SUCCEED)
    expect(in_root.vmxon(VMXON_REGION), Status.SUCCEED)


def test_vmxoff_relaxes_the_cr4_fixed_bits(in_root):
    """SDM 23.8: outside VMX operation CR4.VMXE may be cleared again."""
    expect_fault(in_root.set("cr4", 0), Vector.GP)
    expect(in_root.vmxoff(), Status.SUCCEED)
    expect(in_root.set("cr4", 0), Status.OK)


def test_vmxoff_writes_back_dirty_vmcs(with_current):
    """docs/semantics.md VMXOFF: every dirty entry is written back before leaving VMX operation."""
    expect(with_current.vmwrite("GUEST_RIP", 0xABCD), Status.SUCCEED)
    expect(with_current.vmxoff(), Status.SUCCEED)
    expect(with_current.vmxon(VMXON_REGION), Status.SUCCEED)
    expect(with_current.vmptrld(VMCS_A), Status.SUCCEED)
    assert with_current.vmread("GUEST_RIP").value == 0xABCD


# -- the prefix every VMX instruction but VMXON and VMCALL shares -------------------------

PREFIXED = {
    "vmxoff": lambda m: m.vmxoff(),
    "vmptrld": lambda m: m.vmptrld(VMCS_A),
    "vmptrst": lambda m: m.vmptrst(),
    "vmclear": lambda m: m.vmclear(VMCS_A),
    "vmread": lambda m: m.vmread("GUEST_RIP"),
    "vmwrite": lambda m: m.vmwrite("GUEST_RIP", 1),
    "vmlaunch": lambda m: m.vmlaunch(),
    "vmresume": lambda m: m.vmresume(),
}


@pytest.mark.parametrize("instruction", PREFIXED)
def test_prefix_ud_outside_vmx_operation(model, instruction):
    """SDM 30.3: #UD if not in VMX operation."""
    enable_vmx(model)
    expect_fault(PREFIXED[instruction](model), Vector.UD)


@pytest.mark.parametrize("instruction", PREFIXED)
def test_prefix_ud_with_cr0_pe_clear(with_current, instruction):
    """SDM 30.3: #UD if CR0.PE = 0 (stored behind SET's rules: in VMX operation SET refuses it)."""
    with_current.state.store("cr0", CR0.NE)
    expect_fault(PREFIXED[instruction](with_current), Vector.UD)


@pytest.mark.parametrize("instruction", PREFIXED)
def test_prefix_ud_in_virtual_8086_mode(with_current, instruction):
    """SDM 30.3: #UD if RFLAGS.VM = 1."""
    expect(with_current.set("rflags", RFLAGS.VM), Status.OK)
    expect_fault(PREFIXED[instruction](with_current), Vector.UD)


@pytest.mark.parametrize("instruction", PREFIXED)
def test_prefix_ud_in_compatibility_mode(with_current, instruction):
    """SDM 30.3: #UD in compatibility mode."""
    expect(with_current.set("efer", EFER.LMA | EFER.LME), Status.OK)
    expect_fault(PREFIXED[instruction](with_current), Vector.UD)


@pytest.mark.parametrize("instruction", PREFIXED)
def test_prefix_gp_at_cpl_above_0(with_current, instruction):
    """SDM 30.3: #GP(0) if CPL > 0."""
    expect(with_current.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect_fault(PREFIXED[instruction](with_current), Vector.GP)


@pytest.mark.parametrize("instruction", PREFIXED)
def test_prefix_fault_changes_nothing(with_current, instruction):
    """docs/semantics.md: a FAULT leaves RFLAGS, memory and the VMCS unchanged."""
    expect(with_current.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect(with_current.set("rflags", RFLAGS.ARITHMETIC), Status.OK)
    memory = with_current.memory.words()
    cache = with_current.cache_entries
    expect_fault(PREFIXED[instruction](with_current), Vector.GP)
    assert with_current.get("rflags").value == RFLAGS.ARITHMETIC | RFLAGS.FIXED1
    assert with_current.memory.words() == memory
    assert with_current.cache_entries == cache
    assert with_current.current_vmcs_pointer == VMCS_A
    assert with_current.in_vmx_operation


def test_prefix_ud_comes_before_cpl(with_current):
    """SDM 30.3: #UD (compatibility mode) is checked before CPL (#GP)."""
    expect(with_current.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect(with_current.set("efer", EFER.LMA | EFER.LME), Status.OK)
    expect_fault(with_current.vmptrst(), Vector.UD)


def test_load_new_vmcs_helper_leaves_vmcs_current(in_root):
    """Sanity of the helper the other tests use: VMCLEAR + VMPTRLD make the VMCS current (SDM 24.11.3)."""
    load_new_vmcs(in_root, VMCS_A)
    assert in_root.current_vmcs_pointer == VMCS_A
