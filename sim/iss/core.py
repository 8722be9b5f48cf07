"""The instruction-set simulator: RV32I + Zicsr + the VMX extension, one instruction per ``step``.

# Ref: docs/cpu.md (the architectural contract this file implements); The
# RISC-V Instruction Set Manual vol. I 20191213 ch. 2 (RV32I), ch. 9 (Zicsr),
# vol. II 20211203 ch. 3 (machine mode: traps, mstatus, mie/mip, MRET, WFI);
# rtl/arch/isa.py (the VMX extension), rtl/arch/riscv.py (the machine CSRs'
# fields, the SYSTEM words), rtl/arch/soc.py (memory map and ports).

``Iss(image).step()`` executes one instruction, or takes a pending interrupt,
and returns its ``Retired`` record, exactly the record the RTL core's trace
port gives for the same instruction. VMX instructions, RDMSR/WRMSR and the x86
CSRs are requests to ``sim.model.VmxModel`` (32-bit operand size), whose memory
is the ISS's RAM. ``run(max_instructions)`` steps until the test finisher
stops the run or the limit is reached.

Standalone time: every record costs one clock cycle (``mcycle``), and the
timer's ``mtime`` advances one tick per retired instruction; WFI with nothing
pending fast-forwards ``mtime`` to ``mtimecmp`` when the timer interrupt is
enabled in ``mie`` (and is otherwise a no-op, as docs/cpu.md allows).

Lockstep (``lockstep=True``): the ISS never takes an interrupt by itself and
does not advance ``mtime``; the driver passes ``Override`` to ``step`` with
what only the RTL knows: which interrupt it took, and the value rd received
from a read the ISS cannot predict (a load from the timer region, IN, a CSR
read of mcycle(h), cycle(h) or mip). ``Override.from_rtl(record)`` builds it
from the RTL's own record; ``sim.iss.lockstep`` does the comparing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from vmxu.rtl.arch.isa import (
    CSR_ELEMENT,
    GUEST_EXCEPTIONS,
    INTERRUPT_VECTORS,
    TSC_CSRS,
    TSC_HIGH_CSRS,
    VECTOR_TO_CAUSE,
    Csr,
    Group,
    Instruction,
    IoSize,
    Operand,
    TrapCause,
    decode,
)
from vmxu.rtl.arch.msrs import VMX_MISC
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.riscv import (
    MCAUSE_CODE_BITS,
    MISA,
    Interrupt,
    Mcause,
    Mstatus,
    PrivilegeMode,
    SystemInstruction,
    read_only,
)
from vmxu.rtl.arch.soc import FINISHER, RAM, TIMER, Region
from vmxu.rtl.arch.state import element_id
from vmxu.rtl.cpu.cpuid import CPUID_LEAVES
from vmxu.sim.model import VmxModel

from .devices import Finisher, FinisherResult, PortBus, PostPort, SmiPort, Timer, Uart16550
from .guests import TRANSITIONS, Guests
from .memory import SystemRam
from .smm import CoreSmm
from .trace import Retired, Store

__all__ = ["Iss", "Override", "RunResult", "StopReason", "LockstepError"]

_M32 = 0xFFFF_FFFF
_U64 = (1 << 64) - 1

# The bits of mstatus, mie/mip and mcause the core keeps, as integers (rtl/arch/riscv.py lays them out).
MSTATUS_MIE = Mstatus.const({"mie": 1}).as_bits()
MSTATUS_MPIE = Mstatus.const({"mpie": 1}).as_bits()
MSTATUS_MPP_M = Mstatus.const({"mpp": PrivilegeMode.MACHINE}).as_bits()
MIP_MTIP = Interrupt.MACHINE_TIMER.mask
MIP_MEIP = Interrupt.MACHINE_EXTERNAL.mask
MIE_WRITABLE = MIP_MTIP | MIP_MEIP
MCAUSE_WRITABLE = Mcause.const({"interrupt": 1, "code": (1 << MCAUSE_CODE_BITS) - 1}).as_bits()

_READ_ONLY_CSRS = frozenset(c for c in Csr if read_only(c))
_KNOWN_CSRS = frozenset(int(c) for c in Csr)
#: CSR reads whose value only the RTL knows in lockstep (clock cycles, the timer's MTIP).
_UNPREDICTABLE_CSRS = TSC_CSRS | {Csr.MIP}
_X86_CSR_ELEMENT = {int(csr): element_id(name) for csr, name in CSR_ELEMENT.items()}
_ACTIVITY = element_id("activity")


class LockstepError(ValueError):
    """The lockstep driver asked for something the architecture does not allow (e.g. a disabled interrupt)."""


@dataclass(frozen=True)
class Override:
    """What a lockstep driver knows and the ISS cannot.

    ``interrupt``: take this interrupt (an mcause with bit 31 set) now, instead
    of executing an instruction. ``guest_time``: the guest's time is up here (the
    RTL core sent RUN at this boundary and it exited: the VMX-preemption timer or a
    window); the ISS sends RUN with the cycles its model needs. ``read_value``: the
    value rd receives when the instruction is a load from the timer region, an IN,
    or a CSR read of mcycle(h), cycle(h) or mip; ignored by every other instruction.
    """

    interrupt: int | None = None
    read_value: int | None = None
    guest_time: bool = False

    @classmethod
    def from_rtl(cls, record: Retired) -> Override:
        """The override that lets the ISS reproduce the RTL's ``record``."""
        if record.interrupt:
            return cls(interrupt=record.trap)
        if record.insn == 0 and record.trap is None and record.vmx_status is not None:
            return cls(guest_time=True)
        return cls(read_value=record.rd_value if record.rd else None)


