"""The VMX unit's dispatcher: its request/response port, the checks instructions start with, the outcome conventions.

# Ref: Intel SDM vol. 3C, 30.3 "VMX instructions" (the start of every VMX
# instruction's operation: #UD outside VMX operation, in real-address or
# virtual-8086 mode, or in compatibility mode; #GP(0) at CPL > 0; VMXON's and
# VMCALL's own variants of these), 30.2 "Conventions" (VMsucceed,
# VMfailInvalid, VMfailValid: the error number goes to the current VMCS, the
# arithmetic flags to RFLAGS); vol. 4 (RDMSR/WRMSR: #GP(0) at CPL > 0).
"""

from collections.abc import Mapping, Sequence

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.fields import FIELD_BY_NAME
from ..arch.layout import LOCATION, Storage
from ..arch.ops import Op, Status, Vector, flags_for
from ..arch.smm import IO_SMI, IO_SMI_IN, IoState
from ..vmcs.cache_port import CachePortSignature
from .machine_state import Mode
from .operation import OperationSignature, Outcome, Request, finish, vmfail
from .port import RequestSignature, ResponseSignature

__all__ = ["Dispatcher", "GuestDecisionSignature", "GUEST_BLOCK", "SMM_BLOCK", "DUAL_BLOCK"]

_ERROR_FIELD = LOCATION[FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding]
assert _ERROR_FIELD.storage == Storage.ON_DIE

#: Operations the dispatcher answers itself: VMCALL is VMfail(1) (IA32_VMX_BASIC reports no dual-monitor
#: treatment). Without an ``SMM_BLOCK`` also SMI (ENTRY_NOT_IMPLEMENTED: a unit without guests leaves SMM
#: out) and RSM (#UD: never in SMM).
_OWN = (Op.VMCALL,)
_SMM_OPS = (Op.SMI, Op.RSM)
#: The block of SMI delivery and RSM: SMI goes to it in non-root operation too (the default treatment).
SMM_BLOCK = "smm"
#: The block of the dual-monitor treatment (rtl/vmx/dual_monitor.py): VMCALL in VMX root operation outside
#: SMM with IA32_SMM_MONITOR_CTL.valid = 1 goes to it (no operation is its alone).
DUAL_BLOCK = "dual"

_MEMBERS = (
    "req",
    "resp",
    "ready",
    "mode",
    "in_vmx",
    "current_valid",
    "current",
    "vmxon_allowed",
    "cache",
    "mark_dirty",
    "flags_en",
    "flags",
    "non_root",
    "guest",
    "shutdown",
    "abort",
    "in_smm",
    "monitor_valid",
    "dual_active",
    "smi_to_dual",
    "returned",
    "smi_pending",
    "smi_pending_io",
    "take_smi",
)
#: The block that decides VM exits: every request goes to it in VMX non-root operation.
GUEST_BLOCK = "events"


class GuestDecisionSignature(wiring.Signature):
    """What the dispatcher and the exit-deciding block (``GuestEvents``) tell each other, from the dispatcher.

    Members
    -------
    ud : Out(1)
        The request, a VMX instruction, raises #UD (CR0.PE = 0, RFLAGS.VM = 1, compatibility mode; VMXON
        also with CR4.VMXE = 0), which in VMX non-root operation comes before its exit (SDM 25.1.1).
    cpl_nonzero : Out(1)
    raise_fault : Out(1)
        With the block's start: the request, passed on, faulted with ``fault_vector``.
    fault_vector : Out(8)
    pass_on : In(1)
        With the block's done: carry the request out in its own block, with the block's ``result`` as
        its value when ``result_en`` is set.
    raise_on_fault : In(1)
        With ``pass_on``: bring a fault of that block back (``raise_fault``).
    """

    def __init__(self):
        super().__init__(
            {
                "ud": Out(1),
                "cpl_nonzero": Out(1),
                "raise_fault": Out(1),
                "fault_vector": Out(8),
                "pass_on": In(1),
                "raise_on_fault": In(1),
            }
        )


