"""The SoC on two boards (``vmxu build --board NAME``): what each top level wires where, and the board's facts.

# Ref: amaranth-boards (icebreaker.py, ulx3s.py) for the pins; iCEBreaker and
# ULX3S schematics; docs/fpga.md says the same for users.

- iCEBreaker (iCE40 UP5K, 12 MHz): RAM is the 128 KiB of SPRAM
  (rtl/soc/spram.py), which the bitstream cannot initialise, so the flash
  loader (rtl/soc/flash_loader.py) copies the image from the board's SPI flash
  at FLASH_IMAGE_OFFSET before the core runs. led_g is the POST port's bit 0,
  led_r a failure: the finisher's non-zero code or a bad image in flash.
- ULX3S (ECP5 LFE5U-25F, 25 MHz): RAM is block RAM initialised with the image
  in the bitstream; the eight LEDs are the POST port.

Both use the board's FTDI UART at 57600 baud, 8N1. The VMX unit's VMCS cache
entries are chosen per device (:attr:`Board.cache_entries`), and so is whether
the SoC runs guests (:attr:`Board.guests`: the core's non-root operation and the
unit's VM entries and exits, docs/guests.md): the ULX3S does; the UP5K's 5,280
LUT4s cannot hold the unit with its transitions (10,049 LUT4 alone), so the
iCEBreaker's SoC leaves them out and VMLAUNCH/VMRESUME trap (cause 25).
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from amaranth import Elaboratable, Module, Signal, Value
from amaranth.build import Platform
from amaranth.lib import io
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_25F_Platform

from vmxu.rtl.arch.soc import FLASH_IMAGE_OFFSET
from vmxu.rtl.soc.flash_loader import WAKE_SECONDS, FlashLoader
from vmxu.rtl.soc.soc import Soc
from vmxu.rtl.soc.spram import Spram

__all__ = ["BAUD", "Board", "BOARDS", "IceBreakerTop", "Ulx3sTop", "uart_divisor"]

#: The serial line's speed on both boards (8N1).
BAUD = 57600


def uart_divisor(clock_hz: float, baud: float = BAUD) -> int:
    """The UART's divisor latch for ``baud`` at ``clock_hz`` (rtl/soc/uart.py: baud = clock / (16 * divisor))."""
    return max(1, round(clock_hz / (16 * baud)))


def _drive(m: Module, name: str, port, value, *, registered: bool = True) -> None:
    """An output pin (``port`` from ``platform.request(..., dir="-")``) showing ``value``.

    Registered in the I/O cell unless told otherwise: one cycle later, and glitch-free.
    """
    buffer = io.FFBuffer("o", port) if registered else io.Buffer("o", port)
    m.submodules[f"pin_{name}"] = buffer
    m.d.comb += buffer.o.eq(value)


def _sense(m: Module, name: str, port, *, registered: bool = True) -> Value:
    """An input pin's value, registered in the I/O cell unless told otherwise (one cycle later)."""
    buffer = io.FFBuffer("i", port) if registered else io.Buffer("i", port)
    m.submodules[f"pin_{name}"] = buffer
    return buffer.i


def _press(m: Module, name: str, port, clock_hz: float, *, settle_s: float = 0.02) -> Value:
    """A button's presses as one-cycle pulses: the pin registered twice (the I/O cell, then one more
    flip-flop against metastability), a rising edge, then ``settle_s`` of deafness to its bounces."""
    level = _sense(m, name, port)
    synced, last = Signal(name=f"{name}_synced"), Signal(name=f"{name}_last")
    settle = max(1, round(clock_hz * settle_s))
    quiet = Signal(range(settle + 1), name=f"{name}_quiet")
    pulse = Signal(name=f"{name}_pulse")
    m.d.sync += [synced.eq(level), last.eq(synced)]
    m.d.comb += pulse.eq(synced & ~last & (quiet == 0))
    with m.If(pulse):
        m.d.sync += quiet.eq(settle)
    with m.Elif(quiet != 0):
        m.d.sync += quiet.eq(quiet - 1)
    return pulse


def _words(image: bytes) -> list[int]:
    padded = image + bytes(-len(image) % 4)
    return [int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)]


