"""System-management mode: the state-save map, the state SMI delivery loads, the state RSM checks.

# Ref: Intel SDM vol. 3C, 34.4.1 table 34-3 "SMRAM State Save Map for Intel 64
# Architecture", 34.5.1 table 34-4 "Processor Register Initialization in SMM",
# 34.10 (auto HALT restart), 34.11 (SMBASE relocation), 34.14 "Default treatment
# of SMIs and SMM with VMX operation and SMX operation"; vol. 2B RSM ("invalid
# state information ... enters the shutdown state"); shared/vmx/REPLAY.md "SMM".

One table for the model and the RTL: ``SAVE_MAP`` lists every slot SMI
delivery writes and RSM reads, in the order the RTL walks them; ``ENTRY_LOADS``
the elements SMI delivery sets after the save; ``invalid_saved_state`` the
images RSM refuses (the processor shuts down). Slots marked ``sdm`` are at the
offsets of the SDM's Intel 64 map; the others hold state the SDM saves in its
reserved areas without naming an offset (segment bases, limits and access
rights, the MSR-backed elements, interruptibility): the project places them
in the reserved range from SMBASE + 0xFC00 (docs/smm.md draws the map).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.lib import data

from .msrs import CR0_FIXED0, CR0_FIXED1, CR4_FIXED0, CR4_FIXED1
from .state import AR, CR0, CR4, EFER, ELEMENT_BY_NAME, INTERRUPTIBILITY, RFLAGS, SEGMENTS
from .state_actions import HOST_CS_AR, HOST_DATA_AR

__all__ = [
    "SMM_ENTRY_OFFSET",
    "SMM_REVISION_ID",
    "FLAT_LIMIT",
    "SlotKind",
    "Slot",
    "SAVE_MAP",
    "SLOT_BY_ELEMENT",
    "EntryLoad",
    "ENTRY_LOADS",
    "SMM_INTERRUPTIBILITY",
    "invalid_saved_state",
    "restored_value",
    "vmx_fixed",
    "CR0_CLEARED_IN_SMM",
    "AUTO_HALT_SLOT",
    "io_state",
    "IoState",
    "markdown",
    "BASE_HIGH_OFFSETS",
    "word_offsets",
    "SMBASE_SLOT",
    "IO_SMI",
    "IO_SMI_IN",
    "MSEG_REVISION",
    "MSEG_FEATURES",
    "MSEG_GDTR_LIMIT",
    "MSEG_GDTR_BASE_OFFSET",
    "MSEG_CS_SELECTOR",
    "MSEG_EIP_OFFSET",
    "MSEG_ESP_OFFSET",
    "MSEG_CR3_OFFSET",
    "MSEG_FEATURE_IA32E",
    "EXIT_REASON_FROM_ROOT",
    "MSEG_HEADER_WORDS",
    "StmLoad",
    "StmRow",
    "STM_LOADS",
    "stm_value",
]

#: SMI delivery starts the handler at SMBASE + 0x8000 (CS.base = SMBASE, RIP = 0x8000).
SMM_ENTRY_OFFSET = 0x8000
#: The SMM revision identifier (table 34-3 offset 7EFCH; 34.11): bits 15:0 the map's revision (0x64, the
#: Intel 64 map), bit 17 SMBASE relocation supported; bit 16 (I/O instruction restart) is 0: not supported.
SMM_REVISION_ID = 0x0002_0064
#: A ``smi`` request's value: bit 1 an I/O SMI (index = its port, io_size = its size), bit 0 its
#: instruction is IN (REPLAY.md "SMM").
IO_SMI = 1 << 1
IO_SMI_IN = 1 << 0
#: SMI delivery clears CR0.PE, EM, TS and PG (table 34-4); the other CR0 bits are kept.
CR0_CLEARED_IN_SMM = CR0.PE | CR0.EM | CR0.TS | CR0.PG
#: In SMM SMIs and NMIs are blocked (34.3.1, 34.8); STI and MOV-SS blocking end with SMI delivery.
SMM_INTERRUPTIBILITY = INTERRUPTIBILITY.BLOCKING_BY_SMI | INTERRUPTIBILITY.BLOCKING_BY_NMI


#: The MSEG header (SDM 34.15.5 table 34-10): the offset of each 32-bit field from the MSEG base.
MSEG_REVISION = 0
MSEG_FEATURES = 4
MSEG_GDTR_LIMIT = 8
MSEG_GDTR_BASE_OFFSET = 12
MSEG_CS_SELECTOR = 16
MSEG_EIP_OFFSET = 20
MSEG_ESP_OFFSET = 24
MSEG_CR3_OFFSET = 28
#: Bit 0 of the SMM-transfer monitor features field: the STM runs in IA-32e mode; bits 31:1 are reserved.
MSEG_FEATURE_IA32E = 1
#: The header's 32-bit fields (the words the activation reads).
MSEG_HEADER_WORDS = 8
#: Exit-reason bit 29: an SMM VM exit from VMX root operation (SDM 24.9.1, 34.15.2.3).
EXIT_REASON_FROM_ROOT = 1 << 29


class SlotKind(enum.Enum):
    #: An element's value (its low ``size`` bytes); RSM restores it.
    ELEMENT = 0
    #: A constant SMI delivery writes and RSM ignores (the revision identifier, "enable EPT").
    CONSTANT = 1
    #: The auto HALT restart field (34.10), a word at offset 0xFF02: 1 when the SMI interrupted the HLT
    #: state; RSM returns to the HLT state when it is 1 (the activity element). Written as the doubleword at
    #: 0xFF00, whose low word, the I/O instruction restart field, is 0.
    AUTO_HALT = 2
    #: The I/O state field (table 34-5, 7FA4H): an I/O SMI's port (31:16), instruction type (7:4: IN DX 0001,
    #: OUT DX 0000, table 34-6), length (3:1: 001 byte, 010 word, 100 doubleword) and IO_SMI (bit 0); 0 for any
    #: other SMI. RSM ignores it.
    IO_STATE = 3


@dataclass(frozen=True)
class Slot:
    """One slot of the state-save map: ``size`` bytes (4 or 8) at SMBASE + ``offset``."""

    kind: SlotKind
    offset: int
    size: int
    #: The element (ELEMENT), else a name for the docs.
    name: str
    #: The slot is at the SDM's offset (table 34-3); else the project's, in a reserved area.
    sdm: bool
    value: int = 0

    @property
    def words(self) -> int:
        return self.size // 4


def _e(name: str, offset: int, size: int, sdm: bool = True) -> Slot:
    return Slot(SlotKind.ELEMENT, offset, size, name, sdm)


def _project_slots() -> list[Slot]:
    """The hidden state the SDM saves without naming where, from SMBASE + 0xFC00 (docs/smm.md)."""
    slots = []
    offset = 0xFC00
    for seg in SEGMENTS:
        if seg != "ldtr":  # LDTR's base has SDM slots
            slots.append(_e(f"{seg}.base", offset, 8, sdm=False))
        slots += [_e(f"{seg}.limit", offset + 8, 4, sdm=False), _e(f"{seg}.ar", offset + 12, 4, sdm=False)]
        offset += 16
    rows = [
        ("gdtr.limit", 4),
        ("idtr.limit", 4),
        ("pat", 8),
        ("debugctl", 8),
        ("perf_global_ctrl", 8),
        ("sysenter_cs", 8),
        ("sysenter_esp", 8),
        ("sysenter_eip", 8),
        ("interruptibility", 4),
        ("pending_debug", 8),
    ]
    for name, room in rows:
        slots.append(_e(name, offset, 8 if ELEMENT_BY_NAME[name].bits > 32 else 4, sdm=False))
        offset += room
    return slots


def _save_map() -> tuple[Slot, ...]:
    slots = [
        _e("cr0", 0xFFF8, 8),
        _e("cr3", 0xFFF0, 8),
        _e("rflags", 0xFFE8, 8),
        _e("efer", 0xFFE0, 8),
        _e("rip", 0xFFD8, 8),
        _e("dr7", 0xFFC8, 8),
        *[
            _e(f"{seg}.selector", 0xFFC4 - 4 * i, 4)
            for i, seg in enumerate(("tr", "ldtr", "gs", "fs", "ds", "ss", "cs", "es"))
        ],
        Slot(SlotKind.IO_STATE, 0xFFA4, 4, "I/O state (IO_SMI, length, type, port)", True),
        _e("rsp", 0xFF7C, 8),
        Slot(SlotKind.AUTO_HALT, 0xFF00, 4, "auto HALT restart (7F02H) and I/O instruction restart (7F00H)", True),
        Slot(SlotKind.CONSTANT, 0xFEFC, 4, "SMM revision identifier", True, SMM_REVISION_ID),
        _e("smbase", 0xFEF8, 4),
        Slot(SlotKind.CONSTANT, 0xFEE0, 4, 'the "enable EPT" setting (0: no EPT)', True, 0),
        _e("ldtr.base", 0xFE9C, 8),
        _e("idtr.base", 0xFE94, 8),
        _e("gdtr.base", 0xFE8C, 8),
        _e("cr4", 0xFE40, 4),  # a doubleword in table 34-3 (7E44H on is reserved)
        *_project_slots(),
    ]
    return tuple(slots)


SAVE_MAP = _save_map()
#: The SDM puts the descriptor-table bases' upper halves (7DD8H IDT, 7DD4H LDT, 7DD0H GDT) apart from their
#: lower halves: each base is one 8-byte slot whose high doubleword is at this offset.
BASE_HIGH_OFFSETS = {"idtr.base": 0xFDD8, "ldtr.base": 0xFDD4, "gdtr.base": 0xFDD0}
SLOT_BY_ELEMENT = {s.name: s for s in SAVE_MAP if s.kind == SlotKind.ELEMENT}
AUTO_HALT_SLOT = next(s for s in SAVE_MAP if s.kind == SlotKind.AUTO_HALT)
SMBASE_SLOT = SLOT_BY_ELEMENT["smbase"]


#: The I/O state field at SMBASE + 0xFFA4 (table 34-5): an I/O SMI, its length in bytes (1, 2, 4), IN or OUT
#: with the port in DX, the port. SMI delivery writes it; a held SMI keeps it (rtl/vmx/smm.py) and the
#: dispatcher rebuilds the SMI's request from it (rtl/vmx/dispatcher.py). A layout, not a ``data.Struct``:
#: this module's annotations are not evaluated.
IoState = data.StructLayout({"io_smi": 1, "length": 3, "direction_in": 1, "reserved": 11, "port": 16})


def io_state(port: int, size: int, direction_in: bool) -> int:
    """The I/O state field of an I/O SMI whose instruction is IN or OUT with the port in DX (table 34-5)."""
    fields = {"io_smi": 1, "length": size, "direction_in": int(direction_in), "port": port}
    return IoState.const(fields).as_value().value


def word_offsets(slot: Slot) -> tuple[int, ...]:
    """The offsets from SMBASE of a slot's doublewords, low first."""
    if slot.name in BASE_HIGH_OFFSETS:
        return (slot.offset, BASE_HIGH_OFFSETS[slot.name])
    return tuple(slot.offset + 4 * i for i in range(slot.words))


