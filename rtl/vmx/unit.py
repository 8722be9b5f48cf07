"""The VMX unit: the VMX instruction engine around the VMCS cache, the region port and the machine state.

# Ref: Intel SDM vol. 3C, 30.3 "VMX instructions" (VMXON, VMXOFF, VMPTRLD,
# VMPTRST, VMCLEAR, VMREAD, VMWRITE, VMLAUNCH, VMRESUME, VMCALL), 30.2
# "Conventions" (VMsucceed, VMfailInvalid, VMfailValid), 24.11.2 (operand
# sizes), 26.1-26.2 (checks before VM entry); docs/semantics.md is the contract.

Blocks: ``FieldDecoder`` (encoding -> component), ``VmcsCache`` (on-die fields
of up to ``cache_entries`` VMCSs), ``RegionPort`` (the Wishbone master),
``MachineState`` (processor state elements), ``EntryChecker`` (errors 7/8).
"""

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.fields import FIELD_BY_NAME, FieldType, FieldWidth
from ..arch.layout import (
    CACHE_ENTRIES,
    LAUNCH_LAUNCHED,
    LAUNCH_VMXOFF,
    LAUNCH_WORD,
    LOCATION,
    REVISION_WORD,
    Storage,
)
from ..arch.msrs import (
    FEATURE_CONTROL_LOCK,
    FEATURE_CONTROL_VALID,
    FEATURE_CONTROL_VMX_OUTSIDE_SMX,
    MSRS,
    VMCS_REVISION_ID,
    MsrKind,
)
from ..arch.ops import Op, OperandSize, Status, Vector, flags_for
from ..arch.state import ELEMENT_BY_MSR, element_id
from ..vmcs.cache_port import CacheArbiter, CachePortSignature
from ..vmcs.field_decoder import FieldDecoder
from ..vmcs.region import RegionCommand, RegionPort
from ..vmcs.vmcs_cache import PAGE_BITS, VmcsCache
from ..wishbone import Signature as WishboneSignature
from .entry_checks import EntryChecker
from .machine_state import ID_BITS, ROW_BITS, MachineState, constant_row
from .port import RequestSignature, ResponseSignature
from .predicates import bad_address, bits_set

__all__ = ["VmxUnit"]

_ERROR_FIELD = LOCATION[FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding]
assert _ERROR_FIELD.storage == Storage.ON_DIE


class _ValueSource(enum.Enum, shape=2):
    """Where the response's value comes from in the RESPOND state."""

    REGISTER = 0
    CACHE_FIELD = 1  # the on-die field read for VMREAD
    STATE = 2  # the machine-state row read for GET/RDMSR (an element or a capability MSR)


class _PageSource(enum.Enum, shape=1):
    """The region a region-port command works on."""

    OPERAND = 0  # the page the address operand names
    TARGET = 1  # the page of cache entry ``target``


class _WriteSource(enum.Enum, shape=1):
    """The data of a WRITE_WORD."""

    LAUNCH = 0  # the launch state ``bus_launch``, zero-extended (also WRITE_BACK's launch word)
    FIELD = 1  # the VMWRITE data, ``vmwrite_data``


