"""The ``vmxu`` command: one subcommand per job.

``vmxu replay FILE`` runs a transaction script (shared/vmx/REPLAY.md) on the
reference model or an RTL simulator; ``vmxu fields`` prints the VMCS field
table or decodes one encoding. A subcommand is one ``add_*`` function that
builds its parser and sets ``run``; register it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmxu.rtl.arch import fields as vmcs_fields
from vmxu.rtl.arch import layout

__all__ = ["main", "SUBCOMMANDS"]

#: Exit status of a usage error, an unreadable file or an unknown name.
EXIT_USAGE = 2
#: Exit status of ``replay --check`` when the model and the RTL differ.
EXIT_MISMATCH = 1

SIMULATORS = ("model", "icarus", "verilator")


class CommandError(Exception):
    """A clear error for the user: printed as ``vmxu <command>: message``, exit status 2."""


# -- vmxu replay -----------------------------------------------------------------


def add_replay(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="run a transaction script on the model or an RTL simulator",
        description="Run a JSON Lines transaction script (shared/vmx/REPLAY.md) and print one JSON result per line.",
    )
    parser.add_argument("file", type=Path, help="the script (.jsonl)")
    parser.add_argument("--sim", choices=SIMULATORS, default="model", help="where to run it (default: model)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="run the model and an RTL simulator (--sim, icarus by default) and stop at the first difference",
    )
    parser.add_argument("--waves", type=Path, metavar="PATH", help="write the RTL simulation's waveform to PATH")
    parser.set_defaults(run=run_replay_command)


def run_replay_command(args: argparse.Namespace) -> int:
    from vmxu.sim.replay import compare, run_model

    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CommandError(f"cannot read {args.file}: {error}") from None
    if not args.check:
        if args.sim == "model":
            if args.waves is not None:
                raise CommandError("--waves needs an RTL simulator (--sim icarus|verilator or --check)")
            results = run_model(text)
        else:
            results = _run_rtl(args.file, args.sim, args.waves)
        _print_results(results)
        return 0
    rtl_sim = "icarus" if args.sim == "model" else args.sim
    model_results = run_model(text)
    rtl_results = _run_rtl(args.file, rtl_sim, args.waves)
    difference = compare(model_results, rtl_results)
    if difference is not None:
        print(f"vmxu replay --check ({rtl_sim}): {difference.describe()}")
        return EXIT_MISMATCH
    _print_results(model_results)
    print(f"vmxu replay --check: model and {rtl_sim} agree on {len(model_results)} results", file=sys.stderr)
    return 0


def _print_results(results: list[dict[str, Any]]) -> None:
    from vmxu.sim.replay import result_line

    for result in results:
        print(result_line(result))


def _run_rtl(script: Path, sim: str, waves: Path | None) -> list[dict[str, Any]]:
    """Replay on an RTL simulator through the cocotb harness (vmxu.sim.cocotb.runner.run_replay)."""
    try:
        from vmxu.sim.cocotb.runner import run_replay
    except ImportError as error:
        missing = getattr(error, "name", None)
        if missing in (None, "vmxu.sim.cocotb.runner") or "run_replay" in str(error):
            raise CommandError(f"RTL backend not available yet (vmxu.sim.cocotb.runner.run_replay): {error}") from None
        raise
    try:
        return run_replay(script, sim, waves=waves)
    except (ValueError, RuntimeError) as error:
        raise CommandError(f"the {sim} run failed: {error}") from None


# -- vmxu fields -------------------------------------------------------------------


def add_fields(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fields",
        help="print the VMCS field table, or decode one field",
        description="Without an argument, print every supported VMCS component; with a name or an encoding, "
        "decode it (encoding bit fields, where it is stored).",
    )
    parser.add_argument("field", nargs="?", metavar="NAME|ENCODING", help="e.g. GUEST_RIP or 0x681e")
    parser.set_defaults(run=run_fields_command)


def run_fields_command(args: argparse.Namespace) -> int:
    if args.field is None:
        print(format_field_table())
        return 0
    print(describe_field(args.field))
    return 0


_COLUMNS = ("encoding", "name", "width", "type", "access", "read-only", "storage", "offset")


def _storage_label(storage: layout.Storage) -> str:
    return "on-die" if storage == layout.Storage.ON_DIE else "memory"


def format_field_table() -> str:
    """Every supported component: encoding, name, width, type, access, read-only, storage class, region offset."""
    rows = [_COLUMNS]
    for field in vmcs_fields.FIELDS:
        location = layout.LOCATION[field.encoding]
        rows.append(
            (
                f"{field.encoding:#06x}",
                field.name,
                field.width.label,
                field.type.label,
                field.access.name.lower(),
                "yes" if field.read_only else "no",
                _storage_label(location.storage),
                f"{4 * location.word:#05x}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.append(
        f"{len(vmcs_fields.FIELDS)} components; region offsets in bytes; on-die image "
        f"{4 * layout.IMAGE_FIRST_WORD:#x}..{4 * (layout.IMAGE_FIRST_WORD + 2 * layout.SLOTS_USED) - 1:#x} "
        f"({layout.SLOTS_USED} slots)"
    )
    return "\n".join(lines)


def _parse_encoding(text: str) -> int | None:
    try:
        value = int(text.strip(), 0)
    except ValueError:
        return None
    return value


def describe_field(key: str) -> str:
    """One component's decoding: every bit field of its encoding and where it is stored."""
    name = key.strip().upper()
    field = vmcs_fields.FIELD_BY_NAME.get(name)
    if field is not None:
        encoding = field.encoding
    else:
        parsed = _parse_encoding(key)
        if parsed is None:
            raise CommandError(f"no VMCS field is named {key!r} (`vmxu fields` lists them)")
        if parsed < 0 or parsed >> 64:
            raise CommandError(f"{key} is not a 64-bit field encoding")
        encoding = parsed
        field = vmcs_fields.FIELD_BY_ENCODING.get(encoding)
    lines = [f"{field.name}: encoding {encoding:#06x}" if field else f"encoding {encoding:#x}"]
    lines += _decoded_bits(encoding)
    if field is None:
        lines.append(f"not a supported component (VMREAD/VMWRITE fail with error 12): {_why_unsupported(encoding)}")
        return "\n".join(lines)
    location = layout.LOCATION[encoding]
    rows = [
        ("moves", f"{field.value_bits} bits ({_width_phrase(field.width)} field, {field.access.name.lower()} access)"),
        ("read-only", "yes (VMWRITE fails with error 13)" if field.read_only else "no"),
        ("storage", _storage_label(location.storage)),
    ]
    if location.storage == layout.Storage.ON_DIE:
        half = "bits 31:0" if location.half == 0 else "bits 63:32"
        rows.append(("slot", f"{location.slot}, half {location.half} ({half} of the 64-bit slot)"))
        where = f"region offset {4 * location.word:#x} ({_words(location.words)})"
        rows.append(("image at", f"{where} after a write-back"))
    else:
        where = f"region offset {4 * location.word:#x} ({_words(location.words)})"
        rows.append(("offset", f"{where}, read and written over the bus"))
    lines += [f"  {name:<22}{value}" for name, value in rows]
    return "\n".join(lines)


