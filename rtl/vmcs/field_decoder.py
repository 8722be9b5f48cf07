"""VMCS field decoder: component encoding -> supported?, width, type, and where it lives.

# Ref: Intel SDM vol. 3C, appendix B "Field encoding in VMCS"; 24.11.2
# (VMREAD/VMWRITE fail with error 12 for an unsupported component).
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..arch.fields import FIELDS, MAX_INDEX, AccessType, FieldEncoding, FieldType, FieldWidth
from ..arch.layout import IMAGE_FIRST_WORD, LOCATION, REGION_WORDS_USED, Storage
from .cache_port import SLOT_BITS

__all__ = ["FieldDecoder", "INDEX_BITS", "WORD_BITS", "SLOT_BITS"]

#: Index bits the decoder looks up; higher index bits must be 0.
INDEX_BITS = MAX_INDEX.bit_length()
#: Bits of a region word offset.
WORD_BITS = (REGION_WORDS_USED - 1).bit_length()


class _RomEntry(data.Struct):
    full: 1  # the full access type of (width, type, index) is supported
    high: 1  # its high access type is supported
    storage: Storage
    #: Where the full field's bits 31:0 are: the region word if memory-resident, the
    #: on-die image word (slot * 2 + half) if on-die. Even for every 64-bit field, so a
    #: high access is this OR 1.
    place: WORD_BITS
    #: The full field is supported and on-die, in half 0 / half 1 of its slot; its high access is.
    on_die_lo: 1
    on_die_hi: 1
    on_die_high: 1


def _rom_address(width: int, type_: int, index: int) -> int:
    return (width << (2 + INDEX_BITS)) | (type_ << INDEX_BITS) | index


def _rom_init() -> list[int]:
    """One entry per (width, type, index); the high access is a flag of its full field's entry."""
    rom = [0] * (1 << (4 + INDEX_BITS))
    for f in FIELDS:
        addr = _rom_address(f.width.value, f.type.value, f.index)
        loc = LOCATION[f.full_encoding]
        fields = {"full": 1} if f.access == AccessType.FULL else {"high": 1}
        place = loc.word - IMAGE_FIRST_WORD if loc.storage == Storage.ON_DIE else loc.word
        if loc.words == 2 and place & 1:
            raise ValueError(f"{f.name}: a 64-bit field must start at an even word")
        on_die = loc.storage == Storage.ON_DIE
        if f.access == AccessType.FULL:
            fields.update(on_die_lo=int(on_die and not place & 1), on_die_hi=int(on_die and bool(place & 1)))
        else:
            fields.update(on_die_high=int(on_die))
        const = _RomEntry.const({**fields, "storage": loc.storage, "place": place})
        rom[addr] |= const.as_bits()
    return rom


class FieldDecoder(wiring.Component):
    """Decodes a VMCS component encoding from a ROM generated from the field table.

    Latency: 1 cycle (``latency``). Present the 64-bit encoding register on
    ``encoding`` with ``en`` high; the outputs describe it from the next cycle
    on and hold while ``en`` is low. A 32-bit operand reaches the decoder zero-extended.

    Members
    -------
    en : In(1)
    encoding : In(64)
    valid : Out(1)
        A supported component (otherwise VMREAD/VMWRITE fail with error 12).
    width : Out(FieldWidth)
    type : Out(FieldType)
    access : Out(AccessType)
    storage : Out(Storage)
    word : Out(WORD_BITS)
        A memory-resident component's region word (for a high access, the upper
        word of the pair).
    slot, half : Out
        An on-die component's cache slot and half (1: bits 63:32).
    pair : Out(1)
        The component spans two words (a 64-bit or natural-width field, full access).
    on_die_half : Out(2)
        A supported on-die component, in half 0 (bit 0) or half 1 (bit 1) of its slot: a
        write enable with few logic levels behind the ROM (slow on ECP5).
    """

    en: In(1)
    encoding: In(64)
    valid: Out(1)
    width: Out(FieldWidth)
    type: Out(FieldType)
    access: Out(AccessType)
    storage: Out(Storage)
    word: Out(WORD_BITS)
    slot: Out(SLOT_BITS)
    half: Out(1)
    pair: Out(1)
    on_die_half: Out(2)

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(
            shape=_RomEntry.as_shape().size, depth=1 << (4 + INDEX_BITS), init=_rom_init()
        )
        port = rom.read_port()

        enc = FieldEncoding(self.encoding[:32])
        well_formed = Signal()
        m.d.comb += [
            port.en.eq(self.en),
            port.addr.eq(Cat(enc.index[:INDEX_BITS], enc.type, enc.width)),
            well_formed.eq(
                (self.encoding[32:] == 0)
                & (enc.reserved_12 == 0)
                & (enc.reserved_31_15 == 0)
                & (enc.index[INDEX_BITS:] == 0)
            ),
        ]
        well_formed_q = Signal()
        with m.If(self.en):
            m.d.sync += [
                well_formed_q.eq(well_formed),
                self.width.eq(enc.width),
                self.type.eq(enc.type),
                self.access.eq(enc.access),
            ]
        entry = _RomEntry(port.data)
        high = self.access == AccessType.HIGH
        m.d.comb += [
            self.valid.eq(well_formed_q & Mux(high, entry.high, entry.full)),
            self.storage.eq(entry.storage),
            self.word.eq(entry.place | high),
            self.slot.eq(entry.place[1:]),
            self.half.eq(entry.place[0] | high),
            self.on_die_half[0].eq(well_formed_q & ~high & entry.on_die_lo),
            self.on_die_half[1].eq(well_formed_q & Mux(high, entry.on_die_high, entry.on_die_hi)),
            self.pair.eq(~high & ((self.width == FieldWidth.W64) | (self.width == FieldWidth.NATURAL))),
        ]
        return m
