"""Guests on the ISS's core (``Iss(guests=True)``): VM entry and exit of pc, sp and mtvec, banked trap
registers, and guest events (CPUID, WFI, IN/OUT, traps, interrupts) that ask the VMX unit whether they exit.

# Ref: docs/guests.md (the core's side of VMX non-root operation); DESIGN.md "The softcore and its VMX
# extension" (pc and sp are RIP and RSP, mtvec is IDTR.base, mepc/mcause/mtval/mscratch/mstatus banked);
# Intel SDM vol. 3C 26.3.2.1 / 27.3.1 / 27.5.1 (RIP, RSP and IDTR loaded and saved), 25.1.2 (CPUID
# exits unconditionally), 27.2.1-27.2.2 (exit reason, qualification, interruption information),
# 26.6.1 (event injection).

The VMM's VMWRITEs are made by the test through the unit (the model), between the core's own
instructions; everything else is the core's instructions on the ISS.
"""

from __future__ import annotations

from iss_words import ext, image, li
from test_iss_vmx import enable_vmx_words, steps

from vmxu.rtl.arch import isa
from vmxu.rtl.arch.controls import PIN, PROC
from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.events import EXCEPTIONS_WITH_ERROR_CODE, InterruptionType, interruption_info
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.isa import GUEST_EXCEPTIONS, TrapCause
from vmxu.rtl.arch.ops import Op, Status
from vmxu.rtl.arch.riscv import Interrupt
from vmxu.sim import presets
from vmxu.sim.iss import Iss, Retired
from vmxu.sim.rv32 import asm

GUEST_CODE, GUEST_STACK, GUEST_VECTOR = 0x2000, 0x3000, 0x2800
HOST_HANDLER, HOST_STACK, HOST_VECTOR = 0x0800, 0x3800, 0x1000
#: The host launches the guest here, after VMXON, VMCLEAR, VMPTRLD.
PREFIX = [*enable_vmx_words(), ext("vmxon", rs1=6), ext("vmclear", rs1=7), ext("vmptrld", rs1=7)]


def vmread(iss: Iss, name: str) -> int:
    outcome = iss.vmx.execute(Op.VMREAD, FIELD_BY_NAME[name].encoding)
    assert outcome.status == Status.SUCCEED, outcome
    return outcome.value


def vmwrite(iss: Iss, name: str, value: int) -> None:
    outcome = iss.vmx.execute(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value)
    assert outcome.status == Status.SUCCEED, (name, outcome)


def launched(guest: list, *, fields: dict[str, int] | None = None, handler: list | None = None) -> Iss:
    """The host at VMLAUNCH of a guest running ``guest`` (pc GUEST_CODE, sp GUEST_STACK, mtvec GUEST_VECTOR),
    the host's exit handler ``handler`` at HOST_HANDLER (default: ``j .``); VMLAUNCH not yet executed."""
    iss = Iss(image(*PREFIX, ext("vmlaunch"), asm.jal(0, 0)), guests=True)
    iss.ram.load_image(GUEST_CODE, image(*guest, asm.jal(0, 0)))
    iss.ram.load_image(GUEST_VECTOR, image(asm.jal(0, 0)))
    iss.ram.load_image(HOST_HANDLER, image(*(handler or []), asm.jal(0, 0)))
    iss.ram.load_image(HOST_VECTOR, image(asm.jal(0, 0)))
    iss.mtvec = HOST_VECTOR
    for _ in range(steps(PREFIX)):
        assert iss.step().trap is None
    values = presets.launchable_fields() | {
        "GUEST_RIP": GUEST_CODE,
        "GUEST_RSP": GUEST_STACK,
        "GUEST_IDTR_BASE": GUEST_VECTOR,
        "HOST_RIP": HOST_HANDLER,
        "HOST_RSP": HOST_STACK,
        "HOST_IDTR_BASE": HOST_VECTOR,
    }
    for name, value in (values | (fields or {})).items():
        vmwrite(iss, name, value)
    return iss


def enter(iss: Iss):
    record = iss.step()
    assert record.vmx_status == Status.ENTERED, record
    return record


def test_entry_loads_pc_sp_and_mtvec_and_cpuid_exits_to_host_rip():
    """SDM 26.3.2.1: RIP, RSP, IDTR.base from the guest-state area; 25.1.2: CPUID exits (reason 10);
    27.3.1: the guest's RIP, RSP, IDTR.base saved; 27.5.1: the host's loaded; the instruction is 4 bytes."""
    guest = [asm.addi(2, 2, -16), *li(5, GUEST_VECTOR + 0x40), asm.csrw("mtvec", 5), asm.cpuid(10, 0, 0)]
    iss = launched(guest)
    enter(iss)
    assert (iss.pc, iss.x[2], iss.mtvec) == (GUEST_CODE, GUEST_STACK, GUEST_VECTOR)
    assert iss.vmx.non_root
    records = [iss.step() for _ in range(steps(guest))]
    assert records[-1].vmx_status == Status.EXITED and records[-1].pc == GUEST_CODE + 4 * (steps(guest) - 1)
    assert (iss.pc, iss.x[2], iss.mtvec) == (HOST_HANDLER, HOST_STACK, HOST_VECTOR)
    assert not iss.vmx.non_root
    assert vmread(iss, "VM_EXIT_REASON") == ExitReason.CPUID
    assert vmread(iss, "VM_EXIT_INSTRUCTION_LEN") == 4
    assert vmread(iss, "GUEST_RIP") == records[-1].pc
    assert vmread(iss, "GUEST_RSP") == GUEST_STACK - 16
    assert vmread(iss, "GUEST_IDTR_BASE") == GUEST_VECTOR + 0x40


