"""Cycles per instruction class, measured on the trace, against the documented ``CYCLES`` (docs/core.md).

The cycles of an instruction are the distance between its trace record and the
previous one. The bench acknowledges bus cycles in the cycle of the strobe
(``waits=(0,)``, zero wait states) or one cycle later (``waits=(1,)``, as the
SoC's RAM does; the bench then also accepts VMX requests and I/O accesses a
cycle late); the fake VMX unit answers in the cycle after it accepts.
"""

import pytest
from core_bench import HALT, IRQ_CONTROL
from programs import run, traps

from vmxu.rtl.arch.riscv import Interrupt, Mstatus
from vmxu.rtl.cpu.core import CYCLES
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program, li

#: class -> (setup, the measured instruction, its handshakes: bus accesses, VMX requests, I/O accesses)
CLASSES = {
    "alu": ([], asm.addi(1, 1, 1), 1),
    "shift": ([], asm.slli(1, 1, 0), 1),
    "load": ([], asm.lw(2, 0x100, 0), 2),
    "store": ([], asm.sw(2, 0x100, 0), 2),
    "branch_not_taken": ([li(1, 1)], asm.beq(0, 1, 8), 1),
    "branch_taken": ([], asm.beq(0, 0, 4), 1),
    "jump": ([], asm.jal(0, 4), 1),
    "csr": ([], asm.csrrw(1, "mscratch", 1), 1),
    "x86_csr_read": ([], asm.csrr(1, "xcr0"), 2),
    "x86_csr_write": ([], asm.csrrw(1, "xcr4", 0), 3),
    "vmx": ([], asm.vmread(1, 2), 2),
    "port_io": ([], asm.inb(1, 2), 2),
}


def _measure(word, setup, waits):
    p = Program()
    p.emit(*setup, asm.nop())
    at = p.emit(word)
    p.emit(word, HALT)
    bench = run(p, waits=waits, unit_latency=1)
    records = bench.records
    i = next(i for i, r in enumerate(records) if r.pc == at + 4)  # the second one: warm, after a like one
    return records[i].cycle - records[i - 1].cycle


@pytest.mark.parametrize("name", CLASSES)
def test_cycles_per_instruction(name):
    setup, word, handshakes = CLASSES[name]
    assert _measure(word, setup, (0,)) == CYCLES[name]
    # One wait state on every handshake costs one cycle each.
    assert _measure(word, setup, (1,)) == CYCLES[name] + handshakes


@pytest.mark.parametrize("amount", [1, 7, 31])
def test_shift_costs_one_cycle_a_bit(amount):
    assert _measure(asm.srai(1, 1, amount), [], (0,)) == CYCLES["shift"] + amount


def test_trap_and_interrupt_cycles():
    p = Program()
    p.la(1, "trap")
    p.emit(asm.csrw("mtvec", 1), asm.nop())
    p.emit(asm.ecall())
    p.label("trap")
    p.la(1, "interrupt")
    p.emit(asm.csrw("mtvec", 1))
    p.emit(li(1, Interrupt.MACHINE_TIMER.mask), asm.csrw("mie", 1))
    p.emit(asm.csrsi("mstatus", Mstatus.const({"mie": 1}).as_bits()), li(2, IRQ_CONTROL), li(3, 1))
    p.emit(asm.sw(3, 0, 2), asm.nop(), asm.nop(), asm.nop())
    p.label("interrupt")
    p.emit(HALT)
    bench = run(p, waits=(0,))
    records = bench.records
    ecall, interrupt = traps(records)
    i, j = records.index(ecall), records.index(interrupt)
    assert ecall.cycle - records[i - 1].cycle == CYCLES["trap"]
    assert interrupt.cycle - records[j - 1].cycle == CYCLES["interrupt"]


def test_cycles_property_is_the_table():
    bench = run([HALT])
    assert bench.core.cycles == CYCLES
