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
from vmxu.rtl.arch.state import (
    AR,
    CR0,
    CR4,
    EFER,
    ELEMENT_BY_NAME,
    ELEMENTS,
    INTERRUPTIBILITY,
    RFLAGS,
    SEGMENTS,
    Element,
)
from vmxu.rtl.arch.state_actions import HOST_CS_AR, HOST_DATA_AR
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
#: IA32_VMX_BASIC as the unit reads it: with bit 49, the dual-monitor treatment (the unit with guests has it).
VMX_BASIC_READ = msrs.constant_value(msrs.MSR_BY_NUMBER[msrs.IA32_VMX_BASIC], dual_monitor=True)

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
    pending: bool | None = None


_HEX_KEYS = ("addr", "value", "msr", "port", "error_code")


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

    def pending(self) -> Script:
        """An SMI held pending in SMM (REPLAY.md "SMM")."""
        return self.expect("ok", pending=True)

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

    def rdmsr(self, msr: int, length: int | None = None) -> Script:
        return self.op("rdmsr", msr=msr, len=length)

    def wrmsr(self, msr: int, value: int, length: int | None = None) -> Script:
        return self.op("wrmsr", msr=msr, value=value, len=length)

    def set(self, element: str, value: int, reg: int | None = None, length: int | None = None) -> Script:
        return self.op("set", element=element, value=value, reg=reg, len=length)

    def get(self, element: str, reg: int | None = None, length: int | None = None) -> Script:
        return self.op("get", element=element, reg=reg, len=length)

    def vmxon(self, addr: int, length: int | None = None) -> Script:
        return self.op("vmxon", addr=addr, len=length)

    def vmxoff(self, length: int | None = None) -> Script:
        return self.op("vmxoff", len=length)

    def vmptrld(self, addr: int, size: int | None = None, length: int | None = None) -> Script:
        return self.op("vmptrld", addr=addr, size=size, len=length)

    def vmptrst(self, size: int | None = None, length: int | None = None) -> Script:
        return self.op("vmptrst", size=size, len=length)

    def vmclear(self, addr: int, length: int | None = None) -> Script:
        return self.op("vmclear", addr=addr, len=length)

    def vmread(self, field: str | int, size: int | None = None, length: int | None = None) -> Script:
        return self.op("vmread", field=field, size=size, len=length)

    def vmwrite(self, field: str | int, value: int, size: int | None = None, length: int | None = None) -> Script:
        return self.op("vmwrite", field=field, value=value, size=size, len=length)

    def vmlaunch(self, length: int | None = None) -> Script:
        return self.op("vmlaunch", len=length)

    def vmresume(self, length: int | None = None) -> Script:
        return self.op("vmresume", len=length)

    def vmcall(self, length: int | None = None) -> Script:
        return self.op("vmcall", len=length)

    # -- guest events (REPLAY.md "Guest events") ----------------------------------------

    def cpuid(self, leaf: int, subleaf: int | None = None, length: int | None = None) -> Script:
        return self.op("cpuid", leaf=leaf, subleaf=subleaf, len=length)

    def hlt(self, length: int | None = None) -> Script:
        return self.op("hlt", len=length)

    def rdtsc(self, length: int | None = None) -> Script:
        return self.op("rdtsc", len=length)

    def in_(self, port: int, size: int, length: int | None = None) -> Script:
        return self.op("in", port=port, size=size, len=length)

    def out(self, port: int, size: int, value: int, length: int | None = None) -> Script:
        return self.op("out", port=port, size=size, value=value, len=length)

    def exception(self, vector: int, error_code: int | None = None, length: int | None = None) -> Script:
        return self.op("exception", vector=vector, error_code=error_code, len=length)

    def interrupt(self, vector: int) -> Script:
        return self.op("interrupt", vector=vector)

    def nmi(self) -> Script:
        return self.op("nmi")

    def run(self, cycles: int) -> Script:
        return self.op("run", cycles=cycles)

    # -- SMM (REPLAY.md "SMM") --------------------------------------------------------------

    def smi(self, io: dict | None = None) -> Script:
        return self.op("smi", io=io)

    def rsm(self) -> Script:
        return self.op("rsm")

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
        " a VMX-preemption timer that has not expired, virtual-NMI blocking (the NMI window is closed).",
        every_control_32
        | {"VMX_PREEMPTION_TIMER_VALUE": 1000, "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_NMI},
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
            s.rdmsr(msrs.IA32_VMX_BASIC).ok(VMX_BASIC_READ),
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
        value = msrs.constant_value(msr, dual_monitor=True)
        s.comment(f"{msr.name} ({msr.number:#x}): reads {value:#x}; WRMSR #GP (even of its own value).")
        s.rdmsr(msr.number).ok(value)
        s.wrmsr(msr.number, value).gp()
        s.wrmsr(msr.number, 0).gp()
        s.rdmsr(msr.number).ok(value)
    s.comment(
        "IA32_VMX_BASIC: revision 1, 4-KiB regions, the dual-monitor treatment (bit 49 = 1: the unit with guests",
        "has it), write-back (53:50 = 6), TRUE MSRs (55).",
    )
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
        if element.get_only:  # smm: a script only reads it (REPLAY.md "SMM"); not in SMM yet
            s.comment(f"{element.name} ({element.bits} bits): reset {element.reset:#x}; read-only.")
            s.get(element.name).ok(element.reset)
            continue
        if not element.settable:  # SMBASE: no instruction writes it (REPLAY.md "SMM", SDM 34.11)
            s.comment(f"{element.name} ({element.bits} bits): reset {element.reset:#x}; no SET writes it: #GP.")
            s.get(element.name).ok(element.reset)
            s.set(element.name, value).gp()
            s.set(element.name, element.reset).gp()
            s.get(element.name).ok(element.reset)
            continue
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

    s_value = {
        e.name: (element_value(e, row) | e.force1) & ~e.force0 & e.mask if e.settable else e.reset
        for row, e in enumerate(ELEMENTS)
    }
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
# VM entry: checks on the guest-state area (SDM 26.3.1), VM-entry failures (26.8)
# ======================================================================================

# Basic exit reasons (SDM appendix C) and the VM-entry failures (26.8: bit 31 set).
EXIT_EXCEPTION_OR_NMI = 0
EXIT_EXTERNAL_INTERRUPT = 1
EXIT_INTERRUPT_WINDOW = 7
EXIT_CPUID = 10
EXIT_HLT = 12
EXIT_RDTSC = 16
EXIT_VMCLEAR, EXIT_VMLAUNCH, EXIT_VMPTRLD, EXIT_VMPTRST = 19, 20, 21, 22
EXIT_VMREAD, EXIT_VMRESUME, EXIT_VMWRITE, EXIT_VMXOFF, EXIT_VMXON = 23, 24, 25, 26, 27
EXIT_CR_ACCESS = 28
EXIT_IO_INSTRUCTION = 30
EXIT_RDMSR, EXIT_WRMSR = 31, 32
EXIT_INVALID_GUEST_STATE = 33
EXIT_PREEMPTION_TIMER = 52
GUEST_STATE_FAILURE = EXIT_REASON_ENTRY_FAILURE | EXIT_INVALID_GUEST_STATE
MSR_LOADING_FAILURE = EXIT_REASON_ENTRY_FAILURE | EXIT_MSR_LOADING
# Exit qualifications of a VM-entry failure with reason 33 (26.8).
QUAL_PDPTE, QUAL_LINK_POINTER = 2, 4

# Interruption types (SDM table 24-14).
EXTERNAL_INTERRUPT, NMI, HARDWARE_EXCEPTION, SOFTWARE_INTERRUPT = 0, 2, 3, 4
PRIVILEGED_SOFTWARE_EXCEPTION, SOFTWARE_EXCEPTION = 5, 6
DB, BP, OF, DF, PF, MC = 1, 3, 4, 8, 14, 18

#: The RIP the host is at before a VM entry that fails: the failure loads HOST_RIP instead (26.8).
ROOT_RIP = 0x0003_0000
#: A region that holds the revision identifier: a VMCS link pointer that passes (26.3.1.5).
LINK_REGION = 0xE000
#: Never-written RAM (reads 0).
ZERO_PAGE = 0x1F000
#: The guest's CR3 in sim/presets.py: its PDPTEs are checked for a PAE guest (26.3.1.6).
GUEST_CR3 = 0x0007_0000
PRESENT = 1
DEBUGCTL_BTF = 1 << 1

#: A guest in virtual-8086 mode (RFLAGS.VM = 1): base = selector << 4, limit 0xffff, access rights 0xf3 (26.3.1.2).
#: SS.RPL (3) differs from CS.RPL (0): allowed in virtual-8086 mode only.
V8086_SELECTORS = {"CS": 0xF000, "SS": 0x2003, "DS": 0x3000, "ES": 0x4000, "FS": 0x5000, "GS": 0x6000}


def v8086_guest() -> dict[str, int]:
    fields = {"GUEST_RFLAGS": RFLAGS.FIXED1 | RFLAGS_VM, "GUEST_RIP": 0x0100}
    for segment, selector in V8086_SELECTORS.items():
        fields[f"GUEST_{segment}_SELECTOR"] = selector
        fields[f"GUEST_{segment}_BASE"] = selector << 4
        fields[f"GUEST_{segment}_LIMIT"] = 0xFFFF
        fields[f"GUEST_{segment}_AR_BYTES"] = 0xF3
    return fields


#: A guest at CPL 3: CS and SS with RPL 3 and DPL 3 (data segments keep RPL 0, DPL 0).
CPL3_GUEST = {
    "GUEST_CS_SELECTOR": HOST_CS | 3,
    "GUEST_CS_AR_BYTES": 0xC0FB,
    "GUEST_SS_SELECTOR": HOST_DATA | 3,
    "GUEST_SS_AR_BYTES": 0xC0F3,
}
#: A usable LDTR: type 2, P, limit 0xffff, G = 0.
USABLE_LDTR = {
    "GUEST_LDTR_SELECTOR": 0x28,
    "GUEST_LDTR_BASE": 0x1000,
    "GUEST_LDTR_LIMIT": 0xFFFF,
    "GUEST_LDTR_AR_BYTES": 0x82,
}


def guest_case(
    s: Script,
    text: str,
    changes: dict[str, int],
    ready: dict[str, int],
    qualification: int | None,
    *,
    instruction: str = "vmlaunch",
    event: int | None = None,
    error_code: int | None = None,
) -> None:
    """From a VMCS whose fields are ``ready``: VMWRITE ``changes``, then VMLAUNCH (or VMRESUME).

    ``qualification`` None: every check passes, the guest is entered (injecting ``event``) and a VMCALL
    exits back. Else a VM-entry failure (26.8): exit reason 0x80000021, EXIT_QUALIFICATION
    ``qualification``, the host state loaded (RIP = HOST_RIP, not the RIP before the VMLAUNCH), the launch
    state unchanged (VMRESUME of the clear VMCS fails with 5, VMLAUNCH of a launched one with 4).
    Then the ``ready`` values are written back.
    """
    s.comment(text)
    for name, value in changes.items():
        s.vmwrite(name, value).succeed()
    if qualification is None:
        getattr(s, instruction)().passes(instruction, event, error_code)
    else:
        s.set("rip", ROOT_RIP).ok()
        getattr(s, instruction)().entry_failed(GUEST_STATE_FAILURE)
        s.vmread("EXIT_QUALIFICATION").succeed(qualification)
        s.get("rip").ok(ready["HOST_RIP"])
        if instruction == "vmlaunch":
            s.vmresume().fail_valid(5)
        else:
            s.vmlaunch().fail_valid(4)
    for name in changes:
        s.vmwrite(name, ready.get(name, 0)).succeed()


def _control_register_cases(s: Script, ready: dict[str, int]) -> None:
    def bad(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, 0)

    def good(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, None)

    entry = ready[ENTRY.vmcs_field]
    for bit, name in ((CR0.PE, "PE (PG = 1 needs PE too)"), (CR0.NE, "NE"), (CR0.PG, "PG")):
        bad(f"Check 1: GUEST_CR0 without {name} (IA32_VMX_CR0_FIXED0).", {"GUEST_CR0": CR0_VMX & ~bit})
    bad("Check 1: GUEST_CR0 bit 32 (IA32_VMX_CR0_FIXED1 bits 63:32 are 0).", {"GUEST_CR0": CR0_VMX | 1 << 32})
    bad("Check 1: GUEST_CR0 bit 63.", {"GUEST_CR0": CR0_VMX | 1 << 63})
    good("Check 1: NW = 1 with CD = 0 is not checked (MOV to CR0 would #GP).", {"GUEST_CR0": CR0_VMX | CR0.NW})
    good("Check 1: GUEST_CR0 0xffffffff (every bit of FIXED1).", {"GUEST_CR0": U32})
    bad("Check 1: GUEST_CR4 without VMXE (IA32_VMX_CR4_FIXED0).", {"GUEST_CR4": 0})
    for bit in (12, 14, 32):
        bad(f"Check 1: GUEST_CR4 bit {bit} (0 in IA32_VMX_CR4_FIXED1).", {"GUEST_CR4": CR4_VMX | 1 << bit})
    good(
        "Check 1: GUEST_CR4 with every bit of FIXED1 but PCIDE (PAE paging: the PDPTEs at CR3 are zeros).",
        {"GUEST_CR4": msrs.CR4_FIXED1 & ~CR4.PCIDE},
    )
    load_debug = entry | ENTRY.bit("LOAD_DEBUG_CONTROLS")
    for bit in (2, 13, 32):
        bad(
            f'Check 2: "load debug controls" with GUEST_IA32_DEBUGCTL reserved bit {bit}.',
            {ENTRY.vmcs_field: load_debug, "GUEST_IA32_DEBUGCTL": 1 << bit},
        )
    for bit in (32, 63):
        bad(
            f'Check 2: "load debug controls" with GUEST_DR7 bit {bit}.',
            {ENTRY.vmcs_field: load_debug, "GUEST_DR7": 0x400 | 1 << bit},
        )
    good(
        'Check 2: "load debug controls" with every implemented DEBUGCTL bit (0x5fc3) and DR7 0xffffffff.',
        {ENTRY.vmcs_field: load_debug, "GUEST_IA32_DEBUGCTL": 0x5FC3, "GUEST_DR7": U32},
    )
    good(
        'Check 2: without "load debug controls" DEBUGCTL and DR7 are not checked (all ones).',
        {"GUEST_IA32_DEBUGCTL": U64, "GUEST_DR7": U64},
    )
    bad('Check 3: CR4.PCIDE = 1 without "IA-32e mode guest".', {"GUEST_CR4": CR4_VMX | CR4.PCIDE})
    for bit in (32, 63):
        bad(f"Check 4: GUEST_CR3 bit {bit} (at or above MAXPHYADDR 32).", {"GUEST_CR3": GUEST_CR3 | 1 << bit})
    good("Check 4: GUEST_CR3 0xffffffff.", {"GUEST_CR3": U32})
    for name in ("GUEST_SYSENTER_ESP", "GUEST_SYSENTER_EIP"):
        bad(f"Check 4: {name} {NOT_CANONICAL:#x} (not canonical).", {name: NOT_CANONICAL})
        bad(f"Check 4: {name} 0xffff7fffffffffff (not canonical).", {name: 0xFFFF_7FFF_FFFF_FFFF})
        good(f"Check 4: {name} {CANONICAL_LOW_TOP:#x}.", {name: CANONICAL_LOW_TOP})
        good(f"Check 4: {name} {CANONICAL_HIGH_BOTTOM:#x}.", {name: CANONICAL_HIGH_BOTTOM})
    load_perf = entry | ENTRY.bit("LOAD_IA32_PERF_GLOBAL_CTRL")
    for bit in (2, 35, 63):
        bad(
            f'Check 5: "load IA32_PERF_GLOBAL_CTRL" with reserved bit {bit}.',
            {ENTRY.vmcs_field: load_perf, "GUEST_IA32_PERF_GLOBAL_CTRL": 1 << bit},
        )
    good(
        'Check 5: "load IA32_PERF_GLOBAL_CTRL" with every implemented bit.',
        {ENTRY.vmcs_field: load_perf, "GUEST_IA32_PERF_GLOBAL_CTRL": msrs.PERF_GLOBAL_CTRL_VALID},
    )
    good("Check 5: without its load control PERF_GLOBAL_CTRL is not checked.", {"GUEST_IA32_PERF_GLOBAL_CTRL": U64})
    load_pat = entry | ENTRY.bit("LOAD_IA32_PAT")
    good_pat = 0x0706_0504_0100_0706
    for byte in range(8):
        kind = 2 + byte % 2
        bad(
            f'Check 5: "load IA32_PAT" with byte {byte} = {kind} (reserved memory type).',
            {ENTRY.vmcs_field: load_pat, "GUEST_IA32_PAT": good_pat & ~(0xFF << 8 * byte) | kind << 8 * byte},
        )
    bad(
        'Check 5: "load IA32_PAT" with byte 7 = 8.',
        {ENTRY.vmcs_field: load_pat, "GUEST_IA32_PAT": 0x0806_0504_0100_0706},
    )
    good(
        'Check 5: "load IA32_PAT" with every valid type (0, 1, 4, 5, 6, 7).',
        {ENTRY.vmcs_field: load_pat, "GUEST_IA32_PAT": good_pat},
    )
    good("Check 5: without its load control PAT is not checked.", {"GUEST_IA32_PAT": 0x0202_0202_0202_0202})
    load_efer = entry | ENTRY.bit("LOAD_IA32_EFER")
    for value, what in (
        (1 << 1, "reserved bit 1"),
        (1 << 63, "reserved bit 63"),
        (EFER_IA32E, 'LMA = 1 but "IA-32e mode guest" = 0'),
        (EFER.LMA, 'LMA = 1 but "IA-32e mode guest" = 0 (LME = 0)'),
        (EFER.LME, "LME = 1, LMA = 0 with CR0.PG = 1"),
    ):
        bad(f'Check 5: "load IA32_EFER" with {what}.', {ENTRY.vmcs_field: load_efer, "GUEST_IA32_EFER": value})
    good(
        'Check 5: "load IA32_EFER" with SCE and NXE, LMA = LME = 0.',
        {ENTRY.vmcs_field: load_efer, "GUEST_IA32_EFER": EFER.SCE | EFER.NXE},
    )
    good("Check 5: without its load control EFER is not checked.", {"GUEST_IA32_EFER": U64})


def _segment_cases(s: Script, ready: dict[str, int]) -> None:
    def bad(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, 0)

    def good(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, None)

    bad("Check 6: GUEST_TR_SELECTOR 0x1c (TI = 1).", {"GUEST_TR_SELECTOR": HOST_TR | 4})
    bad("Check 6: a usable LDTR with selector 0x2c (TI = 1).", USABLE_LDTR | {"GUEST_LDTR_SELECTOR": 0x2C})
    good("Check 6, 13: a usable LDTR (selector 0x28, type 2).", USABLE_LDTR)
    good("Check 6: an unusable LDTR's TI is not checked (selector 0x2c).", {"GUEST_LDTR_SELECTOR": 0x2C})
    bad(
        "Check 6: SS.RPL 0 differs from CS.RPL 3 (CS selector 0x0b; the DPLs all 0, so nothing else fails).",
        {"GUEST_CS_SELECTOR": HOST_CS | 3},
    )
    good("Check 6, 9, 10: a CPL-3 guest (CS and SS selectors and DPLs 3).", CPL3_GUEST)
    for name, value in (
        ("GUEST_TR_BASE", NOT_CANONICAL),
        ("GUEST_FS_BASE", NOT_CANONICAL),
        ("GUEST_GS_BASE", 0xFFFF_7FFF_FFFF_FFFF),
    ):
        bad(f"Check 7: {name} {value:#x} (not canonical).", {name: value})
    bad(
        "Check 7: an unusable FS's base must be canonical too.",
        {"GUEST_FS_AR_BYTES": AR.UNUSABLE, "GUEST_FS_BASE": NOT_CANONICAL},
    )
    bad("Check 7: a usable LDTR's base not canonical.", USABLE_LDTR | {"GUEST_LDTR_BASE": NOT_CANONICAL})
    good("Check 7: an unusable LDTR's base is not checked.", {"GUEST_LDTR_BASE": NOT_CANONICAL})
    for segment in ("CS", "SS", "DS", "ES"):
        bad(f"Check 7: GUEST_{segment}_BASE bit 32.", {f"GUEST_{segment}_BASE": 1 << 32})
    for segment in ("SS", "DS", "ES"):
        good(
            f"Check 7: an unusable {segment}'s base bits 63:32 are not checked.",
            {f"GUEST_{segment}_AR_BYTES": AR.UNUSABLE, f"GUEST_{segment}_BASE": 1 << 32},
        )
    good(
        "Check 7: canonical edges (TR, GS) and a CS base of 0xfffff000.",
        {"GUEST_TR_BASE": CANONICAL_HIGH_BOTTOM, "GUEST_GS_BASE": CANONICAL_LOW_TOP, "GUEST_CS_BASE": 0xFFFF_F000},
    )

    v86 = v8086_guest()
    v86_ready = ready | v86
    s.comment("A virtual-8086 guest (RFLAGS.VM = 1) for check 8.")
    s.vmwrite_all(v86)
    guest_case(
        s,
        "Check 8: bases selector << 4, limits 0xffff, access rights 0xf3; SS.RPL 3 may differ from CS.RPL 0"
        " (check 6), the CS, SS and data-segment checks (9-11) do not apply.",
        {},
        v86_ready,
        None,
    )
    for segment, part, value, what in (
        ("CS", "BASE", 0xF0010, "not selector << 4"),
        ("GS", "BASE", 0, "not selector << 4"),
        ("SS", "LIMIT", 0xFFFE, "not 0xffff"),
        ("ES", "LIMIT", 0xF_FFFF, "not 0xffff"),
        ("DS", "AR_BYTES", 0xF2, "not 0xf3"),
        ("CS", "AR_BYTES", 0xFB, "code, not 0xf3"),
        ("ES", "AR_BYTES", 0x80F3, "G set, not 0xf3"),
        ("FS", "AR_BYTES", AR.UNUSABLE | 0xF3, "unusable, not 0xf3"),
    ):
        guest_case(
            s,
            f"Check 8: virtual-8086 GUEST_{segment}_{part} {value:#x} ({what}).",
            {f"GUEST_{segment}_{part}": value},
            v86_ready,
            0,
        )
    guest_case(
        s,
        "Check 8, 17: a virtual-8086 guest is at CPL 3 (SS.DPL 3): no HLT state.",
        {"GUEST_ACTIVITY_STATE": 1},
        v86_ready,
        0,
    )
    s.comment("Back to the protected-mode guest.")
    s.vmwrite_all({name: ready.get(name, 0) for name in v86})

    for ar, what in ((0xC093, "3 (data)"), (0xC098, "8 (not accessed)"), (0xC09A, "10"), (0xC09C, "12"), (0xC091, "1")):
        bad(f"Check 9: CS type {what}.", {"GUEST_CS_AR_BYTES": ar})
    for ar, what in ((0xC099, "9"), (0xC09D, "13 (conforming, DPL 0 <= SS.DPL 0)"), (0xC09F, "15")):
        good(f"Check 9: CS type {what}.", {"GUEST_CS_AR_BYTES": ar})
    for ar, what in (
        (0xC08B, "S = 0"),
        (0xC01B, "P = 0"),
        (0xC19B, "reserved bit 8"),
        (0xC89B, "reserved bit 11"),
        (0x2_C09B, "reserved bit 17"),
        (0x8000_C09B, "reserved bit 31"),
    ):
        bad(f"Check 9: CS access rights {ar:#x} ({what}).", {"GUEST_CS_AR_BYTES": ar})
    for limit, ar, ok, what in (
        (0xFFFF_FFFE, 0xC09B, False, "G = 1 with a 0 in limit bits 11:0"),
        (0xFFFF_FFFF, 0x409B, False, "G = 0 with a 1 in limit bits 31:20"),
        (0x0010_0000, 0x409B, False, "limit 0x100000 with G = 0 (bit 20)"),
        (0x0010_0000, 0xC09B, False, "limit 0x100000 with G = 1 (bits 11:0 zero)"),
        (0x000F_FFFF, 0xC09B, True, "limit 0xfffff with G = 1"),
        (0x000F_FFFF, 0x409B, True, "limit 0xfffff with G = 0"),
        (0xFFF, 0xC09B, True, "limit 0xfff with G = 1"),
        (0xFFE, 0xC09B, False, "limit 0xffe with G = 1"),
    ):
        case = bad if not ok else good
        case(f"Check 9: CS {what}.", {"GUEST_CS_LIMIT": limit, "GUEST_CS_AR_BYTES": ar})
    bad("Check 9: CS type 11 with DPL 1, SS.DPL 0.", {"GUEST_CS_AR_BYTES": 0xC0BB})
    bad("Check 9: CS type 9 with DPL 3, SS.DPL 0.", {"GUEST_CS_AR_BYTES": 0xC0F9})
    bad("Check 9: conforming CS (type 13) with DPL 3 above SS.DPL 0.", {"GUEST_CS_AR_BYTES": 0xC0FD})
    good(
        "Check 9: conforming CS (type 15) with DPL 0 below SS.DPL 3 (CPL 3).",
        CPL3_GUEST | {"GUEST_CS_AR_BYTES": 0xC09F},
    )
    good('Check 9: CS.L = 1 and D/B = 1 without "IA-32e mode guest" (L is not checked).', {"GUEST_CS_AR_BYTES": 0xE09B})
    good("Check 9: CS with AVL (bit 12) set.", {"GUEST_CS_AR_BYTES": 0xD09B})

    bad(
        "Check 10: SS.DPL 3 differs from SS.RPL 0 (CS.DPL 3 too, so check 9 passes).",
        {"GUEST_SS_AR_BYTES": 0xC0F3, "GUEST_CS_AR_BYTES": 0xC0FB},
    )
    bad(
        "Check 10: an unusable SS still needs DPL = RPL (DPL 3, RPL 0).",
        {"GUEST_SS_AR_BYTES": AR.UNUSABLE | 0x60, "GUEST_CS_AR_BYTES": 0xC0FB},
    )
    good("Check 10: an unusable SS (access rights 0x10000).", {"GUEST_SS_AR_BYTES": AR.UNUSABLE})
    good("Check 10: an unusable SS's type, S, P and reserved bits are not checked.", {"GUEST_SS_AR_BYTES": 0x1_0F01})
    for ar, what in ((0xC091, "1"), (0xC092, "2 (not accessed)"), (0xC095, "5 (read-only)"), (0xC09B, "11 (code)")):
        bad(f"Check 10: SS type {what}.", {"GUEST_SS_AR_BYTES": ar})
    good("Check 10: SS type 7 (expand-down).", {"GUEST_SS_AR_BYTES": 0xC097})
    for ar, what in (
        (0xC083, "S = 0"),
        (0xC013, "P = 0"),
        (0xC193, "reserved bit 8"),
        (0x8000_C093, "reserved bit 31"),
    ):
        bad(f"Check 10: SS access rights {ar:#x} ({what}).", {"GUEST_SS_AR_BYTES": ar})
    bad("Check 10: SS G = 0 with limit 0xffffffff.", {"GUEST_SS_AR_BYTES": 0x4093})

    for segment, ar, what in (
        ("DS", 0xC092, "type 2 (not accessed)"),
        ("ES", 0xC099, "type 9 (execute-only code)"),
        ("FS", 0xC083, "S = 0"),
        ("GS", 0xC013, "P = 0"),
        ("DS", 0xC293, "reserved bit 9"),
        ("ES", 0x2_C093, "reserved bit 17"),
        ("FS", 0x4093, "G = 0 with limit 0xffffffff"),
    ):
        bad(f"Check 11: {segment} access rights {ar:#x} ({what}).", {f"GUEST_{segment}_AR_BYTES": ar})
    bad("Check 11: GS type 3 with DPL 0 below RPL 3 (selector 0x13).", {"GUEST_GS_SELECTOR": HOST_DATA | 3})
    good("Check 11: DS type 11 (readable code, accessed).", {"GUEST_DS_AR_BYTES": 0xC09B})
    good(
        "Check 11: ES type 15 (conforming code): DPL 0 below RPL 3 is not checked for types 12-15.",
        {"GUEST_ES_SELECTOR": HOST_DATA | 3, "GUEST_ES_AR_BYTES": 0xC09F},
    )
    good("Check 11: FS type 1 (read-only data, accessed).", {"GUEST_FS_AR_BYTES": 0xC091})
    good("Check 11: DS with DPL 3 above RPL 0.", {"GUEST_DS_AR_BYTES": 0xC0F3})
    good(
        "Check 11: unusable DS, ES, FS, GS are not checked (every access-rights bit set).",
        {f"GUEST_{segment}_AR_BYTES": U32 for segment in ("DS", "ES", "FS", "GS")},
    )

    for ar, what in (
        (AR.UNUSABLE | 0x8B, "unusable"),
        (0x89, "type 9 (available TSS)"),
        (0x81, "type 1 (available 16-bit TSS)"),
        (0x9B, "S = 1"),
        (0x0B, "P = 0"),
        (0x18B, "reserved bit 8"),
        (0x2_008B, "reserved bit 17"),
        (0x808B, "G = 1 with limit 0x67"),
    ):
        bad(f"Check 12: TR access rights {ar:#x} ({what}).", {"GUEST_TR_AR_BYTES": ar})
    good('Check 12: TR type 3 (16-bit busy TSS) without "IA-32e mode guest".', {"GUEST_TR_AR_BYTES": 0x83})
    good("Check 12: TR limit 0xffffffff with G = 1.", {"GUEST_TR_LIMIT": U32, "GUEST_TR_AR_BYTES": 0x808B})

    for ar, what in (
        (0x83, "type 3"),
        (0x92, "S = 1"),
        (0x02, "P = 0"),
        (0x882, "reserved bit 11"),
        (0x10_0082, "reserved bit 20"),
    ):
        bad(f"Check 13: a usable LDTR with access rights {ar:#x} ({what}).", USABLE_LDTR | {"GUEST_LDTR_AR_BYTES": ar})
    bad(
        "Check 13: a usable LDTR with G = 1 and limit 0x1000 (bits 11:0 zero).",
        USABLE_LDTR | {"GUEST_LDTR_AR_BYTES": 0x8082, "GUEST_LDTR_LIMIT": 0x1000},
    )
    good(
        "Check 13: a usable LDTR with G = 1 and limit 0xffff (bits 11:0 all ones).",
        USABLE_LDTR | {"GUEST_LDTR_AR_BYTES": 0x8082},
    )
    good("Check 13: an unusable LDTR is not checked (access rights 0x10fff).", {"GUEST_LDTR_AR_BYTES": 0x1_0FFF})

    bad(f"Check 14: GUEST_GDTR_BASE {NOT_CANONICAL:#x}.", {"GUEST_GDTR_BASE": NOT_CANONICAL})
    bad("Check 14: GUEST_IDTR_BASE 0xffff7ffffffff000.", {"GUEST_IDTR_BASE": 0xFFFF_7FFF_FFFF_F000})
    bad("Check 14: GUEST_GDTR_LIMIT 0x10000.", {"GUEST_GDTR_LIMIT": 0x1_0000})
    bad("Check 14: GUEST_IDTR_LIMIT 0xffffffff.", {"GUEST_IDTR_LIMIT": U32})
    good(
        "Check 14: limits 0xffff, canonical bases at the edges.",
        {
            "GUEST_GDTR_LIMIT": 0xFFFF,
            "GUEST_IDTR_LIMIT": 0xFFFF,
            "GUEST_GDTR_BASE": CANONICAL_HIGH_BOTTOM,
            "GUEST_IDTR_BASE": CANONICAL_LOW_TOP,
        },
    )
    bad('Check 15: GUEST_RIP bit 32 without "IA-32e mode guest".', {"GUEST_RIP": 1 << 32})
    good("Check 15: GUEST_RIP 0xffffffff.", {"GUEST_RIP": U32})
    for value, what in (
        (0, "bit 1 = 0"),
        (0x2 | 1 << 3, "bit 3"),
        (0x2 | 1 << 5, "bit 5"),
        (0x2 | 1 << 15, "bit 15"),
        (0x2 | 1 << 22, "bit 22"),
        (0x2 | 1 << 63, "bit 63"),
    ):
        bad(f"Check 16: GUEST_RFLAGS {value:#x} ({what}).", {"GUEST_RFLAGS": value})
    good(
        "Check 16: GUEST_RFLAGS with every flag but VM (0x3d7fd7).",
        {"GUEST_RFLAGS": 0x3F_FFFF & ~RFLAGS.RESERVED & ~RFLAGS_VM},
    )
    interrupt = _event(EXTERNAL_INTERRUPT, 0x20)
    bad(
        "Check 16: injecting an external interrupt with RFLAGS.IF = 0.",
        {"VM_ENTRY_INTR_INFO_FIELD": interrupt},
    )
    guest_case(
        s,
        "Check 16: injecting an external interrupt with RFLAGS.IF = 1: entered, the event reported.",
        {"VM_ENTRY_INTR_INFO_FIELD": interrupt, "GUEST_RFLAGS": 0x202},
        ready,
        None,
        event=interrupt,
    )
    nmi = _event(NMI, 2)
    guest_case(
        s,
        "Check 16: an NMI may be injected with RFLAGS.IF = 0.",
        {"VM_ENTRY_INTR_INFO_FIELD": nmi},
        ready,
        None,
        event=nmi,
    )


def _non_register_cases(s: Script, ready: dict[str, int]) -> None:
    def bad(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, 0)

    def good(text: str, changes: dict[str, int], event: int | None = None, error_code: int | None = None) -> None:
        guest_case(s, text, changes, ready, None, event=event, error_code=error_code)

    info = "VM_ENTRY_INTR_INFO_FIELD"
    hlt = {"GUEST_ACTIVITY_STATE": 1}
    if_1 = {"GUEST_RFLAGS": 0x202}
    sti, mov_ss = INTERRUPTIBILITY.BLOCKING_BY_STI, INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
    for state, what in ((2, "shutdown"), (3, "wait-for-SIPI"), (4, "not an activity state"), (U32, "0xffffffff")):
        bad(
            f"Check 17: activity state {state:#x} ({what}; IA32_VMX_MISC reports HLT only).",
            {"GUEST_ACTIVITY_STATE": state},
        )
    good("Check 17: the HLT activity state (1).", hlt)
    bad("Check 17: HLT at CPL 3 (SS.DPL 3).", hlt | CPL3_GUEST)
    bad("Check 17: HLT with blocking by STI (RFLAGS.IF = 1).", hlt | if_1 | {"GUEST_INTERRUPTIBILITY_INFO": sti})
    bad("Check 17: HLT with blocking by MOV SS.", hlt | {"GUEST_INTERRUPTIBILITY_INFO": mov_ss})
    for event, extra, what in (
        (_event(EXTERNAL_INTERRUPT, 0x20), if_1, "an external interrupt"),
        (_event(NMI, 2), {}, "an NMI"),
        (_event(HARDWARE_EXCEPTION, DB), {}, "a debug exception (#DB)"),
        (_event(HARDWARE_EXCEPTION, MC), {}, "a machine check (#MC)"),
    ):
        good(f"Check 17: the HLT state with {what} injected.", hlt | extra | {info: event}, event)
    gp = _event(HARDWARE_EXCEPTION, GP, error_code=True)
    bad("Check 17: the HLT state with #GP injected.", hlt | {info: gp})
    for event, what in (
        (_event(SOFTWARE_INTERRUPT, 0x80), "INT 0x80 (software interrupt)"),
        (_event(SOFTWARE_EXCEPTION, BP), "#BP (software exception)"),
        (_event(PRIVILEGED_SOFTWARE_EXCEPTION, DB), "INT1 (privileged software exception, vector 1)"),
    ):
        bad(f"Check 17: the HLT state with {what} injected.", hlt | {info: event, "VM_ENTRY_INSTRUCTION_LEN": 1})

    for value in (1 << 4, 1 << 5, 1 << 31):
        bad(f"Check 18: interruptibility {value:#x} (bits 31:4 reserved).", {"GUEST_INTERRUPTIBILITY_INFO": value})
    bad("Check 18: blocking by STI and by MOV SS together.", if_1 | {"GUEST_INTERRUPTIBILITY_INFO": sti | mov_ss})
    bad("Check 18: blocking by STI with RFLAGS.IF = 0.", {"GUEST_INTERRUPTIBILITY_INFO": sti})
    good("Check 18: blocking by STI with RFLAGS.IF = 1.", if_1 | {"GUEST_INTERRUPTIBILITY_INFO": sti})
    good("Check 18: blocking by MOV SS (RFLAGS.IF = 0).", {"GUEST_INTERRUPTIBILITY_INFO": mov_ss})
    interrupt = _event(EXTERNAL_INTERRUPT, 0x20)
    for blocking, what in ((sti, "STI"), (mov_ss, "MOV SS")):
        bad(
            f"Check 18: injecting an external interrupt with blocking by {what}.",
            if_1 | {info: interrupt, "GUEST_INTERRUPTIBILITY_INFO": blocking},
        )
    nmi = _event(NMI, 2)
    bad("Check 18: injecting an NMI with blocking by MOV SS.", {info: nmi, "GUEST_INTERRUPTIBILITY_INFO": mov_ss})
    good(
        "Check 18: injecting an NMI with blocking by STI (allowed: vmxu does not use qualification 3).",
        if_1 | {info: nmi, "GUEST_INTERRUPTIBILITY_INFO": sti},
        nmi,
    )
    ud = _event(HARDWARE_EXCEPTION, UD)
    good("Check 18: injecting #UD with blocking by MOV SS.", {info: ud, "GUEST_INTERRUPTIBILITY_INFO": mov_ss}, ud)
    bad(
        "Check 18: blocking by SMI (bit 2) outside SMM.",
        {"GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_SMI},
    )
    nmi_blocking = INTERRUPTIBILITY.BLOCKING_BY_NMI
    virtual_nmis = ready[PIN.vmcs_field] | PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS")
    bad(
        'Check 18: "virtual NMIs", injecting an NMI with virtual-NMI blocking (bit 3).',
        {PIN.vmcs_field: virtual_nmis, info: nmi, "GUEST_INTERRUPTIBILITY_INFO": nmi_blocking},
    )
    good(
        'Check 18: "virtual NMIs" and virtual-NMI blocking without an injection.',
        {PIN.vmcs_field: virtual_nmis, "GUEST_INTERRUPTIBILITY_INFO": nmi_blocking},
    )
    good(
        'Check 18: without "virtual NMIs", an NMI may be injected with blocking by NMI.',
        {info: nmi, "GUEST_INTERRUPTIBILITY_INFO": nmi_blocking},
        nmi,
    )

    pending = "GUEST_PENDING_DBG_EXCEPTIONS"
    bs = 1 << 14
    for bit in (4, 11, 13, 15, 16, 17, 63):
        bad(f"Check 19: pending debug exceptions bit {bit} (reserved).", {pending: 1 << bit})
    good("Check 19: B3-B0, enabled breakpoint and BS (0x500f), no blocking: BS is not checked.", {pending: 0x500F})
    tf_if = {"GUEST_RFLAGS": 0x302}
    blocked = {"GUEST_INTERRUPTIBILITY_INFO": sti}
    bad("Check 19: blocking by STI, BS = 1 with RFLAGS.TF = 0.", if_1 | blocked | {pending: bs})
    bad("Check 19: blocking by STI, BS = 0 with RFLAGS.TF = 1 and DEBUGCTL.BTF = 0.", tf_if | blocked)
    good("Check 19: blocking by STI, BS = 1 with TF = 1 and BTF = 0.", tf_if | blocked | {pending: bs | 0xF})
    good(
        "Check 19: blocking by STI, BS = 0 with TF = 1 and the IA32_DEBUGCTL field's BTF = 1.",
        tf_if | blocked | {"GUEST_IA32_DEBUGCTL": DEBUGCTL_BTF},
    )
    bad(
        "Check 19: blocking by STI, BS = 1 with TF = 1 and BTF = 1.",
        tf_if | blocked | {"GUEST_IA32_DEBUGCTL": DEBUGCTL_BTF, pending: bs},
    )
    bad("Check 19: blocking by MOV SS, BS = 1 with TF = 0.", {"GUEST_INTERRUPTIBILITY_INFO": mov_ss, pending: bs})
    bad("Check 19: the HLT state, BS = 1 with TF = 0.", hlt | {pending: bs})
    good("Check 19: the HLT state, BS = 1 with TF = 1 and BTF = 0.", hlt | {"GUEST_RFLAGS": 0x102, pending: bs})


def _link_pointer_and_pdpte_cases(s: Script, ready: dict[str, int], current: int) -> None:
    link = "VMCS_LINK_POINTER"

    def link_case(text: str, pointer: int, qualification: int | None, extra: dict[str, int] | None = None) -> None:
        guest_case(s, f"Check 20: {text}.", {link: pointer} | (extra or {}), ready, qualification)

    s.comment(
        f"Regions at {LINK_REGION:#x} and {VMCS_B:#x} (never made current) with the revision identifier;",
        f"one at {SPARE_REGION:#x} with bit 31 set too.",
    )
    s.write(LINK_REGION, REVISION).ok()
    s.write(VMCS_B, REVISION).ok()
    s.write(SPARE_REGION, REVISION | 1 << 31).ok()
    link_case(
        f"the link pointer {LINK_REGION:#x} (the revision identifier there, not the current VMCS)", LINK_REGION, None
    )
    link_case(f"the link pointer {VMCS_B:#x}, another VMCS", VMCS_B, None)
    link_case(
        f"the link pointer {VMXON_REGION:#x}, the VMXON region (only the current VMCS is excluded)", VMXON_REGION, None
    )
    link_case(f"{LINK_REGION + 8:#x} is not 4-KiB aligned", LINK_REGION + 8, QUAL_LINK_POINTER)
    link_case("0xffffffff (not all ones: bits 63:32 are 0) is not aligned", U32, QUAL_LINK_POINTER)
    link_case(f"{LINK_REGION | 1 << 32:#x} is beyond MAXPHYADDR", LINK_REGION | 1 << 32, QUAL_LINK_POINTER)
    link_case(f"{1 << 63:#x} (bit 63 only) is beyond MAXPHYADDR", 1 << 63, QUAL_LINK_POINTER)
    link_case(f"the region at {ZERO_PAGE:#x} holds revision 0", ZERO_PAGE, QUAL_LINK_POINTER)
    link_case(
        f'the region at {SPARE_REGION:#x} has bit 31 set ("VMCS shadowing" is 0)', SPARE_REGION, QUAL_LINK_POINTER
    )
    link_case(f"{OUTSIDE_RAM:#x} names no memory (reads all ones)", OUTSIDE_RAM, QUAL_LINK_POINTER)
    link_case("the current-VMCS pointer", current, QUAL_LINK_POINTER)
    link_case(
        "a bad link pointer and GUEST_CR4 without VMXE: checks 1-19 come first, qualification 0",
        ZERO_PAGE,
        0,
        {"GUEST_CR4": 0},
    )

    pae = {"GUEST_CR4": CR4_VMX | CR4.PAE}
    guest_case(s, "Check 21: a PAE guest (CR0.PG, CR4.PAE) whose PDPTEs at CR3 are zeros.", pae, ready, None)
    for entry, value, what in (
        (0, PRESENT | 1 << 5, "bit 5"),
        (1, PRESENT | 1 << 8, "bit 8"),
        (2, PRESENT | 1 << 1, "bit 1"),
        (3, PRESENT | 1 << 2, "bit 2"),
        (0, PRESENT | 1 << 32, "bit 32 (MAXPHYADDR 32)"),
        (3, PRESENT | 1 << 63, "bit 63"),
    ):
        addr = GUEST_CR3 + 8 * entry
        s.comment(f"PDPTE {entry} at {addr:#x}: present with reserved {what}.")
        s.write(addr, value, 8).ok()
        guest_case(s, f"Check 21: PDPTE {entry} = {value:#x}.", pae, ready, QUAL_PDPTE)
        s.write(addr, 0, 8).ok()
    good_pdpte = PRESENT | 0x18 | 0xE00 | 0xFFFF_F000
    s.comment(f"Every PDPTE present with PWT, PCD, bits 11:9 and address 0xfffff000 ({good_pdpte:#x}).")
    for entry in range(4):
        s.write(GUEST_CR3 + 8 * entry, good_pdpte, 8).ok()
    guest_case(s, "Check 21: four present PDPTEs without reserved bits.", pae, ready, None)
    s.comment("A PDPTE that is not present is not checked: PDPTE 2 = 0xfffffffffffffffe.")
    s.write(GUEST_CR3 + 16, U64 - 1, 8).ok()
    guest_case(s, "Check 21: a non-present PDPTE with every other bit set.", pae, ready, None)
    s.comment(f"PDPTE 0 at {GUEST_CR3:#x} present with bit 5: CR3 bits 4:0 are not part of the table's address.")
    s.write(GUEST_CR3, PRESENT | 1 << 5, 8).ok()
    guest_case(
        s,
        "Check 21: CR3 0x70018 (PWT, PCD) still locates the table at 0x70000.",
        pae | {"GUEST_CR3": GUEST_CR3 | 0x18},
        ready,
        QUAL_PDPTE,
    )
    guest_case(
        s,
        "Check 21: CR3 0x70020: its table (0x70020-0x7003f) is zeros.",
        pae | {"GUEST_CR3": GUEST_CR3 + 0x20},
        ready,
        None,
    )
    guest_case(s, "Check 21: without CR4.PAE the PDPTEs are not read.", {}, ready, None)
    guest_case(
        s,
        "Check 21 after 20: a bad PDPTE and a bad link pointer: qualification 4.",
        pae | {link: ZERO_PAGE},
        ready,
        QUAL_LINK_POINTER,
    )
    guest_case(
        s,
        "Check 21: a bad PDPTE with a good link pointer: qualification 2.",
        pae | {link: LINK_REGION},
        ready,
        QUAL_PDPTE,
    )
    s.write(GUEST_CR3, good_pdpte, 8).ok()


def _ia32e_guest_cases(s: Script, ready: dict[str, int]) -> None:
    def bad(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, 0)

    def good(text: str, changes: dict[str, int]) -> None:
        guest_case(s, text, changes, ready, None)

    entry = ready[ENTRY.vmcs_field]
    bad('Check 3: "IA-32e mode guest" with CR4.PAE = 0.', {"GUEST_CR4": CR4_VMX})
    good('Check 3: CR4.PCIDE = 1 with "IA-32e mode guest".', {"GUEST_CR4": ready["GUEST_CR4"] | CR4.PCIDE})
    load_efer = entry | ENTRY.bit("LOAD_IA32_EFER")
    good(
        'Check 5: "load IA32_EFER" with LMA = LME = 1 and NXE.',
        {ENTRY.vmcs_field: load_efer, "GUEST_IA32_EFER": EFER_IA32E | EFER.NXE},
    )
    for value, what in ((EFER.LME, "LMA = 0"), (EFER.LMA, "LME = 0 with CR0.PG = 1"), (0, "LMA = LME = 0")):
        bad(
            f'Check 5: "load IA32_EFER" with {what} for an IA-32e mode guest.',
            {ENTRY.vmcs_field: load_efer, "GUEST_IA32_EFER": value},
        )
    bad("Check 9: 64-bit code (CS.L = 1) with D/B = 1.", {"GUEST_CS_AR_BYTES": 0xE09B})
    good("Check 9: a compatibility-mode guest (CS.L = 0, D/B = 1).", {"GUEST_CS_AR_BYTES": 0xC09B})
    bad('Check 12: TR type 3 (16-bit busy TSS) with "IA-32e mode guest".', {"GUEST_TR_AR_BYTES": 0x83})
    for rip in (CANONICAL_LOW_TOP, 0xFFFF_FFFF_FFFF_F000, 1 << 32):
        good(f"Check 15: 64-bit code with GUEST_RIP {rip:#x}.", {"GUEST_RIP": rip})
    for rip, what in ((1 << 48, "bit 48 alone"), (1 << 63, "bit 63 alone")):
        bad(f"Check 15: 64-bit code with GUEST_RIP {rip:#x} ({what}: bits 63:48 differ).", {"GUEST_RIP": rip})
    bad(
        "Check 15: compatibility mode (CS.L = 0) with GUEST_RIP bit 32.",
        {"GUEST_CS_AR_BYTES": 0xC09B, "GUEST_RIP": 1 << 32},
    )
    bad(
        'Check 16: RFLAGS.VM = 1 with "IA-32e mode guest" (virtual-8086 segments, so only check 16 fails).',
        v8086_guest(),
    )
    s.comment(f"A bad PDPTE at CR3 ({GUEST_CR3:#x}): an IA-32e mode guest has no PDPTEs to check.")
    s.write(GUEST_CR3, PRESENT | 1 << 5, 8).ok()
    good('Check 21: CR0.PG and CR4.PAE with "IA-32e mode guest": PDPTEs not checked.', {})
    s.write(GUEST_CR3, 0, 8).ok()
    good(
        'A 32-bit guest from a 64-bit host ("IA-32e mode guest" = 0 is allowed in IA-32e mode).',
        {ENTRY.vmcs_field: ENTRY.true_default1} | presets.guest_fields(),
    )


def vmentry_guest_state_checks() -> Script:
    s = Script(
        "vmentry_guest_state_checks",
        "SDM 26.3.1 (checks on the guest-state area: 26.3.1.1 control registers, debug registers, MSRs; 26.3.1.2",
        "segment registers; 26.3.1.3 GDTR/IDTR; 26.3.1.4 RIP, RFLAGS; 26.3.1.5 non-register state and the VMCS",
        'link pointer; 26.3.1.6 PDPTEs), 26.8 (VM-entry failure); docs/semantics.md "Checks on the guest-state',
        'area" 1-21 and "VM entry" (choice 15). Each group breaks one rule of a launchable VMCS: VMLAUNCH is a',
        "VM-entry failure (exit reason 0x80000021; EXIT_QUALIFICATION 0, 4 for the link pointer, 2 for the PDPTEs),",
        "the host state is loaded (RIP = HOST_RIP) and the launch state is unchanged (VMRESUME fails with 5); the",
        "allowed edges of each rule enter the guest (a VMCALL exits back with reason 18). Then a 64-bit host and",
        "IA-32e mode guests. Checks on the controls and host state (7, 8) come before the guest-state checks.",
    )
    s.enable_vmx()
    s.enter_vmx()
    ready = launchable_fields()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.comment("The launchable VMCS passes (the guest of sim/presets.py).")
    s.vmlaunch().passes()
    s.comment("A failure reports the full exit reason in VM_EXIT_REASON too; the VM-instruction error is not written.")
    s.vmwrite("GUEST_CR4", 0).succeed()
    s.vmlaunch().entry_failed(GUEST_STATE_FAILURE)
    s.vmread("VM_EXIT_REASON").succeed(GUEST_STATE_FAILURE)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(0)
    s.comment("Checks 7 and 8 come first: a bad guest with a bad control is VMfailValid(7), with a bad host 8.")
    s.vmwrite("CR3_TARGET_COUNT", 5).succeed()
    s.vmlaunch().fail_valid(7)
    s.vmwrite("CR3_TARGET_COUNT", 0).succeed()
    s.vmwrite("HOST_CR3", 1 << 32).succeed()
    s.vmlaunch().fail_valid(8)
    s.vmwrite("HOST_CR3", ready["HOST_CR3"]).succeed()
    s.vmwrite("GUEST_CR4", CR4_VMX).succeed()
    _control_register_cases(s, ready)
    _segment_cases(s, ready)
    _non_register_cases(s, ready)
    _link_pointer_and_pdpte_cases(s, ready, VMCS_A)
    s.comment("VMRESUME makes the same checks: a launched VMCS with a bad guest fails, and stays launched.")
    s.launched_vmcs(VMCS_C)
    s.launchable()
    guest_case(
        s,
        "Check 12 for VMRESUME: TR unusable.",
        {"GUEST_TR_AR_BYTES": AR.UNUSABLE | 0x8B},
        ready,
        0,
        instruction="vmresume",
    )
    s.vmresume().passes("vmresume")

    ready64 = presets.launchable_fields(ia32e=True)
    s.comment('IA-32e mode guests: the processor in 64-bit mode, a 64-bit host, "IA-32e mode guest" = 1.')
    s.ia32e_mode()
    s.new_vmcs(VMCS_D)
    s.vmwrite_all(ready64)
    s.vmlaunch().passes()
    _ia32e_guest_cases(s, ready64)
    return s


# ======================================================================================
# VM entry: loading the guest state (SDM 26.3.2); VM exit: saving it and loading the host (SDM 27.2-27.5)
# ======================================================================================

CR0_MP, CR0_TS, CR0_ET, CR0_WP, CR0_AM = 1 << 1, 1 << 3, 1 << 4, 1 << 16, 1 << 18
#: A guest (32-bit, CPL 0) with a distinct value in every field that passes the checks of SDM 26.3.1.
DISTINCT_GUEST = {
    # Bit 6 is one of the reserved bits a VM entry never loads; NW, CD, ET are not set here.
    "GUEST_CR0": CR0_VMX | CR0_MP | CR0_TS | CR0_WP | CR0_AM | 1 << 6,
    "GUEST_CR3": 0x0007_1018,
    "GUEST_CR4": CR4_VMX | 0x0001_0218,
    "GUEST_DR7": 0x0402,
    "GUEST_IA32_DEBUGCTL": 0x1,
    "GUEST_RSP": 0x0006_1230,
    "GUEST_RIP": 0x0004_5670,
    # Every flag but VM; RF too. TF = 1 with blocking by STI: BS pending (DEBUGCTL.BTF = 0).
    "GUEST_RFLAGS": 0x3D_7FD7,
    "GUEST_IA32_PAT": 0x0000_0006_0000_0006,
    "GUEST_IA32_EFER": EFER.SCE,
    "GUEST_IA32_PERF_GLOBAL_CTRL": 0x2,
    "GUEST_SYSENTER_CS": 0x0010_0008,
    "GUEST_SYSENTER_ESP": CANONICAL_HIGH_BOTTOM | 0x100,
    "GUEST_SYSENTER_EIP": 0x0000_1234_5678,
    "GUEST_SMBASE": 0x0004_0000,
    "GUEST_ACTIVITY_STATE": 0,
    "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_STI | INTERRUPTIBILITY.BLOCKING_BY_NMI,
    "GUEST_PENDING_DBG_EXCEPTIONS": 0x4005,
    "GUEST_ES_SELECTOR": 0x0020,
    "GUEST_ES_BASE": 0x1234_0000,
    "GUEST_ES_LIMIT": 0x000F_FFFF,
    "GUEST_ES_AR_BYTES": 0x40F3,
    "GUEST_CS_SELECTOR": 0x0008,
    "GUEST_CS_BASE": 0x0001_0000,
    "GUEST_CS_LIMIT": U32,
    "GUEST_CS_AR_BYTES": 0xD09B,
    "GUEST_SS_SELECTOR": 0x0010,
    "GUEST_SS_BASE": 0x2000_0000,
    "GUEST_SS_LIMIT": 0x0FFF_FFFF,
    "GUEST_SS_AR_BYTES": 0xC097,
    "GUEST_DS_SELECTOR": 0x002B,
    "GUEST_DS_BASE": 0x3000,
    "GUEST_DS_LIMIT": 0xFFFF,
    "GUEST_DS_AR_BYTES": 0x40F3,
    "GUEST_FS_SELECTOR": 0x0030,
    "GUEST_FS_BASE": 0x7FFF_0000_1000,
    "GUEST_FS_LIMIT": U32,
    "GUEST_FS_AR_BYTES": 0xC093,
    # An unusable GS with every access-rights bit set: loaded as it is (choice 21).
    "GUEST_GS_SELECTOR": 0,
    "GUEST_GS_BASE": 0xFFFF_8000_0000_2000,
    "GUEST_GS_LIMIT": 0x1234,
    "GUEST_GS_AR_BYTES": U32,
    "GUEST_LDTR_SELECTOR": 0x0040,
    "GUEST_LDTR_BASE": 0x3000,
    "GUEST_LDTR_LIMIT": 0xFF,
    "GUEST_LDTR_AR_BYTES": 0x82,
    "GUEST_TR_SELECTOR": 0x0048,
    "GUEST_TR_BASE": 0x4000,
    "GUEST_TR_LIMIT": 0x67,
    "GUEST_TR_AR_BYTES": 0x83,
    "GUEST_GDTR_BASE": 0x5000,
    "GUEST_GDTR_LIMIT": 0xFFFF,
    "GUEST_IDTR_BASE": 0xFFFF_8000_0000_6000,
    "GUEST_IDTR_LIMIT": 0x1FF,
}
#: The elements every VM entry loads from their field (SDM 26.3.2, state-actions.md "always").
ALWAYS_LOADED = [
    "cr3",
    "cr4",
    "rsp",
    "rip",
    "rflags",
    "sysenter_cs",
    "sysenter_esp",
    "sysenter_eip",
    "activity",
    "interruptibility",
    "pending_debug",
    *(f"{segment}.{part}" for segment in SEGMENTS for part in ("selector", "base", "limit", "ar")),
    "gdtr.base",
    "gdtr.limit",
    "idtr.base",
    "idtr.limit",
]


def guest_field(element: str) -> str:
    return ELEMENT_BY_NAME[element].guest_field


def expect_elements(s: Script, values: dict[str, int]) -> None:
    for name, value in values.items():
        s.get(name).ok(value)


def expect_fields(s: Script, values: dict[str, int]) -> None:
    for name, value in values.items():
        s.vmread(name).succeed(value)


def vmentry_loads_guest_state() -> Script:
    s = Script(
        "vmentry_loads_guest_state",
        "SDM 26.3.2 (loading guest state), 26.6.1-26.6.2 (a vectoring entry: active, no STI/MOV-SS blocking);",
        'docs/semantics.md "VM entry" 2 and docs/state-actions.md: after VMLAUNCH, GET of each element reads the',
        "guest's value. CR0 keeps ET, NW, CD and the reserved bits 15:6, 17, 28:19 (26.3.2.1); DR7 and",
        'IA32_DEBUGCTL are loaded with "load debug controls" only (DR7 bit 10 forced 1, bits 11, 12, 14, 15',
        "forced 0); PAT, EFER, PERF_GLOBAL_CTRL with their load controls, else the processor keeps its value;",
        'without "load IA32_EFER", EFER.LMA and LME become "IA-32e mode guest" and the other bits stay; SMBASE is',
        "never loaded outside SMM; unusable segments are loaded as they are (choice 21).",
    )
    s.enable_vmx()
    s.enter_vmx()
    ready = launchable_fields()
    host = {
        "cr0": CR0_VMX | CR0.CD | CR0.NW | CR0_ET,
        "dr7": 0x04FF,
        "debugctl": 0x1,
        "efer": EFER.SCE | EFER.NXE,
        "pat": 0x0106_0104_0005_0007,
        "perf_global_ctrl": 0x1,
    }
    s.comment(
        "The processor's own values of the elements the controls decide (and CR0 with CD, NW, ET, which a",
        "VM entry never changes).",
    )
    for name, value in host.items():
        s.set(name, value).ok()
    s.get("smbase").ok(0x3_0000)
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.vmwrite_all(DISTINCT_GUEST)
    s.comment(
        "No load control set: VMLAUNCH enters the guest; every element's GET reads the guest's value:",
        "the field for the elements always loaded; DR7, DEBUGCTL, PAT, PERF_GLOBAL_CTRL keep the processor's",
        'values; EFER keeps SCE and NXE with LMA = LME = 0 ("IA-32e mode guest" = 0); SMBASE stays 0x30000.',
    )
    s.vmlaunch().entered()
    s.get("cr0").ok(CR0_VMX | CR0_MP | CR0_TS | CR0_WP | CR0_AM | CR0.CD | CR0.NW | CR0_ET)
    expect_elements(s, {name: DISTINCT_GUEST[guest_field(name)] for name in ALWAYS_LOADED})
    expect_elements(s, {name: host[name] for name in ("dr7", "debugctl", "pat", "perf_global_ctrl", "efer")})
    s.get("smbase").ok(0x3_0000)
    s.vmcall().exited(EXIT_VMCALL)

    entry = ready[ENTRY.vmcs_field]
    loads = {
        ENTRY.vmcs_field: entry
        | ENTRY.bit("LOAD_DEBUG_CONTROLS")
        | ENTRY.bit("LOAD_IA32_PERF_GLOBAL_CTRL")
        | ENTRY.bit("LOAD_IA32_PAT")
        | ENTRY.bit("LOAD_IA32_EFER"),
        "GUEST_DR7": 0xFFFF_FBFF,
        "GUEST_IA32_DEBUGCTL": 0x5FC3,
        "GUEST_IA32_PAT": 0x0007_0406_0007_0406,
        "GUEST_IA32_EFER": EFER.NXE,
        "GUEST_IA32_PERF_GLOBAL_CTRL": 0x7_0000_0002,
        # No blocking: TF = 1 with BTF = 1 needs no BS then.
        "GUEST_INTERRUPTIBILITY_INFO": 0,
        "GUEST_PENDING_DBG_EXCEPTIONS": 0x5,
    }
    s.comment(
        '"Load debug controls", "load IA32_PERF_GLOBAL_CTRL", "load IA32_PAT", "load IA32_EFER": the fields are',
        "loaded; DR7 0xfffffbff reads 0xffff27ff (bit 10 forced 1, bits 11, 12, 14, 15 forced 0).",
    )
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.vmwrite_all(DISTINCT_GUEST | loads)
    s.vmlaunch().entered()
    expect_elements(
        s,
        {
            "dr7": 0xFFFF_27FF,
            "debugctl": 0x5FC3,
            "pat": 0x0007_0406_0007_0406,
            "efer": EFER.NXE,
            "perf_global_ctrl": 0x7_0000_0002,
            "interruptibility": 0,
            "pending_debug": 0x5,
        },
    )
    s.vmcall().exited(EXIT_VMCALL)

    s.comment(
        "A vectoring entry (injecting #UD) into the HLT state with blocking by MOV SS and by NMI in the field:",
        "the guest is active, without blocking by STI or MOV SS; blocking by NMI stays (26.6.1, 26.6.2).",
    )
    ud = _event(HARDWARE_EXCEPTION, UD)
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.vmwrite_all(
        {
            "VM_ENTRY_INTR_INFO_FIELD": ud,
            "GUEST_ACTIVITY_STATE": 0,
            "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_MOV_SS | INTERRUPTIBILITY.BLOCKING_BY_NMI,
            "GUEST_RFLAGS": RFLAGS.FIXED1,
            "GUEST_PENDING_DBG_EXCEPTIONS": 0,
        }
    )
    s.vmlaunch().entered(event=ud)
    s.get("activity").ok(0)
    s.get("interruptibility").ok(INTERRUPTIBILITY.BLOCKING_BY_NMI)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("The same guest in the HLT state, an NMI injected: active after the entry.")
    nmi = _event(NMI, 2)
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.vmwrite_all({"VM_ENTRY_INTR_INFO_FIELD": nmi, "GUEST_ACTIVITY_STATE": 1, "GUEST_INTERRUPTIBILITY_INFO": 0})
    s.vmlaunch().entered(event=nmi)
    s.get("activity").ok(0)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("Without an injection the HLT state is loaded as it is.")
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.vmwrite_all({"VM_ENTRY_INTR_INFO_FIELD": 0, "GUEST_ACTIVITY_STATE": 1})
    s.vmlaunch().entered()
    s.get("activity").ok(1)
    s.vmcall().exited(EXIT_VMCALL)

    s.comment(
        'A 64-bit host (EFER LMA, LME, SCE); without "load IA32_EFER" a 64-bit guest gets LMA = LME = 1 and a',
        "32-bit guest LMA = LME = 0, SCE kept in both; with it, the guest gets GUEST_IA32_EFER.",
    )
    s.ia32e_mode()
    s.set("efer", EFER_IA32E | EFER.SCE).ok()
    ready64 = presets.launchable_fields(ia32e=True)
    s.new_vmcs(VMCS_B)
    s.vmwrite_all(ready64)
    s.vmlaunch().entered()
    s.get("efer").ok(EFER_IA32E | EFER.SCE)
    s.get("cs.ar").ok(ready64["GUEST_CS_AR_BYTES"])
    s.get("cr4").ok(CR4_VMX | CR4.PAE)
    s.vmcall().exited(EXIT_VMCALL)
    s.get("efer").ok(EFER_IA32E | EFER.SCE)
    s.vmclear(VMCS_B).succeed()
    s.vmptrld(VMCS_B).succeed()
    s.vmwrite_all({ENTRY.vmcs_field: ENTRY.true_default1} | presets.guest_fields())
    s.vmlaunch().entered()
    s.get("efer").ok(EFER.SCE)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment('The exit to the 64-bit host sets LMA and LME again ("host address-space size" = 1).')
    s.get("efer").ok(EFER_IA32E | EFER.SCE)
    s.vmclear(VMCS_B).succeed()
    s.vmptrld(VMCS_B).succeed()
    s.vmwrite_all({ENTRY.vmcs_field: ENTRY.true_default1 | ENTRY.bit("LOAD_IA32_EFER"), "GUEST_IA32_EFER": EFER.NXE})
    s.vmlaunch().entered()
    s.get("efer").ok(EFER.NXE)
    s.vmcall().exited(EXIT_VMCALL)
    s.get("efer").ok(EFER_IA32E | EFER.NXE)
    return s


#: Host fields with distinct values besides the launchable ones (sim/presets.py).
DISTINCT_HOST = {
    "HOST_FS_BASE": 0x0000_7000_0000_1000,
    "HOST_GS_BASE": 0xFFFF_8000_0000_3000,
    "HOST_IA32_SYSENTER_CS": 0x0000_0060,
    "HOST_IA32_SYSENTER_ESP": 0x0009_1000,
    "HOST_IA32_SYSENTER_EIP": 0xFFFF_8000_0000_4000,
    "HOST_ES_SELECTOR": 0,
    "HOST_FS_SELECTOR": 0x0020,
}


def host_after_exit(fields: dict[str, int], cr0: int) -> dict[str, int]:
    """Every element a VM exit loads with a predetermined value or a host field (SDM 27.5; state-actions.md)."""
    ia32e = bool(fields[EXIT.vmcs_field] & EXIT.bit("HOST_ADDR_SPACE_SIZE"))
    values = {
        "cr0": cr0,
        "cr3": fields["HOST_CR3"],
        "cr4": fields["HOST_CR4"],
        "dr7": 0x400,
        "debugctl": 0,
        "rsp": fields["HOST_RSP"],
        "rip": fields["HOST_RIP"],
        "rflags": RFLAGS.FIXED1,
        "sysenter_cs": fields.get("HOST_IA32_SYSENTER_CS", 0),
        "sysenter_esp": fields.get("HOST_IA32_SYSENTER_ESP", 0),
        "sysenter_eip": fields.get("HOST_IA32_SYSENTER_EIP", 0),
        "activity": 0,
        "interruptibility": 0,
        "pending_debug": 0,
    }
    for segment in ("es", "cs", "ss", "ds", "fs", "gs", "tr"):
        up = segment.upper()
        selector = fields[f"HOST_{up}_SELECTOR"]
        values[f"{segment}.selector"] = selector
        values[f"{segment}.base"] = fields.get(f"HOST_{up}_BASE", 0) if segment in ("fs", "gs", "tr") else 0
        values[f"{segment}.limit"] = 0x67 if segment == "tr" else U32
        if segment == "cs":
            # Type 11, S, P, G; L = "host address-space size", D/B its complement.
            values["cs.ar"] = 0x809B | (AR.L if ia32e else AR.DB)
        elif segment == "tr":
            values["tr.ar"] = 0x8B
        else:
            values[f"{segment}.ar"] = AR.UNUSABLE if selector == 0 else 0xC093
    values |= {"ldtr.selector": 0, "ldtr.base": 0, "ldtr.limit": 0, "ldtr.ar": AR.UNUSABLE}
    values |= {"gdtr.base": fields["HOST_GDTR_BASE"], "gdtr.limit": 0xFFFF}
    values |= {"idtr.base": fields["HOST_IDTR_BASE"], "idtr.limit": 0xFFFF}
    return values


def vmexit_saves_and_loads() -> Script:
    s = Script(
        "vmexit_saves_and_loads",
        "SDM 27.2 (recording VM-exit information: exit reason, qualification 0 for VMCALL, instruction length,",
        "interruption information 0 when no event caused the exit, IDT-vectoring information 0, the valid bit of",
        'the VM-entry interruption information cleared, "IA-32e mode guest" := EFER.LMA with IA32_VMX_MISC bit 5),',
        "27.3 (saving guest state: access rights with bits 31:17 and 11:8 cleared, RFLAGS.RF 0 after an",
        "instruction, DR7/DEBUGCTL/PAT/EFER with their save controls), 27.5 (loading host state: CR0 keeps ET, NW,",
        "CD; DR7 0x400, DEBUGCTL 0, RFLAGS 0x2, flat segments, TR 0x67/0x8b, LDTR unusable, GDTR/IDTR limits",
        "0xffff, a 0 selector makes a data segment unusable; PAT, EFER, PERF_GLOBAL_CTRL with their load controls,",
        'else kept, EFER.LMA/LME = "host address-space size"), 27.5.5 (NMI blocking after an NMI exit), 26.8',
        "(a VM-entry failure writes only the exit reason and qualification, saves nothing, keeps the valid bit,",
        'NMI blocking as before the entry); docs/semantics.md "VM exit", choices 16, 20, 24.',
    )
    s.enable_vmx()
    s.enter_vmx()
    ready = launchable_fields() | DISTINCT_HOST
    guest = DISTINCT_GUEST | {"GUEST_INTERRUPTIBILITY_INFO": 0, "GUEST_PENDING_DBG_EXCEPTIONS": 0}
    s.comment("The processor's CR0 has CD (kept by entries and exits); PAT and PERF_GLOBAL_CTRL their reset values.")
    s.set("cr0", CR0_VMX | CR0.CD).ok()
    s.new_vmcs(VMCS_A)
    s.vmwrite_all(ready | guest)
    s.comment(
        "Exit information left by earlier exits: an OUT exit (qualification), a #GP exit (interruption",
        "information and error code); then VMCALL must write qualification 0 and interruption information 0 and",
        "leave the error code (docs: the other exit-information fields keep their values).",
    )
    proc = ready[PROC.vmcs_field] | PROC.bit("UNCOND_IO_EXITING")
    s.vmwrite(PROC.vmcs_field, proc).succeed()
    s.vmwrite("EXCEPTION_BITMAP", 1 << GP).succeed()
    s.vmlaunch().entered()
    s.out(0x80, 1, 0x55).exited(EXIT_IO_INSTRUCTION)
    s.vmread("EXIT_QUALIFICATION").succeed(0x80 << 16)
    s.vmresume().entered()
    s.exception(GP, error_code=0x1234).exited(EXIT_EXCEPTION_OR_NMI)
    s.vmread("VM_EXIT_INTR_INFO").succeed(_event(HARDWARE_EXCEPTION, GP, error_code=True))
    s.vmread("VM_EXIT_INTR_ERROR_CODE").succeed(0x1234)
    s.comment(
        "VMRESUME injecting #PF (error code 0x10): the entry reports it; the VMCALL exit clears the valid bit",
        "of VM_ENTRY_INTR_INFO_FIELD and leaves the rest of it and the error code.",
    )
    pf = _event(HARDWARE_EXCEPTION, PF, error_code=True)
    s.vmwrite("VM_ENTRY_INTR_INFO_FIELD", pf).succeed()
    s.vmwrite("VM_ENTRY_EXCEPTION_ERROR_CODE", 0x10).succeed()
    s.vmresume().entered(event=pf, error_code=0x10)
    s.comment(
        "In the guest: new values for some elements (GS and DS access rights with reserved bits, RFLAGS with RF),",
        "CR0 with CD and NW (kept by the exit), DR7, PAT, EFER, PERF_GLOBAL_CTRL (not saved without their",
        "controls). The VMCALL (length 5) is at RIP 0x45680.",
    )
    in_guest = {
        "rip": 0x0004_5680,
        "rsp": 0x0006_0000,
        "rflags": 0x1_0202,
        "cr0": CR0_VMX | CR0.CD | CR0.NW,
        "cr3": 0x0007_2000,
        "es.selector": 0x0023,
        "ds.ar": 0xFFFE_CFF3,
        "gs.ar": U32,
        "ldtr.base": 0x0000_1234_5000,
        "sysenter_cs": 0x99,
        "gdtr.limit": 0x7F,
        "interruptibility": INTERRUPTIBILITY.BLOCKING_BY_STI,
        "pending_debug": 0x1,
        "dr7": 0x04AA,
        "pat": 0x0606_0606_0606_0606,
        "efer": EFER.SCE | EFER.NXE,
        "perf_global_ctrl": 0x3,
    }
    for name, value in in_guest.items():
        s.set(name, value).ok()
    s.vmcall(length=5).exited(EXIT_VMCALL)
    s.comment("Exit information (27.2).")
    expect_fields(
        s,
        {
            "VM_EXIT_REASON": EXIT_VMCALL,
            "EXIT_QUALIFICATION": 0,
            "VM_EXIT_INSTRUCTION_LEN": 5,
            "VM_EXIT_INTR_INFO": 0,
            "VM_EXIT_INTR_ERROR_CODE": 0x1234,
            "IDT_VECTORING_INFO_FIELD": 0,
            "VM_ENTRY_INTR_INFO_FIELD": pf & ~VALID,
            "VM_ENTRY_EXCEPTION_ERROR_CODE": 0x10,
            ENTRY.vmcs_field: ready[ENTRY.vmcs_field],
        },
    )
    s.comment(
        "The guest-state area (27.3): each element's value at the exit; RFLAGS without RF; access rights with",
        "bits 31:17 and 11:8 cleared (bit 16 = unusable); pending debug exceptions 0 (no MOV-SS blocking); DR7,",
        "DEBUGCTL, PAT, EFER, PERF_GLOBAL_CTRL and SMBASE fields unchanged (no save control; SMBASE is saved by",
        "SMM VM exits only).",
    )
    saved = {guest_field(name): DISTINCT_GUEST[guest_field(name)] for name in ALWAYS_LOADED}
    saved |= {guest_field(name): value for name, value in in_guest.items()}
    saved |= {
        "GUEST_CR0": CR0_VMX | CR0.CD | CR0.NW,
        "GUEST_RFLAGS": 0x202,
        # Pending debug exceptions are saved only by exits under blocking by MOV SS (27.3.4); here STI.
        "GUEST_PENDING_DBG_EXCEPTIONS": 0,
        "GUEST_DS_AR_BYTES": 0xC0F3,
        "GUEST_GS_AR_BYTES": 0x1_F0FF,
        "GUEST_DR7": DISTINCT_GUEST["GUEST_DR7"],
        "GUEST_IA32_DEBUGCTL": DISTINCT_GUEST["GUEST_IA32_DEBUGCTL"],
        "GUEST_IA32_PAT": DISTINCT_GUEST["GUEST_IA32_PAT"],
        "GUEST_IA32_EFER": DISTINCT_GUEST["GUEST_IA32_EFER"],
        "GUEST_IA32_PERF_GLOBAL_CTRL": DISTINCT_GUEST["GUEST_IA32_PERF_GLOBAL_CTRL"],
        "GUEST_SMBASE": DISTINCT_GUEST["GUEST_SMBASE"],
    }
    expect_fields(s, saved)
    s.comment(
        "The host state (27.5): CR0 = HOST_CR0 with the guest's CD and NW; the predetermined values; ES",
        "(selector 0) unusable with base 0 and limit 0xffffffff (choice 20); without exit load controls PAT and",
        "PERF_GLOBAL_CTRL keep the guest's values, EFER keeps SCE and NXE with LMA = LME = 0.",
    )
    expect_elements(s, host_after_exit(ready, CR0_VMX | CR0.CD | CR0.NW))
    expect_elements(s, {"pat": 0x0606_0606_0606_0606, "perf_global_ctrl": 0x3, "efer": EFER.SCE | EFER.NXE})
    s.get("smbase").ok(0x3_0000)

    exit_ = ready[EXIT.vmcs_field]
    controls = {
        EXIT.vmcs_field: exit_
        | EXIT.bit("SAVE_DEBUG_CONTROLS")
        | EXIT.bit("SAVE_IA32_PAT")
        | EXIT.bit("LOAD_IA32_PAT")
        | EXIT.bit("SAVE_IA32_EFER")
        | EXIT.bit("LOAD_IA32_EFER")
        | EXIT.bit("LOAD_IA32_PERF_GLOBAL_CTRL"),
        "HOST_IA32_PAT": 0x0001_0405_0607_0001,
        "HOST_IA32_EFER": EFER.NXE,
        "HOST_IA32_PERF_GLOBAL_CTRL": 0x1_0000_0000,
        "VM_ENTRY_INTR_INFO_FIELD": 0,
    }
    s.comment(
        '"Save debug controls", "save/load IA32_PAT", "save/load IA32_EFER", "load IA32_PERF_GLOBAL_CTRL": the exit',
        "saves DR7, DEBUGCTL, PAT, EFER (not PERF_GLOBAL_CTRL: no save control), loads the host fields, DR7 0x400.",
    )
    s.vmwrite_all(controls)
    s.vmresume().entered()
    in_guest2 = {
        "dr7": 0x0455,
        "debugctl": 0x41,
        "pat": 0x0505_0505_0505_0505,
        "efer": EFER.SCE,
        "perf_global_ctrl": 0x2,
    }
    for name, value in in_guest2.items():
        s.set(name, value).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("VM_EXIT_INSTRUCTION_LEN").succeed(3)
    expect_fields(
        s,
        {
            "GUEST_DR7": 0x0455,
            "GUEST_IA32_DEBUGCTL": 0x41,
            "GUEST_IA32_PAT": 0x0505_0505_0505_0505,
            "GUEST_IA32_EFER": EFER.SCE,
            "GUEST_IA32_PERF_GLOBAL_CTRL": DISTINCT_GUEST["GUEST_IA32_PERF_GLOBAL_CTRL"],
        },
    )
    expect_elements(
        s,
        {
            "dr7": 0x400,
            "debugctl": 0,
            "pat": 0x0001_0405_0607_0001,
            "efer": EFER.NXE,
            "perf_global_ctrl": 0x1_0000_0000,
        },
    )

    s.comment(
        'An NMI exit ("NMI exiting") of a guest with blocking by STI (which does not block NMIs): the host has',
        "NMIs blocked (27.5.5); the guest's interruptibility is saved as it was. The next exit (VMCALL) unblocks",
        "them.",
    )
    pin = ready[PIN.vmcs_field] | PIN.bit("NMI_EXITING")
    s.vmwrite_all(
        {
            PIN.vmcs_field: pin,
            "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_STI,
            "GUEST_PENDING_DBG_EXCEPTIONS": 0,
        }
    )
    s.vmresume().entered()
    s.nmi().exited(EXIT_EXCEPTION_OR_NMI)
    s.vmread("VM_EXIT_INTR_INFO").succeed(_event(NMI, 2))
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(INTERRUPTIBILITY.BLOCKING_BY_STI)
    s.get("interruptibility").ok(INTERRUPTIBILITY.BLOCKING_BY_NMI)
    s.comment(
        "A VM-entry failure (GUEST_CR4 without VMXE) with NMIs blocked before it: still blocked after it (26.8);",
        "only the exit reason and qualification are written: the instruction length, the interruption",
        "information, the guest-state area (GUEST_RIP) keep their values.",
    )
    s.vmwrite("GUEST_CR4", 0).succeed()
    s.vmwrite("VM_ENTRY_INTR_INFO_FIELD", pf).succeed()
    s.vmresume().entry_failed(GUEST_STATE_FAILURE)
    s.get("interruptibility").ok(INTERRUPTIBILITY.BLOCKING_BY_NMI)
    expect_fields(
        s,
        {
            "VM_EXIT_REASON": GUEST_STATE_FAILURE,
            "EXIT_QUALIFICATION": 0,
            "VM_EXIT_INTR_INFO": _event(NMI, 2),
            "VM_EXIT_INSTRUCTION_LEN": 3,
            "VM_ENTRY_INTR_INFO_FIELD": pf,
            "GUEST_RIP": 0x0004_5680,
        },
    )
    s.vmwrite("GUEST_CR4", DISTINCT_GUEST["GUEST_CR4"]).succeed()
    s.vmwrite("VM_ENTRY_INTR_INFO_FIELD", 0).succeed()
    s.vmresume().entered()
    s.vmcall().exited(EXIT_VMCALL)
    s.get("interruptibility").ok(0)
    s.comment("NMIs not blocked before a failing entry whose guest field blocks them: not blocked after it.")
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_NMI).succeed()
    s.vmwrite("GUEST_CR4", 0).succeed()
    s.vmresume().entry_failed(GUEST_STATE_FAILURE)
    s.get("interruptibility").ok(0)
    s.vmwrite("GUEST_CR4", DISTINCT_GUEST["GUEST_CR4"]).succeed()

    ready64 = presets.launchable_fields(ia32e=True) | {"HOST_SS_SELECTOR": 0, "HOST_DS_SELECTOR": 0}
    s.comment(
        "A 64-bit host with SS and DS selectors 0: CS.L = 1, D/B = 0 (0xa09b), SS and DS unusable (0x10000);",
        "EFER.LMA = LME = 1 after the exit (the processor's EFER was LMA | LME before the entry).",
    )
    s.ia32e_mode()
    s.new_vmcs(VMCS_B)
    s.vmwrite_all(ready64)
    s.vmlaunch().entered()
    s.vmcall().exited(EXIT_VMCALL)
    expect_elements(s, host_after_exit(ready64, CR0_VMX | CR0.CD | CR0.NW))
    s.get("efer").ok(EFER_IA32E)
    s.comment(
        'IA32_VMX_MISC bit 5: an exit sets "IA-32e mode guest" to the guest\'s EFER.LMA: a 64-bit guest that',
        "clears LMA (choice 3) comes back with the control 0; a 32-bit guest that sets it, with the control 1.",
    )
    s.vmresume().entered()
    s.set("efer", EFER.LME).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread(ENTRY.vmcs_field).succeed(ENTRY.true_default1)
    s.vmwrite(ENTRY.vmcs_field, ENTRY.true_default1).succeed()
    s.vmwrite_all(presets.guest_fields())
    s.vmresume().entered()
    s.set("efer", EFER_IA32E).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread(ENTRY.vmcs_field).succeed(ENTRY.true_default1 | ENTRY.bit("IA32E_MODE"))
    s.comment(
        'A VM-entry failure does not record exit information beyond reason and qualification: "IA-32e mode',
        "guest\" (0) is not set from the processor's EFER.LMA (1, a 64-bit host).",
    )
    s.vmwrite(ENTRY.vmcs_field, ENTRY.true_default1).succeed()
    s.vmwrite("GUEST_CR4", 0).succeed()
    s.vmresume().entry_failed(GUEST_STATE_FAILURE)
    s.get("efer").ok(EFER_IA32E)
    s.vmread(ENTRY.vmcs_field).succeed(ENTRY.true_default1)
    return s


# ======================================================================================
# VMX instructions in VMX non-root operation (SDM 25.1.2, 30.3; 27.2)
# ======================================================================================

#: The VMX instructions in a guest: (script op, its keys, basic exit reason, writes VMX_INSTRUCTION_INFO).
GUEST_VMX_INSTRUCTIONS = (
    ("vmxon", {"addr": VMXON_REGION}, EXIT_VMXON, True),
    ("vmxoff", {}, EXIT_VMXOFF, False),
    ("vmptrld", {"addr": VMCS_B}, EXIT_VMPTRLD, True),
    ("vmptrst", {}, EXIT_VMPTRST, True),
    ("vmclear", {"addr": VMCS_A}, EXIT_VMCLEAR, True),
    ("vmread", {"field": "GUEST_RIP"}, EXIT_VMREAD, True),
    ("vmwrite", {"field": "EXCEPTION_BITMAP", "value": U32}, EXIT_VMWRITE, True),
    ("vmlaunch", {}, EXIT_VMLAUNCH, False),
    ("vmresume", {}, EXIT_VMRESUME, False),
    ("vmcall", {}, EXIT_VMCALL, False),
)


def vmexit_computed_saves() -> Script:
    s = Script(
        "vmexit_computed_saves",
        "SDM 27.3.3: RFLAGS.RF is saved as 0 for an exit caused by an instruction, as 1 for a fault-class",
        "exception (as a fault pushes it), as it is for an interrupt; 27.3.4: pending debug exceptions are saved",
        "only by an exit under blocking by MOV SS (else 0), blocking by SMI (interruptibility bit 2) is saved as 0",
        "by exits that end outside SMM; 26.3.1.4: a 64-bit guest's RIP needs bits 63:48 equal, bit 47 may differ.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.vmwrite("EXCEPTION_BITMAP", (1 << GP) | (1 << 3)).succeed()
    s.vmwrite(PIN.vmcs_field, PIN.true_default1 | PIN.bit("EXT_INTR_EXITING")).succeed()
    rf = RFLAGS.FIXED1 | RFLAGS.RF
    s.comment("RF = 1 in the guest; CPUID (an instruction) saves it as 0.")
    s.vmlaunch().entered()
    s.set("rflags", rf).ok()
    s.op("cpuid", leaf=0).exited(10)
    s.vmread("GUEST_RFLAGS").succeed(RFLAGS.FIXED1)
    s.comment("RF = 0 in the guest; #GP (a fault) saves RF as 1; #BP (a trap, INT3) and an interrupt keep it.")
    s.vmwrite("GUEST_RFLAGS", RFLAGS.FIXED1).succeed()
    s.vmresume().entered()
    s.exception(GP, error_code=0).exited(0)
    s.vmread("GUEST_RFLAGS").succeed(rf)
    s.vmwrite("GUEST_RFLAGS", RFLAGS.FIXED1).succeed()
    s.vmresume().entered()
    s.exception(3).exited(0)
    s.vmread("GUEST_RFLAGS").succeed(RFLAGS.FIXED1)
    s.vmwrite("GUEST_RFLAGS", rf).succeed()
    s.vmresume().entered()
    s.op("interrupt", vector=0x30).exited(1)
    s.vmread("GUEST_RFLAGS").succeed(rf)
    s.comment("Pending debug exceptions 0x1 in the guest: an exit without MOV-SS blocking saves 0, with it 0x1.")
    s.vmresume().entered()
    s.set("pending_debug", 1).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("GUEST_PENDING_DBG_EXCEPTIONS").succeed(0)
    s.vmresume().entered()
    s.set("pending_debug", 1).ok()
    s.set("interruptibility", INTERRUPTIBILITY.BLOCKING_BY_MOV_SS).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("GUEST_PENDING_DBG_EXCEPTIONS").succeed(1)
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(INTERRUPTIBILITY.BLOCKING_BY_MOV_SS)
    s.comment("Blocking by SMI set in the guest (the platform's view) is saved as 0.")
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", 0).succeed()
    s.vmwrite("GUEST_PENDING_DBG_EXCEPTIONS", 0).succeed()
    s.vmresume().entered()
    s.set("interruptibility", INTERRUPTIBILITY.BLOCKING_BY_SMI).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(0)
    s.comment(
        "A 64-bit guest of a 64-bit host: RIP 0x800000000000 (bit 47 set, bits 63:48 clear) enters;",
        "RIP 0x1000000000000 (bit 48 set alone) fails the entry (reason 33).",
    )
    s.ia32e_mode()
    s.new_vmcs(VMCS_B)
    s.launchable(ia32e_host=True)
    s.vmwrite_all(presets.guest_fields(ia32e_guest=True))
    s.vmwrite(ENTRY.vmcs_field, ENTRY.true_default1 | ENTRY.bit("IA32E_MODE")).succeed()
    s.vmwrite("GUEST_RIP", 1 << 47).succeed()
    s.vmlaunch().entered()
    s.get("rip").ok(1 << 47)
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite("GUEST_RIP", 1 << 48).succeed()
    s.vmresume().entry_failed(EXIT_REASON_ENTRY_FAILURE | 33)
    return s


def window_exits() -> Script:
    s = Script(
        "window_exits",
        'SDM 25.2, 26.7.4-26.7.6: with "NMI-window exiting" (which needs "virtual NMIs") a VM exit with reason 8',
        "happens before any guest instruction while there is no virtual-NMI blocking (interruptibility bit 3)",
        'and no blocking by MOV SS; "interrupt-window exiting" (reason 7) while RFLAGS.IF = 1 and no blocking',
        "by STI or MOV SS; at VM entry a VMX-preemption timer of 0 (52) comes first, then the NMI window, then",
        "the interrupt window; in a RUN blocking by STI and MOV SS ends first.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.launchable()
    pin = PIN.true_default1 | PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS")
    proc = PROC.true_default1 | PROC.bit("NMI_WINDOW_EXITING")
    s.vmwrite(PIN.vmcs_field, pin).succeed()
    s.vmwrite(PROC.vmcs_field, proc).succeed()
    s.comment("No virtual-NMI blocking: the NMI window is open at entry.")
    s.vmlaunch().exited(8)
    s.vmread("VM_EXIT_REASON").succeed(8)
    s.vmread("EXIT_QUALIFICATION").succeed(0)
    s.comment("Virtual-NMI blocking: the guest enters; a RUN keeps it blocked; the VMM unblocks and resumes: exit 8.")
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_NMI).succeed()
    s.vmresume().entered()
    s.run(100).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", 0).succeed()
    s.vmresume().exited(8)
    s.comment("Blocking by MOV SS closes the NMI window at entry; the RUN ends it and the window exit follows.")
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_MOV_SS).succeed()
    s.vmresume().entered()
    s.run(1).exited(8)
    s.comment("Both windows open (RFLAGS.IF = 1): the NMI window has priority.")
    s.vmwrite(PROC.vmcs_field, proc | PROC.bit("INTR_WINDOW_EXITING")).succeed()
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", 0).succeed()
    s.vmwrite("GUEST_RFLAGS", RFLAGS.FIXED1 | RFLAGS.IF).succeed()
    s.vmresume().exited(8)
    s.comment("A VMX-preemption timer of 0 comes before both.")
    s.vmwrite(PIN.vmcs_field, pin | PIN.bit("ACTIVATE_PREEMPTION_TIMER")).succeed()
    s.vmwrite("VMX_PREEMPTION_TIMER_VALUE", 0).succeed()
    s.vmresume().exited(52)
    s.comment("Timer running, virtual-NMI blocking: the interrupt window exits (7).")
    s.vmwrite("VMX_PREEMPTION_TIMER_VALUE", 1000).succeed()
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_NMI).succeed()
    s.vmresume().exited(7)
    return s


