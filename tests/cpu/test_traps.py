"""Traps, MRET, WFI and interrupts on the core.

docs/cpu.md "Traps and interrupts"; The RISC-V Instruction Set Manual,
Volume II 3.1.6.1 (MIE/MPIE), 3.1.9 (mip/mie, priority MEI > MTI), 3.3.2 (MRET), 3.3.3 (WFI).
"""

import pytest
from core_bench import HALT, IRQ_CONTROL, IRQ_DELAYED
from programs import HANDLER_REGS, WAITS, retired, run, traps, with_handler

from vmxu.rtl.arch.isa import TrapCause
from vmxu.rtl.arch.riscv import Interrupt, Mstatus, PrivilegeMode
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li

MSTATUS_MIE = Mstatus.const({"mie": 1}).as_bits()
MSTATUS_MPIE = Mstatus.const({"mpie": 1}).as_bits()
MPP = Mstatus.const({"mpp": PrivilegeMode.MACHINE}).as_bits()
MTIE, MEIE = Interrupt.MACHINE_TIMER.mask, Interrupt.MACHINE_EXTERNAL.mask
TIMER, EXTERNAL = 1, 2


def _skip_and_return(p):
    """Handler: record mcause/mepc/mtval/mstatus in x28-x31... then return past the trapping instruction."""
    p.emit(asm.csrr(28, "mcause"), asm.csrr(29, "mepc"), asm.csrr(30, "mtval"), asm.csrr(27, "mstatus"))
    p.emit(asm.addi(29, 29, 4), asm.csrw("mepc", 29), asm.mret())


@pytest.mark.parametrize(
    "word, cause, value",
    [(asm.ecall(), TrapCause.ECALL_M, lambda pc: 0), (asm.ebreak(), TrapCause.BREAKPOINT, lambda pc: pc)],
    ids=["ecall", "ebreak"],
)
def test_ecall_and_ebreak(word, cause, value):
    def body(p):
        p.emit(asm.csrsi("mstatus", MSTATUS_MIE))
        p.label("trap_here")
        p.emit(word)
        p.emit(asm.csrr(26, "mstatus"))

    p = with_handler(body, handler=_skip_and_return)
    bench = run(p)
    regs = bench.registers
    at = p.labels["trap_here"]
    assert (regs[28], regs[29], regs[30]) == (cause, at + 4, value(at))
    # In the handler: MPIE = the old MIE (1), MIE = 0. After MRET: MIE = 1, MPIE = 1.
    assert regs[27] == MSTATUS_MPIE | MPP
    assert regs[26] == MSTATUS_MIE | MSTATUS_MPIE | MPP
    record = traps(bench.records)[0]
    assert (record.pc, record.insn, record.cause, record.rd) == (at, word, cause, 0)
    # The trapping instruction does not retire: the next record is the handler's first.
    records = bench.records
    assert records[records.index(record) + 1].pc == p.labels["trap"]


def test_mret_restores_mie_from_mpie_and_jumps_to_mepc():
    p = asm.Program()
    p.la(1, "there")
    p.emit(asm.csrw("mepc", 1), li(2, MSTATUS_MPIE), asm.csrw("mstatus", 2), asm.mret(), HALT)
    p.label("there")
    p.emit(asm.csrr(3, "mstatus"), HALT)
    bench = run(p)
    assert bench.registers[3] == MSTATUS_MIE | MSTATUS_MPIE | MPP
    assert bench.records[-2].pc == p.labels["there"]


