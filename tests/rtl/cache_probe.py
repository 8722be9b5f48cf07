"""A one-register design and its cocotb test, for tests/rtl/test_build_cache.py (builds in seconds)."""

import cocotb
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from vmxu.sim.cocotb.build import Design


class Counter(wiring.Component):
    count: Out(8)
    enable: In(1)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + self.enable)
        return m


def _make():
    return Counter()


PROBE = Design("cache_probe", _make)


@cocotb.test()
async def counts(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.enable.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    for _ in range(5):
        await FallingEdge(dut.clk)
    assert int(dut.count.value) == 5


if __name__ == "__main__":  # python cache_probe.py SIM: build and run it, with whichever cocotb this Python finds
    import sys

    from vmxu.sim.cocotb.build import run_cocotb

    results = run_cocotb(PROBE, sys.argv[1], "cache_probe", run_name="probe")
    print(results.summary())
    sys.exit(1 if results.failed or not results.tests else 0)
