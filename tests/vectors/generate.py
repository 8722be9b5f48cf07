"""Directed SDM-rule vectors: one transaction script per rule family of docs/semantics.md.

Run ``.venv/bin/python tests/vectors/generate.py`` to (re)write ``tests/vectors/*.jsonl``.

Each script is a JSON Lines transaction script (shared/vmx/REPLAY.md) that starts
from power-up, does what firmware and a VMM do, and then exercises one family
of rules, each group of lines under a ``#`` comment naming the rule. The
expected outcome of every operation (status, and error, vector or value where
there is one) is written here, next to the line that produces it, from the
rules of docs/semantics.md and the SDM, not from the model: ``SCRIPTS`` maps a
file name to its ``Script`` (lines and expectations), and tests/test_vectors.py
replays each file on the model and checks every expectation. The expectations
are not in the JSONL files: the replay format has no key for them.

Tables (field encodings, layout words, capability values, element rules) come
from rtl/arch; error numbers, vectors and statuses are written as docs/semantics.md
gives them.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.controls import ENTRY, EXIT, PIN, PROC, PROC2
from vmxu.rtl.arch.fields import FIELD_BY_ENCODING, FIELD_BY_NAME, FIELDS, MAX_INDEX, AccessType, Field
from vmxu.rtl.arch.layout import LAUNCH_WORD, LOCATION, Storage
from vmxu.rtl.arch.msrs import MsrKind
from vmxu.rtl.arch.state import AR, CR0, CR4, EFER, ELEMENTS, INTERRUPTIBILITY, RFLAGS, Element
from vmxu.sim import presets

__all__ = ["Expect", "Script", "SCRIPTS", "VECTORS_DIR", "write_all"]

VECTORS_DIR = Path(__file__).resolve().parent

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1

# -- the platform's memory map (RAM is 1 MiB at 0) -----------------------------------

VMXON_REGION = 0x1000
VMCS_A, VMCS_B, VMCS_C, VMCS_D, VMCS_E, VMCS_F = (0x2000 + 0x1000 * i for i in range(6))
SPARE_REGION = 0x9000
#: 4-KiB aligned, below MAXPHYADDR (32), no RAM behind it: reads all ones, writes dropped.
OUTSIDE_RAM = 0x8000_0000
#: The lowest non-canonical address (bit 47 set, bits 63:48 clear).
NOT_CANONICAL = 0x0000_8000_0000_0000
CANONICAL_LOW_TOP = 0x0000_7FFF_FFFF_FFFF
CANONICAL_HIGH_BOTTOM = 0xFFFF_8000_0000_0000
NO_CURRENT_VMCS = U64
REVISION = msrs.VMCS_REVISION_ID

# -- processor settings ---------------------------------------------------------------

FEATURE_CONTROL_ON = msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX
CR0_RESET = 0x6000_0010
CR0_VMX = CR0.PE | CR0.NE | CR0.PG
CR4_VMX = CR4.VMXE
CS_AR_32 = 0x9B
CS_AR_64 = 0x9B | AR.L
SS_AR_CPL0 = 0x93
SS_AR_CPL3 = 0x93 | (3 << AR.DPL_SHIFT)
RFLAGS_VM = RFLAGS.VM
EFER_IA32E = EFER.LME | EFER.LMA

# -- VM-instruction errors (SDM 30.4) and vectors ----------------------------------

UD, GP = 6, 13
EXIT_VMCALL = 18
EXIT_MSR_LOADING = 34
EXIT_REASON_ENTRY_FAILURE = 1 << 31

# -- VMCS values --------------------------------------------------------------------

HOST_CS, HOST_DATA, HOST_TR = 0x08, 0x10, 0x18
HOST_RIP_32 = 0x0010_0000
HOST_RIP_64 = 0xFFFF_8000_0010_0000
HOST_SELECTORS = {
    "HOST_ES_SELECTOR": HOST_DATA,
    "HOST_CS_SELECTOR": HOST_CS,
    "HOST_SS_SELECTOR": HOST_DATA,
    "HOST_DS_SELECTOR": HOST_DATA,
    "HOST_FS_SELECTOR": HOST_DATA,
    "HOST_GS_SELECTOR": HOST_DATA,
    "HOST_TR_SELECTOR": HOST_TR,
}


def launchable_fields(*, ia32e_host: bool = False) -> dict[str, int]:
    """VMCS values with which VMLAUNCH enters the guest (sim/presets.py), on a VMCS region of zeros.

    Controls are the TRUE default1 settings (IA32_VMX_BASIC bit 55 is 1); the
    host is 32-bit protected mode with paging or, with ``ia32e_host``, a 64-bit
    host (then the processor must be in IA-32e mode); the guest is 32-bit
    protected mode with paging, CPL 0, flat segments.
    """
    return presets.host_fields(ia32e_host=ia32e_host) | presets.guest_fields()


# -- the builder --------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What an operation must produce: the replay status and, where given, error / vector / value, the exit
    reason, the injected event and its error code, the VMX-abort indicator."""

    status: str
    error: int | None = None
    vector: int | None = None
    value: int | None = None
    reason: int | None = None
    event: int | None = None
    error_code: int | None = None
    abort: int | None = None


_HEX_KEYS = ("addr", "value", "msr")


class Script:
    """A transaction script being written: its text lines and the expected result of its operations.

    ``expected`` maps a file line number (1-based, as the replay results' ``"line"``)
    to an ``Expect``. Each op method appends one line and returns the script, so
    an expectation follows it: ``s.vmptrld(0x1000).fail_valid(10)``.
    """

    def __init__(self, name: str, *rules: str) -> None:
        self.name = name
        self.rules = rules
        self.lines: list[str] = [f"# {rule}" for rule in rules]
        self.lines += [
            "#",
            "# Generated by tests/vectors/generate.py: edit that and run it, not this file.",
            f"# Run: vmxu replay tests/vectors/{name}.jsonl",
        ]
        self.expected: dict[int, Expect] = {}
        #: The address of the last VMPTRLD (the current VMCS when it succeeded).
        self.current: int | None = None
        self._last_op: int | None = None
        #: True between a comment() and the next op: the group already says what it does.
        self._commented = False

    # -- text ---------------------------------------------------------------------

    def comment(self, *text: str) -> Script:
        """A blank line, then ``# text`` lines: what the next group of lines does."""
        self.lines.append("")
        self.lines += [f"# {t}" for t in text]
        self._commented = True
        return self

    def _step(self, text: str) -> None:
        """A setup helper's own comment, unless the caller has just written one for the group."""
        if not self._commented:
            self.comment(text)

    def op(self, op: str, **keys: int | str | None) -> Script:
        if op == "vmptrld":
            self.current = keys["addr"]
        obj: dict[str, int | str] = {"op": op}
        for key, value in keys.items():
            if value is None:
                continue
            if key in _HEX_KEYS or (key == "field" and isinstance(value, int)):
                assert isinstance(value, int) and value >= 0, (key, value)
                obj[key] = f"{value:#x}"
            else:
                obj[key] = value
        self.lines.append(json.dumps(obj))
        self._last_op = len(self.lines)
        self._commented = False
        return self

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    @property
    def operation_lines(self) -> list[int]:
        return [n for n, line in enumerate(self.lines, start=1) if line.startswith("{")]

    # -- expectations of the last op ----------------------------------------------------

    def expect(self, status: str, **keys: int | None) -> Script:
        assert self._last_op is not None and self._last_op not in self.expected, "expect() follows one op"
        self.expected[self._last_op] = Expect(status, **keys)
        return self

    def ok(self, value: int | None = None) -> Script:
        return self.expect("ok", value=value)

    def succeed(self, value: int | None = None) -> Script:
        return self.expect("succeed", value=value)

    def fail_invalid(self) -> Script:
        return self.expect("fail_invalid")

    def fail_valid(self, error: int) -> Script:
        return self.expect("fail_valid", error=error)

    def ud(self) -> Script:
        return self.expect("fault", vector=UD)

    def gp(self) -> Script:
        return self.expect("fault", vector=GP)

    def entered(self, event: int | None = None, error_code: int | None = None) -> Script:
        return self.expect("entered", event=event, error_code=error_code)

    def exited(self, reason: int) -> Script:
        return self.expect("exited", reason=reason)

    def entry_failed(self, reason: int) -> Script:
        return self.expect("entry_failed", reason=reason)

    def shutdown(self, abort: int) -> Script:
        return self.expect("shutdown", abort=abort)

    def passes(self, instruction: str = "vmlaunch", event: int | None = None, error_code: int | None = None) -> Script:
        """The VMLAUNCH/VMRESUME just written passed every check and entered the guest (injecting ``event``);
        a VMCALL in the guest exits back to the host, and a launched VMCS is cleared and made current again
        (launch state clear)."""
        self.entered(event, error_code)
        self.vmcall().exited(EXIT_VMCALL)
        if instruction == "vmlaunch":
            assert self.current is not None, "passes() needs to know the current VMCS"
            self.vmclear(self.current).succeed()
            self.vmptrld(self.current).succeed()
        return self

    # -- one method per op of REPLAY.md ---------------------------------------------

    def write(self, addr: int, value: int, size: int | None = None) -> Script:
        return self.op("write", addr=addr, value=value, size=size)

    def read(self, addr: int, size: int | None = None) -> Script:
        return self.op("read", addr=addr, size=size)

    def rdmsr(self, msr: int) -> Script:
        return self.op("rdmsr", msr=msr)

    def wrmsr(self, msr: int, value: int) -> Script:
        return self.op("wrmsr", msr=msr, value=value)

    def set(self, element: str, value: int) -> Script:
        return self.op("set", element=element, value=value)

    def get(self, element: str) -> Script:
        return self.op("get", element=element)

    def vmxon(self, addr: int) -> Script:
        return self.op("vmxon", addr=addr)

    def vmxoff(self) -> Script:
        return self.op("vmxoff")

    def vmptrld(self, addr: int, size: int | None = None) -> Script:
        return self.op("vmptrld", addr=addr, size=size)

    def vmptrst(self, size: int | None = None) -> Script:
        return self.op("vmptrst", size=size)

    def vmclear(self, addr: int) -> Script:
        return self.op("vmclear", addr=addr)

    def vmread(self, field: str | int, size: int | None = None) -> Script:
        return self.op("vmread", field=field, size=size)

    def vmwrite(self, field: str | int, value: int, size: int | None = None) -> Script:
        return self.op("vmwrite", field=field, value=value, size=size)

    def vmlaunch(self) -> Script:
        return self.op("vmlaunch")

    def vmresume(self) -> Script:
        return self.op("vmresume")

    def vmcall(self) -> Script:
        return self.op("vmcall")

    # -- what firmware and a VMM do (SDM 23.7, 24.11.3) --------------------------------

    def enable_vmx(self) -> Script:
        """Firmware locks IA32_FEATURE_CONTROL with VMX outside SMX; the VMM sets CR0 (PE, NE, PG) and CR4.VMXE."""
        self._step("Firmware locks IA32_FEATURE_CONTROL (lock, VMX outside SMX); CR0 = PE, NE, PG; CR4.VMXE = 1.")
        self.wrmsr(msrs.IA32_FEATURE_CONTROL, FEATURE_CONTROL_ON).ok()
        self.set("cr0", CR0_VMX).ok()
        return self.set("cr4", CR4_VMX).ok()

    def enter_vmx(self, region: int = VMXON_REGION) -> Script:
        """Write the revision identifier into the VMXON region, VMXON."""
        self._step(f"The VMXON region at {region:#x} gets the revision identifier; VMXON.")
        self.write(region, REVISION).ok()
        return self.vmxon(region).succeed()

    def new_vmcs(self, addr: int) -> Script:
        """Initialize a VMCS region (revision identifier, VMCLEAR) and make it current."""
        self._step(f"A new VMCS at {addr:#x}: revision identifier, VMCLEAR, VMPTRLD.")
        self.write(addr, REVISION).ok()
        self.vmclear(addr).succeed()
        return self.vmptrld(addr).succeed()

    def launched_vmcs(self, addr: int, launch_word: int = 1) -> Script:
        """A region whose launch word (word 2) says "launched", made current without VMCLEAR."""
        self._step(
            f"A launched VMCS at {addr:#x}: revision identifier, launch word {launch_word}, VMPTRLD (no VMCLEAR)."
        )
        self.write(addr, REVISION).ok()
        self.write(addr + 4 * LAUNCH_WORD, launch_word).ok()
        return self.vmptrld(addr).succeed()

    def vmwrite_all(self, values: dict[str, int]) -> Script:
        for name, value in values.items():
            self.vmwrite(name, value).succeed()
        return self

    def launchable(self, *, ia32e_host: bool = False) -> Script:
        host = "a 64-bit host" if ia32e_host else "a 32-bit host"
        self._step(f"Fill the current VMCS so that it passes every control and host-state check ({host}).")
        return self.vmwrite_all(launchable_fields(ia32e_host=ia32e_host))

    def cpl(self, level: int) -> Script:
        """CPL is the DPL of SS (ss.ar bits 6:5)."""
        return self.set("ss.ar", SS_AR_CPL0 | (level << AR.DPL_SHIFT)).ok()

    def ia32e_mode(self) -> Script:
        """64-bit mode: EFER.LME and LMA (written directly, choice 3) and CS.L = 1."""
        self.set("efer", EFER_IA32E).ok()
        return self.set("cs.ar", CS_AR_64).ok()

    def compatibility_mode(self) -> Script:
        """EFER.LMA = 1 with CS.L = 0."""
        self.set("efer", EFER_IA32E).ok()
        return self.set("cs.ar", CS_AR_32).ok()

    def legacy_mode(self) -> Script:
        """Protected mode outside IA-32e mode: EFER.LMA = 0, CS.L = 0."""
        self.set("efer", 0).ok()
        return self.set("cs.ar", CS_AR_32).ok()

    def virtual_8086(self, on: bool) -> Script:
        return self.set("rflags", RFLAGS.FIXED1 | (RFLAGS_VM if on else 0)).ok()


def field_word_addr(region: int, name: str) -> int:
    """The byte address of a component's low word in a VMCS region (rtl/arch/layout.py)."""
    return region + 4 * LOCATION[FIELD_BY_NAME[name].encoding].word


def bits_of(mask: int) -> list[int]:
    return [b for b in range(64) if mask >> b & 1]


def unsupported(encoding: int) -> int:
    """An encoding that is not a supported component (asserted against the field table)."""
    assert encoding not in FIELD_BY_ENCODING, hex(encoding)
    return encoding


def pattern(field: Field, salt: int = 0) -> int:
    """A distinctive 64-bit value for a field: both halves carry its encoding, and every byte is non-zero."""
    e = field.encoding
    high = 0xC000_0000 | (salt << 24) | (e << 4) | 0x5
    low = 0x3000_0000 | (salt << 24) | (e << 4) | 0xA
    return high << 32 | low


# ======================================================================================
# VMXON (SDM 30.3)
# ======================================================================================


