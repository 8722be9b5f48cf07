"""Events and the VM-exit information that describes them: interruption information, qualifications, activity.

# Ref: Intel SDM vol. 3C, 24.8.3 "VM-entry controls for event injection"
# (table 24-14, interruption-information format), 24.9 "VM-exit information
# fields" (table 24-15 interruption information, 27.2.1 table 27-3 CR access and
# table 27-5 I/O qualifications), 24.4.2 "Guest non-register state" (activity
# states, table 24-3 interruptibility), 27.7 "VMX aborts" (abort indicators),
# 26.8 "VM-entry failures during or after loading guest state" (qualifications);
# vol. 3A 6.15 (exceptions that push an error code).

One definition of each format, as ``data.Struct``s and ``lib.enum``s, so the
RTL reads ``info.type == InterruptionType.NMI`` and the model builds the same
bits with ``interruption_info(...)``.
"""

from amaranth.lib import data, enum

__all__ = [
    "InterruptionType",
    "InterruptionInfo",
    "interruption_info",
    "EXCEPTIONS_WITH_ERROR_CODE",
    "SOFTWARE_EVENT_TYPES",
    "MAX_INSTRUCTION_LENGTH",
    "FAULT_VECTORS",
    "ExceptionVector",
    "exception_type",
    "IoQualification",
    "io_qualification",
    "CrAccess",
    "CrQualification",
    "cr_qualification",
    "Activity",
    "VmxAbort",
    "EntryFailureQualification",
]


class InterruptionType(enum.Enum, shape=3):
    """Bits 10:8 of interruption information (tables 24-14, 24-15)."""

    EXTERNAL_INTERRUPT = 0
    RESERVED = 1
    NMI = 2
    HARDWARE_EXCEPTION = 3
    SOFTWARE_INTERRUPT = 4
    PRIVILEGED_SOFTWARE_EXCEPTION = 5
    SOFTWARE_EXCEPTION = 6
    OTHER_EVENT = 7


class InterruptionInfo(data.Struct):
    """VM-entry and VM-exit interruption information (32 bits)."""

    vector: 8
    type: InterruptionType
    deliver_error_code: 1
    #: VM exits only: NMI unblocking due to IRET.
    nmi_unblocking: 1
    reserved: 18
    valid: 1


def interruption_info(vector: int, kind: InterruptionType, *, error_code: bool = False) -> int:
    """The 32-bit value of a valid interruption information."""
    value = {"vector": vector, "type": kind, "deliver_error_code": error_code, "valid": 1}
    return InterruptionInfo.const(value).as_value().value


class ExceptionVector(enum.IntEnum, shape=8):
    """The exception vectors vmxu names (vol. 3A table 6-1)."""

    DE = 0
    DB = 1
    NMI = 2
    BP = 3
    OF = 4
    BR = 5
    UD = 6
    NM = 7
    DF = 8
    TS = 10
    NP = 11
    SS = 12
    GP = 13
    PF = 14
    MF = 16
    AC = 17
    MC = 18
    XM = 19
    VE = 20
    CP = 21


#: Exceptions that push an error code: #DF, #TS, #NP, #SS, #GP, #PF, #AC (vol. 3A 6.13).
EXCEPTIONS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17})
#: Event types whose delivery uses the VM-entry instruction length (SDM 26.2.1.3).
SOFTWARE_EVENT_TYPES = frozenset(
    {
        InterruptionType.SOFTWARE_INTERRUPT,
        InterruptionType.PRIVILEGED_SOFTWARE_EXCEPTION,
        InterruptionType.SOFTWARE_EXCEPTION,
    }
)
MAX_INSTRUCTION_LENGTH = 15
#: Fault-class exceptions (vol. 3A table 6-1), whose delivery saves RFLAGS.RF as 1 (vol. 3A 17.3.1.1);
#: #DB is a fault or a trap and is left out.
FAULT_VECTORS = frozenset({0, 5, 6, 7, 10, 11, 12, 13, 14, 16, 17, 19, 20, 21})


def exception_type(vector: int) -> InterruptionType:
    """The interruption type an exception with this vector is reported with.

    #BP and #OF arise only from INT3 and INTO, so they are software exceptions
    (table 24-15); every other vector is a hardware exception.
    """
    if vector in (ExceptionVector.BP, ExceptionVector.OF):
        return InterruptionType.SOFTWARE_EXCEPTION
    return InterruptionType.HARDWARE_EXCEPTION


class IoQualification(data.Struct):
    """Exit qualification of an I/O instruction (table 27-5); also of an I/O SMI."""

    #: Size of the access minus 1: 0 (1 byte), 1 (2 bytes), 3 (4 bytes).
    size: 3
    #: 1 for IN, 0 for OUT.
    direction_in: 1
    string: 1
    rep: 1
    #: 0: the port is in DX; 1: an immediate.
    immediate: 1
    reserved: 9
    port: 16


def io_qualification(port: int, size: int, *, direction_in: bool) -> int:
    """The qualification of IN/OUT with the port in DX, not string, not REP."""
    value = {"size": size - 1, "direction_in": direction_in, "port": port}
    return IoQualification.const(value).as_value().value


class CrAccess(enum.Enum, shape=2):
    MOV_TO_CR = 0
    MOV_FROM_CR = 1
    CLTS = 2
    LMSW = 3


class CrQualification(data.Struct):
    """Exit qualification of a control-register access (table 27-3)."""

    cr: 4
    access: CrAccess
    lmsw_memory: 1
    reserved0: 1
    #: The general-purpose register of MOV CR (0 RAX .. 15 R15).
    gpr: 4
    reserved1: 4
    lmsw_source: 16


def cr_qualification(cr: int, access: CrAccess, gpr: int) -> int:
    return CrQualification.const({"cr": cr, "access": access, "gpr": gpr}).as_value().value


class Activity(enum.IntEnum, shape=2):
    """Guest activity states (24.4.2); vmxu supports ACTIVE and HLT (IA32_VMX_MISC bits 8:6)."""

    ACTIVE = 0
    HLT = 1
    SHUTDOWN = 2
    WAIT_FOR_SIPI = 3


class VmxAbort(enum.IntEnum, shape=3):
    """VMX-abort indicators written to offset 4 of the current VMCS region (27.7)."""

    MSR_STORE = 1
    HOST_PDPTE = 2
    CORRUPT_VMCS = 3
    MSR_LOAD = 4
    MACHINE_CHECK = 5
    IA32E_TO_32BIT_HOST = 6


class EntryFailureQualification(enum.IntEnum, shape=3):
    """Exit qualification of a VM-entry failure with reason 33 (26.8)."""

    DEFAULT = 0
    PDPTE = 2
    NMI_INJECTION_WITH_STI = 3
    VMCS_LINK_POINTER = 4
