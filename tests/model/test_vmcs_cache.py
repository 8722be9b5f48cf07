"""The on-die VMCS cache and the region (docs/semantics.md "The on-die VMCS cache and the region").

Also kvm-unit-tests test_vmcs_lifecycle and test_vmclear_flushing: data survives
VMCLEAR and VMPTRLD of several VMCSs, and a cleared VMCS copied elsewhere reads back the same.
"""

from __future__ import annotations

from model_setup import (
    VMCS_A,
    VMCS_B,
    VMCS_C,
    VMCS_D,
    VMCS_E,
    VMXON_REGION,
    enable_vmx,
    enter_vmx_root,
    expect,
    load_new_vmcs,
    write_revision,
)

from vmxu.rtl.arch import layout
from vmxu.rtl.arch.errors import VmError
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import Status
from vmxu.sim.model import PhysicalMemory, VmxModel

FOUR = (VMCS_A, VMCS_B, VMCS_C, VMCS_D)
IMAGE_BYTES = 4 * 2 * layout.SLOTS_USED


def image_offset(name):
    return 4 * layout.LOCATION[FIELD_BY_NAME[name].encoding].word


def cached_addresses(model):
    return {entry.number: entry.addr for entry in model.cache_entries if entry.valid}


def region_image(model, addr):
    return [model.memory.read_word((addr >> 2) + layout.IMAGE_FIRST_WORD + i) for i in range(2 * layout.SLOTS_USED)]


def test_cache_has_four_entries_by_default(model):
    """rtl/arch/layout.py: CACHE_ENTRIES (4) VMCSs are cached at once."""
    assert len(model.cache_entries) == layout.CACHE_ENTRIES == 4
    assert not any(entry.valid for entry in model.cache_entries)


def test_fill_uses_lowest_numbered_invalid_entries(in_root):
    """docs/semantics.md fill: the victim is the lowest-numbered invalid entry."""
    for addr in FOUR:
        load_new_vmcs(in_root, addr)
    assert cached_addresses(in_root) == dict(enumerate(FOUR))
    assert in_root.current_entry == 3


def test_fill_replaces_least_recently_made_current(in_root):
    """docs/semantics.md fill: with no invalid entry, the victim is the least recently made current."""
    for addr in FOUR:
        load_new_vmcs(in_root, addr)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    write_revision(in_root, VMCS_E)
    expect(in_root.vmptrld(VMCS_E), Status.SUCCEED)
    assert cached_addresses(in_root) == {0: VMCS_A, 1: VMCS_E, 2: VMCS_C, 3: VMCS_D}
    assert in_root.lru_order == (2, 3, 0, 1)


def test_vmptrld_hit_makes_entry_most_recently_used(in_root):
    """docs/semantics.md fill: an entry hit by VMPTRLD becomes the most recently used."""
    for addr in FOUR:
        load_new_vmcs(in_root, addr)
    expect(in_root.vmptrld(VMCS_B), Status.SUCCEED)
    assert in_root.lru_order[-1] == 1
    assert in_root.current_entry == 1


def test_vmclear_frees_entry_without_changing_lru_order(in_root):
    """docs/semantics.md VMCLEAR: the entry is invalidated; the LRU order is not changed; the next fill takes it."""
    for addr in FOUR:
        load_new_vmcs(in_root, addr)
    order = in_root.lru_order
    expect(in_root.vmclear(VMCS_C), Status.SUCCEED)
    assert in_root.lru_order == order
    assert not in_root.cache_entries[2].valid
    write_revision(in_root, VMCS_E)
    expect(in_root.vmptrld(VMCS_E), Status.SUCCEED)
    assert cached_addresses(in_root) == {0: VMCS_A, 1: VMCS_B, 2: VMCS_E, 3: VMCS_D}


