"""The transition walk: the state-action table walked between the VMCS cache and the machine state.

# Ref: Intel SDM vol. 3C, 26.3.2 "Loading guest state", 27.3 "Saving guest
# state", 27.5 "Loading host state"; rtl/arch/state_actions.py (the table) and
# rtl/vmx/transition_steps.py (its steps).

One step per element and per cycle, pipelined: a step reads its VMCS field
(the cache) and its element (the machine state) in one cycle, registers both
the next, and writes the next after that (the element for a load, the guest
field for a store). A walk of ``n`` steps therefore takes ``n + 2`` cycles
from ``start`` to ``done``. Walks:

- ``ENTRY``: every element's entry load (``ENTRY_STEPS``), except the deferred
  ones (PAT, PERF_GLOBAL_CTRL, EFER: a failed entry must not change them),
  whose fields are read and streamed but not written; then the VMCS link
  pointer, read and streamed only. Every field read is presented on ``walk``
  for the guest-state checker (``walk.index`` in ``ENTRY_WALK``).
- ``COMMIT``: the deferred entry loads, after every check passed.
- ``EXIT``: every element's exit store and exit load in the same step (the
  store reads the element, the load reads the host field and writes the
  element two cycles later).
- ``STORE`` and ``HOST``: the stores alone and the loads alone (an exit with a
  VM-exit MSR-store list, whose MSRs must be read between the two; a VM-entry
  failure, which stores nothing).

The steps live in one ROM with a row per element (its entry load, exit store
and exit load, from ``ENTRY_STEPS`` and ``EXIT_STEPS``), and for each walk
that skips rows a small ROM from position to row. A step's row is decoded once,
in the cycle of its reads, for the walk under way, and the decoded step is
carried down the pipeline to its writes.

The sequencer owns its cache port and the machine-state port from ``start``
to ``done``.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import ENTRY, EXIT, PIN
from ..arch.state import AR, CR4, EFER, INTERRUPTIBILITY
from ..arch.state_actions import CR0_KEPT_BITS, ENTRY_WALK, HOST_CS_AR, HOST_DATA_AR, UNUSABLE_AR
from ..values import struct_value
from ..vmcs.cache_port import SLOT_BITS, CachePortSignature
from .machine_state import ID_BITS, StatePortSignature
from .transition_steps import (
    CONDITIONS,
    CONSTANTS,
    DEFERRED_ENTRY_ELEMENTS,
    ENTRY_STEPS,
    EXIT_STEPS,
    ElementStep,
    FieldSlot,
    LoadOp,
    StoreOp,
)

__all__ = ["TransitionKind", "TransitionWalk", "WalkSignature", "WALKS"]

_LINK_POINTER = FieldSlot.of("VMCS_LINK_POINTER")


class TransitionKind(enum.Enum, shape=3):
    ENTRY = 0
    COMMIT = 1
    EXIT = 2
    STORE = 3
    HOST = 4


class WalkSignature(wiring.Signature):
    """The entry walk's fields, one per cycle, as the sequencer reads them (to the guest-state checker).

    Members
    -------
    valid : Out(1)
    index : Out(range(len(ENTRY_WALK)))
        ``word`` is field ``ENTRY_WALK[index]``.
    word : Out(64)
        The field's value, zero-extended.
    """

    def __init__(self):
        super().__init__({"valid": Out(1), "index": Out(range(len(ENTRY_WALK))), "word": Out(64)})


def _walks() -> dict[TransitionKind, list[ElementStep | None]]:
    """The steps of each walk; None is the entry walk's link-pointer read."""
    entry = [*ENTRY_STEPS, None]
    commit = [s for s in ENTRY_STEPS if s.element in DEFERRED_ENTRY_ELEMENTS]
    return {
        TransitionKind.ENTRY: entry,
        TransitionKind.COMMIT: commit,
        TransitionKind.EXIT: list(EXIT_STEPS),
        TransitionKind.STORE: [s for s in EXIT_STEPS if s.store_op != StoreOp.NONE],
        TransitionKind.HOST: [s for s in EXIT_STEPS if s.load_op != LoadOp.NONE or s.load_else != LoadOp.NONE],
    }


