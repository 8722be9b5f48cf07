"""RV32I / Zicsr / VMX-extension instruction words for the ISS tests, and a harness around ``Iss``.

# Ref: The RISC-V Instruction Set Manual vol. I 20191213, 2.2-2.3 (instruction
# formats and immediates), ch. 24 (opcode map); rtl/arch/isa.py (custom-0).

Encoders follow the assembler's operand order (``lw(rd, imm, rs1)`` is
``lw rd, imm(rs1)``; branch and jump offsets are relative to the instruction).
Kept independent of the ISS's decoder on purpose.
"""

from __future__ import annotations

from vmxu.rtl.arch.isa import encode
from vmxu.sim.iss import Iss, Retired


def _r(funct7: int, rs2: int, rs1: int, funct3: int, rd: int, opcode: int) -> int:
    return funct7 << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode


def _i(imm: int, rs1: int, funct3: int, rd: int, opcode: int) -> int:
    assert -2048 <= imm < 4096, imm
    return (imm & 0xFFF) << 20 | rs1 << 15 | funct3 << 12 | rd << 7 | opcode


def _s(imm: int, rs2: int, rs1: int, funct3: int, opcode: int = 0x23) -> int:
    assert -2048 <= imm < 2048, imm
    imm &= 0xFFF
    return (imm >> 5) << 25 | rs2 << 20 | rs1 << 15 | funct3 << 12 | (imm & 31) << 7 | opcode


def _b(offset: int, rs2: int, rs1: int, funct3: int) -> int:
    assert -4096 <= offset < 4096 and offset % 2 == 0, offset
    o = offset & 0x1FFF
    return (
        (o >> 12 & 1) << 31
        | (o >> 5 & 0x3F) << 25
        | rs2 << 20
        | rs1 << 15
        | funct3 << 12
        | (o >> 1 & 0xF) << 8
        | (o >> 11 & 1) << 7
        | 0x63
    )


def lui(rd: int, imm20: int) -> int:
    return (imm20 & 0xFFFFF) << 12 | rd << 7 | 0x37


def auipc(rd: int, imm20: int) -> int:
    return (imm20 & 0xFFFFF) << 12 | rd << 7 | 0x17


def jal(rd: int, offset: int) -> int:
    assert -(1 << 20) <= offset < (1 << 20) and offset % 2 == 0
    o = offset & 0x1FFFFF
    return (o >> 20 & 1) << 31 | (o >> 1 & 0x3FF) << 21 | (o >> 11 & 1) << 20 | (o >> 12 & 0xFF) << 12 | rd << 7 | 0x6F


def jalr(rd: int, imm: int, rs1: int) -> int:
    return _i(imm, rs1, 0, rd, 0x67)


BRANCH_FUNCT3 = {"beq": 0, "bne": 1, "blt": 4, "bge": 5, "bltu": 6, "bgeu": 7}


def branch(name: str, rs1: int, rs2: int, offset: int) -> int:
    return _b(offset, rs2, rs1, BRANCH_FUNCT3[name])


LOAD_FUNCT3 = {"lb": 0, "lh": 1, "lw": 2, "lbu": 4, "lhu": 5}
STORE_FUNCT3 = {"sb": 0, "sh": 1, "sw": 2}


def load(name: str, rd: int, imm: int, rs1: int) -> int:
    return _i(imm, rs1, LOAD_FUNCT3[name], rd, 0x03)


def store(name: str, rs2: int, imm: int, rs1: int) -> int:
    return _s(imm, rs2, rs1, STORE_FUNCT3[name])


def lw(rd: int, imm: int, rs1: int) -> int:
    return load("lw", rd, imm, rs1)


def sw(rs2: int, imm: int, rs1: int) -> int:
    return store("sw", rs2, imm, rs1)


OP_IMM_FUNCT3 = {"addi": 0, "slti": 2, "sltiu": 3, "xori": 4, "ori": 6, "andi": 7}
SHIFT_IMM = {"slli": (1, 0), "srli": (5, 0), "srai": (5, 0x20)}


def op_imm(name: str, rd: int, rs1: int, imm: int) -> int:
    if name in SHIFT_IMM:
        funct3, funct7 = SHIFT_IMM[name]
        assert 0 <= imm < 32
        return _r(funct7, imm, rs1, funct3, rd, 0x13)
    assert -2048 <= imm < 2048
    return _i(imm, rs1, OP_IMM_FUNCT3[name], rd, 0x13)


def addi(rd: int, rs1: int, imm: int) -> int:
    return op_imm("addi", rd, rs1, imm)


OP_FUNCTS = {
    "add": (0, 0),
    "sub": (0, 0x20),
    "sll": (1, 0),
    "slt": (2, 0),
    "sltu": (3, 0),
    "xor": (4, 0),
    "srl": (5, 0),
    "sra": (5, 0x20),
    "or": (6, 0),
    "and": (7, 0),
}


def op(name: str, rd: int, rs1: int, rs2: int) -> int:
    funct3, funct7 = OP_FUNCTS[name]
    return _r(funct7, rs2, rs1, funct3, rd, 0x33)


CSR_FUNCT3 = {"csrrw": 1, "csrrs": 2, "csrrc": 3, "csrrwi": 5, "csrrsi": 6, "csrrci": 7}


def csr(name: str, rd: int, number: int, rs1_or_uimm: int) -> int:
    return (number & 0xFFF) << 20 | rs1_or_uimm << 15 | CSR_FUNCT3[name] << 12 | rd << 7 | 0x73


def csrr(rd: int, number: int) -> int:
    return csr("csrrs", rd, number, 0)


def csrw(number: int, rs1: int) -> int:
    return csr("csrrw", 0, number, rs1)


ECALL = 0x0000_0073
EBREAK = 0x0010_0073
MRET = 0x3020_0073
WFI = 0x1050_0073
FENCE = 0x0FF0_000F
FENCE_I = 0x0000_100F
NOP = 0x0000_0013


def li(rd: int, value: int) -> list[int]:
    """``li rd, value`` as LUI + ADDI (always two words)."""
    value &= 0xFFFF_FFFF
    low = value & 0xFFF
    if low >= 0x800:
        low -= 0x1000
    high = ((value - low) >> 12) & 0xFFFFF
    return [lui(rd, high), addi(rd, rd, low)]


def ext(name: str, rd: int = 0, rs1: int = 0, rs2: int = 0) -> int:
    """A VMX-extension word, from rtl/arch/isa.py."""
    return encode(name, rd, rs1, rs2)


def image(*words: int | list[int]) -> bytes:
    flat: list[int] = []
    for w in words:
        flat.extend(w if isinstance(w, list) else [w])
    return b"".join(word.to_bytes(4, "little") for word in flat)


#: Where the tests put the trap vector: a loop that never returns (``j .``).
TRAP_VECTOR = 0x1000


def machine(*words: int | list[int], trap_vector: int = TRAP_VECTOR, **kwargs) -> Iss:
    """An ISS with ``words`` at 0, mtvec set to a ``j .`` at ``trap_vector``."""
    iss = Iss(image(*words), **kwargs)
    iss.ram.load_image(trap_vector, image(jal(0, 0)))
    iss.mtvec = trap_vector
    return iss


def run_words(*words: int | list[int], **kwargs) -> tuple[Iss, list[Retired]]:
    """Run the words (one record each, no interrupts) and return the ISS and the records."""
    iss = machine(*words, **kwargs)
    count = sum(len(w) if isinstance(w, list) else 1 for w in words)
    return iss, [iss.step() for _ in range(count)]
