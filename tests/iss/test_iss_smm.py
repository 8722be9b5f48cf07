"""SMM on the ISS's core (``Iss(guests=True)``, docs/smm-soc.md): the SMI port, the SMI at an instruction
boundary, SMBASE relocation through the reset SMRAM alias, RSM, the SMM bank, SMRAM and MSEG closed.

# Ref: Intel SDM vol. 3C 34.3.1 (entering SMM: after the current instruction, CS.base = SMBASE, EIP =
# 8000H), 34.11 (SMBASE relocation: the save map's SMBASE field, reloaded by RSM), 34.4 (SMRAM, not
# accessible outside SMM on a chipset that decodes it), 34.15.2 (an SMI is an SMM VM exit under the
# dual-monitor treatment); docs/smm-soc.md (the core's side: SAVE, the I/O SMI on port 0xB2, MOVE with
# CS.base, three banks; the SMRAM alias at 0x30000).
"""

from __future__ import annotations

from iss_words import ext, image, li

from vmxu.rtl.arch.isa import TrapCause
from vmxu.rtl.arch.msrs import IA32_SMBASE
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.smm import SMBASE_SLOT, SMM_ENTRY_OFFSET
from vmxu.rtl.arch.soc import SMI_PORT, SMRAM_ALIAS, SMRAM_OFFSET, physical
from vmxu.sim.iss import Iss, Retired
from vmxu.sim.rv32 import asm

RESET_SMBASE = SMRAM_ALIAS.base
NEW_SMBASE = 0x1_0000
#: The handler's code, in RAM behind both the reset SMBASE's entry (through the alias) and the new one's.
HANDLER = physical(RESET_SMBASE + SMM_ENTRY_OFFSET)
MARK = 0x4000


def relocating_handler() -> list:
    """The SMI handler: SMBASE by RDMSR IA32_SMBASE; at the reset SMBASE, the save map's SMBASE field :=
    NEW_SMBASE; every time, one more at MARK; RSM."""
    return [
        li(5, IA32_SMBASE),
        ext("rdmsr", rd=6, rs1=5),  # x6 := SMBASE
        li(7, RESET_SMBASE),
        asm.bne(6, 7, 7 * 4),  # to the count below
        li(8, NEW_SMBASE),
        li(11, SMBASE_SLOT.offset),
        asm.add(11, 11, 6),
        asm.sw(8, 0, 11),  # the save map's SMBASE field
        li(9, MARK),
        asm.lw(10, 0, 9),
        asm.addi(10, 10, 1),
        asm.sw(10, 0, 9),
        ext("rsm"),
    ]


RELOCATING_RECORDS, COUNTING_RECORDS = 18, 12
#: li x20, 0xB2; li x21, 0x5A; outb x20, x21 (the SMI); outb again (another); j . (the handler keeps
#: x20 and x21: the SMI saves none of the core's other registers).
MAIN = [li(20, SMI_PORT), li(21, 0x5A), ext("outb", rs1=20, rs2=21), ext("outb", rs1=20, rs2=21), asm.jal(0, 0)]
FIRST_OUT, SECOND_OUT = 16, 20


def smm_machine(main: list, handler: list) -> Iss:
    iss = Iss(image(*main), guests=True)
    iss.ram.load_image(HANDLER, image(*handler))
    return iss


def run(iss: Iss, count: int) -> list[Retired]:
    return [iss.step() for _ in range(count)]


def test_an_out_to_port_0xb2_is_an_smi_at_the_next_boundary_at_the_reset_smbase():
    """SDM 34.3.1: the SMI is taken after the OUT; SMM starts at SMBASE + 8000H (SMBASE 30000H after reset,
    its SMRAM the alias of RAM 0x10000-0x1FFFF); the record is one of its own (insn 0) at the next pc."""
    iss = smm_machine(MAIN, relocating_handler())
    records = run(iss, 6)
    assert records[4].insn == ext("outb", rs1=20, rs2=21) and records[4].pc == FIRST_OUT
    assert records[5] == Retired(pc=SECOND_OUT, insn=0, vmx_status=Status.OK)
    assert iss.vmx.in_smm and iss.pc == RESET_SMBASE + SMM_ENTRY_OFFSET
    assert iss.smi.commands == [0x5A]
    # The save map (through the alias) holds the RIP to return to.
    assert iss.vmx.state["rip"] == SMM_ENTRY_OFFSET and iss.vmx.state["cs.base"] == RESET_SMBASE


