"""The dual-monitor treatment of SMIs and SMM, in plain Python (the oracle of rtl/vmx/dual_monitor.py).

# Ref: Intel SDM vol. 3C, 34.15 "Dual-monitor treatment of SMIs and SMM":
# 34.15.2 (SMM VM exits: the executive-VMCS and current-VMCS pointers, the exit
# information, GUEST_SMBASE, NMIs and SMIs blocked), 34.15.4 (VM entries that
# return from SMM: the executive-VMCS pointer's checks, errors 16-18 and 25, SMBASE,
# the pointers' swap, SMI blocking), 34.15.5 (IA32_SMM_MONITOR_CTL, the MSEG
# header), 34.15.6 (activation by VMCALL: errors 19, 20, 22, 24; the state loaded
# from the MSEG header), 34.15.7 (deactivation); vol. 3C 30.3 VMCALL and VMXOFF
# (error 23); shared/vmx/REFERENCE.md section 7; docs/smm.md.

A ``VmxModel`` with VM entries (``dual_monitor`` defaults to ``transitions``, as the
unit has the treatment exactly when it has guests) reports the treatment
(IA32_VMX_BASIC bit 49) and carries it out here. The SMM-transfer monitor (STM) runs in SMM in
VMX root operation; SMIs outside SMM and VMCALL in root operation outside SMM
become SMM VM exits to it (reasons 6, 5 and 18); it runs the legacy SMM handler
as a guest entered with "entry to SMM" (whose RSM exits with reason 17) and
returns with a VM entry that leaves SMM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT
from vmxu.rtl.arch.errors import ExitReason, VmError
from vmxu.rtl.arch.events import VmxAbort, io_qualification
from vmxu.rtl.arch.layout import LAUNCH_LAUNCHED
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.smm import (
    EXIT_REASON_FROM_ROOT,
    IO_SMI,
    IO_SMI_IN,
    MSEG_FEATURE_IA32E,
    MSEG_FEATURES,
    MSEG_HEADER_WORDS,
    MSEG_REVISION,
    SMM_INTERRUPTIBILITY,
    STM_LOADS,
    stm_value,
)
from vmxu.rtl.arch.state import AR, INTERRUPTIBILITY

from .entry_checks import EntryChecks, capability_failure, is_bad_address, msr_list_failure
from .outcome import Outcome
from .transitions import ExitCause

if TYPE_CHECKING:
    from .request import Request
    from .vmx import VmxModel

__all__ = ["DualMonitor"]

_U32 = (1 << 32) - 1


class DualMonitor:
    """The dual-monitor treatment of a ``VmxModel``: whether it is active, and the SMM-transfer VMCS."""

    def __init__(self, model: VmxModel, *, supported: bool) -> None:
        self.model = model
        #: The processor reports the treatment (IA32_VMX_BASIC bit 49).
        self.supported = supported
        self.active = False
        #: The SMM-transfer VMCS pointer (34.15.2.2): the VMCS SMM VM exits use.
        self.transfer: int | None = None

    # -- VMCALL in VMX root operation (30.3, 34.15.6) -------------------------------------

    def vmcall(self, length: int) -> Outcome:
        """After #UD, #GP and VMfail(1) (in SMM, no support, IA32_SMM_MONITOR_CTL.valid = 0): an SMM VM exit
        when the treatment is active, else its activation with the checks of 34.15.6.1 and 34.15.6.2."""
        model = self.model
        if self.active:
            cause = ExitCause(ExitReason.VMCALL, instruction_length=length, instruction_info=0, instruction=True)
            return self.smm_vm_exit(cause, from_root=True, text="VMCALL in VMX root operation")
        current = model.current_vmcs_pointer
        if current is None:
            return Outcome(Status.FAIL_INVALID, cause="SDM 30.3 VMCALL: VMfailInvalid, no current VMCS")
        if model.current_launch & LAUNCH_LAUNCHED:
            return model.vmfail_valid(VmError.VMCALL_NONCLEAR_VMCS, "SDM 34.15.6.1: the current VMCS is launched")
        if (why := self._exit_controls_invalid()) is not None:
            return model.vmfail_valid(VmError.VMCALL_INVALID_EXIT_CONTROLS, f"SDM 34.15.6.1: {why}")
        mseg = model.smm_monitor_ctl & msrs.SMM_MONITOR_CTL_MSEG_BASE
        revision = model.memory.read_word((mseg + MSEG_REVISION) >> 2)
        if revision != msrs.MSEG_REVISION_ID:
            why = f"SDM 34.15.6.2: MSEG revision identifier {revision:#x}, not {msrs.MSEG_REVISION_ID:#x}"
            return model.vmfail_valid(VmError.VMCALL_INCORRECT_MSEG_REVISION, why)
        features = model.memory.read_word((mseg + MSEG_FEATURES) >> 2)
        sixty_four = model.state.ia32e_mode and bool(model.state["cs.ar"] & AR.L)
        if features & ~MSEG_FEATURE_IA32E or (sixty_four and not features & MSEG_FEATURE_IA32E):
            why = f"SDM 34.15.6.2: SMM-monitor features {features:#x} (bits 31:1 reserved; bit 0 = 1 in 64-bit mode)"
            return model.vmfail_valid(VmError.VMCALL_INVALID_SMM_MONITOR_FEATURES, why)
        return self._activate(mseg, bool(features & MSEG_FEATURE_IA32E), length)

    def _exit_controls_invalid(self) -> str | None:
        """34.15.6.1 item 3: the VM-exit controls within their capability MSR, and the VM-exit MSR-store list's
        address (16-byte aligned, its last byte below 2^MAXPHYADDR) when its count is not 0."""
        field = self.model.current_vmcs().read
        failure = capability_failure(EXIT, field(EXIT.vmcs_field))
        store = "VM_EXIT_MSR_STORE_ADDR"
        return failure or msr_list_failure(store, field(store), field("VM_EXIT_MSR_STORE_COUNT"))

    def _activate(self, mseg: int, ia32e: bool, length: int) -> Outcome:
        """34.15.6.3-34.15.6.6: an SMM VM exit that saves the executive monitor's state in the current VMCS,
        which becomes the SMM-transfer VMCS, and loads the STM's state from the MSEG header (no MSR lists)."""
        model = self.model
        vmcs = model.current_vmcs()
        self.transfer = model.current_vmcs_pointer
        vmcs.write("EXECUTIVE_VMCS_POINTER", model.vmxon_pointer)
        cause = ExitCause(ExitReason.VMCALL, instruction_length=length, instruction_info=0, instruction=True)
        model.moves.record_exit(vmcs, cause)
        vmcs.write("VM_EXIT_REASON", int(ExitReason.VMCALL) | EXIT_REASON_FROM_ROOT)
        model.moves.save_guest(vmcs, cause)
        vmcs.write("GUEST_SMBASE", model.state["smbase"])
        self._load_stm_state(mseg, ia32e)
        self.active = True
        return Outcome(Status.EXITED, reason=int(ExitReason.VMCALL), cause="SDM 34.15.6: dual-monitor treatment on")

    def _load_stm_state(self, mseg: int, ia32e: bool) -> None:
        """34.15.6.6: the STM's state, from the MSEG header (``STM_LOADS``, rtl/arch/smm.py, the RTL's table
        too); SMM entered with SMIs and NMIs blocked."""
        state, memory = self.model.state, self.model.memory
        header = [memory.read_word((mseg >> 2) + i) for i in range(MSEG_HEADER_WORDS)]
        for row in STM_LOADS:
            state.store(row.name, stm_value(row, state[row.name], header, mseg, ia32e))

    # -- SMM VM exits (34.15.2) -----------------------------------------------------------

    def smi(self, request: Request) -> Outcome:
        """An SMI outside SMM: an SMM VM exit, reason 5 (an I/O SMI: IN/OUT with the port in DX) or 6."""
        if request.value & IO_SMI:
            direction_in = bool(request.value & IO_SMI_IN)
            # As an I/O instruction's (34.15.2.3, table 27-5): IN or OUT with the port in DX.
            qualification = io_qualification(request.index, request.io_size, direction_in=direction_in)
            cause = ExitCause(ExitReason.IO_SMI, qualification=qualification)
            return self.smm_vm_exit(cause, from_root=not self.model.non_root, text="I/O SMI", io=True)
        cause = ExitCause(ExitReason.OTHER_SMI)
        return self.smm_vm_exit(cause, from_root=not self.model.non_root, text="SMI")

    def smm_vm_exit(self, cause: ExitCause, *, from_root: bool, text: str, io: bool = False) -> Outcome:
        """34.15.2: the executive-VMCS pointer field := the current-VMCS pointer (from non-root) or the VMXON
        pointer (from root); the SMM-transfer VMCS becomes current and gets the exit information and the
        interrupted state (GUEST_SMBASE too); its host state is loaded; SMM is entered, SMIs and NMIs blocked."""
        model = self.model
        assert self.transfer is not None
        executive = model.vmxon_pointer if from_root else model.current_vmcs_pointer
        model.make_current(self.transfer)
        vmcs = model.current_vmcs()
        vmcs.write("EXECUTIVE_VMCS_POINTER", executive)
        model.moves.record_exit(vmcs, cause)
        vmcs.write("VM_EXIT_REASON", int(cause.reason) | (EXIT_REASON_FROM_ROOT if from_root else 0))
        if io:
            for name in ("IO_RCX", "IO_RSI", "IO_RDI"):
                vmcs.write(name, 0)  # the unit has no general-purpose registers but RSP
            vmcs.write("IO_RIP", model.state["rip"])
        model.moves.save_guest(vmcs, cause)
        vmcs.write("GUEST_SMBASE", model.state["smbase"])
        if (failure := model.moves.store_exit_msrs(vmcs, ends_in_smm=True)) is not None:
            return model.abort(VmxAbort.MSR_STORE, f"SDM 27.4: VM-exit MSR-store entry {failure.entry}: {failure.why}")
        model.moves.load_host(vmcs, nmi_blocking=True)
        state = model.state
        state.store("interruptibility", state["interruptibility"] | SMM_INTERRUPTIBILITY)
        state.store("smm", 1)
        model.leave_non_root()
        if (failure := model.moves.load_exit_msrs(vmcs, ends_in_smm=True)) is not None:
            return model.abort(VmxAbort.MSR_LOAD, f"SDM 27.6: VM-exit MSR-load entry {failure.entry}: {failure.why}")
        return Outcome(Status.EXITED, reason=int(cause.reason), cause=f"SDM 34.15.2: SMM VM exit, {text}")

    # -- VM entries in SMM (34.15.4) ------------------------------------------------------

    def smi_blocked(self) -> bool:
        """SMIs are blocked outside SMM: a return from SMM left them so (34.15.4.9: interruptibility bit 2)."""
        return bool(self.model.state["interruptibility"] & INTERRUPTIBILITY.BLOCKING_BY_SMI)

    def returns_from_smm(self) -> bool:
        """A VM entry now returns from SMM: in SMM, with "entry to SMM" = 0 in the current VMCS."""
        entry = self.model.current_vmcs().read(ENTRY.vmcs_field)
        return self.model.in_smm and not entry & ENTRY.bit("SMM")

    def executive_failure(self) -> tuple[VmError, str] | None:
        """34.15.4.1-34.15.4.3: the executive-VMCS pointer (16: a bad address, or a region without the revision
        identifier, the VMXON region too; 18: "deactivate dual-monitor treatment" with a pointer that is not the
        VMXON pointer; else 17: a VMCS that is not launched), the VM-execution controls of the executive VMCS
        (25), and, for a return to VMX root operation, no event injected but a pending MTF (7: none here)."""
        model = self.model
        vmcs = model.current_vmcs()
        executive = vmcs.read("EXECUTIVE_VMCS_POINTER")
        deactivate = vmcs.read(ENTRY.vmcs_field) & ENTRY.bit("DEACT_DUAL_MONITOR")
        if is_bad_address(executive):
            return VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER, f"executive-VMCS pointer {executive:#x}"
        revision = model.memory.read_word(executive >> 2)
        if revision != msrs.VMCS_REVISION_ID:
            return VmError.ENTRY_INVALID_EXECUTIVE_VMCS_POINTER, f"executive region revision {revision:#x}"
        to_root = executive == model.vmxon_pointer
        if deactivate and not to_root:
            return VmError.ENTRY_EXECUTIVE_VMCS_NOT_VMXON_POINTER, "deactivating with a VMCS as executive"
        if to_root:
            if vmcs.read("VM_ENTRY_INTR_INFO_FIELD") >> 31:
                why = "34.15.4.3: a return to VMX root operation injects an event (only a pending MTF may be)"
                return VmError.ENTRY_INVALID_CONTROL_FIELD, why
            return None
        if not model.launch_state(executive) & LAUNCH_LAUNCHED:
            return VmError.ENTRY_NONLAUNCHED_EXECUTIVE_VMCS, f"executive VMCS {executive:#x} not launched"
        checks = EntryChecks(model.field_reader(executive), model.state.ia32e_mode, in_smm=False)
        if (why := checks.first_execution_control_failure()) is not None:
            return VmError.ENTRY_INVALID_EXECUTIVE_CONTROLS, f"the executive VMCS: {why}"
        return None

    def finish_return(self) -> bool:
        """34.15.4.5-34.15.4.9, after the guest state is loaded: SMBASE from GUEST_SMBASE, the SMM-transfer
        VMCS pointer := the current one, the current one := the executive VMCS (or, when that is the VMXON
        pointer, the VMCS link pointer), SMM left, SMIs blocked per interruptibility bit 2 (unblocked when
        deactivating); returns whether the processor goes to VMX non-root operation."""
        model = self.model
        vmcs = model.current_vmcs()
        state = model.state
        state.store("smbase", vmcs.read("GUEST_SMBASE") & _U32)
        executive = vmcs.read("EXECUTIVE_VMCS_POINTER")
        link = vmcs.read("VMCS_LINK_POINTER")
        deactivate = vmcs.read(ENTRY.vmcs_field) & ENTRY.bit("DEACT_DUAL_MONITOR")
        self.transfer = model.current_vmcs_pointer
        to_root = executive == model.vmxon_pointer
        if to_root:
            model.make_current(None if link == (1 << 64) - 1 else link)
        else:
            model.make_current(executive)
        state.store("smm", 0)
        if deactivate:
            self.active = False
            self.transfer = None
            state.store("interruptibility", state["interruptibility"] & ~INTERRUPTIBILITY.BLOCKING_BY_SMI)
        return not to_root
