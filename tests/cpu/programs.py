"""Program scaffolding for the core's tests: a trap handler that records and halts, runs, and value helpers."""

from collections.abc import Callable

from core_bench import HALT, CoreBench, Record

from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program

__all__ = ["MASK", "signed", "run", "with_handler", "retired", "traps", "EDGES", "HANDLER_REGS", "WAITS"]

MASK = 0xFFFF_FFFF
#: Register edge values: zero, one, all ones, the signed extremes, alternating bits.
EDGES = (0, 1, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, 0xAAAA_5555, 0x0000_0800, 0xFFFF_F7FF)
#: Wait-state patterns: zero wait states, and random ones.
WAITS = {"zero-wait": (0,), "random-wait": (0, 0, 1, 2, 3)}
#: Where ``with_handler``'s handler leaves mcause, mepc and mtval.
HANDLER_REGS = (28, 29, 30)


def signed(value: int) -> int:
    value &= MASK
    return value - (1 << 32) if value >> 31 else value


def with_handler(body: Callable[[Program], None], *, handler: Callable[[Program], None] | None = None) -> Program:
    """mtvec := ``trap``; ``body``; halt. The default handler copies mcause, mepc, mtval to x28-x30 and halts."""
    p = Program()
    p.la(31, "trap")
    p.emit(asm.csrw("mtvec", 31))
    body(p)
    p.emit(HALT)
    p.label("trap")
    if handler is None:
        p.emit(asm.csrr(28, "mcause"), asm.csrr(29, "mepc"), asm.csrr(30, "mtval"), HALT)
    else:
        handler(p)
    return p


def run(program: Program | list[int], **bench) -> CoreBench:
    words = program.words() if isinstance(program, Program) else program
    b = CoreBench(words, **bench)
    b.run()
    return b


def retired(records: list[Record]) -> list[Record]:
    return [r for r in records if not r.trap]


def traps(records: list[Record]) -> list[Record]:
    return [r for r in records if r.trap]
