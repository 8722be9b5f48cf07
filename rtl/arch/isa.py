"""The RV32 softcore's VMX extension: instruction encodings, CSRs and trap causes (one table).

# Ref: The RISC-V Instruction Set Manual, Volume I (unprivileged) 20191213,
# chapter 26 "Extending RISC-V" (custom-0 opcode 0001011, custom-1 0101011) and
# chapter 24 (RV32I base opcode map); Volume II (privileged) 20211203, 2.2 (CSR
# address map: 0x7C0-0x7FF custom machine read/write) and 3.1.15 (mcause codes,
# 24-31 designated for custom use); Intel SDM vol. 3C 30.3 (the VMX instructions).

Every VMX-extension instruction is an R-type word in the custom-0 opcode space:
``funct7 | rs2 | rs1 | funct3 | rd | 0001011``. ``funct3`` picks a group (VMX
instructions, MSRs, CPUID, port I/O, SMM) and ``funct7`` the instruction. The
core hands VMX instructions to the VMX unit as 32-bit-operand requests; its
flags register (the ``xflags`` CSR, RFLAGS in the unit) then holds
VMsucceed/VMfailInvalid/VMfailValid exactly as on x86.

This module generates the firmware header (firmware/include/vmxu_isa.h), the
core's decoder and the ISS's decoder; docs/cpu.md explains it.
"""

from dataclasses import dataclass

from amaranth.lib import enum

from .ops import Op
from .riscv import MCAUSE_CODE_BITS, Interrupt

__all__ = [
    "OPCODE_CUSTOM0",
    "Group",
    "Operand",
    "Instruction",
    "INSTRUCTIONS",
    "INSTRUCTION_BY_NAME",
    "encode",
    "decode",
    "Csr",
    "CSRS",
    "CSR_BY_NAME",
    "TrapCause",
    "VECTOR_TO_CAUSE",
    "GuestException",
    "GUEST_EXCEPTIONS",
    "INTERRUPT_VECTORS",
    "injected_cause",
    "BANKED_CSRS",
    "IoSize",
]

OPCODE_CUSTOM0 = 0b000_1011


class Group(enum.Enum, shape=3):
    """``funct3`` of a VMX-extension instruction."""

    VMX = 0  # an instruction the VMX unit executes (Op in funct7)
    MSR = 1  # RDMSR / WRMSR, through the VMX unit
    CPUID = 2
    IN = 3  # port input; funct7 is the IoSize
    OUT = 4  # port output; funct7 is the IoSize
    SMM = 5  # RSM


class IoSize(enum.Enum, shape=2):
    """Operand size of IN/OUT (x86's byte, word and doubleword forms)."""

    BYTE = 0
    WORD = 1
    DWORD = 2

    @property
    def bytes(self) -> int:
        return 1 << self.value


class Operand(enum.Enum):
    """What a register field of an instruction carries."""

    NONE = "none"
    ADDR_LOW = "address bits 31:0"  # the m64 pointer operand's low half
    ADDR_HIGH = "address bits 63:32"  # its high half (x0 for addresses below 4 GiB)
    FIELD = "VMCS field encoding"
    VALUE = "value"
    MSR = "MSR number"
    LEAF = "CPUID leaf (EAX)"
    CPUID_REGISTER = "which result register: 0 EAX, 1 EBX, 2 ECX, 3 EDX"
    PORT = "I/O port (low 16 bits)"
    RESULT = "result"


@dataclass(frozen=True)
class Instruction:
    name: str
    group: Group
    funct7: int
    rd: Operand
    rs1: Operand
    rs2: Operand
    #: The VMX unit operation it becomes (None for CPUID, IN, OUT, RSM, which the core executes).
    unit_op: Op | None
    summary: str

    @property
    def funct3(self) -> int:
        return self.group.value

    @property
    def match(self) -> int:
        """The instruction word with every register field 0."""
        return (self.funct7 << 25) | (self.funct3 << 12) | OPCODE_CUSTOM0


_N = Operand.NONE

