"""The door between the dispatcher and the blocks that carry out operations.

# Ref: Intel SDM vol. 3C, 30.2 "Conventions" (the outcomes an operation ends
# with: VMsucceed, VMfailInvalid, VMfailValid, or a fault).

The dispatcher (rtl/vmx/dispatcher.py) takes each request from the unit's
port, runs the checks the instructions start with, and hands the operation to
the one block that carries it out, through an ``OperationSignature`` port; the
block decides the outcome and the dispatcher answers with it.
"""

from amaranth import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.ops import Op, OperandSize, Status

__all__ = ["Request", "Outcome", "OperationSignature", "finish", "vmfail"]


class Request(data.Struct):
    """A request of the unit's port, as a value (rtl/vmx/port.py names the members)."""

    op: Op
    size: OperandSize
    index: 64
    value: 64
    length: 4
    gpr: 4
    io_size: 2


class Outcome(data.Struct):
    """How an operation ends: the response's status, error and vector, and where its value is."""

    status: Status
    error: VmError
    vector: 8
    #: The response's value is the block's ``read_value`` (else the value the block loaded with ``result``).
    read: 1


class OperationSignature(wiring.Signature):
    """An operation handed to a block, seen from the dispatcher.

    A block may decide in the cycle of ``start`` (``done`` in that cycle: the
    unit answers 2 cycles after it accepted the request) or take as long as
    its sequence needs; each block states its latency, from ``start`` to
    ``done``, as a property. The dispatcher joins its blocks' answers with an
    OR: a block drives ``done``, ``outcome`` and ``result_en`` to 0 in every
    cycle they do not mean something, and ``result`` to 0 while ``result_en``
    is 0.

    Members
    -------
    accept : Out(1)
        The unit accepts a request in this cycle (every block sees every request).
    request : Out(Request)
        The request on the unit's port, meaningful with ``accept``: blocks
        register what they will need from it (a field decoder's look-up, facts
        about an operand) before ``start``.
    operation : Out(Request)
        The request accepted last, held until the next ``accept``.
    start : Out(1)
        The operation is this block's and passed the checks every instruction
        of its kind starts with: the block carries it out from this cycle.
    done : In(1)
        The outcome is decided in this cycle; high for one cycle.
    outcome : In(Outcome)
        With ``done``.
    result : In(64)
        The response's value, loaded in a cycle of ``result_en`` (at ``done`` or before).
    result_en : In(2)
        Load the lower (bit 0) or upper (bit 1) word of the response's value from ``result``.
    read_value : In(64)
        With ``outcome.read``: the response's value, from the cycle after
        ``done`` while the response waits (a storage read the block holds).
    """

    def __init__(self):
        super().__init__(
            {
                "accept": Out(1),
                "request": Out(Request),
                "operation": Out(Request),
                "start": Out(1),
                "done": In(1),
                "outcome": In(Outcome),
                "result": In(64),
                "result_en": In(2),
                "read_value": In(64),
            }
        )

    def __eq__(self, other):
        return isinstance(other, OperationSignature)

    def __repr__(self):
        return "OperationSignature()"


def finish(m: Module, op: wiring.PureInterface, status: Status, *, error=0, vector=0, read=False, result=None) -> None:
    """Statements (combinational) that end the operation on ``op`` in this cycle with this outcome.

    ``result``: the response's value, loaded whole; ``read``: the value is the block's ``read_value``.
    """
    m.d.comb += [
        op.done.eq(1),
        op.outcome.status.eq(status),
        op.outcome.error.eq(error),
        op.outcome.vector.eq(vector),
        op.outcome.read.eq(read),
    ]
    if result is not None:
        m.d.comb += [op.result.eq(result), op.result_en.eq(0b11)]


def vmfail(m: Module, op: wiring.PureInterface, error, *, current_valid) -> None:
    """VMfail(error) (SDM 30.2): VMfailValid(error) if there is a current VMCS, else VMfailInvalid."""
    with m.If(current_valid):
        finish(m, op, Status.FAIL_VALID, error=error)
    with m.Else():
        finish(m, op, Status.FAIL_INVALID)
