"""Physical memory of the replay platform, as the VMX unit's bus sees it.

# Ref: docs/semantics.md "Physical memory and the bus" (choice 4: bus errors
# read as all ones).

RAM is ``RAM_BYTES`` at physical address 0. Never-written RAM reads 0. An
access outside RAM ends with a bus error: reads return all ones, writes are
dropped, as a PC bus does for a master abort. Storage is sparse: a dict of
32-bit words keyed by *word address* (byte address >> 2, the ADR of a 32-bit
Wishbone port), so the scoreboard can compare the RTL's memory with this one
word by word (``words()``).
"""

from __future__ import annotations

__all__ = ["RAM_BYTES", "PhysicalMemory"]

#: RAM of the replay platform: 1 MiB at address 0.
RAM_BYTES = 1 << 20

_WORD_MASK = 0xFFFF_FFFF


class PhysicalMemory:
    """Sparse little-endian RAM of ``size`` bytes at address 0.

    Members
    -------
    size : int
        Bytes of RAM (a multiple of 4).
    read(addr, nbytes), write(addr, nbytes, value)
        Byte-granular accesses at any alignment (nbytes 1, 2, 4 or 8).
    read_word(word_address), write_word(word_address, value, sel=0b1111)
        Aligned 32-bit accesses as the unit's Wishbone bus makes them.
    contains(addr, nbytes)
        Whether every byte of the access is RAM.
    words()
        Every non-zero word, by word address.
    begin_log(), end_log()
        Record the word addresses the bus writes in between.
    """

    def __init__(self, size: int = RAM_BYTES) -> None:
        if size <= 0 or size % 4:
            raise ValueError(f"RAM size must be a positive multiple of 4 bytes, not {size}")
        self.size = size
        self._words: dict[int, int] = {}
        #: Word addresses written since ``begin_log`` (None: not logging).
        self._log: set[int] | None = None

    def contains(self, addr: int, nbytes: int = 1) -> bool:
        return addr >= 0 and nbytes >= 0 and addr + nbytes <= self.size

    # -- the bus: aligned 32-bit words -------------------------------------

    def read_word(self, word_address: int) -> int:
        """One 32-bit bus read; all ones outside RAM (bus error)."""
        if not self.contains(word_address * 4, 4):
            return _WORD_MASK
        return self._words.get(word_address, 0)

    def write_word(self, word_address: int, value: int, sel: int = 0b1111) -> None:
        """One 32-bit bus write of the bytes whose ``sel`` bit is 1; dropped outside RAM (bus error)."""
        if value < 0 or value > _WORD_MASK:
            raise ValueError(f"a bus word is 32 bits, not {value:#x}")
        if not self.contains(word_address * 4, 4):
            return
        self._note_write(word_address)
        mask = 0
        for byte in range(4):
            if sel >> byte & 1:
                mask |= 0xFF << (8 * byte)
        word = (self._words.get(word_address, 0) & ~mask) | (value & mask)
        if word:
            self._words[word_address] = word
        else:
            self._words.pop(word_address, None)

    def begin_log(self) -> None:
        """Start recording which words the bus writes (the model reports an operation's changes)."""
        self._log = set()

    def end_log(self) -> tuple[int, ...]:
        """The word addresses written since ``begin_log``, in order; stops recording."""
        written = tuple(sorted(self._log or ()))
        self._log = None
        return written

    def _note_write(self, word_address: int) -> None:
        if self._log is not None:
            self._log.add(word_address)

    # -- byte-granular platform accesses ------------------------------------

    def read(self, addr: int, nbytes: int = 4) -> int:
        """Little-endian read of ``nbytes`` at any alignment; bytes outside RAM read 0xFF."""
        _check_size(nbytes)
        value = 0
        for i in range(nbytes):
            value |= self._read_byte(addr + i) << (8 * i)
        return value

    def write(self, addr: int, nbytes: int, value: int) -> None:
        """Little-endian write of ``nbytes`` at any alignment; bytes outside RAM are dropped."""
        _check_size(nbytes)
        if value < 0 or value >> (8 * nbytes):
            raise ValueError(f"{value:#x} does not fit in {nbytes} bytes")
        for i in range(nbytes):
            self._write_byte(addr + i, (value >> (8 * i)) & 0xFF)

    def words(self) -> dict[int, int]:
        """Every non-zero word of RAM, by word address (byte address >> 2)."""
        return dict(sorted(self._words.items()))

    def _read_byte(self, addr: int) -> int:
        return (self.read_word(addr >> 2) >> (8 * (addr & 3))) & 0xFF

    def _write_byte(self, addr: int, byte: int) -> None:
        self.write_word(addr >> 2, byte << (8 * (addr & 3)), sel=1 << (addr & 3))


def _check_size(nbytes: int) -> None:
    if nbytes not in (1, 2, 4, 8):
        raise ValueError(f"an access is 1, 2, 4 or 8 bytes, not {nbytes}")
