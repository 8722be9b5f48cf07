"""On-die VMCS cache: the on-die fields of up to N VMCSs in block RAM, their tags in flip-flops.

# Ref: Intel SDM vol. 3C, 24.1 "Overview" and 24.11.1 (the processor may keep
# an active VMCS's data on die; VMCLEAR makes it consistent in memory).

The replacement policy is part of the unit's contract (docs/semantics.md), since
it decides what memory holds: the victim is the lowest-numbered invalid entry,
else the least recently *touched* one (an entry is touched when it becomes
current).
"""

from amaranth import Array, Module, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..arch.layout import CACHE_ENTRIES, SLOTS_PER_VMCS
from ..bram import NO_RW_CHECK, registered_read
from .cache_port import SLOT_BITS, CachePortSignature

__all__ = ["VmcsCache", "TagPortSignature", "Tag", "PAGE_BITS", "SLOT_BITS"]

#: A region is named by its 4-KiB page number (physical address bits 31:12).
PAGE_BITS = 20


class Tag(data.Struct):
    valid: 1
    page: PAGE_BITS
    #: Launch state as in word 2 of the region (bit 0 launched, bit 1 VMXOFF since launch).
    launch: 2
    dirty: 1


class TagPortSignature(wiring.Signature):
    """The cache's tags, look-up and tag commands, seen from the block that decides which VMCSs are cached.

    Tag commands are registered on the way in and take effect one clock later
    than a data write (at the second edge): a requester must not read a tag it
    changed in the cycle right after the command.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds (``CachePortSignature``).

    Members
    -------
    tags : In(ArrayLayout(Tag, entries))
        Every entry's tag (registers).
    lookup_page : Out(PAGE_BITS)
        The region to look up.
    hit : In(1)
        A valid entry holds the region of ``lookup_page`` (combinational) ...
    hit_entry : In(entry_bits)
        ... this one.
    victim : In(entry_bits)
        Lowest-numbered invalid entry, else the least recently touched.
    cmd_entry : Out(entry_bits)
        The entry the commands below act on (same cycle, effect at the next edge).
    install : Out(1)
        Entry becomes valid for ``install_page`` with ``install_launch``, clean.
    install_page : Out(PAGE_BITS)
    install_launch : Out(2)
        Not registered with ``install``: hold them until it takes effect (the cycle after).
    invalidate : Out(1)
    invalidate_all : Out(1)
        Every entry becomes invalid.
    touch : Out(1)
        The entry becomes the most recently used.
    mark_dirty : Out(1)
    mark_clean : Out(1)
    set_launch : Out(1)
        Launch state := ``launch`` (also marks the entry dirty).
    launch : Out(2)
    """

    def __init__(self, entries: int):
        self.entries = entries
        e = CachePortSignature(entries).entry_bits
        super().__init__(
            {
                "tags": In(data.ArrayLayout(Tag, entries)),
                "lookup_page": Out(PAGE_BITS),
                "hit": In(1),
                "hit_entry": In(e),
                "victim": In(e),
                "cmd_entry": Out(e),
                "install": Out(1),
                "install_page": Out(PAGE_BITS),
                "install_launch": Out(2),
                "invalidate": Out(1),
                "invalidate_all": Out(1),
                "touch": Out(1),
                "mark_dirty": Out(1),
                "mark_clean": Out(1),
                "set_launch": Out(1),
                "launch": Out(2),
            }
        )

    def __eq__(self, other):
        return isinstance(other, TagPortSignature) and self.entries == other.entries

    def __repr__(self):
        return f"TagPortSignature(entries={self.entries})"


