"""A request on the unit's port, as the model takes it (the RTL's port carries the same members).

# Ref: docs/semantics.md "The unit's port".
"""

from __future__ import annotations

from typing import NamedTuple

from vmxu.rtl.arch.ops import Op, OperandSize, default_instruction_length

__all__ = ["Request"]


class Request(NamedTuple):
    """``op`` with its operands: ``index`` (field encoding, MSR, element number, port, vector), ``value``
    (address, source, data, error code, cycles), the operand ``size``, the instruction ``length`` a VM exit
    records, the general-purpose register ``gpr`` of MOV CR, and the bytes ``io_size`` of IN/OUT."""

    op: Op
    index: int = 0
    value: int = 0
    size: OperandSize = OperandSize.S64
    length: int | None = None
    gpr: int = 0
    io_size: int = 1

    @property
    def instruction_length(self) -> int:
        return default_instruction_length(self.op) if self.length is None else self.length
