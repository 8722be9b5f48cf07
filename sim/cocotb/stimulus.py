"""Random operation sequences for the differential run of the VMX unit against the model.

A ``RandomProgram`` plays a VMM with a few VMCS regions (more than the cache
holds, so VMPTRLD evicts), mixing well-formed work (VMREAD/VMWRITE of every
field at both operand sizes and access types, VMPTRLD/VMCLEAR/VMPTRST, VMCSs
filled to pass every VM-entry check and then corrupted) with every error path
(bad addresses, the VMXON pointer, wrong revisions, memory outside RAM,
unsupported encodings, read-only fields, privilege and mode faults, MSR and
element writes the processor refuses). Sequences are pure functions of the
seed, so a failing run replays exactly.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC
from vmxu.rtl.arch.fields import FIELD_BY_NAME, FIELDS
from vmxu.rtl.arch.ops import Op, OperandSize
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER, ELEMENT_BY_NAME, ELEMENTS, INTERRUPTIBILITY, RFLAGS, element_id

__all__ = ["Request", "MemoryWrite", "RandomProgram", "entry_ready_fields", "VMXON_REGION", "VMCS_REGIONS"]

VMXON_REGION = 0x1000
VMCS_REGIONS = tuple(0x2000 + 0x1000 * i for i in range(6))
BAD_REVISION_REGION = 0x9000
OUTSIDE_RAM = 0x8000_0000


@dataclass(frozen=True)
class Request:
    op: Op
    index: int = 0
    value: int = 0
    size: OperandSize = OperandSize.S64


@dataclass(frozen=True)
class MemoryWrite:
    addr: int
    nbytes: int
    value: int


def entry_ready_fields(*, ia32e_host: bool = False) -> dict[str, int]:
    """VMCS field values that pass every check on controls and host state (SDM 26.2)."""
    hass = EXIT.bit("HOST_ADDR_SPACE_SIZE") if ia32e_host else 0
    return {
        "PIN_BASED_VM_EXEC_CONTROL": PIN.true_allowed0,
        "CPU_BASED_VM_EXEC_CONTROL": PROC.true_allowed0,
        "VM_EXIT_CONTROLS": EXIT.true_allowed0 | hass,
        "VM_ENTRY_CONTROLS": ENTRY.true_allowed0,
        "CR3_TARGET_COUNT": 0,
        "VM_EXIT_MSR_STORE_COUNT": 0,
        "VM_EXIT_MSR_LOAD_COUNT": 0,
        "VM_ENTRY_MSR_LOAD_COUNT": 0,
        "VM_ENTRY_INTR_INFO_FIELD": 0,
        "HOST_CR0": msrs.CR0_FIXED0,
        "HOST_CR4": msrs.CR4_FIXED0 | (CR4.PAE if ia32e_host else 0),
        "HOST_CR3": 0x10_0000,
        "HOST_CS_SELECTOR": 0x08,
        "HOST_SS_SELECTOR": 0x10,
        "HOST_DS_SELECTOR": 0x10,
        "HOST_ES_SELECTOR": 0x10,
        "HOST_FS_SELECTOR": 0,
        "HOST_GS_SELECTOR": 0,
        "HOST_TR_SELECTOR": 0x18,
        "HOST_RIP": 0xFFFF_8000_0010_0000 if ia32e_host else 0x10_0000,
        "HOST_IA32_SYSENTER_ESP": 0,
        "HOST_IA32_SYSENTER_EIP": 0,
        "HOST_FS_BASE": 0,
        "HOST_GS_BASE": 0,
        "HOST_TR_BASE": 0x8000,
        "HOST_GDTR_BASE": 0x9000,
        "HOST_IDTR_BASE": 0xA000,
    }


# Values that sit on the edges of the checks: canonical limits, alignment, fixed bits.
_INTERESTING = (
    0,
    1,
    0xF,
    0x10,
    0xFFF,
    0x1000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0x0000_7FFF_FFFF_FFFF,
    0x0000_8000_0000_0000,
    0xFFFF_8000_0000_0000,
    0xFFFF_7FFF_FFFF_FFFF,
    0xFFFF_FFFF_FFFF_FFFF,
    0x0007_0406_0007_0406,
    0x8000_0021,
    0x8000_0031,
    0x2000,
    0x2020,
    0x22020,
)

_ENTRY_CHECKED = tuple(entry_ready_fields()) + (
    "SECONDARY_VM_EXEC_CONTROL",
    "IO_BITMAP_A",
    "IO_BITMAP_B",
    "MSR_BITMAP",
    "VM_EXIT_MSR_STORE_ADDR",
    "VM_EXIT_MSR_LOAD_ADDR",
    "VM_ENTRY_MSR_LOAD_ADDR",
    "VM_ENTRY_EXCEPTION_ERROR_CODE",
    "VM_ENTRY_INSTRUCTION_LEN",
    "GUEST_CR0",
    "HOST_IA32_PAT",
    "HOST_IA32_EFER",
    "HOST_IA32_PERF_GLOBAL_CTRL",
)

_MSRS = tuple(m.number for m in msrs.MSRS) + (0x10, 0x1B, 0xC000_0102, 0x4000_0000)

# The processor's normal mode here (32-bit protected mode with paging, CPL 0), and
# the unusual modes the run visits: the element values that make each one.
_NORMAL = {
    "efer": 0,
    "cs.ar": 0x9B,
    "rflags": 0x2,
    "ss.ar": 0x93,
    "interruptibility": 0,
    "cr0": CR0.PE | CR0.NE | CR0.PG,
    "cr4": CR4.VMXE,
}
_MODES = {
    "ia32e": {"efer": EFER.LME | EFER.LMA, "cs.ar": 0x9B | AR.L},
    "compatibility": {"efer": EFER.LME | EFER.LMA},
    "virtual-8086": {"rflags": 0x2 | RFLAGS.VM},
    "cpl3": {"ss.ar": 0x93 | (3 << AR.DPL_SHIFT)},
    "mov-ss blocking": {"interruptibility": INTERRUPTIBILITY.BLOCKING_BY_MOV_SS},
    "cr0.cd": {"cr0": CR0.PE | CR0.NE | CR0.PG | CR0.CD},
    "cr4.pae": {"cr4": CR4.VMXE | CR4.PAE},
    "odd cr0": {"cr0": None},
    "odd cr4": {"cr4": None},
}


class RandomProgram:
    """An endless, seeded sequence of requests and memory writes (see the module docstring)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def setup(self) -> Iterator[Request | MemoryWrite]:
        """What firmware and a VMM do first: enable VMX, write revision identifiers, VMXON."""
        yield Request(
            Op.WRMSR, msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX
        )
        yield Request(Op.SET, element_id("cr0"), CR0.PE | CR0.NE | CR0.PG)
        yield Request(Op.SET, element_id("cr4"), CR4.VMXE)
        for region in (VMXON_REGION, *VMCS_REGIONS):
            yield MemoryWrite(region, 4, msrs.VMCS_REVISION_ID)
        yield MemoryWrite(BAD_REVISION_REGION, 4, msrs.VMCS_REVISION_ID + 1)
        yield Request(Op.VMXON, value=VMXON_REGION)

    def operations(self) -> Iterator[Request | MemoryWrite]:
        choices = [
            (20, self._vmread),
            (20, self._vmwrite),
            (3, self._bad_encoding),
            (12, self._vmptrld),
            (5, self._vmclear),
            (2, lambda: [Request(Op.VMPTRST)]),
            (6, self._launch),
            (1, lambda: [Request(Op.VMCALL)]),
            (1, self._vmxoff_vmxon),
            (2, lambda: [Request(Op.VMXON, value=self._address())]),
            (4, self._rdmsr),
            (3, self._wrmsr),
            (4, lambda: [Request(Op.GET, self.rng.randrange(len(ELEMENTS)))]),
            (4, self._set),
            (3, self._mode_change),
            (2, self._memory_write),
        ]
        weights = [w for w, _ in choices]
        makers = [f for _, f in choices]
        while True:
            yield from self.rng.choices(makers, weights)[0]()

    # -- pieces ----------------------------------------------------------------

    def _size(self) -> OperandSize:
        return self.rng.choice((OperandSize.S32, OperandSize.S64))

    def _value(self, size: OperandSize = OperandSize.S64) -> int:
        r = self.rng.random()
        if r < 0.4:
            v = self.rng.choice(_INTERESTING)
        elif r < 0.7:
            v = self.rng.getrandbits(64)
        else:
            v = self.rng.getrandbits(self.rng.choice((8, 16, 32)))
        return v & ((1 << size.bits) - 1)

    def _address(self) -> int:
        r = self.rng.random()
        if r < 0.75:
            return self.rng.choice(VMCS_REGIONS)
        return self.rng.choice(
            (VMXON_REGION, BAD_REVISION_REGION, OUTSIDE_RAM, 0x2004, 0x1_0000_2000, 0xFFFF_F000, 0x9_8000, 0)
        )

    def _vmread(self):
        field = self.rng.choice(FIELDS)
        return [Request(Op.VMREAD, field.encoding, size=self._size())]

    def _vmwrite(self):
        field = self.rng.choice(FIELDS)
        size = self._size()
        return [Request(Op.VMWRITE, field.encoding, self._value(size), size)]

    def _bad_encoding(self):
        size = self._size()
        encoding = self.rng.choice(
            (
                self.rng.getrandbits(15),
                self.rng.choice(FIELDS).encoding | 1,
                self.rng.choice(FIELDS).encoding | (1 << self.rng.randrange(12, 32)),
                self.rng.getrandbits(size.bits),
            )
        )
        op = self.rng.choice((Op.VMREAD, Op.VMWRITE))
        return [Request(op, encoding, self._value(size), size)]

    def _vmptrld(self):
        return [Request(Op.VMPTRLD, value=self._address())]

    def _vmclear(self):
        return [Request(Op.VMCLEAR, value=self._address())]

    def _launch(self):
        """Fill the current VMCS to pass the checks, break a few fields, VMLAUNCH or VMRESUME."""
        requests = []
        if self.rng.random() < 0.7:
            ready = entry_ready_fields(ia32e_host=self.rng.random() < 0.3)
            for name, value in ready.items():
                requests.append(Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value))
            for _ in range(self.rng.choice((0, 0, 1, 1, 2))):
                name = self.rng.choice(_ENTRY_CHECKED)
                if name in ready and self.rng.random() < 0.5:
                    value = ready[name] ^ (1 << self.rng.randrange(64))
                else:
                    value = self._value()
                requests.append(Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value))
        requests.append(Request(self.rng.choice((Op.VMLAUNCH, Op.VMLAUNCH, Op.VMRESUME))))
        return requests

    def _vmxoff_vmxon(self):
        return [Request(Op.VMXOFF), Request(Op.VMXON, value=VMXON_REGION)]

    def _rdmsr(self):
        return [Request(Op.RDMSR, self.rng.choice(_MSRS))]

    def _wrmsr(self):
        return [Request(Op.WRMSR, self.rng.choice(_MSRS), self._value())]

    def _set(self):
        """An element write with a random value; the mode elements change only through _mode_change."""
        element = self.rng.choice([e for e in ELEMENTS if e.name not in _NORMAL])
        return [Request(Op.SET, element_id(element.name), self._value() & element.mask)]

    def _mode_change(self):
        """Back to the normal mode, then a few operations in an unusual one (IA-32e, compatibility,
        virtual-8086, CPL 3, MOV-SS blocking, odd CR0/CR4), then back; IA-32e mode may last longer."""
        requests = [Request(Op.SET, element_id(name), value) for name, value in _NORMAL.items()]
        mode = self.rng.choice(list(_MODES))
        for name, value in _MODES[mode].items():
            if value is None:
                value = self._value() & ELEMENT_BY_NAME[name].mask
            requests.append(Request(Op.SET, element_id(name), value))
        for _ in range(self.rng.randrange(1, 4)):
            requests += self.rng.choice((self._vmread, self._vmptrld, self._launch, self._vmwrite, self._rdmsr))()
        if mode == "ia32e" and self.rng.random() < 0.5:
            return requests  # 64-bit hosts pass the checks only here
        return requests + [Request(Op.SET, element_id(name), _NORMAL[name]) for name in _MODES[mode]]

    def _memory_write(self):
        region = self.rng.choice((VMXON_REGION, *VMCS_REGIONS, BAD_REVISION_REGION))
        offset = self.rng.choice((0, 4, 8, 0x10, 0x100, 0x3F0))
        value = self.rng.choice((msrs.VMCS_REVISION_ID, 0, 1, 0x8000_0001, self.rng.getrandbits(32)))
        return [MemoryWrite(region + offset, 4, value)]
