"""The translation from a script operation to a request on the unit's port, shared by every backend.

# Ref: docs/semantics.md "The unit's port" (index = field encoding / MSR number /
# element number; value = pointer or source; size = operand size).
"""

from __future__ import annotations

from vmxu.rtl.arch.ops import Op, OperandSize
from vmxu.rtl.arch.state import element_id
from vmxu.sim.model.request import Request

__all__ = ["Request", "UNIT_OPS", "to_request", "is_memory_op"]

#: Script ops that are requests on the unit's port (the others are memory accesses).
UNIT_OPS: dict[str, Op] = {
    "vmxon": Op.VMXON,
    "vmxoff": Op.VMXOFF,
    "vmptrld": Op.VMPTRLD,
    "vmptrst": Op.VMPTRST,
    "vmclear": Op.VMCLEAR,
    "vmread": Op.VMREAD,
    "vmwrite": Op.VMWRITE,
    "vmlaunch": Op.VMLAUNCH,
    "vmresume": Op.VMRESUME,
    "vmcall": Op.VMCALL,
    "rdmsr": Op.RDMSR,
    "wrmsr": Op.WRMSR,
    "get": Op.GET,
    "set": Op.SET,
    "cpuid": Op.CPUID,
    "hlt": Op.HLT,
    "rdtsc": Op.RDTSC,
    "in": Op.IN,
    "out": Op.OUT,
    "exception": Op.EXCEPTION,
    "interrupt": Op.INTERRUPT,
    "nmi": Op.NMI,
    "run": Op.RUN,
}


def is_memory_op(operation) -> bool:  # noqa: ANN001 - script.Operation (script imports this module)
    """Whether the platform performs the operation on its memory (``write``, ``read``) rather than the unit."""
    return operation.op not in UNIT_OPS


def to_request(operation) -> Request:  # noqa: ANN001 - script.Operation
    """The unit's request for a VMX, MSR, element or guest-event operation; ValueError for a memory access."""
    op = UNIT_OPS.get(operation.op)
    if op is None:
        raise ValueError(f"{operation.op!r} is a memory access, not a request on the unit's port")
    args = operation.args
    index = 0
    value = 0
    for key in ("field", "msr", "port", "vector", "leaf"):
        if key in args:
            index = int(args[key])
    if "element" in args:
        index = element_id(str(args["element"]))
    for key in ("addr", "value", "error_code", "subleaf", "cycles"):
        if key in args:
            value = int(args[key])
    size = OperandSize.S32 if op != Op.IN and op != Op.OUT and args.get("size") == 32 else OperandSize.S64
    io_size = int(args["size"]) if op in (Op.IN, Op.OUT) else 1
    return Request(op, index, value, size, int(args["len"]), int(args.get("reg", 0)), io_size)
