"""The state-action table compiled into the steps the transition sequencer walks, one element per step.

# Ref: rtl/arch/state_actions.py (the table); Intel SDM vol. 3C 26.3.2, 27.3, 27.5.

Each row of ``STATE_ACTIONS`` becomes an ``ElementStep``: the VMCS field a
load reads (its cache slot, half and width), the field a store writes, and the
operations the datapath applies (``LoadOp``, ``StoreOp``), each with the
control bit that selects it (a ``Condition``) and the operation used when that
bit is 0. The RTL generates its step ROMs from these lists, so it walks the
table and does not restate it; a rule the RTL does not implement is an
elaboration error, not a silent difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.lib import enum

from ..arch.fields import FIELD_BY_NAME, FieldWidth
from ..arch.layout import LOCATION, Storage
from ..arch.state import ELEMENT_BY_NAME, element_id
from ..arch.state_actions import ENTRY_WALK, STATE_ACTIONS, TIMER, Action, Control, Indicator, Rule, Source, StateAction

__all__ = [
    "LoadOp",
    "StoreOp",
    "CONDITIONS",
    "FieldSlot",
    "ElementStep",
    "ENTRY_STEPS",
    "EXIT_STEPS",
    "DEFERRED_ENTRY_ELEMENTS",
    "CONSTANTS",
]


class LoadOp(enum.Enum, shape=4):
    """How a load computes an element's new value (``Rule`` names the computed ones)."""

    NONE = 0
    FIELD = 1
    CONSTANT = 2
    CR0_FROM_FIELD = 3
    CR4_HOST = 4
    EFER_FROM_IA32E_MODE_GUEST = 5
    EFER_FROM_HOST_ADDRESS_SPACE_SIZE = 6
    ACTIVITY_ENTRY = 7
    INTERRUPTIBILITY_ENTRY = 8
    INTERRUPTIBILITY_HOST = 9
    CS_AR_HOST = 10
    DATA_AR_HOST = 11


class StoreOp(enum.Enum, shape=3):
    """How an exit computes the value it stores in a guest field."""

    NONE = 0
    ELEMENT = 1
    AR_SAVED = 2
    RFLAGS_SAVED = 3
    TIMER_SAVED = 4
    INTERRUPTIBILITY_SAVED = 5
    PENDING_DEBUG_SAVED = 6


_LOAD_RULES = {
    Rule.CR0_FROM_FIELD: LoadOp.CR0_FROM_FIELD,
    Rule.CR4_HOST: LoadOp.CR4_HOST,
    Rule.EFER_FROM_IA32E_MODE_GUEST: LoadOp.EFER_FROM_IA32E_MODE_GUEST,
    Rule.EFER_FROM_HOST_ADDRESS_SPACE_SIZE: LoadOp.EFER_FROM_HOST_ADDRESS_SPACE_SIZE,
    Rule.ACTIVITY_ENTRY: LoadOp.ACTIVITY_ENTRY,
    Rule.INTERRUPTIBILITY_ENTRY: LoadOp.INTERRUPTIBILITY_ENTRY,
    Rule.INTERRUPTIBILITY_HOST: LoadOp.INTERRUPTIBILITY_HOST,
    Rule.CS_AR_HOST: LoadOp.CS_AR_HOST,
    Rule.DATA_AR_HOST: LoadOp.DATA_AR_HOST,
}
_STORE_RULES = {
    Rule.AR_SAVED: StoreOp.AR_SAVED,
    Rule.RFLAGS_SAVED: StoreOp.RFLAGS_SAVED,
    Rule.TIMER_SAVED: StoreOp.TIMER_SAVED,
    Rule.INTERRUPTIBILITY_SAVED: StoreOp.INTERRUPTIBILITY_SAVED,
    Rule.PENDING_DEBUG_SAVED: StoreOp.PENDING_DEBUG_SAVED,
}


def _conditions() -> tuple[Control | None, ...]:
    found: list[Control] = []
    for row in STATE_ACTIONS:
        for action in (row.entry_load, row.exit_store, row.exit_load):
            if action.control is not None and action.control not in found:
                found.append(action.control)
    return (None, *found)


#: The control bits the table's actions depend on; index 0 (None) is "always".
CONDITIONS: tuple[Control | None, ...] = _conditions()

#: The constants host loads use, in the order of their index in a step.
CONSTANTS: tuple[int, ...] = tuple(
    sorted({row.exit_load.constant for row in STATE_ACTIONS if row.exit_load.source == Source.CONSTANT})
)


