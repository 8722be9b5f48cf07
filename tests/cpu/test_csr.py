"""Zicsr and the machine CSRs on the core: the six instructions, the CSR table, read-only and unknown CSRs, counters.

docs/cpu.md "CSRs"; The RISC-V Instruction Set Manual, Volume I chapter 9
(Zicsr) and chapter 10 (counters), Volume II 3.1.
"""

import pytest
from core_bench import HALT
from programs import HANDLER_REGS, retired, run, traps, with_handler

from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.riscv import MCAUSE_CODE_BITS, MISA, Interrupt, Mcause, Mstatus, PrivilegeMode, read_only
from vmxu.rtl.cpu.csr import MACHINE_CSRS, X86_CSRS
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program, li


def _values(bench, pcs):
    by_pc = {r.pc: r for r in retired(bench.records)}
    return [by_pc[pc].rd_value for pc in pcs]


def test_csr_instructions_read_old_and_write_new():
    """CSRRW/S/C and the immediate forms on mscratch: rd gets the old value, the CSR the new one."""
    p = Program()
    p.emit(li(1, 0xF0F0_00FF), li(2, 0x0000_0F0F))
    reads = [
        p.emit(asm.csrrw(3, "mscratch", 1)),  # old 0
        p.emit(asm.csrrs(3, "mscratch", 2)),  # old F0F000FF -> F0F00FFF
        p.emit(asm.csrrc(3, "mscratch", 1)),  # old F0F00FFF -> 00000F00
        p.emit(asm.csrrwi(3, "mscratch", 0x15)),  # old 00000F00 -> 15
        p.emit(asm.csrrsi(3, "mscratch", 0x0A)),  # old 15 -> 1F
        p.emit(asm.csrrci(3, "mscratch", 0x13)),  # old 1F -> 0C
        p.emit(asm.csrrs(3, "mscratch", 0)),  # read only: 0C
        p.emit(asm.csrrw(0, "mscratch", 2)),  # rd = x0: no read in the trace
        p.emit(asm.csrr(4, "mscratch")),
    ]
    p.emit(HALT)
    bench = run(p)
    values = _values(bench, reads)
    assert values[:7] == [0, 0xF0F0_00FF, 0xF0F0_0FFF, 0x0000_0F00, 0x15, 0x1F, 0x0C]
    assert values[7] == 0 and values[8] == 0x0F0F
    assert {r.rd for r in bench.records if r.pc == reads[7]} == {0}


@pytest.mark.parametrize(
    "csr, written, read",
    [
        ("mstatus", 0xFFFF_FFFF, Mstatus.const({"mie": 1, "mpie": 1, "mpp": PrivilegeMode.MACHINE}).as_bits()),
        ("mstatus", 0, Mstatus.const({"mpp": PrivilegeMode.MACHINE}).as_bits()),
        ("misa", 0, MISA),
        ("mie", 0xFFFF_FFFF, Interrupt.MACHINE_TIMER.mask | Interrupt.MACHINE_EXTERNAL.mask),
        ("mtvec", 0xFFFF_FFFF, 0xFFFF_FFFC),
        ("mepc", 0x1234_5677, 0x1234_5674),
        # WLRL: the interrupt bit and the code's low bits.
        ("mcause", 0xFFFF_FFFF, Mcause.const({"interrupt": 1, "code": (1 << MCAUSE_CODE_BITS) - 1}).as_bits()),
        ("mcause", TrapCause.MACHINE_EXTERNAL_INTERRUPT, TrapCause.MACHINE_EXTERNAL_INTERRUPT),
        ("mtval", 0x8765_4321, 0x8765_4321),
        ("mip", 0xFFFF_FFFF, 0),
        ("xhi", 0xCAFE_F00D, 0xCAFE_F00D),
    ],
)
def test_csr_table_bits(csr, written, read):
    p = Program()
    p.emit(li(1, written), asm.csrw(csr, 1))
    at = p.emit(asm.csrr(2, csr))
    p.emit(HALT)
    assert _values(run(p), [at]) == [read]


@pytest.mark.parametrize("csr", ["mvendorid", "marchid", "mimpid", "mhartid"])
def test_id_csrs_read_zero(csr):
    p = Program()
    p.emit(li(2, 5))
    at = p.emit(asm.csrr(2, csr))
    p.emit(HALT)
    assert _values(run(p), [at]) == [0]


READ_ONLY = [c for c in Csr if read_only(c.value)]


@pytest.mark.parametrize(
    "make",
    [
        lambda csr: asm.csrrw(1, csr, 2),
        lambda csr: asm.csrrw(0, csr, 0),  # CSRRW writes even from x0
        lambda csr: asm.csrrs(1, csr, 2),
        lambda csr: asm.csrrc(1, csr, 2),
        lambda csr: asm.csrrwi(1, csr, 0),
        lambda csr: asm.csrrsi(1, csr, 1),
        lambda csr: asm.csrrci(0, csr, 31),
    ],
    ids=["csrrw", "csrrw-x0", "csrrs", "csrrc", "csrrwi-0", "csrrsi", "csrrci"],
)
def test_writing_a_read_only_csr_is_illegal(make):
    for csr in READ_ONLY:
        word = make(csr)

        def body(p, word=word):
            p.emit(li(1, 0x77), li(2, 1))
            p.label("bad")
            p.emit(word)

        p = with_handler(body)
        bench = run(p)
        assert [bench.registers[r] for r in HANDLER_REGS] == [TrapCause.ILLEGAL_INSTRUCTION, p.labels["bad"], word]
        assert bench.registers[1] == 0x77, f"{csr.name}: rd written"


