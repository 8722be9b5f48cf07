"""An independent oracle for the base ISA: random RV32I programs on the ISS and on Unicorn (QEMU's RV32 core).

Each program is straight-line register and immediate arithmetic, LUI/AUIPC,
aligned loads and stores into a data block, and forward branches and JALs;
both simulators start from the same registers and memory and must end with
the same registers and the same data block.

Seeded: ``VMXU_ISS_SEED`` sets the first seed (default below); each program's
seed is printed and named in a failure, and replays alone with
``VMXU_ISS_SEED=<seed> pytest tests/iss/test_iss_unicorn.py -k 'program[0]'``.
"""

from __future__ import annotations

import os
import random

import pytest
import unicorn
from iss_words import (
    BRANCHES,
    LOADS,
    OP_IMMS,
    OPS,
    SHIFT_IMMS,
    auipc,
    branch,
    image,
    jal,
    load,
    lui,
    op,
    op_imm,
    store,
)
from unicorn import riscv_const

from vmxu.sim.iss import Iss

FIRST_SEED = int(os.environ.get("VMXU_ISS_SEED", "20261125"))
PROGRAMS = 60
LENGTH = 160
DATA = 0x1_0000
DATA_BYTES = 2048
BASE = 31  # holds DATA throughout; never a destination
INTERESTING = [0, 1, 2, 0x7FF, 0x800, 0xFFF, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFF, 0xFFFF_F800]


def value(rng: random.Random) -> int:
    return rng.choice(INTERESTING) if rng.random() < 0.3 else rng.getrandbits(32)


def immediate(rng: random.Random) -> int:
    return rng.choice([0, 1, -1, 2047, -2048, 31]) if rng.random() < 0.3 else rng.randint(-2048, 2047)


def random_program(rng: random.Random) -> list[int]:
    words: list[int] = []
    for i in range(LENGTH):
        rd, rs1, rs2 = rng.randint(1, 30), rng.randint(0, 31), rng.randint(0, 31)
        remaining = LENGTH - i  # instructions from here to the end, this one included
        kind = rng.choices(["op", "imm", "upper", "load", "store", "branch", "jal"], [6, 6, 2, 3, 3, 2, 1])[0]
        if kind == "op":
            words.append(op(rng.choice(list(OPS)), rd, rs1, rs2))
        elif kind == "imm":
            name = rng.choice([*OP_IMMS, *SHIFT_IMMS])
            words.append(op_imm(name, rd, rs1, rng.randint(0, 31) if name in SHIFT_IMMS else immediate(rng)))
        elif kind == "upper":
            words.append((lui if rng.random() < 0.5 else auipc)(rd, rng.getrandbits(20)))
        elif kind == "load":
            name = rng.choice(list(LOADS))
            size = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4}[name]
            words.append(load(name, rd, rng.randrange(0, DATA_BYTES, size), BASE))
        elif kind == "store":
            name, size = rng.choice([("sb", 1), ("sh", 2), ("sw", 4)])
            words.append(store(name, rs2, rng.randrange(0, DATA_BYTES, size), BASE))
        elif kind == "branch":
            words.append(branch(rng.choice(list(BRANCHES)), rs1, rs2, 4 * rng.randint(1, min(6, remaining))))
        else:
            words.append(jal(rd, 4 * rng.randint(1, min(6, remaining))))
    return words


def run_unicorn(code: bytes, registers: list[int], data: bytes) -> tuple[list[int], bytes]:
    emu = unicorn.Uc(unicorn.UC_ARCH_RISCV, unicorn.UC_MODE_RISCV32)
    emu.mem_map(0, 0x2_0000)
    emu.mem_write(0, code)
    emu.mem_write(DATA, data)
    for r in range(1, 32):
        emu.reg_write(getattr(riscv_const, f"UC_RISCV_REG_X{r}"), registers[r])
    emu.emu_start(0, len(code))
    out = [0] + [emu.reg_read(getattr(riscv_const, f"UC_RISCV_REG_X{r}")) & 0xFFFF_FFFF for r in range(1, 32)]
    return out, bytes(emu.mem_read(DATA, DATA_BYTES))


def run_iss(code: bytes, registers: list[int], data: bytes) -> tuple[list[int], bytes]:
    iss = Iss(code)
    iss.ram.load_image(DATA, data)
    iss.x[:] = registers
    for _ in range(LENGTH):
        if iss.pc == len(code):
            break
        record = iss.step()
        assert record.trap is None, f"unexpected trap {record}"
    assert iss.pc == len(code)
    return list(iss.x), bytes(iss.ram.data[DATA : DATA + DATA_BYTES])


@pytest.mark.parametrize("index", range(PROGRAMS), ids=lambda i: f"program[{i}]")
def test_random_program_agrees_with_unicorn(index: int) -> None:
    seed = FIRST_SEED + index
    print(f"VMXU_ISS_SEED={seed}")
    rng = random.Random(seed)
    code = image(*random_program(rng))
    registers = [0] + [value(rng) for _ in range(30)] + [DATA]
    data = rng.randbytes(DATA_BYTES)
    expected_registers, expected_data = run_unicorn(code, registers, data)
    registers_out, data_out = run_iss(code, registers, data)
    for r in range(32):
        assert registers_out[r] == expected_registers[r], (
            f"seed {seed}: x{r} = {registers_out[r]:#010x}, unicorn says {expected_registers[r]:#010x}"
        )
    assert data_out == expected_data, f"seed {seed}: data block differs"
