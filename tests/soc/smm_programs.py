"""Programs that take SMIs on the core: SMM handlers in assembly, for the ISS and the RTL SoC in lockstep.

# Ref: docs/smm-soc.md (the SMI command port, SMRAM and its alias, RSM, the core's move into and out of SMM);
# Intel SDM vol. 3C 34.4.1 (the save map), 34.11 (SMBASE relocation); rtl/arch/soc.py, rtl/arch/smm.py.

Each image holds the main program at 0 and its SMM handlers where SMBASE + ``SMM_ENTRY_OFFSET`` lands: the reset
SMBASE (0x30000) is in ``SMRAM_ALIAS``, so the first handler is in RAM at ``physical(0x38000)``. Results go to
``RESULTS`` (outside every SMRAM) and the main program checks them; a failure ends the run with its code.
"""

from guest_programs import (
    GUEST_CODE,
    GUEST_VECTOR,
    HOST_HANDLER,
    HOST_VECTOR,
    _vmwrite,
    advance_guest_rip,
    finish,
    launchable_fields,
    vmm,
)

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.smm import (
    EXIT_REASON_FROM_ROOT,
    MSEG_CR3_OFFSET,
    MSEG_CS_SELECTOR,
    MSEG_EIP_OFFSET,
    MSEG_ESP_OFFSET,
    MSEG_FEATURES,
    MSEG_GDTR_BASE_OFFSET,
    MSEG_GDTR_LIMIT,
    MSEG_REVISION,
    SAVE_MAP,
    SMBASE_SLOT,
    SMM_ENTRY_OFFSET,
    SlotKind,
)
from vmxu.rtl.arch.soc import RAM, SMI_PORT, physical
from vmxu.rtl.arch.state import ELEMENT_BY_NAME
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li

RESET_SMBASE = ELEMENT_BY_NAME["smbase"].reset
#: The SMBASE the first handler relocates to: its handler at 0x10000, its save map at 0x17C00-0x17FFF.
NEW_SMBASE = 0x8000
RESULTS = 0x6000
MAIN_VECTOR = 0x1000
#: A word of the reset SMRAM the image seeds (in RAM: physical(SEEDED)).
SEEDED, SEED = RESET_SMBASE + SMM_ENTRY_OFFSET + 0x1000, 0x5EED_0001


def _image(parts: dict[int, list[int]], seeds: dict[int, int] | None = None) -> bytes:
    """The image: each part's words at its (physical) address, each seed's word at its address."""
    words = {physical(address) + 4 * i: word for address, part in parts.items() for i, word in enumerate(part)}
    for address, word in (seeds or {}).items():
        words[physical(address)] = word
    end = max(words) + 4
    if not RAM.contains(0, end):
        raise ValueError(f"the image runs past RAM ({end:#x})")
    image = bytearray(end)
    for address, word in words.items():
        if any(image[address : address + 4]):
            raise ValueError(f"two parts of the image overlap at {address:#x}")
        image[address : address + 4] = word.to_bytes(4, "little")
    return bytes(image)


def _smi(value: int) -> list[int]:
    """OUT of byte ``value`` to the SMI command port (x5, x6 scratch)."""
    return [*li(5, SMI_PORT), *li(6, value), asm.outb(5, 6)]


def _expect_word(address: int, value: int, code: int) -> list[int]:
    """Fail with ``code`` unless the word at ``address`` is ``value`` (x7, x8 scratch)."""
    failure = finish(code)
    return [*li(7, address), asm.lw(7, 0, 7), *li(8, value), asm.beq(7, 8, 4 * (len(failure) + 1)), *failure]


def _record_smbase(slot: int) -> list[int]:
    """In a handler: RDMSR IA32_SMBASE into RESULTS + 4 * ``slot`` (x10, x11 scratch)."""
    return [*li(11, msrs.IA32_SMBASE), asm.rdmsr(10, 11), *li(11, RESULTS + 4 * slot), asm.sw(10, 0, 11)]


