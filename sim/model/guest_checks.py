"""The checks a VM entry makes on the guest-state area: a failure is a VM-entry failure, exit reason 33.

# Ref: Intel SDM vol. 3C, 26.3.1 "Checks on the guest state area" (26.3.1.1
# control registers, debug registers and MSRs; 26.3.1.2 segment registers;
# 26.3.1.3 GDTR and IDTR; 26.3.1.4 RIP and RFLAGS; 26.3.1.5 non-register state;
# 26.3.1.6 PDPTEs), 26.8 (the exit qualification of the failure);
# shared/vmx/REFERENCE.md section 4b; docs/semantics.md "Checks on the
# guest-state area" (its numbered list is the methods below, in that order).

Each check is one method that returns None when the guest state passes it, or
a sentence naming the rule and its SDM section. ``failure()`` runs them all and
returns the first failure with its exit qualification: a register or
non-register check (qualification 0) before the VMCS link pointer (4) before
the PDPTEs (2), which is also the RTL's order of precedence.

vmxu never allows "unrestricted guest", so the rules written for it never apply;
it supports the HLT activity state only, no VMCS shadowing, no RTM, no SGX, and
reports IA32_VMX_BASIC bit 48 = 0 with MAXPHYADDR 32.
"""

from __future__ import annotations

from collections.abc import Callable

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, PIN
from vmxu.rtl.arch.events import Activity, EntryFailureQualification, InterruptionType
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER, ELEMENT_BY_NAME, INTERRUPTIBILITY, RFLAGS

from .entry_checks import is_bad_address
from .memory import PhysicalMemory

__all__ = ["GuestStateChecks", "GUEST_STATE_CHECKS", "NO_LINK_POINTER"]

#: A VMCS link pointer of all ones is not used (26.3.1.5).
NO_LINK_POINTER = 0xFFFF_FFFF_FFFF_FFFF
_PHYSICAL_ADDRESS_LIMIT = 1 << msrs.MAXPHYADDR
#: Pending debug exceptions: B3-B0 (3:0), enabled breakpoint (12), BS (14) are the only bits that may be 1.
PENDING_DEBUG_VALID = 0x500F
PENDING_DEBUG_BS = 1 << 14
DEBUGCTL_BTF = 1 << 1
_BLOCKING_BY_STI_OR_MOV_SS = INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
#: Interruptibility bits 31:4 (bit 4, enclave interruption, needs SGX).
INTERRUPTIBILITY_RESERVED = 0xFFFF_FFF0
#: A present PAE PDPTE with MAXPHYADDR 32: bits 63:32, 8:5 and 2:1 are reserved (vol. 3A 4.4.1).
PDPTE_RESERVED = 0xFFFF_FFFF_0000_01E6
#: Hardware exceptions an entry into the HLT state may inject: #DB and #MC (26.3.1.5).
_HLT_INJECTABLE_EXCEPTIONS = frozenset({1, 18})

GUEST_STATE_CHECKS = (
    "control_registers",
    "debug_controls",
    "ia32e_paging",
    "cr3_and_sysenter",
    "msr_controls",
    "selectors",
    "bases",
    "v8086_segments",
    "cs",
    "ss",
    "data_segments",
    "tr",
    "ldtr",
    "descriptor_tables",
    "rip",
    "rflags",
    "activity",
    "interruptibility",
    "pending_debug_exceptions",
)


def _limit_fits_granularity(limit: int, ar: int) -> bool:
    """G must be 0 if any of limit bits 11:0 is 0, and 1 if any of bits 31:20 is 1 (26.3.1.2)."""
    g = bool(ar & AR.G)
    if limit & 0xFFF != 0xFFF and g:
        return False
    return not (limit & 0xFFF0_0000 and not g)


