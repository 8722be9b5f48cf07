"""Checks on the guest-state area that a VM entry makes while it reads the guest fields (SDM 26.3.1).

# Ref: Intel SDM vol. 3C, 26.3.1 "Checks on the guest state area" (26.3.1.1
# control registers, debug registers and MSRs; 26.3.1.2 segment registers;
# 26.3.1.3 GDTR and IDTR; 26.3.1.4 RIP and RFLAGS; 26.3.1.5 non-register
# state; 26.3.1.6 PDPTEs), 26.8 (the exit qualification of the failure);
# docs/semantics.md "Checks on the guest-state area" (rules 1-21), whose
# oracle is sim/model/guest_checks.py (``GuestStateChecks``).

The entry sequencer reads the guest fields in ``ENTRY_WALK`` order, one a
cycle, to load them; the checker watches that stream and checks each field in
the read that loads it. It never holds a whole field: a table generated from
``ENTRY_WALK`` says which check a field gets (``FieldCheck``) and, for a
segment register's field, which segment it is; each check tests the field's
lower word and a few registered facts about its upper word, and leaves a few
facts in flip-flops (RFLAGS.VM/IF/TF, the HLT state, CS.DPL, the segment's RPL,
"limit bits 11:0 all ones", ...) for the checks of later fields. Every rule that
relates two fields is evaluated when the later of the two is read, so the
verdict is complete one cycle after the last field: there is no final step.
A segment register's selector, base and limit leave their facts in registers
shared by all segments (one segment is read at a time), and its access rights,
read last, decide what applies (the segment may be unusable) with one shared
decoding of the access-rights format.
"""

from dataclasses import dataclass
from itertools import pairwise

from amaranth import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import ENTRY, PIN, PROC2
from ..arch.events import Activity, InterruptionInfo, InterruptionType
from ..arch.msrs import (
    CR0_FIXED0,
    CR0_FIXED1,
    CR4_FIXED0,
    CR4_FIXED1,
    DEBUGCTL_VALID,
    LINEAR_ADDRESS_WIDTH,
    MAXPHYADDR,
    PERF_GLOBAL_CTRL_VALID,
    VALID_MEMORY_TYPES,
)
from ..arch.state import AR, CR0, CR4, EFER, INTERRUPTIBILITY, RFLAGS, SEGMENTS, AccessRights
from ..arch.state_actions import ENTRY_WALK
from .predicates import valid_memory_types

__all__ = ["GuestStateChecker", "FieldCheck", "Segment", "WALK_CHECKS"]

# Facts of the architecture the checker relies on; each is checked here so that a change of the tables
# fails at import rather than giving a checker that is silently wrong.
if ~CR0_FIXED0 & (CR0.PE | CR0.PG):
    # Rule 1 then makes PG = 1 and PE = 1 in every passing CR0, so the rules that depend on CR0.PG
    # (5: LME = LMA; 21: PDPTEs) apply whenever nothing failed, and "PG needs PE" cannot fail alone.
    raise ValueError("the guest-state checker assumes CR0.PE and CR0.PG are fixed to 1 (no unrestricted guest)")
if PROC2.allowed1 & (PROC2.bit("UNRESTRICTED_GUEST") | PROC2.bit("ENABLE_EPT")):
    raise ValueError("the guest-state checker has no rules for unrestricted guest or EPT")
if MAXPHYADDR != 32:
    raise ValueError("the guest-state checker takes bits at or above MAXPHYADDR to be the upper word")

#: Pending debug exceptions: B3-B0 (3:0), enabled breakpoint (12), BS (14) are the only bits that may be 1.
PENDING_DEBUG_VALID = 0x500F
PENDING_DEBUG_BS = 1 << 14
#: IA32_DEBUGCTL.BTF.
DEBUGCTL_BTF = 1 << 1
#: Interruptibility bits 31:4 (bit 4, enclave interruption, needs SGX).
INTERRUPTIBILITY_RESERVED = 0xFFFF_FFF0
#: Hardware exceptions an entry into the HLT state may inject: #DB and #MC (26.3.1.5).
HLT_INJECTABLE_EXCEPTIONS = (1, 18)
#: Access rights of every segment register in virtual-8086 mode (26.3.1.2).
V8086_AR = 0xF3
V8086_LIMIT = 0xFFFF
#: Bits 31:5 of CR3 address the four PAE PDPTEs (26.3.1.6).
PDPTE_TABLE_SHIFT = 5


