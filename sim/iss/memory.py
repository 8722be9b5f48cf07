"""The SoC's RAM as both the core and the VMX unit see it.

# Ref: docs/cpu.md "Base ISA" (access faults), docs/semantics.md "Physical
# memory and the bus" (bus errors read as all ones); rtl/arch/soc.py (RAM).

The VMX unit masters the same RAM as the core, so ``SystemRam`` presents the
reference model's ``PhysicalMemory`` interface (``read_word``, ``write_word``,
``contains``, ``read``, ``write``, ``words``) over a flat ``bytearray``: the
model's VMXON and VMCS region accesses land in the memory the firmware reads.
An access outside RAM is a bus error: the unit reads all ones and its writes
are dropped. The core's own loads and stores go through ``load``/``store``
after the ISS has decided the address is RAM (anything else is an access
fault there, not a bus error).
"""

from __future__ import annotations

from vmxu.rtl.arch.soc import RAM, Region, physical
from vmxu.sim.model.memory import PhysicalMemory

__all__ = ["SystemRam"]

_WORD_MASK = 0xFFFF_FFFF


class SystemRam(PhysicalMemory):
    """``region.size`` bytes of little-endian RAM at ``region.base``, zero after reset.

    Members
    -------
    region : Region
        Where the RAM sits in the memory map.
    data : bytearray
        The bytes themselves (index 0 is ``region.base``).
    load(addr, nbytes), store(addr, nbytes, value)
        The core's accesses: unsigned little-endian, inside RAM (the caller checks).
    read_word, write_word, contains, read, write, words
        The ``PhysicalMemory`` interface the VMX unit's model uses.
    """

    def __init__(self, region: Region = RAM, *, alias: bool = False) -> None:
        super().__init__(region.size)
        self.region = region
        #: Whether the SMRAM alias (rtl/arch/soc.py ``SMRAM_ALIAS``) folds onto RAM (the SoC with guests).
        self.alias = alias
        self.data = bytearray(region.size)

    # -- the core's side ---------------------------------------------------------

    def load(self, addr: int, nbytes: int) -> int:
        offset = addr - self.region.base
        return int.from_bytes(self.data[offset : offset + nbytes], "little")

    def store(self, addr: int, nbytes: int, value: int) -> None:
        offset = addr - self.region.base
        self.data[offset : offset + nbytes] = value.to_bytes(nbytes, "little")

    def load_image(self, addr: int, image: bytes) -> None:
        """Copy ``image`` into RAM at ``addr``; ValueError if it does not fit."""
        if not self.region.contains(addr, len(image)):
            raise ValueError(
                f"{len(image)} bytes at {addr:#x} do not fit in RAM ({self.region.base:#x}..{self.region.end:#x})"
            )
        offset = addr - self.region.base
        self.data[offset : offset + len(image)] = image

    # -- the PhysicalMemory interface (the VMX unit's bus) ------------------------

    def contains(self, addr: int, nbytes: int = 1) -> bool:
        return nbytes >= 0 and self.region.contains(addr, nbytes)

    def physical(self, addr: int) -> int:
        """The RAM address an access to ``addr`` reaches (through the SMRAM alias, where there is one)."""
        return physical(addr) if self.alias else addr

    def read_word(self, word_address: int) -> int:
        """One 32-bit bus read; all ones outside RAM (bus error)."""
        addr = self.physical(word_address * 4)
        if not self.contains(addr, 4):
            return _WORD_MASK
        return self.load(addr, 4)

    def write_word(self, word_address: int, value: int, sel: int = 0b1111) -> None:
        """One 32-bit bus write of the bytes whose ``sel`` bit is 1; dropped outside RAM (bus error)."""
        if value < 0 or value > _WORD_MASK:
            raise ValueError(f"a bus word is 32 bits, not {value:#x}")
        addr = self.physical(word_address * 4)
        if not self.contains(addr, 4):
            return
        self._note_write(addr >> 2)
        offset = addr - self.region.base
        for byte in range(4):
            if sel >> byte & 1:
                self.data[offset + byte] = (value >> (8 * byte)) & 0xFF

    def words(self) -> dict[int, int]:
        """Every non-zero word of RAM, by word address (byte address >> 2)."""
        base_word = self.region.base >> 2
        words = {}
        for offset in range(0, len(self.data), 4):
            word = int.from_bytes(self.data[offset : offset + 4], "little")
            if word:
                words[base_word + offset // 4] = word
        return words
