"""The reference model of the VMX unit: one method per operation of its port, checks in SDM order.

# Ref: Intel SDM vol. 3C, 30.2 "Conventions", 30.3 "VMX instructions" (the
# pseudocode each method follows), 24.11.2 (VMREAD/VMWRITE operand sizes),
# 23.7 "Enabling and entering VMX operation", 34.15.5 (IA32_SMM_MONITOR_CTL),
# appendix A (capability MSRs); vol. 2B RDMSR/WRMSR; docs/semantics.md, the
# behaviour contract this file implements line by line.

``VmxModel.execute(op, index, value, size, ...)`` is the unit's request port;
the methods ``vmxon``, ``vmread``, ``wrmsr``, ``set``, ... are the same requests
written the way a VMM reads. Every outcome is an ``Outcome``, with the changes
the operation made; a SUCCEED, FAIL_INVALID or FAIL_VALID also writes RFLAGS'
six arithmetic flags, a FAULT (or OK) changes nothing else. VMLAUNCH and
VMRESUME enter the guest (sim/model/transitions.py moves the state); in VMX
non-root operation the requests are the guest's (sim/model/guest_events.py
decides which exit). A request that the port cannot carry (a value wider than
its operand, an element number that does not exist) raises ValueError: the
replay parser rejects such lines first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from vmxu.rtl.arch import layout, msrs
from vmxu.rtl.arch.errors import ExitReason, VmError
from vmxu.rtl.arch.events import MAX_INSTRUCTION_LENGTH, VmxAbort
from vmxu.rtl.arch.fields import FIELD_BY_ENCODING, FIELD_BY_NAME, Field
from vmxu.rtl.arch.layout import LAUNCH_LAUNCHED, LAUNCH_VMXOFF
from vmxu.rtl.arch.ops import Op, OperandSize, Status, Vector, flags_for
from vmxu.rtl.arch.state import CR4, ELEMENT_BY_NAME, INTERRUPTIBILITY, Element, element_id

from .dual_monitor import DualMonitor
from .entry_checks import EntryChecks, is_bad_address
from .guest_checks import GuestStateChecks
from .guest_events import GuestEvents
from .machine_state import MachineState, satisfies_fixed
from .memory import PhysicalMemory
from .msr_file import MsrFile
from .outcome import Change, Outcome
from .request import Request
from .smm import HeldVmx, Smm
from .transitions import ExitCause, Transitions, entry_failure_reason
from .vmcs_cache import CacheEntry, CacheEntryView, VmcsCache

__all__ = ["VmxModel", "NO_CURRENT_VMCS"]

#: What VMPTRST stores when there is no current VMCS (SDM 30.3 VMPTRST).
NO_CURRENT_VMCS = 0xFFFF_FFFF_FFFF_FFFF
#: Bits 30:0 of a region's first dword: the VMCS revision identifier; bit 31: shadow-VMCS indicator.
REVISION_MASK = 0x7FFF_FFFF
SHADOW_VMCS_INDICATOR = 1 << 31

_VMX_STATUSES = (Status.SUCCEED, Status.FAIL_INVALID, Status.FAIL_VALID)
_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1


def _fault(vector: Vector, cause: str) -> Outcome:
    return Outcome(Status.FAULT, vector=vector, cause=cause)


def _succeed(value: int | None = None) -> Outcome:
    return Outcome(Status.SUCCEED, value=value)


def _fail_invalid(cause: str) -> Outcome:
    return Outcome(Status.FAIL_INVALID, cause=cause)


def _ok(value: int | None = None) -> Outcome:
    return Outcome(Status.OK, value=value)


class VmxModel:
    """The VMX unit in plain Python: the oracle the RTL is compared with.

    Members
    -------
    memory : PhysicalMemory
        The bus the unit masters (VMXON and VMCS regions, MSR lists, bitmaps).
    state : MachineState
        The machine-state elements: the host's in root operation, the guest's in non-root operation.
    in_smm : bool
        Whether the logical processor is in SMM: the element ``smm`` (SMI delivery sets it, RSM clears it).
    smm : Smm
        SMI delivery and RSM (sim/model/smm.py): the SMI held pending, the VMX state an SMI left.
    dual_monitor_active : bool
        Whether the dual-monitor treatment is active (``dual``: sim/model/dual_monitor.py).
    dual : DualMonitor
        The dual-monitor treatment: reported and carried out with ``dual_monitor`` (by default exactly when
        ``transitions``, as ``VmxUnit`` has it exactly when it has guests; formerly the RTL did
        not have it yet, so the default model does not report it either).
    transitions : bool
        False models a unit without the VM-entry capability: a VMLAUNCH/VMRESUME that passes
        the checks on the controls and host state answers ENTRY_NOT_IMPLEMENTED (the SoC's
        core cannot run guests yet, and its ISS says so).
    in_vmx_operation, non_root, vmxon_pointer, current_vmcs_pointer, cache_entries, lru_order,
    feature_control, smm_monitor_ctl, tsc, preemption_timer, shutdown
        Read-only views for debugging and tests.
    """

    def __init__(
        self,
        memory: PhysicalMemory,
        cache_entries: int = layout.CACHE_ENTRIES,
        *,
        transitions: bool = True,
        dual_monitor: bool | None = None,
    ) -> None:
        if dual_monitor is None:
            dual_monitor = transitions  # as the unit: VmxUnit(guests) has it exactly when it has guests
        if dual_monitor and not transitions:
            raise ValueError("the dual-monitor treatment needs VM entries and exits (transitions=True)")
        self.memory = memory
        self.state = MachineState()
        self.transitions = transitions
        self.dual = DualMonitor(self, supported=dual_monitor)
        self.msr_file = MsrFile(self.state, dual_monitor=dual_monitor)
        self._cache = VmcsCache(memory, cache_entries)
        self._moves = Transitions(self.state, memory, self.msr_file)
        self._in_vmx_operation = False
        self._non_root = False
        self._vmxon_pointer: int | None = None
        self._current: CacheEntry | None = None
        self._shutdown: int | None = None
        self._tsc = 0
        self.smm = Smm(self)

    # -- read-only views --------------------------------------------------------

    @property
    def dual_monitor_active(self) -> bool:
        return self.dual.active

    @dual_monitor_active.setter
    def dual_monitor_active(self, value: bool) -> None:
        self.dual.active = value

    @property
    def in_vmx_operation(self) -> bool:
        return self._in_vmx_operation

    @property
    def non_root(self) -> bool:
        """In VMX non-root operation: a guest runs."""
        return self._non_root

    @property
    def vmxon_pointer(self) -> int | None:
        return self._vmxon_pointer

    @property
    def current_vmcs_pointer(self) -> int | None:
        """The current-VMCS pointer, or None when there is no current VMCS."""
        return None if self._current is None else self._current.addr

    @property
    def current_entry(self) -> int | None:
        """The number of the cache entry holding the current VMCS."""
        return None if self._current is None else self._current.number

    @property
    def cache_entries(self) -> tuple[CacheEntryView, ...]:
        return self._cache.entries

    @property
    def lru_order(self) -> tuple[int, ...]:
        """Cache entry numbers from the least to the most recently made current."""
        return self._cache.lru_order

    @property
    def feature_control(self) -> int:
        return self.msr_file.feature_control

    @property
    def smm_monitor_ctl(self) -> int:
        return self.msr_file.smm_monitor_ctl

    @property
    def elements(self) -> Mapping[str, int]:
        return self.state.values

    @property
    def in_smm(self) -> bool:
        return bool(self.state["smm"])

    @in_smm.setter
    def in_smm(self, value: bool) -> None:
        self.state.store("smm", int(value))

    @property
    def tsc(self) -> int:
        """The time-stamp counter: the cycles RUN requests have run since reset."""
        return self._tsc

    @property
    def preemption_timer(self) -> int:
        """The VMX-preemption timer's value (it counts while a guest runs with the timer active)."""
        return self._moves.timer

    def set_preemption_timer(self, value: int) -> None:
        self._moves.timer = value

    @property
    def shutdown(self) -> int | None:
        """After a shutdown, the VMX-abort indicator (a ``VmxAbort``), or 0 when RSM found an invalid saved
        state (sim/model/smm.py); else None."""
        return self._shutdown

    # -- the port ---------------------------------------------------------------

    def execute(
        self,
        op: Op,
        index: int = 0,
        value: int = 0,
        size: OperandSize = OperandSize.S64,
        *,
        length: int | None = None,
        gpr: int = 0,
        io_size: int = 1,
    ) -> Outcome:
        """One request on the unit's port (docs/semantics.md "The unit's port").

        ``length`` is the instruction length a VM exit records (default: the x86
        instruction's own, ``default_instruction_length``); ``gpr`` the register
        of a MOV to or from a control register; ``io_size`` the bytes of IN/OUT.
        """
        return self.perform(Request(op, index, value, size, length, gpr, io_size))

    def perform(self, request: Request) -> Outcome:
        """``execute`` with its operands in a ``Request``."""
        _check_request(request)
        if self._shutdown is not None:
            return Outcome(Status.SHUTDOWN, abort=self._shutdown, cause="the processor is shut down")
        before = self._snapshot()
        if request.op == Op.SMI and not self.transitions:  # a unit without guests leaves SMM out
            outcome = Outcome(Status.ENTRY_NOT_IMPLEMENTED, cause="a unit without guests leaves SMM out")
        elif request.op == Op.SMI and self.dual.active and not self.in_smm and not self.dual.smi_blocked():
            outcome = self.dual.smi(request)  # an SMM VM exit (34.15.2)
        elif request.op == Op.SMI:  # the default treatment: delivered whatever the operation (34.14.1)
            outcome = self.smm.smi(request)
        elif self._non_root:
            outcome = GuestEvents(self).perform(request)
        else:
            outcome = self._root(request)
        if outcome.status in _VMX_STATUSES:
            self.state.write_arithmetic_flags(flags_for(outcome.status))
        return replace(outcome, changes=self._changes(before))

    def _root(self, request: Request) -> Outcome:
        """A request in VMX root operation, or outside VMX operation."""
        op, index, value, size = request.op, request.index, request.value, request.size
        match op:
            case Op.VMXON:
                return self._vmxon(value)
            case Op.VMXOFF:
                return self._vmxoff()
            case Op.VMPTRLD:
                return self._vmptrld(value)
            case Op.VMPTRST:
                return self._vmptrst()
            case Op.VMCLEAR:
                return self._vmclear(value)
            case Op.VMREAD:
                return self._vmread(index, size)
            case Op.VMWRITE:
                return self._vmwrite(index, value, size)
            case Op.VMLAUNCH:
                return self._vmlaunch_vmresume("VMLAUNCH")
            case Op.VMRESUME:
                return self._vmlaunch_vmresume("VMRESUME")
            case Op.VMCALL:
                return self._vmcall(request.instruction_length)
            case Op.RDMSR:
                return self._rdmsr(index)
            case Op.WRMSR:
                return self._wrmsr(index, value)
            case Op.GET:
                return self._get(self.state.element(index))
            case Op.SET:
                return self._set(self.state.element(index), value)
            case Op.RSM:
                return self._rsm()
        return self._processor_event(request)

    def _rsm(self) -> Outcome:
        """SDM vol. 2B RSM: #UD outside SMM; in SMM the default treatment's RSM (34.14.2, sim/model/smm.py)."""
        if self.in_smm and self.dual.active:
            return _fault(Vector.UD, "SDM 34.15.3: RSM in VMX root operation under the dual-monitor treatment: #UD")
        if self.in_smm:
            return self.smm.rsm()
        return _fault(Vector.UD, "SDM 2B RSM: #UD outside SMM")

    def leave_vmx_for_smm(self, held: HeldVmx) -> HeldVmx:
        """34.14.1: SMI delivery leaves VMX operation; returns ``held`` with what the processor keeps inside
        (root or non-root, the current-VMCS pointer)."""
        held = replace(held, non_root=self._non_root, current=self._current)
        self._in_vmx_operation = False
        self._non_root = False
        self._current = None
        return held

    def return_to_vmx_from_smm(self, held: HeldVmx) -> None:
        """34.14.2: RSM re-enters VMX operation (root or non-root, the same current VMCS) if the SMI left it."""
        if held.in_vmx:
            self._in_vmx_operation = True
            self._non_root = held.non_root
            self._current = held.current

    def shut_down(self, value: int, text: str) -> Outcome:
        """The processor shuts down: every later operation answers SHUTDOWN with ``value``."""
        self._shutdown = value
        return Outcome(Status.SHUTDOWN, abort=value, cause=text)

    def _processor_event(self, request: Request) -> Outcome:
        """A guest event outside non-root operation: the processor's own (REPLAY.md "Guest events")."""
        match request.op:
            case Op.HLT:
                if self.state.cpl > 0:
                    return _fault(Vector.GP, "SDM 2A HLT: #GP(0) with CPL > 0")
                self.halt(request.instruction_length)
                return _ok()
            case Op.RDTSC:
                if self.state["cr4"] & CR4.TSD and self.state.cpl > 0:
                    return _fault(Vector.GP, "SDM 2B RDTSC: #GP(0) with CR4.TSD = 1 and CPL > 0")
                return _ok(self._tsc)
            case Op.IN:
                return _ok(_all_ones(request.io_size))
            case Op.RUN:
                self._tsc = (self._tsc + request.value) & _U64
                return _ok()
            case Op.CPUID | Op.OUT | Op.EXCEPTION | Op.INTERRUPT | Op.NMI:
                return _ok()
        raise ValueError(f"the unit has no operation {request.op!r}")

    def halt(self, length: int) -> None:
        """HLT that does not exit: the processor waits after it (SDM 27.3.4: an exit saves the RIP past it)."""
        self.state.store("rip", (self.state["rip"] + length) & _U64)
        self.state.store("activity", 1)

    def advance_tsc(self, cycles: int) -> int:
        """RUN: the TSC advances; returns its value before."""
        before = self._tsc
        self._tsc = (self._tsc + cycles) & _U64
        return before

    # -- the changes an operation made (a golden model's report) -----------------------

    def _snapshot(self) -> tuple[dict[str, int], int | None, list[int] | None]:
        current = self._current
        image = list(current.image) if current is not None else None
        self.memory.begin_log()
        return dict(self.state.values), self.current_entry, image

    def _changes(self, before: tuple[dict[str, int], int | None, list[int] | None]) -> tuple[Change, ...]:
        elements, entry, image = before
        values = self.state.values
        changes = [Change("element", name, value) for name, value in values.items() if elements[name] != value]
        current = self._current
        if current is not None and entry == current.number and image is not None and image != current.image:
            changed_words = {i for i, (a, b) in enumerate(zip(image, current.image, strict=True)) if a != b}
            for field in _ON_DIE_FULL_FIELDS:
                location = layout.LOCATION[field.encoding]
                first = location.word - layout.IMAGE_FIRST_WORD
                if changed_words & set(range(first, first + location.words)):
                    changes.append(Change("field", field.name, self._cache.read(current, field)))
        changes += [Change("memory", a, self.memory.read_word(a)) for a in self.memory.end_log()]
        return tuple(changes)

    # -- the same requests, as a VMM writes them ---------------------------------

    def vmxon(self, addr: int) -> Outcome:
        return self.execute(Op.VMXON, value=addr)

    def vmxoff(self) -> Outcome:
        return self.execute(Op.VMXOFF)

    def vmptrld(self, addr: int) -> Outcome:
        return self.execute(Op.VMPTRLD, value=addr)

    def vmptrst(self) -> Outcome:
        return self.execute(Op.VMPTRST)

    def vmclear(self, addr: int) -> Outcome:
        return self.execute(Op.VMCLEAR, value=addr)

    def vmread(self, field: str | int, size: OperandSize | int = OperandSize.S64) -> Outcome:
        return self.execute(Op.VMREAD, index=_encoding(field), size=_operand_size(size))

    def vmwrite(self, field: str | int, value: int, size: OperandSize | int = OperandSize.S64) -> Outcome:
        return self.execute(Op.VMWRITE, index=_encoding(field), value=value, size=_operand_size(size))

    def vmlaunch(self) -> Outcome:
        return self.execute(Op.VMLAUNCH)

    def vmresume(self) -> Outcome:
        return self.execute(Op.VMRESUME)

    def vmcall(self) -> Outcome:
        return self.execute(Op.VMCALL)

    def rdmsr(self, msr: int) -> Outcome:
        return self.execute(Op.RDMSR, index=msr)

    def wrmsr(self, msr: int, value: int) -> Outcome:
        return self.execute(Op.WRMSR, index=msr, value=value)

    def get(self, element: str | int) -> Outcome:
        return self.execute(Op.GET, index=_element_number(element))

    def set(self, element: str | int, value: int) -> Outcome:
        return self.execute(Op.SET, index=_element_number(element), value=value)

    # -- outcomes that touch the current VMCS ---------------------------------------

    def _vmfail_valid(self, error: VmError, cause: str) -> Outcome:
        """VMfailValid(n): write n to the VM-instruction error field of the current VMCS (SDM 30.2)."""
        assert self._current is not None
        self._cache.write(self._current, FIELD_BY_NAME["VM_INSTRUCTION_ERROR"], int(error))
        return Outcome(Status.FAIL_VALID, error=error, cause=cause)

    def _vmfail(self, error: VmError, cause: str) -> Outcome:
        """VMfail(n): VMfailValid(n) with a current VMCS, else VMfailInvalid (SDM 30.2)."""
        if self._current is None:
            return _fail_invalid(cause)
        return self._vmfail_valid(error, cause)

    def _vmx_prefix(self, instruction: str) -> Outcome | None:
        """The #UD and #GP checks every VMX instruction but VMXON and VMCALL starts with (SDM 30.3)."""
        if not self._in_vmx_operation:
            return _fault(Vector.UD, f"SDM 30.3 {instruction}: #UD outside VMX operation")
        if not self.state.protected_mode:
            return _fault(Vector.UD, f"SDM 30.3 {instruction}: #UD with CR0.PE = 0")
        if self.state.virtual_8086:
            return _fault(Vector.UD, f"SDM 30.3 {instruction}: #UD with RFLAGS.VM = 1")
        if self.state.compatibility_mode:
            return _fault(Vector.UD, f"SDM 30.3 {instruction}: #UD in compatibility mode")
        if self.state.cpl > 0:
            return _fault(Vector.GP, f"SDM 30.3 {instruction}: #GP(0) with CPL {self.state.cpl}")
        return None

    # -- VMX instructions (SDM 30.3) --------------------------------------------

    def _vmxon(self, addr: int) -> Outcome:
        """SDM 30.3 VMXON: enter VMX root operation with the VMXON region at ``addr``."""
        if not self.state.protected_mode:
            return _fault(Vector.UD, "SDM 30.3 VMXON: #UD with CR0.PE = 0")
        if not self.state.vmx_enabled:
            return _fault(Vector.UD, "SDM 30.3 VMXON: #UD with CR4.VMXE = 0")
        if self.state.virtual_8086:
            return _fault(Vector.UD, "SDM 30.3 VMXON: #UD with RFLAGS.VM = 1")
        if self.state.compatibility_mode:
            return _fault(Vector.UD, "SDM 30.3 VMXON: #UD in compatibility mode")
        if self._in_vmx_operation:
            if self.state.cpl > 0:
                return _fault(Vector.GP, "SDM 30.3 VMXON: #GP(0) in VMX root operation with CPL > 0")
            return self._vmfail(VmError.VMXON_IN_ROOT, "SDM 30.3 VMXON: VMfail(15) in VMX root operation")
        if self.state.cpl > 0:
            return _fault(Vector.GP, "SDM 30.3 VMXON: #GP(0) with CPL > 0")
        for name in ("cr0", "cr4"):
            fixed0, fixed1 = ELEMENT_BY_NAME[name].vmx_fixed
            if not satisfies_fixed(self.state[name], fixed0, fixed1):
                return _fault(Vector.GP, f"SDM 30.3 VMXON: #GP(0), {name} outside IA32_VMX_{name.upper()}_FIXED0/1")
        if not self.msr_file.feature_control & msrs.FEATURE_CONTROL_LOCK:
            return _fault(Vector.GP, "SDM 30.3 VMXON: #GP(0), IA32_FEATURE_CONTROL is not locked")
        if not self.msr_file.feature_control & msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX:
            return _fault(Vector.GP, "SDM 30.3 VMXON: #GP(0), IA32_FEATURE_CONTROL disables VMX outside SMX")
        if is_bad_address(addr):
            return _fail_invalid(f"SDM 30.3 VMXON: VMfailInvalid, bad address {addr:#x}")
        revision = self._revision_dword(addr)
        if revision & REVISION_MASK != msrs.VMCS_REVISION_ID or revision & SHADOW_VMCS_INDICATOR:
            return _fail_invalid(f"SDM 30.3 VMXON: VMfailInvalid, revision dword {revision:#x}")
        self._in_vmx_operation = True
        self._vmxon_pointer = addr
        self._current = None
        return _succeed()

    def _vmxoff(self) -> Outcome:
        """SDM 30.3 VMXOFF: write back the on-die cache and leave VMX operation."""
        if (fault := self._vmx_prefix("VMXOFF")) is not None:
            return fault
        if self.dual_monitor_active:
            cause = "SDM 30.3 VMXOFF: VMfail(23) under the dual-monitor treatment"
            return self._vmfail(VmError.VMXOFF_UNDER_DUAL_MONITOR, cause)
        self._cache.write_back_for_vmxoff()
        self._in_vmx_operation = False
        self._vmxon_pointer = None
        self._current = None
        return _succeed()

    def _vmptrld(self, addr: int) -> Outcome:
        """SDM 30.3 VMPTRLD: make the VMCS at ``addr`` current (and active, in the cache)."""
        if (fault := self._vmx_prefix("VMPTRLD")) is not None:
            return fault
        if is_bad_address(addr):
            return self._vmfail(VmError.VMPTRLD_INVALID_ADDRESS, f"SDM 30.3 VMPTRLD: VMfail(9), bad address {addr:#x}")
        if addr == self._vmxon_pointer:
            return self._vmfail(VmError.VMPTRLD_VMXON_POINTER, "SDM 30.3 VMPTRLD: VMfail(10), the VMXON pointer")
        # Read even when the VMCS is cached (docs/semantics.md choice 10).
        revision = self._revision_dword(addr)
        if revision & REVISION_MASK != msrs.VMCS_REVISION_ID or revision & SHADOW_VMCS_INDICATOR:
            cause = f"SDM 30.3 VMPTRLD: VMfail(11), revision dword {revision:#x}"
            return self._vmfail(VmError.VMPTRLD_INCORRECT_REVISION, cause)
        self._current = self._cache.make_current(addr)
        return _succeed()

    def _vmptrst(self) -> Outcome:
        """SDM 30.3 VMPTRST: the current-VMCS pointer, all ones when there is none."""
        if (fault := self._vmx_prefix("VMPTRST")) is not None:
            return fault
        pointer = self.current_vmcs_pointer
        return _succeed(NO_CURRENT_VMCS if pointer is None else pointer)

    def _vmclear(self, addr: int) -> Outcome:
        """SDM 30.3 VMCLEAR: write the VMCS at ``addr`` to its region, launch state clear, not current."""
        if (fault := self._vmx_prefix("VMCLEAR")) is not None:
            return fault
        if is_bad_address(addr):
            return self._vmfail(VmError.VMCLEAR_INVALID_ADDRESS, f"SDM 30.3 VMCLEAR: VMfail(2), bad address {addr:#x}")
        if addr == self._vmxon_pointer:
            return self._vmfail(VmError.VMCLEAR_VMXON_POINTER, "SDM 30.3 VMCLEAR: VMfail(3), the VMXON pointer")
        was_current = self.current_vmcs_pointer == addr
        self._cache.clear(addr)
        if was_current:
            self._current = None
        return _succeed()

    def _vmread(self, encoding: int, size: OperandSize) -> Outcome:
        """SDM 30.3 VMREAD: a component of the current VMCS, sized per SDM 24.11.2."""
        if (fault := self._vmx_prefix("VMREAD")) is not None:
            return fault
        if self._current is None:
            return _fail_invalid("SDM 30.3 VMREAD: VMfailInvalid, no current VMCS")
        field = FIELD_BY_ENCODING.get(encoding)
        if field is None:
            cause = f"SDM 30.3 VMREAD: VMfailValid(12), {encoding:#x} is not a supported component"
            return self._vmfail_valid(VmError.UNSUPPORTED_VMCS_COMPONENT, cause)
        # A shorter component is zero-extended; a 32-bit operand gets bits 31:0 of a
        # 64-bit one (a high access already moved bits 63:32 down).
        return _succeed(self._cache.read(self._current, field) & _operand_mask(size))

    def _vmwrite(self, encoding: int, source: int, size: OperandSize) -> Outcome:
        """SDM 30.3 VMWRITE: write a component of the current VMCS, sized per SDM 24.11.2."""
        if (fault := self._vmx_prefix("VMWRITE")) is not None:
            return fault
        if self._current is None:
            return _fail_invalid("SDM 30.3 VMWRITE: VMfailInvalid, no current VMCS")
        field = FIELD_BY_ENCODING.get(encoding)
        if field is None:
            cause = f"SDM 30.3 VMWRITE: VMfailValid(12), {encoding:#x} is not a supported component"
            return self._vmfail_valid(VmError.UNSUPPORTED_VMCS_COMPONENT, cause)
        if field.read_only:
            cause = f"SDM 30.3 VMWRITE: VMfailValid(13), {field.name} is VM-exit information (IA32_VMX_MISC[29] = 0)"
            return self._vmfail_valid(VmError.VMWRITE_READ_ONLY_COMPONENT, cause)
        # The component takes the low value_bits of the source: a 16/32-bit field
        # ignores the rest, a 64-bit full field written with a 32-bit operand gets
        # bits 63:32 = 0, a high access writes bits 63:32 only.
        self._cache.write(self._current, field, source & ((1 << field.value_bits) - 1))
        return _succeed()

    def _vmlaunch_vmresume(self, instruction: str) -> Outcome:
        """SDM 30.3 VMLAUNCH/VMRESUME up to the VM-entry transition (26.1, 26.2)."""
        if (fault := self._vmx_prefix(instruction)) is not None:
            return fault
        current = self._current
        if current is None:
            return _fail_invalid(f"SDM 30.3 {instruction}: VMfailInvalid, no current VMCS")
        if self.state["interruptibility"] & INTERRUPTIBILITY.BLOCKING_BY_MOV_SS:
            cause = f"SDM 30.3 {instruction}: VMfailValid(26), events blocked by MOV SS"
            return self._vmfail_valid(VmError.ENTRY_EVENTS_BLOCKED_BY_MOV_SS, cause)
        if instruction == "VMLAUNCH":
            if current.launch & LAUNCH_LAUNCHED:
                cause = "SDM 30.3 VMLAUNCH: VMfailValid(4), launch state not clear"
                return self._vmfail_valid(VmError.VMLAUNCH_NONCLEAR_VMCS, cause)
        else:
            if not current.launch & LAUNCH_LAUNCHED:
                cause = "SDM 30.3 VMRESUME: VMfailValid(5), not launched"
                return self._vmfail_valid(VmError.VMRESUME_NONLAUNCHED_VMCS, cause)
            if current.launch & LAUNCH_VMXOFF:
                cause = "SDM 30.3 VMRESUME: VMfailValid(6), launched and written back by VMXOFF"
                return self._vmfail_valid(VmError.VMRESUME_AFTER_VMXOFF, cause)
        returning = self.dual.active and self.dual.returns_from_smm()
        if returning and (executive := self.dual.executive_failure()) is not None:
            error, why = executive
            return self._vmfail_valid(error, f"SDM 34.15.4.1-2 {instruction}: VMfailValid({int(error)}), {why}")
        checks = EntryChecks(self._field_value, self.state.ia32e_mode, self.in_smm, execution=not returning)
        if (failure := checks.first_control_failure()) is not None:
            return self._vmfail_valid(VmError.ENTRY_INVALID_CONTROL_FIELD, f"{instruction}: VMfailValid(7), {failure}")
        if (failure := checks.first_host_state_failure()) is not None:
            return self._vmfail_valid(VmError.ENTRY_INVALID_HOST_STATE, f"{instruction}: VMfailValid(8), {failure}")
        if not self.transitions:
            return Outcome(Status.ENTRY_NOT_IMPLEMENTED, cause=f"{instruction}: checks passed, no VM-entry capability")
        return self._vm_entry(instruction, current, returning=returning)

    # -- VM entry and VM exit (SDM 26.3-26.8, 27) ----------------------------------------

    def _vm_entry(self, instruction: str, current: CacheEntry, *, returning: bool = False) -> Outcome:
        """SDM 26.3-26.7: check and load the guest state, load the MSR list, inject, enter non-root operation
        (or, for a VM entry that returns from SMM to the executive monitor, VMX root operation: 34.15.4)."""
        vmcs = _CurrentVmcs(self._cache, current)
        guest = GuestStateChecks(vmcs.read, self.memory, current.addr, in_smm=self.in_smm)
        if (failure := guest.failure()) is not None:
            text, qualification = failure
            return self._entry_failure(ExitReason.ENTRY_FAILURE_GUEST_STATE, int(qualification), text)
        nmi_blocking = bool(self.state["interruptibility"] & INTERRUPTIBILITY.BLOCKING_BY_NMI)
        info = vmcs.read("VM_ENTRY_INTR_INFO_FIELD")
        injecting = bool(info >> 31)
        self._moves.load_guest(vmcs, vectoring=injecting)
        if (failure := self._moves.load_entry_msrs(vmcs)) is not None:
            text = f"SDM 26.4: VM-entry MSR-load entry {failure.entry}: {failure.why}"
            return self._entry_failure(ExitReason.ENTRY_FAILURE_MSR_LOADING, failure.entry, text, nmi_blocking)
        if instruction == "VMLAUNCH":
            current.launch |= LAUNCH_LAUNCHED
            current.dirty = True
        self._non_root = True
        if returning:
            self._non_root = self.dual.finish_return()
            if not self._non_root:
                return self._after_return_from_smm(f"{instruction}: VM entry that returns from SMM to VMX root")
        events = GuestEvents(self)
        if (immediate := events.exit_before_first_instruction()) is not None:
            return immediate
        if not injecting:
            return Outcome(Status.ENTERED, cause=f"{instruction}: VM entry (SDM 26.3-26.7)")
        error_code = vmcs.read("VM_ENTRY_EXCEPTION_ERROR_CODE") if info & (1 << 11) else None
        outcome = Outcome(
            Status.ENTERED, event=info, error_code=error_code, cause=f"{instruction}: VM entry, SDM 26.6 injection"
        )
        return self._after_return_from_smm(outcome.cause, outcome) if returning else outcome

    def _after_return_from_smm(self, text: str, outcome: Outcome | None = None) -> Outcome:
        """A VM entry that left SMM reports ``entered`` (REPLAY.md "SMM"); an SMI held in SMM is delivered at
        once, as an SMM VM exit (34.15.2), before the response."""
        outcome = outcome or Outcome(Status.ENTERED, cause=text)
        if self.dual.active and self.dual.smi_blocked():
            return outcome  # SMIs stay blocked (34.15.4.9): the held one waits
        if (pending := self.smm.take_pending()) is not None:
            delivered = self.dual.smi(pending) if self.dual.active else self.smm.smi(pending)
            if delivered.status == Status.SHUTDOWN:
                return delivered
        return outcome

    def _entry_failure(
        self, reason: ExitReason, qualification: int, text: str, nmi_blocking: bool | None = None
    ) -> Outcome:
        """SDM 26.8: exit reason (bit 31 set) and qualification only; host state and the exit MSR-load list."""
        assert self._current is not None
        vmcs = _CurrentVmcs(self._cache, self._current)
        full = entry_failure_reason(reason)
        vmcs.write("VM_EXIT_REASON", full)
        vmcs.write("EXIT_QUALIFICATION", qualification)
        if nmi_blocking is None:
            nmi_blocking = bool(self.state["interruptibility"] & INTERRUPTIBILITY.BLOCKING_BY_NMI)
        self._moves.load_host(vmcs, nmi_blocking=nmi_blocking)
        self._non_root = False
        if (failure := self._moves.load_exit_msrs(vmcs)) is not None:
            return self._abort(VmxAbort.MSR_LOAD, f"SDM 27.6: VM-exit MSR-load entry {failure.entry}: {failure.why}")
        return Outcome(Status.ENTRY_FAILED, reason=full, cause=f"SDM 26.8: VM-entry failure, {text}")

    def vm_exit(self, cause: ExitCause, text: str) -> Outcome:
        """SDM 27: record the exit, save the guest state and MSRs, load the host state and MSRs."""
        assert self._current is not None and self._non_root
        vmcs = _CurrentVmcs(self._cache, self._current)
        self._moves.record_exit(vmcs, cause)
        # An exit that ends in SMM (from a guest entered with "entry to SMM") saves SMI blocking as 1 and keeps
        # it (27.3.4; the rules INTERRUPTIBILITY_SAVED and INTERRUPTIBILITY_HOST).
        self._moves.save_guest(vmcs, cause, ends_in_smm=self.in_smm)
        if (failure := self._moves.store_exit_msrs(vmcs, ends_in_smm=self.in_smm)) is not None:
            return self._abort(VmxAbort.MSR_STORE, f"SDM 27.4: VM-exit MSR-store entry {failure.entry}: {failure.why}")
        self._moves.load_host(vmcs, nmi_blocking=cause.nmi, ends_in_smm=self.in_smm)
        self._non_root = False
        if (failure := self._moves.load_exit_msrs(vmcs, ends_in_smm=self.in_smm)) is not None:
            return self._abort(VmxAbort.MSR_LOAD, f"SDM 27.6: VM-exit MSR-load entry {failure.entry}: {failure.why}")
        return Outcome(Status.EXITED, reason=int(cause.reason), cause=f"SDM 27: VM exit, {text}")

    def _abort(self, indicator: VmxAbort, text: str) -> Outcome:
        """SDM 27.7: write the indicator to the current VMCS's region and shut down."""
        assert self._current is not None
        self._moves.abort(self._current.addr, indicator)
        self._non_root = False
        return self.shut_down(int(indicator), f"SDM 27.7: VMX abort, {text}")

    def current_vmcs(self) -> _CurrentVmcs:
        """The current VMCS's fields by name (there must be one)."""
        assert self._current is not None
        return _CurrentVmcs(self._cache, self._current)

    # -- what the dual-monitor treatment (sim/model/dual_monitor.py) moves ---------------------

    @property
    def moves(self) -> Transitions:
        return self._moves

    @property
    def current_launch(self) -> int:
        """The launch word's bits of the current VMCS (there must be one)."""
        assert self._current is not None
        return self._current.launch

    def make_current(self, addr: int | None) -> None:
        """The VMCS at ``addr`` becomes current (cached, as VMPTRLD makes it), or none with None."""
        self._current = None if addr is None else self._cache.make_current(addr)

    def launch_state(self, addr: int) -> int:
        """The launch bits of the VMCS at ``addr``: its cache entry's, else its region's launch word."""
        entry = self._cache.lookup(addr)
        return entry.launch if entry is not None else self.memory.read_word((addr >> 2) + layout.LAUNCH_WORD)

    def field_reader(self, addr: int) -> Callable[[str], int]:
        """The fields of the VMCS at ``addr`` by name, from its cache entry or its region (nothing changes)."""
        entry = self._cache.snapshot(addr)
        return lambda name: self._cache.read(entry, FIELD_BY_NAME[name])

    def leave_non_root(self) -> None:
        self._non_root = False

    def vmfail_valid(self, error: VmError, cause: str) -> Outcome:
        return self._vmfail_valid(error, cause)

    def abort(self, indicator: VmxAbort, text: str) -> Outcome:
        return self._abort(indicator, text)

    def _vmcall(self, length: int) -> Outcome:
        """SDM 30.3 VMCALL in VMX root operation: activate the dual-monitor treatment, or VMfail(1)."""
        if not self._in_vmx_operation:
            return _fault(Vector.UD, "SDM 30.3 VMCALL: #UD outside VMX operation")
        if self.state.virtual_8086:
            return _fault(Vector.UD, "SDM 30.3 VMCALL: #UD with RFLAGS.VM = 1")
        if self.state.compatibility_mode:
            return _fault(Vector.UD, "SDM 30.3 VMCALL: #UD in compatibility mode")
        if self.state.cpl > 0:
            return _fault(Vector.GP, "SDM 30.3 VMCALL: #GP(0) with CPL > 0")
        if self.in_smm:
            return self._vmfail(VmError.VMCALL_IN_ROOT, "SDM 30.3 VMCALL: VMfail(1) in SMM")
        if not self.dual.supported:
            return self._vmfail(VmError.VMCALL_IN_ROOT, "SDM 30.3 VMCALL: VMfail(1), no dual-monitor support")
        if not self.msr_file.smm_monitor_ctl & msrs.SMM_MONITOR_CTL_VALID:
            return self._vmfail(VmError.VMCALL_IN_ROOT, "SDM 30.3 VMCALL: VMfail(1), IA32_SMM_MONITOR_CTL.valid = 0")
        return self.dual.vmcall(length)

    # -- platform operations ------------------------------------------------------

    def _rdmsr(self, number: int) -> Outcome:
        """SDM 2B RDMSR: #GP(0) with CPL > 0 or an MSR this processor does not implement."""
        if self.state.cpl > 0:
            return _fault(Vector.GP, "SDM 2B RDMSR: #GP(0) with CPL > 0")
        result = self.msr_file.read(number, in_smm=self.in_smm)
        return _fault(Vector.GP, result.fault) if result.fault is not None else _ok(result.value)

    def _wrmsr(self, number: int, value: int) -> Outcome:
        """SDM 2B WRMSR: #GP(0) with CPL > 0, an unimplemented MSR, or a value the MSR refuses."""
        if self.state.cpl > 0:
            return _fault(Vector.GP, "SDM 2B WRMSR: #GP(0) with CPL > 0")
        result = self.msr_file.write(number, value, in_smm=self.in_smm, in_vmx_operation=self._in_vmx_operation)
        return _fault(Vector.GP, result.fault) if result.fault is not None else _ok()

    def _get(self, element: Element) -> Outcome:
        """The platform reads a machine-state element (no CPL check, docs/semantics.md choice 13)."""
        return _ok(self.state[element.name])

    def _set(self, element: Element, value: int) -> Outcome:
        """The platform writes an element as MOV or WRMSR would: #GP on a refused value, else forced bits apply."""
        default_smm = self.in_smm and not self.dual.active  # CR4.VMXE reserved (34.14.3)
        violation = self.state.set_rule_violated(element, value, self._in_vmx_operation, in_smm=default_smm)
        if violation is not None:
            return _fault(Vector.GP, f"#GP(0): {violation}")
        self.state.apply_set(element, value)
        return _ok()

    # -- helpers ----------------------------------------------------------------

    def _revision_dword(self, addr: int) -> int:
        """The first dword of a region (all ones outside RAM: a bus error)."""
        return self.memory.read_word(addr >> 2)

    def _field_value(self, name: str) -> int:
        """A field of the current VMCS, whole (as VMREAD with a 64-bit operand sees it)."""
        assert self._current is not None
        return self._cache.read(self._current, FIELD_BY_NAME[name])


