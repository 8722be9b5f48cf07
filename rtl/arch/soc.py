"""The SoC's memory map and I/O ports (one table; docs/soc.md explains it).

# Ref: QEMU hw/riscv/virt.c and hw/misc/sifive_test.c (test finisher at
# 0x100000: 0x5555 pass, (code << 16) | 0x3333 fail); SiFive CLINT (mtimecmp at
# +0x4000, mtime at +0xBFF8); the PC's I/O ports: COM1 16550 UART at 0x3F8,
# POST code port 0x80, APM SMI command port 0xB2.

Memory space (byte addresses, 32-bit): code starts at 0 after reset (on the
iCE40 a hardware loader, rtl/soc/flash_loader.py, first copies the image from
SPI flash at FLASH_IMAGE_OFFSET into SPRAM at 0 while it holds the core; the
flash is not in the memory map).
Port I/O space (16-bit ports, reached with IN/OUT): the UART, the LEDs, the SMI
command port.
"""

from dataclasses import dataclass

__all__ = [
    "Region",
    "MEMORY_MAP",
    "RAM",
    "FINISHER",
    "TIMER",
    "FLASH_IMAGE_OFFSET",
    "IO_PORTS",
    "FINISHER_PASS",
    "finisher_fail",
]


@dataclass(frozen=True)
class Region:
    name: str
    base: int
    size: int
    summary: str

    @property
    def end(self) -> int:
        return self.base + self.size

    def contains(self, addr: int, nbytes: int = 1) -> bool:
        return self.base <= addr and addr + nbytes <= self.end


RAM = Region("ram", 0x0000_0000, 128 * 1024, "code and data; the image is linked at 0")
FINISHER = Region("finisher", 0x0010_0000, 0x1000, "test finisher (QEMU sifive_test)")
TIMER = Region("timer", 0x0200_0000, 0x1_0000, "CLINT-style machine timer: mtimecmp +0x4000, mtime +0xBFF8")

MEMORY_MAP = (RAM, FINISHER, TIMER)

#: Where the firmware image (after rtl/soc/flash_loader.py's header) sits in the iCEBreaker's SPI flash:
#: past the bitstream, which takes the flash's first ~102 KiB (an UP5K bitstream is 104,090 bytes).
FLASH_IMAGE_OFFSET = 0x10_0000

FINISHER_PASS = 0x5555
TIMER_MTIMECMP = TIMER.base + 0x4000
TIMER_MTIME = TIMER.base + 0xBFF8


def finisher_fail(code: int) -> int:
    """The word that ends a run with failure ``code`` (1..0xFFFF)."""
    if not 0 < code <= 0xFFFF:
        raise ValueError(f"finisher codes are 1..65535, not {code}")
    return (code << 16) | 0x3333


@dataclass(frozen=True)
class IoPort:
    name: str
    base: int
    count: int
    summary: str


IO_PORTS = (
    IoPort("uart", 0x3F8, 8, "16550-style UART (COM1): THR/RBR 0, IER 1, IIR/FCR 2, LCR 3, MCR 4, LSR 5, MSR 6, SCR 7"),
    IoPort("post", 0x80, 1, "POST code port: the LEDs show the last byte written"),
    IoPort("smi", 0xB2, 1, "APM SMI command port: a write raises an SMI (SMM capability)"),
)


def _check() -> None:
    regions = sorted(MEMORY_MAP, key=lambda r: r.base)
    for a, b in zip(regions, regions[1:], strict=False):
        if a.end > b.base:
            raise ValueError(f"memory regions {a.name} and {b.name} overlap")
    ports = sorted(IO_PORTS, key=lambda p: p.base)
    for a, b in zip(ports, ports[1:], strict=False):
        if a.base + a.count > b.base:
            raise ValueError(f"I/O ports {a.name} and {b.name} overlap")


_check()
