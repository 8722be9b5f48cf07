"""The transaction-script parser (shared/vmx/REPLAY.md "Format"): each malformed-line kind is rejected with a reason."""

from __future__ import annotations

import pytest

from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.sim.model import RAM_BYTES
from vmxu.sim.replay import Operation, Rejected, parse_script


def parse_one(line: str) -> Operation | Rejected:
    items = parse_script(line)
    assert len(items) == 1
    return items[0]


def rejected(line: str) -> str:
    item = parse_one(line)
    assert isinstance(item, Rejected), item
    return item.why


def accepted(line: str) -> Operation:
    item = parse_one(line)
    assert isinstance(item, Operation), item
    return item


# -- lines that are not operations ------------------------------------------------------------


def test_blank_and_comment_lines_are_skipped_but_counted():
    """REPLAY.md: blank lines and lines starting with # are ignored; line numbers are the file's."""
    text = '# a comment\n\n   \n{"op": "vmxoff"}\n  # indented comment\n{"op": "vmcall"}\n'
    items = parse_script(text)
    assert [(item.line, item.op) for item in items] == [(4, "vmxoff"), (6, "vmcall")]


def test_crlf_line_endings_are_accepted():
    """Scripts written on Windows parse the same."""
    items = parse_script('{"op": "vmxoff"}\r\n{"op": "vmcall"}\r\n')
    assert [item.op for item in items] == ["vmxoff", "vmcall"]


def test_empty_script_has_no_operations():
    assert parse_script("") == []


# -- malformed lines -------------------------------------------------------------------------------


def test_invalid_json_is_rejected():
    """REPLAY.md: a malformed line never crashes the tool."""
    item = parse_one('{"op": "vmxon", "addr": ')
    assert isinstance(item, Rejected)
    assert item.echo is None
    assert item.why.startswith("invalid JSON")


@pytest.mark.parametrize("line", ["[1, 2]", '"vmxon"', "3", "null"])
def test_line_that_is_not_an_object_is_rejected(line):
    assert rejected(line).startswith("not a JSON object")


def test_missing_op_is_rejected():
    assert rejected('{"addr": 4096}') == "missing key 'op'"


def test_op_that_is_not_a_string_is_rejected():
    assert "'op' must be a string" in rejected('{"op": 5}')


def test_unknown_op_is_rejected():
    why = rejected('{"op": "vmfunc"}')
    assert "unknown op 'vmfunc'" in why
    assert "vmxon" in why


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('{"op": "vmxon"}', "addr"),
        ('{"op": "write", "addr": 0}', "value"),
        ('{"op": "vmwrite", "field": "GUEST_RIP"}', "value"),
        ('{"op": "set", "value": 1}', "element"),
        ('{"op": "rdmsr"}', "msr"),
    ],
)
def test_missing_key_is_rejected(line, key):
    assert rejected(line).startswith(f"missing key {key!r}")


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('{"op": "vmxoff", "addr": 4096}', "addr"),
        ('{"op": "rdmsr", "msr": 58, "size": 64}', "size"),
        ('{"op": "vmread", "field": "GUEST_RIP", "valu": 1}', "valu"),
        ('{"op": "get", "element": "cr0", "line": 3}', "line"),
    ],
)
def test_unknown_extra_key_is_rejected(line, key):
    assert rejected(line).startswith(f"unknown key {key!r}")


def test_duplicate_key_is_rejected():
    assert rejected('{"op": "vmxon", "addr": 4096, "addr": 8192}') == "duplicate key 'addr'"


@pytest.mark.parametrize("value", ["true", "1.5", "[4096]", "null", '"zz"', '"0x"', '"4096 "', '"1e3"', '"0x1g"'])
def test_address_of_wrong_type_is_rejected(value):
    why = rejected(f'{{"op": "vmxon", "addr": {value}}}')
    assert "'addr'" in why
    assert "integer" in why


@pytest.mark.parametrize("value", ["-1", '"-0x10"', '"-5"'])
def test_negative_number_is_rejected(value):
    assert "negative" in rejected(f'{{"op": "vmxon", "addr": {value}}}')


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"op": "vmxon", "addr": "0x10000000000000000"}', "wider than 64 bits"),
        ('{"op": "rdmsr", "msr": "0x100000000"}', "wider than 32 bits"),
        ('{"op": "wrmsr", "msr": 58, "value": "0x10000000000000000"}', "wider than 64 bits"),
        ('{"op": "vmwrite", "field": "GUEST_RIP", "value": "0x100000000", "size": 32}', "32-bit operand"),
        ('{"op": "vmread", "field": "0x10000681e", "size": 32}', "32-bit operand"),
        ('{"op": "vmwrite", "field": "0x10000681e", "value": 0, "size": 32}', "32-bit operand"),
        ('{"op": "set", "element": "cs.selector", "value": "0x10000"}', "16 bits"),
        ('{"op": "set", "element": "sysenter_cs", "value": "0x100000000"}', "32 bits"),
        ('{"op": "write", "addr": 0, "value": 256, "size": 1}', "1-byte write"),
        ('{"op": "write", "addr": 0, "value": "0x100000000"}', "4-byte write"),
    ],
)
def test_value_too_wide_is_rejected(line, fragment):
    """docs/semantics.md: a 32-bit operand holds 32 bits; a set value wider than the element is malformed."""
    assert fragment in rejected(line)


def test_64bit_operand_carries_64_bits():
    """docs/semantics.md: with a 64-bit operand, encoding bits 63:32 reach the unit (which answers error 12)."""
    operation = accepted('{"op": "vmread", "field": "0x10000681e"}')
    assert operation.args["field"] == 0x1_0000_681E


