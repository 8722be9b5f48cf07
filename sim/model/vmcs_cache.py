"""The on-die VMCS cache and the VMCS region, exactly as the RTL keeps them.

# Ref: Intel SDM vol. 3C, 24.1 "Overview" (launch state, active/current
# VMCS), 24.2 "Format of the VMCS region", 24.11.1 "Software use of the VMCS";
# docs/semantics.md "The on-die VMCS cache and the region"; rtl/arch/layout.py.

The cache holds ``entries`` VMCSs. Each entry has a valid bit, the region
address, the launch state (two bits, as in word 2 of the region), a dirty bit,
a place in a least-recently-used order, and the on-die image: 2 * SLOTS_USED
32-bit words, word ``w`` of the region image being ``image[w - IMAGE_FIRST_WORD]``.
On-die components are read and written in the image of their entry;
memory-resident components in the region at ``addr + 4 * word``, over the bus.
Every bus access goes through ``PhysicalMemory.read_word/write_word`` so the
memory this model leaves is the memory the RTL leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmxu.rtl.arch import layout
from vmxu.rtl.arch.fields import Field
from vmxu.rtl.arch.layout import IMAGE_FIRST_WORD, LAUNCH_LAUNCHED, LAUNCH_VMXOFF, LAUNCH_WORD, LOCATION, Storage

from .memory import PhysicalMemory

__all__ = ["IMAGE_WORDS", "CacheEntry", "CacheEntryView", "VmcsCache"]

#: Words of the on-die image of one VMCS (region words IMAGE_FIRST_WORD ..).
IMAGE_WORDS = 2 * layout.SLOTS_USED
_LAUNCH_BITS = LAUNCH_LAUNCHED | LAUNCH_VMXOFF
_WORD_MASK = 0xFFFF_FFFF


@dataclass
class CacheEntry:
    """One entry of the cache (mutable; the model hands out ``CacheEntryView`` snapshots)."""

    number: int
    image: list[int]
    valid: bool = False
    addr: int = 0
    launch: int = 0
    dirty: bool = False

    @property
    def launched(self) -> bool:
        return bool(self.launch & LAUNCH_LAUNCHED)


@dataclass(frozen=True)
class CacheEntryView:
    """A read-only snapshot of a cache entry, for debugging and tests."""

    number: int
    valid: bool
    addr: int
    launch: int
    dirty: bool
    image: tuple[int, ...]


class VmcsCache:
    """The on-die VMCS cache in front of the regions in ``memory``."""

    def __init__(self, memory: PhysicalMemory, entries: int = layout.CACHE_ENTRIES) -> None:
        if entries < 1:
            raise ValueError(f"the cache needs at least one entry, not {entries}")
        self._memory = memory
        self._entries = [CacheEntry(number, [0] * IMAGE_WORDS) for number in range(entries)]
        #: Entry numbers, least recently made current first.
        self._lru = list(range(entries))

    # -- views ------------------------------------------------------------------

    @property
    def entries(self) -> tuple[CacheEntryView, ...]:
        return tuple(
            CacheEntryView(e.number, e.valid, e.addr, e.launch, e.dirty, tuple(e.image)) for e in self._entries
        )

    @property
    def lru_order(self) -> tuple[int, ...]:
        """Entry numbers from the least to the most recently made current."""
        return tuple(self._lru)

    def lookup(self, addr: int) -> CacheEntry | None:
        for entry in self._entries:
            if entry.valid and entry.addr == addr:
                return entry
        return None

    # -- VMPTRLD: hit or fill ------------------------------------------------------

    def make_current(self, addr: int) -> CacheEntry:
        """The entry holding the VMCS at ``addr``, filled if it is not cached; it becomes the most recently used."""
        entry = self.lookup(addr)
        if entry is None:
            entry = self._victim()
            if entry.valid and entry.dirty:
                self.write_back(entry)
            self._fill(entry, addr)
        self._touch(entry)
        return entry

    def snapshot(self, addr: int) -> CacheEntry:
        """The entry holding the VMCS at ``addr``, or a detached copy read from its region (the cache and the
        LRU order do not change)."""
        entry = self.lookup(addr)
        if entry is not None:
            return entry
        detached = CacheEntry(-1, [0] * IMAGE_WORDS)
        self._fill(detached, addr)
        return detached

    def _victim(self) -> CacheEntry:
        """The lowest-numbered invalid entry, else the least recently made current."""
        for entry in self._entries:
            if not entry.valid:
                return entry
        return self._entries[self._lru[0]]

    def _touch(self, entry: CacheEntry) -> None:
        self._lru.remove(entry.number)
        self._lru.append(entry.number)

    def _fill(self, entry: CacheEntry, addr: int) -> None:
        """Read every word of the on-die image, then the launch word."""
        base = addr >> 2
        entry.image = [self._memory.read_word(base + IMAGE_FIRST_WORD + i) for i in range(IMAGE_WORDS)]
        entry.launch = self._memory.read_word(base + LAUNCH_WORD) & _LAUNCH_BITS
        entry.addr = addr
        entry.valid = True
        entry.dirty = False

    # -- write-back, VMCLEAR, VMXOFF -----------------------------------------------

    def write_back(self, entry: CacheEntry, launch: int | None = None) -> None:
        """Write every word of the on-die image, then the launch word (``launch``, default the entry's)."""
        base = entry.addr >> 2
        for i, word in enumerate(entry.image):
            self._memory.write_word(base + IMAGE_FIRST_WORD + i, word)
        self._memory.write_word(base + LAUNCH_WORD, entry.launch if launch is None else launch)
        entry.dirty = False

    def clear(self, addr: int) -> None:
        """VMCLEAR: write back if cached and dirty, write 0 to the launch word, drop the entry (LRU unchanged)."""
        entry = self.lookup(addr)
        if entry is not None and entry.dirty:
            self.write_back(entry)
        self._memory.write_word((addr >> 2) + LAUNCH_WORD, 0)
        if entry is not None:
            entry.valid = False

    def write_back_for_vmxoff(self) -> None:
        """VMXOFF: lowest number first, write back every dirty entry and mark every launched one
        (a clean launched entry gets only its launch word); then invalidate all."""
        for entry in self._entries:
            if not entry.valid:
                continue
            launch = (entry.launch | LAUNCH_VMXOFF) if entry.launched else entry.launch
            if entry.dirty:
                self.write_back(entry, launch)
            elif entry.launched:
                self._memory.write_word((entry.addr >> 2) + LAUNCH_WORD, launch)
        for entry in self._entries:
            entry.valid = False

    # -- components ------------------------------------------------------------

    def read(self, entry: CacheEntry, field: Field) -> int:
        """The component's bits (``field.value_bits`` wide), from the image or from the region."""
        location = LOCATION[field.encoding]
        value = 0
        for i in range(location.words):
            value |= self._read_word(entry, location.word + i, location.storage) << (32 * i)
        return value & ((1 << field.value_bits) - 1)

    def write(self, entry: CacheEntry, field: Field, value: int) -> None:
        """Write the component's bits (zero-extended to its words); an on-die write makes the entry dirty."""
        if value < 0 or value >> field.value_bits:
            raise ValueError(f"{field.name} holds {field.value_bits} bits; {value:#x} does not fit")
        location = LOCATION[field.encoding]
        for i in range(location.words):
            self._write_word(entry, location.word + i, location.storage, (value >> (32 * i)) & _WORD_MASK)
        if location.storage == Storage.ON_DIE:
            entry.dirty = True

    def _read_word(self, entry: CacheEntry, word: int, storage: Storage) -> int:
        if storage == Storage.ON_DIE:
            return entry.image[word - IMAGE_FIRST_WORD]
        return self._memory.read_word((entry.addr >> 2) + word)

    def _write_word(self, entry: CacheEntry, word: int, storage: Storage, value: int) -> None:
        if storage == Storage.ON_DIE:
            entry.image[word - IMAGE_FIRST_WORD] = value
        else:
            self._memory.write_word((entry.addr >> 2) + word, value)
