"""Checks on the VMX controls and the host-state area that VMLAUNCH/VMRESUME run first.

# Ref: Intel SDM vol. 3C, 26.2.1 "Checks on VMX controls" (VMfailValid 7),
# 26.2.2 "Checks on host control registers, MSRs, and SSP", 26.2.3 "Checks on
# host segment and descriptor-table registers", 26.2.4 "Checks related to
# address-space size" (VMfailValid 8). docs/semantics.md lists them as vmxu
# implements them.

The checker walks a list of steps, one VMCS field per step, reading the field's
slot from the on-die cache (all fields it reads are on-die). A step may load
the field into a register that later steps test (the control fields, the
MSR-list counts, ...), and may test the field. Reads are pipelined: the slot
read for step k is registered and tested two cycles after it was issued, while
the reads of steps k+1 and k+2 are under way, so a walk costs one cycle per
step plus three. The register keeps the predicates off the block RAM's slow
clock-to-output path (ECP5 DP16KD) and is narrow: the field's word (the
half a 32-bit field is in), and for a 64-bit field the few facts the checks
need about its upper word (all zero, canonical, reserved bits set ...), each
a flip-flop behind a shallow test of the block RAM's output.
"""

from collections.abc import Callable
from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import ENTRY, EXIT, PIN, PROC, PROC2, ControlField
from ..arch.errors import VmError
from ..arch.events import InterruptionInfo
from ..arch.fields import FIELD_BY_NAME, FieldWidth
from ..arch.layout import CACHE_ENTRIES, LOCATION, Storage
from ..arch.msrs import (
    CR0_FIXED0,
    CR0_FIXED1,
    CR3_TARGETS,
    CR4_FIXED0,
    CR4_FIXED1,
    LINEAR_ADDRESS_WIDTH,
    MAXPHYADDR,
    PERF_GLOBAL_CTRL_VALID,
)
from ..arch.state import CR4, EFER
from ..vmcs.cache_port import CachePortSignature
from .predicates import bits_set, fixed_ok, valid_memory_types

__all__ = [
    "EntryChecker",
    "CheckSignature",
    "Controls",
    "STEPS",
    "EXECUTION_STEPS",
    "CheckRegisters",
    "exit_controls_fail",
    "msr_list_address_fails",
    "nmi_controls_fail",
    "step_logic",
]

CONTROL = VmError.ENTRY_INVALID_CONTROL_FIELD
HOST = VmError.ENTRY_INVALID_HOST_STATE


class _Registers:
    """Values earlier steps loaded, for later steps to test."""

    def __init__(self):
        self.pin = Signal(32)
        self.proc = Signal(32)
        self.proc2 = Signal(32)  # 0 unless "activate secondary controls"
        self.exit = Signal(32)
        self.entry = Signal(32)
        self.msr_count = Signal(32)
        self.error_code_high = Signal()  # bits 31:16 of the VM-entry exception error code set
        self.instruction_length_ok = Signal()  # VM-entry instruction length is 1..15
        self.host_cr4_pae = Signal()
        self.host_cr4_pcide = Signal()
        self.intr_info = Signal(32)
        self.exception_bitmap = Signal(32)

    def ctl(self, field: ControlField, name: str):
        reg = {
            PIN.vmcs_field: self.pin,
            PROC.vmcs_field: self.proc,
            PROC2.vmcs_field: self.proc2,
            EXIT.vmcs_field: self.exit,
            ENTRY.vmcs_field: self.entry,
        }[field.vmcs_field]
        return reg[field.bits[name]]

    @property
    def host_address_space_size(self):
        return self.ctl(EXIT, "HOST_ADDR_SPACE_SIZE")


