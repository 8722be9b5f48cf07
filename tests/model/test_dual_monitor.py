"""The dual-monitor treatment of SMIs and SMM (SDM vol. 3C 34.15; 30.3 VMCALL and VMXOFF; 26.2.1.3, 26.3.1.5).

The model carries the treatment out with ``VmxModel(memory, dual_monitor=True)`` (sim/model/dual_monitor.py).
The fixtures walk the platform's sequence: the BIOS, in SMM, writes the MSEG header, relocates SMBASE and sets
IA32_SMM_MONITOR_CTL; the executive monitor enters VMX root operation with a clear current VMCS (the future
SMM-transfer VMCS) and executes VMCALL; the SMM-transfer monitor (STM) then runs in SMM in VMX root operation
and returns with VM entries whose "entry to SMM" control is 0. Section numbers are those of the current SDM
(34.15.6.6 "Loading Host State" for the state the activation loads from the MSEG header).
"""

from __future__ import annotations

import pytest
from model_setup import (
    OUTSIDE_RAM,
    VMCS_A,
    VMCS_B,
    VMCS_C,
    VMCS_D,
    VMXON_REGION,
    enter_ia32e_mode,
    enter_vmx_root,
    expect,
    load_new_vmcs,
    make_launchable,
    vmwrite_all,
    write_revision,
)

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN
from vmxu.rtl.arch.errors import EXIT_REASON_ENTRY_FAILURE, EXIT_REASON_FROM_ROOT, ExitReason, VmError
from vmxu.rtl.arch.ops import Op, Status, Vector
from vmxu.rtl.arch.smm import (
    IO_SMI,
    IO_SMI_IN,
    MSEG_CR3_OFFSET,
    MSEG_CS_SELECTOR,
    MSEG_EIP_OFFSET,
    MSEG_ESP_OFFSET,
    MSEG_FEATURE_IA32E,
    MSEG_FEATURES,
    MSEG_GDTR_BASE_OFFSET,
    MSEG_GDTR_LIMIT,
    MSEG_REVISION,
    SMM_ENTRY_OFFSET,
    SMM_REVISION_ID,
)
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER
from vmxu.sim import presets
from vmxu.sim.model import PhysicalMemory, VmxModel

#: The MSEG base (IA32_SMM_MONITOR_CTL bits 31:12) and its header (table 34-10), distinct values.
MSEG = 0x8_0000
HEADER = {
    MSEG_REVISION: msrs.MSEG_REVISION_ID,
    MSEG_FEATURES: 0,
    MSEG_GDTR_LIMIT: 0x2F,
    MSEG_GDTR_BASE_OFFSET: 0x100,
    MSEG_CS_SELECTOR: 0x10,
    MSEG_EIP_OFFSET: 0x1000,
    MSEG_ESP_OFFSET: 0x3000,
    MSEG_CR3_OFFSET: 0x4000,
}
MONITOR_CTL_ENABLED = MSEG | msrs.SMM_MONITOR_CTL_VALID
SMBASE_RESET = 0x3_0000
#: Where the BIOS relocates SMBASE (the save map's SMBASE field at RSM), so that GUEST_SMBASE is distinctive.
SMBASE = 0xA_0000
OFF_SMBASE_FIELD = 0xFEF8
OFF_REVISION = 0xFEFC

TRANSFER_VMCS = VMCS_A  # the executive monitor's VMCS that VMCALL turns into the SMM-transfer VMCS
GUEST_VMCS = VMCS_B  # the executive monitor's guest
SMM_GUEST_VMCS = VMCS_C  # the STM's guest that runs in SMM ("entry to SMM" = 1)
#: The executive monitor's state when it executes VMCALL.
EXECUTIVE_RIP = 0x0001_2340
EXECUTIVE_RSP = 0x0001_8000
EXECUTIVE_CR3 = 0x0002_1000
#: VMCS_B's guest and host, distinct from the presets the SMM-transfer VMCS holds.
GUEST_B_RIP = 0x0004_2000
HOST_B_RIP = 0x0011_0000

#: Flat 4-GiB code (type 11, S, P, G; D or L) and data (type 3, S, P, D/B, G) access rights (34.15.6.6).
STM_CODE_AR_32 = 0xC09B
STM_CODE_AR_64 = 0xA09B
STM_DATA_AR = 0xC093
SMI_NMI_BLOCKING = 0xC
IA32_SYSENTER_CS = 0x174
INTR_INFO_VALID = 1 << 31
ENTRY_TO_SMM = ENTRY.bit("SMM")
DEACTIVATE = ENTRY.bit("DEACT_DUAL_MONITOR")


# -- helpers ---------------------------------------------------------------------------------------


def get(model, name):
    return expect(model.get(name), Status.OK).value


def put(model, name, value):
    expect(model.set(name, value), Status.OK)


def vmread(model, field):
    return expect(model.vmread(field), Status.SUCCEED).value


def vmwrite(model, field, value):
    expect(model.vmwrite(field, value), Status.SUCCEED)


def vmptrst(model):
    return expect(model.vmptrst(), Status.SUCCEED).value


def fail_valid(outcome, error):
    expect(outcome, Status.FAIL_VALID)
    assert outcome.error == error, f"expected VMfailValid({int(error)}), got {outcome}"
    return outcome


def exited(outcome, reason):
    expect(outcome, Status.EXITED)
    assert outcome.reason == reason, f"expected exit reason {int(reason)}, got {outcome}"
    return outcome


def smi(model, **io):
    return model.execute(Op.SMI, **io)


def write_mseg(model, changes=None):
    """The BIOS writes the MSEG header (table 34-10); ``changes`` maps header offsets to other values."""
    for offset, value in (HEADER | (changes or {})).items():
        model.memory.write(MSEG + offset, 4, value)


def bios_enables(model, monitor_ctl=MONITOR_CTL_ENABLED):
    """In SMM (an SMI under the default treatment) the BIOS relocates SMBASE and writes IA32_SMM_MONITOR_CTL
    (writable only in SMM, 34.15.5), then leaves SMM with RSM."""
    expect(smi(model), Status.OK)
    model.memory.write(SMBASE_RESET + OFF_SMBASE_FIELD, 4, SMBASE)
    expect(model.wrmsr(msrs.IA32_SMM_MONITOR_CTL, monitor_ctl), Status.OK)
    expect(model.execute(Op.RSM), Status.OK)
    assert get(model, "smbase") == SMBASE and get(model, "smm") == 0


