"""The core's machine-mode CSRs: trap state, interrupt enables, counters, and xhi.

# Ref: The RISC-V Instruction Set Manual, Volume II (privileged) 20211203, 3.1
# (mstatus, misa, mie/mip, mtvec, mscratch, mepc, mcause, mtval, the counters),
# 3.3.2 (MRET), 3.1.6.1 and 3.1.9 (interrupt enables and priority); Volume I
# 20191213, chapter 10 (Zicntr: a CSR write to a counter replaces its
# increment); rtl/arch/riscv.py (the CSRs' fields); docs/cpu.md "CSRs" and
# "Traps and interrupts".

The x86 CSRs (xcr0, xcr3, xcr4, xflags) live in the VMX unit, not here; the
decoder sends them there. Everything else of docs/cpu.md's table is here.
"""

from functools import reduce
from operator import or_

from amaranth import Cat, Const, Module, Mux, ShapeCastable, Signal, Value
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.isa import CSR_ELEMENT, Csr, TrapCause
from ..arch.riscv import MCAUSE_CODE_BITS, MISA, InterruptBits, Mcause, Mstatus, PrivilegeMode
from ..arch.state import element_id

__all__ = ["CsrId", "Bank", "MACHINE_CSRS", "X86_CSRS", "pack", "CsrFile"]


class CsrId(enum.Enum, shape=4):
    """The machine CSR an instruction names, as the decoder hands it to the CSR file."""

    ZERO = 0  # mvendorid, marchid, mimpid, mhartid: read 0
    MSTATUS = 1
    MISA = 2
    MIE = 3
    MTVEC = 4
    MSCRATCH = 5
    MEPC = 6
    MCAUSE = 7
    MTVAL = 8
    MIP = 9
    MCYCLE = 10
    MCYCLEH = 11
    MINSTRET = 12
    MINSTRETH = 13
    XHI = 14


class Bank(enum.Enum, shape=2):
    """The bank of trap registers in use (docs/guests.md, docs/smm-soc.md): SMM's in SMM, else a guest's in VMX
    non-root operation, else the host's."""

    HOST = 0
    GUEST = 1
    SMM = 2


#: CSR number -> what the core keeps for it. The user-level counters are read-only views.
MACHINE_CSRS: dict[Csr, CsrId] = {
    Csr.MSTATUS: CsrId.MSTATUS,
    Csr.MISA: CsrId.MISA,
    Csr.MIE: CsrId.MIE,
    Csr.MTVEC: CsrId.MTVEC,
    Csr.MSCRATCH: CsrId.MSCRATCH,
    Csr.MEPC: CsrId.MEPC,
    Csr.MCAUSE: CsrId.MCAUSE,
    Csr.MTVAL: CsrId.MTVAL,
    Csr.MIP: CsrId.MIP,
    Csr.MCYCLE: CsrId.MCYCLE,
    Csr.MCYCLEH: CsrId.MCYCLEH,
    Csr.MINSTRET: CsrId.MINSTRET,
    Csr.MINSTRETH: CsrId.MINSTRETH,
    Csr.CYCLE: CsrId.MCYCLE,
    Csr.CYCLEH: CsrId.MCYCLEH,
    Csr.INSTRET: CsrId.MINSTRET,
    Csr.INSTRETH: CsrId.MINSTRETH,
    Csr.MVENDORID: CsrId.ZERO,
    Csr.MARCHID: CsrId.ZERO,
    Csr.MIMPID: CsrId.ZERO,
    Csr.MHARTID: CsrId.ZERO,
    Csr.XHI: CsrId.XHI,
}

#: x86 CSR number -> the machine-state element number GET/SET name on the VMX unit's port.
X86_CSRS: dict[Csr, int] = {csr: element_id(name) for csr, name in CSR_ELEMENT.items()}

if set(MACHINE_CSRS) | set(X86_CSRS) != set(Csr) or set(MACHINE_CSRS) & set(X86_CSRS):
    raise ValueError("every CSR of rtl/arch/isa.py must be kept exactly once, by the core or by the VMX unit")


