"""The field decoder against the field table, for every 15-bit encoding (Amaranth's simulator).

SDM appendix B: an encoding is a supported component exactly when it is in the
table; the decoder must say so for all 32768 encodings that leave bits 31:15
clear, and reject reserved bits and bits 63:32 (SDM 24.11.2).
"""

from amaranth.sim import Simulator

from vmxu.rtl.arch.fields import FIELD_BY_ENCODING, AccessType
from vmxu.rtl.arch.layout import LOCATION, Storage
from vmxu.rtl.vmcs.field_decoder import FieldDecoder


def _decode_all(encodings):
    dut = FieldDecoder()
    seen = {}

    async def testbench(ctx):
        for encoding in encodings:
            ctx.set(dut.en, 1)
            ctx.set(dut.encoding, encoding)
            await ctx.tick()
            ctx.set(dut.en, 0)
            seen[encoding] = {
                "valid": ctx.get(dut.valid),
                "storage": ctx.get(dut.storage),
                "word": ctx.get(dut.word),
                "slot": ctx.get(dut.slot),
                "half": ctx.get(dut.half),
                "pair": ctx.get(dut.pair),
            }

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return seen


def test_every_15_bit_encoding_decodes_as_the_table_says():
    seen = _decode_all(range(1 << 15))
    for encoding, out in seen.items():
        field = FIELD_BY_ENCODING.get(encoding)
        assert bool(out["valid"]) == (field is not None), f"{encoding:#06x}"
        if field is None:
            continue
        loc = LOCATION[encoding]
        assert out["storage"] == loc.storage, field.name
        if loc.storage == Storage.ON_DIE:
            assert (out["slot"], out["half"]) == (loc.slot, loc.half), field.name
        else:
            assert out["word"] == loc.word, field.name
        two_words = field.access == AccessType.FULL and field.width.bits == 64
        assert bool(out["pair"]) == two_words, field.name


def test_reserved_bits_and_bits_63_32_make_a_field_unsupported():
    guest_rip = 0x681E
    bad = [guest_rip | 1 << 12, guest_rip | 1 << 15, guest_rip | 1 << 31, guest_rip | 1 << 32, guest_rip | 1 << 63]
    seen = _decode_all(bad)
    assert not any(out["valid"] for out in seen.values())


def test_the_decoder_answers_latency_cycles_after_en_and_holds():
    dut = FieldDecoder()
    guest_rip, unsupported = 0x681E, 0x7FFE

    async def testbench(ctx):
        assert dut.latency == 1
        for encoding, valid in ((guest_rip, 1), (unsupported, 0), (guest_rip, 1)):
            ctx.set(dut.en, 1)
            ctx.set(dut.encoding, encoding)
            assert ctx.get(dut.valid) != valid, "the answer is not there before the clock edge"
            await ctx.tick()
            ctx.set(dut.en, 0)
            ctx.set(dut.encoding, unsupported if valid else guest_rip)
            for _ in range(3):
                assert ctx.get(dut.valid) == valid
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
