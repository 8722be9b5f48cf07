"""The leaves CPUID returns: one table for the RTL core and the ISS.

# Ref: docs/cpu.md "The VMX extension" (CPUID); Intel SDM vol. 2A, CPUID
# (leaf 0: highest basic leaf in EAX, the vendor string in EBX, EDX, ECX;
# leaf 1: ECX bit 5 = VMX).

``cpuid rd, rs1, rs2`` returns register ``rs2[1:0]`` (0 EAX, 1 EBX, 2 ECX,
3 EDX) of leaf ``rs1``; a leaf not in the table returns 0 in every register.
"""

__all__ = ["VENDOR", "CPUID_LEAVES", "cpuid"]

#: The vendor string, in CPUID order EBX, EDX, ECX.
VENDOR = "vmxuRV32core"
_EBX, _EDX, _ECX = (int.from_bytes(VENDOR[i : i + 4].encode("ascii"), "little") for i in (0, 4, 8))

#: CPUID.1:ECX bit 5: VMX.
ECX_VMX = 1 << 5

#: leaf -> (EAX, EBX, ECX, EDX), indexed by the register number of ``rs2[1:0]``.
CPUID_LEAVES: dict[int, tuple[int, int, int, int]] = {
    0: (1, _EBX, _ECX, _EDX),
    1: (0, 0, ECX_VMX, 0),
}


def cpuid(leaf: int, register: int) -> int:
    """What ``cpuid`` writes to rd for ``rs1 = leaf`` and ``rs2 = register`` (only bits 1:0 count)."""
    return CPUID_LEAVES.get(leaf & 0xFFFF_FFFF, (0, 0, 0, 0))[register & 3]
