"""The iCE40 boot path: copy the firmware image from the board's SPI flash into RAM, then let the core run.

# Ref: Winbond W25Q128JV data sheet (the iCEBreaker's flash; every 25-series
# SPI NOR flash has the same two commands): 8.2.12 Release Power-down / Device
# ID (0xAB, three dummy bytes; tRES1 = 3 us before the next command), 8.2.6
# Read Data (0x03, 24-bit address, then data for as long as /CS stays low);
# SPI mode 0 (SCK idles low, both sides sample on its rising edge, data changes
# after its falling edge); bytes go most significant bit first.

The image sits in flash at ``offset`` (rtl/arch/soc.py FLASH_IMAGE_OFFSET),
after an 8-byte header that ``vmxu build`` writes (:func:`flash_image`):

    offset + 0   magic, "VMXU" (MAGIC as a little-endian word)
    offset + 4   the image's length in bytes (little-endian)
    offset + 8   the image: RAM's bytes from address 0, then padding to a word

The loader needs no processor: after reset it holds the core (``hold``),
wakes the flash, reads the header and then the image with one READ command,
and writes each word through the SoC's RAM load port (little-endian, as the
core stores words). A wrong magic, or a length larger than RAM, leaves the core
held and raises ``error``.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FlashLoader", "SpiFlashSignature", "MAGIC", "HEADER_BYTES", "READ", "RELEASE_POWER_DOWN", "flash_image"]

#: The header's first word: the bytes "VMXU".
MAGIC = int.from_bytes(b"VMXU", "little")
HEADER_BYTES = 8
#: SPI flash commands.
READ = 0x03
RELEASE_POWER_DOWN = 0xAB
#: tRES1: the flash accepts commands this long after Release Power-down.
WAKE_SECONDS = 3e-6


def flash_image(image: bytes) -> bytes:
    """What ``vmxu build`` writes to flash at FLASH_IMAGE_OFFSET: the header, then ``image`` padded to words."""
    padded = image + bytes(-len(image) % 4)
    return MAGIC.to_bytes(4, "little") + len(image).to_bytes(4, "little") + padded


class SpiFlashSignature(wiring.Signature):
    """A single-bit SPI bus, seen from the controller.

    Members
    -------
    cs : Out(1)
        Chip select, active high (the board's resource inverts it to /CS).
    sck, copi : Out(1)
    cipo : In(1)
    """

    def __init__(self):
        super().__init__({"cs": Out(1), "sck": Out(1), "copi": Out(1), "cipo": In(1)})


class FlashLoader(wiring.Component):
    """Copies the image at ``offset`` in SPI flash into RAM through the load port; holds the core until it is done.

    SCK runs at half the clock (it toggles every cycle), so one 32-bit word
    takes 64 cycles; the whole load takes :meth:`load_cycles` cycles from reset
    to the fall of ``hold``. CIPO is sampled by the clock edge that ends SCK's
    high half (the flash changes it only after SCK falls), and every output is
    a register.

    Parameters
    ----------
    offset : int
        Byte address of the header in flash (24 bits).
    ram_size : int
        Bytes of RAM, a power of two: a longer image is an error.
    wake_cycles : int
        Clock cycles /CS stays high after Release Power-down (tRES1 at the
        clock frequency).

    Members
    -------
    spi : Out(SpiFlashSignature())
    hold : Out(1)
        High from reset until the last word is written: the SoC's ``hold``.
    load_en, load_addr, load_data : Out
        One word write to RAM: the SoC's load port.
    error : Out(1)
        The header was wrong (magic, or a length larger than RAM); ``hold``
        stays high.
    """

    def __init__(self, *, offset: int, ram_size: int, wake_cycles: int = 36):
        if not 0 <= offset < 1 << 24:
            raise ValueError(f"Flash offset must fit 24 bits, not {offset!r}")
        if ram_size < 4 or ram_size & (ram_size - 1):
            raise ValueError(f"RAM size must be a power of two number of words, not {ram_size!r}")
        self.offset = offset
        self.ram_size = ram_size
        self.wake_cycles = wake_cycles
        super().__init__(
            {
                "spi": Out(SpiFlashSignature()),
                "hold": Out(1, init=1),
                "load_en": Out(1),
                "load_addr": Out(range(ram_size // 4)),
                "load_data": Out(32),
                "error": Out(1),
            }
        )

    def load_cycles(self, image_bytes: int) -> int:
        """Clock cycles from reset to the fall of ``hold`` for an image of ``image_bytes``."""
        words = -(-image_bytes // 4)
        # Release Power-down (one word), tRES1, READ and its address (one word), magic, length, the
        # image, then the cycle that writes the last word.
        return 64 + (self.wake_cycles + 1) + 64 * (1 + 2 + words) + 1

    def elaborate(self, platform):
        m = Module()
        spi = self.spi
        # Out on copi from bit 31, in from cipo at bit 0: a command word goes out while a data word comes in.
        shift = Signal(32, init=RELEASE_POWER_DOWN << 24)
        bits = Signal(5)
        sck = Signal()
        cs = Signal(init=1)
        shifted = Cat(spi.cipo, shift[:31])
        # Bytes arrive first byte first and each most significant bit first; RAM words are little-endian.
        word = Cat(shifted[24:32], shifted[16:24], shifted[8:16], shifted[:8])
        word_done = Signal()
        m.d.comb += [spi.sck.eq(sck), spi.cs.eq(cs), spi.copi.eq(shift[31])]

        # The word just completed stays in ``shift`` for the next cycle (SCK's rising half), which
        # is when load_en writes it.
        m.d.comb += self.load_data.eq(Cat(shift[24:32], shift[16:24], shift[8:16], shift[:8]))
        m.d.sync += self.load_en.eq(0)
        with m.If(self.load_en):
            m.d.sync += self.load_addr.eq(self.load_addr + 1)

        def clock_word():
            with m.If(~sck):
                m.d.sync += sck.eq(1)
            with m.Else():
                m.d.sync += [sck.eq(0), shift.eq(shifted), bits.eq(bits + 1)]
                m.d.comb += word_done.eq(bits == 31)

        # The length word, checked without magnitude comparators (RAM is 2**k bytes): longer than
        # RAM when a bit above k is set, or bit k with any below it; empty when no bit is set.
        k = self.ram_size.bit_length() - 1
        above, at, below = word[k + 1 :].any(), word[k], word[:k].any()
        too_long = above | (at & below)
        empty = ~(above | at | below)
        # The image's last word is RAM word (length - 1) // 4: the load ends when load_addr reaches it.
        last_word = Signal.like(self.load_addr)
        wait = Signal(range(self.wake_cycles + 1))

        with m.FSM(init="WAKE_FLASH"):
            with m.State("WAKE_FLASH"):
                clock_word()
                with m.If(word_done):
                    m.d.sync += [cs.eq(0), wait.eq(self.wake_cycles)]
                    m.next = "WAIT_FOR_FLASH"
            with m.State("WAIT_FOR_FLASH"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.sync += [cs.eq(1), shift.eq((READ << 24) | self.offset)]
                    m.next = "SEND_READ"
            with m.State("SEND_READ"):
                clock_word()
                with m.If(word_done):
                    m.next = "READ_MAGIC"
            with m.State("READ_MAGIC"):
                clock_word()
                with m.If(word_done):
                    with m.If(word == MAGIC):
                        m.next = "READ_LENGTH"
                    with m.Else():
                        m.d.sync += cs.eq(0)
                        m.next = "BAD_IMAGE"
            with m.State("READ_LENGTH"):
                clock_word()
                with m.If(word_done):
                    with m.If(too_long):
                        m.d.sync += cs.eq(0)
                        m.next = "BAD_IMAGE"
                    with m.Elif(empty):
                        m.d.sync += cs.eq(0)
                        m.next = "RELEASE_CORE"
                    with m.Else():
                        m.d.sync += last_word.eq((word[: k + 1] - 1)[2:])
                        m.next = "READ_IMAGE"
            with m.State("READ_IMAGE"):
                clock_word()
                with m.If(word_done):
                    m.d.sync += self.load_en.eq(1)
                    with m.If(self.load_addr == last_word):
                        m.d.sync += cs.eq(0)
                        m.next = "RELEASE_CORE"
            with m.State("RELEASE_CORE"):
                # One cycle after the last word's write, so the core's first fetch finds RAM free.
                m.d.sync += self.hold.eq(0)
            with m.State("BAD_IMAGE"):
                m.d.sync += self.error.eq(1)
        return m
