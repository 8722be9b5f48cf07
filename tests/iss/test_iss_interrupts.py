"""Interrupts on the ISS: the timer, the external line, WFI, and lockstep injection.

# Ref: docs/cpu.md "Traps and interrupts"; The RISC-V Instruction Set Manual
# vol. II 20211203, 3.1.9 (mip/mie, priority MEI > MTI), 3.3.3 (WFI); SiFive
# CLINT (mtime, mtimecmp).
"""

from __future__ import annotations

import pytest
from iss_words import NOP, TRAP_VECTOR, WFI, csrw, li, lw, machine, sw

from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.riscv import Interrupt, Mstatus
from vmxu.rtl.arch.soc import TIMER_MTIME, TIMER_MTIMECMP
from vmxu.sim.iss import Iss, LockstepError, Override, Retired

MIE = Mstatus.const({"mie": 1}).as_bits()
MPIE = Mstatus.const({"mpie": 1}).as_bits()
MTIE = Interrupt.MACHINE_TIMER.mask
MEIE = Interrupt.MACHINE_EXTERNAL.mask
TIMER = int(TrapCause.MACHINE_TIMER_INTERRUPT)
EXTERNAL = int(TrapCause.MACHINE_EXTERNAL_INTERRUPT)


def enabled(mie: int, *more: int, **kwargs) -> Iss:
    """An ISS that has just set mie and mstatus.MIE (6 records), followed by ``more``."""
    iss = machine(li(5, mie), csrw(Csr.MIE, 5), li(5, MIE), csrw(Csr.MSTATUS, 5), *more, **kwargs)
    for _ in range(6):
        iss.step()
    return iss


def test_timer_interrupt_when_mtime_reaches_mtimecmp() -> None:
    iss = enabled(MTIE, NOP, NOP, NOP, NOP)
    iss.timer.mtimecmp = iss.timer.mtime + 2
    assert iss.step().trap is None
    assert iss.step().trap is None
    record = iss.step()
    assert record == Retired(pc=32, insn=0, trap=TIMER)
    assert (iss.mepc, iss.mcause, iss.mtval, iss.pc) == (32, TIMER, 0, TRAP_VECTOR)
    assert iss.mstatus & MIE == 0 and iss.mstatus & MPIE


def test_external_before_timer() -> None:
    iss = enabled(MTIE | MEIE, NOP)
    iss.timer.mtimecmp = 0
    iss.set_external_interrupt(True)
    assert iss.step().trap == EXTERNAL


def test_no_interrupt_with_mstatus_mie_clear() -> None:
    iss = machine(li(5, MTIE), csrw(Csr.MIE, 5), NOP, NOP)
    iss.timer.mtimecmp = 0
    assert all(iss.step().trap is None for _ in range(4))


def test_no_interrupt_when_not_enabled_in_mie() -> None:
    iss = enabled(MTIE, NOP)
    iss.set_external_interrupt(True)
    assert iss.step().trap is None


def test_interrupts_do_not_retire() -> None:
    iss = enabled(MEIE, NOP)
    before = iss.minstret
    iss.set_external_interrupt(True)
    iss.step()
    assert iss.minstret == before


def test_mtime_ticks_per_retired_instruction() -> None:
    iss = machine(NOP, NOP, NOP)
    for _ in range(3):
        iss.step()
    assert iss.timer.mtime == 3


def test_the_timer_registers_are_memory_mapped() -> None:
    iss = machine(li(11, TIMER_MTIMECMP), li(12, 0x55), sw(12, 0, 11), sw(0, 4, 11), li(13, TIMER_MTIME), lw(10, 0, 13))
    for _ in range(9):
        iss.step()
    assert iss.timer.mtimecmp == 0x55
    assert iss.x[10] == 8  # mtime when the load executed: 8 instructions retired before it


def test_wfi_skips_to_the_timer() -> None:
    iss = enabled(MTIE, WFI, NOP)
    iss.timer.mtimecmp = 1000
    assert iss.step().trap is None  # WFI retires
    assert iss.step() == Retired(pc=28, insn=0, trap=TIMER)


def test_wfi_without_enabled_interrupts_is_a_no_op() -> None:
    iss = machine(WFI, NOP)
    assert iss.step() == Retired(pc=0, insn=WFI)
    assert iss.pc == 4 and iss.timer.mtime == 1


# -- lockstep ------------------------------------------------------------------------


def test_lockstep_takes_interrupts_only_when_told() -> None:
    iss = enabled(MTIE | MEIE, NOP, NOP, lockstep=True)
    iss.set_external_interrupt(True)
    iss.timer.mtimecmp = 0
    assert iss.step().trap is None
    assert iss.step(Override(interrupt=TIMER)) == Retired(pc=28, insn=0, trap=TIMER)
    assert iss.mepc == 28


def test_lockstep_does_not_advance_mtime() -> None:
    iss = machine(NOP, NOP, lockstep=True)
    iss.step(), iss.step()
    assert iss.timer.mtime == 0


@pytest.mark.parametrize("mie, mstatus_mie", [(0, True), (MEIE, False), (MEIE, True)])
def test_lockstep_refuses_an_interrupt_the_core_could_not_take(mie: int, mstatus_mie: bool) -> None:
    iss = machine(NOP, lockstep=True)
    iss.mie = mie
    iss.mstatus |= MIE if mstatus_mie else 0
    with pytest.raises(LockstepError, match="interrupt 0x80000007 taken"):
        iss.inject_interrupt(TIMER)


def test_lockstep_refuses_an_exception_cause() -> None:
    iss = machine(NOP, lockstep=True)
    with pytest.raises(LockstepError, match="not an interrupt"):
        iss.inject_interrupt(2)


def test_override_supplies_timer_loads_and_cycle_reads() -> None:
    iss = machine(li(13, TIMER_MTIME), lw(10, 0, 13), NOP, lockstep=True)
    iss.step(), iss.step()
    assert iss.step(Override(read_value=0x1234)).rd_value == 0x1234
    assert iss.step(Override(read_value=0x1234)) == Retired(pc=12, insn=NOP)  # ignored by a NOP


def test_override_from_rtl_record() -> None:
    assert Override.from_rtl(Retired(pc=4, insn=0, trap=TIMER)) == Override(interrupt=TIMER)
    assert Override.from_rtl(Retired(pc=4, insn=1, rd=5, rd_value=9)) == Override(read_value=9)
    assert Override.from_rtl(Retired(pc=4, insn=1)) == Override()
