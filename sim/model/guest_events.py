"""VMX non-root operation: what each request does while a guest runs, and which ones cause VM exits.

# Ref: Intel SDM vol. 3C, 25.1 "Instructions that cause VM exits" (25.1.1:
# #UD and privilege faults come before the exit; 25.1.2 unconditional, 25.1.3
# conditional exits), 25.2 "Other causes of VM exits", 25.3 "Changes to
# instruction behavior in VMX non-root operation" (CR0/CR4 read shadows, TSC
# offsetting), 26.7.4-26.7.5 (exits before the guest's first instruction),
# 27.2 (the exit information each exit records), 30.3 (VMX instructions in
# non-root operation); shared/vmx/REPLAY.md "In VMX non-root operation" and
# "Guest events"; docs/semantics.md "Guest events".

``GuestEvents(model).perform(request)`` answers one request of the guest:
``exited`` (through ``model.vm_exit``) when the current VMCS says the event
exits, else what the guest sees (``ok`` with a value, or a ``fault`` that the
exception bitmap did not send to the VMM).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.events import (
    EXCEPTIONS_WITH_ERROR_CODE,
    FAULT_VECTORS,
    CrAccess,
    ExceptionVector,
    InterruptionType,
    cr_qualification,
    exception_type,
    interruption_info,
    io_qualification,
)
from vmxu.rtl.arch.msrs import VMX_MISC
from vmxu.rtl.arch.ops import Op, Status
from vmxu.rtl.arch.state import CR4, INTERRUPTIBILITY, element_id

from .exit_decision import ExitDecision
from .outcome import Outcome
from .request import Request
from .transitions import ExitCause

if TYPE_CHECKING:
    from .vmx import VmxModel

__all__ = ["GuestEvents", "VMX_INSTRUCTION_EXITS"]

#: The exit reason of each VMX instruction in VMX non-root operation (SDM 25.1.2).
VMX_INSTRUCTION_EXITS = {
    Op.VMCALL: ExitReason.VMCALL,
    Op.VMCLEAR: ExitReason.VMCLEAR,
    Op.VMLAUNCH: ExitReason.VMLAUNCH,
    Op.VMPTRLD: ExitReason.VMPTRLD,
    Op.VMPTRST: ExitReason.VMPTRST,
    Op.VMREAD: ExitReason.VMREAD,
    Op.VMRESUME: ExitReason.VMRESUME,
    Op.VMWRITE: ExitReason.VMWRITE,
    Op.VMXOFF: ExitReason.VMXOFF,
    Op.VMXON: ExitReason.VMXON,
}
#: VMX instructions whose exits write the VM-exit instruction-information field (SDM 27.2.5); vmxu has no
#: operand encoding to describe, and writes 0 (docs/semantics.md).
_WITH_INSTRUCTION_INFO = frozenset({Op.VMCLEAR, Op.VMPTRLD, Op.VMPTRST, Op.VMREAD, Op.VMWRITE, Op.VMXON})
_CONTROL_REGISTERS = {element_id("cr0"): 0, element_id("cr3"): 3, element_id("cr4"): 4}
_BLOCKING_BY_STI_OR_MOV_SS = INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
_U64 = (1 << 64) - 1


def _ok(value: int | None = None) -> Outcome:
    return Outcome(Status.OK, value=value)


class GuestEvents:
    """The requests of a guest, on ``model`` in VMX non-root operation."""

    def __init__(self, model: VmxModel) -> None:
        self.model = model
        self.state = model.state
        self.vmcs = model.current_vmcs()
        self.decide = ExitDecision(self.vmcs.read, model.memory)

    def _exit(self, reason: ExitReason, text: str, **record) -> Outcome:
        return self.model.vm_exit(ExitCause(reason, **record), text)

    def _instruction_exit(self, reason: ExitReason, request: Request, text: str, **record) -> Outcome:
        return self._exit(reason, text, instruction_length=request.instruction_length, instruction=True, **record)

    def perform(self, request: Request) -> Outcome:
        op = request.op
        if op in VMX_INSTRUCTION_EXITS:
            return self._vmx_instruction(request)
        match op:
            case Op.RDMSR | Op.WRMSR:
                return self._msr(request)
            case Op.GET | Op.SET:
                return self._element(request)
            case Op.CPUID:
                return self._instruction_exit(ExitReason.CPUID, request, "CPUID exits unconditionally (25.1.2)")
            case Op.HLT:
                return self._hlt(request)
            case Op.RDTSC:
                return self._rdtsc(request)
            case Op.IN | Op.OUT:
                return self._io(request)
            case Op.EXCEPTION:
                return self._exception_event(request)
            case Op.INTERRUPT:
                return self._interrupt(request)
            case Op.NMI:
                return self._nmi()
            case Op.RUN:
                return self._run(request.value)
            case Op.RSM if self.model.in_smm:  # a guest entered with "entry to SMM" (34.15.3)
                return self._instruction_exit(ExitReason.RSM, request, "RSM in SMM exits (34.15.3)")
            case Op.RSM:  # outside SMM: its #UD is an exception of the guest (REPLAY.md "SMM")
                return self._raise(ExceptionVector.UD, "SDM 2B RSM: #UD outside SMM")
        raise ValueError(f"the unit has no operation {op!r}")

    # -- exceptions -----------------------------------------------------------------

    def _raise(self, vector: ExceptionVector, text: str, error_code: int = 0) -> Outcome:
        """An exception the guest's instruction raises: a VM exit if the exception bitmap says so (25.2),
        else delivered in the guest (``fault``)."""
        code = error_code if vector in EXCEPTIONS_WITH_ERROR_CODE else None
        if self.decide.exception(vector, error_code):
            info = interruption_info(vector, exception_type(vector), error_code=code is not None)
            return self._exit(
                ExitReason.EXCEPTION_NMI,
                f"{text}; the exception bitmap sends vector {int(vector)} to the VMM",
                interruption_info=info,
                interruption_error_code=code,
                fault=vector in FAULT_VECTORS,
            )
        return Outcome(Status.FAULT, vector=vector, cause=f"{text}, delivered in the guest")

    def _exception_event(self, request: Request) -> Outcome:
        """An exception in the guest: exits per the exception bitmap (and #PF mask/match), else delivered."""
        vector = request.index
        has_code = vector in EXCEPTIONS_WITH_ERROR_CODE
        if not self.decide.exception(vector, request.value if has_code else 0):
            return _ok()
        kind = exception_type(vector)
        software = kind == InterruptionType.SOFTWARE_EXCEPTION
        return self._exit(
            ExitReason.EXCEPTION_NMI,
            f"exception {vector}: the exception bitmap sends it to the VMM (25.2)",
            interruption_info=interruption_info(vector, kind, error_code=has_code),
            interruption_error_code=request.value if has_code else None,
            instruction_length=request.instruction_length if software else None,
            fault=vector in FAULT_VECTORS,
        )

    # -- instructions ---------------------------------------------------------------

    def _vmx_instruction(self, request: Request) -> Outcome:
        """30.3: the #UD checks, then a VM exit (VMCALL exits whatever the mode)."""
        op = request.op
        name = op.name
        if op != Op.VMCALL:
            if not self.state.protected_mode or self.state.virtual_8086 or self.state.compatibility_mode:
                return self._raise(
                    ExceptionVector.UD, f"SDM 30.3 {name}: #UD (CR0.PE, RFLAGS.VM or compatibility mode)"
                )
            if op == Op.VMXON and not self.state.vmx_enabled:
                return self._raise(ExceptionVector.UD, "SDM 30.3 VMXON: #UD with CR4.VMXE = 0")
        return self._instruction_exit(
            VMX_INSTRUCTION_EXITS[op],
            request,
            f"{name} in VMX non-root operation (30.3)",
            instruction_info=0 if op in _WITH_INSTRUCTION_INFO else None,
        )

    def _msr(self, request: Request) -> Outcome:
        write = request.op == Op.WRMSR
        name = "WRMSR" if write else "RDMSR"
        if self.state.cpl > 0:
            return self._raise(ExceptionVector.GP, f"SDM 2B {name}: #GP(0) with CPL > 0")
        if self.decide.msr(request.index, write=write):
            reason = ExitReason.WRMSR if write else ExitReason.RDMSR
            return self._instruction_exit(reason, request, f"{name} of {request.index:#x} (MSR bitmaps, 25.1.3)")
        in_smm = self.model.in_smm
        if write:
            result = self.model.msr_file.write(request.index, request.value, in_smm=in_smm, in_vmx_operation=True)
        else:
            result = self.model.msr_file.read(request.index, in_smm=in_smm)
        if result.fault is not None:
            return self._raise(ExceptionVector.GP, result.fault)
        return _ok() if write else _ok(result.value)

    def _element(self, request: Request) -> Outcome:
        """MOV to/from CR0, CR3, CR4 (masks, read shadows, CR3 targets); other elements are the guest's."""
        cr = _CONTROL_REGISTERS.get(request.index)
        element = self.state.element(request.index)
        if cr is None:
            return self.model._get(element) if request.op == Op.GET else self.model._set(element, request.value)
        current = self.state[element.name]
        if request.op == Op.GET:
            if cr != 3:
                return _ok(self.decide.read_shadowed(cr, current))
            if self.decide.mov_from_cr3():
                qualification = cr_qualification(3, CrAccess.MOV_FROM_CR, request.gpr)
                return self._instruction_exit(
                    ExitReason.CR_ACCESS, request, '"CR3-store exiting" (25.1.3)', qualification=qualification
                )
            return _ok(current)
        if self.decide.mov_to_cr(cr, request.value):
            qualification = cr_qualification(cr, CrAccess.MOV_TO_CR, request.gpr)
            why = "a CR3-load exit (25.1.3)" if cr == 3 else "a guest/host-mask bit differs from the read shadow"
            return self._instruction_exit(
                ExitReason.CR_ACCESS, request, f"MOV to CR{cr}: {why}", qualification=qualification
            )
        value = self.decide.mov_to_cr_value(cr, request.value, current)
        violation = self.state.set_rule_violated(element, value, True)
        if violation is not None:
            return self._raise(ExceptionVector.GP, f"MOV to CR{cr}: #GP(0), {violation}")
        self.state.apply_set(element, value)
        return _ok()

    def _hlt(self, request: Request) -> Outcome:
        if self.state.cpl > 0:
            return self._raise(ExceptionVector.GP, "SDM 2A HLT: #GP(0) with CPL > 0")
        if self.decide.hlt():
            return self._instruction_exit(ExitReason.HLT, request, '"HLT exiting" (25.1.3)')
        self.model.halt(request.instruction_length)
        return _ok()

    def _rdtsc(self, request: Request) -> Outcome:
        if self.state["cr4"] & CR4.TSD and self.state.cpl > 0:
            return self._raise(ExceptionVector.GP, "SDM 2B RDTSC: #GP(0) with CR4.TSD = 1 and CPL > 0")
        if self.decide.rdtsc():
            return self._instruction_exit(ExitReason.RDTSC, request, '"RDTSC exiting" (25.1.3)')
        return _ok((self.model.tsc + self.decide.tsc_offset()) & _U64)

    def _io(self, request: Request) -> Outcome:
        port, size = request.index, request.io_size
        direction_in = request.op == Op.IN
        if self.decide.io(port, size):
            qualification = io_qualification(port, size, direction_in=direction_in)
            text = f"{request.op.name} of {size} bytes at port {port:#x} (I/O exiting or bitmaps, 25.1.3)"
            return self._instruction_exit(ExitReason.IO_INSTRUCTION, request, text, qualification=qualification)
        return _ok((1 << (8 * size)) - 1) if direction_in else _ok()

    # -- interrupts, NMIs, time -------------------------------------------------------------

    def _interrupt(self, request: Request) -> Outcome:
        if not self.decide.external_interrupt(self.state["interruptibility"]):
            return _ok()
        info = 0
        if self.decide.acknowledges_interrupts():
            info = interruption_info(request.index, InterruptionType.EXTERNAL_INTERRUPT)
        return self._exit(ExitReason.EXTERNAL_INTERRUPT, '"external-interrupt exiting" (25.2)', interruption_info=info)

    def _nmi(self) -> Outcome:
        if not self.decide.nmi(self.state["interruptibility"]):
            return _ok()
        info = interruption_info(ExceptionVector.NMI, InterruptionType.NMI)
        return self._exit(ExitReason.EXCEPTION_NMI, '"NMI exiting" (25.2)', interruption_info=info, nmi=True)

    def _run(self, cycles: int) -> Outcome:
        """The guest runs ``cycles`` cycles of other instructions: blocking by STI or MOV SS ends with its first
        instruction; an open NMI or interrupt window exits at once; the VMX-preemption timer counts down by one each
        time TSC bit IA32_VMX_MISC[4:0] changes, and exits when it reaches 0 (25.5.1)."""
        before = self.model.advance_tsc(cycles)
        if cycles:
            self.state.store("interruptibility", self.state["interruptibility"] & ~_BLOCKING_BY_STI_OR_MOV_SS)
        if (window := self._interrupt_window()) is not None:
            return window
        if self.decide.preemption_timer():
            rate = VMX_MISC.preemption_timer_rate
            ticks = ((before + cycles) >> rate) - (before >> rate)
            timer = self.model.preemption_timer
            if ticks >= timer:
                self.model.set_preemption_timer(0)
                return self._exit(ExitReason.PREEMPTION_TIMER, "the VMX-preemption timer counted down to 0 (25.5.1)")
            self.model.set_preemption_timer(timer - ticks)
        return _ok()

    def _interrupt_window(self) -> Outcome | None:
        """An open NMI window, then an open interrupt window, exits (25.2; the NMI window has priority)."""
        interruptibility = self.state["interruptibility"]
        if self.decide.nmi_window(interruptibility):
            return self._exit(ExitReason.NMI_WINDOW, '"NMI-window exiting" with no virtual-NMI blocking (25.2)')
        if self.decide.interrupt_window(self.state["rflags"], interruptibility):
            return self._exit(ExitReason.INTERRUPT_WINDOW, '"interrupt-window exiting" with the window open (25.2)')
        return None

    def exit_before_first_instruction(self) -> Outcome | None:
        """26.7.4-26.7.6: a VMX-preemption timer of 0 exits before the guest's first instruction, and so do an
        open NMI window and an open interrupt window, in that order of priority."""
        if self.decide.preemption_timer() and self.model.preemption_timer == 0:
            return self._exit(ExitReason.PREEMPTION_TIMER, "VMX-preemption timer value 0 at VM entry (26.7.4)")
        return self._interrupt_window()
