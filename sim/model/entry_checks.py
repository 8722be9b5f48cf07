"""The checks VMLAUNCH and VMRESUME make before the VM-entry transition: VMX controls (error 7), host state (error 8).

# Ref: Intel SDM vol. 3C, 26.2.1 "Checks on VMX controls", 26.2.2 "Checks on
# host control registers and MSRs", 26.2.3 "Checks on host segment and
# descriptor-table registers", 26.2.4 "Checks related to address-space size";
# docs/semantics.md "Checks on the VMX controls" and "Checks on the host-state
# area" (their numbered lists are the methods below, in that order).

Each check is one method that returns None when the VMCS passes it, or a
sentence naming the rule it breaks and its SDM section. ``first_control_failure``
and ``first_host_state_failure`` run a group in order; the VMX instruction
reports VMfailValid(7) for the first group before looking at the second
(docs/semantics.md choice 5).
"""

from __future__ import annotations

from collections.abc import Callable

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC, PROC2, ControlField
from vmxu.rtl.arch.state import CR4, EFER, ELEMENT_BY_NAME

__all__ = ["EntryChecks", "CONTROL_CHECKS", "HOST_STATE_CHECKS"]

# VM-entry interruption-information field (SDM 24.8.3, table 24-13).
INTR_INFO_VECTOR = 0xFF
INTR_INFO_TYPE_SHIFT = 8
INTR_INFO_TYPE_MASK = 0x7
INTR_INFO_DELIVER_ERROR_CODE = 1 << 11
INTR_INFO_RESERVED = 0x7FFF_F000  # bits 30:12
INTR_INFO_VALID = 1 << 31
INTR_TYPE_EXTERNAL = 0
INTR_TYPE_RESERVED = 1
INTR_TYPE_NMI = 2
INTR_TYPE_HARDWARE_EXCEPTION = 3
INTR_TYPE_SOFTWARE_INTERRUPT = 4
INTR_TYPE_PRIVILEGED_SOFTWARE_EXCEPTION = 5
INTR_TYPE_SOFTWARE_EXCEPTION = 6
INTR_TYPE_OTHER_EVENT = 7
#: Event types whose delivery uses the VM-entry instruction length.
SOFTWARE_EVENT_TYPES = frozenset(
    {INTR_TYPE_SOFTWARE_INTERRUPT, INTR_TYPE_PRIVILEGED_SOFTWARE_EXCEPTION, INTR_TYPE_SOFTWARE_EXCEPTION}
)
#: Exceptions that push an error code (#DF, #TS, #NP, #SS, #GP, #PF, #AC).
EXCEPTIONS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17})
MAX_INSTRUCTION_LENGTH = 15
NMI_VECTOR = 2
MSR_LIST_ENTRY_BYTES = 16
#: Selector bits 2:0: TI (2) and RPL (1:0).
SELECTOR_TI_RPL = 0x7

_PHYSICAL_ADDRESS_LIMIT = 1 << msrs.MAXPHYADDR
_TRUE_CONTROLS = bool(msrs.VMX_BASIC.true_controls)

CONTROL_CHECKS = (
    "controls_within_capabilities",
    "cr3_target_count",
    "io_bitmap_addresses",
    "msr_bitmap_address",
    "nmi_controls",
    "preemption_timer_save",
    "msr_list_addresses",
    "smm_entry_controls",
    "event_injection",
)

#: The checks on the VM-execution control fields alone: a VM entry that returns from SMM makes them on the
#: executive VMCS (error 25) and not on the current one (SDM 34.15.4.2).
EXECUTION_CONTROL_CHECKS = ("controls_within_capabilities", "cr3_target_count", "io_bitmap_addresses")
EXECUTION_CONTROL_CHECKS += ("msr_bitmap_address", "nmi_controls")

HOST_STATE_CHECKS = (
    "host_control_registers",
    "host_cr3",
    "host_sysenter",
    "host_perf_global_ctrl",
    "host_pat",
    "host_efer",
    "host_selectors",
    "host_bases",
    "address_space_size",
)


def is_bad_address(addr: int) -> bool:
    """Bits 11:0 not all 0, or a bit at or above MAXPHYADDR set (SDM 30.3)."""
    return bool(addr & 0xFFF) or addr >= _PHYSICAL_ADDRESS_LIMIT


