"""The core's instruction decoder: RV32I, Zicsr, the privileged instructions and the VMX extension.

# Ref: The RISC-V Instruction Set Manual, Volume I (unprivileged) 20191213,
# chapter 2 (RV32I), chapter 9 (Zicsr), chapter 24 (opcode map); Volume II
# (privileged) 20211203, 2.1 (CSR address conventions), 3.3 (ECALL, EBREAK,
# MRET, WFI); rtl/arch/isa.py (the VMX extension: custom-0, one table);
# rtl/arch/riscv.py (the SYSTEM words, CSR number fields); docs/cpu.md (what is
# illegal).

The VMX-extension part of the decoder is generated from ``INSTRUCTIONS``: each
row's group picks what the core does (a VMX-unit request, CPUID, port I/O; RSM
a request with SMM, else illegal), and its operand roles pick the request's index and value.
CSR numbers come from ``Csr`` through the CSR file's tables.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.isa import INSTRUCTIONS, OPCODE_CUSTOM0, Group, Instruction, IoSize, Operand
from ..arch.ops import Op
from ..arch.riscv import READ_ONLY_ACCESS, CsrNumber, SystemInstruction
from .csr import MACHINE_CSRS, X86_CSRS, CsrId

__all__ = [
    "Kind",
    "Result",
    "Computed",
    "Logic",
    "ValueLow",
    "ValueHigh",
    "Decoded",
    "Decoder",
    "Opcode",
    "unit_operands",
]


class Opcode(enum.Enum, shape=7):
    """RV32I major opcodes (Volume I, table 24.1) and custom-0."""

    LOAD = 0b0000011
    MISC_MEM = 0b0001111
    OP_IMM = 0b0010011
    AUIPC = 0b0010111
    STORE = 0b0100011
    OP = 0b0110011
    LUI = 0b0110111
    BRANCH = 0b1100011
    JALR = 0b1100111
    JAL = 0b1101111
    SYSTEM = 0b1110011
    CUSTOM0 = OPCODE_CUSTOM0


class Kind(enum.Enum, shape=4):
    """What the core's sequencer does with an instruction after EXECUTE."""

    ALU = 0  # result -> rd (OP, OP-IMM, LUI, AUIPC, CPUID, FENCE: nothing)
    SHIFT = 1  # iterative shift of rs1, then -> rd
    BRANCH = 2
    JAL = 3
    JALR = 4
    LOAD = 5
    STORE = 6
    CSR = 7  # a machine CSR (the CSR file)
    X86_CSR = 8  # GET (and SET) on the VMX unit
    ECALL = 9
    EBREAK = 10
    MRET = 11
    WFI = 12
    UNIT = 13  # a VMX-extension request to the VMX unit
    IN = 14
    OUT = 15


class Result(enum.Enum, shape=2):
    """Where WRITE_BACK takes rd's value from (all registers: nothing long before the register file)."""

    RESULT = 0  # the result register (a load's word shifted down and extended as mem_funct3 says)
    SUM = 1  # rs1 + b or rs1 - b (the address register)
    LESS = 2  # the comparison (SLT, SLTU) in bit 0, the result register (0) in bits 31:1


class Computed(enum.Enum, shape=3):
    """What EXECUTE leaves in the result register (for a VMX-unit request: the value's bits 31:0)."""

    LOGIC = 0  # XOR, OR, AND, or b itself (LUI)
    CPUID = 1
    RS1 = 2  # the shifter's starting value
    PC_IMM = 3  # AUIPC
    PC_4 = 4  # the link of JAL, JALR
    CSR = 5  # the machine CSR's value
    ZERO = 6


class Logic(enum.Enum, shape=2):
    XOR = 0
    OR = 1
    AND = 2
    B = 3


class ValueLow(enum.Enum, shape=2):
    """Bits 31:0 of a VMX-unit request's value operand (EXECUTE leaves it in the result register)."""

    ZERO = 0
    RS1 = 1
    RS2 = 2


class ValueHigh(enum.Enum, shape=2):
    """Bits 63:32 of a VMX-unit request's value operand."""

    ZERO = 0
    RS2 = 1
    XHI = 2