def _operand_mask(size: OperandSize) -> int:
    return _U64 if size == OperandSize.S64 else _U32


def _check_request(request: Request) -> None:
    """Refuse what the port cannot carry: the replay parser rejects such lines before."""
    op, index, value, size = request.op, request.index, request.value, request.size
    if not isinstance(op, Op):
        raise ValueError(f"not an operation of the unit: {op!r}")
    if not isinstance(size, OperandSize):
        raise ValueError(f"operand size must be an OperandSize, not {size!r}")
    if index < 0 or value < 0 or value > _U64 or index > _U64:
        raise ValueError(f"index {index:#x} and value {value:#x} must be 64-bit unsigned integers")
    if op in (Op.VMREAD, Op.VMWRITE) and index > _operand_mask(size):
        raise ValueError(f"field encoding {index:#x} does not fit a {size.bits}-bit operand")
    if op == Op.VMWRITE and value > _operand_mask(size):
        raise ValueError(f"source {value:#x} does not fit a {size.bits}-bit operand")
    if op in (Op.RDMSR, Op.WRMSR) and index > _U32:
        raise ValueError(f"MSR number {index:#x} is wider than 32 bits")
    if not 1 <= request.instruction_length <= MAX_INSTRUCTION_LENGTH:
        raise ValueError(f"instruction length {request.instruction_length} is not 1-{MAX_INSTRUCTION_LENGTH}")
    if not 0 <= request.gpr <= 15:
        raise ValueError(f"general-purpose register {request.gpr} is not 0-15")
    if op in (Op.IN, Op.OUT):
        if request.io_size not in (1, 2, 4) or index > 0xFFFF:
            raise ValueError(f"I/O of {request.io_size} bytes at port {index:#x}")
        if op == Op.OUT and value >> (8 * request.io_size):
            raise ValueError(f"OUT data {value:#x} wider than {request.io_size} bytes")
    if op in (Op.EXCEPTION, Op.INTERRUPT) and index > 0xFF:
        raise ValueError(f"vector {index:#x} is wider than 8 bits")
    if op == Op.EXCEPTION and value > _U32:
        raise ValueError(f"error code {value:#x} is wider than 32 bits")


