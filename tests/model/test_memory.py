"""PhysicalMemory: the replay platform's RAM and bus (docs/semantics.md "Physical memory and the bus")."""

from __future__ import annotations

import pytest

from vmxu.sim.model import RAM_BYTES, PhysicalMemory


def test_ram_is_one_mebibyte():
    """REPLAY.md: RAM at physical addresses 0 up to at least 1 MiB."""
    memory = PhysicalMemory()
    assert RAM_BYTES == 1 << 20
    assert memory.contains(RAM_BYTES - 8, 8)
    assert not memory.contains(RAM_BYTES - 4, 8)
    assert not memory.contains(-1, 1)


def test_never_written_ram_reads_zero():
    """docs/semantics.md: reads of never-written RAM return 0."""
    memory = PhysicalMemory()
    assert memory.read(0x1234, 8) == 0
    assert memory.read_word(0x100) == 0


@pytest.mark.parametrize("nbytes", [1, 2, 4, 8])
@pytest.mark.parametrize("addr", [0x1000, 0x1001, 0x1002, 0x1003, 0x1005])
def test_access_is_little_endian_at_any_alignment(addr, nbytes):
    """Physical memory is byte-addressed and little-endian (SDM vol. 1, 1.3.1)."""
    memory = PhysicalMemory()
    value = 0x0807_0605_0403_0201 & ((1 << (8 * nbytes)) - 1)
    memory.write(addr, nbytes, value)
    assert memory.read(addr, nbytes) == value
    for i in range(nbytes):
        assert memory.read(addr + i, 1) == i + 1


def test_write_word_is_what_byte_reads_see():
    """The 32-bit bus word at word address A holds bytes 4A..4A+3, least significant first."""
    memory = PhysicalMemory()
    memory.write_word(0x400, 0xDDCC_BBAA)
    assert memory.read(0x1000, 4) == 0xDDCC_BBAA
    assert memory.read(0x1001, 2) == 0xCCBB
    memory.write(0x1006, 2, 0x1122)
    assert memory.read_word(0x401) == 0x1122_0000


def test_write_word_honours_byte_selects():
    """Wishbone SEL_O: only the selected byte lanes are written."""
    memory = PhysicalMemory()
    memory.write_word(0x10, 0x4433_2211)
    memory.write_word(0x10, 0xFFFF_FFFF, sel=0b0101)
    assert memory.read_word(0x10) == 0x44FF_22FF


def test_outside_ram_reads_all_ones():
    """docs/semantics.md choice 4: a bus error reads as all ones (master abort)."""
    memory = PhysicalMemory()
    assert memory.read(RAM_BYTES, 4) == 0xFFFF_FFFF
    assert memory.read_word(RAM_BYTES // 4) == 0xFFFF_FFFF
    assert memory.read(0xFFFF_FFF0, 8) == (1 << 64) - 1


def test_access_straddling_the_end_of_ram_mixes_ram_and_all_ones():
    """Each byte outside RAM is a bus error of its own (reads 0xFF, writes dropped)."""
    memory = PhysicalMemory()
    memory.write(RAM_BYTES - 2, 4, 0xAABB_CCDD)
    assert memory.read(RAM_BYTES - 2, 2) == 0xCCDD
    assert memory.read(RAM_BYTES - 2, 4) == 0xFFFF_CCDD


def test_writes_outside_ram_are_dropped():
    """docs/semantics.md: an access outside RAM drops writes."""
    memory = PhysicalMemory()
    memory.write(RAM_BYTES, 8, 0x1234)
    memory.write_word(RAM_BYTES // 4 + 1, 0x5678)
    assert memory.words() == {}


def test_words_lists_only_non_zero_words():
    """The scoreboard compares RTL and model memory as {word address: value} of non-zero words."""
    memory = PhysicalMemory()
    memory.write(0x2000, 4, 1)
    memory.write(0x2008, 8, 0x0000_0003_0000_0000)
    memory.write(0x3000, 4, 5)
    memory.write(0x3000, 4, 0)
    assert memory.words() == {0x800: 1, 0x803: 3}


def test_value_wider_than_the_access_is_refused():
    """A write of more bits than the access carries is a caller error."""
    memory = PhysicalMemory()
    with pytest.raises(ValueError, match="does not fit"):
        memory.write(0, 2, 0x1_0000)
    with pytest.raises(ValueError, match="1, 2, 4 or 8"):
        memory.read(0, 3)