def _decoded_bits(encoding: int) -> list[str]:
    bits = vmcs_fields.decode_encoding(encoding & 0xFFFF_FFFF)
    rows = [
        ("access", "bit 0", f"{bits['access'].value} ({bits['access'].name.lower()})"),
        ("index", "bits 9:1", f"{bits['index']} ({bits['index']:#x})"),
        ("type", "bits 11:10", f"{bits['type'].value} ({bits['type'].label})"),
        ("reserved", "bit 12", f"{bits['reserved_12']}"),
        ("width", "bits 14:13", f"{bits['width'].value} ({bits['width'].label})"),
        ("reserved", "bits 31:15", f"{bits['reserved_31_15']:#x}"),
    ]
    if encoding >> 32:
        rows.append(("operand", "bits 63:32", f"{encoding >> 32:#x} (must be 0 with a 64-bit operand)"))
    return [f"  {name:<10}{where:<12}{value}" for name, where, value in rows]


def _why_unsupported(encoding: int) -> str:
    if encoding >> 32:
        return "bits 63:32 are set"
    if encoding & vmcs_fields.ENCODING_RESERVED_MASK:
        return "reserved bits (12 or 31:15) are set"
    bits = vmcs_fields.decode_encoding(encoding)
    if bits["access"] == vmcs_fields.AccessType.HIGH and bits["width"] != vmcs_fields.FieldWidth.W64:
        return "the high access type exists only for 64-bit fields"
    return "vmxu implements no component with this width, type and index"


def _width_phrase(width: vmcs_fields.FieldWidth) -> str:
    return "natural-width" if width == vmcs_fields.FieldWidth.NATURAL else f"{width.label}-bit"


def _words(count: int) -> str:
    return "1 word" if count == 1 else f"{count} words"


# -- main ------------------------------------------------------------------------------

#: Subcommands in the order ``vmxu --help`` lists them; each adds its parser and sets ``run``.
SUBCOMMANDS: dict[str, Callable[[Any], None]] = {
    "replay": add_replay,
    "fields": add_fields,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmxu", description="vmxu: a VT-x-style VMX unit, its model and its tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS.values():
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CommandError as error:
        print(f"vmxu {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
