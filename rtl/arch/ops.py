"""Operations and outcomes of the VMX unit's request/response port.

The port carries one operation at a time: the VMX instructions, and the
platform operations that reach the state the unit keeps (MSRs, machine-state
elements). Outcomes follow SDM vol. 3C 30.2 "Conventions": VMsucceed,
VMfailInvalid, VMfailValid(error); an instruction that raises an exception
reports ``FAULT`` with its vector instead and changes nothing.
"""

from amaranth.lib import enum

from .state import RFLAGS

__all__ = ["Op", "Status", "OperandSize", "Vector", "flags_for"]


class Op(enum.Enum, shape=5):
    VMXON = 0
    VMXOFF = 1
    VMPTRLD = 2
    VMPTRST = 3
    VMCLEAR = 4
    VMREAD = 5
    VMWRITE = 6
    VMLAUNCH = 7
    VMRESUME = 8
    VMCALL = 9
    RDMSR = 10
    WRMSR = 11
    #: Read a machine-state element (index = element number, see state.py).
    GET = 12
    #: Write a machine-state element as a MOV/WRMSR would.
    SET = 13


class Status(enum.Enum, shape=4):
    #: A platform operation (RDMSR, WRMSR, GET, SET) completed.
    OK = 0
    SUCCEED = 1
    FAIL_INVALID = 2
    FAIL_VALID = 3
    #: The instruction raised an exception (``vector``); nothing changed.
    FAULT = 4
    ENTERED = 5
    ENTRY_FAILED = 6
    EXITED = 7
    #: VMLAUNCH/VMRESUME passed every check this unit implements but the
    #: VM-entry transition itself is not implemented yet; nothing changed.
    ENTRY_NOT_IMPLEMENTED = 8


class OperandSize(enum.Enum, shape=1):
    S32 = 0
    S64 = 1

    @property
    def bits(self) -> int:
        return 64 if self is OperandSize.S64 else 32


class Vector(enum.IntEnum, shape=8):
    UD = 6
    GP = 13


def flags_for(status: Status) -> int:
    """The arithmetic flags (CF, PF, AF, ZF, SF, OF) an outcome leaves in RFLAGS."""
    if status == Status.FAIL_INVALID:
        return RFLAGS.CF
    if status == Status.FAIL_VALID:
        return RFLAGS.ZF
    return 0