INSTRUCTIONS: tuple[Instruction, ...] = (
    Instruction("vmxon", Group.VMX, 0, _N, Operand.ADDR_LOW, Operand.ADDR_HIGH, Op.VMXON, "enter VMX operation"),
    Instruction("vmxoff", Group.VMX, 1, _N, _N, _N, Op.VMXOFF, "leave VMX operation"),
    Instruction("vmptrld", Group.VMX, 2, _N, Operand.ADDR_LOW, Operand.ADDR_HIGH, Op.VMPTRLD, "make a VMCS current"),
    Instruction("vmptrst", Group.VMX, 3, Operand.RESULT, _N, _N, Op.VMPTRST, "current-VMCS pointer bits 31:0 -> rd"),
    Instruction("vmclear", Group.VMX, 4, _N, Operand.ADDR_LOW, Operand.ADDR_HIGH, Op.VMCLEAR, "clear a VMCS"),
    Instruction("vmread", Group.VMX, 5, Operand.RESULT, Operand.FIELD, _N, Op.VMREAD, "VMCS field -> rd"),
    Instruction("vmwrite", Group.VMX, 6, _N, Operand.FIELD, Operand.VALUE, Op.VMWRITE, "rs2 -> VMCS field"),
    Instruction("vmlaunch", Group.VMX, 7, _N, _N, _N, Op.VMLAUNCH, "launch the current VMCS"),
    Instruction("vmresume", Group.VMX, 8, _N, _N, _N, Op.VMRESUME, "resume the current VMCS"),
    Instruction("vmcall", Group.VMX, 9, _N, _N, _N, Op.VMCALL, "call the VMM (or the SMM monitor)"),
    Instruction("rdmsr", Group.MSR, 0, Operand.RESULT, Operand.MSR, _N, Op.RDMSR, "MSR bits 31:0 -> rd, 63:32 -> xhi"),
    Instruction("wrmsr", Group.MSR, 1, _N, Operand.MSR, Operand.VALUE, Op.WRMSR, "xhi:rs2 -> MSR"),
    Instruction("cpuid", Group.CPUID, 0, Operand.RESULT, Operand.LEAF, Operand.CPUID_REGISTER, None, "CPUID"),
    Instruction("inb", Group.IN, IoSize.BYTE.value, Operand.RESULT, Operand.PORT, _N, None, "byte from port -> rd"),
    Instruction("inw", Group.IN, IoSize.WORD.value, Operand.RESULT, Operand.PORT, _N, None, "word from port -> rd"),
    Instruction("inl", Group.IN, IoSize.DWORD.value, Operand.RESULT, Operand.PORT, _N, None, "dword from port"),
    Instruction("outb", Group.OUT, IoSize.BYTE.value, _N, Operand.PORT, Operand.VALUE, None, "byte to port"),
    Instruction("outw", Group.OUT, IoSize.WORD.value, _N, Operand.PORT, Operand.VALUE, None, "word to port"),
    Instruction("outl", Group.OUT, IoSize.DWORD.value, _N, Operand.PORT, Operand.VALUE, None, "dword to port"),
    Instruction("rsm", Group.SMM, 0, _N, _N, _N, None, "return from SMM (#UD outside SMM)"),
)

INSTRUCTION_BY_NAME = {i.name: i for i in INSTRUCTIONS}
_BY_MATCH = {i.match: i for i in INSTRUCTIONS}
if len(_BY_MATCH) != len(INSTRUCTIONS) or len(INSTRUCTION_BY_NAME) != len(INSTRUCTIONS):
    raise ValueError("VMX extension: an encoding or a name is defined twice")
_MATCH_MASK = (0x7F << 25) | (0x7 << 12) | 0x7F


def encode(name: str, rd: int = 0, rs1: int = 0, rs2: int = 0) -> int:
    """The instruction word of ``name`` with these registers."""
    for reg in (rd, rs1, rs2):
        if not 0 <= reg < 32:
            raise ValueError(f"register x{reg} does not exist")
    return INSTRUCTION_BY_NAME[name].match | (rs2 << 20) | (rs1 << 15) | (rd << 7)


def decode(word: int) -> Instruction | None:
    """The VMX-extension instruction a word encodes, or None (then it is not one: illegal)."""
    return _BY_MATCH.get(word & _MATCH_MASK)


class Csr(enum.IntEnum, shape=12):
    """CSR numbers: the machine-mode subset the core implements, and vmxu's custom ones."""

    MSTATUS = 0x300
    MISA = 0x301
    MIE = 0x304
    MTVEC = 0x305
    MSCRATCH = 0x340
    MEPC = 0x341
    MCAUSE = 0x342
    MTVAL = 0x343
    MIP = 0x344
    MCYCLE = 0xB00
    MINSTRET = 0xB02
    MCYCLEH = 0xB80
    MINSTRETH = 0xB82
    CYCLE = 0xC00
    INSTRET = 0xC02
    CYCLEH = 0xC80
    INSTRETH = 0xC82
    MVENDORID = 0xF11
    MARCHID = 0xF12
    MIMPID = 0xF13
    MHARTID = 0xF14
    #: x86 control registers, bits 31:0 (machine-state elements cr0, cr3, cr4 of the VMX unit;
    #: a write zero-extends and follows MOV to CR rules: #GP when the unit refuses it).
    XCR0 = 0x7C0
    XCR3 = 0x7C1
    XCR4 = 0x7C2
    #: x86 RFLAGS bits 31:0 (CF, PF, AF, ZF, SF, OF give VMsucceed / VMfailInvalid / VMfailValid).
    XFLAGS = 0x7C3
    #: Bits 63:32 of a 64-bit operand: RDMSR leaves them here, WRMSR takes them from here (x86's EDX).
    XHI = 0x7C4


CSRS = tuple(Csr)
CSR_BY_NAME = {c.name.lower(): c for c in Csr}