def _interrupt_program(lines, *, mie_bits, mstatus_mie=True, handler=None):
    """Enable mie_bits (and MIE), raise ``lines`` with a store, then a few instructions."""

    def body(p):
        p.emit(li(1, mie_bits), asm.csrw("mie", 1), li(2, IRQ_CONTROL), li(3, lines))
        if mstatus_mie:
            p.emit(asm.csrsi("mstatus", MSTATUS_MIE))
        p.label("raise")
        p.emit(asm.sw(3, 0, 2))
        # The line reaches mip a cycle after the store ends: the interrupt preempts the instruction after next.
        p.emit(asm.addi(10, 0, 1))
        p.label("after")
        p.emit(asm.addi(11, 0, 1))

    def default_handler(p):
        # Record the cause, lower the lines, return.
        p.emit(asm.csrr(28, "mcause"), asm.csrr(29, "mepc"), asm.csrr(30, "mtval"), asm.csrr(27, "mstatus"))
        p.emit(asm.sw(0, 0, 2), asm.mret())

    return with_handler(body, handler=handler or default_handler)


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
@pytest.mark.parametrize(
    "lines, cause",
    [(TIMER, TrapCause.MACHINE_TIMER_INTERRUPT), (EXTERNAL, TrapCause.MACHINE_EXTERNAL_INTERRUPT)],
    ids=["timer", "external"],
)
def test_interrupt_taken_at_the_next_boundary(lines, cause, waits):
    p = _interrupt_program(lines, mie_bits=MTIE | MEIE)
    bench = run(p, waits=waits)
    regs = bench.registers
    after = p.labels["after"]
    # The store that raised the line completes; the interrupt preempts the instruction after it.
    assert (regs[28], regs[29], regs[30]) == (cause, after, 0)
    assert regs[27] == MSTATUS_MPIE | MPP
    assert regs[10] == 1 and regs[11] == 1
    interrupts = traps(bench.records)
    assert len(interrupts) == 1
    record = interrupts[0]
    assert (record.pc, record.insn, record.cause, record.rd, record.vmx) == (after, 0, cause, 0, False)
    # Exactly once: the store, one more instruction, the interrupt, then the handler.
    records = bench.records
    i = records.index(record)
    assert records[i - 2].pc == p.labels["raise"] and records[i - 2].store
    assert records[i + 1].pc == p.labels["trap"]


def test_external_interrupt_before_timer():
    p = _interrupt_program(TIMER | EXTERNAL, mie_bits=MTIE | MEIE)
    bench = run(p)
    causes = [r.cause for r in traps(bench.records)]
    assert causes[0] == TrapCause.MACHINE_EXTERNAL_INTERRUPT
    assert bench.registers[28] == TrapCause.MACHINE_EXTERNAL_INTERRUPT


@pytest.mark.parametrize(
    "lines, mie_bits, mstatus_mie",
    [(TIMER, MEIE, True), (EXTERNAL, MTIE, True), (TIMER, MTIE, False), (EXTERNAL, MEIE, False)],
    ids=["timer-masked-in-mie", "external-masked-in-mie", "timer-mstatus-mie-clear", "external-mstatus-mie-clear"],
)
def test_masked_interrupts_are_not_taken(lines, mie_bits, mstatus_mie):
    p = _interrupt_program(lines, mie_bits=mie_bits, mstatus_mie=mstatus_mie)
    bench = run(p)
    assert not traps(bench.records)


def test_mip_shows_pending_lines_whatever_the_enables():
    p = asm.Program()
    p.emit(li(2, IRQ_CONTROL), li(3, TIMER | EXTERNAL), asm.sw(3, 0, 2))
    at = p.emit(asm.csrr(4, "mip"))
    p.emit(asm.sw(0, 0, 2), asm.nop())
    at2 = p.emit(asm.csrr(5, "mip"))
    p.emit(HALT)
    bench = run(p)
    by_pc = {r.pc: r for r in bench.records}
    assert by_pc[at].rd_value == MTIE | MEIE
    assert by_pc[at2].rd_value == 0


def test_enabling_mie_with_a_pending_interrupt_takes_it_right_after():
    """csrsi mstatus, MIE with the line already high: the next instruction is preempted."""

    def body(p):
        p.emit(li(1, MTIE), asm.csrw("mie", 1), li(2, IRQ_CONTROL), li(3, TIMER), asm.sw(3, 0, 2), asm.nop())
        p.label("enable")
        p.emit(asm.csrsi("mstatus", MSTATUS_MIE))
        p.label("after")
        p.emit(asm.nop())

    def handler(p):
        p.emit(asm.csrr(29, "mepc"), asm.sw(0, 0, 2), asm.mret())

    p = with_handler(body, handler=handler)
    bench = run(p)
    assert bench.registers[29] == p.labels["after"]