WALKS = _walks()
_MAX_STEPS = max(len(steps) for steps in WALKS.values())

# The RTL's ROM has one row per element, with what its entry and its exit do: the entry's and the exit's
# steps are the same elements in the same order, and a store writes the field the entry loads.
_ROWS = len(EXIT_STEPS)
assert [s.element for s in ENTRY_STEPS] == [s.element for s in EXIT_STEPS]
assert all(x.store_field in (None, e.load_field) for e, x in zip(ENTRY_STEPS, EXIT_STEPS, strict=True))
_ROW_OF = {s.element: row for row, s in enumerate(EXIT_STEPS)}
#: The rows each walk visits, by position (None: position = row); the link pointer's is row ``_ROWS``.
_WALK_ROWS = {
    k: None if k in (TransitionKind.ENTRY, TransitionKind.EXIT) else tuple(_ROW_OF[s.element] for s in steps)
    for k, steps in WALKS.items()
}
assert [None if s is None else _ROW_OF[s.element] for s in WALKS[TransitionKind.ENTRY]] == [*range(_ROWS), None]


class _FieldRead(data.Struct):
    """A field's place in the cache: ``slot``, its ``half``; ``pair``: 64 bits (both halves); ``narrow``: 16."""

    valid: 1
    slot: SLOT_BITS
    half: 1
    pair: 1
    narrow: 1


class _Load(data.Struct):
    """A load: ``op`` when condition number ``condition`` holds, else ``otherwise``."""

    op: LoadOp
    otherwise: LoadOp
    condition: range(len(CONDITIONS))


class _Row(data.Struct):
    """A row of the ROM: an element's entry load (of a ``guest`` field), exit store (to it) and exit load
    (of a ``host`` field)."""

    element: ID_BITS
    has_element: 1
    guest: _FieldRead
    host: _FieldRead
    entry: _Load
    exit: _Load
    constant: range(len(CONSTANTS))
    store_op: StoreOp
    store_condition: range(len(CONDITIONS))
    selector: 1  # a segment's selector: its access rights, the next row, load after it
    timer: 1  # the preemption timer, a register of the walk's user rather than an element
    deferred: 1  # loaded by COMMIT, not during the entry walk


class _Decoded(data.Struct):
    """What a step does in the walk under way, carried from its reads to its writes."""

    read: _FieldRead
    load_op: LoadOp
    constant: range(len(CONSTANTS))
    element: ID_BITS
    selector: 1
    timer: 1
    store_op: StoreOp
    store_on: 1
    store: _FieldRead


def _field_read(slot: FieldSlot | None):
    if slot is None:
        return 0
    return struct_value(
        _FieldRead, valid=1, slot=slot.slot, half=slot.half, pair=slot.words == 2, narrow=slot.bits == 16
    )


def _load(step: ElementStep):
    return struct_value(_Load, op=step.load_op.value, otherwise=step.load_else.value, condition=step.load_condition)


def _row_rom() -> list:
    rom = []
    for entry, exit_ in zip(ENTRY_STEPS, EXIT_STEPS, strict=True):
        if entry.constant and entry.constant != exit_.constant:
            raise ValueError(f"{entry.element}: the entry and the exit load different constants")
        rom.append(
            struct_value(
                _Row,
                element=entry.row or 0,
                has_element=entry.row is not None,
                guest=_field_read(entry.load_field),
                host=_field_read(exit_.load_field),
                entry=_load(entry),
                exit=_load(exit_),
                constant=exit_.constant,
                store_op=exit_.store_op.value,
                store_condition=exit_.store_condition,
                selector=entry.element.endswith(".selector"),
                timer=entry.row is None,
                deferred=entry.element in DEFERRED_ENTRY_ELEMENTS,
            )
        )
    rom.append(struct_value(_Row, guest=_field_read(_LINK_POINTER)))  # streamed to the checker, not loaded
    return rom


_ROW_ROM = _row_rom()


