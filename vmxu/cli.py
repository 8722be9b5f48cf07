"""The ``vmxu`` command: one subcommand per job.

``vmxu demo`` shows the unit at work; ``vmxu replay FILE`` runs a transaction
script (shared/vmx/REPLAY.md) on the reference model or an RTL simulator;
``vmxu fields`` prints the VMCS field table or decodes one encoding; ``vmxu
bench`` measures operation latencies in RTL simulation; ``vmxu synth`` maps the
unit to iCE40 and ECP5 FPGAs; ``vmxu build`` makes a board's bitstream; ``vmxu wave`` decodes a waveform
(vmxu/wave_command.py). A subcommand is one ``add_*`` function that
builds its parser and sets ``run``; register it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmxu.errors import CommandError
from vmxu.rtl.arch import fields as vmcs_fields
from vmxu.rtl.arch import layout
from vmxu.sim.cocotb.toolchain import ToolMissing
from vmxu.wave_command import add_wave

if TYPE_CHECKING:
    from vmxu.sim.firmware_run import RunOutcome

__all__ = ["main", "SUBCOMMANDS"]

#: Exit status of a usage error, an unreadable file or an unknown name.
EXIT_USAGE = 2
#: Exit status of ``replay --check`` and ``demo`` when the model and the RTL differ, and of a failed tool run.
EXIT_MISMATCH = 1

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SIMULATORS = ("model", "icarus", "verilator")


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
    parser.add_argument(
        "--waves", type=Path, metavar="PATH", help="write the RTL simulation's waveform to PATH (.vcd or .fst)"
    )
    parser.add_argument(
        "--dual-monitor",
        action="store_true",
        help="the dual-monitor treatment of SMIs and SMM (IA32_VMX_BASIC bit 49): the default on every backend "
        "now; the option is kept for the scripts that name it (docs/smm.md)",
    )
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


# -- vmxu demo ---------------------------------------------------------------------


DEMOS = ("hypervisor", "vmexit", "stm", "vmcs", "hello", "replay")
#: The vmexit demo's target (issue 10): a CPUID round trip, guest to guest, on the RTL SoC.
CPUID_ROUND_TRIP_TARGET = 400


def add_demo(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="build a firmware demo and run it on the RTL SoC (default: the hypervisor)",
        description="hypervisor (default): build firmware/demos/hypervisor (a VMM that launches a guest, emulates "
        "its serial port and answers its CPUID, then prints its exit log) and run it on the RTL SoC whose core runs "
        "guests. vmexit: cycles per VM-exit round trip, guest to guest, for CPUID, VMCALL, OUT and RDMSR with a "
        "minimal handler (instructions on the ISS), and the CPUID target. stm: SMI redirection through SMBASE "
        "(boot firmware relocates SMBASE, a VMM activates the dual-monitor treatment, the guest's SMIs go to the "
        "STM, which runs the legacy SMM handler in a VM; docs/smm-soc.md). vmcs: the VMM side of the VMCS "
        "capability (VMXON, VMCLEAR, VMPTRLD, VMWRITE/VMREAD of every field, the error paths). hello: the "
        "console demo. replay: examples/vmcs-basics.jsonl on the model and the RTL unit, compared operation by "
        "operation.",
    )
    parser.add_argument("name", nargs="?", choices=DEMOS, default="hypervisor", help="which demo (default: hypervisor)")
    parser.add_argument(
        "--sim",
        choices=("iss", "icarus", "verilator"),
        help="where to run the firmware (default: verilator when usable, else icarus)",
    )
    parser.set_defaults(run=run_demo_command)


def run_demo_command(args: argparse.Namespace) -> int:
    """Build and run a firmware demo; exit with its result (see ``run_run_command``)."""
    if args.name == "replay":
        return run_replay_demo()
    from vmxu.sim.iss.run import GUEST_DEMOS, FirmwareBuildError, build_firmware

    backend = args.sim or _default_simulator()
    if backend != "iss":
        from vmxu.sim.cocotb.toolchain import prepare_simulator

        prepare_simulator(backend)  # a missing simulator is named before anything is built
    print(f"vmxu demo: building firmware/demos/{args.name}", file=sys.stderr)
    try:
        image = build_firmware(args.name)
    except FirmwareBuildError as error:
        raise CommandError(str(error)) from None
    print(f"vmxu demo: running {image.name} on {_backend_label(backend)}", file=sys.stderr)
    summary = {"vmexit": _vmexit_target, "stm": _stm_targets}.get(args.name)
    return _run_and_report(
        image,
        backend,
        max_cycles=50_000_000,
        guests=args.name in GUEST_DEMOS,
        summary=summary,
        smm_times=args.name == "stm" and backend != "iss",
    )


def _vmexit_target(outcome: RunOutcome) -> str:
    """The vmexit demo's CPUID row against its target (cycles on the RTL; the ISS counts instructions)."""
    found = re.search(r"^vmexit: +CPUID +(\d+)$", outcome.console, re.MULTILINE)
    if found is None:
        return "vmxu demo: vmexit: no CPUID row in the console"
    count = int(found[1])
    if outcome.backend == "iss":
        return f"vmxu demo: CPUID round trip {count} instructions on the ISS (the cycle target applies to the RTL)"
    met = "met" if count <= CPUID_ROUND_TRIP_TARGET else "not met"
    return f"vmxu demo: CPUID round trip {count} cycles (target <= {CPUID_ROUND_TRIP_TARGET}: {met})"


