"""VMX non-root operation of the ISS's core: what a VM entry and a VM exit do to the core's own state.

# Ref: docs/guests.md (the contract the RTL core follows too); DESIGN.md "The
# softcore and its VMX extension" (pc and sp are RIP and RSP, mtvec is IDTR.base,
# the trap registers without a VMCS field are banked per mode); rtl/arch/isa.py
# (GUEST_EXCEPTIONS, INTERRUPT_VECTORS, BANKED_CSRS, injected_cause).

The VMX unit (the model) keeps every element the VMCS knows. The core keeps
three of them in its own registers: RIP (pc), RSP (sp, x2) and IDTR.base
(mtvec). Before a request that may cause a VM exit, the core writes them into
the unit's machine state (``save``); after a request that moved the processor
between the host and a guest (an entry, an exit, a failed entry), it reads them
back and swaps its banked trap registers (``move``). The other general-purpose
registers are the software's, as on x86: a VMM saves a guest's itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmxu.rtl.arch.isa import BANKED_CSRS, injected_cause
from vmxu.rtl.arch.ops import Status

if TYPE_CHECKING:
    from vmxu.sim.model.outcome import Outcome

    from .core import Iss

__all__ = ["Guests", "TRANSITIONS"]

_M32 = 0xFFFF_FFFF
#: Outcomes after which the core continues somewhere else: in the guest, or at HOST_RIP.
TRANSITIONS = frozenset({Status.ENTERED, Status.EXITED, Status.ENTRY_FAILED})
_BANKED = tuple(csr.name.lower() for csr in BANKED_CSRS)


class Guests:
    """The core's side of VM entries and exits: one bank of trap registers for the host, one for the guest."""

    def __init__(self, iss: Iss, reset_bank: dict[str, int]) -> None:
        self.iss = iss
        #: The bank not in use: the guest's in root operation, the host's in non-root operation.
        self.other_bank = dict(reset_bank)
        #: Whether the guest's bank is the one in use (the core runs a guest).
        self.in_guest = False
        #: (mcause, mtval) of an event the last VM entry injected, delivered before the next instruction.
        self.injection: tuple[int, int] | None = None

    def save(self, pc: int) -> None:
        """Before a request in non-root operation: the guest's RIP, RSP and IDTR.base into the unit."""
        iss = self.iss
        state = iss.vmx.state
        state.store("rip", pc)
        state.store("rsp", iss.x[2])
        state.store("idtr.base", iss.mtvec)

    def move(self, outcome: Outcome) -> int:
        """After an entry, an exit or a failed entry: the core's registers from the unit's state, the bank of
        the mode it is now in, and the pc it continues at (the guest's trap vector for an injected event)."""
        iss = self.iss
        guest = iss.vmx.non_root
        if guest != self.in_guest:
            self._swap()
        state = iss.vmx.state
        iss.x[2] = state["rsp"] & _M32
        iss.mtvec = state["idtr.base"] & _M32 & ~3
        if outcome.status == Status.ENTERED and outcome.event is not None:
            # The injected event: a trap of the guest before its first instruction, a record of its own
            # (mtval: the error code, if any).
            self.injection = (injected_cause(outcome.event & 0xFF), outcome.error_code or 0)
        return state["rip"] & _M32

    def inject(self):  # noqa: ANN201 - a Retired
        """Deliver the event the last VM entry injected: its record (insn 0, as an interrupt's)."""
        from .trace import Retired

        cause, error_code = self.injection
        self.injection = None
        pc = self.iss.pc
        self.iss.enter_trap(pc, cause, error_code)
        return Retired(pc=pc, insn=0, trap=cause)

    def _swap(self) -> None:
        iss = self.iss
        current = {name: getattr(iss, name) for name in _BANKED}
        for name in _BANKED:
            setattr(iss, name, self.other_bank[name])
        self.other_bank = current
        self.in_guest = not self.in_guest
