"""RISC-V machine mode: privilege modes, interrupts, the fields of the machine CSRs, the SYSTEM words.

# Ref: The RISC-V Instruction Set Manual, Volume II (privileged) 20211203,
# 1.2 (table 1.1: privilege levels), 2.1 (table 2.1: CSR address conventions),
# 3.1.1 (misa, figure 3.1, table 3.1), 3.1.6 (mstatus, figure 3.7: RV32),
# 3.1.9 (mip and mie: bit i is interrupt i; priority MEI, MSI, MTI, SEI, SSI,
# STI), 3.1.15 (mcause, figure 3.24; table 3.6: interrupt codes), 3.3.1
# (ECALL, EBREAK), 3.3.2 (MRET), 3.3.3 (WFI); Volume I 20191213, 2.8 and
# chapter 24 (the SYSTEM instruction words).

What the spec fixes, as enums and ``data.Struct``s, then what vmxu's core
makes of the WARL and WLRL fields (``MISA``, ``MCAUSE_CODE_BITS``); docs/cpu.md
"CSRs" is the contract they implement. The RTL core uses them at elaboration
time (views of its signals, constants), the ISS as integers
(``Mstatus.const({"mie": 1}).as_bits()``), firmware/gen_headers.py writes them
into firmware/include/vmxu_isa.h. The CSR numbers and the mcause codes,
standard and vmxu's custom ones together, are one table in rtl/arch/isa.py
(``Csr``, ``TrapCause``); its interrupt causes come from ``Interrupt`` here.
"""

from amaranth.lib import data, enum

__all__ = [
    "PrivilegeMode",
    "Interrupt",
    "InterruptBits",
    "Mstatus",
    "Mcause",
    "Mxl",
    "Misa",
    "extensions",
    "CsrNumber",
    "READ_ONLY_ACCESS",
    "read_only",
    "SystemInstruction",
    "MISA",
    "MCAUSE_CODE_BITS",
]


class PrivilegeMode(enum.Enum, shape=2):
    """Privilege levels (table 1.1); 2 is reserved."""

    USER = 0
    SUPERVISOR = 1
    MACHINE = 3


class Interrupt(enum.Enum, shape=4):
    """Standard interrupt codes (table 3.6): the mcause code of the interrupt, and its bit in mie and mip."""

    SUPERVISOR_SOFTWARE = 1
    MACHINE_SOFTWARE = 3
    SUPERVISOR_TIMER = 5
    MACHINE_TIMER = 7
    SUPERVISOR_EXTERNAL = 9
    MACHINE_EXTERNAL = 11

    @property
    def mask(self) -> int:
        """Its enable bit in mie, its pending bit in mip."""
        return 1 << self.value

    @property
    def cause(self) -> int:
        """Its mcause value."""
        return Mcause.const({"interrupt": 1, "code": self.value}).as_bits()


#: mie and mip (3.1.9): bit i enables (mie) or shows pending (mip) interrupt i; other bits are
#: reserved or for the platform. A field per interrupt, named after it (``machine_timer``: MTIE, MTIP).
InterruptBits = data.FlexibleLayout(32, {i.name.lower(): data.Field(1, i.value) for i in Interrupt})


class Mstatus(data.Struct):
    """mstatus, RV32 (3.1.6, figure 3.7); the ``_wpri`` fields are reserved."""

    _wpri0: 1
    sie: 1
    _wpri2: 1
    mie: 1
    _wpri4: 1
    spie: 1
    ube: 1
    mpie: 1
    spp: 1
    vs: 2
    mpp: PrivilegeMode
    fs: 2
    xs: 2
    mprv: 1
    sum: 1
    mxr: 1
    tvm: 1
    tw: 1
    tsr: 1
    _wpri23: 8
    sd: 1


class Mcause(data.Struct):
    """mcause, RV32 (3.1.15, figure 3.24): the exception code (WLRL) and whether the trap is an interrupt."""

    code: 31
    interrupt: 1


class Mxl(enum.Enum, shape=2):
    """misa.MXL: the native base integer ISA (table 3.1)."""

    RV32 = 1
    RV64 = 2
    RV128 = 3


class Misa(data.Struct):
    """misa, RV32 (3.1.1, figure 3.1): one bit per extension letter, A in bit 0."""

    extensions: 26
    _zero: 4
    mxl: Mxl


def extensions(*letters: str) -> int:
    """``Misa.extensions`` with these letters' bits set (``"X"``: non-standard extensions present)."""
    return sum(1 << (ord(letter) - ord("A")) for letter in set(letters))


class CsrNumber(data.Struct):
    """A CSR number's fields (2.1, table 2.1).

    ``access`` is ``READ_ONLY_ACCESS`` for a read-only CSR (any other value: read/write);
    ``privilege`` is the lowest privilege mode that may access the CSR.
    """

    index: 8
    privilege: PrivilegeMode
    access: 2


#: ``CsrNumber.access`` of a read-only CSR: writing it raises illegal instruction (2.1).
READ_ONLY_ACCESS = 0b11


def read_only(number: int) -> bool:
    """Whether CSR ``number`` is read-only."""
    return CsrNumber.from_bits(number).access == READ_ONLY_ACCESS


class SystemInstruction(enum.Enum, shape=32):
    """The SYSTEM instructions without operands (3.3.1-3.3.3), as whole words: every other field is 0."""

    ECALL = 0x0000_0073
    EBREAK = 0x0010_0073
    MRET = 0x3020_0073
    WFI = 0x1050_0073


# -- vmxu's core ------------------------------------------------------------------------

#: misa: RV32, the I base and non-standard extensions (the VMX extension). It is read-only.
MISA = Misa.const({"mxl": Mxl.RV32, "extensions": extensions("I", "X")}).as_bits()

#: mcause's code is WLRL: the core keeps its low 5 bits, enough for every cause it raises
#: (rtl/arch/isa.py's TrapCause, custom ones included).
MCAUSE_CODE_BITS = 5