class Decoded(data.Struct):
    """An instruction, decoded (registered between DECODE and EXECUTE)."""

    kind: Kind
    illegal: 1  # not an instruction the core implements (then kind means nothing)
    result: Result
    computed: Computed
    logic: Logic
    funct3: 3
    subtract: 1  # SUB, SLT(U), branches: rs1 - b
    unsigned: 1  # SLTU, BLTU, BGEU
    b_imm: 1  # the ALU's second operand is imm (else rs2)
    writes_rd: 1  # the instruction writes rd when it completes (x0 excluded later)
    imm: 32  # sign-extended immediate; the CSR immediate (uimm) for CSRRxI
    mem_funct3: 3  # size (and signedness) of a load or store; WORD for everything else: no realignment
    csr: CsrId
    csr_write: 1  # the CSR instruction writes the CSR (CSRRW, or a non-zero rs1/uimm)
    element: 6  # x86 CSR: the machine-state element number
    unit_op: Op
    index_rs1: 1  # the request's index is rs1 (else the element, or 0)
    value_high: ValueHigh
    platform_op: 1  # the unit completes it with OK (RDMSR, WRMSR), not VMsucceed
    rdmsr: 1  # an OK response also writes xhi
    io_size: IoSize


def unit_operands(insn: Instruction) -> tuple[bool, ValueLow, ValueHigh]:
    """(index is rs1, value bits 31:0, value bits 63:32) of a VMX-extension request, from its operand roles."""
    if insn.rs1 == Operand.ADDR_LOW and insn.rs2 == Operand.ADDR_HIGH:
        return False, ValueLow.RS1, ValueHigh.RS2
    if insn.rs1 not in (Operand.NONE, Operand.FIELD, Operand.MSR) or insn.rs2 not in (Operand.NONE, Operand.VALUE):
        raise ValueError(f"{insn.name}: the core does not know how to pass operands {insn.rs1}, {insn.rs2}")
    index_rs1 = insn.rs1 in (Operand.FIELD, Operand.MSR)
    low = ValueLow.RS2 if insn.rs2 == Operand.VALUE else ValueLow.ZERO
    # WRMSR's value is EDX:EAX, xhi:rs2 here.
    high = ValueHigh.XHI if insn.unit_op == Op.WRMSR else ValueHigh.ZERO
    return index_rs1, low, high


#: How EXECUTE leaves a request's value bits 31:0 in the result register.
_VALUE_LOW_COMPUTED = {ValueLow.ZERO: Computed.ZERO, ValueLow.RS1: Computed.RS1, ValueLow.RS2: Computed.LOGIC}

_LOAD_WORD = 0b010


