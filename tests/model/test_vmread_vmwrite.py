"""VMREAD and VMWRITE: support, read-only components, operand sizes, storage (SDM 30.3, 24.11.2)."""

from __future__ import annotations

import pytest
from model_setup import VMCS_A, expect

from vmxu.rtl.arch import layout
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.fields import FIELD_BY_NAME, FIELDS, FieldWidth
from vmxu.rtl.arch.ops import Op, OperandSize, Status

S32 = OperandSize.S32
S64 = OperandSize.S64
COOKIE = 0xF1E2_D3C4_B5A6_9788

UNSUPPORTED = {
    "reserved-bit-12": 0x681E | 1 << 12,
    "reserved-bit-15": 0x681E | 1 << 15,
    "reserved-bit-31": 0x681E | 1 << 31,
    "unknown-index": 0x6C18,
    "unknown-index-16bit": 0x0C0E,
    "high-of-natural": 0x681F,
    "high-of-32bit": 0x4001,
    "high-of-16bit": 0x0801,
    "bits-63-32": 1 << 32 | 0x681E,
    "bit-63": 1 << 63 | 0x4400,
}

WRITABLE = [f for f in FIELDS if not f.read_only]
READ_ONLY = [f for f in FIELDS if f.read_only]


def field(name):
    return FIELD_BY_NAME[name]


def expect_fail_valid(model, outcome, error):
    expect(outcome, Status.FAIL_VALID)
    assert outcome.error == error
    assert model.vmread("VM_INSTRUCTION_ERROR").value == error


def cookie_for(f):
    """A value that differs per field and fills the component's width."""
    return (COOKIE ^ (f.encoding * 0x0101_0101_0101)) & ((1 << f.value_bits) - 1)


# -- VMfailInvalid, error 12, error 13 ---------------------------------------------------------


def test_vmread_fails_invalid_without_current_vmcs(in_root):
    """SDM 30.3 VMREAD: VMfailInvalid if there is no current VMCS."""
    expect(in_root.vmread("GUEST_RIP"), Status.FAIL_INVALID)


def test_vmwrite_fails_invalid_without_current_vmcs(in_root):
    """SDM 30.3 VMWRITE: VMfailInvalid if there is no current VMCS."""
    expect(in_root.vmwrite("GUEST_RIP", 1), Status.FAIL_INVALID)


def test_vmwrite_without_current_vmcs_beats_unsupported_component(in_root):
    """SDM 30.3 VMWRITE: the current-VMCS check comes before the component checks."""
    expect(in_root.vmwrite(0x6C18, 1), Status.FAIL_INVALID)