class EntryLoad(enum.Enum):
    #: The element := ``value``.
    CONSTANT = 0
    #: CR0 with ``CR0_CLEARED_IN_SMM`` cleared.
    CR0_CLEARED = 1
    #: CS.selector := SMBASE >> 4 (its low 16 bits).
    SMBASE_SELECTOR = 2
    #: CS.base := SMBASE.
    SMBASE = 3


#: The segments' limit in SMM, and the STM's (4 GBytes).
FLAT_LIMIT = 0xFFFF_FFFF
#: Access rights of SMM's segments: present, accessed, 4-GByte granular, 16-bit (table 34-4's "4 GByte
#: limits"); code readable, data writable.
_SMM_CODE_AR = AR.G | AR.P | AR.S | AR.TYPE_CODE | AR.TYPE_READABLE | AR.TYPE_ACCESSED
_SMM_DATA_AR = AR.G | AR.P | AR.S | AR.TYPE_READABLE | AR.TYPE_ACCESSED


def _entry_loads() -> tuple[tuple[str, EntryLoad, int], ...]:
    loads = [
        ("cr0", EntryLoad.CR0_CLEARED, 0),
        ("cr4", EntryLoad.CONSTANT, 0),
        ("dr7", EntryLoad.CONSTANT, 0x400),
        ("efer", EntryLoad.CONSTANT, 0),
        ("rflags", EntryLoad.CONSTANT, RFLAGS.FIXED1),
        ("rip", EntryLoad.CONSTANT, SMM_ENTRY_OFFSET),
        ("cs.selector", EntryLoad.SMBASE_SELECTOR, 0),
        ("cs.base", EntryLoad.SMBASE, 0),
        ("cs.limit", EntryLoad.CONSTANT, FLAT_LIMIT),
        ("cs.ar", EntryLoad.CONSTANT, _SMM_CODE_AR),
    ]
    for seg in ("es", "ss", "ds", "fs", "gs"):
        loads += [
            (f"{seg}.selector", EntryLoad.CONSTANT, 0),
            (f"{seg}.base", EntryLoad.CONSTANT, 0),
            (f"{seg}.limit", EntryLoad.CONSTANT, FLAT_LIMIT),
            (f"{seg}.ar", EntryLoad.CONSTANT, _SMM_DATA_AR),
        ]
    loads += [
        ("activity", EntryLoad.CONSTANT, 0),
        ("interruptibility", EntryLoad.CONSTANT, SMM_INTERRUPTIBILITY),
        ("smm", EntryLoad.CONSTANT, 1),
    ]
    return tuple(loads)


