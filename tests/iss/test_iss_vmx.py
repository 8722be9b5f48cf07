"""The VMX extension on the ISS: VMX instructions, RDMSR/WRMSR and the x86 CSRs reach the VMX unit's model.

# Ref: docs/cpu.md "The VMX extension (custom-0)" and "CSRs"; Intel SDM vol.
# 3C 30.2 (VMsucceed / VMfailInvalid / VMfailValid in RFLAGS), 30.3 (the
# instructions); docs/semantics.md (what the unit answers).
"""

from __future__ import annotations

import pytest
from iss_words import NOP, csr, csrr, csrw, ext, image, li, machine, run_words, sw

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.isa import Csr, TrapCause
from vmxu.rtl.arch.layout import LAUNCH_WORD
from vmxu.rtl.arch.ops import Status
from vmxu.rtl.arch.state import CR0, CR4, RFLAGS
from vmxu.sim.iss import Iss, Retired

VMXON_REGION = 0x4000
VMCS = 0x5000
CR0_VMX = CR0.PE | CR0.NE | CR0.PG
FLAGS_FIXED = RFLAGS.FIXED1


def enable_vmx_words() -> list[int]:
    """Firmware's way in: lock IA32_FEATURE_CONTROL, CR0/CR4 to the fixed bits, revision in the regions."""
    return [
        li(10, msrs.IA32_FEATURE_CONTROL),
        li(11, msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX),
        ext("wrmsr", rs1=10, rs2=11),
        li(5, CR0_VMX),
        csrw(Csr.XCR0, 5),
        li(5, CR4.VMXE),
        csrw(Csr.XCR4, 5),
        li(5, msrs.VMCS_REVISION_ID),
        li(6, VMXON_REGION),
        sw(5, 0, 6),
        li(7, VMCS),
        sw(5, 0, 7),
    ]


def steps(words: list[int | list[int]]) -> int:
    return sum(len(w) if isinstance(w, list) else 1 for w in words)


def in_root(*more: int | list[int]) -> tuple[Iss, list[Retired]]:
    """VMXON done (x6 = VMXON region, x7 = VMCS), then ``more``; the records of ``more``."""
    prefix = [*enable_vmx_words(), ext("vmxon", rs1=6)]
    iss = machine(*prefix, *more)
    for _ in range(steps(prefix)):
        record = iss.step()
        assert record.trap is None, record
    return iss, [iss.step() for _ in range(steps(list(more)))]


def with_current(*more: int | list[int]) -> tuple[Iss, list[Retired]]:
    """In VMX root operation with the VMCS at x7 cleared and current, then ``more``."""
    return in_root(ext("vmclear", rs1=7), ext("vmptrld", rs1=7), *more)


def test_vmxon_through_the_core() -> None:
    iss, records = in_root(csrr(12, Csr.XFLAGS))
    assert iss.vmx.in_vmx_operation and iss.vmx.vmxon_pointer == VMXON_REGION
    assert iss.x[12] == FLAGS_FIXED  # VMsucceed: CF = ZF = 0


def test_vmx_instruction_record_carries_the_outcome() -> None:
    word = ext("vmxon", rs1=6)
    iss = machine(*enable_vmx_words(), word)
    for _ in range(steps(enable_vmx_words())):
        iss.step()
    assert iss.step() == Retired(pc=4 * steps(enable_vmx_words()), insn=word, vmx_status=Status.SUCCEED)


def test_vmxon_with_high_address_bits_fails_invalid() -> None:
    iss, records = in_root(ext("vmxoff"), li(8, 1), ext("vmxon", rs1=6, rs2=8), csrr(12, Csr.XFLAGS))
    assert records[3].vmx_status == Status.FAIL_INVALID
    assert iss.x[12] == FLAGS_FIXED | RFLAGS.CF


def test_vmx_instruction_outside_vmx_operation_is_ud() -> None:
    word = ext("vmptrst", rd=10)
    iss, records = run_words(li(10, 0x77), word)
    assert records[-1] == Retired(pc=8, insn=word, trap=TrapCause.ILLEGAL_INSTRUCTION, vmx_status=Status.FAULT)
    assert iss.mtval == word and iss.x[10] == 0x77


def test_vmxon_without_feature_control_is_gp() -> None:
    word = ext("vmxon", rs1=6)
    iss, records = run_words(li(5, CR0_VMX), csrw(Csr.XCR0, 5), li(5, CR4.VMXE), csrw(Csr.XCR4, 5), word)
    assert records[-1].trap == TrapCause.GENERAL_PROTECTION and records[-1].vmx_status == Status.FAULT
    assert iss.mtval == word and not iss.vmx.in_vmx_operation


