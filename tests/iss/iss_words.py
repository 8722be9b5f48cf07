"""RV32I / Zicsr / VMX-extension instruction words for the ISS tests, and a harness around ``Iss``.

# Ref: The RISC-V Instruction Set Manual vol. I 20191213, 2.2-2.3 (instruction
# formats and immediates), ch. 24 (opcode map); rtl/arch/isa.py (custom-0).

The words come from sim/rv32/asm.py (an encoder written apart from the ISS's
decoder, and checked against the spec's and objdump's encodings in tests/cpu);
this module adds name-keyed helpers and a harness around ``Iss``.
"""

from __future__ import annotations

from vmxu.sim.iss import Iss, Retired
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import addi, auipc, csrr, csrw, jal, jalr, lui, lw, sw  # noqa: F401 (re-exported)

BRANCHES = ("beq", "bne", "blt", "bge", "bltu", "bgeu")
LOADS = ("lb", "lh", "lw", "lbu", "lhu")
OPS = ("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and")
OP_IMMS = ("addi", "slti", "sltiu", "xori", "ori", "andi")
SHIFT_IMMS = ("slli", "srli", "srai")


def branch(name: str, rs1: int, rs2: int, offset: int) -> int:
    return getattr(asm, name)(rs1, rs2, offset)


def load(name: str, rd: int, imm: int, rs1: int) -> int:
    return getattr(asm, name)(rd, imm, rs1)


def store(name: str, rs2: int, imm: int, rs1: int) -> int:
    return getattr(asm, name)(rs2, imm, rs1)


def op_imm(name: str, rd: int, rs1: int, imm: int) -> int:
    return getattr(asm, name)(rd, rs1, imm)


def op(name: str, rd: int, rs1: int, rs2: int) -> int:
    return getattr(asm, {"or": "or_", "and": "and_"}.get(name, name))(rd, rs1, rs2)


def csr(name: str, rd: int, number: int, rs1_or_uimm: int) -> int:
    return getattr(asm, name)(rd, number, rs1_or_uimm)


ECALL = asm.ecall()
EBREAK = asm.ebreak()
MRET = asm.mret()
WFI = asm.wfi()
FENCE = asm.fence()
FENCE_I = 0x0000_100F
NOP = asm.nop()


def li(rd: int, value: int) -> list[int]:
    """``li rd, value`` as LUI + ADDI, always two words (the tests count pcs)."""
    value &= 0xFFFF_FFFF
    low = value & 0xFFF
    if low >= 0x800:
        low -= 0x1000
    return [lui(rd, ((value - low) >> 12) & 0xFFFFF), addi(rd, rd, low)]


def ext(name: str, rd: int = 0, rs1: int = 0, rs2: int = 0) -> int:
    """A VMX-extension word, from rtl/arch/isa.py."""
    return asm.encode(name, rd, rs1, rs2)


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
