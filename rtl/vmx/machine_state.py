"""Machine-state register file: the processor state elements the VMX unit keeps.

# Ref: Intel SDM vol. 3A table 9-1 (power-up values); vol. 3A 2.5 and 2.8
# (MOV to CR0/CR4: reserved bits and PG/PE, NW/CD raise #GP); vol. 3C 23.8
# "Restrictions on VMX operation" (CR0/CR4 fixed bits raise #GP in VMX operation).

The elements of rtl/arch/state.py live in a block RAM, one 64-bit word each,
except RFLAGS, which is a register (every VMX instruction writes its flags).
The same block RAM holds the values of the constant (capability) MSRs of
rtl/arch/msrs.py, read-only, in the rows from ``2**ID_BITS`` on
(``constant_row``), so RDMSR reads them as it reads an element.
The few bits the instruction checks test every cycle (CR0.PE, CR4.VMXE,
EFER.LMA, CS.L, the CPL, blocking by MOV SS, and whether CR0 and CR4 satisfy
the VMX fixed bits) are mirrored in flip-flops, updated on every write.
"""

from collections.abc import Sequence

from amaranth import Const, Module, Mux, Signal, Value
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out

from ..arbiter import check_clients, join_by_priority
from ..arch.msrs import CR0_FIXED0, CR0_FIXED1, CR4_FIXED0, CR4_FIXED1, MSRS, MsrKind, constant_value
from ..arch.state import AR, CR0, CR4, EFER, ELEMENT_BY_NAME, ELEMENTS, INTERRUPTIBILITY, RFLAGS, element_id
from ..bram import NO_RW_CHECK, registered_read
from .predicates import bits_set, canonical, fixed_ok, valid_memory_types

__all__ = [
    "MachineState",
    "StateArbiter",
    "StatePortSignature",
    "Mode",
    "ID_BITS",
    "ROW_BITS",
    "constant_row",
    "write_fault",
]

ID_BITS = (len(ELEMENTS) - 1).bit_length()
#: Bits of a read row: an element number, or a constant MSR's row.
ROW_BITS = ID_BITS + 1
_CONSTANT_MSRS = [msr for msr in MSRS if msr.kind == MsrKind.CONSTANT]
assert len(_CONSTANT_MSRS) <= 2**ID_BITS


def constant_row(number: int) -> int:
    """The read row that holds the value of constant MSR ``number``."""
    return 2**ID_BITS + [msr.number for msr in _CONSTANT_MSRS].index(number)


def write_fault(m: Module, wr_id: Value, value: Value, in_vmx: Value, in_smm: Value | int = 0) -> Signal:
    """Whether MOV/WRMSR writing ``value`` to element ``wr_id`` raises #GP (reserved bit, non-canonical, bad
    memory type, CR0 PG without PE or NW without CD, the VMX fixed bits in VMX operation, CR4.VMXE in SMM (SDM
    34.14.3), a value wider than the element); combinational, one case per element, generated from the table."""
    fault_signal = Signal()
    with m.Switch(wr_id):
        for i, e in enumerate(ELEMENTS):
            with m.Case(i):
                fault = value[e.bits :].any() if e.bits < 64 else 0
                if not e.settable:
                    fault = Const(1)
                if e.reserved:
                    fault = fault | bits_set(value, e.reserved)
                if e.canonical:
                    fault = fault | ~canonical(value)
                if e.memory_types:
                    fault = fault | ~valid_memory_types(value)
                if e.cr0_rules:
                    pg_without_pe = bits_set(value, CR0.PG) & ~bits_set(value, CR0.PE)
                    nw_without_cd = bits_set(value, CR0.NW) & ~bits_set(value, CR0.CD)
                    fault = fault | pg_without_pe | nw_without_cd
                if e.vmx_fixed:
                    fault = fault | (in_vmx & ~fixed_ok(value, *e.vmx_fixed))
                if e.name == "cr4":
                    fault = fault | (in_smm & bits_set(value, CR4.VMXE))
                m.d.comb += fault_signal.eq(fault)
        with m.Default():
            m.d.comb += fault_signal.eq(1)
    return fault_signal


_RFLAGS_BITS = 22
_RFLAGS_ID = element_id("rflags")


class StatePortSignature(wiring.Signature):
    """The element port of the machine state, seen from the block that reads and writes elements.

    Reads have a latency of one cycle; a write stores what it is given, with the
    forced bits applied (``MachineState`` has the contract): a block that
    writes under the MOV/WRMSR rules checks them first (``write_fault``).

    Members
    -------
    rd_id : Out(ROW_BITS)
        An element number, or ``constant_row`` of a constant MSR.
    rd_en : Out(1)
        Read row ``rd_id`` in this cycle.
    rd_data : In(64)
        The row read, from the cycle after ``rd_en``; holds while ``rd_en`` is low.
    wr_id : Out(ID_BITS)
        The element to write.
    wr_value : Out(64)
        The value to write (before the rules' forced bits).
    wr_en : Out(1)
        Store ``wr_value`` in ``wr_id``, with the forced bits applied.
    """

    def __init__(self):
        super().__init__(
            {
                "rd_id": Out(ROW_BITS),
                "rd_en": Out(1),
                "rd_data": In(64),
                "wr_id": Out(ID_BITS),
                "wr_value": Out(64),
                "wr_en": Out(1),
            }
        )

    def __eq__(self, other):
        return isinstance(other, StatePortSignature)

    def __repr__(self):
        return "StatePortSignature()"


