"""Fixtures: a fresh model, one in VMX root operation, one with a current VMCS, one ready for VMLAUNCH."""

from __future__ import annotations

import pytest
from model_setup import VMCS_A, enter_vmx_root, load_new_vmcs, make_launchable

from vmxu.sim.model import PhysicalMemory, VmxModel


@pytest.fixture
def model() -> VmxModel:
    """After power-up: not in VMX operation, IA32_FEATURE_CONTROL = 0, CR0/CR4 as after RESET."""
    return VmxModel(PhysicalMemory())


@pytest.fixture
def in_root(model: VmxModel) -> VmxModel:
    """VMXON done (VMXON region at VMXON_REGION), no current VMCS."""
    enter_vmx_root(model)
    return model


@pytest.fixture
def with_current(in_root: VmxModel) -> VmxModel:
    """VMCS_A cleared and current."""
    load_new_vmcs(in_root, VMCS_A)
    return in_root


@pytest.fixture
def launchable(with_current: VmxModel) -> VmxModel:
    """VMCS_A current and passing every VMX-control and host-state check (32-bit host)."""
    make_launchable(with_current)
    return with_current
