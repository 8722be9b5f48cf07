"""Model-specific registers: the VMX capability MSRs and the platform MSRs the unit implements.

# Ref: Intel SDM vol. 3C, appendix A "VMX capability reporting facility"
# (A.1 IA32_VMX_BASIC, A.3-A.5 control MSRs, A.6 IA32_VMX_MISC, A.7/A.8 CR
# fixed bits, A.9 IA32_VMX_VMCS_ENUM); vol. 3C 23.7 "Enabling and entering VMX
# operation" (IA32_FEATURE_CONTROL); vol. 3C 34.15.5 (IA32_SMM_MONITOR_CTL);
# vol. 4 "Model-specific registers" for the numbers.

The capability values are computed from controls.py and the field table, so
nothing here is typed twice.
"""

from dataclasses import dataclass

from amaranth.lib import data, enum

from .controls import ENTRY, EXIT, PIN, PROC, PROC2
from .fields import MAX_INDEX
from .layout import REGION_BYTES

__all__ = ["MsrKind", "Msr", "MSRS", "MSR_BY_NUMBER", "constant_value"]

#: Physical-address width (CPUID.80000008H:EAX[7:0]); the unit's bus is 32-bit.
MAXPHYADDR = 32
#: Linear-address width: a value is canonical when bits 63:47 are all equal.
LINEAR_ADDRESS_WIDTH = 48

IA32_FEATURE_CONTROL = 0x3A
IA32_SMM_MONITOR_CTL = 0x9B
IA32_SMBASE = 0x9E
IA32_SYSENTER_CS = 0x174
IA32_SYSENTER_ESP = 0x175
IA32_SYSENTER_EIP = 0x176
IA32_DEBUGCTL = 0x1D9
IA32_PAT = 0x277
IA32_PERF_GLOBAL_CTRL = 0x38F
IA32_VMX_BASIC = 0x480
IA32_VMX_PINBASED_CTLS = 0x481
IA32_VMX_PROCBASED_CTLS = 0x482
IA32_VMX_EXIT_CTLS = 0x483
IA32_VMX_ENTRY_CTLS = 0x484
IA32_VMX_MISC = 0x485
IA32_VMX_CR0_FIXED0 = 0x486
IA32_VMX_CR0_FIXED1 = 0x487
IA32_VMX_CR4_FIXED0 = 0x488
IA32_VMX_CR4_FIXED1 = 0x489
IA32_VMX_VMCS_ENUM = 0x48A
IA32_VMX_PROCBASED_CTLS2 = 0x48B
IA32_VMX_TRUE_PINBASED_CTLS = 0x48D
IA32_VMX_TRUE_PROCBASED_CTLS = 0x48E
IA32_VMX_TRUE_EXIT_CTLS = 0x48F
IA32_VMX_TRUE_ENTRY_CTLS = 0x490
IA32_EFER = 0xC000_0080
IA32_FS_BASE = 0xC000_0100
IA32_GS_BASE = 0xC000_0101

# IA32_FEATURE_CONTROL bits.
FEATURE_CONTROL_LOCK = 1 << 0
FEATURE_CONTROL_VMX_IN_SMX = 1 << 1
FEATURE_CONTROL_VMX_OUTSIDE_SMX = 1 << 2
FEATURE_CONTROL_VALID = FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_IN_SMX | FEATURE_CONTROL_VMX_OUTSIDE_SMX

# IA32_SMM_MONITOR_CTL bits.
SMM_MONITOR_CTL_VALID = 1 << 0
SMM_MONITOR_CTL_VMXOFF_UNBLOCKS_SMI = 1 << 2
SMM_MONITOR_CTL_MSEG_BASE = 0xFFFF_F000

#: VMCS revision identifier (IA32_VMX_BASIC bits 30:0). Software writes it to
#: dword 0 of every VMXON and VMCS region.
VMCS_REVISION_ID = 1
#: MSEG revision identifier (IA32_VMX_MISC bits 63:32).
MSEG_REVISION_ID = 1
#: Memory type of VMCS accesses: write-back.
MEMORY_TYPE_WB = 6


class VmxBasic(data.Struct):
    """IA32_VMX_BASIC (SDM A.1)."""

    revision: 31
    zero: 1
    region_bytes: 13
    reserved0: 3
    #: 1: region addresses are limited to 32 bits.
    physical_address_32: 1
    dual_monitor: 1
    memory_type: 4
    ins_outs_information: 1
    true_controls: 1
    #: 1: VM entry allows any deliver-error-code setting for hardware exceptions.
    any_error_code: 1
    reserved1: 7


