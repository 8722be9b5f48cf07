"""Memory-backed VMCS storage: single words of a region, and whole-image fill and write-back.

# Ref: Intel SDM vol. 3C, 24.2 "Format of the VMCS region"; 24.11.1 (VMCLEAR
# copies an active VMCS's data to its region). The layout is rtl/arch/layout.py.

A region is named by its page (physical address bits 31:12) and a word within
it, so a region address is a concatenation, not an addition.
"""

from collections.abc import Sequence

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..arbiter import check_clients
from ..arch.layout import CACHE_ENTRIES, IMAGE_FIRST_WORD, LAUNCH_WORD, SLOTS_USED
from ..wishbone import Signature as WishboneSignature
from ..wishbone import WordMaster
from .cache_port import CachePortSignature
from .vmcs_cache import PAGE_BITS

__all__ = ["RegionPort", "RegionCommand", "RegionCommandSignature", "RegionArbiter", "PAGE_WORD_BITS"]

_IMAGE_WORDS = 2 * SLOTS_USED
#: Word-address bits within a 4-KiB page: a region address is Cat(word, page).
PAGE_WORD_BITS = (4096 // 4 - 1).bit_length()


class RegionCommand(enum.Enum, shape=2):
    READ_WORD = 0
    WRITE_WORD = 1
    #: Read the launch word and every image word of a region into a cache entry.
    FILL = 2
    #: Write every image word of a cache entry, then the launch word, to a region.
    WRITE_BACK = 3


class RegionCommandSignature(wiring.Signature):
    """A command of the region port, seen from the block that issues it.

    Hold ``start`` with the command and its operands stable until ``done``.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds (``CachePortSignature``): sizes ``entry``.

    Members
    -------
    start : Out(1)
        Carry out the command; hold until ``done``.
    cmd : Out(RegionCommand)
    page : Out(PAGE_BITS)
        The region: physical address bits 31:12.
    word : Out(PAGE_WORD_BITS)
        The word of READ_WORD/WRITE_WORD within the region's 4-KiB page (any word: a VMCS's
        memory-resident field, a bitmap's word, an MSR-list entry's).
    wdata : Out(32)
        WRITE_WORD: the word to write; WRITE_BACK: the launch word to write.
    entry : Out(entry_bits)
        FILL/WRITE_BACK: the cache entry the image comes from or goes to.
    done : In(1)
        The command is complete; high for one cycle.
    rdata : In(32)
        With ``done`` of READ_WORD: the word read.
    fill_launch : In(2)
        With ``done`` of FILL: the launch state, bits 1:0 of the launch word read.
    """

    def __init__(self, entries: int):
        self.entries = entries
        entry_bits = CachePortSignature(entries).entry_bits
        super().__init__(
            {
                "start": Out(1),
                "cmd": Out(RegionCommand),
                "page": Out(PAGE_BITS),
                "word": Out(PAGE_WORD_BITS),
                "wdata": Out(32),
                "entry": Out(entry_bits),
                "done": In(1),
                "rdata": In(32),
                "fill_launch": In(2),
            }
        )

    def __eq__(self, other):
        return isinstance(other, RegionCommandSignature) and self.entries == other.entries

    def __repr__(self):
        return f"RegionCommandSignature(entries={self.entries})"


class RegionPort(wiring.Component):
    """The VMX unit's Wishbone master for VMCS (and VMXON) regions.

    Latency, with a slave that acknowledges one clock after the strobe (2
    cycles a word), counted from the first cycle of ``start`` to the cycle of
    ``done``, both included (``latency``, by command): READ_WORD/WRITE_WORD 2
    cycles; FILL ``4*SLOTS_USED + 4`` cycles (the launch word, then two words
    a slot); WRITE_BACK ``5*SLOTS_USED + 3`` cycles (each slot: one cache
    read, two bus writes; then the launch word). A block that issues a
    command from a register set in cycle c sees ``done`` in cycle c +
    latency. FILL and WRITE_BACK move the image through ``cache``, a client
    of the cache's data port.

    Members
    -------
    command : In(RegionCommandSignature(entries))
    cache : Out(CachePortSignature(entries))
        Reads (WRITE_BACK) and writes (FILL) the slots of ``command.entry``.
    bus : Out(wishbone.Signature(addr_width=30))
    """

    def __init__(self, entries: int = CACHE_ENTRIES):
        super().__init__(
            {
                "command": In(RegionCommandSignature(entries)),
                "cache": Out(CachePortSignature(entries)),
                "bus": Out(WishboneSignature(addr_width=30)),
            }
        )

    @property
    def latency(self) -> dict[RegionCommand, int]:
        word = 2
        return {
            RegionCommand.READ_WORD: word,
            RegionCommand.WRITE_WORD: word,
            RegionCommand.FILL: 1 + word + _IMAGE_WORDS * word + 1,
            RegionCommand.WRITE_BACK: 1 + SLOTS_USED * (1 + 2 * word) + word,
        }

    def elaborate(self, platform):
        m = Module()
        command = self.command
        m.submodules.master = master = WordMaster(addr_width=30)
        wiring.connect(m, wiring.flipped(self.bus), master.bus)

        word = Signal(PAGE_WORD_BITS)  # word of the access under way within the 4-KiB page
        image_word = Signal(range(_IMAGE_WORDS + 1))  # the image word a fill or write-back is at
        m.d.comb += master.adr.eq(Cat(word, command.page))
        # Defaults, which the states below override: the command's word and data. The image
        # word n is cache slot n // 2, half n % 2; the enables qualify the cache ports.
        cache = self.cache
        m.d.comb += [
            word.eq(command.word),
            master.dat_w.eq(command.wdata),
            cache.rd_entry.eq(command.entry),
            cache.rd_slot.eq(image_word[1:]),
            cache.wr_entry.eq(command.entry),
            cache.wr_slot.eq(image_word[1:]),
            cache.wr_data.eq(Cat(master.dat_r, master.dat_r)),
        ]
        m.d.comb += command.rdata.eq(master.dat_r)

        with m.FSM(name="region"):
            with m.State("IDLE"):
                with m.If(command.start):
                    with m.Switch(command.cmd):
                        with m.Case(RegionCommand.READ_WORD, RegionCommand.WRITE_WORD):
                            m.d.comb += [
                                master.start.eq(1),
                                master.we.eq(command.cmd == RegionCommand.WRITE_WORD),
                                command.done.eq(master.done),
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
                    m.d.sync += command.fill_launch.eq(master.dat_r[:2])
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
                m.d.comb += command.done.eq(1)
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
                    command.done.eq(master.done),
                ]
                with m.If(master.done):
                    m.next = "IDLE"
        return m


class RegionArbiter(wiring.Component):
    """Joins the blocks that issue region commands onto the one region port, by fixed priority.

    Ownership: the first client, in the order of ``clients``, that holds
    ``start`` owns the port; when none does, the last client owns it, so its
    command reaches the port without passing through its own ``start``.
    Clients never hold ``start`` together (the unit runs one operation at a
    time). ``done`` goes to the owner only; ``rdata`` and ``fill_launch`` to
    every client.

    Latency: none (combinational; ``latency`` is 0): a command costs what
    ``RegionPort.latency`` says.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds (``RegionCommandSignature``).
    clients : sequence of str
        Names of the client ports, highest priority first.

    Members
    -------
    port : Out(RegionCommandSignature(entries))
        To the region port.
    <client> : In(RegionCommandSignature(entries))
        One per name in ``clients``.
    """

    def __init__(self, entries: int, clients: Sequence[str]):
        self.clients = check_clients(clients, reserved="port")
        signature = RegionCommandSignature(entries)
        super().__init__({"port": Out(signature), **{name: In(signature) for name in self.clients}})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        ports = [getattr(self, name) for name in self.clients]
        owner = [Signal(name=f"{name}_owns") for name in self.clients]
        earlier = Const(0)
        for port, owns in zip(ports[:-1], owner[:-1], strict=True):
            m.d.comb += owns.eq(port.start & ~earlier)
            earlier = earlier | port.start
        m.d.comb += owner[-1].eq(~earlier)
        for member in ("cmd", "page", "word", "wdata", "entry"):
            value = getattr(ports[-1], member)
            for port in reversed(ports[:-1]):
                value = Mux(port.start, getattr(port, member), value)
            m.d.comb += getattr(self.port, member).eq(value)
        m.d.comb += self.port.start.eq(earlier | ports[-1].start)
        for port, owns in zip(ports, owner, strict=True):
            m.d.comb += [
                port.done.eq(self.port.done & owns),
                port.rdata.eq(self.port.rdata),
                port.fill_launch.eq(self.port.fill_launch),
            ]
        return m
