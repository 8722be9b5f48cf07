"""VMXON, VMXOFF, VMPTRLD, VMPTRST and VMCLEAR: the VMXON region, the current-VMCS pointer, which VMCSs are cached.

# Ref: Intel SDM vol. 3C, 30.3 "VMX instructions" (VMXON, VMXOFF, VMPTRLD,
# VMPTRST, VMCLEAR), 24.1 "Overview" and 24.11.1 (the launch state; VMCLEAR
# makes an active VMCS's data consistent in memory), 24.2 (the revision
# identifier); docs/semantics.md is the contract (the cache's replacement
# policy, VMXOFF's write-back).
"""

from collections.abc import Mapping
from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from ..arch.errors import VmError
from ..arch.layout import LAUNCH_LAUNCHED, LAUNCH_VMXOFF, LAUNCH_WORD, REVISION_WORD
from ..arch.msrs import VMCS_REVISION_ID
from ..arch.ops import Op, Status
from ..vmcs.cache_port import CachePortSignature
from ..vmcs.region import RegionCommand, RegionCommandSignature
from ..vmcs.vmcs_cache import PAGE_BITS, TagPortSignature
from .operation import OperationSignature, finish, vmfail
from .predicates import bad_address

__all__ = ["VmcsPointers", "SwitchSignature"]


class _PageSource(enum.Enum, shape=1):
    """The region a region command works on."""

    OPERAND = 0  # the page the address operand names (or the switch's)
    TARGET = 1  # the page of cache entry ``target``


class SwitchSignature(wiring.Signature):
    """Another block makes a VMCS current, as VMPTRLD does after its checks (the dual-monitor treatment's SMM
    VM exits and returns from SMM, SDM 34.15.2.2, 34.15.4.8).

    Members
    -------
    start : Out(1)
        Make the VMCS at ``page`` current, or none with ``none`` (held until ``done``).
    page : Out(PAGE_BITS)
    none : Out(1)
    done : In(1)
    """

    def __init__(self):
        super().__init__({"start": Out(1), "page": Out(PAGE_BITS), "none": Out(1), "done": In(1)})

    def __eq__(self, other):
        return isinstance(other, SwitchSignature)

    def __repr__(self):
        return "SwitchSignature()"