def test_trap_registers_are_banked_per_mode():
    """DESIGN.md: mepc, mcause, mtval, mscratch, mstatus have no VMCS field and are banked, so an exit never
    clobbers the guest's and an entry never the host's."""
    guest = [*li(5, 0xBEEF), asm.csrw("mscratch", 5), ext("vmcall")]
    iss = launched(guest)
    iss.mscratch = 0x1234
    enter(iss)
    assert iss.mscratch == 0  # the guest's bank, at its reset value
    for _ in range(steps(guest)):
        iss.step()
    assert iss.mscratch == 0x1234 and vmread(iss, "VM_EXIT_REASON") == ExitReason.VMCALL
    vmwrite(iss, "GUEST_RIP", vmread(iss, "GUEST_RIP") + 4)
    iss.pc = 0  # the host's VMRESUME at address 0
    iss.ram.load_image(0, image(ext("vmresume")))
    enter(iss)
    assert iss.mscratch == 0xBEEF and iss.pc == GUEST_CODE + 4 * steps(guest)


def test_a_trap_in_the_bitmap_exits_and_one_outside_it_is_the_guests():
    """SDM 25.2: an exception exits when its bit is set in the exception bitmap (reason 0, interruption
    information with the vector); otherwise the guest takes it at its own trap vector, in its own bank."""
    for bitmap, exits in ((1 << 3, True), (0, False)):
        iss = launched([asm.ebreak()], fields={"EXCEPTION_BITMAP": bitmap})
        iss.mcause = 0x77
        enter(iss)
        record = iss.step()
        assert record.trap == TrapCause.BREAKPOINT
        if exits:
            assert record.vmx_status == Status.EXITED and iss.pc == HOST_HANDLER
            assert vmread(iss, "VM_EXIT_REASON") == ExitReason.EXCEPTION_NMI
            assert vmread(iss, "VM_EXIT_INTR_INFO") == interruption_info(3, InterruptionType.SOFTWARE_EXCEPTION)
            assert iss.mcause == 0x77
        else:
            assert record.vmx_status is None and iss.pc == GUEST_VECTOR and iss.vmx.non_root
            assert (iss.mcause, iss.mepc) == (TrapCause.BREAKPOINT, GUEST_CODE)


def test_an_injected_exception_is_a_trap_of_the_guest():
    """SDM 26.6.1: the event is delivered after the entry, before the guest's first instruction; here as a
    trap to the guest's trap vector with the mapped cause (injected_cause), mepc the guest's RIP."""
    event = interruption_info(13, InterruptionType.HARDWARE_EXCEPTION, error_code=True)
    iss = launched([], fields={"VM_ENTRY_INTR_INFO_FIELD": event, "VM_ENTRY_EXCEPTION_ERROR_CODE": 0x18})
    record = enter(iss)
    assert record.pc == steps(PREFIX) * 4 and iss.pc == GUEST_CODE
    # Delivered as a record of its own, before the guest's first instruction (the RTL's TRAP cycle).
    delivered = iss.step()
    assert delivered == Retired(pc=GUEST_CODE, insn=0, trap=TrapCause.GENERAL_PROTECTION)
    assert iss.pc == GUEST_VECTOR and iss.vmx.non_root
    assert (iss.mcause, iss.mepc, iss.mtval) == (TrapCause.GENERAL_PROTECTION, GUEST_CODE, 0x18)


def test_wfi_is_hlt_for_the_unit():
    """HLT exiting (reason 12) decides WFI in a guest; without it the guest goes on, its activity active."""
    hlt_exiting = PROC.true_allowed0 | PROC.bit("HLT_EXITING")
    for controls, exits in ((hlt_exiting, True), (PROC.true_allowed0, False)):
        iss = launched([asm.wfi(), asm.nop()], fields={"CPU_BASED_VM_EXEC_CONTROL": controls})
        enter(iss)
        record = iss.step()
        if exits:
            assert record.vmx_status == Status.EXITED and vmread(iss, "VM_EXIT_REASON") == ExitReason.HLT
        else:
            assert record.vmx_status is None and iss.pc == GUEST_CODE + 4
            assert iss.vmx.state["activity"] == 0


