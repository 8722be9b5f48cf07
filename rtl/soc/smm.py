"""SMM on the SoC: the SMI command port, the SMRAM alias, and the decode that keeps the core out of SMRAM and MSEG.

# Ref: docs/smm-soc.md (the contract); rtl/arch/soc.py (``IO_PORTS``' "smi",
# ``SMRAM_ALIAS``, ``physical``, ``SMRAM_OFFSET``, ``SMRAM_SIZE``, ``MSEG_SIZE``,
# ``smram_closed``: the rule these blocks implement); Intel SDM vol. 3C 34.4
# (SMRAM), 34.15.5 (MSEG).

Only the SoC with guests has them (``Soc(guests=True)``): its unit has SMM.
"""

from amaranth import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.soc import MSEG_SIZE, SMRAM_ALIAS, SMRAM_OFFSET, SMRAM_SIZE, physical
from ..cpu.ports import IoSignature, SmiSignature
from ..vmx.port import SmmStatusSignature
from ..wishbone import Signature as WishboneSignature

__all__ = ["SmiPort", "SmramAlias", "SmramFilter", "physical_word"]

#: The address bit the alias clears (``physical``: 0x3xxxx -> 0x1xxxx).
_FOLD = SMRAM_ALIAS.base ^ physical(SMRAM_ALIAS.base)
assert _FOLD & (_FOLD - 1) == 0 and SMRAM_ALIAS.size & (SMRAM_ALIAS.size - 1) == 0
assert SMRAM_ALIAS.base % SMRAM_ALIAS.size == 0 and all(r % 4 == 0 for r in (SMRAM_OFFSET, SMRAM_SIZE, MSEG_SIZE))


def physical_word(adr: Value) -> Value:
    """``physical`` of a word address (a byte address's bits 31:2): the alias's fold bit cleared inside it."""
    low = (SMRAM_ALIAS.size // 4).bit_length() - 1
    in_alias = adr[low:] == (SMRAM_ALIAS.base // 4) >> low
    return Mux(in_alias, adr & ~(_FOLD // 4), adr)


def _inside(m: Module, adr: Value, base: Value, size: int) -> Value:
    """``base <= adr < base + size`` (``size`` in bytes) for word addresses, with one subtractor."""
    offset = Signal(len(adr) + 1)
    m.d.comb += offset.eq(adr - base)
    return ~offset[-1] & (offset[: len(adr)] < size // 4)


class SmiPort(wiring.Component):
    """The APM SMI command port (``IO_PORTS`` "smi", 0xB2): a write of any size latches an I/O SMI; a pulse on
    ``button`` (a board's button, synchronized, one cycle per press) latches a plain SMI.

    One SMI is latched, with the size of the write that raised it (a second write or press before the core
    takes it changes nothing); the core clears it with ``take`` when it sends it to the unit. Reads return all
    ones. Combinational: an access completes in the cycle of ``valid``; ``pending`` follows a write a cycle
    later.

    Members
    -------
    io : In(IoSignature())
        Only accesses the I/O decoder routes here.
    smi : Out(SmiSignature())
        The latched SMI and its write's size, to the core, which clears it with ``take``.
    """

    io: In(IoSignature())
    smi: Out(SmiSignature())
    button: In(1)

    def elaborate(self, platform):
        m = Module()
        smi = self.smi
        m.d.comb += [self.io.ready.eq(self.io.valid), self.io.rdata.eq(0xFFFF_FFFF)]
        with m.If(smi.take):
            m.d.sync += smi.pending.eq(0)
        with m.If(self.io.valid & self.io.write):
            m.d.sync += smi.pending.eq(1)
            with m.If(~smi.pending):
                m.d.sync += [smi.size.eq(self.io.size), smi.io.eq(1)]
        with m.Elif(self.button & ~smi.pending):
            m.d.sync += [smi.pending.eq(1), smi.io.eq(0)]
        return m


class SmramAlias(wiring.Component):
    """Folds ``SMRAM_ALIAS`` (0x30000-0x3FFFF) onto RAM 0x10000-0x1FFFF for every bus master (``physical``).

    Combinational (no added latency); every other member passes through.

    Members
    -------
    masters : In(wishbone.Signature(addr_width=30))
        From the arbiter.
    bus : Out(wishbone.Signature(addr_width=30))
        To the address decoder.
    """

    masters: In(WishboneSignature(addr_width=30))
    bus: Out(WishboneSignature(addr_width=30))

    def elaborate(self, platform):
        m = Module()
        src, dst = self.masters, self.bus
        m.d.comb += [
            dst.cyc.eq(src.cyc),
            dst.stb.eq(src.stb),
            dst.we.eq(src.we),
            dst.adr.eq(physical_word(src.adr)),
            dst.dat_w.eq(src.dat_w),
            dst.sel.eq(src.sel),
            src.dat_r.eq(dst.dat_r),
            src.ack.eq(dst.ack),
            src.err.eq(dst.err),
        ]
        return m


class SmramFilter(wiring.Component):
    """The core's accesses (fetch, load, store) by ``smram_closed``: SMRAM (SMBASE + ``SMRAM_OFFSET``, for
    ``SMRAM_SIZE`` bytes) outside SMM, and MSEG (``MSEG_SIZE`` bytes from the MSEG base, while the dual-monitor
    treatment is active) from anyone but SMM code in VMX root operation, compared as RAM sees them
    (``physical``). A closed access does not reach the bus: it is acknowledged in the cycle of its strobe,
    a read with all ones, a write dropped (no fault, as a chipset's SMRAM decode). Open accesses pass through
    combinationally (no added latency).

    Members
    -------
    core : In(wishbone.Signature(addr_width=30))
        The core's bus.
    bus : Out(wishbone.Signature(addr_width=30))
        To the arbiter.
    status : In(SmmStatusSignature())
        The unit's SMM state.
    closed : Out(1)
        The core's current address is closed (for the trace and the tests).
    """

    core: In(WishboneSignature(addr_width=30))
    bus: Out(WishboneSignature(addr_width=30))
    status: In(SmmStatusSignature())
    closed: Out(1)

    def elaborate(self, platform):
        m = Module()
        core, bus, status = self.core, self.bus, self.status
        adr = Signal(30)
        smram_base = Signal(30)
        smram_start = (status.smbase + SMRAM_OFFSET)[2:32]
        m.d.comb += [adr.eq(physical_word(core.adr)), smram_base.eq(physical_word(smram_start))]
        in_smram = _inside(m, adr, smram_base, SMRAM_SIZE)
        in_mseg = _inside(m, adr, status.mseg[2:], MSEG_SIZE)
        stm = status.in_smm & ~status.non_root  # SMM code in VMX root operation: the STM
        m.d.comb += self.closed.eq((~status.in_smm & in_smram) | (status.dual_active & ~stm & in_mseg))
        m.d.comb += [
            bus.cyc.eq(core.cyc & ~self.closed),
            bus.stb.eq(core.stb & ~self.closed),
            bus.we.eq(core.we),
            bus.adr.eq(core.adr),
            bus.dat_w.eq(core.dat_w),
            bus.sel.eq(core.sel),
            core.dat_r.eq(Mux(self.closed, 0xFFFF_FFFF, bus.dat_r)),
            core.ack.eq(Mux(self.closed, core.cyc & core.stb, bus.ack)),
            core.err.eq(bus.err & ~self.closed),
        ]
        return m
