"""The iCE40 UltraPlus's 128 KiB of single-port RAM (SPRAM) as the SoC's RAM on Wishbone.

# Ref: Lattice TN1314 "iCE40 SPRAM Usage Guide" (SB_SPRAM256KA: 16K x 16,
# ADDRESS[13:0], DATAIN/DATAOUT[15:0], MASKWREN[3:0] one bit per nibble,
# WREN, CHIPSELECT, STANDBY, SLEEP, POWEROFF active low; DATAOUT registered,
# one clock after the address; undefined after a write).

Four SB_SPRAM256KA make 32K words of 32 bits: two banks (word address bit 14)
of two 16-bit halves each. A byte write enables the two nibbles of that byte
(MASKWREN). The SPRAM cannot be initialised by the bitstream: on the board,
rtl/soc/flash_loader.py fills it through the load port before the core runs.

The primitive exists only in the iCE40 toolchain, so a design elaborated
without a platform (``platform is None``: Amaranth's simulator, Verilog for
cocotb) gets :class:`SpramBlock`'s model instead: the same ports and timing,
one ``amaranth.lib.memory.Memory`` per block (DATAOUT keeps its value after a
write instead of going undefined).
"""

from amaranth import Cat, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .peripherals import RamAccess, ram_signature

__all__ = ["Spram", "SpramBlock"]


class SpramBlock(wiring.Component):
    """One SB_SPRAM256KA (16K x 16), powered and awake; the simulation model when there is no platform.

    Latency: ``dataout`` holds the word at ``address`` one clock after a read
    (``chipselect`` high, ``wren`` low); a write (``chipselect`` and ``wren``
    high) stores the nibbles ``maskwren`` selects at the clock edge.

    Members
    -------
    address : In(14)
    datain : In(16)
    maskwren : In(4)
        One bit per nibble of ``datain``.
    wren, chipselect : In(1)
    dataout : Out(16)
    """

    depth = 16 * 1024

    address: In(14)
    datain: In(16)
    maskwren: In(4)
    wren: In(1)
    chipselect: In(1)
    dataout: Out(16)

    def elaborate(self, platform):
        m = Module()
        if platform is not None:
            m.submodules.spram = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=self.address,
                i_DATAIN=self.datain,
                i_MASKWREN=self.maskwren,
                i_WREN=self.wren,
                i_CHIPSELECT=self.chipselect,
                i_CLOCK=ClockSignal("sync"),
                i_STANDBY=0,
                i_SLEEP=0,
                i_POWEROFF=1,
                o_DATAOUT=self.dataout,
            )
            return m
        m.submodules.storage = storage = memory.Memory(shape=16, depth=self.depth, init=[])
        write = storage.write_port(granularity=4)
        read = storage.read_port()
        m.d.comb += [
            write.addr.eq(self.address),
            write.data.eq(self.datain),
            read.addr.eq(self.address),
            read.en.eq(self.chipselect & ~self.wren),
            self.dataout.eq(read.data),
        ]
        with m.If(self.chipselect & self.wren):
            m.d.comb += write.en.eq(self.maskwren)
        return m


class Spram(wiring.Component):
    """128 KiB of SPRAM on Wishbone, with Ram's signature (rtl/soc/peripherals.py): a drop-in for block RAM.

    Latency: one cycle (ACK the cycle after the strobe; SPRAM's output register
    is the read's one cycle). ``load`` writes a whole word through the same
    blocks, and takes priority over the bus: use it while the core is held.
    Members: :func:`~vmxu.rtl.soc.peripherals.ram_signature`.
    """

    size = 128 * 1024
    depth = size // 4

    def __init__(self, *, addr_width: int = 30):
        super().__init__(ram_signature(self.depth, addr_width))

    def elaborate(self, platform):
        m = Module()
        access = RamAccess.of(m, self)
        address, data, byte_enables, write = access.address, access.data, access.lanes, access.write
        bank = address[14]
        bank_read = Signal()  # the bank whose DATAOUT holds the word being read
        m.d.sync += bank_read.eq(bank)

        words = []
        for number in range(2):
            halves = []
            for half in range(2):
                block = SpramBlock()
                m.submodules[f"bank{number}_{('low', 'high')[half]}"] = block
                low_byte, high_byte = byte_enables[2 * half], byte_enables[2 * half + 1]
                m.d.comb += [
                    block.address.eq(address[:14]),
                    block.datain.eq(data.word_select(half, 16)),
                    block.maskwren.eq(Cat(low_byte, low_byte, high_byte, high_byte)),
                    block.wren.eq(write),
                    block.chipselect.eq(bank == number),
                ]
                halves.append(block.dataout)
            words.append(Cat(*halves))
        m.d.comb += self.bus.dat_r.eq(Mux(bank_read, words[1], words[0]))
        return m