class _Wide:
    """A 64-bit field as the checks see it: its lower word, and registered facts about its upper word.

    ``fact(key, test)`` is a flip-flop that holds ``test(upper word)`` of the
    slot read in the previous cycle; facts with the same ``key`` are one.
    """

    def __init__(self, lo, fact: Callable):
        self.lo = lo
        self.fact = fact

    def __getitem__(self, key):
        if not (isinstance(key, slice) and (key.stop or 0) <= 32 and (key.start or 0) < 32):
            raise IndexError(f"a check reads bits {key!r} of a 64-bit field; only the lower word is a value")
        return self.lo[key]

    def upper_any(self, mask: int = 0xFFFF_FFFF):
        """Any bit of ``mask`` (bits of the upper word) is 1."""
        mask &= 0xFFFF_FFFF
        return self.fact(("any", mask), lambda u: (u & mask) != 0) if mask else Const(0)

    def bits_set(self, mask: int):
        return bits_set(self.lo, mask & 0xFFFF_FFFF) | self.upper_any(mask >> 32)


def _canonical(v: _Wide):
    top = LINEAR_ADDRESS_WIDTH - 1 - 32  # bits 63:47 are bits 31:15 of the upper word
    return v.fact("canonical", lambda u: (u[top:] == 0) | (u[top:] == (1 << (32 - top)) - 1))


def _bad_address(v: _Wide):
    assert MAXPHYADDR == 32, "bits at or above MAXPHYADDR are the upper word"
    return (v[:12] != 0) | v.upper_any()


def _fixed_ok(v: _Wide, fixed0: int, fixed1: int):
    hi0, hi1 = fixed0 >> 32, (fixed1 >> 32) & 0xFFFF_FFFF
    upper_ok = v.fact(("fixed", hi0, hi1), lambda u: fixed_ok(u, hi0, hi1 | ~0xFFFF_FFFF & (2**64 - 1)))
    return fixed_ok(v.lo, fixed0 & 0xFFFF_FFFF, fixed1 | ~0xFFFF_FFFF & (2**64 - 1)) & upper_ok


def _valid_memory_types(v: _Wide):
    lo_ok = valid_memory_types(Cat(v.lo, Const(0, 32)))
    return lo_ok & v.fact("pat", lambda u: valid_memory_types(Cat(u, Const(0, 32))))


@dataclass(frozen=True)
class Step:
    """Read ``field``; optionally ``load`` it (regs, value -> assignments) and ``fails`` a check."""

    field: str
    error: VmError | None = None
    fails: Callable | None = None
    load: Callable | None = None
    #: A check on the VM-execution control fields (26.2.1.1): a VM entry that returns from SMM makes it on
    #: the executive VMCS instead (34.15.4.2, error 25; ``skip_execution``).
    execution: bool = False


def _capability(field: ControlField, *, true: bool = True) -> Callable:
    allowed0 = field.true_allowed0 if true else field.allowed0
    not_allowed1 = ~field.allowed1 & 0xFFFF_FFFF
    return lambda regs, v: ((v[:32] & allowed0) != allowed0) | bits_set(v[:32], not_allowed1)


def _above(value, limit: int):
    """``value`` > ``limit``, as a test of bits rather than a subtraction (no carry chain)."""
    bits = limit.bit_length()
    return value[bits:].any() | (value[:bits] > limit) if bits else value.any()


def msr_list_address_fails(count, address, upper_any):
    """An MSR list of ``count`` entries at ``address`` (its bits 31:0; ``upper_any``: a bit of 63:32 is 1) is
    refused: with a non-zero count, not 16-byte aligned, or its last byte not below 2^MAXPHYADDR (26.2.1.2;
    VMCALL's error 20 too, 34.15.6.1).

    For an aligned address the last byte, address + 16 * count - 1, is below
    2^MAXPHYADDR exactly when address / 16 + count <= 2^(MAXPHYADDR - 4).
    """
    entries_end = address[4:MAXPHYADDR] + count  # in 16-byte entries
    limit = MAXPHYADDR - 4
    beyond = entries_end[limit + 1 :].any() | (entries_end[limit] & entries_end[:limit].any())
    return (count != 0) & ((address[:4] != 0) | upper_any | beyond)


def _msr_list_address(regs, v):
    return msr_list_address_fails(regs.msr_count, v, v.upper_any())


def exit_controls_fail(value):
    """The VM-exit controls ``value`` are outside their TRUE capability MSR (26.2.1.2; VMCALL's error 20)."""
    return _capability(EXIT)(None, value)


