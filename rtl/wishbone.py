"""Wishbone B4 classic bus: the signature vmxu's blocks share.

# Ref: Wishbone B4 specification (OpenCores, 2010), chapter 3 "Classic cycles".

amaranth-soc is not on the package index, so vmxu defines the small signature
it needs here: 32-bit data, byte granularity, word addresses, and ERR_I (a bus
error ends a cycle like ACK_I; the master reads all ones).
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Signature", "WordMaster"]


class Signature(wiring.Signature):
    """Wishbone B4 classic, seen from the master.

    Parameters
    ----------
    addr_width : int
        Width of ``adr`` (a word address).
    data_width : int
        Width of ``dat_w``/``dat_r``: 8, 16, 32 or 64.
    granularity : int
        Smallest unit ``sel`` selects: 8 or ``data_width``.

    Members
    -------
    cyc, stb, we : Out(1)
        Cycle, strobe, write enable.
    adr : Out(addr_width)
    dat_w : Out(data_width)
    sel : Out(data_width // granularity)
    dat_r : In(data_width)
    ack, err : In(1)
        The slave ends the cycle: normally, or with an error.
    """

    def __init__(self, *, addr_width: int, data_width: int = 32, granularity: int = 8):
        if not isinstance(addr_width, int) or addr_width < 0:
            raise TypeError(f"Address width must be a non-negative integer, not {addr_width!r}")
        if data_width not in (8, 16, 32, 64):
            raise ValueError(f"Data width must be one of 8, 16, 32, 64, not {data_width!r}")
        if granularity not in (8, data_width):
            raise ValueError(f"Granularity must be 8 or the data width {data_width}, not {granularity!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        self.granularity = granularity
        super().__init__(
            {
                "cyc": Out(1),
                "stb": Out(1),
                "we": Out(1),
                "adr": Out(addr_width),
                "dat_w": Out(data_width),
                "sel": Out(data_width // granularity),
                "dat_r": In(data_width),
                "ack": In(1),
                "err": In(1),
            }
        )

    def __eq__(self, other):
        return (
            isinstance(other, Signature)
            and self.addr_width == other.addr_width
            and self.data_width == other.data_width
            and self.granularity == other.granularity
        )

    def __repr__(self):
        return (
            f"wishbone.Signature(addr_width={self.addr_width}, data_width={self.data_width}, "
            f"granularity={self.granularity})"
        )


class WordMaster(wiring.Component):
    """One full-word Wishbone classic access at a time, for a sequencer.

    The sequencer holds ``start`` with ``we``, ``adr`` and ``dat_w`` stable
    until ``done``; ``done`` is high in the cycle the slave ends the access,
    with ``dat_r`` (all ones if the slave answered with ERR, as a PC bus reads
    after a master abort). The strobe is ``start`` itself, so a sequencer that
    moves to its next access in the cycle after ``done`` issues back-to-back
    cycles: a slave that acknowledges one clock after the strobe costs 2
    cycles per word.

    Members
    -------
    bus : Out(Signature(addr_width=addr_width))
    start, we : In(1)
    adr : In(addr_width)
    dat_w : In(32)
    done : Out(1)
    dat_r : Out(32)
    error : Out(1)
        The access ended with ERR.
    """

    def __init__(self, *, addr_width: int = 30):
        super().__init__(
            {
                "bus": Out(Signature(addr_width=addr_width)),
                "start": In(1),
                "we": In(1),
                "adr": In(addr_width),
                "dat_w": In(32),
                "done": Out(1),
                "dat_r": Out(32),
                "error": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [
            self.bus.cyc.eq(self.start),
            self.bus.stb.eq(self.start),
            self.bus.we.eq(self.we),
            self.bus.adr.eq(self.adr),
            self.bus.dat_w.eq(self.dat_w),
            self.bus.sel.eq(0b1111),
            self.dat_r.eq(self.bus.err.replicate(32) | self.bus.dat_r),
            self.error.eq(self.start & self.bus.err),
            self.done.eq(self.start & (self.bus.ack | self.bus.err)),
        ]
        return m
