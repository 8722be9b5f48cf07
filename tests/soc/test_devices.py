"""The SoC's timer and UART in Amaranth's simulator: what software sees of them (docs/soc.md, rtl/soc/uart.py).

# Ref: SiFive CLINT (mtime, mtimecmp, MTIP = mtime >= mtimecmp); PC16550D data
# sheet table II (registers), 8N1 framing (start bit low, data LSB first, stop
# bit high; one bit lasts 16 x divisor clocks).
"""

import random

import pytest
from amaranth.sim import Simulator

from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, TIMER, TIMER_MTIME, TIMER_MTIMECMP, finisher_fail
from vmxu.rtl.soc.peripherals import Finisher, Timer
from vmxu.rtl.soc.uart import Uart

SEED = 20261126
RBR_THR, IER, IIR, LCR, MCR, LSR, MSR, SCR = range(8)


def simulate(dut, testbench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


# --- finisher -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "outcome"),
    [(FINISHER_PASS, (1, 0, 0)), (finisher_fail(7), (1, 7, 1)), (0x3333, (1, 9, 1)), (0x1234, (1, 9, 1))],
)
def test_finisher_takes_the_first_finishing_write(first, outcome):
    """``outcome`` is (done, code, failed) after ``first`` and then a failure with code 9."""
    finisher = Finisher()

    async def testbench(ctx):
        await bus_access(ctx, finisher.bus, FINISHER.base, first, base=FINISHER.base)
        await bus_access(ctx, finisher.bus, FINISHER.base, finisher_fail(9), base=FINISHER.base)
        assert (ctx.get(finisher.done), ctx.get(finisher.code), ctx.get(finisher.failed)) == outcome

    simulate(finisher, testbench)


# --- timer ---------------------------------------------------------------------------------------


async def bus_access(ctx, bus, address: int, data: int | None = None, *, base: int = TIMER.base) -> int:
    """One Wishbone cycle to the byte ``address`` of a device at ``base``: a write of ``data``, or a read; returns
    dat_r at ACK."""
    ctx.set(bus.adr, (address - base) >> 2)
    ctx.set(bus.we, data is not None)
    ctx.set(bus.dat_w, data or 0)
    ctx.set(bus.sel, 0b1111)
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    await ctx.tick()
    assert ctx.get(bus.ack), "the timer acknowledges the cycle after the strobe"
    value = ctx.get(bus.dat_r)
    ctx.set(bus.cyc, 0)
    ctx.set(bus.stb, 0)
    await ctx.tick()
    return value


def test_timer_counts_and_reads_back_its_registers():
    timer = Timer()

    async def testbench(ctx):
        assert await bus_access(ctx, timer.bus, TIMER_MTIMECMP) == 0xFFFF_FFFF
        assert await bus_access(ctx, timer.bus, TIMER_MTIMECMP + 4) == 0xFFFF_FFFF
        await bus_access(ctx, timer.bus, TIMER_MTIMECMP, 0x1234_5678)
        await bus_access(ctx, timer.bus, TIMER_MTIMECMP + 4, 0x9ABC_DEF0)
        assert await bus_access(ctx, timer.bus, TIMER_MTIMECMP) == 0x1234_5678
        assert await bus_access(ctx, timer.bus, TIMER_MTIMECMP + 4) == 0x9ABC_DEF0
        await bus_access(ctx, timer.bus, TIMER_MTIME + 4, 7)
        before = ctx.get(timer.mtime)
        await ctx.tick().repeat(5)
        assert ctx.get(timer.mtime) == before + 5, "mtime counts clock cycles"
        assert ctx.get(timer.mtime) >> 32 == 7
        low = await bus_access(ctx, timer.bus, TIMER_MTIME)
        assert low == (before + 6) & 0xFFFF_FFFF, "the value at the acknowledge"
        await bus_access(ctx, timer.bus, TIMER_MTIME, 0xFFFF_FFFE)
        await ctx.tick().repeat(3)
        assert ctx.get(timer.mtime) == (8 << 32) | 2, "the low half carries into the high half"

    simulate(timer, testbench)


def test_timer_interrupt_is_mtime_at_or_past_mtimecmp_one_cycle_later():
    timer = Timer()
    rng = random.Random(SEED)

    async def testbench(ctx):
        # Around the 32-bit boundary and the ends of the 64-bit range, with writes to both registers.
        compare = 2**64 - 1
        for _ in range(40):
            base = rng.choice([0, 1 << 32, 2**64 - 40, rng.getrandbits(64)])
            mtime = (base + rng.randrange(-20, 20)) % 2**64
            compare = (mtime + rng.randrange(-10, 30)) % 2**64
            for offset, value in (
                (TIMER_MTIMECMP + 4, 0xFFFF_FFFF),  # no interrupt while the halves change
                (TIMER_MTIME, mtime & 0xFFFF_FFFF),
                (TIMER_MTIME + 4, mtime >> 32),
                (TIMER_MTIMECMP, compare & 0xFFFF_FFFF),
                (TIMER_MTIMECMP + 4, compare >> 32),
            ):
                await bus_access(ctx, timer.bus, offset, value)
            for _ in range(12):
                previous = ctx.get(timer.mtime)
                await ctx.tick()
                assert ctx.get(timer.irq) == (previous >= compare), f"mtime {previous:#x}, mtimecmp {compare:#x}"

    simulate(timer, testbench)


