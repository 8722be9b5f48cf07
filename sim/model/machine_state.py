"""The processor state the VMX unit keeps: the machine-state elements of rtl/arch/state.py.

# Ref: Intel SDM vol. 3A, table 9-1 (reset values), 2.5 "Control registers"
# and 4.1.3 (MOV to CR0 #GP rules), 11.12.2 (PAT memory types), vol. 3C
# 23.8 "Restrictions on VMX operation" (CR0/CR4 fixed bits in VMX operation);
# docs/semantics.md "GET / SET".

Every element is stored at its width. ``set_rule_violated`` applies the rules
a MOV or WRMSR applies, in the order docs/semantics.md gives; ``store`` is the
unit's own write (no rules), used for RFLAGS' arithmetic flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER, ELEMENT_BY_NAME, ELEMENTS, RFLAGS, Element

__all__ = ["MachineState"]


class MachineState:
    """The value of every machine-state element, from power-up (SDM 3A table 9-1)."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {e.name: e.reset for e in ELEMENTS}

    def __getitem__(self, name: str) -> int:
        return self._values[name]

    @property
    def values(self) -> Mapping[str, int]:
        """A read-only view of every element's value, by name."""
        return MappingProxyType(self._values)

    @staticmethod
    def element(number: int) -> Element:
        """The element with this number on the unit's port (its row in state.ELEMENTS)."""
        if not 0 <= number < len(ELEMENTS):
            raise ValueError(f"no machine-state element has number {number} (0-{len(ELEMENTS) - 1})")
        return ELEMENTS[number]

    def store(self, name: str, value: int) -> None:
        """Write an element without any rule (the unit's own writes)."""
        element = ELEMENT_BY_NAME[name]
        _check_width(element, value)
        self._values[name] = value

    # -- SET, as MOV to a control register or WRMSR would do it -----------------

    def set_rule_violated(
        self, element: Element, value: int, in_vmx_operation: bool, *, in_smm: bool = False
    ) -> str | None:
        """The first rule a write of ``value`` breaks (a #GP), or None; checked in docs/semantics.md order."""
        _check_width(element, value)
        if not element.settable:
            return f"{element.name}: no instruction writes it (SDM 34.11: SMBASE changes only through RSM)"
        if value & element.reserved:
            return f"{element.name}: reserved bits {value & element.reserved:#x} set"
        if element.canonical and not msrs.is_canonical(value):
            return f"{element.name}: {value:#x} is not canonical"
        if element.memory_types and not msrs.valid_memory_types(value):
            return f"{element.name}: {value:#x} holds an invalid memory type (SDM 3A 11.12.2)"
        if element.cr0_rules:
            if value & CR0.PG and not value & CR0.PE:
                return "cr0: PG = 1 with PE = 0 (SDM 3A 4.1.3, MOV to CR0 #GP)"
            if value & CR0.NW and not value & CR0.CD:
                return "cr0: NW = 1 with CD = 0 (SDM 3A 2.5, MOV to CR0 #GP)"
        if in_smm and element.name == "cr4" and value & CR4.VMXE:
            return "cr4: VMXE is reserved in SMM under the default treatment (SDM 34.14.3)"
        if in_vmx_operation and element.vmx_fixed is not None:
            fixed0, fixed1 = element.vmx_fixed
            if not satisfies_fixed(value, fixed0, fixed1):
                return f"{element.name}: {value:#x} outside the VMX fixed bits in VMX operation (SDM 23.8)"
        return None

    def apply_set(self, element: Element, value: int) -> None:
        """Store a value that passed ``set_rule_violated``, with the bits the processor forces."""
        self._values[element.name] = (value | element.force1) & ~element.force0 & element.mask

    # -- what the VMX instructions look at ------------------------------------

    @property
    def cpl(self) -> int:
        """Current privilege level: the DPL of SS."""
        return (self["ss.ar"] & AR.DPL_MASK) >> AR.DPL_SHIFT

    @property
    def ia32e_mode(self) -> bool:
        return bool(self["efer"] & EFER.LMA)

    @property
    def compatibility_mode(self) -> bool:
        """IA-32e mode with a code segment that is not 64-bit (CS.L = 0)."""
        return self.ia32e_mode and not self["cs.ar"] & AR.L

    @property
    def virtual_8086(self) -> bool:
        return bool(self["rflags"] & RFLAGS.VM)

    @property
    def protected_mode(self) -> bool:
        return bool(self["cr0"] & CR0.PE)

    @property
    def vmx_enabled(self) -> bool:
        """CR4.VMXE."""
        return bool(self["cr4"] & CR4.VMXE)

    def write_arithmetic_flags(self, flags: int) -> None:
        """Set RFLAGS' six arithmetic flags (SDM 30.2) to ``flags``, leaving the other bits."""
        self.store("rflags", (self["rflags"] & ~RFLAGS.ARITHMETIC) | flags)


def satisfies_fixed(value: int, fixed0: int, fixed1: int) -> bool:
    """A 1 in FIXED0 must be 1 in the value; a 0 in FIXED1 must be 0 (SDM appendix A.7, A.8), all 64 bits."""
    return value & fixed0 == fixed0 and value & ~fixed1 == 0


def _check_width(element: Element, value: int) -> None:
    if value < 0 or value >> element.bits:
        raise ValueError(f"{element.name} is {element.bits} bits wide; {value:#x} does not fit")
