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

        # Transmitter: holding register -> shift register.
        thr = Signal(8)
        thr_full = Signal()
        shifter = Signal(10)  # stop, data, start: shifted out LSB first
        tx_bits = Signal(range(11))
        tx_timer = Signal(20)
        m.d.comb += self.tx.eq(shifter[0] | (tx_bits == 0))  # the line idles high
        with m.If(tx_bits == 0):
            with m.If(thr_full):
                m.d.sync += [shifter.eq(Cat(0, thr, 1)), tx_bits.eq(10), thr_full.eq(0), tx_timer.eq(0)]
        with m.Else():
            with m.If(tx_timer == (divisor << 4) - 1):
                m.d.sync += [tx_timer.eq(0), shifter.eq(shifter >> 1), tx_bits.eq(tx_bits - 1)]
            with m.Else():
                m.d.sync += tx_timer.eq(tx_timer + 1)

        # Receiver: start bit, then sample each bit in its middle.
        rbr = Signal(8)
        data_ready = Signal()
        rx_sync = Signal(2, init=0b11)
        m.d.sync += rx_sync.eq(Cat(self.rx, rx_sync[0]))
        rx_line = rx_sync[1]
        rx_bits = Signal(range(10))
        rx_timer = Signal(21)
        rx_shift = Signal(8)
        bit_time = divisor << 4
        with m.If(rx_bits == 0):
            with m.If(~rx_line):
                m.d.sync += [rx_bits.eq(9), rx_timer.eq(bit_time + (bit_time >> 1) - 1)]
        with m.Elif(rx_timer == 0):
            m.d.sync += [rx_bits.eq(rx_bits - 1), rx_timer.eq(bit_time - 1)]
            with m.If(rx_bits == 1):  # the stop bit
                m.d.sync += [rbr.eq(rx_shift), data_ready.eq(1)]
            with m.Else():
                m.d.sync += rx_shift.eq(Cat(rx_shift[1:], rx_line))
        with m.Else():
            m.d.sync += rx_timer.eq(rx_timer - 1)

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
