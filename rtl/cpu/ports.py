"""The core's doors besides its Wishbone bus: port I/O and the retired-instruction trace.

docs/cpu.md describes what travels on them.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.isa import IoSize
from ..arch.ops import Status

__all__ = ["IoSignature", "SmiSignature", "TraceSignature"]


class IoSignature(wiring.Signature):
    """Port I/O (IN/OUT), seen from the core.

    Members
    -------
    valid : Out(1)
    ready : In(1)
        The device (or the I/O decoder, for ports nobody answers) completes the
        access in a cycle where both are high; ``rdata`` is valid then.
    write : Out(1)
    port : Out(16)
    size : Out(IoSize)
    wdata : Out(32)
    rdata : In(32)
    """

    def __init__(self):
        super().__init__(
            {
                "valid": Out(1),
                "ready": In(1),
                "write": Out(1),
                "port": Out(16),
                "size": Out(IoSize),
                "wdata": Out(32),
                "rdata": In(32),
            }
        )


class SmiSignature(wiring.Signature):
    """A latched SMI, seen from its source (the SoC's SMI command port, docs/smm-soc.md).

    Members
    -------
    pending : Out(1)
        An SMI is latched.
    io : Out(1)
        It is an I/O SMI: an OUT to port 0xB2 raised it (else a board's button: a plain SMI).
    size : Out(IoSize)
        The size of the OUT that raised it.
    take : In(1)
        The core takes it (at an instruction boundary): the source clears ``pending``.
    """

    def __init__(self):
        super().__init__({"pending": Out(1), "io": Out(1), "size": Out(IoSize), "take": In(1)})


class TraceSignature(wiring.Signature):
    """One record per completed instruction (or interrupt), seen from the core.

    Members
    -------
    valid : Out(1)
        A record this cycle.
    pc, insn : Out(32)
        For an interrupt: the pc of the instruction it preempted, and ``insn`` 0.
    rd : Out(5)
        The destination written (0: none).
    rd_value : Out(32)
    trap : Out(1)
    cause : Out(32)
        mcause of the trap.
    vmx : Out(1)
        The instruction was a request to the VMX unit; ``vmx_status`` is its outcome.
    vmx_status : Out(Status)
    store : Out(1)
    store_addr, store_data : Out(32)
    store_mask : Out(4)
        Byte lanes the store wrote.
    """

    def __init__(self):
        super().__init__(
            {
                "valid": Out(1),
                "pc": Out(32),
                "insn": Out(32),
                "rd": Out(5),
                "rd_value": Out(32),
                "trap": Out(1),
                "cause": Out(32),
                "vmx": Out(1),
                "vmx_status": Out(Status),
                "store": Out(1),
                "store_addr": Out(32),
                "store_data": Out(32),
                "store_mask": Out(4),
            }
        )
