"""VMLAUNCH / VMRESUME: instruction checks, VMX-control checks (7), host-state checks (8) (SDM 30.3, 26.2).

Each error-7 and error-8 test starts from a VMCS that passes every check
(the ``launchable`` fixture), breaks one thing and expects that error.
"""

from __future__ import annotations

import pytest
from model_setup import (
    VMCS_A,
    VMCS_B,
    VMCS_C,
    VMCS_D,
    VMCS_E,
    VMXON_REGION,
    enter_ia32e_mode,
    expect,
    load_new_vmcs,
    make_launchable,
    vmwrite_all,
)

from vmxu.rtl.arch import layout
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC, PROC2
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.state import CR0, CR4, EFER, RFLAGS
from vmxu.sim import presets

NON_CANONICAL = 0x0000_8000_0000_0000
INTR_VALID = 1 << 31
DELIVER_ERROR_CODE = 1 << 11
TYPE_EXTERNAL, TYPE_RESERVED, TYPE_NMI, TYPE_HW_EXCEPTION = 0, 1, 2, 3
TYPE_SW_INTERRUPT, TYPE_PRIV_SW_EXCEPTION, TYPE_SW_EXCEPTION, TYPE_OTHER = 4, 5, 6, 7


def event(kind: int, vector: int, error_code: bool = False) -> int:
    return INTR_VALID | kind << 8 | vector | (DELIVER_ERROR_CODE if error_code else 0)


def update(model, name, set_bits=0, clear_bits=0):
    value = expect(model.vmread(name), Status.SUCCEED).value
    expect(model.vmwrite(name, (value | set_bits) & ~clear_bits), Status.SUCCEED)


def write(model, name, value):
    expect(model.vmwrite(name, value), Status.SUCCEED)


def expect_entry_error(model, error, instruction="vmlaunch"):
    outcome = expect(getattr(model, instruction)(), Status.FAIL_VALID)
    assert outcome.error == error, outcome
    assert model.vmread("VM_INSTRUCTION_ERROR").value == error
    return outcome


def expect_control_error(model):
    return expect_entry_error(model, VmError.ENTRY_INVALID_CONTROL_FIELD)


def expect_host_error(model):
    return expect_entry_error(model, VmError.ENTRY_INVALID_HOST_STATE)


def expect_passes(model, instruction="vmlaunch"):
    """The instruction passes every check and enters the guest; a VMCALL in the guest exits back to the
    host, and after a VMLAUNCH the VMCS is cleared and made current again, so the test can launch it again."""
    entered = expect(getattr(model, instruction)(), Status.ENTERED)
    expect(model.vmcall(), Status.EXITED)
    if instruction == "vmlaunch":
        addr = model.current_vmcs_pointer
        expect(model.vmclear(addr), Status.SUCCEED)
        expect(model.vmptrld(addr), Status.SUCCEED)
    return entered


def expect_checks_pass(model, instruction="vmlaunch"):
    """Checks 7 and 8 pass: the instruction reaches the VM-entry transition, which may still end in a
    VM-entry failure or an exit before the guest's first instruction. A guest that entered is made to exit
    (VMCALL), which may end in a VMX abort when a VM-exit MSR list cannot be processed."""
    outcome = getattr(model, instruction)()
    assert outcome.status in (Status.ENTERED, Status.ENTRY_FAILED, Status.EXITED), f"checks failed: {outcome}"
    if outcome.status == Status.ENTERED:
        assert model.vmcall().status in (Status.EXITED, Status.SHUTDOWN)
    return outcome


def reload_with_launch_word(model, addr, launch):
    """VMCLEAR the VMCS, put a launch state in its region, and make it current again (a fill reads word 2)."""
    expect(model.vmclear(addr), Status.SUCCEED)
    model.memory.write(addr + 4 * layout.LAUNCH_WORD, 4, launch)
    expect(model.vmptrld(addr), Status.SUCCEED)


@pytest.fixture
def launched(launchable):
    """VMCS_A passes every check and is launched."""
    reload_with_launch_word(launchable, VMCS_A, layout.LAUNCH_LAUNCHED)
    return launchable


@pytest.fixture
def launchable_64(with_current):
    """A 64-bit processor and host: IA-32e mode, "host address-space size" = 1."""
    enter_ia32e_mode(with_current)
    make_launchable(with_current, ia32e_host=True)
    return with_current


# -- instruction checks (SDM 30.3) ------------------------------------------------------------


