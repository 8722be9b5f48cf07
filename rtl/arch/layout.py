"""Where each VMCS component lives: the VMCS-region layout and the storage classes.

# Ref: Intel SDM vol. 3C, 24.2 "Format of the VMCS region" (revision identifier
# at offset 0, VMX-abort indicator at offset 4, the rest implementation-specific)
# and 24.11.1 "Software use of the VMCS and related structures".

vmxu's region, in 32-bit words (a region is 4 KiB, IA32_VMX_BASIC[44:32]):

======================  =========================================================
word                    contents
======================  =========================================================
0                       VMCS revision identifier (bits 30:0), shadow indicator (31)
1                       VMX-abort indicator
2                       launch state: bit 0 launched, bit 1 "VMXOFF since launch"
3                       reserved, written as 0 by nothing, read by nothing
4 .. 4+2*SLOTS_USED-1   image of the on-die fields: slot s is words 4+2s (low
                        half) and 5+2s (high half)
then                    memory-resident fields, one word each (16/32-bit) or an
                        aligned pair (64-bit, natural width)
======================  =========================================================

Storage classes: a field is *on-die* when VM entries, VM exits or the VMX
instructions themselves use it; those live in the on-die VMCS cache (block RAM,
64-bit slots) while the VMCS is active, and the region holds their image only
after a write-back (VMCLEAR, VMXOFF, or eviction from the cache). The other
fields belong to features vmxu does not implement (EPT, posted interrupts, PML,
VM functions, APIC virtualization, ...); they stay *memory-resident*: VMREAD and
VMWRITE reach them in the region over the bus.

On-die packing: 64-bit and natural-width fields take a whole slot; 16- and
32-bit fields take half a slot, two to a slot. The high access type of a 64-bit
field is the upper half of the same slot (or the upper word of the pair in
memory).
"""

from dataclasses import dataclass

from amaranth.lib import enum

from .fields import FIELDS, AccessType, Field, FieldWidth

__all__ = [
    "Storage",
    "FieldLocation",
    "LOCATION",
    "location",
    "REVISION_WORD",
    "ABORT_WORD",
    "LAUNCH_WORD",
    "IMAGE_FIRST_WORD",
    "SLOTS_USED",
    "SLOTS_PER_VMCS",
    "REGION_BYTES",
    "REGION_WORDS_USED",
    "LAUNCH_LAUNCHED",
    "LAUNCH_VMXOFF",
    "CACHE_ENTRIES",
]


class Storage(enum.Enum, shape=1):
    ON_DIE = 0
    MEMORY = 1


REVISION_WORD = 0
ABORT_WORD = 1
LAUNCH_WORD = 2
IMAGE_FIRST_WORD = 4

#: Launch-state word bits (word 2 of the region).
LAUNCH_LAUNCHED = 1 << 0
#: Set when a launched VMCS was written back by VMXOFF: VMRESUME then fails with error 6.
LAUNCH_VMXOFF = 1 << 1

REGION_BYTES = 4096

#: VMCSs the on-die cache holds at once (the RTL and the model take this as a parameter).
CACHE_ENTRIES = 4

# Fields of features vmxu does not implement: VMREAD/VMWRITE reach them in memory.
_MEMORY_RESIDENT = frozenset(
    {
        # VPID, posted interrupts, EPT, PML, VM functions, #VE
        "VIRTUAL_PROCESSOR_ID",
        "POSTED_INTR_NV",
        "EPTP_INDEX",
        "LAST_PID_POINTER_INDEX",
        "PML_ADDRESS",
        "POSTED_INTR_DESC_ADDR",
        "VM_FUNCTION_CONTROL",
        "EPT_POINTER",
        "EPTP_LIST_ADDRESS",
        "VE_INFORMATION_ADDRESS",
        "PID_POINTER_TABLE",
        "GUEST_PHYSICAL_ADDRESS",
        "GUEST_PML_INDEX",
        "GUEST_PDPTR0",
        "GUEST_PDPTR1",
        "GUEST_PDPTR2",
        "GUEST_PDPTR3",
        # APIC virtualization and virtual-interrupt delivery
        "VIRTUAL_APIC_PAGE_ADDR",
        "APIC_ACCESS_ADDR",
        "EOI_EXIT_BITMAP0",
        "EOI_EXIT_BITMAP1",
        "EOI_EXIT_BITMAP2",
        "EOI_EXIT_BITMAP3",
        "TPR_THRESHOLD",
        "GUEST_INTR_STATUS",
        # VMCS shadowing, XSAVES, SGX, TSC scaling, tertiary controls, PAUSE-loop, notify
        "VMREAD_BITMAP",
        "VMWRITE_BITMAP",
        "XSS_EXIT_BITMAP",
        "ENCLS_EXITING_BITMAP",
        "TSC_MULTIPLIER",
        "TERTIARY_VM_EXEC_CONTROL",
        "PLE_GAP",
        "PLE_WINDOW",
        "NOTIFY_WINDOW",
        # MPX and processor trace state
        "GUEST_BNDCFGS",
        "GUEST_IA32_RTIT_CTL",
    }
)