def _event_injection(regs, v):
    valid = v[31]
    vector = v[0:8]
    type_ = v[8:11]
    deliver_error_code = v[11]
    hardware_exception = type_ == 3
    # Without "unrestricted guest" (never allowed-1) the vector alone decides (SDM 26.2.1.3).
    needs_error_code = hardware_exception & vector.matches(8, 10, 11, 12, 13, 14, 17)
    return (
        valid
        & (
            type_.matches(1, 7)
            | ((type_ == 2) & (vector != 2))
            | (hardware_exception & vector[5:].any())  # vector > 31
            | (v[12:31] != 0)
            | (deliver_error_code != needs_error_code)
            | (deliver_error_code & regs.error_code_high)
            | (type_.matches(4, 5, 6) & ~regs.instruction_length_ok)
        )
    )


def _host_efer(regs, v):
    hass = regs.host_address_space_size
    return regs.ctl(EXIT, "LOAD_IA32_EFER") & (
        v.bits_set(~EFER.VALID & (2**64 - 1)) | (v.bits_set(EFER.LMA) != hass) | (v.bits_set(EFER.LME) != hass)
    )


def _host_selector(name: str) -> Step:
    def fails(regs, v):
        sel = v[:16]
        bad = sel[:3] != 0  # RPL and TI
        if name in ("CS", "TR"):
            bad = bad | (sel == 0)
        if name == "SS":
            bad = bad | ((sel == 0) & ~regs.host_address_space_size)
        return bad

    return Step(f"HOST_{name}_SELECTOR", HOST, fails)


def _host_rip(regs, v):
    return (regs.host_address_space_size & ~_canonical(v)) | (~regs.host_address_space_size & v.upper_any())