class FieldCheck(enum.Enum, shape=5):
    """What the checker does with a field of ``ENTRY_WALK``."""

    NONE = 0
    CR0 = 1
    CR3 = 2
    CR4 = 3
    DR7 = 4
    RIP = 5
    RFLAGS = 6
    EFER = 7
    PAT = 8
    DEBUGCTL = 9
    PERF_GLOBAL_CTRL = 10
    #: IA32_SYSENTER_ESP/EIP, GDTR and IDTR bases: canonical.
    CANONICAL = 11
    ACTIVITY = 12
    INTERRUPTIBILITY = 13
    PENDING_DEBUG = 14
    SELECTOR = 15
    BASE = 16
    LIMIT = 17
    ACCESS_RIGHTS = 18
    #: GDTR and IDTR limits: bits 31:16 = 0.
    TABLE_LIMIT = 19
    LINK_POINTER = 20


class Segment(enum.Enum, shape=3):
    """The segment register a selector, base, limit or access-rights field belongs to (state.SEGMENTS order)."""

    ES = 0
    CS = 1
    SS = 2
    DS = 3
    FS = 4
    GS = 5
    LDTR = 6
    TR = 7


if [s.name.lower() for s in Segment] != list(SEGMENTS):
    raise ValueError("Segment must list state.SEGMENTS in order")


def _is(segment, *segments: Segment):
    return segment.as_value().matches(*(s.value for s in segments))


_NAMED_CHECKS = {
    "GUEST_CR0": FieldCheck.CR0,
    "GUEST_CR3": FieldCheck.CR3,
    "GUEST_CR4": FieldCheck.CR4,
    "GUEST_DR7": FieldCheck.DR7,
    "GUEST_RSP": FieldCheck.NONE,
    "GUEST_RIP": FieldCheck.RIP,
    "GUEST_RFLAGS": FieldCheck.RFLAGS,
    "GUEST_IA32_EFER": FieldCheck.EFER,
    "GUEST_IA32_PAT": FieldCheck.PAT,
    "GUEST_IA32_DEBUGCTL": FieldCheck.DEBUGCTL,
    "GUEST_IA32_PERF_GLOBAL_CTRL": FieldCheck.PERF_GLOBAL_CTRL,
    "GUEST_SYSENTER_CS": FieldCheck.NONE,
    "GUEST_SYSENTER_ESP": FieldCheck.CANONICAL,
    "GUEST_SYSENTER_EIP": FieldCheck.CANONICAL,
    "GUEST_ACTIVITY_STATE": FieldCheck.ACTIVITY,
    "GUEST_INTERRUPTIBILITY_INFO": FieldCheck.INTERRUPTIBILITY,
    "GUEST_PENDING_DBG_EXCEPTIONS": FieldCheck.PENDING_DEBUG,
    "GUEST_GDTR_BASE": FieldCheck.CANONICAL,
    "GUEST_GDTR_LIMIT": FieldCheck.TABLE_LIMIT,
    "GUEST_IDTR_BASE": FieldCheck.CANONICAL,
    "GUEST_IDTR_LIMIT": FieldCheck.TABLE_LIMIT,
    "VMX_PREEMPTION_TIMER_VALUE": FieldCheck.NONE,
    "VMCS_LINK_POINTER": FieldCheck.LINK_POINTER,
}
_SEGMENT_PARTS = {
    "SELECTOR": FieldCheck.SELECTOR,
    "BASE": FieldCheck.BASE,
    "LIMIT": FieldCheck.LIMIT,
    "AR_BYTES": FieldCheck.ACCESS_RIGHTS,
}


