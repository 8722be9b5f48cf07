"""Programs that run a guest on the core: a VMM in assembly, for the ISS and the RTL SoC in lockstep.

# Ref: docs/guests.md; sim/presets.py (controls, host and guest state that pass every VM-entry check).

``hypervisor(guest, handler)`` lays out one image: the VMM at 0 (VMX on, VMXON, VMCLEAR, VMPTRLD,
a VMWRITE of every field of ``presets.launchable_fields`` at 32-bit operand size, the host and
guest RIP/RSP/IDTR.base of this layout, VMLAUNCH), its exit handler at HOST_HANDLER, the guest's
code at GUEST_CODE and a trap vector for each. Registers x20-x24 are the VMM's (the guests here
leave them alone); x20 counts the exits, x24 holds the exit reason.
"""

from collections.abc import Callable
from pathlib import Path

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import EXIT, PIN, PROC
from vmxu.rtl.arch.events import InterruptionType, interruption_info
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.isa import INTERRUPT_VECTORS, Csr, TrapCause
from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, TIMER, finisher_fail
from vmxu.rtl.arch.state import CR0, CR4
from vmxu.sim import presets
from vmxu.sim.cocotb.build import SOC_GUESTS, run_cocotb
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li

VMXON_REGION, VMCS = 0x4000, 0x5000
GUEST_CODE, GUEST_STACK, GUEST_VECTOR = 0x2000, 0x3000, 0x2800
HOST_HANDLER, HOST_STACK, HOST_VECTOR = 0x0800, 0x3800, 0x1000
IMAGE_BYTES = 0x3000


def launchable_fields() -> dict[str, int]:
    """The launchable VMCS (sim/presets.py) with the guest at GUEST_CODE and the host's handler at HOST_HANDLER."""
    return presets.launchable_fields() | {
        "GUEST_RIP": GUEST_CODE,
        "GUEST_RSP": GUEST_STACK,
        "GUEST_IDTR_BASE": GUEST_VECTOR,
        "HOST_RIP": HOST_HANDLER,
        "HOST_RSP": HOST_STACK,
        "HOST_IDTR_BASE": HOST_VECTOR,
    }


def assert_agree_with_the_iss(programs: dict[str, Callable[[], bytes]], sim: str, directory: Path) -> None:
    """Every program on the SoC with guests in ``sim``, record by record against ``Iss(guests=True)``."""
    for name, make in programs.items():
        (directory / f"{name}.bin").write_bytes(make())
    env = {"VMXU_PROGRAMS": str(directory), "VMXU_GUESTS": "1"}
    results = run_cocotb(SOC_GUESTS, sim, "vmxu.sim.cocotb.soc_tests", testcase=["program"], extra_env=env)
    assert len(results.tests) == len(programs), results.summary()
    assert not results.failed, results.summary()


def _vmwrite(name: str, value: int) -> list[int]:
    """VMWRITE at 32-bit operand size: bits 31:0, then the high access (encoding | 1) for bits 63:32."""
    encoding = FIELD_BY_NAME[name].encoding
    words = [*li(21, encoding), *li(22, value & 0xFFFF_FFFF), asm.vmwrite(21, 22)]
    if value >> 32:
        words += [*li(21, encoding | 1), *li(22, value >> 32), asm.vmwrite(21, 22)]
    return words


def finish(code: int) -> list[int]:
    """The finisher: pass (0) or fail with ``code``; then ``j .``."""
    word = FINISHER_PASS if code == 0 else finisher_fail(code)
    return [*li(21, FINISHER.base), *li(22, word), asm.sw(22, 0, 21), asm.jal(0, 0)]


def vmm(fields: dict[str, int] | None = None, extra: list[int] | None = None) -> list[int]:
    """The VMM up to its VMLAUNCH (and a failure code 1 if VMLAUNCH falls through); ``extra`` runs just
    before VMLAUNCH."""
    words = [
        *li(10, msrs.IA32_FEATURE_CONTROL),
        *li(11, msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX),
        asm.csrw(Csr.XHI, 0),
        asm.wrmsr(10, 11),
        *li(5, CR0.PE | CR0.NE | CR0.PG),
        asm.csrw(Csr.XCR0, 5),
        *li(5, CR4.VMXE),
        asm.csrw(Csr.XCR4, 5),
        *li(5, msrs.VMCS_REVISION_ID),
        *li(6, VMXON_REGION),
        asm.sw(5, 0, 6),
        *li(7, VMCS),
        asm.sw(5, 0, 7),
        asm.vmxon(6, 0),
        asm.vmclear(7, 0),
        asm.vmptrld(7, 0),
        *li(5, HOST_VECTOR),
        asm.csrw("mtvec", 5),
        *li(5, 0x1234),
        asm.csrw("mscratch", 5),
        *li(20, 0),
    ]
    values = launchable_fields()
    for name, value in (values | (fields or {})).items():
        words += _vmwrite(name, value)
    return [*words, *(extra or []), asm.vmlaunch(), *finish(1)]


