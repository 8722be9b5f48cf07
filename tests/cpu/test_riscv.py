"""rtl/arch/riscv.py against the numbers the RISC-V privileged spec prints.

The core, the ISS and the firmware header all take these facts from
rtl/arch/riscv.py, so they would agree with each other on a wrong bit; these
tests pin each fact to the spec. The RISC-V Instruction Set Manual, Volume II
20211203: 2.1 (table 2.1), 3.1.1 (misa), 3.1.6 (figure 3.7), 3.1.9, 3.1.15
(table 3.6), 3.3.
"""

import pytest
from amaranth.lib import data

from vmxu.rtl.arch.isa import TrapCause
from vmxu.rtl.arch.riscv import (
    MCAUSE_CODE_BITS,
    MISA,
    Interrupt,
    InterruptBits,
    Mcause,
    Mstatus,
    PrivilegeMode,
    SystemInstruction,
    read_only,
)


def _bits(layout) -> dict[str, tuple[int, int]]:
    """Field name -> (offset, width)."""
    return {name: (field.offset, field.width) for name, field in data.Layout.cast(layout)}


def test_mstatus_fields_are_where_figure_3_7_puts_them():
    fields = _bits(Mstatus)
    assert {name: fields[name] for name in ("sie", "mie", "spie", "ube", "mpie", "spp", "vs", "mpp")} == {
        "sie": (1, 1),
        "mie": (3, 1),
        "spie": (5, 1),
        "ube": (6, 1),
        "mpie": (7, 1),
        "spp": (8, 1),
        "vs": (9, 2),
        "mpp": (11, 2),
    }
    assert (fields["fs"], fields["xs"], fields["mprv"], fields["tsr"], fields["sd"]) == (
        (13, 2), (15, 2), (17, 1), (22, 1), (31, 1)
    )  # fmt: skip
    assert Mstatus.const({"mpp": PrivilegeMode.MACHINE}).as_bits() == 0x1800


def test_interrupt_codes_are_table_3_6_and_their_mie_mip_bits():
    assert {i.name: i.value for i in Interrupt} == {
        "SUPERVISOR_SOFTWARE": 1,
        "MACHINE_SOFTWARE": 3,
        "SUPERVISOR_TIMER": 5,
        "MACHINE_TIMER": 7,
        "SUPERVISOR_EXTERNAL": 9,
        "MACHINE_EXTERNAL": 11,
    }
    assert _bits(InterruptBits)["machine_timer"] == (7, 1)
    assert InterruptBits.const({"machine_timer": 1, "machine_external": 1}).as_bits() == 0x880
    assert Interrupt.MACHINE_EXTERNAL.mask == 0x800


def test_interrupt_causes_have_bit_31_set():
    assert _bits(Mcause) == {"code": (0, 31), "interrupt": (31, 1)}
    assert TrapCause.MACHINE_TIMER_INTERRUPT == 0x8000_0007
    assert TrapCause.MACHINE_EXTERNAL_INTERRUPT == 0x8000_000B


def test_every_cause_fits_the_mcause_code_the_core_keeps():
    for cause in TrapCause:
        assert Mcause.from_bits(cause).code < 1 << MCAUSE_CODE_BITS, cause.name


def test_misa_says_rv32_i_and_x():
    assert MISA == 0x4080_0100


@pytest.mark.parametrize(
    "number, expected",
    [(0x300, False), (0x7C0, False), (0xB00, False), (0xBFF, False), (0xC00, True), (0xC82, True), (0xF11, True)],
)
def test_csrs_numbered_0xc00_and_above_are_read_only(number, expected):
    assert read_only(number) == expected


@pytest.mark.parametrize("name, funct12", [("ECALL", 0x000), ("EBREAK", 0x001), ("MRET", 0x302), ("WFI", 0x105)])
def test_system_instruction_words(name, funct12):
    """funct12 in bits 31:20, rs1, funct3 and rd 0, opcode SYSTEM (1110011)."""
    assert SystemInstruction[name].value == funct12 << 20 | 0b111_0011
