"""VMCS contents that pass every VM-entry check: the starting point of tests, vectors, the bench and the examples.

# Ref: Intel SDM vol. 3C, 24.11.3 "Initializing a VMCS", 26.2 (checks on the
# controls and the host state), 26.3.1 (checks on the guest state).

``launchable_fields()`` is what a VMM writes into a fresh VMCS (a VMCLEARed
region of zeros) so that VMLAUNCH enters the guest: the TRUE default1 controls,
a host in 32-bit protected mode with paging (or a 64-bit host), and a guest in
the same mode, flat segments, CPL 0, no VMCS link pointer. Tests change one
field of it to break one rule.
"""

from __future__ import annotations

from vmxu.rtl.arch import msrs, smm
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC
from vmxu.rtl.arch.state import AR, CR0, CR4, RFLAGS

__all__ = [
    "CR0_VMX",
    "CR4_VMX",
    "CODE_AR",
    "DATA_AR",
    "TSS_AR",
    "HOST_SELECTORS",
    "HOST_RIP_32",
    "HOST_RIP_64",
    "GUEST_RIP",
    "GUEST_RSP",
    "NO_LINK_POINTER",
    "host_fields",
    "guest_fields",
    "launchable_fields",
    "mseg_header",
]

#: CR0 and CR4 that satisfy the VMX fixed bits (PE, NE, PG; VMXE).
CR0_VMX = CR0.PE | CR0.NE | CR0.PG
CR4_VMX = CR4.VMXE
#: Flat 4-GiB segments: code execute/read accessed (type 11), data read/write accessed (type 3), S, P, D/B, G.
CODE_AR = 0xC09B
DATA_AR = 0xC093
#: A busy 32-bit TSS: type 11, P.
TSS_AR = 0x8B
HOST_CS, HOST_DATA, HOST_TR = 0x08, 0x10, 0x18
HOST_SELECTORS = {
    "HOST_ES_SELECTOR": HOST_DATA,
    "HOST_CS_SELECTOR": HOST_CS,
    "HOST_SS_SELECTOR": HOST_DATA,
    "HOST_DS_SELECTOR": HOST_DATA,
    "HOST_FS_SELECTOR": HOST_DATA,
    "HOST_GS_SELECTOR": HOST_DATA,
    "HOST_TR_SELECTOR": HOST_TR,
}
HOST_RIP_32 = 0x0010_0000
HOST_RIP_64 = 0xFFFF_8000_0010_0000
GUEST_RIP = 0x0004_0000
GUEST_RSP = 0x0005_0000
NO_LINK_POINTER = 0xFFFF_FFFF_FFFF_FFFF


def host_fields(*, ia32e_host: bool = False) -> dict[str, int]:
    """Controls and host state that pass every check of SDM 26.2 (on a VMCS of zeros).

    The controls are the TRUE default1 settings (IA32_VMX_BASIC bit 55 is 1); the
    host is 32-bit protected mode with paging or, with ``ia32e_host``, a 64-bit
    host (then the processor must be in IA-32e mode).
    """
    return {
        PIN.vmcs_field: PIN.true_default1,
        PROC.vmcs_field: PROC.true_default1,
        EXIT.vmcs_field: EXIT.true_default1 | (EXIT.bit("HOST_ADDR_SPACE_SIZE") if ia32e_host else 0),
        ENTRY.vmcs_field: ENTRY.true_default1,
        "HOST_CR0": CR0_VMX,
        "HOST_CR4": CR4_VMX | (CR4.PAE if ia32e_host else 0),
        "HOST_CR3": 0x0008_0000,
        **HOST_SELECTORS,
        "HOST_TR_BASE": 0x8000,
        "HOST_GDTR_BASE": 0x9000,
        "HOST_IDTR_BASE": 0xA000,
        "HOST_RSP": 0x0009_0000,
        "HOST_RIP": HOST_RIP_64 if ia32e_host else HOST_RIP_32,
    }


def guest_fields(*, ia32e_guest: bool = False) -> dict[str, int]:
    """A guest state that passes every check of SDM 26.3.1: CPL 0, flat segments, paging without PAE
    (no PDPTEs to check) or, with ``ia32e_guest``, 64-bit code with PAE paging; no VMCS link pointer."""
    fields = {
        "GUEST_CR0": CR0_VMX,
        "GUEST_CR3": 0x0007_0000,
        "GUEST_CR4": CR4_VMX | (CR4.PAE if ia32e_guest else 0),
        "GUEST_DR7": 0x400,
        "GUEST_RSP": GUEST_RSP,
        "GUEST_RIP": GUEST_RIP,
        "GUEST_RFLAGS": RFLAGS.FIXED1,
        "GUEST_GDTR_BASE": 0x9000,
        "GUEST_GDTR_LIMIT": 0x27,
        "GUEST_IDTR_BASE": 0xA000,
        "GUEST_IDTR_LIMIT": 0xFF,
        "GUEST_LDTR_AR_BYTES": AR.UNUSABLE,
        "GUEST_TR_SELECTOR": HOST_TR,
        "GUEST_TR_BASE": 0x8000,
        "GUEST_TR_LIMIT": 0x67,
        "GUEST_TR_AR_BYTES": TSS_AR,
        "VMCS_LINK_POINTER": NO_LINK_POINTER,
    }
    for segment in ("ES", "CS", "SS", "DS", "FS", "GS"):
        code = segment == "CS"
        fields[f"GUEST_{segment}_SELECTOR"] = HOST_CS if code else HOST_DATA
        fields[f"GUEST_{segment}_LIMIT"] = 0xFFFF_FFFF
        fields[f"GUEST_{segment}_AR_BYTES"] = DATA_AR
    fields["GUEST_CS_AR_BYTES"] = (CODE_AR & ~AR.DB) | AR.L if ia32e_guest else CODE_AR
    return fields


def launchable_fields(*, ia32e: bool = False) -> dict[str, int]:
    """Controls, host and guest state with which VMLAUNCH enters the guest.

    With ``ia32e`` the host and the guest are 64-bit ("host address-space size",
    "IA-32e mode guest"); the processor must then be in IA-32e mode.
    """
    fields = host_fields(ia32e_host=ia32e) | guest_fields(ia32e_guest=ia32e)
    if ia32e:
        fields[ENTRY.vmcs_field] |= ENTRY.bit("IA32E_MODE")
    return fields


def mseg_header(*, features: int = 0) -> dict[int, int]:
    """An MSEG header (SDM 34.15.5 table 34-10) by offset: the revision identifier of IA32_VMX_MISC[63:32],
    ``features``, a GDT of 6 descriptors at +0x100, CS 8, the STM's EIP, ESP and CR3 at +0x1000, +0x3000, +0x4000."""
    return {
        smm.MSEG_REVISION: msrs.MSEG_REVISION_ID,
        smm.MSEG_FEATURES: features,
        smm.MSEG_GDTR_LIMIT: 0x2F,
        smm.MSEG_GDTR_BASE_OFFSET: 0x100,
        smm.MSEG_CS_SELECTOR: 0x8,
        smm.MSEG_EIP_OFFSET: 0x1000,
        smm.MSEG_ESP_OFFSET: 0x3000,
        smm.MSEG_CR3_OFFSET: 0x4000,
    }