class Dispatcher(wiring.Component):
    """Takes one request at a time, runs the checks it starts with, hands it to its block, answers.

    Each operation but VMCALL belongs to one block (``blocks``: name ->
    operations); the block holds an ``OperationSignature`` port named after
    it. In the cycle after a request is accepted (DISPATCH) the dispatcher
    runs the instruction's first checks: the common ones of the VMX
    instructions (#UD, then #GP), VMXON's and VMCALL's variants, CPL > 0 for
    RDMSR/WRMSR, none for GET/SET. A check that fails answers FAULT; else
    the block starts. Its outcome is registered in the cycle of its ``done``
    and answered in RESPOND, where a VMfailValid writes its error number to
    the current VMCS (on-die, through ``cache``; the VMCS becomes dirty:
    ``mark_dirty``) and every VMX outcome writes the arithmetic flags.

    Latency: 2 cycles for an operation whose block decides in the cycle of
    its start (DISPATCH, RESPOND), L + 2 for a block that takes L cycles from
    start to done: ``latency`` is the dispatcher's share, 2. ``req.ready`` is
    low while the machine state restores its power-up values (``ready``).

    Where the next blocks plug in: a block that carries out new operations is
    one more entry of ``blocks``. The exit decision of VMX non-root operation
    (SDM 25.1: which instructions cause VM exits) belongs between the first
    checks and the block's start, as a block of its own consulted in DISPATCH.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds (sizes ``current`` and ``cache``).
    blocks : mapping of str to sequence of Op
        Each block's name and the operations it carries out; together every
        operation but VMCALL, each once.

    Members
    -------
    req : In(RequestSignature())
    resp : Out(ResponseSignature())
    <block> : Out(OperationSignature())
        One per entry of ``blocks``.
    ready : In(1)
        The machine state is ready (after reset).
    mode : In(Mode)
    in_vmx : In(1)
    current_valid : In(1)
    current : In(entry_bits)
        The cache entry of the current VMCS, for VMfailValid's error number.
    vmxon_allowed : In(1)
        IA32_FEATURE_CONTROL is locked and enables VMXON outside SMX.
    cache : Out(CachePortSignature(entries))
        Writes VMfailValid's error number.
    mark_dirty : Out(1)
        The current VMCS was written (the error number).
    flags_en : Out(1)
    flags : Out(64)
        With ``flags_en``: RFLAGS' arithmetic flags := these bits.
    non_root : In(1)
        VMX non-root operation: every request goes to the ``events`` block, which decides VM exits.
    shutdown : In(1)
    abort : In(3)
        After a shutdown every request answers SHUTDOWN with the indicator (SDM 27.7; 0 after RSM's).
    in_smm : In(1)
        In SMM: RSM goes to the ``smm`` block, else it is #UD.
    monitor_valid : In(1)
        IA32_SMM_MONITOR_CTL.valid: with a ``dual`` block (``blocks`` names it, with no operation), VMCALL in
        VMX root operation outside SMM goes to it; else VMCALL there is VMfail(1).
    dual_active : In(1)
        The dual-monitor treatment is active: RSM in VMX root operation is #UD (SDM 34.15.3).
    returned : In(1)
    smi_pending : In(1)
    smi_pending_io : In(32)
    take_smi : Out(1)
        With a ``dual`` block: after a VM entry that returned from SMM (``returned``, ``ENTERED``), an SMI held in
        SMM (``smm`` block: ``smi_pending``, its I/O state field) is delivered before the response (REPLAY.md
        "SMM"), unless SMIs stay blocked; ``take_smi`` takes it from the ``smm`` block.
    smi_to_dual : In(1)
        An SMI now is an SMM VM exit (34.15.2: the treatment is active, outside SMM, SMIs not blocked): it goes
        to the ``dual`` block, else to the ``smm`` block.
    guest : Out(GuestDecisionSignature())
        The first checks' verdicts for that block, and its ``pass_on`` of a request to the request's own
        block (with a fault brought back when it asks: ``raise_on_fault``).
    """

    def __init__(self, entries: int, blocks: Mapping[str, Sequence[Op]]):
        self.blocks = {name: tuple(ops) for name, ops in blocks.items()}
        self.has_smm = SMM_BLOCK in self.blocks
        self.has_dual = DUAL_BLOCK in self.blocks
        seen = list(_OWN) + ([] if self.has_smm else list(_SMM_OPS))
        for name, ops in self.blocks.items():
            if not isinstance(name, str) or not name.isidentifier() or name in _MEMBERS:
                raise ValueError(f"Block names must be identifiers other than the dispatcher's members, not {name!r}")
            for op in ops:
                if op in seen:
                    raise ValueError(f"Operation {op.name} is carried out by two blocks (or is the dispatcher's own)")
                seen.append(op)
        missing = [op.name for op in Op if op not in seen]
        if missing:
            raise ValueError(f"No block carries out {', '.join(missing)}")
        cache = CachePortSignature(entries)
        super().__init__(
            {
                "req": In(RequestSignature()),
                "resp": Out(ResponseSignature()),
                **{name: Out(OperationSignature()) for name in self.blocks},
                "ready": In(1),
                "mode": In(Mode),
                "in_vmx": In(1),
                "current_valid": In(1),
                "current": In(cache.entry_bits),
                "vmxon_allowed": In(1),
                "cache": Out(cache),
                "mark_dirty": Out(1),
                "flags_en": Out(1),
                "flags": Out(64),
                "non_root": In(1),
                "guest": Out(GuestDecisionSignature()),
                "shutdown": In(1),
                "abort": In(3),
                "in_smm": In(1),
                "monitor_valid": In(1),
                "dual_active": In(1),
                "smi_to_dual": In(1),
                "returned": In(1),
                "smi_pending": In(1),
                "smi_pending_io": In(32),
                "take_smi": Out(1),
            }
        )

    @property
    def latency(self) -> int:
        return 2

    def _start_block(self, m: Module, ports: list, op) -> None:  # noqa: ANN001
        """Start the block of operation ``op``."""
        for port, ops in zip(ports, self.blocks.values(), strict=True):
            if ops:
                m.d.comb += port.start.eq(op.as_value().matches(*ops))

    def _smi_after_return(self, m: Module, own, operation, delivering, registered, joined, done) -> None:  # noqa: ANN001
        """States after a VM entry that returned from SMM: the SMI held in SMM (REPLAY.md "SMM"; the model's
        ``_after_return_from_smm``), if SMIs are not blocked now (34.15.4.9), is delivered as a request of its
        own (an SMM VM exit, or the default treatment after a deactivation); the entry's response follows,
        unless the delivery shut the processor down."""
        (r_outcome, r_value), (outcome, result) = registered, joined
        io = data.View(IoState, self.smi_pending_io)  # the held SMI's I/O state field (table 34-5)
        with m.State("SMI_AFTER_RETURN"):
            # A cycle after the entry: SMM left and the interruptibility state settled.
            blocked = self.dual_active & self.mode.smi_blocking
            with m.If(self.smi_pending & ~self.in_smm & ~blocked):
                m.d.comb += self.take_smi.eq(1)
                m.d.sync += [
                    operation.op.eq(Op.SMI),
                    operation.value.eq(Mux(io.direction_in, IO_SMI_IN, 0) | Mux(io.io_smi, IO_SMI, 0)),
                    operation.index.eq(io.port),
                    operation.io_size.eq(io.length - 1),
                    delivering.eq(1),
                ]
                m.next = "SMI_DELIVER_START"
            with m.Else():
                m.next = "RESPOND"

        with m.State("SMI_DELIVER_START"):
            self._smi(m, own)
            m.next = "SMI_DELIVER"

        with m.State("SMI_DELIVER"):
            shutdown = data.View(Outcome, outcome).status == Status.SHUTDOWN
            with m.If(done):
                m.d.sync += delivering.eq(0)
                m.next = "RESPOND"
                with m.If(shutdown):
                    m.d.sync += [r_outcome.eq(outcome), r_value.eq(result)]

    def _smi(self, m: Module, own) -> None:  # noqa: ANN001
        """An SMI: the ``smm`` block's (the default treatment, or held pending), or the ``dual`` block's (an SMM VM
        exit); a unit without SMM answers ENTRY_NOT_IMPLEMENTED."""
        if not self.has_smm:
            finish(m, own, Status.ENTRY_NOT_IMPLEMENTED)
        elif not self.has_dual:
            m.d.comb += getattr(self, SMM_BLOCK).start.eq(1)
        else:
            m.d.comb += getattr(self, SMM_BLOCK).start.eq(~self.smi_to_dual)
            m.d.comb += getattr(self, DUAL_BLOCK).start.eq(self.smi_to_dual)

    def _vmcall(self, m: Module, own) -> None:  # noqa: ANN001
        """VMCALL in VMX root operation (SDM 30.3): VMfail(1) in SMM, without the dual-monitor treatment or with
        IA32_SMM_MONITOR_CTL.valid = 0; else the ``dual`` block's."""
        if not self.has_dual:
            vmfail(m, own, VmError.VMCALL_IN_ROOT, current_valid=self.current_valid)
            return
        with m.If(~self.in_smm & self.monitor_valid):
            m.d.comb += getattr(self, DUAL_BLOCK).start.eq(1)
        with m.Else():
            vmfail(m, own, VmError.VMCALL_IN_ROOT, current_valid=self.current_valid)

    def elaborate(self, platform):
        m = Module()
        ports = [getattr(self, name) for name in self.blocks]
        mode = self.mode

        # The request, and the operation accepted last (held until the next one).
        accept = Signal()
        request = Signal(Request)
        operation = Signal(Request)
        m.d.comb += [
            request.op.eq(self.req.op),
            request.size.eq(self.req.size),
            request.index.eq(self.req.index),
            request.value.eq(self.req.value),
            request.length.eq(self.req.length),
            request.gpr.eq(self.req.gpr),
            request.io_size.eq(self.req.io_size),
        ]
        with m.If(accept):
            m.d.sync += operation.eq(request)
        op = operation.op
        for port in ports:
            m.d.comb += [port.accept.eq(accept), port.request.eq(request), port.operation.eq(operation)]

        # Mode checks, registered: the state they read changes at least two cycles
        # before the next DISPATCH (an element write, VMXON and VMXOFF all respond first).
        compatibility_mode = mode.efer_lma & ~mode.cs_l
        ud_prefix = Signal()  # the common start of the VMX instructions (SDM 30.3)
        vmxon_ud = Signal()
        vmcall_ud = Signal()
        cpl_nonzero = Signal()
        m.d.sync += [
            ud_prefix.eq(~self.in_vmx | ~mode.cr0_pe | mode.vm86 | compatibility_mode),
            vmxon_ud.eq(~mode.cr0_pe | ~mode.cr4_vmxe | mode.vm86 | compatibility_mode),
            vmcall_ud.eq(~self.in_vmx | mode.vm86 | compatibility_mode),
            cpl_nonzero.eq(mode.cpl != 0),
        ]
        ud = Signal()
        gp = Signal()
        guest = self.guest
        m.d.comb += [
            guest.ud.eq(Mux(op == Op.VMXON, vmxon_ud, Mux(op == Op.VMCALL, 0, ud_prefix))),
            guest.cpl_nonzero.eq(cpl_nonzero),
        ]
        with m.Switch(op):
            with m.Case(Op.VMXON):
                vmxon_gp = ~self.in_vmx & (~mode.cr0_cr4_fixed_ok | ~self.vmxon_allowed)
                m.d.comb += [ud.eq(vmxon_ud), gp.eq(cpl_nonzero | vmxon_gp)]
            with m.Case(Op.VMCALL):
                m.d.comb += [ud.eq(vmcall_ud), gp.eq(cpl_nonzero)]
            with m.Case(Op.RDMSR, Op.WRMSR):
                m.d.comb += gp.eq(cpl_nonzero)
            with m.Case(Op.GET, Op.SET, *_SMM_OPS, *self.blocks.get(GUEST_BLOCK, ())):
                pass  # the guest events' checks are their block's; SMI and RSM have none (RSM's #UD is below)
            with m.Default():
                m.d.comb += [ud.eq(ud_prefix), gp.eq(cpl_nonzero)]

        # The dispatcher's own outcomes, and the blocks', joined by an OR (OperationSignature).
        own = OperationSignature().flip().create(path=("dispatcher",))
        done = own.done
        outcome = own.outcome.as_value()
        result = own.result
        result_en = own.result_en
        for port in ports:
            done = done | port.done
            outcome = outcome | port.outcome.as_value()
            result = result | port.result
            result_en = result_en | port.result_en

        raise_pending = Signal()  # a passed-on request's fault goes back to the guest block
        fault_vector = Signal(8)
        m.d.comb += guest.fault_vector.eq(fault_vector)
        r_outcome = Signal(Outcome)
        r_read = [Signal(name=f"r_read_{name}") for name in self.blocks]  # the value is that block's read_value
        r_value = Signal(64)
        delivering = Signal()  # an SMI after a return from SMM: the entry's response waits, its value kept
        with m.If(result_en[0] & ~delivering):
            m.d.sync += r_value[:32].eq(result[:32])
        with m.If(result_en[1] & ~delivering):
            m.d.sync += r_value[32:].eq(result[32:])

        def take_outcome():
            """Register the joined outcome in every cycle the operation may end, respond after ``done``.

            While no block is done the outcome is 0; registering it anyway keeps ``done`` off the
            registers' enable, the end of the path from the bus through a block's decision.
            """
            m.d.sync += r_outcome.eq(outcome)
            m.d.sync += [read.eq(port.outcome.read) for read, port in zip(r_read, ports, strict=True)]
            with m.If(done):
                m.next = "RESPOND"
            if self.has_dual:
                entered = data.View(Outcome, outcome).status == Status.ENTERED
                is_entry = op.as_value().matches(Op.VMLAUNCH, Op.VMRESUME)
                with m.If(done & entered & self.returned & is_entry & self.smi_pending):
                    m.next = "SMI_AFTER_RETURN"

        def settle():
            """In a cycle a block may be done: its outcome, or a guest's request passed on to its own block
            (with the value the decision gave), or that block's fault brought back to the exception bitmap."""
            with m.If(guest.pass_on):
                m.d.sync += raise_pending.eq(guest.raise_on_fault)
                with m.If(result_en.any()):
                    m.d.sync += operation.value.eq(result)
                m.next = "PASS_ON"
            joined = data.View(Outcome, outcome)
            with m.Elif(raise_pending & done & (joined.status == Status.FAULT)):
                m.d.sync += [raise_pending.eq(0), fault_vector.eq(joined.vector)]
                m.next = "RAISE"
            with m.Else():
                take_outcome()

        with m.FSM(name="dispatcher"):
            with m.State("ACCEPT"):
                m.d.comb += [self.req.ready.eq(self.ready), accept.eq(self.req.valid & self.ready)]
                m.d.sync += raise_pending.eq(0)
                with m.If(accept):
                    m.next = "DISPATCH"

            with m.State("DISPATCH"):
                with m.If(self.shutdown):
                    finish(m, own, Status.SHUTDOWN, result=self.abort)
                with m.Elif(op == Op.SMI):  # whatever the operation: SMIs are not instructions (SDM 34.14.1)
                    self._smi(m, own)
                with m.Elif(self.non_root):
                    m.d.comb += getattr(self, GUEST_BLOCK).start.eq(1)
                with m.Elif((op == Op.RSM) & (~self.in_smm | self.dual_active)):
                    # #UD outside SMM, whatever the CPL (vol. 2B RSM), and in the STM (VMX root, 34.15.3).
                    finish(m, own, Status.FAULT, vector=Vector.UD)
                with m.Elif(ud):
                    finish(m, own, Status.FAULT, vector=Vector.UD)
                with m.Elif(gp):
                    finish(m, own, Status.FAULT, vector=Vector.GP)
                with m.Elif(op == Op.VMCALL):
                    self._vmcall(m, own)
                with m.Else():
                    self._start_block(m, ports, op)
                m.next = "AWAIT_BLOCK"
                settle()

            with m.State("AWAIT_BLOCK"):
                settle()

            with m.State("PASS_ON"):
                self._start_block(m, ports, op)
                m.next = "AWAIT_BLOCK"
                settle()

            with m.State("RAISE"):
                m.d.comb += [getattr(self, GUEST_BLOCK).start.eq(1), guest.raise_fault.eq(1)]
                m.next = "AWAIT_BLOCK"
                settle()

            if self.has_dual:
                self._smi_after_return(m, own, operation, delivering, (r_outcome, r_value), (outcome, result), done)

            with m.State("RESPOND"):
                m.d.comb += self.resp.valid.eq(1)
                # VMfailValid: the error number to the current VMCS, which becomes dirty
                # (idempotent while the response waits).
                with m.If(r_outcome.status == Status.FAIL_VALID):
                    m.d.comb += [self.cache.wr_en.eq(1 << _ERROR_FIELD.half), self.mark_dirty.eq(1)]
                # VMX outcomes write the six arithmetic flags (idempotent while we wait).
                with m.Switch(r_outcome.status):
                    for status in (Status.SUCCEED, Status.FAIL_INVALID, Status.FAIL_VALID):
                        with m.Case(status):
                            m.d.comb += [self.flags_en.eq(1), self.flags.eq(flags_for(status))]
                with m.If(self.resp.ready):
                    m.next = "ACCEPT"

        error_word = Signal(32)
        m.d.comb += error_word.eq(r_outcome.error)
        m.d.comb += [
            self.cache.wr_entry.eq(self.current),
            self.cache.wr_slot.eq(_ERROR_FIELD.slot),
            # The error number's word in both halves: the enable chooses the error field's.
            self.cache.wr_data.eq(Cat(error_word, error_word)),
            self.cache.rd_entry.eq(self.current),
            self.cache.rd_en.eq(0),
        ]

        # The response's fields; they mean something while resp.valid is high (RESPOND).
        value = r_value
        for read, port in zip(reversed(r_read), reversed(ports), strict=True):
            value = Mux(read, port.read_value, value)
        m.d.comb += [
            self.resp.status.eq(r_outcome.status),
            self.resp.error.eq(r_outcome.error),
            self.resp.vector.eq(r_outcome.vector),
            self.resp.value.eq(value),
        ]
        return m
