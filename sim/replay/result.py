"""Results of a replay: one JSON object per operation, in order.

# Ref: shared/vmx/REPLAY.md "Statuses".

A result is ``{"line": N, ...the line's keys as written..., "status": ...}``
plus ``"value"`` (a lower-case hex string) where the operation produces one,
``"error"`` for ``fail_valid``, ``"vector"`` for ``fault``, ``"reason"`` for
``exited`` (the basic exit reason) and ``entry_failed`` (the full 32-bit exit
reason), ``"event"`` (and ``"error_code"``) for an ``entered`` that injects,
``"abort"`` for ``shutdown`` and ``"why"`` for ``rejected``; these are JSON
numbers. Every backend formats with these functions, so the model's and
the RTL's lines compare as plain dicts.
"""

from __future__ import annotations

import json
from typing import Any

from vmxu.rtl.arch.ops import Status

from ..model.outcome import Outcome
from .script import Operation, Rejected

__all__ = ["STATUS_NAMES", "ENTRY_NOT_IMPLEMENTED_WHY", "format_outcome", "format_rejected", "result_line"]

STATUS_NAMES: dict[Status, str] = {
    Status.OK: "ok",
    Status.SUCCEED: "succeed",
    Status.FAIL_INVALID: "fail_invalid",
    Status.FAIL_VALID: "fail_valid",
    Status.FAULT: "fault",
    Status.ENTERED: "entered",
    Status.ENTRY_FAILED: "entry_failed",
    Status.EXITED: "exited",
    Status.SHUTDOWN: "shutdown",
}

ENTRY_NOT_IMPLEMENTED_WHY = "VM entry is not implemented yet"


def _echo(line: int, echo: dict[str, Any] | None) -> dict[str, Any]:
    result: dict[str, Any] = {"line": line}
    for key, value in (echo or {}).items():
        if key != "line":
            result[key] = value
    return result


def format_outcome(operation: Operation, outcome: Outcome) -> dict[str, Any]:
    """The result object of an operation that ran."""
    result = _echo(operation.line, operation.echo)
    if outcome.status == Status.ENTRY_NOT_IMPLEMENTED:
        result["status"] = "rejected"
        result["why"] = ENTRY_NOT_IMPLEMENTED_WHY
        return result
    result["status"] = STATUS_NAMES[outcome.status]
    if outcome.value is not None:
        result["value"] = f"{outcome.value:#x}"
    if outcome.status == Status.FAIL_VALID:
        result["error"] = int(outcome.error)
    if outcome.status == Status.FAULT:
        result["vector"] = int(outcome.vector)
    for key in ("reason", "event", "error_code", "abort"):
        if getattr(outcome, key) is not None:
            result[key] = int(getattr(outcome, key))
    if outcome.pending:
        result["pending"] = True
    return result


def format_rejected(rejected: Rejected) -> dict[str, Any]:
    """The result object of a malformed line."""
    result = _echo(rejected.line, rejected.echo)
    result["status"] = "rejected"
    result["why"] = rejected.why
    return result


def result_line(result: dict[str, Any]) -> str:
    """One result as a line of JSON."""
    return json.dumps(result)
