"""The iCE40 boot path in Amaranth's simulator: the flash loader against a model of an SPI flash, and the SPRAM RAM.

# Ref: rtl/soc/flash_loader.py (header format, SPI mode 0, READ 0x03),
# rtl/soc/spram.py (SB_SPRAM256KA: nibble write masks, one-cycle reads).

The SPRAM tests run on rtl/soc/spram.py's own model of SB_SPRAM256KA (chosen
when there is no platform): Amaranth's simulator has no model of the
primitive.
"""

import random

import pytest
from amaranth import Module
from amaranth.sim import Simulator

from vmxu.rtl.arch.soc import FLASH_IMAGE_OFFSET
from vmxu.rtl.soc.flash_loader import MAGIC, READ, RELEASE_POWER_DOWN, FlashLoader, flash_image
from vmxu.rtl.soc.spram import Spram

SEED = 20261125
RAM_SIZE = 4096  # the loader's RAM bound in these tests: small images keep the simulation short


class SpiFlash:
    """A 25-series SPI NOR flash in mode 0, as seen on its pins: READ (0x03) and Release Power-down (0xAB).

    On each rising SCK edge while /CS is low it takes one bit of COPI; after
    the eight bits of READ and the 24 of its address, it puts the next data bit
    on CIPO after each falling SCK edge, most significant bit first, for as long
    as /CS stays low. Raising /CS ends the command. ``transactions`` records each
    one: (command, bits clocked in while selected).
    """

    def __init__(self, contents: dict[int, bytes], size: int = 2 << 20):
        self.memory = bytearray(b"\xff" * size)
        for address, data in contents.items():
            self.memory[address : address + len(data)] = data
        self.transactions: list[tuple[int, int]] = []
        self.read_addresses: list[int] = []

    def process(self, spi):
        async def flash(ctx):
            selected = False
            previous_sck = 0
            bits_in = value_in = bits_out = 0
            address = None
            async for sck, cs, copi in ctx.changed(spi.sck, spi.cs).sample(spi.copi):
                if not cs:
                    if selected:
                        self.transactions.append((value_in >> (min(bits_in, 32) - 8) & 0xFF, bits_in))
                    selected, address = False, None
                    ctx.set(spi.cipo, 1)  # released: pulled up
                elif not selected:
                    selected, bits_in, value_in, bits_out = True, 0, 0, 0
                    assert not sck, "SPI mode 0: SCK is low when /CS falls"
                if selected and sck and not previous_sck:
                    bits_in += 1
                    if bits_in <= 32:
                        value_in = (value_in << 1) | copi
                    if bits_in == 32 and value_in >> 24 == READ:
                        address = value_in & 0xFF_FFFF
                        self.read_addresses.append(address)
                if selected and previous_sck and not sck and address is not None:
                    byte = self.memory[(address + bits_out // 8) % len(self.memory)]
                    ctx.set(spi.cipo, byte >> (7 - bits_out % 8) & 1)
                    bits_out += 1
                previous_sck = sck

        return flash


def new_loader(ram_size: int = RAM_SIZE) -> FlashLoader:
    return FlashLoader(offset=FLASH_IMAGE_OFFSET, ram_size=ram_size, wake_cycles=5)


def run_loader(flash: SpiFlash, *, max_cycles: int | None = None, image_bytes: int = 0):
    """Simulate a FlashLoader on ``flash``; return its RAM word writes, what it did, and the loader.

    The run lasts ``max_cycles``, or 20 cycles past the load of ``image_bytes``.
    """
    loader = new_loader()
    if max_cycles is None:
        max_cycles = loader.load_cycles(image_bytes) + 20
    writes: dict[int, int] = {}
    result = {"released": None, "error": 0, "hold_while_writing": True}

    async def testbench(ctx):
        for cycle in range(max_cycles):
            if ctx.get(loader.load_en):
                writes[ctx.get(loader.load_addr)] = ctx.get(loader.load_data)
                result["hold_while_writing"] &= bool(ctx.get(loader.hold))
            if not ctx.get(loader.hold) and result["released"] is None:
                result["released"] = cycle
            result["error"] = ctx.get(loader.error)
            await ctx.tick()

    sim = Simulator(loader)
    sim.add_clock(1e-6)
    sim.add_process(flash.process(loader.spi))
    sim.add_testbench(testbench)
    sim.run()
    return writes, result, loader


def words_of(image: bytes) -> dict[int, int]:
    padded = image + bytes(-len(image) % 4)
    return {i // 4: int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)}


@pytest.mark.parametrize("length", [1, 4, 37, 256])
def test_loader_copies_the_image_into_ram_word_by_word(length):
    image = random.Random(SEED + length).randbytes(length)
    flash = SpiFlash({FLASH_IMAGE_OFFSET: flash_image(image)})
    writes, result, _ = run_loader(flash, image_bytes=length)
    assert writes == words_of(image)
    assert result["error"] == 0


def test_loader_wakes_the_flash_then_reads_at_the_image_offset():
    flash = SpiFlash({FLASH_IMAGE_OFFSET: flash_image(b"\x13\x00\x00\x00")})
    run_loader(flash, max_cycles=600)
    assert flash.transactions[0] == (RELEASE_POWER_DOWN, 32), "Release Power-down and its three dummy bytes"
    assert flash.read_addresses == [FLASH_IMAGE_OFFSET]
    command, bits = flash.transactions[1]
    assert command == READ and bits == 32 + 8 * 8 + 32, "command, address, header, one word: then /CS rises"


def test_loader_holds_the_core_until_the_last_word_is_written():
    image = bytes(range(64))
    flash = SpiFlash({FLASH_IMAGE_OFFSET: flash_image(image)})
    writes, result, loader = run_loader(flash, image_bytes=len(image))
    assert len(writes) == 16
    assert result["hold_while_writing"], "every write happens while the core is held"
    assert result["released"] == loader.load_cycles(len(image)), "load_cycles() is the latency the docstring gives"


def test_loader_rejects_a_bad_magic_and_keeps_the_core_held():
    header = flash_image(b"\x13\x00\x00\x00")
    bad = (MAGIC ^ 1).to_bytes(4, "little") + header[4:]
    flash = SpiFlash({FLASH_IMAGE_OFFSET: bad})
    writes, result, _ = run_loader(flash, max_cycles=1000)
    assert writes == {}
    assert result["released"] is None
    assert result["error"] == 1
    assert flash.transactions[-1][1] == 32 + 32, "/CS rises right after the magic word"


@pytest.mark.parametrize("length", [RAM_SIZE + 1, RAM_SIZE + 4, 2 * RAM_SIZE, 1 << 20, 0xFFFF_FFFF])
def test_loader_rejects_an_image_longer_than_ram(length):
    header = MAGIC.to_bytes(4, "little") + length.to_bytes(4, "little")
    flash = SpiFlash({FLASH_IMAGE_OFFSET: header})
    writes, result, _ = run_loader(flash, max_cycles=1000)
    assert writes == {} and result["released"] is None and result["error"] == 1


@pytest.mark.parametrize("length", [RAM_SIZE - 3, RAM_SIZE])
def test_loader_accepts_an_image_that_fills_ram(length):
    image = random.Random(SEED + length).randbytes(length)
    flash = SpiFlash({FLASH_IMAGE_OFFSET: flash_image(image)})
    writes, result, loader = run_loader(flash, image_bytes=length)
    assert writes == words_of(image) and result["error"] == 0
    assert result["released"] == loader.load_cycles(length)


def test_erased_flash_is_a_bad_magic():
    writes, result, _ = run_loader(SpiFlash({}), max_cycles=1000)
    assert writes == {} and result["error"] == 1


def test_an_empty_image_releases_the_core_at_once():
    flash = SpiFlash({FLASH_IMAGE_OFFSET: flash_image(b"")})
    writes, result, loader = run_loader(flash, max_cycles=1000)
    assert writes == {} and result["error"] == 0
    assert result["released"] == loader.load_cycles(0)


# -- SPRAM ---------------------------------------------------------------------------


async def bus_write(ctx, bus, word_address: int, data: int, sel: int = 0b1111):
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    ctx.set(bus.we, 1)
    ctx.set(bus.adr, word_address)
    ctx.set(bus.dat_w, data)
    ctx.set(bus.sel, sel)
    await ctx.tick().until(bus.ack)
    ctx.set(bus.cyc, 0)
    ctx.set(bus.stb, 0)
    ctx.set(bus.we, 0)


async def bus_read(ctx, bus, word_address: int) -> int:
    ctx.set(bus.cyc, 1)
    ctx.set(bus.stb, 1)
    ctx.set(bus.adr, word_address)
    await ctx.tick()
    assert ctx.get(bus.ack), "one cycle of latency"
    value = ctx.get(bus.dat_r)
    await ctx.tick()
    ctx.set(bus.cyc, 0)
    ctx.set(bus.stb, 0)
    return value


def run_spram(testbench) -> None:
    ram = Spram()
    sim = Simulator(ram)
    sim.add_clock(1e-6)

    async def bench(ctx):
        await testbench(ctx, ram)

    sim.add_testbench(bench)
    sim.run()


def test_spram_is_128_kib_of_words_in_both_banks():
    addresses = [0, 1, 0x3FFF, 0x4000, 0x4001, 0x7FFF]

    async def testbench(ctx, ram):
        for address in addresses:
            await bus_write(ctx, ram.bus, address, 0x0101_0101 * (address & 0xFF) ^ 0xA5C3_0000)
        for address in addresses:
            assert await bus_read(ctx, ram.bus, address) == 0x0101_0101 * (address & 0xFF) ^ 0xA5C3_0000

    assert Spram.size == 128 * 1024
    run_spram(testbench)


def test_spram_byte_writes_touch_only_their_bytes():
    async def testbench(ctx, ram):
        for bank_address in (0x10, 0x4010):
            await bus_write(ctx, ram.bus, bank_address, 0x1122_3344)
            expected = 0x1122_3344
            for lane in range(4):
                await bus_write(ctx, ram.bus, bank_address, 0xEE << (8 * lane), sel=1 << lane)
                expected = expected & ~(0xFF << (8 * lane)) | 0xEE << (8 * lane)
                assert await bus_read(ctx, ram.bus, bank_address) == expected, f"after the write to byte {lane}"
            await bus_write(ctx, ram.bus, bank_address, 0x5566_7788, sel=0b0110)
            assert await bus_read(ctx, ram.bus, bank_address) == 0xEE66_77EE

    run_spram(testbench)


def test_spram_load_port_writes_whole_words():
    async def testbench(ctx, ram):
        ctx.set(ram.load_en, 1)
        for address, value in ((3, 0xDEAD_BEEF), (0x4003, 0x0BAD_F00D)):
            ctx.set(ram.load_addr, address)
            ctx.set(ram.load_data, value)
            await ctx.tick()
        ctx.set(ram.load_en, 0)
        assert await bus_read(ctx, ram.bus, 3) == 0xDEAD_BEEF
        assert await bus_read(ctx, ram.bus, 0x4003) == 0x0BAD_F00D

    run_spram(testbench)


def test_loader_fills_spram_that_the_bus_then_reads():
    image = random.Random(SEED).randbytes(96)
    flash = SpiFlash({FLASH_IMAGE_OFFSET: flash_image(image)})
    m = Module()
    m.submodules.loader = loader = new_loader(ram_size=Spram.size)
    m.submodules.ram = ram = Spram()
    m.d.comb += [ram.load_en.eq(loader.load_en), ram.load_addr.eq(loader.load_addr), ram.load_data.eq(loader.load_data)]

    async def testbench(ctx):
        await ctx.tick().until(~loader.hold)
        for address, word in words_of(image).items():
            assert await bus_read(ctx, ram.bus, address) == word

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_process(flash.process(loader.spi))
    sim.add_testbench(testbench)
    sim.run()