# --- UART ----------------------------------------------------------------------------------------


async def io_access(ctx, uart, register: int, data: int | None = None) -> int:
    """One IN or OUT to the UART's ``register`` (completes in the cycle it is presented); returns rdata."""
    ctx.set(uart.io.port, 0x3F8 + register)
    ctx.set(uart.io.write, data is not None)
    ctx.set(uart.io.wdata, data or 0)
    ctx.set(uart.io.valid, 1)
    assert ctx.get(uart.io.ready)
    value = ctx.get(uart.io.rdata)
    await ctx.tick()
    ctx.set(uart.io.valid, 0)
    return value


def test_uart_registers_read_back():
    uart = Uart(divisor=13)

    async def testbench(ctx):
        assert await io_access(ctx, uart, IIR) == 0x01, "no interrupt pending"
        assert await io_access(ctx, uart, LSR) == 0x60, "transmitter empty, no data"
        assert await io_access(ctx, uart, MSR) == 0
        await io_access(ctx, uart, LCR, 0x80)
        assert await io_access(ctx, uart, RBR_THR) == 13, "DLAB maps the divisor latch"
        assert await io_access(ctx, uart, IER) == 0
        await io_access(ctx, uart, RBR_THR, 0x34)
        await io_access(ctx, uart, IER, 0x12)
        assert (await io_access(ctx, uart, RBR_THR), await io_access(ctx, uart, IER)) == (0x34, 0x12)
        await io_access(ctx, uart, LCR, 0x03)
        assert await io_access(ctx, uart, LCR) == 0x03
        assert await io_access(ctx, uart, IER) == 0
        await io_access(ctx, uart, IER, 0xFF)
        assert await io_access(ctx, uart, IER) == 0x03, "IER keeps its two bits"
        assert await io_access(ctx, uart, IIR) == 0x02, "THR empty, now enabled"
        await io_access(ctx, uart, MCR, 0xFF)
        assert await io_access(ctx, uart, MCR) == 0x1F
        await io_access(ctx, uart, SCR, 0xA5)
        assert await io_access(ctx, uart, SCR) == 0xA5
        await io_access(ctx, uart, IIR, 0xC7)  # FCR: accepted, ignored
        assert await io_access(ctx, uart, IIR) == 0x02

    simulate(uart, testbench)


@pytest.mark.parametrize("divisor", [1, 3])
def test_uart_transmits_8n1_at_16_clocks_per_divisor(divisor):
    bit = 16 * divisor
    uart = Uart(divisor=divisor)

    async def testbench(ctx):
        await io_access(ctx, uart, IER, 0x02)
        for byte in (0x5A, 0x81):
            ctx.set(uart.io.port, 0x3F8)
            ctx.set(uart.io.write, 1)
            ctx.set(uart.io.wdata, byte)
            ctx.set(uart.io.valid, 1)
            assert (ctx.get(uart.sent), ctx.get(uart.sent_data)) == (1, byte), "the console sees the character"
            await ctx.tick()
            ctx.set(uart.io.valid, 0)
            assert await io_access(ctx, uart, LSR) & 0x60 in (0x00, 0x20), "busy: TEMT is low"
            while ctx.get(uart.tx):  # the start bit
                await ctx.tick()
            line = []
            await ctx.tick().repeat(bit // 2)  # the middle of the start bit
            for _ in range(10):
                line.append(ctx.get(uart.tx))
                await ctx.tick().repeat(bit)
            assert line == [0] + [byte >> i & 1 for i in range(8)] + [1]
            assert await io_access(ctx, uart, LSR) & 0x60 == 0x60, "sent: THR and shifter empty"
            assert ctx.get(uart.irq), "THR empty interrupt (IER bit 1)"

    simulate(uart, testbench)


@pytest.mark.parametrize("divisor", [1, 2, 13])
def test_uart_receives_8n1_and_raises_data_ready(divisor):
    bit = 16 * divisor
    uart = Uart(divisor=divisor)

    async def testbench(ctx):
        ctx.set(uart.rx, 1)
        await io_access(ctx, uart, IER, 0x01)
        await ctx.tick().repeat(7)
        for byte in (0xA7, 0x3C, 0x00, 0xFF):
            for level in [0] + [byte >> i & 1 for i in range(8)] + [1]:
                ctx.set(uart.rx, level)
                await ctx.tick().repeat(bit)
            assert ctx.get(uart.irq), "received data interrupt (IER bit 0)"
            assert await io_access(ctx, uart, IIR) == 0x04
            assert await io_access(ctx, uart, LSR) & 0x01
            assert await io_access(ctx, uart, RBR_THR) == byte
            assert not await io_access(ctx, uart, LSR) & 0x01, "reading RBR clears DR"
            assert not ctx.get(uart.irq)
            await ctx.tick().repeat(5)

    simulate(uart, testbench)
