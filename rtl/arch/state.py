"""Machine-state elements: the processor state the VMX unit keeps and transitions move.

# Ref: Intel SDM vol. 3A, table 9-1 "IA-32 and Intel 64 processor states
# following power-up, reset, or INIT"; vol. 3C, 24.4 "Guest-state area",
# 24.5 "Host-state area"; vol. 4 for the MSR numbers.

One row per element (names are those of shared/vmx/REPLAY.md, lower case). A
row gives the element's width (a ``set`` of a wider value is malformed), its
power-up value, the rules a MOV/WRMSR would apply when software writes it (bits
that raise #GP, bits the processor forces), the MSR that reaches it, and the
guest-state and host-state VMCS fields that hold it on VM entries and exits.
"""

from dataclasses import dataclass

from amaranth.lib import data

from . import msrs
from .fields import FIELD_BY_NAME

__all__ = [
    "Element",
    "ELEMENTS",
    "ELEMENT_BY_NAME",
    "ELEMENT_BY_MSR",
    "SEGMENTS",
    "AR",
    "AccessRights",
    "RFLAGS",
    "CR0",
    "CR4",
    "EFER",
    "INTERRUPTIBILITY",
    "element_id",
]


class AR:
    """VMCS access-rights format (type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16)."""

    TYPE_MASK = 0xF
    #: Type bits: accessed (0), readable code / writable data (1), conforming code (2), code (3).
    TYPE_ACCESSED = 1 << 0
    TYPE_READABLE = 1 << 1
    TYPE_CONFORMING = 1 << 2
    TYPE_CODE = 1 << 3
    S = 1 << 4
    DPL_SHIFT = 5
    DPL_MASK = 0x3 << 5
    P = 1 << 7
    L = 1 << 13
    DB = 1 << 14
    G = 1 << 15
    UNUSABLE = 1 << 16
    #: Bits 31:17 and 11:8.
    RESERVED = 0xFFFE_0F00


class AccessRights(data.Struct):
    """The access-rights format of AR, as a layout for the RTL."""

    type: 4
    s: 1
    dpl: 2
    p: 1
    reserved0: 4
    avl: 1
    long_mode: 1
    db: 1
    g: 1
    unusable: 1
    reserved1: 15


class RFLAGS:
    CF = 1 << 0
    FIXED1 = 1 << 1
    PF = 1 << 2
    AF = 1 << 4
    ZF = 1 << 6
    SF = 1 << 7
    OF = 1 << 11
    TF = 1 << 8
    IF = 1 << 9
    RF = 1 << 16
    VM = 1 << 17
    #: The six flags every VMX instruction writes (SDM 30.2).
    ARITHMETIC = CF | PF | AF | ZF | SF | OF
    RESERVED = 0xFFFF_FFFF_FFC0_8028  # bits 63:22, 15, 5, 3


class CR0:
    PE = 1 << 0
    MP = 1 << 1
    EM = 1 << 2
    TS = 1 << 3
    ET = 1 << 4
    NE = 1 << 5
    NW = 1 << 29
    CD = 1 << 30
    PG = 1 << 31


class CR4:
    TSD = 1 << 2
    PSE = 1 << 4
    PAE = 1 << 5
    MCE = 1 << 6
    PGE = 1 << 7
    OSFXSR = 1 << 9
    VMXE = 1 << 13
    PCIDE = 1 << 17


class INTERRUPTIBILITY:
    BLOCKING_BY_STI = 1 << 0
    BLOCKING_BY_MOV_SS = 1 << 1
    BLOCKING_BY_SMI = 1 << 2
    BLOCKING_BY_NMI = 1 << 3


class EFER:
    SCE = 1 << 0
    LME = 1 << 8
    LMA = 1 << 10
    NXE = 1 << 11
    VALID = SCE | LME | LMA | NXE


