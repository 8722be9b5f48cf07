"""Small combinational predicates the VMX checks share (canonical addresses, memory types, fixed bits).

# Ref: Intel SDM vol. 3A 3.3.7.1 "Canonical addressing"; vol. 3A 11.12.2
# "IA32_PAT MSR" (memory types); vol. 3C A.7/A.8 (CR0/CR4 fixed bits).
"""

from amaranth import Const, Value

from ..arch.msrs import LINEAR_ADDRESS_WIDTH, MAXPHYADDR, VALID_MEMORY_TYPES

__all__ = ["canonical", "valid_memory_types", "fixed_ok", "bad_address", "bits_set"]


def bits_set(value: Value, mask: int) -> Value:
    """Any bit of ``mask`` is 1 in ``value``."""
    return (value & Const(mask, 64)) != 0


def canonical(value: Value) -> Value:
    """Bits 63:47 all equal."""
    top = value[LINEAR_ADDRESS_WIDTH - 1 : 64]
    return (top == 0) | (top == (1 << len(top)) - 1)


def valid_memory_types(value: Value) -> Value:
    """Every byte is 0, 1, 4, 5, 6 or 7 (a valid PAT entry)."""
    ok = Const(1)
    for i in range(8):
        byte = value.word_select(i, 8)
        ok = ok & byte.matches(*VALID_MEMORY_TYPES)
    return ok


def fixed_ok(value: Value, fixed0: int, fixed1: int) -> Value:
    """Every bit that is 1 in FIXED0 is 1 and every bit that is 0 in FIXED1 is 0."""
    return ((value & fixed0) == fixed0) & ~bits_set(value, ~fixed1 & (2**64 - 1))


def bad_address(value: Value) -> Value:
    """Not 4-KiB aligned, or a bit at or above MAXPHYADDR set."""
    return (value[:12] != 0) | (value[MAXPHYADDR:] != 0)