def vmxon_undefined_opcode() -> Script:
    s = Script(
        "vmxon_undefined_opcode",
        "SDM 30.3 VMXON: #UD if CR0.PE = 0, CR4.VMXE = 0, RFLAGS.VM = 1, or in compatibility mode",
        "(IA32_EFER.LMA = 1 and CS.L = 0); the #UD checks come before every #GP and VMfail check,",
        'in VMX root operation too. docs/semantics.md "VMX instructions", VMXON.',
    )
    s.comment("Power-up: CR0.PE = 0, CR4.VMXE = 0, IA32_FEATURE_CONTROL unlocked: #UD, not #GP.")
    s.write(VMXON_REGION, REVISION).ok()
    s.vmxon(VMXON_REGION).ud()
    s.comment("CR4.VMXE = 1 but CR0.PE = 0 (CR0 as after RESET): #UD.")
    s.set("cr4", CR4_VMX).ok()
    s.vmxon(VMXON_REGION).ud()
    s.comment("IA32_FEATURE_CONTROL locked and enabled, still CR0.PE = 0: #UD.")
    s.wrmsr(msrs.IA32_FEATURE_CONTROL, FEATURE_CONTROL_ON).ok()
    s.vmxon(VMXON_REGION).ud()
    s.comment("CR0.PE = 1 (with NE, PG) but CR4.VMXE = 0: #UD.")
    s.set("cr0", CR0_VMX).ok()
    s.set("cr4", 0).ok()
    s.vmxon(VMXON_REGION).ud()
    s.set("cr4", CR4_VMX).ok()
    s.comment("RFLAGS.VM = 1 (virtual-8086 mode): #UD; also at CPL 3, where #UD beats #GP.")
    s.virtual_8086(True)
    s.vmxon(VMXON_REGION).ud()
    s.cpl(3)
    s.vmxon(VMXON_REGION).ud()
    s.cpl(0)
    s.virtual_8086(False)
    s.comment("Compatibility mode (EFER.LMA = 1, CS.L = 0): #UD.")
    s.compatibility_mode()
    s.vmxon(VMXON_REGION).ud()
    s.comment("64-bit mode (CS.L = 1) is not compatibility mode: VMXON succeeds.")
    s.set("cs.ar", CS_AR_64).ok()
    s.vmxon(VMXON_REGION).succeed()
    s.comment("In VMX root operation, compatibility mode is still #UD (before the VMfail(15) check).")
    s.set("cs.ar", CS_AR_32).ok()
    s.vmxon(VMXON_REGION).ud()
    s.set("cs.ar", CS_AR_64).ok()
    s.vmxon(VMXON_REGION).fail_invalid()
    return s


def vmxon_general_protection() -> Script:
    s = Script(
        "vmxon_general_protection",
        "SDM 30.3 VMXON, outside VMX operation: #GP(0) if CPL > 0, CR0 or CR4 outside IA32_VMX_CR0/CR4_FIXED0/1,",
        "or IA32_FEATURE_CONTROL bit 0 (lock) or bit 2 (VMX outside SMX) is 0; SDM 23.7, A.7, A.8.",
        'The #GP checks come before the address check (VMfailInvalid). "Lock without bit 2" needs a fresh',
        "processor (the lock is permanent): see vmxon_general_protection_lock_without_vmx.",
    )
    s.comment("CR0.PE and CR4.VMXE set (no #UD); IA32_FEATURE_CONTROL = 0 (unlocked): #GP.")
    s.set("cr0", CR0_VMX).ok()
    s.set("cr4", CR4_VMX).ok()
    s.write(VMXON_REGION, REVISION).ok()
    s.vmxon(VMXON_REGION).gp()
    s.comment("Unlocked with bit 2 (VMX outside SMX) set: still #GP; a bad address does not change that.")
    s.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX).ok()
    s.vmxon(VMXON_REGION).gp()
    s.vmxon(VMXON_REGION + 1).gp()
    s.comment("Lock with bits 0 and 2: from here only the rule under test breaks.")
    s.wrmsr(msrs.IA32_FEATURE_CONTROL, FEATURE_CONTROL_ON).ok()
    s.comment("CPL 3 and CPL 1 (DPL of SS): #GP; CPL 0 again.")
    s.cpl(3)
    s.vmxon(VMXON_REGION).gp()
    s.cpl(1)
    s.vmxon(VMXON_REGION).gp()
    s.cpl(0)
    s.comment(
        "CR0 outside IA32_VMX_CR0_FIXED0 (PE, NE, PG must be 1). Outside VMX operation a SET may break the",
        "fixed bits, so the VMXON check is reachable: PG = 0, then NE = 0.",
    )
    s.set("cr0", CR0.PE | CR0.NE).ok()
    s.vmxon(VMXON_REGION).gp()
    s.set("cr0", CR0.PE | CR0.PG).ok()
    s.vmxon(VMXON_REGION).gp()
    s.set("cr0", CR0_VMX).ok()
    s.comment(
        "CR4: the only FIXED0 bit is VMXE (its absence is #UD first) and every bit outside FIXED1 is",
        "reserved for MOV to CR4, so a SET of such a value is refused (#GP) and VMXON never sees it.",
    )
    s.set("cr4", CR4_VMX | (1 << 14)).gp()
    s.get("cr4").ok(CR4_VMX)
    s.comment("Everything in order: the next check is the address (VMfailInvalid), then VMXON succeeds.")
    s.vmxon(VMXON_REGION + 1).fail_invalid()
    s.vmxon(VMXON_REGION).succeed()
    return s


def vmxon_general_protection_lock_without_vmx() -> Script:
    s = Script(
        "vmxon_general_protection_lock_without_vmx",
        "SDM 30.3 VMXON: #GP(0) if IA32_FEATURE_CONTROL bit 2 (enable VMX outside SMX) is 0 although",
        "the lock bit is 1; SDM 23.7: a locked IA32_FEATURE_CONTROL cannot be written (WRMSR #GP),",
        "so this processor can never enter VMX operation.",
    )
    s.comment("CR0, CR4 and CPL in order; lock IA32_FEATURE_CONTROL with bit 0 only.")
    s.set("cr0", CR0_VMX).ok()
    s.set("cr4", CR4_VMX).ok()
    s.write(VMXON_REGION, REVISION).ok()
    s.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_LOCK).ok()
    s.vmxon(VMXON_REGION).gp()
    s.comment("Locked: enabling bit 2 now is refused, and VMXON keeps failing.")
    s.wrmsr(msrs.IA32_FEATURE_CONTROL, FEATURE_CONTROL_ON).gp()
    s.rdmsr(msrs.IA32_FEATURE_CONTROL).ok(msrs.FEATURE_CONTROL_LOCK)
    s.vmxon(VMXON_REGION).gp()
    s.comment("Bit 1 (VMX inside SMX) does not help outside SMX (and cannot be set now either).")
    s.wrmsr(msrs.IA32_FEATURE_CONTROL, msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_IN_SMX).gp()
    s.vmxon(VMXON_REGION).gp()
    return s


def vmxon_fail_invalid() -> Script:
    s = Script(
        "vmxon_fail_invalid",
        "SDM 30.3 VMXON: VMfailInvalid if the address is not 4-KiB aligned or sets a bit at or above",
        "MAXPHYADDR (32, choice 2); else VMfailInvalid if bits 30:0 of the region's first dword differ from",
        "the VMCS revision identifier (IA32_VMX_BASIC[30:0]) or bit 31 is 1. A region outside RAM reads",
        "all ones (choice 4). After a failure the processor is still outside VMX operation.",
    )
    s.comment("Enable VMX; the VMXON region gets the revision identifier.")
    s.enable_vmx()
    s.write(VMXON_REGION, REVISION).ok()
    s.comment("Not 4-KiB aligned: bit 2, bit 11, bit 0.")
    for addr in (VMXON_REGION + 4, VMXON_REGION + 0x800, VMXON_REGION + 1):
        s.vmxon(addr).fail_invalid()
    s.comment("A bit at or above MAXPHYADDR: bit 32, bit 63.")
    for addr in (VMXON_REGION | 1 << 32, VMXON_REGION | 1 << 63):
        s.vmxon(addr).fail_invalid()
    s.comment("Wrong revision identifier: 2, and 0 (never-written RAM).")
    s.write(VMCS_B, REVISION + 1).ok()
    s.vmxon(VMCS_B).fail_invalid()
    s.vmxon(VMCS_C).fail_invalid()
    s.comment("Right identifier in bits 30:0 but bit 31 (shadow-VMCS indicator) set.")
    s.write(VMCS_D, REVISION | 1 << 31).ok()
    s.vmxon(VMCS_D).fail_invalid()
    s.comment("Regions outside RAM read all ones: bits 30:0 wrong and bit 31 set.")
    s.vmxon(OUTSIDE_RAM).fail_invalid()
    s.vmxon(0xFFFF_F000).fail_invalid()
    s.comment("Still outside VMX operation: VMPTRST is #UD. Then a good VMXON succeeds.")
    s.vmptrst().ud()
    s.vmxon(VMXON_REGION).succeed()
    s.vmptrst().succeed(NO_CURRENT_VMCS)
    return s