class VmcsCache(wiring.Component):
    """Block-RAM storage for the on-die fields of ``entries`` VMCSs, with tags and LRU order.

    Data: 64-bit slots, ``SLOTS_PER_VMCS`` per entry, written by halves (32-bit
    granularity), through one ``CachePortSignature`` port (``CacheArbiter``
    joins its clients): read latency 1 cycle (``read_latency``; ``rd_data``
    holds while ``rd_en`` is low); a write takes effect at the next clock
    edge; a read of the slot written in the same cycle returns an undefined
    value (``bram.registered_read``). Tags are registers; the lookup (``hit``,
    ``hit_entry``) and the ``victim`` are combinational; tag commands take
    effect at the second edge (``TagPortSignature``).

    Members
    -------
    port : In(CachePortSignature(entries))
        The data port.
    tag_port : In(TagPortSignature(entries))
        The tags and their commands.
    """

    def __init__(self, entries: int = CACHE_ENTRIES):
        port = CachePortSignature(entries)
        self.entries = entries
        self.entry_bits = port.entry_bits
        super().__init__({"port": In(port), "tag_port": In(TagPortSignature(entries))})

    @property
    def read_latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        n, e = self.entries, self.entry_bits

        port = self.port
        m.submodules.data = mem = memory.Memory(shape=64, depth=n * SLOTS_PER_VMCS, init=[], attrs=NO_RW_CHECK)
        rd_addr = (port.rd_entry << SLOT_BITS) | port.rd_slot
        rd_data = registered_read(m, mem, addr=rd_addr, en=port.rd_en, name="rd_data_q")
        wr = mem.write_port(granularity=32)
        m.d.comb += [
            port.rd_data.eq(rd_data),
            wr.addr.eq((port.wr_entry << SLOT_BITS) | port.wr_slot),
            wr.data.eq(port.wr_data),
            wr.en.eq(port.wr_en),
        ]

        control = self.tag_port
        tags = control.tags
        # LRU ages: a permutation of 0..n-1, 0 the most recently touched.
        ages = Array(Signal(e, name=f"age{i}", init=i) for i in range(n))

        for i in reversed(range(n)):
            with m.If(tags[i].valid & (tags[i].page == control.lookup_page)):
                m.d.comb += [control.hit.eq(1), control.hit_entry.eq(i)]
        # Later assignments win: an invalid entry beats the oldest one.
        for i in range(n):
            with m.If(ages[i] == n - 1):
                m.d.comb += control.victim.eq(i)
        for i in reversed(range(n)):
            with m.If(~tags[i].valid):
                m.d.comb += control.victim.eq(i)

        # Commands, registered on the way in.
        cmd_entry = Signal.like(control.cmd_entry)
        install, invalidate, invalidate_all, touch = Signal(), Signal(), Signal(), Signal()
        mark_dirty, mark_clean, set_launch = Signal(), Signal(), Signal()
        launch = Signal(2)
        m.d.sync += [
            cmd_entry.eq(control.cmd_entry),
            install.eq(control.install),
            invalidate.eq(control.invalidate),
            invalidate_all.eq(control.invalidate_all),
            touch.eq(control.touch),
            mark_dirty.eq(control.mark_dirty),
            mark_clean.eq(control.mark_clean),
            set_launch.eq(control.set_launch),
            launch.eq(control.launch),
        ]

        target = tags[cmd_entry]
        with m.If(install):
            m.d.sync += [
                target.valid.eq(1),
                target.page.eq(control.install_page),
                target.launch.eq(control.install_launch),
                target.dirty.eq(0),
            ]
        with m.If(set_launch):
            m.d.sync += [target.launch.eq(launch), target.dirty.eq(1)]
        with m.If(mark_dirty):
            m.d.sync += target.dirty.eq(1)
        with m.If(mark_clean):
            m.d.sync += target.dirty.eq(0)
        with m.If(invalidate):
            m.d.sync += target.valid.eq(0)
        with m.If(invalidate_all):
            m.d.sync += [tags[i].valid.eq(0) for i in range(n)]
        with m.If(touch):
            touched_age = ages[cmd_entry]
            for i in range(n):
                with m.If(cmd_entry == i):
                    m.d.sync += ages[i].eq(0)
                with m.Elif(ages[i] < touched_age):
                    m.d.sync += ages[i].eq(ages[i] + 1)
        return m