class IceBreakerTop(Elaboratable):
    """The SoC on the iCEBreaker: SPRAM for RAM, filled from SPI flash by the flash loader.

    Pins (amaranth-boards resources): ``uart`` (FTDI channel B), ``spi_flash_1x``
    (the configuration flash, free once the FPGA is configured), ``led_g``,
    ``led_r``, the 12 MHz ``clk12``. The UART and LED pins are registered in
    their I/O cells; the flash pins are not (see below). Power-on reset only.
    """

    def __init__(self, *, cache_entries: int):
        self.cache_entries = cache_entries

    def elaborate(self, platform):
        m = Module()
        clock_hz = platform.default_clk_frequency
        m.submodules.soc = soc = Soc(
            ram_size=Spram.size, ram=Spram(), uart_divisor=uart_divisor(clock_hz), cache_entries=self.cache_entries
        )
        m.submodules.loader = loader = FlashLoader(
            offset=FLASH_IMAGE_OFFSET, ram_size=Spram.size, wake_cycles=math.ceil(WAKE_SECONDS * clock_hz)
        )
        # The loader's outputs are registers already, and it samples CIPO in step with its own SCK
        # (rtl/soc/flash_loader.py): the flash pins are not registered again in the I/O cells.
        flash = platform.request("spi_flash_1x", 0, dir="-")
        _drive(m, "flash_cs", flash.cs, loader.spi.cs, registered=False)  # the resource inverts: cs high is /CS low
        _drive(m, "flash_clk", flash.clk, loader.spi.sck, registered=False)
        _drive(m, "flash_copi", flash.copi, loader.spi.copi, registered=False)
        # /WP and /HOLD high: the resource inverts them too.
        _drive(m, "flash_wp", flash.wp, 0, registered=False)
        _drive(m, "flash_hold", flash.hold, 0, registered=False)
        m.d.comb += [
            loader.spi.cipo.eq(_sense(m, "flash_cipo", flash.cipo, registered=False)),
            soc.hold.eq(loader.hold),
            soc.load_en.eq(loader.load_en),
            soc.load_addr.eq(loader.load_addr),
            soc.load_data.eq(loader.load_data),
        ]
        uart = platform.request("uart", 0, dir="-")
        _drive(m, "uart_tx", uart.tx, soc.uart_tx)
        m.d.comb += soc.uart_rx.eq(_sense(m, "uart_rx", uart.rx))
        _drive(m, "led_g", platform.request("led_g", 0, dir="-"), soc.leds[0])
        failed = loader.error | soc.failed
        _drive(m, "led_r", platform.request("led_r", 0, dir="-"), failed)
        return m


class Ulx3sTop(Elaboratable):
    """The SoC on the ULX3S: block RAM holding the image from the bitstream on.

    Pins: ``uart`` (the FT231X), ``led`` 0-7, ``button_fire`` 0 (FIRE 1: an SMI, with guests), the
    25 MHz ``clk25``, each registered in its I/O cell. The board's
    ``uart_tx_enable`` (L3) is the FT231X's TXDEN output, an RS-485 driver
    enable: the FTDI drives it, so the FPGA leaves it alone. Power-on reset only.
    """

    def __init__(self, image: bytes, *, ram_size: int, cache_entries: int, guests: bool):
        self.image = image
        self.ram_size = ram_size
        self.cache_entries = cache_entries
        self.guests = guests

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = Soc(
            ram_size=self.ram_size,
            image=_words(self.image),
            uart_divisor=uart_divisor(platform.default_clk_frequency),
            cache_entries=self.cache_entries,
            guests=self.guests,
        )
        uart = platform.request("uart", 0, dir="-")
        _drive(m, "uart_tx", uart.tx, soc.uart_tx)
        m.d.comb += soc.uart_rx.eq(_sense(m, "uart_rx", uart.rx))
        for bit in range(8):
            _drive(m, f"led_{bit}", platform.request("led", bit, dir="-"), soc.leds[bit])
        if self.guests:  # SMM (docs/smm-soc.md): the FIRE 1 button raises an SMI
            fire = platform.request("button_fire", 0, dir="-")
            m.d.comb += soc.smi_button.eq(_press(m, "button_fire", fire, platform.default_clk_frequency))
        return m


