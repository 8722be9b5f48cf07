"""The RTL backend of replay: script operations on a simulated ``VmxUnit`` and its bus memory.

``write``/``read`` act on the bench's memory (the platform's RAM); every other
operation is a request on the unit's port, translated by ``to_request`` exactly
as the model backend does. With a ``Scoreboard`` every request also runs on the
model and memory writes go to both memories.
"""

from vmxu.rtl.arch.ops import Status
from vmxu.sim.model.outcome import Outcome
from vmxu.sim.replay.request import is_memory_op, to_request
from vmxu.sim.replay.script import Operation

from .unit_tb import Scoreboard, UnitTB

__all__ = ["RtlPlatform"]


class RtlPlatform:
    def __init__(self, tb: UnitTB, *, scoreboard: Scoreboard | None = None):
        self.tb = tb
        self.scoreboard = scoreboard

    async def perform(self, operation: Operation) -> Outcome:
        args = operation.args
        if is_memory_op(operation):
            addr, nbytes = int(args["addr"]), int(args["size"])
            if operation.op == "write":
                if self.scoreboard is not None:
                    self.scoreboard.write_memory(addr, nbytes, int(args["value"]))
                else:
                    self.tb.memory.write(addr, nbytes, int(args["value"]))
                return Outcome(Status.OK)
            return Outcome(Status.OK, value=self.tb.memory.read(addr, nbytes))
        request = to_request(operation)
        runner = self.scoreboard if self.scoreboard is not None else self.tb
        return (await runner.perform(request)).outcome
