"""The SoC's devices as the ISS models them: timer, test finisher, and the port I/O space.

# Ref: rtl/arch/soc.py (addresses and ports); SiFive CLINT (mtimecmp at +0x4000,
# mtime at +0xBFF8, MTIP = mtime >= mtimecmp); QEMU hw/misc/sifive_test.c (the
# finisher); National Semiconductor PC16550D datasheet (UART registers);
# docs/firmware.md "The ISS's devices" (what the ISS implements of each).

Memory-mapped: ``Timer`` (the CLINT-style machine timer) and ``Finisher``.
Port-mapped (IN/OUT): ``Uart16550`` at 0x3F8, ``PostPort`` at 0x80 (the LEDs),
``SmiPort`` at 0xB2, all reached through ``PortBus``, which splits an access of
n bytes at port p into byte accesses of ports p .. p+n-1, as a PC's bus does
for 8-bit devices; a port no device answers reads 0xFF and ignores writes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from vmxu.rtl.arch.soc import FINISHER_PASS, IO_PORTS, TIMER, TIMER_MTIME, TIMER_MTIMECMP

__all__ = ["Timer", "Finisher", "FinisherResult", "FinisherStop", "Uart16550", "PostPort", "SmiPort", "PortBus"]

_U64 = (1 << 64) - 1
_PORT_BY_NAME = {p.name: p for p in IO_PORTS}


class Timer:
    """CLINT-style machine timer: 64-bit ``mtime`` and ``mtimecmp``, 32-bit registers in the TIMER region.

    ``mtimecmp`` resets to all ones (no interrupt until software programs it);
    ``mtime`` to 0. Other offsets of the region read 0 and ignore writes.
    ``pending`` is MTIP. Who advances ``mtime`` is the ISS's business (one tick
    per retired instruction in a standalone run).
    """

    MTIMECMP_OFFSET = TIMER_MTIMECMP - TIMER.base
    MTIME_OFFSET = TIMER_MTIME - TIMER.base

    def __init__(self) -> None:
        self.mtime = 0
        self.mtimecmp = _U64

    @property
    def pending(self) -> bool:
        return self.mtime >= self.mtimecmp

    def read_word(self, offset: int) -> int:
        """The 32-bit register at ``offset`` (word aligned) of the region."""
        for base, value in ((self.MTIMECMP_OFFSET, self.mtimecmp), (self.MTIME_OFFSET, self.mtime)):
            if offset == base:
                return value & 0xFFFF_FFFF
            if offset == base + 4:
                return value >> 32
        return 0

    def write_word(self, offset: int, data: int, mask: int) -> None:
        """Write the byte lanes of ``data`` selected by ``mask`` into the register at ``offset``."""
        for base, name in ((self.MTIMECMP_OFFSET, "mtimecmp"), (self.MTIME_OFFSET, "mtime")):
            if offset in (base, base + 4):
                shift = 8 * (offset - base)
                lanes = _lane_mask(mask) << shift
                old = getattr(self, name)
                setattr(self, name, (old & ~lanes & _U64) | ((data << shift) & lanes))


class FinisherResult(Enum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class FinisherStop:
    result: FinisherResult
    #: 0 for a pass, the failure code (bits 31:16 of the word) for a fail.
    code: int


class Finisher:
    """QEMU's sifive_test: a store of 0x5555 to its first word passes, ``(code << 16) | 0x3333`` fails.

    Loads read 0; other values and other offsets are ignored. ``stop`` is set
    by the store that ends the run.
    """

    def __init__(self) -> None:
        self.stop: FinisherStop | None = None

    def write_word(self, offset: int, data: int, mask: int) -> None:
        if offset != 0:
            return
        value = data & _lane_mask(mask)
        if value & 0xFFFF == FINISHER_PASS:
            self.stop = FinisherStop(FinisherResult.PASS, 0)
        elif value & 0xFFFF == 0x3333:
            self.stop = FinisherStop(FinisherResult.FAIL, value >> 16)


class Uart16550:
    """The 16550 subset at COM1 that firmware needs (docs/firmware.md "The ISS's devices").

    THR writes append to ``console``; RBR reads take bytes from ``rx`` (filled
    by ``feed``; 0 when empty). LSR reads THRE | TEMT (0x60), plus DR (bit 0)
    while ``rx`` holds a byte. IER (bits 3:0), LCR, MCR (bits 4:0), SCR and the
    divisor latch (DLL/DLM when LCR.DLAB = 1) are plain storage; FCR bit 0
    (FIFO enable) shows in IIR bits 7:6, FCR bit 1 empties ``rx``. IIR always
    reports "no interrupt pending" (0x01): the ISS's UART raises no interrupt.
    MSR reads 0xB0 (CTS, DSR, DCD: a terminal is connected).
    """

    LSR_DR = 0x01
    LSR_THRE_TEMT = 0x60
    MSR_CONNECTED = 0xB0

    def __init__(self) -> None:
        self.console = bytearray()
        self.rx: deque[int] = deque()
        self.ier = 0
        self.lcr = 0
        self.mcr = 0
        self.scr = 0
        self.fcr = 0
        self.divisor = 0

    def feed(self, data: bytes) -> None:
        """Bytes the terminal sends: RBR reads return them in order."""
        self.rx.extend(data)

    @property
    def dlab(self) -> bool:
        return bool(self.lcr & 0x80)

    def read(self, offset: int) -> int:
        match offset:
            case 0:
                if self.dlab:
                    return self.divisor & 0xFF
                return self.rx.popleft() if self.rx else 0
            case 1:
                return self.divisor >> 8 if self.dlab else self.ier
            case 2:
                return 0xC1 if self.fcr & 1 else 0x01
            case 3:
                return self.lcr
            case 4:
                return self.mcr
            case 5:
                return self.LSR_THRE_TEMT | (self.LSR_DR if self.rx else 0)
            case 6:
                return self.MSR_CONNECTED
            case 7:
                return self.scr
        raise ValueError(f"the UART has no register {offset}")

    def write(self, offset: int, value: int) -> None:
        match offset:
            case 0:
                if self.dlab:
                    self.divisor = (self.divisor & 0xFF00) | value
                else:
                    self.console.append(value)
            case 1:
                if self.dlab:
                    self.divisor = (self.divisor & 0x00FF) | (value << 8)
                else:
                    self.ier = value & 0x0F
            case 2:
                self.fcr = value & 0x01
                if value & 0x02:
                    self.rx.clear()
            case 3:
                self.lcr = value
            case 4:
                self.mcr = value & 0x1F
            case 7:
                self.scr = value
            # LSR and MSR are read-only.


class PostPort:
    """The POST code port: the LEDs show the last byte written; reads return it."""

    def __init__(self) -> None:
        self.value = 0

    def read(self, offset: int) -> int:
        return self.value

    def write(self, offset: int, value: int) -> None:
        self.value = value


class SmiPort:
    """The APM SMI command port: writes are recorded in ``commands`` (SMM is not modelled yet); reads 0xFF."""

    def __init__(self) -> None:
        self.commands: list[int] = []

    def read(self, offset: int) -> int:
        return 0xFF

    def write(self, offset: int, value: int) -> None:
        self.commands.append(value)


class PortBus:
    """The port I/O space: 16-bit ports, byte devices, all ones where nobody answers."""

    def __init__(self, uart: Uart16550, post: PostPort, smi: SmiPort) -> None:
        self._devices: dict[int, tuple[object, int]] = {}
        for name, device in (("uart", uart), ("post", post), ("smi", smi)):
            port = _PORT_BY_NAME[name]
            for offset in range(port.count):
                self._devices[port.base + offset] = (device, offset)

    def read(self, port: int, nbytes: int) -> int:
        value = 0
        for i in range(nbytes):
            hit = self._devices.get((port + i) & 0xFFFF)
            byte = 0xFF if hit is None else hit[0].read(hit[1]) & 0xFF
            value |= byte << (8 * i)
        return value

    def write(self, port: int, nbytes: int, value: int) -> None:
        for i in range(nbytes):
            hit = self._devices.get((port + i) & 0xFFFF)
            if hit is not None:
                hit[0].write(hit[1], (value >> (8 * i)) & 0xFF)


def _lane_mask(mask: int) -> int:
    """A 4-bit byte-lane mask as a 32-bit bit mask."""
    bits = 0
    for lane in range(4):
        if mask >> lane & 1:
            bits |= 0xFF << (8 * lane)
    return bits