STEPS: tuple[Step, ...] = (
    # 26.2.1.1-26.2.1.3: control fields against the TRUE capability MSRs.
    Step("PIN_BASED_VM_EXEC_CONTROL", CONTROL, _capability(PIN), lambda r, v: r.pin.eq(v), execution=True),
    Step("CPU_BASED_VM_EXEC_CONTROL", CONTROL, _capability(PROC), lambda r, v: r.proc.eq(v), execution=True),
    Step(
        "SECONDARY_VM_EXEC_CONTROL",
        CONTROL,
        lambda r, v: r.ctl(PROC, "ACTIVATE_SECONDARY_CONTROLS") & _capability(PROC2, true=False)(r, v),
        lambda r, v: r.proc2.eq(Mux(r.ctl(PROC, "ACTIVATE_SECONDARY_CONTROLS"), v[:32], 0)),
        execution=True,
    ),
    Step("VM_EXIT_CONTROLS", CONTROL, _capability(EXIT), lambda r, v: r.exit.eq(v)),
    Step("VM_ENTRY_CONTROLS", CONTROL, _capability(ENTRY), lambda r, v: r.entry.eq(v)),
    Step("CR3_TARGET_COUNT", CONTROL, lambda r, v: _above(v[:32], CR3_TARGETS), execution=True),
    Step("IO_BITMAP_A", CONTROL, lambda r, v: r.ctl(PROC, "USE_IO_BITMAPS") & _bad_address(v), execution=True),
    Step("IO_BITMAP_B", CONTROL, lambda r, v: r.ctl(PROC, "USE_IO_BITMAPS") & _bad_address(v), execution=True),
    Step("MSR_BITMAP", CONTROL, lambda r, v: r.ctl(PROC, "USE_MSR_BITMAPS") & _bad_address(v), execution=True),
    Step("VM_EXIT_MSR_STORE_COUNT", load=lambda r, v: r.msr_count.eq(v)),
    Step("VM_EXIT_MSR_STORE_ADDR", CONTROL, _msr_list_address),
    Step("VM_EXIT_MSR_LOAD_COUNT", load=lambda r, v: r.msr_count.eq(v)),
    Step("VM_EXIT_MSR_LOAD_ADDR", CONTROL, _msr_list_address),
    Step("VM_ENTRY_MSR_LOAD_COUNT", load=lambda r, v: r.msr_count.eq(v)),
    Step("VM_ENTRY_MSR_LOAD_ADDR", CONTROL, _msr_list_address),
    # 26.2.1.3: event injection.
    Step("VM_ENTRY_EXCEPTION_ERROR_CODE", load=lambda r, v: r.error_code_high.eq(v[16:32] != 0)),
    Step("VM_ENTRY_INSTRUCTION_LEN", load=lambda r, v: r.instruction_length_ok.eq(v[:4].any() & ~v[4:32].any())),
    Step("VM_ENTRY_INTR_INFO_FIELD", CONTROL, _event_injection, lambda r, v: r.intr_info.eq(v)),
    # Not checked: loaded for the exit decisions of the guest that may follow.
    Step("EXCEPTION_BITMAP", load=lambda r, v: r.exception_bitmap.eq(v)),
    # 26.2.2: host control registers and MSRs.
    Step("HOST_CR0", HOST, lambda r, v: ~_fixed_ok(v, CR0_FIXED0, CR0_FIXED1)),
    Step(
        "HOST_CR4",
        HOST,
        lambda r, v: ~_fixed_ok(v, CR4_FIXED0, CR4_FIXED1),
        lambda r, v: [r.host_cr4_pae.eq(v.bits_set(CR4.PAE)), r.host_cr4_pcide.eq(v.bits_set(CR4.PCIDE))],
    ),
    Step("HOST_CR3", HOST, lambda r, v: v.upper_any()),
    Step("HOST_IA32_SYSENTER_ESP", HOST, lambda r, v: ~_canonical(v)),
    Step("HOST_IA32_SYSENTER_EIP", HOST, lambda r, v: ~_canonical(v)),
    Step(
        "HOST_IA32_PERF_GLOBAL_CTRL",
        HOST,
        lambda r, v: r.ctl(EXIT, "LOAD_IA32_PERF_GLOBAL_CTRL") & v.bits_set(~PERF_GLOBAL_CTRL_VALID & (2**64 - 1)),
    ),
    Step("HOST_IA32_PAT", HOST, lambda r, v: r.ctl(EXIT, "LOAD_IA32_PAT") & ~_valid_memory_types(v)),
    Step("HOST_IA32_EFER", HOST, _host_efer),
    # 26.2.3: host segment and descriptor-table registers.
    *(_host_selector(s) for s in ("ES", "CS", "SS", "DS", "FS", "GS", "TR")),
    *(Step(f"HOST_{r}_BASE", HOST, lambda r_, v: ~_canonical(v)) for r in ("FS", "GS", "TR", "GDTR", "IDTR")),
    # 26.2.4: the host RIP half of the address-space-size checks.
    Step("HOST_RIP", HOST, _host_rip),
)


#: The checks on the VM-execution control fields (``Step.execution``), in their order.
EXECUTION_STEPS = tuple(s for s in STEPS if s.execution)
#: The registers the steps load (``EXECUTION_STEPS`` on another VMCS: the dual-monitor block's).
CheckRegisters = _Registers


def nmi_controls_fail(regs: _Registers):
    """26.2.1.1: "virtual NMIs" without "NMI exiting", or "NMI-window exiting" without "virtual NMIs"."""
    pin = lambda n: regs.ctl(PIN, n)  # noqa: E731
    return (~pin("NMI_EXITING") & pin("VIRTUAL_NMIS")) | (~pin("VIRTUAL_NMIS") & regs.ctl(PROC, "NMI_WINDOW_EXITING"))


def step_logic(regs: _Registers, step: Step, value):
    """A step's loads and its failure, on the field's ``value`` (64 bits, zero-extended) read whole: for a
    block that reads the fields itself rather than through the checker's pipeline."""
    field = FIELD_BY_NAME[step.field]
    if LOCATION[field.encoding].words == 2:
        v = _Wide(value[:32], lambda key, test: test(value[32:]))
    else:
        v = value[:16] if field.width == FieldWidth.W16 else value[:32]
    loads = step.load(regs, v) if step.load is not None else []
    fails = step.fails(regs, v) if step.fails is not None else Const(0, 1)
    return loads, fails


