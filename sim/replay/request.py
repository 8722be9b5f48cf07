"""The translation from a script operation to a request on the unit's port, shared by every backend.

# Ref: docs/semantics.md "The unit's port" (index = field encoding / MSR number /
# element number; value = pointer or source; size = operand size).
"""

from __future__ import annotations

from typing import NamedTuple

from vmxu.rtl.arch.ops import Op, OperandSize
from vmxu.rtl.arch.state import element_id

from .script import MEMORY_OPS, Operation

__all__ = ["Request", "UNIT_OPS", "to_request", "is_memory_op"]


class Request(NamedTuple):
    op: Op
    index: int
    value: int
    size: OperandSize


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
}


def is_memory_op(operation: Operation) -> bool:
    """Whether the platform performs the operation on its memory (``write``, ``read``) rather than the unit."""
    return operation.op in MEMORY_OPS


def to_request(operation: Operation) -> Request:
    """(op, index, value, size) for a VMX, MSR or element operation; ValueError for a memory access."""
    op = UNIT_OPS.get(operation.op)
    if op is None:
        raise ValueError(f"{operation.op!r} is a memory access, not a request on the unit's port")
    args = operation.args
    index = 0
    value = 0
    if "field" in args:
        index = int(args["field"])
    elif "msr" in args:
        index = int(args["msr"])
    elif "element" in args:
        index = element_id(str(args["element"]))
    if "addr" in args:
        value = int(args["addr"])
    elif "value" in args:
        value = int(args["value"])
    size = OperandSize.S32 if args.get("size") == 32 else OperandSize.S64
    return Request(op, index, value, size)