def dual_model(mseg_changes=None):
    """A model that reports the treatment, with the MSEG header written and the treatment enabled."""
    model = VmxModel(PhysicalMemory(), dual_monitor=True)
    write_mseg(model, mseg_changes)
    bios_enables(model)
    return model


def executive_ready(model):
    """The executive monitor in VMX root operation with a clear current VMCS holding valid controls."""
    enter_vmx_root(model)
    load_new_vmcs(model, TRANSFER_VMCS)
    vmwrite_all(model, presets.host_fields())


def return_from_smm(model, expected=Status.ENTERED):
    """The STM's VM entry with the current VMCS (VMLAUNCH while it is clear, else VMRESUME)."""
    launched = model.current_launch & 1
    return expect(model.vmresume() if launched else model.vmlaunch(), expected)


def return_to_root(model, *, link=presets.NO_LINK_POINTER, entry=0, expected=Status.ENTERED):
    """The STM returns to the executive monitor in VMX root operation (executive-VMCS pointer = VMXON
    pointer), with a valid guest state for it."""
    assert vmread(model, "EXECUTIVE_VMCS_POINTER") == VMXON_REGION
    vmwrite_all(model, presets.guest_fields() | {"VMCS_LINK_POINTER": link, "GUEST_INTERRUPTIBILITY_INFO": 0})
    if entry:
        vmwrite(model, ENTRY.vmcs_field, vmread(model, ENTRY.vmcs_field) | entry)
    return return_from_smm(model, expected)


def launch_guest_b(model):
    """The executive monitor (in VMX root operation, outside SMM) runs a guest on VMCS_B."""
    load_new_vmcs(model, GUEST_VMCS)
    make_launchable(model)
    vmwrite_all(model, {"GUEST_RIP": GUEST_B_RIP, "HOST_RIP": HOST_B_RIP})
    expect(model.vmlaunch(), Status.ENTERED)
    assert model.non_root and get(model, "smm") == 0


def prepare_smm_guest(model, *, interruptibility=0x4, entry=ENTRY_TO_SMM):
    """The STM sets up VMCS_C for a guest entered with "entry to SMM" = 1 (the legacy SMM handler)."""
    load_new_vmcs(model, SMM_GUEST_VMCS)
    make_launchable(model)
    vmwrite(model, ENTRY.vmcs_field, ENTRY.true_default1 | entry)
    vmwrite(model, "GUEST_INTERRUPTIBILITY_INFO", interruptibility)


def run_smm_guest_and_exit(model):
    """The STM launches the SMM guest on VMCS_C and the guest's CPUID exits back to the STM (VMCS_C launched)."""
    prepare_smm_guest(model)
    expect(model.vmlaunch(), Status.ENTERED)
    exited(model.execute(Op.CPUID), ExitReason.CPUID)
    expect(model.vmptrld(TRANSFER_VMCS), Status.SUCCEED)


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def dm():
    """Reports the treatment; MSEG header written; IA32_SMM_MONITOR_CTL valid; SMBASE relocated; no VMX."""
    return dual_model()


@pytest.fixture
def executive(dm):
    """The executive monitor in VMX root operation, VMCS_A current, clear, with valid controls and host state."""
    executive_ready(dm)
    return dm


@pytest.fixture
def stm(executive):
    """The STM just activated: in SMM, VMX root operation, VMCS_A (the SMM-transfer VMCS) current."""
    exited(executive.vmcall(), ExitReason.VMCALL)
    return executive


@pytest.fixture
def root_active(stm):
    """The STM returned to the executive monitor: VMX root operation outside SMM, no current VMCS."""
    return_to_root(stm)
    assert get(stm, "smm") == 0 and stm.dual_monitor_active
    return stm


@pytest.fixture
def guest_running(root_active):
    """The executive monitor's guest runs on VMCS_B (VMX non-root operation outside SMM)."""
    launch_guest_b(root_active)
    return root_active


@pytest.fixture
def stm_after_guest_smi(guest_running):
    """An SMI hit the executive monitor's guest: an SMM VM exit to the STM, VMCS_A current."""
    exited(smi(guest_running), ExitReason.OTHER_SMI)
    return guest_running


# -- 1. Reporting the treatment (A.1, 30.3 VMCALL) ----------------------------------------------------


def test_vmx_basic_bit_49_reports_the_treatment():
    """SDM A.1: IA32_VMX_BASIC bit 49 = 1 iff the dual-monitor treatment is supported: by default exactly with
    VM entries and exits (as ``VmxUnit(guests)``)."""
    for model, bit in (
        (VmxModel(PhysicalMemory(), dual_monitor=True), 1),
        (VmxModel(PhysicalMemory()), 1),
        (VmxModel(PhysicalMemory(), dual_monitor=False), 0),
        (VmxModel(PhysicalMemory(), transitions=False), 0),
    ):
        assert expect(model.rdmsr(msrs.IA32_VMX_BASIC), Status.OK).value >> 49 & 1 == bit
    with pytest.raises(ValueError, match="needs VM entries"):
        VmxModel(PhysicalMemory(), transitions=False, dual_monitor=True)


def test_vmcall_without_support_fails_1_even_with_the_valid_bit():
    """SDM 30.3 VMCALL: without IA32_VMX_BASIC[49], VMCALL in root is VMfail(1) even with the valid bit set."""
    model = VmxModel(PhysicalMemory(), dual_monitor=False)
    write_mseg(model)
    bios_enables(model)
    assert expect(model.rdmsr(msrs.IA32_SMM_MONITOR_CTL), Status.OK).value == MONITOR_CTL_ENABLED
    executive_ready(model)
    fail_valid(model.vmcall(), VmError.VMCALL_IN_ROOT)
    assert vmread(model, "VM_INSTRUCTION_ERROR") == 1
    assert get(model, "smm") == 0 and not model.dual_monitor_active


# -- 2. VMCALL's activation checks, in order (30.3 VMCALL, 34.15.6.1, 34.15.6.2) -----------------------


def test_vmcall_in_smm_fails_1(executive):
    """SDM 30.3 VMCALL: in SMM, VMCALL in VMX root operation is VMfail(1), before any activation check."""
    executive.in_smm = True
    fail_valid(executive.vmcall(), VmError.VMCALL_IN_ROOT)
    assert not executive.dual_monitor_active


def test_vmcall_with_valid_bit_clear_fails_1():
    """SDM 30.3 VMCALL, 34.15.6.1: IA32_SMM_MONITOR_CTL.valid = 0 gives VMfail(1)."""
    model = VmxModel(PhysicalMemory(), dual_monitor=True)
    write_mseg(model)
    bios_enables(model, monitor_ctl=MSEG)
    executive_ready(model)
    fail_valid(model.vmcall(), VmError.VMCALL_IN_ROOT)
    assert get(model, "smm") == 0 and not model.dual_monitor_active


