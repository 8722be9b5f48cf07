"""The exit decision: what each request does in VMX non-root operation, and the guest events' own behaviour.

# Ref: Intel SDM vol. 3C, 25.1 "Instructions that cause VM exits" (25.1.1 #UD
# and privilege faults before the exit, 25.1.2 unconditional exits, 25.1.3
# conditional ones: HLT, RDTSC, I/O with 24.6.4 the I/O bitmaps, RDMSR/WRMSR
# with 24.6.9 the MSR bitmaps, MOV CR with 24.6.6 masks, read shadows and CR3
# targets), 25.2 "Other causes of VM exits" (exceptions and the exception
# bitmap, external interrupts, NMIs, the windows, 25.5.1 the VMX-preemption
# timer), 25.3 (TSC offsetting, read shadows), 27.2 (the exit information);
# docs/semantics.md "Guest events". The model is sim/model/guest_events.py.

In VMX non-root operation the dispatcher hands every request here. This block
decides: a VM exit (it asks ``Transitions`` for one and answers with its
outcome), an answer of its own (IN without an exit, RDTSC, a shadowed CR read,
a fault delivered in the guest), or ``pass_on``: the request is carried out as
in root operation by its own block (RDMSR/WRMSR, GET/SET), with ``result`` as
its value when ``result_en`` is set (a MOV to CR0/CR4 keeps its masked bits),
and with ``raise_on_fault`` the dispatcher brings back a fault that block
answers (``raise_fault``, ``fault_vector``) for the exception bitmap to decide.
Outside non-root operation it carries out the guest-event requests themselves
(CPUID ... RUN), which are the processor's own there.
"""

from collections.abc import Mapping

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.controls import EXIT, PIN, PROC
from ..arch.errors import ExitReason
from ..arch.events import (
    EXCEPTIONS_WITH_ERROR_CODE,
    FAULT_VECTORS,
    CrAccess,
    CrQualification,
    ExceptionVector,
    InterruptionInfo,
    InterruptionType,
    IoQualification,
)
from ..arch.msrs import VMX_MISC
from ..arch.ops import Op, Status
from ..arch.state import element_id
from ..values import struct_value
from ..vmcs.cache_port import CachePortSignature
from ..vmcs.region import RegionCommand, RegionCommandSignature
from .entry_checks import Controls
from .machine_state import Mode, StatePortSignature
from .operation import OperationSignature, finish
from .port import GuestTimeSignature
from .transition_steps import FieldSlot
from .transitions import ExitCause, ExitSignature

__all__ = ["GuestEvents", "EVENT_OPS"]

#: The guest-event requests (REPLAY.md "Guest events"): this block carries them out in every mode.
EVENT_OPS = (Op.CPUID, Op.HLT, Op.RDTSC, Op.IN, Op.OUT, Op.EXCEPTION, Op.INTERRUPT, Op.NMI, Op.RUN)

_VMX_EXITS = {
    Op.VMCALL: ExitReason.VMCALL,
    Op.VMCLEAR: ExitReason.VMCLEAR,
    Op.VMLAUNCH: ExitReason.VMLAUNCH,
    Op.VMPTRLD: ExitReason.VMPTRLD,
    Op.VMPTRST: ExitReason.VMPTRST,
    Op.VMREAD: ExitReason.VMREAD,
    Op.VMRESUME: ExitReason.VMRESUME,
    Op.VMWRITE: ExitReason.VMWRITE,
    Op.VMXOFF: ExitReason.VMXOFF,
    Op.VMXON: ExitReason.VMXON,
}
_WITH_INSTRUCTION_INFO = (Op.VMCLEAR, Op.VMPTRLD, Op.VMPTRST, Op.VMREAD, Op.VMWRITE, Op.VMXON)
_CR0, _CR3, _CR4 = element_id("cr0"), element_id("cr3"), element_id("cr4")
_RIP, _ACTIVITY, _INTERRUPTIBILITY = element_id("rip"), element_id("activity"), element_id("interruptibility")
_FIELDS = {
    name: FieldSlot.of(name)
    for name in (
        "CR0_GUEST_HOST_MASK",
        "CR0_READ_SHADOW",
        "CR4_GUEST_HOST_MASK",
        "CR4_READ_SHADOW",
        "CR3_TARGET_COUNT",
        "CR3_TARGET_VALUE0",
        "CR3_TARGET_VALUE1",
        "CR3_TARGET_VALUE2",
        "CR3_TARGET_VALUE3",
        "TSC_OFFSET",
        "MSR_BITMAP",
        "IO_BITMAP_A",
        "IO_BITMAP_B",
        "PAGE_FAULT_ERROR_CODE_MASK",
        "PAGE_FAULT_ERROR_CODE_MATCH",
    )
}


