"""CPUID leaves as docs/cpu.md states them, until the RTL's table exists.

# Ref: docs/cpu.md "The VMX extension" (CPUID); Intel SDM vol. 2A CPUID
# (leaf 0: highest leaf in EAX, vendor string in EBX, EDX, ECX; leaf 1: ECX
# bit 5 = VMX).

TODO(lead): rtl/cpu/cpuid.py will define CPUID_LEAVES (leaf -> (eax, ebx, ecx,
edx)) for the RTL core. The ISS must import that table instead of this copy;
delete ``CPUID_LEAVES_FROM_DOCS`` when folding it.
"""

from __future__ import annotations

__all__ = ["CPUID_LEAVES_FROM_DOCS", "VENDOR"]

#: "vmxuRV32core", in CPUID order EBX, EDX, ECX.
VENDOR = "vmxuRV32core"
_EBX, _EDX, _ECX = (int.from_bytes(VENDOR[i : i + 4].encode("ascii"), "little") for i in (0, 4, 8))
#: CPUID.1:ECX bit 5: VMX.
ECX_VMX = 1 << 5

#: leaf -> (EAX, EBX, ECX, EDX); every other leaf returns zeros.
CPUID_LEAVES_FROM_DOCS: dict[int, tuple[int, int, int, int]] = {
    0: (1, _EBX, _ECX, _EDX),
    1: (0, 0, ECX_VMX, 0),
}