def _encoding(field: str | int | Field) -> int:
    if isinstance(field, Field):
        return field.encoding
    if isinstance(field, str):
        return FIELD_BY_NAME[field.upper()].encoding
    return field


def _element_number(element: str | int) -> int:
    return element_id(element) if isinstance(element, str) else element


def _operand_size(size: OperandSize | int) -> OperandSize:
    if isinstance(size, OperandSize):
        return size
    return {32: OperandSize.S32, 64: OperandSize.S64}[size]


def _all_ones(nbytes: int) -> int:
    """What IN reads from a port nothing answers."""
    return (1 << (8 * nbytes)) - 1


class _CurrentVmcs:
    """A cache entry's fields by name: what the transitions and the exit decisions read and write."""

    def __init__(self, cache: VmcsCache, entry: CacheEntry) -> None:
        self._cache = cache
        self._entry = entry

    def read(self, name: str) -> int:
        return self._cache.read(self._entry, FIELD_BY_NAME[name])

    def write(self, name: str, value: int) -> None:
        field = FIELD_BY_NAME[name]
        self._cache.write(self._entry, field, value & ((1 << field.value_bits) - 1))


#: Every full-access on-die field, for naming the fields an operation changed.
_ON_DIE_FULL_FIELDS = tuple(
    f
    for f in FIELD_BY_NAME.values()
    if not f.name.endswith("_HIGH") and layout.LOCATION[f.encoding].storage == layout.Storage.ON_DIE
)
