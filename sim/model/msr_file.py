"""The MSRs the unit implements, as RDMSR and WRMSR at CPL 0 see them (and the VM-entry/exit MSR lists use them).

# Ref: Intel SDM vol. 2B RDMSR/WRMSR; vol. 3C 23.7 (IA32_FEATURE_CONTROL),
# 34.15.5 (IA32_SMM_MONITOR_CTL), appendix A (capability MSRs, A.6 IA32_SMBASE
# readable in SMM); rtl/arch/msrs.py is the table.

``read`` and ``write`` return a ``MsrResult``: the value, or the #GP's reason.
The privilege check (CPL > 0) is the instruction's, not the MSR's: RDMSR and
WRMSR make it first, the MSR lists run at CPL 0 and never do.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.msrs import MSR_BY_NUMBER, MsrKind
from vmxu.rtl.arch.state import ELEMENT_BY_MSR

from .machine_state import MachineState

__all__ = ["MsrFile", "MsrResult"]


@dataclass(frozen=True)
class MsrResult:
    """``fault`` is None when the access completed (``value`` is what RDMSR read), else the #GP's reason."""

    value: int = 0
    fault: str | None = None


def _gp(reason: str) -> MsrResult:
    return MsrResult(fault=reason)


class MsrFile:
    """IA32_FEATURE_CONTROL and IA32_SMM_MONITOR_CTL, and the MSRs that are machine-state elements or constants."""

    def __init__(self, state: MachineState, *, dual_monitor: bool = False) -> None:
        self.state = state
        self.feature_control = 0
        self.smm_monitor_ctl = 0
        #: IA32_VMX_BASIC reports the dual-monitor treatment (bit 49): sim/model/dual_monitor.py.
        self.dual_monitor = dual_monitor

    def read(self, number: int, *, in_smm: bool) -> MsrResult:
        msr = MSR_BY_NUMBER.get(number)
        if msr is None:
            return _gp(f"SDM 2B RDMSR: #GP(0), no MSR {number:#x}")
        match msr.kind:
            case MsrKind.CONSTANT:
                return MsrResult(msrs.constant_value(msr, dual_monitor=self.dual_monitor))
            case MsrKind.FEATURE_CONTROL:
                return MsrResult(self.feature_control)
            case MsrKind.SMM_MONITOR_CTL:
                return MsrResult(self.smm_monitor_ctl)
            case MsrKind.SMBASE:
                if not in_smm:
                    return _gp("SDM A.6: #GP(0), IA32_SMBASE is readable only in SMM")
                return MsrResult(self.state["smbase"])
            case MsrKind.ELEMENT:
                return MsrResult(self.state[ELEMENT_BY_MSR[number].name])
        raise AssertionError(f"MSR kind {msr.kind!r} not handled")

    def write(self, number: int, value: int, *, in_smm: bool, in_vmx_operation: bool) -> MsrResult:
        msr = MSR_BY_NUMBER.get(number)
        if msr is None:
            return _gp(f"SDM 2B WRMSR: #GP(0), no MSR {number:#x}")
        match msr.kind:
            case MsrKind.CONSTANT:
                return _gp(f"SDM A.1: #GP(0), {msr.name} is read-only")
            case MsrKind.FEATURE_CONTROL:
                if self.feature_control & msrs.FEATURE_CONTROL_LOCK:
                    return _gp("SDM 23.7: #GP(0), IA32_FEATURE_CONTROL is locked")
                if value & ~msrs.FEATURE_CONTROL_VALID:
                    return _gp(f"SDM 23.7: #GP(0), IA32_FEATURE_CONTROL bits {value:#x} beyond 2:0")
                self.feature_control = value
                return MsrResult()
            case MsrKind.SMM_MONITOR_CTL:
                return self._write_smm_monitor_ctl(value, in_smm)
            case MsrKind.SMBASE:
                return _gp("SDM A.6: #GP(0), IA32_SMBASE is never writable by WRMSR")
            case MsrKind.ELEMENT:
                element = ELEMENT_BY_MSR[number]
                if value >> element.bits:
                    return _gp(f"SDM 2B WRMSR: #GP(0), {value:#x} wider than {msr.name}")
                violation = self.state.set_rule_violated(element, value, in_vmx_operation)
                if violation is not None:
                    return _gp(f"#GP(0): {violation}")
                self.state.apply_set(element, value)
                return MsrResult()
        raise AssertionError(f"MSR kind {msr.kind!r} not handled")

    def _write_smm_monitor_ctl(self, value: int, in_smm: bool) -> MsrResult:
        """SDM 34.15.5: writable only in SMM; bit 2 only if IA32_VMX_MISC[28]."""
        if not in_smm:
            return _gp("SDM 34.15.5: #GP(0), IA32_SMM_MONITOR_CTL written outside SMM")
        writable = msrs.SMM_MONITOR_CTL_VALID | msrs.SMM_MONITOR_CTL_MSEG_BASE
        if msrs.VMX_MISC.smm_monitor_ctl_bit2:
            writable |= msrs.SMM_MONITOR_CTL_VMXOFF_UNBLOCKS_SMI
        if value & ~writable:
            return _gp(f"SDM 34.15.5: #GP(0), IA32_SMM_MONITOR_CTL reserved bits in {value:#x}")
        self.smm_monitor_ctl = value
        return MsrResult()
