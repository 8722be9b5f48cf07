"""Memory-backed VMCS storage: single words of a region, and whole-image fill and write-back.

# Ref: Intel SDM vol. 3C, 24.2 "Format of the VMCS region"; 24.11.1 (VMCLEAR
# copies an active VMCS's data to its region). The layout is rtl/arch/layout.py.

A region is named by its page (physical address bits 31:12) and a word within
it, so a region address is a concatenation, not an addition.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.layout import CACHE_ENTRIES, IMAGE_FIRST_WORD, LAUNCH_WORD, SLOTS_USED
from ..wishbone import Signature as WishboneSignature
from ..wishbone import WordMaster
from .cache_port import CachePortSignature
from .field_decoder import WORD_BITS
from .vmcs_cache import PAGE_BITS

__all__ = ["RegionPort", "RegionCommand"]

_IMAGE_WORDS = 2 * SLOTS_USED
#: Word-address bits within a 4-KiB page: a region address is Cat(word, page).
_PAGE_WORD_BITS = (4096 // 4 - 1).bit_length()


class RegionCommand(enum.Enum, shape=2):
    READ_WORD = 0
    WRITE_WORD = 1
    #: Read the launch word and every image word of a region into a cache entry.
    FILL = 2
    #: Write every image word of a cache entry, then the launch word, to a region.
    WRITE_BACK = 3


class RegionPort(wiring.Component):
    """The VMX unit's Wishbone master for VMCS (and VMXON) regions.

    Hold ``start`` with the command and its operands stable until ``done``
    (high for one cycle). Costs, with a slave that acknowledges one clock after
    the strobe (2 cycles a word): READ_WORD/WRITE_WORD 2 cycles; FILL
    ``2 * (1 + 2*SLOTS_USED)`` cycles; WRITE_BACK ``5*SLOTS_USED + 2`` cycles
    (each slot: one cache read, two bus writes). FILL and WRITE_BACK move the
    image through ``cache``, a client of the cache's data port.

    Members
    -------
    start : In(1)
    cmd : In(RegionCommand)
    page : In(PAGE_BITS)
    word : In(WORD_BITS)
        The word of READ_WORD/WRITE_WORD.
    wdata : In(32)
        WRITE_WORD data; WRITE_BACK: the launch word to write.
    entry : In
        The cache entry of FILL/WRITE_BACK.
    done : Out(1)
    rdata : Out(32)
        With ``done`` of READ_WORD: the word read.
    fill_launch : Out(2)
        With ``done`` of FILL: the launch state, bits 1:0 of the launch word read.
    cache : Out(CachePortSignature(entries))
        Reads (WRITE_BACK) and writes (FILL) the slots of ``entry``.
    bus : Out(wishbone.Signature(addr_width=30))
    """

    def __init__(self, entries: int = CACHE_ENTRIES):
        cache = CachePortSignature(entries)
        entry_bits = cache.entry_bits
        super().__init__(
            {
                "start": In(1),
                "cmd": In(RegionCommand),
                "page": In(PAGE_BITS),
                "word": In(WORD_BITS),
                "wdata": In(32),
                "entry": In(entry_bits),
                "done": Out(1),
                "rdata": Out(32),
                "fill_launch": Out(2),
                "cache": Out(cache),
                "bus": Out(WishboneSignature(addr_width=30)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.master = master = WordMaster(addr_width=30)
        wiring.connect(m, wiring.flipped(self.bus), master.bus)

        word = Signal(_PAGE_WORD_BITS)  # word of the access under way within the 4-KiB page
        image_word = Signal(range(_IMAGE_WORDS + 1))  # the image word a fill or write-back is at
        m.d.comb += master.adr.eq(Cat(word, self.page))
        # Defaults, which the states below override: the command's word and data. The image
        # word n is cache slot n // 2, half n % 2; the enables qualify the cache ports.
        cache = self.cache
        m.d.comb += [
            word.eq(self.word),
            master.dat_w.eq(self.wdata),
            cache.rd_entry.eq(self.entry),
            cache.rd_slot.eq(image_word[1:]),
            cache.wr_entry.eq(self.entry),
            cache.wr_slot.eq(image_word[1:]),
            cache.wr_word.eq(master.dat_r),
        ]
        m.d.comb += self.rdata.eq(master.dat_r)

        with m.FSM(name="region"):
            with m.State("IDLE"):
                with m.If(self.start):
                    with m.Switch(self.cmd):
                        with m.Case(RegionCommand.READ_WORD, RegionCommand.WRITE_WORD):
                            m.d.comb += [
                                master.start.eq(1),
                                master.we.eq(self.cmd == RegionCommand.WRITE_WORD),
                                self.done.eq(master.done),
                            ]
                        with m.Case(RegionCommand.FILL):
                            m.d.sync += image_word.eq(0)
                            m.next = "FILL_LAUNCH"
                        with m.Case(RegionCommand.WRITE_BACK):
                            m.d.sync += image_word.eq(0)
                            m.next = "WRITE_BACK_READ"

            with m.State("FILL_LAUNCH"):
                m.d.comb += [word.eq(LAUNCH_WORD), master.start.eq(1)]
                with m.If(master.done):
                    m.d.sync += self.fill_launch.eq(master.dat_r[:2])
                    m.next = "FILL_IMAGE"

            with m.State("FILL_IMAGE"):
                m.d.comb += [
                    word.eq(IMAGE_FIRST_WORD + image_word),
                    master.start.eq(1),
                ]
                with m.If(master.done):
                    m.d.comb += cache.wr_en.eq(1 << image_word[0])
                    m.d.sync += image_word.eq(image_word + 1)
                    with m.If(image_word == _IMAGE_WORDS - 1):
                        m.next = "FILL_DONE"

            with m.State("FILL_DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

            with m.State("WRITE_BACK_READ"):
                m.d.comb += cache.rd_en.eq(1)
                m.next = "WRITE_BACK_WORD"

            with m.State("WRITE_BACK_WORD"):
                m.d.comb += [
                    word.eq(IMAGE_FIRST_WORD + image_word),
                    master.start.eq(1),
                    master.we.eq(1),
                    master.dat_w.eq(cache.rd_data.word_select(image_word[0], 32)),
                ]
                with m.If(master.done):
                    m.d.sync += image_word.eq(image_word + 1)
                    with m.If(image_word == _IMAGE_WORDS - 1):
                        m.next = "WRITE_BACK_LAUNCH"
                    with m.Elif(image_word[0]):
                        m.next = "WRITE_BACK_READ"

            with m.State("WRITE_BACK_LAUNCH"):
                m.d.comb += [
                    word.eq(LAUNCH_WORD),
                    master.start.eq(1),
                    master.we.eq(1),
                    self.done.eq(master.done),
                ]
                with m.If(master.done):
                    m.next = "IDLE"
        return m
