"""SMI delivery and RSM under the default treatment: the state-save map walked between the machine state and SMRAM.

# Ref: Intel SDM vol. 3C, 34.3.1 "Entering SMM", 34.4.1 table 34-3 (the Intel
# 64 state-save map), 34.5.1 table 34-4 (the state SMM starts with), 34.10
# (auto HALT restart), 34.11 (SMBASE relocation), 34.14.1-34.14.3 (the default
# treatment of SMIs, RSM and CR4.VMXE with VMX operation); vol. 2B RSM;
# rtl/arch/smm.py (the map, the loads, the checks); sim/model/smm.py (the oracle).

SMI (``op`` SMI): in SMM the SMI is held pending (one is kept; the response's
value is 1). Else the block reads SMBASE, keeps inside what 34.14.1 saves
(CR4.VMXE, VMX operation, SS.DPL, RFLAGS.VM, blocking by STI and MOV SS, and
virtual-NMI blocking in non-root operation with "virtual NMIs"), and
``vmx_held`` takes the unit out of VMX operation: the unit's VMX state (the
VMXON and current-VMCS pointers, non-root operation) stays where it is, hidden
from the other blocks until RSM. Then it writes every doubleword of the map
(``SAVE_MAP``: the element read, then one region WRITE_WORD at SMBASE +
offset; an I/O SMI's instruction goes to the I/O state field) and loads SMM's
state (``ENTRY_LOADS``, an element a cycle).

RSM (``op`` RSM, in SMM): for each slot of the map, one or two region
READ_WORDs, then the element's write with RSM's rules (the image cut to the
element, CR4.VMXE as the SMI found it, the VMX fixed bits and the VMX-critical
state back in VMX operation); SMBASE's slot relocates SMBASE. An invalid CR0 or
CR4 image shuts the processor down (``shutdown``; the response SHUTDOWN, value
0). A pending SMI is delivered before the response.

Latency, with a bus slave that acknowledges one clock after the strobe: an
SMI held pending 0 cycles; delivery ``latency["SMI (delivered)"]``; RSM
``latency["RSM"]`` (one more SMI's delivery when one is pending). The unit's
latency table adds the dispatcher's 2 (docs/unit.md: 277 and 212 cycles).

Members
-------
op : In(OperationSignature())
    SMI and RSM (the dispatcher sends RSM only in SMM).
state : Out(StatePortSignature())
region : Out(RegionCommandSignature(entries))
in_vmx : In(1)
    The VMX unit's own VMX operation (not masked by ``vmx_held``).
non_root : In(1)
    VMX non-root operation (not masked by ``vmx_held``).
pin_controls : In(32)
    The current VMCS's pin-based controls ("virtual NMIs" makes virtual-NMI blocking VMX-critical state).
mode : In(Mode)
rflags : In(64)
in_smm : Out(1)
vmx_held : Out(1)
    In SMM after an SMI in VMX operation: the unit is out of VMX operation (root and non-root) until RSM.
shutdown : Out(1)
    RSM found an invalid saved state: every later request answers SHUTDOWN (value 0).
enter : In(1)
    The processor enters SMM another way (the dual-monitor treatment's activation and SMM VM exits,
    rtl/vmx/dual_monitor.py): ``in_smm`` := 1, and SMIs are held from the next cycle.
leave : In(1)
    The processor leaves SMM another way (a VM entry that returns from SMM): ``in_smm`` := 0.
blocked : In(1)
    SMIs are blocked outside SMM (a return from SMM left interruptibility bit 2 set, 34.15.4.9): an SMI is
    held pending as in SMM.
pending : Out(1)
pending_io : Out(32)
    An SMI is held, and its I/O state field (table 34-5: bit 0 an I/O SMI, bits 3:1 its length, bit 4 IN,
    bits 31:16 the port); ``take`` clears it (the dispatcher delivers it after a return from SMM).
take : In(1)
"""