def test_out_with_unconditional_io_exiting_exits_with_its_port():
    """SDM 25.1.3 / 27.2.1 table 27-5: reason 30, the port in qualification bits 31:16, size - 1 in 2:0."""
    controls = PROC.true_allowed0 | PROC.bit("UNCOND_IO_EXITING")
    guest = [*li(10, 0x3F8), *li(11, 0x41), asm.outb(10, 11)]
    iss = launched(guest, fields={"CPU_BASED_VM_EXEC_CONTROL": controls})
    enter(iss)
    records = [iss.step() for _ in range(steps(guest))]
    assert records[-1].vmx_status == Status.EXITED
    assert vmread(iss, "VM_EXIT_REASON") == ExitReason.IO_INSTRUCTION
    assert vmread(iss, "EXIT_QUALIFICATION") == 0x3F8 << 16
    assert iss.console == ""  # the OUT did not happen: the VMM emulates it


def test_the_timer_interrupt_exits_with_external_interrupt_exiting():
    """SDM 25.2: "external-interrupt exiting" exits on an external interrupt whatever the guest's IF
    (mstatus.MIE); the core's timer is vector 32 (INTERRUPT_VECTORS)."""
    pin = PIN.true_allowed0 | PIN.bit("EXT_INTR_EXITING")
    iss = launched([asm.nop(), asm.nop()], fields={"PIN_BASED_VM_EXEC_CONTROL": pin})
    iss.mie = Interrupt.MACHINE_TIMER.mask
    enter(iss)
    iss.timer.mtimecmp = 0
    record = iss.step()
    assert record.trap == TrapCause.MACHINE_TIMER_INTERRUPT and record.vmx_status == Status.EXITED
    assert vmread(iss, "VM_EXIT_REASON") == ExitReason.EXTERNAL_INTERRUPT
    assert vmread(iss, "GUEST_RIP") == GUEST_CODE


def test_every_synchronous_trap_but_ecall_is_an_x86_exception():
    """docs/guests.md: the map of a guest's traps to x86 vectors; a vector pushes an error code exactly when
    the SDM's does (SDM 6.13, table 6-1)."""
    synchronous = {c for c in TrapCause if c < 32}
    assert set(GUEST_EXCEPTIONS) == synchronous - {TrapCause.ECALL_M, TrapCause.ENTRY_NOT_IMPLEMENTED}
    for exception in GUEST_EXCEPTIONS.values():
        assert (exception.error_code is not None) == (exception.vector in EXCEPTIONS_WITH_ERROR_CODE)
    assert isa.injected_cause(14) == TrapCause.LOAD_ACCESS_FAULT and isa.injected_cause(13) == 24
    assert isa.injected_cause(32) == TrapCause.MACHINE_TIMER_INTERRUPT and isa.injected_cause(77) == 77 % 32


def test_a_guests_cycle_read_is_rdtsc():
    """REPLAY.md "Guest events": RDTSC exits with "RDTSC exiting" (16); otherwise it reads the TSC plus the
    TSC offset with "use TSC offsetting" (SDM 25.3); the core's cycle counter is the TSC."""
    offsetting = PROC.true_allowed0 | PROC.bit("USE_TSC_OFFSETTING")
    iss = launched(
        [asm.csrr(10, "cycle"), asm.csrr(11, "cycleh")],
        fields={"CPU_BASED_VM_EXEC_CONTROL": offsetting, "TSC_OFFSET": 0x1_0000_0000 - 5},
    )
    enter(iss)
    cycles = iss.mcycle
    iss.step()
    assert iss.x[10] == (cycles + 0x1_0000_0000 - 5) & 0xFFFF_FFFF
    iss.step()
    assert iss.x[11] == (cycles + 1 + 0x1_0000_0000 - 5) >> 32
    exiting = PROC.true_allowed0 | PROC.bit("RDTSC_EXITING")
    iss = launched([asm.csrr(10, "cycle")], fields={"CPU_BASED_VM_EXEC_CONTROL": exiting})
    enter(iss)
    assert iss.step().vmx_status == Status.EXITED and vmread(iss, "VM_EXIT_REASON") == ExitReason.RDTSC


def test_the_preemption_timer_exits_after_its_count_of_guest_cycles():
    """SDM 25.5.1: the VMX-preemption timer counts down at the TSC rate divided by 2 ** IA32_VMX_MISC[4:0]
    and exits (52) at zero; on the ISS's core a guest's instruction boundary is a cycle."""
    from vmxu.rtl.arch.msrs import VMX_MISC

    pin = PIN.true_allowed0 | PIN.bit("ACTIVATE_PREEMPTION_TIMER")
    rate = 1 << (VMX_MISC.as_value().value & 0x1F)
    loop = [asm.addi(5, 5, 1), asm.jal(0, -4)]
    iss = launched(loop, fields={"PIN_BASED_VM_EXEC_CONTROL": pin, "VMX_PREEMPTION_TIMER_VALUE": 3})
    enter(iss)
    records = []
    while iss.vmx.non_root and len(records) < 10 * rate:
        records.append(iss.step())
    assert records[-1].vmx_status == Status.EXITED and records[-1].insn == 0
    assert vmread(iss, "VM_EXIT_REASON") == ExitReason.PREEMPTION_TIMER
    assert 2 * rate <= len(records) - 1 <= 4 * rate  # 3 ticks, the first one partial
    assert vmread(iss, "GUEST_RIP") == records[-1].pc
