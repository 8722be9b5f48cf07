"""sim/rv32/asm.py against encodings from the RISC-V spec and objdump, and its range checks."""

import pytest

from vmxu.rtl.arch.isa import INSTRUCTIONS, decode, encode
from vmxu.sim.rv32 import asm

KNOWN = [
    # (word, objdump)
    (asm.addi(1, 0, 1), 0x00100093),  # addi ra,zero,1
    (asm.addi("a0", "a0", -1), 0xFFF50513),  # addi a0,a0,-1
    (asm.add(3, 1, 2), 0x002081B3),
    (asm.sub(3, 1, 2), 0x402081B3),
    (asm.and_(10, 11, 12), 0x00C5F533),
    (asm.or_(10, 11, 12), 0x00C5E533),
    (asm.srai(1, 1, 3), 0x4030D093),
    (asm.slli(5, 6, 31), 0x01F31293),
    (asm.lui(5, 0x12345), 0x123452B7),
    (asm.auipc(1, 0), 0x00000097),
    (asm.lw(4, 0x100, 0), 0x10002203),
    (asm.lbu("a5", 0, "a0"), 0x00054783),
    (asm.sw(3, 0x100, 0), 0x10302023),
    (asm.sb(2, -1, 1), 0xFE208FA3),
    (asm.beq(1, 2, 8), 0x00208463),
    (asm.bne("a0", "zero", -8), 0xFE051CE3),
    (asm.jal(1, 8), 0x008000EF),
    (asm.jal(0, -4), 0xFFDFF06F),  # j .-4
    (asm.jalr(1, 0, 5), 0x000280E7),  # jalr t0
    (asm.ret(), 0x00008067),
    (asm.csrw("mtvec", "t0"), 0x30529073),
    (asm.csrr("a0", "mhartid"), 0xF1402573),
    (asm.csrsi("mstatus", 8), 0x30046073),
    (asm.csrrc(0, 0x304, 6), 0x30433073),
    (asm.ecall(), 0x00000073),
    (asm.ebreak(), 0x00100073),
    (asm.mret(), 0x30200073),
    (asm.wfi(), 0x10500073),
    (asm.fence(), 0x0FF0000F),
    (asm.fence_i(), 0x0000100F),
    (asm.nop(), 0x00000013),
]


@pytest.mark.parametrize("word, expected", KNOWN, ids=[f"{e:#010x}" for _, e in KNOWN])
def test_encoding_matches_objdump(word, expected):
    assert word == expected


def test_li_forms():
    assert asm.li(1, 5) == [0x00500093]
    assert asm.li(1, 0xFFFF_F800) == [0x80000093]  # addi ra,zero,-2048
    assert asm.li(1, 0x12345678) == [0x123450B7, 0x67808093]
    assert asm.li(1, 0x800) == [0x000010B7, 0x80008093]  # lui ra,0x1; addi ra,ra,-2048


def test_vmx_extension_comes_from_the_isa_table():
    assert asm.vmxon(1, 2) == 0x0020800B == encode("vmxon", rs1=1, rs2=2)
    assert asm.vmread("a0", "a1") == encode("vmread", rd=10, rs1=11)
    assert asm.vmlaunch() == encode("vmlaunch")
    for insn in INSTRUCTIONS:
        assert decode(getattr(asm, insn.name)(*[7] * _fields(insn))) is insn


def _fields(insn):
    from vmxu.rtl.arch.isa import Operand

    return sum(role != Operand.NONE for role in (insn.rd, insn.rs1, insn.rs2))


@pytest.mark.parametrize(
    "call",
    [
        lambda: asm.addi(1, 0, 2048),
        lambda: asm.addi(1, 0, -2049),
        lambda: asm.sw(1, 2048, 0),
        lambda: asm.beq(1, 2, 4096),
        lambda: asm.beq(1, 2, -4098),
        lambda: asm.beq(1, 2, 3),
        lambda: asm.jal(1, 1 << 20),
        lambda: asm.jal(1, 1),
        lambda: asm.lui(1, 1 << 20),
        lambda: asm.lui(1, -1),
        lambda: asm.slli(1, 1, 32),
        lambda: asm.csrrwi(1, "mscratch", 32),
        lambda: asm.addi(32, 0, 0),
        lambda: asm.addi("q0", 0, 0),
        lambda: asm.csrr(1, 0x1000),
        lambda: asm.csrr(1, "nosuchcsr"),
        lambda: asm.li(1, 1 << 32),
        lambda: asm.vmxon(1),
    ],
)
def test_out_of_range_operands_raise(call):
    with pytest.raises((ValueError, TypeError)):
        call()


def test_branch_limits_are_accepted():
    assert asm.beq(0, 0, 4094) >> 31 == 0
    assert asm.beq(0, 0, -4096) >> 31 == 1
    assert asm.jal(0, (1 << 20) - 2) >> 31 == 0
    assert asm.addi(1, 1, 2047) >> 20 == 2047


def test_program_resolves_labels():
    p = asm.Program(base=0x100)
    p.label("top")
    p.emit(asm.nop())
    p.branch("bne", 1, 0, "top")
    p.jal(0, "end")
    p.la(5, "end")
    p.label("end")
    p.emit(asm.nop())
    words = p.words()
    assert words[1] == asm.bne(1, 0, -4)
    assert words[2] == asm.jal(0, 12)
    assert words[3:5] == [asm.lui(5, 0), asm.addi(5, 5, 0x114)]
    with pytest.raises(ValueError, match="undefined label"):
        q = asm.Program()
        q.jal(0, "nowhere")
        q.words()
