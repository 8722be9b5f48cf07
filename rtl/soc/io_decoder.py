"""Port I/O decoder: routes IN/OUT to the device that owns the port.

# Ref: rtl/arch/soc.py IO_PORTS. A port no device answers behaves as on a PC:
# reads return all ones, writes are dropped, and the access completes at once.
"""

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..cpu.ports import IoSignature

__all__ = ["IoDecoder"]


class IoDecoder(wiring.Component):
    """Routes the core's port I/O to ``len(ranges)`` devices; ``ranges`` are (first port, count).

    Each count is a power of two and each first port a multiple of it, so a
    device is selected by comparing the port's upper bits with a constant (no
    magnitude comparators). Combinational: a device's ``ready`` and ``rdata`` reach the core in the same cycle.

    Members
    -------
    io : In(IoSignature())
    devices : Out(array of IoSignature())
    """

    def __init__(self, ranges: list[tuple[int, int]]):
        for first, count in ranges:
            if count < 1 or count & (count - 1) or first % count:
                raise ValueError(f"Ports {first:#x}+{count} must be a power of two in number, aligned to it")
        self.ranges = ranges
        super().__init__({"io": In(IoSignature()), "devices": Out(IoSignature()).array(len(ranges))})

    def elaborate(self, platform):
        m = Module()
        io = self.io
        claimed = Signal()
        for device, (first, count) in zip(self.devices, self.ranges, strict=True):
            low_bits = count.bit_length() - 1
            selected = io.port[low_bits:] == first >> low_bits
            m.d.comb += [
                device.valid.eq(io.valid & selected),
                device.write.eq(io.write),
                device.port.eq(io.port),
                device.size.eq(io.size),
                device.wdata.eq(io.wdata),
            ]
            with m.If(selected):
                m.d.comb += [claimed.eq(1), io.ready.eq(device.ready), io.rdata.eq(device.rdata)]
        with m.If(~claimed):
            m.d.comb += [io.ready.eq(io.valid), io.rdata.eq(0xFFFF_FFFF)]
        return m
