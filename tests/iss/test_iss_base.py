"""RV32I on the ISS, instruction class by instruction class (docs/cpu.md "Base ISA").

# Ref: The RISC-V Instruction Set Manual vol. I 20191213, ch. 2 (RV32I).
"""

from __future__ import annotations

import pytest
from iss_words import (
    FENCE,
    FENCE_I,
    NOP,
    addi,
    auipc,
    branch,
    image,
    jal,
    jalr,
    li,
    load,
    lui,
    lw,
    op,
    op_imm,
    run_words,
    store,
    sw,
)

from vmxu.rtl.arch.isa import TrapCause
from vmxu.sim.iss import Iss, Retired, Store

M32 = 0xFFFF_FFFF
DATA = 0x8000


def result_of(words: list[int], rd: int = 10) -> int:
    iss, _ = run_words(*words)
    return iss.x[rd]


@pytest.mark.parametrize(
    "name, a, b, expected",
    [
        ("add", 0x7FFF_FFFF, 1, 0x8000_0000),
        ("add", 0xFFFF_FFFF, 1, 0),
        ("sub", 0, 1, 0xFFFF_FFFF),
        ("sub", 0x8000_0000, 1, 0x7FFF_FFFF),
        ("sll", 1, 31, 0x8000_0000),
        ("sll", 1, 32 + 3, 8),  # only rs2[4:0] counts
        ("srl", 0x8000_0000, 31, 1),
        ("sra", 0x8000_0000, 31, 0xFFFF_FFFF),
        ("sra", 0x4000_0000, 30, 1),
        ("slt", 0xFFFF_FFFF, 0, 1),  # -1 < 0
        ("slt", 0, 0xFFFF_FFFF, 0),
        ("sltu", 0xFFFF_FFFF, 0, 0),
        ("sltu", 0, 0xFFFF_FFFF, 1),
        ("xor", 0xF0F0_F0F0, 0xFF00_FF00, 0x0FF0_0FF0),
        ("or", 0xF0F0_0000, 0x0000_0F0F, 0xF0F0_0F0F),
        ("and", 0xF0F0_F0F0, 0xFF00_FF00, 0xF000_F000),
    ],
)
def test_register_operations(name: str, a: int, b: int, expected: int) -> None:
    assert result_of([li(11, a), li(12, b), op(name, 10, 11, 12)]) == expected


@pytest.mark.parametrize(
    "name, a, imm, expected",
    [
        ("addi", 5, -6, 0xFFFF_FFFF),
        ("addi", 0x7FFF_FFFF, 1, 0x8000_0000),
        ("slti", 0xFFFF_FFFF, 0, 1),
        ("slti", 1, -1, 0),
        ("sltiu", 5, -1, 1),  # the immediate is sign-extended, then compared unsigned
        ("sltiu", 0xFFFF_FFFF, -1, 0),
        ("xori", 0x1234_5678, -1, 0xEDCB_A987),
        ("ori", 0x1000_0000, 0x7FF, 0x1000_07FF),
        ("andi", 0xFFFF_FFFF, -2048, 0xFFFF_F800),
        ("slli", 3, 31, 0x8000_0000),
        ("srli", 0x8000_0000, 4, 0x0800_0000),
        ("srai", 0x8000_0000, 4, 0xF800_0000),
        ("srai", 0x7000_0000, 0, 0x7000_0000),
    ],
)
def test_immediate_operations(name: str, a: int, imm: int, expected: int) -> None:
    assert result_of([li(11, a), op_imm(name, 10, 11, imm)]) == expected


def test_lui_and_auipc() -> None:
    iss, records = run_words(NOP, lui(10, 0xFFFFF), auipc(11, 0x80000))
    assert iss.x[10] == 0xFFFF_F000
    assert iss.x[11] == (0x8000_0000 + 8) & M32
    assert records[2] == Retired(pc=8, insn=auipc(11, 0x80000), rd=11, rd_value=0x8000_0008)


def test_x0_ignores_writes_and_records_no_destination() -> None:
    iss, records = run_words(addi(0, 0, 7), lui(0, 1), addi(10, 0, 0))
    assert iss.x[0] == 0 and iss.x[10] == 0
    assert records[0].rd == 0 and records[0].rd_value == 0


def test_jal_links_and_jumps() -> None:
    iss = Iss(image(jal(1, 12), NOP, NOP, NOP))
    assert iss.step() == Retired(pc=0, insn=jal(1, 12), rd=1, rd_value=4)
    assert iss.pc == 12


def test_jal_backwards() -> None:
    iss = Iss(image(NOP, NOP, jal(5, -8)))
    for _ in range(3):
        iss.step()
    assert iss.pc == 0 and iss.x[5] == 12


def test_jalr_clears_bit_0_of_the_target() -> None:
    iss, records = run_words(li(6, 0x21), jalr(1, 3, 6))  # 0x21 + 3 = 0x24
    assert iss.pc == 0x24
    assert records[-1].rd == 1 and records[-1].rd_value == 12


def test_jalr_reads_rs1_before_writing_rd() -> None:
    iss, _ = run_words(li(5, 0x40), jalr(5, 0, 5))
    assert iss.pc == 0x40 and iss.x[5] == 12