def pack(layout: ShapeCastable, **fields) -> Value:
    """A register's value from the fields the core keeps of it: each in its place in ``layout``
    (``Mstatus``, ``InterruptBits``, ``Mcause``), every other bit 0."""
    layout = data.Layout.cast(layout)
    return reduce(or_, (Value.cast(value) << layout[name].offset for name, value in fields.items()))


class CsrFile(wiring.Component):
    """mstatus, mie, mip, mtvec, mscratch, mepc, mcause, mtval, mcycle, minstret, xhi.

    Reads are combinational (``read_data`` follows ``id``); writes, trap entry,
    MRET and retirement take effect at the clock edge. The core writes a CSR
    (and does MRET) before the instruction retires; a write to minstret or
    minstreth then cancels that instruction's own retirement increment
    (Volume I, 10.1: the next instruction reads the value written). Each
    64-bit counter is two 32-bit halves; the upper half takes the carry of the
    lower one a cycle later (a read of mcycleh in the cycle right after mcycle
    wraps sees the old upper half; minstret never changes that fast).

    Members
    -------
    id : In(CsrId)
        The CSR read (``read_data``) and written (``write``).
    read_data : Out(32)
    write : In(1)
    write_data : In(32)
        The new value; writes to read-only bits are ignored.
    retire : In(1)
        An instruction retires this cycle (minstret + 1, unless it wrote minstret(h)).
    trap : In(1)
    trap_pc, trap_value : In(32)
    trap_cause : In(Mcause)
        Trap entry: mepc, mcause, mtval := these; MPIE := MIE; MIE := 0
        (mcause keeps the interrupt bit and the code's low ``MCAUSE_CODE_BITS``).
    mret : In(1)
        MIE := MPIE; MPIE := 1.
    xhi_write : In(1)
    xhi_data : In(32)
        RDMSR's bits 63:32.
    irq_timer, irq_external : In(1)
        The interrupt lines (registered into mip.MTIP and mip.MEIP).
    swap : In(1)
    bank : In(Bank)
        With ``banked``: switch mstatus (MIE, MPIE), mscratch, mepc, mcause and mtval to ``bank`` (the
        host's, a guest's or SMM's; docs/guests.md, docs/smm-soc.md): the bank in use is kept, ``bank``'s
        loaded; nothing happens when ``bank`` is the one in use. Takes precedence over every other write.
    mtvec_load : In(1)
    mtvec_value : In(32)
        mtvec := the value (a VM entry or exit loads IDTR.base).
    mtvec, mepc, xhi : Out(32)
    wake : Out(1)
        An interrupt is pending and enabled in mie (what WFI waits for).
    interrupt : Out(1)
        Take an interrupt at this instruction boundary: mstatus.MIE and a
        pending interrupt enabled in mie.
    interrupt_cause : Out(Mcause)
        Its mcause (external before timer).
    """

    id: In(CsrId)
    read_data: Out(32)
    write: In(1)
    write_data: In(32)
    retire: In(1)
    trap: In(1)
    trap_pc: In(32)
    trap_cause: In(Mcause)
    trap_value: In(32)
    mret: In(1)
    xhi_write: In(1)
    xhi_data: In(32)
    irq_timer: In(1)
    irq_external: In(1)
    swap: In(1)
    bank: In(Bank)
    mtvec_load: In(1)
    mtvec_value: In(32)
    mtvec: Out(32)
    mepc: Out(32)
    xhi: Out(32)
    wake: Out(1)
    interrupt: Out(1)
    interrupt_cause: Out(Mcause)

    def __init__(self, *, banked: bool = False):
        #: Whether the trap registers without a VMCS field have a second bank (a core that runs guests).
        self.banked = banked
        super().__init__()

    def elaborate(self, platform):
        m = Module()

        mie = Signal()  # mstatus.MIE
        mpie = Signal()  # mstatus.MPIE
        mtie = Signal()
        meie = Signal()
        mtip = Signal()
        meip = Signal()
        mtvec = Signal(30)
        mscratch = Signal(32)
        mepc = Signal(30)
        # mcause is WLRL (Volume II, 3.1.15): it holds the interrupt bit and the code's low bits, enough
        # for every cause the core raises; the code's other bits read 0.
        mcause_interrupt = Signal()
        mcause_code = Signal(MCAUSE_CODE_BITS)
        mtval = Signal(32)
        xhi = Signal(32)
        cycle_lo, cycle_hi, cycle_carry = Signal(32), Signal(32), Signal()
        instret_lo, instret_hi, instret_carry = Signal(32), Signal(32), Signal()

        m.d.sync += [mtip.eq(self.irq_timer), meip.eq(self.irq_external)]
        m.d.comb += [
            self.mtvec.eq(Cat(Const(0, 2), mtvec)),
            self.mepc.eq(Cat(Const(0, 2), mepc)),
            self.xhi.eq(xhi),
        ]

        with m.Switch(self.id):
            with m.Case(CsrId.MSTATUS):
                m.d.comb += self.read_data.eq(pack(Mstatus, mie=mie, mpie=mpie, mpp=PrivilegeMode.MACHINE))
            with m.Case(CsrId.MISA):
                m.d.comb += self.read_data.eq(MISA)
            with m.Case(CsrId.MIE):
                m.d.comb += self.read_data.eq(pack(InterruptBits, machine_timer=mtie, machine_external=meie))
            with m.Case(CsrId.MTVEC):
                m.d.comb += self.read_data.eq(self.mtvec)
            with m.Case(CsrId.MSCRATCH):
                m.d.comb += self.read_data.eq(mscratch)
            with m.Case(CsrId.MEPC):
                m.d.comb += self.read_data.eq(self.mepc)
            with m.Case(CsrId.MCAUSE):
                m.d.comb += self.read_data.eq(pack(Mcause, code=mcause_code, interrupt=mcause_interrupt))
            with m.Case(CsrId.MTVAL):
                m.d.comb += self.read_data.eq(mtval)
            with m.Case(CsrId.MIP):
                m.d.comb += self.read_data.eq(pack(InterruptBits, machine_timer=mtip, machine_external=meip))
            with m.Case(CsrId.MCYCLE):
                m.d.comb += self.read_data.eq(cycle_lo)
            with m.Case(CsrId.MCYCLEH):
                m.d.comb += self.read_data.eq(cycle_hi)
            with m.Case(CsrId.MINSTRET):
                m.d.comb += self.read_data.eq(instret_lo)
            with m.Case(CsrId.MINSTRETH):
                m.d.comb += self.read_data.eq(instret_hi)
            with m.Case(CsrId.XHI):
                m.d.comb += self.read_data.eq(xhi)

        def writes(csr: CsrId):
            return self.write & (self.id == csr)

        data = self.write_data
        written_status, written_enables, written_cause = Mstatus(data), InterruptBits(data), Mcause(data)

        # mstatus: trap entry and MRET move MIE/MPIE; a CSR write sets both.
        with m.If(self.trap):
            m.d.sync += [mpie.eq(mie), mie.eq(0)]
        with m.Elif(self.mret):
            m.d.sync += [mie.eq(mpie), mpie.eq(1)]
        with m.Elif(writes(CsrId.MSTATUS)):
            m.d.sync += [mie.eq(written_status.mie), mpie.eq(written_status.mpie)]

        with m.If(writes(CsrId.MIE)):
            m.d.sync += [mtie.eq(written_enables.machine_timer), meie.eq(written_enables.machine_external)]
        with m.If(writes(CsrId.MTVEC)):
            m.d.sync += mtvec.eq(data[2:])
        with m.If(writes(CsrId.MSCRATCH)):
            m.d.sync += mscratch.eq(data)

        with m.If(self.trap):
            m.d.sync += [
                mepc.eq(self.trap_pc[2:]),
                mcause_code.eq(self.trap_cause.code[:MCAUSE_CODE_BITS]),
                mcause_interrupt.eq(self.trap_cause.interrupt),
                mtval.eq(self.trap_value),
            ]
        with m.Else():
            with m.If(writes(CsrId.MEPC)):
                m.d.sync += mepc.eq(data[2:])
            with m.If(writes(CsrId.MCAUSE)):
                m.d.sync += [
                    mcause_code.eq(written_cause.code[:MCAUSE_CODE_BITS]),
                    mcause_interrupt.eq(written_cause.interrupt),
                ]
            with m.If(writes(CsrId.MTVAL)):
                m.d.sync += mtval.eq(data)

        with m.If(self.mtvec_load):
            m.d.sync += mtvec.eq(self.mtvec_value[2:])

        if self.banked:
            # Last, so that a switch wins over the writes above (none happens in a switch's cycle).
            self._switch_bank(m, (mie, mpie, mscratch, mepc, mcause_interrupt, mcause_code, mtval))

        with m.If(self.xhi_write):
            m.d.sync += xhi.eq(self.xhi_data)
        with m.Elif(writes(CsrId.XHI)):
            m.d.sync += xhi.eq(data)

        # Counters: a write replaces the increment of that cycle (mcycle) or instruction (minstret).
        cycle_next = Signal(33)
        m.d.comb += cycle_next.eq(cycle_lo + 1)
        with m.If(writes(CsrId.MCYCLE)):
            m.d.sync += [cycle_lo.eq(data), cycle_carry.eq(0)]
        with m.Else():
            m.d.sync += [cycle_lo.eq(cycle_next[:32]), cycle_carry.eq(cycle_next[32])]
        with m.If(writes(CsrId.MCYCLEH)):
            m.d.sync += cycle_hi.eq(data)
        with m.Else():
            m.d.sync += cycle_hi.eq(cycle_hi + cycle_carry)

        # An instruction that writes minstret(h) writes it before it retires; its own retirement
        # then does not count (the next instruction reads the value written).
        instret_written = Signal()
        instret_next = Signal(33)
        m.d.comb += instret_next.eq(instret_lo + 1)
        counting = self.retire & ~instret_written
        m.d.sync += instret_carry.eq(0)
        with m.If(writes(CsrId.MINSTRET) | writes(CsrId.MINSTRETH)):
            m.d.sync += instret_written.eq(1)
        with m.Elif(self.retire):
            m.d.sync += instret_written.eq(0)
        with m.If(writes(CsrId.MINSTRET)):
            m.d.sync += instret_lo.eq(data)
        with m.Elif(counting):
            m.d.sync += [instret_lo.eq(instret_next[:32]), instret_carry.eq(instret_next[32])]
        with m.If(writes(CsrId.MINSTRETH)):
            m.d.sync += instret_hi.eq(data)
        with m.Else():
            m.d.sync += instret_hi.eq(instret_hi + instret_carry)

        external = meip & meie
        timer = mtip & mtie
        m.d.comb += [
            self.wake.eq(external | timer),
            self.interrupt.eq(mie & (external | timer)),
            self.interrupt_cause.eq(
                Mux(external, TrapCause.MACHINE_EXTERNAL_INTERRUPT.value, TrapCause.MACHINE_TIMER_INTERRUPT.value)
            ),
        ]
        return m

    def _switch_bank(self, m: Module, registers) -> None:  # noqa: ANN001
        """``swap``: the registers in use go to the current bank's copy, ``bank``'s copy comes in."""
        current = Signal(Bank)
        switching = self.swap & (self.bank != current)
        with m.If(switching):
            m.d.sync += current.eq(self.bank)
        for register in registers:
            kept = {bank: Signal.like(register, name=f"{register.name}_{bank.name.lower()}_bank") for bank in Bank}
            with m.If(switching):
                with m.Switch(current):
                    for bank, copy in kept.items():
                        with m.Case(bank):
                            m.d.sync += copy.eq(register)
                with m.Switch(self.bank):
                    for bank, copy in kept.items():
                        with m.Case(bank):
                            m.d.sync += register.eq(copy)