class GuestStateChecks:
    """The guest-state checks on the current VMCS.

    ``field(name)`` returns a field's full value; ``memory`` is the bus (the VMCS
    link pointer and the PDPTEs are read from it); ``current_vmcs`` the
    current-VMCS pointer; ``in_smm`` whether the processor is in SMM.
    """

    def __init__(
        self, field: Callable[[str], int], memory: PhysicalMemory, current_vmcs: int, *, in_smm: bool = False
    ) -> None:
        self.field = field
        self.memory = memory
        self.current_vmcs = current_vmcs
        self.in_smm = in_smm
        self.entry = field(ENTRY.vmcs_field)
        self.pin = field(PIN.vmcs_field)
        self.ia32e = bool(self.entry & ENTRY.bit("IA32E_MODE"))
        self.cr0 = field("GUEST_CR0")
        self.cr4 = field("GUEST_CR4")
        self.guest_rflags = field("GUEST_RFLAGS")
        self.v8086 = bool(self.guest_rflags & RFLAGS.VM)
        self.info = field("VM_ENTRY_INTR_INFO_FIELD")
        self.injecting = bool(self.info >> 31)
        self.injected_type = InterruptionType(self.info >> 8 & 7)
        self.injected_vector = self.info & 0xFF
        self.interruptibility_state = field("GUEST_INTERRUPTIBILITY_INFO")
        self.activity_state = field("GUEST_ACTIVITY_STATE")

    def segment(self, name: str) -> tuple[int, int, int, int]:
        """(selector, base, limit, access rights) of a guest segment register."""
        up = name.upper()
        return tuple(self.field(f"GUEST_{up}_{part}") for part in ("SELECTOR", "BASE", "LIMIT", "AR_BYTES"))

    def usable(self, name: str) -> bool:
        return not self.segment(name)[3] & AR.UNUSABLE

    def injects(self, kind: InterruptionType) -> bool:
        return self.injecting and self.injected_type == kind

    # -- the walk ----------------------------------------------------------------------

    def failure(self) -> tuple[str, EntryFailureQualification] | None:
        """The first failing check and the exit qualification it gives, or None."""
        for name in GUEST_STATE_CHECKS:
            failure = getattr(self, name)()
            if failure is not None:
                return failure, EntryFailureQualification.DEFAULT
        if (failure := self.vmcs_link_pointer()) is not None:
            return failure, EntryFailureQualification.VMCS_LINK_POINTER
        if (failure := self.pdptes()) is not None:
            return failure, EntryFailureQualification.PDPTE
        return None

    # -- 26.3.1.1: control registers, debug registers, MSRs ---------------------------

    def control_registers(self) -> str | None:
        """1. CR0 and CR4 satisfy the VMX fixed bits (CR0.NW and CD excepted); CR0.PG needs PE."""
        fixed0, fixed1 = ELEMENT_BY_NAME["cr0"].vmx_fixed
        free = CR0.NW | CR0.CD
        if self.cr0 & (fixed0 & ~free) != fixed0 & ~free or self.cr0 & ~(fixed1 | free):
            return f"SDM 26.3.1.1: GUEST_CR0 {self.cr0:#x} outside IA32_VMX_CR0_FIXED0/FIXED1"
        if self.cr0 & CR0.PG and not self.cr0 & CR0.PE:
            return "SDM 26.3.1.1: GUEST_CR0.PG = 1 with PE = 0"
        fixed0, fixed1 = ELEMENT_BY_NAME["cr4"].vmx_fixed
        if self.cr4 & fixed0 != fixed0 or self.cr4 & ~fixed1:
            return f"SDM 26.3.1.1: GUEST_CR4 {self.cr4:#x} outside IA32_VMX_CR4_FIXED0/FIXED1"
        return None

    def debug_controls(self) -> str | None:
        """2. With "load debug controls": IA32_DEBUGCTL has no reserved bit set, DR7 bits 63:32 are 0."""
        if not self.entry & ENTRY.bit("LOAD_DEBUG_CONTROLS"):
            return None
        debugctl = self.field("GUEST_IA32_DEBUGCTL")
        if debugctl & ELEMENT_BY_NAME["debugctl"].reserved:
            return f"SDM 26.3.1.1: GUEST_IA32_DEBUGCTL {debugctl:#x} sets reserved bits"
        if self.field("GUEST_DR7") >> 32:
            return f"SDM 26.3.1.1: GUEST_DR7 {self.field('GUEST_DR7'):#x} sets bits 63:32"
        return None

    def ia32e_paging(self) -> str | None:
        """3. "IA-32e mode guest" needs CR0.PG and CR4.PAE; without it CR4.PCIDE is 0."""
        if self.ia32e:
            if not self.cr0 & CR0.PG or not self.cr4 & CR4.PAE:
                return 'SDM 26.3.1.1: "IA-32e mode guest" = 1 with GUEST_CR0.PG = 0 or GUEST_CR4.PAE = 0'
        elif self.cr4 & CR4.PCIDE:
            return 'SDM 26.3.1.1: GUEST_CR4.PCIDE = 1 with "IA-32e mode guest" = 0'
        return None

    def cr3_and_sysenter(self) -> str | None:
        """4. CR3 has no bit at or above MAXPHYADDR; IA32_SYSENTER_ESP and _EIP are canonical."""
        if self.field("GUEST_CR3") >= _PHYSICAL_ADDRESS_LIMIT:
            return f"SDM 26.3.1.1: GUEST_CR3 {self.field('GUEST_CR3'):#x} beyond MAXPHYADDR"
        for name in ("GUEST_SYSENTER_ESP", "GUEST_SYSENTER_EIP"):
            if not msrs.is_canonical(self.field(name)):
                return f"SDM 26.3.1.1: {name} {self.field(name):#x} is not canonical"
        return None

    def msr_controls(self) -> str | None:
        """5. "Load IA32_PERF_GLOBAL_CTRL", "load IA32_PAT", "load IA32_EFER": the values they load are valid."""
        if self.entry & ENTRY.bit("LOAD_IA32_PERF_GLOBAL_CTRL"):
            value = self.field("GUEST_IA32_PERF_GLOBAL_CTRL")
            if value & ELEMENT_BY_NAME["perf_global_ctrl"].reserved:
                return f"SDM 26.3.1.1: GUEST_IA32_PERF_GLOBAL_CTRL {value:#x} sets reserved bits"
        if self.entry & ENTRY.bit("LOAD_IA32_PAT") and not msrs.valid_memory_types(self.field("GUEST_IA32_PAT")):
            return f"SDM 26.3.1.1: GUEST_IA32_PAT {self.field('GUEST_IA32_PAT'):#x} holds an invalid memory type"
        if self.entry & ENTRY.bit("LOAD_IA32_EFER"):
            efer = self.field("GUEST_IA32_EFER")
            if efer & ELEMENT_BY_NAME["efer"].reserved:
                return f"SDM 26.3.1.1: GUEST_IA32_EFER {efer:#x} sets reserved bits"
            if bool(efer & EFER.LMA) != self.ia32e:
                return 'SDM 26.3.1.1: GUEST_IA32_EFER.LMA differs from "IA-32e mode guest"'
            if self.cr0 & CR0.PG and bool(efer & EFER.LME) != bool(efer & EFER.LMA):
                return "SDM 26.3.1.1: GUEST_IA32_EFER.LME differs from LMA with GUEST_CR0.PG = 1"
        return None

    # -- 26.3.1.2: segment registers ------------------------------------------------

    def selectors(self) -> str | None:
        """6. TR.TI = 0; LDTR.TI = 0 if LDTR is usable; SS.RPL = CS.RPL outside virtual-8086 mode."""
        if self.segment("tr")[0] & 0x4:
            return "SDM 26.3.1.2: GUEST_TR_SELECTOR has TI = 1"
        if self.usable("ldtr") and self.segment("ldtr")[0] & 0x4:
            return "SDM 26.3.1.2: GUEST_LDTR_SELECTOR has TI = 1 (LDTR usable)"
        if not self.v8086 and self.segment("ss")[0] & 0x3 != self.segment("cs")[0] & 0x3:
            return "SDM 26.3.1.2: SS.RPL differs from CS.RPL"
        return None

    def bases(self) -> str | None:
        """7. TR, FS, GS bases canonical; LDTR's if usable; CS base bits 63:32 = 0; SS, DS, ES's if usable."""
        for name in ("tr", "fs", "gs", "ldtr"):
            if name == "ldtr" and not self.usable(name):
                continue
            if not msrs.is_canonical(self.segment(name)[1]):
                return f"SDM 26.3.1.2: GUEST_{name.upper()}_BASE {self.segment(name)[1]:#x} is not canonical"
        for name in ("cs", "ss", "ds", "es"):
            if (name == "cs" or self.usable(name)) and self.segment(name)[1] >> 32:
                return f"SDM 26.3.1.2: GUEST_{name.upper()}_BASE {self.segment(name)[1]:#x} sets bits 63:32"
        return None

    def v8086_segments(self) -> str | None:
        """8. In virtual-8086 mode: CS..GS base = selector << 4, limit = 0xFFFF, access rights = 0xF3."""
        if not self.v8086:
            return None
        for name in ("cs", "ss", "ds", "es", "fs", "gs"):
            selector, base, limit, ar = self.segment(name)
            if base != selector << 4:
                return f"SDM 26.3.1.2: virtual-8086 GUEST_{name.upper()}_BASE {base:#x} is not selector << 4"
            if limit != 0xFFFF:
                return f"SDM 26.3.1.2: virtual-8086 GUEST_{name.upper()}_LIMIT {limit:#x} is not 0xffff"
            if ar != 0xF3:
                return f"SDM 26.3.1.2: virtual-8086 GUEST_{name.upper()}_AR_BYTES {ar:#x} is not 0xf3"
        return None

    def _descriptor(self, name: str) -> str | None:
        """S = 1, P = 1, reserved bits 0, G consistent with the limit (for CS and usable SS..GS)."""
        _, _, limit, ar = self.segment(name)
        up = name.upper()
        if not ar & AR.S:
            return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES {ar:#x} has S = 0"
        if not ar & AR.P:
            return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES {ar:#x} has P = 0"
        if ar & AR.RESERVED:
            return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES {ar:#x} sets reserved bits 31:17 or 11:8"
        if not _limit_fits_granularity(limit, ar):
            return f"SDM 26.3.1.2: GUEST_{up}_LIMIT {limit:#x} does not fit G of its access rights {ar:#x}"
        return None

    def cs(self) -> str | None:
        """9. Outside virtual-8086 mode: CS type 9, 11, 13 or 15; DPL against SS.DPL; D/B = 0 for 64-bit code."""
        if self.v8086:
            return None
        ar = self.segment("cs")[3]
        kind = ar & AR.TYPE_MASK
        if kind not in (9, 11, 13, 15):
            return f"SDM 26.3.1.2: GUEST_CS_AR_BYTES type {kind} is not 9, 11, 13 or 15"
        if (failure := self._descriptor("cs")) is not None:
            return failure
        cs_dpl = (ar & AR.DPL_MASK) >> AR.DPL_SHIFT
        ss_dpl = (self.segment("ss")[3] & AR.DPL_MASK) >> AR.DPL_SHIFT
        if kind in (9, 11) and cs_dpl != ss_dpl:
            return "SDM 26.3.1.2: non-conforming CS with DPL different from SS.DPL"
        if kind in (13, 15) and cs_dpl > ss_dpl:
            return "SDM 26.3.1.2: conforming CS with DPL above SS.DPL"
        if self.ia32e and ar & AR.L and ar & AR.DB:
            return 'SDM 26.3.1.2: CS.L = 1 and CS.D/B = 1 with "IA-32e mode guest"'
        return None

    def ss(self) -> str | None:
        """10. Outside virtual-8086 mode: SS.DPL = SS.RPL; a usable SS is type 3 or 7 with S, P, G rules."""
        if self.v8086:
            return None
        selector, _, _, ar = self.segment("ss")
        if (ar & AR.DPL_MASK) >> AR.DPL_SHIFT != selector & 0x3:
            return "SDM 26.3.1.2: SS.DPL differs from SS.RPL"
        if not self.usable("ss"):
            return None
        if ar & AR.TYPE_MASK not in (3, 7):
            return f"SDM 26.3.1.2: GUEST_SS_AR_BYTES type {ar & AR.TYPE_MASK} is not 3 or 7"
        return self._descriptor("ss")

    def data_segments(self) -> str | None:
        """11. Outside virtual-8086 mode, usable DS, ES, FS, GS: accessed, readable if code, DPL >= RPL (type 0-11)."""
        if self.v8086:
            return None
        for name in ("ds", "es", "fs", "gs"):
            if not self.usable(name):
                continue
            selector, _, _, ar = self.segment(name)
            kind = ar & AR.TYPE_MASK
            up = name.upper()
            if not kind & AR.TYPE_ACCESSED:
                return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES type {kind} is not accessed"
            if kind & AR.TYPE_CODE and not kind & AR.TYPE_READABLE:
                return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES type {kind} is execute-only code"
            if (failure := self._descriptor(name)) is not None:
                return failure
            if kind <= 11 and (ar & AR.DPL_MASK) >> AR.DPL_SHIFT < selector & 0x3:
                return f"SDM 26.3.1.2: {up}.DPL below {up}.RPL"
        return None

    def tr(self) -> str | None:
        """12. TR: usable, type 11 (or 3 without "IA-32e mode guest"), S = 0, P = 1, reserved 0, G vs limit."""
        _, _, limit, ar = self.segment("tr")
        if ar & AR.UNUSABLE:
            return "SDM 26.3.1.2: TR is unusable"
        kind = ar & AR.TYPE_MASK
        if kind != 11 and (self.ia32e or kind != 3):
            return f"SDM 26.3.1.2: GUEST_TR_AR_BYTES type {kind} is not a busy TSS"
        return self._system_descriptor("TR", limit, ar)

    def ldtr(self) -> str | None:
        """13. A usable LDTR: type 2, S = 0, P = 1, reserved 0, G vs limit."""
        if not self.usable("ldtr"):
            return None
        _, _, limit, ar = self.segment("ldtr")
        if ar & AR.TYPE_MASK != 2:
            return f"SDM 26.3.1.2: GUEST_LDTR_AR_BYTES type {ar & AR.TYPE_MASK} is not 2"
        return self._system_descriptor("LDTR", limit, ar)

    @staticmethod
    def _system_descriptor(up: str, limit: int, ar: int) -> str | None:
        if ar & AR.S:
            return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES {ar:#x} has S = 1"
        if not ar & AR.P:
            return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES {ar:#x} has P = 0"
        if ar & AR.RESERVED:
            return f"SDM 26.3.1.2: GUEST_{up}_AR_BYTES {ar:#x} sets reserved bits 31:17 or 11:8"
        if not _limit_fits_granularity(limit, ar):
            return f"SDM 26.3.1.2: GUEST_{up}_LIMIT {limit:#x} does not fit G of its access rights {ar:#x}"
        return None

    # -- 26.3.1.3, 26.3.1.4 -----------------------------------------------------------

    def descriptor_tables(self) -> str | None:
        """14. GDTR and IDTR bases canonical, limits bits 31:16 = 0."""
        for table in ("GDTR", "IDTR"):
            if not msrs.is_canonical(self.field(f"GUEST_{table}_BASE")):
                return f"SDM 26.3.1.3: GUEST_{table}_BASE is not canonical"
            if self.field(f"GUEST_{table}_LIMIT") >> 16:
                return f"SDM 26.3.1.3: GUEST_{table}_LIMIT {self.field(f'GUEST_{table}_LIMIT'):#x} sets bits 31:16"
        return None

    def rip(self) -> str | None:
        """15. RIP bits 63:32 = 0, unless "IA-32e mode guest" and CS.L = 1: then bits 63:48 (63:N, N the
        linear-address width) are all equal; bit 47 need not equal them."""
        rip = self.field("GUEST_RIP")
        if self.ia32e and self.segment("cs")[3] & AR.L:
            if rip >> msrs.LINEAR_ADDRESS_WIDTH not in (0, (1 << (64 - msrs.LINEAR_ADDRESS_WIDTH)) - 1):
                return f"SDM 26.3.1.4: GUEST_RIP {rip:#x}: bits 63:48 are not all equal"
        elif rip >> 32:
            return f"SDM 26.3.1.4: GUEST_RIP {rip:#x} sets bits 63:32 outside 64-bit mode"
        return None

    def rflags(self) -> str | None:
        """16. RFLAGS reserved bits 0 and bit 1 = 1; VM = 0 with "IA-32e mode guest"; IF = 1 to inject an interrupt."""
        if self.guest_rflags & RFLAGS.RESERVED or not self.guest_rflags & RFLAGS.FIXED1:
            return f"SDM 26.3.1.4: GUEST_RFLAGS {self.guest_rflags:#x} breaks reserved bits 63:22, 15, 5, 3 or bit 1"
        if self.ia32e and self.v8086:
            return 'SDM 26.3.1.4: GUEST_RFLAGS.VM = 1 with "IA-32e mode guest"'
        if self.injects(InterruptionType.EXTERNAL_INTERRUPT) and not self.guest_rflags & RFLAGS.IF:
            return "SDM 26.3.1.4: GUEST_RFLAGS.IF = 0 while injecting an external interrupt"
        return None

    # -- 26.3.1.5: non-register state -------------------------------------------------

    def activity(self) -> str | None:
        """17. Activity: active or HLT (IA32_VMX_MISC bits 8:6); HLT needs SS.DPL = 0; STI/MOV-SS blocking needs
        active; an HLT-state entry injects only an external interrupt, an NMI, #DB or #MC."""
        if self.activity_state not in (Activity.ACTIVE, Activity.HLT):
            return f"SDM 26.3.1.5: activity state {self.activity_state} is not supported (IA32_VMX_MISC bits 8:6)"
        if self.activity_state == Activity.ACTIVE:
            return None
        if (self.segment("ss")[3] & AR.DPL_MASK) >> AR.DPL_SHIFT:
            return "SDM 26.3.1.5: HLT activity state with SS.DPL != 0"
        if self.interruptibility_state & _BLOCKING_BY_STI_OR_MOV_SS:
            return "SDM 26.3.1.5: HLT activity state with blocking by STI or MOV SS"
        if self.injecting:
            allowed = self.injected_type in (InterruptionType.EXTERNAL_INTERRUPT, InterruptionType.NMI) or (
                self.injected_type == InterruptionType.HARDWARE_EXCEPTION
                and self.injected_vector in _HLT_INJECTABLE_EXCEPTIONS
            )
            if not allowed:
                return f"SDM 26.3.1.5: event {self.info:#x} cannot be injected in the HLT state"
        return None

    def interruptibility(self) -> str | None:
        """18. Interruptibility: bits 31:4 0; not STI and MOV SS both; STI needs IF; injection limits; SMI blocking."""
        value = self.interruptibility_state
        sti = bool(value & INTERRUPTIBILITY.BLOCKING_BY_STI)
        mov_ss = bool(value & INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
        if value & INTERRUPTIBILITY_RESERVED:
            return f"SDM 26.3.1.5: interruptibility {value:#x} sets bits 31:4"
        if sti and mov_ss:
            return "SDM 26.3.1.5: blocking by STI and by MOV SS both set"
        if sti and not self.guest_rflags & RFLAGS.IF:
            return "SDM 26.3.1.5: blocking by STI with RFLAGS.IF = 0"
        if self.injects(InterruptionType.EXTERNAL_INTERRUPT) and (sti or mov_ss):
            return "SDM 26.3.1.5: injecting an external interrupt with blocking by STI or MOV SS"
        if self.injects(InterruptionType.NMI) and mov_ss:
            return "SDM 26.3.1.5: injecting an NMI with blocking by MOV SS"
        smi_blocking = bool(value & INTERRUPTIBILITY.BLOCKING_BY_SMI)
        if smi_blocking and not self.in_smm:
            return "SDM 26.3.1.5: blocking by SMI outside SMM"
        if self.entry & ENTRY.bit("SMM") and not smi_blocking:
            return 'SDM 26.3.1.5: "entry to SMM" without blocking by SMI'
        if (
            self.pin & PIN.bit("VIRTUAL_NMIS")
            and self.injects(InterruptionType.NMI)
            and value & INTERRUPTIBILITY.BLOCKING_BY_NMI
        ):
            return 'SDM 26.3.1.5: injecting an NMI with "virtual NMIs" and virtual-NMI blocking'
        return None

    def pending_debug_exceptions(self) -> str | None:
        """19. Pending debug exceptions: bits other than 3:0, 12, 14 are 0; with STI/MOV-SS blocking or HLT,
        BS (bit 14) = 1 exactly when RFLAGS.TF = 1 and IA32_DEBUGCTL.BTF = 0."""
        value = self.field("GUEST_PENDING_DBG_EXCEPTIONS")
        if value & ~PENDING_DEBUG_VALID:
            return f"SDM 26.3.1.5: pending debug exceptions {value:#x} set reserved bits"
        blocking = self.interruptibility_state & (
            INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
        )
        if blocking or self.activity_state == Activity.HLT:
            single_step = bool(self.guest_rflags & RFLAGS.TF) and not self.field("GUEST_IA32_DEBUGCTL") & DEBUGCTL_BTF
            if bool(value & PENDING_DEBUG_BS) != single_step:
                return "SDM 26.3.1.5: pending BS differs from RFLAGS.TF = 1 and DEBUGCTL.BTF = 0"
        return None

    def vmcs_link_pointer(self) -> str | None:
        """20. A VMCS link pointer other than all ones: 4-KiB aligned, below 2^32, a region with the revision
        identifier (and bit 31 = "VMCS shadowing" = 0), and not the current VMCS (outside SMM)."""
        pointer = self.field("VMCS_LINK_POINTER")
        if pointer == NO_LINK_POINTER:
            return None
        if is_bad_address(pointer):
            return f"SDM 26.3.1.5: VMCS link pointer {pointer:#x} is not a 4-KiB aligned physical address"
        revision = self.memory.read_word(pointer >> 2)
        # Bits 30:0 the revision identifier, bit 31 "VMCS shadowing" (never allowed-1, so 0).
        if revision != msrs.VMCS_REVISION_ID:
            return f"SDM 26.3.1.5: the region at the VMCS link pointer {pointer:#x} holds revision dword {revision:#x}"
        entry_to_smm = bool(self.field(ENTRY.vmcs_field) & ENTRY.bit("SMM"))
        if (not self.in_smm or entry_to_smm) and pointer == self.current_vmcs:
            return "SDM 26.3.1.5: the VMCS link pointer is the current-VMCS pointer"
        if self.in_smm and not entry_to_smm and pointer == self.field("EXECUTIVE_VMCS_POINTER"):
            return "SDM 26.3.1.5: the VMCS link pointer is the executive-VMCS pointer (a return from SMM)"
        return None

    def pdptes(self) -> str | None:
        """21. PAE paging (CR0.PG, CR4.PAE, not "IA-32e mode guest", no EPT): each present PDPTE at CR3 has no
        reserved bit set (26.3.1.6; vol. 3A 4.4.1)."""
        if self.ia32e or not (self.cr0 & CR0.PG and self.cr4 & CR4.PAE):
            return None
        table = self.field("GUEST_CR3") & 0xFFFF_FFE0
        for i in range(4):
            low = self.memory.read_word((table >> 2) + 2 * i)
            high = self.memory.read_word((table >> 2) + 2 * i + 1)
            pdpte = low | high << 32
            if pdpte & 1 and pdpte & PDPTE_RESERVED:
                return f"SDM 26.3.1.6: PDPTE {i} at {table + 8 * i:#x} ({pdpte:#x}) sets reserved bits"
        return None
