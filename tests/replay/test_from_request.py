"""``from_request`` is ``to_request`` read backwards: a request written as a script line parses back to itself.

The wave decoder writes the requests it finds on the unit's port as script lines
with it (``vmxu wave --script``), so a waveform replays on the model.
"""

import json

import pytest

from vmxu.rtl.arch.ops import Op, OperandSize
from vmxu.sim.cocotb.stimulus import RandomProgram
from vmxu.sim.model.request import Request
from vmxu.sim.replay.request import from_request, to_request
from vmxu.sim.replay.script import Operation, parse_line


def _same(a: Request, b: Request, line: dict) -> bool:
    """Equal in every member the op uses (the others the port carries but the unit ignores)."""

    def used(r: Request):
        members = [r.op, r.instruction_length]
        members += [r.index] if set(line) & {"field", "msr", "element", "leaf", "port", "vector"} else []
        members += [r.value] if set(line) & {"addr", "value", "subleaf", "cycles", "error_code"} else []
        members += [r.io_size] if r.op in (Op.IN, Op.OUT) else [r.size]
        members += [r.gpr] if r.op in (Op.GET, Op.SET) else []
        return members

    return used(a) == used(b)


def _requests(seed: int, count: int):
    program = RandomProgram(seed)
    steps = [*program.setup(), *(s for _, s in zip(range(count), program.operations(), strict=False))]
    return [s for s in steps if isinstance(s, Request)]


SEEDS = (1, 2, 3)


def test_the_random_requests_hold_every_operation_of_the_port():
    """Over the seeds below, between them (VMXOFF is rare: one seed may have none)."""
    assert {r.op for seed in SEEDS for r in _requests(seed, 3000)} == set(Op)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_requests_round_trip(seed):
    requests = _requests(seed, 3000)
    for request in requests:
        line = from_request(request)
        parsed = parse_line(json.dumps(line), 1)
        assert isinstance(parsed, Operation), (request, line, parsed)
        assert _same(to_request(parsed), request, line), (request, line)


def test_names_and_defaults():
    assert from_request(Request(Op.VMREAD, 0x681E)) == {"op": "vmread", "field": "GUEST_RIP"}
    assert from_request(Request(Op.VMREAD, 0x681E, size=OperandSize.S32)) == {
        "op": "vmread",
        "field": "GUEST_RIP",
        "size": 32,
    }
    assert from_request(Request(Op.VMREAD, 0x7FFF)) == {"op": "vmread", "field": "0x7fff"}
    assert from_request(Request(Op.OUT, 0x3F8, 0x41, io_size=1, length=2)) == {
        "op": "out",
        "port": "0x3f8",
        "value": "0x41",
        "size": 1,
        "len": 2,
    }
    assert from_request(Request(Op.EXCEPTION, 13, 0x10)) == {"op": "exception", "vector": 13, "error_code": "0x10"}
    assert from_request(Request(Op.EXCEPTION, 6, 0)) == {"op": "exception", "vector": 6}
    assert from_request(Request(Op.SET, 0, 0x21, gpr=3)) == {"op": "set", "element": "cr0", "value": "0x21", "reg": 3}
