"""``vmxu wave FILE``: a waveform of the VMX unit (standalone or in the SoC) back into what it did.

By default one JSON object per request on the unit's port, in the result
format of ``vmxu replay`` plus ``cycle`` and ``latency``; ``--script`` writes
the requests as a replay script (with the memory the unit read), ``--text`` a
table (``--core`` interleaves the SoC core's retired instructions),
``--gtkw`` a GTKWave save file with translate filters, ``--wavedrom`` a
timing diagram of cycles ``--from`` to ``--to``. docs/tools.md has the details.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from vmxu.errors import CommandError

__all__ = ["add_wave"]


def add_wave(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "wave",
        help="decode a VCD/FST waveform into the VMX unit's transactions",
        description="Decode the VMX unit's port in a VCD or FST waveform (from `vmxu replay/run/bench --waves`, or "
        "any simulation of the unit or the SoC) into one JSON result per request, as `vmxu replay` prints them, "
        "with the cycle that accepted it and its latency.",
    )
    parser.add_argument("file", type=Path, help="the waveform (.vcd or .fst)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--script", action="store_true", help="write the requests as a replay script")
    what.add_argument("--text", action="store_true", help="print a readable table")
    what.add_argument("--gtkw", type=Path, metavar="OUT.gtkw", help="write a GTKWave save file and its filters")
    what.add_argument("--wavedrom", action="store_true", help="a timing diagram (WaveJSON) of --from to --to")
    parser.add_argument("--from", dest="start", type=int, metavar="CYCLE", help="--wavedrom: the first cycle")
    parser.add_argument("--to", dest="end", type=int, metavar="CYCLE", help="--wavedrom: the last cycle")
    parser.add_argument(
        "--signal",
        action="append",
        default=[],
        metavar="NAME",
        help="--wavedrom: also draw this signal of the unit (e.g. state.port__wr_en); repeatable",
    )
    parser.add_argument("--core", action="store_true", help="--text: interleave the SoC core's retired instructions")
    parser.add_argument("--scope", help="the unit's scope when the waveform holds several (e.g. soc.unit)")
    parser.add_argument("--reader", choices=("auto", "vcdvcd", "pywellen"), default="auto", help="the file reader")
    parser.add_argument("-o", "--output", type=Path, metavar="PATH", help="write to PATH (--wavedrom: .json or .svg)")
    parser.set_defaults(run=run_wave_command)


def run_wave_command(args: argparse.Namespace) -> int:
    from vmxu.sim.waves.reader import WaveError, Waves

    if (args.start is None) != (args.end is None) or (args.start is not None and not args.wavedrom):
        raise CommandError("--from and --to go together, with --wavedrom")
    if args.wavedrom and args.start is None:
        raise CommandError("--wavedrom needs --from CYCLE --to CYCLE (`vmxu wave FILE --text` shows the cycles)")
    if args.core and not args.text:
        raise CommandError("--core goes with --text")
    if args.signal and not args.wavedrom:
        raise CommandError("--signal goes with --wavedrom")
    started = time.perf_counter()
    try:
        waves = Waves(args.file, reader=args.reader)
        lines = _lines(waves, args)
    except WaveError as error:
        raise CommandError(str(error)) from None
    if args.output is not None and args.output.suffix.lower() == ".svg":
        return 0
    text = "".join(line + "\n" for line in lines)
    if args.output is not None:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    seconds = time.perf_counter() - started
    print(f"vmxu wave: {args.file} ({waves.reader}) decoded in {seconds:.2f} s", file=sys.stderr)
    return 0


def _lines(waves, args: argparse.Namespace) -> list[str]:  # noqa: ANN001 - a Waves
    from vmxu.sim.waves import decode

    scope = decode.unit_scope(waves, args.scope)
    if args.gtkw is not None:
        from vmxu.sim.waves.gtkwave import write_gtkw

        return [f"wrote {path}" for path in write_gtkw(waves, args.gtkw)]
    if args.wavedrom:
        from vmxu.sim.waves.wavedrom import DEFAULT_LANES, render_svg, signal_lane, wavejson

        lanes = [*DEFAULT_LANES, *(signal_lane(waves, scope, name) for name in args.signal)]
        diagram = wavejson(waves, scope, args.start, args.end, lanes)
        if args.output is not None and args.output.suffix.lower() == ".svg":
            render_svg(diagram, args.output)
            return []
        return [json.dumps(diagram, indent=1)]
    transactions = decode.decode(waves, scope)
    if args.script:
        return list(decode.script_lines(transactions, source=str(args.file)))
    if not args.text:
        return [json.dumps(result) for result in decode.results(transactions)]
    rows = [(t.cycle, 1, decode.text_line(t, n)) for n, t in enumerate(transactions, start=1)]
    if args.core:
        from vmxu.sim.iss.trace import format_retired
        from vmxu.sim.waves.core import retired

        rows += [(cycle, 0, f"{cycle:>8}        core      {format_retired(r)}") for cycle, r in retired(waves, scope)]
        rows.sort(key=lambda row: row[:2])
    return [decode.TEXT_HEADER, *(row[2] for row in rows)]