def button_smi() -> bytes:
    """A board's button (``Soc.smi_button``) raises a plain SMI (docs/smm-soc.md): the main program spins until
    the handler (at the reset SMBASE + 0x8000) has run; the handler records the save map's I/O state field,
    which a plain SMI leaves 0 (an OUT's would have IO_SMI set), and RSMs. Passes if the field was 0."""
    io_state = next(slot for slot in SAVE_MAP if slot.kind == SlotKind.IO_STATE)
    main = [
        *li(7, RESULTS),
        asm.lw(8, 0, 7),
        asm.beq(8, 0, -4),  # until the handler ran
        *_expect_word(RESULTS + 4, 0, 2),
        *finish(0),
    ]
    handler = [
        *li(10, RESET_SMBASE + io_state.offset),
        asm.lw(10, 0, 10),
        *li(11, RESULTS + 4),
        asm.sw(10, 0, 11),
        *li(10, 1),
        *li(11, RESULTS),
        asm.sw(10, 0, 11),
        asm.rsm(),
    ]
    return _image({0: main, physical(RESET_SMBASE + SMM_ENTRY_OFFSET): handler, RESULTS + 4: [0xFFFF_FFFF]})


def smbase_relocation() -> bytes:
    """Default treatment (SDM 34.11): an OUT to port 0xB2 delivers an SMI at the reset SMBASE (the handler at
    0x38000, through the alias); the handler reads IA32_SMBASE, writes NEW_SMBASE into the save map's SMBASE
    slot, writes port 0xB2 again (held: it is in SMM) and RSMs; the held SMI is delivered as RSM leaves SMM,
    at the new SMBASE, whose handler records IA32_SMBASE and RSMs; a third SMI lands there too. The main program
    checks the handlers' records and that mscratch (SMM's bank) is its own."""
    main = [
        *li(5, MAIN_VECTOR),
        asm.csrw("mtvec", 5),
        *li(5, 0x1234),
        asm.csrw("mscratch", 5),
        *li(9, 0),  # counts the handlers that ran
        *_smi(0x5A),
        *_expect_word(RESULTS, RESET_SMBASE, 2),
        *_expect_word(RESULTS + 4, NEW_SMBASE, 3),
        *_smi(0x5B),
        *_expect_word(RESULTS + 8, NEW_SMBASE, 4),
        *li(7, 3),
        asm.beq(9, 7, 4 * (len(finish(5)) + 1)),
        *finish(5),
        asm.csrr(7, "mscratch"),
        *li(8, 0x1234),
        asm.beq(7, 8, 4 * (len(finish(6)) + 1)),
        *finish(6),
        *finish(0),
    ]
    first = [
        asm.addi(9, 9, 1),
        *li(5, 0xABCD),
        asm.csrw("mscratch", 5),  # SMM's bank
        *_record_smbase(0),
        *li(10, NEW_SMBASE),
        *li(11, RESET_SMBASE + SMBASE_SLOT.offset),
        asm.sw(10, 0, 11),
        *_smi(0x5C),  # held until RSM
        asm.rsm(),
        *finish(7),
    ]
    # The handler at the new SMBASE: the first time (the held SMI) slot 1, then slot 2.
    second = [
        asm.addi(9, 9, 1),
        asm.csrr(7, "mscratch"),
        *li(8, 0xABCD),
        asm.beq(7, 8, 4 * (len(finish(8)) + 1)),
        *finish(8),
        *li(11, 2),
        asm.bne(9, 11, 4 * (len(_record_smbase(1)) + 2)),
        *_record_smbase(1),
        asm.rsm(),
        *_record_smbase(2),
        asm.rsm(),
        *finish(9),
    ]
    return _image(
        {
            0: main,
            MAIN_VECTOR: finish(0x7E),
            RESET_SMBASE + SMM_ENTRY_OFFSET: first,
            NEW_SMBASE + SMM_ENTRY_OFFSET: second,
        }
    )