def test_vmcall_without_current_vmcs_fails_invalid(dm):
    """SDM 30.3 VMCALL, 34.15.6.1 check 1: no current VMCS gives VMfailInvalid."""
    enter_vmx_root(dm)
    expect(dm.vmcall(), Status.FAIL_INVALID)
    assert get(dm, "smm") == 0 and not dm.dual_monitor_active


def test_vmcall_with_launched_current_vmcs_fails_19(executive):
    """SDM 34.15.6.1 check 2: the current VMCS's launch state must be clear, else VMfailValid(19)."""
    make_launchable(executive)
    expect(executive.vmlaunch(), Status.ENTERED)
    exited(executive.execute(Op.CPUID), ExitReason.CPUID)
    fail_valid(executive.vmcall(), VmError.VMCALL_NONCLEAR_VMCS)
    assert vmread(executive, "VM_INSTRUCTION_ERROR") == 19
    assert get(executive, "smm") == 0 and not executive.dual_monitor_active


@pytest.mark.parametrize(
    "controls",
    [EXIT.true_default1 & ~1, EXIT.true_default1 | (1 << 31)],
    ids=["allowed0-bit-clear", "bit-outside-allowed1"],
)
def test_vmcall_with_exit_controls_outside_capability_fails_20(executive, controls):
    """SDM 34.15.6.1 check 3: VM-exit controls outside IA32_VMX_TRUE_EXIT_CTLS give VMfailValid(20)."""
    vmwrite(executive, EXIT.vmcs_field, controls)
    fail_valid(executive.vmcall(), VmError.VMCALL_INVALID_EXIT_CONTROLS)
    assert vmread(executive, "VM_INSTRUCTION_ERROR") == 20
    assert get(executive, "smm") == 0


def test_vmcall_with_misaligned_msr_store_address_fails_20(executive):
    """SDM 34.15.6.1 check 3: MSR-store count != 0 needs address bits 3:0 = 0, else VMfailValid(20)."""
    vmwrite_all(executive, {"VM_EXIT_MSR_STORE_COUNT": 1, "VM_EXIT_MSR_STORE_ADDR": 0x7008})
    fail_valid(executive.vmcall(), VmError.VMCALL_INVALID_EXIT_CONTROLS)
    assert get(executive, "smm") == 0


def test_vmcall_with_msr_store_list_beyond_maxphyaddr_fails_20(executive):
    """SDM 34.15.6.1 check 3: the MSR-store area's last byte must be below 2^MAXPHYADDR, else 20."""
    last_entry = (1 << msrs.MAXPHYADDR) - 16
    vmwrite_all(executive, {"VM_EXIT_MSR_STORE_COUNT": 2, "VM_EXIT_MSR_STORE_ADDR": last_entry})
    fail_valid(executive.vmcall(), VmError.VMCALL_INVALID_EXIT_CONTROLS)


def test_vmcall_ignores_msr_store_address_with_count_0(executive):
    """SDM 34.15.6.1 check 3: the MSR-store address is checked only when the MSR-store count is not 0."""
    vmwrite_all(executive, {"VM_EXIT_MSR_STORE_COUNT": 0, "VM_EXIT_MSR_STORE_ADDR": 0x7008})
    exited(executive.vmcall(), ExitReason.VMCALL)


def test_vmcall_with_wrong_mseg_revision_fails_22_and_leaves_smm():
    """SDM 30.3 VMCALL, 34.15.6.2: MSEG revision != IA32_VMX_MISC[63:32]: leave SMM, VMfailValid(22)."""
    model = VmxModel(PhysicalMemory(), dual_monitor=True)
    misc_revision = expect(model.rdmsr(msrs.IA32_VMX_MISC), Status.OK).value >> 32
    assert misc_revision == msrs.MSEG_REVISION_ID
    write_mseg(model, {MSEG_REVISION: misc_revision + 1})
    bios_enables(model)
    executive_ready(model)
    fail_valid(model.vmcall(), VmError.VMCALL_INCORRECT_MSEG_REVISION)
    assert vmread(model, "VM_INSTRUCTION_ERROR") == 22
    assert get(model, "smm") == 0 and not model.dual_monitor_active
    assert vmptrst(model) == TRANSFER_VMCS
    expect(model.vmxoff(), Status.SUCCEED)  # not active: VMXOFF does not fail with 23


@pytest.mark.parametrize("features", [1 << 1, 1 << 31, MSEG_FEATURE_IA32E | 1 << 5])
def test_vmcall_with_reserved_feature_bits_fails_24(features):
    """SDM 34.15.6.2: SMM-monitor features bits 31:1 must be 0, else leave SMM and VMfailValid(24)."""
    model = dual_model({MSEG_FEATURES: features})
    executive_ready(model)
    fail_valid(model.vmcall(), VmError.VMCALL_INVALID_SMM_MONITOR_FEATURES)
    assert vmread(model, "VM_INSTRUCTION_ERROR") == 24
    assert get(model, "smm") == 0 and not model.dual_monitor_active


def test_vmcall_in_64bit_mode_without_ia32e_feature_bit_fails_24(dm):
    """SDM 34.15.6.1: VMCALL in 64-bit mode (LMA = 1, CS.L = 1) needs features bit 0 = 1, else 24."""
    put(dm, "cr4", CR4.PAE)
    enter_ia32e_mode(dm)
    executive_ready(dm)
    fail_valid(dm.vmcall(), VmError.VMCALL_INVALID_SMM_MONITOR_FEATURES)
    assert get(dm, "smm") == 0


def test_vmcall_in_64bit_mode_with_ia32e_feature_bit_activates():
    """SDM 34.15.6.1-2: in 64-bit mode with the IA-32e mode SMM feature bit 1 the activation checks pass."""
    model = dual_model({MSEG_FEATURES: MSEG_FEATURE_IA32E})
    put(model, "cr4", CR4.PAE)
    enter_ia32e_mode(model)
    executive_ready(model)
    exited(model.vmcall(), ExitReason.VMCALL)
    assert model.dual_monitor_active and get(model, "smm") == 1


