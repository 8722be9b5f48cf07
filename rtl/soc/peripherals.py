"""The SoC's small devices: RAM, the test finisher, the machine timer (memory-mapped) and the POST/LED port (I/O).

# Ref: QEMU hw/misc/sifive_test.c (finisher), SiFive CLINT (mtime/mtimecmp),
# the PC's POST code port 0x80. rtl/arch/soc.py holds the addresses.
"""

from typing import NamedTuple

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..arch.soc import FINISHER_PASS, TIMER, TIMER_MTIME, TIMER_MTIMECMP
from ..cpu.ports import IoSignature
from ..wishbone import Signature as WishboneSignature

__all__ = ["Ram", "Finisher", "Timer", "PostPort", "word_ack", "ram_signature", "RamAccess"]


def word_ack(m: Module, bus) -> Signal:
    """A registered acknowledge: high in the cycle after the strobe, once per access."""
    ack = Signal()
    m.d.sync += ack.eq(bus.cyc & bus.stb & ~ack)
    m.d.comb += bus.ack.eq(ack)
    return ack


def ram_signature(depth: int, addr_width: int) -> wiring.Signature:
    """Every RAM's door (block RAM here, SPRAM in rtl/soc/spram.py): a Wishbone slave and the word load port.

    Members
    -------
    bus : In(Wishbone signature)
        32-bit words, byte lanes by ``sel``; ACK the cycle after the strobe.
    load_en : In(1)
    load_addr : In(word address)
    load_data : In(32)
        Write ``load_data`` at ``load_addr`` (whole word) this cycle; takes priority over the bus.
    """
    return wiring.Signature(
        {
            "bus": In(WishboneSignature(addr_width=addr_width)),
            "load_en": In(1),
            "load_addr": In(range(depth)),
            "load_data": In(32),
        }
    )


class RamAccess(NamedTuple):
    """What a RAM does this cycle, from :func:`ram_signature`'s ports (:meth:`of`)."""

    #: The bus's word index (the read address).
    index: Value
    #: The word written, and its address and byte lanes: the load port's whole word, else the bus's.
    address: Value
    data: Value
    lanes: Value
    #: A write happens: a load, or a bus write not yet acknowledged.
    write: Value

    @classmethod
    def of(cls, m: Module, ram) -> "RamAccess":
        """Acknowledge ``ram.bus`` a cycle after the strobe (:func:`word_ack`) and decode its access."""
        ack = word_ack(m, ram.bus)
        index = ram.bus.adr[: (ram.depth - 1).bit_length()]
        return cls(
            index=index,
            address=Mux(ram.load_en, ram.load_addr, index),
            data=Mux(ram.load_en, ram.load_data, ram.bus.dat_w),
            lanes=Mux(ram.load_en, 0b1111, ram.bus.sel),
            write=ram.load_en | (ram.bus.cyc & ram.bus.stb & ram.bus.we & ~ack),
        )


class Ram(wiring.Component):
    """Block RAM on Wishbone: ``size`` bytes, 32-bit words, byte writes, optionally initialised.

    Latency: one cycle (ACK the cycle after the strobe). ``load`` writes a word
    through a second port while the processor is held in reset (simulation
    loads firmware images this way, so one simulator build serves every image).
    Members: :func:`ram_signature`.
    """

    def __init__(self, size: int, *, init: list[int] | None = None, addr_width: int = 30):
        if size % 4 or size & (size - 1):
            raise ValueError(f"RAM size must be a power of two number of words, not {size!r}")
        self.size = size
        self.depth = size // 4
        self._init = list(init or [])
        if len(self._init) > self.depth:
            raise ValueError(f"the image ({4 * len(self._init)} bytes) does not fit {size} bytes of RAM")
        super().__init__(ram_signature(self.depth, addr_width))

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=32, depth=self.depth, init=self._init)
        read = storage.read_port()
        write = storage.write_port(granularity=8)
        access = RamAccess.of(m, self)
        m.d.comb += [
            read.addr.eq(access.index),
            self.bus.dat_r.eq(read.data),
            write.addr.eq(access.address),
            write.data.eq(access.data),
            write.en.eq(Mux(access.write, access.lanes, 0)),
        ]
        return m


class Finisher(wiring.Component):
    """QEMU's sifive_test: a write of 0x5555 ends the run with success, (code << 16) | 0x3333 with failure ``code``.

    Members
    -------
    bus : In(Wishbone signature)
    done : Out(1)
        High from the cycle after the finishing write on.
    code : Out(16)
        0 on success.
    failed : Out(1)
        ``done`` with a non-zero ``code``: a board that only shows pass or fail
        uses this one bit, and synthesis drops ``code``.
    """

    def __init__(self, *, addr_width: int = 30):
        super().__init__(
            {
                "bus": In(WishboneSignature(addr_width=addr_width)),
                "done": Out(1),
                "code": Out(16),
                "failed": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        ack = word_ack(m, self.bus)
        data = self.bus.dat_w
        with m.If(self.bus.cyc & self.bus.stb & self.bus.we & ~ack & ~self.done):
            with m.If(data == FINISHER_PASS):
                m.d.sync += [self.done.eq(1), self.code.eq(0)]
            with m.Elif((data[:16] == 0x3333) & (data[16:] != 0)):
                m.d.sync += [self.done.eq(1), self.code.eq(data[16:]), self.failed.eq(1)]
        return m


class Timer(wiring.Component):
    """CLINT-style machine timer: ``mtime`` counts clock cycles, the interrupt is ``mtime >= mtimecmp``.

    Registers (32-bit halves): mtimecmp at +0x4000/+0x4004, mtime at +0xBFF8/+0xBFFC.
    ``mtimecmp`` resets to all ones (no interrupt). Latency one cycle.

    Members
    -------
    bus : In(Wishbone signature)
    irq : Out(1)
    mtime : Out(64)
    """

    def __init__(self, *, addr_width: int = 30):
        super().__init__({"bus": In(WishboneSignature(addr_width=addr_width)), "irq": Out(1), "mtime": Out(64)})

    def elaborate(self, platform):
        m = Module()
        ack = word_ack(m, self.bus)
        mtimecmp = Signal(64, init=2**64 - 1)
        m.d.sync += self.mtime.eq(self.mtime + 1)
        m.d.sync += self.irq.eq(self.mtime >= mtimecmp)
        offset = Cat(Const(0, 2), self.bus.adr)[: (TIMER.size - 1).bit_length()]
        registers = {
            TIMER_MTIMECMP - TIMER.base: (mtimecmp, 0),
            TIMER_MTIMECMP - TIMER.base + 4: (mtimecmp, 1),
            TIMER_MTIME - TIMER.base: (self.mtime, 0),
            TIMER_MTIME - TIMER.base + 4: (self.mtime, 1),
        }
        with m.Switch(offset):
            for addr, (register, half) in registers.items():
                with m.Case(addr):
                    m.d.comb += self.bus.dat_r.eq(register.word_select(half, 32))
                    with m.If(self.bus.cyc & self.bus.stb & self.bus.we & ~ack):
                        m.d.sync += register.word_select(half, 32).eq(self.bus.dat_w)
        return m


class PostPort(wiring.Component):
    """The POST code port (0x80): the LEDs show the last byte written; reads return it.

    Members
    -------
    io : In(IoSignature())
        Only accesses the I/O decoder routes here.
    leds : Out(8)
    """

    io: In(IoSignature())
    leds: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.io.ready.eq(self.io.valid), self.io.rdata.eq(self.leds)]
        with m.If(self.io.valid & self.io.write):
            m.d.sync += self.leds.eq(self.io.wdata[:8])
        return m
