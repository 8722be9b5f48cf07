"""A small RV32I + Zicsr + VMX-extension instruction encoder, for tests and the ISS.

# Ref: The RISC-V Instruction Set Manual, Volume I (unprivileged) 20191213,
# chapter 2 (RV32I: formats R/I/S/B/U/J, 2.3 "Immediate Encoding Variants"),
# chapter 9 (Zicsr), chapter 24 (opcode map and instruction listings); Volume II
# (privileged) 20211203, 3.3 (ECALL, EBREAK, MRET, WFI: rtl/arch/riscv.py);
# rtl/arch/isa.py (the VMX extension, custom-0).

Every instruction is a function returning its 32-bit word; operands follow the
assembler's order (``addi(rd, rs1, imm)``, ``lw(rd, imm, rs1)`` for
``lw rd, imm(rs1)``, ``sw(rs2, imm, rs1)`` for ``sw rs2, imm(rs1)``,
``jalr(rd, imm, rs1)``, ``beq(rs1, rs2, offset)``, ``jal(rd, offset)``,
``csrrw(rd, csr, rs1)``, ``csrrwi(rd, csr, uimm)``). Registers are numbers
0..31 or ABI names ("a0", "x5"); CSRs are numbers, ``Csr`` members or names
("mstatus"). ``and``/``or`` are ``and_``/``or_``. An out-of-range immediate, register or CSR raises ``ValueError``.
Branch and jump offsets are byte offsets from the instruction itself.

The VMX-extension instructions come from ``rtl.arch.isa.INSTRUCTIONS``: each
takes the register fields its operands use, in the order rd, rs1, rs2
(``vmread(rd, rs1)``, ``vmwrite(rs1, rs2)``, ``vmxon(rs1, rs2)``,
``vmlaunch()``, ``inb(rd, rs1)``, ``outb(rs1, rs2)``).

``Program`` lays instructions out with labels for tests.
"""

import keyword
from collections.abc import Callable

from vmxu.rtl.arch.isa import CSR_BY_NAME, INSTRUCTIONS, Operand, encode
from vmxu.rtl.arch.riscv import SystemInstruction

__all__ = ["reg", "csr_number", "Program", "li", "INSTRUCTION_FORMATS"]

_ABI = "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6".split()
_REGISTER_BY_NAME = {name: i for i, name in enumerate(_ABI)} | {f"x{i}": i for i in range(32)} | {"fp": 8}


def reg(r: int | str) -> int:
    """A register number from a number or an ABI name."""
    if isinstance(r, str):
        try:
            return _REGISTER_BY_NAME[r]
        except KeyError:
            raise ValueError(f"no register named {r!r}") from None
    if not isinstance(r, int) or not 0 <= r < 32:
        raise ValueError(f"register x{r} does not exist")
    return r


def csr_number(csr) -> int:
    """A CSR number from a number, a ``Csr`` member or a name."""
    if isinstance(csr, str):
        try:
            return int(CSR_BY_NAME[csr.lower()])
        except KeyError:
            raise ValueError(f"no CSR named {csr!r}") from None
    csr = int(csr)
    if not 0 <= csr < 4096:
        raise ValueError(f"CSR number {csr:#x} is not 12 bits")
    return csr


def _signed(value: int, bits: int, what: str, *, multiple: int = 1) -> int:
    """``value`` as a ``bits``-bit two's-complement field (checked)."""
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise ValueError(f"{what} {value} is out of range {low}..{high}")
    if value % multiple:
        raise ValueError(f"{what} {value} is not a multiple of {multiple}")
    return value & ((1 << bits) - 1)


def _unsigned(value: int, bits: int, what: str) -> int:
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{what} {value} is out of range 0..{(1 << bits) - 1}")
    return value


