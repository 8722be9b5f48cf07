"""Random operation sequences for the differential run of the VMX unit against the model.

A ``RandomProgram`` plays a VMM with a few VMCS regions (more than the cache
holds, so VMPTRLD evicts), mixing well-formed work (VMREAD/VMWRITE of every
field at both operand sizes and access types, VMPTRLD/VMCLEAR/VMPTRST, VMCSs
filled to pass every VM-entry check and then corrupted) with every error path
(bad addresses, the VMXON pointer, wrong revisions, memory outside RAM,
unsupported encodings, read-only fields, privilege and mode faults, MSR and
element writes the processor refuses); and plays a guest: VM entries (some
failing on the guest state or the MSR-load list), guest events of every kind
(VMX instructions, CPUID, HLT, RDTSC, I/O, MSRs, CR accesses, exceptions,
interrupts, NMIs, RUN) under exit controls, bitmaps, masks and the
preemption timer that the VMM sets between entries. The program does not know
the outcomes: the same requests act in the guest after a successful entry and
on the host otherwise, which the model decides. Sequences are pure functions
of the seed, so a failing run replays exactly.
"""

import random
from collections.abc import Iterator
from dataclasses import dataclass

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC
from vmxu.rtl.arch.events import EXCEPTIONS_WITH_ERROR_CODE
from vmxu.rtl.arch.fields import FIELD_BY_NAME, FIELDS
from vmxu.rtl.arch.ops import Op, OperandSize
from vmxu.rtl.arch.smm import IO_SMI
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER, ELEMENT_BY_NAME, ELEMENTS, INTERRUPTIBILITY, RFLAGS, element_id
from vmxu.rtl.arch.state_actions import ENTRY_WALK
from vmxu.sim import presets
from vmxu.sim.model.request import Request

__all__ = ["Request", "MemoryWrite", "RandomProgram", "entry_ready_fields", "VMXON_REGION", "VMCS_REGIONS"]

VMXON_REGION = 0x1000
VMCS_REGIONS = tuple(0x2000 + 0x1000 * i for i in range(6))
BAD_REVISION_REGION = 0x9000
OUTSIDE_RAM = 0x8000_0000
#: Where the guest's bitmaps and MSR lists live.
IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP = 0xA000, 0xB000, 0xC000
MSR_LISTS = 0xD000
#: Guests run in these VMCSs; other work (random VMWRITEs) happens mostly in the others.
_SESSION_REGIONS = VMCS_REGIONS[:3]
_OTHER_REGIONS = VMCS_REGIONS[3:]


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