class TransitionWalk(wiring.Component):
    """Moves state between the current VMCS and the machine state, element by element (see the module).

    Latency: ``len(WALKS[kind]) + 2`` cycles from ``start`` to ``done``
    (``latency(kind)``). The walk does not stop early: the guest-state checks
    and the caller decide what a walk's results mean.

    Members
    -------
    start : In(1)
    kind : In(TransitionKind)
        Held from ``start`` to ``done``.
    done : Out(1)
    cache : Out(CachePortSignature(entries))
    entry : In(entry_bits)
        The cache entry of the current VMCS.
    state : Out(StatePortSignature())
    walk : Out(WalkSignature())
    entry_controls, exit_controls, pin_controls : In(32)
        The current VMCS's controls (the conditions of the table's actions).
    vectoring : In(1)
        The entry injects an event (activity and interruptibility rules).
    instruction : In(1)
        An instruction caused the exit (RFLAGS.RF is saved as 0).
    fault : In(1)
        A fault-class exception caused the exit (RFLAGS.RF is saved as 1).
    mov_ss_blocking : In(1)
        The exit happens under blocking by MOV SS (pending debug exceptions are saved, else 0).
    nmi_blocking : In(1)
        The host load blocks NMIs (an exit caused by an NMI; an entry failure with NMIs blocked before).
    ends_in_smm : In(1)
        The exit ends in SMM (a guest entered with "entry to SMM"): SMI blocking is saved as 1 and kept.
    timer : In(32)
        The VMX-preemption timer's value, for its store (0 if it expired).
    timer_load : Out(1)
    timer_value : Out(32)
        With ``timer_load``: the entry loads the timer.
    """

    def __init__(self, entries: int):
        self.entries = entries
        cache = CachePortSignature(entries)
        super().__init__(
            {
                "start": In(1),
                "kind": In(TransitionKind),
                "done": Out(1),
                "cache": Out(cache),
                "entry": In(cache.entry_bits),
                "state": Out(StatePortSignature()),
                "walk": Out(WalkSignature()),
                "entry_controls": In(32),
                "exit_controls": In(32),
                "pin_controls": In(32),
                "vectoring": In(1),
                "ends_in_smm": In(1),
                "instruction": In(1),
                "fault": In(1),
                "mov_ss_blocking": In(1),
                "nmi_blocking": In(1),
                "timer": In(32),
                "timer_load": Out(1),
                "timer_value": Out(32),
            }
        )

    @staticmethod
    def latency(kind: TransitionKind) -> int:
        return len(WALKS[kind]) + 2

    def elaborate(self, platform):
        m = Module()
        busy = Signal()
        kind = self.kind
        step = Signal(range(_MAX_STEPS + 2))
        last = Signal(range(_MAX_STEPS + 2))
        with m.Switch(kind):
            for k, steps in WALKS.items():
                with m.Case(k):
                    m.d.comb += last.eq(len(steps) + 1)
        with m.If(self.start & ~busy):
            m.d.sync += [busy.eq(1), step.eq(0)]
        with m.Elif(busy):
            m.d.sync += step.eq(step + 1)
            with m.If(step == last):
                m.d.sync += busy.eq(0)
                m.d.comb += self.done.eq(1)
        reading = busy & (step < last - 1)

        # Stage 0 (the cycle of the step): the step's row, what the row does in this kind of walk, the reads.
        row = Signal(range(_ROWS + 1))
        with m.Switch(kind):
            for k, rows in _WALK_ROWS.items():
                with m.Case(k):
                    if rows is None:
                        m.d.comb += row.eq(step)
                    else:
                        with m.Switch(step):
                            for position, r in enumerate(rows):
                                with m.Case(position):
                                    m.d.comb += row.eq(r)
        info = Signal(_Row)
        with m.Switch(row):
            for r, value in enumerate(_ROW_ROM):
                with m.Case(r):
                    m.d.comb += info.as_value().eq(value)

        condition = self._conditions(m)
        entry_side = kind.as_value().matches(TransitionKind.ENTRY, TransitionKind.COMMIT)
        loads = (kind != TransitionKind.STORE) & ~((kind == TransitionKind.ENTRY) & info.deferred)
        stores = kind.as_value().matches(TransitionKind.EXIT, TransitionKind.STORE)
        side = _Load(Mux(entry_side, info.entry.as_value(), info.exit.as_value()))
        read = _FieldRead(Mux(entry_side, info.guest.as_value(), info.host.as_value()))
        load_op = Mux(condition.bit_select(side.condition, 1), side.op, side.otherwise)
        decoded = Signal(_Decoded)
        m.d.comb += decoded.as_value().eq(
            struct_value(
                _Decoded,
                read=Mux(kind == TransitionKind.STORE, 0, read.as_value()),
                load_op=Mux(loads, load_op, LoadOp.NONE),
                constant=info.constant,
                element=info.element,
                selector=info.selector,
                timer=info.timer,
                store_op=Mux(stores, info.store_op, StoreOp.NONE),
                store_on=condition.bit_select(info.store_condition, 1),
                store=info.guest.as_value(),
            )
        )
        m.d.comb += [
            self.cache.rd_entry.eq(self.entry),
            self.cache.wr_entry.eq(self.entry),
            self.cache.rd_slot.eq(decoded.read.slot),
            self.cache.rd_en.eq(reading & decoded.read.valid),
            self.state.rd_id.eq(info.element),
            self.state.rd_en.eq(reading & info.has_element),
        ]

        # Stage 1: the slot becomes the field's value (its half, its width); registered with the element.
        step1 = Signal.like(step)
        step2 = Signal.like(step)
        valid1 = Signal()
        valid2 = Signal()
        decoded1 = Signal(_Decoded)
        decoded2 = Signal(_Decoded)
        m.d.sync += [step1.eq(step), step2.eq(step1), valid1.eq(reading), valid2.eq(valid1)]
        m.d.sync += [decoded1.eq(decoded), decoded2.eq(decoded1)]
        slot = self.cache.rd_data
        word = slot.word_select(decoded1.read.half, 32)
        field1 = Mux(decoded1.read.pair, slot, Mux(decoded1.read.narrow, word[:16], word))
        field = Signal(64)
        old = Signal(64)
        m.d.sync += [field.eq(field1), old.eq(self.state.rd_data)]

        # Stage 2: the values, and the writes.
        loading = valid2 & (decoded2.load_op != LoadOp.NONE)
        load_value = self._load_value(m, decoded2, field, old, loading)
        timer_load = valid2 & decoded2.timer & (decoded2.load_op == LoadOp.FIELD)
        m.d.comb += [
            self.timer_load.eq(timer_load),
            self.timer_value.eq(field[:32]),
            self.state.wr_id.eq(decoded2.element),
            self.state.wr_value.eq(load_value),
            self.state.wr_en.eq(loading & ~decoded2.timer),
        ]
        store_value = self._store_value(m, decoded2.store_op, old)
        store = decoded2.store
        halves = Mux(store.pair, 0b11, Mux(store.half, 0b10, 0b01))
        m.d.comb += [
            self.cache.wr_slot.eq(store.slot),
            self.cache.wr_en.eq(Mux(valid2 & decoded2.store_on & (decoded2.store_op != StoreOp.NONE), halves, 0)),
            # A one-word field goes to either half: the word on both, the enables choose.
            self.cache.wr_data.eq(Mux(store.pair, store_value, Cat(store_value[:32], store_value[:32]))),
        ]

        # The entry walk's fields, to the guest-state checker.
        m.d.comb += [
            self.walk.valid.eq(valid2 & (kind == TransitionKind.ENTRY)),
            self.walk.index.eq(step2),
            self.walk.word.eq(field),
        ]
        return m

    def _conditions(self, m):
        """The conditions of the actions (``CONDITIONS``), from the control fields: bit 0 is "always"."""
        controls = {ENTRY.vmcs_field: self.entry_controls, EXIT.vmcs_field: self.exit_controls}
        controls[PIN.vmcs_field] = self.pin_controls
        condition = Signal(len(CONDITIONS))
        m.d.comb += condition[0].eq(1)
        for i, control in enumerate(CONDITIONS[1:], start=1):
            m.d.comb += condition[i].eq(controls[control.field.vmcs_field][control.field.bits[control.name]])
        return condition

    def _load_value(self, m, decoded, field, old, loading):
        """An element's new value, by its ``LoadOp``."""
        hass = self.exit_controls[EXIT.bits["HOST_ADDR_SPACE_SIZE"]]
        ia32e_guest = self.entry_controls[ENTRY.bits["IA32E_MODE"]]
        constants = Signal(32)
        with m.Switch(decoded.constant):
            for i, value in enumerate(CONSTANTS):
                with m.Case(i):
                    m.d.comb += constants.eq(value)
        # A host segment's selector step comes before its access-rights step (state.py's order).
        selector_zero = Signal()  # the host selector of the segment whose access rights come next
        with m.If(loading & decoded.selector):
            m.d.sync += selector_zero.eq(field[:16] == 0)
        load_value = Signal(64)
        with m.Switch(decoded.load_op):
            with m.Case(LoadOp.FIELD):
                m.d.comb += load_value.eq(field)
            with m.Case(LoadOp.CONSTANT):
                m.d.comb += load_value.eq(constants)
            with m.Case(LoadOp.CR0_FROM_FIELD):
                m.d.comb += load_value.eq((field & ~CR0_KEPT_BITS) | (old & CR0_KEPT_BITS))
            with m.Case(LoadOp.CR4_HOST):
                m.d.comb += load_value.eq(field | Mux(hass, CR4.PAE, 0))
            with m.Case(LoadOp.EFER_FROM_IA32E_MODE_GUEST, LoadOp.EFER_FROM_HOST_ADDRESS_SPACE_SIZE):
                on = Mux(decoded.load_op == LoadOp.EFER_FROM_IA32E_MODE_GUEST, ia32e_guest, hass)
                both = EFER.LMA | EFER.LME
                m.d.comb += load_value.eq((old & ~both) | Mux(on, both, 0))
            with m.Case(LoadOp.ACTIVITY_ENTRY):
                m.d.comb += load_value.eq(Mux(self.vectoring, 0, field))
            with m.Case(LoadOp.INTERRUPTIBILITY_ENTRY):
                m.d.comb += load_value.eq(Mux(self.vectoring, field & ~0x3, field))
            with m.Case(LoadOp.INTERRUPTIBILITY_HOST):
                nmi = Mux(self.nmi_blocking, INTERRUPTIBILITY.BLOCKING_BY_NMI, 0)
                m.d.comb += load_value.eq(nmi | Mux(self.ends_in_smm, INTERRUPTIBILITY.BLOCKING_BY_SMI, 0))
            with m.Case(LoadOp.CS_AR_HOST):
                m.d.comb += load_value.eq(HOST_CS_AR | Mux(hass, AR.L, AR.DB))
            with m.Case(LoadOp.DATA_AR_HOST):
                m.d.comb += load_value.eq(Mux(selector_zero, UNUSABLE_AR, HOST_DATA_AR))
        return load_value

    def _store_value(self, m, store_op, old):
        """The value an exit stores in a guest field, by its ``StoreOp``."""
        store_value = Signal(64)
        with m.Switch(store_op):
            with m.Case(StoreOp.ELEMENT):
                m.d.comb += store_value.eq(old)
            with m.Case(StoreOp.AR_SAVED):
                m.d.comb += store_value.eq(old & ~AR.RESERVED)
            with m.Case(StoreOp.RFLAGS_SAVED):
                rf = Mux(self.instruction, 0, Mux(self.fault, 1, old[16]))
                m.d.comb += store_value.eq(Cat(old[:16], rf, old[17:]))
            with m.Case(StoreOp.TIMER_SAVED):
                m.d.comb += store_value.eq(self.timer)
            with m.Case(StoreOp.INTERRUPTIBILITY_SAVED):
                smi = INTERRUPTIBILITY.BLOCKING_BY_SMI
                m.d.comb += store_value.eq(Mux(self.ends_in_smm, old | smi, old & ~smi))
            with m.Case(StoreOp.PENDING_DEBUG_SAVED):
                m.d.comb += store_value.eq(Mux(self.mov_ss_blocking, old, 0))
        return store_value
