"""RDMSR, WRMSR, GET and SET: the MSRs the unit implements, and the machine-state elements behind them.

# Ref: Intel SDM vol. 3C, appendix A "VMX capability reporting facility" (the
# capability MSRs, read-only), 23.7 "Enabling and entering VMX operation"
# (IA32_FEATURE_CONTROL: lock bit, VMX outside SMX; writes #GP once locked),
# 32.15.5 (IA32_SMM_MONITOR_CTL, writable only in SMM); vol. 4 (RDMSR/WRMSR
# of an MSR the processor does not implement: #GP). rtl/arch/msrs.py is the table.
"""

from amaranth import Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.msrs import (
    FEATURE_CONTROL_LOCK,
    FEATURE_CONTROL_VALID,
    FEATURE_CONTROL_VMX_OUTSIDE_SMX,
    MSRS,
    SMM_MONITOR_CTL_MSEG_BASE,
    SMM_MONITOR_CTL_VALID,
    SMM_MONITOR_CTL_VMXOFF_UNBLOCKS_SMI,
    VMX_MISC,
    MsrKind,
)
from ..arch.ops import Op, Status, Vector
from ..arch.state import ELEMENT_BY_MSR, element_id
from .machine_state import ID_BITS, ROW_BITS, StatePortSignature, constant_row, write_fault
from .operation import OperationSignature, finish
from .predicates import bits_set

__all__ = ["MsrAccess", "MsrListSignature"]

_SMBASE = element_id("smbase")
_U64 = 2**64 - 1
#: IA32_SMM_MONITOR_CTL's writable bits (34.15.5): valid, the MSEG base, bit 2 only with IA32_VMX_MISC bit 28.
_SMM_MONITOR_CTL_WRITABLE = (
    SMM_MONITOR_CTL_VALID
    | SMM_MONITOR_CTL_MSEG_BASE
    | (SMM_MONITOR_CTL_VMXOFF_UNBLOCKS_SMI if VMX_MISC.smm_monitor_ctl_bit2 else 0)
)


class MsrListSignature(wiring.Signature):
    """An entry of a VM-entry or VM-exit MSR list, carried out as RDMSR/WRMSR at CPL 0 (SDM 26.4, 27.4, 27.6).

    Members
    -------
    start : Out(1)
        Read (``write`` 0) or write MSR ``index``; one cycle.
    write : Out(1)
    index : Out(32)
    value : Out(64)
        What a write writes (held until ``done``).
    done : In(1)
        One cycle; with ``fault`` when the access would #GP, else a read's value on ``rdata``.
    fault : In(1)
    rdata : In(64)
    """

    def __init__(self):
        super().__init__(
            {
                "start": Out(1),
                "write": Out(1),
                "index": Out(32),
                "value": Out(64),
                "done": In(1),
                "fault": In(1),
                "rdata": In(64),
            }
        )

    def __eq__(self, other):
        return isinstance(other, MsrListSignature)

    def __repr__(self):
        return "MsrListSignature()"


def _decode_msr(m: Module, number: Value) -> tuple[Signal, Signal, Signal]:
    """Whether MSR ``number`` is in the table, its kind, and the state row behind it (an element's, a constant's,
    SMBASE's); combinational. MSR numbers cluster in a few 4-KiB pages of the number space: the page is
    compared once, then the number within it."""
    known = Signal()
    kind = Signal(MsrKind)
    row = Signal(ROW_BITS)
    pages = {}
    for msr in MSRS:
        pages.setdefault(msr.number >> 12, []).append(msr)
    for i, (msr_page, msrs) in enumerate(pages.items()):
        with (m.If if i == 0 else m.Elif)(number[12:] == msr_page):
            with m.Switch(number[:12]):
                for msr in msrs:
                    with m.Case(msr.number & 0xFFF):
                        m.d.comb += [known.eq(1), kind.eq(msr.kind)]
                        if msr.kind == MsrKind.ELEMENT:
                            m.d.comb += row.eq(element_id(ELEMENT_BY_MSR[msr.number].name))
                        elif msr.kind == MsrKind.CONSTANT:
                            m.d.comb += row.eq(constant_row(msr.number))
                        elif msr.kind == MsrKind.SMBASE:
                            m.d.comb += row.eq(_SMBASE)
    return known, kind, row


