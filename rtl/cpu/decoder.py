"""The core's instruction decoder: RV32I, Zicsr, the privileged instructions and the VMX extension.

# Ref: The RISC-V Instruction Set Manual, Volume I (unprivileged) 20191213,
# chapter 2 (RV32I), chapter 9 (Zicsr), chapter 24 (opcode map); Volume II
# (privileged) 20211203, 2.1 (CSR address conventions), 3.3 (ECALL, EBREAK,
# MRET, WFI); rtl/arch/isa.py (the VMX extension: custom-0, one table);
# docs/cpu.md (what is illegal).

The VMX-extension part of the decoder is generated from ``INSTRUCTIONS``: each
row's group picks what the core does (a VMX-unit request, CPUID, port I/O, or
illegal for RSM), and its operand roles pick the request's index and value.
CSR numbers come from ``Csr`` through the CSR file's tables.
"""

from amaranth import C, Cat, Module, Mux
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.isa import INSTRUCTIONS, OPCODE_CUSTOM0, Group, Instruction, IoSize, Operand
from ..arch.ops import Op
from .csr import MACHINE_CSRS, X86_CSRS, CsrId, read_only

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


class Kind(enum.Enum, shape=5):
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
    ILLEGAL = 16


class Result(enum.Enum, shape=3):
    """Where WRITE_BACK takes rd's value from."""

    RESULT = 0  # the result register: logic, LUI, CPUID, shifts, CSRs, loads' words, the unit, IN
    SUM = 1  # rs1 + b or rs1 - b (the address register)
    LESS = 2  # the comparison (SLT, SLTU)
    PC_IMM = 3  # AUIPC
    PC_4 = 4  # JAL, JALR
    LOAD = 5  # the loaded word, shifted down and extended


class Computed(enum.Enum, shape=2):
    """What EXECUTE leaves in the result register."""

    LOGIC = 0  # XOR, OR, AND, or b itself (LUI)
    CPUID = 1
    RS1 = 2  # the shifter's starting value


class Logic(enum.Enum, shape=2):
    XOR = 0
    OR = 1
    AND = 2
    B = 3


class ValueLow(enum.Enum, shape=2):
    """Bits 31:0 of a VMX-unit request's value operand."""

    ZERO = 0
    RS1 = 1
    RS2 = 2
    CSR = 3  # the x86 CSR's new value (SET)


class ValueHigh(enum.Enum, shape=2):
    """Bits 63:32 of a VMX-unit request's value operand."""

    ZERO = 0
    RS2 = 1
    XHI = 2


class Decoded(data.Struct):
    """An instruction, decoded (registered between DECODE and EXECUTE)."""

    kind: Kind
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
    value_low: ValueLow
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