def capability(control: ControlField) -> int:
    """The capability MSR a control field is checked against: the TRUE one when IA32_VMX_BASIC bit 55 is 1."""
    number = control.true_msr if _TRUE_CONTROLS and control.true_msr is not None else control.msr
    return msrs.MSR_BY_NUMBER[number].value


def capability_failure(control: ControlField, value: int) -> str | None:
    """Why ``value`` of ``control`` is outside its capability MSR (SDM 26.2.1.1; A.3-A.5), or None."""
    cap = capability(control)
    must_be_1 = cap & 0xFFFF_FFFF
    may_be_1 = cap >> 32
    if value & must_be_1 != must_be_1:
        return f"SDM 26.2.1.1: {control.name} {value:#x} clear bits {must_be_1 & ~value:#x} that must be 1"
    if value & ~may_be_1:
        return f"SDM 26.2.1.1: {control.name} {value:#x} set bits {value & ~may_be_1:#x} that must be 0"
    return None


def msr_list_failure(addr_name: str, addr: int, count: int) -> str | None:
    """Why an MSR list of ``count`` entries at ``addr`` is refused (16-byte aligned, its last byte below
    2^MAXPHYADDR; SDM 26.2.1.2/3), or None; a list of no entries is never refused."""
    if count == 0:
        return None
    if addr & (MSR_LIST_ENTRY_BYTES - 1):
        return f"SDM 26.2.1.2: {addr_name} {addr:#x} is not 16-byte aligned"
    if addr + MSR_LIST_ENTRY_BYTES * count - 1 >= _PHYSICAL_ADDRESS_LIMIT:
        return f"SDM 26.2.1.2: the list at {addr_name} {addr:#x} with {count} entries ends beyond MAXPHYADDR"
    return None