@pytest.mark.parametrize("instruction", ["vmlaunch", "vmresume"])
def test_entry_fails_invalid_without_current_vmcs(in_root, instruction):
    """SDM 30.3 VMLAUNCH/VMRESUME: VMfailInvalid if there is no current VMCS."""
    expect(getattr(in_root, instruction)(), Status.FAIL_INVALID)


@pytest.mark.parametrize("instruction", ["vmlaunch", "vmresume"])
def test_entry_fails_26_when_blocked_by_mov_ss(launchable, instruction):
    """SDM 30.3 VMLAUNCH/VMRESUME: VMfailValid(26) if events are blocked by MOV SS (interruptibility bit 1)."""
    expect(launchable.set("interruptibility", 1 << 1), Status.OK)
    expect_entry_error(launchable, VmError.ENTRY_EVENTS_BLOCKED_BY_MOV_SS, instruction)


def test_no_current_vmcs_beats_mov_ss_blocking(in_root):
    """kvm-unit-tests vmentry_movss_shadow_test: VMfailInvalid (CF) comes before error 26."""
    expect(in_root.set("interruptibility", 1 << 1), Status.OK)
    expect(in_root.vmlaunch(), Status.FAIL_INVALID)


def test_mov_ss_blocking_beats_launch_state(launched):
    """kvm-unit-tests vmentry_movss_shadow_test: error 26 comes before error 4."""
    expect(launched.set("interruptibility", 1 << 1), Status.OK)
    expect_entry_error(launched, VmError.ENTRY_EVENTS_BLOCKED_BY_MOV_SS)


def test_sti_blocking_does_not_fail_the_instruction(launchable):
    """SDM 30.3: only blocking by MOV SS (bit 1) fails with 26; blocking by STI (bit 0) does not."""
    expect(launchable.set("interruptibility", 1 << 0), Status.OK)
    expect_passes(launchable)


def test_vmlaunch_fails_4_for_launched_vmcs(launched):
    """SDM 30.3 VMLAUNCH: VMfailValid(4) unless the launch state is clear."""
    expect_entry_error(launched, VmError.VMLAUNCH_NONCLEAR_VMCS)


def test_vmresume_fails_5_for_clear_vmcs(launchable):
    """SDM 30.3 VMRESUME: VMfailValid(5) if the launch state is not launched."""
    expect_entry_error(launchable, VmError.VMRESUME_NONLAUNCHED_VMCS, "vmresume")


def test_vmresume_of_launched_vmcs_passing_checks_is_not_implemented(launched):
    """SDM 30.3 VMRESUME: a launched VMCS passing every check reaches the VM-entry transition."""
    expect_passes(launched, "vmresume")


def test_vmresume_fails_6_when_launch_word_records_vmxoff(launchable):
    """SDM 30.3 VMRESUME / docs/semantics.md: VMfailValid(6) for a launched VMCS written back by VMXOFF."""
    reload_with_launch_word(launchable, VMCS_A, layout.LAUNCH_LAUNCHED | layout.LAUNCH_VMXOFF)
    expect_entry_error(launchable, VmError.VMRESUME_AFTER_VMXOFF, "vmresume")


def test_vmresume_fails_6_for_launched_vmcs_cached_at_vmxoff(launched):
    """docs/semantics.md choice 9: VMXOFF writes a cached, launched VMCS back with bit 1 of its launch word set."""
    write(launched, "GUEST_RIP", 0x1000)
    expect(launched.vmxoff(), Status.SUCCEED)
    assert launched.memory.read(VMCS_A + 4 * layout.LAUNCH_WORD, 4) == layout.LAUNCH_LAUNCHED | layout.LAUNCH_VMXOFF
    expect(launched.vmxon(VMXON_REGION), Status.SUCCEED)
    expect(launched.vmptrld(VMCS_A), Status.SUCCEED)
    expect_entry_error(launched, VmError.VMRESUME_AFTER_VMXOFF, "vmresume")


def test_launched_vmcs_evicted_before_vmxoff_is_not_marked(launched):
    """docs/semantics.md choice 9: a launched VMCS evicted from the cache before VMXOFF keeps launch word 1."""
    write(launched, "GUEST_RIP", 0x1000)
    for addr in (VMCS_B, VMCS_C, VMCS_D, VMCS_E):
        load_new_vmcs(launched, addr)
    assert all(entry.addr != VMCS_A for entry in launched.cache_entries if entry.valid)
    expect(launched.vmxoff(), Status.SUCCEED)
    assert launched.memory.read(VMCS_A + 4 * layout.LAUNCH_WORD, 4) == layout.LAUNCH_LAUNCHED
    expect(launched.vmxon(VMXON_REGION), Status.SUCCEED)
    expect(launched.vmptrld(VMCS_A), Status.SUCCEED)
    expect_passes(launched, "vmresume")