def vmxon_in_root() -> Script:
    s = Script(
        "vmxon_in_root",
        "SDM 30.3 VMXON in VMX root operation: #GP(0) if CPL > 0, else VMfail(15) (VMXON executed in VMX",
        "root operation): VMfailInvalid without a current VMCS, VMfailValid(15) with one. The in-root check",
        "comes before the address and revision checks and changes nothing else.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.comment("No current VMCS: VMfail(15) is VMfailInvalid, for the same region and for another one.")
    s.vmxon(VMXON_REGION).fail_invalid()
    s.write(SPARE_REGION, REVISION).ok()
    s.vmxon(SPARE_REGION).fail_invalid()
    s.comment("With a current VMCS: VMfailValid(15), written to the VM-instruction error field.")
    s.new_vmcs(VMCS_A)
    s.vmxon(VMXON_REGION).fail_valid(15)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(15)
    s.comment("A bad address or a bad revision does not matter in root operation: still 15.")
    s.vmxon(VMXON_REGION + 1).fail_valid(15)
    s.vmxon(OUTSIDE_RAM).fail_valid(15)
    s.comment("At CPL 3: #GP.")
    s.cpl(3)
    s.vmxon(VMXON_REGION).gp()
    s.cpl(0)
    s.comment("Nothing changed: same current VMCS, and the VMXON region is still the VMXON pointer (VMPTRLD 10).")
    s.vmptrst().succeed(VMCS_A)
    s.vmptrld(VMXON_REGION).fail_valid(10)
    s.vmptrld(SPARE_REGION).succeed()
    return s


def vmxoff() -> Script:
    s = Script(
        "vmxoff",
        "SDM 30.3 VMXOFF: #UD outside VMX operation, in virtual-8086 or compatibility mode; #GP(0) if CPL > 0;",
        "(VMfail(23) under the dual-monitor treatment: not reachable, choice 12); else leave VMX operation,",
        'VMsucceed. docs/semantics.md "The on-die VMCS cache": VMXOFF writes back every dirty cache entry,',
        "so the regions show their fields; afterwards every VMX instruction but VMXON is #UD; VMXON works again.",
    )
    s.comment("Outside VMX operation: #UD.")
    s.vmxoff().ud()
    s.enable_vmx()
    s.enter_vmx()
    s.comment("The prefix: CPL 3 #GP; virtual-8086 and compatibility mode #UD.")
    s.cpl(3)
    s.vmxoff().gp()
    s.cpl(0)
    s.virtual_8086(True)
    s.vmxoff().ud()
    s.virtual_8086(False)
    s.compatibility_mode()
    s.vmxoff().ud()
    s.legacy_mode()
    s.comment("Two VMCSs with on-die fields written (dirty); their regions do not show the values yet.")
    s.new_vmcs(VMCS_A)
    s.vmwrite("GUEST_RIP", 0x1234_5678_ABCD).succeed()
    s.vmwrite("GUEST_CS_SELECTOR", 0xF000).succeed()
    s.new_vmcs(VMCS_B)
    s.vmwrite("GUEST_RIP", 0xFFF0).succeed()
    s.read(field_word_addr(VMCS_A, "GUEST_RIP"), 8).ok(0)
    s.read(field_word_addr(VMCS_B, "GUEST_RIP"), 8).ok(0)
    s.comment("VMXOFF succeeds and writes both back; launch words stay 0 (neither was launched).")
    s.vmxoff().succeed()
    s.read(field_word_addr(VMCS_A, "GUEST_RIP"), 8).ok(0x1234_5678_ABCD)
    s.read(field_word_addr(VMCS_A, "GUEST_CS_SELECTOR"), 4).ok(0xF000)
    s.read(field_word_addr(VMCS_B, "GUEST_RIP"), 8).ok(0xFFF0)
    s.read(VMCS_A + 4 * LAUNCH_WORD).ok(0)
    s.comment("Outside VMX operation again: every VMX instruction but VMXON is #UD.")
    s.vmxoff().ud()
    s.vmptrld(VMCS_A).ud()
    s.vmptrst().ud()
    s.vmclear(VMCS_A).ud()
    s.vmread("GUEST_RIP").ud()
    s.vmwrite("GUEST_RIP", 0).ud()
    s.vmlaunch().ud()
    s.vmresume().ud()
    s.vmcall().ud()
    s.comment("VMXON again: no current VMCS; VMPTRLD reloads the values from the regions.")
    s.vmxon(VMXON_REGION).succeed()
    s.vmptrst().succeed(NO_CURRENT_VMCS)
    s.vmptrld(VMCS_A).succeed()
    s.vmread("GUEST_RIP").succeed(0x1234_5678_ABCD)
    s.vmread("GUEST_CS_SELECTOR").succeed(0xF000)
    s.vmptrld(VMCS_B).succeed()
    s.vmread("GUEST_RIP").succeed(0xFFF0)
    return s


# ======================================================================================
# VMPTRLD, VMPTRST, VMCLEAR (SDM 30.3)
# ======================================================================================


def vmptrld_invalid_address() -> Script:
    s = Script(
        "vmptrld_invalid_address",
        "SDM 30.3 VMPTRLD: VMfail(9) (VMPTRLD with invalid physical address) if the operand is not 4-KiB",
        "aligned or sets a bit at or above MAXPHYADDR (32); VMfailInvalid without a current VMCS. The operand",
        "is m64 whatever the operand size. The current VMCS does not change.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.comment("No current VMCS: VMfailInvalid.")
    s.vmptrld(VMCS_A + 1).fail_invalid()
    s.vmptrld(VMCS_A | 1 << 32).fail_invalid()
    s.comment("With a current VMCS: VMfailValid(9) for bits 11:0 (bit 2, bit 11, bit 0) and bits 63:32.")
    s.new_vmcs(VMCS_A)
    s.write(VMCS_B, REVISION).ok()
    for addr in (VMCS_B + 4, VMCS_B + 0x800, VMCS_B + 1, VMCS_B | 1 << 32, VMCS_B | 1 << 63, 0xFFFF_FFFF_FFFF_F000):
        s.vmptrld(addr).fail_valid(9)
    s.comment("The address check comes first: an unaligned VMXON pointer is 9, not 10.")
    s.vmptrld(VMXON_REGION + 8).fail_valid(9)
    s.comment("A 32-bit operand size does not shorten the m64 operand.")
    s.vmptrld(VMCS_B | 1 << 32, size=32).fail_valid(9)
    s.comment("The error field holds 9; VMCS_A is still current.")
    s.vmread("VM_INSTRUCTION_ERROR").succeed(9)
    s.vmptrst().succeed(VMCS_A)
    return s


def vmptrld_vmxon_pointer() -> Script:
    s = Script(
        "vmptrld_vmxon_pointer",
        "SDM 30.3 VMPTRLD: VMfail(10) (VMPTRLD with VMXON pointer) if the operand is the VMXON pointer,",
        "checked before the revision (the VMXON region holds a good one). After VMXOFF and VMXON with",
        "another region, the old VMXON region is an ordinary VMCS region.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.comment("No current VMCS: VMfailInvalid.")
    s.vmptrld(VMXON_REGION).fail_invalid()
    s.comment("With a current VMCS: VMfailValid(10); nothing else changes.")
    s.new_vmcs(VMCS_A)
    s.vmptrld(VMXON_REGION).fail_valid(10)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(10)
    s.vmptrst().succeed(VMCS_A)
    s.comment("Another VMXON region: the first one can now be loaded as a VMCS.")
    s.vmxoff().succeed()
    s.write(SPARE_REGION, REVISION).ok()
    s.vmxon(SPARE_REGION).succeed()
    s.vmptrld(VMXON_REGION).succeed()
    s.vmptrld(SPARE_REGION).fail_valid(10)
    return s


def vmptrld_incorrect_revision() -> Script:
    s = Script(
        "vmptrld_incorrect_revision",
        "SDM 30.3 VMPTRLD: VMfail(11) (VMPTRLD with incorrect VMCS revision identifier) if bits 30:0 of the",
        "region's first dword differ from IA32_VMX_BASIC[30:0] or bit 31 is 1 (no VMCS shadowing). A region",
        "outside RAM reads all ones (choice 4). The dword is read even for a cached VMCS (choice 10).",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.write(VMCS_B, REVISION + 1).ok()
    s.comment("No current VMCS: VMfailInvalid.")
    s.vmptrld(VMCS_B).fail_invalid()
    s.comment("With a current VMCS: VMfailValid(11) for revision 2, 0 (never written), 0x7fffffff.")
    s.new_vmcs(VMCS_A)
    s.vmptrld(VMCS_B).fail_valid(11)
    s.vmptrld(VMCS_C).fail_valid(11)
    s.write(VMCS_D, 0x7FFF_FFFF).ok()
    s.vmptrld(VMCS_D).fail_valid(11)
    s.comment("Revision right in bits 30:0 but bit 31 (shadow-VMCS indicator) set.")
    s.write(VMCS_E, REVISION | 1 << 31).ok()
    s.vmptrld(VMCS_E).fail_valid(11)
    s.comment("Outside RAM: the dword reads all ones.")
    s.vmptrld(OUTSIDE_RAM).fail_valid(11)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(11)
    s.vmptrst().succeed(VMCS_A)
    s.comment("VMCS_F is cached; its revision dword is overwritten: VMPTRLD reads it again and fails.")
    s.new_vmcs(VMCS_F)
    s.vmptrld(VMCS_A).succeed()
    s.write(VMCS_F, REVISION + 1).ok()
    s.vmptrld(VMCS_F).fail_valid(11)
    s.write(VMCS_F, REVISION).ok()
    s.vmptrld(VMCS_F).succeed()
    s.vmptrst().succeed(VMCS_F)
    return s


CACHE_TEST_REGIONS = (VMCS_A, VMCS_B, VMCS_C, VMCS_D, VMCS_E, VMCS_F)


def vmptrld_cache() -> Script:
    regions = CACHE_TEST_REGIONS
    assert len(regions) > 4, "more VMCSs than the 4-entry cache"

    def rip(i: int) -> int:
        return 0xA000_0000_0000_0000 | regions[i] << 16 | i

    s = Script(
        "vmptrld_cache",
        "SDM 30.3 VMPTRLD, 24.11.1: a VMCS made current keeps its data whatever other VMCSs were loaded in",
        'between (six VMCSs, more than the 4-entry on-die cache, docs/semantics.md "The on-die VMCS cache":',
        "fill, LRU victim, write-back of a dirty victim); VMPTRLD of the current VMCS keeps earlier VMWRITEs;",
        "after VMCLEAR (and after eviction) the region in memory holds the written image.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.comment("Six VMCSs, each with its own GUEST_RIP and GUEST_CS_SELECTOR.")
    for i, region in enumerate(regions):
        s.new_vmcs(region)
        s.vmwrite("GUEST_RIP", rip(i)).succeed()
        s.vmwrite("GUEST_CS_SELECTOR", 0x100 + i).succeed()
    s.comment(
        "Entries 0-3 held A-D; E evicted A (least recently made current) and F evicted B, both dirty,",
        "so their regions hold their images; C is still cached, its region shows nothing yet.",
    )
    s.read(field_word_addr(VMCS_A, "GUEST_RIP"), 8).ok(rip(0))
    s.read(field_word_addr(VMCS_B, "GUEST_RIP"), 8).ok(rip(1))
    s.read(field_word_addr(VMCS_C, "GUEST_RIP"), 8).ok(0)
    for round_ in (1, 2):
        s.comment(f"Round {round_}: load each VMCS in turn; its values read back.")
        for i, region in enumerate(regions):
            s.vmptrld(region).succeed()
            s.vmptrst().succeed(region)
            s.vmread("GUEST_RIP").succeed(rip(i))
            s.vmread("GUEST_CS_SELECTOR").succeed(0x100 + i)
    s.comment("VMPTRLD of the current VMCS keeps the VMWRITEs made before it.")
    s.vmptrld(VMCS_C).succeed()
    s.vmwrite("GUEST_RSP", 0x7000).succeed()
    s.vmptrld(VMCS_C).succeed()
    s.vmread("GUEST_RSP").succeed(0x7000)
    s.vmread("GUEST_RIP").succeed(rip(2))
    s.comment("VMCLEAR every VMCS: each region holds its image and a launch word of 0.")
    for i, region in enumerate(regions):
        s.vmclear(region).succeed()
        s.read(field_word_addr(region, "GUEST_RIP"), 8).ok(rip(i))
        s.read(field_word_addr(region, "GUEST_CS_SELECTOR")).ok(0x100 + i)
        s.read(region + 4 * LAUNCH_WORD).ok(0)
    s.read(field_word_addr(VMCS_C, "GUEST_RSP"), 8).ok(0x7000)
    s.vmptrst().succeed(NO_CURRENT_VMCS)
    _replacement_order(s)
    return s


def _replacement_order(s: Script) -> None:
    """Which entry a fill takes, seen through memory: GUEST_RFLAGS reaches a region only by write-back."""

    def rflags(region: int) -> int:
        return 0x2 | region >> 8

    s.comment(
        "The cache is empty again. A-D fill entries 0-3, each with a GUEST_RFLAGS (dirty); VMPTRLD A (a hit)",
        "makes A the most recently used, so B is now the least recently used.",
    )
    for region in (VMCS_A, VMCS_B, VMCS_C, VMCS_D):
        s.vmptrld(region).succeed()
        s.vmwrite("GUEST_RFLAGS", rflags(region)).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.comment("VMCLEAR C (cached, dirty): written back, its entry invalid; the LRU order does not change.")
    s.vmclear(VMCS_C).succeed()
    s.read(field_word_addr(VMCS_C, "GUEST_RFLAGS")).ok(rflags(VMCS_C))
    s.comment("VMPTRLD E fills the invalid entry, not B's: B's region still lacks its GUEST_RFLAGS.")
    s.vmptrld(VMCS_E).succeed()
    s.read(field_word_addr(VMCS_B, "GUEST_RFLAGS")).ok(0)
    s.comment("VMPTRLD F evicts the least recently used, B (written back), not A (hit since).")
    s.vmptrld(VMCS_F).succeed()
    s.read(field_word_addr(VMCS_B, "GUEST_RFLAGS")).ok(rflags(VMCS_B))
    s.read(field_word_addr(VMCS_A, "GUEST_RFLAGS")).ok(0)
    s.comment("A, B, D keep their values.")
    for region in (VMCS_A, VMCS_B, VMCS_D):
        s.vmptrld(region).succeed()
        s.vmread("GUEST_RFLAGS").succeed(rflags(region))


def vmptrst() -> Script:
    s = Script(
        "vmptrst",
        "SDM 30.3 VMPTRST: the prefix (#UD outside VMX operation, #GP(0) at CPL > 0); VMsucceed with the",
        "current-VMCS pointer, FFFFFFFF_FFFFFFFFh when there is none (VMCLEAR of the current VMCS makes it so).",
        "The pointer is m64 whatever the operand size.",
    )
    s.comment("Outside VMX operation: #UD.")
    s.vmptrst().ud()
    s.enable_vmx()
    s.enter_vmx()
    s.comment("No current VMCS: all ones, with either operand size.")
    s.vmptrst().succeed(NO_CURRENT_VMCS)
    s.vmptrst(size=32).succeed(NO_CURRENT_VMCS)
    s.comment("The current-VMCS pointer follows VMPTRLD.")
    s.new_vmcs(VMCS_A)
    s.vmptrst().succeed(VMCS_A)
    s.new_vmcs(VMCS_B)
    s.vmptrst().succeed(VMCS_B)
    s.vmptrst(size=32).succeed(VMCS_B)
    s.comment("VMCLEAR of another VMCS keeps the pointer; VMCLEAR of the current one makes it all ones.")
    s.vmclear(VMCS_A).succeed()
    s.vmptrst().succeed(VMCS_B)
    s.vmclear(VMCS_B).succeed()
    s.vmptrst().succeed(NO_CURRENT_VMCS)
    s.comment("A failed VMPTRLD keeps it; CPL 3 is #GP.")
    s.vmptrld(VMCS_A).succeed()
    s.vmptrld(VMCS_C).fail_valid(11)
    s.vmptrst().succeed(VMCS_A)
    s.cpl(3)
    s.vmptrst().gp()
    s.cpl(0)
    return s


def vmclear() -> Script:
    s = Script(
        "vmclear",
        "SDM 30.3 VMCLEAR: the prefix; VMfail(2) if the address is bad (bits 11:0, bits >= 32); VMfail(3) if it is",
        "the VMXON pointer; else write the VMCS's data to its region, launch state clear (word 2 := 0),",
        "not current any more; VMsucceed. No revision check; outside RAM succeeds and writes nothing (choice 4).",
    )
    s.comment("Outside VMX operation: #UD.")
    s.vmclear(VMCS_A).ud()
    s.enable_vmx()
    s.enter_vmx()
    s.comment("No current VMCS: VMfail(2) and VMfail(3) are VMfailInvalid.")
    s.vmclear(VMCS_A + 1).fail_invalid()
    s.vmclear(VMCS_A | 1 << 32).fail_invalid()
    s.vmclear(VMXON_REGION).fail_invalid()
    s.comment("With a current VMCS: VMfailValid(2) for bad addresses.")
    s.new_vmcs(VMCS_A)
    for addr in (VMCS_B + 4, VMCS_B + 0x800, VMCS_B | 1 << 32, VMCS_B | 1 << 63):
        s.vmclear(addr).fail_valid(2)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(2)
    s.comment("VMfailValid(3) for the VMXON pointer; a bad address comes first (2).")
    s.vmclear(VMXON_REGION).fail_valid(3)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(3)
    s.vmclear(VMXON_REGION + 0x10).fail_valid(2)
    s.vmptrst().succeed(VMCS_A)
    s.comment("VMCLEAR of a never-loaded region without a revision identifier: succeeds, launch word := 0.")
    s.write(VMCS_B + 4 * LAUNCH_WORD, 1).ok()
    s.vmclear(VMCS_B).succeed()
    s.read(VMCS_B + 4 * LAUNCH_WORD).ok(0)
    s.read(VMCS_B).ok(0)
    s.comment("VMCLEAR outside RAM succeeds (the bus drops the writes).")
    s.vmclear(OUTSIDE_RAM).succeed()
    s.comment("A launched VMCS (launch word 1) loaded and cleared: its launch word reads 0 again.")
    s.launched_vmcs(VMCS_C)
    s.vmlaunch().fail_valid(4)
    s.vmclear(VMCS_C).succeed()
    s.read(VMCS_C + 4 * LAUNCH_WORD).ok(0)
    s.comment("VMCLEAR of the current VMCS writes its data to the region and leaves no current VMCS.")
    s.vmptrld(VMCS_A).succeed()
    s.vmwrite("GUEST_RIP", 0xFFF0).succeed()
    s.read(field_word_addr(VMCS_A, "GUEST_RIP"), 8).ok(0)
    s.vmclear(VMCS_A).succeed()
    s.read(field_word_addr(VMCS_A, "GUEST_RIP"), 8).ok(0xFFF0)
    s.vmptrst().succeed(NO_CURRENT_VMCS)
    s.vmread("GUEST_RIP").fail_invalid()
    s.comment("The cleared VMCS_C, current again, has launch state clear: VMRESUME fails with 5.")
    s.vmptrld(VMCS_C).succeed()
    s.vmresume().fail_valid(5)
    return s


# ======================================================================================
# VMREAD, VMWRITE (SDM 30.3, 24.11.2)
# ======================================================================================


def vmread_vmwrite_prefix() -> Script:
    s = Script(
        "vmread_vmwrite_prefix",
        "SDM 30.3 VMREAD, VMWRITE: #UD outside VMX operation, with RFLAGS.VM = 1 or in compatibility mode;",
        "#GP(0) if CPL > 0; VMfailInvalid without a current VMCS (before the component checks 12 and 13).",
        "CR0.PE = 0 cannot happen in VMX operation: CR0.PE is a FIXED0 bit, so the SET is refused.",
    )
    s.comment("Outside VMX operation: #UD.")
    s.vmread("GUEST_RIP").ud()
    s.vmwrite("GUEST_RIP", 0).ud()
    s.enable_vmx()
    s.enter_vmx()
    s.comment("No current VMCS: VMfailInvalid, even for an unsupported or a read-only component.")
    s.vmread("GUEST_RIP").fail_invalid()
    s.vmwrite("GUEST_RIP", 0).fail_invalid()
    s.vmread(unsupported(0x781E)).fail_invalid()
    s.vmwrite("VM_EXIT_REASON", 0).fail_invalid()
    s.new_vmcs(VMCS_A)
    s.vmwrite("GUEST_RIP", 0xFFF0).succeed()
    s.comment("Compatibility mode: #UD.")
    s.compatibility_mode()
    s.vmread("GUEST_RIP").ud()
    s.vmwrite("GUEST_RIP", 1).ud()
    s.comment("64-bit mode is fine.")
    s.set("cs.ar", CS_AR_64).ok()
    s.vmread("GUEST_RIP").succeed(0xFFF0)
    s.legacy_mode()
    s.comment("Virtual-8086 mode: #UD, also at CPL 3 (#UD before #GP).")
    s.virtual_8086(True)
    s.vmread("GUEST_RIP").ud()
    s.vmwrite("GUEST_RIP", 1).ud()
    s.cpl(3)
    s.vmread("GUEST_RIP").ud()
    s.virtual_8086(False)
    s.comment("CPL 3: #GP; the write did not happen.")
    s.vmread("GUEST_RIP").gp()
    s.vmwrite("GUEST_RIP", 1).gp()
    s.cpl(0)
    s.vmread("GUEST_RIP").succeed(0xFFF0)
    s.comment("CR0.PE = 0 is refused in VMX operation (#GP at the SET), so the prefix never sees it.")
    s.set("cr0", CR0_RESET).gp()
    s.get("cr0").ok(CR0_VMX)
    return s


def vmread_vmwrite_unsupported() -> Script:
    rip = FIELD_BY_NAME["GUEST_RIP"].encoding
    s = Script(
        "vmread_vmwrite_unsupported",
        "SDM 30.3 VMREAD/VMWRITE: VMfailValid(12) (unsupported VMCS component) if the encoding is not in the",
        "field table: reserved bit 12 or bits 31:15 set, an index the table lacks, the high access type (bit 0)",
        "of a 16-bit, 32-bit or natural-width field, or with a 64-bit operand any of bits 63:32 set",
        "(SDM 24.11.2, appendix B). The failure writes 12 to the error field and nothing else.",
        "Fields are given by encoding in this script.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.vmwrite(rip, 0xFFF0).succeed()
    s.vmread(FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding).succeed(0)
    cases = [
        ("reserved bit 12 (GUEST_RIP | 0x1000)", unsupported(rip | 1 << 12), 64),
        ("bit 15 (GUEST_RIP | 0x8000)", unsupported(rip | 1 << 15), 64),
        ("bit 31 with a 32-bit operand", unsupported(rip | 1 << 31), 32),
        ("bit 32 with a 64-bit operand", unsupported(rip | 1 << 32), 64),
        ("bits 63:32 all ones with a 64-bit operand", unsupported(rip | 0xFFFF_FFFF << 32), 64),
        ("index 3 of the 16-bit control fields", unsupported(0x0006), 64),
        ("index 24 of the 64-bit control fields", unsupported(0x2030), 64),
        ("index 1 of the 32-bit host fields", unsupported(0x4C02), 64),
        ("index 8 of the 32-bit read-only fields", unsupported(0x4410), 64),
        ("index 20 of the natural-width guest fields", unsupported(0x6828), 64),
        (f"index {MAX_INDEX + 1}, above IA32_VMX_VMCS_ENUM", unsupported(0x6800 | (MAX_INDEX + 1) << 1), 64),
        ("high access of a 16-bit field (GUEST_ES_SELECTOR | 1)", unsupported(0x0801), 64),
        ("high access of a 32-bit field (PIN_BASED_VM_EXEC_CONTROL | 1)", unsupported(0x4001), 32),
        ("high access of a natural-width field (GUEST_RIP | 1)", unsupported(rip | 1), 64),
        ("high access of a 32-bit read-only field: 12, not 13", unsupported(0x4401), 64),
    ]
    for text, encoding, size in cases:
        s.comment(f"{text}: VMREAD and VMWRITE fail with 12.")
        s.vmread(encoding, size=size).fail_valid(12)
        s.vmwrite(encoding, 0x1234, size=size).fail_valid(12)
    s.comment("The failed VMREAD wrote 12 to VM_INSTRUCTION_ERROR (0x4400); no VMWRITE reached GUEST_RIP.")
    s.vmwrite(rip, 0xFFF0).succeed()
    s.vmread(unsupported(0x0006)).fail_valid(12)
    s.vmread(FIELD_BY_NAME["VM_INSTRUCTION_ERROR"].encoding).succeed(12)
    s.vmread(rip).succeed(0xFFF0)
    return s


def vmwrite_read_only() -> Script:
    read_only = [f for f in FIELDS if f.read_only]
    s = Script(
        "vmwrite_read_only",
        "SDM 30.3 VMWRITE: VMfailValid(13) (VMWRITE to read-only VMCS component) for every VM-exit information",
        "field (type 1), full and high, with either operand size: IA32_VMX_MISC bit 29 is 0. The field keeps its",
        "value (0 in a fresh VMCS); VM_INSTRUCTION_ERROR holds 13. VMREAD of them succeeds.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    for field in read_only:
        s.comment(f"{field.name} ({field.encoding:#06x}): 13 at both sizes; it still reads 0.")
        s.vmwrite(field.name, 0x5A5A_5A5A).fail_valid(13)
        s.vmwrite(field.name, 0xA5A5_A5A5, size=32).fail_valid(13)
        expected = 13 if field.name == "VM_INSTRUCTION_ERROR" else 0
        s.vmread(field.name).succeed(expected)
    s.comment("The last failure left 13 in the error field.")
    s.vmread("VM_INSTRUCTION_ERROR").succeed(13)
    return s


def _fields_operand_size(size: int) -> Script:
    """The operand-size table of docs/semantics.md (SDM 24.11.2) for every field, written with ``size``."""
    by_name = size == 64
    other = 32 if size == 64 else 64
    s = Script(
        f"fields_operand_size_{size}",
        'SDM 24.11.2, docs/semantics.md "Operand sizes": every component of rtl/arch/fields.py FIELDS, written',
        f"with a {size}-bit operand and read back with both operand sizes. 16-bit fields keep the low 16 bits",
        "of a wider source; a 32-bit read of a 64-bit/natural field gives bits 31:0; a high access (bit 0 = 1)",
        "moves bits 63:32 and leaves bits 31:0 unchanged"
        + ("." if size == 64 else "; a 32-bit write of a full 64-bit/natural field clears bits 63:32."),
        "Read-only (VM-exit information) fields are only read (0 in a fresh VMCS).",
        "Fields are given by " + ("name." if by_name else "encoding."),
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)

    def key(field: Field) -> str | int:
        return field.name if by_name else field.encoding

    def read_both(field: Field, value: int) -> None:
        s.vmread(key(field), size=size).succeed(value & (U64 if size == 64 else U32))
        s.vmread(key(field), size=other).succeed(value & (U64 if other == 64 else U32))

    full_value: dict[int, int] = {}
    for field in FIELDS:
        width = "high half" if field.access == AccessType.HIGH else f"{field.width.label}-bit"
        if field.read_only:
            s.comment(f"{field.name} ({field.encoding:#06x}, {width}, read-only): reads 0 at both sizes.")
            read_both(field, 0)
            continue
        p = pattern(field, salt=size // 32)
        if field.access == AccessType.HIGH:
            full = FIELD_BY_ENCODING[field.full_encoding]
            low = full_value[full.encoding] & U32
            source = p if size == 64 else p & U32
            high = source & U32
            s.comment(f"{field.name} ({field.encoding:#06x}, {width}): bits 63:32 := source bits 31:0, bits 31:0 kept.")
            s.vmwrite(key(field), source, size=size).succeed()
            read_both(field, high)
            s.vmread(key(full)).succeed(high << 32 | low)
            continue
        bits = field.width.bits
        if size == 64:
            source = p
            stored = p & ((1 << bits) - 1)
            s.comment(f"{field.name} ({field.encoding:#06x}, {width}): keeps the low {bits} bits of a 64-bit source.")
        else:
            source = p & U32
            stored = source & ((1 << bits) - 1)
            if bits == 64:
                s.comment(
                    f"{field.name} ({field.encoding:#06x}, {width}): a 64-bit write,"
                    " then a 32-bit write clears bits 63:32."
                )
                s.vmwrite(key(field), p).succeed()
                s.vmread(key(field)).succeed(p)
            else:
                s.comment(
                    f"{field.name} ({field.encoding:#06x}, {width}): keeps the low {bits} bits of a 32-bit source."
                )
        s.vmwrite(key(field), source, size=size).succeed()
        read_both(field, stored)
        full_value[field.encoding] = stored
    return s


def fields_operand_size_64() -> Script:
    return _fields_operand_size(64)


def fields_operand_size_32() -> Script:
    return _fields_operand_size(32)


def memory_resident_fields() -> Script:
    memory = [f for f in FIELDS if LOCATION[f.encoding].storage == Storage.MEMORY]
    s = Script(
        "memory_resident_fields",
        'docs/semantics.md "The on-die VMCS cache and the region", rtl/arch/layout.py: fields of features vmxu',
        "does not implement are memory-resident: VMREAD/VMWRITE reach them in the region (word LOCATION.word) at",
        "once, they do not make the cache entry dirty, and a VMREAD of a 16-bit one returns the low 16 bits of",
        "its word. On-die fields reach the region only on write-back (VMCLEAR, VMXOFF, eviction).",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    region = VMCS_A
    for field in memory:
        loc = LOCATION[field.encoding]
        addr = region + 4 * loc.word
        if field.read_only:
            s.comment(f"{field.name} (read-only, word {loc.word}): a VMREAD shows what the region holds.")
            s.write(addr, 0x1357_9BDF).ok()
            s.vmread(field.name).succeed(0x1357_9BDF)
            continue
        p = pattern(field, salt=1)
        if field.access == AccessType.HIGH:
            full = FIELD_BY_ENCODING[field.full_encoding]
            s.comment(f"{field.name} (word {loc.word}): written through at once; the low word {loc.word - 1} is kept.")
            s.vmwrite(field.name, p & U32).succeed()
            s.read(addr).ok(p & U32)
            s.read(addr - 4).ok(pattern(full, salt=1) & U32)
            continue
        stored = p & ((1 << field.width.bits) - 1)
        s.comment(f"{field.name} ({field.width.label}-bit, word {loc.word}): written through at once.")
        s.vmwrite(field.name, p).succeed()
        s.read(addr, 4 * loc.words).ok(stored)
        s.vmread(field.name).succeed(stored)
    s.comment("An on-die field (GUEST_RIP) is not in the region until VMCLEAR writes the image back.")
    s.vmwrite("GUEST_RIP", 0xFFF0).succeed()
    s.read(field_word_addr(region, "GUEST_RIP"), 8).ok(0)
    s.vmclear(region).succeed()
    s.read(field_word_addr(region, "GUEST_RIP"), 8).ok(0xFFF0)
    s.comment("Memory-resident values stay in the region across VMCLEAR and VMPTRLD.")
    ept = FIELD_BY_NAME["EPT_POINTER"]
    ept_value = pattern(ept, salt=1) & U32 | (pattern(FIELD_BY_NAME["EPT_POINTER_HIGH"], salt=1) & U32) << 32
    s.vmptrld(region).succeed()
    s.vmread("EPT_POINTER").succeed(ept_value)
    s.comment(
        "A 16-bit memory-resident field reads the low 16 bits of its word (software wrote the whole word;",
        "choice 11 forbids writing an active VMCS's region, but memory-resident fields are never cached).",
    )
    s.write(field_word_addr(region, "VIRTUAL_PROCESSOR_ID"), 0xABCD_1234).ok()
    s.vmread("VIRTUAL_PROCESSOR_ID").succeed(0x1234)
    s.vmread("VIRTUAL_PROCESSOR_ID", size=32).succeed(0x1234)
    s.comment(
        "Memory-resident VMWRITEs do not make the entry dirty: after VMPTRLD (fill, clean) only a memory-resident",
        "field is written, so VMCLEAR writes no image back and a word placed in the on-die image area survives.",
    )
    s.write(field_word_addr(region, "GUEST_RIP"), 0xBAD0).ok()
    s.vmwrite("EPT_POINTER", 0x5000).succeed()
    s.vmclear(region).succeed()
    s.read(field_word_addr(region, "GUEST_RIP"), 8).ok(0xBAD0)
    s.read(field_word_addr(region, "EPT_POINTER"), 8).ok(0x5000)
    s.comment("While an on-die VMWRITE does: VMCLEAR then writes the whole image back.")
    s.vmptrld(region).succeed()
    s.write(field_word_addr(region, "GUEST_RSP"), 0xBAD0).ok()
    s.vmwrite("GUEST_RIP", 0xFFF0).succeed()
    s.vmclear(region).succeed()
    s.read(field_word_addr(region, "GUEST_RIP"), 8).ok(0xFFF0)
    s.read(field_word_addr(region, "GUEST_RSP"), 8).ok(0)
    return s


# ======================================================================================
# VMLAUNCH / VMRESUME: instruction checks (SDM 30.3)
# ======================================================================================


def vmlaunch_instruction_checks() -> Script:
    s = Script(
        "vmlaunch_instruction_checks",
        "SDM 30.3 VMLAUNCH/VMRESUME, in this order: the prefix; VMfailInvalid without a current VMCS;",
        "VMfailValid(26) if interruptibility bit 1 (blocking by MOV SS) is 1; VMLAUNCH: VMfailValid(4) unless the",
        "launch state is clear; VMRESUME: VMfailValid(5) if it is clear, VMfailValid(6) if the VMCS was launched",
        "and then written back by VMXOFF (launch word 3, choice 9); these come before the checks 7 and 8.",
        "A launched VMCS is made by writing 1 to its launch word (region + 8) before VMPTRLD.",
    )
    s.comment("Outside VMX operation: #UD.")
    s.vmlaunch().ud()
    s.vmresume().ud()
    s.enable_vmx()
    s.enter_vmx()
    s.comment("The prefix: CPL 3 #GP, compatibility mode #UD, virtual-8086 mode #UD.")
    s.cpl(3)
    s.vmlaunch().gp()
    s.vmresume().gp()
    s.cpl(0)
    s.compatibility_mode()
    s.vmlaunch().ud()
    s.legacy_mode()
    s.virtual_8086(True)
    s.vmresume().ud()
    s.virtual_8086(False)
    s.comment("No current VMCS: VMfailInvalid.")
    s.vmlaunch().fail_invalid()
    s.vmresume().fail_invalid()
    s.comment("A clear VMCS with broken controls and host state (all zero): VMRESUME 5 comes before 7.")
    s.new_vmcs(VMCS_A)
    s.vmresume().fail_valid(5)
    s.vmlaunch().fail_valid(7)
    s.comment("Blocking by MOV SS: 26 for both, before 5 and before 7.")
    s.set("interruptibility", INTERRUPTIBILITY.BLOCKING_BY_MOV_SS).ok()
    s.vmlaunch().fail_valid(26)
    s.vmresume().fail_valid(26)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(26)
    s.comment("Blocking by STI (bit 0) is not blocking by MOV SS: the next check decides (7).")
    s.set("interruptibility", INTERRUPTIBILITY.BLOCKING_BY_STI).ok()
    s.vmlaunch().fail_valid(7)
    s.set("interruptibility", 0).ok()
    s.comment("A launched VMCS (launch word 1): VMLAUNCH 4 (before 7); 26 beats 4.")
    s.launched_vmcs(VMCS_B)
    s.vmlaunch().fail_valid(4)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(4)
    s.set("interruptibility", INTERRUPTIBILITY.BLOCKING_BY_MOV_SS).ok()
    s.vmlaunch().fail_valid(26)
    s.set("interruptibility", 0).ok()
    s.comment("VMRESUME of the launched VMCS passes the instruction checks: the controls decide (7).")
    s.vmresume().fail_valid(7)
    s.comment("A launched, launchable VMCS: VMLAUNCH 4, VMRESUME passes every check.")
    s.launchable()
    s.vmlaunch().fail_valid(4)
    s.vmresume().passes("vmresume")
    s.comment("A clear, launchable VMCS: VMRESUME 5, VMLAUNCH passes every check.")
    s.vmptrld(VMCS_A).succeed()
    s.launchable()
    s.vmresume().fail_valid(5)
    s.vmlaunch().passes()
    s.comment("Launch word 3 (launched, then written back by VMXOFF): VMRESUME 6, VMLAUNCH 4.")
    s.launched_vmcs(VMCS_C, launch_word=3)
    s.launchable()
    s.vmresume().fail_valid(6)
    s.vmlaunch().fail_valid(4)
    s.comment(
        'Launch word 2 (bit 1 without bit 0, "launched"): the launch state is clear. VMRESUME 5, VMLAUNCH passes.'
    )
    s.launched_vmcs(VMCS_E, launch_word=2)
    s.launchable()
    s.vmresume().fail_valid(5)
    s.vmlaunch().passes()
    s.vmptrld(VMCS_C).succeed()
    s.comment("VMCLEAR makes VMCS_C clear again: VMRESUME 5.")
    s.vmclear(VMCS_C).succeed()
    s.vmptrld(VMCS_C).succeed()
    s.vmresume().fail_valid(5)
    s.comment(
        "VMXOFF marks a launched VMCS that it writes back: VMCS_D is launched, made dirty by a failed",
        "VMLAUNCH (VMfailValid writes the error field), written back by VMXOFF with launch word 3.",
    )
    s.launched_vmcs(VMCS_D)
    s.vmlaunch().fail_valid(4)
    s.vmxoff().succeed()
    s.read(VMCS_D + 4 * LAUNCH_WORD).ok(3)
    s.comment("A clear VMCS written back by VMXOFF keeps launch word 0.")
    s.read(VMCS_A + 4 * LAUNCH_WORD).ok(0)
    s.comment("After VMXON, VMRESUME of VMCS_D fails with 6.")
    s.vmxon(VMXON_REGION).succeed()
    s.vmptrld(VMCS_D).succeed()
    s.launchable()
    s.vmresume().fail_valid(6)
    s.comment(
        "VMXOFF marks a launched VMCS in the cache even when it is clean: VMCS_E is launched and only",
        "loaded; VMXOFF writes its launch word (3) and nothing else; VMRESUME then fails with 6.",
    )
    s.launched_vmcs(VMCS_E)
    s.vmxoff().succeed()
    s.read(VMCS_E + 4 * LAUNCH_WORD).ok(3)
    s.vmxon(VMXON_REGION).succeed()
    s.vmptrld(VMCS_E).succeed()
    s.vmresume().fail_valid(6)
    return s


# ======================================================================================
# VMLAUNCH / VMRESUME: checks on the VMX controls (7) and the host state (8), SDM 26.2
# ======================================================================================

#: A host-state failure (HOST_CR3 bit 32): error 8 instead of 7 proves that the control checks passed.
HOST_TRIPWIRE = {"HOST_CR3": 1 << 32}


def entry_case(
    s: Script,
    text: str,
    changes: dict[str, int],
    error: int | None,
    ready: dict[str, int],
    instruction: str = "vmlaunch",
) -> None:
    """From a launchable VMCS: VMWRITE ``changes``, VMLAUNCH (or VMRESUME), expect VMfailValid(``error``)
    (None: every check passes), then VMWRITE the launchable values back."""
    s.comment(text)
    for name, value in changes.items():
        s.vmwrite(name, value).succeed()
    result = getattr(s, instruction)()
    if error is None:
        result.passes(instruction)
    else:
        result.fail_valid(error)
    for name in changes:
        s.vmwrite(name, ready.get(name, 0)).succeed()


def controls_pass(s: Script, text: str, changes: dict[str, int], ready: dict[str, int]) -> None:
    """``changes`` pass the control checks: with the host tripwire the error is 8, not 7."""
    entry_case(
        s, text + " Host tripwire (HOST_CR3 bit 32): 8 shows the controls passed.", changes | HOST_TRIPWIRE, 8, ready
    )


def _capability_cases(s: Script, ready: dict[str, int]) -> None:
    for control in (PIN, PROC, EXIT, ENTRY):
        value = ready[control.vmcs_field]
        for bit in bits_of(control.true_default1):
            entry_case(
                s,
                f"Check 1: {control.name}: bit {bit} cleared, but TRUE capability bit {bit} says it must be 1.",
                {control.vmcs_field: value & ~(1 << bit)},
                7,
                ready,
            )
        for bit in bits_of(~control.allowed1 & U32):
            entry_case(
                s,
                f"Check 1: {control.name}: bit {bit} set, but capability bit {bit + 32} is 0 (not allowed).",
                {control.vmcs_field: value | 1 << bit},
                7,
                ready,
            )
    secondary = PROC.bit("ACTIVATE_SECONDARY_CONTROLS")
    for bit in bits_of(~PROC2.allowed1 & U32):
        entry_case(
            s,
            f"Check 1: {PROC2.name} (active: primary bit 31 = 1): bit {bit} set, not allowed.",
            {PROC.vmcs_field: ready[PROC.vmcs_field] | secondary, PROC2.vmcs_field: 1 << bit},
            7,
            ready,
        )
    controls_pass(
        s,
        f"Check 1: secondary controls count only when primary bit 31 is 1: all ones in {PROC2.vmcs_field} are ignored.",
        {PROC2.vmcs_field: U32},
        ready,
    )
    controls_pass(
        s,
        f"Check 1: with primary bit 31 = 1, the allowed secondary bits {PROC2.allowed1:#x} may be 1.",
        {PROC.vmcs_field: ready[PROC.vmcs_field] | secondary, PROC2.vmcs_field: PROC2.allowed1},
        ready,
    )
    controls_pass(
        s,
        "Check 1: the launchable VMCS leaves 0 the bits only the plain capability MSRs report as default1"
        f" (primary {PROC.default1 & ~PROC.true_default1:#x}, exit {EXIT.default1 & ~EXIT.true_default1:#x},"
        f" entry {ENTRY.default1 & ~ENTRY.true_default1:#x}): checked against the TRUE MSRs (IA32_VMX_BASIC bit 55).",
        {},
        ready,
    )


def _bitmap_and_list_cases(s: Script, ready: dict[str, int]) -> None:
    proc = ready[PROC.vmcs_field]
    io = proc | PROC.bit("USE_IO_BITMAPS")
    msr_bitmaps = proc | PROC.bit("USE_MSR_BITMAPS")
    entry_case(s, "Check 2: CR3-target count 5, above IA32_VMX_MISC[24:16] = 4.", {"CR3_TARGET_COUNT": 5}, 7, ready)
    entry_case(s, "Check 2: CR3-target count 0xffffffff.", {"CR3_TARGET_COUNT": U32}, 7, ready)
    controls_pass(s, "Check 2: CR3-target count 4 is allowed.", {"CR3_TARGET_COUNT": 4}, ready)
    for name in ("IO_BITMAP_A", "IO_BITMAP_B"):
        for bad, what in ((0x5008, "not 4-KiB aligned"), (0x5800, "bit 11 set"), (0x1_0000_5000, "beyond 4 GiB")):
            entry_case(
                s,
                f'Check 3: "use I/O bitmaps" with {name} {bad:#x} ({what}).',
                {PROC.vmcs_field: io, name: bad},
                7,
                ready,
            )
    controls_pass(
        s,
        'Check 3: "use I/O bitmaps" with good bitmaps.',
        {PROC.vmcs_field: io, "IO_BITMAP_A": 0x5000, "IO_BITMAP_B": 0x6000},
        ready,
    )
    controls_pass(
        s, 'Check 3: without "use I/O bitmaps" the addresses are not checked.', {"IO_BITMAP_A": 0x5008}, ready
    )
    for bad, what in ((0x7008, "not 4-KiB aligned"), (0x1_0000_0000, "beyond 4 GiB")):
        entry_case(
            s,
            f'Check 4: "use MSR bitmaps" with MSR_BITMAP {bad:#x} ({what}).',
            {PROC.vmcs_field: msr_bitmaps, "MSR_BITMAP": bad},
            7,
            ready,
        )
    controls_pass(
        s, 'Check 4: "use MSR bitmaps" with a good bitmap.', {PROC.vmcs_field: msr_bitmaps, "MSR_BITMAP": 0x7000}, ready
    )
    controls_pass(s, 'Check 4: without "use MSR bitmaps" the address is not checked.', {"MSR_BITMAP": 0x7008}, ready)
    lists = (
        ("VM_EXIT_MSR_STORE_COUNT", "VM_EXIT_MSR_STORE_ADDR"),
        ("VM_EXIT_MSR_LOAD_COUNT", "VM_EXIT_MSR_LOAD_ADDR"),
        ("VM_ENTRY_MSR_LOAD_COUNT", "VM_ENTRY_MSR_LOAD_ADDR"),
    )
    for count, addr in lists:
        entry_case(s, f"Check 7: {addr} 0x5008 (not 16-byte aligned), 1 entry.", {count: 1, addr: 0x5008}, 7, ready)
        entry_case(
            s,
            f"Check 7: {addr} 0xfffffff0 with 2 entries ends at 0x10000000f.",
            {count: 2, addr: 0xFFFF_FFF0},
            7,
            ready,
        )
        entry_case(
            s, f"Check 7: {addr} 0x100000000 (beyond 4 GiB), 1 entry.", {count: 1, addr: 0x1_0000_0000}, 7, ready
        )
        controls_pass(
            s, f"Check 7: {addr} 0xfffffff0 with 1 entry ends at 0xffffffff.", {count: 1, addr: 0xFFFF_FFF0}, ready
        )
        controls_pass(s, f"Check 7: count 0 ignores a bad {addr}.", {count: 0, addr: 0x1_0000_5008}, ready)


def _nmi_timer_smm_cases(s: Script, ready: dict[str, int]) -> None:
    pin, proc, exit_, entry = (ready[c.vmcs_field] for c in (PIN, PROC, EXIT, ENTRY))
    nmi_exiting, virtual_nmis = PIN.bit("NMI_EXITING"), PIN.bit("VIRTUAL_NMIS")
    nmi_window = PROC.bit("NMI_WINDOW_EXITING")
    timer, save_timer = PIN.bit("ACTIVATE_PREEMPTION_TIMER"), EXIT.bit("SAVE_VMX_PREEMPTION_TIMER")
    assert PIN.allowed1 & (nmi_exiting | virtual_nmis | timer) and PROC.allowed1 & nmi_window
    assert EXIT.allowed1 & save_timer and ENTRY.allowed1 & (ENTRY.bit("SMM") | ENTRY.bit("DEACT_DUAL_MONITOR"))
    s.comment(
        "The TRUE capability MSRs allow the controls of checks 5, 6 and 8 (allowed-1 in bits 63:32):",
        "pin NMI exiting (3), virtual NMIs (5), activate preemption timer (6); primary NMI-window exiting (22);",
        "exit save preemption timer (22); entry to SMM (10), deactivate dual-monitor treatment (11).",
    )
    for control in (PIN, PROC, EXIT, ENTRY):
        s.rdmsr(control.true_msr).ok(control.true_capability)
    pin_field, proc_field = PIN.vmcs_field, PROC.vmcs_field
    entry_case(s, 'Check 5: "virtual NMIs" = 1 with "NMI exiting" = 0.', {pin_field: pin | virtual_nmis}, 7, ready)
    entry_case(
        s, 'Check 5: "NMI-window exiting" = 1 with "virtual NMIs" = 0.', {proc_field: proc | nmi_window}, 7, ready
    )
    entry_case(
        s,
        'Check 5: "NMI-window exiting" = 1 with "NMI exiting" = 1 but "virtual NMIs" = 0.',
        {pin_field: pin | nmi_exiting, proc_field: proc | nmi_window},
        7,
        ready,
    )
    controls_pass(s, 'Check 5: "NMI exiting" alone is fine.', {pin_field: pin | nmi_exiting}, ready)
    controls_pass(
        s,
        "Check 5: NMI exiting, virtual NMIs and NMI-window exiting together are fine.",
        {pin_field: pin | nmi_exiting | virtual_nmis, proc_field: proc | nmi_window},
        ready,
    )
    entry_case(
        s,
        'Check 6: "save VMX-preemption timer value" = 1 with "activate VMX-preemption timer" = 0.',
        {EXIT.vmcs_field: exit_ | save_timer},
        7,
        ready,
    )
    controls_pass(
        s,
        "Check 6: both preemption-timer controls set.",
        {EXIT.vmcs_field: exit_ | save_timer, pin_field: pin | timer},
        ready,
    )
    for name, label in (("SMM", "entry to SMM"), ("DEACT_DUAL_MONITOR", "deactivate dual-monitor treatment")):
        entry_case(s, f'Check 8: "{label}" = 1 outside SMM.', {ENTRY.vmcs_field: entry | ENTRY.bit(name)}, 7, ready)


VALID = 1 << 31
DELIVER_ERROR_CODE = 1 << 11
ERROR_CODE_VECTORS = (8, 10, 11, 12, 13, 14, 17)


def _event(kind: int, vector: int, *, error_code: bool = False) -> int:
    return VALID | kind << 8 | vector | (DELIVER_ERROR_CODE if error_code else 0)


def _event_injection_cases(s: Script, ready: dict[str, int]) -> None:
    info = "VM_ENTRY_INTR_INFO_FIELD"

    def bad(text: str, changes: dict[str, int]) -> None:
        entry_case(s, f"Check 9: {text}.", changes, 7, ready)

    def good(text: str, changes: dict[str, int]) -> None:
        controls_pass(s, f"Check 9: {text}.", changes, ready)

    good("valid bit 0: nothing else in the field is checked", {info: 0x7FFF_FFFF})
    bad("type 1 (reserved)", {info: _event(1, 0x20)})
    bad("type 7 (other event) without monitor-trap-flag support", {info: _event(7, 0)})
    bad("NMI (type 2) with vector 3", {info: _event(2, 3)})
    good("NMI with vector 2", {info: _event(2, 2)})
    bad("hardware exception (type 3) with vector 32", {info: _event(3, 32)})
    good("hardware exception with vector 31, no error code", {info: _event(3, 31)})
    bad("bit 12 set (bits 30:12 reserved)", {info: _event(0, 0x20) | 1 << 12})
    bad("bit 30 set (bits 30:12 reserved)", {info: _event(0, 0x20) | 1 << 30})
    good("external interrupt (type 0) vector 0x20", {info: _event(0, 0x20)})
    for vector in ERROR_CODE_VECTORS:
        bad(f"hardware exception {vector} without deliver-error-code", {info: _event(3, vector)})
        good(f"hardware exception {vector} with deliver-error-code", {info: _event(3, vector, error_code=True)})
    for vector in (0, 6, 9, 15, 16, 18, 31):
        bad(
            f"hardware exception {vector} (no error code) with deliver-error-code",
            {info: _event(3, vector, error_code=True)},
        )
    # Without "unrestricted guest", the vector alone decides; the guest's CR0.PE does not count.
    bad(
        "hardware exception 13 without deliver-error-code, GUEST_CR0.PE = 0 (no unrestricted guest)",
        {info: _event(3, 13), "GUEST_CR0": 0},
    )
    good(
        "hardware exception 13 with deliver-error-code, GUEST_CR0.PE = 0 (no unrestricted guest)",
        {info: _event(3, 13, error_code=True), "GUEST_CR0": 0},
    )
    bad("external interrupt 13 with deliver-error-code", {info: _event(0, 13, error_code=True)})
    bad("NMI with deliver-error-code", {info: _event(2, 2, error_code=True)})
    code = "VM_ENTRY_EXCEPTION_ERROR_CODE"
    bad(
        "deliver-error-code with error code bit 16 set (bits 31:16 must be 0)",
        {info: _event(3, 14, error_code=True), code: 0x1_0000},
    )
    good(
        "deliver-error-code with error code 0xffff (bit 15 may be 1, choice 7)",
        {info: _event(3, 14, error_code=True), code: 0xFFFF},
    )
    good("error code bits 31:16 do not matter without deliver-error-code", {info: _event(3, 31), code: U32})
    length = "VM_ENTRY_INSTRUCTION_LEN"
    for kind, vector, name in (
        (4, 0x80, "software interrupt"),
        (5, 1, "privileged software exception"),
        (6, 3, "software exception"),
    ):
        bad(f"{name} (type {kind}) with instruction length 0", {info: _event(kind, vector), length: 0})
        bad(f"{name} (type {kind}) with instruction length 16", {info: _event(kind, vector), length: 16})
        good(f"{name} (type {kind}) with instruction length 1", {info: _event(kind, vector), length: 1})
        good(f"{name} (type {kind}) with instruction length 15", {info: _event(kind, vector), length: 15})
    good("the instruction length is not checked for a hardware exception", {info: _event(3, 6), length: 0})


def vmentry_control_checks() -> Script:
    s = Script(
        "vmentry_control_checks",
        "SDM 26.2.1 (26.2.1.1 execution controls, 26.2.1.2 exit controls, 26.2.1.3 entry controls),",
        'docs/semantics.md "Checks on the VMX controls" 1-9: VMLAUNCH/VMRESUME fail with VMfailValid(7).',
        "Each group starts from a launchable VMCS, breaks one thing, and writes the launchable values back.",
        "Groups that show something is allowed also break the host state (HOST_CR3 bit 32), so the",
        "result is 8 (the control checks passed) rather than an entry.",
    )
    ready = launchable_fields()
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.comment("The launchable VMCS passes every check.")
    s.vmlaunch().passes()
    _capability_cases(s, ready)
    _bitmap_and_list_cases(s, ready)
    _nmi_timer_smm_cases(s, ready)
    _event_injection_cases(s, ready)
    s.comment("VMRESUME makes the same checks: a launched, launchable VMCS with CR3-target count 5.")
    s.launched_vmcs(VMCS_B)
    s.launchable()
    entry_case(s, "Check 2 for VMRESUME.", {"CR3_TARGET_COUNT": 5}, 7, ready, instruction="vmresume")
    s.comment("Still launchable after every group.")
    s.vmptrld(VMCS_A).succeed()
    s.vmlaunch().passes()
    return s


def _host_state_cases(s: Script, ready: dict[str, int], ia32e: bool) -> None:
    def bad(text: str, changes: dict[str, int]) -> None:
        entry_case(s, text, changes, 8, ready)

    exit_ = ready[EXIT.vmcs_field]
    cr0, cr4 = ready["HOST_CR0"], ready["HOST_CR4"]
    for bit, name in ((CR0.PE, "PE"), (CR0.NE, "NE"), (CR0.PG, "PG")):
        bad(f"Check 1: HOST_CR0 without {name} (IA32_VMX_CR0_FIXED0).", {"HOST_CR0": cr0 & ~bit})
    bad("Check 1: HOST_CR0 bit 32 (IA32_VMX_CR0_FIXED1 is 0 there; all 64 bits count).", {"HOST_CR0": cr0 | 1 << 32})
    bad("Check 1: HOST_CR4 without VMXE (IA32_VMX_CR4_FIXED0).", {"HOST_CR4": cr4 & ~CR4.VMXE})
    bad("Check 1: HOST_CR4 bit 14 (SMXE, 0 in IA32_VMX_CR4_FIXED1).", {"HOST_CR4": cr4 | 1 << 14})
    bad("Check 1: HOST_CR4 bit 32.", {"HOST_CR4": cr4 | 1 << 32})
    bad("Check 2: HOST_CR3 bit 32 (at MAXPHYADDR).", {"HOST_CR3": ready["HOST_CR3"] | 1 << 32})
    bad("Check 2: HOST_CR3 bit 63.", {"HOST_CR3": ready["HOST_CR3"] | 1 << 63})
    for name in ("HOST_IA32_SYSENTER_ESP", "HOST_IA32_SYSENTER_EIP"):
        bad(f"Check 3: {name} {NOT_CANONICAL:#x} (not canonical).", {name: NOT_CANONICAL})
        bad(f"Check 3: {name} 0xffff7fffffffffff (not canonical).", {name: 0xFFFF_7FFF_FFFF_FFFF})
    load_perf = exit_ | EXIT.bit("LOAD_IA32_PERF_GLOBAL_CTRL")
    for value in (1 << 2, 1 << 35, 1 << 63):
        bad(
            f'Check 4: "load IA32_PERF_GLOBAL_CTRL" with reserved bit {value.bit_length() - 1} set.',
            {EXIT.vmcs_field: load_perf, "HOST_IA32_PERF_GLOBAL_CTRL": value},
        )
    load_pat = exit_ | EXIT.bit("LOAD_IA32_PAT")
    good_pat = 0x0007_0406_0007_0406
    for byte in range(8):
        for kind in (2, 3):
            value = good_pat & ~(0xFF << 8 * byte) | kind << 8 * byte
            bad(
                f'Check 5: "load IA32_PAT" with byte {byte} = {kind} (reserved memory type).',
                {EXIT.vmcs_field: load_pat, "HOST_IA32_PAT": value},
            )
    bad('Check 5: "load IA32_PAT" with byte 0 = 8.', {EXIT.vmcs_field: load_pat, "HOST_IA32_PAT": good_pat & ~0xFF | 8})
    load_efer = exit_ | EXIT.bit("LOAD_IA32_EFER")
    efer = EFER_IA32E if ia32e else 0
    bad(
        'Check 6: "load IA32_EFER" with reserved bit 1 set.',
        {EXIT.vmcs_field: load_efer, "HOST_IA32_EFER": efer | 1 << 1},
    )
    bad(
        'Check 6: "load IA32_EFER" with reserved bit 63 set.',
        {EXIT.vmcs_field: load_efer, "HOST_IA32_EFER": efer | 1 << 63},
    )
    size = int(ia32e)
    for value in (EFER.LMA, EFER.LME, EFER_IA32E, 0):
        if value == efer:
            continue
        lma, lme = int(bool(value & EFER.LMA)), int(bool(value & EFER.LME))
        bad(
            f'Check 6: "load IA32_EFER" with LMA = {lma}, LME = {lme}; "host address-space size" = {size}.',
            {EXIT.vmcs_field: load_efer, "HOST_IA32_EFER": value},
        )
    for name, value in HOST_SELECTORS.items():
        for low, what in ((1, "RPL 1"), (3, "RPL 3"), (4, "TI = 1")):
            bad(f"Check 7: {name} {value | low:#x} ({what}).", {name: value | low})
    bad("Check 7: HOST_CS_SELECTOR 0.", {"HOST_CS_SELECTOR": 0})
    bad("Check 7: HOST_TR_SELECTOR 0.", {"HOST_TR_SELECTOR": 0})
    if not ia32e:
        bad('Check 7: HOST_SS_SELECTOR 0 with "host address-space size" = 0.', {"HOST_SS_SELECTOR": 0})
    for name in ("HOST_FS_BASE", "HOST_GS_BASE", "HOST_GDTR_BASE", "HOST_IDTR_BASE", "HOST_TR_BASE"):
        bad(f"Check 8: {name} {NOT_CANONICAL:#x} (not canonical).", {name: NOT_CANONICAL})
    hass = EXIT.bit("HOST_ADDR_SPACE_SIZE")
    entry = ready[ENTRY.vmcs_field]
    if ia32e:
        bad(
            'Check 9: in IA-32e mode, "host address-space size" = 0.',
            {EXIT.vmcs_field: exit_ & ~hass, "HOST_CR4": CR4_VMX, "HOST_RIP": HOST_RIP_32},
        )
        bad('Check 9: "host address-space size" = 1 and HOST_CR4.PAE = 0.', {"HOST_CR4": cr4 & ~CR4.PAE})
        bad(f"Check 9: HOST_RIP {NOT_CANONICAL:#x} (not canonical).", {"HOST_RIP": NOT_CANONICAL})
        bad("Check 9: HOST_RIP 0x7fff000000000000 (not canonical).", {"HOST_RIP": 0x7FFF_0000_0000_0000})
    else:
        bad(
            'Check 9: outside IA-32e mode, "IA-32e mode guest" = 1.',
            {ENTRY.vmcs_field: entry | ENTRY.bit("IA32E_MODE")},
        )
        bad(
            'Check 9: outside IA-32e mode, "host address-space size" = 1 (with HOST_CR4.PAE and a 64-bit HOST_RIP).',
            {EXIT.vmcs_field: exit_ | hass, "HOST_CR4": cr4 | CR4.PAE, "HOST_RIP": HOST_RIP_64},
        )
        bad('Check 9: "host address-space size" = 0 and HOST_CR4.PCIDE = 1.', {"HOST_CR4": cr4 | CR4.PCIDE})
        bad('Check 9: "host address-space size" = 0 and HOST_RIP bit 32 set.', {"HOST_RIP": HOST_RIP_32 | 1 << 32})


def vmentry_host_state_checks() -> Script:
    s = Script(
        "vmentry_host_state_checks",
        "SDM 26.2.2 (host control registers and MSRs), 26.2.3 (host segment and descriptor-table registers),",
        '26.2.4 (address-space size); docs/semantics.md "Checks on the host-state area" 1-9: VMLAUNCH/VMRESUME',
        "fail with VMfailValid(8) (choice 6: the address-space-size checks too). Each group starts from a",
        "launchable VMCS, breaks one thing and writes the launchable values back; first with a 32-bit host",
        '(EFER.LMA = 0), then with a 64-bit host (EFER.LME = LMA = 1, CS.L = 1, "host address-space size" = 1).',
    )
    s.enable_vmx()
    s.enter_vmx()
    for ia32e, region in ((False, VMCS_A), (True, VMCS_B)):
        ready = launchable_fields(ia32e_host=ia32e)
        if ia32e:
            s.comment("The processor enters IA-32e mode (64-bit mode); a new VMCS for a 64-bit host.")
            s.ia32e_mode()
        else:
            s.comment("Protected mode with paging outside IA-32e mode; a launchable VMCS for a 32-bit host.")
        s.new_vmcs(region)
        s.launchable(ia32e_host=ia32e)
        s.vmlaunch().passes()
        _host_state_cases(s, ready, ia32e)
        s.comment("Still launchable after every group.")
        s.vmlaunch().passes()
    s.comment("VMRESUME makes the same checks: a launched 64-bit-host VMCS with HOST_TR_SELECTOR 0.")
    s.launched_vmcs(VMCS_C)
    s.launchable(ia32e_host=True)
    entry_case(s, "Check 7 for VMRESUME.", {"HOST_TR_SELECTOR": 0}, 8, launchable_fields(ia32e_host=True), "vmresume")
    return s


def vmentry_7_before_8() -> Script:
    s = Script(
        "vmentry_7_before_8",
        "docs/semantics.md choice 5 (SDM 26.2 lets the order be chosen): when both a VMX-control check and a",
        "host-state check fail, VMLAUNCH/VMRESUME report 7. The instruction checks (26, 4, 5, 6) come before both.",
    )
    ready = launchable_fields()
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.comment("CR3-target count 5 and HOST_CR3 bit 32: 7; fix the control: 8; fix the host: every check passes.")
    s.vmwrite("CR3_TARGET_COUNT", 5).succeed()
    s.vmwrite("HOST_CR3", 1 << 32).succeed()
    s.vmlaunch().fail_valid(7)
    s.vmwrite("CR3_TARGET_COUNT", 0).succeed()
    s.vmlaunch().fail_valid(8)
    s.vmwrite("HOST_CR3", ready["HOST_CR3"]).succeed()
    s.vmlaunch().passes()
    s.comment("A pin-based default1 bit cleared (check 1) and HOST_CS_SELECTOR 0 (check 7): 7.")
    entry_case(s, "Both broken.", {PIN.vmcs_field: 0, "HOST_CS_SELECTOR": 0}, 7, ready)
    s.comment("An invalid event (check 9, the last control check) and IA-32e mode guest (host check 9, the last): 7.")
    entry_case(
        s,
        "Both broken.",
        {"VM_ENTRY_INTR_INFO_FIELD": _event(1, 0), ENTRY.vmcs_field: ENTRY.true_default1 | ENTRY.bit("IA32E_MODE")},
        7,
        ready,
    )
    s.comment("Instruction checks first: with both broken, MOV-SS blocking gives 26 and VMRESUME of a clear VMCS 5.")
    s.vmwrite("CR3_TARGET_COUNT", 5).succeed()
    s.vmwrite("HOST_CR3", 1 << 32).succeed()
    s.vmresume().fail_valid(5)
    s.set("interruptibility", INTERRUPTIBILITY.BLOCKING_BY_MOV_SS).ok()
    s.vmlaunch().fail_valid(26)
    s.set("interruptibility", 0).ok()
    s.vmlaunch().fail_valid(7)
    return s


def vmentry_passes() -> Script:
    s = Script(
        "vmentry_passes",
        "SDM 30.3 VMLAUNCH/VMRESUME, 26.2, 26.3: a VMCS that passes every instruction, control, host-state and",
        "guest-state check enters the guest (no VMsucceed: RFLAGS is the guest's, the error field is not written);",
        "a VMCALL in the guest exits back to the host (reason 18). For a 32-bit and a 64-bit host, and the edges",
        "of each check that are still allowed (canonical limits, maximal counts, controls that are not set).",
    )
    s.enable_vmx()
    s.enter_vmx()

    def edge(text: str, changes: dict[str, int], ready: dict[str, int]) -> None:
        entry_case(s, text, changes, None, ready)

    ready = launchable_fields()
    s.comment(
        "A 32-bit host: VMLAUNCH passes every check and enters the guest; the guest's RFLAGS is GUEST_RFLAGS",
        "(the host's 0x8d7 is not VMsucceed's 0x2 either); after the VMCALL exit the host's RFLAGS is 0x2.",
    )
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.set("rflags", 0x8D7).ok()
    s.vmlaunch().entered()
    s.get("rflags").ok(RFLAGS.FIXED1)
    s.vmcall().exited(EXIT_VMCALL)
    s.get("rflags").ok(RFLAGS.FIXED1)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(0)
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.comment("Still clear: VMLAUNCH passes again, VMRESUME is 5.")
    s.vmlaunch().passes()
    s.vmresume().fail_valid(5)
    s.vmclear(VMCS_A).succeed()
    s.read(VMCS_A + 4 * LAUNCH_WORD).ok(0)
    s.vmptrld(VMCS_A).succeed()
    exit_ = ready[EXIT.vmcs_field]
    every_control_32 = {
        PIN.vmcs_field: PIN.allowed1,
        PROC.vmcs_field: PROC.allowed1,
        EXIT.vmcs_field: EXIT.allowed1 & ~EXIT.bit("HOST_ADDR_SPACE_SIZE"),
        ENTRY.vmcs_field: ENTRY.allowed1
        & ~(ENTRY.bit("IA32E_MODE") | ENTRY.bit("SMM") | ENTRY.bit("DEACT_DUAL_MONITOR")),
    }
    edge(
        "Every allowed control at once (but the address-space and SMM ones); bitmaps, PAT, EFER, PERF_GLOBAL_CTRL 0;"
        " a VMX-preemption timer that has not expired.",
        every_control_32 | {"VMX_PREEMPTION_TIMER_VALUE": 1000},
        ready,
    )
    edge("CR3-target count 4.", {"CR3_TARGET_COUNT": 4}, ready)
    edge("HOST_CR3 0xfffff000 (below MAXPHYADDR).", {"HOST_CR3": 0xFFFF_F000}, ready)
    for name in ("HOST_IA32_SYSENTER_ESP", "HOST_IA32_SYSENTER_EIP", "HOST_FS_BASE", "HOST_GS_BASE", "HOST_TR_BASE"):
        edge(
            f"{name} {CANONICAL_LOW_TOP:#x}, the highest canonical address below bit 47.",
            {name: CANONICAL_LOW_TOP},
            ready,
        )
        edge(
            f"{name} {CANONICAL_HIGH_BOTTOM:#x}, the lowest canonical address above.",
            {name: CANONICAL_HIGH_BOTTOM},
            ready,
        )
    edge("Reserved PERF_GLOBAL_CTRL bits without its load control.", {"HOST_IA32_PERF_GLOBAL_CTRL": U64}, ready)
    edge("An invalid PAT without its load control.", {"HOST_IA32_PAT": 0x0202_0202_0202_0202}, ready)
    edge("A bad EFER without its load control.", {"HOST_IA32_EFER": U64}, ready)
    edge(
        "Load PAT with every valid memory type (0, 1, 4, 5, 6, 7).",
        {EXIT.vmcs_field: exit_ | EXIT.bit("LOAD_IA32_PAT"), "HOST_IA32_PAT": 0x0706_0504_0100_0706},
        ready,
    )
    edge(
        "Load PERF_GLOBAL_CTRL with every implemented bit.",
        {
            EXIT.vmcs_field: exit_ | EXIT.bit("LOAD_IA32_PERF_GLOBAL_CTRL"),
            "HOST_IA32_PERF_GLOBAL_CTRL": msrs.PERF_GLOBAL_CTRL_VALID,
        },
        ready,
    )
    edge(
        "Load EFER with SCE and NXE (LMA = LME = 0 for a 32-bit host).",
        {EXIT.vmcs_field: exit_ | EXIT.bit("LOAD_IA32_EFER"), "HOST_IA32_EFER": EFER.SCE | EFER.NXE},
        ready,
    )
    edge(
        "HOST_ES, DS, FS, GS selectors 0 (only CS, TR and, for a 32-bit host, SS must not be 0).",
        {"HOST_FS_SELECTOR": 0, "HOST_GS_SELECTOR": 0, "HOST_DS_SELECTOR": 0, "HOST_ES_SELECTOR": 0},
        ready,
    )
    edge("HOST_RIP 0xffffffff (bits 63:32 clear).", {"HOST_RIP": U32}, ready)
    edge(
        "HOST_CR0 with every bit of FIXED1 (bits 31:0) and HOST_CR4 with every bit of FIXED1 but PCIDE.",
        {"HOST_CR0": msrs.CR0_FIXED1, "HOST_CR4": msrs.CR4_FIXED1 & ~CR4.PCIDE},
        ready,
    )
    lists = {"VM_ENTRY_MSR_LOAD_COUNT": 512, "VM_ENTRY_MSR_LOAD_ADDR": 0x30000}
    s.comment(
        "A VM-entry MSR-load list of 512 entries passes the control checks; its first entry (zeros: MSR 0 does",
        "not exist) then fails the entry: exit reason 34 | bit 31, the host state loaded (msr_lists has more).",
    )
    s.vmwrite_all(lists)
    s.vmlaunch().entry_failed(EXIT_REASON_ENTRY_FAILURE | EXIT_MSR_LOADING)
    s.vmwrite_all({name: 0 for name in lists})
    injections = (
        ("a page fault with error code 0xffff", _event(3, 14, error_code=True), 0xFFFF, {}),
        ("INT 0x80 with instruction length 2", _event(4, 0x80), None, {"VM_ENTRY_INSTRUCTION_LEN": 2}),
    )
    for text, info, code, extra in injections:
        s.comment(f"Event injection: {text}; the entry reports the event.")
        changes = {"VM_ENTRY_INTR_INFO_FIELD": info} | extra
        if code is not None:
            changes["VM_ENTRY_EXCEPTION_ERROR_CODE"] = code
        s.vmwrite_all(changes)
        s.vmlaunch().passes(event=info, error_code=code)
        s.vmwrite_all({name: ready.get(name, 0) for name in changes})

    ready64 = launchable_fields(ia32e_host=True)
    s.comment('A 64-bit host: the processor in 64-bit mode, "host address-space size" = 1, HOST_CR4.PAE = 1.')
    s.ia32e_mode()
    s.new_vmcs(VMCS_B)
    s.launchable(ia32e_host=True)
    s.vmlaunch().passes()
    edge(
        '"IA-32e mode guest" = 1 in IA-32e mode (a 64-bit guest: CR4.PAE, CS.L).',
        {ENTRY.vmcs_field: ENTRY.true_default1 | ENTRY.bit("IA32E_MODE")} | presets.guest_fields(ia32e_guest=True),
        ready64,
    )
    edge("HOST_SS_SELECTOR 0 with a 64-bit host.", {"HOST_SS_SELECTOR": 0}, ready64)
    edge("HOST_CR4.PCIDE = 1 with a 64-bit host.", {"HOST_CR4": ready64["HOST_CR4"] | CR4.PCIDE}, ready64)
    edge(f"HOST_RIP {CANONICAL_LOW_TOP:#x}.", {"HOST_RIP": CANONICAL_LOW_TOP}, ready64)
    edge(f"HOST_RIP {U64:#x}.", {"HOST_RIP": U64}, ready64)
    edge(
        "Load EFER with LMA = LME = 1.",
        {
            EXIT.vmcs_field: ready64[EXIT.vmcs_field] | EXIT.bit("LOAD_IA32_EFER"),
            "HOST_IA32_EFER": EFER_IA32E | EFER.NXE,
        },
        ready64,
    )
    s.comment("VMRESUME of a launched, launchable VMCS passes too.")
    s.launched_vmcs(VMCS_C)
    s.launchable(ia32e_host=True)
    s.vmresume().passes("vmresume")
    s.vmlaunch().fail_valid(4)
    return s


# ======================================================================================
# VMCALL, flags
# ======================================================================================


def vmcall() -> Script:
    s = Script(
        "vmcall",
        "SDM 30.3 VMCALL in VMX root operation: #UD outside VMX operation, with RFLAGS.VM = 1 or in compatibility",
        "mode; #GP(0) if CPL > 0; VMfail(1) (VMCALL executed in VMX root operation): IA32_SMM_MONITOR_CTL bit 0",
        "is 0 and writable only in SMM (choice 12), so VMCALL always fails: VMfailInvalid without a current VMCS,",
        "VMfailValid(1) with one.",
    )
    s.comment("Outside VMX operation: #UD (also at CPL 3).")
    s.vmcall().ud()
    s.cpl(3)
    s.vmcall().ud()
    s.cpl(0)
    s.enable_vmx()
    s.enter_vmx()
    s.comment("Virtual-8086 mode and compatibility mode: #UD; CPL 3: #GP.")
    s.virtual_8086(True)
    s.vmcall().ud()
    s.virtual_8086(False)
    s.compatibility_mode()
    s.vmcall().ud()
    s.set("cs.ar", CS_AR_64).ok()
    s.cpl(3)
    s.vmcall().gp()
    s.cpl(0)
    s.comment("IA32_SMM_MONITOR_CTL.valid is 0 and cannot be set outside SMM.")
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(0)
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, msrs.SMM_MONITOR_CTL_VALID).gp()
    s.comment("64-bit mode, no current VMCS: VMfailInvalid.")
    s.vmcall().fail_invalid()
    s.comment("With a current VMCS: VMfailValid(1).")
    s.new_vmcs(VMCS_A)
    s.vmcall().fail_valid(1)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(1)
    s.legacy_mode()
    s.vmcall().fail_valid(1)
    return s


ARITHMETIC_ALL = RFLAGS.ARITHMETIC | RFLAGS.FIXED1  # 0x8d7
OTHER_FLAGS = (1 << 8) | (1 << 9) | (1 << 10)  # TF, IF, DF


def flags() -> Script:
    s = Script(
        "flags",
        'SDM 30.2 "Conventions": VMsucceed clears CF, PF, AF, ZF, SF, OF; VMfailInvalid sets CF and clears the',
        "others; VMfailValid sets ZF and clears the others; the other RFLAGS bits are kept. A fault (#UD, #GP),",
        "a platform operation (ok) leave RFLAGS unchanged. Every group sets all six flags first (rflags 0x8d7).",
    )

    def after(text: str, expected_rflags: int, run, start: int = ARITHMETIC_ALL) -> None:
        s.comment(text)
        s.set("rflags", start).ok()
        run()
        s.get("rflags").ok(expected_rflags)

    ones = ARITHMETIC_ALL
    cf, zf, fixed = RFLAGS.CF, RFLAGS.ZF, RFLAGS.FIXED1
    after("A fault: VMXON #UD (CR4.VMXE = 0) leaves the flags.", ones, lambda: s.vmxon(VMXON_REGION).ud())
    s.enable_vmx()
    s.write(VMXON_REGION, REVISION).ok()
    after("VMXON VMfailInvalid (bad address): CF only.", fixed | cf, lambda: s.vmxon(VMXON_REGION + 4).fail_invalid())
    after("VMXON VMsucceed: all six clear.", fixed, lambda: s.vmxon(VMXON_REGION).succeed())
    after("VMPTRST VMsucceed.", fixed, lambda: s.vmptrst().succeed(NO_CURRENT_VMCS))
    for name, run in (
        ("VMREAD", lambda: s.vmread("GUEST_RIP").fail_invalid()),
        ("VMWRITE", lambda: s.vmwrite("GUEST_RIP", 0).fail_invalid()),
        ("VMLAUNCH", lambda: s.vmlaunch().fail_invalid()),
        ("VMRESUME", lambda: s.vmresume().fail_invalid()),
        ("VMCALL", lambda: s.vmcall().fail_invalid()),
        ("VMPTRLD (9)", lambda: s.vmptrld(VMCS_A + 1).fail_invalid()),
        ("VMCLEAR (3)", lambda: s.vmclear(VMXON_REGION).fail_invalid()),
        ("VMXON (15)", lambda: s.vmxon(VMXON_REGION).fail_invalid()),
    ):
        after(f"{name} without a current VMCS: VMfailInvalid, CF only.", fixed | cf, run)
    s.write(VMCS_A, REVISION).ok()
    after("VMCLEAR VMsucceed.", fixed, lambda: s.vmclear(VMCS_A).succeed())
    after("VMPTRLD VMsucceed.", fixed, lambda: s.vmptrld(VMCS_A).succeed())
    after("VMWRITE VMsucceed.", fixed, lambda: s.vmwrite("GUEST_RIP", 0xFFF0).succeed())
    after("VMREAD VMsucceed.", fixed, lambda: s.vmread("GUEST_RIP").succeed(0xFFF0))
    for name, error, run in (
        ("VMPTRLD", 10, lambda: s.vmptrld(VMXON_REGION).fail_valid(10)),
        ("VMCLEAR", 2, lambda: s.vmclear(VMCS_B + 4).fail_valid(2)),
        ("VMREAD", 12, lambda: s.vmread(unsupported(0x0006)).fail_valid(12)),
        ("VMWRITE", 13, lambda: s.vmwrite("VM_EXIT_REASON", 0).fail_valid(13)),
        ("VMLAUNCH", 7, lambda: s.vmlaunch().fail_valid(7)),
        ("VMRESUME", 5, lambda: s.vmresume().fail_valid(5)),
        ("VMCALL", 1, lambda: s.vmcall().fail_valid(1)),
        ("VMXON", 15, lambda: s.vmxon(VMXON_REGION).fail_valid(15)),
    ):
        after(f"{name} VMfailValid({error}): ZF only.", fixed | zf, run)
    s.comment("The other RFLAGS bits (TF, IF, DF) are kept by each outcome.")
    after("VMsucceed keeps TF, IF, DF.", fixed | OTHER_FLAGS, lambda: s.vmptrst().succeed(VMCS_A), ones | OTHER_FLAGS)
    after(
        "VMfailValid keeps them.",
        fixed | OTHER_FLAGS | zf,
        lambda: s.vmptrld(VMXON_REGION).fail_valid(10),
        ones | OTHER_FLAGS,
    )
    after("A #GP at CPL 3 leaves every flag.", ones, lambda: (s.cpl(3), s.vmptrst().gp(), s.cpl(0)))
    after(
        "A #UD in virtual-8086 mode leaves every flag (VM too).",
        ones | RFLAGS_VM,
        lambda: s.vmread("GUEST_RIP").ud(),
        ones | RFLAGS_VM,
    )
    after(
        "Platform operations (rdmsr, wrmsr, get, set, read, write) leave them.",
        ones,
        lambda: (
            s.rdmsr(msrs.IA32_VMX_BASIC).ok(msrs.IA32_VMX_BASIC_VALUE),
            s.wrmsr(msrs.IA32_SYSENTER_CS, 8).ok(),
            s.get("cr0").ok(CR0_VMX),
            s.set("rsp", 0x8000).ok(),
            s.write(0x8000, 1).ok(),
            s.read(0x8000).ok(1),
        ),
    )
    after("A refused WRMSR (#GP) leaves them.", ones, lambda: s.wrmsr(msrs.IA32_VMX_BASIC, 0).gp())
    after("VMXOFF VMsucceed.", fixed, lambda: s.vmxoff().succeed())
    return s


# ======================================================================================
# Platform operations: MSRs, machine-state elements, memory
# ======================================================================================


def msrs_script() -> Script:
    s = Script(
        "msrs",
        'docs/semantics.md "RDMSR / WRMSR" (SDM vol. 2B RDMSR/WRMSR, 23.7, appendix A, 34.15.5): #GP(0) at CPL > 0',
        "or for an MSR vmxu lacks; capability MSRs read their rtl/arch/msrs.py values and are read-only;",
        "IA32_FEATURE_CONTROL is writable until locked, bits above 2 #GP; IA32_SMM_MONITOR_CTL reads 0 and WRMSR",
        "#GP outside SMM; IA32_SMBASE RDMSR #GP outside SMM, WRMSR always #GP; element MSRs follow the element rules.",
    )
    fc = msrs.IA32_FEATURE_CONTROL
    s.comment("IA32_FEATURE_CONTROL: 0 at power-up; writable while unlocked; bits above 2 are reserved.")
    s.rdmsr(fc).ok(0)
    s.wrmsr(fc, msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX).ok()
    s.rdmsr(fc).ok(msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX)
    s.wrmsr(fc, 1 << 3).gp()
    s.wrmsr(fc, 1 << 63 | FEATURE_CONTROL_ON).gp()
    s.rdmsr(fc).ok(msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX)
    s.wrmsr(fc, 0).ok()
    s.rdmsr(fc).ok(0)
    s.comment("Lock (bits 0-2): from then on every WRMSR is #GP, even of the same value.")
    s.wrmsr(fc, msrs.FEATURE_CONTROL_VALID).ok()
    s.rdmsr(fc).ok(msrs.FEATURE_CONTROL_VALID)
    s.wrmsr(fc, msrs.FEATURE_CONTROL_VALID).gp()
    s.wrmsr(fc, 0).gp()
    s.rdmsr(fc).ok(msrs.FEATURE_CONTROL_VALID)
    for msr in msrs.MSRS:
        if msr.kind != MsrKind.CONSTANT:
            continue
        s.comment(f"{msr.name} ({msr.number:#x}): reads {msr.value:#x}; WRMSR #GP (even of its own value).")
        s.rdmsr(msr.number).ok(msr.value)
        s.wrmsr(msr.number, msr.value).gp()
        s.wrmsr(msr.number, 0).gp()
        s.rdmsr(msr.number).ok(msr.value)
    s.comment("IA32_VMX_BASIC: revision 1, 4-KiB regions, dual-monitor (49), write-back (53:50 = 6), TRUE MSRs (55).")
    s.rdmsr(msrs.IA32_VMX_BASIC).ok(1 | 0x1000 << 32 | 1 << 49 | 6 << 50 | 1 << 55)
    s.comment("IA32_SMM_MONITOR_CTL: reads 0; WRMSR #GP outside SMM.")
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(0)
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 0).gp()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, msrs.SMM_MONITOR_CTL_VALID).gp()
    s.comment("IA32_SMBASE: RDMSR #GP outside SMM, WRMSR #GP.")
    s.rdmsr(msrs.IA32_SMBASE).gp()
    s.wrmsr(msrs.IA32_SMBASE, 0x3_0000).gp()
    s.comment("MSRs vmxu does not implement: TSC, APIC_BASE, EPT/VPID and VMFUNC capabilities, 0xffffffff.")
    for number in (0x10, 0x1B, 0x48C, 0x491, 0xFFFF_FFFF):
        assert number not in msrs.MSR_BY_NUMBER
        s.rdmsr(number).gp()
        s.wrmsr(number, 0).gp()
    s.comment("CPL 3: RDMSR and WRMSR #GP, even of a readable or writable MSR.")
    s.cpl(3)
    s.rdmsr(msrs.IA32_VMX_BASIC).gp()
    s.rdmsr(fc).gp()
    s.wrmsr(msrs.IA32_SYSENTER_CS, 8).gp()
    s.cpl(0)
    s.get("sysenter_cs").ok(0)

    def element(msr: int, name: str, reset: int, refused: list[tuple[int, str]], accepted: int) -> None:
        s.comment(
            f"{name} ({msr:#x}): reset {reset:#x}; "
            + "; ".join(f"{v:#x} #GP ({why})" for v, why in refused)
            + f"; {accepted:#x} ok."
        )
        s.rdmsr(msr).ok(reset)
        for value, _ in refused:
            s.wrmsr(msr, value).gp()
        s.rdmsr(msr).ok(reset)
        s.wrmsr(msr, accepted).ok()
        s.rdmsr(msr).ok(accepted)

    element(
        msrs.IA32_EFER, "IA32_EFER", 0, [(1 << 1, "reserved bit 1"), (1 << 63, "reserved bit 63")], EFER.SCE | EFER.NXE
    )
    s.get("efer").ok(EFER.SCE | EFER.NXE)
    element(
        msrs.IA32_PAT,
        "IA32_PAT",
        0x0007_0406_0007_0406,
        [
            (0x0007_0406_0007_0402, "type 2 in byte 0"),
            (0x0307_0406_0007_0406, "type 3 in byte 7"),
            (0x0007_0406_0008_0406, "type 8"),
        ],
        0x0706_0504_0100_0706,
    )
    s.get("pat").ok(0x0706_0504_0100_0706)
    element(msrs.IA32_SYSENTER_ESP, "IA32_SYSENTER_ESP", 0, [(NOT_CANONICAL, "not canonical")], CANONICAL_HIGH_BOTTOM)
    element(
        msrs.IA32_SYSENTER_EIP, "IA32_SYSENTER_EIP", 0, [(0xFFFF_7FFF_FFFF_FFFF, "not canonical")], CANONICAL_LOW_TOP
    )
    element(msrs.IA32_FS_BASE, "IA32_FS_BASE", 0, [(NOT_CANONICAL, "not canonical")], 0xFFFF_FFFF_FFFF_F000)
    s.get("fs.base").ok(0xFFFF_FFFF_FFFF_F000)
    element(msrs.IA32_GS_BASE, "IA32_GS_BASE", 0, [(0x0001_0000_0000_0000, "not canonical")], 0x7000)
    s.get("gs.base").ok(0x7000)
    element(
        msrs.IA32_DEBUGCTL,
        "IA32_DEBUGCTL",
        0,
        [(1 << 2, "reserved bit 2"), (1 << 32, "reserved bit 32")],
        msrs.DEBUGCTL_VALID,
    )
    element(
        msrs.IA32_PERF_GLOBAL_CTRL,
        "IA32_PERF_GLOBAL_CTRL",
        0x3,
        [(1 << 2, "reserved bit 2"), (1 << 35, "reserved bit 35")],
        msrs.PERF_GLOBAL_CTRL_VALID,
    )
    element(
        msrs.IA32_SYSENTER_CS, "IA32_SYSENTER_CS", 0, [(1 << 32 | 8, "bits 63:32 wider than the 32-bit element")], 0x10
    )
    s.get("sysenter_cs").ok(0x10)
    s.comment("A SET of an element shows in its MSR.")
    s.set("sysenter_eip", 0xFFF0).ok()
    s.rdmsr(msrs.IA32_SYSENTER_EIP).ok(0xFFF0)
    return s


def _sign_extend_48(value: int) -> int:
    return value | 0xFFFF_0000_0000_0000 if value >> 47 & 1 else value & 0x0000_FFFF_FFFF_FFFF


ELEMENT_VALUES = {
    # PG needs PE, NW needs CD (MOV to CR0); ET (bit 4) as the reset value has it.
    "cr0": CR0.PG | CR0.CD | CR0.NW | CR0.NE | 0x10 | CR0.PE,
    # Every byte a valid memory type.
    "pat": 0x0006_0504_0100_0706,
    # Bits 11, 12, 14, 15 set and bit 10 clear: the processor forces them.
    "dr7": 0xFFFF_FBFF,
    # Every non-reserved flag but bit 1, which the processor forces to 1.
    "rflags": 0x3F_FFFF & ~RFLAGS.RESERVED & ~RFLAGS.FIXED1,
}


def element_value(element: Element, row: int) -> int:
    """A value the element's SET rules accept, distinct per element."""
    if element.name in ELEMENT_VALUES:
        return ELEMENT_VALUES[element.name]
    rotation = 4 * (row % 16)
    base = 0xF0E1_D2C3_B4A5_9687
    value = (base << rotation | base >> (64 - rotation)) & U64 if rotation else base
    value &= element.mask & ~element.reserved
    if element.canonical:
        value = _sign_extend_48(value)
    return value


def set_get() -> Script:
    s = Script(
        "set_get",
        'docs/semantics.md "GET / SET" with rtl/arch/state.py ELEMENTS (SDM 3A table 9-1 reset values, 2.5 and',
        "4.1.3 MOV to CR0, 11.12.2 PAT, 23.8 CR0/CR4 in VMX operation): every element's reset value, a SET and",
        "GET of a legal value; then each SET rule in order, each failure a #GP that changes nothing: reserved bits;",
        "non-canonical (FS/GS base, SYSENTER_ESP/EIP); PAT memory types; CR0 PG without PE, NW without CD;",
        "CR0/CR4 fixed bits only in VMX operation; then the forced bits (dr7 bit 10 = 1, bits 11, 12, 14, 15 = 0;",
        "rflags bit 1 = 1). No CPL check (choice 13).",
    )
    for row, element in enumerate(ELEMENTS):
        value = element_value(element, row)
        stored = (value | element.force1) & ~element.force0 & element.mask
        s.comment(f"{element.name} ({element.bits} bits): reset {element.reset:#x}; SET {value:#x}; GET {stored:#x}.")
        s.get(element.name).ok(element.reset)
        s.set(element.name, value).ok()
        s.get(element.name).ok(stored)

    def refused(name: str, value: int, why: str) -> None:
        s.comment(f"{name} {value:#x}: #GP ({why}); the value is kept.")
        kept = s_value[name]
        s.set(name, value).gp()
        s.get(name).ok(kept)

    s_value = {e.name: (element_value(e, row) | e.force1) & ~e.force0 & e.mask for row, e in enumerate(ELEMENTS)}
    for name, value, why in (
        ("cr0", 1 << 32 | CR0_VMX, "reserved bit 32"),
        ("cr3", 1 << 32, "reserved bit 32 (MAXPHYADDR)"),
        ("cr4", 1 << 14, "reserved bit 14 (SMXE, not implemented)"),
        ("cr4", 1 << 12, "reserved bit 12"),
        ("dr7", 1 << 32, "reserved bit 32"),
        ("rflags", 1 << 3 | 2, "reserved bit 3"),
        ("rflags", 1 << 15 | 2, "reserved bit 15"),
        ("rflags", 1 << 22 | 2, "reserved bit 22"),
        ("efer", 1 << 1, "reserved bit 1"),
        ("debugctl", 1 << 2, "reserved bit 2"),
        ("perf_global_ctrl", 1 << 2, "reserved bit 2"),
        ("fs.base", NOT_CANONICAL, "not canonical"),
        ("gs.base", 0xFFFF_7FFF_FFFF_FFFF, "not canonical"),
        ("sysenter_esp", NOT_CANONICAL, "not canonical"),
        ("sysenter_eip", 0x0001_0000_0000_0000, "not canonical"),
        *(
            ("pat", 0x0006_0504_0100_0706 & ~(0xFF << 8 * b) | (2 + b % 2) << 8 * b, f"type {2 + b % 2} in byte {b}")
            for b in range(8)
        ),
        ("pat", 0x0006_0504_0100_0708, "type 8 in byte 0"),
        ("cr0", CR0.PG, "PG = 1 with PE = 0"),
        ("cr0", CR0.NW | CR0.PE, "NW = 1 with CD = 0"),
    ):
        refused(name, value, why)
    s.comment("Bases without a canonical rule (ES, GDTR) take any value.")
    s.set("es.base", NOT_CANONICAL).ok()
    s.get("es.base").ok(NOT_CANONICAL)
    s.set("gdtr.base", NOT_CANONICAL).ok()
    s.get("gdtr.base").ok(NOT_CANONICAL)
    s.comment("Forced bits: dr7 0 reads 0x400; dr7 0xd800 reads 0x400; rflags 0 reads 0x2.")
    s.set("dr7", 0).ok()
    s.get("dr7").ok(0x400)
    s.set("dr7", 0xD800).ok()
    s.get("dr7").ok(0x400)
    s.set("rflags", 0).ok()
    s.get("rflags").ok(RFLAGS.FIXED1)
    s.comment("Outside VMX operation CR0 and CR4 may break the VMX fixed bits: CR0 = PE only, CR4 = 0.")
    s.set("cr0", CR0.PE).ok()
    s.get("cr0").ok(CR0.PE)
    s.set("cr4", 0).ok()
    s.comment("Back to a mode where VMXON works (32-bit protected mode, CPL 0), then VMXON.")
    s.legacy_mode()
    s.cpl(0)
    s.enable_vmx()
    s.enter_vmx()
    s.comment("In VMX operation: CR0 without PG, without NE, without PE (and PG); CR4 without VMXE: #GP.")
    for name, value in (
        ("cr0", CR0.PE | CR0.NE),
        ("cr0", CR0.PE | CR0.PG),
        ("cr0", CR0.NE),
        ("cr4", 0),
        ("cr4", CR4.PAE),
    ):
        s.set(name, value).gp()
    s.get("cr0").ok(CR0_VMX)
    s.get("cr4").ok(CR4_VMX)
    s.comment("Values inside the fixed bits are fine: CR0 with CD, NW, ET; CR4 with PAE, PCIDE.")
    s.set("cr0", CR0_VMX | CR0.CD | CR0.NW | 0x10).ok()
    s.get("cr0").ok(CR0_VMX | CR0.CD | CR0.NW | 0x10)
    s.set("cr4", CR4_VMX | CR4.PAE | CR4.PCIDE).ok()
    s.get("cr4").ok(CR4_VMX | CR4.PAE | CR4.PCIDE)
    s.comment("After VMXOFF the fixed bits are no longer enforced.")
    s.vmxoff().succeed()
    s.set("cr4", 0).ok()
    s.set("cr0", CR0.PE).ok()
    s.get("cr0").ok(CR0.PE)
    return s


def memory_and_bus() -> Script:
    s = Script(
        "memory_and_bus",
        'REPLAY.md write/read and docs/semantics.md "Physical memory and the bus": 1 MiB of RAM at 0,',
        "little-endian accesses of 1, 2, 4 (default) or 8 bytes at any alignment; never-written RAM reads 0.",
    )
    s.comment("Never-written RAM reads 0, at every size, up to the last byte of RAM.")
    s.read(0).ok(0)
    s.read(0x1234_5, 1).ok(0)
    s.read(0xFFFF8, 8).ok(0)
    s.read(0xFFFFF, 1).ok(0)
    s.comment("An 8-byte write, read back as bytes, halves and words at every alignment (little-endian).")
    s.write(0x100, 0x1122_3344_5566_7788, 8).ok()
    s.read(0x100, 8).ok(0x1122_3344_5566_7788)
    s.read(0x100, 1).ok(0x88)
    s.read(0x107, 1).ok(0x11)
    s.read(0x101, 2).ok(0x6677)
    s.read(0x103, 2).ok(0x4455)
    s.read(0x102, 4).ok(0x3344_5566)
    s.read(0x104).ok(0x1122_3344)
    s.read(0x104, 8).ok(0x1122_3344)
    s.comment("Sizes 1, 2, 4 overwrite only their bytes.")
    s.write(0x101, 0xAB, 1).ok()
    s.write(0x106, 0xCDEF, 2).ok()
    s.write(0x102, 0x0102_0304, 4).ok()
    s.read(0x100, 8).ok(0xCDEF_0102_0304_AB88)
    s.comment("Unaligned accesses that cross a word boundary: 4 bytes at 0x203, 8 bytes at 0x3fd.")
    s.write(0x203, 0xDEAD_BEEF).ok()
    s.read(0x200, 8).ok(0xDE_ADBE_EF00_0000)
    s.read(0x203).ok(0xDEAD_BEEF)
    s.write(0x3FD, 0x0123_4567_89AB_CDEF, 8).ok()
    s.read(0x3FD, 8).ok(0x0123_4567_89AB_CDEF)
    s.read(0x3FC, 4).ok(0xAB_CDEF_00)
    s.read(0x400, 4).ok(0x2345_6789)
    s.read(0x404, 1).ok(0x01)
    s.comment("The last bytes of RAM.")
    s.write(0xFFFF8, 0xFEDC_BA98_7654_3210, 8).ok()
    s.read(0xFFFFF, 1).ok(0xFE)
    s.read(0xFFFFC).ok(0xFEDC_BA98)
    s.comment("Writing 0 makes the word read 0 again.")
    s.write(0x100, 0, 8).ok()
    s.read(0x100, 8).ok(0)
    return s


# ======================================================================================

_GENERATORS = (
    vmxon_undefined_opcode,
    vmxon_general_protection,
    vmxon_general_protection_lock_without_vmx,
    vmxon_fail_invalid,
    vmxon_in_root,
    vmxoff,
    vmptrld_invalid_address,
    vmptrld_vmxon_pointer,
    vmptrld_incorrect_revision,
    vmptrld_cache,
    vmptrst,
    vmclear,
    vmread_vmwrite_prefix,
    vmread_vmwrite_unsupported,
    vmwrite_read_only,
    fields_operand_size_64,
    fields_operand_size_32,
    memory_resident_fields,
    vmlaunch_instruction_checks,
    vmentry_control_checks,
    vmentry_host_state_checks,
    vmentry_7_before_8,
    vmentry_passes,
    vmcall,
    flags,
    msrs_script,
    set_get,
    memory_and_bus,
)


def _build() -> dict[str, Script]:
    scripts = {}
    for make in _GENERATORS:
        script = make()
        assert script.name not in scripts, script.name
        scripts[script.name] = script
    return scripts


#: Every vector script by file name (without .jsonl).
SCRIPTS: dict[str, Script] = _build()


def write_all(directory: Path = VECTORS_DIR) -> list[Path]:
    """Write every script; remove .jsonl files no script produces any more."""
    written = []
    for name, script in SCRIPTS.items():
        path = directory / f"{name}.jsonl"
        path.write_text(script.text())
        written.append(path)
    for stale in set(directory.glob("*.jsonl")) - set(written):
        stale.unlink()
    return written


if __name__ == "__main__":
    paths = write_all()
    lines = sum(len(SCRIPTS[p.stem].operation_lines) for p in paths)
    print(f"wrote {len(paths)} scripts, {lines} operations, to {VECTORS_DIR}", file=sys.stderr)
