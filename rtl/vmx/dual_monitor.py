"""The dual-monitor treatment of SMIs and SMM: activation, SMM VM exits, the return from SMM (SDM 34.15).

# Ref: Intel SDM vol. 3C, 30.3 VMCALL (the order of its checks), 34.15.5 (the
# MSEG header, IA32_SMM_MONITOR_CTL), 34.15.6 "Activating the dual-monitor
# treatment" (the checks of 34.15.6.1-2: errors 19, 20, 22, 24; the SMM VM exit
# of 34.15.6.3-5 without MSR lists; the STM's state from the MSEG header,
# 34.15.6.6), 34.15.2 (SMM VM exits), 34.15.4 (VM entries that return from SMM),
# 34.15.7 (deactivation); rtl/arch/smm.py (``STM_LOADS``, the table the model reads
# too); sim/model/dual_monitor.py (the oracle); docs/smm.md.

VMCALL (``op``; the dispatcher sends it in VMX root operation outside SMM when
IA32_SMM_MONITOR_CTL.valid is 1, after #UD and #GP): VMfailInvalid without a
current VMCS, VMfailValid 19 when it is launched; the VM-exit controls, the
VM-exit MSR-store count and address from the cache (20); the eight words of
the MSEG header over the bus (22: the revision identifier, 24: the features);
SMBASE from the element port. Then the transitions' exit (``exit``) records
the VMCALL with exit-reason bit 29, writes EXECUTIVE_VMCS_POINTER (the VMXON
pointer) and GUEST_SMBASE, and stores the executive monitor's state in the
current VMCS, which becomes the SMM-transfer VMCS; this block then loads the
STM's state (``STM_LOADS``, an element read and write a row), enters SMM
(``enter_smm``) and reports EXITED with reason 18.

SMM VM exits (34.15.2), once the treatment is active: an SMI outside SMM that
is not blocked (``op`` SMI; the dispatcher sends it here) and VMCALL in VMX
root operation outside SMM. EXECUTIVE_VMCS_POINTER := the current VMCS (from
non-root operation) or the VMXON pointer (from root); the SMM-transfer VMCS
becomes current (``switch``, VmcsPointers' VMPTRLD sequence); its controls
are read; the transitions' exit records reason 6, 5 (an I/O SMI: the I/O
qualification, then IO_RCX/RSI/RDI := 0 and IO_RIP := RIP) or 18, with bit 29
from root, saves the state with GUEST_SMBASE, walks the MSR lists (the exit
ends in SMM: ``exiting`` makes IA32_SMBASE storable, IA32_SMM_MONITOR_CTL
loadable) and loads the host state; then SMIs and NMIs are blocked and SMM is
entered.

VM entries in SMM (``entry_check`` from ``VmEntry``, after its basic checks):
with "entry to SMM" an ordinary entry (the guest runs in SMM; its exits end in
SMM, its RSM exits with 17: the transitions and the guest events); without it
the entry returns from SMM: the executive-VMCS pointer (16), 18, 7 for an
injection on a return to root, and for a VMCS as executive its launch state
(17) and VM-execution controls (25, ``EXECUTION_STEPS`` read from the cache
or the region); the entry checks then leave the current VMCS's execution
controls out. After the entry's loads (``entry_finish`` from the transitions):
SMBASE := GUEST_SMBASE, the SMM-transfer VMCS := the current one, the current
one := the VMCS link pointer (root; none when all ones) or the executive VMCS
(non-root: its controls are then the guest's, ``controls_override``), SMM
left, the deactivation (SMIs unblocked). The dispatcher then delivers an SMI
held in SMM.

``VmxUnit`` builds this block exactly when it has guests (``dual_monitor``);
IA32_VMX_BASIC bit 49 reports it.

Latency, from ``op.start`` to ``op.done``, with a bus slave that acknowledges
one clock after the strobe: ``latency``, plus the transitions' exit (for the
activation its information writes and the store walk; for an SMM VM exit
``Transitions.latency["exited"]`` and two writes) and, for an SMM VM exit from
another VMCS than the SMM-transfer VMCS, VMPTRLD's fill (and write-back).

Members
-------
op : In(OperationSignature())
cache : Out(CachePortSignature(entries))
region : Out(RegionCommandSignature(entries))
state : Out(StatePortSignature())
exit : Out(ExitSignature())
switch : Out(SwitchSignature())
entry_check : In(ReturnCheckSignature())
    From ``VmEntry``: whether a VM entry returns from SMM, and its checks (34.15.4.1-3).
entry_finish : In(ReturnFinishSignature())
    From ``Transitions``: the end of a VM entry that returns from SMM (34.15.4.5-9).
in_smm : In(1)
leave_smm : Out(1)
    The processor leaves SMM (one cycle).
executive_page : Out(20)
    The executive-VMCS pointer's page of the return under way (for the link pointer's check).
controls : Out(Controls)
    While ``controls_override``: the current VMCS's controls (the entry checks loaded ``Controls`` from the
    VMCS of the last VM entry: during an SMM VM exit, and in the guest a return from SMM resumed from the
    executive VMCS, the current VMCS is another).
controls_override : Out(1)
exiting : Out(1)
    An SMM VM exit (or the activation's) is under way: it ends in SMM.
monitor_ctl : In(32)
    IA32_SMM_MONITOR_CTL (bits 31:12: the MSEG base).
current_valid, current, current_page, current_launch : In
    The current VMCS (``VmcsPointers``).
vmxon_page : In(20)
probe_page : Out(20)
probe_hit, probe_entry, probe_launch : In
    ``VmcsPointers``' look at the executive VMCS: cached, where, its launch state.
non_root : In(1)
mode : In(Mode)
mark_dirty : Out(1)
    The current VMCS was written (the I/O SMI's IO_* fields).
active : Out(1)
    The dual-monitor treatment is active.
transfer_page : Out(20)
    The SMM-transfer VMCS's page (34.15.2.1).
enter_smm : Out(1)
    The processor enters SMM (one cycle).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import ENTRY
from ..arch.errors import ExitReason, VmError
from ..arch.events import IoQualification
from ..arch.fields import FIELD_BY_NAME
from ..arch.layout import LAUNCH_LAUNCHED, LAUNCH_WORD, LOCATION
from ..arch.msrs import MSEG_REVISION_ID, VMCS_REVISION_ID
from ..arch.ops import Op, Status
from ..arch.smm import (
    IO_SMI,
    IO_SMI_IN,
    MSEG_CS_SELECTOR,
    MSEG_FEATURE_IA32E,
    MSEG_FEATURES,
    MSEG_HEADER_WORDS,
    MSEG_REVISION,
    SMM_INTERRUPTIBILITY,
    STM_LOADS,
    StmLoad,
)
from ..arch.state import INTERRUPTIBILITY, element_id
from ..values import struct_value
from ..vmcs.cache_port import CachePortSignature
from ..vmcs.region import RegionCommand, RegionCommandSignature
from ..vmcs.vmcs_cache import PAGE_BITS
from .entry_checks import (
    EXECUTION_STEPS,
    CheckRegisters,
    Controls,
    exit_controls_fail,
    msr_list_address_fails,
    nmi_controls_fail,
    step_logic,
)
from .machine_state import ID_BITS, Mode, StatePortSignature
from .operation import OperationSignature, finish, vmfail
from .transition_steps import FieldSlot
from .transitions import ExitCause, ExitSignature, ReturnFinishSignature
from .vm_entry import ReturnCheckSignature
from .vmcs_pointers import SwitchSignature

__all__ = ["DualMonitor"]

_EXIT_CONTROLS = FieldSlot.of("VM_EXIT_CONTROLS")
_STORE_COUNT = FieldSlot.of("VM_EXIT_MSR_STORE_COUNT")
_STORE_ADDR = FieldSlot.of("VM_EXIT_MSR_STORE_ADDR")
_ENTRY_CONTROLS = FieldSlot.of("VM_ENTRY_CONTROLS")
_ENTRY_INTR_INFO = FieldSlot.of("VM_ENTRY_INTR_INFO_FIELD")
#: The controls the exit's walk and its information writes read (``Controls``), one a cycle.
_CONTROL_READS = (
    (_EXIT_CONTROLS, "exit"),
    (FieldSlot.of("PIN_BASED_VM_EXEC_CONTROL"), "pin"),
    (FieldSlot.of("CPU_BASED_VM_EXEC_CONTROL"), "proc"),
    (_ENTRY_CONTROLS, "entry"),
    (_ENTRY_INTR_INFO, "intr_info"),
    (FieldSlot.of("EXCEPTION_BITMAP"), "exception_bitmap"),
)
#: An I/O SMI's fields besides the qualification (34.15.2.3): the unit keeps no RCX, RSI, RDI (0); IO_RIP.
_IO_WRITES = (FieldSlot.of("IO_RCX"), FieldSlot.of("IO_RSI"), FieldSlot.of("IO_RDI"), FieldSlot.of("IO_RIP"))
_EXECUTIVE = FieldSlot.of("EXECUTIVE_VMCS_POINTER")
_GUEST_SMBASE = FieldSlot.of("GUEST_SMBASE")
_LINK = FieldSlot.of("VMCS_LINK_POINTER")
_SMBASE = element_id("smbase")
_RIP = element_id("rip")
_INTERRUPTIBILITY = element_id("interruptibility")
_SMM = element_id("smm")


@dataclass
class _Activation:
    """The activation's registers (the MSEG header's words, the word and STM_LOADS row under way, the IA-32e
    feature bit, the verdict on the VM-exit controls, the MSR-store count) and the row's element and value."""

    header: list
    word: Signal
    row: Signal
    ia32e: Signal = field(default_factory=lambda: Signal(name="ia32e"))
    controls_bad: Signal = field(default_factory=lambda: Signal(name="controls_bad"))
    store_count: Signal = field(default_factory=lambda: Signal(32, name="store_count"))
    element: Value | None = None
    value: Value | None = None