class Decoder(wiring.Component):
    """Combinational decode of ``insn``.

    Members
    -------
    insn : In(32)
    decoded : Out(Decoded)
    rs1_zero : Out(1)
        The CSR immediate forms: rs1's field is uimm, so the ALU's first operand
        is 0 instead of a register (the ALU then adds uimm to 0, and the CSR
        source is that sum).
    """

    insn: In(32)
    decoded: Out(Decoded)
    rs1_zero: Out(1)

    def __init__(self, *, smm: bool = False):
        #: RSM is a request to the VMX unit (a core with SMM, docs/smm-soc.md); else it is illegal.
        self.smm = smm
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        insn = self.insn
        d = self.decoded

        opcode = insn[0:7]
        funct3 = insn[12:15]
        funct7 = insn[25:32]
        alt = insn[30]

        # What the instruction is, from the major opcode (and funct3, funct7) alone; whether the
        # word is a legal one is a separate bit (``illegal``), checked first in EXECUTE.
        kind = Signal(Kind)
        legal = Signal()
        m.d.comb += [
            self.rs1_zero.eq((opcode == Opcode.SYSTEM) & funct3[2]),
            d.funct3.eq(funct3),
            d.mem_funct3.eq(_LOAD_WORD),
            d.kind.eq(kind),
            d.illegal.eq(~legal),
            d.imm.eq(self._immediate(insn)),
        ]

        with m.Switch(opcode):
            with m.Case(Opcode.LUI):
                m.d.comb += [
                    kind.eq(Kind.ALU),
                    legal.eq(1),
                    d.logic.eq(Logic.B),
                    d.b_imm.eq(1),
                    d.writes_rd.eq(1),
                ]
            with m.Case(Opcode.AUIPC):
                m.d.comb += [kind.eq(Kind.ALU), legal.eq(1), d.computed.eq(Computed.PC_IMM), d.writes_rd.eq(1)]
            with m.Case(Opcode.JAL):
                m.d.comb += [kind.eq(Kind.JAL), legal.eq(1), d.computed.eq(Computed.PC_4), d.writes_rd.eq(1)]
            with m.Case(Opcode.JALR):
                m.d.comb += [
                    kind.eq(Kind.JALR),
                    legal.eq(funct3 == 0),
                    d.computed.eq(Computed.PC_4),
                    d.b_imm.eq(1),
                    d.writes_rd.eq(1),
                ]
            with m.Case(Opcode.BRANCH):
                m.d.comb += [
                    kind.eq(Kind.BRANCH),
                    legal.eq(funct3[1:3] != 0b01),
                    d.subtract.eq(1),
                    d.unsigned.eq(funct3[1]),
                ]
            with m.Case(Opcode.LOAD):
                m.d.comb += [
                    kind.eq(Kind.LOAD),
                    legal.eq((funct3[0:2] != 0b11) & (funct3 != 0b110)),
                    d.mem_funct3.eq(funct3),
                    d.b_imm.eq(1),
                    d.writes_rd.eq(1),
                ]
            with m.Case(Opcode.STORE):
                m.d.comb += [
                    kind.eq(Kind.STORE),
                    legal.eq(funct3 < 0b011),
                    d.mem_funct3.eq(funct3),
                    d.b_imm.eq(1),
                ]
            with m.Case(Opcode.OP_IMM, Opcode.OP):
                register = opcode[5]  # OP; OP-IMM otherwise
                shift = funct3[0:2] == 0b01
                # funct7: 0, or 0100000 for SUB and SRA(I); OP-IMM's other forms have an immediate there.
                alternate_allowed = Mux(register, (funct3 == 0b000) | (funct3 == 0b101), funct3 == 0b101)
                m.d.comb += [
                    kind.eq(Mux(shift, Kind.SHIFT, Kind.ALU)),
                    legal.eq(~(register | shift) | (funct7 == 0) | ((funct7 == 0b0100000) & alternate_allowed)),
                    d.b_imm.eq(~register),
                    d.writes_rd.eq(1),
                ]
                with m.Switch(funct3):
                    with m.Case(0b000):
                        m.d.comb += [d.result.eq(Result.SUM), d.subtract.eq(register & alt)]
                    with m.Case(0b001, 0b101):
                        m.d.comb += d.computed.eq(Computed.RS1)
                    with m.Case(0b010, 0b011):
                        m.d.comb += [
                            d.result.eq(Result.LESS),
                            d.computed.eq(Computed.ZERO),
                            d.subtract.eq(1),
                            d.unsigned.eq(funct3[0]),
                        ]
                    with m.Case(0b100):
                        m.d.comb += d.logic.eq(Logic.XOR)
                    with m.Case(0b110):
                        m.d.comb += d.logic.eq(Logic.OR)
                    with m.Case(0b111):
                        m.d.comb += d.logic.eq(Logic.AND)
            with m.Case(Opcode.MISC_MEM):
                # FENCE and FENCE.I do nothing; their other fields are ignored (Volume I, 2.7, 3.1).
                m.d.comb += [kind.eq(Kind.ALU), legal.eq(funct3[1:3] == 0)]
            with m.Case(Opcode.SYSTEM):
                with m.If(funct3 == 0):
                    # Legal only as one of the four whole words; then a few bits tell which: only
                    # MRET has bit 29, only WFI of the others bit 22, only EBREAK of the last two bit 20.
                    m.d.comb += legal.eq(0)
                    for word in SystemInstruction:
                        with m.If(insn == word):
                            m.d.comb += legal.eq(1)
                    with m.If(insn[29]):
                        m.d.comb += kind.eq(Kind.MRET)
                    with m.Elif(insn[22]):
                        m.d.comb += kind.eq(Kind.WFI)
                    with m.Elif(insn[20]):
                        m.d.comb += kind.eq(Kind.EBREAK)
                    with m.Else():
                        m.d.comb += kind.eq(Kind.ECALL)
                with m.Else():
                    self._decode_csr(m, insn, kind, legal)
            with m.Case(Opcode.CUSTOM0):
                self._decode_extension(m, insn, kind, legal)

        return m

    @staticmethod
    def _immediate(insn):
        """The sign-extended immediate of the instruction's format (Volume I, figure 2.4), bit by bit;
        uimm (or 0) for the CSR instructions, 0 for custom-0."""
        opcode = insn[0:7]
        sign = insn[31]
        s_or_b = (opcode == Opcode.STORE) | (opcode == Opcode.BRANCH)
        b = opcode == Opcode.BRANCH
        u = (opcode == Opcode.LUI) | (opcode == Opcode.AUIPC)
        j = opcode == Opcode.JAL
        system = opcode == Opcode.SYSTEM
        custom = opcode == Opcode.CUSTOM0
        uimm = insn[15:20] & insn[14].replicate(5)  # CSRRxI; CSRRx take rs1 + 0
        imm = Cat(
            Mux(system, uimm[0], Mux(s_or_b, insn[7] & ~b, insn[20] & ~(u | j))),
            Mux(system, uimm[1:5], Mux(s_or_b, insn[8:12], Mux(u, 0, insn[21:25]))),
            Mux(u | system, 0, insn[25:31]),
            Mux(b, insn[7], Mux(j, insn[20], Mux(u | system, 0, sign))),
            Mux(u | j, insn[12:20], Mux(system, 0, sign.replicate(8))),
            Mux(u, insn[20:31], Mux(system, 0, sign.replicate(11))),
            Mux(system, 0, sign),
        )
        return Mux(custom, 0, imm)

    def _decode_csr(self, m: Module, insn, kind, legal) -> None:
        d = self.decoded
        funct3 = insn[12:15]
        number = insn[20:32]
        source = insn[15:20]  # rs1 or uimm
        # CSRRW(I) always writes; CSRRS(I)/CSRRC(I) only with a non-zero rs1/uimm (Volume I, 9.1).
        writes = (funct3[0:2] == 0b01) | (source != 0)
        x86 = Signal()
        known = Signal()
        m.d.comb += [
            kind.eq(Mux(x86, Kind.X86_CSR, Kind.CSR)),
            # funct3 4 is not a CSR instruction; a write to a read-only CSR is illegal.
            legal.eq(known & (funct3 != 0b100) & ~(writes & (CsrNumber(number).access == READ_ONLY_ACCESS))),
            d.csr_write.eq(writes),
            d.writes_rd.eq(1),
            d.b_imm.eq(1),
            # The machine CSR's value; for an x86 CSR, the GET's value operand (0).
            d.computed.eq(Mux(x86, Computed.ZERO, Computed.CSR)),
            d.unit_op.eq(Op.GET),  # x86 CSRs: then SET, when the instruction writes
        ]
        with m.Switch(number):
            for csr, csr_id in MACHINE_CSRS.items():
                with m.Case(csr.value):
                    m.d.comb += [known.eq(1), d.csr.eq(csr_id)]
            for csr, element in X86_CSRS.items():
                with m.Case(csr.value):
                    m.d.comb += [known.eq(1), x86.eq(1), d.element.eq(element)]

    def _decode_extension(self, m: Module, insn, kind, legal) -> None:
        d = self.decoded
        with m.Switch(Cat(insn[12:15], insn[25:32])):
            for row in INSTRUCTIONS:
                with m.Case(row.funct3 | (row.funct7 << 3)):
                    m.d.comb += [legal.eq(1), d.writes_rd.eq(row.rd == Operand.RESULT)]
                    if row.group in (Group.VMX, Group.MSR):
                        index_rs1, low, high = unit_operands(row)
                        m.d.comb += [
                            kind.eq(Kind.UNIT),
                            d.unit_op.eq(row.unit_op),
                            d.index_rs1.eq(index_rs1),
                            d.computed.eq(_VALUE_LOW_COMPUTED[low]),
                            d.logic.eq(Logic.B),  # b is rs2
                            d.value_high.eq(high),
                            d.platform_op.eq(row.group == Group.MSR),
                            d.rdmsr.eq(row.unit_op == Op.RDMSR),
                        ]
                    elif row.group == Group.CPUID:
                        m.d.comb += [kind.eq(Kind.ALU), d.computed.eq(Computed.CPUID)]
                    elif row.group == Group.IN:
                        m.d.comb += [kind.eq(Kind.IN), d.io_size.eq(IoSize(row.funct7))]
                    elif row.group == Group.OUT:
                        m.d.comb += [kind.eq(Kind.OUT), d.io_size.eq(IoSize(row.funct7))]
                    elif row.group == Group.SMM and self.smm:
                        # RSM: a request (the unit answers #UD outside SMM, docs/smm-soc.md).
                        m.d.comb += [kind.eq(Kind.UNIT), d.unit_op.eq(Op.RSM), d.writes_rd.eq(0)]
                    elif row.group == Group.SMM:
                        # Without SMM (a core without guests), RSM is #UD.
                        m.d.comb += [legal.eq(0), d.writes_rd.eq(0)]
                    else:  # pragma: no cover - a new group needs a decision here
                        raise ValueError(f"{row.name}: the core does not implement group {row.group}")
