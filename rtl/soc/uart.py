"""A 16550-style UART on the port I/O bus (COM1 at 0x3F8): 8N1, one holding register each way, no FIFOs.

# Ref: National Semiconductor PC16550D data sheet (1995), table II "Register
# summary": RBR/THR 0, IER 1, IIR/FCR 2, LCR 3, MCR 4, LSR 5, MSR 6, SCR 7;
# DLAB (LCR bit 7) maps the divisor latch (DLL 0, DLM 1); baud = clock / (16 * divisor).

What is implemented: the transmitter and receiver (8 data bits, no parity,
one stop bit, whatever LCR says otherwise), the divisor latch, IER bits 0
(received data available) and 1 (THR empty), IIR with those two sources, LSR
bits 0 (DR), 5 (THRE) and 6 (TEMT), SCR. FCR writes are accepted and ignored
(no FIFOs); MCR and LCR bits other than DLAB are stored and read back; MSR
reads 0. Every access acts on one register, whatever the IN/OUT size.

As in the 16550, one baud generator (a tick every ``divisor`` clocks; a
divisor of 0 acts as 65536) paces both directions at 16 ticks per bit.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..cpu.ports import IoSignature

__all__ = ["Uart"]

RBR_THR, IER, IIR_FCR, LCR, MCR, LSR, MSR, SCR = range(8)


class Uart(wiring.Component):
    """16550-style UART (see the module docstring for what it does and does not do).

    Latency: register accesses complete in the cycle they are presented.
    Throughput: one character per ``10 * 16 * divisor`` cycles each way.

    Members
    -------
    io : In(IoSignature())
        Accesses the I/O decoder routes here (port bits 2:0 select the register).
    tx : Out(1)
    rx : In(1)
    irq : Out(1)
    sent : Out(1)
        High for one cycle when a character enters the transmitter (``sent_data``):
        simulation captures the console here without decoding the serial line.
    sent_data : Out(8)
    """

    def __init__(self, *, divisor: int = 1):
        if not 1 <= divisor < 1 << 16:
            raise ValueError(f"Divisor must be 1..65535, not {divisor!r}")
        self.reset_divisor = divisor
        super().__init__(
            {
                "io": In(IoSignature()),
                "tx": Out(1, init=1),
                "rx": In(1, init=1),
                "irq": Out(1),
                "sent": Out(1),
                "sent_data": Out(8),
            }
        )

    def elaborate(self, platform):
        m = Module()
        divisor = Signal(16, init=self.reset_divisor)
        ier = Signal(2)
        lcr = Signal(8)
        mcr = Signal(5)
        scr = Signal(8)
        dlab = lcr[7]

        # Baud generator, as in the 16550: one tick every ``divisor`` clocks (16 ticks per bit),
        # shared by the transmitter and the receiver. It counts 1..divisor (a divisor of 0 acts as
        # 65536): a counter with a synchronous reset and an equality test, no subtractor.
        baud_count = Signal(16, init=1)
        tick = Signal()
        m.d.comb += tick.eq(baud_count == divisor)
        m.d.sync += baud_count.eq(Mux(tick, 1, baud_count + 1))

        # Transmitter: holding register -> shift register. A character starts at once when the
        # transmitter is idle; each bit then lasts 16 ticks (the start bit up to one tick less,
        # as it does not wait for a tick).
        thr = Signal(8)
        thr_full = Signal()
        shifter = Signal(9)  # start bit, data: shifted out LSB first, ones (the stop bit, idle) in behind
        tx_bits = Signal(range(11))  # bits left to send, 0 when idle
        tx_ticks = Signal(4)  # ticks of the current bit
        m.d.comb += self.tx.eq(shifter[0] | (tx_bits == 0))  # the line idles high
        with m.If(tx_bits == 0):
            with m.If(thr_full):
                m.d.sync += [shifter.eq(Cat(0, thr)), tx_bits.eq(10), thr_full.eq(0), tx_ticks.eq(0)]
        with m.Elif(tick):
            m.d.sync += tx_ticks.eq(tx_ticks + 1)
            with m.If(tx_ticks == 15):
                m.d.sync += [shifter.eq(Cat(shifter[1:], 1)), tx_bits.eq(tx_bits - 1)]

        # Receiver: a low line at a tick starts a character; each bit is sampled near its middle
        # (7 ticks after the one that saw the start bit, then every 16), start bit first, stop bit last.
        rbr = Signal(8)
        data_ready = Signal()
        rx_sync = Signal(2, init=0b11)
        m.d.sync += rx_sync.eq(Cat(self.rx, rx_sync[0]))
        rx_line = rx_sync[1]
        rx_bits = Signal(range(11))  # samples left to take, 0 when idle
        rx_ticks = Signal(4)  # ticks to the next sample, less one
        rx_shift = Signal(8)  # the start bit, then the data, shift in from the top
        with m.If(tick):
            with m.If(rx_bits == 0):
                with m.If(~rx_line):
                    m.d.sync += [rx_bits.eq(10), rx_ticks.eq(6)]
            with m.Elif(rx_ticks == 0):
                m.d.sync += [rx_bits.eq(rx_bits - 1), rx_ticks.eq(15)]
                with m.If(rx_bits == 1):  # the stop bit
                    m.d.sync += [rbr.eq(rx_shift), data_ready.eq(1)]
                with m.Else():
                    m.d.sync += rx_shift.eq(Cat(rx_shift[1:], rx_line))
            with m.Else():
                m.d.sync += rx_ticks.eq(rx_ticks - 1)

        thre = ~thr_full
        temt = thre & (tx_bits == 0)
        rda_irq = ier[0] & data_ready
        thre_irq = ier[1] & thre
        m.d.comb += self.irq.eq(rda_irq | thre_irq)

        # Register access.
        io = self.io
        register = io.port[:3]
        m.d.comb += io.ready.eq(io.valid)
        with m.Switch(register):
            with m.Case(RBR_THR):
                m.d.comb += io.rdata.eq(Mux(dlab, divisor[:8], rbr))
            with m.Case(IER):
                m.d.comb += io.rdata.eq(Mux(dlab, divisor[8:], ier))
            with m.Case(IIR_FCR):
                iir = Signal(8)
                with m.If(rda_irq):
                    m.d.comb += iir.eq(0b0100)
                with m.Elif(thre_irq):
                    m.d.comb += iir.eq(0b0010)
                with m.Else():
                    m.d.comb += iir.eq(0b0001)
                m.d.comb += io.rdata.eq(iir)
            with m.Case(LCR):
                m.d.comb += io.rdata.eq(lcr)
            with m.Case(MCR):
                m.d.comb += io.rdata.eq(mcr)
            with m.Case(LSR):
                m.d.comb += io.rdata.eq(Cat(data_ready, 0, 0, 0, 0, thre, temt, 0))
            with m.Case(SCR):
                m.d.comb += io.rdata.eq(scr)

        with m.If(io.valid & ~io.write & (register == RBR_THR) & ~dlab):
            m.d.sync += data_ready.eq(0)
        with m.If(io.valid & io.write):
            data = io.wdata[:8]
            with m.Switch(register):
                with m.Case(RBR_THR):
                    with m.If(dlab):
                        m.d.sync += divisor[:8].eq(data)
                    with m.Elif(thre):
                        m.d.sync += [thr.eq(data), thr_full.eq(1)]
                        m.d.comb += [self.sent.eq(1), self.sent_data.eq(data)]
                with m.Case(IER):
                    with m.If(dlab):
                        m.d.sync += divisor[8:].eq(data)
                    with m.Else():
                        m.d.sync += ier.eq(data[:2])
                with m.Case(LCR):
                    m.d.sync += lcr.eq(data)
                with m.Case(MCR):
                    m.d.sync += mcr.eq(data[:5])
                with m.Case(SCR):
                    m.d.sync += scr.eq(data)
        return m