#: Issue 11's targets on the SoC: an SMI to the STM's first instruction, the legacy handler's RSM back to it.
SMM_TRANSITION_TARGET = 150


def _stm_targets(outcome: RunOutcome) -> str:
    """The stm demo's SMM transitions on the RTL SoC (sim/iss/smm.py ``TransitionTimes``) against the target."""
    if outcome.smm_times is None:
        return f"vmxu demo: the SMM transitions are timed on the RTL (the target, {SMM_TRANSITION_TARGET} cycles, too)"
    parts = []
    for key, what in (("smi", "the guest's OUT to port b2 to the STM's first instruction"), ("rsm", "the legacy "
                      "handler's RSM to the STM's first instruction")):  # fmt: skip
        cycles = outcome.smm_times[key]
        if not cycles:
            parts.append(f"{what}: not seen")
            continue
        met = "met" if max(cycles) <= SMM_TRANSITION_TARGET else "not met"
        shown = ", ".join(str(c) for c in sorted(set(cycles)))
        parts.append(f"{what}: {shown} cycles (target <= {SMM_TRANSITION_TARGET}: {met})")
    return "\n".join(f"vmxu demo: {part}" for part in parts)


def run_replay_demo() -> int:
    """One example script on the model and the RTL unit, compared line by line.

    Exit 0 when the two agree on every operation, 1 at the first difference (both results shown).
    """
    from vmxu.rtl.arch.errors import VmError
    from vmxu.sim.replay import Operation, compare, parse_script, run_model

    script = EXAMPLES / "vmcs-basics.jsonl"
    sim = "icarus"
    try:
        text = script.read_text(encoding="utf-8")
    except OSError as error:
        raise CommandError(f"cannot read the demo script: {error}") from None
    lines = text.splitlines()
    echoes = {item.line: item.echo for item in parse_script(text) if isinstance(item, Operation)}
    print(f"vmxu demo: {script.relative_to(EXAMPLES.parent)} on the reference model and on the RTL ({sim})")
    model_results = run_model(text)
    rtl_results = _run_rtl(script, sim, None)
    difference = compare(model_results, rtl_results)
    agreed = model_results if difference is None else [r for r in model_results if r["line"] < difference.line]

    vectors = {6: "#UD", 13: "#GP"}

    def readable(result: dict[str, Any]) -> str:
        echo = echoes.get(result["line"], {})
        arguments = [
            f"{value}" if key == "field" else f"{key}={value}"
            for key, value in echo.items()
            if key not in ("op", "line")
        ]
        details = []
        if "error" in result:
            details.append(f"error {result['error']} ({VmError(result['error']).name})")
        if "vector" in result:
            details.append(f"vector {result['vector']} ({vectors.get(result['vector'], 'exception')})")
        if "why" in result:
            details.append(result["why"])
        if "value" in result and result["value"] != echo.get("value"):
            details.append(f"value {result['value']}")
        operation = f"{result['op'].upper():<9}{' '.join(arguments):<38}"
        return f"  {result['line']:>3}  {operation} {result['status']:<12} {', '.join(details)}".rstrip()

    # The script's comments between two operations say what they show; the header's "Run:" line is for replay.
    previous_line = 0
    for result in agreed:
        comments = [line.lstrip("#").strip() for line in lines[previous_line : result["line"] - 1]]
        comments = [comment for comment in comments if comment and not comment.startswith("Run:")]
        if comments:
            print()
        for comment in comments:
            print(f"  # {comment}")
        previous_line = result["line"]
        print(readable(result))
    if difference is not None:
        print(f"\nvmxu demo: the model and the RTL ({sim}) differ, {difference.describe()}")
        return EXIT_MISMATCH
    print(f"\nmodel and RTL ({sim}) agree on {len(model_results)} operations")
    return 0