def test_launch_state_is_checked_before_exit_controls(executive):
    """SDM 30.3 VMCALL: the launch-state check (19) comes before the VM-exit control check (20)."""
    make_launchable(executive)
    expect(executive.vmlaunch(), Status.ENTERED)
    exited(executive.execute(Op.CPUID), ExitReason.CPUID)
    vmwrite(executive, EXIT.vmcs_field, 0)
    fail_valid(executive.vmcall(), VmError.VMCALL_NONCLEAR_VMCS)


def test_exit_controls_are_checked_before_the_mseg_header():
    """SDM 30.3 VMCALL, 34.15.6.1: a VM-exit control failure (20) skips the MSEG checks (22, 24)."""
    model = dual_model({MSEG_REVISION: 0xBAD})
    executive_ready(model)
    vmwrite(model, EXIT.vmcs_field, 0)
    fail_valid(model.vmcall(), VmError.VMCALL_INVALID_EXIT_CONTROLS)


def test_mseg_revision_is_checked_before_the_features():
    """SDM 30.3 VMCALL, 34.15.6.2: the MSEG revision (22) is checked before the features field (24)."""
    model = dual_model({MSEG_REVISION: 0xBAD, MSEG_FEATURES: 1 << 7})
    executive_ready(model)
    fail_valid(model.vmcall(), VmError.VMCALL_INCORRECT_MSEG_REVISION)


# -- 3. Successful activation (34.15.6) --------------------------------------------------------------


@pytest.fixture
def activated(executive):
    """Activation with a distinctive executive state; returns (model, outcome)."""
    put(executive, "rip", EXECUTIVE_RIP)
    put(executive, "rsp", EXECUTIVE_RSP)
    put(executive, "cr3", EXECUTIVE_CR3)
    outcome = executive.vmcall()
    return executive, outcome


def test_activation_is_an_smm_vm_exit_with_reason_18_from_root(activated):
    """SDM 34.15.6, 34.15.2.3: activation is an SMM VM exit: reason 18, bit 29 (from root), length 3."""
    model, outcome = activated
    exited(outcome, ExitReason.VMCALL)
    assert vmread(model, "VM_EXIT_REASON") == 18 | EXIT_REASON_FROM_ROOT
    assert vmread(model, "EXIT_QUALIFICATION") == 0
    assert vmread(model, "VM_EXIT_INSTRUCTION_LEN") == 3
    assert model.dual_monitor_active


def test_activation_makes_the_current_vmcs_the_transfer_vmcs(activated):
    """SDM 34.15.6.3, 34.15.2.2: transfer VMCS := current VMCS; executive-VMCS pointer := VMXON pointer."""
    model, _ = activated
    assert vmread(model, "EXECUTIVE_VMCS_POINTER") == VMXON_REGION
    assert vmptrst(model) == TRANSFER_VMCS


def test_activation_enters_smm_in_vmx_root_operation(activated):
    """SDM 34.15.6, 34.15.2: after activation the STM runs in SMM in VMX root operation."""
    model, _ = activated
    assert get(model, "smm") == 1
    assert model.in_vmx_operation and not model.non_root


def test_activation_saves_the_executive_state_and_smbase(activated):
    """SDM 34.15.6.4, 27.3: the executive monitor's state goes to the guest area; GUEST_SMBASE := SMBASE."""
    model, _ = activated
    assert vmread(model, "GUEST_RIP") == EXECUTIVE_RIP
    assert vmread(model, "GUEST_RSP") == EXECUTIVE_RSP
    assert vmread(model, "GUEST_CR3") == EXECUTIVE_CR3
    assert vmread(model, "GUEST_CR0") == presets.CR0_VMX
    assert vmread(model, "GUEST_CR4") == CR4.VMXE
    assert vmread(model, "GUEST_SMBASE") == SMBASE


def test_activation_loads_rip_rsp_cr3_from_the_mseg_header(activated):
    """SDM 34.15.6.6: RIP, RSP, CR3 := MSEG base + the header's EIP, ESP, CR3 offsets."""
    model, _ = activated
    assert get(model, "rip") == MSEG + HEADER[MSEG_EIP_OFFSET]
    assert get(model, "rsp") == MSEG + HEADER[MSEG_ESP_OFFSET]
    assert get(model, "cr3") == MSEG + HEADER[MSEG_CR3_OFFSET]


def test_activation_loads_flat_segments_from_the_mseg_header(activated):
    """SDM 34.15.6.6: CS.selector from the header, others CS+8; flat 4-GiB code (type 11) and data (3)."""
    model, _ = activated
    cs = HEADER[MSEG_CS_SELECTOR]
    assert get(model, "cs.selector") == cs
    assert get(model, "cs.ar") == STM_CODE_AR_32
    for seg in ("cs", "ss", "ds", "es", "fs", "gs"):
        assert get(model, f"{seg}.base") == 0, seg
        assert get(model, f"{seg}.limit") == 0xFFFF_FFFF, seg
    for seg in ("ss", "ds", "es", "fs", "gs"):
        assert get(model, f"{seg}.selector") == cs + 8, seg
        assert get(model, f"{seg}.ar") == STM_DATA_AR, seg


def test_activation_loads_gdtr_from_the_mseg_header(activated):
    """SDM 34.15.6.6: GDTR.base := MSEG + GDTR offset, GDTR.limit from the header; IDTR.limit := 0."""
    model, _ = activated
    assert get(model, "gdtr.base") == MSEG + HEADER[MSEG_GDTR_BASE_OFFSET]
    assert get(model, "gdtr.limit") == HEADER[MSEG_GDTR_LIMIT]
    assert get(model, "idtr.limit") == 0


def test_activation_loads_the_fixed_state(activated):
    """SDM 34.15.6.6: CR0 PG|NE|ET|MP|PE, PAE/LME/LMA = feature bit 0, DR7 400H, RFLAGS 2, SMI+NMI blocked."""
    model, _ = activated
    assert get(model, "cr0") == CR0.PG | CR0.NE | CR0.ET | CR0.MP | CR0.PE
    assert get(model, "cr4") & CR4.PAE == 0
    assert get(model, "efer") & (EFER.LME | EFER.LMA) == 0
    assert get(model, "dr7") == 0x400
    assert get(model, "debugctl") == 0
    assert get(model, "rflags") == 2
    assert get(model, "activity") == 0
    assert get(model, "interruptibility") == SMI_NMI_BLOCKING


def test_activation_keeps_cr0_cd_and_nw(executive):
    """SDM 34.15.6.6: CR0.CD and NW are unchanged, PG|NE|ET|MP|PE set, every other CR0 bit cleared."""
    cr0_ts, cr0_wp, cr0_am = 1 << 3, 1 << 16, 1 << 18
    put(executive, "cr0", presets.CR0_VMX | CR0.CD | CR0.NW | cr0_ts | cr0_wp | cr0_am)
    exited(executive.vmcall(), ExitReason.VMCALL)
    assert get(executive, "cr0") == CR0.PG | CR0.NE | CR0.ET | CR0.MP | CR0.PE | CR0.CD | CR0.NW


