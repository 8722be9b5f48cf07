"""Test bench for the VMX unit: clock and reset, a driver for its port, a Wishbone memory, a scoreboard.

The memory is a ``PhysicalMemory`` (the same class the model uses) behind a
Wishbone B4 classic slave that acknowledges one clock after the strobe (zero
wait states), plus random wait states when the bench asks for backpressure.
Everything is sampled and driven at the falling clock edge, so what the bench
sees is what the unit's registers hold, and the unit samples what the bench
drove at the next rising edge.
"""

import random
from collections import Counter
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.state import ELEMENT_BY_NAME, element_id
from vmxu.rtl.vmx.transition_steps import EXIT_STEPS
from vmxu.sim.model.memory import PhysicalMemory
from vmxu.sim.model.outcome import Outcome, outcome_from_response
from vmxu.sim.model.request import Request
from vmxu.sim.model.vmx import VmxModel

__all__ = ["UnitTB", "Timed", "Scoreboard", "Mismatch"]

CLOCK_NS = 10
#: Outcomes after which the scoreboard compares machine state and the VMCS fields the transition wrote.
_TRANSITIONS = frozenset({Status.ENTERED, Status.EXITED, Status.ENTRY_FAILED})
#: The elements the state-action table moves: every transition's are compared, changed or not.
_TABLE_ELEMENTS = tuple(s.element for s in EXIT_STEPS if s.element in ELEMENT_BY_NAME)


def _high(signal) -> bool:
    """A 1-bit output is 1 (an output Icarus has not evaluated yet reads X: not high)."""
    return str(signal.value) == "1"


@dataclass(frozen=True)
class Timed:
    """An RTL outcome and its latency: cycles from the request's acceptance to the response's."""

    outcome: Outcome
    cycles: int


class UnitTB:
    """Owns the clock, reset, the request/response driver and the bus memory of one ``VmxUnit``.

    ``stall`` is the probability that the memory inserts a wait state in a
    given cycle of a bus access, and that the bench holds back ``resp.ready``
    (backpressure); 0 gives the zero-wait timing the benchmark measures.
    """

    def __init__(
        self, dut, *, memory: PhysicalMemory | None = None, stall: float = 0.0, rng: random.Random | None = None
    ):
        self.dut = dut
        self.memory = memory if memory is not None else PhysicalMemory()
        self.stall = stall
        self.rng = rng or random.Random(0)
        self.bus_words_read = 0
        self.bus_words_written = 0
        #: The platform's time-stamp counter: the cycles of the RUN requests so far (docs/semantics.md "Time").
        self.tsc = 0

    async def start(self) -> None:
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start())
        dut.rst.value = 1
        dut.req__valid.value = 0
        dut.resp__ready.value = 0
        dut.bus__ack.value = 0
        dut.bus__err.value = 0
        dut.bus__dat_r.value = 0
        for _ in range(2):
            await FallingEdge(dut.clk)
        dut.rst.value = 0
        cocotb.start_soon(self._bus_slave())
        while not _high(dut.req__ready):
            await FallingEdge(dut.clk)

    async def _bus_slave(self) -> None:
        dut = self.dut
        await FallingEdge(dut.clk)
        while True:
            if not (_high(dut.bus__cyc) and _high(dut.bus__stb)):
                await RisingEdge(dut.bus__stb)
                await FallingEdge(dut.clk)
                continue
            # Registered acknowledge: high during the cycle after the strobe, later with wait states.
            await FallingEdge(dut.clk)
            while self.stall and self.rng.random() < self.stall:
                await FallingEdge(dut.clk)
            word_address = int(dut.bus__adr.value)
            in_ram = self.memory.contains(word_address * 4, 4)
            if int(dut.bus__we.value):
                self.memory.write_word(word_address, int(dut.bus__dat_w.value), int(dut.bus__sel.value))
                self.bus_words_written += 1
            else:
                dut.bus__dat_r.value = self.memory.read_word(word_address) if in_ram else 0
                self.bus_words_read += 1
            (dut.bus__ack if in_ram else dut.bus__err).value = 1
            await FallingEdge(dut.clk)
            dut.bus__ack.value = 0
            dut.bus__err.value = 0

    async def execute(self, op: Op, index: int = 0, value: int = 0, size: OperandSize = OperandSize.S64) -> Timed:
        """One request on the port; returns the outcome and its latency in cycles."""
        return await self.perform(Request(op, index, value, size))

    async def perform(self, request: Request) -> Timed:
        """One request, with every member of the port (instruction length, register, I/O size)."""
        dut = self.dut
        op = request.op
        await FallingEdge(dut.clk)
        dut.tsc.value = self.tsc
        dut.req__op.value = op.value
        dut.req__size.value = request.size.value
        dut.req__index.value = request.index
        dut.req__value.value = request.value
        dut.req__length.value = request.instruction_length
        dut.req__gpr.value = request.gpr
        dut.req__io_size.value = request.io_size - 1
        dut.req__valid.value = 1
        while not _high(dut.req__ready):
            await FallingEdge(dut.clk)
        accepted = get_sim_time("ns")
        await FallingEdge(dut.clk)
        dut.req__valid.value = 0
        while True:
            if _high(dut.resp__valid):
                if self.stall and self.rng.random() < self.stall:
                    dut.resp__ready.value = 0
                else:
                    dut.resp__ready.value = 1
                    break
            await FallingEdge(dut.clk)
        answered = get_sim_time("ns")
        outcome = self._read_response(op)
        await FallingEdge(dut.clk)
        dut.resp__ready.value = 0
        if op == Op.RUN and outcome.status != Status.SHUTDOWN:
            self.tsc = (self.tsc + request.value) & ((1 << 64) - 1)
        return Timed(outcome, round((answered - accepted) / CLOCK_NS))

    def _read_response(self, op: Op) -> Outcome:
        """The response as an ``Outcome``; its value means what rtl/vmx/port.py says for each status."""
        dut = self.dut
        return outcome_from_response(
            op,
            Status(int(dut.resp__status.value)),
            int(dut.resp__error.value),
            int(dut.resp__vector.value),
            int(dut.resp__value.value),
        )