def test_dirty_victim_is_written_back_before_the_fill(in_root):
    """docs/semantics.md fill: a dirty victim is written back first (image words, then the launch word)."""
    load_new_vmcs(in_root, VMCS_A)
    expect(in_root.vmwrite("GUEST_RSP", 0xAAAA_0000), Status.SUCCEED)
    for addr in (VMCS_B, VMCS_C, VMCS_D):
        load_new_vmcs(in_root, addr)
    assert in_root.memory.read(VMCS_A + image_offset("GUEST_RSP"), 8) == 0
    load_new_vmcs(in_root, VMCS_E)
    assert VMCS_A not in cached_addresses(in_root).values()
    assert in_root.memory.read(VMCS_A + image_offset("GUEST_RSP"), 8) == 0xAAAA_0000


def test_clean_victim_is_not_written_back(in_root):
    """docs/semantics.md: only a dirty victim is written back; a clean one leaves its region as it was."""
    for addr in FOUR:
        load_new_vmcs(in_root, addr)
    in_root.memory.write(VMCS_A + image_offset("GUEST_RSP"), 8, 0x5151)
    load_new_vmcs(in_root, VMCS_E)
    assert in_root.memory.read(VMCS_A + image_offset("GUEST_RSP"), 8) == 0x5151


def test_fill_reads_the_image_and_the_launch_word(in_root):
    """docs/semantics.md fill: every image word and the launch word are read from the new region."""
    write_revision(in_root, VMCS_A)
    in_root.memory.write(VMCS_A + image_offset("GUEST_RIP"), 8, 0x1234_5678)
    in_root.memory.write(VMCS_A + 4 * layout.LAUNCH_WORD, 4, layout.LAUNCH_LAUNCHED)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    entry = in_root.cache_entries[in_root.current_entry]
    assert entry.launch == layout.LAUNCH_LAUNCHED
    assert not entry.dirty
    assert in_root.vmread("GUEST_RIP").value == 0x1234_5678


def test_vmptrld_of_cached_vmcs_skips_the_fill(with_current):
    """docs/semantics.md choice 10/11: a cached VMCS is not re-read; writes to an active region are not seen."""
    expect(with_current.vmwrite("GUEST_RIP", 0x1111), Status.SUCCEED)
    with_current.memory.write(VMCS_A + image_offset("GUEST_RIP"), 8, 0x2222)
    expect(with_current.vmptrld(VMCS_A), Status.SUCCEED)
    assert with_current.vmread("GUEST_RIP").value == 0x1111


def test_vmptrld_of_cached_vmcs_keeps_earlier_vmwrites(in_root):
    """SDM 24.1: switching between cached VMCSs keeps each one's VMWRITEs."""
    load_new_vmcs(in_root, VMCS_A)
    expect(in_root.vmwrite("GUEST_RIP", 0xA), Status.SUCCEED)
    load_new_vmcs(in_root, VMCS_B)
    expect(in_root.vmwrite("GUEST_RIP", 0xB), Status.SUCCEED)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert in_root.vmread("GUEST_RIP").value == 0xA
    expect(in_root.vmptrld(VMCS_B), Status.SUCCEED)
    assert in_root.vmread("GUEST_RIP").value == 0xB


def test_vmcs_lifecycle_values_persist_across_vmclear_and_vmptrld(in_root):
    """kvm-unit-tests test_vmcs_lifecycle: values persist across VMCLEAR/VMPTRLD of two VMCSs (SDM 24.11)."""
    load_new_vmcs(in_root, VMCS_A)
    expect(in_root.vmwrite("GUEST_RIP", 0xA0), Status.SUCCEED)
    load_new_vmcs(in_root, VMCS_B)
    expect(in_root.vmwrite("GUEST_RIP", 0xB0), Status.SUCCEED)
    expect(in_root.vmclear(VMCS_A), Status.SUCCEED)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert in_root.vmread("GUEST_RIP").value == 0xA0
    expect(in_root.vmclear(VMCS_B), Status.SUCCEED)
    expect(in_root.vmptrld(VMCS_B), Status.SUCCEED)
    assert in_root.vmread("GUEST_RIP").value == 0xB0
    expect(in_root.vmclear(VMCS_A), Status.SUCCEED)
    expect(in_root.vmclear(VMCS_B), Status.SUCCEED)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert in_root.vmread("GUEST_RIP").value == 0xA0