from dataclasses import dataclass, field

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import PIN
from ..arch.msrs import CR0_FIXED0, CR0_FIXED1, CR4_FIXED0, CR4_FIXED1
from ..arch.ops import Op, Status
from ..arch.smm import (
    CR0_CLEARED_IN_SMM,
    ENTRY_LOADS,
    IO_SMI,
    IO_SMI_IN,
    SAVE_MAP,
    SMM_REVISION_ID,
    EntryLoad,
    IoState,
    SlotKind,
    word_offsets,
)
from ..arch.state import AR, CR4, ELEMENT_BY_NAME, INTERRUPTIBILITY, RFLAGS, element_id
from ..values import struct_value
from ..vmcs.region import RegionCommand, RegionCommandSignature
from .machine_state import ID_BITS, Mode, StatePortSignature
from .operation import OperationSignature, finish

__all__ = ["Smm"]

#: Every slot lies in SMBASE + 0xFC00..0xFFFF: a doubleword's place is its word index from 0xFC00.
_MAP_START = 0xFC00
_WORD_BITS = 8
_SMBASE = element_id("smbase")
_CR0 = element_id("cr0")
_SMM = element_id("smm")


class _WordKind(enum.Enum, shape=3):
    ELEMENT = 0
    CONSTANT = 1
    AUTO_HALT = 2
    #: CR4's low doubleword, saved with VMXE = 0 (34.14.1 clears CR4.VMXE before the save).
    CR4_LOW = 3
    #: The I/O state field of the SMI being delivered (``io_state``).
    IO_STATE = 4


class _SaveWord(data.Struct):
    """A doubleword SMI delivery writes: ``element``'s low or ``high`` half, or a constant (the revision
    identifier if ``revision``, else 0), at SMBASE + 0xFC00 + 4 ``word``."""

    element: ID_BITS
    high: 1
    kind: _WordKind
    word: _WORD_BITS
    revision: 1


class _Rule(enum.Enum, shape=3):
    """What RSM does with an element's image besides ``restored_value`` (rtl/arch/smm.py, sim/model/smm.py)."""

    NONE = 0
    CR0 = 1
    CR4 = 2
    INTERRUPTIBILITY = 3
    SS_AR = 4
    RFLAGS = 5
    SELECTOR = 6
    ACTIVITY = 7


_RULES = {
    "cr0": _Rule.CR0,
    "cr4": _Rule.CR4,
    "interruptibility": _Rule.INTERRUPTIBILITY,
    "ss.ar": _Rule.SS_AR,
    "rflags": _Rule.RFLAGS,
    "cs.selector": _Rule.SELECTOR,
    "ss.selector": _Rule.SELECTOR,
}


class _RestoreSlot(data.Struct):
    """A slot RSM reads: words ``low`` (and ``high`` when ``pair``) from SMBASE + 0xFC00, into ``element`` by
    ``rule``, cut to ``_KEPT[kept]`` (the element's width without its reserved bits)."""

    element: ID_BITS
    pair: 1
    low: _WORD_BITS
    high: _WORD_BITS
    rule: _Rule
    kept: 4


class _Load(data.Struct):
    """A load of SMI delivery: ``element`` := by ``how``, a constant being ``_CONSTANTS[constant]``."""

    element: ID_BITS
    how: range(len(EntryLoad))
    constant: 4


def _word(offset: int) -> int:
    assert _MAP_START <= offset < 0x1_0000 and offset % 4 == 0
    return (offset - _MAP_START) // 4


def _kept(name: str) -> int:
    e = ELEMENT_BY_NAME[name]
    return e.mask & ~e.reserved


#: The distinct masks RSM cuts an image to (``restored_value``), and the constants SMI delivery loads.
_KEPT = sorted({_kept(s.name) for s in SAVE_MAP if s.kind == SlotKind.ELEMENT} | {1})
_CONSTANTS = sorted({constant for _, how, constant in ENTRY_LOADS if how == EntryLoad.CONSTANT})
assert len(_KEPT) <= 16 and len(_CONSTANTS) <= 16


