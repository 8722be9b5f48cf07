"""The result of one operation on the unit's port.

# Ref: Intel SDM vol. 3C, 30.2 "Conventions" (VMsucceed, VMfailInvalid,
# VMfailValid); docs/semantics.md "The unit's port".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vmxu.rtl.arch.ops import Status

__all__ = ["Outcome"]


@dataclass(frozen=True)
class Outcome:
    """What the unit answers: ``status``, and ``error`` / ``vector`` / ``value`` where they apply.

    ``error`` is the VM-instruction error (a ``VmError``) of a ``FAIL_VALID``;
    ``vector`` the exception vector of a ``FAULT``; ``value`` what VMREAD,
    VMPTRST, RDMSR and GET produce. ``cause`` names the rule that decided the
    outcome (with its SDM section) for people reading a failure; it is not part
    of the port and equality ignores it.
    """

    status: Status
    error: int = 0
    vector: int = 0
    value: int | None = None
    cause: str = field(default="", compare=False)

    def __str__(self) -> str:
        parts = [self.status.name]
        if self.status == Status.FAIL_VALID:
            parts.append(f"error {int(self.error)}")
        if self.status == Status.FAULT:
            parts.append(f"vector {int(self.vector)}")
        if self.value is not None:
            parts.append(f"value {self.value:#x}")
        if self.cause:
            parts.append(f"({self.cause})")
        return " ".join(parts)
