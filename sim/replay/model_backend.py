"""The model backend of ``vmxu replay``: scripts run on the reference model and its memory.

``write`` and ``read`` go to ``PhysicalMemory``; every other operation becomes
a request on the model's port through ``to_request`` (the same translation the
RTL backends use).
"""

from __future__ import annotations

from typing import Any

from vmxu.rtl.arch.layout import CACHE_ENTRIES
from vmxu.rtl.arch.ops import Status

from ..model.memory import RAM_BYTES, PhysicalMemory
from ..model.outcome import Outcome
from ..model.vmx import VmxModel
from .request import is_memory_op, to_request
from .result import format_outcome
from .runner import run
from .script import Operation, parse_script

__all__ = ["ModelPlatform", "run_model"]


class ModelPlatform:
    """A ``Platform`` made of a ``VmxModel`` and its ``PhysicalMemory``."""

    def __init__(
        self, ram_bytes: int = RAM_BYTES, cache_entries: int = CACHE_ENTRIES, *, dual_monitor: bool | None = None
    ) -> None:
        self.memory = PhysicalMemory(ram_bytes)
        self.model = VmxModel(self.memory, cache_entries, dual_monitor=dual_monitor)

    def perform(self, operation: Operation) -> Outcome:
        """The outcome of one operation."""
        args = operation.args
        if operation.op == "write":
            self.memory.write(int(args["addr"]), int(args["size"]), int(args["value"]))
            return Outcome(Status.OK)
        if operation.op == "read":
            return Outcome(Status.OK, value=self.memory.read(int(args["addr"]), int(args["size"])))
        assert not is_memory_op(operation)
        return self.model.perform(to_request(operation))

    def execute(self, operation: Operation) -> dict[str, Any]:
        return format_outcome(operation, self.perform(operation))


def run_model(text: str, ram_bytes: int = RAM_BYTES, *, dual_monitor: bool | None = None) -> list[dict[str, Any]]:
    """Parse a script and replay it on a fresh model (``dual_monitor``: whether it reports and carries out the
    dual-monitor treatment of SMIs and SMM; by default it does, as the unit with guests: docs/smm.md)."""
    return run(parse_script(text, ram_bytes), ModelPlatform(ram_bytes, dual_monitor=dual_monitor))
