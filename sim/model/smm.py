"""SMI delivery and RSM under the default treatment, in plain Python: the oracle of rtl/vmx/smm.py.

# Ref: Intel SDM vol. 3C, 34.3.1 "Entering SMM", 34.4.1 (the state-save map),
# 34.5.1 table 34-4 (the state SMM starts with), 34.8 (NMIs in SMM), 34.10
# (auto HALT restart), 34.11 (SMBASE relocation), 34.14.1 "Default treatment of
# SMI delivery", 34.14.2 "Default treatment of RSM", 34.14.3 "Protection of
# CR4.VMXE in SMM"; vol. 2B RSM; rtl/arch/smm.py (the map and the loads);
# shared/vmx/REPLAY.md "SMM"; docs/smm.md.

An SMI in VMX operation saves inside the processor what 34.14.1 lists (CR4.VMXE,
VMX operation, root or non-root, the current-VMCS pointer and the VMX-critical
state: SS.DPL, RFLAGS.VM, blocking by STI and by MOV SS, virtual-NMI blocking in
non-root operation with "virtual NMIs"), leaves VMX operation, clears CR4.VMXE,
then saves the state to the map (an I/O SMI's instruction in the I/O state
field) and loads SMM's. RSM shuts the
processor down on an invalid image (``invalid_saved_state``), else restores
every slot, reloads SMBASE from its field, and re-enters VMX operation as the
SMI found it. A second SMI in SMM is held pending (one is kept: the first) and
delivered as soon as RSM completes. Under the dual-monitor treatment
(sim/model/dual_monitor.py) SMIs outside SMM are SMM VM exits instead; this
class still holds the ones that arrive in SMM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmxu.rtl.arch.controls import PIN
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.smm import (
    AUTO_HALT_SLOT,
    CR0_CLEARED_IN_SMM,
    ENTRY_LOADS,
    IO_SMI,
    IO_SMI_IN,
    SAVE_MAP,
    SLOT_BY_ELEMENT,
    EntryLoad,
    SlotKind,
    invalid_saved_state,
    io_state,
    restored_value,
    vmx_fixed,
    word_offsets,
)
from vmxu.rtl.arch.state import AR, CR4, INTERRUPTIBILITY, RFLAGS

from .outcome import Outcome

if TYPE_CHECKING:
    from .request import Request
    from .vmcs_cache import CacheEntry
    from .vmx import VmxModel

__all__ = ["Smm", "HeldVmx"]

_U32 = (1 << 32) - 1
#: The blocking RSM takes from the VMX-critical state rather than the map (34.14.1 item 3; item 4, virtual-NMI
#: blocking, joins it in non-root operation with "virtual NMIs").
_CRITICAL_BLOCKING = INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
#: Value of ``shutdown`` after RSM found an invalid image: not a VMX-abort indicator (those are 1-6).
RSM_SHUTDOWN = 0


@dataclass(frozen=True)
class HeldVmx:
    """What SMI delivery saves inside the processor (34.14.1), for RSM."""

    cr4_vmxe: bool
    in_vmx: bool
    non_root: bool = False
    current: CacheEntry | None = None
    ss_dpl: int = 0
    rflags_vm: int = 0
    #: The interruptibility bits that are VMX-critical state (STI and MOV-SS blocking; virtual-NMI blocking
    #: in non-root operation with "virtual NMIs"), and their values.
    critical: int = 0
    blocking: int = 0


class Smm:
    """SMI delivery and RSM for a ``VmxModel`` (the default treatment of SMIs and SMM)."""

    def __init__(self, model: VmxModel) -> None:
        self.model = model
        #: The SMI held in SMM (one is kept: the first), delivered when SMM is left.
        self.pending: Request | None = None
        self.held: HeldVmx | None = None

    # -- SMI ------------------------------------------------------------------------

    def smi(self, request: Request) -> Outcome:
        """An SMI: held pending in SMM (REPLAY.md "SMM": one is kept), else delivered."""
        model = self.model
        if model.in_smm or (model.dual.active and model.dual.smi_blocked()):
            self.pending = self.pending or request
            return Outcome(Status.OK, pending=True, cause="SDM 34.3.1: SMIs are blocked in SMM; this one is held")
        self.deliver(request)
        return Outcome(Status.OK, cause="SDM 34.3.1, 34.14.1: SMI delivered; the processor is in SMM")

    def deliver(self, request: Request) -> None:
        """34.14.1: save VMX operation inside the processor and leave it, clear CR4.VMXE, save the state to
        the map (34.4.1) and load SMM's (table 34-4)."""
        model, state = self.model, self.model.state
        critical = _CRITICAL_BLOCKING
        if model.non_root and model.current_vmcs().read(PIN.vmcs_field) & PIN.bit("VIRTUAL_NMIS"):
            critical |= INTERRUPTIBILITY.BLOCKING_BY_NMI  # virtual-NMI blocking (34.14.1 item 4)
        self.held = model.leave_vmx_for_smm(
            HeldVmx(
                cr4_vmxe=state.vmx_enabled,
                in_vmx=model.in_vmx_operation,
                ss_dpl=state.cpl,
                rflags_vm=state["rflags"] & RFLAGS.VM,
                critical=critical,
                blocking=state["interruptibility"] & critical,
            )
        )
        state.store("cr4", state["cr4"] & ~CR4.VMXE)
        smbase = state["smbase"]
        for slot in SAVE_MAP:
            image = self._image(slot, request)
            for i, offset in enumerate(word_offsets(slot)):
                model.memory.write_word(((smbase + offset) & _U32) >> 2, image >> (32 * i) & _U32)
        for name, how, constant in ENTRY_LOADS:
            state.store(name, self._entry_value(name, how, constant, smbase))

    def _image(self, slot, request: Request) -> int:  # noqa: ANN001 - arch.smm.Slot
        state = self.model.state
        match slot.kind:
            case SlotKind.ELEMENT:
                return state[slot.name] & ((1 << (8 * slot.size)) - 1)
            case SlotKind.AUTO_HALT:
                return int(state["activity"] == 1) << 16
            case SlotKind.IO_STATE if request.value & IO_SMI:
                return io_state(request.index, request.io_size, bool(request.value & IO_SMI_IN))
            case SlotKind.IO_STATE:
                return 0
        return slot.value

    def _entry_value(self, name: str, how: EntryLoad, constant: int, smbase: int) -> int:
        match how:
            case EntryLoad.CR0_CLEARED:
                return self.model.state["cr0"] & ~CR0_CLEARED_IN_SMM
            case EntryLoad.SMBASE_SELECTOR:
                return smbase >> 4 & 0xFFFF
            case EntryLoad.SMBASE:
                return smbase
        return constant

    # -- RSM ------------------------------------------------------------------------

    def rsm(self) -> Outcome:
        """34.14.2 / vol. 2B RSM in SMM: shut down on an invalid image, else restore the state and SMBASE,
        re-enter VMX operation as the SMI found it, leave SMM; a pending SMI is delivered at once."""
        model, state = self.model, self.model.state
        smbase = state["smbase"]
        images = {slot.name: self._read(slot, smbase) for slot in SAVE_MAP}
        why = invalid_saved_state(images["cr0"], images["cr4"])
        if why is not None:
            return model.shut_down(RSM_SHUTDOWN, why)
        held = self.held or HeldVmx(cr4_vmxe=False, in_vmx=False)
        for name in SLOT_BY_ELEMENT:
            state.store(name, self._restored(name, images[name], held))
        state.store("activity", int(bool(images[AUTO_HALT_SLOT.name] >> 16 & 1)))
        state.store("smm", 0)
        self.held = None
        model.return_to_vmx_from_smm(held)
        if (pending := self.take_pending()) is not None:
            self.deliver(pending)
            return Outcome(Status.OK, cause="SDM 34.14.2: RSM; the pending SMI was delivered at once")
        return Outcome(Status.OK, cause="SDM 34.14.2: RSM restored the saved state and left SMM")

    def take_pending(self) -> Request | None:
        """The SMI held in SMM, if any; it is no longer pending."""
        pending, self.pending = self.pending, None
        return pending

    def _read(self, slot, smbase: int) -> int:  # noqa: ANN001 - arch.smm.Slot
        words = [self.model.memory.read_word(((smbase + offset) & _U32) >> 2) for offset in word_offsets(slot)]
        return sum(word << (32 * i) for i, word in enumerate(words))

    @staticmethod
    def _restored(name: str, image: int, held: HeldVmx) -> int:
        """An element's value after RSM: its image (``restored_value``), with CR4.VMXE as the SMI found it
        and, back to VMX operation, the fixed CR0/CR4 bits and the VMX-critical state (34.14.2)."""
        value = restored_value(name, image)
        match name:
            case "cr4":
                value |= CR4.VMXE if held.cr4_vmxe else 0
                return vmx_fixed(name, value) if held.in_vmx else value
            case "cr0":
                return vmx_fixed(name, value) if held.in_vmx else value
            case "interruptibility":
                value &= ~INTERRUPTIBILITY.BLOCKING_BY_SMI  # RSM unblocks SMIs
                if held.in_vmx:
                    value = value & ~held.critical | held.blocking
                return value
        if not held.in_vmx:
            return value
        match name:
            case "ss.ar":
                return value & ~AR.DPL_MASK | held.ss_dpl << AR.DPL_SHIFT
            case "rflags":
                return value & ~RFLAGS.VM | held.rflags_vm
            case "cs.selector" | "ss.selector" if not held.rflags_vm:
                return value & ~3 | held.ss_dpl  # CS.RPL, SS.RPL := SS.DPL
        return value