class VmxMisc(data.Struct):
    """IA32_VMX_MISC (SDM A.6)."""

    #: The VMX-preemption timer counts down when TSC bit ``preemption_timer_rate`` changes.
    preemption_timer_rate: 5
    exit_saves_lma: 1
    activity_hlt: 1
    activity_shutdown: 1
    activity_wait_for_sipi: 1
    reserved0: 5
    processor_trace_in_vmx: 1
    rdmsr_smbase_in_smm: 1
    cr3_targets: 9
    #: MSR lists hold up to 512 * (this + 1) entries.
    msr_list_size: 3
    smm_monitor_ctl_bit2: 1
    vmwrite_exit_information: 1
    inject_zero_length: 1
    reserved1: 1
    mseg_revision: 32


CR3_TARGETS = 4
PREEMPTION_TIMER_RATE = 5
VMX_BASIC = VmxBasic.const(
    {
        "revision": VMCS_REVISION_ID,
        "region_bytes": REGION_BYTES,
        # The dual-monitor treatment of SMIs and SMM (SDM 34.15) is not built yet: not reported (issue 11).
        "dual_monitor": 0,
        "memory_type": MEMORY_TYPE_WB,
        "true_controls": 1,
    }
)
VMX_MISC = VmxMisc.const(
    {
        "preemption_timer_rate": PREEMPTION_TIMER_RATE,
        "exit_saves_lma": 1,
        # Activity states besides active: HLT only.
        "activity_hlt": 1,
        "rdmsr_smbase_in_smm": 1,
        "cr3_targets": CR3_TARGETS,
        # msr_list_size 0: up to 512 entries in each MSR list; smm_monitor_ctl_bit2 0: IA32_SMM_MONITOR_CTL
        # bit 2 cannot be set; vmwrite_exit_information 0; inject_zero_length 0.
        "mseg_revision": MSEG_REVISION_ID,
    }
)
IA32_VMX_BASIC_VALUE = VMX_BASIC.as_value().value
IA32_VMX_MISC_VALUE = VMX_MISC.as_value().value
#: IA32_VMX_BASIC's bit that reports the dual-monitor treatment of SMIs and SMM (bit 49).
VMX_BASIC_DUAL_MONITOR_BIT = data.Layout.cast(VmxBasic)["dual_monitor"].offset
MSR_LIST_MAX_ENTRIES = 512 * (VMX_MISC.msr_list_size + 1)

CR0_FIXED0 = 0x8000_0021  # PE, NE, PG must be 1 in VMX operation (no unrestricted guest)
CR0_FIXED1 = 0xFFFF_FFFF
CR4_FIXED0 = 0x0000_2000  # VMXE
#: CR4 bits this processor implements: VME..OSXMMEXCPT (10:0), VMXE, FSGSBASE, PCIDE, OSXSAVE, SMEP, SMAP.
CR4_FIXED1 = 0x0000_07FF | (1 << 13) | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 20) | (1 << 21)

IA32_VMX_VMCS_ENUM_VALUE = MAX_INDEX << 1

#: IA32_DEBUGCTL bits this processor implements (LBR, BTF, TR, BTS, BTINT, BTS_OFF_OS/USR, FREEZE_*).
DEBUGCTL_VALID = 0x5FC3
#: IA32_PERF_GLOBAL_CTRL: two general-purpose and three fixed-function counters.
PERF_GLOBAL_CTRL_VALID = 0x0000_0007_0000_0003
#: PAT memory types a PAT entry may hold (UC, WC, WT, WP, WB, UC-).
VALID_MEMORY_TYPES = frozenset({0, 1, 4, 5, 6, 7})


class MsrKind(enum.Enum, shape=3):
    #: Read-only constant (capability MSRs); WRMSR raises #GP.
    CONSTANT = 0
    #: IA32_FEATURE_CONTROL: writable until its lock bit is set.
    FEATURE_CONTROL = 1
    #: IA32_SMM_MONITOR_CTL: readable; writable only in SMM.
    SMM_MONITOR_CTL = 2
    #: IA32_SMBASE: readable only in SMM (IA32_VMX_MISC bit 15); never writable.
    SMBASE = 3
    #: A machine-state element (see state.py), reached by its ``msr``.
    ELEMENT = 4


@dataclass(frozen=True)
class Msr:
    number: int
    name: str
    kind: MsrKind
    value: int = 0