def test_mret_with_a_pending_interrupt_takes_it_right_after():
    """The handler returns with the line still high: MRET sets MIE and the interrupt comes back at once."""

    def body(p):
        p.emit(li(1, MTIE), asm.csrw("mie", 1), li(2, IRQ_CONTROL), li(3, TIMER), asm.csrsi("mstatus", MSTATUS_MIE))
        p.emit(asm.sw(3, 0, 2), asm.nop())
        p.label("after")
        p.emit(asm.nop(), asm.nop())

    def handler(p):
        # First entry: count, return with the line high; second entry: lower it.
        p.emit(asm.addi(20, 20, 1), asm.addi(21, 0, 2))
        p.branch("bne", 20, 21, "back")
        p.emit(asm.sw(0, 0, 2))
        p.label("back")
        p.emit(asm.mret())

    p = with_handler(body, handler=handler)
    bench = run(p)
    interrupts = traps(bench.records)
    assert len(interrupts) == 2
    assert all(r.pc == p.labels["after"] for r in interrupts)
    records = bench.records
    second = records.index(interrupts[1])
    assert records[second - 1].insn == asm.mret()


def test_wfi_waits_for_an_enabled_interrupt_even_with_mie_clear():
    """mstatus.MIE = 0: WFI stalls until the line rises, then retires as a no-op (no trap)."""
    p = asm.Program()
    p.emit(li(1, MTIE), asm.csrw("mie", 1), li(2, IRQ_DELAYED), li(3, (200 << 8) | TIMER))
    armed = p.emit(asm.sw(3, 0, 2))
    wfi = p.emit(asm.wfi())
    p.emit(asm.addi(10, 0, 1), HALT)
    bench = run(p)
    by_pc = {r.pc: r for r in bench.records}
    assert by_pc[wfi].cycle - by_pc[armed].cycle >= 200
    assert by_pc[wfi].rd == 0
    assert not traps(bench.records)
    assert bench.registers[10] == 1


def test_wfi_then_interrupt_with_mie_set():
    def body(p):
        p.emit(li(1, MEIE), asm.csrw("mie", 1), li(2, IRQ_DELAYED), li(3, (50 << 8) | EXTERNAL))
        p.emit(asm.csrsi("mstatus", MSTATUS_MIE), asm.sw(3, 0, 2))
        p.label("wfi")
        p.emit(asm.wfi())
        p.label("after")
        p.emit(asm.nop())

    def handler(p):
        p.emit(asm.csrr(28, "mcause"), asm.csrr(29, "mepc"), li(2, IRQ_CONTROL), asm.sw(0, 0, 2), asm.mret())

    p = with_handler(body, handler=handler)
    bench = run(p)
    assert (bench.registers[28], bench.registers[29]) == (TrapCause.MACHINE_EXTERNAL_INTERRUPT, p.labels["after"])
    wfi_records = [r for r in retired(bench.records) if r.pc == p.labels["wfi"]]
    assert len(wfi_records) == 1


def test_wfi_with_nothing_enabled_but_pending_falls_through():
    """A pending interrupt enabled in mie wakes WFI at once."""
    p = asm.Program()
    p.emit(li(1, MTIE), asm.csrw("mie", 1), li(2, IRQ_CONTROL), li(3, TIMER), asm.sw(3, 0, 2))
    p.emit(asm.wfi(), asm.addi(10, 0, 1), HALT)
    assert run(p).registers[10] == 1


def test_trap_handler_registers():
    """A trap inside a handler (MIE = 0 there) is taken normally: mepc/mcause are overwritten."""

    def body(p):
        p.emit(asm.ecall())

    def handler(p):
        p.emit(asm.addi(20, 20, 1), asm.addi(21, 0, 1))
        p.branch("beq", 20, 21, "first")
        p.emit(asm.csrr(28, "mcause"), asm.csrr(29, "mepc"), HALT)
        p.label("first")
        p.label("nested")
        p.emit(asm.ebreak())

    p = with_handler(body, handler=handler)
    bench = run(p)
    assert [r.cause for r in traps(bench.records)] == [TrapCause.ECALL_M, TrapCause.BREAKPOINT]
    assert bench.registers[HANDLER_REGS[0]] == TrapCause.BREAKPOINT
    assert bench.registers[HANDLER_REGS[1]] == p.labels["nested"]