def test_launch_state_check_comes_before_control_checks(launched):
    """SDM 30.3 VMLAUNCH: error 4 is reported before the checks on the VMX controls."""
    write(launched, "CR3_TARGET_COUNT", 5)
    expect_entry_error(launched, VmError.VMLAUNCH_NONCLEAR_VMCS)


def test_vmlaunch_passing_all_checks_enters_the_guest(launchable):
    """SDM 26.3: a VMLAUNCH that passes every check enters the guest: RIP, RSP and RFLAGS are the guest's
    (the six arithmetic flags are not written: VMsucceed is not the outcome of an entry)."""
    write(launchable, "GUEST_RIP", 0x1234)
    write(launchable, "GUEST_RFLAGS", RFLAGS.FIXED1 | RFLAGS.CF)
    expect(launchable.vmlaunch(), Status.ENTERED)
    assert launchable.non_root
    assert launchable.get("rip").value == 0x1234
    assert launchable.get("rsp").value == presets.GUEST_RSP
    assert launchable.get("rflags").value == RFLAGS.FIXED1 | RFLAGS.CF


def test_64bit_host_passing_all_checks_enters_the_guest(launchable_64):
    """SDM 26.2.4: in IA-32e mode a VMCS with "host address-space size" = 1 passes the host checks."""
    expect_passes(launchable_64)


def test_control_error_7_wins_over_host_state_error_8(launchable):
    """docs/semantics.md choice 5: with a control and a host-state failure, vmxu reports 7."""
    write(launchable, "HOST_CR3", 1 << 32)
    expect_host_error(launchable)
    write(launchable, "CR3_TARGET_COUNT", 5)
    expect_control_error(launchable)


# -- checks on the VMX controls: error 7 (SDM 26.2.1) ---------------------------------------------

PRIMARY = {"pin": PIN, "proc": PROC, "exit": EXIT, "entry": ENTRY}


def first_bit(mask: int) -> int:
    return mask & -mask


@pytest.mark.parametrize("control", PRIMARY.values(), ids=PRIMARY.keys())
def test_control_missing_a_must_be_1_bit_fails_7(launchable, control):
    """SDM 26.2.1.1: a control whose allowed-0 bit (bits 31:0 of the TRUE MSR) is 1 must be 1."""
    update(launchable, control.vmcs_field, clear_bits=first_bit(control.true_default1))
    expect_control_error(launchable)


@pytest.mark.parametrize("control", PRIMARY.values(), ids=PRIMARY.keys())
def test_control_setting_a_must_be_0_bit_fails_7(launchable, control):
    """SDM 26.2.1.1: a control whose allowed-1 bit (bits 63:32 of the TRUE MSR) is 0 must be 0."""
    update(launchable, control.vmcs_field, set_bits=first_bit(~control.allowed1 & 0xFFFF_FFFF))
    expect_control_error(launchable)


@pytest.mark.parametrize(("control", "name"), [(PROC, "CR3_LOAD_EXITING"), (EXIT, "SAVE_DEBUG_CONTROLS")])
def test_controls_are_checked_against_the_true_msrs(launchable, control, name):
    """SDM 26.2.1.1 / A.3.1: with IA32_VMX_BASIC bit 55, a default1 control the TRUE MSR allows to be 0 may be 0."""
    assert control.default1 & control.bit(name) and not control.true_default1 & control.bit(name)
    update(launchable, control.vmcs_field, clear_bits=control.bit(name))
    expect_passes(launchable)


def test_active_secondary_control_outside_allowed1_fails_7(launchable):
    """SDM 26.2.1.1: with "activate secondary controls", they must respect IA32_VMX_PROCBASED_CTLS2."""
    update(launchable, PROC.vmcs_field, set_bits=PROC.bit("ACTIVATE_SECONDARY_CONTROLS"))
    write(launchable, PROC2.vmcs_field, PROC2.bit("ENABLE_EPT"))
    expect_control_error(launchable)


def test_inactive_secondary_controls_are_ignored(launchable):
    """SDM 26.2.1.1: without "activate secondary controls" the secondary controls are taken as 0."""
    write(launchable, PROC2.vmcs_field, PROC2.bit("ENABLE_EPT"))
    expect_passes(launchable)