# Formats (Volume I, 2.2-2.3): field placement of each immediate.
def _r(opcode, funct3, funct7, rd, rs1, rs2):
    return (funct7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode


def _i(opcode, funct3, rd, rs1, imm):
    return (_signed(imm, 12, "I-immediate") << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode


def _s(opcode, funct3, rs2, rs1, imm):
    imm = _signed(imm, 12, "S-immediate")
    return ((imm >> 5) << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (funct3 << 12) | ((imm & 0x1F) << 7) | opcode


def _b(opcode, funct3, rs1, rs2, offset):
    imm = _signed(offset, 13, "branch offset", multiple=2)
    return (
        (((imm >> 12) & 1) << 31)
        | (((imm >> 5) & 0x3F) << 25)
        | (reg(rs2) << 20)
        | (reg(rs1) << 15)
        | (funct3 << 12)
        | (((imm >> 1) & 0xF) << 8)
        | (((imm >> 11) & 1) << 7)
        | opcode
    )


def _u(opcode, rd, imm20):
    return (_unsigned(imm20, 20, "U-immediate") << 12) | (reg(rd) << 7) | opcode


def _j(opcode, rd, offset):
    imm = _signed(offset, 21, "jump offset", multiple=2)
    return (
        (((imm >> 20) & 1) << 31)
        | (((imm >> 1) & 0x3FF) << 21)
        | (((imm >> 11) & 1) << 20)
        | (((imm >> 12) & 0xFF) << 12)
        | (reg(rd) << 7)
        | opcode
    )


OP_LUI, OP_AUIPC, OP_JAL, OP_JALR = 0b0110111, 0b0010111, 0b1101111, 0b1100111
OP_BRANCH, OP_LOAD, OP_STORE, OP_IMM, OP_OP = 0b1100011, 0b0000011, 0b0100011, 0b0010011, 0b0110011
OP_MISC_MEM, OP_SYSTEM = 0b0001111, 0b1110011

#: name -> (format, opcode, funct3, funct7); the base ISA and Zicsr (Volume I, chapter 24).
INSTRUCTION_FORMATS: dict[str, tuple[str, int, int, int]] = {
    "lui": ("U", OP_LUI, 0, 0),
    "auipc": ("U", OP_AUIPC, 0, 0),
    "jal": ("J", OP_JAL, 0, 0),
    "jalr": ("I-mem", OP_JALR, 0, 0),
    "beq": ("B", OP_BRANCH, 0, 0),
    "bne": ("B", OP_BRANCH, 1, 0),
    "blt": ("B", OP_BRANCH, 4, 0),
    "bge": ("B", OP_BRANCH, 5, 0),
    "bltu": ("B", OP_BRANCH, 6, 0),
    "bgeu": ("B", OP_BRANCH, 7, 0),
    "lb": ("I-mem", OP_LOAD, 0, 0),
    "lh": ("I-mem", OP_LOAD, 1, 0),
    "lw": ("I-mem", OP_LOAD, 2, 0),
    "lbu": ("I-mem", OP_LOAD, 4, 0),
    "lhu": ("I-mem", OP_LOAD, 5, 0),
    "sb": ("S", OP_STORE, 0, 0),
    "sh": ("S", OP_STORE, 1, 0),
    "sw": ("S", OP_STORE, 2, 0),
    "addi": ("I", OP_IMM, 0, 0),
    "slti": ("I", OP_IMM, 2, 0),
    "sltiu": ("I", OP_IMM, 3, 0),
    "xori": ("I", OP_IMM, 4, 0),
    "ori": ("I", OP_IMM, 6, 0),
    "andi": ("I", OP_IMM, 7, 0),
    "slli": ("I-shift", OP_IMM, 1, 0b0000000),
    "srli": ("I-shift", OP_IMM, 5, 0b0000000),
    "srai": ("I-shift", OP_IMM, 5, 0b0100000),
    "add": ("R", OP_OP, 0, 0b0000000),
    "sub": ("R", OP_OP, 0, 0b0100000),
    "sll": ("R", OP_OP, 1, 0b0000000),
    "slt": ("R", OP_OP, 2, 0b0000000),
    "sltu": ("R", OP_OP, 3, 0b0000000),
    "xor": ("R", OP_OP, 4, 0b0000000),
    "srl": ("R", OP_OP, 5, 0b0000000),
    "sra": ("R", OP_OP, 5, 0b0100000),
    "or": ("R", OP_OP, 6, 0b0000000),
    "and": ("R", OP_OP, 7, 0b0000000),
    "csrrw": ("CSR", OP_SYSTEM, 1, 0),
    "csrrs": ("CSR", OP_SYSTEM, 2, 0),
    "csrrc": ("CSR", OP_SYSTEM, 3, 0),
    "csrrwi": ("CSR-imm", OP_SYSTEM, 5, 0),
    "csrrsi": ("CSR-imm", OP_SYSTEM, 6, 0),
    "csrrci": ("CSR-imm", OP_SYSTEM, 7, 0),
}

#: Whole words of the instructions without operands.
_FIXED = {insn.name.lower(): insn.value for insn in SystemInstruction} | {"fence_i": 0x0000_100F}


def _make(name: str, fmt: str, opcode: int, funct3: int, funct7: int) -> Callable[..., int]:
    if fmt == "R":

        def insn(rd, rs1, rs2):
            return _r(opcode, funct3, funct7, rd, rs1, rs2)
    elif fmt == "I":

        def insn(rd, rs1, imm):
            return _i(opcode, funct3, rd, rs1, imm)
    elif fmt == "I-mem":

        def insn(rd, imm, rs1):
            return _i(opcode, funct3, rd, rs1, imm)
    elif fmt == "I-shift":

        def insn(rd, rs1, shamt):
            return _r(opcode, funct3, funct7, rd, rs1, _unsigned(shamt, 5, "shift amount"))
    elif fmt == "S":

        def insn(rs2, imm, rs1):
            return _s(opcode, funct3, rs2, rs1, imm)
    elif fmt == "B":

        def insn(rs1, rs2, offset):
            return _b(opcode, funct3, rs1, rs2, offset)
    elif fmt == "U":

        def insn(rd, imm20):
            return _u(opcode, rd, imm20)
    elif fmt == "J":

        def insn(rd, offset):
            return _j(opcode, rd, offset)
    elif fmt == "CSR":

        def insn(rd, csr, rs1):
            return (csr_number(csr) << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode
    elif fmt == "CSR-imm":

        def insn(rd, csr, uimm):
            uimm = _unsigned(uimm, 5, "CSR immediate")
            return (csr_number(csr) << 20) | (uimm << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode
    else:  # pragma: no cover - the table above has no other format
        raise ValueError(f"unknown format {fmt}")
    insn.__name__ = insn.__qualname__ = name
    insn.__doc__ = f"``{name}`` ({fmt}-type)."
    return insn


def _make_fixed(name: str, word: int) -> Callable[[], int]:
    def insn():
        return word

    insn.__name__ = insn.__qualname__ = name
    insn.__doc__ = f"``{name.replace('_', '.')}`` ({word:#010x})."
    return insn


def _make_extension(name: str, fields: tuple[str, ...]) -> Callable[..., int]:
    def insn(*registers):
        if len(registers) != len(fields):
            raise TypeError(
                f"{name} takes {len(fields)} registers ({', '.join(fields) or 'none'}), not {len(registers)}"
            )
        return encode(name, **{f: reg(r) for f, r in zip(fields, registers, strict=True)})

    insn.__name__ = insn.__qualname__ = name
    insn.__doc__ = f"``{name}`` (VMX extension; registers: {', '.join(fields) or 'none'})."
    return insn


_namespace = globals()
for _name, (_fmt, _opcode, _funct3, _funct7) in INSTRUCTION_FORMATS.items():
    # Python keywords get a trailing underscore: and_, or_.
    _python_name = _name + "_" if keyword.iskeyword(_name) else _name
    _namespace[_python_name] = _make(_name, _fmt, _opcode, _funct3, _funct7)
    __all__.append(_python_name)
for _name, _word in _FIXED.items():
    _namespace[_name] = _make_fixed(_name, _word)
    __all__.append(_name)
for _insn in INSTRUCTIONS:
    _fields = tuple(f for f, role in (("rd", _insn.rd), ("rs1", _insn.rs1), ("rs2", _insn.rs2)) if role != Operand.NONE)
    _namespace[_insn.name] = _make_extension(_insn.name, _fields)
    __all__.append(_insn.name)


def fence(pred: int = 0b1111, succ: int = 0b1111) -> int:
    """``fence pred, succ`` (iorw bits)."""
    return (_unsigned(pred, 4, "fence predecessor") << 24) | (_unsigned(succ, 4, "fence successor") << 20) | OP_MISC_MEM


# Pseudo-instructions (Volume I, chapter 25).
def nop() -> int:
    return _namespace["addi"](0, 0, 0)


def mv(rd, rs1) -> int:
    return _namespace["addi"](rd, rs1, 0)


def j(offset: int) -> int:
    return _namespace["jal"](0, offset)


def ret() -> int:
    return _namespace["jalr"](0, 0, 1)


def csrr(rd, csr) -> int:
    return _namespace["csrrs"](rd, csr, 0)


def csrw(csr, rs1) -> int:
    return _namespace["csrrw"](0, csr, rs1)


def csrs(csr, rs1) -> int:
    return _namespace["csrrs"](0, csr, rs1)


def csrc(csr, rs1) -> int:
    return _namespace["csrrc"](0, csr, rs1)


def csrwi(csr, uimm: int) -> int:
    return _namespace["csrrwi"](0, csr, uimm)


def csrsi(csr, uimm: int) -> int:
    return _namespace["csrrsi"](0, csr, uimm)


def csrci(csr, uimm: int) -> int:
    return _namespace["csrrci"](0, csr, uimm)


def li(rd, value: int) -> list[int]:
    """``li rd, value``: one ADDI when it fits 12 bits, else LUI + ADDI (two words)."""
    if not -(1 << 31) <= value < (1 << 32):
        raise ValueError(f"li value {value:#x} does not fit 32 bits")
    value &= 0xFFFF_FFFF
    signed = value - (1 << 32) if value >> 31 else value
    if -2048 <= signed < 2048:
        return [_namespace["addi"](rd, 0, signed)]
    return _li_pair(rd, value)


def _li_pair(rd, value: int) -> list[int]:
    value &= 0xFFFF_FFFF
    low = value & 0xFFF
    low = low - 0x1000 if low >= 0x800 else low
    upper = ((value - low) >> 12) & 0xF_FFFF
    return [_namespace["lui"](rd, upper), _namespace["addi"](rd, rd, low)]


__all__ += ["fence", "nop", "mv", "j", "ret", "csrr", "csrw", "csrs", "csrc", "csrwi", "csrsi", "csrci"]


class Program:
    """Instructions laid out from ``base`` with labels (resolved when ``words()`` is called).

    ``emit`` takes words (or lists of words); ``branch``, ``jal`` and ``la``
    take a label name where the instruction wants an offset or an address.

        p = Program()
        p.emit(li(1, 3))
        p.label("loop")
        p.emit(addi(1, 1, -1))
        p.branch("bne", 1, 0, "loop")
        words = p.words()
    """

    def __init__(self, base: int = 0):
        self.base = base
        self._items: list[int | Callable[[int, dict[str, int]], int]] = []
        self.labels: dict[str, int] = {}

    @property
    def pc(self) -> int:
        """The address of the next instruction emitted."""
        return self.base + 4 * len(self._items)

    def label(self, name: str) -> int:
        if name in self.labels:
            raise ValueError(f"label {name!r} defined twice")
        self.labels[name] = self.pc
        return self.pc

    def emit(self, *words: int | list[int]) -> int:
        """Append words; return the address of the first."""
        at = self.pc
        for w in words:
            for word in w if isinstance(w, list) else [w]:
                if not 0 <= word < (1 << 32):
                    raise ValueError(f"{word:#x} is not a 32-bit word")
                self._items.append(word)
        return at

    def branch(self, name: str, rs1, rs2, target: str) -> int:
        at = self.pc
        self._items.append(lambda pc, labels: _namespace[name](rs1, rs2, labels[target] - pc))
        return at

    def jal(self, rd, target: str) -> int:
        at = self.pc
        self._items.append(lambda pc, labels: _namespace["jal"](rd, labels[target] - pc))
        return at

    def la(self, rd, target: str) -> int:
        """``la rd, target``: always two words (LUI + ADDI)."""
        at = self.pc
        self._items.append(lambda pc, labels: _li_pair(rd, labels[target])[0])
        self._items.append(lambda pc, labels: _li_pair(rd, labels[target])[1])
        return at

    def words(self) -> list[int]:
        out = []
        for i, item in enumerate(self._items):
            pc = self.base + 4 * i
            if callable(item):
                try:
                    out.append(item(pc, self.labels))
                except KeyError as e:
                    raise ValueError(f"undefined label {e.args[0]!r} at {pc:#x}") from None
            else:
                out.append(item)
        return out
