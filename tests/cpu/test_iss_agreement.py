"""Random RV32I + Zicsr programs on the core agree with the ISS, record by record.

The ISS (sim/iss) implements the same contract (docs/cpu.md); here it follows
the core in lockstep on seeded random programs: ALU operations on edge values,
shifts, LUI/AUIPC, loads and stores of every size, forward branches, JAL/JALR,
machine CSRs (including minstret), and ECALLs into a handler that returns.
The whole-SoC lockstep (with the VMX unit and devices) lives elsewhere; this
is the core alone, on the bench's memory. Set VMXU_SEED to replay one seed.
"""

import os
import random

import pytest
from core_bench import HALT
from programs import EDGES, run

from vmxu.sim.iss import core as iss_core
from vmxu.sim.iss import trace as iss_trace
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program, li

DATA = 0x8000  # x20 points here; loads and stores stay within 2 KiB of it
SEEDS = [int(os.environ["VMXU_SEED"])] if "VMXU_SEED" in os.environ else [1, 2, 3, 4]
ALU = ["add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or_", "and_"]
ALU_IMM = ["addi", "slti", "sltiu", "xori", "ori", "andi"]
SHIFT_IMM = ["slli", "srli", "srai"]
BRANCHES = ["beq", "bne", "blt", "bge", "bltu", "bgeu"]
CSRS = ["mscratch", "mtval", "mcause", "xhi", "mie"]


def _random_program(rng: random.Random, length: int) -> Program:
    p = Program()
    p.la(31, "handler")
    p.emit(asm.csrw("mtvec", 31), li(20, DATA))
    for r in range(1, 16):
        p.emit(li(r, rng.choice(EDGES + (rng.getrandbits(32),))))

    def reg():
        return rng.randrange(1, 16)

    def dest():
        return rng.choice([0] + list(range(1, 16)))

    label = 0
    for _ in range(length):
        kind = rng.choices(
            ["alu", "imm", "shift", "upper", "load", "store", "branch", "jump", "csr", "counter", "ecall"],
            [8, 6, 3, 2, 4, 4, 3, 1, 3, 1, 1],
        )[0]
        if kind == "alu":
            p.emit(getattr(asm, rng.choice(ALU))(dest(), reg(), reg()))
        elif kind == "imm":
            p.emit(getattr(asm, rng.choice(ALU_IMM))(dest(), reg(), rng.randrange(-2048, 2048)))
        elif kind == "shift":
            p.emit(getattr(asm, rng.choice(SHIFT_IMM))(dest(), reg(), rng.choice([0, 1, 5, 31])))
        elif kind == "upper":
            p.emit(getattr(asm, rng.choice(["lui", "auipc"]))(dest(), rng.getrandbits(20)))
        elif kind == "load":
            op, size = rng.choice([("lb", 1), ("lbu", 1), ("lh", 2), ("lhu", 2), ("lw", 4)])
            p.emit(getattr(asm, op)(dest(), size * rng.randrange(-256 // size, 256 // size), 20))
        elif kind == "store":
            op, size = rng.choice([("sb", 1), ("sh", 2), ("sw", 4)])
            p.emit(getattr(asm, op)(reg(), size * rng.randrange(-256 // size, 256 // size), 20))
        elif kind == "branch":
            label += 1
            p.branch(rng.choice(BRANCHES), reg(), reg(), f"skip{label}")
            p.emit(getattr(asm, rng.choice(ALU))(dest(), reg(), reg()))
            p.label(f"skip{label}")
        elif kind == "jump":
            label += 1
            if rng.random() < 0.5:
                p.jal(dest(), f"skip{label}")
            else:
                p.la(21, f"skip{label}")
                p.emit(asm.jalr(dest(), rng.choice([0, 1]), 21))
            p.emit(asm.addi(dest(), reg(), 1))
            p.label(f"skip{label}")
        elif kind == "csr":
            csr = rng.choice(CSRS)
            op = rng.choice(["csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci"])
            source = rng.randrange(32) if op.endswith("i") else reg()
            p.emit(getattr(asm, op)(dest(), csr, source))
        elif kind == "counter":
            p.emit(asm.csrr(dest(), rng.choice(["minstret", "minstreth", "instret"])))
        else:
            p.emit(asm.ecall())
    p.emit(HALT)
    p.label("handler")
    p.emit(asm.csrr(30, "mepc"), asm.addi(30, 30, 4), asm.csrw("mepc", 30), asm.csrr(29, "mcause"), asm.mret())
    return p


@pytest.mark.parametrize("seed", SEEDS)
def test_random_program_agrees_with_the_iss(seed):
    rng = random.Random(seed)
    program = _random_program(rng, 300)
    words = program.words()
    bench = run(program, seed=seed, max_cycles=40_000)
    image = b"".join(w.to_bytes(4, "little") for w in words)
    iss = iss_core.Iss(image, lockstep=True)
    for i, record in enumerate(bench.records):
        rtl = iss_trace.Retired.from_port(
            {
                "pc": record.pc,
                "insn": record.insn,
                "rd": record.rd,
                "rd_value": record.rd_value,
                "trap": record.trap,
                "cause": record.cause,
                "vmx": record.vmx,
                "vmx_status": record.vmx_status,
                "store": record.store,
                "store_addr": record.store_addr,
                "store_data": record.store_data,
                "store_mask": record.store_mask,
            }
        )
        expected = iss.step(iss_core.Override.from_rtl(rtl))
        diffs = iss_trace.differences(rtl, expected)
        assert not diffs, f"seed {seed}, record {i}: {diffs}\n  rtl: {record}\n  iss: {expected}"
    assert len(bench.records) > 300