def test_vmclear_flushing_copied_region_reads_back_the_same(in_root):
    """kvm-unit-tests test_vmclear_flushing: after VMCLEAR the region holds the whole VMCS; a copy loads identically."""
    load_new_vmcs(in_root, VMCS_A)
    values = {"GUEST_RIP": 0x1_0000, "GUEST_CS_SELECTOR": 0x8, "EPT_POINTER": 0x5000, "TSC_OFFSET": 0x1234_5678_9ABC}
    for name, value in values.items():
        expect(in_root.vmwrite(name, value), Status.SUCCEED)
    expect(in_root.vmclear(VMCS_A), Status.SUCCEED)
    for offset in range(0, layout.REGION_BYTES, 4):
        in_root.memory.write(VMCS_B + offset, 4, in_root.memory.read(VMCS_A + offset, 4))
    expect(in_root.vmptrld(VMCS_B), Status.SUCCEED)
    for name, value in values.items():
        assert in_root.vmread(name).value == value


def test_vmclear_of_non_current_cached_vmcs_writes_back(in_root):
    """kvm-unit-tests test_vmclear_flushing: VMCLEAR of a non-current active VMCS flushes it too."""
    load_new_vmcs(in_root, VMCS_A)
    expect(in_root.vmwrite("GUEST_RSP", 0x4242), Status.SUCCEED)
    load_new_vmcs(in_root, VMCS_B)
    expect(in_root.vmclear(VMCS_A), Status.SUCCEED)
    assert in_root.memory.read(VMCS_A + image_offset("GUEST_RSP"), 8) == 0x4242
    assert in_root.current_vmcs_pointer == VMCS_B


def test_write_back_writes_every_image_word(with_current):
    """docs/semantics.md write-back: every word of the on-die image is written (stale memory is overwritten)."""
    entry = with_current.cache_entries[with_current.current_entry]
    for offset in range(0, IMAGE_BYTES, 4):
        with_current.memory.write(VMCS_A + 4 * layout.IMAGE_FIRST_WORD + offset, 4, 0xDEAD_BEEF)
    expect(with_current.vmwrite("GUEST_RIP", 7), Status.SUCCEED)
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    image = list(entry.image)
    image[(image_offset("GUEST_RIP") >> 2) - layout.IMAGE_FIRST_WORD] = 7
    assert region_image(with_current, VMCS_A) == image


def test_vmclear_of_clean_vmcs_writes_only_the_launch_word(with_current):
    """docs/semantics.md VMCLEAR: a cached but clean VMCS is not written back; its launch word becomes 0."""
    with_current.memory.write(VMCS_A + image_offset("GUEST_RIP"), 8, 0x77)
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    assert with_current.memory.read(VMCS_A + image_offset("GUEST_RIP"), 8) == 0x77


def test_vmfail_valid_makes_the_entry_dirty_and_reaches_the_region(with_current):
    """docs/semantics.md dirty: VMfailValid writes the error field, makes the entry dirty, VMCLEAR writes it back."""
    assert not with_current.cache_entries[with_current.current_entry].dirty
    expect(with_current.vmptrld(VMXON_REGION), Status.FAIL_VALID)
    assert with_current.cache_entries[with_current.current_entry].dirty
    expect(with_current.vmclear(VMCS_A), Status.SUCCEED)
    assert with_current.memory.read(VMCS_A + image_offset("VM_INSTRUCTION_ERROR"), 4) == 10


