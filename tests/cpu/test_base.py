"""RV32I on the core: every instruction, its edge cases, misaligned accesses and jumps, access faults.

docs/cpu.md "Base ISA"; The RISC-V Instruction Set Manual, Volume I, chapter 2.
Results are read from the trace (rd and its value) and from the bench's memory.
"""

import pytest
from core_bench import ERROR_ADDRESS, HALT, RAM_SIZE
from programs import EDGES, HANDLER_REGS, MASK, WAITS, retired, run, signed, traps, with_handler

from vmxu.rtl.arch.isa import TrapCause
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program, li

REGISTER_OPS = {
    "add": lambda a, b: (a + b) & MASK,
    "sub": lambda a, b: (a - b) & MASK,
    "sll": lambda a, b: (a << (b & 31)) & MASK,
    "slt": lambda a, b: int(signed(a) < signed(b)),
    "sltu": lambda a, b: int(a < b),
    "xor": lambda a, b: a ^ b,
    "srl": lambda a, b: a >> (b & 31),
    "sra": lambda a, b: (signed(a) >> (b & 31)) & MASK,
    "or_": lambda a, b: a | b,
    "and_": lambda a, b: a & b,
}
IMMEDIATE_OPS = {
    "addi": REGISTER_OPS["add"],
    "slti": REGISTER_OPS["slt"],
    "sltiu": REGISTER_OPS["sltu"],
    "xori": REGISTER_OPS["xor"],
    "ori": REGISTER_OPS["or_"],
    "andi": REGISTER_OPS["and_"],
}
SHIFT_IMMEDIATE_OPS = {"slli": REGISTER_OPS["sll"], "srli": REGISTER_OPS["srl"], "srai": REGISTER_OPS["sra"]}
IMMEDIATES = (0, 1, -1, 2047, -2048, 0x555, -0x556)
SHIFTS = (0, 1, 4, 31)


def _check_results(bench, expected):
    """``expected``: [(pc, rd, value)] for the instructions of interest, in order."""
    by_pc = {r.pc: r for r in retired(bench.records)}
    for pc, rd, value in expected:
        record = by_pc[pc]
        assert (record.rd, record.rd_value) == (rd, value), f"{record}: expected x{rd} = {value:#x}"


@pytest.mark.parametrize("op", REGISTER_OPS)
def test_register_register_operations(op):
    """Every R-type operation on pairs of edge values (wrap, signed vs unsigned, shift amounts 0..31)."""
    p = Program()
    expected = []
    pairs = [(a, b) for a in EDGES for b in EDGES[:5]] + [(0x8000_0001, s) for s in (0, 1, 15, 31, 32 + 3)]
    for a, b in pairs:
        p.emit(li(1, a) if a else [], li(2, b))
        expected.append((p.emit(getattr(asm, op)(3, 1, 2)), 3, REGISTER_OPS[op](a, b & MASK)))
    p.emit(HALT)
    _check_results(run(p, waits=(0,)), expected)


@pytest.mark.parametrize("op", list(IMMEDIATE_OPS) + list(SHIFT_IMMEDIATE_OPS))
def test_register_immediate_operations(op):
    """I-type operations: the immediate is sign-extended (SLTIU compares it unsigned after extension)."""
    p = Program()
    expected = []
    shift = op in SHIFT_IMMEDIATE_OPS
    fn = {**IMMEDIATE_OPS, **SHIFT_IMMEDIATE_OPS}[op]
    for a in EDGES:
        p.emit(li(5, a))
        for imm in SHIFTS if shift else IMMEDIATES:
            expected.append((p.emit(getattr(asm, op)(6, 5, imm)), 6, fn(a, imm & MASK)))
    p.emit(HALT)
    _check_results(run(p, waits=(0,)), expected)


def test_lui_auipc():
    p = Program(base=0)
    p.emit(asm.nop())
    lui = p.emit(asm.lui(1, 0xFFFFF))
    lui0 = p.emit(asm.lui(2, 0))
    auipc = p.emit(asm.auipc(3, 0x80000))
    auipc0 = p.emit(asm.auipc(4, 0))
    p.emit(HALT)
    _check_results(
        run(p),
        [(lui, 1, 0xFFFFF000), (lui0, 2, 0), (auipc, 3, (auipc + 0x8000_0000) & MASK), (auipc0, 4, auipc0)],
    )