def smram_closed_outside_smm() -> bytes:
    """SMRAM (docs/smm-soc.md, ``smram_closed``): outside SMM the core reads all ones from the reset SMRAM, through
    the alias and in RAM proper, and its store there is dropped; the SMM handler reads the seeded word and the
    word the dropped store missed, stores a word, and RSMs; outside SMM that word reads all ones again; a fetch
    from SMRAM outside SMM is an illegal instruction (mtval all ones)."""
    dropped = SEEDED + 4
    main = [
        *li(5, MAIN_VECTOR),
        asm.csrw("mtvec", 5),
        *_expect_word(SEEDED, 0xFFFF_FFFF, 2),
        *_expect_word(physical(SEEDED), 0xFFFF_FFFF, 3),
        *li(7, dropped),
        *li(8, 0xCAFE),
        asm.sw(8, 0, 7),
        *_expect_word(RESULTS + 4, 0, 10),  # never written yet: the handler has not run
        *_smi(0x01),
        *_expect_word(RESULTS, SEED, 4),
        *_expect_word(RESULTS + 4, 0, 5),  # the dropped store
        *_expect_word(SEEDED + 8, 0xFFFF_FFFF, 6),
        *li(7, RESET_SMBASE + SMM_ENTRY_OFFSET),
        asm.jalr(0, 0, 7),  # a fetch from SMRAM: illegal instruction
        *finish(7),
    ]
    vector = [
        asm.csrr(7, "mcause"),
        *li(8, TrapCause.ILLEGAL_INSTRUCTION.value),
        asm.beq(7, 8, 4 * (len(finish(8)) + 1)),
        *finish(8),
        asm.csrr(7, "mtval"),
        *li(8, 0xFFFF_FFFF),
        asm.beq(7, 8, 4 * (len(finish(9)) + 1)),
        *finish(9),
        *finish(0),
    ]
    handler = [
        *li(11, SEEDED),
        asm.lw(10, 0, 11),
        asm.lw(12, 4, 11),
        *li(13, 0x600D),
        asm.sw(13, 8, 11),
        *li(11, RESULTS),
        asm.sw(10, 0, 11),
        asm.sw(12, 4, 11),
        asm.rsm(),
        *finish(11),
    ]
    return _image(
        {0: main, MAIN_VECTOR: vector, RESET_SMBASE + SMM_ENTRY_OFFSET: handler},
        {SEEDED: SEED, SEEDED + 4: 0, SEEDED + 8: 0, RESULTS: 0, RESULTS + 4: 0},
    )


def rsm_outside_smm_is_illegal() -> bytes:
    """RSM outside SMM: the unit answers #UD, the core takes an illegal-instruction trap (mtval the word)."""
    main = [*li(5, MAIN_VECTOR), asm.csrw("mtvec", 5), asm.rsm(), *finish(2)]
    vector = [
        asm.csrr(7, "mcause"),
        *li(8, TrapCause.ILLEGAL_INSTRUCTION.value),
        asm.beq(7, 8, 4 * (len(finish(3)) + 1)),
        *finish(3),
        asm.csrr(7, "mtval"),
        *li(8, asm.rsm()),
        asm.beq(7, 8, 4 * (len(finish(4)) + 1)),
        *finish(4),
        *finish(0),
    ]
    return _image({0: main, MAIN_VECTOR: vector})


#: The dual-monitor layout: the executive monitor's VMM (guest_programs' ``vmm``, which makes VMCS_A current) at
#: EXECUTIVE, its guest's VMCS at VMCS_B, MSEG (the STM's header, code and stack) at MSEG.
EXECUTIVE, VMCS_B, MSEG = 0x8000, 0x7000, 0xC000
STM_ACTIVATION, STM_SMI, STM_STACK = MSEG + 0x1000, MSEG + 0x1800, MSEG + 0x3000
MSEG_HEADER = {
    MSEG_REVISION: msrs.MSEG_REVISION_ID,
    MSEG_FEATURES: 0,  # a 32-bit STM
    MSEG_GDTR_LIMIT: 0x2F,
    MSEG_GDTR_BASE_OFFSET: 0x100,
    MSEG_CS_SELECTOR: 0x08,
    MSEG_EIP_OFFSET: STM_ACTIVATION - MSEG,
    MSEG_ESP_OFFSET: STM_STACK - MSEG,
    MSEG_CR3_OFFSET: 0,
}


def _vmread_to(field: str, slot: int) -> list[int]:
    """VMREAD ``field`` into RESULTS + 4 * ``slot`` (x10, x11 scratch)."""
    encoding = FIELD_BY_NAME[field].encoding
    return [*li(11, encoding), asm.vmread(10, 11), *li(11, RESULTS + 4 * slot), asm.sw(10, 0, 11)]