class EntryChecks:
    """The VMX-control and host-state checks on the current VMCS.

    ``field(name)`` returns a field's full value (its VMREAD with a 64-bit
    operand); ``ia32e_mode`` is the processor's ``efer.LMA``; ``in_smm`` whether
    the logical processor is in SMM.
    """

    def __init__(self, field: Callable[[str], int], ia32e_mode: bool, in_smm: bool, *, execution: bool = True) -> None:
        self.field = field
        self.ia32e_mode = ia32e_mode
        self.in_smm = in_smm
        #: False: leave the VM-execution controls out (a return from SMM checks the executive VMCS's).
        self.execution = execution
        self.pin = field(PIN.vmcs_field)
        self.proc = field(PROC.vmcs_field)
        self.exit = field(EXIT.vmcs_field)
        self.entry = field(ENTRY.vmcs_field)
        # Secondary controls count only when the primary controls activate them (SDM 26.2.1.1).
        secondary_active = self.proc & PROC.bit("ACTIVATE_SECONDARY_CONTROLS")
        self.proc2 = field(PROC2.vmcs_field) if secondary_active else 0
        self.host_address_space_size = bool(self.exit & EXIT.bit("HOST_ADDR_SPACE_SIZE"))

    def first_control_failure(self) -> str | None:
        if not self.execution:
            return self._first(tuple(c for c in CONTROL_CHECKS if c not in EXECUTION_CONTROL_CHECKS[1:]))
        return self._first(CONTROL_CHECKS)

    def first_execution_control_failure(self) -> str | None:
        """The checks of the VM-execution control fields alone (SDM 26.2.1.1)."""
        return self._first(EXECUTION_CONTROL_CHECKS)

    def first_host_state_failure(self) -> str | None:
        return self._first(HOST_STATE_CHECKS)

    def _first(self, names: tuple[str, ...]) -> str | None:
        for name in names:
            failure = getattr(self, name)()
            if failure is not None:
                return failure
        return None

    # -- VMX controls: VMfailValid(7), SDM 26.2.1 --------------------------------------

    def controls_within_capabilities(self) -> str | None:
        """1. Each control field has its allowed-0 bits set and no bit outside allowed-1 (SDM 26.2.1.1)."""
        checked = ((PIN, self.pin), (PROC, self.proc), (PROC2, self.proc2), (EXIT, self.exit), (ENTRY, self.entry))
        if not self.execution:
            checked = checked[3:]
        for control, value in checked:
            if (failure := capability_failure(control, value)) is not None:
                return failure
        return None

    def cr3_target_count(self) -> str | None:
        """2. The CR3-target count is at most IA32_VMX_MISC bits 24:16 (SDM 26.2.1.1)."""
        count = self.field("CR3_TARGET_COUNT")
        limit = msrs.VMX_MISC.cr3_targets
        if count > limit:
            return f"SDM 26.2.1.1: CR3-target count {count} above {limit}"
        return None

    def io_bitmap_addresses(self) -> str | None:
        """3. With "use I/O bitmaps", both bitmap addresses are good addresses (SDM 26.2.1.1)."""
        if self.proc & PROC.bit("USE_IO_BITMAPS"):
            for name in ("IO_BITMAP_A", "IO_BITMAP_B"):
                if is_bad_address(self.field(name)):
                    return f"SDM 26.2.1.1: {name} {self.field(name):#x} is not a 4-KiB aligned physical address"
        return None

    def msr_bitmap_address(self) -> str | None:
        """4. With "use MSR bitmaps", the bitmap address is a good address (SDM 26.2.1.1)."""
        if self.proc & PROC.bit("USE_MSR_BITMAPS") and is_bad_address(self.field("MSR_BITMAP")):
            return f"SDM 26.2.1.1: MSR_BITMAP {self.field('MSR_BITMAP'):#x} is not a 4-KiB aligned physical address"
        return None

    def nmi_controls(self) -> str | None:
        """5. "Virtual NMIs" needs "NMI exiting"; "NMI-window exiting" needs "virtual NMIs" (SDM 26.2.1.1)."""
        if not self.pin & PIN.bit("NMI_EXITING") and self.pin & PIN.bit("VIRTUAL_NMIS"):
            return 'SDM 26.2.1.1: "virtual NMIs" = 1 with "NMI exiting" = 0'
        if not self.pin & PIN.bit("VIRTUAL_NMIS") and self.proc & PROC.bit("NMI_WINDOW_EXITING"):
            return 'SDM 26.2.1.1: "NMI-window exiting" = 1 with "virtual NMIs" = 0'
        return None

    def preemption_timer_save(self) -> str | None:
        """6. "Save VMX-preemption timer value" needs "activate VMX-preemption timer" (SDM 26.2.1.2)."""
        if self.exit & EXIT.bit("SAVE_VMX_PREEMPTION_TIMER") and not self.pin & PIN.bit("ACTIVATE_PREEMPTION_TIMER"):
            return 'SDM 26.2.1.2: "save VMX-preemption timer value" = 1 with "activate VMX-preemption timer" = 0'
        return None

    def msr_list_addresses(self) -> str | None:
        """7. Each MSR list with a non-zero count is 16-byte aligned and ends below 2^MAXPHYADDR (SDM 26.2.1.2/3)."""
        for count_name, addr_name in (
            ("VM_EXIT_MSR_STORE_COUNT", "VM_EXIT_MSR_STORE_ADDR"),
            ("VM_EXIT_MSR_LOAD_COUNT", "VM_EXIT_MSR_LOAD_ADDR"),
            ("VM_ENTRY_MSR_LOAD_COUNT", "VM_ENTRY_MSR_LOAD_ADDR"),
        ):
            if (failure := msr_list_failure(addr_name, self.field(addr_name), self.field(count_name))) is not None:
                return failure
        return None

    def smm_entry_controls(self) -> str | None:
        """8. "Entry to SMM" and "deactivate dual-monitor treatment" are 0 outside SMM (SDM 26.2.1.3)."""
        if self.in_smm:
            if self.entry & ENTRY.bit("SMM") and self.entry & ENTRY.bit("DEACT_DUAL_MONITOR"):
                return 'SDM 26.2.1.3: "entry to SMM" and "deactivate dual-monitor treatment" both 1'
            return None
        for name, label in (("SMM", "entry to SMM"), ("DEACT_DUAL_MONITOR", "deactivate dual-monitor treatment")):
            if self.entry & ENTRY.bit(name):
                return f'SDM 26.2.1.3: "{label}" = 1 outside SMM'
        return None

    def event_injection(self) -> str | None:
        """9. A valid VM-entry interruption information describes a deliverable event (SDM 26.2.1.3)."""
        info = self.field("VM_ENTRY_INTR_INFO_FIELD")
        if not info & INTR_INFO_VALID:
            return None
        vector = info & INTR_INFO_VECTOR
        kind = info >> INTR_INFO_TYPE_SHIFT & INTR_INFO_TYPE_MASK
        if kind == INTR_TYPE_RESERVED:
            return "SDM 26.2.1.3: injected event of reserved type 1"
        if kind == INTR_TYPE_OTHER_EVENT:
            return "SDM 26.2.1.3: injected event of type 7 without monitor-trap-flag support"
        if kind == INTR_TYPE_NMI and vector != NMI_VECTOR:
            return f"SDM 26.2.1.3: injected NMI with vector {vector}"
        if kind == INTR_TYPE_HARDWARE_EXCEPTION and vector > 31:
            return f"SDM 26.2.1.3: injected hardware exception with vector {vector} > 31"
        if info & INTR_INFO_RESERVED:
            return f"SDM 26.2.1.3: interruption information {info:#x} sets reserved bits 30:12"
        # "Unrestricted guest" is never allowed-1, so the vector alone decides (the guest's
        # CR0.PE counts only for an unrestricted guest).
        error_code_expected = kind == INTR_TYPE_HARDWARE_EXCEPTION and vector in EXCEPTIONS_WITH_ERROR_CODE
        if bool(info & INTR_INFO_DELIVER_ERROR_CODE) != error_code_expected:
            return f"SDM 26.2.1.3: deliver-error-code = {int(not error_code_expected)} for type {kind} vector {vector}"
        if info & INTR_INFO_DELIVER_ERROR_CODE and self.field("VM_ENTRY_EXCEPTION_ERROR_CODE") & 0xFFFF_0000:
            return "SDM 26.2.1.3: VM-entry exception error code sets bits 31:16"
        if kind in SOFTWARE_EVENT_TYPES:
            length = self.field("VM_ENTRY_INSTRUCTION_LEN")
            if not 1 <= length <= MAX_INSTRUCTION_LENGTH:
                return f"SDM 26.2.1.3: VM-entry instruction length {length} outside 1-15 for type {kind}"
        return None

    # -- host state: VMfailValid(8), SDM 26.2.2-26.2.4 ---------------------------------

    def host_control_registers(self) -> str | None:
        """1. HOST_CR0 and HOST_CR4 satisfy the VMX fixed-bit MSRs, all 64 bits (SDM 26.2.2)."""
        for name, element in (("HOST_CR0", "cr0"), ("HOST_CR4", "cr4")):
            value = self.field(name)
            fixed0, fixed1 = ELEMENT_BY_NAME[element].vmx_fixed
            if value & fixed0 != fixed0 or value & ~fixed1:
                return f"SDM 26.2.2: {name} {value:#x} outside IA32_VMX_{element.upper()}_FIXED0/FIXED1"
        return None

    def host_cr3(self) -> str | None:
        """2. HOST_CR3 sets no bit at or above MAXPHYADDR (SDM 26.2.2)."""
        if self.field("HOST_CR3") >= _PHYSICAL_ADDRESS_LIMIT:
            return f"SDM 26.2.2: HOST_CR3 {self.field('HOST_CR3'):#x} beyond MAXPHYADDR"
        return None

    def host_sysenter(self) -> str | None:
        """3. HOST_IA32_SYSENTER_ESP and _EIP are canonical (SDM 26.2.2)."""
        return self._non_canonical(("HOST_IA32_SYSENTER_ESP", "HOST_IA32_SYSENTER_EIP"), "26.2.2")

    def host_perf_global_ctrl(self) -> str | None:
        """4. With "load IA32_PERF_GLOBAL_CTRL", no reserved bit of the host value is 1 (SDM 26.2.2)."""
        if self.exit & EXIT.bit("LOAD_IA32_PERF_GLOBAL_CTRL"):
            value = self.field("HOST_IA32_PERF_GLOBAL_CTRL")
            if value & ELEMENT_BY_NAME["perf_global_ctrl"].reserved:
                return f"SDM 26.2.2: HOST_IA32_PERF_GLOBAL_CTRL {value:#x} sets reserved bits"
        return None

    def host_pat(self) -> str | None:
        """5. With "load IA32_PAT", every byte of HOST_IA32_PAT is a valid memory type (SDM 26.2.2)."""
        if self.exit & EXIT.bit("LOAD_IA32_PAT") and not msrs.valid_memory_types(self.field("HOST_IA32_PAT")):
            return f"SDM 26.2.2: HOST_IA32_PAT {self.field('HOST_IA32_PAT'):#x} holds an invalid memory type"
        return None

    def host_efer(self) -> str | None:
        """6. With "load IA32_EFER": no reserved bit; LMA and LME equal "host address-space size" (SDM 26.2.2)."""
        if not self.exit & EXIT.bit("LOAD_IA32_EFER"):
            return None
        value = self.field("HOST_IA32_EFER")
        if value & ELEMENT_BY_NAME["efer"].reserved:
            return f"SDM 26.2.2: HOST_IA32_EFER {value:#x} sets reserved bits"
        for bit, name in ((EFER.LMA, "LMA"), (EFER.LME, "LME")):
            if bool(value & bit) != self.host_address_space_size:
                return f'SDM 26.2.2: HOST_IA32_EFER.{name} differs from "host address-space size"'
        return None

    def host_selectors(self) -> str | None:
        """7. Host selectors: RPL = TI = 0; CS, TR not 0; SS not 0 without "host address-space size" (SDM 26.2.3)."""
        for segment in ("ES", "CS", "SS", "DS", "FS", "GS", "TR"):
            selector = self.field(f"HOST_{segment}_SELECTOR")
            if selector & SELECTOR_TI_RPL:
                return f"SDM 26.2.3: HOST_{segment}_SELECTOR {selector:#x} has RPL or TI set"
        for segment in ("CS", "TR"):
            if self.field(f"HOST_{segment}_SELECTOR") == 0:
                return f"SDM 26.2.3: HOST_{segment}_SELECTOR is 0"
        if not self.host_address_space_size and self.field("HOST_SS_SELECTOR") == 0:
            return 'SDM 26.2.3: HOST_SS_SELECTOR is 0 with "host address-space size" = 0'
        return None

    def host_bases(self) -> str | None:
        """8. The host FS, GS, GDTR, IDTR and TR bases are canonical (SDM 26.2.3)."""
        names = ("HOST_FS_BASE", "HOST_GS_BASE", "HOST_GDTR_BASE", "HOST_IDTR_BASE", "HOST_TR_BASE")
        return self._non_canonical(names, "26.2.3")

    def address_space_size(self) -> str | None:
        """9. Address-space controls agree with the processor's mode, HOST_CR4 and HOST_RIP with them (SDM 26.2.4)."""
        ia32e_guest = bool(self.entry & ENTRY.bit("IA32E_MODE"))
        if not self.ia32e_mode:
            if ia32e_guest:
                return 'SDM 26.2.4: "IA-32e mode guest" = 1 outside IA-32e mode'
            if self.host_address_space_size:
                return 'SDM 26.2.4: "host address-space size" = 1 outside IA-32e mode'
        elif not self.host_address_space_size:
            return 'SDM 26.2.4: "host address-space size" = 0 in IA-32e mode'
        host_cr4 = self.field("HOST_CR4")
        host_rip = self.field("HOST_RIP")
        if self.host_address_space_size:
            if not host_cr4 & CR4.PAE:
                return 'SDM 26.2.4: HOST_CR4.PAE = 0 with "host address-space size" = 1'
            if not msrs.is_canonical(host_rip):
                return f"SDM 26.2.4: HOST_RIP {host_rip:#x} is not canonical"
        else:
            if host_cr4 & CR4.PCIDE:
                return 'SDM 26.2.4: HOST_CR4.PCIDE = 1 with "host address-space size" = 0'
            if host_rip >> 32:
                return f'SDM 26.2.4: HOST_RIP {host_rip:#x} sets bits 63:32 with "host address-space size" = 0'
        return None

    def _non_canonical(self, names: tuple[str, ...], section: str) -> str | None:
        for name in names:
            if not msrs.is_canonical(self.field(name)):
                return f"SDM {section}: {name} {self.field(name):#x} is not canonical"
        return None