# -- vmxu run ----------------------------------------------------------------------

#: Exit status of `vmxu run` when the cycle (or instruction) limit ends the run, as timeout(1) does.
EXIT_LIMIT = 124
#: Exit status for finisher codes of EXIT_LIMIT and more: 124-127 and 128 + n have shell meanings, and a status
#: keeps only 8 bits. The code itself is on the line ``vmxu run: the program exited with code N``.
EXIT_LARGE_CODE = 125


def add_run(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a firmware image (ELF or raw binary) on the SoC or the ISS",
        description="Run a firmware image on the RTL SoC (Icarus or Verilator) or on the instruction-set "
        "simulator; print its console output, then the cycle and instruction counts and the line 'vmxu run: the "
        "program exited with code N'. Exit status: the test finisher's code N (0: passed; codes of "
        f"{EXIT_LIMIT} and more exit {EXIT_LARGE_CODE}), {EXIT_LIMIT} when the cycle limit ends the run, "
        f"{EXIT_MISMATCH} when the simulator fails, {EXIT_USAGE} when the image or a tool is missing.",
    )
    parser.add_argument("image", type=Path, help="an ELF, or a raw binary loaded at address 0")
    parser.add_argument(
        "--sim", choices=("iss", "icarus", "verilator"), help="default: verilator if usable, else icarus"
    )
    parser.add_argument(
        "--max-cycles", type=int, default=50_000_000, help="stop after this many cycles (instructions on the ISS)"
    )
    parser.add_argument("--waves", type=Path, metavar="PATH", help="write a waveform (.vcd or .fst)")
    parser.add_argument("--trace", action="store_true", help="print the retired-instruction trace after the console")
    parser.add_argument(
        "--lockstep", action="store_true", help="check every retired instruction against the ISS (RTL only)"
    )
    parser.add_argument(
        "--guests",
        action="store_true",
        help="on the SoC whose core runs guests (VM entries and exits; docs/guests.md)",
    )
    parser.set_defaults(run=run_run_command)


def _backend_label(backend: str) -> str:
    return "the instruction-set simulator" if backend == "iss" else f"the RTL SoC ({backend})"


def run_run_command(args: argparse.Namespace) -> int:
    if not args.image.is_file():
        raise CommandError(f"no such image: {args.image}")
    if args.max_cycles <= 0:
        raise CommandError("--max-cycles must be positive")
    return _run_and_report(
        args.image,
        args.sim or _default_simulator(),
        max_cycles=args.max_cycles,
        waves=args.waves,
        trace=args.trace,
        lockstep=args.lockstep,
        guests=args.guests,
    )