def test_vmptrst_without_current_vmcs_is_all_ones() -> None:
    iss, records = in_root(ext("vmptrst", rd=10))
    assert records[0].rd == 10 and records[0].rd_value == 0xFFFF_FFFF
    assert records[0].vmx_status == Status.SUCCEED


def test_vmread_without_current_vmcs_fails_invalid_and_leaves_rd() -> None:
    iss, records = in_root(li(10, 0x55), li(11, FIELD_BY_NAME["GUEST_CR0"].encoding), ext("vmread", 10, 11))
    assert records[-1].vmx_status == Status.FAIL_INVALID and records[-1].rd == 0
    assert iss.x[10] == 0x55
    assert iss.vmx.elements["rflags"] & RFLAGS.ARITHMETIC == RFLAGS.CF


def test_vmwrite_then_vmread() -> None:
    field = FIELD_BY_NAME["GUEST_RIP"].encoding
    iss, records = with_current(
        li(11, field), li(12, 0xCAFE_F00D), ext("vmwrite", rs1=11, rs2=12), ext("vmread", 10, 11)
    )
    assert records[-2].vmx_status == Status.SUCCEED
    vmread = records[-1]
    assert (vmread.rd, vmread.rd_value, vmread.vmx_status, vmread.trap) == (10, 0xCAFE_F00D, Status.SUCCEED, None)
    assert iss.vmx.vmread("GUEST_RIP").value == 0xCAFE_F00D  # 32-bit write: bits 63:32 cleared


def test_vmwrite_of_16_bit_field_takes_the_low_bits() -> None:
    field = FIELD_BY_NAME["GUEST_CS_SELECTOR"].encoding
    iss, _ = with_current(li(11, field), li(12, 0x1234_5678), ext("vmwrite", rs1=11, rs2=12), ext("vmread", 10, 11))
    assert iss.x[10] == 0x5678


def test_vmread_high_access_of_a_64_bit_field() -> None:
    field = FIELD_BY_NAME["IO_BITMAP_A"].encoding
    iss, _ = with_current(li(11, field | 1), li(12, 0xAB), ext("vmwrite", rs1=11, rs2=12), ext("vmread", 10, 11))
    assert iss.x[10] == 0xAB
    assert iss.vmx.vmread("IO_BITMAP_A").value == 0xAB_0000_0000


@pytest.mark.parametrize(
    "words, error",
    [
        ([li(11, 0x1000), ext("vmread", 10, 11)], VmError.UNSUPPORTED_VMCS_COMPONENT),
        (
            [li(11, FIELD_BY_NAME["VM_EXIT_REASON"].encoding), ext("vmwrite", rs1=11)],
            VmError.VMWRITE_READ_ONLY_COMPONENT,
        ),
        ([ext("vmptrld", rs1=6)], VmError.VMPTRLD_VMXON_POINTER),
        ([ext("vmlaunch")], VmError.ENTRY_INVALID_CONTROL_FIELD),
        ([ext("vmresume")], VmError.VMRESUME_NONLAUNCHED_VMCS),
        ([ext("vmxon", rs1=6)], VmError.VMXON_IN_ROOT),
        ([ext("vmcall")], VmError.VMCALL_IN_ROOT),
    ],
)
def test_vmfail_valid_sets_zf_and_the_error_field(words: list, error: VmError) -> None:
    field = FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding
    iss, records = with_current(*words, csrr(12, Csr.XFLAGS), li(13, field), ext("vmread", 14, 13))
    failing = records[steps(words) + 1]
    assert failing.vmx_status == Status.FAIL_VALID and failing.rd == 0
    assert iss.x[12] == FLAGS_FIXED | RFLAGS.ZF
    assert iss.x[14] == error


def test_vmcall_without_current_vmcs_fails_invalid() -> None:
    _, records = in_root(ext("vmcall"))
    assert records[0].vmx_status == Status.FAIL_INVALID


def test_the_unit_masters_the_cores_ram() -> None:
    field = FIELD_BY_NAME["GUEST_RIP"]
    iss, _ = with_current(li(11, field.encoding), li(12, 0x1234_5678), ext("vmwrite", rs1=11, rs2=12))
    iss.ram.store(VMCS + 4 * LAUNCH_WORD, 4, 0xFFFF_FFFF)
    iss.ram.load_image(iss.pc, image(ext("vmclear", rs1=7)))
    assert iss.step().vmx_status == Status.SUCCEED
    assert iss.ram.load(VMCS + 4 * LAUNCH_WORD, 4) == 0  # the launch word, written by the unit
    assert 0x1234_5678 in iss.ram.words().values()  # the field's word, written back


