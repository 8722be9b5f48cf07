"""Synchronous traps on the ISS: misaligned and faulting accesses, jumps, ECALL/EBREAK, MRET.

# Ref: docs/cpu.md "Base ISA" and "Traps and interrupts"; The RISC-V
# Instruction Set Manual vol. II 20211203, 3.1.15 (mcause), 3.1.16 (mtval), 3.3.2 (MRET).
"""

from __future__ import annotations

import pytest
from iss_words import (
    EBREAK,
    ECALL,
    MRET,
    NOP,
    TRAP_VECTOR,
    addi,
    branch,
    csrw,
    jal,
    jalr,
    li,
    load,
    machine,
    run_words,
    store,
)

from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.riscv import Mstatus, PrivilegeMode
from vmxu.rtl.arch.soc import RAM
from vmxu.sim.iss import Retired

MIE = Mstatus.const({"mie": 1}).as_bits()
MPIE = Mstatus.const({"mpie": 1}).as_bits()
MPP = Mstatus.const({"mpp": PrivilegeMode.MACHINE}).as_bits()


def test_taking_a_trap_sets_the_trap_registers() -> None:
    iss, records = run_words(NOP, ECALL)
    assert records[1] == Retired(pc=4, insn=ECALL, trap=TrapCause.ECALL_M)
    assert (iss.mepc, iss.mcause, iss.mtval, iss.pc) == (4, TrapCause.ECALL_M, 0, TRAP_VECTOR)


def test_ebreak_reports_its_pc() -> None:
    iss, records = run_words(NOP, NOP, EBREAK)
    assert records[2].trap == TrapCause.BREAKPOINT
    assert (iss.mepc, iss.mtval) == (8, 8)


def test_trap_moves_mie_to_mpie_and_mret_moves_it_back() -> None:
    iss = machine(li(5, MIE), csrw(Csr.MSTATUS, 5), ECALL)
    for _ in range(4):
        iss.step()
    assert iss.mstatus == MPP | MPIE  # MIE cleared, MPIE = old MIE
    iss.ram.load_image(TRAP_VECTOR, MRET.to_bytes(4, "little"))
    iss.mepc = 0x10
    record = iss.step()
    assert record == Retired(pc=TRAP_VECTOR, insn=MRET)
    assert iss.pc == 0x10 and iss.mstatus == MPP | MPIE | MIE


def test_mret_sets_mpie() -> None:
    iss = machine(MRET)
    iss.mepc = 0x40
    iss.step()
    assert iss.mstatus == MPP | MPIE and iss.pc == 0x40


MISALIGNED_LOADS = [
    (name, offset) for name in ("lh", "lhu", "lw") for offset in (1, 2, 3) if name == "lw" or offset != 2
]


@pytest.mark.parametrize("name, offset", MISALIGNED_LOADS)
def test_misaligned_loads_trap_and_read_nothing(name: str, offset: int) -> None:
    iss, records = run_words(li(11, 0x8000 + offset), li(10, 0x55), load(name, 10, 0, 11))
    assert records[-1] == Retired(pc=16, insn=load(name, 10, 0, 11), trap=TrapCause.LOAD_MISALIGNED)
    assert iss.mtval == 0x8000 + offset and iss.mepc == 16 and iss.x[10] == 0x55


@pytest.mark.parametrize("name, offset", [("sh", 1), ("sh", 3), ("sw", 1), ("sw", 2), ("sw", 3)])
def test_misaligned_stores_trap_and_write_nothing(name: str, offset: int) -> None:
    iss, records = run_words(li(11, 0x8000 + offset), li(12, -1), store(name, 12, 0, 11))
    assert records[-1].trap == TrapCause.STORE_MISALIGNED and records[-1].store is None
    assert iss.mtval == 0x8000 + offset
    assert iss.ram.load(0x8000, 8) == 0


def test_misaligned_beats_access_fault() -> None:
    iss, records = run_words(li(11, 0x4000_0001), load("lw", 10, 0, 11))
    assert records[-1].trap == TrapCause.LOAD_MISALIGNED


@pytest.mark.parametrize("addr", [RAM.end, RAM.end - 2, 0x0080_0000, 0x0100_0000, 0x8000_0000, 0xFFFF_FFFC])
def test_loads_outside_the_map_fault(addr: int) -> None:
    iss, records = run_words(li(11, addr), li(10, 7), load("lh", 10, 0, 11))
    if addr == RAM.end - 2:
        assert records[-1].trap is None  # the last halfword of RAM
        return
    assert records[-1].trap == TrapCause.LOAD_ACCESS_FAULT
    assert iss.mtval == addr and iss.x[10] == 7


@pytest.mark.parametrize("addr", [RAM.end, 0x0100_0000, 0x8000_0000])
def test_stores_outside_the_map_fault(addr: int) -> None:
    iss, records = run_words(li(11, addr), store("sw", 0, 0, 11))
    assert records[-1].trap == TrapCause.STORE_ACCESS_FAULT and records[-1].store is None
    assert iss.mtval == addr


def test_fetch_outside_ram_faults() -> None:
    iss, records = run_words(li(5, RAM.end), jalr(0, 0, 5))
    record = iss.step()
    assert record == Retired(pc=RAM.end, insn=0, trap=1)
    assert (iss.mepc, iss.mcause, iss.mtval) == (RAM.end, 1, RAM.end)


def test_misaligned_jal_traps_on_the_jump_without_linking() -> None:
    iss, records = run_words(jal(1, 6))
    assert records[0] == Retired(pc=0, insn=jal(1, 6), trap=TrapCause.INSTRUCTION_MISALIGNED)
    assert (iss.mepc, iss.mtval, iss.x[1]) == (0, 6, 0)


def test_misaligned_jalr_traps_after_clearing_bit_0() -> None:
    iss, records = run_words(li(5, 0x103), jalr(1, 0, 5))
    assert records[-1].trap == TrapCause.INSTRUCTION_MISALIGNED
    assert (iss.mepc, iss.mtval, iss.x[1]) == (8, 0x102, 0)


def test_jalr_with_bit_0_only_is_aligned() -> None:
    iss, records = run_words(li(5, 0x101), jalr(1, -1, 5))  # 0x100
    assert records[-1].trap is None and iss.pc == 0x100


def test_taken_misaligned_branch_traps_untaken_does_not() -> None:
    iss, records = run_words(branch("beq", 0, 0, 6))
    assert records[0].trap == TrapCause.INSTRUCTION_MISALIGNED and iss.mtval == 6
    iss, records = run_words(addi(5, 0, 1), branch("beq", 0, 5, 6))
    assert records[1].trap is None and iss.pc == 8


def test_a_trapping_instruction_does_not_retire() -> None:
    iss, _ = run_words(NOP, ECALL)
    assert iss.minstret == 1
    assert iss.mcycle == 2  # a record is a cycle in a standalone run