@dataclass(frozen=True)
class Element:
    name: str
    bits: int
    reset: int
    #: A set/WRMSR with any of these bits raises #GP.
    reserved: int = 0
    #: Bits the processor forces to 1 / to 0 whatever is written.
    force1: int = 0
    force0: int = 0
    #: A set/WRMSR of a non-canonical value raises #GP.
    canonical: bool = False
    #: Each byte must be a valid memory type (0, 1, 4, 5, 6, 7), else #GP.
    memory_types: bool = False
    #: In VMX operation the value must satisfy these (FIXED0, FIXED1), else #GP.
    vmx_fixed: tuple[int, int] | None = None
    #: CR0 rules of MOV to CR0: PG needs PE, NW needs CD, else #GP.
    cr0_rules: bool = False
    #: False: no instruction writes the element, so a set/WRMSR of any value raises #GP (SMBASE: it changes
    #: only through the save map at RSM and GUEST_SMBASE on a return from SMM, shared/vmx/REPLAY.md "SMM").
    settable: bool = True
    #: A script may only read it: a ``set`` line is ``rejected`` (REPLAY.md: ``smm``), a SET request #GP.
    get_only: bool = False
    msr: int | None = None
    guest_field: str | None = None
    host_field: str | None = None

    @property
    def mask(self) -> int:
        return (1 << self.bits) - 1


def _segments() -> list[Element]:
    rows = []
    reset_ar = {"cs": 0x9B, "ldtr": 0x82, "tr": 0x8B}
    for seg in ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr"):
        up = seg.upper()
        host_sel = None if seg == "ldtr" else f"HOST_{up}_SELECTOR"
        host_base = f"HOST_{up}_BASE" if seg in ("fs", "gs", "tr") else None
        msr = {"fs": msrs.IA32_FS_BASE, "gs": msrs.IA32_GS_BASE}.get(seg)
        rows += [
            Element(
                f"{seg}.selector",
                16,
                0xF000 if seg == "cs" else 0,
                guest_field=f"GUEST_{up}_SELECTOR",
                host_field=host_sel,
            ),
            Element(
                f"{seg}.base",
                64,
                0xFFFF_0000 if seg == "cs" else 0,
                canonical=msr is not None,
                msr=msr,
                guest_field=f"GUEST_{up}_BASE",
                host_field=host_base,
            ),
            Element(f"{seg}.limit", 32, 0xFFFF, guest_field=f"GUEST_{up}_LIMIT"),
            Element(f"{seg}.ar", 32, reset_ar.get(seg, 0x93), guest_field=f"GUEST_{up}_AR_BYTES"),
        ]
    return rows


SEGMENTS = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")