class StopReason(Enum):
    PASS = "pass"  # the finisher got 0x5555
    FAIL = "fail"  # the finisher got (code << 16) | 0x3333
    LIMIT = "limit"  # max_instructions records without the finisher


@dataclass(frozen=True)
class RunResult:
    """How a run ended: the UART's output, records executed, the finisher's code (None without one)."""

    console: str
    instructions: int
    exit_code: int | None
    reason: StopReason
    #: Formatted trace lines, when the run was asked to keep them.
    trace: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.reason == StopReason.PASS


class _Trap(Exception):
    """Raised by an instruction that traps; nothing it would have changed has changed."""

    def __init__(self, cause: int, tval: int, vmx_status: Status | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.tval = tval
        self.vmx_status = vmx_status


class _Moved(Exception):
    """Raised by a request after which the core continues elsewhere (a VM entry, exit or failed entry):
    the instruction retires with ``status`` and nothing else, and the core goes on at ``pc``."""

    def __init__(self, pc: int, status: Status) -> None:
        super().__init__(pc)
        self.pc = pc
        self.status = status


class _Decoded:
    """An instruction word split into what its handler needs (cached per word)."""

    __slots__ = ("handler", "rd", "rs1", "rs2", "imm", "funct3", "funct7", "custom")

    def __init__(self, handler: Callable, rd: int = 0, rs1: int = 0, rs2: int = 0, imm: int = 0, funct3: int = 0,
                 funct7: int = 0, custom: Instruction | None = None) -> None:  # fmt: skip
        self.handler = handler
        self.rd = rd
        self.rs1 = rs1
        self.rs2 = rs2
        self.imm = imm
        self.funct3 = funct3
        self.funct7 = funct7
        self.custom = custom


def _sext(value: int, bits: int) -> int:
    """Sign-extend the low ``bits`` of ``value`` to 32 bits (as an unsigned 32-bit integer)."""
    sign = 1 << (bits - 1)
    return (((value & (2 * sign - 1)) ^ sign) - sign) & _M32


def _signed(value: int) -> int:
    return value - (1 << 32) if value & (1 << 31) else value


class Iss:
    """The vmxu core in Python: registers, CSRs, RAM, devices and the VMX unit's model.

    Members
    -------
    x : list[int]
        x0..x31 (unsigned 32-bit).
    pc : int
    ram : SystemRam
        The RAM, also the VMX unit's memory.
    vmx : VmxModel
        The VMX unit (its RFLAGS is the ``xflags`` CSR).
    timer, finisher, uart, post, smi : the devices (sim.iss.devices).
    external_interrupt : bool
        The external-interrupt line (MEIP).
    lockstep : bool
        Interrupts and unpredictable reads come from ``Override`` (module docstring).
    records : int
        Records produced so far (instructions, trapped or not, and interrupts).
    """

    def __init__(
        self,
        image: bytes | Mapping[int, bytes] = b"",
        *,
        ram: Region = RAM,
        reset_vector: int = 0,
        lockstep: bool = False,
        cpuid_leaves: Mapping[int, tuple[int, int, int, int]] = CPUID_LEAVES,
        guests: bool = False,
    ) -> None:
        if reset_vector & 3:
            raise ValueError(f"the reset vector {reset_vector:#x} is not a multiple of 4")
        self.ram = SystemRam(ram, alias=guests)
        segments = {ram.base: image} if isinstance(image, bytes | bytearray) else image
        for addr, data in segments.items():
            self.ram.load_image(addr, bytes(data))
        # The SoC's core does not run guests yet (its VMLAUNCH/VMRESUME trap with cause 25 after the
        # checks); ``guests=True`` runs them as docs/guests.md says (sim/iss/guests.py).
        self.vmx = VmxModel(self.ram, transitions=guests)
        self.timer = Timer()
        self.finisher = Finisher()
        self.uart = Uart16550()
        self.post = PostPort()
        self.smi = SmiPort()
        self.ports = PortBus(self.uart, self.post, self.smi)
        self.cpuid_leaves = dict(cpuid_leaves)
        self.lockstep = lockstep
        self.external_interrupt = False

        self.x = [0] * 32
        self.pc = reset_vector
        self.mstatus = MSTATUS_MPP_M  # only MIE and MPIE change
        self.mie = 0
        self.mtvec = 0
        self.mscratch = 0
        self.mepc = 0
        self.mcause = 0
        self.mtval = 0
        self.mcycle = 0
        self.minstret = 0
        self.xhi = 0
        self.records = 0
        self.guests = Guests(self, {"mstatus": MSTATUS_MPP_M, "mepc": 0, "mcause": 0, "mtval": 0, "mscratch": 0})
        #: The core's SMM mode (docs/smm-soc.md): the SoC with guests only, whose unit has SMM.
        self.smm = CoreSmm(self) if guests else None

        self._decoded: dict[int, _Decoded] = {}
        self._read_override: int | None = None
        self._mcycle_written = False
        self._minstret_written = False

    # -- what a program leaves behind ----------------------------------------------

    @property
    def console(self) -> str:
        """Everything written to the UART's THR, as text."""
        return self.uart.console.decode("utf-8", errors="replace")

    @property
    def mip(self) -> int:
        return (MIP_MTIP if self.timer.pending else 0) | (MIP_MEIP if self.external_interrupt else 0)

    def set_external_interrupt(self, level: bool) -> None:
        """Drive the external-interrupt line (MEIP follows it)."""
        self.external_interrupt = level

    # -- stepping ------------------------------------------------------------------

    def step(self, override: Override | None = None) -> Retired:
        """Execute one instruction (or take an interrupt) and return its trace record."""
        self._mcycle_written = self._minstret_written = False
        if self.guests.injection is not None:
            record = self.guests.inject()
        elif self.smm is not None and self.smm.latched is not None:
            record = self.smm.take()
        elif override is not None and override.interrupt is not None:
            record = self._inject(override.interrupt)
        elif override is not None and override.guest_time:
            record = self._guest_time_exit(self._cycles_to_expiry()) or Retired(pc=self.pc, insn=0)
        elif not self.lockstep and self.vmx.non_root and (exited := self._guest_time_exit()) is not None:
            record = exited
        elif not self.lockstep and self.vmx.non_root and (exited := self._interrupt_exit()) is not None:
            record = exited
        elif not self.lockstep and not self.vmx.in_smm and (cause := self.pending_interrupt()) is not None:
            record = self._take_interrupt(cause)
        else:
            self._read_override = None if override is None else override.read_value
            record = self._execute()
            self._read_override = None
        if not self._mcycle_written:
            self.mcycle = (self.mcycle + 1) & _U64
        self.records += 1
        return record

    def implements(self, word: int) -> bool:
        """Whether ``word`` decodes as an instruction of the core (RV32I, Zicsr, the privileged four,
        custom-0); any other word raises illegal instruction. A CSR instruction naming an unknown CSR
        decodes but still raises illegal instruction when executed."""
        return self._decode(word).handler != self._illegal

    def inject_interrupt(self, cause: int) -> Retired:
        """Take interrupt ``cause`` now (lockstep: the RTL took it here); its record."""
        return self.step(Override(interrupt=cause))

    def pending_interrupt(self) -> int | None:
        """The interrupt the core would take before its next instruction, or None."""
        if not self.mstatus & MSTATUS_MIE:
            return None
        pending = self.mip & self.mie
        if pending & MIP_MEIP:
            return int(TrapCause.MACHINE_EXTERNAL_INTERRUPT)
        if pending & MIP_MTIP:
            return int(TrapCause.MACHINE_TIMER_INTERRUPT)
        return None

    def run(self, max_instructions: int, *, on_retire: Callable[[Retired], None] | None = None) -> RunResult:
        """Step until the finisher stops the run or ``max_instructions`` records; ``on_retire`` sees each record."""
        start = self.records
        while self.finisher.stop is None and self.records - start < max_instructions:
            record = self.step()
            if on_retire is not None:
                on_retire(record)
        stop = self.finisher.stop
        if stop is None:
            reason, code = StopReason.LIMIT, None
        else:
            reason = StopReason.PASS if stop.result == FinisherResult.PASS else StopReason.FAIL
            code = stop.code
        return RunResult(self.console, self.records - start, code, reason)

    def _cycles_to_expiry(self) -> int:
        """Lockstep: enough cycles for the model's VMX-preemption timer to count down to zero (a window exits
        whatever the cycles). The RTL's clock is not the ISS's: the RTL core says when."""
        rate = VMX_MISC.preemption_timer_rate
        return (self.vmx.preemption_timer + 1) << rate

    def _guest_time_exit(self, cycles: int = 1) -> Retired | None:
        """In a guest, each instruction boundary is a cycle of the guest's time for the unit (RUN): the
        VMX-preemption timer counts it down and exits at zero (52), interrupt-window exiting exits once
        RFLAGS.IF allows (7). Its record if it exits: insn 0 at the boundary, as an interrupt's."""
        pc = self.pc
        try:
            self._request(pc, Op.RUN, value=cycles)
        except _Moved as moved:
            self.pc = moved.pc
            return Retired(pc=pc, insn=0, vmx_status=moved.status)
        return None

    def _interrupt_exit(self, cause: int | None = None) -> Retired | None:
        """In a guest, a pending interrupt (``cause``, or the one pending and enabled in mie) is an external
        interrupt for the unit, whatever the guest's mstatus.MIE (x86: "external-interrupt exiting" exits
        whatever RFLAGS.IF): its record if it exits."""
        if cause is None:
            if self.vmx.in_smm:  # in SMM the core sends no interrupt to the unit (docs/smm-soc.md)
                return None
            pending = self.mip & self.mie
            causes = [c for c in (TrapCause.MACHINE_EXTERNAL_INTERRUPT, TrapCause.MACHINE_TIMER_INTERRUPT)]
            cause = next((c for c in causes if pending & 1 << Mcause.from_bits(int(c)).code), None)
            if cause is None:
                return None
        cause = TrapCause(cause)
        pc = self.pc
        try:
            self._request(pc, Op.INTERRUPT, INTERRUPT_VECTORS[cause])
        except _Moved as moved:
            self.pc = moved.pc
            return Retired(pc=pc, insn=0, trap=int(cause), vmx_status=moved.status)
        return None

    def _inject(self, cause: int) -> Retired:
        mcause = Mcause.from_bits(cause)
        if not mcause.interrupt:
            raise LockstepError(f"{cause:#x} is not an interrupt cause")
        if self.vmx.non_root and (exited := self._interrupt_exit(cause)) is not None:
            return exited
        if not self.mstatus & MSTATUS_MIE or not self.mie & 1 << mcause.code:
            mie = Mstatus.from_bits(self.mstatus).mie
            raise LockstepError(f"interrupt {cause:#x} taken with mstatus.MIE = {mie} and mie = {self.mie:#x}")
        return self._take_interrupt(cause)

    def _take_interrupt(self, cause: int) -> Retired:
        pc = self.pc
        self.enter_trap(pc, cause, 0)
        return Retired(pc=pc, insn=0, trap=cause)

    def enter_trap(self, pc: int, cause: int, tval: int) -> None:
        """Take a trap in the current mode's bank: mepc, mcause, mtval, mstatus; continue at mtvec."""
        self.mepc = pc & ~3
        self.mcause = cause
        self.mtval = tval
        mie = self.mstatus & MSTATUS_MIE
        self.mstatus = MSTATUS_MPP_M | (MSTATUS_MPIE if mie else 0)
        self.pc = self.mtvec

    def _execute(self) -> Retired:
        pc = self.pc
        if not self.ram.contains(self.ram.physical(pc), 4):
            return self._trap(pc, 0, int(TrapCause.INSTRUCTION_ACCESS_FAULT), pc, None)
        word = _M32 if self.smm is not None and self.smm.closed(pc) else self.ram.load(self.ram.physical(pc), 4)
        d = self._decoded.get(word)
        if d is None:
            d = self._decoded[word] = self._decode(word)
        try:
            next_pc, value, store, vmx_status = d.handler(pc, word, d)
        except _Trap as trap:
            return self._trap(pc, word, int(trap.cause), trap.tval, trap.vmx_status)
        except _Moved as moved:
            self.pc = moved.pc
            if not self._minstret_written:
                self.minstret = (self.minstret + 1) & _U64  # the instruction retired (before the move)
            return Retired(pc=pc, insn=word, vmx_status=moved.status)
        rd = d.rd if value is not None else 0
        if rd:
            self.x[rd] = value
        self.pc = next_pc
        if not self._minstret_written:
            self.minstret = (self.minstret + 1) & _U64
        if not self.lockstep:
            self.timer.mtime = (self.timer.mtime + 1) & _U64
        return Retired(pc=pc, insn=word, rd=rd, rd_value=value if rd else 0, vmx_status=vmx_status, store=store)

    def _trap(self, pc: int, word: int, cause: int, tval: int, vmx_status: Status | None) -> Retired:
        """A synchronous trap; in a guest first an x86 exception for the unit, which may exit (docs/guests.md)."""
        exception = GUEST_EXCEPTIONS.get(cause) if self.vmx.non_root else None
        if exception is not None:
            try:
                self._request(pc, Op.EXCEPTION, exception.vector, exception.error_code or 0)
            except _Moved as moved:
                self.pc = moved.pc
                return Retired(pc=pc, insn=word, trap=cause, vmx_status=moved.status)
        self.enter_trap(pc, cause, tval)
        return Retired(pc=pc, insn=word, trap=cause, vmx_status=vmx_status)

    def _request(self, pc: int, op: Op, index: int = 0, value: int = 0, **operands):  # noqa: ANN202 - Outcome
        """A request to the VMX unit by the instruction at ``pc`` (a 4-byte instruction, 32-bit operands);
        in a guest the unit sees the core's RIP, RSP and IDTR.base first. _Moved when the processor moved
        between host and guest."""
        if self.vmx.non_root or op == Op.VMCALL and self.smm is not None:
            self.guests.save(pc)  # VMCALL in root operation may exit to the STM (docs/smm-soc.md)
        outcome = self.vmx.execute(op, index, value, OperandSize.S32, length=4, **operands)
        if outcome.status in TRANSITIONS:
            raise _Moved(self.guests.move(outcome), outcome.status)
        return outcome

    # -- decoding ------------------------------------------------------------------

    def _decode(self, word: int) -> _Decoded:
        """Split ``word``; an encoding the core does not implement gets the illegal-instruction handler."""
        opcode = word & 0x7F
        rd = (word >> 7) & 31
        funct3 = (word >> 12) & 7
        rs1 = (word >> 15) & 31
        rs2 = (word >> 20) & 31
        funct7 = word >> 25
        illegal = _Decoded(self._illegal)
        match opcode:
            case 0b011_0111:
                return _Decoded(self._lui, rd, imm=word & 0xFFFF_F000)
            case 0b001_0111:
                return _Decoded(self._auipc, rd, imm=word & 0xFFFF_F000)
            case 0b110_1111:
                imm = (word >> 31 & 1) << 20 | (word >> 12 & 0xFF) << 12
                imm |= (word >> 20 & 1) << 11 | (word >> 21 & 0x3FF) << 1
                return _Decoded(self._jal, rd, imm=_sext(imm, 21))
            case 0b110_0111:
                if funct3:
                    return illegal
                return _Decoded(self._jalr, rd, rs1, imm=_sext(word >> 20, 12))
            case 0b110_0011:
                if funct3 in (2, 3):
                    return illegal
                imm = (word >> 31 & 1) << 12 | (word >> 7 & 1) << 11 | (word >> 25 & 0x3F) << 5 | (word >> 8 & 0xF) << 1
                return _Decoded(self._branch, 0, rs1, rs2, _sext(imm, 13), funct3)
            case 0b000_0011:
                if funct3 in (3, 6, 7):
                    return illegal
                return _Decoded(self._load, rd, rs1, imm=_sext(word >> 20, 12), funct3=funct3)
            case 0b010_0011:
                if funct3 > 2:
                    return illegal
                imm = (word >> 25) << 5 | (word >> 7 & 31)
                return _Decoded(self._store, 0, rs1, rs2, _sext(imm, 12), funct3)
            case 0b001_0011:
                if funct3 == 1 and funct7 != 0 or funct3 == 5 and funct7 not in (0, 0x20):
                    return illegal
                return _Decoded(self._op_imm, rd, rs1, rs2, _sext(word >> 20, 12), funct3, funct7)
            case 0b011_0011:
                if funct7 not in (0, 0x20) or funct7 == 0x20 and funct3 not in (0, 5):
                    return illegal
                return _Decoded(self._op, rd, rs1, rs2, funct3=funct3, funct7=funct7)
            case 0b000_1111:
                return _Decoded(self._fence) if funct3 in (0, 1) else illegal
            case 0b111_0011:
                if funct3 == 0:
                    handler = {
                        SystemInstruction.ECALL.value: self._ecall,
                        SystemInstruction.EBREAK.value: self._ebreak,
                        SystemInstruction.MRET.value: self._mret,
                        SystemInstruction.WFI.value: self._wfi,
                    }.get(word)
                    return illegal if handler is None else _Decoded(handler)
                if funct3 == 4:
                    return illegal
                return _Decoded(self._csr, rd, rs1, imm=word >> 20, funct3=funct3)
            case 0b000_1011:
                custom = decode(word)
                if custom is None:
                    return illegal
                return _Decoded(self._custom0, rd, rs1, rs2, funct3=funct3, funct7=funct7, custom=custom)
        return illegal

    # -- RV32I ---------------------------------------------------------------------

    def _illegal(self, pc: int, word: int, d: _Decoded) -> tuple:
        raise _Trap(TrapCause.ILLEGAL_INSTRUCTION, word)

    def _lui(self, pc: int, word: int, d: _Decoded) -> tuple:
        return pc + 4, d.imm, None, None

    def _auipc(self, pc: int, word: int, d: _Decoded) -> tuple:
        return pc + 4, (pc + d.imm) & _M32, None, None

    def _jal(self, pc: int, word: int, d: _Decoded) -> tuple:
        target = (pc + d.imm) & _M32
        if target & 3:
            raise _Trap(TrapCause.INSTRUCTION_MISALIGNED, target)
        return target, (pc + 4) & _M32, None, None

    def _jalr(self, pc: int, word: int, d: _Decoded) -> tuple:
        target = (self.x[d.rs1] + d.imm) & _M32 & ~1
        if target & 3:
            raise _Trap(TrapCause.INSTRUCTION_MISALIGNED, target)
        return target, (pc + 4) & _M32, None, None

    def _branch(self, pc: int, word: int, d: _Decoded) -> tuple:
        a, b = self.x[d.rs1], self.x[d.rs2]
        match d.funct3:
            case 0:
                taken = a == b
            case 1:
                taken = a != b
            case 4:
                taken = _signed(a) < _signed(b)
            case 5:
                taken = _signed(a) >= _signed(b)
            case 6:
                taken = a < b
            case _:
                taken = a >= b
        if not taken:
            return pc + 4, None, None, None
        target = (pc + d.imm) & _M32
        if target & 3:
            raise _Trap(TrapCause.INSTRUCTION_MISALIGNED, target)
        return target, None, None, None

    def _load(self, pc: int, word: int, d: _Decoded) -> tuple:
        addr = (self.x[d.rs1] + d.imm) & _M32
        size = 1 << (d.funct3 & 3)
        value, unpredictable = self._read(addr, size)
        if not d.funct3 & 4 and size < 4:
            value = _sext(value, 8 * size)
        if unpredictable and self._read_override is not None:
            value = self._read_override & _M32
        return pc + 4, value, None, None

    def _store(self, pc: int, word: int, d: _Decoded) -> tuple:
        addr = (self.x[d.rs1] + d.imm) & _M32
        size = 1 << d.funct3
        value = self.x[d.rs2] & ((1 << (8 * size)) - 1)
        return pc + 4, None, self._write(addr, size, value), None

    def _op_imm(self, pc: int, word: int, d: _Decoded) -> tuple:
        a, imm = self.x[d.rs1], d.imm
        match d.funct3:
            case 0:
                r = a + imm
            case 2:
                r = int(_signed(a) < _signed(imm))
            case 3:
                r = int(a < imm)
            case 4:
                r = a ^ imm
            case 6:
                r = a | imm
            case 7:
                r = a & imm
            case 1:
                r = a << d.rs2
            case _:
                r = _signed(a) >> d.rs2 if d.funct7 else a >> d.rs2
        return pc + 4, r & _M32, None, None

    def _op(self, pc: int, word: int, d: _Decoded) -> tuple:
        a, b = self.x[d.rs1], self.x[d.rs2]
        match d.funct3:
            case 0:
                r = a - b if d.funct7 else a + b
            case 1:
                r = a << (b & 31)
            case 2:
                r = int(_signed(a) < _signed(b))
            case 3:
                r = int(a < b)
            case 4:
                r = a ^ b
            case 5:
                r = _signed(a) >> (b & 31) if d.funct7 else a >> (b & 31)
            case 6:
                r = a | b
            case _:
                r = a & b
        return pc + 4, r & _M32, None, None

    def _fence(self, pc: int, word: int, d: _Decoded) -> tuple:
        return pc + 4, None, None, None

    # -- memory ----------------------------------------------------------------

    def _read(self, addr: int, size: int) -> tuple[int, bool]:
        """A load's raw value, and whether it came from a device only the RTL can know (the timer)."""
        if addr & (size - 1):
            raise _Trap(TrapCause.LOAD_MISALIGNED, addr)
        if self.ram.contains(self.ram.physical(addr), size):
            if self.smm is not None and self.smm.closed(addr):
                return (1 << (8 * size)) - 1, False  # SMRAM or MSEG, closed to this access: all ones
            return self.ram.load(self.ram.physical(addr), size), False
        if FINISHER.contains(addr, size):
            return 0, False
        if TIMER.contains(addr, size):
            offset = addr - TIMER.base
            word = self.timer.read_word(offset & ~3)
            return (word >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1), True
        raise _Trap(TrapCause.LOAD_ACCESS_FAULT, addr)

    def _write(self, addr: int, size: int, value: int) -> Store:
        if addr & (size - 1):
            raise _Trap(TrapCause.STORE_MISALIGNED, addr)
        lane = addr & 3
        store = Store(addr, (value << (8 * lane)) & _M32, ((1 << size) - 1) << lane)
        if self.ram.contains(self.ram.physical(addr), size):
            if self.smm is None or not self.smm.closed(addr):  # a store to closed SMRAM or MSEG is dropped
                self.ram.store(self.ram.physical(addr), size, value)
        elif FINISHER.contains(addr, size):
            self.finisher.write_word((addr & ~3) - FINISHER.base, store.data, store.mask)
        elif TIMER.contains(addr, size):
            self.timer.write_word((addr & ~3) - TIMER.base, store.data, store.mask)
        else:
            raise _Trap(TrapCause.STORE_ACCESS_FAULT, addr)
        return store

    # -- privileged instructions -----------------------------------------------------

    def _ecall(self, pc: int, word: int, d: _Decoded) -> tuple:
        raise _Trap(TrapCause.ECALL_M, 0)

    def _ebreak(self, pc: int, word: int, d: _Decoded) -> tuple:
        raise _Trap(TrapCause.BREAKPOINT, pc)

    def _mret(self, pc: int, word: int, d: _Decoded) -> tuple:
        mpie = self.mstatus & MSTATUS_MPIE
        self.mstatus = MSTATUS_MPP_M | MSTATUS_MPIE | (MSTATUS_MIE if mpie else 0)
        return self.mepc, None, None, None

    def _wfi(self, pc: int, word: int, d: _Decoded) -> tuple:
        if self.vmx.non_root:
            # HLT for the unit ("HLT exiting"); a guest that goes on waits as WFI does, active for the unit.
            self._request(pc, Op.HLT)
            self._request(pc, Op.SET, _ACTIVITY, 0)
        # Architecturally a no-op. Standalone, waiting for the timer is skipping to its compare value.
        # (mtimecmp all ones: the timer never fires, and WFI is left a no-op.)
        timer = self.timer
        if not self.lockstep and not self.mip & self.mie and self.mie & MIP_MTIP and timer.mtimecmp != _U64:
            timer.mtime = max(timer.mtime, timer.mtimecmp)
        return pc + 4, None, None, None

    # -- Zicsr -----------------------------------------------------------------------

    def _csr(self, pc: int, word: int, d: _Decoded) -> tuple:
        csr = d.imm
        operand = self.x[d.rs1] if d.funct3 < 4 else d.rs1  # rs1 field is the immediate of the i-forms
        kind = d.funct3 & 3  # 1 RW, 2 RS, 3 RC
        writes = kind == 1 or d.rs1 != 0
        if csr not in _KNOWN_CSRS or writes and csr in _READ_ONLY_CSRS:
            raise _Trap(TrapCause.ILLEGAL_INSTRUCTION, word)
        if csr in _X86_CSR_ELEMENT:
            return self._x86_csr(pc, word, d, _X86_CSR_ELEMENT[csr], kind, operand, writes)
        old = self._guest_tsc(pc, csr) if self.vmx.non_root and csr in TSC_CSRS else self._csr_read(csr)
        if writes:
            self._csr_write(csr, operand if kind == 1 else old | operand if kind == 2 else old & ~operand)
        return pc + 4, old, None, None

    def _guest_tsc(self, pc: int, csr: int) -> int:
        """A guest's read of the cycle counter is RDTSC for the unit: "RDTSC exiting" (16), or the counter
        plus the TSC offset with "use TSC offsetting" (docs/guests.md). The unit's TSC is the core's mcycle."""
        self.vmx.advance_tsc((self.mcycle - self.vmx.tsc) & _U64)
        tsc = self._request(pc, Op.RDTSC).value
        if self._read_override is not None:  # in lockstep: the RTL's clock, which only the RTL knows
            return self._read_override & _M32
        return tsc >> 32 if csr in TSC_HIGH_CSRS else tsc & _M32

    def _x86_csr(self, pc: int, word: int, d: _Decoded, element: int, kind: int, operand: int, writes: bool) -> tuple:
        """xcr0/3/4, xflags: a GET of bits 31:0, a SET of the new value zero-extended; #GP when refused."""
        old = self._unit_ok(self._request(pc, Op.GET, element, gpr=d.rd & 15), word) & _M32
        if writes:
            new = operand if kind == 1 else old | operand if kind == 2 else old & ~operand & _M32
            self._unit_ok(self._request(pc, Op.SET, element, new, gpr=d.rs1 & 15), word)
        return pc + 4, old, None, None

    def _unit_ok(self, outcome, word: int) -> int:  # noqa: ANN001 - sim.model.Outcome
        if outcome.status == Status.FAULT:
            raise _Trap(VECTOR_TO_CAUSE[outcome.vector], word)
        return outcome.value or 0

    def _csr_read(self, csr: int) -> int:
        if csr in _UNPREDICTABLE_CSRS and self._read_override is not None:
            return self._read_override & _M32
        match csr:
            case Csr.MSTATUS:
                return self.mstatus
            case Csr.MISA:
                return MISA
            case Csr.MIE:
                return self.mie
            case Csr.MTVEC:
                return self.mtvec
            case Csr.MSCRATCH:
                return self.mscratch
            case Csr.MEPC:
                return self.mepc
            case Csr.MCAUSE:
                return self.mcause
            case Csr.MTVAL:
                return self.mtval
            case Csr.MIP:
                return self.mip
            case Csr.MCYCLE | Csr.CYCLE:
                return self.mcycle & _M32
            case Csr.MCYCLEH | Csr.CYCLEH:
                return self.mcycle >> 32
            case Csr.MINSTRET | Csr.INSTRET:
                return self.minstret & _M32
            case Csr.MINSTRETH | Csr.INSTRETH:
                return self.minstret >> 32
            case Csr.XHI:
                return self.xhi
        return 0  # mvendorid, marchid, mimpid, mhartid

    def _csr_write(self, csr: int, value: int) -> None:
        match csr:
            case Csr.MSTATUS:
                self.mstatus = MSTATUS_MPP_M | (value & (MSTATUS_MIE | MSTATUS_MPIE))
            case Csr.MIE:
                self.mie = value & MIE_WRITABLE
            case Csr.MTVEC:
                self.mtvec = value & ~3
            case Csr.MSCRATCH:
                self.mscratch = value
            case Csr.MEPC:
                self.mepc = value & ~3
            case Csr.MCAUSE:
                self.mcause = value & MCAUSE_WRITABLE
            case Csr.MTVAL:
                self.mtval = value
            # The write takes precedence over this instruction's own increment (vol. I 10.1).
            case Csr.MCYCLE:
                self.mcycle = (self.mcycle & ~_M32 & _U64) | value
                self._mcycle_written = True
            case Csr.MCYCLEH:
                self.mcycle = (self.mcycle & _M32) | value << 32
                self._mcycle_written = True
            case Csr.MINSTRET:
                self.minstret = (self.minstret & ~_M32 & _U64) | value
                self._minstret_written = True
            case Csr.MINSTRETH:
                self.minstret = (self.minstret & _M32) | value << 32
                self._minstret_written = True
            case Csr.XHI:
                self.xhi = value
            # misa and mip: writes ignored.

    # -- the VMX extension (custom-0) ----------------------------------------------------

    def _custom0(self, pc: int, word: int, d: _Decoded) -> tuple:
        insn = d.custom
        x = self.x
        match insn.group:
            case Group.VMX:
                value, status = self._vmx_instruction(pc, insn, word, d)
                return pc + 4, value, None, status
            case Group.MSR:
                if insn.unit_op == Op.RDMSR:
                    outcome = self._request(pc, Op.RDMSR, x[d.rs1])
                    self._unit_trap(outcome, word)
                    self.xhi = outcome.value >> 32
                    return pc + 4, outcome.value & _M32, None, outcome.status
                outcome = self._request(pc, Op.WRMSR, x[d.rs1], self.xhi << 32 | x[d.rs2])
                self._unit_trap(outcome, word)
                return pc + 4, None, None, outcome.status
            case Group.CPUID:
                if self.vmx.non_root:
                    self._request(pc, Op.CPUID, x[d.rs1], x[d.rs2])  # exits unconditionally (SDM 25.1.2)
                registers = self.cpuid_leaves.get(x[d.rs1], (0, 0, 0, 0))
                return pc + 4, registers[x[d.rs2] & 3], None, None
            case Group.IN:
                size = IoSize(d.funct7).bytes
                if self.vmx.non_root:
                    self._request(pc, Op.IN, x[d.rs1] & 0xFFFF, io_size=size)
                value = self.ports.read(x[d.rs1] & 0xFFFF, size)
                if self._read_override is not None:
                    value = self._read_override & _M32
                return pc + 4, value, None, None
            case Group.OUT:
                size = IoSize(d.funct7).bytes
                if self.vmx.non_root:
                    self._request(pc, Op.OUT, x[d.rs1] & 0xFFFF, x[d.rs2] & ((1 << (8 * size)) - 1), io_size=size)
                self.ports.write(x[d.rs1] & 0xFFFF, size, x[d.rs2] & ((1 << (8 * size)) - 1))
                if self.smm is not None:
                    self.smm.out(x[d.rs1] & 0xFFFF, size)
                return pc + 4, None, None, None
        if self.smm is None:  # RSM: the core without guests has no SMM (x86 #UD)
            raise _Trap(TrapCause.ILLEGAL_INSTRUCTION, word)
        outcome = self._request(pc, Op.RSM)  # an exit (17) moves the core in _request
        self._unit_trap(outcome, word)
        raise _Moved(self.guests.move(outcome), outcome.status)  # the default treatment's return

    def _vmx_instruction(self, pc: int, insn: Instruction, word: int, d: _Decoded) -> tuple[int | None, Status]:
        """A VMX instruction as a 32-bit-operand request: rd's new value (None unless a VMREAD/VMPTRST
        succeeded) and the outcome's status."""
        x = self.x
        index = value = 0
        if insn.rs1 == Operand.ADDR_LOW:
            value = x[d.rs2] << 32 | x[d.rs1]
        elif insn.rs1 == Operand.FIELD:
            index = x[d.rs1]
            if insn.rs2 == Operand.VALUE:
                value = x[d.rs2]
        outcome = self._request(pc, insn.unit_op, index, value)
        self._unit_trap(outcome, word)
        if outcome.status == Status.SUCCEED and insn.rd == Operand.RESULT:
            return outcome.value & _M32, outcome.status
        return None, outcome.status

    def _unit_trap(self, outcome, word: int) -> None:  # noqa: ANN001 - sim.model.Outcome
        """A FAULT becomes #UD/#GP, ENTRY_NOT_IMPLEMENTED cause 25; mtval is the instruction word.
        (Entries and exits never come here: ``_request`` raises _Moved for them.)"""
        match outcome.status:
            case Status.FAULT:
                raise _Trap(VECTOR_TO_CAUSE[outcome.vector], word, outcome.status)
            case Status.ENTRY_NOT_IMPLEMENTED:
                raise _Trap(TrapCause.ENTRY_NOT_IMPLEMENTED, word, outcome.status)