def test_x0_is_zero_and_ignores_writes():
    p = Program()
    w = p.emit(asm.addi(0, 0, 5))
    p.emit(asm.lui(0, 0x12345), asm.jal(0, 4), asm.lw(0, 0x100, 0))
    read = p.emit(asm.addi(1, 0, 0))
    added = p.emit(asm.add(2, 0, 0))
    p.emit(HALT)
    bench = run(p, data={0x100: 0xDEADBEEF})
    records = retired(bench.records)
    assert all(r.rd == 0 and r.rd_value == 0 for r in records[:4]), "writes to x0 are not writes"
    _check_results(bench, [(read, 1, 0), (added, 2, 0)])
    assert w == 0


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
def test_loads_extend_and_select_bytes(waits):
    """LB/LH sign-extend, LBU/LHU zero-extend, every byte and halfword offset."""
    base = 0x200
    word = 0x80FF_7F01
    p = Program()
    expected = []
    p.emit(li(1, base))
    for offset in range(4):
        byte = (word >> (8 * offset)) & 0xFF
        expected.append((p.emit(asm.lb(2, offset, 1)), 2, (byte - 0x100 if byte & 0x80 else byte) & MASK))
        expected.append((p.emit(asm.lbu(3, offset, 1)), 3, byte))
    for offset in (0, 2):
        half = (word >> (8 * offset)) & 0xFFFF
        expected.append((p.emit(asm.lh(4, offset, 1)), 4, (half - 0x10000 if half & 0x8000 else half) & MASK))
        expected.append((p.emit(asm.lhu(5, offset, 1)), 5, half))
    expected.append((p.emit(asm.lw(6, 0, 1)), 6, word))
    expected.append((p.emit(asm.lw(7, -4, 1)), 7, 0x1234_5678))
    p.emit(HALT)
    _check_results(run(p, waits=waits, data={base: word, base - 4: 0x1234_5678}), expected)


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
def test_stores_write_only_their_bytes(waits):
    base = 0x300
    p = Program()
    p.emit(li(1, base), li(2, 0x1122_3344))
    stores = []
    for offset in range(4):
        stores.append(p.emit(asm.sb(2, offset + 0, 1)))  # byte 0x44 to each lane of word 0
    stores.append(p.emit(asm.sh(2, 4, 1)))
    stores.append(p.emit(asm.sh(2, 10, 1)))
    stores.append(p.emit(asm.sw(2, 12, 1)))
    stores.append(p.emit(asm.sb(2, -1, 1)))
    p.emit(HALT)
    initial = {base + i: 0xAAAA_AAAA for i in range(-4, 16, 4)}
    bench = run(p, waits=waits, data=initial)
    assert bench.word(base) == 0x4444_4444
    assert bench.word(base + 4) == 0xAAAA_3344
    assert bench.word(base + 8) == 0x3344_AAAA
    assert bench.word(base + 12) == 0x1122_3344
    assert bench.word(base - 4) == 0x44AA_AAAA
    records = {r.pc: r for r in bench.records}
    lanes = [
        (base, 0x0000_0044, 0b0001),
        (base + 1, 0x0000_4400, 0b0010),
        (base + 2, 0x0044_0000, 0b0100),
        (base + 3, 0x4400_0000, 0b1000),
        (base + 4, 0x0000_3344, 0b0011),
        (base + 10, 0x3344_0000, 0b1100),
        (base + 12, 0x1122_3344, 0b1111),
        (base - 1, 0x4400_0000, 0b1000),
    ]
    for pc, (addr, data, mask) in zip(stores, lanes, strict=True):
        r = records[pc]
        assert r.store and (r.store_addr, r.store_data, r.store_mask) == (addr, data, mask), str(r)
        assert r.rd == 0
    assert not any(r.store for r in bench.records if r.pc not in stores)


BRANCHES = {
    "beq": lambda a, b: a == b,
    "bne": lambda a, b: a != b,
    "blt": lambda a, b: signed(a) < signed(b),
    "bge": lambda a, b: signed(a) >= signed(b),
    "bltu": lambda a, b: a < b,
    "bgeu": lambda a, b: a >= b,
}
BRANCH_PAIRS = [(1, 1), (1, 2), (2, 1), (0xFFFF_FFFF, 1), (1, 0xFFFF_FFFF), (0x8000_0000, 0x7FFF_FFFF), (0, 0)]