ELEMENTS: tuple[Element, ...] = (
    Element(
        "cr0",
        64,
        0x6000_0010,
        reserved=0xFFFF_FFFF_0000_0000,
        cr0_rules=True,
        vmx_fixed=(msrs.CR0_FIXED0, msrs.CR0_FIXED1),
        guest_field="GUEST_CR0",
        host_field="HOST_CR0",
    ),
    Element(
        "cr3",
        64,
        0,
        reserved=~((1 << msrs.MAXPHYADDR) - 1) & (2**64 - 1),
        guest_field="GUEST_CR3",
        host_field="HOST_CR3",
    ),
    Element(
        "cr4",
        64,
        0,
        reserved=~msrs.CR4_FIXED1 & (2**64 - 1),
        vmx_fixed=(msrs.CR4_FIXED0, msrs.CR4_FIXED1),
        guest_field="GUEST_CR4",
        host_field="HOST_CR4",
    ),
    Element("dr7", 64, 0x400, reserved=0xFFFF_FFFF_0000_0000, force1=0x400, force0=0xD800, guest_field="GUEST_DR7"),
    Element("rsp", 64, 0, guest_field="GUEST_RSP", host_field="HOST_RSP"),
    Element("rip", 64, 0xFFF0, guest_field="GUEST_RIP", host_field="HOST_RIP"),
    Element("rflags", 64, 0x2, reserved=RFLAGS.RESERVED, force1=RFLAGS.FIXED1, guest_field="GUEST_RFLAGS"),
    Element(
        "efer",
        64,
        0,
        reserved=~EFER.VALID & (2**64 - 1),
        msr=msrs.IA32_EFER,
        guest_field="GUEST_IA32_EFER",
        host_field="HOST_IA32_EFER",
    ),
    Element(
        "pat",
        64,
        0x0007_0406_0007_0406,
        memory_types=True,
        msr=msrs.IA32_PAT,
        guest_field="GUEST_IA32_PAT",
        host_field="HOST_IA32_PAT",
    ),
    Element(
        "debugctl",
        64,
        0,
        reserved=~msrs.DEBUGCTL_VALID & (2**64 - 1),
        msr=msrs.IA32_DEBUGCTL,
        guest_field="GUEST_IA32_DEBUGCTL",
    ),
    Element(
        "perf_global_ctrl",
        64,
        0x3,
        reserved=~msrs.PERF_GLOBAL_CTRL_VALID & (2**64 - 1),
        msr=msrs.IA32_PERF_GLOBAL_CTRL,
        guest_field="GUEST_IA32_PERF_GLOBAL_CTRL",
        host_field="HOST_IA32_PERF_GLOBAL_CTRL",
    ),
    Element(
        "sysenter_cs",
        32,
        0,
        msr=msrs.IA32_SYSENTER_CS,
        guest_field="GUEST_SYSENTER_CS",
        host_field="HOST_IA32_SYSENTER_CS",
    ),
    Element(
        "sysenter_esp",
        64,
        0,
        canonical=True,
        msr=msrs.IA32_SYSENTER_ESP,
        guest_field="GUEST_SYSENTER_ESP",
        host_field="HOST_IA32_SYSENTER_ESP",
    ),
    Element(
        "sysenter_eip",
        64,
        0,
        canonical=True,
        msr=msrs.IA32_SYSENTER_EIP,
        guest_field="GUEST_SYSENTER_EIP",
        host_field="HOST_IA32_SYSENTER_EIP",
    ),
    Element("smbase", 32, 0x3_0000, settable=False, guest_field="GUEST_SMBASE"),
    Element("activity", 32, 0, guest_field="GUEST_ACTIVITY_STATE"),
    Element("interruptibility", 32, 0, guest_field="GUEST_INTERRUPTIBILITY_INFO"),
    Element("pending_debug", 64, 0, guest_field="GUEST_PENDING_DBG_EXCEPTIONS"),
    *_segments(),
    Element("gdtr.base", 64, 0, guest_field="GUEST_GDTR_BASE", host_field="HOST_GDTR_BASE"),
    Element("gdtr.limit", 32, 0xFFFF, guest_field="GUEST_GDTR_LIMIT"),
    Element("idtr.base", 64, 0, guest_field="GUEST_IDTR_BASE", host_field="HOST_IDTR_BASE"),
    Element("idtr.limit", 32, 0xFFFF, guest_field="GUEST_IDTR_LIMIT"),
    # 1 in SMM, else 0 (REPLAY.md "SMM"); SMI delivery and RSM change it, nothing else.
    Element("smm", 1, 0, settable=False, get_only=True),
)

ELEMENT_BY_NAME: dict[str, Element] = {e.name: e for e in ELEMENTS}
ELEMENT_BY_MSR: dict[int, Element] = {e.msr: e for e in ELEMENTS if e.msr is not None}


def element_id(name: str) -> int:
    """The element's number on the unit's request port (its row in ELEMENTS)."""
    return list(ELEMENT_BY_NAME).index(name)


def _check() -> None:
    if len(ELEMENT_BY_NAME) != len(ELEMENTS):
        raise ValueError("machine-state element named twice")
    for e in ELEMENTS:
        for f in (e.guest_field, e.host_field):
            if f is not None and f not in FIELD_BY_NAME:
                raise ValueError(f"element {e.name}: no VMCS field {f}")
        if e.reset >> e.bits:
            raise ValueError(f"element {e.name}: reset value wider than the element")


_check()