def vmexit_vmx_instructions() -> Script:
    s = Script(
        "vmexit_vmx_instructions",
        "SDM 25.1.2 and 30.3: in VMX non-root operation every VMX instruction causes a VM exit (VMXON 27, VMXOFF",
        "26, VMPTRLD 21, VMPTRST 22, VMCLEAR 19, VMREAD 23, VMWRITE 25, VMLAUNCH 20, VMRESUME 24, VMCALL 18),",
        "whatever the CPL and the blocking by MOV SS, without doing anything else; SDM 27.2.1 qualification 0",
        "(choice 17: no displacement), 27.2.4 instruction length (3 by default, or the request's), 27.2.5",
        "VMX_INSTRUCTION_INFO 0 (choice 17), 27.3.3 RIP of the instruction and RFLAGS.RF saved as 0. Their #UD",
        "(RFLAGS.VM = 1, compatibility mode; not for VMCALL) comes first (25.1.1) and is an exception: a VM exit",
        "with reason 0 and interruption information 0x80000306 when bit 6 of the exception bitmap is 1, else",
        'delivered in the guest (fault 6). docs/semantics.md "Guest events", choices 16, 17.',
    )
    s.enable_vmx()
    s.enter_vmx()
    ready = launchable_fields()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.write(VMCS_B, REVISION).ok()
    s.vmlaunch().entered()
    for i, (op, keys, reason, info) in enumerate(GUEST_VMX_INSTRUCTIONS):
        length = (None, 4, 15, 1)[i % 4]
        rip = 0x0004_1000 + 0x10 * i
        shown = 3 if length is None else length
        s.comment(
            f"{op.upper()} at RIP {rip:#x} with RF = 1, instruction length {shown}: exit {reason};"
            f" qualification 0{', instruction information 0' if info else ''}; GUEST_RIP {rip:#x}, RFLAGS 0x2."
        )
        s.set("rip", rip).ok()
        s.set("rflags", RFLAGS.RF | RFLAGS.FIXED1).ok()
        s.op(op, **keys, len=length).exited(reason)
        s.vmread("VM_EXIT_REASON").succeed(reason)
        s.vmread("EXIT_QUALIFICATION").succeed(0)
        s.vmread("VM_EXIT_INSTRUCTION_LEN").succeed(shown)
        if info:
            s.vmread("VMX_INSTRUCTION_INFO").succeed(0)
        s.vmread("GUEST_RIP").succeed(rip)
        s.vmread("GUEST_RFLAGS").succeed(RFLAGS.FIXED1)
        s.vmresume().entered()
    s.current = VMCS_A
    s.comment(
        "None of them acted: VMPTRLD did not change the current VMCS, VMCLEAR did not clear it (VMRESUME worked),",
        "VMWRITE did not write EXCEPTION_BITMAP, VMXOFF did not leave VMX operation.",
    )
    s.vmcall().exited(EXIT_VMCALL)
    s.vmptrst().succeed(VMCS_A)
    s.vmread("EXCEPTION_BITMAP").succeed(0)
    s.vmresume().entered()
    s.comment("With 32-bit operands they exit the same way.")
    s.vmread("GUEST_RIP", size=32).exited(EXIT_VMREAD)
    s.vmresume().entered()
    s.vmwrite("GUEST_RIP", 0, size=32).exited(EXIT_VMWRITE)
    s.vmresume().entered()
    s.vmcall().exited(EXIT_VMCALL)

    s.comment(
        "At CPL 3 (the exit comes before the CPL check) and with blocking by MOV SS (26 is a root-operation check)."
    )
    s.vmwrite_all(CPL3_GUEST | {"GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_MOV_SS})
    s.vmresume().entered()
    s.vmxoff().exited(EXIT_VMXOFF)
    s.vmresume().entered()
    s.vmlaunch().exited(EXIT_VMLAUNCH)
    s.vmresume().entered()
    s.vmptrst().exited(EXIT_VMPTRST)
    s.vmwrite_all({name: ready[name] for name in CPL3_GUEST} | {"GUEST_INTERRUPTIBILITY_INFO": 0})

    v86 = v8086_guest()
    s.comment(
        "A virtual-8086 guest: VMCALL exits (18); the other VMX instructions raise #UD first. Exception bitmap",
        "bit 6 = 1: a VM exit, reason 0, interruption information 0x80000306 (hardware exception 6, no error",
        "code), qualification 0, GUEST_RIP the instruction's.",
    )
    s.vmwrite_all(v86 | {"EXCEPTION_BITMAP": 1 << UD})
    s.vmresume().entered()
    for op, keys, _, _ in GUEST_VMX_INSTRUCTIONS:
        if op == "vmcall":
            continue
        s.op(op, **keys).exited(EXIT_EXCEPTION_OR_NMI)
        s.vmread("VM_EXIT_INTR_INFO").succeed(_event(HARDWARE_EXCEPTION, UD))
        s.vmread("EXIT_QUALIFICATION").succeed(0)
        s.vmread("GUEST_RIP").succeed(v86["GUEST_RIP"])
        s.vmresume().entered()
    s.current = VMCS_A
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("VM_EXIT_INTR_INFO").succeed(0)
    s.comment("Exception bitmap bit 6 = 0: the #UD is delivered in the guest (fault 6), no VM exit.")
    s.vmwrite("EXCEPTION_BITMAP", ~(1 << UD) & U32).succeed()
    s.vmresume().entered()
    for op, keys, _, _ in GUEST_VMX_INSTRUCTIONS:
        if op != "vmcall":
            s.op(op, **keys).ud()
    s.current = VMCS_A
    s.vmcall().exited(EXIT_VMCALL)

    s.comment("A compatibility-mode guest (IA-32e mode, CS.L = 0) of a 64-bit host: #UD, VMCALL exits.")
    s.ia32e_mode()
    ready64 = presets.launchable_fields(ia32e=True)
    s.new_vmcs(VMCS_C)
    s.vmwrite_all(ready64 | {"GUEST_CS_AR_BYTES": 0xC09B, "EXCEPTION_BITMAP": 1 << UD})
    s.vmlaunch().entered()
    for op, keys, _, _ in GUEST_VMX_INSTRUCTIONS:
        if op == "vmcall":
            continue
        s.op(op, **keys).exited(EXIT_EXCEPTION_OR_NMI)
        s.vmread("VM_EXIT_INTR_INFO").succeed(_event(HARDWARE_EXCEPTION, UD))
        s.vmresume().entered()
    s.current = VMCS_C
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("The same guest in 64-bit mode (CS.L = 1): the VMX instructions exit.")
    s.vmwrite("GUEST_CS_AR_BYTES", ready64["GUEST_CS_AR_BYTES"]).succeed()
    s.vmresume().entered()
    for op, keys, reason, _ in GUEST_VMX_INSTRUCTIONS:
        s.op(op, **keys).exited(reason)
        s.vmresume().entered()
    s.current = VMCS_C
    s.vmcall().exited(EXIT_VMCALL)
    return s


# ======================================================================================
# Guest events in VMX non-root operation (SDM 25.1-25.3, 25.5.1, 26.7.4-26.7.5, 27.2)
# ======================================================================================

IO_BITMAP_A_ADDR = 0x10000
#: Not right after bitmap A: bitmap A's byte 0x1000 (0x11000) is not bitmap B's byte 0.
IO_BITMAP_B_ADDR = 0x16000
MSR_BITMAP_ADDR = 0x12000
#: The MSR bitmaps (SDM 24.6.9): read low 0-1FFFH at +0, read high C0000000H-C0001FFFH at +400H,
#: write low at +800H, write high at +C00H.
MSR_READ_LOW, MSR_READ_HIGH, MSR_WRITE_LOW, MSR_WRITE_HIGH = 0x000, 0x400, 0x800, 0xC00


def io_qualification(port: int, size: int, direction_in: bool) -> int:
    """SDM table 27-5: size - 1 (2:0), direction (3: 1 = IN), not string, not REP, DX (6 = 0), port (31:16)."""
    return (size - 1) | (8 if direction_in else 0) | port << 16


def cr_qualification(cr: int, mov_from: bool, reg: int) -> int:
    """SDM table 27-3: CR number (3:0), access type (5:4: 0 MOV to CR, 1 MOV from CR), register (11:8)."""
    return cr | (1 << 4 if mov_from else 0) | reg << 8


def msr_bit(s: Script, bitmap: int, msr: int, on: bool) -> None:
    """Set or clear one MSR's bit in one of the four MSR bitmaps (one byte write)."""
    first = 0xC000_0000 if msr >= 0xC000_0000 else 0
    number = msr - first
    s.write(MSR_BITMAP_ADDR + bitmap + number // 8, (1 << number % 8) if on else 0, 1).ok()


def exit_information(
    s: Script,
    reason: int,
    qualification: int | None = 0,
    length: int | None = None,
    interruption: int | None = None,
    error_code: int | None = None,
) -> None:
    """VMREAD the exit information and expect these values (None: not checked)."""
    s.vmread("VM_EXIT_REASON").succeed(reason)
    if qualification is not None:
        s.vmread("EXIT_QUALIFICATION").succeed(qualification)
    if length is not None:
        s.vmread("VM_EXIT_INSTRUCTION_LEN").succeed(length)
    if interruption is not None:
        s.vmread("VM_EXIT_INTR_INFO").succeed(interruption)
    if error_code is not None:
        s.vmread("VM_EXIT_INTR_ERROR_CODE").succeed(error_code)


class Tsc:
    """The replay platform's TSC: the cycles of every RUN since reset (docs/semantics.md "Time")."""

    def __init__(self) -> None:
        self.value = 0

    def run(self, s: Script, cycles: int) -> Script:
        self.value += cycles
        return s.run(cycles)


def _instruction_events(s: Script, ready: dict[str, int], tsc: Tsc) -> None:
    proc = ready[PROC.vmcs_field]
    s.comment("CPUID exits unconditionally (reason 10), qualification 0, length 2 or the request's.")
    s.vmresume().entered()
    s.cpuid(0).exited(EXIT_CPUID)
    exit_information(s, EXIT_CPUID, 0, 2)
    s.vmresume().entered()
    s.cpuid(0x8000_0001, subleaf=3, length=5).exited(EXIT_CPUID)
    exit_information(s, EXIT_CPUID, 0, 5)
    s.vmresume().entered()

    s.comment(
        'RDTSC without "RDTSC exiting": the TSC (the cycles RUN has run since reset), no offset without',
        '"use TSC offsetting" even when TSC_OFFSET is not 0.',
    )
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite("TSC_OFFSET", 0x1000).succeed()
    s.vmresume().entered()
    s.rdtsc().ok(tsc.value)
    tsc.run(s, 50).ok()
    s.rdtsc().ok(tsc.value)
    s.comment('"Use TSC offsetting": RDTSC adds TSC_OFFSET (0x1000, then -0x10 modulo 2^64).')
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite(PROC.vmcs_field, proc | PROC.bit("USE_TSC_OFFSETTING")).succeed()
    s.vmresume().entered()
    s.rdtsc().ok(tsc.value + 0x1000)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("In root operation RDTSC reads the TSC itself.")
    s.rdtsc().ok(tsc.value)
    s.vmwrite("TSC_OFFSET", U64 - 0xF).succeed()
    s.vmresume().entered()
    s.rdtsc().ok(tsc.value - 0x10)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment('"RDTSC exiting": reason 16, length 2.')
    s.vmwrite(PROC.vmcs_field, proc | PROC.bit("RDTSC_EXITING")).succeed()
    s.vmresume().entered()
    s.rdtsc().exited(EXIT_RDTSC)
    exit_information(s, EXIT_RDTSC, 0, 2)
    s.comment("CR4.TSD = 1 at CPL 3: RDTSC raises #GP before any exit; exception bitmap bit 13: exit 0, error code 0.")
    s.vmwrite_all(CPL3_GUEST | {"GUEST_CR4": CR4_VMX | CR4.TSD, "EXCEPTION_BITMAP": 1 << GP})
    s.vmresume().entered()
    s.rdtsc().exited(EXIT_EXCEPTION_OR_NMI)
    exit_information(s, EXIT_EXCEPTION_OR_NMI, 0, None, _event(HARDWARE_EXCEPTION, GP, error_code=True), 0)
    s.comment("HLT at CPL 3: #GP before the HLT-exiting check; with bitmap bit 13 = 0 it is delivered in the guest.")
    s.vmwrite_all({PROC.vmcs_field: proc | PROC.bit("HLT_EXITING"), "EXCEPTION_BITMAP": 0})
    s.vmresume().entered()
    s.hlt().gp()
    s.rdtsc().gp()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite_all({name: ready[name] for name in CPL3_GUEST} | {"GUEST_CR4": CR4_VMX})

    s.comment(
        "\"HLT exiting\": reason 12, length 1 (or the request's); GUEST_RIP is the HLT's, the guest stays active."
    )
    s.vmresume().entered()
    s.set("rip", 0x0004_2000).ok()
    s.hlt().exited(EXIT_HLT)
    exit_information(s, EXIT_HLT, 0, 1)
    s.vmread("GUEST_RIP").succeed(0x0004_2000)
    s.vmread("GUEST_ACTIVITY_STATE").succeed(0)
    s.vmresume().entered()
    s.hlt(length=2).exited(EXIT_HLT)
    s.vmread("VM_EXIT_INSTRUCTION_LEN").succeed(2)
    s.comment(
        'Without "HLT exiting" HLT does not exit: RIP advances past it (length 1) and the activity state is HLT;',
        "an exit from the HLT state (an external interrupt) saves the RIP past the HLT and the HLT state",
        "(choice 24); VMRESUME enters the HLT state again.",
    )
    s.vmwrite_all({PROC.vmcs_field: proc, PIN.vmcs_field: ready[PIN.vmcs_field] | PIN.bit("EXT_INTR_EXITING")})
    s.vmresume().entered()
    s.hlt().ok()
    s.get("rip").ok(0x0004_2001)
    s.get("activity").ok(1)
    s.interrupt(0x30).exited(EXIT_EXTERNAL_INTERRUPT)
    s.vmread("GUEST_RIP").succeed(0x0004_2001)
    s.vmread("GUEST_ACTIVITY_STATE").succeed(1)
    s.vmresume().entered()
    s.get("activity").ok(1)
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite_all({"GUEST_ACTIVITY_STATE": 0, PIN.vmcs_field: ready[PIN.vmcs_field]})
    s.comment(
        "In root operation HLT advances RIP and enters the HLT state too (choice 22); the next exit makes it active."
    )
    s.set("rip", 0x0010_0100).ok()
    s.hlt().ok()
    s.get("rip").ok(0x0010_0101)
    s.get("activity").ok(1)
    s.vmresume().entered()
    s.vmcall().exited(EXIT_VMCALL)
    s.get("activity").ok(0)


def _io_events(s: Script, ready: dict[str, int]) -> None:
    proc = ready[PROC.vmcs_field]
    s.comment(
        'Neither "unconditional I/O exiting" nor "use I/O bitmaps": IN reads all ones (1, 2, 4 bytes), OUT is ok.'
    )
    s.vmresume().entered()
    s.in_(0x60, 1).ok(0xFF)
    s.in_(0x60, 2).ok(0xFFFF)
    s.in_(0x60, 4).ok(U32)
    s.out(0x80, 4, 0x1234_5678).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.comment(
        '"Unconditional I/O exiting": every IN and OUT exits (30); qualification: size - 1, direction (IN 8),',
        "port in bits 31:16; length 1 or the request's.",
    )
    s.vmwrite(PROC.vmcs_field, proc | PROC.bit("UNCOND_IO_EXITING")).succeed()
    for op, port, size, length in (
        ("out", 0x3F8, 1, None),
        ("in", 0x60, 4, None),
        ("in", 0xCFC, 2, 2),
        ("out", 0, 4, 3),
    ):
        s.vmresume().entered()
        if op == "in":
            s.in_(port, size, length).exited(EXIT_IO_INSTRUCTION)
        else:
            s.out(port, size, 0x41, length).exited(EXIT_IO_INSTRUCTION)
        exit_information(s, EXIT_IO_INSTRUCTION, io_qualification(port, size, op == "in"), length or 1)

    s.comment(
        '"Use I/O bitmaps" (with "unconditional I/O exiting" still set: the bitmaps decide): A at 0x10000,',
        "B at 0x16000, all zeros: nothing exits.",
    )
    io = proc | PROC.bit("UNCOND_IO_EXITING") | PROC.bit("USE_IO_BITMAPS")
    s.vmwrite_all({PROC.vmcs_field: io, "IO_BITMAP_A": IO_BITMAP_A_ADDR, "IO_BITMAP_B": IO_BITMAP_B_ADDR})
    s.vmresume().entered()
    s.in_(0x3F8, 1).ok(0xFF)
    s.out(0x8000, 2, 0xBEEF).ok()

    def access(op: str, port: int, size: int, exits: bool) -> None:
        if op == "in":
            s.in_(port, size)
        else:
            s.out(port, size, 0)
        if not exits:
            s.ok((1 << 8 * size) - 1 if op == "in" else None)
            return
        s.exited(EXIT_IO_INSTRUCTION)
        s.vmread("EXIT_QUALIFICATION").succeed(io_qualification(port, size, op == "in"))
        s.vmresume().entered()

    s.comment("Port 0x3f8's bit (bitmap A byte 0x7f, bit 0): an access that touches 0x3f8 exits, others do not.")
    s.write(IO_BITMAP_A_ADDR + 0x7F, 0x01, 1).ok()
    access("out", 0x3F8, 1, True)
    access("out", 0x3F9, 1, False)
    access("in", 0x3F5, 4, True)
    access("in", 0x3F4, 4, False)
    access("in", 0x3F7, 2, True)
    s.write(IO_BITMAP_A_ADDR + 0x7F, 0, 1).ok()
    s.comment("Port 0x7fff's bit (bitmap A byte 0xfff, bit 7).")
    s.write(IO_BITMAP_A_ADDR + 0xFFF, 0x80, 1).ok()
    access("in", 0x7FFF, 1, True)
    access("in", 0x7FFE, 2, True)
    access("in", 0x7FFE, 1, False)
    access("in", 0x8000, 1, False)
    s.write(IO_BITMAP_A_ADDR + 0xFFF, 0, 1).ok()
    s.comment(
        "Port 0x8000's bit is bit 0 of bitmap B, not of bitmap A's byte 0x1000: an access of 0x7fff and 0x8000",
        "spans both bitmaps.",
    )
    s.write(IO_BITMAP_A_ADDR + 0x1000, 0x01, 1).ok()
    access("in", 0x8000, 1, False)
    s.write(IO_BITMAP_B_ADDR, 0x01, 1).ok()
    access("in", 0x8000, 1, True)
    access("in", 0x7FFF, 2, True)
    access("in", 0x7FFF, 1, False)
    access("out", 0x8001, 1, False)
    s.write(IO_BITMAP_B_ADDR, 0, 1).ok()
    s.comment("An access that wraps past port 0xffff exits whatever the bitmaps say (they are all zeros now).")
    access("in", 0xFFFF, 1, False)
    access("in", 0xFFFF, 2, True)
    access("out", 0xFFFD, 4, True)
    access("in", 0xFFFC, 4, False)
    s.comment("Port 0xffff's bit (bitmap B byte 0xfff, bit 7).")
    s.write(IO_BITMAP_B_ADDR + 0xFFF, 0x80, 1).ok()
    access("in", 0xFFFF, 1, True)
    access("out", 0xFFFC, 4, True)
    s.write(IO_BITMAP_B_ADDR + 0xFFF, 0, 1).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite(PROC.vmcs_field, proc).succeed()


def _msr_events(s: Script, ready: dict[str, int]) -> None:
    proc = ready[PROC.vmcs_field]
    s.comment('Without "use MSR bitmaps" every RDMSR (31) and WRMSR (32) exits: qualification 0, length 2.')
    s.vmwrite("GUEST_SYSENTER_CS", 0x10).succeed()
    s.vmresume().entered()
    s.rdmsr(msrs.IA32_SYSENTER_CS).exited(EXIT_RDMSR)
    exit_information(s, EXIT_RDMSR, 0, 2)
    s.vmresume().entered()
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0x23, length=4).exited(EXIT_WRMSR)
    exit_information(s, EXIT_WRMSR, 0, 4)
    s.vmread("GUEST_SYSENTER_CS").succeed(0x10)
    s.comment(
        '"Use MSR bitmaps" with all-zero bitmaps at 0x12000: RDMSR and WRMSR of the MSRs in 0-1FFFH and',
        "C0000000H-C0001FFFH are the guest's own; the others always exit.",
    )
    s.vmwrite_all({PROC.vmcs_field: proc | PROC.bit("USE_MSR_BITMAPS"), "MSR_BITMAP": MSR_BITMAP_ADDR})
    s.vmresume().entered()
    s.rdmsr(msrs.IA32_SYSENTER_CS).ok(0x10)
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0x23).ok()
    s.rdmsr(msrs.IA32_SYSENTER_CS).ok(0x23)
    s.rdmsr(msrs.IA32_EFER).ok(0)
    s.wrmsr(msrs.IA32_EFER, EFER.NXE).ok()
    s.get("efer").ok(EFER.NXE)
    for msr in (0x2000, 0xC000_2000, 0x4000_0000, 0xBFFF_FFFF, U32):
        s.rdmsr(msr).exited(EXIT_RDMSR)
        s.vmresume().entered()
        s.wrmsr(msr, 0).exited(EXIT_WRMSR)
        s.vmresume().entered()
    s.comment("MSRs 1FFFH and C0001FFFH are covered (bit 0): the guest's RDMSR raises #GP (no such MSR), delivered.")
    s.rdmsr(0x1FFF).gp()
    s.rdmsr(0xC000_1FFF).gp()
    s.comment("The exit saves the guest's IA32_SYSENTER_CS written without an exit.")
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("GUEST_SYSENTER_CS").succeed(0x23)
    s.comment("Read bitmap bit of 0x174 (byte 0x2e, bit 4): RDMSR exits, WRMSR (write bitmap bit 0) does not.")
    msr_bit(s, MSR_READ_LOW, msrs.IA32_SYSENTER_CS, True)
    s.vmresume().entered()
    s.rdmsr(msrs.IA32_SYSENTER_CS).exited(EXIT_RDMSR)
    s.vmresume().entered()
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0x24).ok()
    s.comment("Write bitmap bit of 0x174 (+0x800): WRMSR exits too; the neighbour 0x175 does not.")
    msr_bit(s, MSR_WRITE_LOW, msrs.IA32_SYSENTER_CS, True)
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0x25).exited(EXIT_WRMSR)
    s.vmresume().entered()
    s.wrmsr(msrs.IA32_SYSENTER_ESP, 0x1000).ok()
    s.rdmsr(msrs.IA32_SYSENTER_ESP).ok(0x1000)
    s.comment("IA32_EFER (C0000080H): read bit at +0x410 bit 0, write bit at +0xc10 bit 0.")
    msr_bit(s, MSR_READ_HIGH, msrs.IA32_EFER, True)
    s.rdmsr(msrs.IA32_EFER).exited(EXIT_RDMSR)
    s.vmresume().entered()
    s.wrmsr(msrs.IA32_EFER, EFER.NXE | EFER.SCE).ok()
    msr_bit(s, MSR_WRITE_HIGH, msrs.IA32_EFER, True)
    s.wrmsr(msrs.IA32_EFER, EFER.NXE).exited(EXIT_WRMSR)
    s.vmresume().entered()
    s.comment("The last bits of each bitmap: 1FFFH (byte 0x3ff bit 7) and C0001FFFH (+0x7ff bit 7) now exit.")
    msr_bit(s, MSR_READ_LOW, 0x1FFF, True)
    msr_bit(s, MSR_READ_HIGH, 0xC000_1FFF, True)
    s.rdmsr(0x1FFF).exited(EXIT_RDMSR)
    s.vmresume().entered()
    s.rdmsr(0xC000_1FFF).exited(EXIT_RDMSR)
    s.vmresume().entered()
    s.comment("A WRMSR the bitmaps let through that #GPs (IA32_VMX_BASIC is read-only): with bitmap bit 13, exit 0.")
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite("EXCEPTION_BITMAP", 1 << GP).succeed()
    s.vmresume().entered()
    s.wrmsr(msrs.IA32_VMX_BASIC, 0).exited(EXIT_EXCEPTION_OR_NMI)
    exit_information(s, EXIT_EXCEPTION_OR_NMI, 0, None, _event(HARDWARE_EXCEPTION, GP, error_code=True), 0)
    s.comment("At CPL 3 RDMSR and WRMSR raise #GP before any exit, even for MSRs that always exit.")
    s.vmwrite_all(CPL3_GUEST)
    s.vmresume().entered()
    s.rdmsr(0x2000).exited(EXIT_EXCEPTION_OR_NMI)
    s.vmread("VM_EXIT_INTR_INFO").succeed(_event(HARDWARE_EXCEPTION, GP, error_code=True))
    s.vmresume().entered()
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0).exited(EXIT_EXCEPTION_OR_NMI)
    s.vmwrite_all({name: ready[name] for name in CPL3_GUEST} | {"EXCEPTION_BITMAP": 0, PROC.vmcs_field: proc})


