"""VMLAUNCH and VMRESUME: the checks before VM entry, then the hand-off to the entry transition.

# Ref: Intel SDM vol. 3C, 30.3 "VMX instructions" (VMLAUNCH/VMRESUME: the
# launch state, errors 4, 5 and 6; blocking by MOV SS, error 26), 26.1
# "Basic VM-entry checks", 26.2 "Checks on VMX controls and host-state area"
# (errors 7 and 8: EntryChecker).
"""

from collections.abc import Mapping

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.layout import LAUNCH_LAUNCHED, LAUNCH_VMXOFF
from ..arch.ops import Op, Status
from ..vmcs.cache_port import CachePortSignature
from .entry_checks import CheckSignature
from .operation import OperationSignature, finish

__all__ = ["VmEntry", "ReturnCheckSignature"]


class ReturnCheckSignature(wiring.Signature):
    """A VM entry asks, after its instruction checks, whether it returns from SMM and passes 34.15.4.1-3.

    Members
    -------
    start : Out(1)
        Held until ``done``.
    done : In(1)
    error : In(VmError)
        With ``done``: NONE, or the VMfailValid error (16, 17, 18, 25; 7 for an injection on a return to root).
    unsupported : In(1)
        With ``done``: an entry the RTL's slice does not carry out yet (ENTRY_NOT_IMPLEMENTED).
    returning : In(1)
        With ``done``: the entry returns from SMM (in SMM, "entry to SMM" = 0): its VM-execution controls are
        not checked, and the transition finishes it through ``ReturnFinishSignature``.
    """

    def __init__(self):
        super().__init__(
            {"start": Out(1), "done": In(1), "error": In(VmError), "unsupported": In(1), "returning": In(1)}
        )

    def __eq__(self, other):
        return isinstance(other, ReturnCheckSignature)

    def __repr__(self):
        return "ReturnCheckSignature()"