def test_active_secondary_control_within_allowed1_passes(launchable):
    """SDM 26.2.1.1: supported secondary controls (WBINVD exiting) may be 1."""
    update(launchable, PROC.vmcs_field, set_bits=PROC.bit("ACTIVATE_SECONDARY_CONTROLS"))
    write(launchable, PROC2.vmcs_field, PROC2.bit("WBINVD_EXITING"))
    expect_passes(launchable)


@pytest.mark.parametrize(("count", "passes"), [(4, True), (5, False)])
def test_cr3_target_count_above_4_fails_7(launchable, count, passes):
    """SDM 26.2.1.1: the CR3-target count is at most IA32_VMX_MISC bits 24:16 (4)."""
    write(launchable, "CR3_TARGET_COUNT", count)
    if passes:
        expect_passes(launchable)
    else:
        expect_control_error(launchable)


BAD_PAGE_ADDRESSES = {"unaligned": 0x7010, "beyond-4GiB": 1 << 32}


@pytest.mark.parametrize("bitmap", ["IO_BITMAP_A", "IO_BITMAP_B"])
@pytest.mark.parametrize("addr", BAD_PAGE_ADDRESSES.values(), ids=BAD_PAGE_ADDRESSES.keys())
def test_io_bitmap_address_must_be_good_with_use_io_bitmaps(launchable, bitmap, addr):
    """SDM 26.2.1.1: with "use I/O bitmaps", each bitmap address is 4-KiB aligned and below 2^MAXPHYADDR."""
    write(launchable, "IO_BITMAP_A", 0x7000)
    write(launchable, "IO_BITMAP_B", 0x8000)
    update(launchable, PROC.vmcs_field, set_bits=PROC.bit("USE_IO_BITMAPS"))
    expect_passes(launchable)
    write(launchable, bitmap, addr)
    expect_control_error(launchable)


def test_io_bitmap_addresses_are_ignored_without_use_io_bitmaps(launchable):
    """SDM 26.2.1.1: the I/O-bitmap addresses are checked only with "use I/O bitmaps"."""
    write(launchable, "IO_BITMAP_A", 0x7010)
    expect_passes(launchable)


@pytest.mark.parametrize("addr", BAD_PAGE_ADDRESSES.values(), ids=BAD_PAGE_ADDRESSES.keys())
def test_msr_bitmap_address_must_be_good_with_use_msr_bitmaps(launchable, addr):
    """SDM 26.2.1.1: with "use MSR bitmaps", the bitmap address is 4-KiB aligned and below 2^MAXPHYADDR."""
    update(launchable, PROC.vmcs_field, set_bits=PROC.bit("USE_MSR_BITMAPS"))
    write(launchable, "MSR_BITMAP", 0x9000)
    expect_passes(launchable)
    write(launchable, "MSR_BITMAP", addr)
    expect_control_error(launchable)


def test_msr_bitmap_address_is_ignored_without_use_msr_bitmaps(launchable):
    """SDM 26.2.1.1: the MSR-bitmap address is checked only with "use MSR bitmaps"."""
    write(launchable, "MSR_BITMAP", 1 << 32)
    expect_passes(launchable)


def test_virtual_nmis_without_nmi_exiting_fails_7(launchable):
    """SDM 26.2.1.1: "NMI exiting" = 0 requires "virtual NMIs" = 0."""
    update(launchable, PIN.vmcs_field, set_bits=PIN.bit("VIRTUAL_NMIS"))
    expect_control_error(launchable)


def test_nmi_window_exiting_without_virtual_nmis_fails_7(launchable):
    """SDM 26.2.1.1: "virtual NMIs" = 0 requires "NMI-window exiting" = 0."""
    update(launchable, PIN.vmcs_field, set_bits=PIN.bit("NMI_EXITING"))
    update(launchable, PROC.vmcs_field, set_bits=PROC.bit("NMI_WINDOW_EXITING"))
    expect_control_error(launchable)