def _control_register_events(s: Script, ready: dict[str, int]) -> None:
    proc = ready[PROC.vmcs_field]
    s.comment(
        "CR0 guest/host mask TS and MP (0xa), read shadow TS: GET cr0 reads TS = 1, MP = 0 from the shadow.",
        "A MOV to CR0 whose masked bits equal the shadow's does not exit and leaves them unchanged.",
    )
    s.vmwrite_all({"CR0_GUEST_HOST_MASK": CR0_TS | CR0_MP, "CR0_READ_SHADOW": CR0_TS})
    s.vmresume().entered()
    s.get("cr0").ok(CR0_VMX | CR0_TS)
    s.set("cr0", CR0_VMX | CR0_TS | CR0_WP).ok()
    s.get("cr0").ok(CR0_VMX | CR0_TS | CR0_WP)
    s.comment("TS = 0 differs from the shadow: exit 28, MOV to CR0 from register 3 (qualification 0x300), length 3.")
    s.set("cr0", CR0_VMX, reg=3).exited(EXIT_CR_ACCESS)
    exit_information(s, EXIT_CR_ACCESS, cr_qualification(0, False, 3), 3)
    s.vmread("GUEST_CR0").succeed(CR0_VMX | CR0_WP)
    s.vmresume().entered()
    s.set("cr0", CR0_VMX | CR0_TS | CR0_MP, length=4).exited(EXIT_CR_ACCESS)
    exit_information(s, EXIT_CR_ACCESS, cr_qualification(0, False, 0), 4)
    s.comment(
        "Mask NE with shadow 0: the guest reads NE = 0 and may write it 0; CR0.NE stays 1 (a VMX fixed bit).",
        "Clearing the unmasked PG raises #GP in the guest (fixed bits); with bitmap bit 13 it exits.",
    )
    s.vmwrite_all({"CR0_GUEST_HOST_MASK": CR0.NE, "CR0_READ_SHADOW": 0})
    s.vmresume().entered()
    s.get("cr0").ok(CR0_VMX & ~CR0.NE | CR0_WP)
    s.set("cr0", CR0.PE | CR0.PG).ok()
    s.get("cr0").ok(CR0.PE | CR0.PG)
    s.set("cr0", CR0.PE).gp()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("GUEST_CR0").succeed(CR0_VMX)
    s.vmwrite_all({"CR0_GUEST_HOST_MASK": 0, "EXCEPTION_BITMAP": 1 << GP})
    s.vmresume().entered()
    s.set("cr0", CR0.PE | CR0.NE).exited(EXIT_EXCEPTION_OR_NMI)
    s.vmread("VM_EXIT_INTR_INFO").succeed(_event(HARDWARE_EXCEPTION, GP, error_code=True))
    s.vmwrite("EXCEPTION_BITMAP", 0).succeed()

    s.comment(
        "CR4 mask VMXE, shadow 0: the guest reads VMXE = 0, writes it 0 without an exit (VMXE stays 1);",
        "writing VMXE = 1 exits (qualification: CR 4, register 5).",
    )
    s.vmwrite_all({"CR4_GUEST_HOST_MASK": CR4.VMXE, "CR4_READ_SHADOW": 0})
    s.vmresume().entered()
    s.get("cr4").ok(0)
    s.set("cr4", 0x10).ok()
    s.get("cr4").ok(0x10)
    s.set("cr4", CR4.VMXE | 0x10, reg=5).exited(EXIT_CR_ACCESS)
    exit_information(s, EXIT_CR_ACCESS, cr_qualification(4, False, 5), 3)
    s.vmread("GUEST_CR4").succeed(CR4_VMX | 0x10)
    s.vmwrite_all({"CR4_GUEST_HOST_MASK": 0, "GUEST_CR4": CR4_VMX})

    s.comment('Without "CR3-load exiting" and "CR3-store exiting" MOV to and from CR3 do not exit.')
    s.vmresume().entered()
    s.set("cr3", 0x0007_1000).ok()
    s.get("cr3").ok(0x0007_1000)
    s.set("cr3", 1 << 32).gp()
    s.comment(
        '"CR3-load exiting" with CR3-target count 2 (targets 0x71000, 0x72000; target 2 = 0x73000 is beyond the',
        "count): a MOV to CR3 of a target value does not exit; other values exit (CR 3, register 2: 0x203).",
    )
    s.vmcall().exited(EXIT_VMCALL)
    targets = {"CR3_TARGET_VALUE0": 0x0007_1000, "CR3_TARGET_VALUE1": 0x0007_2000, "CR3_TARGET_VALUE2": 0x0007_3000}
    s.vmwrite_all(targets | {PROC.vmcs_field: proc | PROC.bit("CR3_LOAD_EXITING"), "CR3_TARGET_COUNT": 2})
    s.vmresume().entered()
    s.set("cr3", 0x0007_2000).ok()
    s.get("cr3").ok(0x0007_2000)
    s.set("cr3", 0x0007_1000).ok()
    s.set("cr3", 0x0007_3000, reg=2).exited(EXIT_CR_ACCESS)
    exit_information(s, EXIT_CR_ACCESS, cr_qualification(3, False, 2), 3)
    s.vmread("GUEST_CR3").succeed(0x0007_1000)
    s.comment("CR3-target count 4 with target 3 = 0x74000: no exit; count 0: every MOV to CR3 exits.")
    s.vmwrite_all({"CR3_TARGET_COUNT": 4, "CR3_TARGET_VALUE3": 0x0007_4000})
    s.vmresume().entered()
    s.set("cr3", 0x0007_4000).ok()
    s.set("cr3", 0x0007_3000).ok()
    s.set("cr3", 0x0007_5000).exited(EXIT_CR_ACCESS)
    s.vmwrite("CR3_TARGET_COUNT", 0).succeed()
    s.vmresume().entered()
    s.set("cr3", 0x0007_1000).exited(EXIT_CR_ACCESS)
    s.comment('"CR3-store exiting": MOV from CR3 exits (MOV from CR: qualification 0x713 for register 7), length 3.')
    s.vmwrite(PROC.vmcs_field, proc | PROC.bit("CR3_STORE_EXITING")).succeed()
    s.vmresume().entered()
    s.get("cr3", reg=7).exited(EXIT_CR_ACCESS)
    exit_information(s, EXIT_CR_ACCESS, cr_qualification(3, True, 7), 3)
    s.comment("MOV from CR0 and CR4 never exit; other elements are the guest's own.")
    s.vmresume().entered()
    s.get("cr0").ok(CR0_VMX)
    s.get("cr4").ok(CR4_VMX)
    s.set("rsp", 0x1234).ok()
    s.get("rsp").ok(0x1234)
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite(PROC.vmcs_field, proc).succeed()


