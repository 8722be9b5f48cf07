"""Which guest events cause VM exits, from the current VMCS's controls, bitmaps, masks and shadows.

# Ref: Intel SDM vol. 3C, 25.1.2 "Instructions that cause VM exits
# unconditionally", 25.1.3 "Instructions that cause VM exits conditionally"
# (HLT, RDTSC, IN/OUT with 24.6.4 I/O bitmaps, RDMSR/WRMSR with 24.6.9 MSR
# bitmaps, MOV to/from CR0/CR3/CR4 with 24.6.6 guest/host masks, read shadows
# and CR3 targets), 25.2 "Other causes of VM exits" (exceptions with 24.6.3 the
# exception bitmap and the #PF error-code mask and match, external interrupts,
# NMIs, the VMX-preemption timer), 26.7.5 / 25.2 (interrupt-window exiting).

Each method answers one question about one event; ``field(name)`` reads the
current VMCS, ``memory`` is the bus the I/O and MSR bitmaps are read from.
"""

from __future__ import annotations

from collections.abc import Callable

from vmxu.rtl.arch.controls import EXIT, PIN, PROC
from vmxu.rtl.arch.events import ExceptionVector
from vmxu.rtl.arch.state import INTERRUPTIBILITY, RFLAGS

from .memory import PhysicalMemory

__all__ = ["ExitDecision", "MSR_BITMAP_RANGES"]

#: The MSR ranges the MSR bitmaps cover (24.6.9): (first MSR, byte offset of the read bitmap).
#: The write bitmap of a range is 0x800 bytes further on. MSRs outside them always exit.
MSR_BITMAP_RANGES = ((0x0000_0000, 0x000), (0xC000_0000, 0x400))
_MSR_RANGE_SIZE = 0x2000
_MSR_WRITE_BITMAP_OFFSET = 0x800
#: Ports 0-7FFFH are in I/O bitmap A, 8000H-FFFFH in bitmap B.
_PORTS_PER_BITMAP = 0x8000


