"""VM-execution, VM-exit and VM-entry control bits, and which of them vmxu supports.

# Ref: Intel SDM vol. 3C, 24.6 "VM-execution control fields", 24.7 "VM-exit
# control fields", 24.8 "VM-entry control fields", appendix A.3-A.5
# (capability MSRs, default1 controls); names follow Linux arch/x86/include/asm/vmx.h.

Each control field is a ``ControlField``: the VMCS field that holds it, the
capability MSR (and its TRUE variant) that reports it, the named bits, the
default1 bits of real hardware (reported as "must be 1" in the plain MSR;
the TRUE MSR lets some of them be 0) and the bits vmxu allows to be 1.
Capability MSR values are computed from this table (see msrs.py).
"""

from dataclasses import dataclass

__all__ = ["ControlField", "PIN", "PROC", "PROC2", "EXIT", "ENTRY", "CONTROL_FIELDS"]


def _mask(*bits: int) -> int:
    m = 0
    for b in bits:
        m |= 1 << b
    return m


@dataclass(frozen=True)
class ControlField:
    name: str
    vmcs_field: str
    msr: int
    true_msr: int | None
    bits: dict[str, int]
    #: default1 bits as the plain capability MSR reports them (must be 1).
    default1: int
    #: bits that must be 1 under the TRUE capability MSR.
    true_default1: int
    #: bits vmxu allows to be 1 (allowed-1 settings).
    allowed1: int = 0

    def __post_init__(self) -> None:
        if self.default1 & ~self.allowed1 or self.true_default1 & ~self.default1:
            raise ValueError(f"{self.name}: default1 bits must be allowed, TRUE default1 a subset")
        if len(set(self.bits.values())) != len(self.bits):
            raise ValueError(f"{self.name}: a bit is named twice")

    def bit(self, name: str) -> int:
        return 1 << self.bits[name]

    @property
    def allowed0(self) -> int:
        """Bits 31:0 of the plain capability MSR: a 1 means the control must be 1."""
        return self.default1

    @property
    def true_allowed0(self) -> int:
        return self.true_default1

    @property
    def capability(self) -> int:
        return self.allowed0 | (self.allowed1 << 32)

    @property
    def true_capability(self) -> int:
        return self.true_allowed0 | (self.allowed1 << 32)


PIN = ControlField(
    name="pin-based VM-execution controls",
    vmcs_field="PIN_BASED_VM_EXEC_CONTROL",
    msr=0x481,
    true_msr=0x48D,
    bits={
        "EXT_INTR_EXITING": 0,
        "NMI_EXITING": 3,
        "VIRTUAL_NMIS": 5,
        "ACTIVATE_PREEMPTION_TIMER": 6,
        "POSTED_INTR": 7,
    },
    default1=_mask(1, 2, 4),
    true_default1=_mask(1, 2, 4),
    allowed1=_mask(0, 1, 2, 3, 4, 5, 6),
)

PROC = ControlField(
    name="primary processor-based VM-execution controls",
    vmcs_field="CPU_BASED_VM_EXEC_CONTROL",
    msr=0x482,
    true_msr=0x48E,
    bits={
        "INTR_WINDOW_EXITING": 2,
        "USE_TSC_OFFSETTING": 3,
        "HLT_EXITING": 7,
        "INVLPG_EXITING": 9,
        "MWAIT_EXITING": 10,
        "RDPMC_EXITING": 11,
        "RDTSC_EXITING": 12,
        "CR3_LOAD_EXITING": 15,
        "CR3_STORE_EXITING": 16,
        "ACTIVATE_TERTIARY_CONTROLS": 17,
        "CR8_LOAD_EXITING": 19,
        "CR8_STORE_EXITING": 20,
        "USE_TPR_SHADOW": 21,
        "NMI_WINDOW_EXITING": 22,
        "MOV_DR_EXITING": 23,
        "UNCOND_IO_EXITING": 24,
        "USE_IO_BITMAPS": 25,
        "MONITOR_TRAP_FLAG": 27,
        "USE_MSR_BITMAPS": 28,
        "MONITOR_EXITING": 29,
        "PAUSE_EXITING": 30,
        "ACTIVATE_SECONDARY_CONTROLS": 31,
    },
    default1=_mask(1, 4, 5, 6, 8, 13, 14, 15, 16, 26),
    true_default1=_mask(1, 4, 5, 6, 8, 13, 14, 26),
    allowed1=_mask(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 19, 20, 22, 23, 24, 25, 26, 28, 29, 30, 31),
)

PROC2 = ControlField(
    name="secondary processor-based VM-execution controls",
    vmcs_field="SECONDARY_VM_EXEC_CONTROL",
    msr=0x48B,
    true_msr=None,
    bits={
        "VIRTUALIZE_APIC_ACCESSES": 0,
        "ENABLE_EPT": 1,
        "DESC_EXITING": 2,
        "ENABLE_RDTSCP": 3,
        "VIRTUALIZE_X2APIC_MODE": 4,
        "ENABLE_VPID": 5,
        "WBINVD_EXITING": 6,
        "UNRESTRICTED_GUEST": 7,
        "APIC_REGISTER_VIRT": 8,
        "VIRTUAL_INTR_DELIVERY": 9,
        "PAUSE_LOOP_EXITING": 10,
        "RDRAND_EXITING": 11,
        "ENABLE_INVPCID": 12,
        "ENABLE_VMFUNC": 13,
        "SHADOW_VMCS": 14,
        "RDSEED_EXITING": 16,
        "ENABLE_PML": 17,
        "EPT_VIOLATION_VE": 18,
        "ENABLE_XSAVES": 20,
        "TSC_SCALING": 25,
    },
    default1=0,
    true_default1=0,
    allowed1=_mask(2, 6),
)

EXIT = ControlField(
    name="VM-exit controls",
    vmcs_field="VM_EXIT_CONTROLS",
    msr=0x483,
    true_msr=0x48F,
    bits={
        "SAVE_DEBUG_CONTROLS": 2,
        "HOST_ADDR_SPACE_SIZE": 9,
        "LOAD_IA32_PERF_GLOBAL_CTRL": 12,
        "ACK_INTR_ON_EXIT": 15,
        "SAVE_IA32_PAT": 18,
        "LOAD_IA32_PAT": 19,
        "SAVE_IA32_EFER": 20,
        "LOAD_IA32_EFER": 21,
        "SAVE_VMX_PREEMPTION_TIMER": 22,
        "CLEAR_BNDCFGS": 23,
    },
    default1=_mask(0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 16, 17),
    true_default1=_mask(0, 1, 3, 4, 5, 6, 7, 8, 10, 11, 13, 14, 16, 17),
    allowed1=_mask(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22),
)

ENTRY = ControlField(
    name="VM-entry controls",
    vmcs_field="VM_ENTRY_CONTROLS",
    msr=0x484,
    true_msr=0x490,
    bits={
        "LOAD_DEBUG_CONTROLS": 2,
        "IA32E_MODE": 9,
        "SMM": 10,
        "DEACT_DUAL_MONITOR": 11,
        "LOAD_IA32_PERF_GLOBAL_CTRL": 13,
        "LOAD_IA32_PAT": 14,
        "LOAD_IA32_EFER": 15,
        "LOAD_BNDCFGS": 16,
    },
    default1=_mask(0, 1, 2, 3, 4, 5, 6, 7, 8, 12),
    true_default1=_mask(0, 1, 3, 4, 5, 6, 7, 8, 12),
    allowed1=_mask(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
)

CONTROL_FIELDS = (PIN, PROC, PROC2, EXIT, ENTRY)
