# amaranth: UnusedElaboratable=no
"""The core's door: its signature, its connection to the VMX unit, its reset vector."""

import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from core_bench import HALT
from programs import run

from vmxu.rtl import wishbone
from vmxu.rtl.cpu.core import Core
from vmxu.rtl.cpu.ports import IoSignature, TraceSignature
from vmxu.rtl.vmx.port import RequestSignature, ResponseSignature
from vmxu.rtl.vmx.unit import VmxUnit
from vmxu.sim.rv32 import asm


def test_signature():
    core = Core()
    members = core.signature.members
    assert members["bus"] == Out(wishbone.Signature(addr_width=30))
    for name, flow, signature in [
        ("io", Out, IoSignature()),
        ("vmx_req", Out, RequestSignature()),
        ("vmx_resp", In, ResponseSignature()),
        ("trace", Out, TraceSignature()),
    ]:
        member = members[name]
        assert member.flow == flow
        seen = member.signature if member.flow == Out else member.signature.flip()
        assert seen.members == signature.members, name
        assert type(seen) is type(signature) or type(seen.flip()) is type(signature)
    assert members["irq_timer"] == In(1) and members["irq_external"] == In(1)
    rtlil.convert(core, name="core")


class _CoreAndUnit(wiring.Component):
    bus: Out(wishbone.Signature(addr_width=30))
    unit_bus: Out(wishbone.Signature(addr_width=30))

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core()
        m.submodules.unit = unit = VmxUnit(guests=False)
        wiring.connect(m, core.vmx_req, unit.req)
        wiring.connect(m, unit.resp, core.vmx_resp)
        wiring.connect(m, wiring.flipped(self.bus), core.bus)
        wiring.connect(m, wiring.flipped(self.unit_bus), unit.bus)
        return m


def test_core_connects_to_the_vmx_unit():
    """wiring.connect(core.vmx_req, unit.req) and (unit.resp, core.vmx_resp) elaborate together."""
    text = rtlil.convert(_CoreAndUnit(), name="top")
    assert "core" in text and "unit" in text


def test_reset_vector():
    p = [asm.nop(), HALT]
    bench = run([0] * 64 + p, reset_vector=0x100)
    assert [r.pc for r in bench.records] == [0x100, 0x104]


@pytest.mark.parametrize("vector", [2, -4, 1 << 32, "0"])
def test_reset_vector_must_be_an_aligned_address(vector):
    with pytest.raises(ValueError, match="Reset vector must be a 4-byte aligned 32-bit address"):
        Core(reset_vector=vector)