def _final_checks(regs: _Registers, efer_lma, in_smm, skip_execution):
    """Checks between control bits, and against the processor's mode, after every step (the NMI controls' are
    VM-execution control checks: ``skip_execution``)."""
    pin = lambda n: regs.ctl(PIN, n)  # noqa: E731
    entry = lambda n: regs.ctl(ENTRY, n)  # noqa: E731
    control = (
        (nmi_controls_fail(regs) & ~skip_execution)
        | (regs.ctl(EXIT, "SAVE_VMX_PREEMPTION_TIMER") & ~pin("ACTIVATE_PREEMPTION_TIMER"))
        | (~in_smm & (entry("SMM") | entry("DEACT_DUAL_MONITOR")))
        | (in_smm & entry("SMM") & entry("DEACT_DUAL_MONITOR"))
    )
    hass = regs.host_address_space_size
    host = (
        (~efer_lma & (entry("IA32E_MODE") | hass))
        | (efer_lma & ~hass)
        | (~hass & regs.host_cr4_pcide)
        | (hass & ~regs.host_cr4_pae)
    )
    return control, host


class Controls(data.Struct):
    """The current VMCS's control fields as the entry checks loaded them (they hold while a guest runs: no
    VMWRITE reaches the VMCS in VMX non-root operation)."""

    pin: 32
    proc: 32
    exit: 32
    entry: 32
    #: The VM-entry interruption information.
    intr_info: InterruptionInfo
    exception_bitmap: 32


class CheckSignature(wiring.Signature):
    """A walk of the entry checks, seen from the block that asks for it.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds (``CachePortSignature``): sizes ``entry``.

    Members
    -------
    start : Out(1)
        Walk the checks over the VMCS in cache entry ``entry``.
    entry : Out(entry_bits)
        Held from ``start`` to ``done``.
    skip_execution : Out(1)
        Held from ``start`` to ``done``: leave the checks on the VM-execution control fields out (a VM entry
        that returns from SMM, SDM 34.15.4.2; ``Step.execution``).
    done : In(1)
        The verdict is in ``error``; high for one cycle.
    error : In(VmError)
        0 when every check passed, else 7 (a control check failed) or 8 (only host-state checks failed).
    controls : In(Controls)
        The control fields the walk loaded, from ``done`` until the next ``start``.
    """

    def __init__(self, entries: int):
        self.entries = entries
        super().__init__(
            {
                "start": Out(1),
                "entry": Out(CachePortSignature(entries).entry_bits),
                "skip_execution": Out(1),
                "done": In(1),
                "error": In(VmError),
                "controls": In(Controls),
            }
        )

    def __eq__(self, other):
        return isinstance(other, CheckSignature) and self.entries == other.entries

    def __repr__(self):
        return f"CheckSignature(entries={self.entries})"


