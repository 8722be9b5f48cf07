"""Test bench for the SoC: load a firmware image, run it, capture the console, read the trace.

A run without tracing wakes Python only when a character is sent and when the
finisher fires (or the cycle limit passes): no callback per cycle, so the
simulator runs at its own speed. Tracing samples the core's trace port every
cycle.
"""

from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from vmxu.rtl.cpu.ports import TraceSignature
from vmxu.sim.iss.trace import Retired

__all__ = ["SocTB", "RunResult", "CLOCK_NS", "EXIT_CYCLE_LIMIT"]

CLOCK_NS = 10
#: The exit code of a run stopped by its cycle limit (the finisher's codes are 0..65535).
EXIT_CYCLE_LIMIT = 0x1_0000


@dataclass
class RunResult:
    console: str
    cycles: int
    instructions: int
    exit_code: int  # the finisher's code, or EXIT_CYCLE_LIMIT
    seconds: float = 0.0

    @property
    def reason(self) -> str:
        if self.exit_code == EXIT_CYCLE_LIMIT:
            return "cycle limit reached"
        return "passed" if self.exit_code == 0 else f"failed with code {self.exit_code}"


@dataclass
class SocTB:
    dut: object
    console: list[str] = field(default_factory=list)

    async def start(self, image: bytes) -> None:
        """Load ``image`` (the bytes of RAM from address 0) with the SoC in reset and the core held, then release
        both: the next rising edge is the core's first cycle, the first that ``cycles`` counts.

        Reset and hold fall together, so every register starts from its reset state whatever the load took
        (sim/native/soc_main.cpp does the same; docs/tools.md).
        """
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start())
        dut.rst.value = 1
        dut.hold.value = 1
        dut.load_en.value = 0
        dut.uart_rx.value = 1
        dut.smi_button.value = 0
        await FallingEdge(dut.clk)
        await FallingEdge(dut.clk)
        words = len(image) // 4 + (1 if len(image) % 4 else 0)
        padded = image + bytes(4 * words - len(image))
        dut.load_en.value = 1
        # Every word, zeros too: RAM keeps what an earlier test left in it.
        for i in range(words):
            dut.load_addr.value = i
            dut.load_data.value = int.from_bytes(padded[4 * i : 4 * i + 4], "little")
            await FallingEdge(dut.clk)
        dut.load_en.value = 0
        dut.rst.value = 0
        dut.hold.value = 0
        cocotb.start_soon(self._capture_console())

    async def _capture_console(self) -> None:
        dut = self.dut
        while True:
            await RisingEdge(dut.console)
            await FallingEdge(dut.clk)
            self.console.append(chr(int(dut.console_data.value)))

    async def run(self, max_cycles: int) -> RunResult:
        """Until the finisher fires or ``max_cycles`` pass; Python sleeps meanwhile."""
        dut = self.dut
        if not _high(dut.done):
            await First(RisingEdge(dut.done), Timer(max_cycles * CLOCK_NS, unit="ns"))
        await FallingEdge(dut.clk)
        return self.result()

    def result(self) -> RunResult:
        dut = self.dut
        done = _high(dut.done)
        return RunResult(
            console="".join(self.console),
            cycles=int(dut.cycles.value),
            instructions=int(dut.retired.value),
            exit_code=int(dut.code.value) if done else EXIT_CYCLE_LIMIT,
        )

    async def next_record(self, max_cycles: int) -> Retired | None:
        """The next trace record; None if the run finishes or ``max_cycles`` pass first.

        ``trace.valid`` is a one-cycle pulse per record: after a record, the next
        cycle is looked at directly (records may come back to back); otherwise
        Python sleeps until the pulse rises.
        """
        dut = self.dut
        await FallingEdge(dut.clk)
        deadline = get_sim_time("ns") + max_cycles * CLOCK_NS
        while not _high(dut.trace__valid):
            # (A rising edge of trace.valid that is gone at the falling clock edge was a glitch of the
            # simulator's combinational settling: keep waiting.)
            left = deadline - get_sim_time("ns")
            if _high(dut.done) or left <= 0:
                return None
            await First(RisingEdge(dut.trace__valid), RisingEdge(dut.done), Timer(left, unit="ns"))
            await FallingEdge(dut.clk)
        return Retired.from_port({name: int(getattr(dut, f"trace__{name}").value) for name in _TRACE_MEMBERS})


def _high(signal) -> bool:
    return str(signal.value) == "1"


_TRACE_MEMBERS = [name for name in TraceSignature().members if name != "valid"]
