# amaranth: UnusedElaboratable=no
# (Transitions makes its walker and checker when it is made, so that its latency can read theirs.)
"""VM entries and VM exits: the transitions between VMX root and non-root operation.

# Ref: Intel SDM vol. 3C, 26.3 "Checking and loading guest state", 26.6-26.7
# (event injection, exits before the first guest instruction), 26.8 "VM-entry
# failures during or after loading guest state", 27.2 "Recording VM-exit
# information", 27.3 "Saving guest state", 27.5 "Loading host state";
# docs/semantics.md "VM entry" and "VM exit".

``Transitions`` takes VMLAUNCH/VMRESUME from ``VmEntry`` once the checks on
the controls and the host state passed (``entry``), and the VM exits the guest
events decide (``exit``). It walks the state-action table with a
``TransitionWalk``, checks the guest state in the same reads with a
``GuestStateChecker``, reads the VMCS link pointer and the PDPTEs over the
bus, writes the exit information, and keeps the state of non-root operation:
``non_root``, the VMX-preemption timer.
"""

from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import ENTRY, PIN, PROC
from ..arch.errors import EXIT_REASON_ENTRY_FAILURE, ExitReason
from ..arch.events import EntryFailureQualification, InterruptionInfo, VmxAbort
from ..arch.layout import ABORT_WORD
from ..arch.msrs import (
    IA32_EFER,
    IA32_FS_BASE,
    IA32_GS_BASE,
    IA32_SMBASE,
    IA32_SMM_MONITOR_CTL,
    MSR_LIST_MAX_ENTRIES,
    VMCS_REVISION_ID,
)
from ..arch.ops import Op, Status
from ..arch.smm import EXIT_REASON_FROM_ROOT
from ..vmcs.cache_port import CachePortSignature
from ..vmcs.region import RegionCommand, RegionCommandSignature
from .entry_checks import Controls
from .guest_checks import GuestStateChecker
from .machine_state import Mode, StatePortSignature
from .msr_access import MsrListSignature
from .operation import OperationSignature, finish
from .transition_steps import FieldSlot
from .transition_walk import TransitionKind, TransitionWalk

__all__ = ["Transitions", "ExitCause", "ExitSignature", "ReturnFinishSignature", "TransitionStub"]

#: A PAE PDPTE's reserved bits with MAXPHYADDR 32, low word (8:5, 2:1); the whole high word is reserved.
_PDPTE_RESERVED_LOW = 0x1E6


class ExitCause(data.Struct):
    """What a VM exit records (SDM 27.2) and how it saves the guest (27.3)."""

    reason: 16
    qualification: 32
    intr_info: 32
    error_code: 32
    #: VM_EXIT_INTR_ERROR_CODE is written.
    error_code_valid: 1
    length: 4
    #: VM_EXIT_INSTRUCTION_LEN is written.
    length_valid: 1
    #: VMX_INSTRUCTION_INFO is written (with 0).
    info_valid: 1
    #: An instruction caused the exit (RFLAGS.RF saved as 0).
    instruction: 1
    #: A fault-class exception caused the exit (RF saved as 1).
    fault: 1
    #: An NMI caused the exit (NMIs stay blocked in the host).
    nmi: 1
    #: An SMM VM exit (SDM 34.15.2): EXECUTIVE_VMCS_POINTER := the page ``executive``, GUEST_SMBASE :=
    #: ``smbase``; the exit reason gets bit 29 when ``from_root``.
    smm: 1
    from_root: 1
    #: The activation of the dual-monitor treatment (34.15.6.4-5): the walk stores the state and stops (no
    #: MSR list, no host state: the dual-monitor block loads the STM's).
    activation: 1
    executive: 20
    smbase: 32


class ExitSignature(wiring.Signature):
    """A VM exit, seen from the block that decides it.

    Members
    -------
    start : Out(1)
        Exit now, for ``cause`` (held until ``done``).
    cause : Out(ExitCause)
    done : In(1)
        The exit is complete (one cycle): ``status`` EXITED (``value``: the
        basic exit reason) or SHUTDOWN (a VMX abort; ``value``: the indicator).
    status : In(Status)
    value : In(32)
    """

    def __init__(self):
        super().__init__(
            {
                "start": Out(1),
                "cause": Out(ExitCause),
                "done": In(1),
                "status": In(Status),
                "value": In(32),
            }
        )

    def __eq__(self, other):
        return isinstance(other, ExitSignature)

    def __repr__(self):
        return "ExitSignature()"


class ReturnFinishSignature(wiring.Signature):
    """The transition of a VM entry that returns from SMM, after the guest state and the MSR-load list: SMBASE,
    the pointers' swap, SMM left, the deactivation (34.15.4.5-9).

    Members
    -------
    start : Out(1)
        Held until ``done``.
    done : In(1)
    to_root : In(1)
        With ``done``: the executive monitor was in VMX root operation (the entry answers ENTERED there).
    """

    def __init__(self):
        super().__init__({"start": Out(1), "done": In(1), "to_root": In(1)})

    def __eq__(self, other):
        return isinstance(other, ReturnFinishSignature)

    def __repr__(self):
        return "ReturnFinishSignature()"