def _interruption_info(vector, kind, has_error_code):
    """A valid interruption information (table 24-15)."""
    return struct_value(InterruptionInfo, vector=vector, type=kind, deliver_error_code=has_error_code, valid=1)


def _pin(controls, name):
    return controls.pin[PIN.bits[name]]


def _proc(controls, name):
    return controls.proc[PROC.bits[name]]


class GuestEvents(wiring.Component):
    """Decides VM exits for the requests of a guest, and carries out the guest-event requests (module docstring).

    Latency (``latency``), from ``op.start`` to ``exit.start``, by what the
    decision reads (the exit itself then takes ``Transitions.latency["exited"]``):
    nothing (the request and the controls alone) 1; the MSR bitmap's field and
    word 2 + W; the I/O bitmap's field and word for a one-byte access 3 + W
    (2 + W more for each further port); a CR's guest/host mask and read shadow
    3; RUN's end of STI and MOV SS blocking before the preemption timer 3. W is
    the region port's word read.

    Members
    -------
    op : In(OperationSignature())
    exit : Out(ExitSignature())
    cache : Out(CachePortSignature(entries))
    region : Out(RegionCommandSignature(entries))
    state : Out(StatePortSignature())
    controls : In(Controls)
    mode : In(Mode)
    rflags : In(64)
    non_root : In(1)
    in_smm : In(1)
        A guest in SMM (entered with "entry to SMM"): its RSM exits (reason 17).
    current : In(entry_bits)
    ud : In(1)
        The request is a VMX instruction that raises #UD here (the dispatcher's check).
    cpl_nonzero : In(1)
    tsc : In(64)
        The time-stamp counter (RDTSC's; the guest's time is counted from it, see ``guest_time``).
    guest_time : Out(GuestTimeSignature())
        When a core should send RUN, and its value. RUN counts its cycles from the TSC the entry or the
        last RUN counted up to (the TSC when the guest was entered, then plus each RUN's value), so that
        the RUNs of a core that sends the TSC's difference count every tick once, and a test bench that
        advances the TSC by each RUN's value counts as the model does.
    timer : In(32)
    timer_write : Out(1)
    timer_value : Out(32)
    pass_on : Out(1)
        With ``op.done``: carry the request out in its own block.
    raise_on_fault : Out(1)
        With ``pass_on``: a fault of that block comes back here (``raise_fault``).
    raise_fault : In(1)
        With ``op.start``: the operation faulted with ``fault_vector``; the exception bitmap decides.
    fault_vector : In(8)
    """

    def __init__(self, entries: int, *, region_latency: Mapping[RegionCommand, int], guests: bool = True):
        self.region_latency = dict(region_latency)
        #: False: a unit that never enters a guest (``VmxUnit(guests=False)``, the SoC's): every request
        #: this block carries out answers #UD (a fault, nothing changed); the SoC's core issues none.
        self.guests = guests
        cache = CachePortSignature(entries)
        super().__init__(
            {
                "op": In(OperationSignature()),
                "exit": Out(ExitSignature()),
                "cache": Out(cache),
                "region": Out(RegionCommandSignature(entries)),
                "state": Out(StatePortSignature()),
                "controls": In(Controls),
                "mode": In(Mode),
                "rflags": In(64),
                "non_root": In(1),
                "in_smm": In(1),
                "current": In(cache.entry_bits),
                "ud": In(1),
                "cpl_nonzero": In(1),
                "tsc": In(64),
                "guest_time": Out(GuestTimeSignature()),
                "timer": In(32),
                "timer_write": Out(1),
                "timer_value": Out(32),
                "pass_on": Out(1),
                "raise_on_fault": Out(1),
                "raise_fault": In(1),
                "fault_vector": In(8),
            }
        )

    @property
    def latency(self) -> dict[str, int]:
        word = self.region_latency[RegionCommand.READ_WORD]
        return {
            "exit": 1,
            "MSR bitmap": 2 + word,
            "I/O bitmap": 3 + word,
            "CR mask and shadow": 3,
            "preemption timer": 3,
        }

    def elaborate(self, platform):
        m = Module()
        op = self.op
        request = op.operation
        controls = self.controls
        mode = self.mode
        cache = self.cache
        region = self.region
        state = self.state
        exit_port = self.exit

        m.d.comb += [
            cache.rd_entry.eq(self.current),
            cache.wr_entry.eq(self.current),
            region.entry.eq(self.current),
            region.cmd.eq(RegionCommand.READ_WORD),
        ]

        # The exit under construction.
        cause = Signal(ExitCause)
        m.d.comb += exit_port.cause.eq(cause)
        field = cache.rd_data  # the slot read in the previous cycle
        mask = Signal(64)  # CR guest/host mask, the #PF error-code mask, or the TSC offset
        shadow = Signal(64)  # CR read shadow, or the #PF error-code match
        value = request.value
        cr = Signal(4)
        port = Signal(16)  # I/O: the port being looked up
        ports_left = Signal(3)
        io_exit = Signal()
        bitmap_bit = Signal(5)
        target = Signal(range(5))

        def read(slot: FieldSlot):
            m.d.comb += [cache.rd_slot.eq(slot.slot), cache.rd_en.eq(1)]

        def field_value(slot: FieldSlot):
            if slot.words == 2:
                return field
            return field.word_select(slot.half, 32)[: slot.bits]

        def exit_now(reason, *, qualification=0, intr_info=0, error_code=None, instruction=False, **extra):
            m.d.sync += [
                cause.eq(0),
                cause.reason.eq(reason),
                cause.qualification.eq(qualification),
                cause.intr_info.eq(intr_info),
                cause.instruction.eq(instruction),
                cause.length.eq(request.length),
                cause.length_valid.eq(instruction),
            ]
            if error_code is not None:
                m.d.sync += [cause.error_code.eq(error_code), cause.error_code_valid.eq(1)]
            for key, v in extra.items():
                m.d.sync += getattr(cause, key).eq(v)
            m.next = "EXIT"

        def exception_exit(vector, error_code, *, length_valid=0):
            software = vector.matches(ExceptionVector.BP, ExceptionVector.OF)
            kind = Mux(software, InterruptionType.SOFTWARE_EXCEPTION, InterruptionType.HARDWARE_EXCEPTION)
            has_code = vector.matches(*EXCEPTIONS_WITH_ERROR_CODE)
            info = _interruption_info(vector, kind, has_code)
            exit_now(
                ExitReason.EXCEPTION_NMI,
                intr_info=info,
                fault=vector.matches(*FAULT_VECTORS),
            )
            m.d.sync += [
                cause.error_code.eq(error_code),
                cause.error_code_valid.eq(has_code),
                cause.length_valid.eq(length_valid & software),
            ]

        def raise_(vector):
            """A fault of the guest's instruction: an exit if the exception bitmap's bit is 1, else delivered."""
            vector = Const(vector, 8)
            with m.If(controls.exception_bitmap.bit_select(vector, 1)):
                exception_exit(vector, 0)
            with m.Else():
                finish(m, op, Status.FAULT, vector=vector)

        def pass_on(*, raise_on_fault, new_value=None):
            m.d.comb += [op.done.eq(1), self.pass_on.eq(1), self.raise_on_fault.eq(raise_on_fault)]
            if new_value is not None:
                m.d.comb += [op.result.eq(new_value), op.result_en.eq(0b11)]

        # -- RUN: the TSC ticks of the preemption timer (25.5.1) ----------------------------------
        rate = VMX_MISC.preemption_timer_rate
        counted = Signal(64)  # the TSC up to which the guest's time is counted (``guest_time``)
        run_end = Signal(65)
        ticks = Signal(65 - rate)
        m.d.comb += [run_end.eq(counted + value), ticks.eq(run_end[rate:] - counted[rate:])]
        timer_active = _pin(controls, "ACTIVATE_PREEMPTION_TIMER")
        nmi_window = _proc(controls, "NMI_WINDOW_EXITING") & ~mode.nmi_blocking
        # The interrupt window with RFLAGS.IF = 1; open once blocking by STI ends (a RUN ends it).
        interrupt_window_if = _proc(controls, "INTR_WINDOW_EXITING") & self.rflags[9]
        interrupt_window = interrupt_window_if & ~mode.sti_blocking
        blocked_by_movss = mode.movss_blocking

        if not self.guests:
            # The SoC's core issues no guest-event request: each answers #UD, and the iCE40 keeps the room.
            with m.If(op.start):
                finish(m, op, Status.FAULT, vector=ExceptionVector.UD)
            return m

        self._guest_time(m, counted, timer_due=timer_active, window_due=interrupt_window_if | nmi_window)

        with m.FSM(name="guest_events"):
            with m.State("IDLE"):
                with m.If(op.start & self.raise_fault):
                    vector = self.fault_vector
                    with m.If(controls.exception_bitmap.bit_select(vector, 1)):
                        exception_exit(vector, 0)
                    with m.Else():
                        finish(m, op, Status.FAULT, vector=vector)
                with m.Elif(op.start & ~self.non_root):
                    self._root(m, op, request, mode, state)
                with m.Elif(op.start):
                    with m.Switch(request.op):
                        with m.Case(*_VMX_EXITS):
                            with m.If(self.ud):
                                raise_(ExceptionVector.UD)
                            with m.Else():
                                reason = Signal(ExitReason)
                                with m.Switch(request.op):
                                    for vmx_op, exit_reason in _VMX_EXITS.items():
                                        with m.Case(vmx_op):
                                            m.d.comb += reason.eq(exit_reason)
                                info_valid = request.op.as_value().matches(*_WITH_INSTRUCTION_INFO)
                                exit_now(reason, instruction=True, info_valid=info_valid)

                        with m.Case(Op.RDMSR, Op.WRMSR):
                            write = request.op == Op.WRMSR
                            number = request.index[:32]
                            low_range = number[13:] == 0
                            high_range = number[13:] == 0xC000_0000 >> 13
                            with m.If(self.cpl_nonzero):
                                raise_(ExceptionVector.GP)
                            with m.Elif(~_proc(controls, "USE_MSR_BITMAPS") | ~(low_range | high_range)):
                                exit_now(Mux(write, ExitReason.WRMSR, ExitReason.RDMSR), instruction=True)
                            with m.Else():
                                read(_FIELDS["MSR_BITMAP"])
                                m.next = "MSR_BITMAP"

                        with m.Case(Op.GET, Op.SET):
                            is_cr = request.index.matches(_CR0, _CR3, _CR4)
                            m.d.sync += cr.eq(Mux(request.index == _CR0, 0, Mux(request.index == _CR3, 3, 4)))
                            with m.If(~is_cr):
                                pass_on(raise_on_fault=0)
                            with m.Elif(request.index == _CR3):
                                with m.If(request.op == Op.GET):
                                    with m.If(_proc(controls, "CR3_STORE_EXITING")):
                                        exit_now(
                                            ExitReason.CR_ACCESS,
                                            qualification=self._cr_qualification(m, 3, CrAccess.MOV_FROM_CR, request),
                                            instruction=True,
                                        )
                                    with m.Else():
                                        pass_on(raise_on_fault=0)
                                with m.Elif(_proc(controls, "CR3_LOAD_EXITING")):
                                    read(_FIELDS["CR3_TARGET_COUNT"])
                                    m.d.sync += target.eq(0)
                                    m.next = "CR3_TARGETS"
                                with m.Else():
                                    pass_on(raise_on_fault=1)
                            with m.Else():
                                with m.If(request.index == _CR0):
                                    read(_FIELDS["CR0_GUEST_HOST_MASK"])
                                with m.Else():
                                    read(_FIELDS["CR4_GUEST_HOST_MASK"])
                                m.next = "CR_MASK"

                        with m.Case(Op.CPUID):
                            exit_now(ExitReason.CPUID, instruction=True)

                        with m.Case(Op.HLT):
                            with m.If(self.cpl_nonzero):
                                raise_(ExceptionVector.GP)
                            with m.Elif(_proc(controls, "HLT_EXITING")):
                                exit_now(ExitReason.HLT, instruction=True)
                            with m.Else():
                                m.d.comb += [state.rd_id.eq(_RIP), state.rd_en.eq(1)]
                                m.next = "HALT"

                        with m.Case(Op.RDTSC):
                            with m.If(mode.cr4_tsd & self.cpl_nonzero):
                                raise_(ExceptionVector.GP)
                            with m.Elif(_proc(controls, "RDTSC_EXITING")):
                                exit_now(ExitReason.RDTSC, instruction=True)
                            with m.Else():
                                read(_FIELDS["TSC_OFFSET"])
                                m.next = "TSC_OFFSET"

                        with m.Case(Op.IN, Op.OUT):
                            m.d.sync += [port.eq(request.index[:16]), ports_left.eq(request.io_size + 1), io_exit.eq(0)]
                            with m.If(_proc(controls, "USE_IO_BITMAPS")):
                                with m.If((request.index[:16] + request.io_size + 1) > 0x1_0000):
                                    self._io_exit(m, request, exit_now)  # wraps past FFFFH
                                with m.Else():
                                    m.next = "IO_BITMAP"
                            with m.Elif(_proc(controls, "UNCOND_IO_EXITING")):
                                self._io_exit(m, request, exit_now)
                            with m.Else():
                                self._io_answer(m, op, request)

                        with m.Case(Op.EXCEPTION):
                            vector = request.index[:8]
                            bit = controls.exception_bitmap.bit_select(vector, 1)
                            with m.If(vector == ExceptionVector.PF):
                                read(_FIELDS["PAGE_FAULT_ERROR_CODE_MASK"])
                                m.next = "PF_MASK"
                            with m.Elif(bit):
                                exception_exit(vector, value[:32], length_valid=1)
                            with m.Else():
                                finish(m, op, Status.OK)

                        with m.Case(Op.INTERRUPT):
                            exiting = _pin(controls, "EXT_INTR_EXITING") & ~mode.sti_blocking & ~blocked_by_movss
                            with m.If(exiting):
                                info = _interruption_info(request.index[:8], InterruptionType.EXTERNAL_INTERRUPT, 0)
                                ack = controls.exit[EXIT.bits["ACK_INTR_ON_EXIT"]]
                                exit_now(ExitReason.EXTERNAL_INTERRUPT, intr_info=Mux(ack, info, 0))
                            with m.Else():
                                finish(m, op, Status.OK)

                        with m.Case(Op.RSM):
                            # A guest entered with "entry to SMM": RSM exits (34.15.3); outside SMM RSM is #UD,
                            # an exception of the guest (REPLAY.md "SMM").
                            with m.If(self.in_smm):
                                exit_now(ExitReason.RSM, instruction=True)
                            with m.Else():
                                raise_(ExceptionVector.UD)
                        with m.Case(Op.NMI):
                            blocked = blocked_by_movss | (mode.nmi_blocking & ~_pin(controls, "VIRTUAL_NMIS"))
                            with m.If(_pin(controls, "NMI_EXITING") & ~blocked):
                                info = _interruption_info(Const(ExceptionVector.NMI, 8), InterruptionType.NMI, 0)
                                exit_now(ExitReason.EXCEPTION_NMI, intr_info=info, nmi=1)
                            with m.Else():
                                finish(m, op, Status.OK)

                        with m.Case(Op.RUN):
                            with m.If(value != 0):
                                # Blocking by STI and MOV SS lasts one instruction.
                                m.d.comb += [state.rd_id.eq(_INTERRUPTIBILITY), state.rd_en.eq(1)]
                                m.next = "UNBLOCK"
                            with m.Else():
                                m.next = "WINDOWS"

            with m.State("EXIT"):
                m.d.comb += exit_port.start.eq(1)
                with m.If(exit_port.done):
                    finish(m, op, exit_port.status, result=exit_port.value)
                    m.next = "IDLE"

            with m.State("MSR_BITMAP"):
                write = request.op == Op.WRMSR
                number = request.index[:32]
                bitmap = field_value(_FIELDS["MSR_BITMAP"])
                # The bitmap's quarter: read low 0, read high 0x400, write low 0x800, write high 0xC00 bytes.
                word = Cat(number[5:13], number[31], write)
                m.d.sync += [region.page.eq(bitmap[12:32]), region.word.eq(word), bitmap_bit.eq(number[:5])]
                m.next = "MSR_BIT"

            with m.State("MSR_BIT"):
                m.d.comb += region.start.eq(1)
                with m.If(region.done):
                    with m.If(region.rdata.bit_select(bitmap_bit, 1)):
                        write = request.op == Op.WRMSR
                        exit_now(Mux(write, ExitReason.WRMSR, ExitReason.RDMSR), instruction=True)
                    with m.Else():
                        pass_on(raise_on_fault=1)
                        m.next = "IDLE"

            with m.State("CR_MASK"):
                m.d.sync += mask.eq(field)
                with m.If(cr == 0):
                    read(_FIELDS["CR0_READ_SHADOW"])
                with m.Else():
                    read(_FIELDS["CR4_READ_SHADOW"])
                m.d.comb += [state.rd_id.eq(request.index), state.rd_en.eq(1)]
                m.next = "CR_SHADOW"

            with m.State("CR_SHADOW"):
                current = state.rd_data
                with m.If(request.op == Op.GET):
                    finish(m, op, Status.OK, result=(current & ~mask) | (field & mask))
                    m.next = "IDLE"
                with m.Elif(((value ^ field) & mask) != 0):
                    exit_now(
                        ExitReason.CR_ACCESS,
                        qualification=self._cr_qualification(m, cr, CrAccess.MOV_TO_CR, request),
                        instruction=True,
                    )
                with m.Else():
                    pass_on(raise_on_fault=1, new_value=(value & ~mask) | (current & mask))
                    m.next = "IDLE"

            with m.State("CR3_TARGETS"):
                # The count arrives first, then each target value in turn.
                with m.If(target == 0):
                    m.d.sync += shadow.eq(field_value(_FIELDS["CR3_TARGET_COUNT"]))
                hit = (target != 0) & (field == value) & (target <= shadow)
                with m.If(hit):
                    pass_on(raise_on_fault=1)
                    m.next = "IDLE"
                with m.Elif(target == 4):
                    exit_now(
                        ExitReason.CR_ACCESS,
                        qualification=self._cr_qualification(m, 3, CrAccess.MOV_TO_CR, request),
                        instruction=True,
                    )
                with m.Else():
                    with m.Switch(target):
                        for i in range(4):
                            with m.Case(i):
                                read(_FIELDS[f"CR3_TARGET_VALUE{i}"])
                    m.d.sync += target.eq(target + 1)

            self._halt(m, op, request, state)

            with m.State("TSC_OFFSET"):
                # The offset is registered before the sum: no adder on the cache's read data.
                m.d.sync += mask.eq(Mux(_proc(controls, "USE_TSC_OFFSETTING"), field, 0))
                m.next = "TSC_SUM"

            with m.State("TSC_SUM"):
                finish(m, op, Status.OK, result=self.tsc + mask)
                m.next = "IDLE"

            with m.State("IO_BITMAP"):
                with m.If(port[15]):
                    read(_FIELDS["IO_BITMAP_B"])
                with m.Else():
                    read(_FIELDS["IO_BITMAP_A"])
                m.next = "IO_BITMAP_WORD"

            with m.State("IO_BITMAP_WORD"):
                bitmap = field_value(_FIELDS["IO_BITMAP_A"])
                m.d.sync += [region.page.eq(bitmap[12:32]), region.word.eq(port[5:15]), bitmap_bit.eq(port[:5])]
                m.next = "IO_BIT"

            with m.State("IO_BIT"):
                m.d.comb += region.start.eq(1)
                with m.If(region.done):
                    any_set = io_exit | region.rdata.bit_select(bitmap_bit, 1)
                    m.d.sync += [io_exit.eq(any_set), port.eq(port + 1), ports_left.eq(ports_left - 1)]
                    with m.If(ports_left == 1):
                        with m.If(any_set):
                            self._io_exit(m, request, exit_now)
                        with m.Else():
                            self._io_answer(m, op, request)
                            m.next = "IDLE"
                    with m.Else():
                        m.next = "IO_BITMAP"

            with m.State("PF_MASK"):
                m.d.sync += mask.eq(field)
                read(_FIELDS["PAGE_FAULT_ERROR_CODE_MATCH"])
                m.next = "PF_MATCH"

            with m.State("PF_MATCH"):
                match = field_value(_FIELDS["PAGE_FAULT_ERROR_CODE_MATCH"])
                mask_word = mask.word_select(_FIELDS["PAGE_FAULT_ERROR_CODE_MASK"].half, 32)
                matches = (value[:32] & mask_word) == match
                bit = controls.exception_bitmap[ExceptionVector.PF]
                with m.If(bit == matches):
                    exception_exit(Const(ExceptionVector.PF, 8), value[:32])
                with m.Else():
                    finish(m, op, Status.OK)
                    m.next = "IDLE"

            with m.State("UNBLOCK"):
                m.d.comb += [
                    state.wr_id.eq(_INTERRUPTIBILITY),
                    state.wr_value.eq(state.rd_data & ~0x3),
                    state.wr_en.eq(1),
                ]
                m.next = "WINDOWS"

            with m.State("WINDOWS"):
                expired = ticks >= self.timer
                m.d.sync += counted.eq(run_end[:64])
                with m.If(nmi_window & ~blocked_by_movss):
                    exit_now(ExitReason.NMI_WINDOW)
                with m.Elif(interrupt_window & ~blocked_by_movss):
                    exit_now(ExitReason.INTERRUPT_WINDOW)
                with m.Elif(timer_active & expired):
                    m.d.comb += [self.timer_write.eq(1), self.timer_value.eq(0)]
                    exit_now(ExitReason.PREEMPTION_TIMER)
                with m.Else():
                    with m.If(timer_active):
                        m.d.comb += [self.timer_write.eq(1), self.timer_value.eq(self.timer - ticks)]
                    finish(m, op, Status.OK)
                    m.next = "IDLE"
        return m

    # -- pieces -----------------------------------------------------------------------------

    def _guest_time(self, m, counted, *, timer_due, window_due):  # noqa: ANN001, ANN202
        """``guest_time``: ``counted`` follows the TSC outside a guest (so it holds the entry's TSC in one; each
        RUN adds its value in WINDOWS); ``due`` when the preemption timer has as many ticks behind it as its
        value (with ``timer_due``, the control) or a window is open. Registered: a core asks at an instruction
        boundary, several cycles after the last RUN or the entry, so a value one cycle old is never stale there
        and the comparison stays off the core's paths; the cycles a RUN then counts end a cycle early, and the
        next RUN counts that cycle (``counted`` += its value)."""
        rate = VMX_MISC.preemption_timer_rate
        with m.If(~self.non_root):
            m.d.sync += counted.eq(self.tsc)
        since = Signal(65 - rate)
        m.d.comb += since.eq(self.tsc[rate:] - counted[rate:])
        m.d.sync += [
            self.guest_time.cycles.eq(self.tsc - counted),
            self.guest_time.due.eq(self.non_root & ((timer_due & (since >= self.timer)) | window_due)),
        ]

    @staticmethod
    def _cr_qualification(m, cr, access, request):
        """Table 27-3: MOV to/from CR with its register (no LMSW operand)."""
        return struct_value(CrQualification, cr=cr, access=access, gpr=request.gpr)

    @staticmethod
    def _io_exit(m, request, exit_now):
        """Table 27-5: the port in DX, not string, not REP."""
        qualification = struct_value(
            IoQualification, size=request.io_size, direction_in=request.op == Op.IN, port=request.index[:16]
        )
        exit_now(ExitReason.IO_INSTRUCTION, qualification=qualification, instruction=True)

    @staticmethod
    def _io_answer(m, op, request):
        """IN of a port nothing answers reads all ones (of the access's size); OUT is done."""
        ones = Mux(request.io_size == 3, 0xFFFF_FFFF, Mux(request.io_size == 1, 0xFFFF, 0xFF))
        finish(m, op, Status.OK, result=Mux(request.op == Op.IN, ones, 0))

    @staticmethod
    def _halt(m, op, request, state):
        """HLT that does not exit: RIP moves past it (its value read in the cycle before), activity HLT (1).
        The sum is registered before it is written: the element port's write path stays free of the adder."""
        next_rip = Signal(64)
        with m.State("HALT"):
            m.d.sync += next_rip.eq(state.rd_data + request.length)
            m.next = "HALT_RIP"
        with m.State("HALT_RIP"):
            m.d.comb += [state.wr_id.eq(_RIP), state.wr_value.eq(next_rip), state.wr_en.eq(1)]
            m.next = "HALT_ACTIVITY"
        with m.State("HALT_ACTIVITY"):
            m.d.comb += [state.wr_id.eq(_ACTIVITY), state.wr_value.eq(1), state.wr_en.eq(1)]
            finish(m, op, Status.OK)
            m.next = "IDLE"

    def _root(self, m, op, request, mode, state):
        """The guest events outside non-root operation: the processor's own."""
        with m.Switch(request.op):
            with m.Case(Op.IN):
                self._io_answer(m, op, request)
            with m.Case(Op.RDTSC):
                with m.If(mode.cr4_tsd & self.cpl_nonzero):
                    finish(m, op, Status.FAULT, vector=ExceptionVector.GP)
                with m.Else():
                    finish(m, op, Status.OK, result=self.tsc)
            with m.Case(Op.HLT):
                with m.If(self.cpl_nonzero):
                    finish(m, op, Status.FAULT, vector=ExceptionVector.GP)
                with m.Else():
                    m.d.comb += [state.rd_id.eq(_RIP), state.rd_en.eq(1)]
                    m.next = "HALT"
            with m.Default():
                finish(m, op, Status.OK)