def dual_monitor_smi_from_a_guest() -> bytes:
    """The dual-monitor treatment (SDM 34.15; docs/smm-soc.md): firmware sets IA32_SMM_MONITOR_CTL in SMM (a default
    SMI at 0x38000); the executive monitor enters VMX operation and activates the treatment by VMCALL (an SMM VM
    exit to the STM in MSEG, which points the SMM-transfer VMCS's host RIP at its SMI entry, advances GUEST_RIP and
    returns by VMLAUNCH); the executive launches a guest in VMCS_B, whose OUT to port 0xB2 is an SMM VM exit
    (reason 5) to the STM, which reads MSEG (open to it, closed to the guest) and returns by VMRESUME; the guest
    VMCALLs and the executive checks what the STM and the guest recorded."""
    firmware = [
        *_smi(0x01),
        *li(5, EXECUTIVE),
        asm.jalr(0, 0, 5),
    ]
    set_monitor_ctl = [
        *li(10, msrs.IA32_SMM_MONITOR_CTL),
        *li(11, MSEG | msrs.SMM_MONITOR_CTL_VALID),
        asm.csrw(Csr.XHI, 0),
        asm.wrmsr(10, 11),
        asm.rsm(),
        *finish(2),
    ]
    guest_fields = launchable_fields()
    activate_then_vmcs_b = [
        asm.vmcall(),  # the activation: the STM returns here + 4
        *li(5, msrs.VMCS_REVISION_ID),
        *li(7, VMCS_B),
        asm.sw(5, 0, 7),
        asm.vmclear(7, 0),
        asm.vmptrld(7, 0),
        *[word for name, value in guest_fields.items() for word in _vmwrite(name, value)],
    ]
    stm_activation = [
        *_vmread_to("VM_EXIT_REASON", 0),
        *_vmwrite("HOST_RIP", STM_SMI),
        *_vmwrite("HOST_RSP", STM_STACK),
        *advance_guest_rip(),
        asm.vmlaunch(),  # the return to the executive monitor (VMX root operation)
        *finish(3),
    ]
    stm_smi = [
        *_vmread_to("VM_EXIT_REASON", 1),
        *_vmread_to("EXIT_QUALIFICATION", 2),
        *li(11, MSEG + MSEG_REVISION),
        asm.lw(10, 0, 11),
        *li(11, RESULTS + 12),
        asm.sw(10, 0, 11),
        asm.vmresume(),  # the return to the guest (EXECUTIVE_VMCS_POINTER = VMCS_B)
        *finish(4),
    ]
    guest = [
        *_smi(0x42),
        *li(11, MSEG + MSEG_REVISION),
        asm.lw(10, 0, 11),  # closed to a guest: all ones
        *li(11, RESULTS + 16),
        asm.sw(10, 0, 11),
        asm.vmcall(),
    ]
    handler = [
        *li(21, FIELD_BY_NAME["VM_EXIT_REASON"].encoding),
        asm.vmread(24, 21),
        *li(25, ExitReason.VMCALL),
        asm.beq(24, 25, 4 * (len(finish(5)) + 1)),
        *finish(5),
        *_expect_word(RESULTS, ExitReason.VMCALL | EXIT_REASON_FROM_ROOT, 6),
        *_expect_word(RESULTS + 4, ExitReason.IO_SMI, 7),
        *_expect_word(RESULTS + 12, msrs.MSEG_REVISION_ID, 8),
        *_expect_word(RESULTS + 16, 0xFFFF_FFFF, 9),
        *finish(0),
    ]
    header = {MSEG + offset: value for offset, value in MSEG_HEADER.items()}
    return _image(
        {
            0: firmware,
            HOST_HANDLER: handler,
            HOST_VECTOR: finish(0x7E),
            GUEST_CODE: [*guest, asm.jal(0, 0)],
            GUEST_VECTOR: finish(0x7D),
            EXECUTIVE: vmm(extra=activate_then_vmcs_b),
            STM_ACTIVATION: stm_activation,
            STM_SMI: stm_smi,
            RESET_SMBASE + SMM_ENTRY_OFFSET: set_monitor_ctl,
        },
        {**header, **{RESULTS + 4 * i: 0 for i in range(5)}},
    )