@pytest.mark.parametrize("size", ["16", "0", "8", '"32 "'])
def test_operand_size_other_than_32_or_64_is_rejected(size):
    why = rejected(f'{{"op": "vmread", "field": "GUEST_RIP", "size": {size}}}')
    assert "'size'" in why


@pytest.mark.parametrize("size", [0, 3, 16, 32])
def test_memory_access_size_other_than_1_2_4_8_is_rejected(size):
    assert "1, 2, 4 or 8" in rejected(f'{{"op": "read", "addr": 0, "size": {size}}}')


@pytest.mark.parametrize(("addr", "size"), [(RAM_BYTES, 1), (RAM_BYTES - 2, 4), (RAM_BYTES - 1, 8), (1 << 40, 4)])
def test_memory_access_outside_ram_is_rejected(addr, size):
    """REPLAY.md: RAM is 1 MiB; a platform read or write beyond it is meaningless."""
    assert "outside RAM" in rejected(f'{{"op": "write", "addr": {addr}, "value": 0, "size": {size}}}')
    assert "outside RAM" in rejected(f'{{"op": "read", "addr": {addr}, "size": {size}}}')


def test_memory_access_at_the_end_of_ram_is_accepted():
    assert accepted(f'{{"op": "read", "addr": {RAM_BYTES - 8}, "size": 8}}').args["addr"] == RAM_BYTES - 8


def test_parser_ram_size_is_a_parameter():
    items = parse_script('{"op": "read", "addr": 4096}', ram_bytes=4096)
    assert isinstance(items[0], Rejected)


def test_unknown_element_is_rejected_with_examples():
    """REPLAY.md: an unknown element is rejected."""
    why = rejected('{"op": "get", "element": "cr8"}')
    assert "unknown element 'cr8'" in why
    assert "cr0" in why and "rflags" in why


def test_element_that_is_not_a_string_is_rejected():
    assert "'element'" in rejected('{"op": "get", "element": 0}')


def test_unknown_field_name_is_rejected():
    assert "unknown VMCS field name 'GUEST_FOO'" in rejected('{"op": "vmread", "field": "GUEST_FOO"}')


@pytest.mark.parametrize("length", [0, 16, '"0x10"'])
def test_len_outside_1_to_15_is_rejected(length):
    """REPLAY.md: "len" is an instruction length, 1-15."""
    assert "'len'" in rejected(f'{{"op": "vmcall", "len": {length}}}')


# -- normalization ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"), [("4096", 4096), ('"0x1000"', 4096), ('"0X1000"', 4096), ('"4096"', 4096), ('"0x1_000"', 4096)]
)
def test_integers_may_be_numbers_or_strings(text, value):
    """REPLAY.md: integers may be JSON numbers or "0x..." strings (decimal strings too)."""
    assert accepted(f'{{"op": "vmxon", "addr": {text}}}').args["addr"] == value


def test_field_names_become_encodings():
    operation = accepted('{"op": "vmwrite", "field": "guest_rip", "value": 1}')
    assert operation.args["field"] == FIELD_BY_NAME["GUEST_RIP"].encoding


def test_unsupported_numeric_field_is_passed_through():
    """docs/semantics.md: an unsupported encoding is the unit's error 12, not a malformed line."""
    assert accepted('{"op": "vmread", "field": "0x1234"}').args["field"] == 0x1234
    assert accepted('{"op": "vmread", "field": 17408}').args["field"] == 0x4400


def test_element_names_are_lower_case():
    assert accepted('{"op": "get", "element": "CR0"}').args["element"] == "cr0"


def test_defaults_are_filled_in():
    """REPLAY.md: memory size 4, operand size 64, instruction length 3."""
    assert accepted('{"op": "read", "addr": 0}').args == {"size": 4, "addr": 0, "len": 3}
    assert accepted('{"op": "vmptrst"}').args == {"size": 64, "len": 3}
    assert accepted('{"op": "rdmsr", "msr": 58}').args == {"msr": 58, "len": 2}


def test_len_is_accepted_on_any_op():
    """REPLAY.md: "len" is optional on every op (it has no effect before VM exits exist)."""
    assert accepted('{"op": "wrmsr", "msr": 58, "value": 5, "len": 15}').args["len"] == 15
    assert accepted('{"op": "write", "addr": 0, "value": 5, "len": 1}').args["len"] == 1


def test_echo_is_the_original_object():
    operation = accepted('{"op": "vmwrite", "field": "GUEST_RIP", "value": "0x10", "size": 32}')
    assert operation.echo == {"op": "vmwrite", "field": "GUEST_RIP", "value": "0x10", "size": 32}
    assert operation.args == {"size": 32, "field": 0x681E, "value": 0x10, "len": 3}


def test_rejected_line_keeps_its_object_for_the_echo():
    item = parse_one('{"op": "vmxon"}')
    assert item.echo == {"op": "vmxon"}


def test_set_of_the_smm_element_is_rejected_and_get_and_rsm_are_accepted():
    """REPLAY.md "SMM": element smm is get-only (a set line is rejected); rsm takes an optional len."""
    assert "read-only" in rejected('{"op": "set", "element": "smm", "value": 0}')
    assert accepted('{"op": "get", "element": "smm"}').args["element"] == "smm"
    assert accepted('{"op": "rsm"}').op == "rsm"
    assert accepted('{"op": "rsm", "len": 2}').args["len"] == 2