def _info_writes() -> list[tuple[FieldSlot, str]]:
    """The exit-information writes (27.2), in order: (field, where its value comes from)."""
    return [
        (FieldSlot.of("VM_EXIT_REASON"), "reason"),
        (FieldSlot.of("EXIT_QUALIFICATION"), "qualification"),
        (FieldSlot.of("VM_EXIT_INTR_INFO"), "intr_info"),
        (FieldSlot.of("VM_EXIT_INTR_ERROR_CODE"), "error_code"),
        (FieldSlot.of("IDT_VECTORING_INFO_FIELD"), "zero"),
        (FieldSlot.of("VM_EXIT_INSTRUCTION_LEN"), "length"),
        (FieldSlot.of("VMX_INSTRUCTION_INFO"), "info"),
        (FieldSlot.of("VM_ENTRY_INTR_INFO_FIELD"), "entry_intr_info"),
        (FieldSlot.of(ENTRY.vmcs_field), "entry_controls"),
        # An SMM VM exit's only (34.15.2.3, 34.15.2.4):
        (FieldSlot.of("EXECUTIVE_VMCS_POINTER"), "executive"),
        (FieldSlot.of("GUEST_SMBASE"), "smbase"),
    ]


class MsrListKind(enum.Enum, shape=2):
    ENTRY_LOAD = 0
    EXIT_STORE = 1
    EXIT_LOAD = 2


#: Each list's count and address fields.
_LIST_FIELDS = {
    MsrListKind.ENTRY_LOAD: (FieldSlot.of("VM_ENTRY_MSR_LOAD_COUNT"), FieldSlot.of("VM_ENTRY_MSR_LOAD_ADDR")),
    MsrListKind.EXIT_STORE: (FieldSlot.of("VM_EXIT_MSR_STORE_COUNT"), FieldSlot.of("VM_EXIT_MSR_STORE_ADDR")),
    MsrListKind.EXIT_LOAD: (FieldSlot.of("VM_EXIT_MSR_LOAD_COUNT"), FieldSlot.of("VM_EXIT_MSR_LOAD_ADDR")),
}

_INFO_WRITES = _info_writes()
#: The writes of an exit that is not an SMM VM exit: all but the last two.
_ORDINARY_WRITES = len(_INFO_WRITES) - 2
#: A VM-entry failure writes the first two only (26.8).
_FAILURE_WRITES = 2
_ERROR_CODE_FIELD = FieldSlot.of("VM_ENTRY_EXCEPTION_ERROR_CODE")


@dataclass
class _MsrList:
    """The MSR list under way: which, its count, the entry's address, the entries done, the entry's MSR and
    data."""

    kind: Signal
    count: Signal
    entry: Signal
    number: Signal
    index: Signal
    data: Signal
    #: The bus command under way writes (a store's words).
    bus_write: Signal


@dataclass
class _ListSteps:
    """What the list's states do besides their own: a cache read, a bus word of the entry, the entry's failure
    (a VM-entry failure or a VMX abort), the list's end."""

    read: Callable
    bus: Callable
    failed: Callable
    done: Callable


def _halves(slot: FieldSlot) -> int:
    """The cache write enables of a field: both halves of a 64-bit one, else its half."""
    return 0b11 if slot.words == 2 else 1 << slot.half