def test_nmi_exiting_virtual_nmis_and_nmi_window_exiting_together_pass(launchable):
    """SDM 26.2.1.1: the three NMI controls set together are consistent."""
    update(launchable, PIN.vmcs_field, set_bits=PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS"))
    update(launchable, PROC.vmcs_field, set_bits=PROC.bit("NMI_WINDOW_EXITING"))
    write(launchable, "GUEST_INTERRUPTIBILITY_INFO", 1 << 3)  # virtual-NMI blocking: the NMI window is closed
    expect_passes(launchable)


def test_save_preemption_timer_without_activating_it_fails_7(launchable):
    """SDM 26.2.1.2: "save VMX-preemption timer value" = 1 requires "activate VMX-preemption timer" = 1."""
    update(launchable, EXIT.vmcs_field, set_bits=EXIT.bit("SAVE_VMX_PREEMPTION_TIMER"))
    expect_control_error(launchable)
    update(launchable, PIN.vmcs_field, set_bits=PIN.bit("ACTIVATE_PREEMPTION_TIMER"))
    expect_checks_pass(launchable)


MSR_LISTS = {
    "exit-store": ("VM_EXIT_MSR_STORE_COUNT", "VM_EXIT_MSR_STORE_ADDR"),
    "exit-load": ("VM_EXIT_MSR_LOAD_COUNT", "VM_EXIT_MSR_LOAD_ADDR"),
    "entry-load": ("VM_ENTRY_MSR_LOAD_COUNT", "VM_ENTRY_MSR_LOAD_ADDR"),
}


@pytest.mark.parametrize(("count_field", "addr_field"), MSR_LISTS.values(), ids=MSR_LISTS.keys())
def test_msr_list_address_must_be_16_byte_aligned(launchable, count_field, addr_field):
    """SDM 26.2.1.2/26.2.1.3: with a non-zero count, the MSR-list address has bits 3:0 = 0."""
    write(launchable, count_field, 1)
    write(launchable, addr_field, 0xA018)
    expect_control_error(launchable)
    write(launchable, addr_field, 0xA010)
    expect_checks_pass(launchable)


@pytest.mark.parametrize(("count_field", "addr_field"), MSR_LISTS.values(), ids=MSR_LISTS.keys())
def test_msr_list_must_end_below_4gib(launchable, count_field, addr_field):
    """SDM 26.2.1.2/26.2.1.3: the last byte of the list (address + 16 * count - 1) is below 2^MAXPHYADDR."""
    write(launchable, addr_field, 0xFFFF_FFE0)
    write(launchable, count_field, 3)
    expect_control_error(launchable)
    write(launchable, count_field, 2)
    expect_checks_pass(launchable)


@pytest.mark.parametrize(("count_field", "addr_field"), MSR_LISTS.values(), ids=MSR_LISTS.keys())
def test_msr_list_address_is_ignored_with_count_0(launchable, count_field, addr_field):
    """SDM 26.2.1.2/26.2.1.3: the address is checked only when the count is not 0."""
    write(launchable, addr_field, 0x1_0000_0008)
    expect_passes(launchable)


@pytest.mark.parametrize("name", ["SMM", "DEACT_DUAL_MONITOR"])
def test_smm_entry_controls_fail_7_outside_smm(launchable, name):
    """SDM 26.2.1.3: "entry to SMM" and "deactivate dual-monitor treatment" must be 0 outside SMM."""
    update(launchable, ENTRY.vmcs_field, set_bits=ENTRY.bit(name))
    expect_control_error(launchable)


VALID_EVENTS = {
    "external-interrupt": (event(TYPE_EXTERNAL, 0x20), 0),
    "nmi": (event(TYPE_NMI, 2), 0),
    "gp-with-error-code": (event(TYPE_HW_EXCEPTION, 13, error_code=True), 0),
    "ud-without-error-code": (event(TYPE_HW_EXCEPTION, 6), 0),
    "software-interrupt": (event(TYPE_SW_INTERRUPT, 0x80), 2),
    "privileged-software-exception": (event(TYPE_PRIV_SW_EXCEPTION, 1), 1),
    "software-exception": (event(TYPE_SW_EXCEPTION, 3), 15),
    "not-valid": (event(TYPE_RESERVED, 0xFF) & ~INTR_VALID, 0),
}


@pytest.mark.parametrize(("info", "length"), VALID_EVENTS.values(), ids=VALID_EVENTS.keys())
def test_valid_event_injection_passes(launchable, info, length):
    """SDM 26.2.1.3: a well-formed VM-entry interruption information passes the control checks."""
    write(launchable, "VM_ENTRY_INTR_INFO_FIELD", info)
    write(launchable, "VM_ENTRY_INSTRUCTION_LEN", length)
    expect_checks_pass(launchable)


INVALID_EVENTS = {
    "reserved-type-1": (event(TYPE_RESERVED, 0x20), 0),
    "other-event-type-7": (event(TYPE_OTHER, 0), 0),
    "nmi-vector-not-2": (event(TYPE_NMI, 3), 0),
    "hardware-exception-vector-32": (event(TYPE_HW_EXCEPTION, 32), 0),
    "reserved-bit-12": (event(TYPE_EXTERNAL, 0x20) | 1 << 12, 0),
    "reserved-bit-30": (event(TYPE_EXTERNAL, 0x20) | 1 << 30, 0),
    "gp-without-error-code": (event(TYPE_HW_EXCEPTION, 13), 0),
    "df-without-error-code": (event(TYPE_HW_EXCEPTION, 8), 0),
    "ud-with-error-code": (event(TYPE_HW_EXCEPTION, 6, error_code=True), 0),
    "external-interrupt-with-error-code": (event(TYPE_EXTERNAL, 13, error_code=True), 0),
    "software-interrupt-length-0": (event(TYPE_SW_INTERRUPT, 0x80), 0),
    "privileged-software-exception-length-16": (event(TYPE_PRIV_SW_EXCEPTION, 1), 16),
    "software-exception-length-0": (event(TYPE_SW_EXCEPTION, 3), 0),
}


@pytest.mark.parametrize(("info", "length"), INVALID_EVENTS.values(), ids=INVALID_EVENTS.keys())
def test_invalid_event_injection_fails_7(launchable, info, length):
    """SDM 26.2.1.3: type, vector, reserved bits, deliver-error-code and instruction length of the injected event."""
    write(launchable, "VM_ENTRY_INTR_INFO_FIELD", info)
    write(launchable, "VM_ENTRY_INSTRUCTION_LEN", length)
    expect_control_error(launchable)


def test_error_code_follows_the_vector_alone_without_unrestricted_guest(launchable):
    """SDM 26.2.1.3: with "unrestricted guest" 0 (never allowed-1 here), deliver-error-code depends on the
    vector alone: injecting #GP with guest CR0.PE = 0 fails without an error code and passes with one."""
    write(launchable, "GUEST_CR0", 0)
    write(launchable, "VM_ENTRY_INTR_INFO_FIELD", event(TYPE_HW_EXCEPTION, 13))
    expect_control_error(launchable)
    write(launchable, "VM_ENTRY_INTR_INFO_FIELD", event(TYPE_HW_EXCEPTION, 13, error_code=True))
    # The control checks pass; the entry then fails on the guest's CR0 (PE is a VMX fixed bit): exit 33.
    outcome = expect_checks_pass(launchable)
    assert outcome.status == Status.ENTRY_FAILED and outcome.reason == 0x8000_0021


def test_exception_error_code_bits_31_16_must_be_0(launchable):
    """docs/semantics.md choice 7 (SDM 26.2.1.3): with deliver-error-code, the error code has bits 31:16 = 0."""
    write(launchable, "VM_ENTRY_INTR_INFO_FIELD", event(TYPE_HW_EXCEPTION, 14, error_code=True))
    write(launchable, "VM_ENTRY_EXCEPTION_ERROR_CODE", 0x1_0000)
    expect_control_error(launchable)
    write(launchable, "VM_ENTRY_EXCEPTION_ERROR_CODE", 0xFFFF)
    expect_checks_pass(launchable)


# -- checks on the host-state area: error 8 (SDM 26.2.2-26.2.4) ----------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HOST_CR0", CR0.PE | CR0.PG),
        ("HOST_CR0", CR0.PE | CR0.NE),
        ("HOST_CR0", CR0.PE | CR0.NE | CR0.PG | 1 << 32),
        ("HOST_CR4", 0),
        ("HOST_CR4", CR4.VMXE | 1 << 12),
    ],
    ids=["cr0-no-ne", "cr0-no-pg", "cr0-bit-32", "cr4-no-vmxe", "cr4-bit-12"],
)
def test_host_cr0_cr4_must_satisfy_fixed_bits(launchable, name, value):
    """SDM 26.2.2: HOST_CR0 and HOST_CR4 satisfy IA32_VMX_CR0/CR4_FIXED0 and FIXED1 (all 64 bits)."""
    write(launchable, name, value)
    expect_host_error(launchable)