class DualMonitor(wiring.Component):
    __doc__ = __doc__

    def __init__(self, entries: int, *, region_latency: Mapping[RegionCommand, int]):
        self.entries = entries
        self._region_latency = dict(region_latency)
        cache = CachePortSignature(entries)
        super().__init__(
            {
                "op": In(OperationSignature()),
                "cache": Out(cache),
                "region": Out(RegionCommandSignature(entries)),
                "state": Out(StatePortSignature()),
                "exit": Out(ExitSignature()),
                "switch": Out(SwitchSignature()),
                "entry_check": In(ReturnCheckSignature()),
                "entry_finish": In(ReturnFinishSignature()),
                "in_smm": In(1),
                "leave_smm": Out(1),
                "executive_page": Out(PAGE_BITS),
                "controls": Out(Controls),
                "controls_override": Out(1),
                "exiting": Out(1),
                "probe_page": Out(PAGE_BITS),
                "probe_hit": In(1),
                "probe_entry": In(cache.entry_bits),
                "probe_launch": In(2),
                "monitor_ctl": In(32),
                "current_valid": In(1),
                "current": In(cache.entry_bits),
                "current_page": In(PAGE_BITS),
                "current_launch": In(2),
                "vmxon_page": In(PAGE_BITS),
                "non_root": In(1),
                "mode": In(Mode),
                "mark_dirty": Out(1),
                "active": Out(1),
                "transfer_page": Out(PAGE_BITS),
                "enter_smm": Out(1),
            }
        )

    @property
    def latency(self) -> dict[str, int]:
        """Without the exit: the activation's three field reads, the header's words, the verdict, the control
        reads (``_CONTROL_READS``, one a cycle), SMBASE, the exit's start, then each row of ``STM_LOADS`` (a
        read and a write), SMM entered; an SMM VM exit (other than an I/O SMI's, which writes four more fields)
        with the SMM-transfer VMCS current: RIP read, the control reads, SMBASE, the exit's start, the SMI
        blocking (a read and a write), SMM entered; the return's checks and finish (``VmxUnit.latency`` adds
        them to the entry's)."""
        word = self._region_latency[RegionCommand.READ_WORD]
        checks = 3 + MSEG_HEADER_WORDS * word + 1
        return {
            "VMCALL (activation)": checks + len(_CONTROL_READS) + 1 + 1 + 2 * len(STM_LOADS) + 1,
            "SMM VM exit": 1 + len(_CONTROL_READS) + 1 + 1 + 2 + 1,
            # The SMM-transfer VMCS cached but not current: the switch (2 cycles) and SMM_EXIT_SETTLE.
            "SMM VM exit (switch: cached)": 1 + 3 + len(_CONTROL_READS) + 1 + 1 + 2 + 1,
            # RETURN_CONTROLS, RETURN_EXECUTIVE, RETURN_INTR_INFO, the revision word.
            "return check (to VMX root)": 3 + word,
            # FINISH_SMBASE, FINISH_LINK, FINISH_SWITCH (to none), FINISH_LEAVE, and the cycle of the start.
            "return finish (to VMX root, no current VMCS)": 5,
        }

    def elaborate(self, platform):
        m = Module()
        op, cache = self.op, self.cache
        switch_page = Signal(PAGE_BITS)
        switch_none = Signal()
        m.d.comb += [
            cache.rd_entry.eq(self.current),
            cache.wr_entry.eq(self.current),
            self.switch.page.eq(switch_page),
            self.switch.none.eq(switch_none),
        ]
        cause = Signal(ExitCause)
        m.d.comb += [self.exit.cause.eq(cause), self.probe_page.eq(self.executive_page)]
        activation = self._activation_datapath(m)
        # The guest of a return to non-root operation runs under the executive VMCS's controls until the next
        # VM entry's checks load them again.
        guest_controls = Signal()
        m.d.comb += self.controls_override.eq(self.exiting | guest_controls)
        with m.If(self.entry_check.start | self.exiting):
            m.d.sync += guest_controls.eq(0)

        with m.FSM(name="dual_monitor"):
            with m.State("IDLE"):
                m.d.sync += [switch_page.eq(self.transfer_page), switch_none.eq(0)]
                with m.If(op.start):
                    with m.If(op.operation.op == Op.SMI):
                        self._smm_exit_cause(m, cause, from_root=~self.non_root)
                        m.next = "SMM_EXIT"
                    with m.Elif(self.active):
                        self._smm_exit_cause(m, cause, from_root=1)
                        m.next = "SMM_EXIT"
                    with m.Else():
                        self._activation_checks(m, cause)
                with m.Elif(self.entry_check.start):
                    with m.If(self.active & self.in_smm):
                        self._read(m, _ENTRY_CONTROLS)
                        m.next = "RETURN_CONTROLS"
                    with m.Else():
                        m.d.comb += self.entry_check.done.eq(1)  # not a return from SMM
                with m.Elif(self.entry_finish.start):
                    self._read(m, _GUEST_SMBASE)
                    m.next = "FINISH_SMBASE"
            self._activation_states(m, activation)
            self._smm_exit_states(m, cause)
            self._return_states(m, switch_page, switch_none, guest_controls)
        return m

    # -- the activation (34.15.6) ------------------------------------------------------------

    def _read(self, m: Module, slot: FieldSlot) -> None:
        m.d.comb += [self.cache.rd_en.eq(1), self.cache.rd_slot.eq(slot.slot)]

    def _word(self, slot: FieldSlot):
        return self.cache.rd_data.word_select(slot.half, 32)

    def _vmcall_cause(self, m: Module, cause: Signal) -> None:
        m.d.sync += [
            cause.eq(0),
            cause.reason.eq(ExitReason.VMCALL),
            cause.length.eq(self.op.operation.length),  # the request's (x86's VMCALL: 3; the core's: 4)
            cause.length_valid.eq(1),
            cause.info_valid.eq(1),
            cause.instruction.eq(1),
            cause.smm.eq(1),
        ]

    def _activation_checks(self, m: Module, cause: Signal) -> None:
        """In IDLE, VMCALL outside the treatment: the checks on the current VMCS before its controls' reads."""
        with m.If(~self.current_valid):
            finish(m, self.op, Status.FAIL_INVALID)
        with m.Elif(self.current_launch & LAUNCH_LAUNCHED):
            vmfail(m, self.op, VmError.VMCALL_NONCLEAR_VMCS, current_valid=self.current_valid)
        with m.Else():
            self._vmcall_cause(m, cause)
            m.d.sync += [cause.from_root.eq(1), cause.activation.eq(1), cause.executive.eq(self.vmxon_page)]
            self._read(m, _EXIT_CONTROLS)
            m.next = "CONTROLS"

    def _activation_datapath(self, m: Module) -> _Activation:
        """The activation's registers, its bus reads of the MSEG header, and the STM_LOADS row's element and value."""
        a = _Activation(
            header=[Signal(32, name=f"header{i}") for i in range(MSEG_HEADER_WORDS)],
            word=Signal(range(MSEG_HEADER_WORDS + 1)),
            row=Signal(range(len(STM_LOADS) + 1)),
        )
        m.d.comb += [
            self.region.cmd.eq(RegionCommand.READ_WORD),
            self.region.page.eq(self.monitor_ctl[12:32]),
            self.region.word.eq(a.word),
            self.region.entry.eq(0),
        ]
        a.element, a.value = self._stm_row(m, a.row, a.header, a.ia32e)
        return a

    def _activation_states(self, m: Module, a: _Activation) -> None:
        """34.15.6.1-2 (20: the VM-exit controls and MSR-store list, 22, 24: the MSEG header), then the controls
        the exit reads, SMBASE, the exit (``SMM_EXIT_WALK``), the STM's state (``STM_LOADS``) and SMM."""
        op, state, region = self.op, self.state, self.region
        ctl = self.controls
        header, word, row, ia32e = a.header, a.word, a.row, a.ia32e
        controls_bad, store_count, element, value = a.controls_bad, a.store_count, a.element, a.value

        def fail(error):
            vmfail(m, op, error, current_valid=self.current_valid)
            m.next = "IDLE"

        with m.State("CONTROLS"):
            exit_controls = self._word(_EXIT_CONTROLS)
            m.d.sync += [controls_bad.eq(exit_controls_fail(exit_controls)), ctl.exit.eq(exit_controls)]
            self._read(m, _STORE_COUNT)
            m.next = "STORE_COUNT"

        with m.State("STORE_COUNT"):
            m.d.sync += store_count.eq(self._word(_STORE_COUNT))
            self._read(m, _STORE_ADDR)
            m.next = "STORE_ADDRESS"

        with m.State("STORE_ADDRESS"):
            address = self.cache.rd_data
            with m.If(controls_bad | msr_list_address_fails(store_count, address, address[32:].any())):
                fail(VmError.VMCALL_INVALID_EXIT_CONTROLS)
            with m.Else():
                m.d.sync += word.eq(0)
                m.next = "HEADER"

        with m.State("HEADER"):
            m.d.comb += region.start.eq(1)
            with m.If(region.done):
                with m.Switch(word):
                    for i, reg in enumerate(header):
                        with m.Case(i):
                            m.d.sync += reg.eq(region.rdata)
                m.d.sync += word.eq(word + 1)
                with m.If(word == MSEG_HEADER_WORDS - 1):
                    m.next = "VERDICT"

        with m.State("VERDICT"):
            features = header[MSEG_FEATURES // 4]
            sixty_four = self.mode.efer_lma & self.mode.cs_l
            with m.If(header[MSEG_REVISION // 4] != MSEG_REVISION_ID):
                fail(VmError.VMCALL_INCORRECT_MSEG_REVISION)
            with m.Elif((features & ~MSEG_FEATURE_IA32E).any() | (sixty_four & ~features[0])):
                fail(VmError.VMCALL_INVALID_SMM_MONITOR_FEATURES)
            with m.Else():
                m.d.sync += ia32e.eq(features[0])
                self._read_controls(m, "SMM_EXIT_CONTROLS")

        with m.State("LOAD_READ"):
            m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(element)]
            m.next = "LOAD_WRITE"

        with m.State("LOAD_WRITE"):
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(element), state.wr_value.eq(value)]
            m.d.sync += row.eq(row + 1)
            m.next = "LOAD_READ"
            with m.If(row == len(STM_LOADS) - 1):
                m.d.sync += row.eq(0)
                m.next = "ACTIVE"

        with m.State("ACTIVE"):
            m.d.comb += self.enter_smm.eq(1)
            m.d.sync += [self.active.eq(1), self.transfer_page.eq(self.current_page)]
            finish(m, op, Status.EXITED, result=ExitReason.VMCALL)
            m.next = "IDLE"

    def _stm_row(self, m: Module, row: Signal, header: list[Signal], ia32e: Signal) -> tuple[Signal, Signal]:
        """The element row ``row`` of ``STM_LOADS`` loads, and its value (``stm_value`` in rtl/arch/smm.py):
        the element's value read the cycle before (``StmLoad.KEPT``), the header's words, MSEG's base."""
        element = Signal(ID_BITS)
        value = Signal(64)
        mseg = Cat(Const(0, 12), self.monitor_ctl[12:32])
        header_word = Signal(32)
        cs = header[MSEG_CS_SELECTOR // 4]
        selector = Mux(cs[3:16].any(), cs[:16] & 0xFFF8, 8)
        with m.Switch(row):
            for i, r in enumerate(STM_LOADS):
                with m.Case(i):
                    constant = Mux(ia32e, r.constant(True), r.constant(False))
                    m.d.comb += element.eq(element_id(r.name))
                    if r.how in (StmLoad.MSEG_OFFSET, StmLoad.HEADER):
                        m.d.comb += header_word.eq(header[r.arg // 4])
                    match r.how:
                        case StmLoad.CONSTANT:
                            m.d.comb += value.eq(constant)
                        case StmLoad.KEPT:
                            m.d.comb += value.eq((self.state.rd_data & r.arg) | constant)
                        case StmLoad.MSEG_OFFSET:
                            m.d.comb += value.eq((mseg + header_word)[:32] & r.mask)
                        case StmLoad.HEADER:
                            m.d.comb += value.eq(header_word & r.mask)
                        case StmLoad.SELECTOR:
                            m.d.comb += value.eq(selector + r.arg)
        return element, value

    # -- SMM VM exits (34.15.2) -------------------------------------------------------------

    def _smm_exit_cause(self, m: Module, cause: Signal, *, from_root) -> None:
        """In IDLE: the exit an SMI (reason 6; 5 for an I/O SMI) or a VMCALL (18) makes, and its executive VMCS
        (the VMXON pointer from root, else the current VMCS); then RIP is read (an I/O SMI's IO_RIP)."""
        request = self.op.operation
        io = (request.value & IO_SMI) != 0
        direction_in = (request.value & IO_SMI_IN) != 0
        qualification = struct_value(
            IoQualification, size=request.io_size, direction_in=direction_in, port=request.index[:16]
        )
        with m.If(request.op == Op.SMI):
            m.d.sync += [
                cause.eq(0),
                cause.reason.eq(Mux(io, ExitReason.IO_SMI, ExitReason.OTHER_SMI)),
                cause.qualification.eq(Mux(io, qualification, 0)),
                cause.smm.eq(1),
            ]
        with m.Else():
            self._vmcall_cause(m, cause)
        m.d.sync += [
            cause.from_root.eq(from_root),
            cause.executive.eq(Mux(from_root, self.vmxon_page, self.current_page)),
        ]
        m.d.comb += [self.state.rd_en.eq(1), self.state.rd_id.eq(_RIP)]

    def _control_reads(self, m: Module, name: str, then) -> None:  # noqa: ANN001
        """State ``name``: ``_CONTROL_READS`` in order into ``controls`` (read k arrives while read k + 1 is
        issued; ``_read_controls`` issued the first), then ``then()``."""
        reads = Signal(range(len(_CONTROL_READS)), name=f"{name.lower()}_reads")
        with m.State(name):
            m.d.sync += reads.eq(reads + 1)
            with m.Switch(reads):
                for i, (slot, field_) in enumerate(_CONTROL_READS):
                    with m.Case(i):
                        m.d.sync += Value.cast(getattr(self.controls, field_)).eq(self._word(slot))
                        if i + 1 < len(_CONTROL_READS):
                            self._read(m, _CONTROL_READS[i + 1][0])
            with m.If(reads == len(_CONTROL_READS) - 1):
                m.d.sync += reads.eq(0)
                then()

    def _read_controls(self, m: Module, next_state: str) -> None:
        """Start the reads of the controls the exit reads (``_CONTROL_READS``)."""
        self._read(m, _CONTROL_READS[0][0])
        m.next = next_state

    def _smm_exit_states(self, m: Module, cause: Signal) -> None:
        """The SMM-transfer VMCS made current, its controls and SMBASE read, the exit, the I/O SMI's IO_* fields,
        then SMIs and NMIs blocked and SMM entered (the activation's exit goes on to the STM's state)."""
        state, cache = self.state, self.cache
        rip = Signal(64)
        io_step = Signal(range(len(_IO_WRITES) + 1))

        def read_interruptibility():
            m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(_INTERRUPTIBILITY)]
            m.next = "SMM_EXIT_BLOCKING"

        with m.State("SMM_EXIT"):
            m.d.sync += rip.eq(state.rd_data)
            with m.If(self.current_valid & (self.current_page == self.transfer_page)):
                self._read_controls(m, "SMM_EXIT_CONTROLS")
            with m.Else():
                m.next = "SMM_EXIT_SWITCH"

        with m.State("SMM_EXIT_SWITCH"):
            # 34.15.2.2: the SMM-transfer VMCS becomes current (VMPTRLD's sequence in the pointer block).
            m.d.comb += self.switch.start.eq(1)
            with m.If(self.switch.done):
                m.next = "SMM_EXIT_SETTLE"

        with m.State("SMM_EXIT_SETTLE"):
            # ``current`` is the SMM-transfer VMCS's entry from this cycle: its reads start here.
            self._read_controls(m, "SMM_EXIT_CONTROLS")

        def read_smbase():
            m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(_SMBASE)]
            m.next = "SMM_EXIT_SMBASE"

        self._control_reads(m, "SMM_EXIT_CONTROLS", read_smbase)

        with m.State("SMM_EXIT_SMBASE"):
            m.d.sync += cause.smbase.eq(state.rd_data[:32])
            m.next = "SMM_EXIT_WALK"

        with m.State("SMM_EXIT_WALK"):
            # The exit information (with EXECUTIVE_VMCS_POINTER and GUEST_SMBASE), the state saved, the MSR lists
            # (the exit ends in SMM), the host state; the activation stops after the save.
            m.d.comb += [self.exit.start.eq(1), self.exiting.eq(1)]
            with m.If(self.exit.done & (self.exit.status == Status.SHUTDOWN)):
                finish(m, self.op, Status.SHUTDOWN, result=self.exit.value)
                m.next = "IDLE"
            with m.Elif(self.exit.done & cause.activation):
                m.next = "LOAD_READ"
            with m.Elif(self.exit.done & (cause.reason == ExitReason.IO_SMI)):
                m.d.sync += io_step.eq(0)
                m.next = "SMM_EXIT_IO"
            with m.Elif(self.exit.done):
                read_interruptibility()

        with m.State("SMM_EXIT_IO"):
            # An I/O SMI: IO_RCX, IO_RSI, IO_RDI := 0, IO_RIP := RIP (both halves of each field).
            m.d.sync += io_step.eq(io_step + 1)
            with m.Switch(io_step):
                for i, slot in enumerate(_IO_WRITES):
                    with m.Case(i):
                        m.d.comb += cache.wr_slot.eq(slot.slot)
            m.d.comb += [
                cache.wr_data.eq(Mux(io_step == len(_IO_WRITES) - 1, rip, 0)),
                cache.wr_en.eq(0b11),
                self.mark_dirty.eq(1),
            ]
            with m.If(io_step == len(_IO_WRITES) - 1):
                read_interruptibility()

        with m.State("SMM_EXIT_BLOCKING"):
            blocked = state.rd_data | SMM_INTERRUPTIBILITY
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(_INTERRUPTIBILITY), state.wr_value.eq(blocked)]
            m.next = "SMM_EXIT_ENTER"

        with m.State("SMM_EXIT_ENTER"):
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(_SMM), state.wr_value.eq(1), self.enter_smm.eq(1)]
            finish(m, self.op, Status.EXITED, result=cause.reason)
            m.next = "IDLE"

    # -- VM entries that return from SMM (34.15.4) ----------------------------------------------

    def _return_states(self, m: Module, switch_page: Signal, switch_none: Signal, guest_controls: Signal) -> None:
        """The checks of a VM entry in SMM without "entry to SMM" (16: the executive-VMCS pointer, 18: a
        deactivation to a VMCS, 7: an injection on a return to VMX root operation; 17 and 25 for a VMCS as
        executive), then, after its transition, SMBASE from GUEST_SMBASE, the SMM-transfer VMCS := the current
        one, the current one := the VMCS link pointer (or none) or the executive VMCS, SMM left, the
        deactivation. An entry with "entry to SMM" is an ordinary one (its guest runs in SMM)."""
        check, finish_ = self.entry_check, self.entry_finish
        state, region = self.state, self.region
        deactivate = Signal()
        injecting = Signal()
        to_root = Signal()
        executive = self.executive_page
        m.d.comb += finish_.to_root.eq(to_root)

        def verdict(*, error=VmError.NONE, unsupported=0, returning=0):
            m.d.comb += [
                check.done.eq(1),
                check.error.eq(error),
                check.unsupported.eq(unsupported),
                check.returning.eq(returning),
            ]
            m.next = "IDLE"

        with m.State("RETURN_CONTROLS"):
            entry = self._word(_ENTRY_CONTROLS)
            with m.If(entry[ENTRY.bits["SMM"]]):
                verdict()  # a guest in SMM: an ordinary VM entry
            with m.Else():
                m.d.sync += deactivate.eq(entry[ENTRY.bits["DEACT_DUAL_MONITOR"]])
                self._read(m, _EXECUTIVE)
                m.next = "RETURN_EXECUTIVE"

        with m.State("RETURN_EXECUTIVE"):
            pointer = self.cache.rd_data
            m.d.sync += executive.eq(pointer[12:32])
            with m.If(pointer[:12].any() | pointer[32:].any()):
                verdict(error=VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER)
            with m.Else():
                self._read(m, _ENTRY_INTR_INFO)
                m.next = "RETURN_INTR_INFO"

        with m.State("RETURN_INTR_INFO"):
            m.d.sync += injecting.eq(self._word(_ENTRY_INTR_INFO)[31])
            m.next = "RETURN_REVISION"

        with m.State("RETURN_REVISION"):
            m.d.comb += [region.start.eq(1), region.page.eq(executive), region.word.eq(0)]
            root = executive == self.vmxon_page
            with m.If(region.done):
                m.d.sync += to_root.eq(root)
                with m.If(region.rdata != VMCS_REVISION_ID):
                    verdict(error=VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER)
                with m.Elif(deactivate & ~root):
                    verdict(error=VmError.ENTRY_EXECUTIVE_VMCS_NOT_VMXON_POINTER)
                with m.Elif(~root):
                    m.next = "EXECUTIVE_PROBE"
                with m.Elif(injecting):
                    verdict(error=VmError.ENTRY_INVALID_CONTROL_FIELD)
                with m.Else():
                    verdict(returning=1)

        self._executive_states(m, verdict)

        with m.State("FINISH_SMBASE"):
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(_SMBASE), state.wr_value.eq(self._word(_GUEST_SMBASE))]
            self._read(m, _LINK)
            m.next = "FINISH_LINK"

        with m.State("FINISH_LINK"):
            link = self.cache.rd_data
            m.d.sync += [
                self.transfer_page.eq(self.current_page),
                switch_page.eq(Mux(to_root, link[12:32], executive)),
                switch_none.eq(to_root & link.all()),
            ]
            m.next = "FINISH_SWITCH"

        with m.State("FINISH_SWITCH"):
            # 34.15.4.8: the current VMCS := the VMCS link pointer (none when it is all ones), or the executive
            # VMCS, whose controls the guest then runs under.
            m.d.comb += self.switch.start.eq(1)
            with m.If(self.switch.done & to_root):
                m.next = "FINISH_LEAVE"
            with m.Elif(self.switch.done):
                m.next = "FINISH_SETTLE"

        with m.State("FINISH_SETTLE"):
            self._read_controls(m, "FINISH_CONTROLS")

        def guest_controls_loaded():
            m.d.sync += guest_controls.eq(1)
            m.next = "FINISH_LEAVE"

        self._control_reads(m, "FINISH_CONTROLS", guest_controls_loaded)

        with m.State("FINISH_LEAVE"):
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(_SMM), state.wr_value.eq(0), self.leave_smm.eq(1)]
            with m.If(deactivate):
                # 34.15.7: the default treatment again; SMIs unblocked (34.15.4.9).
                m.d.sync += self.active.eq(0)
                m.d.comb += [state.rd_en.eq(1), state.rd_id.eq(_INTERRUPTIBILITY)]
                m.next = "FINISH_UNBLOCK"
            with m.Else():
                m.d.comb += finish_.done.eq(1)
                m.next = "IDLE"

        with m.State("FINISH_UNBLOCK"):
            unblocked = state.rd_data & ~INTERRUPTIBILITY.BLOCKING_BY_SMI
            m.d.comb += [state.wr_en.eq(1), state.wr_id.eq(_INTERRUPTIBILITY), state.wr_value.eq(unblocked)]
            m.d.comb += finish_.done.eq(1)
            m.next = "IDLE"

    def _executive_states(self, m: Module, verdict) -> None:  # noqa: ANN001
        """34.15.4.1-2 for a VMCS as executive monitor: launched (else 17), and its VM-execution control fields
        pass the checks of 26.2.1.1 (``EXECUTION_STEPS``; else 25), read from the cache when it holds the VMCS
        (``probe_*``: no change to the replacement order), else from its region over the bus."""
        cache, region = self.cache, self.region
        regs = CheckRegisters()
        cached = Signal()
        entry = Signal.like(self.probe_entry)
        step = Signal(range(len(EXECUTION_STEPS) + 1))
        value = Signal(64)
        failed = Signal()
        executive = self.executive_page
        words = [LOCATION[FIELD_BY_NAME[s.field].encoding] for s in EXECUTION_STEPS]

        def launched(launch):  # noqa: ANN001, ANN202
            with m.If(~launch[0]):  # LAUNCH_LAUNCHED
                verdict(error=VmError.ENTRY_NONLAUNCHED_EXECUTIVE_VMCS)
            with m.Else():
                m.d.sync += [step.eq(0), failed.eq(0)]
                m.next = "EXECUTIVE_READ"

        def bus_read(word):  # noqa: ANN001, ANN202
            m.d.comb += [region.start.eq(1), region.page.eq(executive), region.word.eq(word)]

        with m.State("EXECUTIVE_PROBE"):
            m.d.sync += [cached.eq(self.probe_hit), entry.eq(self.probe_entry)]
            with m.If(self.probe_hit):
                launched(self.probe_launch)
            with m.Else():
                m.next = "EXECUTIVE_LAUNCH"

        with m.State("EXECUTIVE_LAUNCH"):
            bus_read(LAUNCH_WORD)
            with m.If(region.done):
                launched(region.rdata)

        with m.State("EXECUTIVE_READ"):
            # Step ``step``'s field: a cache read (its slot arrives the next cycle), or its region's word(s).
            m.d.comb += cache.rd_entry.eq(entry)
            with m.Switch(step):
                for i, loc in enumerate(words):
                    with m.Case(i):
                        with m.If(cached):
                            m.d.comb += [cache.rd_en.eq(1), cache.rd_slot.eq(loc.slot)]
                            m.next = "EXECUTIVE_CACHED"
                        with m.Else():
                            bus_read(loc.word)
                            with m.If(region.done):
                                m.d.sync += value.eq(region.rdata)
                                m.next = "EXECUTIVE_HIGH" if loc.words == 2 else "EXECUTIVE_TEST"

        with m.State("EXECUTIVE_CACHED"):
            with m.Switch(step):
                for i, loc in enumerate(words):
                    with m.Case(i):
                        data = cache.rd_data if loc.words == 2 else cache.rd_data.word_select(loc.half, 32)
                        m.d.sync += value.eq(data)
            m.next = "EXECUTIVE_TEST"

        with m.State("EXECUTIVE_HIGH"):
            with m.Switch(step):
                for i, loc in enumerate(words):
                    if loc.words == 2:
                        with m.Case(i):
                            bus_read(loc.word + 1)
            with m.If(region.done):
                m.d.sync += value[32:].eq(region.rdata)
                m.next = "EXECUTIVE_TEST"

        with m.State("EXECUTIVE_TEST"):
            with m.Switch(step):
                for i, s in enumerate(EXECUTION_STEPS):
                    with m.Case(i):
                        loads, fails = step_logic(regs, s, value)
                        m.d.sync += loads
                        with m.If(fails):
                            m.d.sync += failed.eq(1)
            m.d.sync += step.eq(step + 1)
            m.next = "EXECUTIVE_READ"
            with m.If(step == len(EXECUTION_STEPS) - 1):
                m.next = "EXECUTIVE_VERDICT"

        with m.State("EXECUTIVE_VERDICT"):
            with m.If(failed | nmi_controls_fail(regs)):
                verdict(error=VmError.ENTRY_INVALID_EXECUTIVE_CONTROLS)
            with m.Else():
                verdict(returning=1)
