"""The demos on the ISS: hello greets and passes; vmcs checks every VMCS field and passes."""

from __future__ import annotations

import re
from pathlib import Path

from vmxu.rtl.arch.fields import FIELDS
from vmxu.sim.iss import StopReason, run_image


def test_hello_greets_and_passes(firmware: dict[str, Path]) -> None:
    result = run_image(firmware["hello"], max_instructions=100_000)
    assert result.reason == StopReason.PASS and result.exit_code == 0
    assert result.console.startswith("Hello from vmxu!")
    assert "CPUID vendor: vmxuRV32core, VMX: yes" in result.console


def test_vmcs_checks_every_field_and_passes(firmware: dict[str, Path]) -> None:
    result = run_image(firmware["vmcs"], max_instructions=2_000_000)
    assert result.reason == StopReason.PASS, result.console[-3000:]
    summary = re.search(r"vmcs: (\d+) fields, (\d+) checks, (\d+) mismatches: PASS", result.console)
    assert summary, result.console[-3000:]
    assert int(summary[1]) == len(FIELDS) and int(summary[3]) == 0
    assert "MISMATCH" not in result.console
    for field in FIELDS:
        assert re.search(rf"^  {field.encoding:04x} {field.name} ", result.console, re.MULTILINE), field.name
    for line in (
        "VMREAD of unsupported encoding 1000: VMfailValid, error 12",
        "VMWRITE of read-only VM_EXIT_REASON: VMfailValid, error 13",
        "VMPTRLD of the VMXON region: VMfailValid, error 10",
        "VMLAUNCH of an empty VMCS: VMfailValid, error 7",
        "clearing CR4.VMXE in VMX operation: trap, mcause 24",
        "VMREAD outside VMX operation: trap, mcause 2",
    ):
        assert line in result.console


def test_hypervisor_runs_its_guest_and_prints_the_exit_log(firmware: dict[str, Path]) -> None:
    """The VMM launches a guest that prints through I/O exits and asks CPUID; the VMM logs every exit."""
    result = run_image(firmware["hypervisor"], max_instructions=2_000_000, guests=True)
    assert result.reason == StopReason.PASS, result.console[-3000:]
    assert "guest: hello from the guest" in result.console
    assert 'guest: CPUID 0x40000000 says "vmxu"' in result.console
    for reason, name, count in ((0, "exception", 1), (1, "interrupt", 1), (10, "CPUID", 2), (12, "HLT", 1),
                                (18, "VMCALL", 1), (28, "CR access", 1), (31, "RDMSR", 1),
                                (52, "preemption timer", 1)):  # fmt: skip
        assert re.search(rf"vmm: +{reason} {name} +{count}\n", result.console), name
    assert "SYSENTER_EIP 5ee (passed through), SYSENTER_CS c5 (from the VMM)" in result.console
    assert "vmm: interrupt, vector 32" in result.console
    assert "vmm: the VMX-preemption timer expired (saved value 0)" in result.console
    assert "guest: preempted and resumed, bye" in result.console
    exits = int(re.search(r"vmm: +30 I/O instruction +(\d+)", result.console)[1])
    assert exits == 2 * sum(line.startswith("guest:") * (len(line) + 1) for line in result.console.splitlines())
    # Without the core's guest support, VMLAUNCH traps with cause 25 (after every check passed).
    assert run_image(firmware["hypervisor"], max_instructions=2_000_000).exit_code == 0x8000 | 25


def test_an_unexpected_trap_prints_and_fails(firmware: dict[str, Path], tmp_path: Path) -> None:
    """Patch hello's first instruction of main into an illegal word: crt0's vector reports it."""
    from elftools.elf.elffile import ELFFile

    with open(firmware["hello"], "rb") as stream:
        main = next(s for s in ELFFile(stream).get_section_by_name(".symtab").iter_symbols() if s.name == "main")
    image = bytearray(firmware["hello"].with_suffix(".bin").read_bytes())
    image[main["st_value"] : main["st_value"] + 4] = bytes(4)
    path = tmp_path / "broken.bin"
    path.write_bytes(bytes(image))
    result = run_image(path, max_instructions=100_000)
    assert result.reason == StopReason.FAIL and result.exit_code == 0x8002
    assert f"trap: mcause=00000002 mepc={main['st_value']:08x} mtval=00000000" in result.console


#: What the stm demo's console says, in order (docs/smm-soc.md; the RTL prints the same: tests/cli).
STM_STEPS = (
    "smm: SMI at SMBASE 30000: relocating SMBASE to 10000",
    "boot: back from SMM; SMRAM at 18000 reads ffffffff outside SMM",
    "stm: activated by the VMM's VMCALL (exit reason 20000012)",
    "vmm: the STM is active; launching the guest",
    "guest: SMI request 1 (OUT to port b2)",
    "stm: I/O SMI (port b2) from the guest at",
    "SMBASE 10000: the legacy handler runs in a VM",
    "legacy: SMI request 1; answering 100",
    "legacy: the STM's MSEG reads ffffffff here",
    "stm: the legacy handler's RSM (exit 17); my MSEG header's revision reads 1;",
    "guest: back from SMM; the answer is 100",
    "guest: back from SMM; the answer is 200",
    "guest: SMRAM at 18000 reads ffffffff from here",
    "vmm: VMXOFF while the STM is active: error 23",
    "stm: the VMM's VMCALL (exit reason 20000012): deactivating",
    "vmm: the STM is off; VMXOFF succeeded",
)


def test_stm_redirects_the_guests_smis_to_the_legacy_handler(firmware: dict[str, Path]) -> None:
    """SDM 34.11 (SMBASE relocation by the first SMI's handler), 34.15.6 (activation by VMCALL), 34.15.2 (an I/O
    SMI in a guest is an SMM VM exit, reason 5, to the STM), 34.15.4 ("entry to SMM": the legacy handler in a VM;
    its RSM exits, 17; the return from SMM to the guest), 34.15.7 (VMXOFF fails with 23 while active;
    deactivation); docs/smm-soc.md (SMRAM and MSEG closed)."""
    result = run_image(firmware["stm"], max_instructions=2_000_000, guests=True)
    assert result.reason == StopReason.PASS, result.console[-3000:]
    position = 0
    for step in STM_STEPS:
        found = result.console.find(step, position)
        assert found >= 0, f"{step!r} not after position {position}:\n{result.console}"
        position = found
    assert result.console.count("stm: I/O SMI (port b2)") == 2
