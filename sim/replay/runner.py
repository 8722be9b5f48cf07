"""Backend-neutral replay: run parsed operations on a platform, compare two runs.

A ``Platform`` executes one well-formed operation and returns its result
object (see result.py); ``run`` feeds it a parsed script and formats the
rejected lines itself, so a backend never sees a malformed line. ``compare``
finds the first line where two runs (the model's and an RTL simulator's)
differ, for ``vmxu replay --check``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .result import format_rejected, result_line
from .script import Operation, Rejected

__all__ = ["Platform", "run", "Difference", "compare"]


class Platform(Protocol):
    """Something that replays operations: the model, or an RTL simulation."""

    def execute(self, operation: Operation) -> dict[str, Any]:
        """Perform one operation and return its result object."""
        ...


def run(items: Iterable[Operation | Rejected], platform: Platform) -> list[dict[str, Any]]:
    """The result of every item, in order; rejected lines never reach the platform."""
    return [format_rejected(item) if isinstance(item, Rejected) else platform.execute(item) for item in items]


@dataclass(frozen=True)
class Difference:
    """The first result that differs: its script line and both objects (None where one run has no such result)."""

    line: int | None
    model: dict[str, Any] | None
    rtl: dict[str, Any] | None

    def describe(self) -> str:
        def show(result: dict[str, Any] | None) -> str:
            return "(no result)" if result is None else result_line(result)

        where = "end of results" if self.line is None else f"line {self.line}"
        return f"first difference at {where}:\n  model: {show(self.model)}\n  rtl:   {show(self.rtl)}"


def compare(model_lines: Sequence[dict[str, Any]], rtl_lines: Sequence[dict[str, Any]]) -> Difference | None:
    """The first position where the two runs differ, or None when they agree everywhere."""
    for position in range(max(len(model_lines), len(rtl_lines))):
        model = model_lines[position] if position < len(model_lines) else None
        rtl = rtl_lines[position] if position < len(rtl_lines) else None
        if model != rtl:
            line = (model or rtl or {}).get("line")
            return Difference(line, model, rtl)
    return None
