"""VMCALL in VMX root operation (SDM 30.3 VMCALL, 34.15.6): before SMM support it always ends in VMfail(1)."""

from __future__ import annotations

from model_setup import SS_AR_CPL3, expect

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.ops import Status, Vector
from vmxu.rtl.arch.state import EFER, RFLAGS


def test_vmcall_ud_outside_vmx_operation(model):
    """SDM 30.3 VMCALL: #UD outside VMX operation."""
    outcome = expect(model.vmcall(), Status.FAULT)
    assert outcome.vector == Vector.UD


def test_vmcall_ud_in_virtual_8086_mode(in_root):
    """SDM 30.3 VMCALL: #UD if RFLAGS.VM = 1."""
    expect(in_root.set("rflags", RFLAGS.VM), Status.OK)
    assert expect(in_root.vmcall(), Status.FAULT).vector == Vector.UD


def test_vmcall_ud_in_compatibility_mode(in_root):
    """SDM 30.3 VMCALL: #UD in compatibility mode."""
    expect(in_root.set("efer", EFER.LMA | EFER.LME), Status.OK)
    assert expect(in_root.vmcall(), Status.FAULT).vector == Vector.UD


def test_vmcall_gp_at_cpl_above_0(in_root):
    """SDM 30.3 VMCALL: #GP(0) if CPL > 0."""
    expect(in_root.set("ss.ar", SS_AR_CPL3), Status.OK)
    assert expect(in_root.vmcall(), Status.FAULT).vector == Vector.GP


def test_vmcall_fails_invalid_without_current_vmcs(in_root):
    """SDM 30.3 VMCALL: IA32_SMM_MONITOR_CTL.valid = 0 gives VMfail(1): VMfailInvalid with no current VMCS."""
    assert in_root.rdmsr(msrs.IA32_SMM_MONITOR_CTL).value & msrs.SMM_MONITOR_CTL_VALID == 0
    expect(in_root.vmcall(), Status.FAIL_INVALID)


def test_vmcall_fails_valid_1_with_current_vmcs(with_current):
    """SDM 30.3 VMCALL: VMfailValid(1) "VMCALL executed in VMX root operation" with a current VMCS."""
    outcome = expect(with_current.vmcall(), Status.FAIL_VALID)
    assert outcome.error == VmError.VMCALL_IN_ROOT
    assert with_current.vmread("VM_INSTRUCTION_ERROR").value == 1


def test_vmcall_fails_1_in_smm(with_current):
    """SDM 30.3 VMCALL: VMfail(1) in SMM (the hook the SMM capability uses)."""
    with_current.in_smm = True
    assert expect(with_current.vmcall(), Status.FAIL_VALID).error == VmError.VMCALL_IN_ROOT


def test_vmcall_does_not_check_cr0_pe(in_root):
    """SDM 30.3 VMCALL: unlike the other VMX instructions, VMCALL has no CR0.PE check (only VM and mode)."""
    in_root.state.store("cr0", 0)
    expect(in_root.vmcall(), Status.FAIL_INVALID)
