"""The trace record's text form, its port form, and lockstep checking (docs/cpu.md "The retired-instruction trace")."""

from __future__ import annotations

import pytest
from iss_words import (
    MRET,
    NOP,
    TRAP_VECTOR,
    addi,
    csr,
    csrr,
    csrw,
    ext,
    image,
    jal,
    li,
    lw,
    store,
    sw,
)

from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.riscv import Interrupt, Mstatus
from vmxu.rtl.arch.soc import TIMER_MTIME, TIMER_MTIMECMP
from vmxu.sim.iss import (
    Iss,
    LockstepChecker,
    LockstepMismatch,
    Retired,
    Store,
    differences,
    disassemble,
    format_retired,
)

TIMER_IRQ = int(TrapCause.MACHINE_TIMER_INTERRUPT)


@pytest.mark.parametrize(
    "word, text",
    [
        (addi(10, 11, -1), "addi a0, a1, -1"),
        (ext("vmread", 10, 11), "vmread a0, a1"),
        (ext("vmwrite", rs1=11, rs2=12), "vmwrite a1, a2"),
        (ext("vmxon", rs1=6), "vmxon t1, zero"),
        (ext("vmlaunch"), "vmlaunch"),
        (ext("outb", rs1=10, rs2=11), "outb a0, a1"),
        (csrr(10, Csr.XFLAGS), "csrr a0, xflags"),
        (csrw(Csr.XCR0, 5), "csrw xcr0, t0"),
        (csrr(10, Csr.MCAUSE), "csrr a0, mcause"),
        (0x0000_700B, ".word 0x0000700b"),
    ],
)
def test_disassembly(word: int, text: str) -> None:
    assert disassemble(word) == text


def test_format_lines() -> None:
    assert format_retired(Retired(pc=0x10, insn=addi(10, 0, 5), rd=10, rd_value=5)) == (
        "00000010: 00500513 addi a0, zero, 5                 a0=0x00000005"
    )
    line = format_retired(Retired(pc=0x14, insn=store("sb", 11, 2, 10), store=Store(0x8002, 0x00AB_0000, 0b0100)))
    assert line.endswith("[0x00008002] = 0x00ab0000 mask 0100")
    line = format_retired(Retired(pc=0x20, insn=0, trap=TIMER_IRQ))
    assert "<interrupt>" in line and line.endswith("trap machine_timer_interrupt")
    line = format_retired(Retired(pc=0x24, insn=ext("vmxoff"), trap=2, vmx_status=Status.FAULT))
    assert "vmxoff" in line and line.endswith("vmx FAULT  trap illegal_instruction")


def test_from_port() -> None:
    signals = dict(
        valid=1, pc=0x40, insn=0x1234, rd=5, rd_value=9, trap=0, cause=0, vmx=1, vmx_status=Status.FAIL_VALID.value,
        store=1, store_addr=0x8001, store_data=0x0000_AB00, store_mask=0b0010,
    )  # fmt: skip
    assert Retired.from_port(signals) == Retired(
        pc=0x40, insn=0x1234, rd=5, rd_value=9, vmx_status=Status.FAIL_VALID, store=Store(0x8001, 0xAB00, 0b0010)
    )
    signals.update(rd=0, rd_value=7, trap=1, cause=TIMER_IRQ, vmx=0, store=0)
    assert Retired.from_port(signals) == Retired(pc=0x40, insn=0x1234, trap=TIMER_IRQ)


def test_differences_compare_store_data_in_its_lanes_only() -> None:
    a = Retired(pc=0, insn=1, store=Store(0x8001, 0xABAB_ABAB, 0b0010))  # sb data replicated on every lane
    b = Retired(pc=0, insn=1, store=Store(0x8001, 0x0000_AB00, 0b0010))
    assert differences(a, b) == []
    c = Retired(pc=0, insn=1, store=Store(0x8001, 0x0000_AC00, 0b0010))
    assert differences(a, c) == ["store: [0x00008001] = 0x0000ab00 mask 0010 != [0x00008001] = 0x0000ac00 mask 0010"]


def test_differences_name_each_field() -> None:
    a = Retired(pc=4, insn=1, rd=5, rd_value=1, vmx_status=Status.SUCCEED)
    b = Retired(pc=4, insn=1, rd=5, rd_value=2, trap=2, vmx_status=Status.FAULT)
    assert differences(a, b) == ["rd_value: 0x1 != 0x2", "trap: None != 0x2", "vmx_status: SUCCEED != FAULT"]


# -- lockstep: a standalone ISS plays the RTL, a lockstep ISS follows it -------------------------


def program_with_unpredictable_reads() -> list:
    """Timer loads, cycle reads, a timer interrupt with a handler, IN from the UART."""
    handler = [li(5, TIMER_MTIMECMP), li(6, -1), sw(6, 0, 5), sw(6, 4, 5), MRET]
    body = [
        li(5, TRAP_VECTOR),
        csrw(Csr.MTVEC, 5),
        li(5, TIMER_MTIMECMP),
        li(6, 20),
        sw(6, 0, 5),
        sw(0, 4, 5),
        li(5, Interrupt.MACHINE_TIMER.mask),
        csrw(Csr.MIE, 5),
        csr("csrrsi", 0, Csr.MSTATUS, Mstatus.const({"mie": 1}).as_bits()),
        li(7, TIMER_MTIME),
    ]
    loop = [lw(10, 0, 7), csrr(11, Csr.MCYCLE), csrr(12, Csr.MIP), li(13, 0x3FD), ext("inb", 14, 13), jal(0, -24)]
    return [*body, *loop], handler


def reference_records(count: int) -> list[Retired]:
    body, handler = program_with_unpredictable_reads()
    iss = Iss(image(*body))
    iss.ram.load_image(TRAP_VECTOR, image(*handler))
    return [iss.step() for _ in range(count)]


def follower() -> Iss:
    body, handler = program_with_unpredictable_reads()
    iss = Iss(image(*body), lockstep=True)
    iss.ram.load_image(TRAP_VECTOR, image(*handler))
    return iss


def test_lockstep_follows_a_run_with_interrupts_and_device_reads() -> None:
    records = reference_records(200)
    assert any(r.interrupt for r in records)
    checker = LockstepChecker(follower())
    for record in records:
        checker.check(record)
    assert checker.checked == 200


def test_lockstep_accepts_port_signal_values() -> None:
    record = reference_records(1)[0]
    signals = dict(valid=1, pc=record.pc, insn=record.insn, rd=record.rd, rd_value=record.rd_value, trap=0, cause=0,
                   vmx=0, vmx_status=0, store=0, store_addr=0, store_data=0, store_mask=0)  # fmt: skip
    assert LockstepChecker(follower()).check(signals) == record


def test_lockstep_reports_the_first_difference() -> None:
    records = reference_records(10)
    bad = Retired(pc=records[5].pc, insn=records[5].insn, rd=records[5].rd, rd_value=records[5].rd_value ^ 1)
    checker = LockstepChecker(follower())
    for record in records[:5]:
        checker.check(record)
    with pytest.raises(LockstepMismatch, match="record 5: the RTL and the ISS differ \\(rd_value") as info:
        checker.check(bad)
    assert info.value.index == 5 and "agreed:" in str(info.value)


def test_lockstep_needs_a_lockstep_iss() -> None:
    with pytest.raises(ValueError, match="lockstep=True"):
        LockstepChecker(Iss(image(NOP)))
