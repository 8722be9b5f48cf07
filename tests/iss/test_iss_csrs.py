"""Zicsr and the machine-mode CSRs on the ISS (docs/cpu.md "CSRs").

# Ref: The RISC-V Instruction Set Manual vol. I 20191213, ch. 9 (Zicsr: which
# forms read and which write), ch. 10 (counters); vol. II 20211203, 2.1 (CSR
# address map), 3.1 (machine-level CSRs).
"""

from __future__ import annotations

import pytest
from iss_words import ECALL, NOP, csr, csrr, csrw, image, li, run_words

from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.riscv import MISA, Interrupt, Mstatus, PrivilegeMode
from vmxu.sim.iss import Iss, Override, Retired

#: mstatus with MPP (always machine mode) and the bits the core keeps set, mie or mip with both interrupts.
MPP = Mstatus.const({"mpp": PrivilegeMode.MACHINE}).as_bits()
MSTATUS_KEPT = Mstatus.const({"mie": 1, "mpie": 1, "mpp": PrivilegeMode.MACHINE}).as_bits()
BOTH_INTERRUPTS = Interrupt.MACHINE_TIMER.mask | Interrupt.MACHINE_EXTERNAL.mask


def read_after_write(number: int, value: int) -> int:
    iss, _ = run_words(li(5, value), csrw(number, 5), csrr(10, number))
    return iss.x[10]


@pytest.mark.parametrize(
    "number, written, read",
    [
        (Csr.MSTATUS, 0xFFFF_FFFF, MSTATUS_KEPT),
        (Csr.MSTATUS, 0, MPP),
        (Csr.MISA, 0, MISA),  # writes ignored
        (Csr.MIE, 0xFFFF_FFFF, BOTH_INTERRUPTS),
        (Csr.MTVEC, 0x1237, 0x1234),  # direct mode only
        (Csr.MSCRATCH, 0xDEAD_BEEF, 0xDEAD_BEEF),
        (Csr.MEPC, 0x1237, 0x1234),
        (Csr.MCAUSE, 0x8000_000B, 0x8000_000B),
        (Csr.MTVAL, 0xFFFF_FFFF, 0xFFFF_FFFF),
        (Csr.MIP, 0xFFFF_FFFF, 0),  # writes ignored; nothing pending
        (Csr.MCYCLEH, 0x1234_5678, 0x1234_5678),
        (Csr.MINSTRETH, 0x0000_0042, 0x0000_0042),
        (Csr.XHI, 0xCAFE_F00D, 0xCAFE_F00D),
    ],
)
def test_csr_reads_back(number: int, written: int, read: int) -> None:
    assert read_after_write(number, written) == read


@pytest.mark.parametrize("number", [Csr.MVENDORID, Csr.MARCHID, Csr.MIMPID, Csr.MHARTID])
def test_id_csrs_read_zero(number: int) -> None:
    iss, records = run_words(csrr(10, number))
    assert records[0].trap is None and iss.x[10] == 0


@pytest.mark.parametrize("number", [0x000, 0x7C5, 0x7FF, 0x3A0, 0x180, 0xB03, 0xF15, 0x320])
def test_unknown_csrs_are_illegal(number: int) -> None:
    word = csrr(10, number)
    iss, records = run_words(li(10, 0x77), word)
    assert records[-1] == Retired(pc=8, insn=word, trap=TrapCause.ILLEGAL_INSTRUCTION)
    assert iss.mtval == word and iss.x[10] == 0x77


READ_ONLY = [Csr.CYCLE, Csr.CYCLEH, Csr.INSTRET, Csr.INSTRETH, Csr.MVENDORID, Csr.MARCHID, Csr.MIMPID, Csr.MHARTID]


@pytest.mark.parametrize("number", READ_ONLY)
@pytest.mark.parametrize(
    "form, operand, legal",
    [
        ("csrrw", 0, False),  # CSRRW always writes, even from x0
        ("csrrs", 0, True),
        ("csrrs", 5, False),
        ("csrrc", 0, True),
        ("csrrc", 5, False),
        ("csrrwi", 0, False),
        ("csrrsi", 0, True),
        ("csrrsi", 1, False),
        ("csrrci", 0, True),
        ("csrrci", 31, False),
    ],
)
def test_writing_a_read_only_csr_is_illegal(number: int, form: str, operand: int, legal: bool) -> None:
    _, records = run_words(csr(form, 10, number, operand))
    assert (records[0].trap is None) == legal


def test_set_and_clear_forms() -> None:
    iss, _ = run_words(
        li(5, 0xF0F0),
        csrw(Csr.MSCRATCH, 5),
        li(6, 0x0F00),
        csr("csrrs", 10, Csr.MSCRATCH, 6),  # a0 = old, mscratch |= 0x0F00
        csr("csrrc", 11, Csr.MSCRATCH, 5),  # a1 = 0xFFF0, mscratch &= ~0xF0F0
        csr("csrrwi", 12, Csr.MSCRATCH, 0x1F),
        csr("csrrsi", 13, Csr.MSCRATCH, 0x0),  # read only
        csr("csrrci", 14, Csr.MSCRATCH, 0x3),
    )
    assert iss.x[10:15] == [0xF0F0, 0xFFF0, 0x0F00, 0x1F, 0x1F]
    assert iss.mscratch == 0x1C


def test_csrrw_to_x0_does_not_record_a_destination() -> None:
    _, records = run_words(li(5, 9), csr("csrrw", 0, Csr.MSCRATCH, 5))
    assert records[-1] == Retired(pc=8, insn=csr("csrrw", 0, Csr.MSCRATCH, 5))


def test_instret_counts_retired_instructions_only() -> None:
    iss, _ = run_words(NOP, NOP, csrr(10, Csr.INSTRET), csrr(11, Csr.MINSTRET), csrr(12, Csr.INSTRETH))
    assert iss.x[10:13] == [2, 3, 0]


def test_cycle_counts_records() -> None:
    iss, records = run_words(NOP, ECALL)
    iss.step()  # the trap vector's `j .`
    assert iss.mcycle == 3 and iss.minstret == 2


def test_a_counter_write_takes_precedence_over_the_increment() -> None:
    iss, _ = run_words(li(5, 100), csrw(Csr.MINSTRET, 5), csrr(10, Csr.MINSTRET), csrw(Csr.MCYCLE, 5))
    assert iss.x[10] == 100  # the write, not 101
    assert iss.minstret == 102 and iss.mcycle == 100


def test_counters_are_64_bits() -> None:
    iss, _ = run_words(li(5, 0xFFFF_FFFF), csrw(Csr.MINSTRET, 5), NOP, csrr(10, Csr.MINSTRETH), csrr(11, Csr.INSTRET))
    assert iss.x[10] == 1 and iss.x[11] == 1


def test_mip_shows_the_lines() -> None:
    iss, _ = run_words(NOP)
    iss.set_external_interrupt(True)
    iss.timer.mtimecmp = 0
    assert iss.mip == BOTH_INTERRUPTS


@pytest.mark.parametrize("number", [Csr.MCYCLE, Csr.MCYCLEH, Csr.CYCLE, Csr.CYCLEH, Csr.MIP])
def test_lockstep_takes_unpredictable_csr_reads_from_the_rtl(number: int) -> None:
    iss = Iss(image(csrr(10, number), csrr(11, Csr.MINSTRET)), lockstep=True)
    assert iss.step(Override(read_value=0xABCD)).rd_value == 0xABCD
    assert iss.step(Override(read_value=0xABCD)).rd_value == 1  # minstret is the ISS's own
