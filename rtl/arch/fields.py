"""VMCS component encodings and the field table.

# Ref: Intel SDM vol. 3C, appendix B "Field encoding in VMCS" and 24.11.2
# "VMREAD, VMWRITE, and encodings of VMCS fields"; the field list is
# ``vmcs-fields.json`` beside this file (a copy of shared/vmx/vmcs-fields.json:
# 160 fields and the 42 high halves of the 64-bit ones).

The 32-bit encoding of a VMCS component:

====== ====================================================================
bits   meaning
====== ====================================================================
0      access type: 0 full, 1 high (only for 64-bit fields: bits 63:32)
9:1    index
11:10  type: 0 control, 1 VM-exit information (read-only data), 2 guest
       state, 3 host state
12     reserved, must be 0
14:13  width: 0 16-bit, 1 64-bit, 2 32-bit, 3 natural width
31:15  reserved, must be 0
====== ====================================================================

Everything else in vmxu (the RTL field decoder, the reference model, the
firmware header, the wave decoder) takes encodings from here.
"""

import json
from dataclasses import dataclass
from importlib import resources

from amaranth.lib import data, enum

__all__ = [
    "FieldWidth",
    "FieldType",
    "AccessType",
    "FieldEncoding",
    "Field",
    "FIELDS",
    "FIELD_BY_NAME",
    "FIELD_BY_ENCODING",
    "decode_encoding",
    "lookup_field",
    "ENCODING_RESERVED_MASK",
    "MAX_INDEX",
]


class FieldWidth(enum.Enum, shape=2):
    """Bits 14:13 of an encoding."""

    W16 = 0
    W64 = 1
    W32 = 2
    NATURAL = 3

    @property
    def bits(self) -> int:
        """Storage width in bits (natural width is 64: vmxu models an Intel 64 processor)."""
        return {0: 16, 1: 64, 2: 32, 3: 64}[self.value]

    @property
    def label(self) -> str:
        return {0: "16", 1: "64", 2: "32", 3: "natural"}[self.value]


class FieldType(enum.Enum, shape=2):
    """Bits 11:10 of an encoding."""

    CONTROL = 0
    EXIT_INFO = 1  # "VM-exit information", the read-only data fields
    GUEST = 2
    HOST = 3

    @property
    def label(self) -> str:
        return ["control", "read-only data", "guest", "host"][self.value]


class AccessType(enum.Enum, shape=1):
    """Bit 0 of an encoding."""

    FULL = 0
    HIGH = 1


class FieldEncoding(data.Struct):
    """The 32-bit VMCS component encoding as hardware sees it."""

    access: AccessType
    index: 9
    type: FieldType
    reserved_12: 1
    width: FieldWidth
    reserved_31_15: 17


#: Bits of a 32-bit encoding that must be zero (bit 12 and bits 31:15).
ENCODING_RESERVED_MASK = 0xFFFF_9000

_JSON_WIDTH = {16: FieldWidth.W16, 64: FieldWidth.W64, 32: FieldWidth.W32, "natural": FieldWidth.NATURAL}
_JSON_TYPE = {
    "control": FieldType.CONTROL,
    "read-only data": FieldType.EXIT_INFO,
    "guest": FieldType.GUEST,
    "host": FieldType.HOST,
}


@dataclass(frozen=True)
class Field:
    """One supported VMCS component (a full field or the high half of a 64-bit one)."""

    name: str
    encoding: int
    width: FieldWidth
    type: FieldType
    index: int
    access: AccessType

    @property
    def read_only(self) -> bool:
        """VMWRITE fails with error 13 (IA32_VMX_MISC bit 29 is 0 in vmxu)."""
        return self.type == FieldType.EXIT_INFO

    @property
    def value_bits(self) -> int:
        """How many bits a VMREAD of this component can return."""
        return 32 if self.access == AccessType.HIGH else self.width.bits

    @property
    def full_encoding(self) -> int:
        """The encoding of the field this component belongs to (itself unless a high half)."""
        return self.encoding & ~1


def decode_encoding(encoding: int) -> dict:
    """Split an encoding into its bit fields (no validity check)."""
    return {
        "access": AccessType(encoding & 1),
        "index": (encoding >> 1) & 0x1FF,
        "type": FieldType((encoding >> 10) & 3),
        "reserved_12": (encoding >> 12) & 1,
        "width": FieldWidth((encoding >> 13) & 3),
        "reserved_31_15": (encoding >> 15) & 0x1FFFF,
    }


def _load() -> tuple[Field, ...]:
    rows = json.loads(resources.files(__package__).joinpath("vmcs-fields.json").read_text())
    fields = []
    for row in rows:
        encoding = int(row["encoding"], 16)
        bits = decode_encoding(encoding)
        high = bool(row.get("access_high"))
        # A high row's "width" in the JSON is the 32 bits it moves; the
        # encoding's width bits say 64-bit, which is what the hardware decodes.
        if high and row["width"] != 32:
            raise ValueError(f"vmcs-fields.json: {row['name']} is a high half but moves {row['width']} bits")
        field = Field(
            name=row["name"],
            encoding=encoding,
            width=FieldWidth.W64 if high else _JSON_WIDTH[row["width"]],
            type=_JSON_TYPE[row["type"]],
            index=row["index"],
            access=AccessType.HIGH if high else AccessType.FULL,
        )
        # The table must agree with the encoding's own bits: no field defined twice.
        if (bits["width"], bits["type"], bits["index"], bits["access"]) != (
            field.width,
            field.type,
            field.index,
            field.access,
        ):
            raise ValueError(f"vmcs-fields.json: {field.name} disagrees with its encoding {encoding:#06x}")
        if encoding & ENCODING_RESERVED_MASK:
            raise ValueError(f"vmcs-fields.json: {field.name} sets reserved encoding bits")
        if row["read_only"] != field.read_only:
            raise ValueError(f"vmcs-fields.json: {field.name} read_only disagrees with its type")
        fields.append(field)
    return tuple(sorted(fields, key=lambda f: f.encoding))


FIELDS: tuple[Field, ...] = _load()
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_BY_ENCODING: dict[int, Field] = {f.encoding: f for f in FIELDS}
if len(FIELD_BY_NAME) != len(FIELDS) or len(FIELD_BY_ENCODING) != len(FIELDS):
    raise ValueError("vmcs-fields.json: duplicate name or encoding")
for _f in FIELDS:
    if _f.access == AccessType.HIGH and _f.full_encoding not in FIELD_BY_ENCODING:
        raise ValueError(f"vmcs-fields.json: {_f.name} has no full field")

#: Highest index of any supported encoding (IA32_VMX_VMCS_ENUM bits 9:1).
MAX_INDEX: int = max(f.index for f in FIELDS)


def lookup_field(key: str | int) -> Field:
    """Find a field by name (any case) or by encoding; raise KeyError with a clear message."""
    if isinstance(key, int):
        try:
            return FIELD_BY_ENCODING[key]
        except KeyError:
            raise KeyError(f"no VMCS field has encoding {key:#x}") from None
    name = key.strip().upper()
    if name in FIELD_BY_NAME:
        return FIELD_BY_NAME[name]
    try:
        return lookup_field(int(key, 0))
    except ValueError:
        raise KeyError(f"no VMCS field is named {key!r}") from None