def _exception_events(s: Script) -> None:
    bitmap = sum(1 << v for v in (0, BP, OF, DF, GP, 17, MC))
    s.comment(
        f"Exception bitmap {bitmap:#x} (vectors 0, 3, 4, 8, 13, 17, 18): those exceptions exit (reason 0) with",
        "interruption information (type 3, or 6 for #BP and #OF with their instruction length) and error code",
        "(8, 13, 17); the others are delivered in the guest (ok). Hardware exceptions leave the instruction length.",
    )
    s.vmwrite("EXCEPTION_BITMAP", bitmap).succeed()
    s.vmresume().entered()
    s.cpuid(1, length=7).exited(EXIT_CPUID)
    last_length = 7
    for vector, code, length, kind in (
        (0, None, None, HARDWARE_EXCEPTION),
        (BP, None, None, SOFTWARE_EXCEPTION),
        (BP, None, 2, SOFTWARE_EXCEPTION),
        (OF, None, None, SOFTWARE_EXCEPTION),
        (DF, 0, None, HARDWARE_EXCEPTION),
        (GP, 0xFFFF, None, HARDWARE_EXCEPTION),
        (17, 0, None, HARDWARE_EXCEPTION),
        (MC, None, None, HARDWARE_EXCEPTION),
    ):
        s.vmresume().entered()
        s.exception(vector, code, length).exited(EXIT_EXCEPTION_OR_NMI)
        if kind == SOFTWARE_EXCEPTION:
            last_length = length or 1
        info = _event(kind, vector, error_code=code is not None)
        exit_information(s, EXIT_EXCEPTION_OR_NMI, 0, last_length, info, code)
    s.vmresume().entered()
    for vector, code in ((UD, None), (DB, None), (12, 0), (10, 0x18), (PF, 0)):
        s.exception(vector, code).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("In root operation an exception is the processor's own: ok.")
    s.exception(0).ok()
    s.exception(GP, 0).ok()

    pf = "PAGE_FAULT_ERROR_CODE"
    for pf_bit, mask, match, exits, stays in (
        (1, 0x1, 0x1, (0x3, 0x1), (0x2, 0x0)),
        (0, 0x1, 0x1, (0x2, 0x0), (0x3, 0x1)),
        (1, 0x0, 0x0, (0x1F, U32), ()),
        (1, 0x0, 0x1, (), (0x1, 0x0)),
        (0, 0x0, 0x1, (0x1, 0x1F), ()),
        (1, 0xF, 0x5, (0x5, 0xF5), (0x7, 0x4)),
    ):
        s.comment(
            f"#PF with exception bitmap bit 14 = {pf_bit}, PFEC mask {mask:#x}, match {match:#x}: exits when"
            f" (error code & mask) {'=' if pf_bit else '!='} match."
        )
        s.vmwrite_all({"EXCEPTION_BITMAP": pf_bit << PF, f"{pf}_MASK": mask, f"{pf}_MATCH": match})
        s.vmresume().entered()
        for code in stays:
            s.exception(PF, code).ok()
        for code in exits:
            # The qualification of a #PF exit is the faulting linear address (27.2.1), which the request has not.
            s.exception(PF, code).exited(EXIT_EXCEPTION_OR_NMI)
            exit_information(
                s, EXIT_EXCEPTION_OR_NMI, None, None, _event(HARDWARE_EXCEPTION, PF, error_code=True), code
            )
            s.vmresume().entered()
        s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite_all({"EXCEPTION_BITMAP": 0, f"{pf}_MASK": 0, f"{pf}_MATCH": 0})