def _run_and_report(
    image: Path,
    backend: str,
    *,
    max_cycles: int,
    waves=None,
    trace=False,
    lockstep=False,
    guests=False,
    summary: Callable[[RunOutcome], str] | None = None,
    smm_times: bool = False,
) -> int:
    from vmxu.sim.firmware_run import EXIT_CYCLE_LIMIT, run_firmware

    try:
        outcome = run_firmware(
            image,
            backend,
            max_cycles=max_cycles,
            waves=waves,
            trace=trace,
            lockstep=lockstep,
            echo=True,
            guests=guests,
            smm_times=smm_times,
        )
    except ValueError as error:
        raise CommandError(str(error)) from None
    except RuntimeError as error:
        if isinstance(error, ToolMissing):
            raise
        print(f"vmxu run: {image.name} on {_backend_label(backend)}: {error}", file=sys.stderr)
        return EXIT_MISMATCH
    if outcome.console and not outcome.console.endswith("\n"):
        print()
    for line in outcome.trace or []:
        print(line)
    counts = f"{outcome.instructions} instructions"
    if outcome.cycles is not None:
        rate = f", {outcome.cycles / outcome.seconds:,.0f} cycles/s" if outcome.seconds else ""
        counts = f"{outcome.cycles} cycles, {counts} (CPI {outcome.cycles / max(outcome.instructions, 1):.2f}{rate})"
    checked = f"; {outcome.lockstep_records} records agreed with the ISS" if outcome.lockstep_records else ""
    print(f"vmxu run: {image.name} on {_backend_label(backend)}: {counts}; {outcome.reason}{checked}", file=sys.stderr)
    if summary is not None:
        print(summary(outcome))
    if outcome.exit_code == EXIT_CYCLE_LIMIT:
        return EXIT_LIMIT
    status = outcome.exit_code if outcome.exit_code < EXIT_LIMIT else EXIT_LARGE_CODE
    stands_for = "" if status == outcome.exit_code else f" (exit status {status}: codes of {EXIT_LIMIT} and more)"
    print(f"vmxu run: the program exited with code {outcome.exit_code}{stands_for}", file=sys.stderr)
    return status


# -- vmxu bench --------------------------------------------------------------------

#: The latency targets of the issue: what they cover, which measured rows they apply to, the limit in cycles.
BENCH_TARGETS: tuple[tuple[str, Callable[[str], bool], int], ...] = (
    ("VMREAD/VMWRITE of an on-die field", lambda op: op.startswith(("VMREAD on-die", "VMWRITE on-die")), 2),
    ("VMPTRLD of a cached VMCS", lambda op: op == "VMPTRLD (cached)", 4),
    ("VM exit (VMCALL, no MSR lists)", lambda op: op == "VM exit (VMCALL)", 96),
    ("VMRESUME to the guest's first instruction", lambda op: op == "VMRESUME to entered", 128),
    # Issue 11: an SMI to the SMM-transfer monitor's first instruction, and the way back (the return from SMM).
    ("SMI to the STM's first instruction (SMM VM exit)", lambda op: op == "SMM VM exit (SMI, from VMX root)", 150),
    ("the STM's return from SMM", lambda op: op.startswith("VMRESUME returning from SMM"), 150),
)


def add_bench(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure the latency of each operation in RTL simulation",
        description="Run one operation of each kind on the RTL (checked against the model) and print its latency "
        "in clock cycles, with the latency targets met or not, and each row of the unit's latency table met or not "
        "(exit status 1 if a measured latency differs from the table).",
    )
    parser.add_argument(
        "--sim", choices=("icarus", "verilator"), help="the simulator (default: verilator when usable, else icarus)"
    )
    parser.add_argument("--json", action="store_true", help="print the measured rows as JSON")
    parser.add_argument(
        "--waves", type=Path, metavar="PATH", help="write the benchmark's waveform to PATH (.vcd or .fst)"
    )
    parser.set_defaults(run=run_bench_command)


def _default_simulator() -> str:
    from vmxu.sim.cocotb.toolchain import prepare_simulator

    try:
        prepare_simulator("verilator")
    except ToolMissing:
        return "icarus"
    return "verilator"


def bench_targets(rows: list[dict[str, Any]]) -> list[tuple[str, int, list[int], bool | None]]:
    """Each target of BENCH_TARGETS with the cycles it was measured at and whether it is met (None: not measured)."""
    verdicts = []
    for what, applies, limit in BENCH_TARGETS:
        cycles = [row["cycles"] for row in rows if applies(row["operation"])]
        verdicts.append((what, limit, cycles, all(c <= limit for c in cycles) if cycles else None))
    return verdicts


