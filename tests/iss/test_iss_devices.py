"""Port I/O, the UART, the POST port, the SMI port and the test finisher on the ISS.

# Ref: docs/cpu.md "The VMX extension" (IN/OUT); rtl/arch/soc.py (ports,
# finisher codes); PC16550D datasheet (registers); QEMU hw/misc/sifive_test.c.
"""

from __future__ import annotations

import pytest
from iss_words import ext, image, li, lw, machine, run_words, store

from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, finisher_fail
from vmxu.sim.iss import Iss, Override, Retired, StopReason

UART = 0x3F8
LSR = UART + 5
POST = 0x80
SMI = 0xB2


def port_read(port: int, size: str = "inb", feed: bytes = b"", before: list[int] | None = None) -> int:
    words = [*(before or []), li(10, port), ext(size, 11, 10)]
    iss = machine(*words)
    iss.uart.feed(feed)
    for _ in range(sum(len(w) if isinstance(w, list) else 1 for w in words)):
        iss.step()
    return iss.x[11]


def port_write(port: int, value: int, size: str = "outb") -> Iss:
    iss, records = run_words(li(10, port), li(11, value), ext(size, rs1=10, rs2=11))
    assert records[-1] == Retired(pc=16, insn=ext(size, rs1=10, rs2=11))
    return iss


def test_outb_to_thr_appends_to_the_console() -> None:
    iss = port_write(UART, ord("A") | 0xFFFF_FF00)
    assert iss.console == "A"


def test_lsr_reports_thr_empty() -> None:
    assert port_read(LSR) == 0x60


def test_lsr_reports_received_data() -> None:
    assert port_read(LSR, feed=b"x") == 0x61


def test_rbr_returns_fed_bytes_in_order() -> None:
    iss = machine(li(10, UART), ext("inb", 11, 10), ext("inb", 12, 10), ext("inb", 13, 10))
    iss.uart.feed(b"hi")
    for _ in range(5):
        iss.step()
    assert iss.x[11:14] == [ord("h"), ord("i"), 0]


@pytest.mark.parametrize("size, value", [("inb", 0xFF), ("inw", 0xFFFF), ("inl", 0xFFFF_FFFF)])
def test_unmapped_ports_read_all_ones(size: str, value: int) -> None:
    assert port_read(0x1234, size) == value


def test_unmapped_ports_ignore_writes() -> None:
    iss = port_write(0x1234, 0x55)
    assert iss.console == "" and iss.post.value == 0


def test_post_port_holds_the_last_byte() -> None:
    iss = port_write(POST, 0x1A5)
    assert iss.post.value == 0xA5
    assert port_read(POST, before=[li(5, POST), li(6, 0x3C), ext("outb", rs1=5, rs2=6)]) == 0x3C


def test_smi_port_records_commands() -> None:
    iss = port_write(SMI, 0x42)
    assert iss.smi.commands == [0x42]


def test_only_the_low_16_bits_name_the_port() -> None:
    iss = port_write(0xABCD_0000 | UART, ord("z"))
    assert iss.console == "z"


def test_a_word_access_reaches_consecutive_ports() -> None:
    iss = port_write(UART + 7, 0x5A5A_1234, "outw")  # SCR, then port 0x400 (nobody)
    assert iss.uart.scr == 0x34
    assert port_read(UART + 5, "inw") == 0xB060  # LSR, MSR
    assert port_read(0x7F, "inl") == 0xFFFF_00FF  # nobody, POST (0), nobody, nobody


def test_uart_registers() -> None:
    uart = Iss().uart
    uart.write(3, 0x83)  # LCR.DLAB
    uart.write(0, 0x01)
    uart.write(1, 0x02)
    assert (uart.read(0), uart.read(1), uart.divisor) == (0x01, 0x02, 0x0201)
    assert uart.console == b""  # THR not written under DLAB
    uart.write(3, 0x03)
    uart.write(1, 0xFF)
    assert uart.read(1) == 0x0F  # IER bits 3:0
    assert uart.read(2) == 0x01  # no interrupt pending, no FIFO
    uart.write(2, 0x01)
    assert uart.read(2) == 0xC1  # FIFOs enabled
    uart.feed(b"ab")
    uart.write(2, 0x03)  # clear the receive FIFO
    assert uart.read(5) == 0x60
    uart.write(4, 0xFF)
    assert uart.read(4) == 0x1F
    uart.write(7, 0x99)
    assert uart.read(7) == 0x99
    assert uart.read(6) == 0xB0


def test_lockstep_in_takes_the_rtls_value() -> None:
    iss = Iss(image(li(10, LSR), ext("inb", 11, 10)), lockstep=True)
    iss.step(), iss.step()
    assert iss.step(Override(read_value=0x20)).rd_value == 0x20


# -- the finisher ----------------------------------------------------------------------------


def test_finisher_pass_stops_the_run() -> None:
    iss = Iss(image(li(10, FINISHER.base), li(11, FINISHER_PASS), store("sw", 11, 0, 10), li(12, 1)))
    result = iss.run(100)
    assert result.reason == StopReason.PASS and result.exit_code == 0 and result.passed
    assert result.instructions == 5 and iss.x[12] == 0


def test_finisher_fail_carries_the_code() -> None:
    iss = Iss(image(li(10, FINISHER.base), li(11, finisher_fail(42)), store("sw", 11, 0, 10)))
    result = iss.run(100)
    assert result.reason == StopReason.FAIL and result.exit_code == 42 and not result.passed


def test_finisher_ignores_other_values_and_offsets() -> None:
    iss = Iss(image(li(10, FINISHER.base), li(11, 0x1234), store("sw", 11, 0, 10), store("sw", 11, 4, 10)))
    result = iss.run(10)
    assert result.reason == StopReason.LIMIT and result.exit_code is None and result.instructions == 10


def test_finisher_store_is_in_the_trace() -> None:
    _, records = run_words(li(10, FINISHER.base), li(11, FINISHER_PASS), store("sw", 11, 0, 10))
    assert records[-1].store is not None and records[-1].store.addr == FINISHER.base


def test_finisher_reads_zero() -> None:
    iss, records = run_words(li(10, FINISHER.base), li(11, 5), lw(11, 0, 10))
    assert records[-1].trap is None and iss.x[11] == 0


def test_console_collects_every_byte() -> None:
    text = "vmxu\n"
    words = [li(10, UART)]
    for ch in text:
        words += [li(11, ord(ch)), ext("outb", rs1=10, rs2=11)]
    iss = Iss(image(*words))
    iss.run(3 * len(text) + 2)
    assert iss.console == text