@pytest.mark.parametrize("encoding", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_vmread_fails_12_for_unsupported_component(with_current, encoding):
    """SDM 30.3 VMREAD / 24.11.2: VMfailValid(12) for an encoding that is not a supported component."""
    expect_fail_valid(with_current, with_current.vmread(encoding), VmError.UNSUPPORTED_VMCS_COMPONENT)


@pytest.mark.parametrize("encoding", UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_vmwrite_fails_12_for_unsupported_component(with_current, encoding):
    """SDM 30.3 VMWRITE / 24.11.2: VMfailValid(12) for an encoding that is not a supported component."""
    expect_fail_valid(with_current, with_current.vmwrite(encoding, 0), VmError.UNSUPPORTED_VMCS_COMPONENT)


def test_unsupported_check_comes_before_read_only_check(with_current):
    """SDM 30.3 VMWRITE: "unsupported" (12) comes before "read-only" (13), even for a type-1 encoding."""
    encoding = field("VM_EXIT_REASON").encoding | 1 << 12
    expect_fail_valid(with_current, with_current.vmwrite(encoding, 0), VmError.UNSUPPORTED_VMCS_COMPONENT)


@pytest.mark.parametrize("f", READ_ONLY, ids=lambda f: f.name)
def test_vmwrite_fails_13_on_read_only_component(with_current, f):
    """SDM 30.3 VMWRITE: VMfailValid(13) for a VM-exit information field (IA32_VMX_MISC bit 29 = 0)."""
    before = with_current.vmread(f.encoding).value
    expect_fail_valid(with_current, with_current.vmwrite(f.encoding, 1), VmError.VMWRITE_READ_ONLY_COMPONENT)
    if f.name != "VM_INSTRUCTION_ERROR":
        assert with_current.vmread(f.encoding).value == before


@pytest.mark.parametrize("f", READ_ONLY, ids=lambda f: f.name)
def test_read_only_component_is_readable(with_current, f):
    """SDM 30.3 VMREAD: read-only components are supported for VMREAD (a fresh VMCS holds 0)."""
    assert expect(with_current.vmread(f.encoding), Status.SUCCEED).value == 0


# -- every field round-trips --------------------------------------------------------------


@pytest.mark.parametrize("f", WRITABLE, ids=lambda f: f.name)
def test_every_writable_component_round_trips(with_current, f):
    """kvm-unit-tests test_vmwrite_vmread: each field reads back what was written, masked by its width (SDM 24.11.2)."""
    cookie = cookie_for(f)
    expect(with_current.vmwrite(f.encoding, cookie | (COOKIE << f.value_bits) & ((1 << 64) - 1)), Status.SUCCEED)
    assert expect(with_current.vmread(f.encoding), Status.SUCCEED).value == cookie


@pytest.mark.parametrize("f", WRITABLE, ids=lambda f: f.name)
def test_every_writable_component_survives_vmclear_and_vmptrld(with_current, f):
    """SDM 24.11.1: VMCLEAR writes the VMCS to its region; VMPTRLD brings it back unchanged."""
    cookie = cookie_for(f)
    expect(with_current.vmwrite(f.encoding, cookie), Status.SUCCEED)
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    expect(with_current.vmptrld(VMCS_A), Status.SUCCEED)
    assert with_current.vmread(f.encoding).value == cookie


def test_vm_instruction_error_holds_the_last_error(with_current):
    """SDM 30.4: VMfailValid writes its number to the VM-instruction error field (0x4400)."""
    expect(with_current.vmwrite("VM_EXIT_REASON", 0), Status.FAIL_VALID)
    assert with_current.vmread(0x4400).value == VmError.VMWRITE_READ_ONLY_COMPONENT
    expect(with_current.vmread(0x1234), Status.FAIL_VALID)
    assert with_current.vmread(0x4400).value == VmError.UNSUPPORTED_VMCS_COMPONENT


# -- operand sizes (SDM 24.11.2, docs/semantics.md table) ------------------------------------------


@pytest.mark.parametrize("size", [S32, S64])
def test_vmread_16bit_field_is_zero_extended(with_current, size):
    """SDM 24.11.2: a 16-bit field read into a larger operand is zero-extended."""
    expect(with_current.vmwrite("GUEST_CS_SELECTOR", 0xFFFF), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_SELECTOR", size).value == 0xFFFF


@pytest.mark.parametrize(("size", "source"), [(S32, 0xFFFF_1234), (S64, 0xFFFF_FFFF_FFFF_1234)])
def test_vmwrite_16bit_field_takes_low_16_bits(with_current, size, source):
    """SDM 24.11.2: VMWRITE to a 16-bit field ignores the high bits of the source."""
    expect(with_current.vmwrite("GUEST_CS_SELECTOR", source, size), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_SELECTOR").value == 0x1234


def test_vmread_32bit_field_with_32bit_operand(with_current):
    """SDM 24.11.2: a 32-bit field read with a 32-bit operand is the field."""
    expect(with_current.vmwrite("GUEST_CS_LIMIT", 0xFFFF_FFFF), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_LIMIT", S32).value == 0xFFFF_FFFF


def test_vmread_32bit_field_with_64bit_operand_is_zero_extended(with_current):
    """SDM 24.11.2: a 32-bit field read into a 64-bit operand is zero-extended."""
    expect(with_current.vmwrite("GUEST_CS_LIMIT", 0x8000_0001), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_LIMIT", S64).value == 0x8000_0001


def test_vmwrite_32bit_field_with_32bit_operand_takes_the_source(with_current):
    """SDM 24.11.2: VMWRITE of a 32-bit field with a 32-bit operand writes the source."""
    expect(with_current.vmwrite("GUEST_CS_LIMIT", 0xDEAD_BEEF, S32), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_LIMIT").value == 0xDEAD_BEEF


def test_vmwrite_32bit_field_with_64bit_operand_takes_low_32_bits(with_current):
    """SDM 24.11.2: VMWRITE of a 32-bit field with a 64-bit operand ignores source bits 63:32."""
    expect(with_current.vmwrite("GUEST_CS_LIMIT", 0x1234_5678_9ABC_DEF0, S64), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_LIMIT").value == 0x9ABC_DEF0


WIDE = ["IO_BITMAP_A", "GUEST_RIP"]  # a 64-bit and a natural-width field


@pytest.mark.parametrize("name", WIDE)
def test_vmread_full_64bit_field_with_32bit_operand_gives_bits_31_0(with_current, name):
    """SDM 24.11.2: a 64-bit or natural-width field read with a 32-bit operand gives bits 31:0."""
    expect(with_current.vmwrite(name, 0x1122_3344_5566_7788), Status.SUCCEED)
    assert with_current.vmread(name, S32).value == 0x5566_7788


@pytest.mark.parametrize("name", WIDE)
def test_vmread_full_64bit_field_with_64bit_operand_gives_the_field(with_current, name):
    """SDM 24.11.2: a 64-bit or natural-width field read with a 64-bit operand gives the whole field."""
    expect(with_current.vmwrite(name, 0x1122_3344_5566_7788), Status.SUCCEED)
    assert with_current.vmread(name, S64).value == 0x1122_3344_5566_7788


@pytest.mark.parametrize("name", WIDE)
def test_vmwrite_full_64bit_field_with_32bit_operand_clears_bits_63_32(with_current, name):
    """SDM 24.11.2: VMWRITE of a 64-bit field with a 32-bit operand writes bits 31:0 and clears bits 63:32."""
    expect(with_current.vmwrite(name, 0xFFFF_FFFF_FFFF_FFFF), Status.SUCCEED)
    expect(with_current.vmwrite(name, 0x8765_4321, S32), Status.SUCCEED)
    assert with_current.vmread(name).value == 0x8765_4321


@pytest.mark.parametrize("size", [S32, S64])
def test_vmread_high_access_gives_bits_63_32(with_current, size):
    """SDM 24.11.2: the high access type of a 64-bit field reads bits 63:32 (zero-extended)."""
    expect(with_current.vmwrite("TSC_OFFSET", 0xAAAA_BBBB_CCCC_DDDD), Status.SUCCEED)
    assert with_current.vmread("TSC_OFFSET_HIGH", size).value == 0xAAAA_BBBB


def test_vmwrite_high_access_with_32bit_operand_keeps_bits_31_0(with_current):
    """SDM 24.11.2: VMWRITE of the high access type writes bits 63:32 and leaves bits 31:0."""
    expect(with_current.vmwrite("TSC_OFFSET", 0x1111_2222_3333_4444), Status.SUCCEED)
    expect(with_current.vmwrite("TSC_OFFSET_HIGH", 0x9999_8888, S32), Status.SUCCEED)
    assert with_current.vmread("TSC_OFFSET").value == 0x9999_8888_3333_4444


def test_vmwrite_high_access_with_64bit_operand_takes_source_bits_31_0(with_current):
    """SDM 24.11.2: with a 64-bit operand, the high access type takes bits 31:0 of the source."""
    expect(with_current.vmwrite("TSC_OFFSET", 0x1111_2222_3333_4444), Status.SUCCEED)
    expect(with_current.vmwrite("TSC_OFFSET_HIGH", 0xFFFF_FFFF_5555_6666, S64), Status.SUCCEED)
    assert with_current.vmread("TSC_OFFSET").value == 0x5555_6666_3333_4444


def test_32bit_software_writes_full_then_high(with_current):
    """kvm-unit-tests test_vmcs_high: a 32-bit VMM writes the full field (clears 63:32), then the high half."""
    expect(with_current.vmwrite("VMCS_LINK_POINTER", 0xFFFF_FFFF, S32), Status.SUCCEED)
    expect(with_current.vmwrite("VMCS_LINK_POINTER_HIGH", 0xFFFF_FFFF, S32), Status.SUCCEED)
    assert with_current.vmread("VMCS_LINK_POINTER").value == 0xFFFF_FFFF_FFFF_FFFF
    expect(with_current.vmwrite("VMCS_LINK_POINTER", 0x1000, S32), Status.SUCCEED)
    assert with_current.vmread("VMCS_LINK_POINTER_HIGH").value == 0


def test_encoding_bits_63_32_fail_only_with_64bit_operand(with_current):
    """SDM 24.11.2: in 64-bit mode, bits 63:32 of the encoding register must be 0 (error 12)."""
    outcome = with_current.execute(Op.VMREAD, index=1 << 32 | 0x681E, size=S64)
    assert outcome.error == VmError.UNSUPPORTED_VMCS_COMPONENT


def test_32bit_operand_cannot_carry_more_than_32_bits(with_current):
    """docs/semantics.md: a 32-bit operand holds 32 bits; the port refuses a wider encoding or source."""
    with pytest.raises(ValueError, match="32-bit operand"):
        with_current.execute(Op.VMREAD, index=1 << 32 | 0x681E, size=S32)
    with pytest.raises(ValueError, match="32-bit operand"):
        with_current.execute(Op.VMWRITE, index=0x681E, value=1 << 32, size=S32)


def test_access_rights_keep_all_32_bits(with_current):
    """docs/semantics.md choice 8: access-rights fields keep every bit VMWRITE writes."""
    expect(with_current.vmwrite("GUEST_CS_AR_BYTES", 0xFFFF_FFFF), Status.SUCCEED)
    assert with_current.vmread("GUEST_CS_AR_BYTES").value == 0xFFFF_FFFF


# -- storage classes (rtl/arch/layout.py) ----------------------------------------------------


def test_memory_resident_field_is_written_to_the_region_at_once(with_current):
    """docs/semantics.md: memory-resident fields are read and written in the region directly, never cached."""
    f = field("EPT_POINTER")
    location = layout.LOCATION[f.encoding]
    assert location.storage == layout.Storage.MEMORY
    expect(with_current.vmwrite("EPT_POINTER", 0x1234_5678_9000), Status.SUCCEED)
    assert with_current.memory.read(VMCS_A + 4 * location.word, 8) == 0x1234_5678_9000


def test_memory_resident_field_does_not_make_the_entry_dirty(with_current):
    """docs/semantics.md: memory-resident writes do not make the cache entry dirty."""
    entry = with_current.current_entry
    assert not with_current.cache_entries[entry].dirty
    expect(with_current.vmwrite("EPT_POINTER", 0x9000), Status.SUCCEED)
    assert not with_current.cache_entries[entry].dirty
    expect(with_current.vmwrite("GUEST_RIP", 0x9000), Status.SUCCEED)
    assert with_current.cache_entries[entry].dirty


def test_memory_resident_field_reads_what_memory_holds(with_current):
    """docs/semantics.md choice 11: software that writes the region of an active VMCS sees memory-resident changes."""
    location = layout.LOCATION[field("TSC_MULTIPLIER").encoding]
    with_current.memory.write(VMCS_A + 4 * location.word, 8, 0x0123_4567_89AB_CDEF)
    assert with_current.vmread("TSC_MULTIPLIER").value == 0x0123_4567_89AB_CDEF


def test_memory_resident_16bit_field_reads_low_16_bits_of_its_word(with_current):
    """docs/semantics.md: a VMREAD of a 16-bit field from memory returns the low 16 bits of its word."""
    f = field("VIRTUAL_PROCESSOR_ID")
    location = layout.LOCATION[f.encoding]
    assert f.width == FieldWidth.W16 and location.storage == layout.Storage.MEMORY
    with_current.memory.write(VMCS_A + 4 * location.word, 4, 0xABCD_0042)
    assert with_current.vmread("VIRTUAL_PROCESSOR_ID").value == 0x0042


def test_on_die_field_is_not_in_memory_until_written_back(with_current):
    """docs/semantics.md: the region holds the image of on-die fields only after a write-back."""
    location = layout.LOCATION[field("GUEST_RSP").encoding]
    assert location.storage == layout.Storage.ON_DIE
    expect(with_current.vmwrite("GUEST_RSP", 0x5555), Status.SUCCEED)
    assert with_current.memory.read(VMCS_A + 4 * location.word, 8) == 0


def test_high_access_is_the_upper_word_of_the_pair_in_the_region(with_current):
    """rtl/arch/layout.py: the high access type is the upper word of its field's pair, in the image too."""
    location = layout.LOCATION[field("TSC_OFFSET").encoding]
    expect(with_current.vmwrite("TSC_OFFSET_HIGH", 0xAABB_CCDD, S32), Status.SUCCEED)
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    assert with_current.memory.read(VMCS_A + 4 * location.word, 4) == 0
    assert with_current.memory.read(VMCS_A + 4 * location.word + 4, 4) == 0xAABB_CCDD
