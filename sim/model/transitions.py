"""VM entries and VM exits: the state-action table interpreted, the MSR lists, the exit information, VMX aborts.

# Ref: Intel SDM vol. 3C, 26.3.2 "Loading guest state", 26.4 "Loading MSRs",
# 26.6 "Event injection", 26.8 "VM-entry failures during or after loading guest
# state"; 27.2 "Recording VM-exit information", 27.3 "Saving guest state", 27.4
# "Saving MSRs", 27.5 "Loading host state", 27.6 "Loading MSRs", 27.7 "VMX
# aborts"; rtl/arch/state_actions.py (the table); docs/semantics.md "VM entry"
# and "VM exit".

``Transitions`` moves state between the processor (``MachineState``), the
current VMCS (a ``Vmcs``: read and write a field by name) and memory (the MSR
lists). What it does to each element is the table's row, interpreted by
``_load`` and ``_store``; the rules of ``Rule`` are the only computation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT
from vmxu.rtl.arch.errors import EXIT_REASON_ENTRY_FAILURE, ExitReason
from vmxu.rtl.arch.events import VmxAbort
from vmxu.rtl.arch.layout import ABORT_WORD
from vmxu.rtl.arch.state import AR, CR4, EFER, ELEMENT_BY_NAME, INTERRUPTIBILITY, RFLAGS
from vmxu.rtl.arch.state_actions import (
    CR0_KEPT_BITS,
    HOST_CS_AR,
    HOST_DATA_AR,
    STATE_ACTIONS,
    TIMER,
    UNUSABLE_AR,
    Action,
    Indicator,
    Rule,
    Source,
    StateAction,
)

from .machine_state import MachineState
from .memory import PhysicalMemory
from .msr_file import MsrFile

__all__ = ["Vmcs", "ExitCause", "Transitions", "MsrListFailure"]

_MSR_ENTRY_BYTES = 16
_X2APIC_MSRS = range(0x800, 0x900)
_U32 = 0xFFFF_FFFF


class Vmcs(Protocol):
    """The current VMCS, as the transitions read and write it."""

    def read(self, name: str) -> int: ...

    def write(self, name: str, value: int) -> None: ...


@dataclass(frozen=True)
class ExitCause:
    """What a VM exit records (27.2): ``reason`` (basic), the qualification, and the fields that apply.

    ``instruction_length`` / ``instruction_info`` are written when not None;
    ``interruption_info`` is written always (0: not valid) and
    ``interruption_error_code`` when not None. ``instruction`` says an
    instruction caused the exit (RFLAGS.RF is saved as 0); ``nmi`` that an NMI
    did (NMIs stay blocked in the host).
    """

    reason: ExitReason
    qualification: int = 0
    instruction_length: int | None = None
    instruction_info: int | None = None
    interruption_info: int = 0
    interruption_error_code: int | None = None
    instruction: bool = False
    fault: bool = False
    nmi: bool = False


@dataclass(frozen=True)
class MsrListFailure:
    """The first entry (counting from 1) of an MSR list that cannot be processed, and why."""

    entry: int
    why: str


@dataclass
class _Context:
    """What the computed rules read besides the element and the field."""

    vmcs: Vmcs
    vectoring: bool = False
    cause: ExitCause | None = None
    nmi_blocking: bool = False
    mov_ss_blocking: bool = False
    timer: int = 0
    #: The exit ends in SMM (a VM exit from a guest entered with "entry to SMM", 34.15.3; 27.3.4).
    ends_in_smm: bool = False

    def control(self, action: Action) -> bool:
        assert action.control is not None
        return bool(self.vmcs.read(action.control.field.vmcs_field) & action.control.field.bit(action.control.name))

    @property
    def host_address_space_size(self) -> bool:
        return bool(self.vmcs.read(EXIT.vmcs_field) & EXIT.bit("HOST_ADDR_SPACE_SIZE"))

    @property
    def ia32e_mode_guest(self) -> bool:
        return bool(self.vmcs.read(ENTRY.vmcs_field) & ENTRY.bit("IA32E_MODE"))


def _rflags_saved(cause: ExitCause | None, value: int) -> int:
    """27.3.3: RF is 0 after an instruction exit, 1 after a fault-class exception, else as it is."""
    if cause is not None and cause.instruction:
        return value & ~RFLAGS.RF
    if cause is not None and cause.fault:
        return value | RFLAGS.RF
    return value


def _with_lma_lme(value: int, on: bool) -> int:
    both = EFER.LMA | EFER.LME
    return (value & ~both) | (both if on else 0)


#: The computed rules of the table: (context, row, current element value, field value or None) -> new value.
_RULES: dict[Rule, Callable[[_Context, StateAction, int, int | None], int]] = {
    Rule.CR0_FROM_FIELD: lambda c, r, cur, f: (f & ~CR0_KEPT_BITS) | (cur & CR0_KEPT_BITS),
    Rule.CR4_HOST: lambda c, r, cur, f: f | (CR4.PAE if c.host_address_space_size else 0),
    Rule.EFER_FROM_IA32E_MODE_GUEST: lambda c, r, cur, f: _with_lma_lme(cur, c.ia32e_mode_guest),
    Rule.EFER_FROM_HOST_ADDRESS_SPACE_SIZE: lambda c, r, cur, f: _with_lma_lme(cur, c.host_address_space_size),
    Rule.RFLAGS_SAVED: lambda c, r, cur, f: _rflags_saved(c.cause, cur),
    Rule.INTERRUPTIBILITY_SAVED: lambda c, r, cur, f: (
        cur | INTERRUPTIBILITY.BLOCKING_BY_SMI if c.ends_in_smm else cur & ~INTERRUPTIBILITY.BLOCKING_BY_SMI
    ),
    Rule.PENDING_DEBUG_SAVED: lambda c, r, cur, f: cur if c.mov_ss_blocking else 0,
    Rule.AR_SAVED: lambda c, r, cur, f: cur & ~AR.RESERVED,
    Rule.ACTIVITY_ENTRY: lambda c, r, cur, f: 0 if c.vectoring else f,
    Rule.INTERRUPTIBILITY_ENTRY: lambda c, r, cur, f: f & ~0x3 if c.vectoring else f,
    Rule.INTERRUPTIBILITY_HOST: lambda c, r, cur, f: (
        (INTERRUPTIBILITY.BLOCKING_BY_NMI if c.nmi_blocking else 0)
        | (INTERRUPTIBILITY.BLOCKING_BY_SMI if c.ends_in_smm else 0)
    ),
    Rule.CS_AR_HOST: lambda c, r, cur, f: HOST_CS_AR | (AR.L if c.host_address_space_size else AR.DB),
    Rule.DATA_AR_HOST: lambda c, r, cur, f: (
        UNUSABLE_AR if c.vmcs.read(f"HOST_{r.element.split('.')[0].upper()}_SELECTOR") == 0 else HOST_DATA_AR
    ),
    Rule.TIMER_SAVED: lambda c, r, cur, f: c.timer,
}


class Transitions:
    """The state movements of VM entries and VM exits, and the MSR lists."""

    def __init__(self, state: MachineState, memory: PhysicalMemory, msr_file: MsrFile) -> None:
        self.state = state
        self.memory = memory
        self.msr_file = msr_file
        #: The VMX-preemption timer's value while a guest runs.
        self.timer = 0

    # -- the table ----------------------------------------------------------------------

    def _current(self, element: str) -> int:
        return self.timer if element == TIMER else self.state[element]

    def _put(self, element: str, value: int) -> None:
        if element == TIMER:
            self.timer = value & _U32
            return
        e = ELEMENT_BY_NAME[element]
        self.state.store(element, (value | e.force1) & ~e.force0 & e.mask)

    def _load_value(self, row: StateAction, action: Action, ctx: _Context) -> int | None:
        if action.indicator == Indicator.NEVER:
            return None
        if action.indicator == Indicator.CONTROL and not ctx.control(action):
            return None if action.otherwise is None else self._load_value(row, action.otherwise, ctx)
        if action.source == Source.CONSTANT:
            return action.constant
        field = ctx.vmcs.read(action.field) if action.field is not None else None
        if action.source == Source.FIELD:
            return field
        assert action.rule is not None
        return _RULES[action.rule](ctx, row, self._current(row.element), field)

    def _load(self, pick: Callable[[StateAction], Action], ctx: _Context) -> None:
        for row in STATE_ACTIONS:
            value = self._load_value(row, pick(row), ctx)
            if value is not None:
                self._put(row.element, value)

    def _store(self, ctx: _Context) -> None:
        for row in STATE_ACTIONS:
            action = row.exit_store
            if action.indicator == Indicator.NEVER:
                continue
            if action.indicator == Indicator.CONTROL and not ctx.control(action):
                continue
            value = self._current(row.element)
            if action.source == Source.COMPUTED:
                assert action.rule is not None
                value = _RULES[action.rule](ctx, row, value, None)
            assert action.field is not None
            ctx.vmcs.write(action.field, value)

    # -- VM entry ------------------------------------------------------------------------

    def load_guest(self, vmcs: Vmcs, *, vectoring: bool) -> None:
        """26.3.2: every element's entry-load action (the checks have passed)."""
        self._load(lambda row: row.entry_load, _Context(vmcs, vectoring=vectoring))

    def load_entry_msrs(self, vmcs: Vmcs) -> MsrListFailure | None:
        """26.4: the VM-entry MSR-load list, in order; the first entry that cannot be loaded stops it."""
        count = vmcs.read("VM_ENTRY_MSR_LOAD_COUNT")
        return self._load_msrs(vmcs.read("VM_ENTRY_MSR_LOAD_ADDR"), count)

    # -- VM exit -------------------------------------------------------------------------

    def record_exit(self, vmcs: Vmcs, cause: ExitCause) -> None:
        """27.2: exit reason, qualification, interruption and IDT-vectoring information, instruction
        length and information; the VM-entry interruption information's valid bit cleared; with
        IA32_VMX_MISC bit 5, EFER.LMA copied into "IA-32e mode guest"."""
        vmcs.write("VM_EXIT_REASON", int(cause.reason))
        vmcs.write("EXIT_QUALIFICATION", cause.qualification)
        vmcs.write("VM_EXIT_INTR_INFO", cause.interruption_info)
        if cause.interruption_error_code is not None:
            vmcs.write("VM_EXIT_INTR_ERROR_CODE", cause.interruption_error_code)
        # Events are never delivered through the guest's IDT here, so no exit happens during delivery.
        vmcs.write("IDT_VECTORING_INFO_FIELD", 0)
        if cause.instruction_length is not None:
            vmcs.write("VM_EXIT_INSTRUCTION_LEN", cause.instruction_length)
        if cause.instruction_info is not None:
            vmcs.write("VMX_INSTRUCTION_INFO", cause.instruction_info)
        vmcs.write("VM_ENTRY_INTR_INFO_FIELD", vmcs.read("VM_ENTRY_INTR_INFO_FIELD") & ~(1 << 31))
        if msrs.VMX_MISC.exit_saves_lma:
            ia32e = ENTRY.bit("IA32E_MODE") if self.state["efer"] & EFER.LMA else 0
            vmcs.write(ENTRY.vmcs_field, (vmcs.read(ENTRY.vmcs_field) & ~ENTRY.bit("IA32E_MODE")) | ia32e)

    def save_guest(self, vmcs: Vmcs, cause: ExitCause, *, ends_in_smm: bool = False) -> None:
        """27.3: every element's exit-store action."""
        mov_ss = bool(self.state["interruptibility"] & INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
        self._store(_Context(vmcs, cause=cause, timer=self.timer, mov_ss_blocking=mov_ss, ends_in_smm=ends_in_smm))

    def store_exit_msrs(self, vmcs: Vmcs, *, ends_in_smm: bool = False) -> MsrListFailure | None:
        """27.4: the VM-exit MSR-store list (IA32_SMBASE only by an exit that ends in SMM)."""
        addr, count = vmcs.read("VM_EXIT_MSR_STORE_ADDR"), vmcs.read("VM_EXIT_MSR_STORE_COUNT")
        for number, (entry, index, reserved) in enumerate(self._msr_entries(addr, count), start=1):
            if entry is None:
                return MsrListFailure(number, f"more than {msrs.MSR_LIST_MAX_ENTRIES} entries")
            if reserved:
                return MsrListFailure(number, "bits 63:32 of the entry's first quadword are not 0")
            if index in _X2APIC_MSRS or (index == msrs.IA32_SMBASE and not ends_in_smm):
                return MsrListFailure(number, f"MSR {index:#x} may not be stored")
            result = self.msr_file.read(index, in_smm=ends_in_smm)
            if result.fault is not None:
                return MsrListFailure(number, result.fault)
            self.memory.write_word((entry >> 2) + 2, result.value & _U32)
            self.memory.write_word((entry >> 2) + 3, result.value >> 32)
        return None

    def load_host(self, vmcs: Vmcs, *, nmi_blocking: bool, ends_in_smm: bool = False) -> None:
        """27.5: every element's exit-load action; NMIs stay blocked when ``nmi_blocking``, SMIs when the exit
        ends in SMM."""
        self._load(lambda row: row.exit_load, _Context(vmcs, nmi_blocking=nmi_blocking, ends_in_smm=ends_in_smm))

    def load_exit_msrs(self, vmcs: Vmcs, *, ends_in_smm: bool = False) -> MsrListFailure | None:
        """27.6: the VM-exit MSR-load list (IA32_SMM_MONITOR_CTL only by an exit that ends in SMM, 34.15.5)."""
        addr, count = vmcs.read("VM_EXIT_MSR_LOAD_ADDR"), vmcs.read("VM_EXIT_MSR_LOAD_COUNT")
        return self._load_msrs(addr, count, in_smm=ends_in_smm)

    def abort(self, vmcs_pointer: int, indicator: VmxAbort) -> None:
        """27.7: the abort indicator goes to offset 4 of the current VMCS's region."""
        self.memory.write_word((vmcs_pointer >> 2) + ABORT_WORD, int(indicator))

    # -- the MSR lists ---------------------------------------------------------------------

    def _msr_entries(self, addr: int, count: int):
        """(entry address, MSR index, bits 63:32 of the first quadword) of each entry; None past the limit."""
        for i in range(count):
            if i == msrs.MSR_LIST_MAX_ENTRIES:
                yield None, 0, 0
                return
            entry = addr + _MSR_ENTRY_BYTES * i
            yield entry, self.memory.read_word(entry >> 2), self.memory.read_word((entry >> 2) + 1)

    def _load_msrs(self, addr: int, count: int, *, in_smm: bool = False) -> MsrListFailure | None:
        """26.4 and 27.6: each entry is a WRMSR at CPL 0, except the MSRs the lists may not load (IA32_SMM_MONITOR_CTL
        unless the list is loaded in SMM)."""
        for number, (entry, index, reserved) in enumerate(self._msr_entries(addr, count), start=1):
            if entry is None:
                return MsrListFailure(number, f"more than {msrs.MSR_LIST_MAX_ENTRIES} entries")
            if reserved:
                return MsrListFailure(number, "bits 63:32 of the entry's first quadword are not 0")
            refused = (msrs.IA32_FS_BASE, msrs.IA32_GS_BASE) + (() if in_smm else (msrs.IA32_SMM_MONITOR_CTL,))
            if index in _X2APIC_MSRS or index in refused:
                return MsrListFailure(number, f"MSR {index:#x} may not be loaded from an MSR list")
            value = self.memory.read_word((entry >> 2) + 2) | self.memory.read_word((entry >> 2) + 3) << 32
            if index == msrs.IA32_EFER and (value ^ self.state["efer"]) & EFER.LMA:
                return MsrListFailure(number, "an MSR list may not change IA32_EFER.LMA")
            result = self.msr_file.write(index, value, in_smm=in_smm, in_vmx_operation=True)
            if result.fault is not None:
                return MsrListFailure(number, result.fault)
        return None


def entry_failure_reason(reason: ExitReason) -> int:
    """The full exit reason of a VM-entry failure: bit 31 set (26.8)."""
    return EXIT_REASON_ENTRY_FAILURE | int(reason)
