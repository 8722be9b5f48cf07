"""Wishbone interconnect: an arbiter (several masters, one bus) and an address decoder (one bus, several slaves).

# Ref: Wishbone B4 specification, 3.1 (classic cycles) and 4 (shared bus
# interconnection): a master holds CYC for a whole cycle, so the arbiter
# changes grant only between cycles.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..wishbone import Signature as WishboneSignature

__all__ = ["Arbiter", "Decoder"]


class Arbiter(wiring.Component):
    """Shares one Wishbone bus among ``count`` masters, fixed priority (master 0 first).

    The grant moves only while no cycle is under way, so a granted master keeps
    the bus until it drops ``cyc``. No added latency: the granted master's
    signals reach the bus combinationally.

    Members
    -------
    masters : In(array of Wishbone signatures)
        ``masters[i]`` is master i's bus (connect a master's ``Out`` bus to it).
    bus : Out(Wishbone signature)
    """

    def __init__(self, count: int, *, addr_width: int = 30):
        if count < 1:
            raise ValueError(f"An arbiter needs at least one master, not {count!r}")
        self.count = count
        signature = WishboneSignature(addr_width=addr_width)
        super().__init__({"masters": In(signature).array(count), "bus": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        grant = Signal(range(self.count))
        busy = Signal()  # the granted master has a cycle under way
        for i in range(self.count):
            with m.If(grant == i):
                m.d.comb += busy.eq(self.masters[i].cyc)
        with m.If(~busy):
            for i in reversed(range(self.count)):
                with m.If(self.masters[i].cyc):
                    m.d.sync += grant.eq(i)

        for i, master in enumerate(self.masters):
            granted = grant == i
            m.d.comb += [
                master.dat_r.eq(self.bus.dat_r),
                master.ack.eq(self.bus.ack & granted),
                master.err.eq(self.bus.err & granted),
            ]
            with m.If(granted):
                m.d.comb += [
                    self.bus.cyc.eq(master.cyc),
                    self.bus.stb.eq(master.stb),
                    self.bus.we.eq(master.we),
                    self.bus.adr.eq(master.adr),
                    self.bus.dat_w.eq(master.dat_w),
                    self.bus.sel.eq(master.sel),
                ]
        return m


class Decoder(wiring.Component):
    """Routes one Wishbone bus to the slave whose region holds the address.

    ``regions`` is a list of (base byte address, size in bytes), each a power of
    two aligned to its size. A cycle to an address no region holds ends with
    ERR one clock after the strobe. Combinational otherwise (no added latency).

    Members
    -------
    bus : In(Wishbone signature)
    slaves : Out(array of Wishbone signatures)
    """

    def __init__(self, regions: list[tuple[int, int]], *, addr_width: int = 30):
        for base, size in regions:
            if size & (size - 1) or base % size or size < 4:
                raise ValueError(f"Region {base:#x}+{size:#x} must be a power of two, at least 4, aligned to its size")
        self.regions = regions
        signature = WishboneSignature(addr_width=addr_width)
        super().__init__({"bus": In(signature), "slaves": Out(signature).array(len(regions))})

    def elaborate(self, platform):
        m = Module()
        adr = self.bus.adr  # word address
        hit_any = Signal()
        error_ack = Signal()
        for slave, (base, size) in zip(self.slaves, self.regions, strict=True):
            words = size // 4
            select = Signal()
            m.d.comb += select.eq((adr >> (words.bit_length() - 1)) == (base // 4) >> (words.bit_length() - 1))
            m.d.comb += [
                slave.cyc.eq(self.bus.cyc & select),
                slave.stb.eq(self.bus.stb & select),
                slave.we.eq(self.bus.we),
                slave.adr.eq(adr),
                slave.dat_w.eq(self.bus.dat_w),
                slave.sel.eq(self.bus.sel),
            ]
            with m.If(select):
                m.d.comb += [
                    hit_any.eq(1),
                    self.bus.dat_r.eq(slave.dat_r),
                    self.bus.ack.eq(slave.ack),
                    self.bus.err.eq(slave.err),
                ]
        with m.If(~hit_any):
            m.d.sync += error_ack.eq(self.bus.cyc & self.bus.stb & ~error_ack)
            m.d.comb += self.bus.err.eq(error_ack)
        with m.Else():
            m.d.sync += error_ack.eq(0)
        return m
