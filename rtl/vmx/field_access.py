"""VMREAD and VMWRITE: a VMCS component by its encoding, in the on-die cache or the region in memory.

# Ref: Intel SDM vol. 3C, 30.3 "VMX instructions" (VMREAD, VMWRITE), 24.11.2
# "VMREAD, VMWRITE, and encodings of VMCS fields" (operand sizes, the high
# access type, error 12 for an unsupported component, error 13 for a
# read-only one), appendix B (field encodings).
"""

from collections.abc import Mapping

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.fields import FieldType, FieldWidth
from ..arch.layout import Storage
from ..arch.ops import Op, OperandSize, Status
from ..vmcs.cache_port import CachePortSignature
from ..vmcs.field_decoder import FieldDecoder
from ..vmcs.region import RegionCommand, RegionCommandSignature
from ..vmcs.vmcs_cache import PAGE_BITS
from .operation import OperationSignature, finish

__all__ = ["FieldAccess"]


class FieldAccess(wiring.Component):
    """VMREAD/VMWRITE of the current VMCS: decodes the encoding, then reads or writes the cache or the region.

    The field decoder looks the encoding up when the request is accepted, so
    its answer is ready when the operation starts. An on-die component is
    read (its slot; the value is ``op.read_value`` from the next cycle) or
    written (its word; the upper word of a 64-bit field in the next cycle) in
    the cycle of ``op.start``, which is also the cycle of ``op.done``; the
    written VMCS becomes dirty (``mark_dirty``). A memory-resident component
    is one region word, or two for a 64-bit field (read: at a 64-bit operand
    size).

    Latency, from ``op.start`` to ``op.done`` (``latency``): 0 for an on-die
    component and for every failure; for a memory-resident one, W (the region
    port's word latency) a word: a read W, or 2W for a 64-bit field at a
    64-bit operand size; a write W, or 2W for any 64-bit field (its upper
    word is written too, 0 from a 32-bit operand).

    Parameters
    ----------
    entries : int
        VMCSs the cache holds.
    region_latency : mapping of RegionCommand to int
        ``RegionPort.latency``.

    Members
    -------
    op : In(OperationSignature())
        VMREAD, VMWRITE.
    current_valid : In(1)
    current : In(entry_bits)
        The cache entry of the current VMCS.
    current_page : In(PAGE_BITS)
        The page of the current VMCS's region.
    cache : Out(CachePortSignature(entries))
    region : Out(RegionCommandSignature(entries))
    mark_dirty : Out(1)
        The current VMCS was written (on-die).
    """

    def __init__(self, entries: int, *, region_latency: Mapping[RegionCommand, int]):
        self.region_latency = dict(region_latency)
        cache = CachePortSignature(entries)
        super().__init__(
            {
                "op": In(OperationSignature()),
                "current_valid": In(1),
                "current": In(cache.entry_bits),
                "current_page": In(PAGE_BITS),
                "cache": Out(cache),
                "region": Out(RegionCommandSignature(entries)),
                "mark_dirty": Out(1),
            }
        )

    @property
    def latency(self) -> dict[str, int]:
        read, write = self.region_latency[RegionCommand.READ_WORD], self.region_latency[RegionCommand.WRITE_WORD]
        return {
            "VMREAD on-die (64-bit)": 0,
            "VMREAD on-die (32-bit)": 0,
            "VMWRITE on-die (64-bit)": 0,
            "VMREAD memory (64-bit)": 2 * read,
            "VMREAD memory (32-bit)": read,
            "VMWRITE memory (64-bit)": 2 * write,
            "VMREAD unsupported (VMfailValid 12)": 0,
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = dec = FieldDecoder()
        op = self.op
        cache = self.cache
        region = self.region
        operation = op.operation
        value = operation.value
        size = operation.size

        # Decoded when the request is accepted. A 32-bit operand holds 32 bits: the encoding
        # register's upper half is not there.
        request = op.request
        m.d.comb += [
            dec.en.eq(op.accept),
            dec.encoding.eq(Mux(request.size == OperandSize.S64, request.index, request.index[:32])),
        ]

        # VMWRITE data as the field stores it (SDM 24.11.2).
        upper_word = Signal()  # the word written now is the upper word of a pair
        write_word = Signal(32)
        m.d.comb += write_word.eq(Mux(dec.width == FieldWidth.W16, value[:16], value[:32]))
        write_high = Signal(32)  # the upper word of a full 64-bit/natural write
        m.d.comb += write_high.eq(Mux(size == OperandSize.S64, value[32:], 0))
        vmwrite_data = Signal(32)  # the word a VMWRITE writes now, to the cache or the region
        m.d.comb += vmwrite_data.eq(Mux(upper_word, write_high, write_word))
        with m.If(op.accept):
            m.d.sync += upper_word.eq(0)

        # The cache port: the component's slot of the current VMCS; the enables qualify it.
        m.d.comb += [
            cache.rd_entry.eq(self.current),
            cache.rd_slot.eq(dec.slot),
            cache.wr_entry.eq(self.current),
            cache.wr_slot.eq(dec.slot),
            cache.wr_data.eq(Cat(vmwrite_data, vmwrite_data)),
        ]

        # The on-die VMREAD result.
        slot = cache.rd_data
        one_word = Signal(32)
        m.d.comb += one_word.eq(Mux(dec.half, slot[32:], slot[:32]))
        field_value = Signal(64)
        with m.If(dec.pair):
            m.d.comb += field_value.eq(Mux(size == OperandSize.S64, slot, slot[:32]))
        with m.Elif(dec.width == FieldWidth.W16):
            m.d.comb += field_value.eq(one_word[:16])
        with m.Else():
            m.d.comb += field_value.eq(one_word)
        m.d.comb += op.read_value.eq(field_value)

        # Region commands, registered (see VmcsPointers): the current VMCS's region.
        bus_start = Signal()
        bus_write = Signal()
        bus_word = Signal.like(dec.word)
        m.d.comb += [
            region.start.eq(bus_start),
            region.cmd.eq(Mux(bus_write, RegionCommand.WRITE_WORD, RegionCommand.READ_WORD)),
            region.page.eq(self.current_page),
            region.word.eq(bus_word),
            region.wdata.eq(vmwrite_data),
            region.entry.eq(self.current),
        ]
        with m.If(region.done):
            m.d.sync += bus_start.eq(0)

        def issue(write, word, wait_state):
            m.d.sync += [bus_start.eq(1), bus_write.eq(write), bus_word.eq(word)]
            m.next = wait_state

        high_word = dec.word | 1  # the upper word of a pair, which starts at an even word
        is_vmwrite = operation.op == Op.VMWRITE

        with m.FSM(name="fields"):
            with m.State("IDLE"):
                # An on-die VMWRITE writes its word now. The write enable is the conditions
                # from registers ANDed with the decoder's, so that the decoder's ROM (slow:
                # ECP5 DP16KD) passes through few logic levels to the cache's write port.
                vmwrite_ok = Signal()
                m.d.comb += vmwrite_ok.eq(
                    op.start & is_vmwrite & self.current_valid & (dec.type != FieldType.EXIT_INFO)
                )
                m.d.comb += cache.wr_en.eq(dec.on_die_half & vmwrite_ok.replicate(2))
                # Read the field VMREAD names whatever the outcome: a read changes nothing.
                m.d.comb += cache.rd_en.eq(op.start & ~is_vmwrite)
                with m.If(op.start):
                    with m.If(~self.current_valid):
                        finish(m, op, Status.FAIL_INVALID)
                    with m.Elif(~dec.valid):
                        finish(m, op, Status.FAIL_VALID, error=VmError.UNSUPPORTED_VMCS_COMPONENT)
                    with m.Elif(is_vmwrite & (dec.type == FieldType.EXIT_INFO)):
                        finish(m, op, Status.FAIL_VALID, error=VmError.VMWRITE_READ_ONLY_COMPONENT)
                    with m.Elif(dec.storage == Storage.MEMORY):
                        with m.If(is_vmwrite):
                            issue(1, dec.word, "WRITE_MEMORY")
                        with m.Else():
                            issue(0, dec.word, "READ_MEMORY")
                    with m.Elif(~is_vmwrite):
                        finish(m, op, Status.SUCCEED, read=True)
                    with m.Else():
                        # The component's word now (the lower word of a pair, which is in
                        # half 0), the upper word of a pair in the next cycle.
                        m.d.comb += self.mark_dirty.eq(1)
                        finish(m, op, Status.SUCCEED)
                        with m.If(dec.on_die_half[0] & dec.pair):
                            m.d.sync += upper_word.eq(1)
                            m.next = "WRITE_CACHE_HIGH"

            with m.State("WRITE_CACHE_HIGH"):
                m.d.comb += cache.wr_en.eq(0b10)
                m.next = "IDLE"

            with m.State("READ_MEMORY"):
                # The component's word, then the upper word of a 64-bit read.
                with m.If(region.done):
                    with m.If(dec.pair & (size == OperandSize.S64)):
                        m.d.comb += [op.result[:32].eq(region.rdata), op.result_en.eq(0b01)]
                        issue(0, high_word, "READ_MEMORY_HIGH")
                    with m.Elif(dec.width == FieldWidth.W16):
                        finish(m, op, Status.SUCCEED, result=region.rdata[:16])
                        m.next = "IDLE"
                    with m.Else():
                        finish(m, op, Status.SUCCEED, result=region.rdata)
                        m.next = "IDLE"

            with m.State("READ_MEMORY_HIGH"):
                with m.If(region.done):
                    m.d.comb += [op.result[32:].eq(region.rdata), op.result_en.eq(0b10)]
                    finish(m, op, Status.SUCCEED)
                    m.next = "IDLE"

            with m.State("WRITE_MEMORY"):
                with m.If(region.done):
                    with m.If(dec.pair):
                        m.d.sync += upper_word.eq(1)
                        issue(1, high_word, "WRITE_MEMORY_HIGH")
                    with m.Else():
                        finish(m, op, Status.SUCCEED)
                        m.next = "IDLE"

            with m.State("WRITE_MEMORY_HIGH"):
                with m.If(region.done):
                    finish(m, op, Status.SUCCEED)
                    m.next = "IDLE"
        return m