#: What SMI delivery loads after the save (table 34-4), in order: (element, how, constant).
ENTRY_LOADS = _entry_loads()


class StmLoad(enum.Enum):
    """How the activation of the dual-monitor treatment loads an element of the STM's state (34.15.6.6)."""

    #: The element := ``value`` (``ia32e_value`` for an STM in IA-32e mode).
    CONSTANT = 0
    #: The element := (its value & ``arg``) | ``value`` (``ia32e_value`` in IA-32e mode).
    KEPT = 1
    #: The element := (MSEG base + the header's word at offset ``arg``) & ``mask``.
    MSEG_OFFSET = 2
    #: The element := the header's word at offset ``arg`` & ``mask``.
    HEADER = 3
    #: The element := the header's CS selector with bits 2:0 cleared (0 becomes 8), + ``arg``.
    SELECTOR = 4


@dataclass(frozen=True)
class StmRow:
    name: str
    how: StmLoad
    arg: int = 0
    value: int = 0
    ia32e_value: int | None = None
    mask: int = 0xFFFF_FFFF

    def constant(self, ia32e: bool) -> int:
        return self.ia32e_value if ia32e and self.ia32e_value is not None else self.value


def _stm_loads() -> tuple[StmRow, ...]:
    lm = EFER.LME | EFER.LMA
    u64 = (1 << 64) - 1
    rows = [
        # CR0: PG, NE, ET, MP, PE set; CD and NW kept; the rest 0.
        StmRow("cr0", StmLoad.KEPT, CR0.CD | CR0.NW, CR0.PG | CR0.NE | CR0.ET | CR0.MP | CR0.PE),
        # CR3: MSEG + the CR3 offset, bits 11:5 and 2:0 cleared (4:3, PWT and PCD, from the offset).
        StmRow("cr3", StmLoad.MSEG_OFFSET, MSEG_CR3_OFFSET, mask=0xFFFF_FFFF & ~0xFE7),
        # CR4: MCE and PGE cleared, PAE := the IA-32e feature bit, PSE := 1 without it; the rest kept.
        StmRow("cr4", StmLoad.KEPT, u64 & ~(CR4.MCE | CR4.PGE | CR4.PAE | CR4.PSE), CR4.PSE, CR4.PAE),
        StmRow("dr7", StmLoad.CONSTANT, value=0x400),
        StmRow("debugctl", StmLoad.CONSTANT),
        StmRow("efer", StmLoad.KEPT, u64 & ~lm, 0, lm),
        StmRow("cs.selector", StmLoad.SELECTOR),
        StmRow("cs.base", StmLoad.CONSTANT),
        StmRow("cs.limit", StmLoad.CONSTANT, value=FLAT_LIMIT),
        StmRow("cs.ar", StmLoad.CONSTANT, value=HOST_CS_AR | AR.DB, ia32e_value=HOST_CS_AR | AR.L),
    ]
    for seg in ("ss", "ds", "es", "fs", "gs"):
        rows += [
            StmRow(f"{seg}.selector", StmLoad.SELECTOR, 8),
            StmRow(f"{seg}.base", StmLoad.CONSTANT),
            StmRow(f"{seg}.limit", StmLoad.CONSTANT, value=FLAT_LIMIT),
            StmRow(f"{seg}.ar", StmLoad.CONSTANT, value=HOST_DATA_AR),
        ]
    rows += [
        StmRow("gdtr.base", StmLoad.MSEG_OFFSET, MSEG_GDTR_BASE_OFFSET),
        StmRow("gdtr.limit", StmLoad.HEADER, MSEG_GDTR_LIMIT, mask=0xFFFF),
        StmRow("idtr.limit", StmLoad.CONSTANT),  # IDTR.base is kept
        StmRow("ldtr.selector", StmLoad.CONSTANT),
        StmRow("ldtr.ar", StmLoad.CONSTANT, value=AR.UNUSABLE),
        StmRow("rip", StmLoad.MSEG_OFFSET, MSEG_EIP_OFFSET),
        StmRow("rsp", StmLoad.MSEG_OFFSET, MSEG_ESP_OFFSET),
        StmRow("rflags", StmLoad.CONSTANT, value=RFLAGS.FIXED1),
        StmRow("activity", StmLoad.CONSTANT),
        StmRow("interruptibility", StmLoad.CONSTANT, value=SMM_INTERRUPTIBILITY),
        StmRow("smm", StmLoad.CONSTANT, value=1),
    ]
    return tuple(rows)