_SYSTEM_WORDS = {
    Kind.ECALL: 0x0000_0073,
    Kind.EBREAK: 0x0010_0073,
    Kind.MRET: 0x3020_0073,
    Kind.WFI: 0x1050_0073,
}

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

    def elaborate(self, platform):
        m = Module()
        insn = self.insn
        d = self.decoded

        opcode = insn[0:7]
        funct3 = insn[12:15]
        funct7 = insn[25:32]
        alt = insn[30]

        imm_i = insn[20:32].as_signed()
        imm_s = Cat(insn[7:12], insn[25:32]).as_signed()
        imm_b = Cat(C(0, 1), insn[8:12], insn[25:31], insn[7], insn[31]).as_signed()
        imm_u = Cat(C(0, 12), insn[12:32])
        imm_j = Cat(C(0, 1), insn[21:31], insn[20], insn[12:20], insn[31]).as_signed()

        csr_immediate = (opcode == Opcode.SYSTEM) & funct3[2]
        m.d.comb += [
            self.rs1_zero.eq(csr_immediate),
            d.funct3.eq(funct3),
            d.mem_funct3.eq(_LOAD_WORD),
            d.kind.eq(Kind.ILLEGAL),
            d.imm.eq(imm_i),
        ]

        with m.Switch(opcode):
            with m.Case(Opcode.LUI):
                m.d.comb += [
                    d.kind.eq(Kind.ALU),
                    d.logic.eq(Logic.B),
                    d.b_imm.eq(1),
                    d.imm.eq(imm_u),
                    d.writes_rd.eq(1),
                ]
            with m.Case(Opcode.AUIPC):
                m.d.comb += [d.kind.eq(Kind.ALU), d.result.eq(Result.PC_IMM), d.imm.eq(imm_u), d.writes_rd.eq(1)]
            with m.Case(Opcode.JAL):
                m.d.comb += [d.kind.eq(Kind.JAL), d.result.eq(Result.PC_4), d.imm.eq(imm_j), d.writes_rd.eq(1)]
            with m.Case(Opcode.JALR):
                with m.If(funct3 == 0):
                    m.d.comb += [
                        d.kind.eq(Kind.JALR),
                        d.result.eq(Result.PC_4),
                        d.b_imm.eq(1),
                        d.writes_rd.eq(1),
                    ]
            with m.Case(Opcode.BRANCH):
                m.d.comb += [d.imm.eq(imm_b), d.subtract.eq(1), d.unsigned.eq(funct3[1])]
                with m.If((funct3 != 0b010) & (funct3 != 0b011)):
                    m.d.comb += d.kind.eq(Kind.BRANCH)
            with m.Case(Opcode.LOAD):
                m.d.comb += [d.b_imm.eq(1), d.writes_rd.eq(1), d.result.eq(Result.LOAD)]
                with m.If((funct3 != 0b011) & (funct3 != 0b110) & (funct3 != 0b111)):
                    m.d.comb += [d.kind.eq(Kind.LOAD), d.mem_funct3.eq(funct3)]
            with m.Case(Opcode.STORE):
                m.d.comb += [d.b_imm.eq(1), d.imm.eq(imm_s)]
                with m.If(funct3 < 0b011):
                    m.d.comb += [d.kind.eq(Kind.STORE), d.mem_funct3.eq(funct3)]
            with m.Case(Opcode.OP_IMM, Opcode.OP):
                register = opcode == Opcode.OP
                m.d.comb += [d.b_imm.eq(~register), d.writes_rd.eq(1), d.kind.eq(Kind.ALU)]
                with m.Switch(funct3):
                    with m.Case(0b000):
                        m.d.comb += [d.result.eq(Result.SUM), d.subtract.eq(register & alt)]
                        with m.If(register & (funct7 != 0) & (funct7 != 0b0100000)):
                            m.d.comb += d.kind.eq(Kind.ILLEGAL)
                    with m.Case(0b001, 0b101):
                        m.d.comb += [d.kind.eq(Kind.SHIFT), d.computed.eq(Computed.RS1)]
                        shift_right_arith = funct3[2] & (funct7 == 0b0100000)
                        with m.If((funct7 != 0) & ~shift_right_arith):
                            m.d.comb += d.kind.eq(Kind.ILLEGAL)
                    with m.Case(0b010, 0b011):
                        m.d.comb += [d.result.eq(Result.LESS), d.subtract.eq(1), d.unsigned.eq(funct3[0])]
                    with m.Case(0b100):
                        m.d.comb += d.logic.eq(Logic.XOR)
                    with m.Case(0b110):
                        m.d.comb += d.logic.eq(Logic.OR)
                    with m.Case(0b111):
                        m.d.comb += d.logic.eq(Logic.AND)
                # Register-register forms other than ADD/SUB and SRL/SRA take funct7 = 0.
                with m.If(register & (funct3 != 0b000) & (funct3 != 0b001) & (funct3 != 0b101) & (funct7 != 0)):
                    m.d.comb += d.kind.eq(Kind.ILLEGAL)
            with m.Case(Opcode.MISC_MEM):
                # FENCE and FENCE.I do nothing; their other fields are ignored (Volume I, 2.7, 3.1).
                with m.If(funct3 < 0b010):
                    m.d.comb += [d.kind.eq(Kind.ALU), d.result.eq(Result.SUM)]
            with m.Case(Opcode.SYSTEM):
                with m.If(funct3 == 0):
                    for kind, word in _SYSTEM_WORDS.items():
                        with m.If(insn == word):
                            m.d.comb += d.kind.eq(kind)
                with m.Elif(funct3 != 0b100):
                    self._decode_csr(m, insn)
            with m.Case(Opcode.CUSTOM0):
                self._decode_extension(m, insn)

        return m

    def _decode_csr(self, m: Module, insn) -> None:
        d = self.decoded
        funct3 = insn[12:15]
        number = insn[20:32]
        source = insn[15:20]  # rs1 or uimm
        # CSRRW(I) always writes; CSRRS(I)/CSRRC(I) only with a non-zero rs1/uimm (Volume I, 9.1).
        writes = (funct3[0:2] == 0b01) | (source != 0)
        m.d.comb += [
            d.csr_write.eq(writes),
            d.writes_rd.eq(1),
            d.b_imm.eq(1),
            # The CSR source is rs1 + imm: rs1 + 0, or x0 + uimm.
            d.imm.eq(Mux(funct3[2], source, 0)),
        ]
        with m.Switch(number):
            for csr, csr_id in MACHINE_CSRS.items():
                with m.Case(csr.value):
                    m.d.comb += d.csr.eq(csr_id)
                    if read_only(csr.value):
                        m.d.comb += d.kind.eq(Mux(writes, Kind.ILLEGAL, Kind.CSR))
                    else:
                        m.d.comb += d.kind.eq(Kind.CSR)
            for csr, element in X86_CSRS.items():
                with m.Case(csr.value):
                    m.d.comb += [
                        d.kind.eq(Kind.X86_CSR),
                        d.element.eq(element),
                        d.unit_op.eq(Op.GET),  # then SET, when the instruction writes
                        d.value_low.eq(ValueLow.CSR),
                    ]

    def _decode_extension(self, m: Module, insn) -> None:
        d = self.decoded
        with m.Switch(Cat(insn[12:15], insn[25:32])):
            for row in INSTRUCTIONS:
                with m.Case(row.funct3 | (row.funct7 << 3)):
                    m.d.comb += d.writes_rd.eq(row.rd == Operand.RESULT)
                    if row.group in (Group.VMX, Group.MSR):
                        index_rs1, low, high = unit_operands(row)
                        m.d.comb += [
                            d.kind.eq(Kind.UNIT),
                            d.unit_op.eq(row.unit_op),
                            d.index_rs1.eq(index_rs1),
                            d.value_low.eq(low),
                            d.value_high.eq(high),
                            d.platform_op.eq(row.group == Group.MSR),
                            d.rdmsr.eq(row.unit_op == Op.RDMSR),
                        ]
                    elif row.group == Group.CPUID:
                        m.d.comb += [d.kind.eq(Kind.ALU), d.computed.eq(Computed.CPUID)]
                    elif row.group == Group.IN:
                        m.d.comb += [d.kind.eq(Kind.IN), d.io_size.eq(IoSize(row.funct7))]
                    elif row.group == Group.OUT:
                        m.d.comb += [d.kind.eq(Kind.OUT), d.io_size.eq(IoSize(row.funct7))]
                    elif row.group == Group.SMM:
                        # RSM outside SMM is #UD; the core has no SMM yet.
                        m.d.comb += [d.kind.eq(Kind.ILLEGAL), d.writes_rd.eq(0)]
                    else:  # pragma: no cover - a new group needs a decision here
                        raise ValueError(f"{row.name}: the core does not implement group {row.group}")