class MsrAccess(wiring.Component):
    """RDMSR/WRMSR of the MSRs in the table, and GET/SET of machine-state elements.

    The MSR number is decoded from the table when the request is accepted
    (the number's 4-KiB page once, then the number within it): an element
    MSR names a machine-state element, a constant (capability) MSR a read-only
    row of the machine state's block RAM; IA32_FEATURE_CONTROL is a register
    here. Element reads and writes go through ``state`` with the write rules
    of MOV/WRMSR, which the machine state checks (a write that breaks them is
    #GP and changes nothing).

    Latency, from ``op.start`` to ``op.done`` (``latency``): 0 for RDMSR, GET,
    WRMSR of IA32_FEATURE_CONTROL and every #GP (an element's value is
    ``op.read_value`` from the next cycle); 1 for SET and WRMSR of an element
    MSR (its rules are decided in the start cycle, the write is in the next).

    Members
    -------
    op : In(OperationSignature())
        RDMSR, WRMSR, GET, SET (CPL > 0 was the dispatcher's #GP).
    msr_list : In(MsrListSignature())
        The MSR lists' entries (the transitions): the same RDMSR/WRMSR, decoded when
        ``msr_list.start``, done in the next cycle (a write of an element) or the one after (a
        read of one).
    state : Out(StatePortSignature())
    vmxon_allowed : Out(1)
        IA32_FEATURE_CONTROL is locked and enables VMXON outside SMX.
    in_vmx : In(1)
        In VMX operation: the CR0/CR4 fixed bits are enforced on writes (``write_fault``).
    in_smm : In(1)
        In SMM: IA32_SMBASE is readable, IA32_SMM_MONITOR_CTL writable, CR4.VMXE reserved (SDM 34.14.3, A.6).
    dual_active : In(1)
        The dual-monitor treatment is active: CR4.VMXE is not reserved in SMM (the STM runs in VMX operation).
    monitor_ctl : Out(32)
        IA32_SMM_MONITOR_CTL.
    """

    op: In(OperationSignature())
    msr_list: In(MsrListSignature())
    state: Out(StatePortSignature())
    vmxon_allowed: Out(1)
    in_vmx: In(1)
    in_smm: In(1)
    dual_active: In(1)
    monitor_ctl: Out(32)

    @property
    def latency(self) -> dict[str, int]:
        return {"RDMSR (capability MSR)": 0, "GET": 0, "SET": 1}

    def elaborate(self, platform):
        m = Module()
        op = self.op
        state = self.state
        request = op.request
        value = op.operation.value

        feature_control = Signal(3)
        smm_monitor_ctl = self.monitor_ctl
        m.d.comb += self.vmxon_allowed.eq(
            (feature_control & FEATURE_CONTROL_LOCK != 0) & (feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX != 0)
        )

        # -- MSR decode (from the table), registered with the request ------------
        msr_known = Signal()
        msr_kind = Signal(MsrKind)
        element = Signal(ROW_BITS)  # the state row SET, GET or an element or constant MSR names
        element_fault = Signal()  # the element write would raise #GP (decided in the start cycle)
        value_sets_reserved_fc_bits = Signal()

        listing = self.msr_list
        number = Mux(listing.start, listing.index, request.index[:32])
        known, kind, row = _decode_msr(m, number)
        is_msr_op = (request.op == Op.RDMSR) | (request.op == Op.WRMSR) | listing.start
        with m.If(op.accept | listing.start):
            m.d.sync += [
                msr_known.eq(known),
                msr_kind.eq(kind),
                element.eq(Mux(is_msr_op, row, number[:ID_BITS])),
                value_sets_reserved_fc_bits.eq(
                    bits_set(request.value[:32], ~FEATURE_CONTROL_VALID & (2**32 - 1))
                    | (request.value[32:] != 0)  # a term of the pointer block's bad_address too: synthesis shares it
                ),
            ]

        # An MSR-list entry: decoded in its start cycle, carried out in the next (list_go).
        list_go = Signal()
        list_write = Signal()
        list_value = Signal(64)
        list_read = Signal()  # an element's value arrives in this cycle
        m.d.sync += [list_go.eq(listing.start), list_read.eq(0)]
        with m.If(listing.start):
            m.d.sync += [list_write.eq(listing.write), list_value.eq(listing.value)]

        # The MOV/WRMSR rules on this block's own value: no path through the other clients of the port.
        wr_value = Mux(list_go, list_value, value)
        wr_fault = write_fault(m, element, wr_value, self.in_vmx, self.in_smm & ~self.dual_active)
        m.d.comb += [
            state.rd_id.eq(element),
            state.wr_id.eq(element),
            state.wr_value.eq(wr_value),
            op.read_value.eq(state.rd_data),
            listing.rdata.eq(
                Mux(
                    list_read,
                    state.rd_data,
                    Mux(
                        msr_kind == MsrKind.FEATURE_CONTROL,
                        feature_control,
                        Mux(msr_kind == MsrKind.SMM_MONITOR_CTL, smm_monitor_ctl, 0),
                    ),
                )
            ),
        ]

        def fault():
            finish(m, op, Status.FAULT, vector=Vector.GP)

        # SET, or WRMSR of an element MSR: the rules are decided in the start cycle (registered
        # in element_fault), the write is in the next (element_write). A flag rather than a
        # two-state FSM: its next value does not depend on itself, which yosys would make a
        # synchronous reset fed by the flip-flop's own output (an ECP5 TRELLIS_FF whose LSR
        # abc9 takes for a combinational loop).
        element_write = Signal()
        m.d.sync += element_write.eq(0)
        with m.If(op.start):
            with m.Switch(op.operation.op):
                with m.Case(Op.RDMSR):
                    with m.If(~msr_known):
                        fault()
                    with m.Else():
                        with m.Switch(msr_kind):
                            with m.Case(MsrKind.FEATURE_CONTROL):
                                finish(m, op, Status.OK, result=feature_control)
                            with m.Case(MsrKind.SMM_MONITOR_CTL):
                                finish(m, op, Status.OK, result=smm_monitor_ctl)
                            with m.Case(MsrKind.SMBASE):  # readable only in SMM (IA32_VMX_MISC bit 15)
                                with m.If(self.in_smm):
                                    m.d.comb += state.rd_en.eq(1)
                                    finish(m, op, Status.OK, read=True)
                                with m.Else():
                                    fault()
                            with m.Case(MsrKind.ELEMENT, MsrKind.CONSTANT):
                                m.d.comb += state.rd_en.eq(1)
                                finish(m, op, Status.OK, read=True)

                with m.Case(Op.WRMSR):
                    with m.If(~msr_known):
                        fault()
                    with m.Else():
                        with m.Switch(msr_kind):
                            with m.Case(MsrKind.FEATURE_CONTROL):
                                locked = feature_control & FEATURE_CONTROL_LOCK != 0
                                with m.If(locked | value_sets_reserved_fc_bits):
                                    fault()
                                with m.Else():
                                    m.d.sync += feature_control.eq(value)
                                    finish(m, op, Status.OK)
                            with m.Case(MsrKind.ELEMENT):
                                m.d.sync += [element_fault.eq(wr_fault), element_write.eq(1)]
                            with m.Case(MsrKind.SMM_MONITOR_CTL):  # writable only in SMM (34.15.5)
                                with m.If(~self.in_smm | bits_set(value, ~_SMM_MONITOR_CTL_WRITABLE & _U64)):
                                    fault()
                                with m.Else():
                                    m.d.sync += smm_monitor_ctl.eq(value)
                                    finish(m, op, Status.OK)
                            with m.Default():
                                # Capability MSRs are read-only; IA32_SMBASE is never writable.
                                fault()

                with m.Case(Op.GET):
                    m.d.comb += state.rd_en.eq(1)
                    finish(m, op, Status.OK, read=True)

                with m.Case(Op.SET):
                    m.d.sync += [element_fault.eq(wr_fault), element_write.eq(1)]

        with m.If(element_write):
            with m.If(element_fault):
                fault()
            with m.Else():
                m.d.comb += state.wr_en.eq(1)
                finish(m, op, Status.OK)

        self._list_access(m, list_go, list_write, list_read, msr_known, msr_kind, wr_fault, list_value)
        return m

    def _list_access(self, m: Module, go, write, read, known, kind, wr_fault, value) -> None:  # noqa: ANN001
        """The lists' RDMSR/WRMSR at CPL 0 (an entry decoded the cycle before ``go``): what the instructions do,
        answered on ``msr_list`` (an element's read a cycle later, ``read``)."""
        listing, state = self.msr_list, self.state

        def list_done(fault):  # noqa: ANN001, ANN202
            m.d.comb += [listing.done.eq(1), listing.fault.eq(fault)]

        with m.If(read):
            list_done(0)
        with m.If(go):
            with m.If(~known):
                list_done(1)
            with m.Elif(~write):
                with m.Switch(kind):
                    with m.Case(MsrKind.ELEMENT, MsrKind.CONSTANT):
                        m.d.comb += state.rd_en.eq(1)
                        m.d.sync += read.eq(1)
                    with m.Case(MsrKind.FEATURE_CONTROL, MsrKind.SMM_MONITOR_CTL):
                        list_done(0)  # the register, on rdata
                    with m.Default():
                        # IA32_SMBASE: readable only in SMM (an exit that ends in SMM: ``in_smm``).
                        with m.If(self.in_smm):
                            m.d.comb += state.rd_en.eq(1)
                            m.d.sync += read.eq(1)
                        with m.Else():
                            list_done(1)
            with m.Elif(kind == MsrKind.ELEMENT):
                with m.If(wr_fault):
                    list_done(1)
                with m.Else():
                    m.d.comb += state.wr_en.eq(1)
                    list_done(0)
            with m.Elif(kind == MsrKind.SMM_MONITOR_CTL):
                # Writable only in SMM (an exit that ends in SMM), with WRMSR's rules (34.15.5).
                with m.If(~self.in_smm | bits_set(value, ~_SMM_MONITOR_CTL_WRITABLE & _U64)):
                    list_done(1)
                with m.Else():
                    m.d.sync += self.monitor_ctl.eq(value)
                    list_done(0)
            with m.Else():
                # IA32_FEATURE_CONTROL is locked in VMX operation; the others are not writable.
                list_done(1)
