"""RFLAGS discipline: every VMX outcome writes exactly the six arithmetic flags (SDM 30.2).

Like kvm-unit-tests (vmentry_movss_shadow_test), each test pre-sets every
arithmetic flag and the other writable flags, then checks the outcome left
exactly the right ones.
"""

from __future__ import annotations

import pytest
from model_setup import SS_AR_CPL3, VMXON_REGION, expect

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.ops import Status, flags_for
from vmxu.rtl.arch.state import RFLAGS

TF, IF, DF = 1 << 8, 1 << 9, 1 << 10
OTHER_FLAGS = TF | IF | DF | RFLAGS.FIXED1
PRESET = RFLAGS.ARITHMETIC | OTHER_FLAGS


def preset(model):
    expect(model.set("rflags", PRESET), Status.OK)


def rflags(model):
    return model.get("rflags").value


SCENARIOS = {
    "succeed-vmptrst": ("with_current", lambda m: m.vmptrst(), Status.SUCCEED),
    "succeed-vmwrite": ("with_current", lambda m: m.vmwrite("GUEST_RIP", 1), Status.SUCCEED),
    "succeed-vmxoff": ("with_current", lambda m: m.vmxoff(), Status.SUCCEED),
    "fail-invalid-vmread": ("in_root", lambda m: m.vmread("GUEST_RIP"), Status.FAIL_INVALID),
    "fail-invalid-vmcall": ("in_root", lambda m: m.vmcall(), Status.FAIL_INVALID),
    "fail-valid-vmptrld": ("with_current", lambda m: m.vmptrld(VMXON_REGION), Status.FAIL_VALID),
    "fail-valid-vmlaunch": ("with_current", lambda m: m.vmlaunch(), Status.FAIL_VALID),
    "fail-valid-vmxon": ("with_current", lambda m: m.vmxon(VMXON_REGION), Status.FAIL_VALID),
}


@pytest.mark.parametrize(("fixture", "operation", "status"), SCENARIOS.values(), ids=SCENARIOS.keys())
def test_vmx_outcome_writes_exactly_its_arithmetic_flags(request, fixture, operation, status):
    """SDM 30.2: VMsucceed clears CF, PF, AF, ZF, SF, OF; VMfailInvalid sets only CF; VMfailValid only ZF."""
    model = request.getfixturevalue(fixture)
    preset(model)
    expect(operation(model), status)
    assert rflags(model) & RFLAGS.ARITHMETIC == flags_for(status)
    assert rflags(model) & ~RFLAGS.ARITHMETIC == OTHER_FLAGS


def test_vmfail_invalid_sets_cf_only(in_root):
    """SDM 30.2 VMfailInvalid: CF = 1; PF, AF, ZF, SF, OF = 0."""
    preset(in_root)
    expect(in_root.vmread("GUEST_RIP"), Status.FAIL_INVALID)
    assert rflags(in_root) & RFLAGS.ARITHMETIC == RFLAGS.CF


def test_vmfail_valid_sets_zf_only(with_current):
    """SDM 30.2 VMfailValid: ZF = 1; CF, PF, AF, SF, OF = 0."""
    preset(with_current)
    expect(with_current.vmclear(VMXON_REGION), Status.FAIL_VALID)
    assert rflags(with_current) & RFLAGS.ARITHMETIC == RFLAGS.ZF


def test_vmsucceed_clears_all_six(with_current):
    """SDM 30.2 VMsucceed: CF, PF, AF, ZF, SF, OF = 0."""
    preset(with_current)
    expect(with_current.vmptrst(), Status.SUCCEED)
    assert rflags(with_current) & RFLAGS.ARITHMETIC == 0


def test_fault_leaves_rflags_unchanged(with_current):
    """SDM 30.3 / kvm-unit-tests vmread_flags_touch: an instruction that faults leaves RFLAGS unmodified."""
    preset(with_current)
    expect(with_current.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect(with_current.vmptrst(), Status.FAULT)
    assert rflags(with_current) == PRESET


def test_platform_operations_leave_rflags_unchanged(model):
    """docs/semantics.md: OK (RDMSR, WRMSR, GET, SET of other elements) leaves RFLAGS unchanged."""
    preset(model)
    expect(model.rdmsr(msrs.IA32_VMX_BASIC), Status.OK)
    expect(model.wrmsr(msrs.IA32_FEATURE_CONTROL, 5), Status.OK)
    expect(model.get("cr0"), Status.OK)
    assert rflags(model) == PRESET


def test_entry_failure_writes_no_flags_and_loads_host_rflags(launchable):
    """SDM 26.8, 27.5.3: a VM-entry failure is not a VMfail: it writes no flags; the host's RFLAGS is 0x2."""
    preset(launchable)
    launchable.vmwrite("GUEST_RFLAGS", 0)
    expect(launchable.vmlaunch(), Status.ENTRY_FAILED)
    assert rflags(launchable) == RFLAGS.FIXED1