def _walk_checks() -> tuple[tuple[FieldCheck, Segment], ...]:
    """(check, segment) of each field of ENTRY_WALK, in its order (segment ES for a non-segment field)."""
    rows = []
    for name in ENTRY_WALK:
        if name in _NAMED_CHECKS:
            rows.append((_NAMED_CHECKS[name], Segment.ES))
            continue
        parts = name.split("_", 2)
        if len(parts) != 3 or parts[0] != "GUEST" or parts[1].lower() not in SEGMENTS or parts[2] not in _SEGMENT_PARTS:
            raise ValueError(f"ENTRY_WALK reads {name}, which the guest-state checker has no check for")
        rows.append((_SEGMENT_PARTS[parts[2]], Segment[parts[1]]))
    # Each rule between two fields is evaluated at the later one: the order below is what the checks assume.
    order = {name: i for i, name in enumerate(ENTRY_WALK)}
    before = [
        ("GUEST_RFLAGS", "GUEST_INTERRUPTIBILITY_INFO"),  # IF for STI blocking
        ("GUEST_IA32_DEBUGCTL", "GUEST_PENDING_DBG_EXCEPTIONS"),  # BTF for BS
        ("GUEST_ACTIVITY_STATE", "GUEST_INTERRUPTIBILITY_INFO"),
        ("GUEST_INTERRUPTIBILITY_INFO", "GUEST_PENDING_DBG_EXCEPTIONS"),
        ("GUEST_RFLAGS", "GUEST_ES_SELECTOR"),  # VM for every segment rule
        ("GUEST_RIP", "GUEST_CS_AR_BYTES"),  # RIP against CS.L
        ("GUEST_CS_SELECTOR", "GUEST_SS_SELECTOR"),  # SS.RPL = CS.RPL
        ("GUEST_CS_AR_BYTES", "GUEST_SS_AR_BYTES"),  # CS.DPL against SS.DPL
        ("GUEST_ACTIVITY_STATE", "GUEST_SS_AR_BYTES"),  # HLT needs SS.DPL = 0
    ]
    for first, later in before:
        if order[first] > order[later]:
            raise ValueError(f"the guest-state checker needs {first} read before {later}")
    for segment in SEGMENTS:
        up = segment.upper()
        parts = [order[f"GUEST_{up}_{part}"] for part in _SEGMENT_PARTS]
        if parts != list(range(parts[0], parts[0] + 4)):
            raise ValueError(f"the guest-state checker needs {up}'s selector, base, limit, access rights in a row")
    if ENTRY_WALK[-1] != "VMCS_LINK_POINTER":
        raise ValueError("the guest-state checker takes the VMCS link pointer to be the last field read")
    return tuple(rows)


#: What the checker does with each field of ENTRY_WALK, in its order.
WALK_CHECKS = _walk_checks()


_CANONICAL_FROM = LINEAR_ADDRESS_WIDTH - 1 - 32  # bits 63:47 are bits 31:15 of the upper word
_RIP_FROM = LINEAR_ADDRESS_WIDTH - 32  # rule 15: bits 63:N (N the linear-address width) identical
_PERF_UPPER_VALID = PERF_GLOBAL_CTRL_VALID >> 32
if max(VALID_MEMORY_TYPES) > 0xF:
    raise ValueError("the checker tests a PAT byte as a zero high nibble and a valid low nibble")
if _PERF_UPPER_VALID & (_PERF_UPPER_VALID + 1):
    raise ValueError("IA32_PERF_GLOBAL_CTRL's valid upper bits are expected at the bottom of the word")
_PERF_UPPER_WIDTH = _PERF_UPPER_VALID.bit_length()


class _UpperWord:
    """Registered facts about bits 63:32 of the field under test (read on ``word`` one cycle earlier).

    The upper word is cut in ranges at the bits the rules care about (the first
    reserved bit of IA32_PERF_GLOBAL_CTRL, bit 47 of a canonical address, bit 48
    of a 64-bit RIP); a
    flip-flop holds "all zero" and one "all ones" for each range, and one
    holds "bytes 7:4 are valid memory types" (IA32_PAT).
    """

    def __init__(self, m: Module, upper):
        cuts = sorted({0, _PERF_UPPER_WIDTH, _CANONICAL_FROM, _RIP_FROM, 32})
        self._ranges = list(pairwise(cuts))
        self._zero = {}
        self._ones = {}
        for lo, hi in self._ranges:
            self._zero[lo] = zero = Signal(name=f"upper_zero_{lo + 32}")
            self._ones[lo] = ones = Signal(name=f"upper_ones_{lo + 32}")
            m.d.sync += [zero.eq(~upper[lo:hi].any()), ones.eq(upper[lo:hi].all())]
        self.memory_types = Signal()
        m.d.sync += self.memory_types.eq(valid_memory_types(Cat(upper, Const(0, 32))))

    def any_from(self, bit: int = 0):
        """Any of bits 31:``bit`` of the upper word is 1 (``bit`` is one of the cuts)."""
        starts = [lo for lo, _ in self._ranges if lo >= bit]
        if starts[0] != bit:
            raise ValueError(f"no fact starts at bit {bit} of the upper word")
        return ~Cat(*(self._zero[lo] for lo in starts)).all()

    def any(self, mask: int):
        """Any bit of ``mask`` (a 64-bit mask; its upper word must be a run of ones up to bit 63) is 1."""
        upper = (mask >> 32) & 0xFFFF_FFFF
        if not upper:
            return Const(0)
        first = (upper & -upper).bit_length() - 1
        if upper != 0xFFFF_FFFF & ~((1 << first) - 1):
            raise ValueError(f"no fact for upper-word mask {upper:#x}")
        return self.any_from(first)

    def all_ones(self):
        return Cat(*self._ones.values()).all()

    def equal_from(self, bit: int):
        """Bits 31:``bit`` of the upper word all equal (``bit`` is one of the cuts)."""
        top = [lo for lo, _ in self._ranges if lo >= bit]
        if top[0] != bit:
            raise ValueError(f"no fact starts at bit {bit} of the upper word")
        return Cat(*(self._zero[lo] for lo in top)).all() | Cat(*(self._ones[lo] for lo in top)).all()

    def canonical(self):
        """Bits 63:47 all equal."""
        return self.equal_from(_CANONICAL_FROM)


