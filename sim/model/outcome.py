"""The result of one operation on the unit's port, and the changes it made.

# Ref: Intel SDM vol. 3C, 30.2 "Conventions" (VMsucceed, VMfailInvalid,
# VMfailValid); shared/vmx/REPLAY.md "Statuses"; docs/semantics.md "The unit's port".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmxu.rtl.arch.ops import Op, Status

__all__ = ["Outcome", "Change", "VALUE_OPS", "outcome_from_response"]

#: Operations whose response carries a value (when they succeed).
VALUE_OPS = frozenset({Op.VMREAD, Op.VMPTRST, Op.RDMSR, Op.GET, Op.RDTSC, Op.IN})


@dataclass(frozen=True)
class Change:
    """One change an operation made, as a golden model reports it.

    ``kind`` is "element" (``key`` an element name), "field" (``key`` a VMCS
    field name of the current VMCS) or "memory" (``key`` a word address);
    ``value`` the new value.
    """

    kind: str
    key: str | int
    value: int

    def __str__(self) -> str:
        key = f"{self.key:#x}" if isinstance(self.key, int) else self.key
        return f"{self.kind} {key} := {self.value:#x}"


@dataclass(frozen=True)
class Outcome:
    """What the unit answers: ``status``, and the values that go with it.

    ``error``: the VM-instruction error (a ``VmError``) of a ``FAIL_VALID``;
    ``vector``: the exception vector of a ``FAULT``; ``value``: what VMREAD,
    VMPTRST, RDMSR, GET, RDTSC and IN produce; ``reason``: the basic exit
    reason of ``EXITED``, the full 32-bit exit reason of ``ENTRY_FAILED``;
    ``event`` and ``error_code``: the interruption information (and the error
    code, where one is delivered) an ``ENTERED`` injects; ``abort``: the
    VMX-abort indicator of ``SHUTDOWN`` (0: RSM found an invalid saved state); ``pending``: a
    ``smi`` held pending in SMM. ``cause`` names the rule that decided
    the outcome (with its SDM section) and ``changes`` lists what the operation
    changed, in order; neither is part of the port, and equality ignores them.
    """

    status: Status
    error: int = 0
    vector: int = 0
    value: int | None = None
    reason: int | None = None
    event: int | None = None
    error_code: int | None = None
    abort: int | None = None
    #: A ``smi`` held pending in SMM (REPLAY.md "SMM": ``"pending": true``).
    pending: bool | None = None
    cause: str = field(default="", compare=False)
    changes: tuple[Change, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        parts = [self.status.name]
        if self.status == Status.FAIL_VALID:
            parts.append(f"error {int(self.error)}")
        if self.status == Status.FAULT:
            parts.append(f"vector {int(self.vector)}")
        for name in ("value", "reason", "event", "error_code", "abort"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name} {value:#x}")
        if self.pending:
            parts.append("pending")
        if self.cause:
            parts.append(f"({self.cause})")
        return " ".join(parts)


def outcome_from_response(op: Op, status: Status, error: int, vector: int, value: int) -> Outcome:
    """The outcome a response of the unit's port carries for ``op``: its value means what
    rtl/vmx/port.py says for each status (the benches and the wave decoder read responses with this)."""
    has_value = op in VALUE_OPS and status in (Status.SUCCEED, Status.OK)
    keys = {}
    if status in (Status.EXITED, Status.ENTRY_FAILED):
        keys["reason"] = value & 0xFFFF_FFFF
    elif status == Status.SHUTDOWN:
        keys["abort"] = value & 0x7
    elif op == Op.SMI and status == Status.OK and value & 1:
        keys["pending"] = True
    elif status == Status.ENTERED and value >> 31 & 1:
        keys["event"] = value & 0xFFFF_FFFF
        if value >> 11 & 1:
            keys["error_code"] = value >> 32
    return Outcome(
        status,
        error=error if status == Status.FAIL_VALID else 0,
        vector=vector if status == Status.FAULT else 0,
        value=value if has_value else None,
        **keys,
    )
