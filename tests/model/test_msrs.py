"""RDMSR / WRMSR (docs/semantics.md "RDMSR / WRMSR")."""

from __future__ import annotations

import pytest
from model_setup import SS_AR_CPL3, expect

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.msrs import MSRS, MsrKind
from vmxu.rtl.arch.ops import Status, Vector
from vmxu.rtl.arch.state import EFER, ELEMENT_BY_MSR, RFLAGS

CONSTANT_MSRS = [m for m in MSRS if m.kind == MsrKind.CONSTANT]
ELEMENT_MSRS = [m for m in MSRS if m.kind == MsrKind.ELEMENT]
IA32_TIME_STAMP_COUNTER = 0x10


def expect_gp(outcome):
    expect(outcome, Status.FAULT)
    assert outcome.vector == Vector.GP
    return outcome


def test_feature_control_is_zero_and_unlocked_after_reset(model):
    """REPLAY.md reset state: IA32_FEATURE_CONTROL = 0 and unlocked (SDM 23.7)."""
    assert expect(model.rdmsr(msrs.IA32_FEATURE_CONTROL), Status.OK).value == 0


def test_feature_control_is_writable_until_locked(model):
    """SDM 23.7: IA32_FEATURE_CONTROL may be written while bit 0 (lock) is 0."""
    expect(model.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX), Status.OK)
    expect(model.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_VALID), Status.OK)
    assert model.rdmsr(msrs.IA32_FEATURE_CONTROL).value == msrs.FEATURE_CONTROL_VALID


def test_feature_control_write_faults_once_locked(model):
    """SDM 23.7: WRMSR to IA32_FEATURE_CONTROL with the lock bit set raises #GP(0)."""
    expect(model.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_LOCK), Status.OK)
    expect_gp(model.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_VALID))
    expect_gp(model.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_LOCK))
    assert model.rdmsr(msrs.IA32_FEATURE_CONTROL).value == msrs.FEATURE_CONTROL_LOCK


def test_feature_control_refuses_bits_beyond_2_0(model):
    """docs/semantics.md: WRMSR to IA32_FEATURE_CONTROL with a bit other than 0-2 raises #GP."""
    expect_gp(model.wrmsr(msrs.IA32_FEATURE_CONTROL, 1 << 3))
    assert model.rdmsr(msrs.IA32_FEATURE_CONTROL).value == 0


@pytest.mark.parametrize("msr", CONSTANT_MSRS, ids=lambda m: m.name)
def test_capability_msr_reads_its_table_value(model, msr):
    """SDM appendix A: the capability MSRs report the values of rtl/arch/msrs.py (IA32_VMX_BASIC with bit 49: the
    model with VM entries has the dual-monitor treatment)."""
    assert expect(model.rdmsr(msr.number), Status.OK).value == msrs.constant_value(msr, dual_monitor=True)


@pytest.mark.parametrize("msr", CONSTANT_MSRS, ids=lambda m: m.name)
def test_capability_msr_is_read_only(model, msr):
    """SDM appendix A: the VMX capability MSRs are read-only; WRMSR raises #GP(0)."""
    expect_gp(model.wrmsr(msr.number, msr.value))


def test_smbase_is_not_readable_outside_smm(model):
    """SDM A.6: RDMSR of IA32_SMBASE (IA32_VMX_MISC bit 15) is allowed only in SMM."""
    expect_gp(model.rdmsr(msrs.IA32_SMBASE))


def test_smbase_is_readable_in_smm(model):
    """SDM A.6: in SMM, RDMSR of IA32_SMBASE returns SMBASE (the hook the SMM capability uses)."""
    model.in_smm = True
    assert expect(model.rdmsr(msrs.IA32_SMBASE), Status.OK).value == model.get("smbase").value


def test_smbase_is_never_writable(model):
    """SDM A.6: WRMSR to IA32_SMBASE raises #GP(0) (SMBASE changes only through RSM)."""
    expect_gp(model.wrmsr(msrs.IA32_SMBASE, 0x4_0000))


@pytest.mark.parametrize("in_smm", [False, True])
def test_smbase_element_is_never_set(model, in_smm):
    """SDM 34.11 (SMBASE relocation: only RSM's save-map field changes SMBASE) and shared/vmx/REPLAY.md "SMM":
    a SET of the element smbase raises #GP(13), whatever the value and whether in SMM, and changes nothing."""
    model.in_smm = in_smm
    for value in (0x4_0000, 0x3_0000):
        expect_gp(model.set("smbase", value))
        assert expect(model.get("smbase"), Status.OK).value == 0x3_0000


