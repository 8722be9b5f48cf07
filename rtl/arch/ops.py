"""Operations and outcomes of the VMX unit's request/response port.

The port carries one operation at a time: the VMX instructions, and the
platform operations that reach the state the unit keeps (MSRs, machine-state
elements). Outcomes follow SDM vol. 3C 30.2 "Conventions": VMsucceed,
VMfailInvalid, VMfailValid(error); an instruction that raises an exception
reports ``FAULT`` with its vector instead and changes nothing.
"""

from amaranth.lib import enum

from .events import ExceptionVector as Vector
from .state import RFLAGS

__all__ = ["Op", "Status", "OperandSize", "Vector", "flags_for", "default_instruction_length"]


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
    # Guest events (shared/vmx/REPLAY.md "Guest events"): in VMX non-root operation the
    # unit decides whether they cause a VM exit; elsewhere they are the processor's own.
    #: index: leaf, value: subleaf (neither changes what the unit does).
    CPUID = 14
    HLT = 15
    #: Response value: the TSC (plus the TSC offset in a guest with "use TSC offsetting").
    RDTSC = 16
    #: index: the port; ``io_size`` bytes.
    IN = 17
    #: index: the port; value: the data; ``io_size`` bytes.
    OUT = 18
    #: index: the vector; value: the error code (for the vectors that push one).
    EXCEPTION = 19
    #: index: the vector.
    INTERRUPT = 20
    NMI = 21
    #: value: cycles the processor runs other instructions (the TSC and the VMX-preemption timer advance).
    RUN = 22
    #: Return from SMM (shared/vmx/REPLAY.md "SMM"): in SMM the state is restored from the save map; outside
    #: SMM #UD, which in VMX non-root operation is an exception the exception bitmap decides.
    RSM = 23
    #: A system-management interrupt (REPLAY.md "SMM"): delivered (the state saved to the map, SMM entered),
    #: or held pending in SMM. value: ``smm.IO_SMI`` | ``smm.IO_SMI_IN`` for an I/O SMI, index: its port,
    #: ``io_size``: its bytes.
    SMI = 24


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
    #: A VMX abort happened (SDM 27.7): every later operation answers SHUTDOWN.
    SHUTDOWN = 9


class OperandSize(enum.Enum, shape=1):
    S32 = 0
    S64 = 1

    @property
    def bits(self) -> int:
        return 64 if self is OperandSize.S64 else 32


def flags_for(status: Status) -> int:
    """The arithmetic flags (CF, PF, AF, ZF, SF, OF) an outcome leaves in RFLAGS."""
    if status == Status.FAIL_INVALID:
        return RFLAGS.CF
    if status == Status.FAIL_VALID:
        return RFLAGS.ZF
    return 0


#: The x86 instruction's length, which a VM exit records when the request gives none
#: (shared/vmx/REPLAY.md): CPUID, RDMSR, WRMSR, RDTSC, RSM 2 (0F xx); HLT, IN/OUT with DX, INT3 1;
#: MOV to/from CR 3 (0F 22/20 /r); the VMX instructions 3 (0F 01 Cx, 0F 78/79 /r, 0F C7 /6).
_INSTRUCTION_LENGTHS = {
    Op.CPUID: 2,
    Op.RDMSR: 2,
    Op.WRMSR: 2,
    Op.RDTSC: 2,
    Op.HLT: 1,
    Op.IN: 1,
    Op.OUT: 1,
    Op.EXCEPTION: 1,
    Op.RSM: 2,
}


def default_instruction_length(op: Op) -> int:
    """The length of the instruction an operation stands for (3 for the VMX instructions and MOV CR)."""
    return _INSTRUCTION_LENGTHS.get(op, 3)