class _LowWord:
    """Bits 31:0 of the field under test, with its nibbles' "all zero" and "all ones" computed once.

    Most checks ask whether some bits of the word are set or whether it equals
    a constant; built from the shared nibble tests, those many wide
    reductions over different masks share most of their logic.
    """

    def __init__(self, m: Module, lo: Value):
        self.value = lo
        self._zero = []
        self._ones = []
        for k in range(8):
            zero, ones = Signal(name=f"lo_zero_{4 * k}"), Signal(name=f"lo_ones_{4 * k}")
            m.d.comb += [zero.eq(lo[4 * k : 4 * k + 4] == 0), ones.eq(lo[4 * k : 4 * k + 4].all())]
            self._zero.append(zero)
            self._ones.append(ones)

    def __getitem__(self, key):
        return self.value[key]

    def any(self, mask: int):
        """Any bit of ``mask`` (its bits 31:0) is 1."""
        terms = []
        for k in range(8):
            nibble = (mask >> 4 * k) & 0xF
            if nibble == 0xF:
                terms.append(~self._zero[k])
            elif nibble:
                terms.append((self.value[4 * k : 4 * k + 4] & nibble).any())
        return Cat(*terms).any() if terms else Const(0)

    def equals(self, value: int):
        terms = []
        for k in range(8):
            nibble = (value >> 4 * k) & 0xF
            if nibble == 0:
                terms.append(self._zero[k])
            elif nibble == 0xF:
                terms.append(self._ones[k])
            else:
                terms.append(self.value[4 * k : 4 * k + 4] == nibble)
        return Cat(*terms).all()

    def memory_types(self):
        """Every byte is a valid PAT memory type (its high nibble 0, its low nibble a valid type)."""
        return Cat(
            *(self._zero[2 * b + 1] & self.value[8 * b : 8 * b + 4].matches(*VALID_MEMORY_TYPES) for b in range(4))
        ).all()


def _fixed_ok(low: _LowWord, upper: _UpperWord, fixed0: int, fixed1: int):
    """Every bit that is 1 in FIXED0 is 1 and every bit that is 0 in FIXED1 is 0 (a 64-bit register)."""
    if fixed0 >> 32:
        raise ValueError("a fixed-1 bit in the upper word is not a fact the checker keeps")
    must_be_0 = ~fixed1 & (2**64 - 1)
    return ((low.value & fixed0) == fixed0) & ~low.any(must_be_0) & ~upper.any(must_be_0)


def _reserved(low: _LowWord, upper: _UpperWord, reserved: int):
    """Any bit of the 64-bit mask ``reserved`` is 1."""
    return low.any(reserved) | upper.any(reserved)


def _bit(lo, flag: int):
    """The bit of a one-bit mask."""
    return lo[flag.bit_length() - 1]


@dataclass(frozen=True)
class _Field:
    """The field under test, registered: its lower word, facts about its upper word, its segment register."""

    lo: _LowWord
    upper: _UpperWord
    segment: Value
    #: Bits 19:4 of the field equal bits 15:0 of the field read before it (a base after its selector).
    base_is_selector_x16: Value


class _Facts:
    """What a field leaves in flip-flops for the checks of later fields."""

    def __init__(self):
        self.cr3_table = Signal(32 - PDPTE_TABLE_SHIFT)  # CR3 bits 31:5
        self.pae_paging = Signal()  # CR4.PAE without "IA-32e mode guest" (CR0.PG is 1): rule 21 applies
        self.rip_high_zero = Signal()  # RIP bits 63:32 = 0
        self.rip_top_equal = Signal()  # RIP bits 63:48 all equal
        self.v8086 = Signal()  # RFLAGS.VM
        self.rflags_if = Signal()
        self.rflags_tf = Signal()
        self.debugctl_btf = Signal()
        self.hlt = Signal()  # activity state bit 0: HLT (any other value than 0 and 1 fails rule 17)
        self.bs_checked = Signal()  # blocking by STI or MOV SS, or HLT: rule 19 checks BS
        self.cs_rpl = Signal(2)
        self.cs_dpl = Signal(2)
        self.cs_conforming = Signal()  # CS type bit 2
        self.link_failed = Signal()
        self.link_read = Signal()
        # The segment being read, shared by all segments: facts of its selector, base and limit.
        self.rpl = Signal(2)
        self.ti = Signal()
        self.base_bad = Signal()  # the base breaks rule 7 if the segment is usable (LDTR, SS, DS, ES)
        self.limit_low_ones = Signal()  # limit bits 11:0 all ones
        self.limit_high_any = Signal()  # a 1 in limit bits 31:20


