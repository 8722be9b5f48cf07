"""Capability MSRs are consistent, as kvm-unit-tests test_vmx_caps checks them (SDM appendix A)."""

from __future__ import annotations

import pytest
from model_setup import expect

from vmxu.rtl.arch import fields, msrs
from vmxu.rtl.arch.controls import CONTROL_FIELDS, ENTRY, EXIT, PIN, PROC
from vmxu.rtl.arch.ops import Status

TRUE_PAIRS = [(c.msr, c.true_msr) for c in (PIN, PROC, EXIT, ENTRY)]
#: kvm-unit-tests' "always on without TRUE MSRs": the default1 settings of real hardware (SDM A.2).
DEFAULT1 = {
    msrs.IA32_VMX_PINBASED_CTLS: 0x16,
    msrs.IA32_VMX_PROCBASED_CTLS: 0x0401_E172,
    msrs.IA32_VMX_EXIT_CTLS: 0x0003_6DFF,
    msrs.IA32_VMX_ENTRY_CTLS: 0x0000_11FF,
}


def rdmsr(model, number):
    return expect(model.rdmsr(number), Status.OK).value


def test_basic_reports_revision_size_and_memory_type(model):
    """SDM A.1: bit 31 = 0, region size 1-4096, memory type UC (0) or WB (6), TRUE controls (bit 55)."""
    basic = rdmsr(model, msrs.IA32_VMX_BASIC)
    assert basic & (1 << 31) == 0
    assert basic & 0x7FFF_FFFF == msrs.VMCS_REVISION_ID
    assert 0 < (basic >> 32) & 0x1FFF <= 4096
    assert (basic >> 50) & 0xF in (0, 6)
    assert basic >> 55 & 1
    assert basic >> 48 & 1 == 0, "docs/semantics.md choice 2: MAXPHYADDR 32, bit 48 = 0"


@pytest.mark.parametrize("number", sorted(DEFAULT1))
def test_plain_control_msr_requires_default1_bits(model, number):
    """SDM A.2: without TRUE MSRs, the default1 controls are reported as must-be-1 (allowed-0 bits)."""
    assert rdmsr(model, number) & 0xFFFF_FFFF == DEFAULT1[number]


@pytest.mark.parametrize("control", CONTROL_FIELDS, ids=lambda c: c.vmcs_field)
def test_allowed0_is_subset_of_allowed1(model, control):
    """SDM A.3-A.5: a control that must be 1 may be 1."""
    for number in (control.msr, control.true_msr):
        if number is None:
            continue
        value = rdmsr(model, number)
        assert value & 0xFFFF_FFFF & ~(value >> 32) == 0


@pytest.mark.parametrize(("plain", "true"), TRUE_PAIRS)
def test_true_msr_relaxes_only_default1_bits(model, plain, true):
    """SDM A.3.1: the TRUE MSR has the same allowed-1 bits; its allowed-0 bits are a subset; plain = TRUE | default1."""
    plain_value = rdmsr(model, plain)
    true_value = rdmsr(model, true)
    assert plain_value >> 32 == true_value >> 32
    assert true_value & ~plain_value & 0xFFFF_FFFF == 0
    assert (true_value | DEFAULT1[plain]) & 0xFFFF_FFFF == plain_value & 0xFFFF_FFFF


@pytest.mark.parametrize(
    ("fixed0", "fixed1"),
    [(msrs.IA32_VMX_CR0_FIXED0, msrs.IA32_VMX_CR0_FIXED1), (msrs.IA32_VMX_CR4_FIXED0, msrs.IA32_VMX_CR4_FIXED1)],
)
def test_fixed0_is_subset_of_fixed1(model, fixed0, fixed1):
    """SDM A.7/A.8: a bit fixed to 1 is allowed to be 1."""
    assert rdmsr(model, fixed0) & ~rdmsr(model, fixed1) == 0


def test_misc_reports_cr3_targets_and_activity_states(model):
    """SDM A.6: at least 4 CR3 targets; HLT activity state; MSEG revision in bits 63:32."""
    misc = rdmsr(model, msrs.IA32_VMX_MISC)
    assert (misc >> 16) & 0x1FF >= 4
    assert misc & (1 << 6)
    assert misc >> 32 == msrs.MSEG_REVISION_ID
    assert misc & (1 << 29) == 0, "VMWRITE to VM-exit information fields is not supported"


def test_vmcs_enum_reports_highest_index(model):
    """SDM A.9: IA32_VMX_VMCS_ENUM bits 9:1 equal the highest index of any supported encoding."""
    highest = max(f.index for f in fields.FIELDS)
    assert (rdmsr(model, msrs.IA32_VMX_VMCS_ENUM) >> 1) & 0x1FF == highest


def test_every_probed_encoding_below_the_enum_index_is_consistent(with_current):
    """kvm-unit-tests test_vmwrite_vmread: probing every (width, type, index) finds none above the ENUM index."""
    highest = (with_current.rdmsr(msrs.IA32_VMX_VMCS_ENUM).value >> 1) & 0x1FF
    supported_above = []
    for width in range(4):
        for kind in range(4):
            for index in range(highest + 1, 0x200):
                encoding = (width << 13) | (kind << 10) | (index << 1)
                if with_current.vmread(encoding).status == Status.SUCCEED:
                    supported_above.append(encoding)
    assert supported_above == []
