# amaranth: UnusedElaboratable=no
# (VmxUnit makes its blocks when it is made, so that its latency table can read theirs; a unit
# that is never elaborated is reported where it was made, not once more for each of its blocks.)
"""The VMX unit: a dispatcher and the blocks that carry out its operations, around VMCS storage and machine state.

# Ref: Intel SDM vol. 3C, 30.3 "VMX instructions" (VMXON, VMXOFF, VMPTRLD,
# VMPTRST, VMCLEAR, VMREAD, VMWRITE, VMLAUNCH, VMRESUME, VMCALL), 30.2
# "Conventions" (VMsucceed, VMfailInvalid, VMfailValid), 24.11.2 (operand
# sizes), 26.1-26.2 (checks before VM entry); docs/semantics.md is the contract.

docs/unit.md draws the blocks and their doors, and explains the latency table.
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.layout import CACHE_ENTRIES
from ..arch.ops import Op
from ..vmcs.cache_port import CacheArbiter
from ..vmcs.region import RegionArbiter, RegionPort
from ..vmcs.vmcs_cache import VmcsCache
from ..wishbone import Signature as WishboneSignature
from .dispatcher import DUAL_BLOCK, Dispatcher
from .dual_monitor import DualMonitor
from .entry_checks import Controls, EntryChecker
from .field_access import FieldAccess
from .guest_events import EVENT_OPS, GuestEvents
from .machine_state import MachineState, StateArbiter
from .msr_access import MsrAccess
from .port import GuestTimeSignature, RequestSignature, ResponseSignature, SmmStatusSignature
from .smm import Smm
from .transitions import Transitions, TransitionStub
from .vm_entry import VmEntry
from .vmcs_pointers import VmcsPointers

__all__ = ["VmxUnit", "BLOCKS", "EXIT_ROWS"]

#: The blocks the dispatcher hands operations to, and their operations (VMCALL is its own).
BLOCKS = {
    "pointers": (Op.VMXON, Op.VMXOFF, Op.VMPTRLD, Op.VMPTRST, Op.VMCLEAR),
    "fields": (Op.VMREAD, Op.VMWRITE),
    "entry": (Op.VMLAUNCH, Op.VMRESUME),
    "msrs": (Op.RDMSR, Op.WRMSR, Op.GET, Op.SET),
    "events": EVENT_OPS,
    "smm": (Op.SMI, Op.RSM),
}

#: The latency table's VM-exit rows (``vmxu bench`` measures each), by the ``GuestEvents.latency`` decision
#: that precedes the exit.
EXIT_ROWS = {
    "VM exit (VMCALL)": "exit",
    "VM exit (CPUID)": "exit",
    "VM exit (HLT)": "exit",
    "VM exit (RDTSC)": "exit",
    "VM exit (OUT, unconditional I/O exiting)": "exit",
    "VM exit (IN, I/O bitmap)": "I/O bitmap",
    "VM exit (RDMSR, MSR bitmap)": "MSR bitmap",
    "VM exit (MOV to CR0, guest/host mask)": "CR mask and shadow",
    "VM exit (#GP, exception bitmap)": "exit",
    "VM exit (external interrupt)": "exit",
    "VM exit (NMI)": "exit",
    "VM exit (preemption timer)": "preemption timer",
}


class VmxUnit(wiring.Component):
    """A VT-x-style VMX unit: VMX instructions, VMCS storage, and the state they need.

    One operation at a time on ``req``; its outcome on ``resp``. Blocks, each
    a component with its own latency: ``Dispatcher`` (the port, the checks
    instructions start with, the outcome conventions), ``VmcsPointers``
    (VMXON/VMXOFF/VMPTRLD/VMPTRST/VMCLEAR, the cache's tags), ``FieldAccess``
    (VMREAD/VMWRITE, with the ``FieldDecoder``), ``VmEntry`` (VMLAUNCH/VMRESUME
    up to the ``EntryChecker``'s verdict, then ``EntryTransition``),
    ``MsrAccess`` (RDMSR/WRMSR/GET/SET); storage: ``VmcsCache`` (on-die
    fields of up to ``cache_entries`` VMCSs, its data port shared through a
    ``CacheArbiter``), ``RegionPort`` (the Wishbone master, shared through a
    ``RegionArbiter``), ``MachineState`` (processor state elements).

    Latency, from the cycle a request is accepted to the cycle its response
    is taken, with a bus slave that acknowledges one clock after the strobe
    and a requester that takes the response at once: ``latency``, by
    operation class, the dispatcher's 2 cycles plus the block's (``vmxu
    bench`` measures every row). After reset ``req.ready`` stays low while
    the machine state restores its power-up values.

    Members
    -------
    req : In(RequestSignature())
    resp : Out(ResponseSignature())
    bus : Out(wishbone.Signature(addr_width=30))
        Wishbone B4 classic master, 32-bit data, for VMCS and VMXON regions.
    tsc : In(64)
        The platform's time-stamp counter (RDTSC reads it; RUN counts the preemption timer from it).
    guest_time : Out(GuestTimeSignature())
        When a core that does not send RUN at every instruction boundary should send it, and its value
        (rtl/vmx/port.py; docs/guests.md).
    smm_status : Out(SmmStatusSignature())
        With guests: SMM, VMX non-root operation, SMBASE, the dual-monitor treatment and the MSEG base, for the
        core's trap-register bank and the SoC's SMRAM decode (docs/smm-soc.md); no delay.
    """

    def __init__(self, *, cache_entries: int = CACHE_ENTRIES, guests: bool = True, dual_monitor: bool | None = None):
        if dual_monitor is None:
            dual_monitor = guests
        if dual_monitor and not guests:
            raise ValueError("The dual-monitor treatment needs SMM and VM exits: a unit with guests (guests=True)")
        self.cache_entries = n = cache_entries
        #: False leaves VM entries and exits out (VMLAUNCH/VMRESUME answer ENTRY_NOT_IMPLEMENTED after
        #: their checks) and the guest-event requests (CPUID to RUN answer #UD): the SoC's core does not
        #: run guests yet or issue those requests, and the iCE40 has no room for them.
        self.guests = guests
        #: The dual-monitor treatment of SMIs and SMM (rtl/vmx/dual_monitor.py; by default exactly with
        #: guests); IA32_VMX_BASIC bit 49 reports it.
        self.dual_monitor = dual_monitor
        self.cache = VmcsCache(n)
        self.region = RegionPort(n)
        self.state = MachineState(dual_monitor=dual_monitor, smbase_mirror=guests)
        self.checker = EntryChecker(n)
        self.transitions = Transitions(n, dual_monitor=dual_monitor) if guests else TransitionStub()
        self.events = GuestEvents(n, guests=guests, region_latency=self.region.latency)
        blocks = BLOCKS if guests else {name: ops for name, ops in BLOCKS.items() if name != "smm"}
        if dual_monitor:
            blocks = {**blocks, DUAL_BLOCK: ()}
        self.smm = Smm(n, region_latency=self.region.latency) if guests else None
        self.dual = DualMonitor(n, region_latency=self.region.latency) if dual_monitor else None
        self.dispatcher = Dispatcher(n, blocks)
        self.pointers = VmcsPointers(n, region_latency=self.region.latency)
        self.fields = FieldAccess(n, region_latency=self.region.latency)
        self.entry = VmEntry(
            n,
            checks_latency=self.checker.latency,
            transition_latency=self.transitions.latency,
            dual_monitor=dual_monitor,
        )
        self.msrs = MsrAccess()
        # Cache data port: the region port during fill and write-back, the checker while it walks, the
        # transitions' walk and their exit information, the exit decision's reads, the dispatcher's
        # VMfailValid error number, else VMREAD/VMWRITE (the default).
        cache_clients = ("region", "checker", "walk", "transitions", "events", "dispatcher", "fields")
        region_clients = ("pointers", "transitions", "events", "smm", "fields")
        # Element port: the transitions' walk, the guest events (HLT, shadowed CR reads), SMI delivery and
        # RSM, else the MSR and element block, which presents a value to learn whether it faults before
        # it writes.
        state_clients = ("transitions", "events", "smm", "msrs")
        if dual_monitor:
            cache_clients = (*cache_clients[:-2], "dual", *cache_clients[-2:])
            region_clients = (*region_clients[:-1], "dual", region_clients[-1])
            state_clients = (*state_clients[:-1], "dual", state_clients[-1])
        if not guests:
            cache_clients = ("region", "checker", "dispatcher", "fields")
            region_clients = ("pointers", "fields")
            state_clients = ("events", "msrs")
        self.cache_arbiter = CacheArbiter(n, cache_clients)
        self.region_arbiter = RegionArbiter(n, region_clients)
        self.state_arbiter = StateArbiter(state_clients)
        members = {
            "req": In(RequestSignature()),
            "resp": Out(ResponseSignature()),
            "bus": Out(WishboneSignature(addr_width=30)),
            "tsc": In(64),
            "guest_time": Out(GuestTimeSignature()),
        }
        if guests:
            members["smm_status"] = Out(SmmStatusSignature())
        super().__init__(members)

    @property
    def latency(self) -> dict[str, int]:
        """Cycles from a request's acceptance to its response, by operation class (docs/unit.md)."""
        table = {}
        for block in (self.pointers, self.fields, self.entry, self.msrs):
            table.update({what: self.dispatcher.latency + cycles for what, cycles in block.latency.items()})
        if self.guests:
            table.update({what: self.dispatcher.latency + cycles for what, cycles in self.smm.latency.items()})
            # A VM exit: the guest events' decision (by what it reads), then the exit.
            exited = self.transitions.latency["exited"]
            for row, decision in EXIT_ROWS.items():
                table[row] = self.dispatcher.latency + self.events.latency[decision] + exited
        if self.dual is not None:
            table.update(self._dual_monitor_latency())
        two_dirty = self.pointers.vmxoff_latency(dirty=2)
        table["VMXOFF (two dirty VMCSs written back)"] = self.dispatcher.latency + two_dirty
        return table

    def elaborate(self, platform):
        m = Module()
        m.submodules.cache = cache = self.cache
        m.submodules.region = region = self.region
        m.submodules.state = state = self.state
        m.submodules.checker = checker = self.checker
        m.submodules.transitions = transitions = self.transitions
        m.submodules.events = events = self.events
        m.submodules.dispatcher = dispatcher = self.dispatcher
        m.submodules.pointers = pointers = self.pointers
        m.submodules.fields = fields = self.fields
        m.submodules.entry = entry = self.entry
        m.submodules.msrs = msrs = self.msrs
        m.submodules.cache_arbiter = cache_arbiter = self.cache_arbiter
        m.submodules.region_arbiter = region_arbiter = self.region_arbiter
        m.submodules.state_arbiter = state_arbiter = self.state_arbiter

        wiring.connect(m, wiring.flipped(self.req), dispatcher.req)
        wiring.connect(m, dispatcher.resp, wiring.flipped(self.resp))
        wiring.connect(m, wiring.flipped(self.bus), region.bus)

        # Operations, from the dispatcher to the blocks; VM entry hands on to the transition.
        wiring.connect(m, dispatcher.pointers, pointers.op)
        wiring.connect(m, dispatcher.fields, fields.op)
        wiring.connect(m, dispatcher.entry, entry.op)
        wiring.connect(m, dispatcher.msrs, msrs.op)
        wiring.connect(m, dispatcher.events, events.op)
        wiring.connect(m, entry.transition, transitions.entry)
        wiring.connect(m, entry.checks, checker.checks)

        # Storage and the ports its clients hold.
        wiring.connect(m, cache_arbiter.cache, cache.port)
        wiring.connect(m, region.cache, cache_arbiter.region)
        wiring.connect(m, checker.cache, cache_arbiter.checker)
        wiring.connect(m, dispatcher.cache, cache_arbiter.dispatcher)
        wiring.connect(m, fields.cache, cache_arbiter.fields)
        wiring.connect(m, pointers.tag_port, cache.tag_port)
        wiring.connect(m, region_arbiter.port, region.command)
        wiring.connect(m, pointers.region, region_arbiter.pointers)
        wiring.connect(m, fields.region, region_arbiter.fields)
        wiring.connect(m, state_arbiter.state, state.port)
        wiring.connect(m, msrs.state, state_arbiter.msrs)
        wiring.connect(m, events.state, state_arbiter.events)
        controls = self._controls(m)
        m.d.comb += [
            events.controls.eq(controls),
            events.mode.eq(state.mode),
            events.rflags.eq(state.rflags),
            events.current.eq(pointers.current),
            events.tsc.eq(self.tsc),
            self.guest_time.due.eq(events.guest_time.due),
            self.guest_time.cycles.eq(events.guest_time.cycles),
            events.ud.eq(dispatcher.guest.ud),
            events.cpl_nonzero.eq(dispatcher.guest.cpl_nonzero),
            events.raise_fault.eq(dispatcher.guest.raise_fault),
            events.fault_vector.eq(dispatcher.guest.fault_vector),
            dispatcher.guest.pass_on.eq(events.pass_on),
            dispatcher.guest.raise_on_fault.eq(events.raise_on_fault),
        ]
        # SMM (with guests): an SMI in VMX operation hides it until RSM (vmx_held, SDM 34.14.1).
        in_vmx = pointers.in_vmx
        if self.guests:
            self._connect_transitions(m, controls)
            in_vmx = self._connect_smm(m, controls)
            self._connect_dual(m)
        else:
            # Nothing reads these without guests: the stub never enters one, nor is the unit ever in SMM.
            m.d.comb += [events.non_root.eq(0), events.timer.eq(0), msrs.in_smm.eq(0), dispatcher.in_smm.eq(0)]
            m.d.comb += [checker.in_smm.eq(0), events.in_smm.eq(0)]
            m.d.comb += [pointers.dual_active.eq(0), dispatcher.dual_active.eq(0), dispatcher.monitor_valid.eq(0)]
            m.d.comb += [msrs.dual_active.eq(0), dispatcher.smi_to_dual.eq(0), dispatcher.returned.eq(0)]

        # The state the blocks share: the current VMCS, VMX operation, the mode bits.
        m.d.comb += [
            pointers.mark_dirty.eq(fields.mark_dirty | dispatcher.mark_dirty | self._transitions_dirty()),
            dispatcher.ready.eq(state.ready),
            dispatcher.mode.eq(state.mode),
            dispatcher.in_vmx.eq(in_vmx),
            dispatcher.current_valid.eq(pointers.current_valid),
            dispatcher.current.eq(pointers.current),
            dispatcher.vmxon_allowed.eq(msrs.vmxon_allowed),
            msrs.in_vmx.eq(in_vmx),
            state.flags_en.eq(dispatcher.flags_en),
            state.flags.eq(dispatcher.flags),
            fields.current_valid.eq(pointers.current_valid),
            fields.current.eq(pointers.current),
            fields.current_page.eq(pointers.current_page),
            entry.current_valid.eq(pointers.current_valid),
            entry.current.eq(pointers.current),
            entry.current_launch.eq(pointers.current_launch),
            entry.movss_blocking.eq(state.mode.movss_blocking),
            checker.efer_lma.eq(state.mode.efer_lma),
        ]
        return m

    def _dual_monitor_latency(self) -> dict[str, int]:
        """The dual-monitor rows: the activation, an SMM VM exit from VMX root operation with the SMM-transfer
        VMCS cached (not current), a VM entry that returns from SMM to VMX root operation with no VMCS current
        after it (the link pointer all ones) and no SMI held (docs/unit.md)."""
        disp, dual, transitions = self.dispatcher.latency, self.dual.latency, self.transitions.latency
        returning = (
            disp
            + dual["return check (to VMX root)"]
            + self.checker.latency
            + transitions["entered (returning from SMM)"]
            + dual["return finish (to VMX root, no current VMCS)"]
        )
        smm_exit = disp + dual["SMM VM exit (switch: cached)"] + transitions["SMM VM exit"]
        return {
            "VMCALL (dual-monitor activation)": disp + dual["VMCALL (activation)"] + transitions["activation"],
            "SMM VM exit (SMI, from VMX root)": smm_exit,
            "VMLAUNCH returning from SMM (to VMX root)": returning,
            "VMRESUME returning from SMM (to VMX root)": returning,
        }

    def _controls(self, m: Module):
        """The current VMCS's controls as the blocks read them: the entry checks loaded them at the last VM
        entry; with the dual-monitor treatment the dual block's while it overrides them (an SMM VM exit, the
        guest of a return from SMM resumed from the executive VMCS)."""
        checked = self.checker.checks.controls
        if self.dual is None:
            return checked
        controls = Signal(Controls)
        override = self.dual.controls_override
        m.d.comb += controls.eq(Mux(override, self.dual.controls.as_value(), checked.as_value()))
        return controls

    def _transitions_dirty(self):
        dirty = self.transitions.mark_dirty if self.guests else 0
        return dirty | self.dual.mark_dirty if self.dual is not None else dirty

    def _connect_transitions(self, m: Module, controls) -> None:
        """The transitions' ports: the cache, the bus and the element port, the exit the guest events ask
        for, the preemption timer, the launch state (non-root operation: ``_connect_smm``)."""
        transitions, events = self.transitions, self.events
        wiring.connect(m, transitions.walk_cache, self.cache_arbiter.walk)
        wiring.connect(m, transitions.cache, self.cache_arbiter.transitions)
        wiring.connect(m, events.cache, self.cache_arbiter.events)
        wiring.connect(m, transitions.region, self.region_arbiter.transitions)
        wiring.connect(m, events.region, self.region_arbiter.events)
        wiring.connect(m, transitions.state, self.state_arbiter.transitions)
        if self.dual is None:
            wiring.connect(m, events.exit, transitions.exit)
        wiring.connect(m, transitions.msr_list, self.msrs.msr_list)
        m.d.comb += [
            transitions.controls.eq(controls),
            transitions.mode.eq(self.state.mode),
            transitions.rflags.eq(self.state.rflags),
            transitions.current.eq(self.pointers.current),
            transitions.current_page.eq(self.pointers.current_page),
            transitions.timer_write.eq(events.timer_write),
            transitions.timer_value.eq(events.timer_value),
            self.pointers.set_launched.eq(transitions.set_launched),
            events.timer.eq(transitions.timer),
        ]

    def _connect_smm(self, m: Module, controls):  # noqa: ANN001
        """SMI delivery and RSM: their ports, SMM, and the VMX operation an SMI hides until RSM (returned)."""
        smm, transitions = self.smm, self.transitions
        m.submodules.smm = smm
        wiring.connect(m, self.dispatcher.smm, smm.op)
        wiring.connect(m, smm.region, self.region_arbiter.smm)
        wiring.connect(m, smm.state, self.state_arbiter.smm)
        non_root = transitions.non_root & ~smm.vmx_held
        m.d.comb += [
            smm.in_vmx.eq(self.pointers.in_vmx),
            smm.non_root.eq(transitions.non_root),
            smm.pin_controls.eq(controls.pin),
            smm.mode.eq(self.state.mode),
            smm.rflags.eq(self.state.rflags),
            self.events.non_root.eq(non_root),
            self.dispatcher.non_root.eq(non_root),
            self.dispatcher.in_smm.eq(smm.in_smm),
            self.checker.in_smm.eq(smm.in_smm),
            self.events.in_smm.eq(smm.in_smm),
            transitions.in_smm.eq(smm.in_smm),
            self.dispatcher.shutdown.eq(transitions.shutdown | smm.shutdown),
            self.dispatcher.abort.eq(Mux(smm.shutdown, 0, transitions.abort)),
            self.smm_status.in_smm.eq(smm.in_smm),
            self.smm_status.non_root.eq(non_root),
            self.smm_status.smbase.eq(self.state.smbase),
            self.smm_status.mseg.eq(Cat(Const(0, 12), self.msrs.monitor_ctl[12:32])),
            self.smm_status.dual_active.eq(self.dual.active if self.dual is not None else 0),
        ]
        return self.pointers.in_vmx & ~smm.vmx_held

    def _connect_dual(self, m: Module) -> None:
        """The dual-monitor treatment: its ports, the exit it shares with the guest events, whether it is
        active; without it VMCALL in VMX root operation is VMfail(1) and nothing is active."""
        dual, pointers, dispatcher = self.dual, self.pointers, self.dispatcher
        if dual is None:
            m.d.comb += [pointers.dual_active.eq(0), dispatcher.dual_active.eq(0), dispatcher.monitor_valid.eq(0)]
            m.d.comb += [self.msrs.dual_active.eq(0), self.smm.enter.eq(0), self.msrs.in_smm.eq(self.smm.in_smm)]
            m.d.comb += [self.smm.leave.eq(0), self.transitions.returning.eq(0), self.transitions.executive_page.eq(0)]
            m.d.comb += [pointers.switch.start.eq(0), dispatcher.smi_to_dual.eq(0), self.smm.blocked.eq(0)]
            m.d.comb += [self.smm.take.eq(0), dispatcher.returned.eq(0)]
            return
        m.submodules.dual = dual
        wiring.connect(m, dispatcher.dual, dual.op)
        wiring.connect(m, dual.cache, self.cache_arbiter.dual)
        wiring.connect(m, dual.region, self.region_arbiter.dual)
        wiring.connect(m, dual.state, self.state_arbiter.dual)
        wiring.connect(m, dual.switch, pointers.switch)
        wiring.connect(m, self.entry.smm_return, dual.entry_check)
        wiring.connect(m, self.transitions.smm_return, dual.entry_finish)
        # One exit at a time: the guest events' (in non-root operation) or the activation's (in root).
        events, transitions = self.events, self.transitions
        m.d.comb += [
            transitions.exit.start.eq(events.exit.start | dual.exit.start),
            transitions.exit.cause.eq(Mux(dual.exit.start, dual.exit.cause, events.exit.cause)),
        ]
        for client in (events.exit, dual.exit):
            m.d.comb += [
                client.done.eq(transitions.exit.done),
                client.status.eq(transitions.exit.status),
                client.value.eq(transitions.exit.value),
            ]
        active = dual.active
        m.d.comb += [
            dual.probe_hit.eq(pointers.probe_hit),
            dual.probe_entry.eq(pointers.probe_entry),
            dual.probe_launch.eq(pointers.probe_launch),
            pointers.probe_page.eq(dual.probe_page),
            dual.monitor_ctl.eq(self.msrs.monitor_ctl),
            dual.current_valid.eq(pointers.current_valid),
            dual.current.eq(pointers.current),
            dual.current_page.eq(pointers.current_page),
            dual.current_launch.eq(pointers.current_launch),
            dual.vmxon_page.eq(pointers.vmxon_page),
            dual.non_root.eq(transitions.non_root),
            dual.mode.eq(self.state.mode),
            self.smm.enter.eq(dual.enter_smm),
            self.smm.leave.eq(dual.leave_smm),
            dual.in_smm.eq(self.smm.in_smm),
            transitions.returning.eq(self.entry.returning),
            transitions.executive_page.eq(dual.executive_page),
            pointers.dual_active.eq(active),
            dispatcher.dual_active.eq(active),
            dispatcher.monitor_valid.eq(self.msrs.monitor_ctl[0]),
            self.msrs.dual_active.eq(active),
            # The MSR lists of an SMM VM exit see SMM (the exit ends in it: IA32_SMBASE, IA32_SMM_MONITOR_CTL).
            self.msrs.in_smm.eq(self.smm.in_smm | dual.exiting),
            dispatcher.smi_to_dual.eq(active & ~self.smm.in_smm & ~self.state.mode.smi_blocking),
            # SMIs a return from SMM left blocked are held (34.15.4.9); the held one follows a return.
            self.smm.blocked.eq(active & self.state.mode.smi_blocking),
            dispatcher.returned.eq(self.entry.returning),
            dispatcher.smi_pending.eq(self.smm.pending),
            dispatcher.smi_pending_io.eq(self.smm.pending_io),
            self.smm.take.eq(dispatcher.take_smi),
        ]
