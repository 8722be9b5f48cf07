"""Result formatting and the op -> request translation every backend shares (shared/vmx/REPLAY.md "Statuses")."""

from __future__ import annotations

import json

import pytest

from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.ops import Op, OperandSize, Status, Vector
from vmxu.rtl.arch.state import element_id
from vmxu.sim.model import Outcome
from vmxu.sim.replay import (
    ENTRY_NOT_IMPLEMENTED_WHY,
    Operation,
    Rejected,
    Request,
    compare,
    format_outcome,
    format_rejected,
    is_memory_op,
    parse_script,
    result_line,
    to_request,
)


def operation(line: str) -> Operation:
    (item,) = parse_script(line)
    assert isinstance(item, Operation), item
    return item


# -- formatting ------------------------------------------------------------------------------------


def test_result_starts_with_line_then_echo_then_status():
    """REPLAY.md: one object per operation with the op echoed and a "status"."""
    result = format_outcome(operation('{"op": "vmxon", "addr": "0x1000"}'), Outcome(Status.SUCCEED))
    assert list(result.items()) == [("line", 1), ("op", "vmxon"), ("addr", "0x1000"), ("status", "succeed")]


def test_value_is_lower_case_hex():
    result = format_outcome(operation('{"op": "vmptrst"}'), Outcome(Status.SUCCEED, value=0xFFFF_FFFF_FFFF_FFFF))
    assert result["value"] == "0xffffffffffffffff"
    result = format_outcome(operation('{"op": "read", "addr": 0}'), Outcome(Status.OK, value=0))
    assert result == {"line": 1, "op": "read", "addr": 0, "status": "ok", "value": "0x0"}


def test_fail_valid_carries_the_error_number():
    result = format_outcome(
        operation('{"op": "vmptrld", "addr": 4096}'), Outcome(Status.FAIL_VALID, error=VmError.VMPTRLD_VMXON_POINTER)
    )
    assert result["status"] == "fail_valid"
    assert result["error"] == 10
    assert type(result["error"]) is int


def test_fault_carries_the_vector():
    result = format_outcome(operation('{"op": "vmxon", "addr": 4096}'), Outcome(Status.FAULT, vector=Vector.UD))
    assert result["status"] == "fault"
    assert result["vector"] == 6
    assert "error" not in result and "value" not in result


def test_fail_invalid_has_no_extra_keys():
    result = format_outcome(operation('{"op": "vmread", "field": "GUEST_RIP"}'), Outcome(Status.FAIL_INVALID))
    assert result == {"line": 1, "op": "vmread", "field": "GUEST_RIP", "status": "fail_invalid"}


def test_vmwrite_echo_keeps_its_input_value():
    result = format_outcome(operation('{"op": "vmwrite", "field": "GUEST_RIP", "value": 5}'), Outcome(Status.SUCCEED))
    assert result["value"] == 5


def test_entry_not_implemented_is_reported_as_rejected():
    """VM entry is not implemented yet: a VMLAUNCH that passes every check is "rejected" with that reason."""
    result = format_outcome(operation('{"op": "vmlaunch"}'), Outcome(Status.ENTRY_NOT_IMPLEMENTED))
    assert result == {"line": 1, "op": "vmlaunch", "status": "rejected", "why": ENTRY_NOT_IMPLEMENTED_WHY}
    assert ENTRY_NOT_IMPLEMENTED_WHY == "VM entry is not implemented yet"


def test_rejected_line_echoes_what_it_can():
    result = format_rejected(Rejected(7, {"op": "vmxon", "line": 99}, "missing key 'addr' for op 'vmxon'"))
    assert result == {"line": 7, "op": "vmxon", "status": "rejected", "why": "missing key 'addr' for op 'vmxon'"}
    assert format_rejected(Rejected(3, None, "invalid JSON")) == {
        "line": 3,
        "status": "rejected",
        "why": "invalid JSON",
    }


def test_result_line_is_one_line_of_json():
    result = {"line": 1, "op": "vmptrst", "status": "succeed", "value": "0x2000"}
    line = result_line(result)
    assert "\n" not in line
    assert json.loads(line) == result