#: The STM's state the activation of the dual-monitor treatment loads (34.15.6.6), in order; TR is left as
#: it was (the list does not name it).
STM_LOADS = _stm_loads()


def stm_value(row: StmRow, current: int, header: list[int], mseg: int, ia32e: bool) -> int:
    """The value ``row`` loads: ``current`` is the element's value, ``header`` the MSEG header's words."""
    word = header[row.arg // 4] if row.how in (StmLoad.MSEG_OFFSET, StmLoad.HEADER) else 0
    match row.how:
        case StmLoad.CONSTANT:
            return row.constant(ia32e)
        case StmLoad.KEPT:
            return (current & row.arg) | row.constant(ia32e)
        case StmLoad.MSEG_OFFSET:
            return (mseg + word) & row.mask
        case StmLoad.HEADER:
            return word & row.mask
        case StmLoad.SELECTOR:
            return ((header[MSEG_CS_SELECTOR // 4] & 0xFFF8) or 8) + row.arg


def invalid_saved_state(cr0: int, cr4: int) -> str | None:
    """Why RSM shuts the processor down on these CR0 and CR4 images, or None (vol. 2B RSM: a reserved CR4
    bit, CR0 PG without PE or NW without CD; 34.14.2: CR4.VMXE = 1 in the image)."""
    if cr4 & CR4.VMXE:
        return "SDM 34.14.2: CR4.VMXE = 1 in the saved CR4 image"
    if cr4 & ELEMENT_BY_NAME["cr4"].reserved:
        return "SDM 2B RSM: a reserved bit of the saved CR4 image is set"
    if cr0 & ELEMENT_BY_NAME["cr0"].reserved:
        return "SDM 2B RSM: a reserved bit of the saved CR0 image is set"
    if cr0 & CR0.PG and not cr0 & CR0.PE:
        return "SDM 2B RSM: CR0.PG = 1 with CR0.PE = 0 in the saved image"
    if cr0 & CR0.NW and not cr0 & CR0.CD:
        return "SDM 2B RSM: CR0.NW = 1 with CR0.CD = 0 in the saved image"
    return None


def restored_value(name: str, image: int) -> int:
    """The value RSM gives element ``name`` from its slot's image: cut to the element's width, its reserved
    bits cleared, its forced bits applied (the processor keeps no bit it would refuse)."""
    element = ELEMENT_BY_NAME[name]
    value = image & element.mask & ~element.reserved
    return (value | element.force1) & ~element.force0


def vmx_fixed(name: str, value: int) -> int:
    """CR0 or CR4 with the bits VMX operation fixes set to their fixed values (34.14.2: RSM back to VMX)."""
    if name == "cr0":
        return (value | CR0_FIXED0) & CR0_FIXED1
    return (value | CR4_FIXED0) & CR4_FIXED1


def _check() -> None:
    covered: dict[int, str] = {}
    for slot in SAVE_MAP:
        if slot.size not in (4, 8):
            raise ValueError(f"save-map slot {slot.name}: size {slot.size}")
        if slot.kind == SlotKind.ELEMENT and slot.name not in ELEMENT_BY_NAME:
            raise ValueError(f"save-map slot {slot.name}: no such element")
        for offset in word_offsets(slot):
            if offset % 4 or not 0xFC00 <= offset <= 0xFFFC:
                raise ValueError(f"save-map slot {slot.name}: offset {offset:#x} outside the map or unaligned")
            if offset in covered:
                raise ValueError(f"save-map slots {covered[offset]} and {slot.name} share offset {offset:#x}")
            covered[offset] = slot.name
    saved = set(SLOT_BY_ELEMENT)
    missing = {e for e in ELEMENT_BY_NAME if e not in saved} - {"activity", "smm"}
    if missing:
        raise ValueError(f"elements the save map leaves out: {sorted(missing)}")


_check()


_PROSE = """# SMM under the default treatment

Generated by `python -m vmxu.rtl.arch.smm > docs/smm.md` from rtl/arch/smm.py (the one table the model,
sim/model/smm.py, and the RTL, rtl/vmx/smm.py, both read). The contract is shared/vmx/REPLAY.md "SMM".

## What the unit does

- **SMI** (`{"op":"smi"}`, or with `"io"`): outside SMM the SMI is delivered (SDM 34.3.1, 34.14.1). In VMX
  operation (root or non-root) the unit keeps inside what 34.14.1 lists: CR4.VMXE, VMX operation, root or
  non-root, the current-VMCS pointer, and the VMX-critical state (SS.DPL, RFLAGS.VM, blocking by STI and by
  MOV SS); it leaves VMX operation and clears CR4.VMXE. It then writes the state-save map below at SMBASE
  and loads the state SMM starts with (table 34-4, below): the response is `ok`. In SMM an SMI is held
  pending (`ok` with `"pending": true`; one is kept) and delivered as soon as RSM completes, before RSM's
  response, so the next operation sees SMM again (one is kept: the first, with its I/O state).
- **RSM** in SMM (SDM 34.14.2, vol. 2B RSM): reads the map; a CR0 or CR4 image RSM must refuse shuts the
  processor down (`shutdown`, `"abort": 0`, and every later operation answers the same). Else every slot
  goes back to its element (cut to the element's width, its reserved bits cleared, its forced bits set),
  SMBASE from its field (relocation), the activity state from the auto HALT restart field, SMI blocking
  cleared; CR4.VMXE comes back as the SMI found it; if the SMI came in VMX operation, the unit is in VMX
  operation again (root or non-root, the same current VMCS), with the VMX fixed bits of CR0 and CR4 set and
  the VMX-critical state restored from inside (the map's SS.DPL, RFLAGS.VM and STI/MOV-SS blocking are
  ignored; CS.RPL and SS.RPL := SS.DPL when RFLAGS.VM = 0). RSM outside SMM is #UD.
- **In SMM**: CR4.VMXE is reserved (a `set` of it is #GP, 34.14.3), so the VMX instructions are #UD;
  `rdmsr` of IA32_SMBASE (0x9E) reads SMBASE (IA32_VMX_MISC bit 15); `wrmsr` of IA32_SMM_MONITOR_CTL (0x9B)
  is allowed (bit 0, bits 31:12; bit 2 is reserved since IA32_VMX_MISC bit 28 is 0). Element `smm` reads 1;
  `interruptibility` reads SMI and NMI blocking (0xC) after delivery.

## Departures from the SDM, and choices where it leaves one

- The dual-monitor treatment (SDM 34.15, below) is the unit's with guests and the model's with VM entries
  (IA32_VMX_BASIC bit 49 = 1); a unit without guests (the iCEBreaker's SoC) has neither SMM nor it. Under
  the default treatment an I/O SMI (`"io"`) writes the I/O state field at SMBASE + 0xFFA4
  (table 34-5: port, IN DX or OUT DX, length, IO_SMI; 0 after any other SMI); the unit has no I/O
  instruction restart (the revision identifier's bit 16 is 0) and no string I/O (the I/O memory address
  field is not written).
- The map holds every element the unit keeps: those the SDM places are at its offsets (the "SDM" column);
  the hidden state the SDM saves without naming where (segment bases, limits and access rights, the
  descriptor-table limits, the MSR-backed elements, interruptibility, pending debug exceptions) is at the
  project's offsets in the reserved range from SMBASE + 0xFC00. General-purpose registers other than RSP,
  DR6 and the EPT fields are not elements of the unit: not saved ("enable EPT" is written as 0).
- The state SMM starts with: EFER = 0 (table 34-4 leaves IA-32e mode; the unit clears the whole MSR), the
  segments' access rights 0x809B (CS) and 0x8093 (data: present, accessed, 4-GByte granular), which the
  table leaves to the implementation. An SMI in the shutdown or wait-for-SIPI activity state is delivered
  as in the active state.
- RSM shuts down on: CR4.VMXE = 1 in the image (34.14.2), a reserved CR4 bit, CR0 bits 63:32, CR0.PG
  without PE, CR0.NW without CD (vol. 2B RSM's list). Other images are taken as the processor would keep
  them (cut, reserved bits cleared), without a shutdown.
- A bus error while the map is written or read is what the bus does elsewhere (docs/semantics.md, choice 4):
  writes are dropped, reads return all ones.
- SMRAM is not protected on the unit's own bus (the replay platform's `write` reaches it from anywhere).
- Latency (`vmxu bench`, the unit alone): SMI delivery and RSM take the table's cycles (docs/unit.md);
  there is no target for the default treatment (the issue's 150-cycle target is the dual-monitor
  treatment's SMM VM exit; docs/unit.md).

## The dual-monitor treatment

The model (sim/model/dual_monitor.py, the oracle) and the unit (rtl/vmx/dual_monitor.py with the
transitions, the pointer block's switch and probe, the dispatcher) report IA32_VMX_BASIC bit 49 and carry
out SDM 34.15 (`vmxu replay examples/dual-monitor.jsonl --check`; the vectors `dual_monitor_*`):

- **Activation**: VMCALL in VMX root operation outside SMM with IA32_SMM_MONITOR_CTL.valid: VMfailInvalid
  without a current VMCS, then VMfailValid 19 (launched), 20 (VM-exit controls outside the TRUE MSR, or a
  bad VM-exit MSR-store address), 22 (the MSEG revision identifier is not IA32_VMX_MISC[63:32]), 24 (MSEG
  features with bits 31:1 set, or bit 0 = 0 in 64-bit mode: the rule of the SDM edition the project
  reads, 34.15.6.1; newer editions drop it). Then an SMM VM exit (`exited`, reason 18; the exit-reason
  field has bit 29) to the STM: the current VMCS becomes the SMM-transfer VMCS, EXECUTIVE_VMCS_POINTER
  := the VMXON pointer, the executive monitor's state is saved in its guest area with GUEST_SMBASE, no
  MSR list is used, and the STM's state comes from the MSEG header (34.15.6.6: CR0 PG, NE, ET, MP, PE with
  CD/NW kept; CR3 = MSEG + offset with bits 11:5 and 2:0 cleared; CR4 with MCE and PGE cleared, PAE = the
  IA-32e feature bit, PSE = 1 without it; CS from the header with bits 2:0 cleared (0 becomes 8), SS, DS,
  ES, FS, GS = CS + 8, flat; GDTR from the header, IDTR.limit = 0, LDTR unusable; RIP, RSP = MSEG +
  offsets; RFLAGS = 2; DR7 = 0x400, IA32_DEBUGCTL = 0; EFER.LME/LMA = the feature bit; SMIs and NMIs
  blocked). TR is left as it was (the project's reading: the list does not name it).
- **SMM VM exits**: an SMI outside SMM (reason 6; an I/O SMI 5, with the I/O qualification, IO_RIP = RIP
  and IO_RCX/RSI/RDI = 0: the unit keeps no other general-purpose register) and VMCALL in root operation
  outside SMM (18); bit 29 of the exit reason when from root. EXECUTIVE_VMCS_POINTER := the current VMCS
  (from non-root) or the VMXON pointer (from root); the SMM-transfer VMCS becomes current; the state is
  saved as for any exit, with GUEST_SMBASE; the MSR lists of the SMM-transfer VMCS are used (IA32_SMBASE
  may be stored, IA32_SMM_MONITOR_CTL loaded: the exit ends in SMM); its host state is loaded; SMM entered.
- **In SMM** (the STM, VMX root): RSM and VMCALL are #UD and VMfail(1), VMXOFF VMfail(23), SMIs held. A
  VM entry with "entry to SMM" runs a guest in SMM (interruptibility bit 2 must be 1); its RSM exits with
  reason 17; its exits stay in SMM and save SMI blocking as it is.
- **Return from SMM** ("entry to SMM" = 0): EXECUTIVE_VMCS_POINTER must be an aligned region with the
  revision identifier (16); with "deactivate dual-monitor treatment" it must be the VMXON pointer (18); a
  VMCS as executive must be launched (17) and its VM-execution controls valid (25; the current VMCS's are
  not checked); a return to root may not inject an event (7). The guest state is loaded from the
  SMM-transfer VMCS with SMBASE from GUEST_SMBASE; the SMM-transfer pointer := the current VMCS; the current
  VMCS := the executive VMCS (non-root operation), or the VMCS link pointer (VMX root operation, no current
  VMCS when it is all ones); SMM is left (`entered` either way). SMIs stay blocked if interruptibility
  bit 2 is 1 (34.15.4.9); deactivation unblocks them and returns to the default treatment. A held SMI is
  delivered at once after the return, before the response.
- Not modelled: MTF (no monitor trap flag), the preemption timer's "undefined" cases (its value is saved
  as for any exit), VPID flushes (no VPIDs), SMX.
"""


def markdown() -> str:
    """docs/smm.md: the prose above, the state-save map and the state SMI delivery loads, from the tables."""
    lines = [_PROSE, "## The state-save map (offsets from SMBASE; top at SMBASE + 0xFFFF)", ""]
    lines += ["| offset | bytes | what | SDM |", "|---|---|---|---|"]
    rows = []
    for slot in SAVE_MAP:
        offsets = word_offsets(slot)
        if slot.name in BASE_HIGH_OFFSETS:
            rows.append((offsets[0], 4, f"{slot.name} bits 31:0", "yes"))
            rows.append((offsets[1], 4, f"{slot.name} bits 63:32", "yes"))
            continue
        what = slot.name if slot.kind != SlotKind.CONSTANT else f"{slot.name} ({slot.value:#x})"
        rows.append((slot.offset, slot.size, what, "yes" if slot.sdm else "project"))
    for offset, size, what, sdm in sorted(rows, reverse=True):
        lines.append(f"| {offset:#06x} | {size} | {what} | {sdm} |")
    lines += ["", "## The state SMI delivery loads (after the save, in this order)", ""]
    lines += ["| element | value |", "|---|---|"]
    how_text = {
        EntryLoad.CR0_CLEARED: f"CR0 with PE, EM, TS and PG cleared (mask {CR0_CLEARED_IN_SMM:#x})",
        EntryLoad.SMBASE_SELECTOR: "SMBASE >> 4 (bits 15:0)",
        EntryLoad.SMBASE: "SMBASE",
    }
    for name, how, constant in ENTRY_LOADS:
        lines.append(f"| {name} | {how_text.get(how, f'{constant:#x}')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