class Mismatch(AssertionError):
    pass


def _outcome_kind(outcome: Outcome) -> str:
    if outcome.status == Status.FAIL_VALID:
        return f"fail_valid({int(outcome.error)})"
    if outcome.status == Status.FAULT:
        return f"fault({int(outcome.vector)})"
    return outcome.status.name.lower()


class Scoreboard:
    """Runs every operation through the model too and compares outcome and memory, operation by operation.

    After every transition (an entry, an exit, a failed entry) it also compares the machine state and the
    VMCS: a GET of every element the state-action table moves and of every element the model changed, and
    after a return to root operation a VMREAD of every field the model wrote (both run on the RTL and the
    model like any operation; VMREAD's RFLAGS changes happen on both). ``checks`` counts those operations,
    which ``operations`` leaves out.
    """

    def __init__(self, tb: UnitTB, *, model: VmxModel | None = None, check_transitions: bool = True):
        self.tb = tb
        self.model = model if model is not None else VmxModel(PhysicalMemory(tb.memory.size))
        self.check_transitions = check_transitions
        self.operations = 0
        self.checks = 0
        #: How often each (operation, outcome) occurred: the coverage of a run.
        self.coverage: Counter[str] = Counter()

    async def execute(self, op: Op, index: int = 0, value: int = 0, size: OperandSize = OperandSize.S64) -> Timed:
        """The RTL's outcome and latency, after checking both against the model."""
        return await self.perform(Request(op, index, value, size))

    async def perform(self, request: Request) -> Timed:
        """``execute`` of a whole ``Request``."""
        self.operations += 1
        timed, expected = await self._compare(request, f"#{self.operations}")
        self.coverage[f"{request.op.name} {_outcome_kind(expected)}"] += 1
        if self.check_transitions and expected.status in _TRANSITIONS:
            await self._compare_state(expected, f"after #{self.operations} {request.op.name}")
        return timed

    async def _compare_state(self, transition: Outcome, after: str) -> None:
        elements = dict.fromkeys(_TABLE_ELEMENTS)
        fields = {}
        for change in transition.changes:
            if change.kind == "element":
                elements[change.key] = None
            elif change.kind == "field":
                fields[change.key] = None
        for name in elements:
            await self._compare(Request(Op.GET, element_id(name)), f"{after}: GET {name}")
        if transition.status != Status.ENTERED:
            for name in fields:
                await self._compare(Request(Op.VMREAD, FIELD_BY_NAME[name].encoding), f"{after}: VMREAD {name}")

    async def _compare(self, request: Request, label: str) -> tuple[Timed, Outcome]:
        """One request on the model and the RTL; a Mismatch unless outcome and memory agree."""
        op = request.op
        if not label.startswith("#"):
            self.checks += 1
        self.tb.tsc = self.model.tsc
        expected = self.model.perform(request)
        timed = await self.tb.perform(request)
        got = timed.outcome
        request = (
            f"{label} {op.name} index={request.index:#x} value={request.value:#x} "
            f"size={request.size.bits} len={request.instruction_length} gpr={request.gpr} io={request.io_size}"
        )
        if got != expected:
            raise Mismatch(f"{request}: RTL {got}, model {expected}")
        rtl_words, model_words = self.tb.memory.words(), self.model.memory.words()
        if rtl_words != model_words:
            addresses = sorted(
                a for a in rtl_words.keys() | model_words.keys() if rtl_words.get(a) != model_words.get(a)
            )
            shown = ", ".join(
                f"{a * 4:#x}: RTL {rtl_words.get(a, 0):#x} model {model_words.get(a, 0):#x}" for a in addresses[:6]
            )
            raise Mismatch(f"{request}: memory differs at {len(addresses)} words: {shown}")
        return timed, expected

    def write_memory(self, addr: int, nbytes: int, value: int) -> None:
        """A platform memory write, done to both memories."""
        self.tb.memory.write(addr, nbytes, value)
        self.model.memory.write(addr, nbytes, value)
