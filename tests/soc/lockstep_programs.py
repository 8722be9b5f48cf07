"""Programs that exercise the whole core, for the SoC-versus-ISS lockstep run.

Lockstep compares every retired instruction (pc, word, destination and value,
trap cause, VMX outcome, store), so a program needs no self-checks of its own:
it only has to make the core do every kind of thing, with operands at the
edges. Each program installs a trap handler that skips the trapping
instruction, so traps are exercised in the middle of a program, and ends with
the finisher's pass (docs/cpu.md, rtl/arch/soc.py).
"""

import random
from collections.abc import Callable

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.isa import Csr
from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, IO_PORTS, TIMER_MTIME, TIMER_MTIMECMP
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program, li

__all__ = ["PROGRAMS", "random_program", "build"]

EDGES = (0, 1, 2, 0x7FF, 0x800, 0x7FFF_FFFF, 0x8000_0000, 0x8000_0001, 0xFFFF_FFFF, 0xFFFF_FFFE, 0xAAAA_5555)
DATA = 0x8000  # scratch data in RAM
DATA_BYTES = 0x900
UART = next(p.base for p in IO_PORTS if p.name == "uart")
POST = next(p.base for p in IO_PORTS if p.name == "post")
#: Registers the trap handler uses (the programs leave them alone).
HANDLER = (29, 30, 31)


def _scaffold(body: Callable[[Program], None]) -> Program:
    """Registers and the data area to 0 (neither is reset: RAM keeps what an earlier program left), mtvec :=
    handler; body; pass. The handler skips the trapping instruction (mepc += 4) unless it is an interrupt
    (mcause bit 31), in which case it returns to mepc and masks the interrupt source."""
    p = Program()
    p.emit(*[asm.addi(r, 0, 0) for r in range(1, 32)])
    p.emit(li(5, DATA), li(6, DATA + DATA_BYTES))
    p.label("clear")
    p.emit(asm.sw(0, 0, 5), asm.addi(5, 5, 4))
    p.branch("bltu", 5, 6, "clear")
    p.la(31, "handler")
    p.emit(asm.csrw("mtvec", 31))
    body(p)
    p.emit(li(30, FINISHER.base), li(31, FINISHER_PASS), asm.sw(31, 0, 30))
    p.label("spin")
    p.jal(0, "spin")
    p.label("handler")
    p.emit(asm.csrr(29, "mcause"))
    p.branch("blt", 29, 0, "interrupt")  # bit 31 set: an interrupt
    p.emit(asm.csrr(30, "mepc"), asm.addi(30, 30, 4), asm.csrw("mepc", 30), asm.mret())
    p.label("interrupt")
    # Silence the source: timer -> mtimecmp all ones; anything else -> clear mie.
    p.emit(li(30, TIMER_MTIMECMP), li(31, 0xFFFF_FFFF), asm.sw(31, 0, 30), asm.sw(31, 4, 30))
    p.emit(asm.csrw("mie", 0), asm.mret())
    return p


def _alu(p: Program) -> None:
    ops = ("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or_", "and_")
    for a in EDGES:
        for b in EDGES[::2]:
            p.emit(li(10, a), li(11, b))
            for name in ops:
                p.emit(getattr(asm, name)(12, 10, 11))
    p.emit(asm.add(0, 10, 11), asm.sub(0, 10, 11))  # x0 stays 0


def _immediates(p: Program) -> None:
    for a in EDGES:
        p.emit(li(10, a))
        for imm in (-2048, -1, 0, 1, 2047):
            for name in ("addi", "slti", "sltiu", "xori", "ori", "andi"):
                p.emit(getattr(asm, name)(12, 10, imm))
        for shamt in (0, 1, 15, 31):
            for name in ("slli", "srli", "srai"):
                p.emit(getattr(asm, name)(12, 10, shamt))
    for imm20 in (0, 1, 0x80000, 0xFFFFF):
        p.emit(asm.lui(13, imm20), asm.auipc(14, imm20))


def _memory(p: Program) -> None:
    p.emit(li(20, DATA))
    for i, value in enumerate(EDGES):
        p.emit(li(10, value), asm.sw(10, 4 * i, 20), asm.sh(10, 64 + 2 * i, 20), asm.sb(10, 96 + i, 20))
    for offset in range(0, 4 * len(EDGES), 3):
        for name in ("lb", "lbu", "lh", "lhu", "lw"):
            size = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4}[name]
            aligned = offset - offset % size
            p.emit(getattr(asm, name)(12, aligned, 20))
    p.emit(li(21, DATA + 0x800), asm.lw(12, -4, 21), asm.sw(12, -8, 21), asm.lb(12, -1, 21))