def test_host_cr3_beyond_maxphyaddr_fails_8(launchable):
    """SDM 26.2.2: HOST_CR3 sets no bit at or above MAXPHYADDR (32)."""
    write(launchable, "HOST_CR3", 0xFFFF_F000)
    expect_passes(launchable)
    write(launchable, "HOST_CR3", 1 << 32)
    expect_host_error(launchable)


@pytest.mark.parametrize("name", ["HOST_IA32_SYSENTER_ESP", "HOST_IA32_SYSENTER_EIP"])
def test_host_sysenter_must_be_canonical(launchable, name):
    """SDM 26.2.2: HOST_IA32_SYSENTER_ESP and _EIP are canonical."""
    write(launchable, name, 0xFFFF_8000_0000_0000)
    expect_passes(launchable)
    write(launchable, name, NON_CANONICAL)
    expect_host_error(launchable)


def test_host_perf_global_ctrl_reserved_bits_fail_8_when_loaded(launchable):
    """SDM 26.2.2: with "load IA32_PERF_GLOBAL_CTRL", its reserved bits are 0."""
    write(launchable, "HOST_IA32_PERF_GLOBAL_CTRL", 1 << 2)
    expect_passes(launchable)
    update(launchable, EXIT.vmcs_field, set_bits=EXIT.bit("LOAD_IA32_PERF_GLOBAL_CTRL"))
    expect_host_error(launchable)
    write(launchable, "HOST_IA32_PERF_GLOBAL_CTRL", 0x7_0000_0003)
    expect_passes(launchable)


