"""The SoC's SMM blocks in Amaranth's simulator (docs/smm-soc.md, rtl/soc/smm.py): the SMRAM decode against the
rule's Python form (``smram_closed``), the alias against ``physical``, the SMI command port's latch.
"""

import random

from amaranth.sim import Simulator

from vmxu.rtl.arch.isa import IoSize
from vmxu.rtl.arch.soc import MSEG_SIZE, SMI_PORT, SMRAM_ALIAS, SMRAM_OFFSET, SMRAM_SIZE, physical, smram_closed
from vmxu.rtl.soc.smm import SmiPort, SmramAlias, SmramFilter

SEED = 20261207


def simulate(dut, testbench, *, clocked: bool = True) -> None:
    sim = Simulator(dut)
    if clocked:
        sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()


def _near(rng: random.Random, *bases: int) -> int:
    """A word address near one of ``bases`` (or in the alias, or anywhere), so that the ranges' edges are hit."""
    choice = rng.randrange(4)
    if choice == 3:
        return rng.randrange(1 << 30) << 2
    if choice == 2:
        return SMRAM_ALIAS.base + rng.randrange(SMRAM_ALIAS.size // 4) * 4
    return (rng.choice(bases) + 4 * rng.randrange(-64, 64)) & 0xFFFF_FFFC


def test_smram_filter_closes_what_smram_closed_says():
    """Every case: SMRAM outside SMM (through the alias too), MSEG from all but the STM, the unit's state at random;
    a closed read is all ones and acknowledged at once, a closed access never reaches the bus."""
    rng = random.Random(SEED)
    dut = SmramFilter()
    closed_seen = open_seen = 0

    async def testbench(ctx):
        nonlocal closed_seen, open_seen
        for _ in range(4000):
            # (An SMBASE within 32 KiB of 4 GiB would wrap its SMRAM, which the rule's Python form does not.)
            smbase = rng.choice([0x3_0000, 0x8000, 0x1_0000, rng.randrange((1 << 32) - 0x1_0000) & ~3])
            mseg = rng.choice([0x1_4000, 0x2_0000, rng.randrange(1 << 20) << 12])
            state = {
                "smm": rng.random() < 0.5,
                "root": rng.random() < 0.5,
                "dual_active": rng.random() < 0.5,
            }
            smram = physical(smbase + SMRAM_OFFSET)
            address = _near(rng, smbase + SMRAM_OFFSET, smram, smram + SMRAM_SIZE, mseg, mseg + MSEG_SIZE)
            ctx.set(dut.status.in_smm, state["smm"])
            ctx.set(dut.status.non_root, not state["root"])
            ctx.set(dut.status.dual_active, state["dual_active"])
            ctx.set(dut.status.smbase, smbase)
            ctx.set(dut.status.mseg, mseg)
            ctx.set(dut.core.adr, address >> 2)
            ctx.set(dut.core.cyc, 1)
            ctx.set(dut.core.stb, 1)
            ctx.set(dut.bus.dat_r, 0x1234_5678)
            ctx.set(dut.bus.ack, 0)
            expected = smram_closed(address, smbase=smbase, mseg=mseg, **state)
            closed = ctx.get(dut.closed)
            assert closed == expected, (hex(address), hex(smbase), hex(mseg), state)
            assert ctx.get(dut.bus.cyc) == (not expected)
            if expected:
                closed_seen += 1
                assert (ctx.get(dut.core.ack), ctx.get(dut.core.dat_r)) == (1, 0xFFFF_FFFF)
            else:
                open_seen += 1
                assert (ctx.get(dut.core.ack), ctx.get(dut.core.dat_r)) == (0, 0x1234_5678)
        assert closed_seen > 400 and open_seen > 400, (closed_seen, open_seen)

    simulate(dut, testbench, clocked=False)


def test_alias_folds_onto_ram_as_physical_does():
    rng = random.Random(SEED)
    dut = SmramAlias()

    async def testbench(ctx):
        addresses = [SMRAM_ALIAS.base - 4, SMRAM_ALIAS.base, SMRAM_ALIAS.end - 4, SMRAM_ALIAS.end]
        addresses += [rng.randrange(1 << 30) << 2 for _ in range(200)]
        addresses += [SMRAM_ALIAS.base + 4 * rng.randrange(SMRAM_ALIAS.size // 4) for _ in range(200)]
        for address in addresses:
            ctx.set(dut.masters.adr, address >> 2)
            assert ctx.get(dut.bus.adr) << 2 == physical(address), hex(address)

    simulate(dut, testbench, clocked=False)


def test_smi_port_latches_one_smi_with_its_size_until_taken():
    dut = SmiPort()

    async def access(ctx, write: bool, size: IoSize) -> int:
        ctx.set(dut.io.valid, 1)
        ctx.set(dut.io.write, write)
        ctx.set(dut.io.port, SMI_PORT)
        ctx.set(dut.io.size, size)
        assert ctx.get(dut.io.ready)
        rdata = ctx.get(dut.io.rdata)
        await ctx.tick()
        ctx.set(dut.io.valid, 0)
        return rdata

    async def testbench(ctx):
        assert not ctx.get(dut.smi.pending)
        assert await access(ctx, False, IoSize.BYTE) & 0xFF == 0xFF
        assert not ctx.get(dut.smi.pending), "a read raises no SMI"
        await access(ctx, True, IoSize.WORD)
        await access(ctx, True, IoSize.DWORD)
        assert (ctx.get(dut.smi.pending), ctx.get(dut.smi.size)) == (1, IoSize.WORD), "the first write's size"
        ctx.set(dut.smi.take, 1)
        await ctx.tick()
        ctx.set(dut.smi.take, 0)
        assert not ctx.get(dut.smi.pending)
        await access(ctx, True, IoSize.BYTE)
        assert (ctx.get(dut.smi.pending), ctx.get(dut.smi.size), ctx.get(dut.smi.io)) == (1, IoSize.BYTE, 1)
        # A button's press: a plain SMI (io 0), unless one is latched already.
        ctx.set(dut.button, 1)
        await ctx.tick()
        ctx.set(dut.button, 0)
        assert (ctx.get(dut.smi.pending), ctx.get(dut.smi.io)) == (1, 1), "the OUT's SMI stays"
        ctx.set(dut.smi.take, 1)
        await ctx.tick()
        ctx.set(dut.smi.take, 0)
        ctx.set(dut.button, 1)
        await ctx.tick()
        ctx.set(dut.button, 0)
        assert (ctx.get(dut.smi.pending), ctx.get(dut.smi.io)) == (1, 0)
        await access(ctx, True, IoSize.BYTE)
        assert ctx.get(dut.smi.io) == 0, "the button's SMI stays"

    simulate(dut, testbench)
