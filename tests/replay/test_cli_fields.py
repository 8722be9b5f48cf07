"""`vmxu fields`: the field table and one field's decoding (rtl/arch/fields.py, layout.py)."""

from __future__ import annotations

import pytest

from vmxu import cli
from vmxu.rtl.arch import layout
from vmxu.rtl.arch.fields import FIELD_BY_NAME, FIELDS


def run(capsys, *args):
    status = cli.main(["fields", *args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_fields_prints_every_component(capsys):
    status, out, _ = run(capsys)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["encoding", "name", "width", "type", "access", "read-only", "storage", "offset"]
    rows = [line.split() for line in lines[1 : 1 + len(FIELDS)]]
    assert [row[1] for row in rows] == [f.name for f in FIELDS]
    assert f"{len(FIELDS)} components" in lines[-1]


def test_fields_row_shows_storage_and_offset(capsys):
    _, out, _ = run(capsys)
    row = next(line.split() for line in out.splitlines() if " GUEST_RIP " in line)
    offset = 4 * layout.LOCATION[0x681E].word
    assert row == ["0x681e", "GUEST_RIP", "natural", "guest", "full", "no", "on-die", f"{offset:#05x}"]
    row = next(line.split() for line in out.splitlines() if " EPT_POINTER " in line)
    assert row[6] == "memory"


@pytest.mark.parametrize("key", ["GUEST_RIP", "guest_rip", "0x681e", "26654"])
def test_fields_decodes_one_field_by_name_or_encoding(capsys, key):
    status, out, _ = run(capsys, key)
    assert status == 0
    assert out.startswith("GUEST_RIP: encoding 0x681e")
    assert "index" in out and "15 (0xf)" in out
    assert "(natural)" in out and "(guest)" in out
    assert f"slot                  {layout.LOCATION[0x681E].slot}," in out


def test_fields_shows_memory_offset_of_memory_resident_field(capsys):
    _, out, _ = run(capsys, "EPT_POINTER_HIGH")
    offset = 4 * layout.LOCATION[FIELD_BY_NAME["EPT_POINTER_HIGH"].encoding].word
    assert "storage               memory" in out
    assert f"region offset {offset:#x} (1 word)" in out
    assert "(high)" in out


def test_fields_says_read_only(capsys):
    _, out, _ = run(capsys, "VM_EXIT_REASON")
    assert "error 13" in out


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [
        ("0x6c18", "no component with this width, type and index"),
        ("0x4001", "high access type exists only for 64-bit fields"),
        ("0x1000", "reserved bits"),
        ("0x10000681e", "bits 63:32"),
    ],
)
def test_fields_decodes_an_unsupported_encoding(capsys, encoding, reason):
    status, out, _ = run(capsys, encoding)
    assert status == 0
    assert "not a supported component (VMREAD/VMWRITE fail with error 12)" in out
    assert reason in out
    assert "access" in out and "width" in out


@pytest.mark.parametrize("key", ["GUEST_FOO", "0xzz", "-1", "0x10000000000000000"])
def test_fields_unknown_name_exits_2(capsys, key):
    status, out, err = run(capsys, key)
    assert status == 2
    assert out == ""
    assert err.startswith("vmxu fields: ")