@pytest.mark.parametrize("op", BRANCHES)
def test_branches_taken_and_not_taken_both_directions(op):
    """A forward branch over a marker, and a backward one into a stub that jumps back."""
    for a, b in BRANCH_PAIRS:
        p = Program()
        p.emit(li(1, a), li(2, b))
        p.jal(0, "start")
        p.label("back")
        p.emit(asm.addi(11, 0, 1))  # backward target
        p.jal(0, "after_back")
        p.label("start")
        p.branch(op, 1, 2, "forward")
        p.emit(asm.addi(10, 0, 1))  # skipped when taken
        p.label("forward")
        p.branch(op, 1, 2, "back")
        p.label("after_back")
        p.emit(HALT)
        bench = run(p, waits=(0, 1))
        taken = BRANCHES[op](a, b)
        regs = bench.registers
        assert regs[10] == (0 if taken else 1), f"{op} {a:#x}, {b:#x} forward"
        assert regs[11] == (1 if taken else 0), f"{op} {a:#x}, {b:#x} backward"
        branch_records = [r for r in bench.records if (r.insn & 0x7F) == 0b1100011]
        assert all(r.rd == 0 for r in branch_records)


def test_jal_and_jalr_link_and_jump():
    p = Program()
    jal = p.jal(1, "target")
    p.emit(HALT)
    p.label("target")
    p.la(5, "second")
    jalr = p.emit(asm.jalr(6, 1, 5))  # to second+1: bit 0 cleared
    p.emit(HALT)
    p.label("second")
    self_link = p.emit(asm.jalr(5, 12, 5))  # rd = rs1: the target uses the old value
    p.emit(HALT, HALT)
    p.label("third")
    p.emit(asm.addi(7, 0, 7), HALT)
    bench = run(p)
    pcs = [r.pc for r in bench.records]
    assert pcs[:2] == [jal, p.labels["target"]]
    _check_results(bench, [(jal, 1, jal + 4), (jalr, 6, jalr + 4), (self_link, 5, self_link + 4)])
    assert bench.records[-2].pc == p.labels["third"]
    assert bench.registers[7] == 7


def test_fence_and_fence_i_do_nothing():
    p = Program()
    p.emit(asm.fence(), asm.fence_i(), asm.fence(0b0011, 0b1100) | (5 << 15) | (3 << 7), asm.addi(1, 0, 1), HALT)
    bench = run(p)
    assert not traps(bench.records)
    assert [r.rd for r in bench.records[:3]] == [0, 0, 0]


def _trap_registers(bench):
    return [bench.registers[r] for r in HANDLER_REGS]


@pytest.mark.parametrize(
    "load, offset",
    [(asm.lh, 1), (asm.lhu, 3), (asm.lw, 1), (asm.lw, 2), (asm.lw, 3)],
)
def test_misaligned_loads_trap(load, offset):
    """Cause 4, mtval = the address; rd is not written; nothing is read."""

    def body(p):
        p.emit(li(1, 0x400), li(2, 0x55))
        p.label("load")
        p.emit(load(2, offset, 1))

    p = with_handler(body)
    bench = run(p)
    assert _trap_registers(bench) == [TrapCause.LOAD_MISALIGNED, p.labels["load"], 0x400 + offset]
    assert bench.registers[2] == 0x55
    record = traps(bench.records)[0]
    assert (record.pc, record.cause, record.rd) == (p.labels["load"], TrapCause.LOAD_MISALIGNED, 0)


@pytest.mark.parametrize("store, offset", [(asm.sh, 1), (asm.sh, 3), (asm.sw, 2), (asm.sw, 1)])
def test_misaligned_stores_trap_and_write_nothing(store, offset):
    def body(p):
        p.emit(li(1, 0x400), li(2, -1))
        p.label("store")
        p.emit(store(2, offset, 1))

    p = with_handler(body)
    bench = run(p, data={0x400: 0, 0x404: 0})
    assert _trap_registers(bench) == [TrapCause.STORE_MISALIGNED, p.labels["store"], 0x400 + offset]
    assert bench.word(0x400) == 0 and bench.word(0x404) == 0
    assert not any(r.store for r in bench.records)


def test_aligned_byte_and_half_accesses_do_not_trap():
    p = with_handler(lambda p: p.emit(li(1, 0x401), asm.lb(2, 0, 1), asm.sb(2, 0, 1), asm.lh(3, 1, 1), asm.sh(3, 1, 1)))
    assert not traps(run(p).records)


def test_misaligned_jalr_traps_on_the_jump():
    """Cause 0, mepc = the JALR, mtval = the target (bit 0 cleared); rd is not written."""

    def body(p):
        p.emit(li(1, 0x402), li(5, 0x77))
        p.label("jump")
        p.emit(asm.jalr(5, 1, 1))  # 0x403 -> 0x402

    p = with_handler(body)
    bench = run(p)
    assert _trap_registers(bench) == [TrapCause.INSTRUCTION_MISALIGNED, p.labels["jump"], 0x402]
    assert bench.registers[5] == 0x77