@dataclass(frozen=True)
class FieldLocation:
    """Where a component's bits are.

    ``word`` is the region word of the component's low 32 bits (for a high
    access, the upper word of the pair); ``slot``/``half`` locate it in the
    on-die cache entry when ``storage`` is on-die (``half`` 0 is bits 31:0 of
    the 64-bit slot). ``words`` is how many region words the component spans.
    """

    storage: Storage
    word: int
    words: int

    @property
    def slot(self) -> int:
        assert self.storage == Storage.ON_DIE
        return (self.word - IMAGE_FIRST_WORD) // 2

    @property
    def half(self) -> int:
        return (self.word - IMAGE_FIRST_WORD) & 1


def _storage(field: Field) -> Storage:
    name = field.name[:-5] if field.access == AccessType.HIGH else field.name
    return Storage.MEMORY if name in _MEMORY_RESIDENT else Storage.ON_DIE


def _assign() -> tuple[dict[int, FieldLocation], int, int]:
    full_fields = [f for f in FIELDS if f.access == AccessType.FULL]
    wide = [f for f in full_fields if f.width.bits == 64]
    narrow = [f for f in full_fields if f.width.bits < 64]
    locations: dict[int, FieldLocation] = {}
    word = IMAGE_FIRST_WORD
    # On-die image: whole slots first, then the 16/32-bit fields two to a slot.
    for f in wide:
        if _storage(f) == Storage.ON_DIE:
            locations[f.encoding] = FieldLocation(Storage.ON_DIE, word, 2)
            word += 2
    for f in narrow:
        if _storage(f) == Storage.ON_DIE:
            locations[f.encoding] = FieldLocation(Storage.ON_DIE, word, 1)
            word += 1
    word += word & 1
    slots_used = (word - IMAGE_FIRST_WORD) // 2
    # Memory-resident fields after the image.
    for f in wide:
        if _storage(f) == Storage.MEMORY:
            locations[f.encoding] = FieldLocation(Storage.MEMORY, word, 2)
            word += 2
    for f in narrow:
        if _storage(f) == Storage.MEMORY:
            locations[f.encoding] = FieldLocation(Storage.MEMORY, word, 1)
            word += 1
    # High halves share their full field's storage: the upper word of the pair.
    for f in FIELDS:
        if f.access == AccessType.HIGH:
            full = locations[f.full_encoding]
            locations[f.encoding] = FieldLocation(full.storage, full.word + 1, 1)
    if word * 4 > REGION_BYTES:
        raise ValueError("VMCS layout does not fit the region")
    return locations, slots_used, word


LOCATION, SLOTS_USED, REGION_WORDS_USED = _assign()

#: Slots reserved per cache entry (a power of two, so an entry's base is a shift).
SLOTS_PER_VMCS = 1 << (SLOTS_USED - 1).bit_length()


def location(field: Field) -> FieldLocation:
    return LOCATION[field.encoding]


def _check_width_alignment() -> None:
    for f in FIELDS:
        loc = LOCATION[f.encoding]
        if f.access == AccessType.FULL and f.width.bits == 64 and (loc.word - IMAGE_FIRST_WORD) % 2:
            raise ValueError(f"{f.name}: 64-bit field not on a slot boundary")
        if f.width in (FieldWidth.W16, FieldWidth.W32) and loc.words != 1:
            raise ValueError(f"{f.name}: narrow field spans {loc.words} words")


_check_width_alignment()