#: The cycle counter's CSRs: a guest's read of one is RDTSC for the unit (docs/guests.md); the h ones
#: read bits 63:32 of its answer.
TSC_CSRS = frozenset({Csr.MCYCLE, Csr.MCYCLEH, Csr.CYCLE, Csr.CYCLEH})
TSC_HIGH_CSRS = frozenset({Csr.MCYCLEH, Csr.CYCLEH})

#: The x86 machine-state element each x86 CSR reaches.
CSR_ELEMENT = {Csr.XCR0: "cr0", Csr.XCR3: "cr3", Csr.XCR4: "cr4", Csr.XFLAGS: "rflags"}


class TrapCause(enum.IntEnum, shape=32):
    """mcause values: the exceptions the core raises, and its interrupts (``riscv.Interrupt``, bit 31 set)."""

    INSTRUCTION_MISALIGNED = 0
    INSTRUCTION_ACCESS_FAULT = 1
    ILLEGAL_INSTRUCTION = 2  # also x86 #UD of a VMX-extension instruction
    BREAKPOINT = 3
    LOAD_MISALIGNED = 4
    LOAD_ACCESS_FAULT = 5
    STORE_MISALIGNED = 6
    STORE_ACCESS_FAULT = 7
    ECALL_M = 11
    #: x86 #GP(0) raised by a VMX-extension instruction or an x86 CSR write (custom cause).
    GENERAL_PROTECTION = 24
    #: VMLAUNCH/VMRESUME passed every check the unit implements; VM entry itself comes later.
    ENTRY_NOT_IMPLEMENTED = 25
    MACHINE_TIMER_INTERRUPT = Interrupt.MACHINE_TIMER.cause
    MACHINE_EXTERNAL_INTERRUPT = Interrupt.MACHINE_EXTERNAL.cause


#: The trap an x86 exception vector from the VMX unit becomes (mtval: the instruction word).
VECTOR_TO_CAUSE = {6: TrapCause.ILLEGAL_INSTRUCTION, 13: TrapCause.GENERAL_PROTECTION}


@dataclass(frozen=True)
class GuestException:
    """The x86 exception a guest's trap is, for the exception bitmap (docs/guests.md): ``vector``, and the
    ``error_code`` it pushes (None for vectors without one)."""

    vector: int
    error_code: int | None = None


#: A guest's synchronous traps as x86 exceptions: the unit's EXCEPTION request decides whether they
#: exit (the exception bitmap; #PF with the error-code mask and match). An access fault is a #PF of a
#: page that is not present (error code bit 0 = 0), bit 1 set for a write, bit 4 for a fetch (SDM 4.7);
#: a misaligned access is #AC(0), a misaligned jump target #GP(0). ECALL is the guest's system call,
#: as INT n with n >= 32 is on x86: never in the exception bitmap, always the guest's own trap.
GUEST_EXCEPTIONS: dict[TrapCause, GuestException] = {
    # The first trap of each vector is the one an injected event of that vector is delivered as.
    TrapCause.ILLEGAL_INSTRUCTION: GuestException(6),
    TrapCause.BREAKPOINT: GuestException(3),
    TrapCause.GENERAL_PROTECTION: GuestException(13, 0),
    TrapCause.LOAD_ACCESS_FAULT: GuestException(14, 0),
    TrapCause.LOAD_MISALIGNED: GuestException(17, 0),
    TrapCause.INSTRUCTION_MISALIGNED: GuestException(13, 0),
    TrapCause.INSTRUCTION_ACCESS_FAULT: GuestException(14, 0x10),
    TrapCause.STORE_MISALIGNED: GuestException(17, 0),
    TrapCause.STORE_ACCESS_FAULT: GuestException(14, 0x2),
}

#: The vectors of the core's interrupts as external interrupts (the INTERRUPT request, "external-interrupt
#: exiting"; with "acknowledge interrupt on exit" the exit's interruption information carries it).
INTERRUPT_VECTORS: dict[TrapCause, int] = {
    TrapCause.MACHINE_TIMER_INTERRUPT: 32,
    TrapCause.MACHINE_EXTERNAL_INTERRUPT: 33,
}

#: The trap registers that x86 keeps no VMCS field for: one bank for root operation, one for the guest
#: (as the H extension banks them), swapped by VM entries and exits. mtvec is IDTR.base (a VMCS field).
BANKED_CSRS = (Csr.MEPC, Csr.MCAUSE, Csr.MTVAL, Csr.MSCRATCH, Csr.MSTATUS)


def injected_cause(vector: int) -> int:
    """The mcause a VM entry that injects ``vector`` delivers to the guest's trap vector: the first trap of
    ``GUEST_EXCEPTIONS`` (or ``INTERRUPT_VECTORS``) that is that vector; another vector is delivered with
    mcause = the vector's low ``MCAUSE_CODE_BITS`` bits, all mcause holds (docs/guests.md)."""
    for cause, exception in GUEST_EXCEPTIONS.items():
        if exception.vector == vector:
            return int(cause)
    for cause, interrupt_vector in INTERRUPT_VECTORS.items():
        if interrupt_vector == vector:
            return int(cause)
    return vector & ((1 << MCAUSE_CODE_BITS) - 1)
