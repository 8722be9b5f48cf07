"""VMPTRLD, VMPTRST and VMCLEAR (SDM 30.3), as kvm-unit-tests test_vmptrld/test_vmptrst/test_vmclear do them."""

from __future__ import annotations

import pytest
from model_setup import OUTSIDE_RAM, VMCS_A, VMCS_B, VMXON_REGION, expect, load_new_vmcs, write_revision

from vmxu.rtl.arch import layout, msrs
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.ops import Status
from vmxu.sim.model import NO_CURRENT_VMCS

BAD_ADDRESSES = {
    "unaligned-8": VMCS_B + 8,
    "unaligned-1": VMCS_B + 1,
    "beyond-4GiB": 1 << 32 | VMCS_B,
    "bit-63": 1 << 63,
}


def expect_fail_valid(model, outcome, error):
    expect(outcome, Status.FAIL_VALID)
    assert outcome.error == error
    assert model.vmread("VM_INSTRUCTION_ERROR").value == error


def launch_word(model, addr):
    return model.memory.read(addr + 4 * layout.LAUNCH_WORD, 4)


# -- VMPTRLD ----------------------------------------------------------------------------


def test_vmptrld_makes_vmcs_current(in_root):
    """SDM 30.3 VMPTRLD: a valid VMCS becomes current; VMsucceed."""
    write_revision(in_root, VMCS_A)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert in_root.current_vmcs_pointer == VMCS_A