def test_activation_with_ia32e_feature_bit_enters_ia32e_mode():
    """SDM 34.15.6.6: with the IA-32e feature bit 1: CR4.PAE = 1, EFER.LME = LMA = 1, CS.L = 1, CS.D = 0."""
    model = dual_model({MSEG_FEATURES: MSEG_FEATURE_IA32E})
    executive_ready(model)
    exited(model.vmcall(), ExitReason.VMCALL)
    assert get(model, "cr4") & CR4.PAE == CR4.PAE
    assert get(model, "efer") & (EFER.LME | EFER.LMA) == EFER.LME | EFER.LMA
    assert get(model, "cs.ar") == STM_CODE_AR_64


def test_activation_uses_no_exit_msr_lists(executive):
    """SDM 34.15.6.5, 34.15.6.7: the activating SMM VM exit uses no VM-exit MSR-store or MSR-load area."""
    store, load = 0x7000, 0x7100
    executive.memory.write(store, 4, IA32_SYSENTER_CS)
    executive.memory.write(store + 8, 8, 0x5A5A_5A5A)
    executive.memory.write(load, 4, IA32_SYSENTER_CS)
    executive.memory.write(load + 8, 8, 0x77)
    vmwrite_all(executive, {"VM_EXIT_MSR_STORE_COUNT": 1, "VM_EXIT_MSR_STORE_ADDR": store})
    vmwrite_all(executive, {"VM_EXIT_MSR_LOAD_COUNT": 1, "VM_EXIT_MSR_LOAD_ADDR": load})
    put(executive, "sysenter_cs", 0x10)
    exited(executive.vmcall(), ExitReason.VMCALL)
    assert get(executive, "sysenter_cs") == 0x10
    assert executive.memory.read(store + 8, 8) == 0x5A5A_5A5A


def test_activation_keeps_other_cr4_bits_and_sets_pse(executive):
    """SDM 34.15.6.6: CR4.MCE, PGE cleared, PAE := feature, PSE := !feature, all other CR4 bits unchanged."""
    assert msrs.CR4_FIXED1 & CR4.PSE  # PSE is supported
    put(executive, "cr4", CR4.VMXE | CR4.TSD | CR4.OSFXSR | CR4.MCE | CR4.PGE)
    exited(executive.vmcall(), ExitReason.VMCALL)
    assert get(executive, "cr4") == CR4.VMXE | CR4.TSD | CR4.OSFXSR | CR4.PSE


def test_activation_cr3_keeps_only_bits_4_3_of_the_offset():
    """SDM 34.15.6.6: CR3 := bits 31:12 of MSEG + CR3 offset, bits 4:3 of the offset; bits 11:5, 2:0 = 0."""
    model = dual_model({MSEG_CR3_OFFSET: 0x4FFF})
    executive_ready(model)
    exited(model.vmcall(), ExitReason.VMCALL)
    assert get(model, "cr3") == MSEG + 0x4000 | 0x18


@pytest.mark.parametrize(("header_cs", "cs", "data"), [(0x13, 0x10, 0x18), (0x0, 0x08, 0x10)])
def test_activation_cs_selector_clears_bits_2_0(header_cs, cs, data):
    """SDM 34.15.6.6: CS.selector := header CS with bits 2:0 cleared (0 becomes 8); data selectors CS + 8."""
    model = dual_model({MSEG_CS_SELECTOR: header_cs})
    executive_ready(model)
    exited(model.vmcall(), ExitReason.VMCALL)
    assert get(model, "cs.selector") == cs
    assert get(model, "ss.selector") == data


def test_activation_keeps_idtr_base(executive):
    """SDM 34.15.6.6: IDTR.base is unchanged; IDTR.limit is cleared to 0000H."""
    put(executive, "idtr.base", 0xA000)
    exited(executive.vmcall(), ExitReason.VMCALL)
    assert get(executive, "idtr.base") == 0xA000
    assert get(executive, "idtr.limit") == 0


def test_activation_makes_ldtr_unusable(executive):
    """SDM 34.15.6.6: LDTR is unusable and its selector is cleared to 0000H."""
    put(executive, "ldtr.selector", 0x28)
    exited(executive.vmcall(), ExitReason.VMCALL)
    assert get(executive, "ldtr.selector") == 0
    assert get(executive, "ldtr.ar") & AR.UNUSABLE


# -- 4. While the treatment is active (30.3 VMXOFF, VMCALL; 34.15.3; 34.3.1) -------------------------


def test_vmxoff_in_the_stm_fails_23(stm):
    """SDM 30.3 VMXOFF: under the dual-monitor treatment VMXOFF is VMfail(23)."""
    fail_valid(stm.vmxoff(), VmError.VMXOFF_UNDER_DUAL_MONITOR)
    assert vmread(stm, "VM_INSTRUCTION_ERROR") == 23
    assert stm.in_vmx_operation


def test_vmxoff_of_the_executive_monitor_fails_23(root_active):
    """SDM 30.3 VMXOFF: VMfail(23) outside SMM too (VMfailInvalid without a current VMCS)."""
    expect(root_active.vmxoff(), Status.FAIL_INVALID)
    assert root_active.in_vmx_operation
    load_new_vmcs(root_active, VMCS_D)
    fail_valid(root_active.vmxoff(), VmError.VMXOFF_UNDER_DUAL_MONITOR)
    assert root_active.in_vmx_operation


def test_rsm_in_the_stm_is_ud(stm):
    """SDM 34.15.3, vol. 2B RSM: RSM in VMX root operation under the dual-monitor treatment is #UD."""
    outcome = expect(stm.execute(Op.RSM), Status.FAULT)
    assert outcome.vector == Vector.UD
    assert get(stm, "smm") == 1


def test_vmcall_in_the_stm_fails_1(stm):
    """SDM 30.3 VMCALL: in SMM (the STM), VMCALL in VMX root operation is VMfail(1)."""
    fail_valid(stm.vmcall(), VmError.VMCALL_IN_ROOT)
    assert get(stm, "smm") == 1 and vmptrst(stm) == TRANSFER_VMCS


