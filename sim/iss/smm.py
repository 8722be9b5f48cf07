"""SMM on the ISS's SoC: the SMI port's latch, the SMI at an instruction boundary, the SMRAM/MSEG filter.

# Ref: docs/smm-soc.md (the contract the RTL core follows too); rtl/arch/soc.py
# (SMRAM_ALIAS, physical, smram_closed, SMI_PORT); rtl/arch/smm.py (IO_SMI);
# shared/vmx/REPLAY.md "SMM" (what the unit does with an SMI and RSM).

The VMX unit (the model) decides what an SMI and RSM do; the core's part is
small: an OUT to port 0xB2 latches an SMI, which the core sends to the unit at
the next instruction boundary (after writing its RIP, RSP and IDTR.base into
the unit, in every mode); what moved the processor moves the core
(sim/iss/guests.py ``Guests.move``); and the core's own accesses are kept out
of SMRAM outside SMM and out of MSEG for all but the STM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmxu.rtl.arch.isa import INSTRUCTION_BY_NAME, Group, decode
from vmxu.rtl.arch.msrs import SMM_MONITOR_CTL_MSEG_BASE
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.smm import IO_SMI
from vmxu.rtl.arch.soc import SMI_PORT, smram_closed

from .trace import Retired

if TYPE_CHECKING:
    from .core import Iss

__all__ = ["CoreSmm", "TransitionTimes"]

_RSM_WORD = INSTRUCTION_BY_NAME["rsm"].match


def _is_out(word: int) -> bool:
    insn = decode(word)
    return insn is not None and insn.group == Group.OUT


class CoreSmm:
    """The core's SMM mode on the SoC with guests.

    Members
    -------
    latched : int | None
        The SMI the core has not sent yet: the size (bytes) of the OUT to port 0xB2 that raised it, 0 for a
        button's; None: no SMI latched.
    """

    def __init__(self, iss: Iss) -> None:
        self.iss = iss
        self.latched: int | None = None

    def out(self, port: int, size: int) -> None:
        """An OUT retired: one to port 0xB2 latches an I/O SMI (one; a later write changes nothing)."""
        if port == SMI_PORT and self.latched is None:
            self.latched = size

    def press(self) -> None:
        """A board's button (``Soc.smi_button``): a plain SMI, latched unless one is."""
        if self.latched is None:
            self.latched = 0

    def take(self) -> Retired:
        """The latched SMI at this boundary: SAVE, the I/O SMI request, the move if it delivered; its record
        (pc: the next instruction's, insn 0, the SMI's status)."""
        iss = self.iss
        size, self.latched = self.latched, None
        pc = iss.pc
        was_in_smm = iss.vmx.in_smm
        iss.guests.save(pc)
        io = size != 0  # an I/O SMI (its OUT's port and size), or a button's plain one
        outcome = iss.vmx.execute(
            Op.SMI, SMI_PORT if io else 0, IO_SMI if io else 0, OperandSize.S32, length=4, io_size=size or 1
        )
        if outcome.status == Status.EXITED or outcome.status == Status.OK and iss.vmx.in_smm and not was_in_smm:
            iss.pc = iss.guests.move(outcome)
        return Retired(pc=pc, insn=0, vmx_status=outcome.status)

    def closed(self, addr: int) -> bool:
        """Whether the core's access to ``addr`` is kept out: it reads all ones and writes nothing."""
        vmx = self.iss.vmx
        return smram_closed(
            addr,
            smm=vmx.in_smm,
            root=not vmx.non_root,
            smbase=vmx.state["smbase"],
            mseg=vmx.smm_monitor_ctl & SMM_MONITOR_CTL_MSEG_BASE,
            dual_active=vmx.dual_monitor_active,
        )


class TransitionTimes:
    """The cycles of SMM's transitions on the RTL SoC, from its trace records and their cycle numbers.

    ``smi``: for each SMM VM exit of an SMI (the record of its own an OUT's SMI gets, status ``exited``), the
    cycles from the OUT's retirement, when port 0xB2 raised the SMI, to the retirement of the STM's first
    instruction. ``rsm``: for each RSM that exited (17, the legacy handler's in its VM), the cycles from the
    retirement of the instruction before it to that of the STM's first instruction. Call ``note`` with every
    record, in order.
    """

    def __init__(self) -> None:
        self.smi: list[int] = []
        self.rsm: list[int] = []
        self._previous: tuple[Retired, int] | None = None
        self._waiting: list[int] | None = None  # where the next record's time goes
        self._start = 0

    def note(self, record: Retired, cycle: int) -> None:
        if self._waiting is not None:
            self._waiting.append(cycle - self._start)
            self._waiting = None
        previous = self._previous
        if record.vmx_status == Status.EXITED and previous is not None:
            if record.insn == 0 and record.trap is None and _is_out(previous[0].insn):
                self._waiting, self._start = self.smi, previous[1]
            elif record.insn == _RSM_WORD:
                self._waiting, self._start = self.rsm, previous[1]
        self._previous = (record, cycle)