@pytest.mark.parametrize("addr", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
def test_vmptrld_fails_9_for_bad_address(with_current, addr):
    """SDM 30.3 VMPTRLD: VMfail(9) if the address is not 4-KiB aligned or sets bits beyond MAXPHYADDR."""
    expect_fail_valid(with_current, with_current.vmptrld(addr), VmError.VMPTRLD_INVALID_ADDRESS)
    assert with_current.current_vmcs_pointer == VMCS_A


def test_vmptrld_bad_address_without_current_vmcs_fails_invalid(in_root):
    """SDM 30.2 VMfail: with no current VMCS, VMfail(9) is VMfailInvalid."""
    expect(in_root.vmptrld(VMCS_A + 8), Status.FAIL_INVALID)


def test_vmptrld_rejects_vmxon_pointer(with_current):
    """SDM 30.3 VMPTRLD: VMfail(10) if the address is the VMXON pointer."""
    expect_fail_valid(with_current, with_current.vmptrld(VMXON_REGION), VmError.VMPTRLD_VMXON_POINTER)


def test_vmptrld_vmxon_pointer_without_current_vmcs_fails_invalid(in_root):
    """SDM 30.3 VMPTRLD: VMfail(10) with no current VMCS is VMfailInvalid."""
    expect(in_root.vmptrld(VMXON_REGION), Status.FAIL_INVALID)


def test_vmptrld_fails_11_for_wrong_revision(with_current):
    """SDM 30.3 VMPTRLD: VMfail(11) if bits 30:0 of the region's first dword differ from the revision identifier."""
    write_revision(with_current, VMCS_B, msrs.VMCS_REVISION_ID + 1)
    expect_fail_valid(with_current, with_current.vmptrld(VMCS_B), VmError.VMPTRLD_INCORRECT_REVISION)
    assert with_current.current_vmcs_pointer == VMCS_A


def test_vmptrld_fails_11_for_shadow_indicator(with_current):
    """SDM 30.3 VMPTRLD: VMfail(11) if bit 31 is 1 and VMCS shadowing is not supported."""
    write_revision(with_current, VMCS_B, msrs.VMCS_REVISION_ID | 1 << 31)
    expect_fail_valid(with_current, with_current.vmptrld(VMCS_B), VmError.VMPTRLD_INCORRECT_REVISION)


def test_vmptrld_fails_11_for_region_outside_ram(with_current):
    """docs/semantics.md bus errors: the revision dword of a region outside RAM reads all ones: VMfail(11)."""
    expect_fail_valid(with_current, with_current.vmptrld(OUTSIDE_RAM), VmError.VMPTRLD_INCORRECT_REVISION)


def test_vmptrld_of_cached_vmcs_still_reads_revision(with_current):
    """docs/semantics.md choice 10: VMPTRLD of a cached VMCS reads the revision dword (SDM pseudocode order)."""
    write_revision(with_current, VMCS_A, msrs.VMCS_REVISION_ID + 1)
    expect_fail_valid(with_current, with_current.vmptrld(VMCS_A), VmError.VMPTRLD_INCORRECT_REVISION)


def test_vmptrld_address_check_comes_before_vmxon_pointer_check(with_current):
    """SDM 30.3 VMPTRLD: the address check (9) comes before the VMXON-pointer check (10)."""
    expect_fail_valid(with_current, with_current.vmptrld(VMXON_REGION + 4), VmError.VMPTRLD_INVALID_ADDRESS)


def test_vmptrld_of_current_vmcs_keeps_its_data(with_current):
    """SDM 24.1: VMPTRLD of the current VMCS must not lose earlier VMWRITEs."""
    expect(with_current.vmwrite("GUEST_RSP", 0x7000), Status.SUCCEED)
    expect(with_current.vmptrld(VMCS_A), Status.SUCCEED)
    assert with_current.vmread("GUEST_RSP").value == 0x7000


# -- VMPTRST ----------------------------------------------------------------------------


def test_vmptrst_without_current_vmcs_stores_all_ones(in_root):
    """SDM 30.3 VMPTRST: with no current VMCS, the pointer is FFFFFFFF_FFFFFFFFh; VMsucceed."""
    outcome = expect(in_root.vmptrst(), Status.SUCCEED)
    assert outcome.value == NO_CURRENT_VMCS == 0xFFFF_FFFF_FFFF_FFFF


def test_vmptrst_stores_current_vmcs_pointer(with_current):
    """SDM 30.3 VMPTRST: stores the current-VMCS pointer; VMsucceed."""
    assert expect(with_current.vmptrst(), Status.SUCCEED).value == VMCS_A
    load_new_vmcs(with_current, VMCS_B)
    assert with_current.vmptrst().value == VMCS_B


# -- VMCLEAR -----------------------------------------------------------------------------


@pytest.mark.parametrize("addr", BAD_ADDRESSES.values(), ids=BAD_ADDRESSES.keys())
def test_vmclear_fails_2_for_bad_address(with_current, addr):
    """SDM 30.3 VMCLEAR: VMfail(2) if the address is not 4-KiB aligned or sets bits beyond MAXPHYADDR."""
    expect_fail_valid(with_current, with_current.vmclear(addr), VmError.VMCLEAR_INVALID_ADDRESS)


def test_vmclear_bad_address_without_current_vmcs_fails_invalid(in_root):
    """SDM 30.2 VMfail: with no current VMCS, VMfail(2) is VMfailInvalid."""
    expect(in_root.vmclear(1 << 32), Status.FAIL_INVALID)


def test_vmclear_rejects_vmxon_pointer(with_current):
    """SDM 30.3 VMCLEAR: VMfail(3) if the address is the VMXON pointer."""
    expect_fail_valid(with_current, with_current.vmclear(VMXON_REGION), VmError.VMCLEAR_VMXON_POINTER)


def test_vmclear_of_fresh_memory_succeeds(in_root):
    """SDM 30.3 VMCLEAR: no revision check, VMCLEAR of uninitialized memory is legal."""
    expect(in_root.vmclear(0x9000), Status.SUCCEED)


def test_vmclear_of_current_vmcs_leaves_no_current_vmcs(with_current):
    """SDM 30.3 VMCLEAR: if the address is the current-VMCS pointer, the pointer becomes all ones."""
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    assert with_current.current_vmcs_pointer is None
    assert with_current.vmptrst().value == NO_CURRENT_VMCS
    expect(with_current.vmread("GUEST_RIP"), Status.FAIL_INVALID)


def test_vmclear_of_other_vmcs_keeps_current_vmcs(with_current):
    """SDM 30.3 VMCLEAR: clearing another VMCS leaves the current-VMCS pointer alone."""
    load_new_vmcs(with_current, VMCS_B)
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    assert with_current.current_vmcs_pointer == VMCS_B


def test_vmclear_writes_launch_state_clear(in_root):
    """SDM 30.3 VMCLEAR: the launch state becomes clear (word 2 of the region, layout.LAUNCH_WORD)."""
    write_revision(in_root, VMCS_A)
    in_root.memory.write(VMCS_A + 4 * layout.LAUNCH_WORD, 4, layout.LAUNCH_LAUNCHED)
    expect(in_root.vmclear(VMCS_A), Status.SUCCEED)
    assert launch_word(in_root, VMCS_A) == 0


def test_vmclear_writes_launch_state_of_cached_vmcs(in_root):
    """SDM 30.3 VMCLEAR: a launched VMCS in the cache is clear afterwards (VMLAUNCH no longer fails with 4)."""
    write_revision(in_root, VMCS_A)
    in_root.memory.write(VMCS_A + 4 * layout.LAUNCH_WORD, 4, layout.LAUNCH_LAUNCHED)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert expect(in_root.vmlaunch(), Status.FAIL_VALID).error == VmError.VMLAUNCH_NONCLEAR_VMCS
    expect(in_root.vmclear(VMCS_A), Status.SUCCEED)
    assert launch_word(in_root, VMCS_A) == 0
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert in_root.vmlaunch().error != VmError.VMLAUNCH_NONCLEAR_VMCS


def test_vmclear_writes_dirty_fields_to_the_region(with_current):
    """SDM 30.3 VMCLEAR: the VMCS data is written to the region (at the offset layout.LOCATION gives)."""
    expect(with_current.vmwrite("GUEST_RIP", 0x1122_3344_5566), Status.SUCCEED)
    offset = 4 * layout.LOCATION[0x681E].word
    assert with_current.memory.read(VMCS_A + offset, 8) == 0
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    assert with_current.memory.read(VMCS_A + offset, 8) == 0x1122_3344_5566


def test_vmclear_outside_ram_succeeds_and_writes_nothing(in_root):
    """docs/semantics.md bus errors: VMCLEAR of a region outside RAM succeeds; the writes are dropped."""
    before = in_root.memory.words()
    expect(in_root.vmclear(OUTSIDE_RAM), Status.SUCCEED)
    assert in_root.memory.words() == before


def test_vmclear_of_vmcs_not_in_cache_writes_only_launch_word(in_root):
    """docs/semantics.md cache: VMCLEAR of a VMCS not cached writes 0 to its launch word and nothing else."""
    in_root.memory.write(VMCS_B, 4, 0x1234)
    in_root.memory.write(VMCS_B + 4 * layout.LAUNCH_WORD, 4, 3)
    in_root.memory.write(VMCS_B + 0x40, 4, 0x5678)
    expect(in_root.vmclear(VMCS_B), Status.SUCCEED)
    assert in_root.memory.read(VMCS_B, 4) == 0x1234
    assert launch_word(in_root, VMCS_B) == 0
    assert in_root.memory.read(VMCS_B + 0x40, 4) == 0x5678