@pytest.mark.parametrize(
    "name, a, b, taken",
    [
        ("beq", 5, 5, True),
        ("beq", 5, 6, False),
        ("bne", 5, 6, True),
        ("bne", 5, 5, False),
        ("blt", 0xFFFF_FFFF, 0, True),
        ("blt", 0, 0xFFFF_FFFF, False),
        ("bge", 0, 0xFFFF_FFFF, True),
        ("bge", 0x8000_0000, 0x8000_0000, True),
        ("bge", 0x8000_0000, 0, False),
        ("bltu", 0, 0xFFFF_FFFF, True),
        ("bltu", 0xFFFF_FFFF, 0, False),
        ("bgeu", 0xFFFF_FFFF, 0, True),
        ("bgeu", 0, 1, False),
    ],
)
def test_branches(name: str, a: int, b: int, taken: bool) -> None:
    iss, records = run_words(li(11, a), li(12, b), branch(name, 11, 12, 0x100))
    assert iss.pc == (0x10 + 0x100 if taken else 0x14)
    assert records[-1] == Retired(pc=0x10, insn=branch(name, 11, 12, 0x100))
    assert records[-1].trap is None


def test_branch_backwards() -> None:
    iss = Iss(image(NOP, NOP, branch("beq", 0, 0, -8)))
    for _ in range(3):
        iss.step()
    assert iss.pc == 0


@pytest.mark.parametrize(
    "name, offset, expected",
    [
        ("lb", 0, 0xFFFF_FF81),
        ("lb", 1, 0x0000_0072),
        ("lbu", 0, 0x0000_0081),
        ("lbu", 3, 0x0000_00F4),
        ("lh", 0, 0x0000_7281),
        ("lh", 2, 0xFFFF_F463),
        ("lhu", 2, 0x0000_F463),
        ("lw", 0, 0xF463_7281),
    ],
)
def test_loads_extend(name: str, offset: int, expected: int) -> None:
    iss = Iss(image(li(11, DATA), load(name, 10, offset, 11)))
    iss.ram.store(DATA, 4, 0xF463_7281)
    iss.step(), iss.step()
    record = iss.step()
    assert iss.x[10] == expected
    assert record.rd == 10 and record.rd_value == expected and record.store is None


def test_load_negative_offset() -> None:
    iss = Iss(image(li(11, DATA + 0x10), lw(10, -16, 11)))
    iss.ram.store(DATA, 4, 0xCAFE_F00D)
    for _ in range(3):
        iss.step()
    assert iss.x[10] == 0xCAFE_F00D


@pytest.mark.parametrize(
    "name, offset, memory, store_record",
    [
        ("sb", 0, 0x1111_11EF, Store(DATA, 0x0000_00EF, 0b0001)),
        ("sb", 2, 0x11EF_1111, Store(DATA + 2, 0x00EF_0000, 0b0100)),
        ("sb", 3, 0xEF11_1111, Store(DATA + 3, 0xEF00_0000, 0b1000)),
        ("sh", 0, 0x1111_BEEF, Store(DATA, 0x0000_BEEF, 0b0011)),
        ("sh", 2, 0xBEEF_1111, Store(DATA + 2, 0xBEEF_0000, 0b1100)),
        ("sw", 0, 0xDEAD_BEEF, Store(DATA, 0xDEAD_BEEF, 0b1111)),
    ],
)
def test_stores_write_their_lanes(name: str, offset: int, memory: int, store_record: Store) -> None:
    iss = Iss(image(li(11, DATA), li(12, 0xDEAD_BEEF), store(name, 12, offset, 11)))
    iss.ram.store(DATA, 4, 0x1111_1111)
    for _ in range(4):
        iss.step()
    record = iss.step()
    assert iss.ram.load(DATA, 4) == memory
    assert record.store == store_record and record.rd == 0


def test_store_then_load_round_trip() -> None:
    iss, _ = run_words(li(11, DATA), li(12, 0x0BAD_CAFE), sw(12, 4, 11), lw(10, 4, 11))
    assert iss.x[10] == 0x0BAD_CAFE


@pytest.mark.parametrize("word", [FENCE, FENCE_I, 0x8330_000F])  # fence, fence.i, fence.tso
def test_fences_do_nothing(word: int) -> None:
    iss, records = run_words(word)
    assert records[0] == Retired(pc=0, insn=word) and iss.pc == 4


@pytest.mark.parametrize(
    "word, what",
    [
        (0x0000_0000, "all zeros"),
        (0xFFFF_FFFF, "all ones"),
        (0x0000_4501, "a compressed instruction (c.li)"),
        (0x0200_0533, "mul (M extension)"),
        (0x4000_1533, "sll with funct7 0x20"),
        (0x4000_6533, "or with funct7 0x20"),
        (0x0200_1513, "slli with shamt[5] set"),
        (0x8000_5513, "srli with funct7 0x40"),
        (0x0000_3503, "ld (RV64)"),
        (0x0000_6503, "lwu (RV64)"),
        (0x0000_3023, "sd (RV64)"),
        (0x0000_2063, "branch funct3 2"),
        (0x0000_1567, "jalr funct3 1"),
        (0x0000_200F, "misc-mem funct3 2"),
        (0x0000_4073, "system funct3 4"),
        (0x1020_0073, "sret"),
        (0x0020_0073, "uret"),
        (0x7B20_0073, "dret"),
        (0x0000_002B, "custom-1"),
        (0x0000_700B, "custom-0 funct3 7"),
        (0x1400_000B, "custom-0 VMX group funct7 10"),
        (0x0600_300B, "custom-0 IN with size 3"),
    ],
)
def test_unimplemented_words_are_illegal(word: str, what: str) -> None:
    iss, records = run_words(word)
    assert records[0] == Retired(pc=0, insn=word, trap=TrapCause.ILLEGAL_INSTRUCTION), what
    assert iss.mtval == word and iss.mepc == 0 and iss.mcause == TrapCause.ILLEGAL_INSTRUCTION
    assert not iss.implements(word)


def test_fence_ignores_its_reserved_fields() -> None:
    word = FENCE | (5 << 7) | (6 << 15)  # rd and rs1 set
    _, records = run_words(word)
    assert records[0].trap is None
