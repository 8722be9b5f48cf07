"""The retired-instruction trace: one record per completed instruction or interrupt, and its text form.

# Ref: docs/cpu.md "The retired-instruction trace"; rtl/cpu/ports.py
# TraceSignature (the same fields on the RTL core's trace port).

``Retired`` holds exactly the fields of the trace port. ``Retired.from_port``
builds one from the port's signal values, ``differences`` compares two records
field by field (store data only in the lanes the mask selects), and
``format_retired`` prints one line with a disassembly (capstone for the base
ISA, the ``rtl.arch.isa`` table for custom-0 words).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from vmxu.rtl.arch.isa import CSRS, OPCODE_CUSTOM0, Operand, TrapCause, decode
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.riscv import Mcause

__all__ = ["Store", "Retired", "differences", "format_retired", "disassemble", "ABI_NAMES"]

ABI_NAMES = (
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1",
    "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
    "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11",
    "t3", "t4", "t5", "t6",
)  # fmt: skip

_INTERRUPT = Mcause.const({"interrupt": 1}).as_bits()


@dataclass(frozen=True, slots=True)
class Store:
    """A store: the instruction's byte address, the data in the byte lanes of its bus word
    (``sb`` of 0xAB at 0x102 is data 0x00AB0000, mask 0b0100; lanes outside ``mask`` are 0),
    and the byte-lane mask."""

    addr: int
    data: int
    mask: int

    def lanes(self) -> int:
        """``data`` with the lanes outside ``mask`` cleared."""
        bits = 0
        for lane in range(4):
            if self.mask >> lane & 1:
                bits |= 0xFF << (8 * lane)
        return self.data & bits


@dataclass(frozen=True, slots=True)
class Retired:
    """One trace record.

    Members
    -------
    pc : int
        The instruction's address; for an interrupt, the pc of the instruction it preempted.
    insn : int
        The instruction word (0 for an interrupt, and for a fetch that faulted).
    rd, rd_value : int
        The destination written and its new value; rd = 0 when nothing was written.
    trap : int | None
        mcause when the instruction trapped or this record is an interrupt.
    vmx_status : Status | None
        The VMX unit's outcome of a VMX-extension request (VMX instructions, RDMSR, WRMSR).
    store : Store | None
        The store the instruction made.
    """

    pc: int
    insn: int
    rd: int = 0
    rd_value: int = 0
    trap: int | None = None
    vmx_status: Status | None = None
    store: Store | None = None

    @property
    def interrupt(self) -> bool:
        return self.trap is not None and bool(self.trap & _INTERRUPT)

    @classmethod
    def from_port(cls, signals: Mapping[str, int]) -> Retired:
        """A record from the values of TraceSignature's members (``valid`` is not looked at)."""
        store = Store(signals["store_addr"], signals["store_data"], signals["store_mask"])
        return cls(
            pc=signals["pc"],
            insn=signals["insn"],
            rd=signals["rd"],
            rd_value=signals["rd_value"] if signals["rd"] else 0,
            trap=signals["cause"] if signals["trap"] else None,
            vmx_status=Status(signals["vmx_status"]) if signals["vmx"] else None,
            store=store if signals["store"] else None,
        )


def differences(expected: Retired, actual: Retired) -> list[str]:
    """Field-by-field differences between two records ("field: expected != actual"); [] when they agree."""
    diffs = []
    for name in ("pc", "insn", "rd", "rd_value", "trap", "vmx_status"):
        a, b = getattr(expected, name), getattr(actual, name)
        if a != b:
            diffs.append(f"{name}: {_show(a)} != {_show(b)}")
    sa, sb = expected.store, actual.store
    if (sa is None) != (sb is None):
        diffs.append(f"store: {_show_store(sa)} != {_show_store(sb)}")
    elif sa is not None and sb is not None and (sa.addr, sa.mask, sa.lanes()) != (sb.addr, sb.mask, sb.lanes()):
        diffs.append(f"store: {_show_store(sa)} != {_show_store(sb)}")
    return diffs


def _show(value: object) -> str:
    if isinstance(value, Status):
        return value.name
    if isinstance(value, int):
        return f"{value:#x}"
    return str(value)


def _show_store(store: Store | None) -> str:
    if store is None:
        return "none"
    return f"[{store.addr:#010x}] = {store.lanes():#010x} mask {store.mask:04b}"


# -- text ----------------------------------------------------------------------

_CAUSE_NAMES = {int(c): c.name.lower() for c in TrapCause}


def format_retired(record: Retired) -> str:
    """One line: pc, word, disassembly, then what the instruction did."""
    if record.interrupt:
        text = f"{record.pc:08x}: -------- {'<interrupt>':32}"
    elif record.insn == 0 and record.trap is not None:
        text = f"{record.pc:08x}: -------- {'<fetch fault>':32}"
    else:
        text = f"{record.pc:08x}: {record.insn:08x} {disassemble(record.insn, record.pc):32}"
    effects = []
    if record.rd:
        effects.append(f"{ABI_NAMES[record.rd]}={record.rd_value:#010x}")
    if record.store is not None:
        effects.append(_show_store(record.store))
    if record.vmx_status is not None:
        effects.append(f"vmx {record.vmx_status.name}")
    if record.trap is not None:
        effects.append(f"trap {_CAUSE_NAMES.get(record.trap, hex(record.trap))}")
    return (text + " " + "  ".join(effects)).rstrip()


@lru_cache(maxsize=4096)
def disassemble(word: int, pc: int = 0) -> str:
    """Assembly text of one instruction word (``.word 0x...`` when it is none)."""
    if word & 0x7F == OPCODE_CUSTOM0:
        return _disassemble_custom0(word)
    text = _capstone(word, pc)
    return text if text is not None else f".word {word:#010x}"


def _disassemble_custom0(word: int) -> str:
    insn = decode(word)
    if insn is None:
        return f".word {word:#010x}"
    regs = {"rd": (word >> 7) & 31, "rs1": (word >> 15) & 31, "rs2": (word >> 20) & 31}
    operands = [ABI_NAMES[regs[slot]] for slot in ("rd", "rs1", "rs2") if getattr(insn, slot) != Operand.NONE]
    return f"{insn.name} {', '.join(operands)}".rstrip()


_CSR_NAMES = {int(c): c.name.lower() for c in CSRS}


@lru_cache(maxsize=1)
def _capstone_engine():  # noqa: ANN202 - capstone is optional at import time
    try:
        import capstone
    except ImportError:
        return None
    return capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32)


def _capstone(word: int, pc: int) -> str | None:
    engine = _capstone_engine()
    if engine is None:
        return None
    for insn in engine.disasm(word.to_bytes(4, "little"), pc, 1):
        text = f"{insn.mnemonic} {insn.op_str}".strip()
        if (word & 0x7F) == 0x73 and (word >> 12) & 3:
            # capstone prints custom CSRs by number; give vmxu's names.
            csr = word >> 20
            if csr in _CSR_NAMES:
                text = re.sub(rf"\b{csr}\b", _CSR_NAMES[csr], text)
        return text
    return None