def _branches(p: Program) -> None:
    pairs = ((0, 0), (1, 2), (2, 1), (0x8000_0000, 1), (1, 0x8000_0000), (0xFFFF_FFFF, 0))
    for n, (a, b) in enumerate(pairs):
        p.emit(li(10, a), li(11, b))
        for name in ("beq", "bne", "blt", "bge", "bltu", "bgeu"):
            label = f"{name}_{n}"
            p.branch(name, 10, 11, label)
            p.emit(asm.addi(12, 12, 1))  # skipped when taken
            p.label(label)
    # A backward branch: a loop of five.
    p.emit(li(10, 5))
    p.label("loop")
    p.emit(asm.addi(10, 10, -1))
    p.branch("bne", 10, 0, "loop")
    # JAL / JALR with links, JALR clears bit 0 of the target.
    p.jal(1, "sub1")
    p.la(5, "sub1")
    p.emit(asm.addi(5, 5, 1), asm.jalr(1, 0, 5))
    p.jal(0, "after_sub")
    p.label("sub1")
    p.emit(asm.addi(13, 13, 1), asm.jalr(0, 0, 1))
    p.label("after_sub")


def _csrs(p: Program) -> None:
    for csr in ("mscratch", "mtvec", "mie", "mstatus", "mepc", "mcause", "mtval"):
        p.emit(asm.csrr(10, csr), li(11, 0xFFFF_FFFF))
        p.emit(asm.csrrw(12, "mscratch", 11), asm.csrrs(12, "mscratch", 0), asm.csrrc(12, "mscratch", 11))
        if csr not in ("mtvec",):  # keep the handler reachable
            p.emit(asm.csrrw(12, csr, 11), asm.csrrs(12, csr, 0), asm.csrrc(12, csr, 11), asm.csrrw(0, csr, 10))
    p.la(31, "handler")
    p.emit(asm.csrw("mtvec", 31), asm.csrw("mstatus", 0), asm.csrw("mie", 0))
    p.emit(asm.csrrwi(12, "mscratch", 31), asm.csrrsi(12, "mscratch", 5), asm.csrrci(12, "mscratch", 1))
    for csr in ("misa", "mvendorid", "marchid", "mimpid", "mhartid", "instret", "instreth", "minstret"):
        p.emit(asm.csrr(12, csr))
    p.emit(asm.csrrw(12, "mhartid", 10))  # read-only: illegal
    p.emit(asm.csrrw(12, "cycle", 10), asm.csrrs(12, "instret", 10))  # read-only: illegal
    p.emit(asm.csrrs(12, 0x7FF, 0), asm.csrrw(12, 0x123, 10))  # unknown: illegal
    p.emit(li(10, 1000), asm.csrw("minstret", 10), asm.csrr(12, "minstret"), asm.csrr(12, "minstreth"))


def _traps(p: Program) -> None:
    p.emit(li(20, DATA + 1))
    p.emit(asm.lw(12, 0, 20), asm.lh(12, 0, 20), asm.sw(12, 0, 20), asm.sh(12, 0, 20))  # misaligned
    p.emit(asm.lb(12, 0, 20), asm.sb(12, 0, 20))  # bytes are never misaligned
    p.emit(asm.ecall(), asm.ebreak(), 0xFFFF_FFFF, 0x0000_0000)  # illegal words
    p.emit(li(20, 0x3000_0000), asm.lw(12, 0, 20), asm.sw(12, 0, 20))  # no memory there: access faults
    p.la(5, "misaligned_target")
    p.emit(asm.addi(5, 5, 2), asm.jalr(1, 0, 5))  # instruction-address-misaligned on the JALR
    p.emit(li(10, 1))
    p.branch("bne", 10, 0, "odd_branch")
    p.label("misaligned_target")
    p.emit(asm.nop())
    p.label("odd_branch")
    p.emit(asm.fence(), 0x0000_100F)  # FENCE, FENCE.I


def _interrupts(p: Program) -> None:
    # Timer interrupt: mtimecmp = mtime + 40, enable, spin until it arrives (the handler masks it).
    p.emit(li(20, TIMER_MTIME), asm.lw(10, 0, 20), asm.lw(11, 4, 20), asm.addi(10, 10, 40))
    p.emit(li(21, TIMER_MTIMECMP), asm.sw(11, 4, 21), asm.sw(10, 0, 21))
    p.emit(li(10, 1 << 7), asm.csrw("mie", 10), asm.csrsi("mstatus", 8))
    p.label("wait_timer")
    p.emit(asm.csrr(12, "mie"))
    p.branch("bne", 12, 0, "wait_timer")
    # WFI with the timer pending but MIE off: WFI returns, no trap.
    p.emit(asm.csrci("mstatus", 8), li(21, TIMER_MTIMECMP), asm.sw(0, 0, 21), asm.sw(0, 4, 21))
    p.emit(li(10, 1 << 7), asm.csrw("mie", 10), asm.wfi(), asm.csrw("mie", 0))
    p.emit(li(11, 0xFFFF_FFFF), asm.sw(11, 0, 21), asm.sw(11, 4, 21))


def _port_io(p: Program) -> None:
    p.emit(li(10, POST), li(11, 0xA5), asm.outb(10, 11), asm.inb(12, 10))
    p.emit(li(10, UART + 5), asm.inb(12, 10), li(10, UART + 7), li(11, 0x5A), asm.outb(10, 11), asm.inb(12, 10))
    p.emit(li(10, UART), li(11, ord("!")), asm.outb(10, 11))
    p.emit(li(10, 0x1234), asm.inb(12, 10), asm.inw(12, 10), asm.inl(12, 10), asm.outl(10, 11))  # nobody there
    for leaf in (0, 1, 7):
        p.emit(li(10, leaf))
        for register in range(4):
            p.emit(li(11, register), asm.cpuid(12, 10, 11))
    p.emit(asm.rsm())  # #UD outside SMM


