"""A timing diagram (WaveJSON, https://wavedrom.com) of the VMX unit's port from a recorded waveform.

``wavejson`` samples the unit's signals just before each rising clock edge from
cycle ``start`` to ``end`` (the decoder's cycle numbers, so ``vmxu wave
--text`` tells which cycles to draw) and writes one lane per signal: 1-bit
signals as levels, buses as values, named from rtl/arch where a table names
them (op on ``req.op``, status on ``resp.status``, element names on the machine
state's ports: the tables of the GTKWave filters, sim/waves/gtkwave.py). The README's pictures are
drawn this way from real simulations (docs/timing_diagram.py), so they cannot
drift from the RTL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .decode import decode
from .gtkwave import FILTERS, groups
from .reader import WaveError, Waves

__all__ = ["Lane", "DEFAULT_LANES", "signal_lane", "wavejson", "render_svg"]


@dataclass(frozen=True)
class Lane:
    """One lane: its ``label``, the unit's ``member`` it draws, the ``valid`` member outside of which the
    value means nothing (drawn as x), the ``group`` it sits in, and how its values are ``named``."""

    label: str
    member: str
    valid: str | None = None
    group: str = ""
    named: Callable[[int], str] | None = None


def _named(table: str) -> Callable[[int], str]:
    names = FILTERS[table]
    return lambda value: names.get(value, hex(value))


def signal_lane(waves: Waves, scope: str, member: str) -> Lane:
    """A lane for one more signal of the unit, its values named as the GTKWave save file names them; a
    port's ``rd_*``/``wr_*`` member is drawn only while the port's ``rd_en``/``wr_en`` is high."""
    tables = [row.table for group in groups(waves) for row in group.rows if row.name == f"{scope}.{member}"]
    table = next((t for t in tables if t is not None), None)
    # A port's address and data mean something only while its enable is high: ``x`` elsewhere.
    port, _, part = member.rpartition("__")
    kind = part.split("_")[0]
    enable = f"{port}__{kind}_en"
    valid = enable if kind in ("rd", "wr") and member != enable and waves.has(f"{scope}.{enable}") else None
    return Lane(member, member, valid, "unit", _named(table) if table else None)


#: Lanes drawn by default: the unit's port and its memory bus.
DEFAULT_LANES = (
    Lane("req.valid", "req__valid", group="request"),
    Lane("req.ready", "req__ready", group="request"),
    Lane("req.op", "req__op", "req__valid", "request", _named("op")),
    Lane("resp.valid", "resp__valid", group="response"),
    Lane("resp.ready", "resp__ready", group="response"),
    Lane("resp.status", "resp__status", "resp__valid", "response", _named("status")),
    Lane("resp.value", "resp__value", "resp__valid", "response"),
    Lane("bus.cyc", "bus__cyc", group="Wishbone"),
    Lane("bus.stb", "bus__stb", group="Wishbone"),
    Lane("bus.adr", "bus__adr", "bus__cyc", "Wishbone", lambda word: f"{4 * word:#x}"),
    Lane("bus.ack", "bus__ack", group="Wishbone"),
)
#: The widest diagram drawn (wavedrom's pictures stop being readable long before).
MAX_CYCLES = 400


def _wave(values: Sequence[int | None], width: int, named: Callable[[int], str] | None) -> dict[str, Any]:
    wave, data = [], []
    previous: object = object()
    for value in values:
        if value == previous:
            wave.append(".")
            continue
        previous = value
        if value is None:
            wave.append("x")
        elif width == 1 and named is None:
            wave.append(str(value))
        else:
            wave.append("=")
            data.append(named(value) if named else hex(value))
    return {"wave": "".join(wave), **({"data": data} if data else {})}


def wavejson(
    waves: Waves,
    scope: str,
    start: int,
    end: int,
    lanes: Sequence[Lane] = DEFAULT_LANES,
    *,
    title: str | None = None,
) -> dict[str, Any]:
    """The WaveJSON of cycles ``start`` to ``end`` (inclusive) of the unit in ``scope``: one lane per
    ``Lane``, grouped, and an arrow from each request accepted in the window to its response, with
    its latency."""
    if not 0 <= start <= end:
        raise WaveError(f"--from {start} --to {end}: give 0 <= FROM <= TO")
    if end - start + 1 > MAX_CYCLES:
        raise WaveError(f"--from {start} --to {end} is {end - start + 1} cycles; draw at most {MAX_CYCLES}")
    edges = waves.rising_edges(f"{scope}.clk")
    (reset,) = waves.sample([f"{scope}.rst"], edges)
    first = next((i for i, r in enumerate(reset) if r == 0), None)
    if first is None or first + end >= len(edges):
        last = -1 if first is None else len(edges) - first - 1
        raise WaveError(f"{waves.path} ends at cycle {last}; --to {end} is past it")
    window = edges[first + start : first + end + 1]
    members = list(dict.fromkeys([lane.member for lane in lanes] + [lane.valid for lane in lanes if lane.valid]))
    names = [f"{scope}.{member}" for member in members]
    widths = {member: trace.width for member, trace in zip(members, waves.traces(names), strict=True)}
    rows = dict(zip(members, waves.sample(names, window), strict=True))
    drawn: dict[str, list] = {}
    by_member = {}
    for lane in lanes:
        values = rows[lane.member]
        if lane.valid is not None:
            values = [v if ok else None for v, ok in zip(values, rows[lane.valid], strict=True)]
        entry = {"name": lane.label, **_wave(values, widths[lane.member], lane.named)}
        by_member.setdefault(lane.member, entry)
        drawn.setdefault(lane.group, []).append(entry)
    arrows = _latency_arrows(decode(waves, scope), start, end, by_member)
    signal: list[Any] = [{"name": "clk", "wave": "p" + "." * (len(window) - 1)}]
    signal += [[group, *entries] if group else entries[0] for group, entries in drawn.items()]
    return {
        "signal": signal,
        "edge": arrows,
        "head": {"text": title or f"{waves.path.name}: cycles {start}-{end}", "tick": start},
        "foot": {"text": "sampled at each rising clock edge of the simulated RTL; latency from acceptance to response"},
        "config": {"hscale": 2 if len(window) <= 100 else 1},
    }


def _latency_arrows(transactions, start: int, end: int, lanes: dict[str, dict]) -> list[str]:  # noqa: ANN001
    """Nodes on req.valid and resp.valid at each request's acceptance and response, and arrows between them."""
    if "req__valid" not in lanes or "resp__valid" not in lanes:
        return []
    width = end - start + 1
    accepted, answered = ["."] * width, ["."] * width
    arrows = []
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    for t in transactions:
        if t.latency is None or not (start <= t.cycle and t.cycle + t.latency <= end):
            continue
        a, b = next(letters, None), next(letters, None)
        if b is None:
            break
        accepted[t.cycle - start], answered[t.cycle + t.latency - start] = a, b
        arrows.append(f"{a}~>{b} {t.request.op.name}: {t.latency} cycles")
    lanes["req__valid"]["node"], lanes["resp__valid"]["node"] = "".join(accepted), "".join(answered)
    return arrows


def render_svg(diagram: dict[str, Any], path) -> None:  # noqa: ANN001 - a path
    """Draw the diagram as SVG with the wavedrom package (``pip install -e '.[docs]'``)."""
    try:
        import wavedrom
    except ImportError:
        raise WaveError("drawing SVG needs the wavedrom package: .venv/bin/pip install -e '.[docs]'") from None
    import json

    wavedrom.render(json.dumps(diagram)).saveas(str(path))
