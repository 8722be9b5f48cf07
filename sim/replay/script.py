"""Transaction scripts: parse a JSON Lines script into operations, or rejections with a reason.

# Ref: shared/vmx/REPLAY.md (the script contract), docs/semantics.md (operand
# sizes: a 32-bit operand holds 32 bits).

``parse_script(text)`` returns one item per operation line, in order: an
``Operation`` whose ``args`` are normalized (integers as ints, field names as
encodings, element names in lower case, defaults filled in), or a ``Rejected``
naming what is malformed. Blank lines and lines starting with ``#`` are skipped;
line numbers are the file's (1-based). A rejected line changes nothing when it
is replayed. The parser is shared by every backend (model, icarus, verilator).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from vmxu.rtl.arch.events import EXCEPTIONS_WITH_ERROR_CODE, MAX_INSTRUCTION_LENGTH, ExceptionVector
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import default_instruction_length
from vmxu.rtl.arch.state import ELEMENT_BY_NAME

from ..model.memory import RAM_BYTES
from .request import UNIT_OPS

__all__ = ["Operation", "Rejected", "parse_script", "parse_line", "OPS", "VMX_OPS", "MEMORY_OPS", "EVENT_OPS"]

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1


@dataclass(frozen=True)
class Operation:
    """A well-formed script line: ``op`` and its normalized ``args``; ``echo`` is the line's object as written."""

    line: int
    op: str
    args: dict[str, int | str]
    echo: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class Rejected:
    """A malformed line: ``why`` says what is wrong; ``echo`` is the line's object, if it was one."""

    line: int
    echo: dict[str, Any] | None
    why: str


@dataclass(frozen=True)
class _Spec:
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


MEMORY_OPS = frozenset({"write", "read"})
VMX_OPS = frozenset(
    {"vmxon", "vmxoff", "vmptrld", "vmptrst", "vmclear", "vmread", "vmwrite", "vmlaunch", "vmresume", "vmcall"}
)

#: Guest events (REPLAY.md "Guest events"): the unit decides whether they exit in VMX non-root operation.
EVENT_OPS = frozenset({"cpuid", "hlt", "rdtsc", "in", "out", "exception", "interrupt", "nmi", "run"})
_IO_OPS = frozenset({"in", "out"})

#: Every op (REPLAY.md "Operations", "Guest events"): required and optional keys besides "op".
OPS: dict[str, _Spec] = {
    "write": _Spec(("addr", "value"), ("size", "len")),
    "read": _Spec(("addr",), ("size", "len")),
    "rdmsr": _Spec(("msr",), ("len",)),
    "wrmsr": _Spec(("msr", "value"), ("len",)),
    "set": _Spec(("element", "value"), ("len", "reg")),
    "get": _Spec(("element",), ("len", "reg")),
    "cpuid": _Spec(("leaf",), ("subleaf", "len")),
    "hlt": _Spec((), ("len",)),
    "rdtsc": _Spec((), ("len",)),
    "in": _Spec(("port", "size"), ("len",)),
    "out": _Spec(("port", "size", "value"), ("len",)),
    "exception": _Spec(("vector",), ("error_code", "len")),
    "interrupt": _Spec(("vector",), ("len",)),
    "nmi": _Spec((), ("len",)),
    "run": _Spec(("cycles",), ("len",)),
    "rsm": _Spec((), ("len",)),
    "smi": _Spec((), ("io", "len")),
    "vmxon": _Spec(("addr",), ("size", "len")),
    "vmxoff": _Spec((), ("size", "len")),
    "vmptrld": _Spec(("addr",), ("size", "len")),
    "vmptrst": _Spec((), ("size", "len")),
    "vmclear": _Spec(("addr",), ("size", "len")),
    "vmread": _Spec(("field",), ("size", "len")),
    "vmwrite": _Spec(("field", "value"), ("size", "len")),
    "vmlaunch": _Spec((), ("size", "len")),
    "vmresume": _Spec((), ("size", "len")),
    "vmcall": _Spec((), ("size", "len")),
}

_HEX = re.compile(r"0[xX][0-9a-fA-F]+(?:_[0-9a-fA-F]+)*")
_DECIMAL = re.compile(r"[0-9]+(?:_[0-9]+)*")


class _Malformed(Exception):
    """Raised inside the parser; becomes a Rejected with this message."""


def parse_script(text: str, ram_bytes: int = RAM_BYTES) -> list[Operation | Rejected]:
    """Every operation line of a script, parsed, in order."""
    items: list[Operation | Rejected] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        items.append(parse_line(stripped, number, ram_bytes))
    return items