def bench_table(rows: list[dict[str, Any]]) -> list[tuple[str, int | None, int | None, str]]:
    """Each row of the unit's latency table with the cycles measured for it, then every measured row it lacks.

    A verdict is "met" when the measured cycles equal the table's, "not met" when they differ,
    "not measured" for a table row the bench did not run, "not in the table" for a measured row.
    """
    from vmxu.sim.cocotb.bench import latency_table

    table = latency_table()
    measured = {row["operation"]: row["cycles"] for row in rows}
    verdicts: list[tuple[str, int | None, int | None, str]] = []
    for what, cycles in table.items():
        got = measured.get(what)
        verdicts.append((what, cycles, got, "not measured" if got is None else "met" if got == cycles else "not met"))
    verdicts += [(what, None, got, "not in the table") for what, got in measured.items() if what not in table]
    return verdicts


def run_bench_command(args: argparse.Namespace) -> int:
    from vmxu.sim.cocotb.bench import SUBJECTS
    from vmxu.sim.cocotb.runner import run_bench

    sim = args.sim or _default_simulator()
    print(f"vmxu bench: running the benchmark on {sim}", file=sys.stderr)
    try:
        rows = run_bench(sim, waves=args.waves)
    except ToolMissing:
        raise
    except (ValueError, RuntimeError) as error:
        raise CommandError(f"the {sim} run failed: {error}") from None
    table = bench_table(rows)
    status = 0 if all(verdict == "met" for *_, verdict in table) else EXIT_MISMATCH
    if args.json:
        print(json.dumps(rows, indent=2))
        return status
    print(f"VMX unit latency in clock cycles, RTL simulated on {sim} (each result checked against the model)")
    print("counted from the clock edge that accepts a request to the edge that takes its response;")
    print("bus: a zero-wait-state Wishbone slave that acknowledges one clock after the strobe;")
    print("the requester takes every response at once")
    print(f"measured on: {SUBJECTS}")
    print()
    width = max(len("operation"), *(len(row["operation"]) for row in rows))
    print(f"{'operation':<{width}}  cycles")
    for row in rows:
        print(f"{row['operation']:<{width}}  {row['cycles']:>6}")
    print()
    print("targets:")
    for what, limit, cycles, met in bench_targets(rows):
        verdict = "not measured" if met is None else "met" if met else "not met"
        measured = ", ".join(str(c) for c in cycles) or "-"
        print(f"  {what} <= {limit} cycles: {verdict} (measured {measured})")
    print()
    print("latency table (VmxUnit.latency, docs/unit.md): each row's cycles, measured:")
    for what, cycles, got, verdict in table:
        expected = "-" if cycles is None else cycles
        print(f"  {what}: {expected}, measured {'-' if got is None else got}: {verdict}")
    if status:
        failed = sum(verdict != "met" for *_, verdict in table)
        print(f"vmxu bench: {failed} row(s) of the latency table not met", file=sys.stderr)
    return status


# -- vmxu synth --------------------------------------------------------------------


#: The units ``vmxu synth`` measures: the unit, and the unit the SoC holds (``VmxUnit(guests=False)``: no VM
#: entries or exits, the configuration that fits the iCEBreaker's UP5K beside the core).
SYNTH_UNITS = {"unit": {}, "unit-without-guests": {"guests": False}}

#: The issues' synthesis targets: what, which unit and FPGA, and whether a report meets it.
SYNTH_TARGETS: tuple[tuple[str, str, str, Callable[[Any], bool]], ...] = (
    ("the unit with transitions <= 2,600 LUT4", "unit", "ice40-up5k", lambda r: r.luts <= 2600),
    ("the unit's Fmax >= 80 MHz", "unit", "ecp5-25f", lambda r: r.fmax_mhz is not None and r.fmax_mhz >= 80),
    ("the unit's Fmax >= 30 MHz", "unit", "ice40-up5k", lambda r: r.fmax_mhz is not None and r.fmax_mhz >= 30),
)


