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

SMM on the SoC with guests (docs/smm-soc.md): RAM's upper 64 KiB also appear at
0x30000 (``SMRAM_ALIAS``), so that the reset SMBASE (0x30000: the handler at
0x38000, the save map at 0x3FC00) has memory behind it until firmware relocates
SMBASE; ``smram_closed`` is the rule that keeps the core's accesses from
outside SMM out of SMRAM, and everyone but the STM out of MSEG.
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
    "SMRAM_ALIAS",
    "physical",
    "SMRAM_OFFSET",
    "SMRAM_SIZE",
    "MSEG_SIZE",
    "smram_closed",
    "SMI_PORT",
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

#: The reset SMBASE's SMRAM: an alias of RAM 0x10000-0x1FFFF (the address's bit 17 cleared), the way a
#: PC's chipset maps its SMRAM window, so that the first SMI (SMBASE 0x30000) has memory to save into.
SMRAM_ALIAS = Region("smram_alias", 0x0003_0000, 0x1_0000, "alias of RAM 0x10000-0x1FFFF: the reset SMBASE's SMRAM")
_ALIAS_BIT = 1 << 17

MEMORY_MAP = (RAM, FINISHER, TIMER, SMRAM_ALIAS)

#: SMRAM, for the core's accesses: the 32 KiB from SMBASE + 0x8000 (the handler's entry) to the top of the
#: state-save map (SMBASE + 0xFFFF). Outside SMM the core's loads (and fetches) there read all ones and its
#: stores are dropped; the VMX unit's own accesses (the save map, VMCS regions) are never filtered.
SMRAM_OFFSET = 0x8000
SMRAM_SIZE = 0x8000
#: MSEG, the STM's memory, for the core's accesses while the dual-monitor treatment is active: the 16 KiB
#: from the MSEG base (IA32_SMM_MONITOR_CTL bits 31:12). Only SMM code in VMX root operation (the STM)
#: reaches it; the legacy SMM handler (a guest in SMM), guests and the executive monitor read all ones.
MSEG_SIZE = 0x4000


def physical(addr: int) -> int:
    """The address RAM sees: ``SMRAM_ALIAS`` folds onto RAM 0x10000-0x1FFFF; every other address is itself."""
    return addr & ~_ALIAS_BIT if SMRAM_ALIAS.contains(addr) else addr


def smram_closed(addr: int, *, smm: bool, root: bool, smbase: int, mseg: int, dual_active: bool) -> bool:
    """Whether a core access to ``addr`` is kept out (reads all ones, writes nothing): SMRAM outside SMM,
    MSEG (with the dual-monitor treatment active) from anyone but SMM code in VMX root operation. The
    ranges are compared as RAM sees them (``physical``), so an alias does not open them."""
    phys = physical(addr)
    smram = physical(smbase + SMRAM_OFFSET)
    if not smm and smram <= phys < smram + SMRAM_SIZE:
        return True
    return dual_active and not (smm and root) and mseg <= phys < mseg + MSEG_SIZE


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


#: The APM SMI command port: with SMM (the SoC with guests), an OUT to it raises an SMI (docs/smm-soc.md).
SMI_PORT = next(p for p in IO_PORTS if p.name == "smi").base


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