def test_vmxoff_writes_back_dirty_entries_and_invalidates_all(in_root):
    """docs/semantics.md VMXOFF: every dirty entry is written back, then every entry is invalidated."""
    load_new_vmcs(in_root, VMCS_A)
    expect(in_root.vmwrite("GUEST_RSP", 0xA), Status.SUCCEED)
    load_new_vmcs(in_root, VMCS_B)
    load_new_vmcs(in_root, VMCS_C)
    expect(in_root.vmwrite("GUEST_RSP", 0xC), Status.SUCCEED)
    in_root.memory.write(VMCS_B + image_offset("GUEST_RSP"), 8, 0xBB)
    expect(in_root.vmxoff(), Status.SUCCEED)
    assert not any(entry.valid for entry in in_root.cache_entries)
    assert in_root.memory.read(VMCS_A + image_offset("GUEST_RSP"), 8) == 0xA
    assert in_root.memory.read(VMCS_B + image_offset("GUEST_RSP"), 8) == 0xBB
    assert in_root.memory.read(VMCS_C + image_offset("GUEST_RSP"), 8) == 0xC


def test_vmxoff_marks_only_launched_entries(in_root):
    """docs/semantics.md VMXOFF: bit 1 of the launch word is set only for a launched VMCS."""
    load_new_vmcs(in_root, VMCS_A)
    expect(in_root.vmwrite("GUEST_RSP", 1), Status.SUCCEED)
    expect(in_root.vmxoff(), Status.SUCCEED)
    assert in_root.memory.read(VMCS_A + 4 * layout.LAUNCH_WORD, 4) == 0


def test_model_memory_is_a_pure_function_of_the_operations():
    """The scoreboard compares memories word by word: two models given the same operations agree."""
    memories = []
    for _ in range(2):
        model = VmxModel(PhysicalMemory())
        enter_vmx_root(model)
        for i, addr in enumerate((VMCS_A, VMCS_B, VMCS_C, VMCS_D, VMCS_E)):
            load_new_vmcs(model, addr)
            expect(model.vmwrite("GUEST_RIP", i + 1), Status.SUCCEED)
        expect(model.vmxoff(), Status.SUCCEED)
        memories.append(model.memory.words())
    assert memories[0] == memories[1]
    assert len(memories[0]) > 5


def test_single_entry_cache_evicts_the_current_vmcs(in_root):
    """docs/semantics.md: the cache size is a parameter; with one entry every new VMPTRLD evicts the current VMCS."""
    model = VmxModel(in_root.memory, cache_entries=1)
    enable_vmx(model)
    expect(model.vmxon(VMXON_REGION), Status.SUCCEED)
    load_new_vmcs(model, VMCS_A)
    expect(model.vmwrite("GUEST_RIP", 0xA), Status.SUCCEED)
    load_new_vmcs(model, VMCS_B)
    assert model.memory.read(VMCS_A + image_offset("GUEST_RIP"), 8) == 0xA
    expect(model.vmptrld(VMCS_A), Status.SUCCEED)
    assert model.vmread("GUEST_RIP").value == 0xA


def test_vmxoff_marks_a_clean_launched_vmcs(in_root):
    """docs/semantics.md VMXOFF, SDM 30.4 error 6: a launched VMCS in the cache is marked even when clean.

    Only its launch word is written (not the image), and a VMRESUME after VMXOFF
    and VMXON then fails with error 6.
    """
    write_revision(in_root, VMCS_A)
    in_root.memory.write(VMCS_A + 4 * layout.LAUNCH_WORD, 4, layout.LAUNCH_LAUNCHED)
    image_word = VMCS_A + 4 * layout.IMAGE_FIRST_WORD
    in_root.memory.write(image_word, 4, 0x1234)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert not in_root.cache_entries[in_root.current_entry].dirty
    in_root.memory.write(image_word, 4, 0x5678)  # not VMCS data the unit writes back
    expect(in_root.vmxoff(), Status.SUCCEED)
    marked = layout.LAUNCH_LAUNCHED | layout.LAUNCH_VMXOFF
    assert in_root.memory.read(VMCS_A + 4 * layout.LAUNCH_WORD, 4) == marked
    assert in_root.memory.read(image_word, 4) == 0x5678
    expect(in_root.vmxon(VMXON_REGION), Status.SUCCEED)
    expect(in_root.vmptrld(VMCS_A), Status.SUCCEED)
    assert in_root.vmresume().error == VmError.VMRESUME_AFTER_VMXOFF