def make_launchable_words() -> list:
    """VMWRITEs that pass every VMX-control and host-state check for a 32-bit host (SDM 26.2)."""
    values = {
        PIN.vmcs_field: PIN.true_default1,
        PROC.vmcs_field: PROC.true_default1,
        EXIT.vmcs_field: EXIT.true_default1,
        ENTRY.vmcs_field: ENTRY.true_default1,
        "HOST_CR0": CR0_VMX,
        "HOST_CR4": CR4.VMXE,
        "HOST_CS_SELECTOR": 0x08,
        "HOST_SS_SELECTOR": 0x10,
        "HOST_DS_SELECTOR": 0x10,
        "HOST_ES_SELECTOR": 0x10,
        "HOST_FS_SELECTOR": 0x10,
        "HOST_GS_SELECTOR": 0x10,
        "HOST_TR_SELECTOR": 0x18,
        "HOST_RIP": 0x0010_0000,
    }
    words = []
    for name, value in values.items():
        words += [li(11, FIELD_BY_NAME[name].encoding), li(12, value), ext("vmwrite", rs1=11, rs2=12)]
    return words


def test_vmlaunch_that_passes_the_checks_raises_cause_25() -> None:
    word = ext("vmlaunch")
    iss, records = with_current(*make_launchable_words(), word)
    assert all(r.vmx_status == Status.SUCCEED for r in records if r.insn & 0x7F == 0x0B and r is not records[-1])
    launch = records[-1]
    assert (launch.insn, launch.trap, launch.vmx_status) == (word, 25, Status.ENTRY_NOT_IMPLEMENTED)
    assert launch.rd == 0 and launch.store is None
    assert iss.mtval == word and iss.mcause == 25


# -- RDMSR / WRMSR -----------------------------------------------------------------------


def test_rdmsr_splits_the_value() -> None:
    iss, records = run_words(li(10, msrs.IA32_VMX_BASIC), ext("rdmsr", 11, 10), csrr(12, Csr.XHI))
    low = msrs.IA32_VMX_BASIC_VALUE & 0xFFFF_FFFF
    assert records[2] == Retired(pc=8, insn=ext("rdmsr", 11, 10), rd=11, rd_value=low, vmx_status=Status.OK)
    assert iss.x[12] == msrs.IA32_VMX_BASIC_VALUE >> 32


def test_wrmsr_takes_the_high_half_from_xhi() -> None:
    iss, records = run_words(
        li(5, 0x0007_0406), csrw(Csr.XHI, 5), li(10, msrs.IA32_PAT), li(11, 0x0006_0406), ext("wrmsr", rs1=10, rs2=11)
    )
    assert records[-1].vmx_status == Status.OK and records[-1].rd == 0
    assert iss.vmx.elements["pat"] == 0x0007_0406_0006_0406


@pytest.mark.parametrize(
    "words",
    [
        [li(10, 0x1234), ext("rdmsr", 11, 10)],  # no such MSR
        [li(10, msrs.IA32_SMBASE), ext("rdmsr", 11, 10)],  # readable only in SMM
        [li(10, msrs.IA32_VMX_BASIC), ext("wrmsr", rs1=10, rs2=0)],  # read-only
        [li(10, msrs.IA32_FEATURE_CONTROL), li(11, 8), ext("wrmsr", rs1=10, rs2=11)],  # reserved bit
    ],
)
def test_msr_faults_are_general_protection(words: list) -> None:
    iss, records = run_words(li(11, 0x77), li(5, 0x99), csrw(Csr.XHI, 5), *words)
    assert records[-1].trap == TrapCause.GENERAL_PROTECTION and records[-1].vmx_status == Status.FAULT
    assert iss.mtval == words[-1] and iss.xhi == 0x99
    if len(words) == 2 and words[-1] & (0x7F << 25) == 0:  # rdmsr: rd unchanged
        assert iss.x[11] == 0x77


# -- the x86 CSRs ----------------------------------------------------------------------------


def test_x86_csrs_read_the_elements() -> None:
    iss, records = run_words(csrr(10, Csr.XCR0), csrr(11, Csr.XCR3), csrr(12, Csr.XCR4), csrr(13, Csr.XFLAGS))
    assert iss.x[10:14] == [0x6000_0010, 0, 0, 0x2]
    assert all(r.vmx_status is None for r in records)  # CSR instructions are not VMX-extension instructions