def _interrupt_and_nmi_events(s: Script, ready: dict[str, int], tsc: Tsc) -> None:
    pin = ready[PIN.vmcs_field]
    exit_ = ready[EXIT.vmcs_field]
    sti, mov_ss = INTERRUPTIBILITY.BLOCKING_BY_STI, INTERRUPTIBILITY.BLOCKING_BY_MOV_SS
    s.comment('Without "external-interrupt exiting" and "NMI exiting", interrupts and NMIs do not exit.')
    s.vmresume().entered()
    s.interrupt(0x20).ok()
    s.nmi().ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.comment(
        '"External-interrupt exiting": an interrupt exits (1) whatever RFLAGS.IF (0 here); without "acknowledge',
        'interrupt on exit" the interruption information is 0; with it, valid, type 0, the vector.',
    )
    s.vmwrite(PIN.vmcs_field, pin | PIN.bit("EXT_INTR_EXITING")).succeed()
    s.vmresume().entered()
    s.interrupt(0x20).exited(EXIT_EXTERNAL_INTERRUPT)
    exit_information(s, EXIT_EXTERNAL_INTERRUPT, 0, None, 0)
    s.vmwrite(EXIT.vmcs_field, exit_ | EXIT.bit("ACK_INTR_ON_EXIT")).succeed()
    s.vmresume().entered()
    s.interrupt(0xEF).exited(EXIT_EXTERNAL_INTERRUPT)
    exit_information(s, EXIT_EXTERNAL_INTERRUPT, 0, None, _event(EXTERNAL_INTERRUPT, 0xEF))
    s.comment(
        "Blocking by STI (RFLAGS.IF = 1) or by MOV SS holds the interrupt (ok); a RUN of at least one cycle ends",
        "the blocking, then the interrupt exits. RUN 0 does not end it.",
    )
    for blocking, rflags in ((sti, 0x202), (mov_ss, 0x2)):
        s.vmwrite_all({"GUEST_INTERRUPTIBILITY_INFO": blocking, "GUEST_RFLAGS": rflags})
        s.vmresume().entered()
        s.interrupt(0x21).ok()
        tsc.run(s, 0).ok()
        s.interrupt(0x21).ok()
        tsc.run(s, 1).ok()
        s.get("interruptibility").ok(0)
        s.interrupt(0x21).exited(EXIT_EXTERNAL_INTERRUPT)
    s.vmwrite_all({PIN.vmcs_field: pin | PIN.bit("NMI_EXITING"), EXIT.vmcs_field: exit_, "GUEST_RFLAGS": 0x2})
    s.comment(
        '"NMI exiting": an NMI exits (0) with interruption information 0x80000202 (vector 2, type NMI); the host',
        'then has NMIs blocked. Blocking by NMI or by MOV SS holds it (without "virtual NMIs"); blocking by STI',
        "does not.",
    )
    s.vmresume().entered()
    s.nmi().exited(EXIT_EXCEPTION_OR_NMI)
    exit_information(s, EXIT_EXCEPTION_OR_NMI, 0, None, _event(NMI, 2))
    s.get("interruptibility").ok(INTERRUPTIBILITY.BLOCKING_BY_NMI)
    for blocking, exits in ((INTERRUPTIBILITY.BLOCKING_BY_NMI, False), (mov_ss, False), (sti, True)):
        s.vmwrite_all({"GUEST_INTERRUPTIBILITY_INFO": blocking, "GUEST_RFLAGS": 0x202})
        s.vmresume().entered()
        if exits:
            s.nmi().exited(EXIT_EXCEPTION_OR_NMI)
        else:
            s.nmi().ok()
            s.vmcall().exited(EXIT_VMCALL)
    s.comment(
        '"Virtual NMIs": bit 3 of the interruptibility is virtual-NMI blocking, which does not block NMIs',
        "(26.6.1): the NMI exits; it is saved as it was (27.3.4). Blocking by MOV SS still holds the NMI.",
    )
    virtual = pin | PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS")
    s.vmwrite_all({PIN.vmcs_field: virtual, "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_NMI})
    s.vmresume().entered()
    s.nmi().exited(EXIT_EXCEPTION_OR_NMI)
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(INTERRUPTIBILITY.BLOCKING_BY_NMI)
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", mov_ss).succeed()
    s.vmresume().entered()
    s.nmi().ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("In root operation interrupts and NMIs are the processor's own: ok.")
    s.interrupt(0x20).ok()
    s.nmi().ok()
    s.vmwrite_all({PIN.vmcs_field: pin, "GUEST_INTERRUPTIBILITY_INFO": 0, "GUEST_RFLAGS": 0x2})


def _window_and_timer_events(s: Script, ready: dict[str, int], tsc: Tsc) -> None:
    proc, pin, exit_ = ready[PROC.vmcs_field], ready[PIN.vmcs_field], ready[EXIT.vmcs_field]
    window = proc | PROC.bit("INTR_WINDOW_EXITING")
    s.comment(
        '"Interrupt-window exiting" with RFLAGS.IF = 1 and no blocking: the VM entry exits at once (7) before',
        "the guest's first instruction; qualification 0, GUEST_RIP the entry's.",
    )
    s.vmwrite_all({PROC.vmcs_field: window, "GUEST_RFLAGS": 0x202, "GUEST_RIP": 0x0004_3000})
    s.vmresume().exited(EXIT_INTERRUPT_WINDOW)
    exit_information(s, EXIT_INTERRUPT_WINDOW, 0)
    s.vmread("GUEST_RIP").succeed(0x0004_3000)
    s.comment(
        "IF = 0: entered; setting IF does not exit by itself (the window is checked at VM entry and at the",
        "start of RUN, choice 23); RUN 0 exits.",
    )
    s.vmwrite("GUEST_RFLAGS", 0x2).succeed()
    s.vmresume().entered()
    s.set("rflags", 0x202).ok()
    tsc.run(s, 0).exited(EXIT_INTERRUPT_WINDOW)
    s.comment("Blocking by STI at entry: entered; RUN 0 keeps the blocking; RUN 10 ends it and exits.")
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_STI).succeed()
    s.vmresume().entered()
    tsc.run(s, 0).ok()
    tsc.run(s, 10).exited(EXIT_INTERRUPT_WINDOW)
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(0)
    s.comment("A guest in the HLT state with IF = 1: the window exit saves the HLT state and the RIP past the HLT.")
    s.vmwrite(PROC.vmcs_field, proc).succeed()
    s.vmresume().entered()
    s.set("rip", 0x0004_4000).ok()
    s.hlt().ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite(PROC.vmcs_field, window).succeed()
    s.vmresume().exited(EXIT_INTERRUPT_WINDOW)
    s.vmread("GUEST_ACTIVITY_STATE").succeed(1)
    s.vmread("GUEST_RIP").succeed(0x0004_4001)
    s.vmwrite_all({PROC.vmcs_field: proc, "GUEST_ACTIVITY_STATE": 0, "GUEST_RFLAGS": 0x2})

    rate = 5
    s.comment(
        f"The VMX-preemption timer counts down each time TSC bit {rate} changes (IA32_VMX_MISC bits 4:0 = {rate})."
    )
    s.rdmsr(msrs.IA32_VMX_MISC).ok(msrs.IA32_VMX_MISC_VALUE)
    timer = pin | PIN.bit("ACTIVATE_PREEMPTION_TIMER")
    s.comment(
        '"Activate VMX-preemption timer" with the value 0: the VM entry exits at once (52), before an open',
        "interrupt window would (26.7.4 before 26.7.5).",
    )
    s.vmwrite_all({PIN.vmcs_field: timer, "VMX_PREEMPTION_TIMER_VALUE": 0})
    s.vmresume().exited(EXIT_PREEMPTION_TIMER)
    exit_information(s, EXIT_PREEMPTION_TIMER, 0)
    s.vmwrite_all({PROC.vmcs_field: window, "GUEST_RFLAGS": 0x202})
    s.vmresume().exited(EXIT_PREEMPTION_TIMER)
    s.vmwrite_all({PROC.vmcs_field: proc, "GUEST_RFLAGS": 0x2})

    align = -tsc.value % 32
    s.comment(f"RUN {align} in root operation: the TSC ({tsc.value + align:#x}) is a multiple of 32.")
    tsc.run(s, align).ok()
    save = exit_ | EXIT.bit("SAVE_VMX_PREEMPTION_TIMER")
    s.comment(
        'Timer 3 with "save VMX-preemption timer value": RUN 31 does not change TSC bit 5 (3 left); RUN 1 does',
        "(2 left); the VMCALL exit saves 2; VMRESUME loads 2; RUN 64 ticks twice: exit 52, the value saved is 0.",
    )
    s.vmwrite_all({EXIT.vmcs_field: save, "VMX_PREEMPTION_TIMER_VALUE": 3})
    s.vmresume().entered()
    tsc.run(s, 31).ok()
    tsc.run(s, 1).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("VMX_PREEMPTION_TIMER_VALUE").succeed(2)
    s.vmresume().entered()
    s.rdtsc().ok(tsc.value)
    tsc.run(s, 64).exited(EXIT_PREEMPTION_TIMER)
    s.vmread("VMX_PREEMPTION_TIMER_VALUE").succeed(0)
    s.comment("Without the save control the field keeps its value (5) although the timer counted (RUN 40: one tick).")
    s.vmwrite_all({EXIT.vmcs_field: exit_, "VMX_PREEMPTION_TIMER_VALUE": 5})
    s.vmresume().entered()
    tsc.run(s, 40).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.vmread("VMX_PREEMPTION_TIMER_VALUE").succeed(5)
    s.comment(
        f"The timer counts TSC bit 5 changes, not 32 cycles from the entry: the TSC is now {tsc.value:#x}"
        f" ({tsc.value % 32} past a multiple of 32); timer 1: RUN {31 - tsc.value % 32} does not tick, RUN 1 does."
    )
    s.vmwrite("VMX_PREEMPTION_TIMER_VALUE", 1).succeed()
    s.vmresume().entered()
    tsc.run(s, 31 - tsc.value % 32).ok()
    tsc.run(s, 1).exited(EXIT_PREEMPTION_TIMER)
    s.comment("A guest in the HLT state: the timer counts, its exit saves the HLT state and the RIP past the HLT.")
    s.vmwrite_all({"VMX_PREEMPTION_TIMER_VALUE": 2, "GUEST_RIP": 0x0004_5000})
    s.vmresume().entered()
    s.hlt().ok()
    tsc.run(s, 32).ok()
    tsc.run(s, 32).exited(EXIT_PREEMPTION_TIMER)
    s.vmread("GUEST_ACTIVITY_STATE").succeed(1)
    s.vmread("GUEST_RIP").succeed(0x0004_5001)
    s.comment("In root operation RUN advances the TSC only.")
    tsc.run(s, 100).ok()
    s.rdtsc().ok(tsc.value)
    s.vmwrite_all({PIN.vmcs_field: pin, "GUEST_ACTIVITY_STATE": 0})
    s.comment(
        "A VMLAUNCH that exits before the guest's first instruction (timer 0) completed the VM entry: the",
        "VMCS is launched (VMLAUNCH fails with 4, VMRESUME enters and exits again).",
    )
    s.new_vmcs(VMCS_B)
    s.launchable()
    s.vmwrite_all({PIN.vmcs_field: timer, "VMX_PREEMPTION_TIMER_VALUE": 0})
    s.vmlaunch().exited(EXIT_PREEMPTION_TIMER)
    s.vmlaunch().fail_valid(4)
    s.vmresume().exited(EXIT_PREEMPTION_TIMER)


def guest_events() -> Script:
    s = Script(
        "guest_events",
        "SDM 25.1.2-25.1.3 (CPUID; HLT, RDTSC, IN/OUT with 24.6.4 I/O bitmaps, RDMSR/WRMSR with 24.6.9 MSR bitmaps,",
        "MOV to/from CR0/CR3/CR4 with 24.6.6 guest/host masks, read shadows, CR3 targets), 25.1.1 (#GP for CPL > 0",
        "before the exit), 25.2 (exceptions with 24.6.3 the exception bitmap and #PF error-code mask/match,",
        "external interrupts with acknowledge-on-exit, NMIs, the VMX-preemption timer 25.5.1), 25.3 (TSC",
        "offsetting, CR0/CR4 read shadows), 26.6.1 (virtual-NMI blocking does not block NMIs), 26.7.4-26.7.5",
        "(exits before the first instruction), 27.2 (exit qualification tables 27-3 and 27-5, interruption",
        'information, instruction length), 27.3.4 (the HLT state saved, choice 24); REPLAY.md "Guest events",',
        'docs/semantics.md "Guest events", choices 22-24.',
        "Each event exits exactly when its controls say so and is the guest's own otherwise.",
    )
    tsc = Tsc()
    s.comment("Outside VMX operation the events are the processor's: RDTSC 0, RUN 100, RDTSC 100; IN all ones.")
    s.rdtsc().ok(0)
    tsc.run(s, 100).ok()
    s.rdtsc().ok(tsc.value)
    s.in_(0x60, 2).ok(0xFFFF)
    s.out(0x60, 1, 0).ok()
    s.cpuid(0).ok()
    s.enable_vmx()
    s.enter_vmx()
    ready = launchable_fields()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.vmlaunch().entered()
    s.vmcall().exited(EXIT_VMCALL)
    _instruction_events(s, ready, tsc)
    _io_events(s, ready)
    _msr_events(s, ready)
    _control_register_events(s, ready)
    _exception_events(s)
    _interrupt_and_nmi_events(s, ready, tsc)
    _window_and_timer_events(s, ready, tsc)
    return s


def rsm_outside_smm() -> Script:
    s = Script(
        "rsm_outside_smm",
        'SDM vol. 2B RSM ("#UD if the processor is not in SMM"), 25.2 and 24.6.3 (an exception of a guest',
        'exits when its bit of the exception bitmap is 1), shared/vmx/REPLAY.md "SMM": RSM outside SMM is #UD',
        "whatever the mode and the CPL; in VMX non-root operation that #UD is the guest's exception: delivered",
        "(fault 6) with bit 6 of the exception bitmap clear, a VM exit (reason 0, a hardware exception) with it set.",
    )
    s.comment("Outside VMX operation, at CPL 0 and CPL 3: #UD.")
    s.op("rsm").ud()
    s.cpl(3)
    s.op("rsm").ud()
    s.cpl(0)
    s.enable_vmx()
    s.enter_vmx()
    s.comment("In VMX root operation, at CPL 0 and CPL 3 (#UD, not the VMX instructions' #GP): #UD.")
    s.op("rsm").ud()
    s.cpl(3)
    s.op("rsm").ud()
    s.cpl(0)
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.vmlaunch().entered()
    s.comment("In a guest with bit 6 of the exception bitmap clear: the guest's own #UD.")
    s.op("rsm").ud()
    s.op("rsm", len=2).ud()
    s.comment("With bit 6 set: a VM exit, reason 0, interruption information valid, hardware exception, vector 6.")
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite("EXCEPTION_BITMAP", 1 << UD).succeed()
    s.vmresume().entered()
    s.op("rsm").exited(EXIT_EXCEPTION_OR_NMI)
    exit_information(s, EXIT_EXCEPTION_OR_NMI, 0, None, _event(HARDWARE_EXCEPTION, UD))
    return s


# ======================================================================================
# SMM under the default treatment (SDM 34.3-34.5, 34.10, 34.11, 34.14; vol. 2B RSM)
# ======================================================================================

SMBASE_RESET = 0x30000
SMM_REVISION = 0x20064
SMBASE_RELOCATED = 0x50000
SMI_ENTRY_STATE = {
    "rip": 0x8000,
    "rflags": 0x2,
    "cs.selector": SMBASE_RESET >> 4,
    "cs.base": SMBASE_RESET,
    "cs.limit": 0xFFFF_FFFF,
    "ds.selector": 0,
    "ds.base": 0,
    "ds.limit": 0xFFFF_FFFF,
    "ss.selector": 0,
    "cr4": 0,
    "dr7": 0x400,
    "efer": 0,
    "interruptibility": 0xC,
    "activity": 0,
    "smm": 1,
}


def _distinct_state(s: Script) -> dict[str, int]:
    """Elements set to values SMI delivery changes, so the map and RSM can be checked against them."""
    values = {
        "rip": 0x1234,
        "rsp": 0xFEDC_BA98_7654,
        "rflags": 0x202,
        "cr3": 0x7000,
        "dr7": 0x4FF,
        "ds.selector": 0x2B,
        "ds.base": 0x12_3400,
        "es.limit": 0xABCD,
        "gdtr.base": 0x1_2345_6780,
        "pat": 0x0006_0406_0007_0406,
        "sysenter_eip": 0xCAFE,
    }
    s.comment("Distinct values in the elements the map saves.")
    for name, value in values.items():
        s.set(name, value).ok()
    return values


def smi_delivery() -> Script:
    s = Script(
        "smi_delivery",
        "SDM 34.3.1 (an SMI saves the state to SMRAM and enters SMM), 34.4.1 table 34-3 (the Intel 64 state-save",
        "map: SMBASE field at SMBASE + FEF8H, SMM revision identifier at FEFCH with bit 17 = SMBASE relocation,",
        "CR0 FFF8H, CR3 FFF0H, RFLAGS FFE8H, RIP FFD8H, DR7 FFC8H, DS selector FFB4H, RSP FF7CH, GDTR base FE8CH",
        "and FDD0H, CR4 FE40H), table 34-4 (CS.selector = SMBASE >> 4, CS.base = SMBASE, EIP = 8000H, EFLAGS =",
        "2, CR0.PE/EM/TS/PG = 0 and the other bits kept, CR4 = 0, DR7 = 400H, data segments base 0 limit 4 GB),",
        "34.3.1 and 34.8 (SMIs and NMIs blocked in SMM), 34.11 (SMBASE resets to 30000H), A.6 and vol. 4",
        '(IA32_SMBASE readable in SMM); shared/vmx/REPLAY.md "SMM".',
    )
    s.comment("SMBASE after reset; not in SMM; IA32_SMBASE is readable only in SMM.")
    s.get("smbase").ok(SMBASE_RESET)
    s.get("smm").ok(0)
    s.rdmsr(msrs.IA32_SMBASE).gp()
    values = _distinct_state(s)
    s.set("cr0", 0x6000_003B).ok()  # CD, NW, NE, TS, MP, PE... with EM (bit 2) clear
    s.comment("The SMI: delivered (ok), the processor in SMM at SMBASE + 8000H.")
    s.smi().ok()
    for name, value in SMI_ENTRY_STATE.items():
        s.get(name).ok(value)
    s.comment("CR0: PE and TS cleared, the other bits kept (table 34-4).")
    s.get("cr0").ok(0x6000_0032)
    s.rdmsr(msrs.IA32_SMBASE).ok(SMBASE_RESET)
    s.comment("The map at SMBASE + 8000H + 7xxxH (table 34-3).")
    base = SMBASE_RESET
    s.read(base + 0xFEF8).ok(SMBASE_RESET)
    s.read(base + 0xFEFC).ok(SMM_REVISION)
    s.read(base + 0xFFF8).ok(0x6000_003B)
    s.read(base + 0xFFF0).ok(values["cr3"])
    s.read(base + 0xFFE8).ok(values["rflags"])
    s.read(base + 0xFFD8).ok(values["rip"])
    s.read(base + 0xFFC8).ok(values["dr7"])
    s.read(base + 0xFFB4).ok(values["ds.selector"])
    s.read(base + 0xFF7C, 8).ok(values["rsp"])
    s.read(base + 0xFE8C).ok(values["gdtr.base"] & 0xFFFF_FFFF)
    s.read(base + 0xFDD0).ok(values["gdtr.base"] >> 32)
    s.read(base + 0xFE40, 8).ok(0)
    s.comment("The auto HALT restart field (FF02H) is 0: the SMI did not interrupt HLT; no I/O SMI: IO_SMI = 0.")
    s.read(base + 0xFF00).ok(0)
    s.read(base + 0xFFA4).ok(0)
    s.rsm().ok()
    s.comment(
        "An I/O SMI (OUT DX, a byte, port B2H): the I/O state field (table 34-5) holds the port in 31:16, the type",
        "in 7:4 (OUT DX 0000, table 34-6), the length in 3:1 (001), IO_SMI in bit 0; IN DX of a doubleword: 0001, 100.",
    )
    s.smi({"port": 0xB2, "size": 1, "in": False}).ok()
    s.read(base + 0xFFA4).ok(0x00B2_0003)
    s.rsm().ok()
    s.smi({"port": 0xCF8, "size": 4, "in": True}).ok()
    s.read(base + 0xFFA4).ok(0x0CF8_0019)
    return s


def rsm_restores() -> Script:
    s = Script(
        "rsm_restores",
        "SDM vol. 2B RSM and 34.14.2 (RSM restores the state from the map and leaves SMM; SMIs unblocked), 34.10",
        "(auto HALT restart: an SMI in the HLT state sets bit 0 of the field at FF02H and RSM returns to HLT if",
        "it is still 1), 34.11 (SMBASE relocation: RSM loads SMBASE from the field at FEF8H, the next SMI uses",
        'it), 34.14.3 (CR4.VMXE is reserved in SMM: #GP); shared/vmx/REPLAY.md "SMM".',
    )
    values = _distinct_state(s)
    s.set("interruptibility", 0x8).ok()
    s.smi().ok()
    s.comment("The handler changes the state; setting CR4.VMXE in SMM is #GP (34.14.3).")
    s.set("rip", 0x8123).ok()
    s.set("ds.base", 0x9000).ok()
    s.set("cr4", 0x2000).gp()
    s.set("cr4", 0x20).ok()
    s.comment("RSM: every element back as the SMI found it; SMIs unblocked, NMI blocking kept.")
    s.rsm().ok()
    s.get("smm").ok(0)
    for name, value in values.items():
        s.get(name).ok(value)
    s.get("cr4").ok(0)
    s.get("interruptibility").ok(0x8)
    s.comment("SMBASE relocation: the handler writes the SMBASE field; RSM loads it.")
    s.set("interruptibility", 0).ok()
    s.smi().ok()
    s.write(SMBASE_RESET + 0xFEF8, SMBASE_RELOCATED).ok()
    s.get("smbase").ok(SMBASE_RESET)
    s.rsm().ok()
    s.get("smbase").ok(SMBASE_RELOCATED)
    s.comment("The next SMI saves at the new SMBASE and enters with CS.base = SMBASE.")
    s.smi().ok()
    s.get("cs.base").ok(SMBASE_RELOCATED)
    s.get("cs.selector").ok(SMBASE_RELOCATED >> 4)
    s.read(SMBASE_RELOCATED + 0xFEF8).ok(SMBASE_RELOCATED)
    s.read(SMBASE_RELOCATED + 0xFFD8).ok(values["rip"])
    s.rsm().ok()
    s.comment("Auto HALT restart: an SMI in the HLT state; RSM returns to it, or not when the handler clears it.")
    s.hlt().ok()
    s.get("activity").ok(1)
    s.smi().ok()
    s.get("activity").ok(0)
    s.read(SMBASE_RELOCATED + 0xFF00).ok(1 << 16)
    s.rsm().ok()
    s.get("activity").ok(1)
    s.smi().ok()
    s.write(SMBASE_RELOCATED + 0xFF00, 0).ok()
    s.rsm().ok()
    s.get("activity").ok(0)
    s.comment("RSM outside SMM: #UD.")
    s.rsm().ud()
    return s


def smi_pending() -> Script:
    s = Script(
        "smi_pending",
        'SDM 34.3.1 (SMIs are blocked in SMM) and shared/vmx/REPLAY.md "SMM": an SMI in SMM is held pending',
        "(ok with pending; one is kept) and delivered as soon as RSM completes, at the SMBASE RSM loaded.",
    )
    s.set("rip", 0x4444).ok()
    s.smi().ok()
    s.comment("Two SMIs in SMM: held, one kept (the first, an I/O SMI, with its I/O state); nothing changes.")
    s.smi({"port": 0xB2, "size": 1, "in": False}).pending()
    s.smi().pending()
    s.get("rip").ok(0x8000)
    s.write(SMBASE_RESET + 0xFEF8, SMBASE_RELOCATED).ok()
    s.comment("RSM: the held SMI is delivered at once, at the relocated SMBASE, saving the state RSM restored.")
    s.rsm().ok()
    s.get("smm").ok(1)
    s.get("cs.base").ok(SMBASE_RELOCATED)
    s.read(SMBASE_RELOCATED + 0xFFD8).ok(0x4444)
    s.read(SMBASE_RELOCATED + 0xFFA4).ok(0x00B2_0003)
    s.comment("One was kept: the next RSM leaves SMM.")
    s.rsm().ok()
    s.get("smm").ok(0)
    s.get("rip").ok(0x4444)
    s.get("smbase").ok(SMBASE_RELOCATED)
    return s


def smm_default_treatment() -> Script:
    s = Script(
        "smm_default_treatment",
        "SDM 34.14.1 (an SMI in VMX operation saves CR4.VMXE, VMX operation, root or non-root, the current-VMCS",
        "pointer and the VMX-critical state inside the processor, leaves VMX operation, clears CR4.VMXE, then",
        "saves the state: the CR4 image has VMXE = 0), 34.14.2 (RSM re-enters VMX operation as it was, CR0 and",
        "CR4 with the VMX fixed bits, the VMX-critical state as saved: SS.DPL, RFLAGS.VM, blocking by STI and MOV",
        "SS), 34.14.3 (CR4.VMXE reserved in SMM); vol. 3C 30.3 (VMX instructions #UD with CR4.VMXE = 0).",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.comment("An SMI in VMX root operation: VMX operation is left (VMPTRST and VMXON #UD: CR4.VMXE = 0).")
    s.smi().ok()
    s.get("cr4").ok(0)
    s.read(SMBASE_RESET + 0xFE40).ok(0)
    s.vmptrst().ud()
    s.vmxon(VMXON_REGION).ud()
    s.set("cr4", CR4_VMX).gp()
    s.comment("The handler clears CR0.PE and PG in the image and edits SS.DPL (the VMX-critical state).")
    s.write(SMBASE_RESET + 0xFFF8, 0x20).ok()
    s.write(SMBASE_RESET + 0xFC2C, SS_AR_CPL0 | (3 << AR.DPL_SHIFT)).ok()
    s.rsm().ok()
    s.comment("Back in VMX root operation with the same current VMCS; CR0 with its fixed bits, CR4.VMXE = 1.")
    s.vmptrst().succeed(VMCS_A)
    s.get("cr0").ok(CR0_VMX)
    s.get("cr4").ok(CR4_VMX)
    s.get("ss.ar").ok(SS_AR_CPL0)
    s.comment(
        'An SMI in a guest with "virtual NMIs": RSM returns to the guest (a CPUID exits); virtual-NMI blocking is',
        "VMX-critical state there (34.14.1 item 4): the handler's bit 3 in the map's interruptibility is ignored.",
    )
    s.launchable()
    s.vmwrite(PIN.vmcs_field, PIN.true_default1 | PIN.bit("NMI_EXITING") | PIN.bit("VIRTUAL_NMIS")).succeed()
    s.vmlaunch().entered()
    s.smi().ok()
    s.cpuid(0).ok()
    s.write(SMBASE_RESET + 0xFCB8, 0x8).ok()
    s.rsm().ok()
    s.get("interruptibility").ok(0)
    s.cpuid(0).exited(EXIT_CPUID)
    s.comment("A CR4 image with VMXE = 1: RSM shuts the processor down (34.14.2).")
    s.smi().ok()
    s.write(SMBASE_RESET + 0xFE40, CR4_VMX).ok()
    s.rsm().shutdown(0)
    s.get("rip").shutdown(0)
    return s


def _rsm_shutdown(name: str, rule: str, offset: int, image: int) -> Script:
    s = Script(
        name,
        f"SDM vol. 2B RSM: invalid state information in the map shuts the processor down ({rule}); REPLAY.md",
        '"shutdown": every later operation answers shutdown (abort 0: not a VMX abort).',
    )
    s.smi().ok()
    s.write(SMBASE_RESET + offset, image).ok()
    s.rsm().shutdown(0)
    s.get("smm").shutdown(0)
    s.smi().shutdown(0)
    return s


def rsm_shutdown_cr4_reserved() -> Script:
    return _rsm_shutdown("rsm_shutdown_cr4_reserved", "a reserved CR4 bit, here 12", 0xFE40, 1 << 12)


def rsm_shutdown_cr0_pg_without_pe() -> Script:
    return _rsm_shutdown("rsm_shutdown_cr0_pg_without_pe", "CR0.PG = 1 with PE = 0", 0xFFF8, 0x8000_0000)


def rsm_shutdown_cr0_nw_without_cd() -> Script:
    return _rsm_shutdown("rsm_shutdown_cr0_nw_without_cd", "CR0.NW = 1 with CD = 0", 0xFFF8, 0x2000_0011)


def rsm_shutdown_cr0_high() -> Script:
    return _rsm_shutdown("rsm_shutdown_cr0_high", "CR0 bits 63:32 reserved", 0xFFFC, 1)


def smm_msrs() -> Script:
    s = Script(
        "smm_msrs",
        "SDM appendix A.6 (IA32_SMBASE, MSR 9EH, readable in SMM when IA32_VMX_MISC bit 15 = 1), 34.15.5",
        "(IA32_SMM_MONITOR_CTL, MSR 9BH: writable only in SMM; bit 0 valid, bits 31:12 MSEG base, bit 2 only",
        "with IA32_VMX_MISC bit 28 (0 here), the others reserved: #GP), 34.11 (no instruction writes SMBASE:",
        'WRMSR of 9EH and a set of smbase #GP); shared/vmx/REPLAY.md "SMM".',
    )
    s.rdmsr(msrs.IA32_SMBASE).gp()
    s.wrmsr(msrs.IA32_SMBASE, 0x40000).gp()
    s.set("smbase", 0x40000).gp()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 1).gp()
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(0)
    s.smi().ok()
    s.rdmsr(msrs.IA32_SMBASE).ok(SMBASE_RESET)
    s.wrmsr(msrs.IA32_SMBASE, 0x40000).gp()
    s.set("smbase", 0x40000).gp()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 0x10_0001).ok()
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(0x10_0001)
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 0x10_0003).gp()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 0x10_0005).gp()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 1 << 32).gp()
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(0x10_0001)
    s.rsm().ok()
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(0x10_0001)
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, 0).gp()
    s.rdmsr(msrs.IA32_SMBASE).gp()
    s.comment(
        "With IA32_SMM_MONITOR_CTL.valid, VMCALL in root starts the dual-monitor activation's checks (34.15.6.1):",
        "a new VMCS's VM-exit controls are 0, outside their capability: 20.",
    )
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.vmcall().fail_valid(20)
    s.comment(
        "SDM 27.4: a VM-exit MSR-store list stores IA32_SMM_MONITOR_CTL as RDMSR reads it (the value SMM wrote).",
    )
    s.launchable()
    msr_list(s, EXIT_STORE_LIST, [(msrs.IA32_SMM_MONITOR_CTL, 0)])
    s.vmwrite("VM_EXIT_MSR_STORE_ADDR", EXIT_STORE_LIST).succeed()
    s.vmwrite("VM_EXIT_MSR_STORE_COUNT", 1).succeed()
    s.vmlaunch().entered()
    s.vmcall().exited(EXIT_VMCALL)
    s.read(EXIT_STORE_LIST + 8, 8).ok(0x10_0001)
    return s