def test_smi_in_the_stm_is_held_pending(stm):
    """SDM 34.3.1, 34.15.2.5: SMIs are blocked in SMM; an SMI in the STM is held pending, nothing changes."""
    rip = get(stm, "rip")
    outcome = expect(smi(stm), Status.OK)
    assert outcome.pending
    assert get(stm, "smm") == 1 and get(stm, "rip") == rip
    assert vmptrst(stm) == TRANSFER_VMCS
    assert vmread(stm, "VM_EXIT_REASON") == 18 | EXIT_REASON_FROM_ROOT


# -- 5. SMM VM exits (34.15.2) -----------------------------------------------------------------------


def test_smi_in_vmx_root_is_an_smm_vm_exit_from_root(root_active):
    """SDM 34.15.2: SMI in root: reason 6|bit 29, executive := VMXON ptr, transfer VMCS current, host loaded."""
    put(root_active, "rip", 0x0004_4440)
    exited(smi(root_active), ExitReason.OTHER_SMI)
    assert vmptrst(root_active) == TRANSFER_VMCS
    assert vmread(root_active, "VM_EXIT_REASON") == 6 | EXIT_REASON_FROM_ROOT
    assert vmread(root_active, "EXECUTIVE_VMCS_POINTER") == VMXON_REGION
    assert vmread(root_active, "GUEST_RIP") == 0x0004_4440
    assert vmread(root_active, "GUEST_SMBASE") == SMBASE
    assert get(root_active, "rip") == vmread(root_active, "HOST_RIP") == presets.HOST_RIP_32
    assert get(root_active, "smm") == 1 and not root_active.non_root
    assert get(root_active, "interruptibility") & SMI_NMI_BLOCKING == SMI_NMI_BLOCKING


def test_smi_in_vmx_non_root_is_an_smm_vm_exit(guest_running):
    """SDM 34.15.2.2-3: SMI in non-root: reason 6 without bit 29, executive := the guest's VMCS, state saved."""
    exited(smi(guest_running), ExitReason.OTHER_SMI)
    assert not guest_running.non_root and get(guest_running, "smm") == 1
    assert vmptrst(guest_running) == TRANSFER_VMCS
    assert vmread(guest_running, "VM_EXIT_REASON") == 6
    assert vmread(guest_running, "EXECUTIVE_VMCS_POINTER") == GUEST_VMCS
    assert vmread(guest_running, "GUEST_RIP") == GUEST_B_RIP
    assert get(guest_running, "rip") == presets.HOST_RIP_32


@pytest.mark.parametrize(("port", "size", "direction_in"), [(0xB2, 1, False), (0x60, 2, True), (0xCFC, 4, True)])
def test_io_smi_is_an_smm_vm_exit_with_reason_5(root_active, port, size, direction_in):
    """SDM 34.15.2.3: I/O SMI: reason 5, I/O exit qualification (size-1, IN bit 3, port 31:16) and I/O RIP."""
    put(root_active, "rip", 0x0004_5550)
    value = IO_SMI | (IO_SMI_IN if direction_in else 0)
    exited(smi(root_active, index=port, value=value, io_size=size), ExitReason.IO_SMI)
    assert vmread(root_active, "VM_EXIT_REASON") == 5 | EXIT_REASON_FROM_ROOT
    assert vmread(root_active, "EXIT_QUALIFICATION") == (size - 1) | int(direction_in) << 3 | port << 16
    assert vmread(root_active, "IO_RIP") == 0x0004_5550
    assert get(root_active, "smm") == 1


def test_vmcall_in_root_while_active_is_an_smm_vm_exit(root_active):
    """SDM 30.3 VMCALL, 34.15.2: active, VMCALL in root outside SMM: SMM VM exit 18|bit 29, length 3."""
    put(root_active, "rip", 0x0004_6660)
    exited(root_active.vmcall(), ExitReason.VMCALL)
    assert vmptrst(root_active) == TRANSFER_VMCS
    assert vmread(root_active, "VM_EXIT_REASON") == 18 | EXIT_REASON_FROM_ROOT
    assert vmread(root_active, "VM_EXIT_INSTRUCTION_LEN") == 3
    assert vmread(root_active, "GUEST_RIP") == 0x0004_6660
    assert vmread(root_active, "EXECUTIVE_VMCS_POINTER") == VMXON_REGION
    assert get(root_active, "smm") == 1


def test_vmcall_in_non_root_exits_to_the_executive_monitor(guest_running):
    """SDM 25.1.2, 34.15.2: VMCALL in non-root is an ordinary VM exit (18, no bit 29) to the executive."""
    exited(guest_running.vmcall(), ExitReason.VMCALL)
    assert get(guest_running, "smm") == 0
    assert vmptrst(guest_running) == GUEST_VMCS
    assert vmread(guest_running, "VM_EXIT_REASON") == 18
    assert get(guest_running, "rip") == HOST_B_RIP


def test_smm_vm_exit_stores_ia32_smbase(root_active):
    """SDM 27.4: an SMM-only MSR fails in the MSR-store list only if the exit does not end in SMM."""
    store = 0x7000
    root_active.memory.write(store, 4, msrs.IA32_SMBASE)
    exited(smi(root_active), ExitReason.OTHER_SMI)  # the STM, with the SMM-transfer VMCS current, sets the list
    vmwrite_all(root_active, {"VM_EXIT_MSR_STORE_COUNT": 1, "VM_EXIT_MSR_STORE_ADDR": store})
    return_to_root(root_active)
    exited(smi(root_active), ExitReason.OTHER_SMI)
    assert root_active.memory.read(store + 8, 8) == SMBASE


def test_smm_vm_exit_loads_ia32_smm_monitor_ctl(root_active):
    """SDM 27.6, 34.15.5: an SMM VM exit (ends in SMM) may load IA32_SMM_MONITOR_CTL from its MSR-load list."""
    load, new_ctl = 0x7100, 0x9_0000 | msrs.SMM_MONITOR_CTL_VALID
    root_active.memory.write(load, 4, msrs.IA32_SMM_MONITOR_CTL)
    root_active.memory.write(load + 8, 8, new_ctl)
    exited(smi(root_active), ExitReason.OTHER_SMI)  # the STM, with the SMM-transfer VMCS current, sets the list
    vmwrite_all(root_active, {"VM_EXIT_MSR_LOAD_COUNT": 1, "VM_EXIT_MSR_LOAD_ADDR": load})
    return_to_root(root_active)
    exited(smi(root_active), ExitReason.OTHER_SMI)
    assert expect(root_active.rdmsr(msrs.IA32_SMM_MONITOR_CTL), Status.OK).value == new_ctl


# -- 6. VM entries in SMM (34.15.4) ------------------------------------------------------------------


