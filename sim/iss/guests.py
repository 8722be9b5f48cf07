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
_MODES = ("host", "guest", "smm")


class Guests:
    """The core's side of VM entries and exits, SMI and RSM: a bank of trap registers for the host, one for a
    guest, one for SMM (docs/smm-soc.md), and the one in use follows the unit's mode."""

    def __init__(self, iss: Iss, reset_bank: dict[str, int]) -> None:
        self.iss = iss
        #: The banks not in use, by mode ("host", "guest", "smm").
        self.banks = {mode: dict(reset_bank) for mode in _MODES}
        #: The mode whose bank is in use.
        self.mode = "host"
        #: (mcause, mtval) of an event the last VM entry injected, delivered before the next instruction.
        self.injection: tuple[int, int] | None = None

    def save(self, pc: int) -> None:
        """Before a request in non-root operation (and an SMI): RIP, RSP and IDTR.base into the unit."""
        iss = self.iss
        state = iss.vmx.state
        state.store("rip", pc)
        state.store("rsp", iss.x[2])
        state.store("idtr.base", iss.mtvec)

    def move(self, outcome: Outcome) -> int:
        """After an entry, an exit, a failed entry, an SMI delivered or an RSM: the core's registers from the
        unit's state, the bank of the mode it is now in, and the pc it continues at (RIP, plus CS.base in
        SMM; the guest's trap vector for an injected event)."""
        iss = self.iss
        vmx = iss.vmx
        mode = "smm" if vmx.in_smm else "guest" if vmx.non_root else "host"
        if mode != self.mode:
            self._switch(mode)
        state = vmx.state
        iss.x[2] = state["rsp"] & _M32
        iss.mtvec = state["idtr.base"] & _M32 & ~3
        if outcome.status == Status.ENTERED and outcome.event is not None:
            # The injected event: a trap of the guest before its first instruction, a record of its own
            # (mtval: the error code, if any).
            self.injection = (injected_cause(outcome.event & 0xFF), outcome.error_code or 0)
        return (state["rip"] + (state["cs.base"] if vmx.in_smm else 0)) & _M32

    def inject(self):  # noqa: ANN201 - a Retired
        """Deliver the event the last VM entry injected: its record (insn 0, as an interrupt's)."""
        from .trace import Retired

        cause, error_code = self.injection
        self.injection = None
        pc = self.iss.pc
        self.iss.enter_trap(pc, cause, error_code)
        return Retired(pc=pc, insn=0, trap=cause)

    def _switch(self, mode: str) -> None:
        iss = self.iss
        self.banks[self.mode] = {name: getattr(iss, name) for name in _BANKED}
        for name in _BANKED:
            setattr(iss, name, self.banks[mode][name])
        self.mode = mode