def test_reading_read_only_csrs_is_legal():
    p = Program()
    for csr in READ_ONLY:
        p.emit(asm.csrrs(1, csr, 0), asm.csrrc(1, csr, 0), asm.csrrsi(1, csr, 0), asm.csrrci(1, csr, 0))
    p.emit(HALT)
    assert not traps(run(p).records)


@pytest.mark.parametrize("number", [0x000, 0x001, 0x180, 0x302, 0x303, 0x7C5, 0x7FF, 0xB03, 0xC01, 0xF15, 0xFFF])
def test_unknown_csrs_are_illegal_even_to_read(number):
    assert number not in {c.value for c in Csr}

    def body(p):
        p.label("bad")
        p.emit(asm.csrrs(1, number, 0))

    p = with_handler(body)
    bench = run(p)
    assert bench.registers[HANDLER_REGS[0]] == TrapCause.ILLEGAL_INSTRUCTION
    assert bench.registers[HANDLER_REGS[2]] == asm.csrrs(1, number, 0)


def test_every_csr_is_decoded():
    assert set(MACHINE_CSRS) | set(X86_CSRS) == set(Csr)


def test_minstret_counts_retired_instructions_only():
    """Traps do not retire; a write to minstret is what the next instruction reads."""

    def body(p):
        p.emit(asm.csrr(1, "minstret"))
        p.emit(asm.nop(), asm.nop(), asm.ecall())  # the ECALL traps, then returns past itself
        p.emit(asm.csrr(2, "minstret"))
        p.emit(li(3, 1000), asm.csrw("minstret", 3), asm.csrr(4, "minstret"), asm.csrr(5, "instret"))
        p.emit(li(6, 0xFFFF_FFFF), asm.csrw("minstret", 6), asm.csrw("minstreth", 0), asm.nop())
        p.emit(asm.csrr(7, "minstreth"), asm.csrr(8, "minstret"), asm.csrr(9, "instreth"))

    def handler(p):
        p.emit(asm.csrr(20, "mepc"), asm.addi(20, 20, 4), asm.csrw("mepc", 20), asm.mret())

    bench = run(with_handler(body, handler=handler))
    regs = bench.registers
    # Between the two reads: csrr, nop, nop, (ecall traps), csrr(mepc), addi, csrw, mret -> 7 retired.
    assert regs[2] - regs[1] == 7
    assert regs[4] == 1000 and regs[5] == 1001
    # minstret := 0xFFFFFFFF, minstreth := 0 (neither write counts), nop -> 0x1_0000_0000,
    # csrr minstreth -> 1 (then minstret 1), csrr minstret -> 1, csrr instreth -> 1.
    assert (regs[7], regs[8], regs[9]) == (1, 1, 1)


def test_minstret_carries_into_minstreth():
    p = Program()
    p.emit(li(1, 0xFFFF_FFFE), asm.csrw("minstreth", 0), asm.csrw("minstret", 1))
    p.emit(asm.nop(), asm.nop())  # 0xFFFFFFFE -> 0xFFFFFFFF -> 0x1_0000_0000
    hi = p.emit(asm.csrr(2, "minstreth"))
    lo = p.emit(asm.csrr(3, "minstret"))
    hi_view = p.emit(asm.csrr(4, "instreth"))
    p.emit(HALT)
    assert _values(run(p), [hi, lo, hi_view]) == [1, 1, 1]


def test_minstreth_write_keeps_minstret():
    p = Program()
    p.emit(li(1, 0x10), asm.csrw("minstret", 1), li(2, 0x55), asm.csrw("minstreth", 2))
    hi = p.emit(asm.csrr(3, "minstreth"))
    lo = p.emit(asm.csrr(4, "minstret"))
    p.emit(HALT)
    # minstret 0x10 read by li (ADDI) -> +1 (li), csrw minstreth does not count -> 0x11, csrr(hi) +1 -> 0x12.
    assert _values(run(p), [hi, lo]) == [0x55, 0x12]


def test_mcycle_counts_cycles_and_carries():
    p = Program()
    first = p.emit(asm.csrr(1, "mcycle"))
    p.emit(asm.nop(), asm.nop())
    second = p.emit(asm.csrr(2, "cycle"))
    p.emit(li(3, 0xFFFF_FFF0), asm.csrw("mcycleh", 0), asm.csrw("mcycle", 3))
    p.emit(*[asm.nop()] * 6)
    hi = p.emit(asm.csrr(4, "mcycleh"))
    hi_view = p.emit(asm.csrr(5, "cycleh"))
    p.emit(li(6, 0x1234), asm.csrw("mcycleh", 6))
    hi2 = p.emit(asm.csrr(7, "mcycleh"))
    p.emit(HALT)
    bench = run(p, waits=(0,))
    records = {r.pc: r for r in bench.records}
    r1, r2 = records[first], records[second]
    # The counter advances one per clock: the reads are EXECUTE-to-EXECUTE apart.
    assert r2.rd_value - r1.rd_value == r2.cycle - r1.cycle
    assert _values(bench, [hi, hi_view, hi2]) == [1, 1, 0x1234]


def test_counters_are_64_bit_views():
    p = Program()
    p.emit(li(1, 7), asm.csrw("mcycleh", 1), li(2, 9), asm.csrw("minstreth", 2))
    reads = [p.emit(asm.csrr(3, "cycleh")), p.emit(asm.csrr(4, "instreth"))]
    p.emit(HALT)
    assert _values(run(p), reads) == [7, 9]


def test_csr_write_of_x0_destination_reads_nothing():
    p = Program()
    p.emit(li(1, 3), asm.csrw("mscratch", 1))
    swap = p.emit(asm.csrrw(0, "mscratch", 0))
    read = p.emit(asm.csrr(2, "mscratch"))
    p.emit(HALT)
    bench = run(p)
    assert _values(bench, [swap, read]) == [0, 0]
