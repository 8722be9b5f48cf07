"""Guest events in VMX non-root operation: the model's exit decisions (SDM 25.2, 26.6.1).

The scenarios live in tests/vectors (guest_events); these tests pin the model
fixes those vectors found, one rule each.
"""

from __future__ import annotations

from model_setup import expect, vmwrite_all

from vmxu.rtl.arch.controls import PIN
from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.ops import Op, Status
from vmxu.rtl.arch.state import INTERRUPTIBILITY

NMI_EXITING = PIN.true_default1 | PIN.bit("NMI_EXITING")


def test_virtual_nmi_blocking_does_not_block_nmis(launchable):
    """SDM 26.6.1: with "virtual NMIs", bit 3 of the interruptibility state is virtual-NMI blocking and does
    not affect the blocking of NMIs: with "NMI exiting" an NMI causes a VM exit (25.2)."""
    vmwrite_all(
        launchable,
        {
            PIN.vmcs_field: NMI_EXITING | PIN.bit("VIRTUAL_NMIS"),
            "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_NMI,
        },
    )
    expect(launchable.vmlaunch(), Status.ENTERED)
    exited = expect(launchable.execute(Op.NMI), Status.EXITED)
    assert exited.reason == ExitReason.EXCEPTION_NMI


def test_nmi_blocking_blocks_nmis_without_virtual_nmis(launchable):
    """SDM 26.6.1: without "virtual NMIs", bit 3 blocks NMIs for as long as the guest runs ("NMI exiting")."""
    vmwrite_all(
        launchable, {PIN.vmcs_field: NMI_EXITING, "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_NMI}
    )
    expect(launchable.vmlaunch(), Status.ENTERED)
    expect(launchable.execute(Op.NMI), Status.OK)