def test_host_pat_invalid_memory_type_fails_8_when_loaded(launchable):
    """SDM 26.2.2: with "load IA32_PAT", every byte of HOST_IA32_PAT is 0, 1, 4, 5, 6 or 7."""
    write(launchable, "HOST_IA32_PAT", 0x0007_0406_0007_0402)
    expect_passes(launchable)
    update(launchable, EXIT.vmcs_field, set_bits=EXIT.bit("LOAD_IA32_PAT"))
    expect_host_error(launchable)
    write(launchable, "HOST_IA32_PAT", 0x0007_0406_0007_0406)
    expect_passes(launchable)


@pytest.mark.parametrize(
    "efer", [EFER.SCE | 1 << 1, EFER.LMA, EFER.LME], ids=["reserved-bit", "lma-without-host-64", "lme-without-host-64"]
)
def test_host_efer_fails_8_when_loaded(launchable, efer):
    """SDM 26.2.2: with "load IA32_EFER": no reserved bit; LMA and LME equal "host address-space size"."""
    update(launchable, EXIT.vmcs_field, set_bits=EXIT.bit("LOAD_IA32_EFER"))
    write(launchable, "HOST_IA32_EFER", EFER.SCE | EFER.NXE)
    expect_passes(launchable)
    write(launchable, "HOST_IA32_EFER", efer)
    expect_host_error(launchable)


def test_host_efer_of_64bit_host_needs_lma_and_lme(launchable_64):
    """SDM 26.2.2: with "host address-space size" = 1, a loaded EFER has LMA = LME = 1."""
    update(launchable_64, EXIT.vmcs_field, set_bits=EXIT.bit("LOAD_IA32_EFER"))
    write(launchable_64, "HOST_IA32_EFER", EFER.LMA | EFER.LME)
    expect_passes(launchable_64)
    write(launchable_64, "HOST_IA32_EFER", EFER.LMA)
    expect_host_error(launchable_64)


SELECTORS = ["ES", "CS", "SS", "DS", "FS", "GS", "TR"]


@pytest.mark.parametrize("segment", SELECTORS)
@pytest.mark.parametrize("low_bits", [1, 3, 4], ids=["rpl-1", "rpl-3", "ti"])
def test_host_selector_rpl_and_ti_must_be_0(launchable, segment, low_bits):
    """SDM 26.2.3: in each host selector, RPL (bits 1:0) and TI (bit 2) are 0."""
    write(launchable, f"HOST_{segment}_SELECTOR", 0x20 | low_bits)
    expect_host_error(launchable)


@pytest.mark.parametrize("segment", ["CS", "TR"])
def test_host_cs_and_tr_selectors_must_not_be_0(launchable, segment):
    """SDM 26.2.3: HOST_CS_SELECTOR and HOST_TR_SELECTOR are not 0000H."""
    write(launchable, f"HOST_{segment}_SELECTOR", 0)
    expect_host_error(launchable)


def test_host_data_selectors_may_be_0(launchable):
    """SDM 26.2.3: DS, ES, FS, GS selectors may be null."""
    for segment in ("DS", "ES", "FS", "GS"):
        write(launchable, f"HOST_{segment}_SELECTOR", 0)
    expect_passes(launchable)


def test_host_ss_selector_must_not_be_0_for_32bit_host(launchable):
    """SDM 26.2.3: HOST_SS_SELECTOR is not 0 when "host address-space size" is 0."""
    write(launchable, "HOST_SS_SELECTOR", 0)
    expect_host_error(launchable)


