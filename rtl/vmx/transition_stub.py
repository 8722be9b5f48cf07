"""VM entry proper, after the checks: where the transition sequencer arrives.

# Ref: Intel SDM vol. 3C, 26.3-26.7 (checking and loading guest state,
# loading MSRs, event injection), chapter 27 (VM exits). Not implemented yet:
# docs/semantics.md lists VMLAUNCH/VMRESUME as ENTRY_NOT_IMPLEMENTED.
"""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ..arch.ops import Status
from .operation import OperationSignature, finish

__all__ = ["EntryTransition"]


class EntryTransition(wiring.Component):
    """The VM-entry transition of a VMLAUNCH/VMRESUME whose checks passed; today a stub.

    ``VmEntry`` starts it when the checks on the controls and the host-state
    area pass. It answers ``Status.ENTRY_NOT_IMPLEMENTED`` in the cycle of
    ``op.start`` and changes nothing. The transition sequencer replaces this
    body: it will walk the state-action table (rtl/arch/state.py), holding
    its own ports on the cache (``CacheArbiter``), the machine state and the
    bus, and answer ENTERED or ENTRY_FAILED.

    Latency: 0 cycles from ``op.start`` to ``op.done`` (``latency``).

    Members
    -------
    op : In(OperationSignature())
        VMLAUNCH, VMRESUME (their checks passed).
    """

    op: In(OperationSignature())

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        with m.If(self.op.start):
            finish(m, self.op, Status.ENTRY_NOT_IMPLEMENTED)
        return m