class Transitions(wiring.Component):
    """VM entry after the checks of 26.2 passed, and VM exits, between the VMCS cache and the machine state.

    A VM entry (``entry.start``): the entry walk (its fields checked by the
    guest-state checker as they load), the VMCS link pointer's dword and the
    PDPTEs read over the bus when the checks ask for them, then either a
    VM-entry failure (exit reason and qualification written, the host walk)
    or the deferred loads, the launch state, non-root operation and the
    exits before the guest's first instruction; ENTERED reports the injected
    event (``result``: interruption information, and the error code in bits
    63:32). A VM exit (``exit.start``): the exit-information writes, then the
    exit walk (each element's store and load), back to root operation.

    Latency (``latency``), from ``entry.start`` to ``entry.done``, with a bus
    slave that acknowledges one clock after the strobe, with no MSR lists:
    ``entered`` for an entry that injects nothing and reads no link pointer
    or PDPTE, ``failed`` for one whose guest state fails a check; from
    ``exit.start`` to ``exit.done``: ``exited``.

    Members
    -------
    entry : In(OperationSignature())
        VMLAUNCH, VMRESUME whose checks on the controls and host state passed.
    exit : In(ExitSignature())
    walk_cache, cache : Out(CachePortSignature(entries))
        The walk's reads and writes; the exit information and single field reads.
    state : Out(StatePortSignature())
        The walk's.
    region : Out(RegionCommandSignature(entries))
        The link pointer's dword, the PDPTEs.
    controls : In(Controls)
        The current VMCS's controls, as the entry checks loaded them.
    mode : In(Mode)
    rflags : In(64)
    current : In(entry_bits)
    current_page : In(20)
    set_launched : Out(1)
        The current VMCS's launch state becomes launched (a VMLAUNCH that entered).
    mark_dirty : Out(1)
        The current VMCS was written.
    non_root : Out(1)
        In VMX non-root operation.
    timer : Out(32)
        The VMX-preemption timer.
    timer_write : In(1)
    timer_value : In(32)
        With ``timer_write``: the timer := ``timer_value`` (the guest events count it down).
    msr_list : Out(MsrListSignature())
        The MSR lists' RDMSR/WRMSR (``MsrAccess`` carries them out).
    shutdown : Out(1)
    abort : Out(3)
        After a VMX abort (27.7): the processor is shut down, with this indicator.
    in_smm : In(1)
        In SMM (the guest-state checks of 26.3.1.5).
    returning : In(1)
        The entry under way returns from SMM (``VmEntry.returning``): after its MSR-load list, ``smm_return``
        finishes it (``dual_monitor``).
    executive_page : In(20)
        The executive-VMCS pointer's page of a return from SMM (the link pointer may not be it).
    smm_return : Out(ReturnFinishSignature())
        With ``dual_monitor``.
    """

    def __init__(self, entries: int, *, dual_monitor: bool = False):
        self.entries = entries
        self.dual_monitor = dual_monitor
        self.walker = TransitionWalk(entries)
        self.checker = GuestStateChecker()
        cache = CachePortSignature(entries)
        super().__init__(
            {
                "entry": In(OperationSignature()),
                "exit": In(ExitSignature()),
                "walk_cache": Out(cache),
                "cache": Out(cache),
                "state": Out(StatePortSignature()),
                "region": Out(RegionCommandSignature(entries)),
                "controls": In(Controls),
                "mode": In(Mode),
                "rflags": In(64),
                "current": In(cache.entry_bits),
                "current_page": In(20),
                "set_launched": Out(1),
                "mark_dirty": Out(1),
                "non_root": Out(1),
                "timer": Out(32),
                "timer_write": In(1),
                "timer_value": In(32),
                "msr_list": Out(MsrListSignature()),
                "shutdown": Out(1),
                "abort": Out(3),
                "in_smm": In(1),
                "returning": In(1),
                "executive_page": In(20),
                **({"smm_return": Out(ReturnFinishSignature())} if dual_monitor else {}),
            }
        )

    @property
    def latency(self) -> dict[str, int]:
        walk = self.walker.latency
        # An empty MSR list: its count read, its address read, the test that it is done.
        empty_list = 3
        # The entry walk, then the checker's verdict on the last field.
        verdict = walk(TransitionKind.ENTRY) + self.checker.latency
        # Entered: the commit walk, the MSR-load list, LAUNCH, FIRST_INSTRUCTION (which answers).
        entered = verdict + walk(TransitionKind.COMMIT) + empty_list + 2
        # Failed: the failure information, the host walk, the MSR-load list, ANSWER.
        failed = verdict + _FAILURE_WRITES + walk(TransitionKind.HOST) + empty_list + 1
        # Exited: the exit information, the exit walk (store and load), the MSR-load list, ANSWER.
        exited = _ORDINARY_WRITES + walk(TransitionKind.EXIT) + empty_list + 1
        table = {"entered": entered, "failed": failed, "exited": exited}
        if self.dual_monitor:
            # The activation: all the information writes, the store walk, ANSWER. An SMM VM exit: two more
            # writes (EXECUTIVE_VMCS_POINTER, GUEST_SMBASE). A return from SMM: RETURN_INFO and RETURN_CODE
            # before the dual-monitor block's finish (its own latency), instead of FIRST_INSTRUCTION.
            table["activation"] = len(_INFO_WRITES) + walk(TransitionKind.STORE) + 1
            table["SMM VM exit"] = exited + len(_INFO_WRITES) - _ORDINARY_WRITES
            table["entered (returning from SMM)"] = entered - 1 + 2
        return table

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker = walker = self.walker
        m.submodules.checker = checker = self.checker
        controls = self.controls
        mode = self.mode

        wiring.connect(m, walker.cache, wiring.flipped(self.walk_cache))
        wiring.connect(m, walker.state, wiring.flipped(self.state))
        m.d.comb += [
            checker.valid.eq(walker.walk.valid),
            checker.index.eq(walker.walk.index),
            checker.word.eq(walker.walk.word),
            checker.entry_controls.eq(controls.entry),
            checker.pin_controls.eq(controls.pin),
            checker.intr_info.eq(controls.intr_info),
            checker.in_smm.eq(self.in_smm),
            checker.current_page.eq(self.current_page),
            checker.executive_page.eq(self.executive_page),
            walker.entry.eq(self.current),
            walker.entry_controls.eq(controls.entry),
            walker.exit_controls.eq(controls.exit),
            walker.pin_controls.eq(controls.pin),
            walker.vectoring.eq(controls.intr_info.valid),
        ]

        non_root = Signal()
        timer = Signal(32)
        m.d.comb += [self.non_root.eq(non_root), self.timer.eq(timer), walker.timer.eq(timer)]
        with m.If(walker.timer_load):
            m.d.sync += timer.eq(walker.timer_value)
        with m.Elif(self.timer_write):
            m.d.sync += timer.eq(self.timer_value)

        # The exit under way (or the entry failure's) and how it saves the guest.
        cause = Signal(ExitCause)
        movss_at_exit = Signal()
        nmi_before_entry = Signal()
        from_entry = Signal()  # the answer goes to the entry port (an entry that exits or fails)
        launch = Signal()
        failure = Signal()  # the exit is a VM-entry failure
        qualification = Signal(10)  # a VM-entry failure's: 0, 2, 4, or the failing MSR-load entry's number
        kind = Signal(TransitionKind)
        m.d.comb += [
            walker.kind.eq(kind),
            walker.instruction.eq(cause.instruction),
            walker.fault.eq(cause.fault),
            walker.mov_ss_blocking.eq(movss_at_exit),
            walker.nmi_blocking.eq(Mux(failure, nmi_before_entry, cause.nmi)),
            # An exit from a guest in SMM ends in SMM (an SMM VM exit enters SMM after its walk).
            walker.ends_in_smm.eq(self.in_smm & ~failure),
        ]

        # The cache port of this block: the exit information, and the error code of an injected event.
        cache = self.cache
        m.d.comb += [cache.rd_entry.eq(self.current), cache.wr_entry.eq(self.current)]
        info_step = Signal(range(len(_INFO_WRITES) + 1))
        entry_controls = Cat(
            controls.entry[: ENTRY.bits["IA32E_MODE"]],
            mode.efer_lma,
            controls.entry[ENTRY.bits["IA32E_MODE"] + 1 :],
        )
        sources = {
            "reason": Mux(
                failure,
                EXIT_REASON_ENTRY_FAILURE | cause.reason,
                cause.reason | Mux(cause.from_root, EXIT_REASON_FROM_ROOT, 0),
            ),
            "qualification": Mux(failure, qualification, cause.qualification),
            "intr_info": cause.intr_info,
            "error_code": cause.error_code,
            "zero": 0,
            "length": cause.length,
            "info": 0,
            "entry_intr_info": controls.intr_info.as_value() & 0x7FFF_FFFF,
            "entry_controls": entry_controls,
            "executive": Cat(Const(0, 12), cause.executive),
            "smbase": cause.smbase,
        }
        enabled = {"error_code": cause.error_code_valid, "length": cause.length_valid, "info": cause.info_valid}
        info_value = Signal(32)
        info_write = Signal()
        with m.Switch(info_step):
            for i, (slot, source) in enumerate(_INFO_WRITES):
                with m.Case(i):
                    m.d.comb += [
                        info_value.eq(sources[source]),
                        cache.wr_slot.eq(slot.slot),
                        cache.wr_en.eq(Mux(info_write & enabled.get(source, 1), _halves(slot), 0)),
                    ]
        # A 64-bit field (the qualification, the executive-VMCS pointer) gets bits 63:32 = 0; a one-word field
        # its word on both halves.
        wide = info_step.matches(*(i for i, (slot, _) in enumerate(_INFO_WRITES) if slot.words == 2))
        m.d.comb += cache.wr_data.eq(Cat(info_value, Mux(wide, 0, info_value)))

        # The bus: the link pointer's dword, the PDPTEs, the MSR lists, the VMX-abort indicator.
        region = self.region
        read_page = Signal(20)
        read_word = Signal(10)
        bus_write = Signal()
        bus_wdata = Signal(32)
        m.d.comb += [
            region.cmd.eq(Mux(bus_write, RegionCommand.WRITE_WORD, RegionCommand.READ_WORD)),
            region.page.eq(read_page),
            region.word.eq(read_word),
            region.wdata.eq(bus_wdata),
            region.entry.eq(self.current),
        ]
        pdpte = Signal(range(8))
        pdpte_present = Signal()
        pdpte_low_reserved = Signal()
        pdpte_bad = Signal()

        entry_op = self.entry
        exit_port = self.exit
        answer_value = Signal(64)
        # The event a VM entry injects (a return from SMM to non-root operation: the SMM-transfer VMCS's, latched
        # before the executive VMCS becomes current, with its error code).
        return_info = Signal(InterruptionInfo)
        return_code = Signal(32)
        injected = Signal(InterruptionInfo)
        m.d.comb += injected.eq(Mux(self.returning, return_info.as_value(), controls.intr_info.as_value()))

        # The MSR lists (26.4, 27.4, 27.6): one entry after the other, each a RDMSR/WRMSR at CPL 0.
        msr = self.msr_list
        list_kind = Signal(MsrListKind)
        list_count = Signal(32)
        list_entry = Signal(32)  # the entry's address
        list_number = Signal(range(MSR_LIST_MAX_ENTRIES + 2))  # entries done
        list_index = Signal(32)
        list_data = Signal(64)
        store_count_zero = Signal()  # the exit has no MSR-store list: one walk stores and loads
        shutdown = Signal()
        abort = Signal(3)
        m.d.comb += [
            self.shutdown.eq(shutdown),
            self.abort.eq(abort),
            msr.index.eq(list_index),
            msr.value.eq(list_data),
            msr.write.eq(list_kind != MsrListKind.EXIT_STORE),
        ]

        def start_walk(walk_kind, next_state):
            m.d.sync += kind.eq(walk_kind)
            m.d.comb += walker.start.eq(1)
            m.next = next_state

        def start_exit(reason, *, entering):
            """An exit before the guest's first instruction (from an entry), or one the guest events asked for."""
            m.d.sync += [
                info_step.eq(0),
                movss_at_exit.eq(mode.movss_blocking),
                failure.eq(0),
                from_entry.eq(entering),
            ]
            if reason is not None:
                m.d.sync += cause.eq(0)
                m.d.sync += cause.reason.eq(reason)
            m.next = "EXIT_INFORMATION"

        def fail_entry(qual, reason=ExitReason.ENTRY_FAILURE_GUEST_STATE):
            m.d.sync += [failure.eq(1), qualification.eq(qual), info_step.eq(0), cause.eq(0)]
            m.d.sync += cause.reason.eq(reason)
            m.next = "FAILURE_INFORMATION"

        def start_list(kind):
            """Read the list's count, then its address, then walk its entries (MSR_LIST_*)."""
            m.d.sync += [list_kind.eq(kind), list_number.eq(0)]
            read(_LIST_FIELDS[kind][0])
            m.next = "MSR_LIST_COUNT"

        def read(slot):
            m.d.comb += [cache.rd_slot.eq(slot.slot), cache.rd_en.eq(1)]

        def bus(word, *, write=False, data=0):
            m.d.sync += [
                read_page.eq(list_entry[12:]),
                read_word.eq(list_entry[2:12] + word),
                bus_write.eq(write),
                bus_wdata.eq(data),
            ]

        def list_failed():
            """The entry numbered ``list_number`` + 1 failed: a VM-entry failure (34) or a VMX abort (1, 4)."""
            with m.Switch(list_kind):
                with m.Case(MsrListKind.ENTRY_LOAD):
                    fail_entry(list_number + 1, ExitReason.ENTRY_FAILURE_MSR_LOADING)
                with m.Case(MsrListKind.EXIT_STORE):
                    vmx_abort(VmxAbort.MSR_STORE)
                with m.Default():
                    vmx_abort(VmxAbort.MSR_LOAD)

        def list_done():
            with m.Switch(list_kind):
                with m.Case(MsrListKind.ENTRY_LOAD):
                    m.next = "LAUNCH"
                with m.Case(MsrListKind.EXIT_STORE):
                    start_walk(TransitionKind.HOST, "HOST_WALK")
                with m.Default():
                    m.d.sync += non_root.eq(0)
                    m.next = "ANSWER"

        def vmx_abort(indicator):
            """27.7: the indicator to offset 4 of the current VMCS's region, then shutdown."""
            m.d.sync += [
                read_page.eq(self.current_page),
                read_word.eq(ABORT_WORD),
                bus_write.eq(1),
                bus_wdata.eq(indicator),
                abort.eq(indicator),
            ]
            m.next = "VMX_ABORT"

        # The signals and steps the FSM's states share, for the methods that hold them (one per mechanism).
        # fmt: off
        s = SimpleNamespace(
            m=m, entry_op=entry_op, launch=launch, nmi_before_entry=nmi_before_entry, mode=mode,
            from_entry=from_entry, checker=checker, start_walk=start_walk, exit_port=exit_port, cause=cause,
            start_exit=start_exit, fail_entry=fail_entry, read_page=read_page, read_word=read_word, pdpte=pdpte,
            pdpte_bad=pdpte_bad, region=region, pdpte_present=pdpte_present, pdpte_low_reserved=pdpte_low_reserved,
            walker=walker, start_list=start_list, non_root=non_root, return_info=return_info, controls=controls,
            cache=cache, return_code=return_code, shutdown=shutdown, bus_write=bus_write, answer_value=answer_value,
            abort=abort, timer=timer, injected=injected, info_write=info_write, info_step=info_step, read=read,
            store_count_zero=store_count_zero, failure=failure,
        )
        # fmt: on
        with m.FSM(name="transitions"):
            # In this order: the states' encoding follows it.
            self._entry_states(s)

            self._msr_list_states(
                m,
                _MsrList(list_kind, list_count, list_entry, list_number, list_index, list_data, bus_write),
                _ListSteps(read, bus, list_failed, list_done),
                cause,
                failure,
            )

            self._exit_states(s)
        return m

    def _entry_states(self, s: SimpleNamespace) -> None:
        """A VM entry: the walk, the link pointer and PDPTEs, the commit, the launch state, a return from SMM."""
        m, entry_op, launch, nmi_before_entry, mode = s.m, s.entry_op, s.launch, s.nmi_before_entry, s.mode
        from_entry, checker, start_walk, exit_port = s.from_entry, s.checker, s.start_walk, s.exit_port
        cause, start_exit, fail_entry, read_page = s.cause, s.start_exit, s.fail_entry, s.read_page
        read_word, pdpte, pdpte_bad, region = s.read_word, s.pdpte, s.pdpte_bad, s.region
        pdpte_present, pdpte_low_reserved, walker = s.pdpte_present, s.pdpte_low_reserved, s.walker
        start_list, non_root, return_info, controls = s.start_list, s.non_root, s.return_info, s.controls
        cache, return_code = s.cache, s.return_code
        with m.State("IDLE"):
            with m.If(entry_op.start):
                m.d.sync += [
                    launch.eq(entry_op.operation.op == Op.VMLAUNCH),
                    nmi_before_entry.eq(mode.nmi_blocking),
                    from_entry.eq(1),
                ]
                m.d.comb += checker.start.eq(1)
                start_walk(TransitionKind.ENTRY, "ENTRY_WALK")
            with m.Elif(exit_port.start):
                m.d.sync += cause.eq(exit_port.cause)
                start_exit(None, entering=False)

        with m.State("ENTRY_WALK"):
            with m.If(checker.done):
                with m.If(checker.failed):
                    fail_entry(EntryFailureQualification.DEFAULT)
                with m.Elif(checker.link_failed):
                    fail_entry(EntryFailureQualification.VMCS_LINK_POINTER)
                with m.Elif(checker.link_read):
                    m.d.sync += [read_page.eq(checker.link_pointer[12:]), read_word.eq(0)]
                    m.next = "LINK_POINTER"
                with m.Elif(checker.pdpte_read):
                    m.d.sync += [
                        read_page.eq(checker.pdpte_base[12:]),
                        read_word.eq(checker.pdpte_base[2:12]),
                        pdpte.eq(0),
                        pdpte_bad.eq(0),
                    ]
                    m.next = "PDPTES"
                with m.Else():
                    start_walk(TransitionKind.COMMIT, "COMMIT")

        with m.State("LINK_POINTER"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                with m.If(region.rdata != VMCS_REVISION_ID):
                    fail_entry(EntryFailureQualification.VMCS_LINK_POINTER)
                with m.Elif(checker.pdpte_read):
                    m.d.sync += [
                        read_page.eq(checker.pdpte_base[12:]),
                        read_word.eq(checker.pdpte_base[2:12]),
                        pdpte.eq(0),
                        pdpte_bad.eq(0),
                    ]
                    m.next = "PDPTES"
                with m.Else():
                    start_walk(TransitionKind.COMMIT, "COMMIT")

        with m.State("PDPTES"):
            # Eight words: each PDPTE's low word, then its high word (26.3.1.6).
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                m.d.sync += [pdpte.eq(pdpte + 1), read_word.eq(read_word + 1)]
                with m.If(~pdpte[0]):
                    m.d.sync += [
                        pdpte_present.eq(region.rdata[0]),
                        pdpte_low_reserved.eq((region.rdata & _PDPTE_RESERVED_LOW) != 0),
                    ]
                bad_now = pdpte_bad | (pdpte[0] & pdpte_present & (pdpte_low_reserved | (region.rdata != 0)))
                m.d.sync += pdpte_bad.eq(bad_now)
                with m.If(pdpte == 7):
                    with m.If(bad_now):
                        fail_entry(EntryFailureQualification.PDPTE)
                    with m.Else():
                        start_walk(TransitionKind.COMMIT, "COMMIT")

        with m.State("COMMIT"):
            with m.If(walker.done):
                start_list(MsrListKind.ENTRY_LOAD)

        with m.State("LAUNCH"):
            m.d.comb += self.set_launched.eq(launch)
            if self.dual_monitor:
                with m.If(self.returning):
                    m.next = "RETURN_INFO"
                with m.Else():
                    m.d.sync += non_root.eq(1)
                    m.next = "FIRST_INSTRUCTION"
            else:
                m.d.sync += non_root.eq(1)
                m.next = "FIRST_INSTRUCTION"

        if self.dual_monitor:
            with m.State("RETURN_INFO"):
                # The event the return injects is the SMM-transfer VMCS's (it stops being current).
                m.d.sync += return_info.eq(controls.intr_info)
                m.d.comb += [cache.rd_slot.eq(_ERROR_CODE_FIELD.slot), cache.rd_en.eq(1)]
                m.next = "RETURN_CODE"

            with m.State("RETURN_CODE"):
                m.d.sync += return_code.eq(cache.rd_data.word_select(_ERROR_CODE_FIELD.half, 32))
                m.next = "RETURN_FROM_SMM"

            with m.State("RETURN_FROM_SMM"):
                # 34.15.4.5-9 (the dual-monitor block): SMBASE, the pointers' swap, SMM left; then VMX root
                # operation (ENTERED, no event: error 7 refused one) or the guest of the executive VMCS.
                m.d.comb += self.smm_return.start.eq(1)
                with m.If(self.smm_return.done & self.smm_return.to_root):
                    finish(m, entry_op, Status.ENTERED, result=0)
                    m.next = "IDLE"
                with m.Elif(self.smm_return.done):
                    m.d.sync += non_root.eq(1)
                    m.next = "FIRST_INSTRUCTION"

    def _exit_states(self, s: SimpleNamespace) -> None:
        """A VMX abort, a guest's first instruction, an entry failure and a VM exit: information, walks, answers."""
        m, region, shutdown, non_root, bus_write = s.m, s.region, s.shutdown, s.non_root, s.bus_write
        answer_value, abort, controls, timer, mode = s.answer_value, s.abort, s.controls, s.timer, s.mode
        start_exit, injected, cache, return_code = s.start_exit, s.injected, s.cache, s.return_code
        entry_op, info_write, info_step, start_walk = s.entry_op, s.info_write, s.info_step, s.start_walk
        read, store_count_zero, cause, walker = s.read, s.store_count_zero, s.cause, s.walker
        start_list, failure, from_entry, exit_port = s.start_list, s.failure, s.from_entry, s.exit_port
        with m.State("VMX_ABORT"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                m.d.sync += [shutdown.eq(1), non_root.eq(0), bus_write.eq(0), answer_value.eq(abort)]
                m.next = "ANSWER_SHUTDOWN"

        with m.State("FIRST_INSTRUCTION"):
            # 26.7.4-26.7.6: a preemption timer of 0, an open NMI window, an open interrupt window.
            timer_zero = controls.pin[PIN.bits["ACTIVATE_PREEMPTION_TIMER"]] & (timer == 0)
            nmi_window = controls.proc[PROC.bits["NMI_WINDOW_EXITING"]] & ~mode.nmi_blocking & ~mode.movss_blocking
            interrupt_window = (
                controls.proc[PROC.bits["INTR_WINDOW_EXITING"]]
                & self.rflags[9]
                & ~mode.sti_blocking
                & ~mode.movss_blocking
            )
            with m.If(timer_zero):
                start_exit(ExitReason.PREEMPTION_TIMER, entering=True)
            with m.Elif(nmi_window):
                start_exit(ExitReason.NMI_WINDOW, entering=True)
            with m.Elif(interrupt_window):
                start_exit(ExitReason.INTERRUPT_WINDOW, entering=True)
            with m.Elif(injected.valid & injected.deliver_error_code & ~self.returning):
                m.d.comb += [cache.rd_slot.eq(_ERROR_CODE_FIELD.slot), cache.rd_en.eq(1)]
                m.next = "ERROR_CODE"
            with m.Else():
                info = Mux(injected.valid, injected.as_value(), 0)
                code = Mux(self.returning & injected.valid & injected.deliver_error_code, return_code, 0)
                finish(m, entry_op, Status.ENTERED, result=Cat(info, code))
                m.next = "IDLE"

        with m.State("ERROR_CODE"):
            code = cache.rd_data.word_select(_ERROR_CODE_FIELD.half, 32)
            finish(m, entry_op, Status.ENTERED, result=Cat(controls.intr_info.as_value(), code))
            m.next = "IDLE"

        with m.State("FAILURE_INFORMATION"):
            m.d.comb += [info_write.eq(1), self.mark_dirty.eq(1)]
            m.d.sync += info_step.eq(info_step + 1)
            with m.If(info_step == _FAILURE_WRITES - 1):
                start_walk(TransitionKind.HOST, "HOST_WALK")

        with m.State("EXIT_INFORMATION"):
            m.d.comb += [info_write.eq(1), self.mark_dirty.eq(1)]
            m.d.sync += info_step.eq(info_step + 1)
            # Meanwhile: is there an MSR-store list (its MSRs are read between the store and the load)?
            with m.If(info_step == 0):
                read(_LIST_FIELDS[MsrListKind.EXIT_STORE][0])
            with m.If(info_step == 1):
                store_count = cache.rd_data.word_select(_LIST_FIELDS[MsrListKind.EXIT_STORE][0].half, 32)
                m.d.sync += store_count_zero.eq(store_count == 0)
            last = Mux(cause.smm, len(_INFO_WRITES) - 1, _ORDINARY_WRITES - 1)
            with m.If(info_step == last):
                with m.If(store_count_zero & ~cause.activation):
                    start_walk(TransitionKind.EXIT, "EXIT_WALK")
                with m.Else():
                    start_walk(TransitionKind.STORE, "STORE_WALK")

        with m.State("EXIT_WALK"):
            m.d.comb += self.mark_dirty.eq(1)
            with m.If(walker.done):
                start_list(MsrListKind.EXIT_LOAD)

        with m.State("STORE_WALK"):
            m.d.comb += self.mark_dirty.eq(1)
            with m.If(walker.done & cause.activation):
                m.next = "ANSWER"
            with m.Elif(walker.done):
                start_list(MsrListKind.EXIT_STORE)

        with m.State("HOST_WALK"):
            with m.If(walker.done):
                start_list(MsrListKind.EXIT_LOAD)

        with m.State("ANSWER"):
            with m.If(failure):
                finish(m, entry_op, Status.ENTRY_FAILED, result=EXIT_REASON_ENTRY_FAILURE | cause.reason)
            with m.Elif(from_entry):
                finish(m, entry_op, Status.EXITED, result=cause.reason)
            with m.Else():
                m.d.comb += [exit_port.done.eq(1), exit_port.status.eq(Status.EXITED)]
                m.d.comb += exit_port.value.eq(cause.reason)
            m.next = "IDLE"

        with m.State("ANSWER_SHUTDOWN"):
            with m.If(from_entry):
                finish(m, entry_op, Status.SHUTDOWN, result=answer_value)
            with m.Else():
                m.d.comb += [exit_port.done.eq(1), exit_port.status.eq(Status.SHUTDOWN)]
                m.d.comb += exit_port.value.eq(answer_value)
            m.next = "IDLE"

    def _msr_list_states(self, m: Module, lst: _MsrList, steps: _ListSteps, cause, failure) -> None:  # noqa: ANN001
        """The MSR lists (26.4, 27.4, 27.6): the count and the address from the cache, then each entry's words
        over the bus and its RDMSR/WRMSR at CPL 0 (``msr_list``), the stores' words written back."""
        cache, region, mode, msr = self.cache, self.region, self.mode, self.msr_list
        list_kind, list_count, list_entry = lst.kind, lst.count, lst.entry
        list_number, list_index, list_data, bus_write = lst.number, lst.index, lst.data, lst.bus_write
        read, bus, list_failed, list_done = steps.read, steps.bus, steps.failed, steps.done
        with m.State("MSR_LIST_COUNT"):
            with m.Switch(list_kind):
                for each, (count_slot, addr_slot) in _LIST_FIELDS.items():
                    with m.Case(each):
                        m.d.sync += list_count.eq(cache.rd_data.word_select(count_slot.half, 32))
                        read(addr_slot)
            m.next = "MSR_LIST_ADDRESS"

        with m.State("MSR_LIST_ADDRESS"):
            m.d.sync += list_entry.eq(cache.rd_data[:32])
            m.next = "MSR_LIST_NEXT"

        with m.State("MSR_LIST_NEXT"):
            with m.If(list_number == list_count):
                list_done()
            with m.Elif(list_number == MSR_LIST_MAX_ENTRIES):
                list_failed()
            with m.Else():
                bus(0)
                m.next = "MSR_LIST_INDEX"

        with m.State("MSR_LIST_INDEX"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                m.d.sync += list_index.eq(region.rdata)
                bus(1)
                m.next = "MSR_LIST_RESERVED"

        with m.State("MSR_LIST_RESERVED"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                x2apic = list_index[8:] == 0x8
                loads = list_kind != MsrListKind.EXIT_STORE
                # An exit that ends in SMM (an SMM VM exit; an exit from a guest in SMM; not an entry's
                # failure) may store IA32_SMBASE and load IA32_SMM_MONITOR_CTL (27.4, 27.6, 34.15.5).
                ends_in_smm = (cause.smm | self.in_smm) & ~failure & (list_kind != MsrListKind.ENTRY_LOAD)
                refused_load = list_index.matches(IA32_FS_BASE, IA32_GS_BASE) | (
                    (list_index == IA32_SMM_MONITOR_CTL) & ~ends_in_smm
                )
                refused = x2apic | Mux(loads, refused_load, (list_index == IA32_SMBASE) & ~ends_in_smm)
                with m.If((region.rdata != 0) | refused):
                    list_failed()
                with m.Elif(loads):
                    bus(2)
                    m.next = "MSR_LIST_DATA_LOW"
                with m.Else():
                    m.d.comb += msr.start.eq(1)
                    m.next = "MSR_LIST_ACCESS"

        with m.State("MSR_LIST_DATA_LOW"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                m.d.sync += list_data[:32].eq(region.rdata)
                bus(3)
                m.next = "MSR_LIST_DATA_HIGH"

        with m.State("MSR_LIST_DATA_HIGH"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                m.d.sync += list_data[32:].eq(region.rdata)
                m.next = "MSR_LIST_WRITE"

        with m.State("MSR_LIST_WRITE"):
            # The lists may not change EFER.LMA (docs/semantics.md choice 19).
            changes_lma = (list_index == IA32_EFER) & (list_data[10] != mode.efer_lma)
            with m.If(changes_lma):
                list_failed()
            with m.Else():
                m.d.comb += msr.start.eq(1)
                m.next = "MSR_LIST_ACCESS"

        with m.State("MSR_LIST_ACCESS"):
            with m.If(msr.done):
                with m.If(msr.fault):
                    list_failed()
                with m.Elif(list_kind == MsrListKind.EXIT_STORE):
                    m.d.sync += list_data.eq(msr.rdata)
                    bus(2, write=True, data=msr.rdata[:32])
                    m.next = "MSR_LIST_STORE_LOW"
                with m.Else():
                    m.d.sync += [list_number.eq(list_number + 1), list_entry.eq(list_entry + 16)]
                    m.next = "MSR_LIST_NEXT"

        with m.State("MSR_LIST_STORE_LOW"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                bus(3, write=True, data=list_data[32:])
                m.next = "MSR_LIST_STORE_HIGH"

        with m.State("MSR_LIST_STORE_HIGH"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                m.d.sync += [list_number.eq(list_number + 1), list_entry.eq(list_entry + 16), bus_write.eq(0)]
                m.next = "MSR_LIST_NEXT"


class TransitionStub(wiring.Component):
    """The VM-entry transition of a unit built without guests (``VmxUnit(guests=False)``).

    It answers ``Status.ENTRY_NOT_IMPLEMENTED`` in the cycle of ``entry.start``
    and changes nothing: the SoC's core does not run guests yet, and the iCE40
    has no room for the transitions next to it.

    Latency: 0 cycles from ``entry.start`` to ``entry.done`` (``latency``).
    """

    entry: In(OperationSignature())

    @property
    def latency(self) -> dict[str, int]:
        return {}

    def elaborate(self, platform):
        m = Module()
        with m.If(self.entry.start):
            finish(m, self.entry, Status.ENTRY_NOT_IMPLEMENTED)
        return m