def advance_guest_rip() -> list[int]:
    """GUEST_RIP += VM_EXIT_INSTRUCTION_LEN (the exiting instruction is done), into x23."""
    return [
        *li(21, FIELD_BY_NAME["VM_EXIT_INSTRUCTION_LEN"].encoding),
        asm.vmread(22, 21),
        *li(21, FIELD_BY_NAME["GUEST_RIP"].encoding),
        asm.vmread(23, 21),
        asm.add(23, 23, 22),
        asm.vmwrite(21, 23),
    ]


def hypervisor(
    guest: list[int],
    handler: list[int],
    fields: dict[str, int] | None = None,
    guest_vector: list[int] | None = None,
    vmm_extra: list[int] | None = None,
) -> bytes:
    """One image: the VMM at 0, ``handler`` at HOST_HANDLER, ``guest`` at GUEST_CODE, ``guest_vector`` (default:
    a failure, code 0x7D) at GUEST_VECTOR."""
    image = bytearray(IMAGE_BYTES)

    def place(address: int, words: list[int], limit: int) -> None:
        data = b"".join(w.to_bytes(4, "little") for w in words)
        if address + len(data) > limit:
            raise ValueError(f"{len(data)} bytes at {address:#x} run past {limit:#x}")
        image[address : address + len(data)] = data

    place(0, vmm(fields, vmm_extra), HOST_HANDLER)
    place(HOST_HANDLER, handler, HOST_VECTOR)
    place(HOST_VECTOR, finish(0x7E), GUEST_CODE)
    place(GUEST_CODE, [*guest, asm.jal(0, 0)], GUEST_VECTOR)
    place(GUEST_VECTOR, guest_vector or finish(0x7D), IMAGE_BYTES)
    return bytes(image)


def _skip_unless_equal(a: int, b: int, body: list[int]) -> list[int]:
    """``body`` runs only when xa == xb (a BNE over it)."""
    return [asm.bne(a, b, 4 * (len(body) + 1)), *body]


def _expect(register: int, value: int, code: int) -> list[int]:
    """Fail with ``code`` unless x``register`` == ``value`` (x11 is scratch)."""
    failure = finish(code)
    return [*li(11, value), asm.beq(register, 11, 4 * (len(failure) + 1)), *failure]


def cpuid_then_vmcall() -> bytes:
    """The guest moves sp and mtvec, writes its mscratch, CPUID exits (the VMM advances RIP and resumes),
    the guest reads its mscratch back and VMCALL exits; the VMM checks the reasons, the guest's
    mscratch and its own, and passes."""
    guest = [
        asm.addi(2, 2, -16),
        *li(5, GUEST_VECTOR + 0x40),
        asm.csrw("mtvec", 5),
        *li(5, 0xBEEF),
        asm.csrw("mscratch", 5),
        asm.cpuid(10, 0, 0),
        asm.csrr(12, "mscratch"),
        asm.vmcall(),
    ]
    first_exit = [
        *li(11, 10),  # CPUID
        *_skip_unless_equal(10, 11, [*advance_guest_rip(), asm.vmresume(), *finish(2)]),
        *finish(3),
    ]
    second_exit = [
        *_expect(10, 18, 4),  # VMCALL
        *_expect(12, 0xBEEF, 5),  # the guest's mscratch, across the exit and the entry
        asm.csrr(13, "mscratch"),
        *_expect(13, 0x1234, 6),  # the VMM's
        *finish(0),
    ]
    handler = [
        asm.addi(20, 20, 1),
        *li(21, FIELD_BY_NAME["VM_EXIT_REASON"].encoding),
        asm.vmread(10, 21),
        *li(11, 1),
        *_skip_unless_equal(20, 11, first_exit),
        *second_exit,
    ]
    return hypervisor(guest, handler)


def _on_reason(reason: int, body: list[int]) -> list[int]:
    """``body`` when the exit reason in x24 is ``reason`` (x11 is scratch)."""
    return [*li(11, reason), asm.bne(24, 11, 4 * (len(body) + 1)), *body]


