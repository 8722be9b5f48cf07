"""The model reports, with each outcome, the changes it made (a golden model's step result).

# Ref: shared/STYLE.md "Reference model" (a transition returns the list of state changes it made);
# SDM 27.2-27.5 (what a VM exit writes), 30.3 VMWRITE.
"""

from __future__ import annotations

from model_setup import VMCS_A, expect

from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.layout import LOCATION
from vmxu.rtl.arch.ops import Status
from vmxu.sim import presets
from vmxu.sim.model.outcome import Change


def _by_kind(outcome, kind):
    return {change.key: change.value for change in outcome.changes if change.kind == kind}


def test_vmwrite_reports_the_field_it_wrote(with_current):
    outcome = expect(with_current.vmwrite("GUEST_RIP", 0x1234), Status.SUCCEED)
    assert _by_kind(outcome, "field") == {"GUEST_RIP": 0x1234}


def test_vm_exit_reports_exit_information_guest_fields_and_host_elements(launchable):
    """SDM 27.2, 27.3, 27.5: a VMCALL exit writes the exit reason, saves the guest's RIP, loads HOST_RIP."""
    expect(launchable.vmlaunch(), Status.ENTERED)
    expect(launchable.set("rsp", 0x7777), Status.OK)
    outcome = expect(launchable.vmcall(), Status.EXITED)
    fields = _by_kind(outcome, "field")
    elements = _by_kind(outcome, "element")
    assert fields["VM_EXIT_REASON"] == ExitReason.VMCALL
    assert fields["GUEST_RSP"] == 0x7777
    assert elements["rip"] == presets.HOST_RIP_32
    assert elements["rsp"] == presets.host_fields()["HOST_RSP"]
    assert elements["gdtr.limit"] == 0xFFFF
    assert "GUEST_CR0" not in fields  # unchanged: saved as it was loaded
    assert not _by_kind(outcome, "memory")


def test_vmclear_reports_the_memory_words_it_wrote(launchable):
    """SDM 30.3 VMCLEAR: the cached image and the launch word go to the region."""
    outcome = expect(launchable.vmclear(VMCS_A), Status.SUCCEED)
    words = _by_kind(outcome, "memory")
    rip_word = (VMCS_A >> 2) + LOCATION[FIELD_BY_NAME["GUEST_RIP"].encoding].word
    assert words[rip_word] == presets.GUEST_RIP
    assert Change("memory", rip_word, presets.GUEST_RIP) in outcome.changes