def test_rsm_relocates_smbase_and_the_next_smi_enters_at_the_new_one():
    """SDM 34.11: RSM reloads SMBASE from the save map's field; the next SMI enters at the new SMBASE +
    8000H. RSM returns to the instruction after the OUT (the RIP the SMI saved)."""
    iss = smm_machine(MAIN, relocating_handler())
    records = run(iss, 6 + RELOCATING_RECORDS)
    assert records[-1] == Retired(pc=RESET_SMBASE + SMM_ENTRY_OFFSET + 17 * 4, insn=ext("rsm"), vmx_status=Status.OK)
    assert not iss.vmx.in_smm and iss.pc == SECOND_OUT
    assert iss.vmx.state["smbase"] == NEW_SMBASE
    records = run(iss, 2)
    assert records[1] == Retired(pc=SECOND_OUT + 4, insn=0, vmx_status=Status.OK)
    assert iss.pc == NEW_SMBASE + SMM_ENTRY_OFFSET
    records = run(iss, COUNTING_RECORDS)
    assert records[-1].insn == ext("rsm") and iss.pc == SECOND_OUT + 4
    assert iss.ram.load(MARK, 4) == 2 and iss.vmx.state["smbase"] == NEW_SMBASE


def test_smram_reads_all_ones_and_drops_stores_outside_smm():
    """docs/smm-soc.md: outside SMM the core's loads from SMRAM (SMBASE + 8000H up, through the alias too)
    read all ones, its stores are dropped, and a fetch there is an illegal instruction; below it RAM is RAM."""
    smram = physical(RESET_SMBASE + SMRAM_OFFSET)
    main = [
        li(5, smram),
        asm.lw(6, 0, 5),
        asm.sw(0, 0, 5),
        li(7, RESET_SMBASE + SMRAM_OFFSET),
        asm.lw(8, 0, 7),
        asm.lw(9, -4, 5),
        asm.jalr(0, 0, 5),
    ]
    iss = smm_machine(main, [0x1234_5678])
    iss.ram.store(smram - 4, 4, 0x0BAD_F00D)
    records = run(iss, 10)
    assert (iss.x[6], iss.x[8], iss.x[9]) == (0xFFFF_FFFF, 0xFFFF_FFFF, 0x0BAD_F00D)
    assert iss.ram.load(smram, 4) == 0x1234_5678
    assert records[-1] == Retired(pc=smram, insn=0xFFFF_FFFF, trap=int(TrapCause.ILLEGAL_INSTRUCTION))


def test_smm_has_its_own_bank_of_trap_registers():
    """docs/smm-soc.md: the handler's mscratch is SMM's; RSM gives the interrupted code its own back."""
    handler = [asm.csrw("mscratch", 0), li(5, 0x5EC), asm.csrw("mscratch", 5), ext("rsm")]
    main = [li(5, 0x1111), asm.csrw("mscratch", 5), li(5, SMI_PORT), ext("outb", rs1=5, rs2=0), asm.jal(0, 0)]
    iss = smm_machine(main, handler)
    run(iss, 7)
    assert iss.vmx.in_smm and iss.mscratch == 0
    run(iss, 5)
    assert not iss.vmx.in_smm and iss.mscratch == 0x1111
    assert iss.guests.banks["smm"]["mscratch"] == 0x5EC


def test_rsm_outside_smm_is_illegal_and_the_core_without_guests_has_no_smi():
    """Vol. 2B RSM: #UD outside SMM (illegal instruction on the core); the SoC without guests has no SMM."""
    iss = smm_machine([ext("rsm")], [])
    assert run(iss, 1)[0].trap == int(TrapCause.ILLEGAL_INSTRUCTION)
    plain = Iss(image(li(5, SMI_PORT), ext("outb", rs1=5, rs2=0), asm.nop()))
    records = [plain.step() for _ in range(4)]
    assert records[3].insn == asm.nop() and not plain.vmx.in_smm and plain.smi.commands == [0]