def test_entry_to_smm_keeps_the_guest_in_smm_and_its_rsm_exits(stm):
    """SDM 34.15.3-4: "entry to SMM" = 1 runs the guest in SMM; its RSM causes a VM exit, reason 17."""
    prepare_smm_guest(stm)
    expect(stm.vmlaunch(), Status.ENTERED)
    assert stm.non_root and get(stm, "smm") == 1
    exited(stm.execute(Op.RSM), ExitReason.RSM)
    assert vmread(stm, "VM_EXIT_REASON") == 17
    assert not stm.non_root and get(stm, "smm") == 1
    assert vmptrst(stm) == SMM_GUEST_VMCS


def test_exit_of_the_smm_guest_returns_to_the_stm_in_smm(stm):
    """SDM 34.15.4, 27.5: an ordinary VM exit of a guest in SMM returns to the STM, still in SMM."""
    prepare_smm_guest(stm)
    expect(stm.vmlaunch(), Status.ENTERED)
    exited(stm.execute(Op.CPUID), ExitReason.CPUID)
    assert not stm.non_root and stm.in_vmx_operation
    assert get(stm, "smm") == 1
    assert get(stm, "rip") == presets.HOST_RIP_32
    assert get(stm, "interruptibility") & 0x4
    assert stm.dual_monitor_active


def test_return_to_root_leaves_smm_with_no_current_vmcs(stm):
    """SDM 34.15.4.7: executive = VMXON ptr: stay in root, leave SMM, current := link pointer (all ones: none)."""
    return_to_root(stm)
    assert not stm.non_root and stm.in_vmx_operation
    assert get(stm, "smm") == 0
    assert vmptrst(stm) == 0xFFFF_FFFF_FFFF_FFFF
    assert get(stm, "rip") == presets.GUEST_RIP
    assert stm.dual_monitor_active


def test_return_to_root_makes_the_link_pointer_current(stm):
    """SDM 34.15.4.7: returning to VMX root operation, current-VMCS pointer := the VMCS-link pointer."""
    write_revision(stm, VMCS_D)
    return_to_root(stm, link=VMCS_D)
    assert vmptrst(stm) == VMCS_D


def test_return_from_smm_loads_smbase_from_guest_smbase(stm):
    """SDM 34.15.4.5: VM entries that return from SMM load SMBASE from the SMBASE (GUEST_SMBASE) field."""
    vmwrite(stm, "GUEST_SMBASE", 0xB_0000)
    return_to_root(stm)
    assert get(stm, "smbase") == 0xB_0000


def test_return_to_a_launched_executive_vmcs_enters_non_root(stm_after_guest_smi):
    """SDM 34.15.4.7: executive = launched VMCS: non-root under it; its guest's exits go to its host."""
    model = stm_after_guest_smi
    return_from_smm(model)
    assert model.non_root and get(model, "smm") == 0
    assert get(model, "rip") == GUEST_B_RIP
    exited(model.execute(Op.CPUID), ExitReason.CPUID)
    assert vmptrst(model) == GUEST_VMCS
    assert vmread(model, "VM_EXIT_REASON") == int(ExitReason.CPUID)
    assert vmread(model, "GUEST_RIP") == GUEST_B_RIP
    assert get(model, "rip") == HOST_B_RIP


def test_return_saves_the_transfer_vmcs_for_the_next_smm_vm_exit(stm_after_guest_smi):
    """SDM 34.15.4.7: the return sets transfer VMCS := current, so the next SMI exits to the same VMCS."""
    model = stm_after_guest_smi
    return_from_smm(model)
    exited(smi(model), ExitReason.OTHER_SMI)
    assert vmptrst(model) == TRANSFER_VMCS
    assert vmread(model, "EXECUTIVE_VMCS_POINTER") == GUEST_VMCS


@pytest.mark.parametrize(
    ("pointer", "revision", "error"),
    [
        (VMCS_D | 0x800, msrs.VMCS_REVISION_ID, VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER),
        (1 << msrs.MAXPHYADDR, msrs.VMCS_REVISION_ID, VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER),
        (VMCS_D, msrs.VMCS_REVISION_ID + 1, VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER),
        (VMCS_D, msrs.VMCS_REVISION_ID, VmError.ENTRY_NONLAUNCHED_EXECUTIVE_VMCS),
    ],
    ids=["not-4k-aligned", "beyond-maxphyaddr", "wrong-revision", "not-launched"],
)
def test_return_with_a_bad_executive_vmcs_pointer_fails(stm, pointer, revision, error):
    """SDM 34.15.4.1: bad executive pointer (alignment, width, revision) gives 16; not launched gives 17."""
    if pointer < OUTSIDE_RAM:
        write_revision(stm, pointer & ~0xFFF, revision)
    vmwrite_all(stm, presets.guest_fields() | {"EXECUTIVE_VMCS_POINTER": pointer})
    fail_valid(stm.vmlaunch(), error)
    assert vmread(stm, "VM_INSTRUCTION_ERROR") == int(error)
    assert get(stm, "smm") == 1 and vmptrst(stm) == TRANSFER_VMCS
    assert stm.dual_monitor_active


def test_deactivating_with_a_vmcs_as_executive_fails_18(stm):
    """SDM 34.15.4.1, 34.15.7: deactivating needs executive = VMXON pointer, else VMfailValid(18)."""
    run_smm_guest_and_exit(stm)
    assert stm.launch_state(SMM_GUEST_VMCS) & 1
    vmwrite(stm, "EXECUTIVE_VMCS_POINTER", SMM_GUEST_VMCS)
    vmwrite(stm, ENTRY.vmcs_field, ENTRY.true_default1 | DEACTIVATE)
    fail_valid(stm.vmlaunch(), VmError.ENTRY_EXECUTIVE_VMCS_NOT_VMXON_POINTER)
    assert get(stm, "smm") == 1 and stm.dual_monitor_active


def test_deactivating_with_an_unlaunched_vmcs_as_executive_fails_18(stm):
    """SDM 34.15.4.1: launch check only when deactivate = 0; deactivating with a clear VMCS gives 18."""
    write_revision(stm, VMCS_D)
    vmwrite(stm, "EXECUTIVE_VMCS_POINTER", VMCS_D)
    vmwrite(stm, ENTRY.vmcs_field, ENTRY.true_default1 | DEACTIVATE)
    fail_valid(stm.vmlaunch(), VmError.ENTRY_EXECUTIVE_VMCS_NOT_VMXON_POINTER)