# -- the op -> request translation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"op": "vmxon", "addr": "0x1000"}', (Op.VMXON, 0, 0x1000, OperandSize.S64)),
        ('{"op": "vmxoff"}', (Op.VMXOFF, 0, 0, OperandSize.S64)),
        ('{"op": "vmptrld", "addr": 8192, "size": 32}', (Op.VMPTRLD, 0, 8192, OperandSize.S32)),
        ('{"op": "vmptrst"}', (Op.VMPTRST, 0, 0, OperandSize.S64)),
        ('{"op": "vmclear", "addr": 8192}', (Op.VMCLEAR, 0, 8192, OperandSize.S64)),
        ('{"op": "vmread", "field": "GUEST_RIP", "size": 32}', (Op.VMREAD, 0x681E, 0, OperandSize.S32)),
        ('{"op": "vmwrite", "field": "0x4400", "value": 7}', (Op.VMWRITE, 0x4400, 7, OperandSize.S64)),
        ('{"op": "vmlaunch"}', (Op.VMLAUNCH, 0, 0, OperandSize.S64)),
        ('{"op": "vmresume"}', (Op.VMRESUME, 0, 0, OperandSize.S64)),
        ('{"op": "vmcall"}', (Op.VMCALL, 0, 0, OperandSize.S64)),
        ('{"op": "rdmsr", "msr": "0x480"}', (Op.RDMSR, 0x480, 0, OperandSize.S64)),
        ('{"op": "wrmsr", "msr": 58, "value": 5}', (Op.WRMSR, 58, 5, OperandSize.S64)),
        ('{"op": "get", "element": "cr4"}', (Op.GET, element_id("cr4"), 0, OperandSize.S64)),
        ('{"op": "set", "element": "cs.ar", "value": 155}', (Op.SET, element_id("cs.ar"), 155, OperandSize.S64)),
    ],
)
def test_to_request_maps_each_op_to_the_port(line, expected):
    """docs/semantics.md port: index = field / MSR / element number; value = pointer or source; size = operand."""
    assert tuple(to_request(operation(line)))[:4] == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"op": "cpuid", "leaf": 7, "subleaf": 1}', Request(Op.CPUID, 7, 1, OperandSize.S64, 2)),
        ('{"op": "hlt"}', Request(Op.HLT, 0, 0, OperandSize.S64, 1)),
        ('{"op": "rdtsc", "len": 3}', Request(Op.RDTSC, 0, 0, OperandSize.S64, 3)),
        ('{"op": "in", "port": "0x60", "size": 2}', Request(Op.IN, 0x60, 0, OperandSize.S64, 1, 0, 2)),
        ('{"op": "out", "port": 1016, "size": 1, "value": 65}', Request(Op.OUT, 0x3F8, 65, OperandSize.S64, 1, 0, 1)),
        ('{"op": "exception", "vector": 14, "error_code": 6}', Request(Op.EXCEPTION, 14, 6, OperandSize.S64, 1)),
        ('{"op": "interrupt", "vector": 32}', Request(Op.INTERRUPT, 32, 0, OperandSize.S64, 3)),
        ('{"op": "nmi"}', Request(Op.NMI, 0, 0, OperandSize.S64, 3)),
        ('{"op": "run", "cycles": 1000}', Request(Op.RUN, 0, 1000, OperandSize.S64, 3)),
        (
            '{"op": "set", "element": "cr3", "value": 0, "reg": 5}',
            Request(Op.SET, element_id("cr3"), 0, OperandSize.S64, 3, 5),
        ),
    ],
)
def test_guest_events_carry_length_register_and_io_size(line, expected):
    """REPLAY.md "Guest events": the default instruction length is the x86 instruction's; ``reg`` and I/O size."""
    assert to_request(operation(line)) == expected


@pytest.mark.parametrize("line", ['{"op": "read", "addr": 0}', '{"op": "write", "addr": 0, "value": 1}'])
def test_memory_operations_are_not_requests(line):
    item = operation(line)
    assert is_memory_op(item)
    with pytest.raises(ValueError, match="memory access"):
        to_request(item)


# -- compare -------------------------------------------------------------------------------------------

A = {"line": 1, "op": "vmptrst", "status": "succeed", "value": "0x2000"}
B = {"line": 2, "op": "vmxoff", "status": "succeed"}


def test_compare_finds_no_difference_in_equal_runs():
    assert compare([A, B], [dict(A), dict(B)]) is None


def test_compare_reports_the_first_difference():
    different = dict(B, status="fail_invalid")
    difference = compare([A, B], [A, different])
    assert difference is not None
    assert (difference.line, difference.model, difference.rtl) == (2, B, different)
    assert "line 2" in difference.describe() and "fail_invalid" in difference.describe()


def test_compare_reports_a_missing_result():
    difference = compare([A, B], [A])
    assert difference is not None
    assert (difference.line, difference.model, difference.rtl) == (2, B, None)
    assert "(no result)" in difference.describe()