# ======================================================================================
# MSR lists (SDM 26.4, 27.4, 27.6) and VMX aborts (SDM 27.7)
# ======================================================================================

ENTRY_LOAD_LIST = 0x13000
EXIT_STORE_LIST = 0x14000
EXIT_LOAD_LIST = 0x15000
IA32_TSC = 0x10
X2APIC_TPR = 0x808


def msr_entry(s: Script, base: int, number: int, msr: int, data: int = 0, reserved: int = 0) -> None:
    """Entry ``number`` (from 1) of an MSR list: MSR index in bits 31:0, ``reserved`` in bits 63:32, then the data."""
    addr = base + 16 * (number - 1)
    s.write(addr, reserved << 32 | msr, 8).ok()
    s.write(addr + 8, data, 8).ok()


def msr_list(s: Script, base: int, entries: list[tuple[int, int] | tuple[int, int, int]]) -> None:
    for number, entry in enumerate(entries, start=1):
        msr_entry(s, base, number, *entry)


def msr_lists() -> Script:
    s = Script(
        "msr_lists",
        "SDM 26.4 (the VM-entry MSR-load list, after the guest state: each entry a WRMSR at CPL 0; an entry fails",
        "for bits 63:32 of its first quadword set, IA32_FS_BASE, IA32_GS_BASE, 800H-8FFH, IA32_SMM_MONITOR_CTL, or",
        "a WRMSR that would #GP: VM-entry failure, exit reason 0x80000022, EXIT_QUALIFICATION the entry's number",
        "from 1, the entries before it loaded), 26.8 (the failure loads the host state and the VM-exit MSR-load",
        "list, not the store list), 27.4 (the VM-exit MSR-store list writes the guest's values to memory), 27.6",
        '(the VM-exit MSR-load list, after the host state); docs/semantics.md "VM entry" 3, "VM exit" 3 and 5,',
        "choices 15 and 19 (no change of EFER.LMA through a list; entry 513 fails).",
    )
    s.enable_vmx()
    s.enter_vmx()
    ready = launchable_fields()
    proc = ready[PROC.vmcs_field] | PROC.bit("USE_MSR_BITMAPS")
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.comment("All-zero MSR bitmaps, so that the guest's RDMSR reads its own MSRs; IA32_SYSENTER_CS field 5.")
    s.vmwrite_all({PROC.vmcs_field: proc, "MSR_BITMAP": MSR_BITMAP_ADDR, "GUEST_SYSENTER_CS": 5})
    s.comment(
        "A VM-entry MSR-load list of 7 entries at 0x13000: IA32_SYSENTER_CS (0x10, then 0x20: the last wins over",
        "the field and the first), SYSENTER_ESP, PAT, DEBUGCTL, PERF_GLOBAL_CTRL, EFER (SCE, NXE; LMA unchanged).",
    )
    entries = [
        (msrs.IA32_SYSENTER_CS, 0x10),
        (msrs.IA32_SYSENTER_ESP, CANONICAL_HIGH_BOTTOM | 0x800),
        (msrs.IA32_PAT, 0x0001_0001_0001_0001),
        (msrs.IA32_DEBUGCTL, 0x1),
        (msrs.IA32_PERF_GLOBAL_CTRL, 0x7_0000_0000),
        (msrs.IA32_EFER, EFER.SCE | EFER.NXE),
        (msrs.IA32_SYSENTER_CS, 0x20),
    ]
    msr_list(s, ENTRY_LOAD_LIST, entries)
    s.vmwrite_all({"VM_ENTRY_MSR_LOAD_COUNT": len(entries), "VM_ENTRY_MSR_LOAD_ADDR": ENTRY_LOAD_LIST})
    s.vmlaunch().entered()
    s.rdmsr(msrs.IA32_SYSENTER_CS).ok(0x20)
    s.rdmsr(msrs.IA32_SYSENTER_ESP).ok(CANONICAL_HIGH_BOTTOM | 0x800)
    s.rdmsr(msrs.IA32_PAT).ok(0x0001_0001_0001_0001)
    s.get("debugctl").ok(0x1)
    s.rdmsr(msrs.IA32_PERF_GLOBAL_CTRL).ok(0x7_0000_0000)
    s.get("efer").ok(EFER.SCE | EFER.NXE)
    s.vmcall().exited(EXIT_VMCALL)
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()

    def failing(text: str, bad: tuple[int, ...], number: int = 2, pat: int = 0x0606_0606_0606_0606) -> None:
        """Entries 1..number-1 load PAT (and SYSENTER_CS), entry ``number`` is ``bad``."""
        s.comment(
            f"Entry {number}: {text}. VM-entry failure 0x80000022, qualification {number}; the host state is loaded",
            f"(RIP = HOST_RIP) but PAT keeps what entry 1 loaded ({pat:#x}: no exit control loads it, choice 15);",
            "the launch state stays clear (VMRESUME 5).",
        )
        msr_entry(s, ENTRY_LOAD_LIST, 1, msrs.IA32_PAT, pat)
        for n in range(2, number):
            msr_entry(s, ENTRY_LOAD_LIST, n, msrs.IA32_SYSENTER_CS, 0x30 + n)
        msr_entry(s, ENTRY_LOAD_LIST, number, *bad)
        s.vmwrite("VM_ENTRY_MSR_LOAD_COUNT", number).succeed()
        s.set("rip", ROOT_RIP).ok()
        s.vmlaunch().entry_failed(MSR_LOADING_FAILURE)
        s.vmread("VM_EXIT_REASON").succeed(MSR_LOADING_FAILURE)
        s.vmread("EXIT_QUALIFICATION").succeed(number)
        s.get("rip").ok(ready["HOST_RIP"])
        s.get("pat").ok(pat)
        s.vmresume().fail_valid(5)

    failing(
        "IA32_SYSENTER_CS with bit 32 of the first quadword set (bits 63:32 reserved)", (msrs.IA32_SYSENTER_CS, 0, 1)
    )
    failing(
        "IA32_SYSENTER_CS with bit 63 of the first quadword set",
        (msrs.IA32_SYSENTER_CS, 0, 1 << 31),
        pat=0x0505_0505_0505_0505,
    )
    failing(
        "IA32_FS_BASE (C0000100H) may not be loaded from a list", (msrs.IA32_FS_BASE, 0x1000), pat=0x0404_0404_0404_0404
    )
    failing("IA32_GS_BASE (C0000101H)", (msrs.IA32_GS_BASE, 0x1000), pat=0x0101_0101_0101_0101)
    failing("800H, the first x2APIC MSR", (0x800, 0), pat=0x0000_0000_0000_0000)
    failing("808H (x2APIC TPR)", (X2APIC_TPR, 0), pat=0x0606_0606_0606_0606)
    failing("8FFH, the last x2APIC MSR", (0x8FF, 0), pat=0x0707_0707_0707_0707)
    failing(
        "IA32_SMM_MONITOR_CTL (9BH), writable only in SMM", (msrs.IA32_SMM_MONITOR_CTL, 0), pat=0x0505_0505_0505_0505
    )
    failing("IA32_SMBASE (9EH): WRMSR would #GP", (msrs.IA32_SMBASE, 0x4_0000), pat=0x0404_0404_0404_0404)
    failing("IA32_TSC (10H), an MSR this processor does not have: #GP", (IA32_TSC, 0), pat=0x0101_0101_0101_0101)
    failing("IA32_VMX_BASIC (480H), read-only: #GP", (msrs.IA32_VMX_BASIC, 0), pat=0x0606_0606_0606_0606)
    failing(
        "IA32_FEATURE_CONTROL (3AH), locked: #GP",
        (msrs.IA32_FEATURE_CONTROL, FEATURE_CONTROL_ON),
        pat=0x0707_0707_0707_0707,
    )
    failing(
        "IA32_PAT with memory type 2 in byte 0: #GP", (msrs.IA32_PAT, 0x0606_0606_0606_0602), pat=0x0505_0505_0505_0505
    )
    failing("IA32_EFER with reserved bit 1: #GP", (msrs.IA32_EFER, 1 << 1), pat=0x0404_0404_0404_0404)
    failing(
        "IA32_EFER with LMA = 1: a list may not change EFER.LMA (choice 19)",
        (msrs.IA32_EFER, EFER_IA32E),
        pat=0x0101_0101_0101_0101,
    )
    failing("IA32_SYSENTER_EIP not canonical: #GP", (msrs.IA32_SYSENTER_EIP, NOT_CANONICAL), pat=0x0606_0606_0606_0606)
    failing("IA32_DEBUGCTL with reserved bit 2: #GP", (msrs.IA32_DEBUGCTL, 1 << 2), pat=0x0707_0707_0707_0707)
    failing(
        "IA32_PERF_GLOBAL_CTRL with reserved bit 2: #GP",
        (msrs.IA32_PERF_GLOBAL_CTRL, 1 << 2),
        4,
        pat=0x0505_0505_0505_0505,
    )

    s.comment(
        "A list of 513 entries, each IA32_SYSENTER_CS = 0 (entries 1-7 written whole, the data of the others",
        "never written): IA32_VMX_MISC bits 27:25 = 0 allow 512; entry 513 fails (choice 19) whatever it holds;",
        "512 entries load.",
    )
    for n in range(1, 8):
        msr_entry(s, ENTRY_LOAD_LIST, n, msrs.IA32_SYSENTER_CS, 0)
    for n in range(8, 514):
        s.write(ENTRY_LOAD_LIST + 16 * (n - 1), msrs.IA32_SYSENTER_CS, 8).ok()
    s.vmwrite("VM_ENTRY_MSR_LOAD_COUNT", 513).succeed()
    s.vmlaunch().entry_failed(MSR_LOADING_FAILURE)
    s.vmread("EXIT_QUALIFICATION").succeed(513)
    s.vmwrite("VM_ENTRY_MSR_LOAD_COUNT", 512).succeed()
    s.vmlaunch().entered()
    s.rdmsr(msrs.IA32_SYSENTER_CS).ok(0)
    s.vmcall().exited(EXIT_VMCALL)
    s.vmclear(VMCS_A).succeed()
    s.vmptrld(VMCS_A).succeed()

    s.comment(
        'A reason-34 failure comes after the guest state was loaded (choice 15): with "load IA32_PAT" the guest\'s',
        "PAT stays; NMI blocking is what it was before the entry (the guest field had it); VM_ENTRY_INTR_INFO_FIELD",
        "keeps its valid bit; the VM-exit MSR-store list is not processed (its data keeps 0xdead), the",
        "VM-exit MSR-load list is (PERF_GLOBAL_CTRL 0x3 from it).",
    )
    gp = _event(HARDWARE_EXCEPTION, GP, error_code=True)
    msr_entry(s, ENTRY_LOAD_LIST, 1, msrs.IA32_FS_BASE, 0)
    msr_entry(s, EXIT_STORE_LIST, 1, msrs.IA32_SYSENTER_CS, 0xDEAD)
    msr_entry(s, EXIT_LOAD_LIST, 1, msrs.IA32_PERF_GLOBAL_CTRL, 0x3)
    entry = ready[ENTRY.vmcs_field] | ENTRY.bit("LOAD_IA32_PAT")
    s.vmwrite_all(
        {
            ENTRY.vmcs_field: entry,
            "GUEST_IA32_PAT": 0x0006_0006_0006_0006,
            "GUEST_INTERRUPTIBILITY_INFO": INTERRUPTIBILITY.BLOCKING_BY_NMI,
            "VM_ENTRY_INTR_INFO_FIELD": gp,
            "VM_ENTRY_MSR_LOAD_COUNT": 1,
            "VM_EXIT_MSR_STORE_COUNT": 1,
            "VM_EXIT_MSR_STORE_ADDR": EXIT_STORE_LIST,
            "VM_EXIT_MSR_LOAD_COUNT": 1,
            "VM_EXIT_MSR_LOAD_ADDR": EXIT_LOAD_LIST,
        }
    )
    s.set("perf_global_ctrl", 0x1).ok()
    s.vmlaunch().entry_failed(MSR_LOADING_FAILURE)
    s.vmread("EXIT_QUALIFICATION").succeed(1)
    s.get("pat").ok(0x0006_0006_0006_0006)
    s.get("interruptibility").ok(0)
    s.vmread("VM_ENTRY_INTR_INFO_FIELD").succeed(gp)
    s.read(EXIT_STORE_LIST + 8, 8).ok(0xDEAD)
    s.get("perf_global_ctrl").ok(0x3)
    s.comment("A reason-33 failure processes the VM-exit MSR-load list too (PERF_GLOBAL_CTRL 0x3 again).")
    s.set("perf_global_ctrl", 0x1).ok()
    s.vmwrite("GUEST_CR4", 0).succeed()
    s.vmlaunch().entry_failed(GUEST_STATE_FAILURE)
    s.get("perf_global_ctrl").ok(0x3)
    s.read(EXIT_STORE_LIST + 8, 8).ok(0xDEAD)
    s.vmwrite_all(
        {
            "GUEST_CR4": CR4_VMX,
            ENTRY.vmcs_field: ready[ENTRY.vmcs_field],
            "GUEST_INTERRUPTIBILITY_INFO": 0,
            "VM_ENTRY_INTR_INFO_FIELD": 0,
            "VM_ENTRY_MSR_LOAD_COUNT": 0,
        }
    )

    s.comment(
        "The VM-exit MSR-store list (4 entries at 0x14000): IA32_SYSENTER_CS, PAT, EFER, FS_BASE of the guest,",
        "written to each entry's data at the exit (before the host state: the host's SYSENTER_CS is 0); the",
        "guest changed SYSENTER_CS with WRMSR (no exit: all-zero MSR bitmaps). The indexes stay.",
    )
    store = [
        (msrs.IA32_SYSENTER_CS, 0xDEAD),
        (msrs.IA32_PAT, 0xDEAD),
        (msrs.IA32_EFER, 0xDEAD),
        (msrs.IA32_FS_BASE, 0xDEAD),
    ]
    msr_list(s, EXIT_STORE_LIST, store)
    s.vmwrite_all(
        {
            "VM_EXIT_MSR_STORE_COUNT": len(store),
            "GUEST_FS_BASE": 0x0000_7000_0000_2000,
            ENTRY.vmcs_field: ready[ENTRY.vmcs_field] | ENTRY.bit("LOAD_IA32_PAT"),
            "GUEST_IA32_PAT": 0x0007_0007_0007_0007,
            "VM_EXIT_MSR_LOAD_COUNT": 0,
        }
    )
    s.set("efer", EFER.NXE).ok()
    s.vmlaunch().entered()
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0x44).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.read(EXIT_STORE_LIST + 8, 8).ok(0x44)
    s.read(EXIT_STORE_LIST + 24, 8).ok(0x0007_0007_0007_0007)
    s.read(EXIT_STORE_LIST + 40, 8).ok(EFER.NXE)
    s.read(EXIT_STORE_LIST + 56, 8).ok(0x0000_7000_0000_2000)
    s.read(EXIT_STORE_LIST, 8).ok(msrs.IA32_SYSENTER_CS)
    s.read(EXIT_STORE_LIST + 48, 8).ok(msrs.IA32_FS_BASE)
    s.get("sysenter_cs").ok(0)

    s.comment(
        "The VM-exit MSR-load list (3 entries at 0x15000), processed after the host state: IA32_SYSENTER_CS 0x77",
        "(over HOST_IA32_SYSENTER_CS 0), PAT, EFER NXE (LMA stays 0: a 32-bit host).",
    )
    load = [
        (msrs.IA32_SYSENTER_CS, 0x77),
        (msrs.IA32_PAT, 0x0400_0400_0400_0400),
        (msrs.IA32_EFER, EFER.NXE),
    ]
    msr_list(s, EXIT_LOAD_LIST, load)
    s.vmwrite_all({"VM_EXIT_MSR_STORE_COUNT": 0, "VM_EXIT_MSR_LOAD_COUNT": len(load)})
    s.set("efer", EFER.SCE).ok()
    s.vmresume().entered()
    s.vmcall().exited(EXIT_VMCALL)
    s.get("sysenter_cs").ok(0x77)
    s.get("pat").ok(0x0400_0400_0400_0400)
    s.get("efer").ok(EFER.NXE)
    return s