def test_misaligned_jal_traps():
    def body(p):
        p.label("jump")
        p.emit(asm.jal(1, 6))

    p = with_handler(body)
    bench = run(p)
    assert _trap_registers(bench) == [TrapCause.INSTRUCTION_MISALIGNED, p.labels["jump"], p.labels["jump"] + 6]
    assert bench.registers[1] == 0


def test_misaligned_branch_traps_only_when_taken():
    def body(p):
        p.emit(li(1, 1))
        p.emit(asm.beq(1, 0, 6))  # not taken: no trap
        p.label("branch")
        p.emit(asm.bne(1, 0, -6))  # taken

    p = with_handler(body)
    bench = run(p)
    assert _trap_registers(bench) == [TrapCause.INSTRUCTION_MISALIGNED, p.labels["branch"], p.labels["branch"] - 6]
    assert len(traps(bench.records)) == 1


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
def test_load_and_store_access_faults(waits):
    """A bus error ends the access: cause 5 (load) / 7 (store), mtval = the address, rd unchanged."""
    for op, cause in ((asm.lw, TrapCause.LOAD_ACCESS_FAULT), (asm.sw, TrapCause.STORE_ACCESS_FAULT)):

        def body(p, op=op):
            p.emit(li(1, ERROR_ADDRESS), li(2, 0x99))
            p.label("access")
            p.emit(op(2, 8, 1))

        p = with_handler(body)
        bench = run(p, waits=waits)
        assert _trap_registers(bench) == [cause, p.labels["access"], ERROR_ADDRESS + 8]
        assert bench.registers[2] == 0x99
        assert not any(r.store for r in bench.records)


def test_fetch_access_fault():
    """Cause 1, mepc = mtval = the address fetched; the record has no instruction word."""

    def body(p):
        p.emit(li(1, RAM_SIZE))
        p.emit(asm.jalr(0, 0, 1))

    p = with_handler(body)
    bench = run(p)
    assert _trap_registers(bench) == [TrapCause.INSTRUCTION_ACCESS_FAULT, RAM_SIZE, RAM_SIZE]
    record = traps(bench.records)[0]
    assert (record.pc, record.insn, record.cause) == (RAM_SIZE, 0, TrapCause.INSTRUCTION_ACCESS_FAULT)


@pytest.mark.parametrize(
    "word",
    [
        0x0000_0000,  # all zeros
        0xFFFF_FFFF,  # all ones
        0x0000_0001,  # a compressed encoding
        asm.add(1, 2, 3) | (1 << 25),  # MUL (RV32M is not implemented)
        asm.sub(1, 2, 3) | (1 << 12),  # funct7 0x20 on SLL
        asm.slli(1, 2, 3) | (1 << 30),  # SLLI with funct7 0x20
        asm.srli(1, 2, 3) | (1 << 25),  # SRLI with funct7 1
        asm.lw(1, 0, 2) | (3 << 12),  # LD (funct3 3)
        asm.lw(1, 0, 2) | (6 << 12),  # LWU
        asm.sw(1, 0, 2) | (3 << 12),  # SD
        asm.beq(1, 2, 8) | (2 << 12),  # branch funct3 2
        asm.jalr(1, 0, 2) | (1 << 12),  # JALR funct3 1
        asm.fence() | (2 << 12),  # MISC-MEM funct3 2
        0x0020_0073,  # SYSTEM funct3 0, not ECALL/EBREAK/MRET/WFI (URET)
        0x1020_0073,  # SRET
        0x0000_4073,  # SYSTEM funct3 4
        0x0000_0077,  # an opcode the core does not implement (OP-P)
        0x0000_002B,  # custom-1
        0x7E00_000B,  # custom-0 with a funct7 no instruction uses
        0x0000_700B,  # custom-0 funct3 7
    ],
)
def test_illegal_instructions_trap_with_the_word(word):
    def body(p):
        p.emit(li(5, 0x5))
        p.label("bad")
        p.emit(word)

    p = with_handler(body)
    bench = run(p)
    assert _trap_registers(bench) == [TrapCause.ILLEGAL_INSTRUCTION, p.labels["bad"], word]
    record = traps(bench.records)[0]
    assert (record.insn, record.rd, record.vmx) == (word, 0, False)