def test_invalid_executive_execution_controls_fail_25(stm_after_guest_smi):
    """SDM 34.15.4.2: to non-root, the executive VMCS's execution controls are checked: VMfailValid(25)."""
    model = stm_after_guest_smi
    expect(model.vmptrld(GUEST_VMCS), Status.SUCCEED)
    vmwrite(model, PIN.vmcs_field, 0)
    expect(model.vmptrld(TRANSFER_VMCS), Status.SUCCEED)
    fail_valid(model.vmresume(), VmError.ENTRY_INVALID_EXECUTIVE_CONTROLS)
    assert vmread(model, "VM_INSTRUCTION_ERROR") == 25
    assert get(model, "smm") == 1 and not model.non_root


def test_transfer_vmcs_execution_controls_are_not_checked(stm_after_guest_smi):
    """SDM 34.15.4.2: returns from SMM do not check the current (SMM-transfer) VMCS's execution controls."""
    model = stm_after_guest_smi
    vmwrite(model, PIN.vmcs_field, 0)
    return_from_smm(model)
    assert model.non_root and get(model, "smm") == 0


def test_pending_smi_is_delivered_right_after_the_return(stm):
    """SDM 34.3.1, 34.15.4.9: a held SMI is delivered once the return leaves SMM unblocked (entered first)."""
    assert expect(smi(stm), Status.OK).pending
    return_to_root(stm)
    assert get(stm, "smm") == 1
    assert vmptrst(stm) == TRANSFER_VMCS
    assert vmread(stm, "VM_EXIT_REASON") == 6 | EXIT_REASON_FROM_ROOT
    assert get(stm, "rip") == presets.HOST_RIP_32


def test_return_with_smi_blocking_keeps_the_smi_pending(stm):
    """SDM 34.15.4.9: with deactivate = 0, SMIs stay blocked after the return iff interruptibility bit 2 = 1."""
    assert expect(smi(stm), Status.OK).pending
    vmwrite_all(stm, presets.guest_fields())
    vmwrite(stm, "GUEST_INTERRUPTIBILITY_INFO", 0x4)
    return_from_smm(stm)
    assert get(stm, "smm") == 0
    assert get(stm, "rip") == presets.GUEST_RIP


def test_return_to_root_checks_the_vmxon_region_revision(stm):
    """SDM 34.15.4.1: the revision identifier is checked at the executive pointer even if it is the VMXON one."""
    write_revision(stm, VMXON_REGION, msrs.VMCS_REVISION_ID + 1)
    vmwrite_all(stm, presets.guest_fields())
    fail_valid(stm.vmlaunch(), VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER)


def test_return_to_root_may_not_inject_an_event(stm):
    """SDM 34.15.4.3: to VMX root, only a pending MTF (type 7, vector 0) may be injected, else VMfailValid(7)."""
    vmwrite_all(stm, presets.guest_fields())
    gp_with_error_code = INTR_INFO_VALID | 3 << 8 | 1 << 11 | 13
    vmwrite(stm, "VM_ENTRY_INTR_INFO_FIELD", gp_with_error_code)
    fail_valid(stm.vmlaunch(), VmError.ENTRY_INVALID_CONTROL_FIELD)


def test_deactivation_returns_to_the_default_treatment(stm):
    """SDM 34.15.7: deactivation restores the default treatment: VMXOFF succeeds, an SMI saves the map."""
    return_to_root(stm, entry=DEACTIVATE)
    assert not stm.dual_monitor_active
    assert get(stm, "smm") == 0 and not stm.non_root
    assert get(stm, "interruptibility") & 0x4 == 0
    expect(stm.vmxoff(), Status.SUCCEED)
    outcome = expect(smi(stm), Status.OK)
    assert not outcome.pending
    assert get(stm, "smm") == 1
    assert stm.memory.read(SMBASE + OFF_SMBASE_FIELD, 4) == SMBASE
    assert stm.memory.read(SMBASE + OFF_REVISION, 4) == SMM_REVISION_ID
    assert get(stm, "cs.base") == SMBASE and get(stm, "rip") == SMM_ENTRY_OFFSET


def test_smi_after_deactivation_in_vmx_root_uses_the_default_treatment(stm):
    """SDM 34.15.7, 34.14.1: after deactivation an SMI in VMX root leaves VMX operation and saves the map."""
    return_to_root(stm, entry=DEACTIVATE)
    expect(smi(stm), Status.OK)
    assert get(stm, "smm") == 1 and not stm.in_vmx_operation
    assert stm.memory.read(SMBASE + OFF_REVISION, 4) == SMM_REVISION_ID


# -- 7. VM-entry control and guest-state checks (26.2.1.3, 26.3.1.5) --------------------------------


@pytest.mark.parametrize("control", ["SMM", "DEACT_DUAL_MONITOR"])
def test_smm_entry_controls_outside_smm_fail_7(root_active, control):
    """SDM 26.2.1.3: "entry to SMM" and "deactivate dual-monitor" must be 0 outside SMM, else VMfailValid(7)."""
    load_new_vmcs(root_active, GUEST_VMCS)
    make_launchable(root_active)
    vmwrite(root_active, ENTRY.vmcs_field, ENTRY.true_default1 | ENTRY.bit(control))
    fail_valid(root_active.vmlaunch(), VmError.ENTRY_INVALID_CONTROL_FIELD)
    assert not root_active.non_root


def test_entry_to_smm_with_deactivate_in_smm_fails_7(stm):
    """SDM 26.2.1.3: "entry to SMM" and "deactivate dual-monitor treatment" both 1 give VMfailValid(7)."""
    prepare_smm_guest(stm, entry=ENTRY_TO_SMM | DEACTIVATE)
    fail_valid(stm.vmlaunch(), VmError.ENTRY_INVALID_CONTROL_FIELD)
    assert get(stm, "smm") == 1 and stm.dual_monitor_active


def test_entry_to_smm_without_smi_blocking_fails(stm):
    """SDM 26.3.1.5: "entry to SMM" = 1 needs interruptibility bit 2 = 1, else entry failure 33 | bit 31."""
    prepare_smm_guest(stm, interruptibility=0)
    outcome = expect(stm.vmlaunch(), Status.ENTRY_FAILED)
    assert outcome.reason == 33 | EXIT_REASON_ENTRY_FAILURE
    assert vmread(stm, "VM_EXIT_REASON") == 33 | EXIT_REASON_ENTRY_FAILURE
    assert not stm.non_root and get(stm, "smm") == 1
    assert get(stm, "rip") == presets.HOST_RIP_32