def parse_line(text: str, line: int, ram_bytes: int = RAM_BYTES) -> Operation | Rejected:
    """One operation line."""
    try:
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except _Malformed as error:
        return Rejected(line, None, str(error))
    except json.JSONDecodeError as error:
        return Rejected(line, None, f"invalid JSON: {error.msg} at column {error.colno}")
    except ValueError as error:
        return Rejected(line, None, f"invalid JSON: {error}")
    if not isinstance(obj, dict):
        return Rejected(line, None, f"not a JSON object: {text[:40]}")
    try:
        op, args = _parse_object(obj, ram_bytes)
    except _Malformed as error:
        return Rejected(line, obj, str(error))
    return Operation(line, op, args, obj)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Malformed(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _parse_object(obj: dict[str, Any], ram_bytes: int) -> tuple[str, dict[str, int | str]]:
    if "op" not in obj:
        raise _Malformed("missing key 'op'")
    op = obj["op"]
    if not isinstance(op, str):
        raise _Malformed(f"'op' must be a string, not {json.dumps(op)}")
    spec = OPS.get(op)
    if spec is None:
        raise _Malformed(f"unknown op {op!r} (known: {', '.join(OPS)})")
    allowed = {"op", *spec.required, *spec.optional}
    for key in obj:
        if key not in allowed:
            raise _Malformed(f"unknown key {key!r} for op {op!r} (allowed: {', '.join(sorted(allowed - {'op'}))})")
    for key in spec.required:
        if key not in obj:
            raise _Malformed(f"missing key {key!r} for op {op!r}")

    args: dict[str, int | str] = {}
    if op in MEMORY_OPS:
        args["size"] = _memory_size(obj)
    elif op in _IO_OPS:
        args["size"] = _io_size(obj)
    elif "size" in spec.optional:
        args["size"] = _operand_size(obj)
    operand_bits = args["size"] if op in VMX_OPS else 64
    for key, bits in (("leaf", 32), ("subleaf", 32), ("port", 16), ("cycles", 64)):
        if key in spec.required or key in spec.optional:
            args[key] = _integer(obj, key, bits=bits) if key in obj else 0
    if "vector" in spec.required:
        args["vector"] = _vector(obj, op)
    if op == "exception":
        args["error_code"] = _error_code(obj, int(args["vector"]))
    if "reg" in spec.optional:
        args["reg"] = _integer(obj, "reg", bits=64) if "reg" in obj else 0
        if int(args["reg"]) > 15:
            raise _Malformed(f"'reg' is a general-purpose register number, 0 (RAX) to 15 (R15), not {args['reg']}")

    if "element" in spec.required:
        args["element"] = _element(obj)
        if op == "set" and ELEMENT_BY_NAME[str(args["element"])].get_only:
            raise _Malformed(f'element {args["element"]!r} is read-only: get it, do not set it (REPLAY.md "SMM")')
    if "field" in spec.required:
        args["field"] = _field(obj, operand_bits)
    if "msr" in spec.required:
        args["msr"] = _integer(obj, "msr", bits=32)
    if "addr" in spec.required:
        args["addr"] = _integer(obj, "addr", bits=64)
    if "value" in spec.required:
        args["value"] = _value(obj, op, args, operand_bits)
    if op in MEMORY_OPS:
        _check_in_ram(args["addr"], args["size"], ram_bytes)
    if op == "smi" and "io" in obj:
        args |= _io_smi(obj["io"])
    args["len"] = _length(obj, op)
    return op, args


def _integer(obj: dict[str, Any], key: str, bits: int) -> int:
    """An integer given as a JSON number, a "0x..." string or a decimal string, that fits in ``bits``."""
    raw = obj[key]
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise _Malformed(f'{key!r} must be an integer (a JSON number or a "0x..." string), not {json.dumps(raw)}')
    if isinstance(raw, str):
        text = raw
        if text.startswith("-"):
            raise _Malformed(f"{key!r} is negative: {raw!r}")
        if _HEX.fullmatch(text):
            value = int(text, 16)
        elif _DECIMAL.fullmatch(text):
            value = int(text, 10)
        else:
            raise _Malformed(f"{key!r} is not an integer: {raw!r}")
    else:
        value = raw
    if value < 0:
        raise _Malformed(f"{key!r} is negative: {value}")
    if value >> bits:
        raise _Malformed(f"{key!r} {value:#x} is wider than {bits} bits")
    return value


def _io_smi(raw: Any) -> dict[str, int]:
    """An I/O SMI's instruction (REPLAY.md "SMM"): ``{"port": P, "size": 1|2|4, "in": true|false}``."""
    if not isinstance(raw, dict):
        shape = '{"port": P, "size": S, "in": true|false}'
        raise _Malformed(f"'io' must be an object {shape}, not {json.dumps(raw)}")
    for key in raw:
        if key not in ("port", "size", "in"):
            raise _Malformed(f"unknown key {key!r} in 'io' (allowed: in, port, size)")
    for key in ("port", "size", "in"):
        if key not in raw:
            raise _Malformed(f"missing key {key!r} in 'io'")
    if not isinstance(raw["in"], bool):
        raise _Malformed(f"'in' of 'io' must be true or false, not {json.dumps(raw['in'])}")
    port = _integer(raw, "port", bits=16)
    size = _integer(raw, "size", bits=64)
    if size not in (1, 2, 4):
        raise _Malformed(f"'size' of an I/O SMI's instruction must be 1, 2 or 4 bytes, not {size}")
    return {"port": port, "io_size": size, "io_in": int(raw["in"])}


def _memory_size(obj: dict[str, Any]) -> int:
    if "size" not in obj:
        return 4
    size = _integer(obj, "size", bits=64)
    if size not in (1, 2, 4, 8):
        raise _Malformed(f"'size' of a memory access must be 1, 2, 4 or 8 bytes, not {size}")
    return size


def _operand_size(obj: dict[str, Any]) -> int:
    if "size" not in obj:
        return 64
    size = _integer(obj, "size", bits=64)
    if size not in (32, 64):
        raise _Malformed(f"'size' of a VMX instruction is the operand size, 32 or 64, not {size}")
    return size


def _element(obj: dict[str, Any]) -> str:
    raw = obj["element"]
    if not isinstance(raw, str):
        raise _Malformed(f"'element' must be a name such as \"cr0\", not {json.dumps(raw)}")
    name = raw.lower()
    if name not in ELEMENT_BY_NAME:
        examples = ", ".join(["cr0", "cr4", "rflags", "efer", "cs.ar", "gdtr.base", "interruptibility"])
        raise _Malformed(f"unknown element {raw!r} (e.g. {examples}; see REPLAY.md)")
    return name


def _field(obj: dict[str, Any], operand_bits: int) -> int:
    """A field name, or an encoding that fits the operand (an unsupported encoding is the unit's error 12)."""
    raw = obj["field"]
    if isinstance(raw, str):
        text = raw
        if text.upper() in FIELD_BY_NAME:
            return FIELD_BY_NAME[text.upper()].encoding
        if not (_HEX.fullmatch(text) or _DECIMAL.fullmatch(text) or text.startswith("-")):
            raise _Malformed(f"unknown VMCS field name {raw!r} (`vmxu fields` lists them)")
    encoding = _integer(obj, "field", bits=64)
    if encoding >> operand_bits:
        raise _Malformed(f"'field' {encoding:#x} does not fit a {operand_bits}-bit operand")
    return encoding


def _value(obj: dict[str, Any], op: str, args: dict[str, int | str], operand_bits: int) -> int:
    value = _integer(obj, "value", bits=64)
    if op == "write":
        bits = 8 * int(args["size"])
        what = f"a {args['size']}-byte write"
    elif op == "set":
        bits = ELEMENT_BY_NAME[str(args["element"])].bits
        what = f"element {args['element']!r} ({bits} bits)"
    elif op == "vmwrite":
        bits = operand_bits
        what = f"a {bits}-bit operand"
    elif op == "out":
        bits = 8 * int(args["size"])
        what = f"an OUT of {args['size']} bytes"
    else:
        return value
    if value >> bits:
        raise _Malformed(f"'value' {value:#x} does not fit {what}")
    return value


def _check_in_ram(addr: int | str, size: int | str, ram_bytes: int) -> None:
    addr, size = int(addr), int(size)
    if addr + size > ram_bytes:
        raise _Malformed(f"memory access {addr:#x}..{addr + size - 1:#x} outside RAM (0x0..{ram_bytes - 1:#x})")


def _length(obj: dict[str, Any], op: str) -> int:
    """The instruction length a VM exit records: ``len``, else the x86 instruction's own (REPLAY.md)."""
    if "len" not in obj:
        unit_op = UNIT_OPS.get(op)
        return 3 if unit_op is None else default_instruction_length(unit_op)
    length = _integer(obj, "len", bits=64)
    if not 1 <= length <= MAX_INSTRUCTION_LENGTH:
        raise _Malformed(f"'len' is an instruction length, 1 to {MAX_INSTRUCTION_LENGTH}, not {length}")
    return length


def _io_size(obj: dict[str, Any]) -> int:
    size = _integer(obj, "size", bits=64)
    if size not in (1, 2, 4):
        raise _Malformed(f"'size' of IN/OUT is 1, 2 or 4 bytes, not {size}")
    return size


def _vector(obj: dict[str, Any], op: str) -> int:
    vector = _integer(obj, "vector", bits=8)
    if op == "exception":
        if vector > 31:
            raise _Malformed(f"'vector' {vector} is not an exception (0-31); vectors 32-255 are interrupts")
        if vector == ExceptionVector.NMI:
            raise _Malformed('vector 2 is the NMI: use {"op": "nmi"}')
    return vector


def _error_code(obj: dict[str, Any], vector: int) -> int:
    """Exceptions 8, 10-14 and 17 push an error code, which the line must give; the others have none."""
    if vector in EXCEPTIONS_WITH_ERROR_CODE:
        if "error_code" not in obj:
            raise _Malformed(f"missing key 'error_code': exception {vector} pushes an error code")
        return _integer(obj, "error_code", bits=32)
    if "error_code" in obj:
        raise _Malformed(f"exception {vector} has no error code; only 8, 10-14 and 17 do")
    return 0