def test_an_smi_in_a_guest_under_the_default_treatment_leaves_vmx_for_smm_and_rsm_returns_to_the_guest():
    """SDM 34.14.1-34.14.2 (default treatment): an SMI in VMX non-root operation saves the guest's state in
    the save map and leaves VMX operation for SMM (the SMM bank, pc = SMBASE + 8000H); RSM returns to the
    guest (its bank, RIP = the instruction after the OUT, RSP and IDTR.base kept)."""
    from test_iss_guests import GUEST_CODE, GUEST_STACK, GUEST_VECTOR, enter, launched

    guest = [li(20, SMI_PORT), asm.csrw("mscratch", 20), ext("outb", rs1=20, rs2=0), asm.nop()]
    iss = launched(guest)
    iss.ram.load_image(HANDLER, image(asm.csrw("mscratch", 0), ext("rsm")))
    enter(iss)
    records = run(iss, 5)
    assert records[-1] == Retired(pc=GUEST_CODE + 16, insn=0, vmx_status=Status.OK)
    assert iss.vmx.in_smm and not iss.vmx.non_root and iss.guests.mode == "smm"
    assert iss.pc == RESET_SMBASE + SMM_ENTRY_OFFSET and iss.mscratch == 0
    records = run(iss, 2)
    assert records[-1] == Retired(pc=RESET_SMBASE + SMM_ENTRY_OFFSET + 4, insn=ext("rsm"), vmx_status=Status.OK)
    assert iss.vmx.non_root and not iss.vmx.in_smm and iss.guests.mode == "guest"
    assert (iss.pc, iss.x[2], iss.mtvec, iss.mscratch) == (GUEST_CODE + 16, GUEST_STACK, GUEST_VECTOR, SMI_PORT)


def test_transition_times_follow_an_smi_and_an_rsm_that_exit():
    """sim/iss/smm.py TransitionTimes (the stm demo's numbers on the RTL): from the OUT's retirement to the
    STM's first instruction; from the instruction before an exiting RSM to the STM's first; other records
    (an SMI delivered under the default treatment, an RSM that returns) are not counted."""
    from vmxu.sim.iss.smm import TransitionTimes

    out, rsm = ext("outb", rs1=20, rs2=21), ext("rsm")
    times = TransitionTimes()
    for record, cycle in (
        (Retired(pc=0, insn=out), 10),
        (Retired(pc=4, insn=0, vmx_status=Status.EXITED), 120),  # the SMI's record: an SMM VM exit
        (Retired(pc=0x1B020, insn=asm.nop()), 131),  # the STM's first instruction
        (Retired(pc=0x18000, insn=asm.nop()), 200),
        (Retired(pc=0x18004, insn=rsm, vmx_status=Status.EXITED), 290),
        (Retired(pc=0x1B100, insn=asm.nop()), 310),
        (Retired(pc=8, insn=out), 400),
        (Retired(pc=12, insn=0, vmx_status=Status.OK), 500),  # delivered: the default treatment
        (Retired(pc=0x18000, insn=asm.nop()), 510),
        (Retired(pc=0x18004, insn=rsm, vmx_status=Status.OK), 600),
        (Retired(pc=12, insn=asm.nop()), 610),
    ):
        times.note(record, cycle)
    assert (times.smi, times.rsm) == ([121], [110])


def test_a_buttons_smi_is_a_plain_smi():
    """docs/smm-soc.md: a board's button raises an SMI that is not an I/O SMI: under the default treatment the
    save map's I/O state field (table 34-5) is 0, where an OUT's SMI writes IO_SMI and its port."""
    from vmxu.rtl.arch.smm import SAVE_MAP, SlotKind

    io_slot = next(slot for slot in SAVE_MAP if slot.kind == SlotKind.IO_STATE)
    field = physical(RESET_SMBASE + io_slot.offset)
    iss = smm_machine([asm.nop(), asm.nop(), asm.jal(0, 0)], [ext("rsm")])
    iss.ram.store(field, 4, 0xFFFF_FFFF)
    iss.step()
    iss.smm.press()
    record = iss.step()
    assert record == Retired(pc=4, insn=0, vmx_status=Status.OK) and iss.vmx.in_smm
    assert iss.ram.load(field, 4) == 0
    plain = smm_machine(MAIN, relocating_handler())
    run(plain, 6)
    assert plain.ram.load(field, 4) != 0  # the OUT's: an I/O SMI