def test_smm_element_reads_whether_in_smm_and_no_set_writes_it(model):
    """shared/vmx/REPLAY.md "SMM": element smm is 1 in SMM, else 0 (0 after reset: SDM 34.2, SMM is entered
    only through an SMI); a SET request of it raises #GP and changes nothing."""
    assert expect(model.get("smm"), Status.OK).value == 0
    model.in_smm = True
    assert expect(model.get("smm"), Status.OK).value == 1
    expect_gp(model.set("smm", 0))
    assert model.in_smm


def test_smm_monitor_ctl_reads_zero_after_reset(model):
    """SDM 34.15.5: IA32_SMM_MONITOR_CTL is readable; its valid bit is 0 after reset."""
    assert expect(model.rdmsr(msrs.IA32_SMM_MONITOR_CTL), Status.OK).value == 0


def test_smm_monitor_ctl_is_not_writable_outside_smm(model):
    """SDM 34.15.5: WRMSR to IA32_SMM_MONITOR_CTL outside SMM raises #GP(0)."""
    expect_gp(model.wrmsr(msrs.IA32_SMM_MONITOR_CTL, msrs.SMM_MONITOR_CTL_VALID))
    assert model.rdmsr(msrs.IA32_SMM_MONITOR_CTL).value == 0


@pytest.mark.parametrize("number", [IA32_TIME_STAMP_COUNTER, 0x489 + 0x100, 0xC000_0102, 0xFFFF_FFFF])
def test_unknown_msr_faults(model, number):
    """SDM 2B RDMSR/WRMSR: an unimplemented MSR raises #GP(0)."""
    expect_gp(model.rdmsr(number))
    expect_gp(model.wrmsr(number, 0))


def test_rdmsr_and_wrmsr_fault_at_cpl_above_0(model):
    """SDM 2B RDMSR/WRMSR: #GP(0) if the current privilege level is not 0."""
    expect(model.set("ss.ar", SS_AR_CPL3), Status.OK)
    expect_gp(model.rdmsr(msrs.IA32_VMX_BASIC))
    expect_gp(model.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_LOCK))
    assert model.feature_control == 0


@pytest.mark.parametrize("msr", ELEMENT_MSRS, ids=lambda m: m.name)
def test_element_msr_reads_and_writes_its_element(model, msr):
    """SDM vol. 4: these MSRs are machine-state elements; RDMSR/WRMSR reach the same value as GET/SET."""
    element = ELEMENT_BY_MSR[msr.number]
    value = {"efer": EFER.SCE | EFER.NXE, "pat": 0x0006_0504_0100_0706, "perf_global_ctrl": 0x1_0000_0002}.get(
        element.name, 0x1000
    )
    expect(model.wrmsr(msr.number, value), Status.OK)
    assert model.get(element.name).value == value
    assert model.rdmsr(msr.number).value == value


def test_element_msr_refuses_value_wider_than_element(model):
    """docs/semantics.md: WRMSR of a value wider than the element raises #GP (IA32_SYSENTER_CS is 32-bit here)."""
    expect_gp(model.wrmsr(msrs.IA32_SYSENTER_CS, 1 << 32))


@pytest.mark.parametrize(
    ("number", "value"),
    [
        (msrs.IA32_EFER, 1 << 1),
        (msrs.IA32_FS_BASE, 0x0000_8000_0000_0000),
        (msrs.IA32_SYSENTER_EIP, 0x0000_8000_0000_0000),
        (msrs.IA32_PAT, 0x02),
        (msrs.IA32_DEBUGCTL, 1 << 2),
        (msrs.IA32_PERF_GLOBAL_CTRL, 1 << 2),
    ],
)
def test_element_msr_follows_the_element_rules(model, number, value):
    """SDM 2B WRMSR: reserved bits, non-canonical addresses and invalid memory types raise #GP(0)."""
    before = model.rdmsr(number).value
    expect_gp(model.wrmsr(number, value))
    assert model.rdmsr(number).value == before


def test_msr_operations_leave_rflags_unchanged(model):
    """docs/semantics.md: OK and FAULT leave RFLAGS unchanged."""
    expect(model.set("rflags", RFLAGS.ARITHMETIC), Status.OK)
    model.rdmsr(msrs.IA32_VMX_BASIC)
    model.wrmsr(msrs.IA32_VMX_BASIC, 0)
    assert model.get("rflags").value == RFLAGS.ARITHMETIC | RFLAGS.FIXED1