def _vmx_abort(name: str, rules: tuple[str, ...], kind: str, entries: list[tuple[int, ...]], abort: int) -> Script:
    """A VMCALL exit (or, for ``kind`` "entry failure", a VM-entry failure) whose MSR list fails: VMX abort."""
    s = Script(name, *rules)
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.launchable()
    base = EXIT_STORE_LIST if kind == "store" else EXIT_LOAD_LIST
    s.comment(f"The VM-exit MSR-{'store' if kind == 'store' else 'load'} list at {base:#x}: {len(entries)} entries.")
    msr_list(s, base, entries)
    if kind == "store":
        s.vmwrite_all({"VM_EXIT_MSR_STORE_COUNT": len(entries), "VM_EXIT_MSR_STORE_ADDR": base})
    else:
        s.vmwrite_all({"VM_EXIT_MSR_LOAD_COUNT": len(entries), "VM_EXIT_MSR_LOAD_ADDR": base})
    s.vmwrite("GUEST_SYSENTER_CS", 0x42).succeed()
    if kind == "entry failure":
        s.comment("A VM-entry failure (GUEST_CR4 without VMXE) loads the host state, then the list: abort.")
        s.vmwrite("GUEST_CR4", 0).succeed()
        s.vmlaunch().shutdown(abort)
    else:
        s.vmlaunch().entered()
        s.comment("The VMCALL exit fails on the list: a VMX abort, the processor shuts down.")
        s.vmcall().shutdown(abort)
    s.comment(
        "The indicator is at offset 4 of the current VMCS's region; the revision identifier is still at 0; the",
        "on-die cache is not written back (HOST_RIP, written by VMWRITE, still reads 0 in the region).",
    )
    s.read(VMCS_A + 4).ok(abort)
    s.read(VMCS_A).ok(REVISION)
    s.read(field_word_addr(VMCS_A, "HOST_RIP"), 8).ok(0)
    if kind == "store":
        s.comment("The entries before the failing one were stored (the guest's IA32_SYSENTER_CS 0x42).")
        s.read(base + 8, 8).ok(0x42)
    s.comment("Every later processor operation reports shutdown with the indicator; memory still answers.")
    s.vmread("GUEST_RIP").shutdown(abort)
    s.vmwrite("GUEST_RIP", 0).shutdown(abort)
    s.vmresume().shutdown(abort)
    s.vmlaunch().shutdown(abort)
    s.vmcall().shutdown(abort)
    s.vmptrst().shutdown(abort)
    s.vmclear(VMCS_A).shutdown(abort)
    s.vmxoff().shutdown(abort)
    s.vmxon(VMXON_REGION).shutdown(abort)
    s.get("rip").shutdown(abort)
    s.set("rip", 0).shutdown(abort)
    s.rdmsr(msrs.IA32_VMX_BASIC).shutdown(abort)
    s.wrmsr(msrs.IA32_SYSENTER_CS, 0).shutdown(abort)
    s.cpuid(0).shutdown(abort)
    s.rdtsc().shutdown(abort)
    s.hlt().shutdown(abort)
    s.in_(0x60, 1).shutdown(abort)
    s.out(0x60, 1, 0).shutdown(abort)
    s.exception(UD).shutdown(abort)
    s.interrupt(0x20).shutdown(abort)
    s.nmi().shutdown(abort)
    s.run(10).shutdown(abort)
    s.write(0x100, 0x1234).ok()
    s.read(0x100).ok(0x1234)
    s.read(VMCS_A + 4).ok(abort)
    return s


_ABORT_RULES = (
    "SDM 27.7 (VMX aborts): a failure while storing the guest's MSRs (27.4, indicator 1) or loading the host's",
    "(27.6, indicator 4) is a VMX abort: the indicator goes to offset 4 of the current VMCS region and the",
    'processor shuts down; docs/semantics.md "VM exit" 3, 5 and "VMX abort": this and every later processor',
    "operation report shutdown with the indicator; memory reads and writes still work.",
)


def vmx_abort_msr_store_x2apic() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_store_x2apic",
        (*_ABORT_RULES, "Here: VM-exit MSR-store entry 2 is 808H (x2APIC, 27.4): abort 1."),
        "store",
        [(msrs.IA32_SYSENTER_CS, 0), (X2APIC_TPR, 0)],
        1,
    )


def vmx_abort_msr_store_smbase() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_store_smbase",
        (*_ABORT_RULES, "Here: VM-exit MSR-store entry 2 is IA32_SMBASE (9EH, 27.4): abort 1."),
        "store",
        [(msrs.IA32_SYSENTER_CS, 0), (msrs.IA32_SMBASE, 0)],
        1,
    )


def vmx_abort_msr_store_reserved() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_store_reserved",
        (*_ABORT_RULES, "Here: VM-exit MSR-store entry 2 has bit 32 of its first quadword set (27.4): abort 1."),
        "store",
        [(msrs.IA32_SYSENTER_CS, 0), (msrs.IA32_PAT, 0, 1)],
        1,
    )


def vmx_abort_msr_store_unknown() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_store_unknown",
        (*_ABORT_RULES, "Here: VM-exit MSR-store entry 2 is IA32_TSC (10H), which RDMSR would #GP on here: abort 1."),
        "store",
        [(msrs.IA32_SYSENTER_CS, 0), (IA32_TSC, 0)],
        1,
    )


def vmx_abort_msr_load_fs_base() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_load_fs_base",
        (*_ABORT_RULES, "Here: VM-exit MSR-load entry 2 is IA32_FS_BASE (27.6): abort 4."),
        "load",
        [(msrs.IA32_SYSENTER_CS, 0x10), (msrs.IA32_FS_BASE, 0)],
        4,
    )


def vmx_abort_msr_load_efer_lma() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_load_efer_lma",
        (*_ABORT_RULES, "Here: VM-exit MSR-load entry 1 sets EFER.LMA for a 32-bit host (choice 19): abort 4."),
        "load",
        [(msrs.IA32_EFER, EFER_IA32E)],
        4,
    )


def vmx_abort_msr_load_after_entry_failure() -> Script:
    return _vmx_abort(
        "vmx_abort_msr_load_after_entry_failure",
        (
            *_ABORT_RULES,
            "Here: a VM-entry failure (26.8) processes the VM-exit MSR-load list, whose entry 1 is IA32_PAT with",
            "memory type 2 (WRMSR would #GP): abort 4 instead of entry_failed.",
        ),
        "entry failure",
        [(msrs.IA32_PAT, 0x0606_0606_0606_0602)],
        4,
    )


# ======================================================================================
# The dual-monitor treatment (SDM 34.15): the unit built with it, VmxUnit(dual_monitor=True)
# ======================================================================================

MSEG = 0x80000
#: The MSEG header's fields (table 34-10) the activation vectors write: the CS selector's bits 2:0 and the
#: CR3 offset's bits 11:5 and 2:0 are set to show that the activation clears them.
MSEG_HEADER = {
    "revision": msrs.MSEG_REVISION_ID,
    "features": 0,
    "gdtr_limit": 0x2F,
    "gdtr_base_offset": 0x100,
    "cs_selector": 0x0B,
    "eip_offset": 0x1000,
    "esp_offset": 0x3000,
    "cr3_offset": 0x4FFF,
}
MONITOR_CTL_VALID = 1
#: The executive monitor's state before the activation (CR0 with CD and NW, CR4 with MCE, PGE, OSFXSR).
EXECUTIVE_CR0 = CR0_VMX | CR0.CD | CR0.NW
EXECUTIVE_CR4 = CR4_VMX | CR4.MCE | CR4.PGE | CR4.OSFXSR


def write_mseg(s: Script, **changes: int) -> Script:
    header = MSEG_HEADER | changes
    for i, value in enumerate(header.values()):
        s.write(MSEG + 4 * i, value).ok()
    return s


def dual_monitor_ready(s: Script, *, features: int = 0) -> Script:
    """Firmware writes the MSEG header and, in SMM, IA32_SMM_MONITOR_CTL := MSEG | valid; the executive
    monitor enters VMX operation with a VMCS whose VM-exit controls are valid (VMCS_A, current)."""
    s.comment("Firmware: the MSEG header; in SMM (the default treatment) IA32_SMM_MONITOR_CTL := MSEG | valid.")
    write_mseg(s, features=features)
    s.smi().ok()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, MSEG | MONITOR_CTL_VALID).ok()
    s.rsm().ok()
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    return s.launchable()


def smm_guest(s: Script, region: int) -> Script:
    """The legacy SMM handler's VMCS, current: launchable, "entry to SMM", SMI blocking in its interruptibility."""
    s.new_vmcs(region)
    s.launchable()
    s.vmwrite("VM_ENTRY_CONTROLS", ENTRY.true_default1 | ENTRY.bit("SMM")).succeed()
    return s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_SMI).succeed()