class GuestStateChecker(wiring.Component):
    """Checks the guest-state area (rules 1-19 and the format of 20) while the entry sequencer reads it.

    Implements SDM 26.3.1 as docs/semantics.md lists it; ``sim.model.guest_checks``
    is its oracle. The sequencer presents the fields of ``ENTRY_WALK`` in order,
    each zero-extended on ``word`` with ``valid`` high and its position on
    ``index``, at most one a cycle (cycles with ``valid`` low may come between
    them). A rule that relates two fields is evaluated when the later one is read,
    from facts the earlier one left in flip-flops; nothing is evaluated at the end.

    Latency: ``word`` is registered on entry, tested in the next cycle, and the
    result registered: ``done`` is high for one cycle, 2 cycles (``latency``)
    after the cycle in which the last field (the VMCS link pointer) was
    presented. The verdict (``failed`` ... ``pdpte_base``) is valid from ``done``
    until the next ``start``; ``link_pointer`` until the next ``valid``. The
    checker takes a new field every cycle.

    The verdict has the model's precedence: ``failed`` (qualification 0) before
    ``link_failed`` (4), before what the sequencer still does with memory: it
    reads the dword at ``link_pointer`` and compares it with the revision
    identifier (4) when ``link_read``, then reads the four PDPTEs at
    ``pdpte_base`` and checks them (2) when ``pdpte_read``.

    Members
    -------
    start : In(1)
        A walk begins: clears the verdict. May come with the first field.
    valid : In(1)
        ``word`` holds the field ``ENTRY_WALK[index]`` this cycle.
    index : In(range(len(ENTRY_WALK)))
    word : In(64)
        The field's value, zero-extended (a 16- or 32-bit field in the low bits).
    entry_controls, pin_controls : In(32)
        The VM-entry and pin-based VM-execution controls; stable from ``start``
        to the last field.
    intr_info : In(InterruptionInfo)
        The VM-entry interruption information (rules 16-18 depend on the event
        injected); stable from ``start`` to the last field.
    in_smm : In(1)
        The processor is in SMM (rules 18 and 20); stable from ``start`` to the last field.
    current_page : In(20)
        Bits 31:12 of the current-VMCS pointer (rule 20: the link pointer is not
        the current VMCS, outside SMM); stable during the last field.
    executive_page : In(20)
        Bits 31:12 of the executive-VMCS pointer of a return from SMM (rule 20: the link pointer is not the
        executive VMCS, in SMM without "entry to SMM"); stable during the last field.
    done : Out(1)
        The verdict is complete (one cycle).
    failed : Out(1)
        A rule of 1-19 failed: a VM-entry failure with qualification 0.
    link_failed : Out(1)
        No rule of 1-19 failed, and the VMCS link pointer is not all ones and is
        not 4-KiB aligned, or is at or above 2^32, or is the current VMCS
        outside SMM (rule 20): qualification 4.
    link_read : Out(1)
        No failure so far and the link pointer is in use: the sequencer reads
        the dword at ``link_pointer`` (rule 20's revision check).
    link_pointer : Out(32)
        The VMCS link pointer (bits 31:0; the upper bits are 0 when ``link_read``).
    pdpte_read : Out(1)
        No failure so far and the guest uses PAE paging (CR0.PG, CR4.PAE, not
        "IA-32e mode guest"): the sequencer reads and checks the four PDPTEs
        at ``pdpte_base`` (rule 21), after the link pointer's dword.
    pdpte_base : Out(32)
        GUEST_CR3 bits 31:5, bits 4:0 = 0.
    """

    start: In(1)
    valid: In(1)
    index: In(range(len(ENTRY_WALK)))
    word: In(64)
    entry_controls: In(32)
    pin_controls: In(32)
    intr_info: In(InterruptionInfo)
    in_smm: In(1)
    current_page: In(32 - 12)
    executive_page: In(32 - 12)
    done: Out(1)
    failed: Out(1)
    link_failed: Out(1)
    link_read: Out(1)
    link_pointer: Out(32)
    pdpte_read: Out(1)
    pdpte_base: Out(32)

    @property
    def latency(self) -> int:
        """Cycles from the cycle the last field is presented to ``done``."""
        return 2

    def elaborate(self, platform):
        m = Module()

        # -- the first cycle registers the field, what to check on it, and facts about its upper word
        check = Signal(FieldCheck)
        segment = Signal(Segment)
        lo = Signal(32)  # the field's bits 31:0; loaded only with valid, so it holds the previous field
        base_is_selector_x16 = Signal()  # word bits 19:4 == the previous field (the segment's selector)
        with m.Switch(self.index):
            for i, (field_check, field_segment) in enumerate(WALK_CHECKS):
                with m.Case(i):
                    m.d.sync += [check.eq(Mux(self.valid, field_check, FieldCheck.NONE)), segment.eq(field_segment)]
            with m.Default():
                m.d.sync += check.eq(FieldCheck.NONE)
        with m.If(self.valid):
            m.d.sync += lo.eq(self.word[:32])
        m.d.sync += base_is_selector_x16.eq(self.word[4:20] == lo[:16])
        field = _Field(_LowWord(m, lo), _UpperWord(m, self.word[32:]), segment, base_is_selector_x16)

        # -- the second tests it against the controls and the facts of earlier fields -------------
        facts = _Facts()
        fails = Signal()  # a rule of 1-19 fails on this field
        failed = Signal()  # sticky over the walk
        done = Signal()
        with m.If(self.start):
            m.d.sync += failed.eq(0)
        with m.Else():
            m.d.sync += failed.eq(failed | fails)
        m.d.sync += done.eq(check == FieldCheck.LINK_POINTER)

        with m.Switch(check):
            for field_check in FieldCheck:
                if field_check == FieldCheck.NONE:
                    continue
                with m.Case(field_check):
                    test = getattr(self, f"_check_{field_check.name.lower()}")
                    m.d.comb += fails.eq(test(m, field, facts))

        m.d.comb += [
            self.done.eq(done),
            self.failed.eq(failed),
            self.link_failed.eq(~failed & facts.link_failed),
            self.link_read.eq(~failed & facts.link_read),
            self.link_pointer.eq(lo),
            self.pdpte_read.eq(~failed & ~facts.link_failed & facts.pae_paging),
            self.pdpte_base.eq(Cat(Const(0, PDPTE_TABLE_SHIFT), facts.cr3_table)),
        ]
        return m

    # Each check returns "a rule fails on this field" and adds the facts it leaves to m.d.sync.

    def _entry(self, name: str):
        return self.entry_controls[ENTRY.bits[name]]

    @property
    def _ia32e(self):
        return self._entry("IA32E_MODE")

    def _injects(self, kind: InterruptionType):
        return self.intr_info.valid & (self.intr_info.type == kind)

    # 26.3.1.1: control registers, debug registers, MSRs (rules 1-5).

    def _check_cr0(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        free = CR0.NW | CR0.CD
        return ~_fixed_ok(lo, upper, CR0_FIXED0 & ~free, CR0_FIXED1 | free)

    def _check_cr3(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        m.d.sync += facts.cr3_table.eq(lo[PDPTE_TABLE_SHIFT:])
        return upper.any_from(0)

    def _check_cr4(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        pae, pcide = _bit(lo, CR4.PAE), _bit(lo, CR4.PCIDE)
        m.d.sync += facts.pae_paging.eq(pae & ~self._ia32e)
        return ~_fixed_ok(lo, upper, CR4_FIXED0, CR4_FIXED1) | (self._ia32e & ~pae) | (~self._ia32e & pcide)

    def _check_dr7(self, m, f: _Field, facts: _Facts):
        upper = f.upper
        return self._entry("LOAD_DEBUG_CONTROLS") & upper.any_from(0)

    def _check_rip(self, m, f: _Field, facts: _Facts):
        upper = f.upper
        m.d.sync += [facts.rip_high_zero.eq(~upper.any_from(0)), facts.rip_top_equal.eq(upper.equal_from(_RIP_FROM))]
        return Const(0)  # rule 15 needs CS.L: checked with CS's access rights

    def _check_rflags(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        m.d.sync += [
            facts.v8086.eq(_bit(lo, RFLAGS.VM)),
            facts.rflags_if.eq(_bit(lo, RFLAGS.IF)),
            facts.rflags_tf.eq(_bit(lo, RFLAGS.TF)),
        ]
        return (
            _reserved(lo, upper, RFLAGS.RESERVED)
            | ~_bit(lo, RFLAGS.FIXED1)
            | (self._ia32e & _bit(lo, RFLAGS.VM))
            | (self._injects(InterruptionType.EXTERNAL_INTERRUPT) & ~_bit(lo, RFLAGS.IF))
        )

    def _check_efer(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        lma, lme = _bit(lo, EFER.LMA), _bit(lo, EFER.LME)
        reserved = _reserved(lo, upper, ~EFER.VALID & (2**64 - 1))
        # LME = LMA applies with CR0.PG = 1, which rule 1 makes true of every CR0 that passes.
        return self._entry("LOAD_IA32_EFER") & (reserved | (lma != self._ia32e) | (lme != lma))

    def _check_pat(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        ok = lo.memory_types() & upper.memory_types
        return self._entry("LOAD_IA32_PAT") & ~ok

    def _check_debugctl(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        m.d.sync += facts.debugctl_btf.eq(_bit(lo, DEBUGCTL_BTF))
        return self._entry("LOAD_DEBUG_CONTROLS") & _reserved(lo, upper, ~DEBUGCTL_VALID & (2**64 - 1))

    def _check_perf_global_ctrl(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        reserved = _reserved(lo, upper, ~PERF_GLOBAL_CTRL_VALID & (2**64 - 1))
        return self._entry("LOAD_IA32_PERF_GLOBAL_CTRL") & reserved

    def _check_canonical(self, m, f: _Field, facts: _Facts):
        upper = f.upper
        # Rule 4 (IA32_SYSENTER_ESP and _EIP), rule 14 (GDTR and IDTR bases).
        return ~upper.canonical()

    # 26.3.1.5: non-register state (rules 17-19).

    def _check_activity(self, m, f: _Field, facts: _Facts):
        lo = f.lo
        info = self.intr_info
        hlt_injectable = (
            (info.type == InterruptionType.EXTERNAL_INTERRUPT)
            | (info.type == InterruptionType.NMI)
            | ((info.type == InterruptionType.HARDWARE_EXCEPTION) & info.vector.matches(*HLT_INJECTABLE_EXCEPTIONS))
        )
        # Active (0) or HLT (1): any other bit set fails, so bit 0 alone says HLT.
        hlt = lo[0]
        m.d.sync += facts.hlt.eq(hlt)
        return lo.any(~(Activity.ACTIVE | Activity.HLT) & 0xFFFF_FFFF) | (hlt & info.valid & ~hlt_injectable)

    def _check_interruptibility(self, m, f: _Field, facts: _Facts):
        lo = f.lo
        sti = _bit(lo, INTERRUPTIBILITY.BLOCKING_BY_STI)
        mov_ss = _bit(lo, INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
        smi = _bit(lo, INTERRUPTIBILITY.BLOCKING_BY_SMI)
        nmi = _bit(lo, INTERRUPTIBILITY.BLOCKING_BY_NMI)
        nmi_injected = self._injects(InterruptionType.NMI)
        m.d.sync += facts.bs_checked.eq(sti | mov_ss | facts.hlt)
        return (
            lo.any(INTERRUPTIBILITY_RESERVED)
            | (sti & mov_ss)
            | (sti & ~facts.rflags_if)
            | (self._injects(InterruptionType.EXTERNAL_INTERRUPT) & (sti | mov_ss))
            | (nmi_injected & mov_ss)
            | (smi & ~self.in_smm)
            | (self._entry("SMM") & ~smi)
            | (self.pin_controls[PIN.bits["VIRTUAL_NMIS"]] & nmi_injected & nmi)
            | (facts.hlt & (sti | mov_ss))  # rule 17
        )

    def _check_pending_debug(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        single_step = facts.rflags_tf & ~facts.debugctl_btf
        return _reserved(lo, upper, ~PENDING_DEBUG_VALID & (2**64 - 1)) | (
            facts.bs_checked & (_bit(lo, PENDING_DEBUG_BS) != single_step)
        )

    # 26.3.1.2: segment registers (rules 6-13); 26.3.1.4: RIP (rule 15).

    def _check_selector(self, m, f: _Field, facts: _Facts):
        lo, segment = f.lo, f.segment
        rpl, ti = lo[:2], lo[2]
        m.d.sync += [facts.rpl.eq(rpl), facts.ti.eq(ti)]
        with m.If(segment == Segment.CS):
            m.d.sync += facts.cs_rpl.eq(rpl)
        return ((segment == Segment.TR) & ti) | ((segment == Segment.SS) & ~facts.v8086 & (rpl != facts.cs_rpl))

    def _check_base(self, m, f: _Field, facts: _Facts):
        lo, upper, segment = f.lo, f.upper, f.segment
        high = upper.any_from(0)
        canonical = upper.canonical()
        selector_x16 = f.base_is_selector_x16 & ~high & ~lo.any(0xFFF0_000F)
        v8086_segment = ~_is(segment, Segment.LDTR, Segment.TR)
        m.d.sync += facts.base_bad.eq(Mux(segment == Segment.LDTR, ~canonical, high))
        return (
            (_is(segment, Segment.TR, Segment.FS, Segment.GS) & ~canonical)
            | ((segment == Segment.CS) & high)
            | (facts.v8086 & v8086_segment & ~selector_x16)
        )

    def _check_limit(self, m, f: _Field, facts: _Facts):
        lo, segment = f.lo, f.segment
        v8086_segment = ~_is(segment, Segment.LDTR, Segment.TR)
        m.d.sync += [facts.limit_low_ones.eq(lo[:12].all()), facts.limit_high_any.eq(lo.any(0xFFF0_0000))]
        return facts.v8086 & v8086_segment & ~lo.equals(V8086_LIMIT)

    def _check_access_rights(self, m, f: _Field, facts: _Facts):
        """One decoding of the access-rights format for all segments, then each segment's rules."""
        lo, segment = f.lo, f.segment
        ar = AccessRights(lo.value)
        t = ar.type
        ia32e, v8086 = self._ia32e, facts.v8086
        usable = ~ar.unusable
        g_ok = ~(ar.g & ~facts.limit_low_ones) & ~(~ar.g & facts.limit_high_any)
        present = ar.p & ~lo.any(AR.RESERVED) & g_ok  # P, reserved bits 0, G against the limit
        code_or_data = ar.s & present
        system = ~ar.s & present
        not_v8086_ar = ~lo.equals(V8086_AR)
        ss_dpl = ar.dpl
        with m.If(segment == Segment.CS):
            m.d.sync += [facts.cs_dpl.eq(ar.dpl), facts.cs_conforming.eq(t[2])]

        data = Mux(
            v8086,
            not_v8086_ar,
            usable
            & (
                ~t[0]  # accessed
                | (t[3] & ~t[1])  # code must be readable
                | ~code_or_data
                | (~(t[3] & t[2]) & (ar.dpl < facts.rpl))  # types 0-11: DPL >= RPL
            ),
        )
        code = Mux(v8086, not_v8086_ar, ~(t[3] & t[0]) | ~code_or_data | (ia32e & ar.long_mode & ar.db))
        rip = Mux(ia32e & ar.long_mode, ~facts.rip_top_equal, ~facts.rip_high_zero)  # rule 15
        stack = Mux(
            v8086,
            not_v8086_ar,
            (ss_dpl != facts.rpl)
            | (usable & (((t & 0b1011) != 0b0011) | ~code_or_data))  # type 3 or 7
            | Mux(facts.cs_conforming, facts.cs_dpl > ss_dpl, facts.cs_dpl != ss_dpl),
        )
        base = usable & facts.base_bad
        by_segment = {
            Segment.ES: data | base,
            Segment.CS: code | rip,
            Segment.SS: stack | base | (facts.hlt & (ss_dpl != 0)),  # rule 17: HLT needs SS.DPL = 0
            Segment.DS: data | base,
            Segment.FS: data,
            Segment.GS: data,
            Segment.LDTR: usable & (facts.ti | (t != 2) | ~system | facts.base_bad),
            Segment.TR: ~usable | ~((t == 11) | ((t == 3) & ~ia32e)) | ~system,
        }
        fail = Signal()
        with m.Switch(segment):
            for seg, value in by_segment.items():
                with m.Case(seg):
                    m.d.comb += fail.eq(value)
        return fail

    # 26.3.1.3: GDTR and IDTR limits (rule 14).

    def _check_table_limit(self, m, f: _Field, facts: _Facts):
        lo = f.lo
        return lo.any(0xFFFF_0000)

    # 26.3.1.5: the format of the VMCS link pointer (rule 20).

    def _check_link_pointer(self, m, f: _Field, facts: _Facts):
        lo, upper = f.lo, f.upper
        unused = lo.equals(0xFFFF_FFFF) & upper.all_ones()
        misplaced = lo.any(0xFFF) | upper.any_from(0)
        # Not the current VMCS outside SMM or with "entry to SMM"; in SMM without it (a return from SMM), not the
        # executive-VMCS pointer.
        entry_to_smm = self._entry("SMM")
        current = (~self.in_smm | entry_to_smm) & (lo[12:] == self.current_page)
        current |= self.in_smm & ~entry_to_smm & (lo[12:] == self.executive_page)
        m.d.sync += [
            facts.link_failed.eq(~unused & (misplaced | current)),
            facts.link_read.eq(~misplaced & ~current),  # aligned, so not all ones
        ]
        return Const(0)