MSRS: tuple[Msr, ...] = (
    Msr(IA32_FEATURE_CONTROL, "IA32_FEATURE_CONTROL", MsrKind.FEATURE_CONTROL),
    Msr(IA32_SMM_MONITOR_CTL, "IA32_SMM_MONITOR_CTL", MsrKind.SMM_MONITOR_CTL),
    Msr(IA32_SMBASE, "IA32_SMBASE", MsrKind.SMBASE),
    Msr(IA32_VMX_BASIC, "IA32_VMX_BASIC", MsrKind.CONSTANT, IA32_VMX_BASIC_VALUE),
    Msr(IA32_VMX_PINBASED_CTLS, "IA32_VMX_PINBASED_CTLS", MsrKind.CONSTANT, PIN.capability),
    Msr(IA32_VMX_PROCBASED_CTLS, "IA32_VMX_PROCBASED_CTLS", MsrKind.CONSTANT, PROC.capability),
    Msr(IA32_VMX_EXIT_CTLS, "IA32_VMX_EXIT_CTLS", MsrKind.CONSTANT, EXIT.capability),
    Msr(IA32_VMX_ENTRY_CTLS, "IA32_VMX_ENTRY_CTLS", MsrKind.CONSTANT, ENTRY.capability),
    Msr(IA32_VMX_MISC, "IA32_VMX_MISC", MsrKind.CONSTANT, IA32_VMX_MISC_VALUE),
    Msr(IA32_VMX_CR0_FIXED0, "IA32_VMX_CR0_FIXED0", MsrKind.CONSTANT, CR0_FIXED0),
    Msr(IA32_VMX_CR0_FIXED1, "IA32_VMX_CR0_FIXED1", MsrKind.CONSTANT, CR0_FIXED1),
    Msr(IA32_VMX_CR4_FIXED0, "IA32_VMX_CR4_FIXED0", MsrKind.CONSTANT, CR4_FIXED0),
    Msr(IA32_VMX_CR4_FIXED1, "IA32_VMX_CR4_FIXED1", MsrKind.CONSTANT, CR4_FIXED1),
    Msr(IA32_VMX_VMCS_ENUM, "IA32_VMX_VMCS_ENUM", MsrKind.CONSTANT, IA32_VMX_VMCS_ENUM_VALUE),
    Msr(IA32_VMX_PROCBASED_CTLS2, "IA32_VMX_PROCBASED_CTLS2", MsrKind.CONSTANT, PROC2.capability),
    Msr(IA32_VMX_TRUE_PINBASED_CTLS, "IA32_VMX_TRUE_PINBASED_CTLS", MsrKind.CONSTANT, PIN.true_capability),
    Msr(IA32_VMX_TRUE_PROCBASED_CTLS, "IA32_VMX_TRUE_PROCBASED_CTLS", MsrKind.CONSTANT, PROC.true_capability),
    Msr(IA32_VMX_TRUE_EXIT_CTLS, "IA32_VMX_TRUE_EXIT_CTLS", MsrKind.CONSTANT, EXIT.true_capability),
    Msr(IA32_VMX_TRUE_ENTRY_CTLS, "IA32_VMX_TRUE_ENTRY_CTLS", MsrKind.CONSTANT, ENTRY.true_capability),
    # Machine-state elements reached by WRMSR/RDMSR (see state.py for their rules).
    Msr(IA32_SYSENTER_CS, "IA32_SYSENTER_CS", MsrKind.ELEMENT),
    Msr(IA32_SYSENTER_ESP, "IA32_SYSENTER_ESP", MsrKind.ELEMENT),
    Msr(IA32_SYSENTER_EIP, "IA32_SYSENTER_EIP", MsrKind.ELEMENT),
    Msr(IA32_DEBUGCTL, "IA32_DEBUGCTL", MsrKind.ELEMENT),
    Msr(IA32_PAT, "IA32_PAT", MsrKind.ELEMENT),
    Msr(IA32_PERF_GLOBAL_CTRL, "IA32_PERF_GLOBAL_CTRL", MsrKind.ELEMENT),
    Msr(IA32_EFER, "IA32_EFER", MsrKind.ELEMENT),
    Msr(IA32_FS_BASE, "IA32_FS_BASE", MsrKind.ELEMENT),
    Msr(IA32_GS_BASE, "IA32_GS_BASE", MsrKind.ELEMENT),
)

MSR_BY_NUMBER: dict[int, Msr] = {m.number: m for m in MSRS}
if len(MSR_BY_NUMBER) != len(MSRS):
    raise ValueError("MSR defined twice")


def is_canonical(value: int) -> bool:
    """Bits 63:47 all equal (48-bit linear addresses)."""
    top = value >> (LINEAR_ADDRESS_WIDTH - 1)
    return top == 0 or top == (1 << (65 - LINEAR_ADDRESS_WIDTH)) - 1


def valid_memory_types(value: int) -> bool:
    """Every byte of a PAT value is a valid memory type."""
    return all(((value >> (8 * i)) & 0xFF) in VALID_MEMORY_TYPES for i in range(8))


def constant_value(msr: Msr, *, dual_monitor: bool) -> int:
    """A constant MSR's value; IA32_VMX_BASIC reports the dual-monitor treatment (bit 49) only for a unit
    (or model) built with it."""
    if msr.number == IA32_VMX_BASIC and dual_monitor:
        return msr.value | 1 << VMX_BASIC_DUAL_MONITOR_BIT
    return msr.value