def test_x86_csr_write_is_a_set() -> None:
    iss, _ = run_words(li(5, 0x0008_0000), csr("csrrw", 10, Csr.XCR3, 5), csrr(11, Csr.XCR3))
    assert iss.x[10] == 0 and iss.x[11] == 0x0008_0000
    assert iss.vmx.elements["cr3"] == 0x0008_0000


def test_x86_csr_set_and_clear_forms() -> None:
    iss, _ = run_words(
        li(5, CR0.PE), csr("csrrs", 10, Csr.XCR0, 5), li(5, CR0.CD | CR0.NW), csr("csrrc", 11, Csr.XCR0, 5)
    )
    assert iss.x[10] == 0x6000_0010 and iss.x[11] == 0x6000_0011
    assert iss.vmx.elements["cr0"] == 0x0000_0011


def test_xflags_write_keeps_the_fixed_bit() -> None:
    iss, _ = run_words(csr("csrrwi", 0, Csr.XFLAGS, 1), csrr(10, Csr.XFLAGS))
    assert iss.x[10] == RFLAGS.CF | RFLAGS.FIXED1


@pytest.mark.parametrize(
    "number, value",
    [
        (Csr.XCR0, CR0.PG),  # PG without PE
        (Csr.XCR0, CR0.NW),  # NW without CD
        (Csr.XCR4, 1 << 12),  # a CR4 bit this processor does not have
        (Csr.XFLAGS, 1 << 3),  # reserved RFLAGS bit
    ],
)
def test_refused_x86_csr_write_is_gp_and_changes_nothing(number: int, value: int) -> None:
    word = csr("csrrw", 10, number, 5)
    iss, records = run_words(li(5, value), li(10, 0x77), word)
    assert records[-1] == Retired(pc=16, insn=word, trap=TrapCause.GENERAL_PROTECTION)
    assert iss.mtval == word and iss.x[10] == 0x77
    assert iss.vmx.elements == Iss().vmx.elements


def test_clearing_cr4_vmxe_in_vmx_operation_is_gp() -> None:
    iss, records = in_root(csr("csrrci", 0, Csr.XCR4, 0), li(5, CR4.VMXE), csr("csrrc", 0, Csr.XCR4, 5))
    assert records[0].trap is None  # csrrci with 0 only reads
    assert records[-1].trap == TrapCause.GENERAL_PROTECTION
    assert iss.vmx.elements["cr4"] & CR4.VMXE


# -- CPUID and RSM -----------------------------------------------------------------------


VENDOR = b"vmxuRV32core"


@pytest.mark.parametrize(
    "leaf, register, value",
    [
        (0, 0, 1),
        (0, 1, int.from_bytes(VENDOR[0:4], "little")),
        (0, 3, int.from_bytes(VENDOR[4:8], "little")),
        (0, 2, int.from_bytes(VENDOR[8:12], "little")),
        (1, 2, 1 << 5),
        (1, 0, 0),
        (1, 6, 1 << 5),  # only rs2 bits 1:0 count
        (2, 0, 0),
        (0x8000_0000, 0, 0),
    ],
)
def test_cpuid(leaf: int, register: int, value: int) -> None:
    iss, records = run_words(li(10, leaf), li(11, register), ext("cpuid", 12, 10, 11))
    assert records[-1] == Retired(pc=16, insn=ext("cpuid", 12, 10, 11), rd=12, rd_value=value)
    assert iss.x[12] == value


def test_rsm_outside_smm_is_ud() -> None:
    word = ext("rsm")
    iss, records = run_words(word)
    assert records[0] == Retired(pc=0, insn=word, trap=TrapCause.ILLEGAL_INSTRUCTION)
    assert iss.mtval == word


def test_unused_register_fields_are_ignored() -> None:
    word = ext("vmxoff", rd=5, rs1=6, rs2=7)
    iss, records = in_root(li(5, 0x33), word)
    assert records[-1].vmx_status == Status.SUCCEED and iss.x[5] == 0x33


def test_nop_between_vmx_instructions_keeps_flags() -> None:
    iss, _ = in_root(li(11, 0x1000), ext("vmread", 10, 11), NOP, csrr(12, Csr.XFLAGS))
    assert iss.x[12] == FLAGS_FIXED | RFLAGS.CF  # no current VMCS: VMfailInvalid
