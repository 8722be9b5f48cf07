"""The VMX unit's door: one request in, one response out.

A request carries an operation (rtl/arch/ops.py ``Op``), its operand size and
two operands: ``index`` (a field encoding, MSR number or machine-state element
number) and ``value`` (a physical address, a VMWRITE/WRMSR/SET source). The
response carries the outcome (``Status``), the VM-instruction error for
``FAIL_VALID``, the exception vector for ``FAULT``, and a value where the
operation produces one. docs/semantics.md has the table.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.ops import Op, OperandSize, Status

__all__ = ["GuestTimeSignature", "RequestSignature", "ResponseSignature", "SmmStatusSignature"]


class RequestSignature(wiring.Signature):
    """Request, seen from the requester (a core or a test bench).

    Members
    -------
    valid : Out(1)
    ready : In(1)
        The unit accepts the request in a cycle where both are high.
    op : Out(Op)
    size : Out(OperandSize)
    index : Out(64)
    value : Out(64)
    length : Out(4)
        The instruction's length, which a VM exit it causes records (1-15).
    gpr : Out(4)
        The general-purpose register of a MOV to or from a control register (a CR-access exit records it).
    io_size : Out(2)
        IN/OUT: the access's bytes minus 1 (0, 1 or 3), as the I/O exit qualification has it.
    """

    def __init__(self):
        super().__init__(
            {
                "valid": Out(1),
                "ready": In(1),
                "op": Out(Op),
                "size": Out(OperandSize),
                "index": Out(64),
                "value": Out(64),
                "length": Out(4),
                "gpr": Out(4),
                "io_size": Out(2),
            }
        )


class ResponseSignature(wiring.Signature):
    """Response, seen from the unit.

    Members
    -------
    valid : Out(1)
    ready : In(1)
        The requester takes the response in a cycle where both are high.
    status : Out(Status)
    error : Out(VmError)
    vector : Out(8)
    value : Out(64)
        What the operation reads; for ENTERED the injected event's interruption information (bits
        31:0) and error code (bits 63:32), for EXITED the basic exit reason, for ENTRY_FAILED the
        full exit reason, for SHUTDOWN the VMX-abort indicator.
    """

    def __init__(self):
        super().__init__(
            {
                "valid": Out(1),
                "ready": In(1),
                "status": Out(Status),
                "error": Out(VmError),
                "vector": Out(8),
                "value": Out(64),
            }
        )


class GuestTimeSignature(wiring.Signature):
    """The guest's time, seen from the unit (docs/guests.md): when a core should send RUN, and with what.

    The unit counts a guest's time from the TSC (its ``tsc`` input, the platform's clock) up to which the
    last RUN counted it, or the VM entry did. A core that does not send RUN at every instruction boundary
    sends it at the next boundary where ``due`` is high, with ``cycles`` as its value.

    Members
    -------
    due : Out(1)
        In VMX non-root operation, a RUN now would exit: the VMX-preemption timer has counted down to
        zero, or "interrupt-window exiting" is on with RFLAGS.IF = 1, or "NMI-window exiting" is on without
        NMI blocking (the RUN decides; blocking by STI and MOV SS ends with it).
    cycles : Out(64)
        The TSC minus the TSC up to which the guest's time is counted.

    Both are registered: they say what held in the cycle before (a core asks at an instruction boundary,
    never in the cycle right after a RUN or an entry).
    """

    def __init__(self):
        super().__init__({"due": Out(1), "cycles": Out(64)})


class SmmStatusSignature(wiring.Signature):
    """The unit's SMM state, seen from the unit (docs/smm-soc.md): what the core needs to pick its trap-register
    bank and the SoC to filter the core's accesses to SMRAM and MSEG.

    Members
    -------
    in_smm : Out(1)
        The processor is in SMM.
    non_root : Out(1)
        VMX non-root operation (0 while an SMI under the default treatment holds VMX operation until RSM).
    smbase : Out(32)
        IA32_SMBASE (the ``smbase`` element).
    dual_active : Out(1)
        The dual-monitor treatment is active.
    mseg : Out(32)
        The MSEG base: IA32_SMM_MONITOR_CTL bits 31:12 (bits 11:0 are 0).

    Each follows the unit's state registers without delay (combinational from flip-flops).
    """

    def __init__(self):
        super().__init__(
            {"in_smm": Out(1), "non_root": Out(1), "smbase": Out(32), "dual_active": Out(1), "mseg": Out(32)}
        )