class VmcsPointers(wiring.Component):
    """The VMX instructions that move VMCS pointers, and the sequences that keep the cache and memory consistent.

    VMXON reads the VMXON region's revision identifier; VMPTRLD reads the
    VMCS's, then makes it current: from the cache when it is there, else
    through a fill of its on-die image into the victim entry (after a
    write-back if the victim is dirty); VMCLEAR writes a cached, dirty VMCS
    back, then its launch state (clear) to its region, and drops it from the
    cache; VMXOFF writes back every dirty entry and marks launched ones so
    that a VMRESUME after VMXOFF and VMXON fails. This block owns the cache's
    tags (``tag_port``): the other blocks mark the current VMCS dirty through
    ``mark_dirty``.

    Latency, from ``op.start`` to ``op.done`` (``latency``, by operation
    class), with the region port's latencies W (a word), F (a fill) and B (a
    write-back): VMPTRST 0; VMXON W (the revision identifier); VMPTRLD of a
    cached VMCS W, of another W + F, or W + B + F when the victim is dirty;
    VMCLEAR W (the launch word), or B + W for a cached, dirty VMCS; VMXOFF 2
    cycles a cache entry, plus B for each dirty entry and W for each launched
    clean one (``vmxoff_latency``). An outcome decided by the checks alone
    (VMfail, VMfailInvalid) takes 0.

    Parameters
    ----------
    entries : int
        VMCSs the cache holds.
    region_latency : mapping of RegionCommand to int
        ``RegionPort.latency``, from which this block's latencies follow.

    Members
    -------
    op : In(OperationSignature())
        VMXON, VMXOFF, VMPTRLD, VMPTRST, VMCLEAR.
    region : Out(RegionCommandSignature(entries))
    tag_port : Out(TagPortSignature(entries))
    mark_dirty : In(1)
        The current VMCS was written (a VMWRITE, a VMfailValid error number): mark it dirty.
    set_launched : In(1)
        A VMLAUNCH entered the guest: the current VMCS's launch state becomes launched (and dirty).
    in_vmx : Out(1)
        In VMX operation (after VMXON, before VMXOFF).
    current_valid : Out(1)
        There is a current VMCS.
    current : Out(entry_bits)
        The cache entry of the current VMCS.
    current_page : Out(PAGE_BITS)
        The page of the current VMCS's region.
    current_launch : Out(2)
        The current VMCS's launch state (``Tag.launch``).
    vmxon_page : Out(PAGE_BITS)
        The VMXON pointer's page.
    dual_active : In(1)
        The dual-monitor treatment is active: VMXOFF fails with error 23 (SDM 30.3 VMXOFF).
    probe_page : In(PAGE_BITS)
    probe_hit, probe_entry, probe_launch : Out
        Whether a VMCS region is cached (combinational, no change to the replacement order), in which entry,
        with which launch state: the dual-monitor block's look at the executive VMCS (34.15.4.1-2).
    switch : In(SwitchSignature())
        Make a VMCS current for another block, between operations of this one: VMPTRLD's sequence after
        its revision check (a cached VMCS in 1 cycle after the lookup's, else a fill, after a write-back
        when the victim is dirty).
    """

    def __init__(self, entries: int, *, region_latency: Mapping[RegionCommand, int]):
        self.entries = entries
        self.region_latency = dict(region_latency)
        entry_bits = CachePortSignature(entries).entry_bits
        super().__init__(
            {
                "op": In(OperationSignature()),
                "region": Out(RegionCommandSignature(entries)),
                "tag_port": Out(TagPortSignature(entries)),
                "mark_dirty": In(1),
                "set_launched": In(1),
                "in_vmx": Out(1),
                "current_valid": Out(1),
                "current": Out(entry_bits),
                "current_page": Out(PAGE_BITS),
                "current_launch": Out(2),
                "vmxon_page": Out(PAGE_BITS),
                "dual_active": In(1),
                "switch": In(SwitchSignature()),
                "probe_page": In(PAGE_BITS),
                "probe_hit": Out(1),
                "probe_entry": Out(entry_bits),
                "probe_launch": Out(2),
            }
        )

    def vmxoff_latency(self, *, dirty: int = 0, launched_clean: int = 0) -> int:
        """VMXOFF's latency with ``dirty`` dirty entries and ``launched_clean`` launched clean ones."""
        if dirty + launched_clean > self.entries:
            raise ValueError(f"A cache of {self.entries} entries has no {dirty + launched_clean} such entries")
        word, write_back = self.region_latency[RegionCommand.WRITE_WORD], self.region_latency[RegionCommand.WRITE_BACK]
        return 2 * self.entries + dirty * write_back + launched_clean * word

    @property
    def latency(self) -> dict[str, int]:
        word = self.region_latency[RegionCommand.READ_WORD]
        write_word = self.region_latency[RegionCommand.WRITE_WORD]
        fill = self.region_latency[RegionCommand.FILL]
        write_back = self.region_latency[RegionCommand.WRITE_BACK]
        return {
            "VMXON": word,
            "VMPTRLD (cached)": word,
            "VMPTRLD (not cached: fill)": word + fill,
            "VMPTRLD (not cached: write-back + fill)": word + write_back + fill,
            "VMPTRST": 0,
            "VMCLEAR (not cached)": write_word,
            "VMCLEAR (cached, clean)": write_word,
            "VMCLEAR (cached, dirty: write-back)": write_back + write_word,
            "VMXOFF (nothing to write back)": self.vmxoff_latency(),
        }

    def elaborate(self, platform):
        m = Module()
        op = self.op
        tags = self.tag_port
        region = self.region
        value = op.operation.value
        switch = self.switch
        # The last sequence was a switch's, for ``switch_page``: it holds until the next request is accepted, since
        # a fill's install takes the page a cycle after the fill is done (TagPortSignature).
        switching = Signal()
        switch_page = Signal(PAGE_BITS)
        page = Mux(switching, switch_page, value[12:32])  # the region an address operand (or a switch) names

        in_vmx = self.in_vmx
        vmxon_page = self.vmxon_page
        current_valid = self.current_valid
        current = Signal.like(self.current)
        current_page = Signal(PAGE_BITS)  # the current tag's page, kept apart for VMPTRST
        target = Signal.like(self.current)  # the cache entry a multi-cycle sequence works on
        target_hit = Signal()
        target_tag = tags.tags[target]
        m.d.comb += [
            self.current.eq(current),
            self.current_page.eq(current_page),
            self.current_launch.eq(tags.tags[current].launch),
        ]

        for i in range(self.entries):
            with m.If(tags.tags[i].valid & (tags.tags[i].page == self.probe_page)):
                m.d.comb += [self.probe_hit.eq(1), self.probe_entry.eq(i), self.probe_launch.eq(tags.tags[i].launch)]

        # Facts about the address operand, and the cache's answer for the region it names,
        # registered with the request (a tag command of the previous operation has taken
        # effect by then).
        value_bad_address = Signal()
        value_is_vmxon_pointer = Signal()
        lookup_hit = Signal()
        lookup_entry = Signal.like(target)
        lookup_victim = Signal.like(target)
        m.d.comb += tags.lookup_page.eq(Mux(switch.start, switch.page, op.request.value[12:32]))
        with m.If(op.accept):
            m.d.sync += switching.eq(0)
        with m.If(op.accept | switch.start):
            m.d.sync += [
                value_bad_address.eq(bad_address(op.request.value)),
                value_is_vmxon_pointer.eq(op.request.value[12:32] == vmxon_page),
                lookup_hit.eq(tags.hit),
                lookup_entry.eq(tags.hit_entry),
                lookup_victim.eq(tags.victim),
            ]

        # Tag commands act on the target, unless another block marks the current VMCS dirty or launched.
        m.d.comb += [
            tags.cmd_entry.eq(Mux(self.mark_dirty | self.set_launched, current, target)),
            tags.mark_dirty.eq(self.mark_dirty),
            tags.set_launch.eq(self.set_launched),
            tags.launch.eq(LAUNCH_LAUNCHED),
            # A fill installs the region the operand names, with the launch state it read.
            tags.install_page.eq(page),
            tags.install_launch.eq(region.fill_launch),
        ]

        # Region commands are registered: ``issue`` sets them on the way into the state
        # that waits for ``region.done``, which keeps the port's decoding off the paths that
        # follow ``done``. The page is not copied: a register selects it from the operand,
        # which holds until the response, or the target's tag.
        bus_start = Signal()
        bus_cmd = Signal(RegionCommand)
        bus_page_src = Signal(_PageSource)
        bus_word = Signal.like(region.word)
        bus_launch = Signal(2)
        m.d.comb += [
            region.start.eq(bus_start),
            region.cmd.eq(bus_cmd),
            region.page.eq(Mux(bus_page_src == _PageSource.OPERAND, page, target_tag.page)),
            region.word.eq(bus_word),
            region.wdata.eq(bus_launch),  # WRITE_WORD of the launch word, and WRITE_BACK's launch word
            region.entry.eq(target),
        ]
        with m.If(region.done):
            m.d.sync += bus_start.eq(0)

        def issue(cmd, wait_state, *, page_, word=0, launch=0):
            """Start region command ``cmd`` on the region ``page_`` (a ``_PageSource``) and go to ``wait_state``."""
            m.d.sync += [
                bus_start.eq(1),
                bus_cmd.eq(cmd),
                bus_page_src.eq(page_),
                bus_word.eq(word),
                bus_launch.eq(launch),
            ]
            m.next = wait_state

        def revision_ok(word):
            return (word[:31] == VMCS_REVISION_ID) & ~word[31]

        def fail(error):
            vmfail(m, op, error, current_valid=current_valid)

        def loaded():
            """The VMCS is current: VMPTRLD succeeds, or the switch is done."""
            with m.If(switching):
                m.d.comb += switch.done.eq(1)
            with m.Else():
                finish(m, op, Status.SUCCEED)

        def load():
            """Make the VMCS at ``page`` current (cache entry ``target``; ``target_hit``: it is cached there)."""
            with m.If(target_hit):
                m.d.comb += tags.touch.eq(1)
                m.d.sync += [current_valid.eq(1), current.eq(target), current_page.eq(page)]
                loaded()
                m.next = "IDLE"
            with m.Elif(target_tag.valid & target_tag.dirty):
                issue(
                    RegionCommand.WRITE_BACK, "VMPTRLD_WRITE_BACK", page_=_PageSource.TARGET, launch=target_tag.launch
                )
            with m.Else():
                issue(RegionCommand.FILL, "VMPTRLD_FILL", page_=_PageSource.OPERAND)

        # The states' shared signals and steps, for the methods that hold them (one per mechanism).
        # fmt: off
        s = SimpleNamespace(
            m=m, op=op, tags=tags, region=region, switch=switch, switching=switching, switch_page=switch_page,
            page=page, in_vmx=in_vmx, vmxon_page=vmxon_page, current_valid=current_valid, current=current,
            current_page=current_page, target=target, target_hit=target_hit, target_tag=target_tag,
            value_bad_address=value_bad_address, value_is_vmxon_pointer=value_is_vmxon_pointer, lookup_hit=lookup_hit,
            lookup_entry=lookup_entry, lookup_victim=lookup_victim, issue=issue, revision_ok=revision_ok, fail=fail,
            loaded=loaded, load=load,
        )
        # fmt: on
        with m.FSM(name="pointers"):
            # In this order (the states' encoding follows it): IDLE, the loads, VMCLEAR's, VMXOFF's.
            self._idle_state(s)
            self._load_states(s)
            self._vmclear_states(s)
            self._vmxoff_states(s)
        return m

    def _idle_state(self, s: SimpleNamespace) -> None:
        """IDLE: a switch starts, or an operation's checks and its first region command."""
        m, op, tags, switch, switching = s.m, s.op, s.tags, s.switch, s.switching
        switch_page, in_vmx, current_valid, current_page = s.switch_page, s.in_vmx, s.current_valid, s.current_page
        target, target_hit, value_bad_address = s.target, s.target_hit, s.value_bad_address
        value_is_vmxon_pointer, lookup_hit, lookup_entry = s.value_is_vmxon_pointer, s.lookup_hit, s.lookup_entry
        lookup_victim, issue, fail = s.lookup_victim, s.issue, s.fail
        with m.State("IDLE"):
            with m.If(switch.start & switch.none):
                m.d.sync += current_valid.eq(0)
                m.d.comb += switch.done.eq(1)
            with m.Elif(switch.start):
                m.d.sync += [switching.eq(1), switch_page.eq(switch.page)]
                m.next = "SWITCH"
            with m.If(op.start):
                with m.Switch(op.operation.op):
                    with m.Case(Op.VMXON):
                        # #UD and #GP were the dispatcher's.
                        with m.If(in_vmx):
                            fail(VmError.VMXON_IN_ROOT)
                        with m.Elif(value_bad_address):
                            finish(m, op, Status.FAIL_INVALID)
                        with m.Else():
                            issue(
                                RegionCommand.READ_WORD,
                                "VMXON_REVISION",
                                page_=_PageSource.OPERAND,
                                word=REVISION_WORD,
                            )

                    with m.Case(Op.VMXOFF):
                        with m.If(self.dual_active):
                            fail(VmError.VMXOFF_UNDER_DUAL_MONITOR)
                        with m.Else():
                            m.d.sync += target.eq(0)
                            m.next = "VMXOFF_SCAN"

                    with m.Case(Op.VMPTRLD):
                        with m.If(value_bad_address):
                            fail(VmError.VMPTRLD_INVALID_ADDRESS)
                        with m.Elif(value_is_vmxon_pointer):
                            fail(VmError.VMPTRLD_VMXON_POINTER)
                        with m.Else():
                            # Look the region up now; the revision read decides what to do with it.
                            m.d.sync += [
                                target.eq(Mux(lookup_hit, lookup_entry, lookup_victim)),
                                target_hit.eq(lookup_hit),
                            ]
                            issue(
                                RegionCommand.READ_WORD,
                                "VMPTRLD_REVISION",
                                page_=_PageSource.OPERAND,
                                word=REVISION_WORD,
                            )

                    with m.Case(Op.VMPTRST):
                        pointer = Mux(current_valid, Cat(Const(0, 12), current_page), 2**64 - 1)
                        finish(m, op, Status.SUCCEED, result=pointer)

                    with m.Case(Op.VMCLEAR):
                        with m.If(value_bad_address):
                            fail(VmError.VMCLEAR_INVALID_ADDRESS)
                        with m.Elif(value_is_vmxon_pointer):
                            fail(VmError.VMCLEAR_VMXON_POINTER)
                        with m.Else():
                            m.d.sync += [target.eq(lookup_entry), target_hit.eq(lookup_hit)]
                            hit_tag = tags.tags[lookup_entry]
                            with m.If(lookup_hit & hit_tag.dirty):
                                issue(
                                    RegionCommand.WRITE_BACK,
                                    "VMCLEAR_WRITE_BACK",
                                    page_=_PageSource.TARGET,
                                    launch=hit_tag.launch,
                                )
                            with m.Else():
                                issue(
                                    RegionCommand.WRITE_WORD,
                                    "VMCLEAR_LAUNCH",
                                    page_=_PageSource.OPERAND,
                                    word=LAUNCH_WORD,
                                )

    def _load_states(self, s: SimpleNamespace) -> None:
        """VMXON's and VMPTRLD's revision reads; the switch's lookup; the write-back and fill that make a VMCS
        current."""
        m, op, tags, region, page, in_vmx = s.m, s.op, s.tags, s.region, s.page, s.in_vmx
        vmxon_page, current_valid, current, current_page = s.vmxon_page, s.current_valid, s.current, s.current_page
        target, target_hit, lookup_hit, lookup_entry = s.target, s.target_hit, s.lookup_hit, s.lookup_entry
        lookup_victim, issue, revision_ok, fail, loaded = s.lookup_victim, s.issue, s.revision_ok, s.fail, s.loaded
        load = s.load
        with m.State("VMXON_REVISION"):
            with m.If(region.done):
                with m.If(revision_ok(region.rdata)):
                    m.d.sync += [in_vmx.eq(1), vmxon_page.eq(page), current_valid.eq(0)]
                    finish(m, op, Status.SUCCEED)
                with m.Else():
                    finish(m, op, Status.FAIL_INVALID)
                m.next = "IDLE"

        with m.State("VMPTRLD_REVISION"):
            with m.If(region.done):
                with m.If(~revision_ok(region.rdata)):
                    fail(VmError.VMPTRLD_INCORRECT_REVISION)
                    m.next = "IDLE"
                with m.Else():
                    load()

        with m.State("SWITCH"):
            # The lookup of the switch's page is registered (as an operand's is at accept).
            m.d.sync += [target.eq(Mux(lookup_hit, lookup_entry, lookup_victim)), target_hit.eq(lookup_hit)]
            m.next = "SWITCH_LOAD"

        with m.State("SWITCH_LOAD"):
            load()

        with m.State("VMPTRLD_WRITE_BACK"):
            with m.If(region.done):
                m.d.comb += tags.mark_clean.eq(1)
                issue(RegionCommand.FILL, "VMPTRLD_FILL", page_=_PageSource.OPERAND)

        with m.State("VMPTRLD_FILL"):
            with m.If(region.done):
                m.d.comb += [tags.install.eq(1), tags.touch.eq(1)]
                m.d.sync += [current_valid.eq(1), current.eq(target), current_page.eq(page)]
                loaded()
                m.next = "IDLE"

    def _vmclear_states(self, s: SimpleNamespace) -> None:
        """VMCLEAR: the dirty entry written back, then the launch word; the entry invalidated."""
        m, op, tags, region, current_valid, current = s.m, s.op, s.tags, s.region, s.current_valid, s.current
        target, target_hit, issue = s.target, s.target_hit, s.issue
        with m.State("VMCLEAR_WRITE_BACK"):
            with m.If(region.done):
                m.d.comb += tags.mark_clean.eq(1)
                issue(RegionCommand.WRITE_WORD, "VMCLEAR_LAUNCH", page_=_PageSource.OPERAND, word=LAUNCH_WORD)

        with m.State("VMCLEAR_LAUNCH"):
            with m.If(region.done):
                with m.If(target_hit):
                    m.d.comb += tags.invalidate.eq(1)
                    with m.If(current == target):
                        m.d.sync += current_valid.eq(0)
                finish(m, op, Status.SUCCEED)
                m.next = "IDLE"

    def _vmxoff_states(self, s: SimpleNamespace) -> None:
        """VMXOFF: each entry written back (or its launch word marked), then every tag invalidated."""
        m, op, tags, region, in_vmx, current_valid = s.m, s.op, s.tags, s.region, s.in_vmx, s.current_valid
        target, target_tag, issue = s.target, s.target_tag, s.issue
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
            with m.If(target == self.entries - 1):
                m.d.comb += tags.invalidate_all.eq(1)
                m.d.sync += [in_vmx.eq(0), current_valid.eq(0)]
                finish(m, op, Status.SUCCEED)
                m.next = "IDLE"
            with m.Else():
                m.d.sync += target.eq(target + 1)
                m.next = "VMXOFF_SCAN"