def _vmx(p: Program) -> None:
    vmxon_region, vmcs = 0x4000, 0x5000
    p.emit(asm.vmxon(0, 0))  # #UD: CR4.VMXE = 0
    p.emit(li(10, msrs.IA32_FEATURE_CONTROL), li(11, 0), asm.csrw(Csr.XHI, 11), li(11, 5), asm.wrmsr(10, 11))
    p.emit(li(10, msrs.IA32_VMX_BASIC), asm.rdmsr(12, 10), asm.csrr(13, Csr.XHI))
    p.emit(li(10, 0x8000_0021), asm.csrw(Csr.XCR0, 10), li(10, 0x2000), asm.csrw(Csr.XCR4, 10))
    p.emit(asm.csrr(12, Csr.XCR0), asm.csrr(12, Csr.XCR4), asm.csrr(12, Csr.XFLAGS))
    p.emit(li(10, msrs.VMCS_REVISION_ID), li(11, vmxon_region), asm.sw(10, 0, 11), li(11, vmcs), asm.sw(10, 0, 11))
    p.emit(li(11, vmxon_region), asm.vmxon(11, 0), asm.csrr(12, Csr.XFLAGS))
    p.emit(li(11, vmcs), asm.vmclear(11, 0), asm.vmptrld(11, 0), asm.vmptrst(12))
    for name, value in (("GUEST_RIP", 0x1234_5678), ("GUEST_CS_SELECTOR", 0xFFFF_0008), ("EPT_POINTER", 0x5000)):
        p.emit(li(10, FIELD_BY_NAME[name].encoding), li(11, value), asm.vmwrite(10, 11), asm.vmread(12, 10))
    p.emit(li(10, 0x7FFE), asm.vmread(12, 10), asm.csrr(12, Csr.XFLAGS))  # error 12
    p.emit(li(10, FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding), asm.vmread(12, 10))
    p.emit(asm.vmlaunch(), asm.vmresume(), asm.vmcall(), asm.csrr(12, Csr.XFLAGS))
    p.emit(li(10, 0), asm.csrw(Csr.XCR4, 10))  # #GP: CR4.VMXE is fixed in VMX operation
    p.emit(li(11, vmcs), asm.vmclear(11, 0), asm.vmxoff(), asm.vmxoff())  # the second: #UD


PROGRAMS: dict[str, Callable[[Program], None]] = {
    "alu": _alu,
    "immediates": _immediates,
    "memory": _memory,
    "branches": _branches,
    "csrs": _csrs,
    "traps": _traps,
    "interrupts": _interrupts,
    "port_io": _port_io,
    "vmx": _vmx,
}


def random_program(seed: int, length: int = 400) -> Callable[[Program], None]:
    """A seeded random mix of ALU, immediate, load/store and forward-branch instructions."""

    def body(p: Program) -> None:
        rng = random.Random(seed)
        p.emit(li(20, DATA))
        for r in range(1, 16):
            p.emit(li(r, rng.choice(EDGES) ^ rng.getrandbits(32) * rng.getrandbits(1)))
        registers = list(range(1, 16))
        for n in range(length):
            kind = rng.random()
            rd, rs1, rs2 = rng.choice(registers), rng.choice(registers), rng.choice(registers)
            if kind < 0.35:
                name = rng.choice(("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or_", "and_"))
                p.emit(getattr(asm, name)(rd, rs1, rs2))
            elif kind < 0.6:
                name = rng.choice(("addi", "slti", "sltiu", "xori", "ori", "andi"))
                p.emit(getattr(asm, name)(rd, rs1, rng.randrange(-2048, 2048)))
            elif kind < 0.7:
                p.emit(getattr(asm, rng.choice(("slli", "srli", "srai")))(rd, rs1, rng.randrange(32)))
            elif kind < 0.8:
                size = rng.choice((1, 2, 4))
                offset = rng.randrange(0, 256, size)
                name = {1: "sb", 2: "sh", 4: "sw"}[size]
                p.emit(getattr(asm, name)(rs2, offset, 20))
            elif kind < 0.9:
                name = rng.choice(("lb", "lbu", "lh", "lhu", "lw"))
                size = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4}[name]
                p.emit(getattr(asm, name)(rd, rng.randrange(0, 256, size), 20))
            else:
                label = f"r{n}"
                p.branch(rng.choice(("beq", "bne", "blt", "bge", "bltu", "bgeu")), rs1, rs2, label)
                p.emit(asm.addi(rd, rd, 1))
                p.label(label)

    return body


def build(body: Callable[[Program], None]) -> bytes:
    """The image of a program: the scaffold around ``body``, little-endian words from address 0."""
    return b"".join(w.to_bytes(4, "little") for w in _scaffold(body).words())