def _read_reason() -> list[int]:
    """x20 += 1; x24 := the exit reason (the guest's registers but sp are as it left them)."""
    return [asm.addi(20, 20, 1), *li(21, FIELD_BY_NAME["VM_EXIT_REASON"].encoding), asm.vmread(24, 21)]


def guest_events() -> bytes:
    """Guest events the unit decides (docs/guests.md): OUT with unconditional I/O exiting (the VMM prints the
    guest's character on the real UART), EBREAK in the exception bitmap, WFI with HLT exiting, an illegal
    instruction outside the bitmap (the guest's own trap: it skips it), a RDMSR without MSR bitmaps; then
    VMCALL, after which the VMM checks it saw five exits and the guest's trap count."""
    guest = [
        *li(5, GUEST_VECTOR),
        asm.csrw("mtvec", 5),
        *li(10, ord("G")),
        *li(6, 0x3F8),
        asm.outb(6, 10),
        asm.ebreak(),
        asm.wfi(),
        0xFFFF_FFFF,  # illegal: the guest's trap handler skips it
        *li(6, msrs.IA32_SYSENTER_CS),
        asm.rdmsr(7, 6),
        asm.vmcall(),
    ]
    guest_vector = [  # skip the trapping instruction, count the trap in x9
        asm.csrr(8, "mepc"),
        asm.addi(8, 8, 4),
        asm.csrw("mepc", 8),
        asm.addi(9, 9, 1),
        asm.mret(),
    ]
    resume = [*advance_guest_rip(), asm.vmresume(), *finish(2)]
    handler = [
        *_read_reason(),
        *_on_reason(30, [*li(11, 0x3F8), asm.outb(11, 10), *resume]),  # IO_INSTRUCTION
        *_on_reason(0, resume),  # EXCEPTION_NMI (#BP)
        *_on_reason(12, resume),  # HLT
        *_on_reason(31, resume),  # RDMSR
        *_on_reason(18, [*_expect(20, 5, 4), *_expect(9, 1, 5), *finish(0)]),  # VMCALL
        *finish(3),
    ]
    controls = PROC.true_allowed0 | PROC.bit("UNCOND_IO_EXITING") | PROC.bit("HLT_EXITING")
    fields = {"CPU_BASED_VM_EXEC_CONTROL": controls, "EXCEPTION_BITMAP": 1 << 3}
    return hypervisor(guest, handler, fields, guest_vector)


def injected_event() -> bytes:
    """VMLAUNCH injects #GP with an error code: the guest's trap vector runs first, with mcause 24 (#GP),
    mepc its RIP and mtval the error code, and VMCALLs; the VMM passes on that exit."""
    guest_vector = [
        asm.csrr(10, "mcause"),
        asm.csrr(11, "mepc"),
        asm.csrr(12, "mtval"),
        asm.vmcall(),
    ]
    handler = [
        asm.csrr(13, "mscratch"),  # the host's bank is back
        *_read_reason(),
        *_on_reason(18, [*finish(0)]),
        *finish(3),
    ]
    event = interruption_info(13, InterruptionType.HARDWARE_EXCEPTION, error_code=True)
    fields = {"VM_ENTRY_INTR_INFO_FIELD": event, "VM_ENTRY_EXCEPTION_ERROR_CODE": 0x18}
    return hypervisor([asm.nop()], handler, fields, guest_vector)


def timer_interrupt_exit() -> bytes:
    """With "external-interrupt exiting", the timer's interrupt exits the guest (vector 32) although the
    guest's mstatus.MIE is 0; the VMM checks the reason and the exit's interruption information's vector
    (with "acknowledge interrupt on exit") and passes."""
    mtimecmp = TIMER.base + 0x4000
    guest = [
        *li(5, mtimecmp),
        asm.sw(0, 0, 5),  # mtimecmp := 0 (low word): the timer fires at once
        asm.sw(0, 4, 5),
        *[asm.addi(6, 6, 1) for _ in range(8)],
        asm.vmcall(),  # not reached: the interrupt exits first
    ]
    handler = [
        *_read_reason(),
        *_on_reason(
            1,
            [  # EXTERNAL_INTERRUPT
                *li(21, FIELD_BY_NAME["VM_EXIT_INTR_INFO"].encoding),
                asm.vmread(22, 21),
                asm.andi(22, 22, 0xFF),
                *_expect(22, INTERRUPT_VECTORS[TrapCause.MACHINE_TIMER_INTERRUPT], 4),
                *finish(0),
            ],
        ),
        *finish(3),
    ]
    pin = PIN.true_allowed0 | PIN.bit("EXT_INTR_EXITING")
    exit_controls = EXIT.true_allowed0 | EXIT.bit("ACK_INTR_ON_EXIT")
    fields = {"PIN_BASED_VM_EXEC_CONTROL": pin, "VM_EXIT_CONTROLS": exit_controls}
    return hypervisor(guest, handler, fields, vmm_extra=[*li(5, 1 << 7), asm.csrw("mie", 5)])


