# amaranth: UnusedElaboratable=no
"""The VMCS cache's data port: its signature, the arbiter joining its clients, the cache's read latency.

The arbiter adds no latency (``CacheArbiter.latency``): a client's read or
write reaches the cache in the cycle the client issues it; the cache answers
a read ``VmcsCache.read_latency`` cycles later. Amaranth's simulator.
"""

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from vmxu.rtl.vmcs.cache_port import SLOT_BITS, CacheArbiter, CachePortSignature
from vmxu.rtl.vmcs.vmcs_cache import VmcsCache


@pytest.mark.parametrize("entries", [0, 1, 3, 6])
def test_signature_rejects_a_cache_size_that_is_not_a_power_of_two(entries):
    with pytest.raises(ValueError, match=rf"^Cache entries must be a power of two, at least 2, not {entries}$"):
        CachePortSignature(entries)


def test_signature_rejects_a_cache_size_that_is_not_an_integer():
    with pytest.raises(TypeError, match=r"^Cache entries must be an integer, not '4'$"):
        CachePortSignature("4")


def test_signature_members_and_widths():
    signature = CachePortSignature(4)
    widths = {name: (member.flow, member.shape) for name, member in signature.members.items()}
    out, in_ = wiring.Out, wiring.In
    assert widths == {
        "rd_entry": (out, 2),
        "rd_slot": (out, SLOT_BITS),
        "rd_en": (out, 1),
        "rd_data": (in_, 64),
        "wr_entry": (out, 2),
        "wr_slot": (out, SLOT_BITS),
        "wr_data": (out, 64),
        "wr_en": (out, 2),
    }
    assert signature == CachePortSignature(4) and signature != CachePortSignature(2)
    assert repr(signature) == "CachePortSignature(entries=4)"


@pytest.mark.parametrize(
    ("clients", "message"),
    [
        ((), r"^An arbiter needs at least one client$"),
        (("a", "a"), r"^Client names must be distinct, not \('a', 'a'\)$"),
        (("cache",), r"^Client names must be identifiers other than 'cache', not 'cache'$"),
        (("not a name",), r"^Client names must be identifiers other than 'cache', not 'not a name'$"),
    ],
)
def test_arbiter_rejects_bad_client_lists(clients, message):
    with pytest.raises(ValueError, match=message):
        CacheArbiter(2, clients)


class _Bench(wiring.Component):
    """A cache behind an arbiter with three clients: ``first``, ``second`` and the default ``last``."""

    def __init__(self):
        self.arbiter = CacheArbiter(2, ("first", "second", "last"))
        self.cache = VmcsCache(2)
        port = CachePortSignature(2)
        super().__init__({"first": wiring.In(port), "second": wiring.In(port), "last": wiring.In(port)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.arbiter, m.submodules.cache = self.arbiter, self.cache
        wiring.connect(m, self.arbiter.cache, self.cache.port)
        for name in self.arbiter.clients:
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(self.arbiter, name))
        return m


def _run(testbench):
    dut = _Bench()
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def run(ctx):
        await testbench(ctx, dut)

    sim.add_testbench(run)
    sim.run()


def test_the_arbiter_passes_the_enabled_client_in_the_same_cycle():
    async def testbench(ctx, dut):
        assert dut.arbiter.latency == 0
        ports = dut.arbiter.cache
        ctx.set(dut.last.rd_slot, 5)
        ctx.set(dut.last.wr_slot, 6)
        # Nobody else enables: the last client's addresses reach the cache, enabled or not.
        assert (ctx.get(ports.rd_slot), ctx.get(ports.wr_slot), ctx.get(ports.rd_en)) == (5, 6, 0)
        ctx.set(dut.second.rd_slot, 7)
        ctx.set(dut.second.rd_en, 1)
        ctx.set(dut.first.wr_slot, 9)
        ctx.set(dut.first.wr_entry, 1)
        ctx.set(dut.first.wr_data, 0xCAFE)
        ctx.set(dut.first.wr_en, 0b10)
        # In this same cycle: the second client owns the read half, the first the write half.
        assert (ctx.get(ports.rd_slot), ctx.get(ports.rd_en)) == (7, 1)
        assert (ctx.get(ports.wr_slot), ctx.get(ports.wr_entry), ctx.get(ports.wr_data)) == (9, 1, 0xCAFE)
        assert ctx.get(ports.wr_en) == 0b10
        ctx.set(dut.second.wr_slot, 3)
        ctx.set(dut.second.wr_en, 0b01)
        assert ctx.get(ports.wr_slot) == 9, "the first client has priority"

    _run(testbench)


def test_a_read_returns_what_another_client_wrote_one_cycle_after_it_is_issued():
    async def testbench(ctx, dut):
        ctx.set(dut.first.wr_entry, 1)
        ctx.set(dut.first.wr_slot, 4)
        ctx.set(dut.first.wr_data, 0x1234_5678_9ABC_DEF0)
        ctx.set(dut.first.wr_en, 0b11)
        await ctx.tick()
        ctx.set(dut.first.wr_en, 0)
        ctx.set(dut.last.rd_entry, 1)
        ctx.set(dut.last.rd_slot, 4)
        ctx.set(dut.last.rd_en, 1)
        for _ in range(dut.cache.read_latency):
            await ctx.tick()
        ctx.set(dut.last.rd_en, 0)
        ctx.set(dut.last.rd_slot, 0)
        expected = 0x1234_5678_9ABC_DEF0
        # rd_data reaches every client, and holds while nobody reads.
        for _ in range(3):
            assert [ctx.get(getattr(dut, n).rd_data) for n in ("first", "second", "last")] == [expected] * 3
            await ctx.tick()

    _run(testbench)
