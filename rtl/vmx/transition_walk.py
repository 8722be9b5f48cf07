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

The sequencer owns its cache port and the machine-state port from ``start``
to ``done``.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import ENTRY, EXIT, PIN
from ..arch.state import AR, CR4, EFER, INTERRUPTIBILITY
from ..arch.state_actions import CR0_KEPT_BITS, ENTRY_WALK, UNUSABLE_AR
from ..vmcs.cache_port import CachePortSignature
from .machine_state import StatePortSignature
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

_CS_AR_HOST = 0x809B
_DATA_AR_HOST = 0xC093
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

        # The conditions of the actions, from the control fields.
        controls = {ENTRY.vmcs_field: self.entry_controls, EXIT.vmcs_field: self.exit_controls}
        controls[PIN.vmcs_field] = self.pin_controls
        condition = Signal(len(CONDITIONS))
        m.d.comb += condition[0].eq(1)
        for i, control in enumerate(CONDITIONS[1:], start=1):
            m.d.comb += condition[i].eq(controls[control.field.vmcs_field][control.field.bits[control.name]])
        hass = self.exit_controls[EXIT.bits["HOST_ADDR_SPACE_SIZE"]]
        ia32e_guest = self.entry_controls[ENTRY.bits["IA32E_MODE"]]

        # Stage 0 (cycle of the step): the reads, from each walk's ROM.
        def rom(stage_step, emit):
            """``emit(step, walk_kind, position)`` for the walk step at ``stage_step`` of the current kind."""
            with m.Switch(kind):
                for k, steps in WALKS.items():
                    with m.Case(k):
                        with m.Switch(stage_step):
                            for position, s in enumerate(steps):
                                with m.Case(position):
                                    emit(s, k, position)

        reading = busy & (step < last - 1)

        def issue(s, k, position):
            store_only = k == TransitionKind.STORE
            load_field = _LINK_POINTER if s is None else (None if store_only else s.load_field)
            if load_field is not None:
                m.d.comb += [self.cache.rd_slot.eq(load_field.slot), self.cache.rd_en.eq(reading)]
            if s is not None and s.row is not None:
                m.d.comb += [self.state.rd_id.eq(s.row), self.state.rd_en.eq(reading)]

        rom(step, issue)
        m.d.comb += [self.cache.rd_entry.eq(self.entry), self.cache.wr_entry.eq(self.entry)]

        # Stage 1: the slot becomes the field's value (its half, its width); registered with the element.
        step1 = Signal.like(step)
        step2 = Signal.like(step)
        valid1 = Signal()
        valid2 = Signal()
        m.d.sync += [step1.eq(step), step2.eq(step1), valid1.eq(reading), valid2.eq(valid1)]
        field1 = Signal(64)
        slot = self.cache.rd_data

        def shape(s, k, position):
            load_field = _LINK_POINTER if s is None else (None if k == TransitionKind.STORE else s.load_field)
            if load_field is None:
                return
            if load_field.words == 2:
                m.d.comb += field1.eq(slot)
            else:
                word = slot.word_select(load_field.half, 32)
                m.d.comb += field1.eq(word[: load_field.bits])

        rom(step1, shape)
        field = Signal(64)
        old = Signal(64)
        m.d.sync += [field.eq(field1), old.eq(self.state.rd_data)]

        # Stage 2: the values, and the writes.
        load_value = Signal(64)
        load_op = Signal(LoadOp)
        store_value = Signal(64)
        store_op = Signal(StoreOp)
        store_on = Signal()
        constant = Signal(range(len(CONSTANTS)))
        selector_row = Signal()  # a host selector load: DATA_AR_HOST of its segment's access rights needs it
        store_pair = Signal()  # the stored field is 64 bits (both halves of its slot)

        def decide(s, k, position):
            if s is None:  # the link pointer: streamed, not loaded
                return
            loads = k in (TransitionKind.ENTRY, TransitionKind.COMMIT, TransitionKind.EXIT, TransitionKind.HOST)
            stores = k in (TransitionKind.EXIT, TransitionKind.STORE)
            if k == TransitionKind.ENTRY and s.element in DEFERRED_ENTRY_ELEMENTS:
                loads = False
            if loads:
                m.d.comb += [
                    load_op.eq(Mux(condition[s.load_condition], s.load_op, s.load_else)),
                    constant.eq(s.constant),
                ]
                if s.row is not None:
                    m.d.comb += self.state.wr_id.eq(s.row)
                m.d.comb += selector_row.eq(s.element.endswith(".selector"))
            if stores and s.store_op != StoreOp.NONE:
                m.d.comb += [
                    store_op.eq(s.store_op),
                    store_on.eq(condition[s.store_condition]),
                    self.cache.wr_slot.eq(s.store_field.slot),
                ]
                halves = 1 << s.store_field.half if s.store_field.words == 1 else 0b11
                m.d.comb += [
                    self.cache.wr_en.eq(Mux(store_on & valid2, halves, 0)),
                    store_pair.eq(s.store_field.words == 2),
                ]
            if s.row is None:
                # The preemption timer: a register, not an element.
                m.d.comb += self.timer_load.eq(valid2 & loads & (load_op == LoadOp.FIELD))

        rom(step2, decide)

        constants = Signal(32)
        with m.Switch(constant):
            for i, value in enumerate(CONSTANTS):
                with m.Case(i):
                    m.d.comb += constants.eq(value)
        selector_zero = Signal()  # the host selector of the segment whose access rights come next
        with m.Switch(load_op):
            with m.Case(LoadOp.FIELD):
                m.d.comb += load_value.eq(field)
            with m.Case(LoadOp.CONSTANT):
                m.d.comb += load_value.eq(constants)
            with m.Case(LoadOp.CR0_FROM_FIELD):
                m.d.comb += load_value.eq((field & ~CR0_KEPT_BITS) | (old & CR0_KEPT_BITS))
            with m.Case(LoadOp.CR4_HOST):
                m.d.comb += load_value.eq(field | Mux(hass, CR4.PAE, 0))
            with m.Case(LoadOp.EFER_FROM_IA32E_MODE_GUEST, LoadOp.EFER_FROM_HOST_ADDRESS_SPACE_SIZE):
                on = Mux(load_op == LoadOp.EFER_FROM_IA32E_MODE_GUEST, ia32e_guest, hass)
                both = EFER.LMA | EFER.LME
                m.d.comb += load_value.eq((old & ~both) | Mux(on, both, 0))
            with m.Case(LoadOp.ACTIVITY_ENTRY):
                m.d.comb += load_value.eq(Mux(self.vectoring, 0, field))
            with m.Case(LoadOp.INTERRUPTIBILITY_ENTRY):
                m.d.comb += load_value.eq(Mux(self.vectoring, field & ~0x3, field))
            with m.Case(LoadOp.INTERRUPTIBILITY_HOST):
                m.d.comb += load_value.eq(Mux(self.nmi_blocking, INTERRUPTIBILITY.BLOCKING_BY_NMI, 0))
            with m.Case(LoadOp.CS_AR_HOST):
                m.d.comb += load_value.eq(_CS_AR_HOST | Mux(hass, AR.L, AR.DB))
            with m.Case(LoadOp.DATA_AR_HOST):
                m.d.comb += load_value.eq(Mux(selector_zero, UNUSABLE_AR, _DATA_AR_HOST))
        # A host segment's selector step comes before its access-rights step (state.py's order).
        with m.If(valid2 & selector_row):
            m.d.sync += selector_zero.eq(field[:16] == 0)
        m.d.comb += [
            self.state.wr_value.eq(load_value),
            self.state.wr_en.eq(valid2 & (load_op != LoadOp.NONE) & ~self.timer_load),
            self.timer_value.eq(field[:32]),
        ]

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
                m.d.comb += store_value.eq(old & ~INTERRUPTIBILITY.BLOCKING_BY_SMI)
            with m.Case(StoreOp.PENDING_DEBUG_SAVED):
                m.d.comb += store_value.eq(Mux(self.mov_ss_blocking, old, 0))
        # A one-word field goes to either half: the word on both, the enables choose.
        m.d.comb += self.cache.wr_data.eq(Mux(store_pair, store_value, Cat(store_value[:32], store_value[:32])))

        # The entry walk's fields, to the guest-state checker.
        m.d.comb += [
            self.walk.valid.eq(valid2 & (kind == TransitionKind.ENTRY)),
            self.walk.index.eq(step2),
            self.walk.word.eq(field),
        ]
        return m