def rdtsc_offset_then_exiting() -> bytes:
    """A guest's reads of the cycle counter are RDTSC (docs/guests.md; SDM 25.3: with "use TSC offsetting" RDTSC
    returns the TSC plus TSC_OFFSET; 25.1.3: "RDTSC exiting" makes it exit, reason 16). The guest reads cycleh
    (TSC_OFFSET's bits 63:32 = 5 above a small TSC) and cycle, and VMCALLs; the VMM checks cycleh, turns on RDTSC
    exiting and resumes; the guest's next read of cycle exits with reason 16, and the VMM passes."""
    guest = [asm.csrr(10, "cycleh"), asm.csrr(12, "cycle"), asm.vmcall(), asm.csrr(13, "cycle"), asm.vmcall()]
    proc = PROC.true_allowed0 | PROC.bit("USE_TSC_OFFSETTING")
    rdtsc_exiting = [*_vmwrite("CPU_BASED_VM_EXEC_CONTROL", proc | PROC.bit("RDTSC_EXITING"))]
    handler = [
        *_read_reason(),
        *_on_reason(18, [*_expect(10, 5, 4), *rdtsc_exiting, *advance_guest_rip(), asm.vmresume(), *finish(2)]),
        *_on_reason(16, [*_expect(20, 2, 5), *finish(0)]),  # RDTSC, the second exit
        *finish(3),
    ]
    fields = {"CPU_BASED_VM_EXEC_CONTROL": proc, "TSC_OFFSET": 5 << 32}
    return hypervisor(guest, handler, fields)


def preemption_timer_exit() -> bytes:
    """The VMX-preemption timer (SDM 25.5.1: it counts down by one each time TSC bit IA32_VMX_MISC[4:0]
    changes in VMX non-root operation, and exits at zero, reason 52; 27.3.4: "save VMX-preemption timer value"
    stores 0 then): the guest counts in x8 forever; the VMM checks the reason, the saved value and that the
    guest ran, and passes."""
    guest = [*li(8, 0), asm.addi(8, 8, 1), asm.jal(0, -4)]
    handler = [
        *_read_reason(),
        *_on_reason(
            52,
            [
                *li(21, FIELD_BY_NAME["VMX_PREEMPTION_TIMER_VALUE"].encoding),
                asm.vmread(22, 21),
                *_expect(22, 0, 4),
                *li(11, 0),
                asm.beq(8, 11, 4 * (len(finish(0)) + 1)),
                *finish(0),
                *finish(5),  # the guest never ran
            ],
        ),
        *finish(3),
    ]
    pin = PIN.true_allowed0 | PIN.bit("ACTIVATE_PREEMPTION_TIMER")
    exit_controls = EXIT.true_allowed0 | EXIT.bit("SAVE_VMX_PREEMPTION_TIMER")
    fields = {"PIN_BASED_VM_EXEC_CONTROL": pin, "VM_EXIT_CONTROLS": exit_controls, "VMX_PREEMPTION_TIMER_VALUE": 4}
    return hypervisor(guest, handler, fields)


def interrupt_window_exit() -> bytes:
    """Interrupt-window exiting (SDM 25.2: with the control on, a VM exit, reason 7, at the first boundary where
    RFLAGS.IF = 1 and nothing blocks interrupts): the guest enters with IF = 0, sets it in xflags, and the exit
    comes before its next instruction (GUEST_RIP = the instruction after the CSR write); the VMM passes."""
    guest = [*li(8, 0), asm.addi(8, 8, 1), *li(5, 1 << 9), asm.csrs(Csr.XFLAGS, 5), asm.addi(8, 8, 1)]
    after_write = GUEST_CODE + 4 * (len(guest) - 1)
    handler = [
        *_read_reason(),
        *_on_reason(
            7,
            [
                *li(21, FIELD_BY_NAME["GUEST_RIP"].encoding),
                asm.vmread(22, 21),
                *_expect(22, after_write, 4),
                *_expect(8, 1, 5),
                *finish(0),
            ],
        ),
        *finish(3),
    ]
    fields = {"CPU_BASED_VM_EXEC_CONTROL": PROC.true_allowed0 | PROC.bit("INTR_WINDOW_EXITING")}
    return hypervisor(guest, handler, fields)
