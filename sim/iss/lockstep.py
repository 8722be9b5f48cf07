"""Lockstep checking: the ISS follows the RTL core record by record and says where they part.

# Ref: docs/cpu.md "The retired-instruction trace"; rtl/cpu/ports.py TraceSignature.

A testbench reads a record from the RTL core's trace port, hands it to
``LockstepChecker.check``, which steps an ``Iss(lockstep=True)`` with
``Override.from_rtl(record)`` (the interrupt the RTL took, the value of a read
only the RTL can know) and compares the two records field by field. The first
difference raises ``LockstepMismatch`` with both records and the last few
agreeing ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from .core import Iss, Override
from .trace import Retired, differences, format_retired

__all__ = ["LockstepChecker", "LockstepMismatch"]


class LockstepMismatch(AssertionError):
    """The RTL's record and the ISS's differ."""

    def __init__(self, index: int, rtl: Retired, iss: Retired, diffs: list[str], history: list[Retired]) -> None:
        lines = [f"record {index}: the RTL and the ISS differ ({'; '.join(diffs)})"]
        lines += ["  agreed: " + format_retired(r) for r in history]
        lines += ["  rtl:    " + format_retired(rtl), "  iss:    " + format_retired(iss)]
        super().__init__("\n".join(lines))
        self.index = index
        self.rtl = rtl
        self.iss = iss
        self.diffs = diffs


class LockstepChecker:
    """Steps ``iss`` (which must have ``lockstep=True``) once per RTL record and compares.

    Members
    -------
    iss : Iss
    checked : int
        Records that agreed so far.
    """

    def __init__(self, iss: Iss, history: int = 8) -> None:
        if not iss.lockstep:
            raise ValueError("the ISS must be built with lockstep=True (interrupts and device reads come from the RTL)")
        self.iss = iss
        self.checked = 0
        self._history: deque[Retired] = deque(maxlen=history)

    def check(self, rtl: Retired | Mapping[str, int]) -> Retired:
        """Step the ISS as the RTL did; its record, or LockstepMismatch."""
        if not isinstance(rtl, Retired):
            rtl = Retired.from_port(rtl)
        iss = self.iss.step(Override.from_rtl(rtl))
        diffs = differences(rtl, iss)
        if diffs:
            raise LockstepMismatch(self.checked, rtl, iss, diffs, list(self._history))
        self._history.append(iss)
        self.checked += 1
        return iss
