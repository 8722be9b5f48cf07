"""A timing diagram (WaveJSON, https://wavedrom.com) of the VMX unit's port from a recorded waveform.

``wavejson`` samples the unit's signals just before each rising clock edge from
cycle ``start`` to ``end`` (the decoder's cycle numbers, so ``vmxu wave
--text`` tells which cycles to draw) and writes one lane per signal: 1-bit
signals as levels, buses as values, named from rtl/arch where a table names
them (op on ``req.op``, status on ``resp.status``). The README's pictures are
drawn this way from real simulations (docs/timing_diagram.py), so they cannot
drift from the RTL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vmxu.rtl.arch.ops import Op, Status

from .reader import WaveError, Waves

__all__ = ["DEFAULT_LANES", "wavejson", "render_svg"]

#: Lanes drawn by default: (label, member of the unit's scope).
DEFAULT_LANES = (
    ("req.valid", "req__valid"),
    ("req.ready", "req__ready"),
    ("req.op", "req__op"),
    ("resp.valid", "resp__valid"),
    ("resp.ready", "resp__ready"),
    ("resp.status", "resp__status"),
    ("resp.value", "resp__value"),
    ("bus.cyc", "bus__cyc"),
    ("bus.stb", "bus__stb"),
    ("bus.we", "bus__we"),
    ("bus.adr", "bus__adr"),
    ("bus.ack", "bus__ack"),
)
_NAMES = {"req__op": {op.value: op.name for op in Op}, "resp__status": {s.value: s.name for s in Status}}
#: The widest diagram drawn (wavedrom's pictures stop being readable long before).
MAX_CYCLES = 400


def _lane(label: str, values: Sequence[int | None], width: int, names: dict[int, str] | None) -> dict[str, Any]:
    wave, data = [], []
    previous: object = object()
    for value in values:
        if value == previous:
            wave.append(".")
            continue
        previous = value
        if value is None:
            wave.append("x")
        elif width == 1:
            wave.append(str(value))
        else:
            wave.append("=")
            data.append(names.get(value, hex(value)) if names else hex(value))
    lane: dict[str, Any] = {"name": label, "wave": "".join(wave)}
    if data:
        lane["data"] = data
    return lane


def wavejson(
    waves: Waves, scope: str, start: int, end: int, lanes: Sequence[tuple[str, str]] = DEFAULT_LANES
) -> dict[str, Any]:
    """The WaveJSON of cycles ``start`` to ``end`` (inclusive) of the unit in ``scope``."""
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
    names = [f"{scope}.{member}" for _, member in lanes]
    traces = waves.traces(names)
    rows = waves.sample(names, window)
    signal = [{"name": "clk", "wave": "p" + "." * (len(window) - 1)}]
    for (label, member), trace, values in zip(lanes, traces, rows, strict=True):
        signal.append(_lane(label, values, trace.width, _NAMES.get(member)))
    return {
        "signal": signal,
        "head": {"text": f"{waves.path.name}: cycles {start}-{end}", "tick": start},
        "config": {"hscale": 1},
    }


def render_svg(diagram: dict[str, Any], path) -> None:  # noqa: ANN001 - a path
    """Draw the diagram as SVG with the wavedrom package (``pip install -e '.[docs]'``)."""
    try:
        import wavedrom
    except ImportError:
        raise WaveError("drawing SVG needs the wavedrom package: .venv/bin/pip install -e '.[docs]'") from None
    import json

    wavedrom.render(json.dumps(diagram)).saveas(str(path))