class EntryChecker(wiring.Component):
    """Walks STEPS over a cached VMCS and reports the first failing group.

    Latency: ``len(STEPS) + 5`` cycles from ``checks.start`` to
    ``checks.done`` (``latency``): ``start`` is registered first, so that the
    dispatcher's decisions, which ``start`` hangs off, end at one flip-flop
    here rather than run on through the walk's logic, and so is the verdict,
    so that the entry and the response start from one. It reads the fields of cache entry
    ``checks.entry`` through ``cache``, one read a cycle while it walks, and
    never writes. ``checks.error`` is 0 when every check passes, else error 7
    if any control check failed, else 8.

    Members
    -------
    checks : In(CheckSignature(entries))
    cache : Out(CachePortSignature(entries))
    efer_lma : In(1)
        The processor is in IA-32e mode (26.2.4).
    in_smm : In(1)
    """

    def __init__(self, entries: int = CACHE_ENTRIES):
        super().__init__(
            {
                "checks": In(CheckSignature(entries)),
                "cache": Out(CachePortSignature(entries)),
                "efer_lma": In(1),
                "in_smm": In(1),
            }
        )

    @property
    def latency(self) -> int:
        return len(STEPS) + 5

    def elaborate(self, platform):
        m = Module()
        regs = _Registers()
        controls = self.checks.controls
        m.d.comb += [
            controls.pin.eq(regs.pin),
            controls.proc.eq(regs.proc),
            controls.exit.eq(regs.exit),
            controls.entry.eq(regs.entry),
            controls.intr_info.eq(regs.intr_info),
            controls.exception_bitmap.eq(regs.exception_bitmap),
        ]
        n = len(STEPS)
        step = Signal(range(n + 4))
        verdict = Signal(VmError)
        busy = Signal()
        control_failed = Signal()
        host_failed = Signal()

        starting = Signal()
        m.d.sync += starting.eq(self.checks.start & ~busy & ~starting)
        with m.If(starting):
            m.d.sync += [busy.eq(1), step.eq(0), control_failed.eq(0), host_failed.eq(0)]
        with m.Elif(busy):
            m.d.sync += step.eq(step + 1)

        # Issue the read of step k while testing step k-1. The port is read in every busy
        # cycle, also in the last two, whose data nobody tests: the read enable is a
        # register, which keeps the step decode off the cache arbiter's select.
        with m.Switch(step):
            for k, s in enumerate(STEPS):
                loc = LOCATION[FIELD_BY_NAME[s.field].encoding]
                if loc.storage != Storage.ON_DIE:
                    raise ValueError(f"entry check reads {s.field}, which is not on-die")
                with m.Case(k):
                    m.d.comb += self.cache.rd_slot.eq(loc.slot)
        m.d.comb += [self.cache.rd_en.eq(busy), self.cache.rd_entry.eq(self.checks.entry)]

        # The slot read for step k arrives at step k+1 and is tested, registered, at step k+2:
        # its word (the upper one for a 32-bit field there), and the facts about the upper
        # word that the 64-bit fields' checks ask for (_Wide.fact).
        upper_half = Signal()  # the field whose slot arrives now is in bits 63:32
        with m.Switch(step):
            for k, s in enumerate(STEPS):
                if LOCATION[FIELD_BY_NAME[s.field].encoding].half:
                    with m.Case(k + 1):
                        m.d.comb += upper_half.eq(1)
        word = Signal(32)
        m.d.sync += word.eq(Mux(upper_half, self.cache.rd_data[32:], self.cache.rd_data[:32]))
        facts = {}  # key -> (register, test); registered every cycle (below, outside the step cases)

        def fact(key, test):
            if key not in facts:
                facts[key] = (Signal(name=f"upper_fact{len(facts)}"), test)
            return facts[key][0]

        with m.If(busy):
            with m.Switch(step):
                for k, s in enumerate(STEPS):
                    field = FIELD_BY_NAME[s.field]
                    loc = LOCATION[field.encoding]
                    if loc.words == 2:
                        v = _Wide(word, fact)
                    else:
                        v = Signal(64, name=f"v{k}")
                        m.d.comb += v.eq(word[:16] if field.width == FieldWidth.W16 else word)
                    with m.Case(k + 2):
                        if s.load is not None:
                            m.d.sync += s.load(regs, v)
                        if s.fails is not None:
                            flag = control_failed if s.error == CONTROL else host_failed
                            skipped = self.checks.skip_execution if s.execution else Const(0, 1)
                            with m.If(s.fails(regs, v) & ~skipped):
                                m.d.sync += flag.eq(1)
                with m.Case(n + 2):
                    # The verdict is registered: what follows it (the entry, the response) starts at a flip-flop.
                    control, host = _final_checks(regs, self.efer_lma, self.in_smm, self.checks.skip_execution)
                    with m.If(control_failed | control):
                        m.d.sync += verdict.eq(CONTROL)
                    with m.Elif(host_failed | host):
                        m.d.sync += verdict.eq(HOST)
                    with m.Else():
                        m.d.sync += verdict.eq(VmError.NONE)
                with m.Case(n + 3):
                    m.d.comb += [self.checks.done.eq(1), self.checks.error.eq(verdict)]
                    m.d.sync += busy.eq(0)
        for reg, test in facts.values():
            m.d.sync += reg.eq(test(self.cache.rd_data[32:]))
        return m