#: Fields a broken fill changes: every entry-checked field but the VM-exit MSR lists (a bad VM-exit list is a
#: VMX abort, after which the processor is shut down for the rest of the run; the vectors cover aborts).
_BREAKABLE = tuple(name for name in (*_ENTRY_CHECKED, *ENTRY_WALK) if not name.startswith("VM_EXIT_MSR"))
#: Controls a launchable VMCS sets back after random VMWRITEs: no lists, no injection, no targets.
_QUIET_CONTROLS = {
    "SECONDARY_VM_EXEC_CONTROL": 0,
    "CR3_TARGET_COUNT": 0,
    "VM_EXIT_MSR_STORE_COUNT": 0,
    "VM_EXIT_MSR_LOAD_COUNT": 0,
    "VM_ENTRY_MSR_LOAD_COUNT": 0,
    "VM_ENTRY_INTR_INFO_FIELD": 0,
    "EXCEPTION_BITMAP": 0,
}

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
        #: Session regions whose VMCS passes every check (as far as the program's own writes go).
        self._ready: set[int] = set()

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
            (12, self._session),
            (6, self._guest),
            (2, self._exit_controls),
            (1, self._msr_lists),
            (10, self._vmread),
            (10, self._vmwrite),
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
            # Session regions stay as sessions leave them (a random write there could abort a VM exit).
            return self.rng.choice(_OTHER_REGIONS)
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
        """Fill the current VMCS to pass every check, break a few fields (controls, host or guest), and
        VMLAUNCH or VMRESUME; a VMCS that passes enters the guest."""
        requests = []
        if self.rng.random() < 0.7:
            requests = self._fill(broken=self.rng.random() < 0.4)
        requests.append(Request(self.rng.choice((Op.VMLAUNCH, Op.VMLAUNCH, Op.VMRESUME))))
        return requests

    def _fill(self, *, broken: bool) -> list[Request]:
        """VMWRITEs of a launchable VMCS (sim/presets.py), with one or two fields broken when ``broken``."""
        rng = self.rng
        ia32e = rng.random() < 0.1  # passes only while the processor is in IA-32e mode (_mode_change)
        ready = _QUIET_CONTROLS | presets.host_fields(ia32e_host=ia32e)
        ready |= presets.guest_fields(ia32e_guest=ia32e and rng.random() < 0.5)
        if ready["GUEST_CS_AR_BYTES"] & AR.L:
            ready[ENTRY.vmcs_field] |= ENTRY.bit("IA32E_MODE")
        requests = [Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value) for name, value in ready.items()]
        for _ in range(rng.choice((1, 1, 2)) if broken else 0):
            name = rng.choice(_BREAKABLE)
            if name in ready and rng.random() < 0.6:
                value = ready[name] ^ (1 << rng.randrange(FIELD_BY_NAME[name].value_bits))
            else:
                value = self._value() & ((1 << FIELD_BY_NAME[name].value_bits) - 1)
            requests.append(Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value))
        return requests

    def _session(self):
        """A VMM runs a guest in one of the session regions: VMCLEAR, VMPTRLD, a fill (always after the
        region was broken or left to other work, sometimes with exit controls and MSR lists), VMLAUNCH, then
        rounds of guest events and VMRESUMEs; at the end another region becomes current, so that the random
        VMWRITEs of other work land there."""
        rng = self.rng
        region = rng.choice(_SESSION_REGIONS)
        requests = [Request(Op.VMCLEAR, value=region), Request(Op.VMPTRLD, value=region)]
        if region not in self._ready or rng.random() < 0.3:
            broken = rng.random() < 0.3
            requests += self._fill(broken=broken)
            if rng.random() < 0.5:
                requests += self._exit_controls()
            if rng.random() < 0.2:
                requests += self._msr_lists()
            self._ready.discard(region)
            if not broken:
                self._ready.add(region)
        requests.append(Request(Op.VMLAUNCH))
        for _ in range(rng.randrange(1, 9)):
            requests += self._guest()
            if rng.random() < 0.2:
                requests += self._exit_controls()
        requests.append(Request(Op.VMPTRLD, value=rng.choice(_OTHER_REGIONS)))
        return requests

    def _guest(self):
        """What a guest does: a few events, then often a VMRESUME (which the model answers as the host's
        VMRESUME after an exit, or as a VMRESUME exit in the guest)."""
        requests = [self._event() for _ in range(self.rng.randrange(1, 5))]
        if self.rng.random() < 0.6:
            requests.append(Request(Op.VMRESUME))
        return requests

    def _event(self) -> Request:
        rng = self.rng
        kind = rng.randrange(14)
        if kind == 0:
            return Request(Op.CPUID, rng.getrandbits(32), rng.choice((0, 1)))
        if kind == 1:
            return Request(Op.HLT, length=rng.choice((None, 1, 2)))
        if kind == 2:
            return Request(Op.RDTSC)
        if kind in (3, 4):
            port = rng.choice((0x3F8, 0x60, 0x7FFF, 0x8000, 0xFFFF, 0xFFFE, rng.getrandbits(16)))
            size = rng.choice((1, 2, 4))
            op = Op.IN if kind == 3 else Op.OUT
            return Request(op, port, rng.getrandbits(8 * size) if op == Op.OUT else 0, io_size=size)
        if kind == 5:
            return self._rdmsr()[0]
        if kind == 6:
            return self._wrmsr()[0]
        if kind == 7:
            cr = rng.choice(("cr0", "cr3", "cr4"))
            op = rng.choice((Op.GET, Op.SET))
            value = {
                "cr0": presets.CR0_VMX | rng.choice((0, CR0.CD, 1 << 3)),
                "cr4": presets.CR4_VMX | rng.choice((0, 1, CR4.PAE)),
            }.get(cr, rng.choice((0x7_0000, 0x8_0000, rng.getrandbits(32))))
            return Request(op, element_id(cr), value if op == Op.SET else 0, gpr=rng.randrange(16))
        if kind == 8:
            vector = rng.choice((0, 1, 3, 4, 6, 8, 13, 14, 17, 18, 21, 30))
            code = rng.getrandbits(rng.choice((4, 16, 32))) if vector in EXCEPTIONS_WITH_ERROR_CODE else 0
            return Request(Op.EXCEPTION, vector, code)
        if kind == 9:
            return Request(Op.INTERRUPT, rng.randrange(16, 256))
        if kind == 10:
            # RSM: #UD outside SMM (the exception bitmap decides in a guest), SMM's return in it; SMI: SMM entered
            # from wherever the run is (root, non-root, outside VMX), or held pending in SMM.
            op = rng.choice((Op.NMI, Op.RSM, Op.RSM, Op.SMI))
            if op == Op.SMI and rng.getrandbits(1):  # an I/O SMI (the default treatment does not record it)
                return Request(op, rng.getrandbits(16), IO_SMI | rng.getrandbits(1), io_size=rng.choice((1, 2, 4)))
            return Request(op)
        if kind == 11:
            return Request(Op.RUN, value=rng.choice((0, 1, 31, 32, 100, 1000, rng.getrandbits(20))))
        if kind == 12:
            # VMXOFF stays out: outside a guest it would end VMX operation for the rest of the run.
            op = rng.choice((Op.VMCALL, Op.VMREAD, Op.VMWRITE, Op.VMPTRST, Op.VMXON, Op.VMLAUNCH, Op.VMCLEAR))
            return Request(
                op, FIELD_BY_NAME["GUEST_RIP"].encoding, rng.choice(VMCS_REGIONS), length=rng.choice((None, 3, 15))
            )
        element = rng.choice(("rflags", "interruptibility", "activity", "pending_debug", "rip"))
        value = {
            "rflags": RFLAGS.FIXED1 | rng.choice((0, RFLAGS.IF, RFLAGS.RF, RFLAGS.TF)),
            "interruptibility": rng.choice((0, 0, 0, 1, 2, 4, 8)),
            "activity": rng.choice((0, 1)),
            "pending_debug": rng.choice((0, 1, 0x4000)),
            "rip": rng.choice((presets.GUEST_RIP, 1 << 40)),
        }[element]
        return Request(Op.SET, element_id(element), value)

    def _exit_controls(self):
        """The VMM changes what exits: primary and pin controls with exit controls, bitmaps, masks, shadows,
        CR3 targets, the exception bitmap and #PF mask/match, the preemption timer, TSC offset."""
        rng = self.rng
        proc_bits = (
            "HLT_EXITING",
            "RDTSC_EXITING",
            "UNCOND_IO_EXITING",
            "USE_IO_BITMAPS",
            "USE_MSR_BITMAPS",
            "CR3_LOAD_EXITING",
            "CR3_STORE_EXITING",
            "INTR_WINDOW_EXITING",
            "USE_TSC_OFFSETTING",
            "NMI_WINDOW_EXITING",
        )
        proc = PROC.true_default1
        for name in proc_bits:
            if rng.random() < 0.3:
                proc |= PROC.bit(name)
        pin = PIN.true_default1
        for name in ("EXT_INTR_EXITING", "NMI_EXITING", "VIRTUAL_NMIS", "ACTIVATE_PREEMPTION_TIMER"):
            if rng.random() < 0.3:
                pin |= PIN.bit(name)
        if proc & PROC.bit("NMI_WINDOW_EXITING"):
            pin |= PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS")
        if pin & PIN.bit("VIRTUAL_NMIS"):
            pin |= PIN.bit("NMI_EXITING")
        exit_ = EXIT.true_default1
        for name in ("ACK_INTR_ON_EXIT", "SAVE_IA32_PAT", "SAVE_IA32_EFER", "SAVE_DEBUG_CONTROLS", "LOAD_IA32_PAT"):
            if rng.random() < 0.3:
                exit_ |= EXIT.bit(name)
        if pin & PIN.bit("ACTIVATE_PREEMPTION_TIMER") and rng.random() < 0.5:
            exit_ |= EXIT.bit("SAVE_VMX_PREEMPTION_TIMER")
        fields = {
            "CPU_BASED_VM_EXEC_CONTROL": proc,
            "PIN_BASED_VM_EXEC_CONTROL": pin,
            "VM_EXIT_CONTROLS": exit_,
            "HOST_IA32_PAT": presets.host_fields().get("HOST_IA32_PAT", 0x0007_0406_0007_0406),
            "IO_BITMAP_A": IO_BITMAP_A,
            "IO_BITMAP_B": IO_BITMAP_B,
            "MSR_BITMAP": MSR_BITMAP,
            "CR0_GUEST_HOST_MASK": rng.choice((0, CR0.PG, CR0.CD | (1 << 3), 0xFFFF_FFFF)),
            "CR0_READ_SHADOW": rng.choice((0, presets.CR0_VMX, CR0.CD)),
            "CR4_GUEST_HOST_MASK": rng.choice((0, CR4.VMXE, CR4.PAE)),
            "CR4_READ_SHADOW": rng.choice((0, presets.CR4_VMX)),
            "CR3_TARGET_COUNT": rng.randrange(5),
            "CR3_TARGET_VALUE0": 0x7_0000,
            "CR3_TARGET_VALUE1": 0x8_0000,
            "EXCEPTION_BITMAP": rng.choice((0, 1 << 13, 1 << 14, 1 << 6, 0xFFFF_FFFF, rng.getrandbits(32))),
            "PAGE_FAULT_ERROR_CODE_MASK": rng.choice((0, 1, 0xF)),
            "PAGE_FAULT_ERROR_CODE_MATCH": rng.choice((0, 1, 2)),
            "VMX_PREEMPTION_TIMER_VALUE": rng.choice((0, 1, 2, 10, 100)),
            "TSC_OFFSET": rng.choice((0, 1, 1 << 63, rng.getrandbits(64))),
        }
        requests = [Request(Op.VMWRITE, FIELD_BY_NAME[name].encoding, value) for name, value in fields.items()]
        for base in (IO_BITMAP_A, IO_BITMAP_B, MSR_BITMAP):
            for _ in range(rng.randrange(3)):
                offset = rng.choice((0, 4, 0x3FC, 0x400, 0x800, 0xC00, 0xFFC, 4 * rng.randrange(1024)))
                requests.append(MemoryWrite(base + offset, 4, rng.choice((0, 0xFFFF_FFFF, 1, 1 << 31))))
        return requests

    def _msr_lists(self):
        """Small MSR lists: the VM-entry MSR-load list sometimes has a bad entry (a VM-entry failure, 34);
        the exit lists hold MSRs that always store and load (a bad one would be a VMX abort, the end of
        the run)."""
        rng = self.rng
        good = (
            (msrs.IA32_SYSENTER_CS, lambda: rng.getrandbits(32)),
            (msrs.IA32_PAT, lambda: 0x0006_0406_0007_0406),
            (msrs.IA32_SYSENTER_EIP, lambda: rng.choice((0, 0x1234, 0xFFFF_8000_0000_0000))),
        )
        requests = []
        names = (
            ("VM_EXIT_MSR_STORE", MSR_LISTS),
            ("VM_EXIT_MSR_LOAD", MSR_LISTS + 0x100),
            ("VM_ENTRY_MSR_LOAD", MSR_LISTS + 0x200),
        )
        for name, base in names:
            count = rng.choice((0, 0, 1, 2, 3))
            for i in range(count):
                msr, value = rng.choice(good)
                index = msr
                if name == "VM_ENTRY_MSR_LOAD" and rng.random() < 0.2:
                    index = rng.choice((msrs.IA32_FS_BASE, 0x808, 0x10, msrs.IA32_SMM_MONITOR_CTL))
                entry = base + 16 * i
                requests += [
                    MemoryWrite(entry, 4, index),
                    MemoryWrite(entry + 4, 4, 0),
                    MemoryWrite(entry + 8, 8, value()),
                ]
            requests += [
                Request(Op.VMWRITE, FIELD_BY_NAME[f"{name}_COUNT"].encoding, count),
                Request(Op.VMWRITE, FIELD_BY_NAME[f"{name}_ADDR"].encoding, base),
            ]
        return requests

    def _vmxoff_vmxon(self):
        return [Request(Op.VMXOFF), Request(Op.VMXON, value=VMXON_REGION)]

    def _rdmsr(self):
        return [Request(Op.RDMSR, self.rng.choice(_MSRS))]

    def _wrmsr(self):
        return [Request(Op.WRMSR, self.rng.choice(_MSRS), self._value())]

    def _set(self):
        """An element write with a random value; the mode elements change only through _mode_change, and a
        get-only element (smm) not at all: a script cannot say it (REPLAY.md)."""
        element = self.rng.choice([e for e in ELEMENTS if e.name not in _NORMAL and not e.get_only])
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
        region = self.rng.choice((VMXON_REGION, *_OTHER_REGIONS, BAD_REVISION_REGION))
        offset = self.rng.choice((0, 4, 8, 0x10, 0x100, 0x3F0))
        value = self.rng.choice((msrs.VMCS_REVISION_ID, 0, 1, 0x8000_0001, self.rng.getrandbits(32)))
        return [MemoryWrite(region + offset, 4, value)]