@dataclass(frozen=True)
class FieldSlot:
    """Where a field is in a cache entry: ``slot``, and for a one-word field its ``half``; ``bits`` it holds."""

    name: str
    slot: int
    half: int
    words: int
    bits: int

    @staticmethod
    def of(name: str) -> FieldSlot:
        field = FIELD_BY_NAME[name]
        location = LOCATION[field.encoding]
        if location.storage != Storage.ON_DIE:
            raise ValueError(f"{name} is memory-resident; transitions move on-die fields only")
        bits = 64 if location.words == 2 else (16 if field.width == FieldWidth.W16 else 32)
        return FieldSlot(name, location.slot, location.half if location.words == 1 else 0, location.words, bits)


@dataclass(frozen=True)
class ElementStep:
    """One element's step: ``row`` is its machine-state row (None for the preemption timer).

    A load: ``load_field`` read (or None), ``load_op`` when ``load_condition``
    holds, else ``load_else``; ``constant`` indexes ``CONSTANTS``. A store:
    ``store_op`` to ``store_field`` when ``store_condition`` holds.
    """

    element: str
    row: int | None
    load_field: FieldSlot | None = None
    load_op: LoadOp = LoadOp.NONE
    load_else: LoadOp = LoadOp.NONE
    load_condition: int = 0
    constant: int = 0
    store_field: FieldSlot | None = None
    store_op: StoreOp = StoreOp.NONE
    store_condition: int = 0


def _load_op(action: Action) -> LoadOp:
    if action.indicator == Indicator.NEVER:
        return LoadOp.NONE
    if action.source == Source.FIELD:
        return LoadOp.FIELD
    if action.source == Source.CONSTANT:
        return LoadOp.CONSTANT
    if action.rule not in _LOAD_RULES:
        raise ValueError(f"the RTL has no load rule {action.rule!r}")
    return _LOAD_RULES[action.rule]


def _load(row: StateAction, action: Action) -> dict:
    if action.indicator == Indicator.NEVER:
        return {}
    otherwise = action.otherwise
    step = {
        "load_op": _load_op(action),
        "load_else": _load_op(otherwise) if otherwise is not None else LoadOp.NONE,
        "load_condition": CONDITIONS.index(action.control),
    }
    if action.field is not None:
        step["load_field"] = FieldSlot.of(action.field)
    if action.source == Source.CONSTANT:
        step["constant"] = CONSTANTS.index(action.constant)
    if action.indicator == Indicator.PREDETERMINED:
        step["load_else"] = step["load_op"]
    return step


def _store(action: Action) -> dict:
    if action.indicator == Indicator.NEVER:
        return {}
    if action.source == Source.ELEMENT:
        op = StoreOp.ELEMENT
    elif action.rule in _STORE_RULES:
        op = _STORE_RULES[action.rule]
    else:
        raise ValueError(f"the RTL has no store rule {action.rule!r}")
    return {
        "store_field": FieldSlot.of(action.field),
        "store_op": op,
        "store_condition": CONDITIONS.index(action.control),
    }


def _row(element: str) -> int | None:
    return None if element == TIMER else element_id(element)


def _entry_steps() -> tuple[ElementStep, ...]:
    steps = [
        ElementStep(row.element, _row(row.element), **_load(row, row.entry_load))
        for row in STATE_ACTIONS
        if row.entry_load.indicator != Indicator.NEVER
    ]
    walked = tuple(step.load_field.name for step in steps if step.load_field is not None)
    if walked != ENTRY_WALK[: len(walked)] or len(walked) != len(ENTRY_WALK) - 1:
        raise ValueError("the entry steps must read the fields of ENTRY_WALK, in its order")
    return tuple(steps)


def _exit_steps() -> tuple[ElementStep, ...]:
    return tuple(
        ElementStep(row.element, _row(row.element), **_load(row, row.exit_load), **_store(row.exit_store))
        for row in STATE_ACTIONS
        if row.exit_load.indicator != Indicator.NEVER or row.exit_store.indicator != Indicator.NEVER
    )


#: A VM entry's steps: one per element the entry loads, reading the fields of ENTRY_WALK in order.
ENTRY_STEPS: tuple[ElementStep, ...] = _entry_steps()
#: A VM exit's steps: one per element it stores or loads (the store and the load of an element together).
EXIT_STEPS: tuple[ElementStep, ...] = _exit_steps()
#: Elements an entry loads only after every guest-state check passed: a failed entry's host load leaves them
#: as they are when their exit controls do not load them, so loading them during the walk would show.
DEFERRED_ENTRY_ELEMENTS = frozenset({"pat", "perf_global_ctrl", "efer"})

assert all(ELEMENT_BY_NAME[e] for e in DEFERRED_ENTRY_ELEMENTS)