def add_synth(subparsers: Any) -> None:
    from vmxu.fpga.synth import TARGETS

    parser = subparsers.add_parser(
        "synth",
        help="synthesize the unit for iCE40 UP5K / ECP5-25F: area and Fmax",
        description="Map the VMX unit with yosys (its LUT4, flip-flop and block-RAM counts) and place and route "
        "it in a test harness with nextpnr (its Fmax), with the YoWASP tools from PyPI; for the unit with VM "
        "entries and exits and for the unit the SoC holds (without them). Prints the synthesis targets as met "
        "or not met.",
    )
    parser.add_argument("--target", choices=(*TARGETS, "all"), default="all", help="the FPGA (default: all)")
    parser.add_argument(
        "--unit",
        choices=(*SYNTH_UNITS, "all"),
        default="all",
        help="unit: with VM entries and exits; unit-without-guests: the SoC's (default: all)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where the netlists and logs go, one directory per unit and target (default: synth/ under the build "
        "cache)",
    )
    parser.set_defaults(run=run_synth_command)


def run_synth_command(args: argparse.Namespace) -> int:
    from functools import partial

    from vmxu.fpga.synth import TARGETS, synthesize
    from vmxu.rtl.vmx.unit import VmxUnit
    from vmxu.sim.cocotb.build import build_root

    names = list(TARGETS) if args.target == "all" else [args.target]
    units = list(SYNTH_UNITS) if args.unit == "all" else [args.unit]
    work_dir = args.work_dir if args.work_dir is not None else build_root() / "synth"
    start = time.monotonic()

    def progress(message: str) -> None:
        # One write per line: the yosys runs report from two threads.
        sys.stderr.write(f"[{time.monotonic() - start:6.1f} s] {message}\n")
        sys.stderr.flush()

    reports: list[tuple[str, Any]] = []
    for unit in units:
        for name in names:
            progress(f"{unit} on {name}")
            try:
                report = synthesize(name, partial(VmxUnit, **SYNTH_UNITS[unit]), work_dir / unit / name, progress)
            except ToolMissing:
                raise
            except RuntimeError as error:
                print(f"vmxu synth: {unit} on {name}: {error}", file=sys.stderr)
                return EXIT_MISMATCH
            reports.append((unit, report))
    print(format_synth_table(reports))
    return 0


def synth_targets(reports: list[tuple[str, Any]]) -> list[tuple[str, str, bool | None]]:
    """Each of SYNTH_TARGETS with its FPGA and whether it is met (None: not measured in this run)."""
    verdicts = []
    for what, unit, target, met in SYNTH_TARGETS:
        found = [r for u, r in reports if u == unit and r.target.name == target]
        verdicts.append((what, target, met(found[0]) if found else None))
    return verdicts