class VmEntry(wiring.Component):
    """VMLAUNCH/VMRESUME: the basic VM-entry checks, the walk of the entry checks, then the transition.

    In the cycle of ``op.start`` it checks that there is a current VMCS,
    that events are not blocked by MOV SS, and the launch state (VMLAUNCH of
    a launched VMCS, VMRESUME of a clear one or of one launched before a
    VMXOFF fail); then it starts the entry checker (``checks``) on the
    current VMCS. A failing check is VMfailValid(7 or 8); when all pass, the
    operation is handed to the entry transition (``transition``, an
    ``OperationSignature`` port: ``EntryTransition``), whose outcome is this
    block's.

    Latency, from ``op.start`` to ``op.done`` (``latency``): the checker's
    latency to its verdict ("VMLAUNCH (checks' verdict)", a failing check),
    plus the transition's when the checks pass (entered, or failed on the
    guest state); 0 for a basic check that fails.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds.
    checks_latency : int
        ``EntryChecker.latency``.
    transition_latency : Mapping[str, int]
        ``Transitions.latency`` (its ``entered`` and ``failed``; empty for a unit without guests).

    Members
    -------
    op : In(OperationSignature())
        VMLAUNCH, VMRESUME.
    current_valid : In(1)
    current : In(entry_bits)
        The cache entry of the current VMCS.
    current_launch : In(2)
        The current VMCS's launch state.
    movss_blocking : In(1)
        Blocking by MOV SS (interruptibility state).
    checks : Out(CheckSignature(entries))
    transition : Out(OperationSignature())
    smm_return : Out(ReturnCheckSignature())
        With ``dual_monitor``: after the basic checks, whether the entry returns from SMM and passes the
        checks of 34.15.4.1-3 (the dual-monitor block's), before the entry checks.
    returning : Out(1)
        The entry under way returns from SMM (for the transition; held until the next entry).
    """

    def __init__(
        self, entries: int, *, checks_latency: int, transition_latency: Mapping[str, int], dual_monitor: bool = False
    ):
        self.checks_latency = checks_latency
        self.transition_latency = transition_latency
        self.dual_monitor = dual_monitor
        super().__init__(
            {
                "op": In(OperationSignature()),
                "current_valid": In(1),
                "current": In(CachePortSignature(entries).entry_bits),
                "current_launch": In(2),
                "movss_blocking": In(1),
                "checks": Out(CheckSignature(entries)),
                "transition": Out(OperationSignature()),
                **({"smm_return": Out(ReturnCheckSignature())} if dual_monitor else {}),
                "returning": Out(1),
            }
        )

    @property
    def latency(self) -> dict[str, int]:
        table = {"VMLAUNCH (checks' verdict)": self.checks_latency}
        if "entered" in self.transition_latency:
            entered = self.checks_latency + self.transition_latency["entered"]
            table |= {"VMLAUNCH to entered": entered, "VMRESUME to entered": entered}
            table["VM-entry failure (guest state)"] = self.checks_latency + self.transition_latency["failed"]
        return table

    def elaborate(self, platform):
        m = Module()
        op = self.op
        transition = self.transition
        m.d.comb += [
            transition.accept.eq(op.accept),
            transition.request.eq(op.request),
            transition.operation.eq(op.operation),
            self.checks.entry.eq(self.current),
        ]

        # This block's outcomes and the transition's, joined as the dispatcher joins blocks.
        own = OperationSignature().flip().create(path=("entry",))
        m.d.comb += [
            op.done.eq(own.done | transition.done),
            op.outcome.eq(own.outcome.as_value() | transition.outcome.as_value()),
            op.result.eq(transition.result),
            op.result_en.eq(transition.result_en),
            op.read_value.eq(transition.read_value),
        ]

        is_vmlaunch = op.operation.op == Op.VMLAUNCH
        launch = self.current_launch
        with m.FSM(name="entry"):
            with m.State("IDLE"):
                with m.If(op.start):
                    with m.If(~self.current_valid):
                        finish(m, own, Status.FAIL_INVALID)
                    with m.Elif(self.movss_blocking):
                        finish(m, own, Status.FAIL_VALID, error=VmError.ENTRY_EVENTS_BLOCKED_BY_MOV_SS)
                    with m.Elif(is_vmlaunch & ((launch & LAUNCH_LAUNCHED) != 0)):
                        finish(m, own, Status.FAIL_VALID, error=VmError.VMLAUNCH_NONCLEAR_VMCS)
                    with m.Elif(~is_vmlaunch & ((launch & LAUNCH_LAUNCHED) == 0)):
                        finish(m, own, Status.FAIL_VALID, error=VmError.VMRESUME_NONLAUNCHED_VMCS)
                    with m.Elif(~is_vmlaunch & ((launch & LAUNCH_VMXOFF) != 0)):
                        finish(m, own, Status.FAIL_VALID, error=VmError.VMRESUME_AFTER_VMXOFF)
                    with m.Else():
                        self._after_basic_checks(m, own)

            if self.dual_monitor:
                with m.State("SMM_RETURN"):
                    self._after_basic_checks(m, own)

            with m.State("CHECK_CONTROLS_AND_HOST"):
                m.d.comb += self.checks.skip_execution.eq(self.returning)
                with m.If(self.checks.done):
                    with m.If(self.checks.error != VmError.NONE):
                        finish(m, own, Status.FAIL_VALID, error=self.checks.error)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += transition.start.eq(1)
                        with m.If(transition.done):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "TRANSITION"

            with m.State("TRANSITION"):
                with m.If(transition.done):
                    m.next = "IDLE"
        return m

    def _after_basic_checks(self, m: Module, own) -> None:  # noqa: ANN001
        """Start the entry checks; with the dual-monitor treatment first the return-from-SMM checks, whose
        verdict comes in this cycle (an entry that does not return) or later (``SMM_RETURN`` waits for it)."""
        checks = self.checks
        if not self.dual_monitor:
            m.d.comb += checks.start.eq(1)
            m.next = "CHECK_CONTROLS_AND_HOST"
            return
        smm = self.smm_return
        m.d.comb += smm.start.eq(1)
        with m.If(smm.done & smm.unsupported):
            finish(m, own, Status.ENTRY_NOT_IMPLEMENTED)
            m.next = "IDLE"
        with m.Elif(smm.done & (smm.error != VmError.NONE)):
            finish(m, own, Status.FAIL_VALID, error=smm.error)
            m.next = "IDLE"
        with m.Elif(smm.done):
            m.d.comb += [checks.start.eq(1), checks.skip_execution.eq(smm.returning)]
            m.d.sync += self.returning.eq(smm.returning)
            m.next = "CHECK_CONTROLS_AND_HOST"
        with m.Else():
            m.next = "SMM_RETURN"
