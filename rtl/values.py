"""Building a ``data.Struct``'s value from its fields, every bit given.

A layout's signal assigned field by field inside a conditional statement
leaves the fields it does not assign undriven in the Verilog Amaranth emits,
which Icarus simulates as x; a value built whole has no such bits. The field
order and widths come from the layout, so nothing is typed twice.
"""

from amaranth import Cat, Const, Value
from amaranth.lib import data

__all__ = ["struct_value"]


def struct_value(layout, **fields) -> Value:
    """The value of ``layout`` with these fields (a name not given is 0); an unknown name is an error."""
    layout = data.Layout.cast(layout)
    names = {name for name, _ in layout}
    unknown = set(fields) - names
    if unknown:
        raise NameError(f"{layout!r} has no field {', '.join(sorted(unknown))}")
    parts = []
    for name, field in sorted(layout, key=lambda item: item[1].offset):
        width = field.width
        value = Value.cast(fields.get(name, 0))
        if len(value) < width:
            value = Cat(value, Const(0, width - len(value)))
        parts.append(value[:width])
    return Cat(*parts)