def _save_rom() -> list:
    rom = []
    for slot in SAVE_MAP:
        for half, offset in enumerate(word_offsets(slot)):
            if slot.kind == SlotKind.ELEMENT:
                kind = _WordKind.CR4_LOW if (slot.name, half) == ("cr4", 0) else _WordKind.ELEMENT
                element = element_id(slot.name)
            else:
                kinds = {SlotKind.AUTO_HALT: _WordKind.AUTO_HALT, SlotKind.IO_STATE: _WordKind.IO_STATE}
                kind = kinds.get(slot.kind, _WordKind.CONSTANT)
                element = element_id("activity")
            assert slot.value in (0, SMM_REVISION_ID)
            rom.append(
                struct_value(
                    _SaveWord,
                    element=element,
                    high=half,
                    kind=kind.value,
                    word=_word(offset),
                    revision=slot.value == SMM_REVISION_ID,
                )
            )
    return rom


def _restore_rom() -> list:
    rom = []
    for slot in SAVE_MAP:
        if slot.kind in (SlotKind.CONSTANT, SlotKind.IO_STATE):
            continue  # RSM ignores them
        offsets = word_offsets(slot)
        if slot.kind == SlotKind.AUTO_HALT:
            name, rule = "activity", _Rule.ACTIVITY
        else:
            name, rule = slot.name, _RULES.get(slot.name, _Rule.NONE)
        rom.append(
            struct_value(
                _RestoreSlot,
                element=element_id(name),
                pair=len(offsets) == 2,
                low=_word(offsets[0]),
                high=_word(offsets[-1]),
                rule=rule.value,
                kept=_KEPT.index(1 if rule == _Rule.ACTIVITY else _kept(name)),
            )
        )
    return rom


class _Held(data.Struct):
    """What SMI delivery keeps inside the processor for RSM (34.14.1)."""

    #: The SMI found the processor in VMX operation (``vmx_held`` while in SMM).
    vmx: 1
    vmxe: 1
    dpl: 2
    vm: 1
    #: The interruptibility bits that are VMX-critical state, and their values.
    critical: 4
    blocking: 4


def _load_rom() -> list:
    return [
        struct_value(
            _Load,
            element=element_id(name),
            how=how.value,
            constant=_CONSTANTS.index(constant) if how == EntryLoad.CONSTANT else 0,
        )
        for name, how, constant in ENTRY_LOADS
    ]


_SAVE_ROM = _save_rom()
_RESTORE_ROM = _restore_rom()
_LOAD_ROM = _load_rom()


def _offset(word) -> Value:  # noqa: ANN001
    """The offset from SMBASE of word ``word`` of the map (0xFC00 + 4 word: no adder)."""
    return Cat(Const(0, 2), word, Const(_MAP_START >> (2 + _WORD_BITS), 16 - 2 - _WORD_BITS))


def _rom(m: Module, layout, rom: list, index) -> data.View:  # noqa: ANN001
    """A ROM as a case statement (a LUT ROM: the rows are few and wide)."""
    row = Signal(layout)
    with m.Switch(index):
        for i, value in enumerate(rom):
            with m.Case(i):
                m.d.comb += row.as_value().eq(value)
    return row