def test_host_ss_selector_may_be_0_for_64bit_host(launchable_64):
    """SDM 26.2.3: a 64-bit host may have a null SS."""
    write(launchable_64, "HOST_SS_SELECTOR", 0)
    expect_passes(launchable_64)


@pytest.mark.parametrize("name", ["HOST_FS_BASE", "HOST_GS_BASE", "HOST_GDTR_BASE", "HOST_IDTR_BASE", "HOST_TR_BASE"])
def test_host_bases_must_be_canonical(launchable, name):
    """SDM 26.2.3: the host FS, GS, GDTR, IDTR and TR bases are canonical (1 << 32 is fine)."""
    write(launchable, name, 1 << 32)
    expect_passes(launchable)
    write(launchable, name, NON_CANONICAL)
    expect_host_error(launchable)


def test_ia32e_mode_guest_outside_ia32e_mode_fails_8(launchable):
    """SDM 26.2.4 / docs/semantics.md choice 6: outside IA-32e mode "IA-32e mode guest" must be 0 (error 8)."""
    update(launchable, ENTRY.vmcs_field, set_bits=ENTRY.bit("IA32E_MODE"))
    expect_host_error(launchable)


def test_64bit_host_outside_ia32e_mode_fails_8(launchable):
    """SDM 26.2.4: outside IA-32e mode "host address-space size" must be 0."""
    update(launchable, EXIT.vmcs_field, set_bits=EXIT.bit("HOST_ADDR_SPACE_SIZE"))
    update(launchable, "HOST_CR4", set_bits=CR4.PAE)
    expect_host_error(launchable)


def test_32bit_host_in_ia32e_mode_fails_8(launchable_64):
    """SDM 26.2.4: in IA-32e mode "host address-space size" must be 1."""
    update(launchable_64, EXIT.vmcs_field, clear_bits=EXIT.bit("HOST_ADDR_SPACE_SIZE"))
    write(launchable_64, "HOST_RIP", 0x1000)
    expect_host_error(launchable_64)


def test_ia32e_mode_guest_in_ia32e_mode_passes(launchable_64):
    """SDM 26.2.4: in IA-32e mode the guest may be a 64-bit guest."""
    vmwrite_all(launchable_64, presets.guest_fields(ia32e_guest=True))
    update(launchable_64, ENTRY.vmcs_field, set_bits=ENTRY.bit("IA32E_MODE"))
    expect_passes(launchable_64)


def test_32bit_host_cr4_pcide_fails_8(launchable):
    """SDM 26.2.4: with "host address-space size" = 0, HOST_CR4.PCIDE is 0."""
    update(launchable, "HOST_CR4", set_bits=CR4.PCIDE)
    expect_host_error(launchable)


def test_32bit_host_rip_bits_63_32_fail_8(launchable):
    """SDM 26.2.4: with "host address-space size" = 0, HOST_RIP bits 63:32 are 0."""
    write(launchable, "HOST_RIP", 1 << 32)
    expect_host_error(launchable)


def test_64bit_host_without_cr4_pae_fails_8(launchable_64):
    """SDM 26.2.4: with "host address-space size" = 1, HOST_CR4.PAE is 1."""
    update(launchable_64, "HOST_CR4", clear_bits=CR4.PAE)
    expect_host_error(launchable_64)


def test_64bit_host_rip_must_be_canonical(launchable_64):
    """SDM 26.2.4: with "host address-space size" = 1, HOST_RIP is canonical."""
    write(launchable_64, "HOST_RIP", NON_CANONICAL)
    expect_host_error(launchable_64)


def test_64bit_host_may_use_pcide(launchable_64):
    """SDM 26.2.4: the PCIDE restriction applies only to a 32-bit host."""
    update(launchable_64, "HOST_CR4", set_bits=CR4.PCIDE)
    expect_passes(launchable_64)


def test_fail_valid_from_entry_checks_marks_the_entry_dirty(launchable):
    """docs/semantics.md cache: VMfailValid writes the error field, which makes the entry dirty."""
    expect(launchable.vmclear(VMCS_A), Status.SUCCEED)
    expect(launchable.vmptrld(VMCS_A), Status.SUCCEED)
    entry = launchable.current_entry
    assert not launchable.cache_entries[entry].dirty
    expect_entry_error(launchable, VmError.VMRESUME_NONLAUNCHED_VMCS, "vmresume")
    assert launchable.cache_entries[entry].dirty