def format_synth_table(reports: list[tuple[str, Any]]) -> str:
    """The numbers of each (unit, fpga.synth.SynthReport), one row each, the targets, what they measure, the logs."""
    header = ("unit", "target", "LUT4 used/avail", "%", "FF", "BRAM used/avail", "Fmax", "target", "timing", "seconds")
    rows = [header]
    for unit, r in reports:
        t = r.target
        fmax = "n/a" if r.fmax_mhz is None else f"{r.fmax_mhz:.1f} MHz"
        timing = {True: "met", False: "not met", None: "unknown"}[r.timing_met]
        if not r.fits:
            fmax, timing = "n/a", f"does not fit ({r.harness_luts} LUT4 with the harness)"
        rows.append(
            (
                unit,
                t.name,
                f"{r.luts}/{t.luts}",
                f"{100 * r.luts / t.luts:.0f}%",
                str(r.flip_flops),
                f"{r.brams}/{t.brams} ({t.bram_kbits} kbit)",
                fmax,
                f"{t.target_mhz:.0f} MHz",
                timing,
                f"{r.seconds:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += ["", "targets:"]
    for what, target, met in synth_targets(reports):
        verdict = {True: "met", False: "not met", None: "not measured"}[met]
        lines.append(f"  {what} on {target}: {verdict}")
    lines += [
        "",
        "LUT4, FF, BRAM: the unit alone, as yosys maps it (synth_ice40 / synth_ecp5; an ECP5 carry cell counts as"
        " 2 LUT4).",
        "Fmax: nextpnr (seed 1) on a harness around the unit (inputs from a scan chain, outputs registered and"
        " XOR-ed into one pin: fpga/synth.py), so every path starts and ends at a flip-flop; a harness with more"
        " LUT4s than the device is not placed.",
        "logs (yosys-unit.log, yosys-harness.log, nextpnr.log, nextpnr-report.json):",
    ]
    lines += [f"  {unit} on {r.target.name}: {r.log_dir}" for unit, r in reports]
    return "\n".join(lines)


# -- vmxu build --------------------------------------------------------------------


def add_build(subparsers: Any) -> None:
    from vmxu.fpga.boards import BOARDS

    parser = subparsers.add_parser(
        "build",
        help="build the SoC with a firmware image into a bitstream for a board",
        description="Build the SoC (core, VMX unit, RAM, UART, LEDs) with a firmware image for a board through "
        "amaranth-boards and the YoWASP tools (system tools with VMXU_SYSTEM_TOOLS=1); print the resources it "
        "uses, its Fmax, the bitstream and how to program it (docs/fpga.md). The ULX3S's SoC runs guests (the "
        "default image is the hypervisor demo); the iCEBreaker's leaves them out (the vmcs demo).",
    )
    parser.add_argument("--board", required=True, choices=tuple(BOARDS), help="the board")
    from vmxu.sim.iss.run import FIRMWARE_DIR

    demos_dir = FIRMWARE_DIR / "demos"
    demos = sorted(p.name for p in demos_dir.iterdir() if p.is_dir()) if demos_dir.is_dir() else None
    image = parser.add_mutually_exclusive_group()
    image.add_argument("--image", type=Path, metavar="ELF", help="the firmware image")
    image.add_argument(
        "--demo",
        choices=demos,
        help="a firmware demo, built first (default: hypervisor where the board's SoC runs guests, else vmcs)",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="where the design, logs and bitstream go (default: boards/BOARD under the build cache)",
    )
    parser.add_argument(
        "--pack-only",
        action="store_true",
        help="stop after nextpnr's packing: the resources and whether the SoC fits, no Fmax or bitstream",
    )
    parser.set_defaults(run=run_build_command)


def run_build_command(args: argparse.Namespace) -> int:
    from vmxu.fpga.build import BuildError, build_board
    from vmxu.sim.cocotb.build import build_root
    from vmxu.sim.iss.run import FirmwareBuildError

    if args.image is not None and not args.image.is_file():
        raise CommandError(f"no such image: {args.image}")
    work_dir = args.work_dir if args.work_dir is not None else build_root() / "boards" / args.board
    start = time.monotonic()

    def progress(message: str) -> None:
        sys.stderr.write(f"[{time.monotonic() - start:6.1f} s] {message}\n")
        sys.stderr.flush()

    try:
        report = build_board(
            args.board, work_dir, image=args.image, demo=args.demo, progress=progress, pack_only=args.pack_only
        )
    except (BuildError, FirmwareBuildError) as error:
        raise CommandError(str(error)) from None
    except RuntimeError as error:
        if isinstance(error, ToolMissing):
            raise
        print(f"vmxu build: {args.board}: {error}", file=sys.stderr)
        return EXIT_MISMATCH
    print("\n".join(report.lines()))
    return 0 if report.fits else EXIT_MISMATCH


# -- main ------------------------------------------------------------------------------

#: Subcommands in the order ``vmxu --help`` lists them; each adds its parser and sets ``run``.
SUBCOMMANDS: dict[str, Callable[[Any], None]] = {
    "demo": add_demo,
    "run": add_run,
    "replay": add_replay,
    "fields": add_fields,
    "bench": add_bench,
    "synth": add_synth,
    "build": add_build,
    "wave": add_wave,
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
    except (CommandError, ToolMissing) as error:
        print(f"vmxu {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
