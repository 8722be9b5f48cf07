"""The SoC's ``hold``: however long the core is held after reset (the iCEBreaker's flash loader holds it
for as long as the image takes to copy), the program then takes the same cycles.

Held by ``hold`` alone, the core still asks for its first instruction; if that request reached the bus,
the RAM's acknowledge would toggle through the hold and the first fetch would take one cycle or two
depending on the hold's length. Amaranth's simulator, reset released before the hold as on the board.
"""

import pytest
from amaranth.sim import Simulator

from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS
from vmxu.rtl.soc.soc import Soc
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li

PROGRAM = [*li(10, FINISHER.base), *li(11, FINISHER_PASS), asm.sw(11, 0, 10), asm.jal(0, 0)]


def _cycles_after_hold(hold_cycles: int) -> int:
    soc = Soc(ram_size=1024, image=PROGRAM)
    counted = []

    async def bench(ctx):
        ctx.set(soc.hold, 1)
        await ctx.tick().repeat(hold_cycles)
        ctx.set(soc.hold, 0)
        for cycle in range(1, 200):
            await ctx.tick()
            if ctx.get(soc.done):
                counted.append(cycle)
                return

    sim = Simulator(soc)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert counted, "the program did not finish"
    return counted[0]


@pytest.mark.parametrize("hold_cycles", [7, 8])
def test_the_first_fetch_does_not_depend_on_the_holds_length(hold_cycles):
    assert _cycles_after_hold(hold_cycles) == _cycles_after_hold(2)