def _stm_state(*, ia32e: bool) -> dict[str, int]:
    """What 34.15.6.6 loads from the MSEG_HEADER above, for an executive monitor in EXECUTIVE_CR0/CR4."""
    cs = MSEG_HEADER["cs_selector"] & ~7
    state = {
        "cr0": CR0.PG | CR0.NE | CR0.ET | CR0.MP | CR0.PE | CR0.CD | CR0.NW,
        "cr3": (MSEG + MSEG_HEADER["cr3_offset"]) & ~0xFE7,
        "cr4": (EXECUTIVE_CR4 & ~(CR4.MCE | CR4.PGE)) | (CR4.PAE if ia32e else CR4.PSE),
        "dr7": 0x400,
        "debugctl": 0,
        "efer": EFER_IA32E if ia32e else 0,
        "cs.selector": cs,
        "cs.base": 0,
        "cs.limit": U32,
        "cs.ar": HOST_CS_AR | (AR.L if ia32e else AR.DB),
        "gdtr.base": MSEG + MSEG_HEADER["gdtr_base_offset"],
        "gdtr.limit": MSEG_HEADER["gdtr_limit"],
        "idtr.base": 0xA000,
        "idtr.limit": 0,
        "ldtr.selector": 0,
        "ldtr.ar": AR.UNUSABLE,
        "rip": MSEG + MSEG_HEADER["eip_offset"],
        "rsp": MSEG + MSEG_HEADER["esp_offset"],
        "rflags": RFLAGS.FIXED1,
        "activity": 0,
        "interruptibility": INTERRUPTIBILITY.BLOCKING_BY_SMI | INTERRUPTIBILITY.BLOCKING_BY_NMI,
        "smm": 1,
    }
    for seg in ("ss", "ds", "es", "fs", "gs"):
        state |= {f"{seg}.selector": cs + 8, f"{seg}.base": 0, f"{seg}.limit": U32, f"{seg}.ar": HOST_DATA_AR}
    return state


def _activation(name: str, *, ia32e: bool) -> Script:
    mode = "an IA-32e-mode STM (features bit 0 = 1)" if ia32e else "a 32-bit STM (features 0)"
    s = Script(
        name,
        "SDM 34.15.6 (activating the dual-monitor treatment by VMCALL in VMX root operation outside SMM: the",
        "SMM VM exit of 34.15.6.3-5, reason 18 with exit-reason bit 29, EXECUTIVE_VMCS_POINTER = the VMXON",
        "pointer, the executive monitor's state and GUEST_SMBASE saved, no MSR list; the STM's state from the",
        f"MSEG header, 34.15.6.6), with {mode}; SDM 30.3 VMXOFF (error 23), 34.15.3 (RSM #UD, VMCALL",
        "VMfail(1) in SMM), 34.14.3 (CR4.VMXE is not reserved in the STM); 34.15.5 (IA32_VMX_BASIC bit 49).",
    )
    s.rdmsr(msrs.IA32_VMX_BASIC).ok(VMX_BASIC_READ)
    dual_monitor_ready(s, features=1 if ia32e else 0)
    s.comment("The executive monitor's state, distinct where 34.15.6.6 keeps, clears or sets bits.")
    s.set("cr0", EXECUTIVE_CR0).ok()
    s.set("cr4", EXECUTIVE_CR4).ok()
    if ia32e:
        s.ia32e_mode()
    s.set("rip", 0x500).ok()
    s.set("rsp", 0x7000).ok()
    s.set("idtr.base", 0xA000).ok()
    s.set("idtr.limit", 0xFF).ok()
    s.set("ldtr.selector", 0x28).ok()
    s.comment("VMCALL activates the treatment: an SMM VM exit to the STM (reason 18).")
    s.vmcall().exited(EXIT_VMCALL)
    for name_, value in _stm_state(ia32e=ia32e).items():
        s.get(name_).ok(value)
    s.comment("The current VMCS is the SMM-transfer VMCS: the exit information and the executive monitor's state.")
    s.vmptrst().succeed(VMCS_A)
    s.vmread("VM_EXIT_REASON").succeed(EXIT_VMCALL | 1 << 29)
    s.vmread("EXIT_QUALIFICATION").succeed(0)
    s.vmread("VM_EXIT_INSTRUCTION_LEN").succeed(3)
    s.vmread("EXECUTIVE_VMCS_POINTER").succeed(VMXON_REGION)
    s.vmread("GUEST_SMBASE").succeed(SMBASE_RESET)
    s.vmread("GUEST_RIP").succeed(0x500)
    s.vmread("GUEST_RSP").succeed(0x7000)
    s.vmread("GUEST_CR0").succeed(EXECUTIVE_CR0)
    s.vmread("GUEST_CR4").succeed(EXECUTIVE_CR4)
    s.vmread("GUEST_IDTR_LIMIT").succeed(0xFF)
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(0)
    s.comment("In the STM (SMM, VMX root): VMXOFF fails (23), RSM is #UD, VMCALL is VMfail(1), SMIs are held.")
    s.vmxoff().fail_valid(23)
    s.rsm().ud()
    s.vmcall().fail_valid(1)
    s.smi().pending()
    s.rdmsr(msrs.IA32_SMBASE).ok(SMBASE_RESET)
    s.set("cr4", _stm_state(ia32e=ia32e)["cr4"] | CR4.VMXE).ok()
    s.get("cr4").ok(_stm_state(ia32e=ia32e)["cr4"] | CR4.VMXE)
    return s


def dual_monitor_activation() -> Script:
    return _activation("dual_monitor_activation", ia32e=False)


def dual_monitor_activation_ia32e() -> Script:
    return _activation("dual_monitor_activation_ia32e", ia32e=True)


def dual_monitor_activation_checks() -> Script:
    s = Script(
        "dual_monitor_activation_checks",
        "SDM 30.3 VMCALL in VMX root operation (its order: VMfail(1) with IA32_SMM_MONITOR_CTL.valid = 0, then",
        "VMfailInvalid without a current VMCS, VMfailValid 19 for a launched VMCS, 20 for VM-exit controls",
        "outside their capability or a bad VM-exit MSR-store address, 22 for an MSEG revision identifier that",
        "is not IA32_VMX_MISC[63:32], 24 for bad SMM-monitor features), 34.15.6.1-2: a failed VMCALL changes",
        "nothing, and the treatment stays inactive (VMXOFF succeeds at the end).",
    )
    write_mseg(s)
    s.enable_vmx()
    s.enter_vmx()
    s.new_vmcs(VMCS_A)
    s.launchable()
    s.comment("30.3: IA32_SMM_MONITOR_CTL.valid = 0: VMfail(1).")
    s.vmcall().fail_valid(1)
    s.comment("Firmware sets IA32_SMM_MONITOR_CTL in SMM.")
    s.smi().ok()
    s.wrmsr(msrs.IA32_SMM_MONITOR_CTL, MSEG | MONITOR_CTL_VALID).ok()
    s.rsm().ok()
    s.comment("No current VMCS: VMfailInvalid.")
    s.vmclear(VMCS_A).succeed()
    s.vmcall().fail_invalid()
    s.comment("34.15.6.1: a launched current VMCS: 19.")
    s.launched_vmcs(VMCS_B)
    s.vmcall().fail_valid(19)
    s.comment("34.15.6.1: VM-exit controls outside IA32_VMX_TRUE_EXIT_CTLS (a new VMCS has 0): 20.")
    s.new_vmcs(VMCS_C)
    s.vmcall().fail_valid(20)
    s.launchable()
    s.comment("34.15.6.1: a VM-exit MSR-store list not 16-byte aligned, or ending beyond MAXPHYADDR: 20.")
    s.vmwrite("VM_EXIT_MSR_STORE_COUNT", 1).succeed()
    s.vmwrite("VM_EXIT_MSR_STORE_ADDR", 0x14008).succeed()
    s.vmcall().fail_valid(20)
    s.vmwrite("VM_EXIT_MSR_STORE_ADDR", 0xFFFF_FFF0).succeed()
    s.vmwrite("VM_EXIT_MSR_STORE_COUNT", 2).succeed()
    s.vmcall().fail_valid(20)
    s.vmwrite("VM_EXIT_MSR_STORE_COUNT", 0).succeed()
    s.comment("34.15.6.2: the MSEG revision identifier is not IA32_VMX_MISC[63:32]: 22.")
    s.write(MSEG, msrs.MSEG_REVISION_ID + 1).ok()
    s.vmcall().fail_valid(22)
    s.write(MSEG, msrs.MSEG_REVISION_ID).ok()
    s.comment("34.15.6.2: SMM-monitor features with a reserved bit (31:1), or bit 0 = 0 in 64-bit mode: 24.")
    s.write(MSEG + 4, 2).ok()
    s.vmcall().fail_valid(24)
    s.write(MSEG + 4, 0).ok()
    s.ia32e_mode()
    s.vmcall().fail_valid(24)
    s.legacy_mode()
    s.comment("Nothing changed: the VMCS is current, the error field holds 24, SMM was not entered.")
    s.vmptrst().succeed(VMCS_C)
    s.vmread("VM_INSTRUCTION_ERROR").succeed(24)
    s.get("smm").ok(0)
    s.vmxoff().succeed()
    return s


def dual_monitor_return_to_root() -> Script:
    s = Script(
        "dual_monitor_return_to_root",
        'SDM 34.15.4 (a VM entry in SMM with "entry to SMM" = 0 returns from SMM: EXECUTIVE_VMCS_POINTER a good',
        'address with the revision identifier, else 16; with "deactivate dual-monitor treatment" it must be',
        "the VMXON pointer, else 18; a return to VMX root operation injects nothing, else 7; SMBASE :=",
        "GUEST_SMBASE; the SMM-transfer VMCS := the current VMCS, the current VMCS := the VMCS link pointer,",
        "none when it is all ones; SMM left, `entered`), 34.15.2 (SMM VM exits from VMX root operation: VMCALL",
        "18, SMI 6, I/O SMI 5 with the I/O qualification and IO_RIP; exit-reason bit 29; the SMM-transfer VMCS",
        "made current), 34.15.7 (deactivation: the default treatment again, VMXOFF allowed).",
    )
    dual_monitor_ready(s)
    s.set("rip", 0x500).ok()
    s.set("rsp", 0x7000).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("The STM: the executive monitor's state is the guest area of the SMM-transfer VMCS (VMCS_A).")
    s.vmwrite("GUEST_SMBASE", 0x40000).succeed()
    s.comment("34.15.4.1: a bad executive-VMCS pointer (not aligned; no revision identifier): 16.")
    s.vmwrite("EXECUTIVE_VMCS_POINTER", VMXON_REGION + 8).succeed()
    s.vmlaunch().fail_valid(16)
    s.vmwrite("EXECUTIVE_VMCS_POINTER", SPARE_REGION).succeed()
    s.vmlaunch().fail_valid(16)
    s.comment('34.15.4.1: "deactivate dual-monitor treatment" with a VMCS as executive: 18.')
    s.write(VMCS_B, REVISION).ok()
    s.vmwrite("EXECUTIVE_VMCS_POINTER", VMCS_B).succeed()
    deactivate = ENTRY.true_default1 | ENTRY.bit("DEACT_DUAL_MONITOR")
    s.vmwrite("VM_ENTRY_CONTROLS", deactivate).succeed()
    s.vmlaunch().fail_valid(18)
    s.vmwrite("VM_ENTRY_CONTROLS", ENTRY.true_default1).succeed()
    s.comment("34.15.4.3: a return to VMX root operation that injects an event: 7.")
    s.vmwrite("EXECUTIVE_VMCS_POINTER", VMXON_REGION).succeed()
    s.vmwrite("VM_ENTRY_INTR_INFO_FIELD", 0x8000_0030).succeed()
    s.vmlaunch().fail_valid(7)
    s.vmwrite("VM_ENTRY_INTR_INFO_FIELD", 0).succeed()
    s.comment("The return to the executive monitor in VMX root operation: SMBASE from GUEST_SMBASE, no current VMCS.")
    s.vmlaunch().entered()
    s.get("smm").ok(0)
    s.get("smbase").ok(0x40000)
    s.get("rip").ok(0x500)
    s.get("rsp").ok(0x7000)
    s.vmptrst().succeed(presets.NO_LINK_POINTER)
    s.vmxoff().fail_invalid()  # VMfail(23) without a current VMCS
    s.comment("34.15.2: VMCALL in VMX root operation is an SMM VM exit (18, bit 29); the SMM-transfer VMCS is current.")
    s.set("rip", 0x600).ok()
    s.vmcall().exited(EXIT_VMCALL)
    s.get("smm").ok(1)
    s.vmptrst().succeed(VMCS_A)
    s.vmread("VM_EXIT_REASON").succeed(EXIT_VMCALL | 1 << 29)
    s.vmread("EXECUTIVE_VMCS_POINTER").succeed(VMXON_REGION)
    s.vmread("GUEST_RIP").succeed(0x600)
    s.vmread("GUEST_SMBASE").succeed(0x40000)
    s.vmresume().entered()
    s.comment("An SMI in VMX root operation: reason 6, bit 29.")
    s.smi().exited(6)
    s.vmread("VM_EXIT_REASON").succeed(6 | 1 << 29)
    s.vmread("EXIT_QUALIFICATION").succeed(0)
    s.vmresume().entered()
    s.comment("An I/O SMI (OUT DX of 2 bytes to port 0xB2): reason 5, the I/O qualification, IO_RIP = RIP.")
    s.set("rip", 0x700).ok()
    s.smi({"port": 0xB2, "size": 2, "in": False}).exited(5)
    s.vmread("VM_EXIT_REASON").succeed(5 | 1 << 29)
    s.vmread("EXIT_QUALIFICATION").succeed(0xB2 << 16 | 1)
    s.vmread("IO_RIP").succeed(0x700)
    s.vmread("IO_RCX").succeed(0)
    s.comment("The return that deactivates the treatment: the default treatment again, VMXOFF allowed.")
    s.vmwrite("VM_ENTRY_CONTROLS", deactivate).succeed()
    s.vmresume().entered()
    s.smi().ok()
    s.get("smm").ok(1)
    s.rsm().ok()
    s.vmcall().fail_invalid()  # VMfail(1) without a current VMCS
    s.vmxoff().succeed()
    return s


def dual_monitor_stm_flow() -> Script:
    s = Script(
        "dual_monitor_stm_flow",
        "SDM 34.15.2 (an SMI in VMX non-root operation: an SMM VM exit, reason 6 without bit 29,",
        "EXECUTIVE_VMCS_POINTER = the guest's VMCS), 34.15.3 (the STM runs the legacy SMM handler as a guest with",
        '"entry to SMM": it runs in SMM, its exits end in SMM and keep SMI blocking (27.3.4), its RSM exits with',
        "reason 17), 34.15.4 (the return to the executive VMCS: launched, else 17; its VM-execution controls",
        "checked, else 25, whether the cache holds it or not; the guest resumes under the executive VMCS).",
    )
    dual_monitor_ready(s)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("The STM returns to the executive monitor in VMX root operation.")
    s.vmlaunch().entered()
    s.comment("The executive monitor launches its guest (VMCS_B).")
    s.new_vmcs(VMCS_B)
    s.launchable()
    s.vmlaunch().entered()
    s.comment("An SMI in the guest: an SMM VM exit to the STM (reason 6, no bit 29).")
    s.smi().exited(6)
    s.get("smm").ok(1)
    s.vmptrst().succeed(VMCS_A)
    s.vmread("VM_EXIT_REASON").succeed(6)
    s.vmread("EXECUTIVE_VMCS_POINTER").succeed(VMCS_B)
    s.vmread("GUEST_RIP").succeed(presets.GUEST_RIP)
    s.comment('The legacy SMM handler as a guest with "entry to SMM" (VMCS_C), SMI blocking in its interruptibility.')
    smm_guest(s, VMCS_C)
    s.vmlaunch().entered()
    s.get("smm").ok(1)
    s.comment("Its exits end in SMM: SMI blocking saved as 1 and kept in the STM.")
    s.cpuid(0).exited(EXIT_CPUID)
    s.vmread("GUEST_INTERRUPTIBILITY_INFO").succeed(INTERRUPTIBILITY.BLOCKING_BY_SMI)
    s.get("interruptibility").ok(INTERRUPTIBILITY.BLOCKING_BY_SMI)
    s.vmresume().entered()
    s.comment("Its RSM exits (reason 17).")
    s.rsm().exited(17)
    s.get("smm").ok(1)
    s.comment("34.15.4.1: an executive VMCS that is not launched: 17 (not cached: its launch word read over the bus).")
    s.vmptrld(VMCS_A).succeed()
    s.write(VMCS_D, REVISION).ok()
    s.vmwrite("EXECUTIVE_VMCS_POINTER", VMCS_D).succeed()
    s.vmresume().fail_valid(17)
    s.comment("34.15.4.2: an executive VMCS whose VM-execution controls fail 26.2.1.1: 25 (from the bus, then cached).")
    s.write(VMCS_E, REVISION).ok()
    s.write(VMCS_E + 4 * LAUNCH_WORD, 1).ok()
    s.vmwrite("EXECUTIVE_VMCS_POINTER", VMCS_E).succeed()
    s.vmresume().fail_valid(25)
    s.vmptrld(VMCS_E).succeed()
    s.vmptrld(VMCS_A).succeed()
    s.vmresume().fail_valid(25)
    s.comment("The return to the guest: the executive VMCS (VMCS_B) is current again, SMM left, non-root operation.")
    s.vmwrite("EXECUTIVE_VMCS_POINTER", VMCS_B).succeed()
    s.vmresume().entered()
    s.get("smm").ok(0)
    s.comment("The guest's next exit goes to the executive monitor, in VMCS_B.")
    s.cpuid(0).exited(EXIT_CPUID)
    s.vmptrst().succeed(VMCS_B)
    s.vmread("VM_EXIT_REASON").succeed(EXIT_CPUID)
    s.comment("The SMM-transfer VMCS still holds the SMI's exit; the handler's VMCS its RSM's.")
    s.vmptrld(VMCS_A).succeed()
    s.vmread("VM_EXIT_REASON").succeed(6)
    s.vmptrld(VMCS_C).succeed()
    s.vmread("VM_EXIT_REASON").succeed(17)
    return s


def dual_monitor_smi_held() -> Script:
    s = Script(
        "dual_monitor_smi_held",
        'SDM 34.15.4.9 and REPLAY.md "SMM" (an SMI in SMM is held, one is kept, and is delivered at once when the',
        "VM entry that leaves SMM completes: an SMM VM exit, so the next operation sees the STM; a return that",
        "leaves interruptibility bit 2 set keeps SMIs blocked outside SMM, held until a return that unblocks",
        "them; after a deactivating return the held SMI is delivered under the default treatment).",
    )
    dual_monitor_ready(s)
    s.vmcall().exited(EXIT_VMCALL)
    s.comment("An I/O SMI in the STM is held; the return to root delivers it before its response.")
    s.smi({"port": 0xB2, "size": 1, "in": True}).pending()
    s.smi().pending()
    s.vmlaunch().entered()
    s.get("smm").ok(1)
    s.vmread("VM_EXIT_REASON").succeed(5 | 1 << 29)
    s.vmread("EXIT_QUALIFICATION").succeed(0xB2 << 16 | 1 << 3)
    s.comment("A return with SMI blocking (interruptibility bit 2): SMIs stay blocked in VMX root operation.")
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", INTERRUPTIBILITY.BLOCKING_BY_SMI).succeed()
    s.vmresume().entered()
    s.get("smm").ok(0)
    s.get("interruptibility").ok(INTERRUPTIBILITY.BLOCKING_BY_SMI)
    s.smi().pending()
    s.get("smm").ok(0)
    s.comment("VMCALL is not blocked: an SMM VM exit; the return without blocking delivers the held SMI.")
    s.vmcall().exited(EXIT_VMCALL)
    s.vmwrite("GUEST_INTERRUPTIBILITY_INFO", 0).succeed()
    s.vmresume().entered()
    s.get("smm").ok(1)
    s.vmread("VM_EXIT_REASON").succeed(6 | 1 << 29)
    s.comment("A held SMI and a deactivating return: the SMI is delivered under the default treatment.")
    s.smi().pending()
    s.vmwrite("VM_ENTRY_CONTROLS", ENTRY.true_default1 | ENTRY.bit("DEACT_DUAL_MONITOR")).succeed()
    s.vmresume().entered()
    s.get("smm").ok(1)
    s.get("rip").ok(0x8000)
    s.get("cs.base").ok(SMBASE_RESET)
    s.rsm().ok()
    s.get("smm").ok(0)
    return s


def dual_monitor_msr_lists() -> Script:
    s = Script(
        "dual_monitor_msr_lists",
        "SDM 27.4, 27.6, 34.15.5 (an exit that ends in SMM, an SMM VM exit or an exit from a guest entered with",
        '"entry to SMM", may store IA32_SMBASE in its VM-exit MSR-store list and load IA32_SMM_MONITOR_CTL from its',
        "MSR-load list; the activation uses no MSR list; an exit that ends outside SMM storing IA32_SMBASE is a",
        "VMX abort: vmx_abort_msr_store_smbase).",
    )
    dual_monitor_ready(s)
    s.comment("The SMM-transfer VMCS's lists: store IA32_SMBASE, load IA32_SMM_MONITOR_CTL (the activation uses none).")
    msr_list(s, EXIT_STORE_LIST, [(msrs.IA32_SMBASE, 0)])
    msr_list(s, EXIT_LOAD_LIST, [(msrs.IA32_SMM_MONITOR_CTL, MSEG | MONITOR_CTL_VALID)])
    s.vmwrite("VM_EXIT_MSR_STORE_ADDR", EXIT_STORE_LIST).succeed()
    s.vmwrite("VM_EXIT_MSR_STORE_COUNT", 1).succeed()
    s.vmwrite("VM_EXIT_MSR_LOAD_ADDR", EXIT_LOAD_LIST).succeed()
    s.vmwrite("VM_EXIT_MSR_LOAD_COUNT", 1).succeed()
    s.vmcall().exited(EXIT_VMCALL)
    s.read(EXIT_STORE_LIST + 8, 8).ok(0)
    s.vmlaunch().entered()
    s.comment("An SMI in VMX root operation: its SMM VM exit stores SMBASE and loads IA32_SMM_MONITOR_CTL.")
    s.smi().exited(6)
    s.read(EXIT_STORE_LIST + 8, 8).ok(SMBASE_RESET)
    s.rdmsr(msrs.IA32_SMM_MONITOR_CTL).ok(MSEG | MONITOR_CTL_VALID)
    s.comment('A guest with "entry to SMM" whose exit (CPUID) ends in SMM: the same lists are allowed.')
    smm_guest(s, VMCS_C)
    msr_list(s, EXIT_STORE_LIST + 0x100, [(msrs.IA32_SMBASE, 0)])
    s.vmwrite("VM_EXIT_MSR_STORE_ADDR", EXIT_STORE_LIST + 0x100).succeed()
    s.vmwrite("VM_EXIT_MSR_STORE_COUNT", 1).succeed()
    s.vmwrite("VM_EXIT_MSR_LOAD_ADDR", EXIT_LOAD_LIST).succeed()
    s.vmwrite("VM_EXIT_MSR_LOAD_COUNT", 1).succeed()
    s.vmlaunch().entered()
    s.cpuid(0).exited(EXIT_CPUID)
    s.read(EXIT_STORE_LIST + 0x108, 8).ok(SMBASE_RESET)
    s.get("smm").ok(1)
    return s


def dual_monitor_uncached() -> Script:
    s = Script(
        "dual_monitor_uncached",
        "SDM 34.15.2.2 and 34.15.4.8 with VMCSs the on-die cache (4 entries) no longer holds: the return from SMM",
        "to an executive VMCS written back to memory (its launch state and VM-execution controls read from its",
        "region, then a fill), and an SMM VM exit whose SMM-transfer VMCS was evicted (a fill, after the victim's",
        "write-back); docs/semantics.md has the cache's replacement order, which the model and the RTL share.",
    )
    dual_monitor_ready(s)
    s.vmcall().exited(EXIT_VMCALL)
    s.vmlaunch().entered()
    s.comment("The executive monitor's guest (VMCS_B); an SMI there: an SMM VM exit to the STM.")
    s.new_vmcs(VMCS_B)
    s.launchable()
    s.vmlaunch().entered()
    s.smi().exited(6)
    s.comment("The STM loads three more VMCSs: VMCS_B, the least recently used, is written back and evicted.")
    for region in (VMCS_C, VMCS_D, VMCS_E):
        s.new_vmcs(region)
    s.comment("The return to the guest: VMCS_B's launch state and controls from its region, then its fill.")
    s.vmptrld(VMCS_A).succeed()
    s.vmresume().entered()
    s.cpuid(0).exited(EXIT_CPUID)
    s.vmptrst().succeed(VMCS_B)
    s.comment("The executive monitor uses three other VMCSs: the SMM-transfer VMCS (VMCS_A) is evicted.")
    for region in (VMCS_C, VMCS_D, VMCS_F):
        s.new_vmcs(region)
    s.comment("An SMI in VMX root operation: the SMM-transfer VMCS is filled again and becomes current.")
    s.smi().exited(6)
    s.vmptrst().succeed(VMCS_A)
    s.vmread("VM_EXIT_REASON").succeed(6 | 1 << 29)
    s.vmread("EXECUTIVE_VMCS_POINTER").succeed(VMXON_REGION)
    s.vmresume().entered()
    s.vmptrst().succeed(presets.NO_LINK_POINTER)
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
    vmentry_guest_state_checks,
    vmentry_loads_guest_state,
    vmexit_saves_and_loads,
    vmexit_computed_saves,
    window_exits,
    vmexit_vmx_instructions,
    guest_events,
    rsm_outside_smm,
    smi_delivery,
    rsm_restores,
    smi_pending,
    smm_default_treatment,
    rsm_shutdown_cr4_reserved,
    rsm_shutdown_cr0_pg_without_pe,
    rsm_shutdown_cr0_nw_without_cd,
    rsm_shutdown_cr0_high,
    smm_msrs,
    msr_lists,
    vmx_abort_msr_store_x2apic,
    vmx_abort_msr_store_smbase,
    vmx_abort_msr_store_reserved,
    vmx_abort_msr_store_unknown,
    vmx_abort_msr_load_fs_base,
    vmx_abort_msr_load_efer_lma,
    vmx_abort_msr_load_after_entry_failure,
    vmcall,
    flags,
    msrs_script,
    set_get,
    memory_and_bus,
    dual_monitor_activation_checks,
    dual_monitor_activation,
    dual_monitor_activation_ia32e,
    dual_monitor_return_to_root,
    dual_monitor_stm_flow,
    dual_monitor_smi_held,
    dual_monitor_msr_lists,
    dual_monitor_uncached,
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