@dataclass(frozen=True)
class Board(ABC):
    name: str
    title: str
    #: The key of fpga.synth.TARGETS for this device: its LUT4 and block-RAM totals and the issue's Fmax target.
    target: str
    ram_size: int
    ram: str
    cache_entries: int
    #: Why that many cache entries.
    cache_reason: str
    #: Whether the SoC runs guests (docs/guests.md), and why (not).
    guests: bool
    guests_reason: str
    #: The SoC's Fmax target on this board (issue 10), which the build report says met or not.
    fmax_target_mhz: float
    sprams: int
    bitstream: str
    leds: str

    @abstractmethod
    def platform(self) -> Platform: ...

    @abstractmethod
    def top(self, image: bytes) -> Elaboratable: ...

    def extra_files(self, image: bytes) -> dict[str, bytes]:
        """Files besides the bitstream that programming the board needs, by name."""
        return {}

    @abstractmethod
    def program(self, bitstream: Path, files: dict[str, Path]) -> list[str]:
        """The commands that put the build on the board."""


@dataclass(frozen=True)
class IceBreaker(Board):
    def platform(self) -> Platform:
        return ICEBreakerPlatform()

    def top(self, image: bytes) -> Elaboratable:
        return IceBreakerTop(cache_entries=self.cache_entries)

    def extra_files(self, image: bytes) -> dict[str, bytes]:
        from vmxu.rtl.soc.flash_loader import flash_image

        return {"image.bin": flash_image(image)}

    def program(self, bitstream: Path, files: dict[str, Path]) -> list[str]:
        offset = f"{FLASH_IMAGE_OFFSET >> 20}M" if FLASH_IMAGE_OFFSET % (1 << 20) == 0 else hex(FLASH_IMAGE_OFFSET)
        return [f"iceprog {bitstream}", f"iceprog -o {offset} {files['image.bin']}"]


@dataclass(frozen=True)
class Ulx3s(Board):
    def platform(self) -> Platform:
        return ULX3S_25F_Platform()

    def top(self, image: bytes) -> Elaboratable:
        return Ulx3sTop(image, ram_size=self.ram_size, cache_entries=self.cache_entries, guests=self.guests)

    def program(self, bitstream: Path, files: dict[str, Path]) -> list[str]:
        return [
            f"openFPGALoader --board ulx3s {bitstream}  # into the FPGA, until power-off (fujprog: the same)",
            f"openFPGALoader --board ulx3s -f {bitstream}  # into the configuration flash (fujprog -j flash)",
        ]


BOARDS: dict[str, Board] = {
    "icebreaker": IceBreaker(
        name="icebreaker",
        title="iCEBreaker (iCE40 UP5K-SG48)",
        target="ice40-up5k",
        ram_size=Spram.size,
        ram="128 KiB SPRAM, loaded from SPI flash at boot",
        cache_entries=2,
        cache_reason="the fewest the cache allows: the 5280 LUT4s, not the block RAM, are what is short",
        guests=False,
        fmax_target_mhz=24.0,
        guests_reason="left out: the unit with VM entries and exits is 10,049 LUT4 alone, more than the UP5K's 5,280; "
        "VMLAUNCH and VMRESUME trap with cause 25 after their checks",
        sprams=4,
        bitstream="top.bin",
        leds="led_g: POST port bit 0; led_r: the finisher's non-zero code, or no valid image in flash",
    ),
    "ulx3s": Ulx3s(
        name="ulx3s",
        title="ULX3S (ECP5 LFE5U-25F-6BG381)",
        target="ecp5-25f",
        # 56 DP16KD of 2 KiB of data each: the VMCS cache takes 5 (the core's registers are LUT RAM),
        # leaving 51 (102 KiB); RAM is a power of two, so 32 of them.
        ram_size=64 * 1024,
        ram="64 KiB block RAM, initialised in the bitstream",
        cache_entries=4,
        cache_reason="the design's default; they take 5 of the 56 block RAMs",
        guests=True,
        fmax_target_mhz=75.0,
        guests_reason="the core's non-root operation and the unit's VM entries and exits, docs/guests.md",
        sprams=0,
        bitstream="top.bit",
        leds="led 0-7: the POST port's 8 bits",
    ),
}
