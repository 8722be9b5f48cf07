"""Bring the reference model to the states a VMM test starts from, the way firmware and a VMM would.

# Ref: Intel SDM vol. 3C, 23.7 "Enabling and entering VMX operation", 24.11.3
# "Initializing a VMCS", 26.2 "Checks on VMX controls and host-state area".
"""

from __future__ import annotations

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER
from vmxu.sim import presets
from vmxu.sim.model import Outcome, VmxModel

VMXON_REGION = 0x1000
VMCS_A = 0x2000
VMCS_B = 0x3000
VMCS_C = 0x4000
VMCS_D = 0x5000
VMCS_E = 0x6000
#: A 4-KiB aligned address below MAXPHYADDR with no RAM behind it (RAM is 1 MiB).
OUTSIDE_RAM = 0x8000_0000

FEATURE_CONTROL_ENABLED = msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX
CR0_PROTECTED_PAGING = CR0.PE | CR0.NE | CR0.PG
CS_AR_64BIT = 0x9B | AR.L
SS_AR_CPL3 = 0x93 | (3 << AR.DPL_SHIFT)

HOST_CS = 0x08
HOST_DATA = 0x10
HOST_TR = 0x18
HOST_RIP_32 = 0x0010_0000
HOST_RIP_64 = 0xFFFF_8000_0010_0000


def expect(outcome: Outcome, status: Status) -> Outcome:
    assert outcome.status == status, f"expected {status.name}, got {outcome}"
    return outcome


def write_revision(model: VmxModel, addr: int, revision: int = msrs.VMCS_REVISION_ID) -> None:
    """Software writes the revision identifier into dword 0 of a VMXON or VMCS region (SDM 24.2)."""
    model.memory.write(addr, 4, revision)


def enable_vmx(model: VmxModel) -> None:
    """Firmware locks IA32_FEATURE_CONTROL; the VMM sets CR0 to the fixed bits and CR4.VMXE (SDM 23.7)."""
    expect(model.wrmsr(msrs.IA32_FEATURE_CONTROL, FEATURE_CONTROL_ENABLED), Status.OK)
    expect(model.set("cr0", CR0_PROTECTED_PAGING), Status.OK)
    expect(model.set("cr4", CR4.VMXE), Status.OK)


def enter_vmx_root(model: VmxModel, vmxon_region: int = VMXON_REGION) -> None:
    enable_vmx(model)
    write_revision(model, vmxon_region)
    expect(model.vmxon(vmxon_region), Status.SUCCEED)


def load_new_vmcs(model: VmxModel, addr: int) -> None:
    """Initialize a VMCS region (revision, VMCLEAR) and make it current (SDM 24.11.3)."""
    write_revision(model, addr)
    expect(model.vmclear(addr), Status.SUCCEED)
    expect(model.vmptrld(addr), Status.SUCCEED)


def enter_ia32e_mode(model: VmxModel) -> None:
    """64-bit mode: EFER.LME and LMA (written directly, docs/semantics.md choice 3) and CS.L."""
    expect(model.set("efer", EFER.LME | EFER.LMA), Status.OK)
    expect(model.set("cs.ar", CS_AR_64BIT), Status.OK)


def vmwrite_all(model: VmxModel, values: dict[str, int]) -> None:
    for name, value in values.items():
        expect(model.vmwrite(name, value), Status.SUCCEED)


def make_launchable(model: VmxModel, *, ia32e_host: bool = False) -> None:
    """Fill the current VMCS so that VMLAUNCH enters the guest (sim/presets.py: every check of SDM 26.2
    and 26.3.1 passes).

    The host is 32-bit protected mode with paging, or, with ``ia32e_host``, a
    64-bit host (the processor must then be in IA-32e mode, see enter_ia32e_mode);
    the guest is 32-bit protected mode with paging.
    """
    vmwrite_all(model, presets.host_fields(ia32e_host=ia32e_host) | presets.guest_fields())
