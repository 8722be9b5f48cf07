# amaranth: UnusedElaboratable=no
# (the groups read the signatures of blocks made only for that: MachineState, Uart, Finisher.)
"""GTKWave save files that speak VMX: the unit's signals in groups, encodings shown by name.

``write_gtkw(waves, out)`` writes a save file ``out`` (``W.gtkw``) for a waveform of
the VMX unit or of the SoC, and beside it, in ``W.filters/``, the translate filter
files that name the values of the architectural tables: operations on
``req__op``, outcomes on ``resp__status``, VM-instruction errors on
``resp__error``, exception vectors on ``resp__vector``, VMCS field names on
``req__index`` (a VMREAD/VMWRITE's index is a field encoding; other operations'
indexes have no entry and stay hex), exit reasons on a second view of
``resp__value`` (named "resp__value (exit reason)", since the value is an exit
reason only for EXITED and ENTRY_FAILED), and machine-state element names on the
state block's element numbers. Every filter is generated from rtl/arch: no
encoding is typed here.

The groups: request, response, region bus, cache, machine state, checks and
transitions for the unit (found by its ports: the innermost scope with
``req__valid``, ``resp__valid`` and ``bus__cyc``), and for an SoC also its core
(pc, instruction, state, the retired-instruction trace), UART and finisher. A
signal the waveform lacks is left out, and a group left with none is not written.
A group's ports come from the RTL's signatures (``RequestSignature``,
``CachePortSignature``...), so a member added there shows here. The save file
opens on ``VIEW_CYCLES`` clock cycles from the unit's first request.

GTKWave matches a filter's left-hand side against the text it displays, case
aside: a hex value shows one digit per 4 bits, leading zeros kept (a 5-bit
``req__op`` shows VMREAD as ``05``), so a filter serves one display width and its
file name says which (``op-2hex.txt``). GTKWave names a signal as the file
declares it (Icarus' escaped names keep their backslash, ``\\checks__controls.entry``)
with the bit range of a vector appended (``req__op[4:0]``), for VCD and FST alike.
Paths in the save file are absolute (the waveform, the save file itself, each
filter), so GTKWave opens it from any directory; when the save file, the
waveform and the filters move together, GTKWave finds them relative to the
``[savefile]`` line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from amaranth.lib import wiring

from vmxu.rtl.arch.errors import EXIT_REASON_ENTRY_FAILURE, ExitReason, VmError
from vmxu.rtl.arch.events import ExceptionVector
from vmxu.rtl.arch.fields import FIELDS
from vmxu.rtl.arch.layout import CACHE_ENTRIES
from vmxu.rtl.arch.ops import Op, Status
from vmxu.rtl.arch.state import ELEMENTS, element_id
from vmxu.rtl.cpu.ports import TraceSignature
from vmxu.rtl.soc.peripherals import Finisher
from vmxu.rtl.soc.uart import Uart
from vmxu.rtl.vmcs.cache_port import CachePortSignature
from vmxu.rtl.vmcs.vmcs_cache import TagPortSignature
from vmxu.rtl.vmx.entry_checks import CheckSignature
from vmxu.rtl.vmx.machine_state import MachineState
from vmxu.rtl.vmx.port import RequestSignature, ResponseSignature
from vmxu.rtl.vmx.transitions import ExitSignature
from vmxu.rtl.wishbone import Signature as WishboneSignature

from .reader import WaveError, Waves

__all__ = ["FILTERS", "Row", "Group", "groups", "filter_lines", "gtkwave_name", "write_gtkw"]


def _names(table: type[Enum]) -> dict[int, str]:
    return {member.value: member.name for member in table}


def _exit_reasons() -> dict[int, str]:
    # ENTRY_FAILED answers the full exit reason: a VM-entry failure's basic reason with bit 31 set (SDM 26.8).
    failures = {EXIT_REASON_ENTRY_FAILURE | r.value: r.name for r in ExitReason if r.name.startswith("ENTRY_FAILURE")}
    return _names(ExitReason) | failures


#: Each table a filter names values from: value -> name, generated from rtl/arch.
FILTERS: dict[str, dict[int, str]] = {
    "op": _names(Op),
    "status": _names(Status),
    "vm_error": _names(VmError),
    "vector": _names(ExceptionVector),
    "exit_reason": _exit_reasons(),
    "field": {field.encoding: field.name for field in FIELDS},
    "element": {element_id(element.name): element.name for element in ELEMENTS},
}

# Trace flags of the save file (GTKWave's analyzer.h, TraceEntFlagBits): hex or binary display,
# right-justified, the translate filter file, and the blank line that opens or closes a group.
_HEX = 1 << 1
_BIN = 1 << 3
_RJUSTIFY = 1 << 5
_BLANK = 1 << 9
_FILTERED = 1 << 13
_GROUP_BEGIN = 1 << 23
_GROUP_END = 1 << 24


@dataclass(frozen=True)
class Row:
    """One signal of a group: its normalised name, the ``FILTERS`` table naming its values, a display name."""

    name: str
    table: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class Group:
    """A titled group of signals, in display order."""

    title: str
    rows: tuple[Row, ...]


def _ports(signature: wiring.Signature, prefix: str = "", *, skip: Iterable[str] = ()) -> list[str]:
    """The port names of ``signature`` as Amaranth names them in Verilog (``port__rd_id``), after ``prefix``."""
    names = []
    for path, member in signature.members.flatten():
        if member.is_port and path[0] not in skip:
            names.append(prefix + "__".join(path))
    return names


def _rows(scope: str, names: Sequence[str], tables: Mapping[str, str] | None = None) -> list[Row]:
    # GTKWave shows a signal's last name only: one in a block of the scope is shown with its block's name.
    tables = tables or {}
    return [Row(f"{scope}.{name}", tables.get(name), alias=name if "." in name else None) for name in names]


def _innermost(waves: Waves, members: Sequence[str]) -> str | None:
    # A parent re-exposes its blocks' ports (the SoC has req__valid as its unit has): the block is the innermost.
    scopes = waves.scopes_with(members)
    return scopes[-1] if scopes else None


def _unit_groups(waves: Waves, unit: str) -> list[Group]:
    request = _rows(unit, _ports(RequestSignature(), "req__"), {"req__op": "op", "req__index": "field"})
    response = _rows(
        unit,
        _ports(ResponseSignature(), "resp__"),
        {"resp__status": "status", "resp__error": "vm_error", "resp__vector": "vector"},
    )
    response.append(Row(f"{unit}.resp__value", "exit_reason", alias="resp__value (exit reason)"))
    bus = _rows(unit, _ports(WishboneSignature(addr_width=30), "bus__"))
    cache = _rows(
        unit,
        _ports(CachePortSignature(CACHE_ENTRIES), "cache.port__")
        + _ports(TagPortSignature(CACHE_ENTRIES), "cache.tag_port__"),
    )
    # Which client holds the cache port: each client's enables at the arbiter.
    arbiter = f"{unit}.cache_arbiter."
    clients = [
        name[len(unit) + 1 :]
        for enable in ("__rd_en", "__wr_en")
        for name in waves.names
        if name.startswith(arbiter) and name.endswith(enable) and name != f"{arbiter}cache{enable}"
    ]
    cache += _rows(unit, clients)
    state = _rows(
        unit,
        _ports(MachineState().signature, "state."),
        {"state.port__rd_id": "element", "state.port__wr_id": "element"},
    )
    checks = _rows(
        unit,
        [
            *_ports(CheckSignature(CACHE_ENTRIES), "checker.checks__", skip={"controls"}),
            "entry.entry_state",
            "entry.op__start",
            "entry.op__operation.op",
            "entry.op__done",
            "entry.op__outcome.status",
            "entry.op__outcome.error",
            "transitions.transitions_state",
            "transitions.entry__start",
            "transitions.entry__done",
            "transitions.entry__outcome.status",
            *_ports(ExitSignature(), "transitions.exit__", skip={"cause"}),
            "transitions.exit__cause.reason",
            "transitions.non_root",
            "transitions.shutdown",
            "transitions.abort",
        ],
        {
            "checker.checks__error": "vm_error",
            "entry.op__operation.op": "op",
            "entry.op__outcome.status": "status",
            "entry.op__outcome.error": "vm_error",
            "transitions.entry__outcome.status": "status",
            "transitions.exit__status": "status",
            "transitions.exit__value": "exit_reason",
            "transitions.exit__cause.reason": "exit_reason",
        },
    )
    return [
        Group("request", tuple(request)),
        Group("response", tuple(response)),
        Group("region bus", tuple(bus)),
        Group("cache", tuple(cache)),
        Group("machine state", tuple(state)),
        Group("checks and transitions", tuple(checks)),
    ]


def groups(waves: Waves) -> list[Group]:
    """The groups to show for ``waves``, holding only signals it has; a group left empty is dropped."""
    found = []
    core = _innermost(waves, ["trace__pc", "trace__insn"])
    if core is not None:
        names = ["pc", "ir", "fsm_state", "fetching", *_ports(TraceSignature(), "trace__")]
        found.append(Group("core", tuple(_rows(core, names, {"trace__vmx_status": "status"}))))
    unit = _innermost(waves, ["req__valid", "resp__valid", "bus__cyc"])
    if unit is not None:
        found += _unit_groups(waves, unit)
    uart = _innermost(waves, ["tx", "rx", "sent_data"])
    if uart is not None:
        found.append(Group("UART", tuple(_rows(uart, _ports(Uart().signature)))))
    finisher = _innermost(waves, ["done", "code", "failed"])
    if finisher is not None:
        found.append(Group("finisher", tuple(_rows(finisher, _ports(Finisher().signature)))))
    kept = []
    for group in found:
        rows = tuple(row for row in group.rows if waves.has(row.name))
        if rows:
            kept.append(Group(group.title, rows))
    return kept


def gtkwave_name(waves: Waves, name: str) -> str:
    """What GTKWave calls signal ``name``: the declared name, with ``[msb:lsb]`` for a vector."""
    raw, width = waves.declared(name)
    return f"{raw}[{width - 1}:0]" if width > 1 else raw


def _digits(width: int) -> int:
    return (width + 3) // 4


def filter_lines(table: str, width: int) -> list[str]:
    """The lines of the translate filter naming ``FILTERS[table]`` on a ``width``-bit signal shown in hex
    (the same for every width with as many hex digits): each value the digits can show, then its name."""
    digits = _digits(width)
    header = f"# {table} names from vmxu.rtl.arch, for a value GTKWave shows as {digits} hex digits"
    values = sorted(FILTERS[table].items())
    return [header, *(f"{value:0{digits}X} {name}" for value, name in values if value >> 4 * digits == 0)]


def _filter_file(directory: Path, table: str, width: int) -> Path:
    return directory / f"{table}-{_digits(width)}hex.txt"


#: At zoom z GTKWave draws ``_PIXELS_PER_UNIT * 2**z`` pixels per time unit of the waveform (GTKWave 3.3).
_PIXELS_PER_UNIT = 200
#: The view a save file opens on: this many clock cycles across about this many pixels of the wave pane.
VIEW_CYCLES = 32
_VIEW_PIXELS = 850


def _view(waves: Waves) -> list[str]:
    """The save file's start time and zoom: ``VIEW_CYCLES`` clock cycles from just before the unit's first
    request (or from 0), so that GTKWave opens on transactions rather than on picoseconds."""
    unit = _innermost(waves, ["req__valid", "resp__valid", "bus__cyc"])
    if unit is None or not waves.has(f"{unit}.clk"):
        return []
    edges = waves.rising_edges(f"{unit}.clk")
    if len(edges) < 2:
        return []
    period = edges[1] - edges[0]
    (valid,) = waves.traces([f"{unit}.req__valid"])
    first = next((time for time, value in zip(valid.times, valid.values, strict=True) if value == 1), None)
    start = max(0, first - 2 * period) if first is not None else 0
    zoom = -math.log2(_PIXELS_PER_UNIT * VIEW_CYCLES * period / _VIEW_PIXELS)
    return [f"[timestart] {start}", f"*{zoom:.6f} -1"]


def write_gtkw(waves: Waves, out: Path | str) -> list[Path]:
    """Write the save file ``out`` and its filter files (in ``out`` with suffix ``.filters``); return every path
    written, the save file first. WaveError when the waveform holds neither a VMX unit nor an SoC."""
    out = Path(out).absolute()
    shown = groups(waves)
    if not shown:
        raise WaveError(f"{waves.path} has no VMX unit or SoC signals to show (no scope with req__valid, resp__valid)")
    directory = out.with_suffix(".filters")
    filters: dict[Path, list[str]] = {}
    lines = [
        f"[*] vmxu: {waves.path.name} grouped, with VMX encodings by name (filters in {directory.name}/)",
        f'[dumpfile] "{waves.path.absolute()}"',
        f'[savefile] "{out}"',
        "[size] 1400 900",
        "[signals_width] 300",
        *_view(waves),
    ]
    for group in shown:
        lines += [f"@{_GROUP_BEGIN | _BLANK:x}", f"-{group.title}"]
        for row in group.rows:
            width = waves.declared(row.name)[1]
            flags = _RJUSTIFY | (_HEX if width > 1 else _BIN)
            if row.table is None:
                lines.append(f"@{flags:x}")
            else:
                path = _filter_file(directory, row.table, width)
                filters.setdefault(path, filter_lines(row.table, width))
                lines += [f"@{flags | _FILTERED:x}", f"^{list(filters).index(path) + 1} {path}"]
            name = gtkwave_name(waves, row.name)
            lines.append(f"+{{{row.alias}}} {name}" if row.alias else name)
        lines += [f"@{_GROUP_END | _BLANK:x}", f"-{group.title}"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    directory.mkdir(exist_ok=True)
    for path, text in filters.items():
        path.write_text("\n".join(text) + "\n")
    return [out, *filters]