class Mode(data.Struct):
    """The bits of machine state the instruction checks test every cycle, mirrored in flip-flops."""

    cr0_pe: 1
    cr4_vmxe: 1
    efer_lma: 1
    cs_l: 1
    vm86: 1
    movss_blocking: 1
    sti_blocking: 1
    #: Blocking by NMI (virtual-NMI blocking with "virtual NMIs"): interruptibility bit 3.
    nmi_blocking: 1
    #: Blocking by SMI (interruptibility bit 2): outside SMM, left by a return from SMM (SDM 34.15.4.9).
    smi_blocking: 1
    cr4_tsd: 1
    cpl: 2
    #: CR0 and CR4 both satisfy the VMX fixed-bit MSRs.
    cr0_cr4_fixed_ok: 1


class MachineState(wiring.Component):
    """The machine-state elements, with the write rules of MOV/WRMSR.

    Latency: reads (of an element, or of a constant MSR's row) take 1 cycle
    (``read_latency``; ``rd_data`` holds while ``rd_en`` is low); a write
    takes effect at the next edge; a read of the row written in the same
    cycle returns an undefined value (``bram.registered_read``). ``wr_en``
    stores ``wr_value`` in ``wr_id`` with the rules' forced bits applied. The
    MOV/WRMSR rules are ``write_fault``, which the block writing under them
    (``MsrAccess``) applies to its own value before it writes: only a value
    that passes them may be stored by that block (a value wider than the
    element is not cut to its width). After reset the block restores the
    power-up values, one element per cycle, with ``ready`` low
    (``len(ELEMENTS)`` cycles). The blocks that share ``port`` are joined by
    a ``StateArbiter``.

    Members
    -------
    ready : Out(1)
    port : In(StatePortSignature())
    flags_en : In(1)
    flags : In(64)
        With ``flags_en``, RFLAGS' six arithmetic flags := these bits of ``flags``.
    rflags : Out(64)
    mode : Out(Mode)
    smbase : Out(32)
        With ``smbase_mirror``: IA32_SMBASE, mirrored in flip-flops as the mode bits are (the SoC's SMRAM
        decode reads it, docs/smm-soc.md).
    """

    def __init__(self, *, dual_monitor: bool = False, smbase_mirror: bool = False):
        #: IA32_VMX_BASIC reports the dual-monitor treatment (bit 49): rtl/vmx/dual_monitor.py.
        self.dual_monitor = dual_monitor
        self.smbase_mirror = smbase_mirror
        members = {
            "ready": Out(1),
            "port": In(StatePortSignature()),
            "flags_en": In(1),
            "flags": In(64),
            "rflags": Out(64),
            "mode": Out(Mode),
        }
        if smbase_mirror:
            members["smbase"] = Out(32)
        super().__init__(members)

    @property
    def read_latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        port = self.port
        resets = [e.reset for e in ELEMENTS] + [0] * (2**ID_BITS - len(ELEMENTS))
        constants = [constant_value(msr, dual_monitor=self.dual_monitor) for msr in _CONSTANT_MSRS]
        m.submodules.ram = ram = memory.Memory(shape=64, depth=2**ROW_BITS, init=resets + constants, attrs=NO_RW_CHECK)
        rd_data = registered_read(m, ram, addr=port.rd_id, en=port.rd_en, name="ram_rd_data")
        wr = ram.write_port()

        # Power-up values, restored after every reset.
        restoring = Signal(init=1)
        restore_id = Signal(ID_BITS)
        restore_value = Signal(64)
        with m.Switch(restore_id):
            for i, e in enumerate(ELEMENTS):
                with m.Case(i):
                    m.d.comb += restore_value.eq(e.reset)
        with m.If(restoring):
            m.d.sync += restore_id.eq(restore_id + 1)
            with m.If(restore_id == len(ELEMENTS) - 1):
                m.d.sync += restoring.eq(0)
        m.d.comb += self.ready.eq(~restoring)

        # A value that passes the rules has no bit above the element's width: only the
        # forced bits change what is stored.
        value = port.wr_value
        stored = value
        for i, e in enumerate(ELEMENTS):
            if e.force1 or e.force0:
                stored = Mux(port.wr_id == i, (value | e.force1) & ~e.force0, stored)

        # One write path: the restore walk after reset, or a checked write.
        w_en = Signal()
        w_id = Signal(ID_BITS)
        w_data = Signal(64)
        m.d.comb += [
            w_en.eq(restoring | port.wr_en),
            w_id.eq(Mux(restoring, restore_id, port.wr_id)),
            w_data.eq(Mux(restoring, restore_value, stored)),
            wr.addr.eq(w_id),
            wr.data.eq(w_data),
            wr.en.eq(w_en),
        ]

        # RFLAGS is a register; reads of its element come from it.
        rflags = Signal(_RFLAGS_BITS)
        m.d.comb += self.rflags.eq(rflags)
        read_rflags = Signal()
        with m.If(port.rd_en):
            m.d.sync += read_rflags.eq(port.rd_id == _RFLAGS_ID)
        m.d.comb += port.rd_data.eq(Mux(read_rflags, rflags, rd_data))
        with m.If(w_en & (w_id == _RFLAGS_ID)):
            m.d.sync += rflags.eq(w_data)
        with m.Elif(self.flags_en):
            m.d.sync += rflags.eq((rflags & ~RFLAGS.ARITHMETIC) | (self.flags & RFLAGS.ARITHMETIC))

        # Mirrors of the bits the instruction checks use, updated by every write
        # of their element (the restore walk included).
        cr0_fixed = Signal()
        cr4_fixed = Signal()
        mirrored = Signal(Mode)  # the mode bits that are registers (vm86 and the fixed bits are not)
        # A mirror is a function of its element's value; it is computed from the written
        # value itself (none of these elements has forced bits, and a value that passes the
        # rules fits the element), not from the stored-value multiplexer, and from the
        # power-up value (a constant) during the restore walk.
        mirrors = {
            "cr0": [
                (mirrored.cr0_pe, lambda v: bits_set(v, CR0.PE)),
                (cr0_fixed, lambda v: fixed_ok(v, CR0_FIXED0, CR0_FIXED1)),
            ],
            "cr4": [
                (mirrored.cr4_vmxe, lambda v: bits_set(v, CR4.VMXE)),
                (mirrored.cr4_tsd, lambda v: bits_set(v, CR4.TSD)),
                (cr4_fixed, lambda v: fixed_ok(v, CR4_FIXED0, CR4_FIXED1)),
            ],
            "efer": [(mirrored.efer_lma, lambda v: bits_set(v, EFER.LMA))],
            "cs.ar": [(mirrored.cs_l, lambda v: bits_set(v, AR.L))],
            "ss.ar": [(mirrored.cpl, lambda v: v[AR.DPL_SHIFT : AR.DPL_SHIFT + 2])],
            "interruptibility": [
                (mirrored.movss_blocking, lambda v: bits_set(v, INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)),
                (mirrored.sti_blocking, lambda v: bits_set(v, INTERRUPTIBILITY.BLOCKING_BY_STI)),
                (mirrored.nmi_blocking, lambda v: bits_set(v, INTERRUPTIBILITY.BLOCKING_BY_NMI)),
                (mirrored.smi_blocking, lambda v: bits_set(v, INTERRUPTIBILITY.BLOCKING_BY_SMI)),
            ],
        }
        if self.smbase_mirror:
            mirrors["smbase"] = [(self.smbase, lambda v: v[:32])]
        for name, pairs in mirrors.items():
            element = ELEMENT_BY_NAME[name]
            if element.force0 or element.force1:
                raise ValueError(f"mirrored element {name} has forced bits: mirror the stored value")
            with m.If(restoring & (restore_id == element_id(name))):
                m.d.sync += [mirror.eq(new(Const(element.reset, 64))) for mirror, new in pairs]
            with m.Elif(port.wr_en & (port.wr_id == element_id(name))):
                m.d.sync += [mirror.eq(new(port.wr_value)) for mirror, new in pairs]
        m.d.comb += [
            self.mode.eq(mirrored),
            self.mode.vm86.eq(bits_set(rflags, RFLAGS.VM)),
            self.mode.cr0_cr4_fixed_ok.eq(cr0_fixed & cr4_fixed),
        ]
        return m


class StateArbiter(wiring.Component):
    """Joins the element port's clients onto the machine state's one port, by fixed priority (rtl/arbiter.py).

    The write group (``wr_id``, ``wr_value``) goes to the first client whose
    ``wr_en`` is set, else to the last client: the last one is the block that
    presents a value to learn whether its rules fault before it writes
    (``MsrAccess``). Latency: none (``latency`` is 0).

    Parameters
    ----------
    clients : sequence of str
        Names of the client ports, highest priority first.

    Members
    -------
    state : Out(StatePortSignature())
        To the machine state.
    <client> : In(StatePortSignature())
        One per name in ``clients``.
    """

    def __init__(self, clients: Sequence[str]):
        self.clients = check_clients(clients, reserved="state")
        signature = StatePortSignature()
        super().__init__({"state": Out(signature), **{name: In(signature) for name in self.clients}})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        ports = [getattr(self, name) for name in self.clients]
        groups = {"rd_en": ("rd_id",), "wr_en": ("wr_id", "wr_value")}
        join_by_priority(m, self.state, ports, groups, ("rd_data",))
        return m
