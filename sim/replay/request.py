"""The translation from a script operation to a request on the unit's port, shared by every backend.

# Ref: docs/semantics.md "The unit's port" (index = field encoding / MSR number /
# element number; value = pointer or source; size = operand size).
"""

from __future__ import annotations

from typing import Any

from vmxu.rtl.arch.events import EXCEPTIONS_WITH_ERROR_CODE, MAX_INSTRUCTION_LENGTH
from vmxu.rtl.arch.fields import FIELD_BY_ENCODING
from vmxu.rtl.arch.ops import Op, OperandSize, default_instruction_length
from vmxu.rtl.arch.smm import IO_SMI, IO_SMI_IN
from vmxu.rtl.arch.state import ELEMENTS, element_id
from vmxu.sim.model.request import Request

__all__ = ["Request", "UNIT_OPS", "to_request", "from_request", "is_memory_op"]

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
    "rsm": Op.RSM,
    "smi": Op.SMI,
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
    if op == Op.SMI and "io_size" in args:  # an I/O SMI: its instruction's port, size and direction
        io_size = int(args["io_size"])
        value = IO_SMI | (IO_SMI_IN if args["io_in"] else 0)
    return Request(op, index, value, size, int(args["len"]), int(args.get("reg", 0)), io_size)


_SCRIPT_OPS: dict[Op, str] = {op: name for name, op in UNIT_OPS.items()}
#: The key each op's ``index`` and ``value`` take in a script line (``to_request`` read backwards).
_INDEX_KEYS = {"vmread": "field", "vmwrite": "field", "rdmsr": "msr", "wrmsr": "msr", "get": "element"}
_INDEX_KEYS |= {"set": "element", "cpuid": "leaf", "in": "port", "out": "port", "exception": "vector"}
_INDEX_KEYS |= {"interrupt": "vector"}
_VALUE_KEYS = {"vmxon": "addr", "vmptrld": "addr", "vmclear": "addr", "vmwrite": "value", "wrmsr": "value"}
_VALUE_KEYS |= {"set": "value", "out": "value", "cpuid": "subleaf", "run": "cycles", "exception": "error_code"}
_VMX_OPS = frozenset({Op.VMXON, Op.VMXOFF, Op.VMPTRLD, Op.VMPTRST, Op.VMCLEAR, Op.VMREAD, Op.VMWRITE})
_VMX_OPS |= {Op.VMLAUNCH, Op.VMRESUME, Op.VMCALL}


def _index_text(key: str, index: int) -> Any:
    if key == "field":
        field = FIELD_BY_ENCODING.get(index)
        return field.name if field is not None else f"{index:#x}"
    if key == "element":
        return ELEMENTS[index].name if index < len(ELEMENTS) else index  # no name: the line will be rejected
    if key in ("msr", "port"):
        return f"{index:#x}"
    return index


def from_request(request: Request) -> dict[str, Any]:
    """The script line whose ``to_request`` is ``request``: names for field encodings and elements, hex for
    addresses, MSRs and values, and only the optional keys whose value is not their default."""
    name = _SCRIPT_OPS[request.op]
    line: dict[str, Any] = {"op": name}
    if name in _INDEX_KEYS:
        line[_INDEX_KEYS[name]] = _index_text(_INDEX_KEYS[name], request.index)
    if name in _VALUE_KEYS:
        key = _VALUE_KEYS[name]
        omit = (key == "subleaf" and request.value == 0) or (
            key == "error_code" and request.index not in EXCEPTIONS_WITH_ERROR_CODE
        )
        if not omit:
            line[key] = request.value if key == "cycles" else f"{request.value:#x}"
    if request.op in (Op.IN, Op.OUT):
        line["size"] = request.io_size
    elif request.op in _VMX_OPS and request.size == OperandSize.S32:
        line["size"] = 32
    if request.op in (Op.GET, Op.SET) and request.gpr:
        line["reg"] = request.gpr
    if request.op == Op.SMI and request.value & IO_SMI:
        line["io"] = {"port": request.index, "size": request.io_size, "in": bool(request.value & IO_SMI_IN)}
    length = request.instruction_length
    if length != default_instruction_length(request.op) and 1 <= length <= MAX_INSTRUCTION_LENGTH:
        line["len"] = length
    return line
