# amaranth: UnusedElaboratable=no
"""The transition walk as a block: each kind of walk, in Amaranth's simulator, against its steps.

A behavioural cache entry and machine state (reads one cycle late, as the
block RAMs) hold random values; the controls are random. Each walk must take
``TransitionWalk.latency(kind)`` cycles, write exactly the elements and fields
its steps say (``ENTRY_STEPS``, ``EXIT_STEPS``, the deferred elements), move a
field's value unchanged where the action's source is the field (LoadOp.FIELD)
and an element's where it is the element (StoreOp.ELEMENT), and show the
entry walk's fields to the guest-state checker in ENTRY_WALK's order. The
computed rules are the model's and run in the differential tests.
"""

import random

import pytest
from amaranth.sim import Simulator

from vmxu.rtl.arch.state_actions import ENTRY_WALK
from vmxu.rtl.vmx.transition_steps import (
    CONDITIONS,
    DEFERRED_ENTRY_ELEMENTS,
    ENTRY_STEPS,
    EXIT_STEPS,
    LoadOp,
    StoreOp,
)
from vmxu.rtl.vmx.transition_walk import TransitionKind, TransitionWalk

CONTROLS = ("entry_controls", "exit_controls", "pin_controls")


def _holds(controls: dict[str, int], condition: int) -> bool:
    if condition == 0:
        return True
    control = CONDITIONS[condition]
    field = {"VM_ENTRY_CONTROLS": "entry_controls", "VM_EXIT_CONTROLS": "exit_controls"}.get(
        control.field.vmcs_field, "pin_controls"
    )
    return bool(controls[field] >> control.field.bits[control.name] & 1)


def _shaped(slots: dict[int, int], field) -> int:
    word = slots[field.slot]
    if field.words == 2:
        return word
    return (word >> (32 * field.half)) & ((1 << field.bits) - 1)


def _walk(kind: TransitionKind, seed: int):
    rng = random.Random(seed)
    walk = TransitionWalk(2)
    slots = {slot: rng.getrandbits(64) for slot in range(128)}
    elements = {row: rng.getrandbits(64) for row in range(64)}
    controls = {name: rng.getrandbits(32) for name in CONTROLS}
    element_writes: dict[int, int] = {}
    field_writes: dict[tuple[int, int], int] = {}  # (slot, half) -> word
    shown: list[tuple[int, int]] = []
    cycles = []

    async def bench(ctx):
        for name, value in controls.items():
            ctx.set(getattr(walk, name), value)
        ctx.set(walk.kind, kind)
        ctx.set(walk.start, 1)
        cache_read = state_read = None
        for cycle in range(80):
            # The block RAMs: what was read last cycle is on rd_data now.
            if cache_read is not None:
                ctx.set(walk.cache.rd_data, slots[cache_read])
            if state_read is not None:
                ctx.set(walk.state.rd_data, elements.get(state_read, 0))
            cache_read = ctx.get(walk.cache.rd_slot) if ctx.get(walk.cache.rd_en) else None
            state_read = ctx.get(walk.state.rd_id) if ctx.get(walk.state.rd_en) else None
            if ctx.get(walk.state.wr_en):
                element_writes[ctx.get(walk.state.wr_id)] = ctx.get(walk.state.wr_value)
            halves = ctx.get(walk.cache.wr_en)
            for half in (0, 1):
                if halves >> half & 1:
                    data = ctx.get(walk.cache.wr_data)
                    field_writes[(ctx.get(walk.cache.wr_slot), half)] = data >> (32 * half) & 0xFFFF_FFFF
            if ctx.get(walk.walk.valid):
                shown.append((ctx.get(walk.walk.index), ctx.get(walk.walk.word)))
            if ctx.get(walk.done):
                cycles.append(cycle)
                break
            await ctx.tick()
            ctx.set(walk.start, 0)
        for slot, half in field_writes:
            word = field_writes[(slot, half)]
            slots[slot] = (slots[slot] & ~(0xFFFF_FFFF << (32 * half))) | (word << (32 * half))

    before = dict(slots), dict(elements)
    sim = Simulator(walk)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return before, controls, element_writes, field_writes, shown, cycles


def _loads(kind: TransitionKind):
    if kind == TransitionKind.ENTRY:
        return [s for s in ENTRY_STEPS if s.element not in DEFERRED_ENTRY_ELEMENTS]
    if kind == TransitionKind.COMMIT:
        return [s for s in ENTRY_STEPS if s.element in DEFERRED_ENTRY_ELEMENTS]
    if kind in (TransitionKind.EXIT, TransitionKind.HOST):
        return list(EXIT_STEPS)
    return []


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", list(TransitionKind), ids=lambda k: k.name)
def test_a_walk_writes_what_its_steps_say(kind, seed):
    (slots, elements), controls, element_writes, field_writes, shown, cycles = _walk(kind, seed)
    assert cycles == [TransitionWalk.latency(kind)]

    expected_elements = {}
    for s in _loads(kind):
        op = s.load_op if _holds(controls, s.load_condition) else s.load_else
        if op == LoadOp.NONE or s.row is None:
            continue
        expected_elements[s.row] = _shaped(slots, s.load_field) if op == LoadOp.FIELD else None
    assert set(element_writes) == set(expected_elements)
    for row, value in expected_elements.items():
        if value is not None:
            assert element_writes[row] == value, row

    stores = kind in (TransitionKind.EXIT, TransitionKind.STORE)
    expected_fields = {}
    for s in EXIT_STEPS if stores else []:
        if s.store_op == StoreOp.NONE or not _holds(controls, s.store_condition):
            continue
        halves = (0, 1) if s.store_field.words == 2 else (s.store_field.half,)
        for half in halves:
            old = elements[s.row] if s.row is not None else None
            word = (
                None if s.store_op != StoreOp.ELEMENT or old is None else old >> (32 * (half - halves[0])) & 0xFFFF_FFFF
            )
            expected_fields[(s.store_field.slot, half)] = word
    assert set(field_writes) == set(expected_fields)
    for key, word in expected_fields.items():
        if word is not None:
            assert field_writes[key] == word, key

    if kind == TransitionKind.ENTRY:
        assert [index for index, _ in shown] == list(range(len(ENTRY_WALK)))
    else:
        assert shown == []