@dataclass
class _Walk:
    """The block's registers and the ROM rows of the step ``index``, shared by SMI's states and RSM's."""

    index: Signal
    save: data.View
    restore: data.View
    load: data.View
    in_smm: Signal = field(default_factory=lambda: Signal(name="in_smm"))
    pending: Signal = field(default_factory=lambda: Signal(name="pending"))
    shutdown: Signal = field(default_factory=lambda: Signal(name="shutdown"))
    #: What 34.14.1 keeps inside the processor; ``held.vmx`` is ``vmx_held``.
    held: Signal = field(default_factory=lambda: Signal(_Held, name="held"))
    #: The I/O state field of the SMI being delivered, and of the one held in SMM (table 34-5).
    io: Signal = field(default_factory=lambda: Signal(32, name="io"))
    pending_io: Signal = field(default_factory=lambda: Signal(32, name="pending_io"))
    #: SMBASE, as the operation found it.
    base: Signal = field(default_factory=lambda: Signal(32, name="base"))
    address: Signal = field(default_factory=lambda: Signal(32, name="address"))
    #: A slot's image, read by RSM.
    image: Signal = field(default_factory=lambda: Signal(64, name="image"))
    invalid: Signal = field(default_factory=lambda: Signal(name="invalid"))


def _invalid_images(image: Signal) -> tuple[Value, Value]:
    """Vol. 2B RSM, 34.14.2: whether ``image`` is a CR0 image and a CR4 image that shut the processor down
    (rtl/arch/smm.py ``invalid_saved_state``)."""
    invalid_cr0 = (
        (image & ELEMENT_BY_NAME["cr0"].reserved).any()
        | (image[31] & ~image[0])  # PG without PE
        | (image[29] & ~image[30])  # NW without CD
    )
    invalid_cr4 = (image & (ELEMENT_BY_NAME["cr4"].reserved | CR4.VMXE)).any()
    return invalid_cr0, invalid_cr4