class ExitDecision:
    """Exit decisions for the guest events of shared/vmx/REPLAY.md."""

    def __init__(self, field: Callable[[str], int], memory: PhysicalMemory) -> None:
        self.field = field
        self.memory = memory
        self.pin = field(PIN.vmcs_field)
        self.proc = field(PROC.vmcs_field)

    def _proc(self, name: str) -> bool:
        return bool(self.proc & PROC.bit(name))

    def _pin(self, name: str) -> bool:
        return bool(self.pin & PIN.bit(name))

    def hlt(self) -> bool:
        return self._proc("HLT_EXITING")

    def rdtsc(self) -> bool:
        return self._proc("RDTSC_EXITING")

    def tsc_offset(self) -> int:
        """What RDTSC adds to the TSC in the guest ("use TSC offsetting", 25.3)."""
        return self.field("TSC_OFFSET") if self._proc("USE_TSC_OFFSETTING") else 0

    def io(self, port: int, size: int) -> bool:
        """IN/OUT of ``size`` bytes at ``port``: with "use I/O bitmaps" any set bit of ports port..port+size-1
        exits, and so does an access that wraps past port FFFFH; else "unconditional I/O exiting" decides."""
        if not self._proc("USE_IO_BITMAPS"):
            return self._proc("UNCOND_IO_EXITING")
        if port + size > 0x1_0000:
            return True
        return any(self._bitmap_bit(self._io_bitmap_bit(p)) for p in range(port, port + size))

    def _io_bitmap_bit(self, port: int) -> int:
        """The physical bit address (byte address * 8 + bit) of a port's bit."""
        bitmap = self.field("IO_BITMAP_A" if port < _PORTS_PER_BITMAP else "IO_BITMAP_B")
        return bitmap * 8 + port % _PORTS_PER_BITMAP

    def msr(self, number: int, *, write: bool) -> bool:
        """RDMSR/WRMSR of ``number``: always without "use MSR bitmaps"; else the bitmap's bit, and MSRs outside
        the two ranges the bitmaps cover always exit."""
        if not self._proc("USE_MSR_BITMAPS"):
            return True
        for first, offset in MSR_BITMAP_RANGES:
            if first <= number < first + _MSR_RANGE_SIZE:
                byte = self.field("MSR_BITMAP") + offset + (_MSR_WRITE_BITMAP_OFFSET if write else 0)
                return self._bitmap_bit(byte * 8 + number - first)
        return True

    def _bitmap_bit(self, bit_address: int) -> bool:
        word = self.memory.read_word(bit_address >> 5)
        return bool(word >> (bit_address & 31) & 1)

    def exception(self, vector: int, error_code: int) -> bool:
        """The exception bitmap's bit; for #PF, the bit says whether a match of the error code under
        PAGE_FAULT_ERROR_CODE_MASK with PAGE_FAULT_ERROR_CODE_MATCH exits (1) or a mismatch does (0)."""
        bit = bool(self.field("EXCEPTION_BITMAP") >> vector & 1)
        if vector != ExceptionVector.PF:
            return bit
        matches = error_code & self.field("PAGE_FAULT_ERROR_CODE_MASK") == self.field("PAGE_FAULT_ERROR_CODE_MATCH")
        return bit == matches

    def mov_to_cr(self, cr: int, value: int) -> bool:
        """MOV to CR0/CR4: a bit set in the guest/host mask whose value differs from the read shadow.
        MOV to CR3: "CR3-load exiting", unless the value is one of the first CR3-target-count target values."""
        if cr == 3:
            if not self._proc("CR3_LOAD_EXITING"):
                return False
            targets = [self.field(f"CR3_TARGET_VALUE{i}") for i in range(self.field("CR3_TARGET_COUNT"))]
            return value not in targets
        mask = self.field(f"CR{cr}_GUEST_HOST_MASK")
        return bool((value ^ self.field(f"CR{cr}_READ_SHADOW")) & mask)

    def mov_from_cr3(self) -> bool:
        return self._proc("CR3_STORE_EXITING")

    def read_shadowed(self, cr: int, value: int) -> int:
        """MOV from CR0/CR4 in the guest: bits set in the guest/host mask read from the read shadow."""
        mask = self.field(f"CR{cr}_GUEST_HOST_MASK")
        return (value & ~mask) | (self.field(f"CR{cr}_READ_SHADOW") & mask)

    def mov_to_cr_value(self, cr: int, value: int, current: int) -> int:
        """The value a MOV to CR0/CR4 that does not exit loads: bits set in the mask keep their value."""
        if cr == 3:
            return value
        mask = self.field(f"CR{cr}_GUEST_HOST_MASK")
        return (value & ~mask) | (current & mask)

    def external_interrupt(self, interruptibility: int) -> bool:
        """ "External-interrupt exiting", whatever RFLAGS.IF says, unless blocked by STI or MOV SS (25.2)."""
        blocked = interruptibility & (INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
        return self._pin("EXT_INTR_EXITING") and not blocked

    def acknowledges_interrupts(self) -> bool:
        """ "Acknowledge interrupt on exit": the exit's interruption information carries the vector."""
        return bool(self.field(EXIT.vmcs_field) & EXIT.bit("ACK_INTR_ON_EXIT"))

    def nmi(self, interruptibility: int) -> bool:
        """ "NMI exiting", unless NMIs are blocked: by MOV SS, or by NMI (bit 3) without "virtual NMIs"; with
        "virtual NMIs", bit 3 is virtual-NMI blocking, which does not block NMIs (26.6.1)."""
        blocking = INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
        if not self._pin("VIRTUAL_NMIS"):
            blocking |= INTERRUPTIBILITY.BLOCKING_BY_NMI
        return self._pin("NMI_EXITING") and not interruptibility & blocking

    def nmi_window(self, interruptibility: int) -> bool:
        """ "NMI-window exiting" (which needs "virtual NMIs") with no virtual-NMI blocking and no blocking by
        MOV SS (25.2; blocking by STI does not hold NMIs here)."""
        blocked = interruptibility & (INTERRUPTIBILITY.BLOCKING_BY_NMI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
        return self._proc("NMI_WINDOW_EXITING") and not blocked

    def interrupt_window(self, rflags: int, interruptibility: int) -> bool:
        """ "Interrupt-window exiting" with RFLAGS.IF = 1 and no blocking by STI or MOV SS (26.7.5)."""
        blocked = interruptibility & (INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
        return self._proc("INTR_WINDOW_EXITING") and bool(rflags & RFLAGS.IF) and not blocked

    def preemption_timer(self) -> bool:
        return self._pin("ACTIVATE_PREEMPTION_TIMER")