class VmxUnit(wiring.Component):
    """A VT-x-style VMX unit: VMX instructions, VMCS storage, and the state they need.

    One operation at a time on ``req``; its outcome on ``resp``. Latency, from
    the cycle a request is accepted to the cycle its response is valid, with a
    bus slave that acknowledges one clock after the strobe: VMREAD/VMWRITE of
    an on-die field, VMPTRST, GET/SET and the MSRs 2 cycles; of a
    memory-resident field 3 cycles a word; VMPTRLD of a cached VMCS 4 cycles
    (one bus read: the revision identifier); of another VMCS, a fill of its
    on-die image (and a write-back of a dirty victim); VMLAUNCH/VMRESUME
    ``len(STEPS) + 4`` cycles to their checks' verdict. ``benchmarks`` measure
    all of them (``vmxu bench``). After reset ``req.ready`` stays low while the
    machine state restores its power-up values.

    Members
    -------
    req : In(RequestSignature())
    resp : Out(ResponseSignature())
    bus : Out(wishbone.Signature(addr_width=30))
        Wishbone B4 classic master, 32-bit data, for VMCS and VMXON regions.
    """

    def __init__(self, *, cache_entries: int = CACHE_ENTRIES):
        self.cache_entries = cache_entries
        super().__init__(
            {
                "req": In(RequestSignature()),
                "resp": Out(ResponseSignature()),
                "bus": Out(WishboneSignature(addr_width=30)),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = dec = FieldDecoder()
        m.submodules.cache = cache = VmcsCache(self.cache_entries)
        m.submodules.region = region = RegionPort(self.cache_entries)
        m.submodules.state = state = MachineState()
        m.submodules.checker = checker = EntryChecker(self.cache_entries)
        wiring.connect(m, wiring.flipped(self.bus), region.bus)
        entry_bits = cache.entry_bits

        # The operation under way.
        op = Signal(Op)
        size = Signal(OperandSize)
        value = Signal(64)
        page = value[12:32]  # the region an address operand names

        # VMX operation.
        in_vmx = Signal()
        vmxon_page = Signal(PAGE_BITS)
        current_valid = Signal()
        current = Signal(entry_bits)
        current_tag = cache.tags[current]
        current_page = Signal(PAGE_BITS)  # current_tag.page, kept apart for VMPTRST
        feature_control = Signal(3)
        in_smm = Const(0)  # SMM arrives with the SMM capability

        # Facts about the value operand, registered with the request.
        value_bad_address = Signal()
        value_is_vmxon_pointer = Signal()
        value_sets_reserved_fc_bits = Signal()
        # The cache's answer for the region the value names (looked up with the request:
        # a tag command of the previous operation has taken effect by then).
        lookup_hit = Signal()
        lookup_entry = Signal(entry_bits)
        lookup_victim = Signal(entry_bits)

        # The response.
        r_status = Signal(Status)
        r_error = Signal(VmError)
        r_vector = Signal(8)
        r_value = Signal(64)
        r_source = Signal(_ValueSource)
        upper_word = Signal()  # VMWRITE is at the upper word of a pair (on-die: RESPOND writes it)
        target = Signal(entry_bits)  # the cache entry a multi-cycle sequence works on
        target_hit = Signal()
        target_tag = cache.tags[target]

        # VMWRITE data as the field stores it (SDM 24.11.2).
        write_word = Signal(32)
        m.d.comb += write_word.eq(Mux(dec.width == FieldWidth.W16, value[:16], value[:32]))
        write_high = Signal(32)  # the upper word of a full 64-bit/natural write
        m.d.comb += write_high.eq(Mux(size == OperandSize.S64, value[32:], 0))
        vmwrite_data = Signal(32)  # the word a VMWRITE writes now, to the cache or the region
        m.d.comb += vmwrite_data.eq(Mux(upper_word, write_high, write_word))

        # Cache data ports: the region port during fill/write-back, the checker
        # while it walks, else the instruction engine (the arbiter's default).
        m.submodules.cache_arbiter = cache_arbiter = CacheArbiter(self.cache_entries, ("region", "checker", "engine"))
        wiring.connect(m, cache_arbiter.cache, cache.port)
        wiring.connect(m, region.cache, cache_arbiter.region)
        wiring.connect(m, checker.cache, cache_arbiter.checker)
        engine_cache = CachePortSignature(self.cache_entries).create(path=("engine_cache",))
        wiring.connect(m, engine_cache, cache_arbiter.engine)
        eng_rd_en = engine_cache.rd_en
        eng_wr_slot = engine_cache.wr_slot
        m.d.comb += eng_wr_slot.eq(dec.slot)  # RESPOND overrides it for the error field
        eng_wr_word = engine_cache.wr_word
        m.d.comb += eng_wr_word.eq(vmwrite_data)  # RESPOND overrides it with an error
        eng_wr_en = engine_cache.wr_en
        m.d.comb += [
            engine_cache.rd_entry.eq(current),
            engine_cache.rd_slot.eq(dec.slot),
            engine_cache.wr_entry.eq(current),
            checker.entry.eq(current),
            region.entry.eq(target),
            cache.cmd_entry.eq(target),  # tag commands act on the target, unless they name current
            checker.efer_lma.eq(state.efer_lma),
            checker.in_smm.eq(in_smm),
            state.in_vmx.eq(in_vmx),
            cache.lookup_page.eq(self.req.value[12:32]),
            # A fill installs the region the operand names, with the launch state it read.
            cache.install_page.eq(page),
            cache.install_launch.eq(region.fill_launch),
        ]

        # -- helpers that emit the statements of an outcome -------------------
        def respond(status, *, error=0, vector=0, result=None, source=_ValueSource.REGISTER):
            m.d.sync += [
                r_status.eq(status),
                r_error.eq(error),
                r_vector.eq(vector),
                r_source.eq(source),
                upper_word.eq(0),
            ]
            if result is not None:
                m.d.sync += r_value.eq(result)
            m.next = "RESPOND"

        def fault(vector):
            respond(Status.FAULT, vector=vector)

        def fail_valid(error):
            """VMfailValid: RESPOND writes the error to the current VMCS (on-die), which becomes dirty."""
            respond(Status.FAIL_VALID, error=error)

        def vmfail(error):
            with m.If(current_valid):
                fail_valid(error)
            with m.Else():
                respond(Status.FAIL_INVALID)

        # Region-port commands are registered: ``issue`` sets them on the way into the state
        # that waits for ``region.done``, which keeps the port's decoding off the paths that
        # follow ``done``. The page and the write data are not copied: registers select them
        # from the operation's operands, which hold until its response.
        bus_start = Signal()
        bus_cmd = Signal(RegionCommand)
        bus_page_src = Signal(_PageSource)
        bus_word = Signal.like(dec.word)
        bus_wdata_src = Signal(_WriteSource)
        bus_launch = Signal(2)
        m.d.comb += [
            region.start.eq(bus_start),
            region.cmd.eq(bus_cmd),
            region.page.eq(Mux(bus_page_src == _PageSource.OPERAND, page, target_tag.page)),
            region.word.eq(bus_word),
        ]
        with m.If(region.done):
            m.d.sync += bus_start.eq(0)

        def issue(cmd, wait_state, *, page_, word=0, wdata=_WriteSource.LAUNCH, launch=0):
            """Start region command ``cmd`` on the region ``page_`` (a ``_PageSource``) and go to ``wait_state``."""
            m.d.sync += [
                bus_start.eq(1),
                bus_cmd.eq(cmd),
                bus_page_src.eq(page_),
                bus_word.eq(word),
                bus_wdata_src.eq(wdata),
                bus_launch.eq(launch),
            ]
            m.next = wait_state

        def revision_ok(word):
            return (word[:31] == VMCS_REVISION_ID) & ~word[31]

        # -- mode checks, registered: the state they read changes at least two cycles
        # before the next DISPATCH (an element write, VMXON and VMXOFF all respond first).
        compatibility_mode = state.efer_lma & ~state.cs_l
        ud_prefix = Signal()  # the common prefix's #UD (SDM 30.3)
        vmxon_ud = Signal()
        vmcall_ud = Signal()
        cpl_nonzero = Signal()
        m.d.sync += [
            ud_prefix.eq(~in_vmx | ~state.cr0_pe | state.vm86 | compatibility_mode),
            vmxon_ud.eq(~state.cr0_pe | ~state.cr4_vmxe | state.vm86 | compatibility_mode),
            vmcall_ud.eq(~in_vmx | state.vm86 | compatibility_mode),
            cpl_nonzero.eq(state.cpl != 0),
        ]

        # -- MSR decode (from the table), registered with the request ------------
        msr_known = Signal()
        msr_kind = Signal(MsrKind)
        element = Signal(ROW_BITS)  # the state row SET, GET or an element or constant MSR names
        element_fault = Signal()  # the element write would raise #GP (decided in DISPATCH)

        def decode_msr(number, op_in):
            """Statements registering what MSR ``number`` is, and which state row the request names.

            MSR numbers cluster in a few 4-KiB pages of the number space: the page is compared
            once, then the number within it.
            """
            known = Signal()
            kind = Signal(MsrKind)
            row = Signal(ROW_BITS)
            pages = {}
            for msr in MSRS:
                pages.setdefault(msr.number >> 12, []).append(msr)
            for i, (msr_page, msrs) in enumerate(pages.items()):
                with (m.If if i == 0 else m.Elif)(number[12:] == msr_page):
                    with m.Switch(number[:12]):
                        for msr in msrs:
                            with m.Case(msr.number & 0xFFF):
                                m.d.comb += [known.eq(1), kind.eq(msr.kind)]
                                if msr.kind == MsrKind.ELEMENT:
                                    m.d.comb += row.eq(element_id(ELEMENT_BY_MSR[msr.number].name))
                                elif msr.kind == MsrKind.CONSTANT:
                                    m.d.comb += row.eq(constant_row(msr.number))
            is_msr_op = (op_in == Op.RDMSR) | (op_in == Op.WRMSR)
            m.d.sync += [
                msr_known.eq(known),
                msr_kind.eq(kind),
                element.eq(Mux(is_msr_op, row, number[:ID_BITS])),
            ]

        m.d.comb += [state.rd_id.eq(element), state.wr_id.eq(element), state.wr_value.eq(value)]

        # -- the on-die VMREAD result ------------------------------------------
        slot = engine_cache.rd_data
        one_word = Signal(32)
        m.d.comb += one_word.eq(Mux(dec.half, slot[32:], slot[:32]))
        field_value = Signal(64)
        with m.If(dec.pair):
            m.d.comb += field_value.eq(Mux(size == OperandSize.S64, slot, slot[:32]))
        with m.Elif(dec.width == FieldWidth.W16):
            m.d.comb += field_value.eq(one_word[:16])
        with m.Else():
            m.d.comb += field_value.eq(one_word)

        high_word = dec.word | 1  # the upper word of a pair, which starts at an even word

        m.d.comb += region.wdata.eq(Mux(bus_wdata_src == _WriteSource.FIELD, vmwrite_data, bus_launch))

        def dispatch_vmx():
            """DISPATCH of the VMX instructions after the common prefix passed (SDM 30.3)."""
            with m.Switch(op):
                with m.Case(Op.VMXOFF):
                    # VMfail(23) needs the dual-monitor treatment, which needs SMM.
                    m.d.sync += target.eq(0)
                    m.next = "VMXOFF_SCAN"

                with m.Case(Op.VMPTRLD):
                    with m.If(value_bad_address):
                        vmfail(VmError.VMPTRLD_INVALID_ADDRESS)
                    with m.Elif(value_is_vmxon_pointer):
                        vmfail(VmError.VMPTRLD_VMXON_POINTER)
                    with m.Else():
                        # Look the region up now; the revision read decides what to do with it.
                        m.d.sync += [
                            target.eq(Mux(lookup_hit, lookup_entry, lookup_victim)),
                            target_hit.eq(lookup_hit),
                        ]
                        issue(
                            RegionCommand.READ_WORD, "VMPTRLD_REVISION", page_=_PageSource.OPERAND, word=REVISION_WORD
                        )

                with m.Case(Op.VMPTRST):
                    pointer = Mux(current_valid, Cat(Const(0, 12), current_page), 2**64 - 1)
                    respond(Status.SUCCEED, result=pointer)

                with m.Case(Op.VMCLEAR):
                    with m.If(value_bad_address):
                        vmfail(VmError.VMCLEAR_INVALID_ADDRESS)
                    with m.Elif(value_is_vmxon_pointer):
                        vmfail(VmError.VMCLEAR_VMXON_POINTER)
                    with m.Else():
                        m.d.sync += [target.eq(lookup_entry), target_hit.eq(lookup_hit)]
                        hit_tag = cache.tags[lookup_entry]
                        with m.If(lookup_hit & hit_tag.dirty):
                            issue(
                                RegionCommand.WRITE_BACK,
                                "VMCLEAR_WRITE_BACK",
                                page_=_PageSource.TARGET,
                                launch=hit_tag.launch,
                            )
                        with m.Else():
                            issue(
                                RegionCommand.WRITE_WORD, "VMCLEAR_LAUNCH", page_=_PageSource.OPERAND, word=LAUNCH_WORD
                            )

                with m.Case(Op.VMREAD, Op.VMWRITE):
                    with m.If(~current_valid):
                        respond(Status.FAIL_INVALID)
                    with m.Elif(~dec.valid):
                        fail_valid(VmError.UNSUPPORTED_VMCS_COMPONENT)
                    with m.Elif((op == Op.VMWRITE) & (dec.type == FieldType.EXIT_INFO)):
                        fail_valid(VmError.VMWRITE_READ_ONLY_COMPONENT)
                    with m.Elif(dec.storage == Storage.MEMORY):
                        m.d.sync += target.eq(current)  # the region the field lives in
                        with m.If(op == Op.VMREAD):
                            issue(RegionCommand.READ_WORD, "FIELD_READ", page_=_PageSource.TARGET, word=dec.word)
                        with m.Else():
                            issue(
                                RegionCommand.WRITE_WORD,
                                "FIELD_WRITE",
                                page_=_PageSource.TARGET,
                                word=dec.word,
                                wdata=_WriteSource.FIELD,
                            )
                    with m.Elif(op == Op.VMREAD):
                        respond(Status.SUCCEED, source=_ValueSource.CACHE_FIELD)
                    with m.Else():
                        # The component's word now (the lower word of a pair, which is in
                        # half 0: eng_wr_en at the top of DISPATCH); the upper word of a pair
                        # in RESPOND.
                        m.d.comb += [
                            cache.cmd_entry.eq(current),
                            cache.mark_dirty.eq(1),
                        ]
                        respond(Status.SUCCEED)

                with m.Case(Op.VMLAUNCH, Op.VMRESUME):
                    launch = current_tag.launch
                    with m.If(~current_valid):
                        respond(Status.FAIL_INVALID)
                    with m.Elif(state.movss_blocking):
                        fail_valid(VmError.ENTRY_EVENTS_BLOCKED_BY_MOV_SS)
                    with m.Elif((op == Op.VMLAUNCH) & ((launch & LAUNCH_LAUNCHED) != 0)):
                        fail_valid(VmError.VMLAUNCH_NONCLEAR_VMCS)
                    with m.Elif((op == Op.VMRESUME) & ((launch & LAUNCH_LAUNCHED) == 0)):
                        fail_valid(VmError.VMRESUME_NONLAUNCHED_VMCS)
                    with m.Elif((op == Op.VMRESUME) & ((launch & LAUNCH_VMXOFF) != 0)):
                        fail_valid(VmError.VMRESUME_AFTER_VMXOFF)
                    with m.Else():
                        m.d.comb += checker.start.eq(1)
                        m.next = "ENTRY_CHECKS"

        # The response's fields; they mean something while resp.valid is high (RESPOND).
        m.d.comb += [self.resp.status.eq(r_status), self.resp.error.eq(r_error), self.resp.vector.eq(r_vector)]
        with m.Switch(r_source):
            with m.Case(_ValueSource.REGISTER):
                m.d.comb += self.resp.value.eq(r_value)
            with m.Case(_ValueSource.CACHE_FIELD):
                m.d.comb += self.resp.value.eq(field_value)
            with m.Case(_ValueSource.STATE):
                m.d.comb += self.resp.value.eq(state.rd_data)

        # A 32-bit operand holds 32 bits: the encoding register's upper half is not there.
        operand = Mux(self.req.size == OperandSize.S64, self.req.index, self.req.index[:32])
        m.d.comb += dec.encoding.eq(operand)  # decoded when dec.en is high (a request is accepted)

        with m.FSM(name="engine"):
            with m.State("IDLE"):
                m.d.comb += self.req.ready.eq(state.ready)
                with m.If(self.req.valid & state.ready):
                    m.d.sync += [
                        upper_word.eq(0),
                        op.eq(self.req.op),
                        size.eq(self.req.size),
                        value.eq(self.req.value),
                        value_bad_address.eq(bad_address(self.req.value)),
                        value_is_vmxon_pointer.eq(self.req.value[12:32] == vmxon_page),
                        value_sets_reserved_fc_bits.eq(
                            bits_set(self.req.value[:32], ~FEATURE_CONTROL_VALID & (2**32 - 1))
                            | (self.req.value[32:] != 0)  # shared with bad_address
                        ),
                        lookup_hit.eq(cache.hit),
                        lookup_entry.eq(cache.hit_entry),
                        lookup_victim.eq(cache.victim),
                    ]
                    m.d.comb += dec.en.eq(1)
                    decode_msr(operand, self.req.op)
                    m.next = "DISPATCH"

            with m.State("DISPATCH"):
                # An on-die VMWRITE writes its word now. The write enable is the conditions
                # from registers ANDed with the decoder's, so that the decoder's ROM (slow:
                # ECP5 DP16KD) passes through few logic levels to the cache's write port.
                vmwrite_ok = Signal()
                m.d.comb += vmwrite_ok.eq(
                    (op == Op.VMWRITE) & ~ud_prefix & ~cpl_nonzero & current_valid & (dec.type != FieldType.EXIT_INFO)
                )
                m.d.comb += eng_wr_en.eq(dec.on_die_half & vmwrite_ok.replicate(2))
                # Read the field VMREAD names whatever the checks decide: a read changes
                # nothing, and this keeps the checks off the block RAM's address path.
                m.d.comb += eng_rd_en.eq(op == Op.VMREAD)
                with m.Switch(op):
                    with m.Case(Op.VMXON):
                        with m.If(vmxon_ud):
                            fault(Vector.UD)
                        with m.Elif(~in_vmx):
                            fc_ok = (feature_control & FEATURE_CONTROL_LOCK != 0) & (
                                feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX != 0
                            )
                            with m.If(cpl_nonzero | ~state.cr0_cr4_fixed_ok | ~fc_ok):
                                fault(Vector.GP)
                            with m.Elif(value_bad_address):
                                respond(Status.FAIL_INVALID)
                            with m.Else():
                                issue(
                                    RegionCommand.READ_WORD,
                                    "VMXON_REVISION",
                                    page_=_PageSource.OPERAND,
                                    word=REVISION_WORD,
                                )
                        with m.Elif(cpl_nonzero):
                            fault(Vector.GP)
                        with m.Else():
                            vmfail(VmError.VMXON_IN_ROOT)

                    with m.Case(Op.VMCALL):
                        with m.If(vmcall_ud):
                            fault(Vector.UD)
                        with m.Elif(cpl_nonzero):
                            fault(Vector.GP)
                        with m.Else():
                            # Dual-monitor activation needs IA32_SMM_MONITOR_CTL.valid,
                            # writable only in SMM: before SMM support this is VMfail(1).
                            vmfail(VmError.VMCALL_IN_ROOT)

                    with m.Case(Op.RDMSR, Op.WRMSR):
                        with m.If(cpl_nonzero | ~msr_known):
                            fault(Vector.GP)
                        with m.Elif(op == Op.RDMSR):
                            with m.Switch(msr_kind):
                                with m.Case(MsrKind.FEATURE_CONTROL):
                                    respond(Status.OK, result=feature_control)
                                with m.Case(MsrKind.SMM_MONITOR_CTL):
                                    respond(Status.OK, result=0)
                                with m.Case(MsrKind.SMBASE):
                                    fault(Vector.GP)  # readable only in SMM
                                with m.Case(MsrKind.ELEMENT, MsrKind.CONSTANT):
                                    m.d.comb += state.rd_en.eq(1)
                                    respond(Status.OK, source=_ValueSource.STATE)
                        with m.Else():
                            with m.Switch(msr_kind):
                                with m.Case(MsrKind.FEATURE_CONTROL):
                                    locked = feature_control & FEATURE_CONTROL_LOCK != 0
                                    with m.If(locked | value_sets_reserved_fc_bits):
                                        fault(Vector.GP)
                                    with m.Else():
                                        m.d.sync += feature_control.eq(value)
                                        respond(Status.OK)
                                with m.Case(MsrKind.ELEMENT):
                                    m.d.sync += element_fault.eq(state.wr_fault)
                                    m.next = "ELEMENT_WRITE"
                                with m.Default():
                                    # Capability MSRs are read-only; IA32_SMM_MONITOR_CTL is
                                    # writable only in SMM; IA32_SMBASE never.
                                    fault(Vector.GP)

                    with m.Case(Op.GET):
                        m.d.comb += state.rd_en.eq(1)
                        respond(Status.OK, source=_ValueSource.STATE)

                    with m.Case(Op.SET):
                        m.d.sync += element_fault.eq(state.wr_fault)
                        m.next = "ELEMENT_WRITE"

                    with m.Default():
                        # The common prefix of the other VMX instructions (SDM 30.3).
                        with m.If(ud_prefix):
                            fault(Vector.UD)
                        with m.Elif(cpl_nonzero):
                            fault(Vector.GP)
                        with m.Else():
                            dispatch_vmx()
                # Whatever the outcome (it is 0 from IDLE, and every other outcome leaves it 0):
                # RESPOND writes the upper word of an on-die pair.
                m.d.sync += upper_word.eq(vmwrite_ok & dec.on_die_half[0] & dec.pair)

            with m.State("ELEMENT_WRITE"):
                # SET, or WRMSR of an element MSR: the rules were checked in DISPATCH.
                with m.If(element_fault):
                    fault(Vector.GP)
                with m.Else():
                    m.d.comb += state.wr_en.eq(1)
                    respond(Status.OK)

            with m.State("VMXON_REVISION"):
                with m.If(region.done):
                    with m.If(revision_ok(region.rdata)):
                        m.d.sync += [in_vmx.eq(1), vmxon_page.eq(page), current_valid.eq(0)]
                        respond(Status.SUCCEED)
                    with m.Else():
                        respond(Status.FAIL_INVALID)

            with m.State("VMPTRLD_REVISION"):
                with m.If(region.done):
                    with m.If(~revision_ok(region.rdata)):
                        vmfail(VmError.VMPTRLD_INCORRECT_REVISION)
                    with m.Elif(target_hit):
                        m.d.comb += cache.touch.eq(1)
                        m.d.sync += [current_valid.eq(1), current.eq(target), current_page.eq(page)]
                        respond(Status.SUCCEED)
                    with m.Elif(target_tag.valid & target_tag.dirty):
                        issue(
                            RegionCommand.WRITE_BACK,
                            "VMPTRLD_WRITE_BACK",
                            page_=_PageSource.TARGET,
                            launch=target_tag.launch,
                        )
                    with m.Else():
                        issue(RegionCommand.FILL, "VMPTRLD_FILL", page_=_PageSource.OPERAND)

            with m.State("VMPTRLD_WRITE_BACK"):
                with m.If(region.done):
                    m.d.comb += cache.mark_clean.eq(1)
                    issue(RegionCommand.FILL, "VMPTRLD_FILL", page_=_PageSource.OPERAND)

            with m.State("VMPTRLD_FILL"):
                with m.If(region.done):
                    m.d.comb += [
                        cache.install.eq(1),
                        cache.touch.eq(1),
                    ]
                    m.d.sync += [current_valid.eq(1), current.eq(target), current_page.eq(page)]
                    respond(Status.SUCCEED)

            with m.State("VMCLEAR_WRITE_BACK"):
                with m.If(region.done):
                    m.d.comb += cache.mark_clean.eq(1)
                    issue(RegionCommand.WRITE_WORD, "VMCLEAR_LAUNCH", page_=_PageSource.OPERAND, word=LAUNCH_WORD)

            with m.State("VMCLEAR_LAUNCH"):
                with m.If(region.done):
                    with m.If(target_hit):
                        m.d.comb += cache.invalidate.eq(1)
                        with m.If(current == target):
                            m.d.sync += current_valid.eq(0)
                    respond(Status.SUCCEED)

            with m.State("VMXOFF_SCAN"):
                # Write back a dirty entry; mark a launched one, clean or dirty, so that a
                # VMRESUME after VMXOFF and VMXON fails with error 6.
                launched = (target_tag.launch & LAUNCH_LAUNCHED) != 0
                marked = target_tag.launch | Mux(launched, LAUNCH_VMXOFF, 0)
                with m.If(target_tag.valid & target_tag.dirty):
                    issue(RegionCommand.WRITE_BACK, "VMXOFF_WRITE_BACK", page_=_PageSource.TARGET, launch=marked)
                with m.Elif(target_tag.valid & launched):
                    issue(
                        RegionCommand.WRITE_WORD,
                        "VMXOFF_WRITE_BACK",
                        page_=_PageSource.TARGET,
                        word=LAUNCH_WORD,
                        launch=marked,
                    )
                with m.Else():
                    m.next = "VMXOFF_NEXT"

            with m.State("VMXOFF_WRITE_BACK"):
                with m.If(region.done):
                    m.next = "VMXOFF_NEXT"

            with m.State("VMXOFF_NEXT"):
                with m.If(target == self.cache_entries - 1):
                    m.d.comb += cache.invalidate_all.eq(1)
                    m.d.sync += [in_vmx.eq(0), current_valid.eq(0)]
                    respond(Status.SUCCEED)
                with m.Else():
                    m.d.sync += target.eq(target + 1)
                    m.next = "VMXOFF_SCAN"

            with m.State("FIELD_READ"):
                # Memory-resident VMREAD: the component's word, then the upper word of a 64-bit read.
                with m.If(region.done):
                    with m.If(dec.pair & (size == OperandSize.S64)):
                        m.d.sync += r_value[:32].eq(region.rdata)  # the low word, kept for RESPOND
                        issue(RegionCommand.READ_WORD, "FIELD_READ_HIGH", page_=_PageSource.TARGET, word=high_word)
                    with m.Elif(dec.width == FieldWidth.W16):
                        respond(Status.SUCCEED, result=region.rdata[:16])
                    with m.Else():
                        respond(Status.SUCCEED, result=region.rdata)

            with m.State("FIELD_READ_HIGH"):
                with m.If(region.done):
                    m.d.sync += r_value[32:].eq(region.rdata)
                    respond(Status.SUCCEED)

            with m.State("FIELD_WRITE"):
                with m.If(region.done):
                    with m.If(dec.pair):
                        issue(
                            RegionCommand.WRITE_WORD,
                            "FIELD_WRITE_HIGH",
                            page_=_PageSource.TARGET,
                            word=high_word,
                            wdata=_WriteSource.FIELD,
                        )
                        m.d.sync += upper_word.eq(1)
                    with m.Else():
                        respond(Status.SUCCEED)

            with m.State("FIELD_WRITE_HIGH"):
                with m.If(region.done):
                    respond(Status.SUCCEED)

            with m.State("ENTRY_CHECKS"):
                with m.If(checker.done):
                    with m.If(checker.error != VmError.NONE):
                        fail_valid(checker.error)
                    with m.Else():
                        respond(Status.ENTRY_NOT_IMPLEMENTED)

            with m.State("RESPOND"):
                # Cache writes that complete the outcome (idempotent while we wait).
                with m.If(r_status == Status.FAIL_VALID):
                    m.d.comb += [
                        eng_wr_slot.eq(_ERROR_FIELD.slot),
                        eng_wr_word.eq(r_error),
                        eng_wr_en.eq(1 << _ERROR_FIELD.half),
                        cache.cmd_entry.eq(current),
                        cache.mark_dirty.eq(1),
                    ]
                with m.Elif(upper_word):
                    m.d.comb += eng_wr_en.eq(0b10)
                m.d.comb += self.resp.valid.eq(1)
                # VMX outcomes write the six arithmetic flags (idempotent while we wait).
                with m.Switch(r_status):
                    for status in (Status.SUCCEED, Status.FAIL_INVALID, Status.FAIL_VALID):
                        with m.Case(status):
                            m.d.comb += [state.flags_en.eq(1), state.flags.eq(flags_for(status))]
                with m.If(self.resp.ready):
                    m.next = "IDLE"

        return m
