"""Reading a waveform: its signals by name, and their values at each rising clock edge.

Two readers stand behind one ``Waves`` class: ``vcdvcd`` for VCD files (the
project's VCD library, pure Python) and ``pywellen`` (a Rust reader of VCD,
FST and GHW) for FST and for VCDs larger than ``VCDVCD_LIMIT`` bytes, where
pure Python would be slow. Names are normalised so that every simulator's
waveform of one design reads alike: Icarus escapes names such as
``\\req__op$31`` and Verilator repeats the top ports in a ``$rootio`` scope;
neither survives here (``vmx_unit.req__op$31``).

Values are integers, or ``None`` where a bit is x or z.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Waves", "WaveError", "Trace", "READERS", "VCDVCD_LIMIT"]

#: VCDs up to this size are read with vcdvcd; larger ones and FSTs with pywellen.
VCDVCD_LIMIT = 8 << 20
READERS = ("auto", "vcdvcd", "pywellen")
_RANGE = re.compile(r"\[\d+(?::\d+)?\]$")


class WaveError(ValueError):
    """The file is not a waveform this tool reads, or lacks the signals asked for."""


def _normal(name: str) -> str:
    parts = [part.strip().lstrip("\\") for part in name.split(".")]
    return ".".join(parts)


def _integer(value: object) -> int | None:
    if isinstance(value, int):
        return value
    text = str(value).lower()
    if not text or any(c in text for c in "xzuwlh-"):
        return None
    return int(text, 2)


@dataclass(frozen=True)
class Trace:
    """One signal's changes: ``times`` ascending and the value from each time on."""

    name: str
    width: int
    times: Sequence[int]
    values: Sequence[int | None]

    def at(self, time: int) -> int | None:
        """The value just before ``time`` (what a register clocked at ``time`` samples)."""
        i = bisect.bisect_left(self.times, time) - 1
        return self.values[i] if i >= 0 else None


class Waves:
    """A VCD or FST file's signals, by normalised hierarchical name."""

    def __init__(self, path: Path | str, *, reader: str = "auto"):
        self.path = Path(path)
        if reader not in READERS:
            raise WaveError(f"unknown reader {reader!r}: choose one of {', '.join(READERS)}")
        if not self.path.is_file():
            raise WaveError(f"no such waveform: {self.path}")
        with open(self.path, "rb") as f:
            head = f.read(64)
        is_vcd = head.lstrip().startswith(b"$")
        if reader == "auto":
            reader = "vcdvcd" if is_vcd and self.path.stat().st_size <= VCDVCD_LIMIT else "pywellen"
        if reader == "vcdvcd" and not is_vcd:
            raise WaveError(f"{self.path} is not a VCD file: vcdvcd reads only VCD (use --reader pywellen)")
        self.reader = reader
        self._traces: dict[str, Trace] = {}
        try:
            self._open_vcdvcd() if reader == "vcdvcd" else self._open_pywellen()
        except WaveError:
            raise
        except Exception as error:  # the readers raise their own types on a damaged file
            raise WaveError(f"{self.path} is not a readable VCD or FST waveform: {error}") from error

    # -- the two readers -------------------------------------------------------------------------------

    def _open_vcdvcd(self) -> None:
        import vcdvcd

        vcd = vcdvcd.VCDVCD(str(self.path), store_tvs=False, only_sigs=True)
        self._vcd_path = str(self.path)
        self._vcd_ids = {}
        for reference, ident in vcd.references_to_ids.items():
            name = _normal(_RANGE.sub("", reference))
            if name.startswith("$rootio.") or name in self._vcd_ids:
                continue
            self._vcd_ids[name] = (reference, ident)
        self.names = sorted(self._vcd_ids)

    def _open_pywellen(self) -> None:
        import pywellen

        self._wellen = pywellen.Waveform(str(self.path))
        self._vars = {}
        for var in self._wellen.all_vars():
            name = _normal(var.full_name)
            if name.startswith("$rootio.") or name in self._vars:
                continue
            self._vars[name] = var
        self.names = sorted(self._vars)

    def _load(self, names: Iterable[str]) -> None:
        missing = [n for n in names if n not in self._traces]
        if not missing:
            return
        if self.reader == "vcdvcd":
            import vcdvcd

            wanted = {self._vcd_ids[n][0]: n for n in missing}
            vcd = vcdvcd.VCDVCD(self._vcd_path, signals=list(wanted), store_tvs=True)
            for reference, name in wanted.items():
                signal = vcd[reference]
                times = [t for t, _ in signal.tv]
                self._traces[name] = Trace(name, int(signal.size), times, [_integer(v) for _, v in signal.tv])
        else:
            for name in missing:
                var = self._vars[name]
                changes = var.tv
                self._traces[name] = Trace(
                    name, var.bitwidth, [t for t, _ in changes], [_integer(v) for _, v in changes]
                )

    # -- what the decoders use -------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return name in (self._vcd_ids if self.reader == "vcdvcd" else self._vars)

    def declared(self, name: str) -> tuple[str, int]:
        """The raw name of ``name`` as the file declares it (Icarus' escapes kept, without a bit range)
        and its width in bits, read from the declarations only (what a GTKWave save file needs)."""
        if self.reader == "vcdvcd":
            reference = self._vcd_ids[name][0]
            bits = _RANGE.search(reference)
            if bits is None:
                return reference, 1
            msb, _, lsb = bits.group()[1:-1].partition(":")
            return reference[: bits.start()], abs(int(msb) - int(lsb or msb)) + 1
        var = self._vars[name]
        return var.full_name, var.bitwidth

    def traces(self, names: Sequence[str]) -> list[Trace]:
        """The changes of ``names`` (normalised full names); WaveError names what is missing."""
        missing = [n for n in names if not self.has(n)]
        if missing:
            raise WaveError(f"{self.path} has no signal {', '.join(missing[:4])}")
        self._load(names)
        return [self._traces[n] for n in names]

    def scopes_with(self, members: Sequence[str]) -> list[str]:
        """Every scope that holds all of ``members`` (relative names), outermost first."""
        first = members[0]
        found = []
        for name in self.names:
            if name == first or name.endswith("." + first):
                scope = name[: -len(first)].rstrip(".")
                if all(self.has(f"{scope}.{m}" if scope else m) for m in members[1:]):
                    found.append(scope)
        return sorted(found, key=lambda s: (s.count("."), s))

    def rising_edges(self, clock: str) -> list[int]:
        """The times at which ``clock`` rises."""
        (trace,) = self.traces([clock])
        edges = []
        previous = None
        for time, value in zip(trace.times, trace.values, strict=True):
            if value == 1 and previous == 0:
                edges.append(time)
            previous = value
        return edges

    def sample(self, names: Sequence[str], edges: Sequence[int]) -> list[list[int | None]]:
        """Each signal's value just before each edge: one row per signal, one column per edge."""
        rows = []
        for trace in self.traces(names):
            row = []
            i, n = 0, len(trace.times)
            value = None
            for edge in edges:
                while i < n and trace.times[i] < edge:
                    value = trace.values[i]
                    i += 1
                row.append(value)
            rows.append(row)
        return rows