class Smm(wiring.Component):
    __doc__ = __doc__

    def __init__(self, entries: int, *, region_latency: dict[RegionCommand, int]):
        self.entries = entries
        self._region_latency = region_latency
        super().__init__(
            {
                "op": In(OperationSignature()),
                "state": Out(StatePortSignature()),
                "region": Out(RegionCommandSignature(entries)),
                "in_vmx": In(1),
                "non_root": In(1),
                "pin_controls": In(32),
                "mode": In(Mode),
                "rflags": In(64),
                "in_smm": Out(1),
                "vmx_held": Out(1),
                "shutdown": Out(1),
                "enter": In(1),
                "leave": In(1),
                "blocked": In(1),
                "pending": Out(1),
                "pending_io": Out(32),
                "take": In(1),
            }
        )

    @property
    def latency(self) -> dict[str, int]:
        """Cycles from ``op.start`` to ``op.done``: SMI delivery reads SMBASE (1), then each doubleword of the
        map is an element read (1) and a region write, then CR0 is read (1) and the loads take a cycle each;
        RSM reads SMBASE (1), each slot is its region reads and an element write (1),
        then SMM is left (1)."""
        word = self._region_latency[RegionCommand.WRITE_WORD]
        assert self._region_latency[RegionCommand.READ_WORD] == word
        smi = 1 + len(_SAVE_ROM) * (1 + word) + 1 + len(_LOAD_ROM)
        reads = sum(len(word_offsets(s)) for s in SAVE_MAP if s.kind not in (SlotKind.CONSTANT, SlotKind.IO_STATE))
        rsm = 1 + reads * word + len(_RESTORE_ROM) + 1
        return {"SMI (delivered)": smi, "RSM": rsm}

    def elaborate(self, platform):
        m = Module()
        op, state, region = self.op, self.state, self.region
        index = Signal(range(max(len(_SAVE_ROM), len(_RESTORE_ROM), len(_LOAD_ROM)) + 1))
        r = _Walk(
            index=index,
            save=_rom(m, _SaveWord, _SAVE_ROM, index),
            restore=_rom(m, _RestoreSlot, _RESTORE_ROM, index),
            load=_rom(m, _Load, _LOAD_ROM, index),
        )
        m.d.comb += [self.in_smm.eq(r.in_smm), self.vmx_held.eq(r.held.vmx), self.shutdown.eq(r.shutdown)]
        with m.If(self.enter):
            m.d.sync += r.in_smm.eq(1)
        with m.Elif(self.leave):
            m.d.sync += r.in_smm.eq(0)
        m.d.comb += [self.pending.eq(r.pending), self.pending_io.eq(r.pending_io)]
        with m.If(self.take):
            m.d.sync += r.pending.eq(0)
        m.d.comb += [region.page.eq(r.address[12:]), region.word.eq(r.address[2:12]), region.entry.eq(0)]
        # The I/O state field of an I/O SMI (table 34-5): port, IN or OUT with DX, length, IO_SMI.
        request = op.operation
        request_io = Signal(IoState)
        is_io = (request.value & IO_SMI) != 0
        m.d.comb += [
            request_io.io_smi.eq(is_io),
            request_io.length.eq(Mux(is_io, request.io_size + 1, 0)),
            request_io.direction_in.eq(is_io & ((request.value & IO_SMI_IN) != 0)),
            request_io.port.eq(Mux(is_io, request.index[:16], 0)),
        ]

        # The datapaths (combinational, outside the FSM): what the save writes, what the loads load, what RSM
        # writes back and whether a CR0/CR4 image is invalid.
        save_word = self._save_word(m, r.save, r.io)
        load_value = self._load_value(m, r.load, r.base)
        restored = self._restored(m, r.restore, r.image, r.held)

        with m.FSM(name="smm"):
            with m.State("IDLE"):
                with m.If(op.start):
                    with m.If(request.op == Op.RSM):
                        m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(_SMBASE)]
                        m.next = "RSM_BASE"
                    with m.Elif(r.in_smm | self.blocked):
                        m.d.sync += r.pending.eq(1)
                        with m.If(~r.pending):  # one is kept: the first
                            m.d.sync += r.pending_io.eq(request_io)
                        finish(m, op, Status.OK, result=1)
                    with m.Else():
                        m.d.sync += r.io.eq(request_io)
                        self._deliver(m)
            self._smi_states(m, r, save_word, load_value)
            self._rsm_states(m, r, restored)
        return m

    def _deliver(self, m: Module) -> None:
        """Start SMI delivery: read SMBASE."""
        m.d.comb += [self.state.rd_en.eq(1), self.state.rd_id.eq(_SMBASE)]
        m.next = "SMI_BASE"

    def _smi_states(self, m: Module, r: _Walk, save_word: Signal, load_value: Signal) -> None:
        """SMI delivery: SMBASE and what 34.14.1 keeps inside, the map a doubleword at a time (an element read,
        a region write), then CR0 read once and SMM's loads an element a cycle."""
        state, region, mode = self.state, self.region, self.mode
        # The interruptibility bits that are VMX-critical state (34.14.1 items 3 and 4).
        virtual_nmis = self.non_root & self.pin_controls[PIN.bits["VIRTUAL_NMIS"]]
        critical = Cat(Const(0b11, 2), 0, virtual_nmis)
        blocking = Cat(mode.sti_blocking, mode.movss_blocking, 0, mode.nmi_blocking)

        with m.State("SMI_BASE"):
            m.d.sync += [
                r.base.eq(state.rd_data[:32]),
                r.held.vmx.eq(self.in_vmx),
                r.held.vmxe.eq(mode.cr4_vmxe),
                r.held.dpl.eq(mode.cpl),
                r.held.vm.eq(self.rflags[17]),
                r.held.critical.eq(critical),
                r.held.blocking.eq(blocking & critical),
                r.index.eq(0),
            ]
            m.next = "SAVE_READ"

        with m.State("SAVE_READ"):
            m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(r.save.element)]
            m.next = "SAVE_WRITE"

        with m.State("SAVE_WRITE"):
            m.d.comb += [
                r.address.eq(r.base + _offset(r.save.word)),
                region.start.eq(1),
                region.cmd.eq(RegionCommand.WRITE_WORD),
                region.wdata.eq(save_word),
            ]
            with m.If(region.done):
                m.d.sync += r.index.eq(r.index + 1)
                m.next = "SAVE_READ"
                with m.If(r.index == len(_SAVE_ROM) - 1):
                    m.d.sync += r.index.eq(0)
                    m.next = "LOAD_CR0"

        with m.State("LOAD_CR0"):
            m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(_CR0)]
            m.next = "LOAD"

        with m.State("LOAD"):
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(r.load.element), state.wr_value.eq(load_value)]
            m.d.sync += r.index.eq(r.index + 1)
            with m.If(r.index == len(_LOAD_ROM) - 1):
                m.d.sync += [r.in_smm.eq(1), r.index.eq(0)]
                finish(m, self.op, Status.OK, result=0)
                m.next = "IDLE"

    def _rsm_states(self, m: Module, r: _Walk, restored: Signal) -> None:
        """RSM: each slot's one or two region reads and its element's write; then SMM left, or the shutdown of
        an invalid CR0/CR4 image; a held SMI delivered before the response."""
        state, region = self.state, self.region
        invalid_cr0, invalid_cr4 = _invalid_images(r.image)

        def read_word(word):  # noqa: ANN001, ANN202
            """A region READ_WORD of the map's word ``word``; its ``done`` is the caller's."""
            m.d.comb += [
                r.address.eq(r.base + _offset(word)),
                region.start.eq(1),
                region.cmd.eq(RegionCommand.READ_WORD),
            ]

        with m.State("RSM_BASE"):
            m.d.sync += [r.base.eq(state.rd_data[:32]), r.index.eq(0), r.invalid.eq(0)]
            m.next = "RSM_LOW"

        with m.State("RSM_LOW"):
            read_word(r.restore.low)
            with m.If(region.done):
                m.d.sync += r.image.eq(region.rdata)
                with m.If(r.restore.pair):
                    m.next = "RSM_HIGH"
                with m.Else():
                    m.next = "RSM_WRITE"

        with m.State("RSM_HIGH"):
            read_word(r.restore.high)
            with m.If(region.done):
                m.d.sync += r.image[32:].eq(region.rdata)
                m.next = "RSM_WRITE"

        with m.State("RSM_WRITE"):
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(r.restore.element), state.wr_value.eq(restored)]
            with m.If(r.restore.rule == _Rule.CR0):
                m.d.sync += r.invalid.eq(r.invalid | invalid_cr0)
            with m.If(r.restore.rule == _Rule.CR4):
                m.d.sync += r.invalid.eq(r.invalid | invalid_cr4)
            m.d.sync += r.index.eq(r.index + 1)
            m.next = "RSM_LOW"
            with m.If(r.index == len(_RESTORE_ROM) - 1):
                m.next = "RSM_END"

        with m.State("RSM_END"):
            with m.If(r.invalid):
                m.d.sync += r.shutdown.eq(1)
                finish(m, self.op, Status.SHUTDOWN, result=0)
                m.next = "IDLE"
            with m.Else():
                m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(_SMM), state.wr_value.eq(0)]
                m.d.sync += [r.in_smm.eq(0), r.held.vmx.eq(0)]
                with m.If(r.pending):
                    m.d.sync += r.pending.eq(0)
                    m.next = "RSM_PENDING"
                with m.Else():
                    finish(m, self.op, Status.OK, result=0)
                    m.next = "IDLE"

        with m.State("RSM_PENDING"):
            m.d.sync += r.io.eq(r.pending_io)
            self._deliver(m)  # the held SMI, once RSM has left SMM (the next cycle reads the relocated SMBASE)

    def _save_word(self, m: Module, save: data.View, io: Signal) -> Signal:
        """The doubleword a step of the save writes: the element's half read (CR4 with VMXE = 0, 34.14.1), the
        revision identifier or 0, the auto HALT restart field (bit 16: the activity state read is HLT), or the
        I/O state field ``io``."""
        rd_data = self.state.rd_data
        element_word = Mux(save.high, rd_data[32:], rd_data[:32])
        word = Signal(32)
        with m.Switch(save.kind):
            with m.Case(_WordKind.ELEMENT):
                m.d.comb += word.eq(element_word)
            with m.Case(_WordKind.CR4_LOW):
                m.d.comb += word.eq(element_word & ~CR4.VMXE)
            with m.Case(_WordKind.CONSTANT):
                m.d.comb += word.eq(Mux(save.revision, SMM_REVISION_ID, 0))
            with m.Case(_WordKind.AUTO_HALT):
                m.d.comb += word.eq(Cat(Const(0, 16), rd_data == 1))
            with m.Case(_WordKind.IO_STATE):
                m.d.comb += word.eq(io)
        return word

    def _load_value(self, m: Module, load: data.View, base: Signal) -> Signal:
        """The value a load of SMI delivery writes: a constant of the table, CR0 (read once, before the loads)
        with PE, EM, TS and PG cleared, SMBASE >> 4 or SMBASE (table 34-4)."""
        value = Signal(64)
        with m.Switch(load.how):
            with m.Case(EntryLoad.CONSTANT.value):
                with m.Switch(load.constant):
                    for i, constant in enumerate(_CONSTANTS):
                        with m.Case(i):
                            m.d.comb += value.eq(constant)
            with m.Case(EntryLoad.CR0_CLEARED.value):
                m.d.comb += value.eq(self.state.rd_data & ~CR0_CLEARED_IN_SMM)
            with m.Case(EntryLoad.SMBASE_SELECTOR.value):
                m.d.comb += value.eq(base[4:20])
            with m.Case(EntryLoad.SMBASE.value):
                m.d.comb += value.eq(base)
        return value

    @staticmethod
    def _restored(m: Module, restore: data.View, image: Signal, held: data.View) -> Signal:
        """An element's value after RSM (sim/model/smm.py ``_restored``): the image cut to the element, CR4.VMXE
        as the SMI found it, and back in VMX operation the fixed CR0/CR4 bits and the VMX-critical state."""
        kept = Signal(64)  # the image cut to the element, without its reserved bits (restored_value)
        with m.Switch(restore.kept):
            for i, mask in enumerate(_KEPT):
                with m.Case(i):
                    m.d.comb += kept.eq(image & mask)
        restored = Signal(64)
        vmx = held.vmx  # the SMI found the processor in VMX operation
        with m.Switch(restore.rule):
            with m.Case(_Rule.CR0):
                m.d.comb += restored.eq(Mux(vmx, (kept | CR0_FIXED0) & CR0_FIXED1, kept))
            with m.Case(_Rule.CR4):
                cr4 = kept | Mux(held.vmxe, CR4.VMXE, 0)
                m.d.comb += restored.eq(Mux(vmx, (cr4 | CR4_FIXED0) & CR4_FIXED1, cr4))
            with m.Case(_Rule.INTERRUPTIBILITY):
                unblocked = kept & ~INTERRUPTIBILITY.BLOCKING_BY_SMI
                critical_restored = (unblocked & ~held.critical) | held.blocking
                m.d.comb += restored.eq(Mux(vmx, critical_restored, unblocked))
            with m.Case(_Rule.SS_AR):
                m.d.comb += restored.eq(Mux(vmx, (kept & ~AR.DPL_MASK) | (held.dpl << AR.DPL_SHIFT), kept))
            with m.Case(_Rule.RFLAGS):
                m.d.comb += restored.eq(Mux(vmx, (kept & ~RFLAGS.VM) | (held.vm << 17), kept))
            with m.Case(_Rule.SELECTOR):
                m.d.comb += restored.eq(Mux(vmx & ~held.vm, Cat(held.dpl, kept[2:]), kept))
            with m.Case(_Rule.ACTIVITY):
                m.d.comb += restored.eq(image[16])
            with m.Default():
                m.d.comb += restored.eq(kept)
        return restored
