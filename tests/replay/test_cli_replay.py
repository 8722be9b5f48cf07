"""`vmxu replay`: the model backend end to end, --check against an RTL backend, and the error paths."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from vmxu import cli
from vmxu.sim.replay import run_model

SCRIPTS = Path(__file__).parent / "scripts"
EXAMPLES = Path(__file__).parents[2] / "examples"
SMOKE = SCRIPTS / "smoke.jsonl"


def vmxu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmxu.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["smoke", "corners"])
def test_replay_on_the_model_prints_one_result_per_operation(name):
    """REPLAY.md: exactly one JSON object per operation, in order (the expected file is the reviewed output).

    corners.jsonl exercises the cache and the region (eviction, launch word, VMXOFF marking,
    memory-resident fields); its expected output was also checked against icarus with --check.
    """
    done = vmxu("replay", str(SCRIPTS / f"{name}.jsonl"))
    assert done.returncode == 0, done.stderr
    expected = (SCRIPTS / f"{name}.expected.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in done.stdout.splitlines()] == [json.loads(line) for line in expected]


def test_replay_default_simulator_is_the_model():
    assert vmxu("replay", str(SMOKE), "--sim", "model").stdout == vmxu("replay", str(SMOKE)).stdout


def test_replay_missing_file_exits_2(tmp_path):
    done = vmxu("replay", str(tmp_path / "nope.jsonl"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr and "nope.jsonl" in done.stderr
    assert done.stdout == ""


def test_replay_unreadable_file_exits_2(tmp_path):
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    assert cli.main(["replay", str(binary)]) == 2


def test_replay_waves_need_an_rtl_simulator(capsys):
    assert cli.main(["replay", str(SMOKE), "--waves", "out.fst"]) == 2
    assert "--waves needs an RTL simulator" in capsys.readouterr().err


def test_replay_malformed_lines_never_crash(tmp_path):
    """REPLAY.md: a malformed line never crashes the tool and never changes state."""
    script = tmp_path / "junk.jsonl"
    script.write_text('{"op":\n[]\n{"op": "vmxon", "addr": 1.5}\n{"op": "vmptrst"}\n')
    done = vmxu("replay", str(script))
    assert done.returncode == 0, done.stderr
    statuses = [json.loads(line)["status"] for line in done.stdout.splitlines()]
    assert statuses == ["rejected", "rejected", "rejected", "fault"]


@pytest.fixture
def fake_rtl(monkeypatch):
    """Stands in for vmxu.sim.cocotb.runner.run_replay: returns the model's results, or altered ones."""
    module = types.ModuleType("vmxu.sim.cocotb.runner")
    calls = []

    def run_replay(script_path, sim, waves=None):
        calls.append((Path(script_path), sim, waves))
        results = run_model(Path(script_path).read_text())
        if module.alter is not None:
            module.alter(results)
        return results

    module.run_replay = run_replay
    module.alter = None
    module.calls = calls
    monkeypatch.setitem(sys.modules, "vmxu.sim.cocotb.runner", module)
    return module


def test_replay_on_an_rtl_simulator_prints_its_results(fake_rtl, capsys):
    assert cli.main(["replay", str(SMOKE), "--sim", "verilator", "--waves", "w.fst"]) == 0
    assert fake_rtl.calls == [(SMOKE, "verilator", Path("w.fst"))]
    assert len(capsys.readouterr().out.splitlines()) == len(run_model(SMOKE.read_text()))


def test_replay_check_passes_when_model_and_rtl_agree(fake_rtl, capsys):
    assert cli.main(["replay", str(SMOKE), "--check"]) == 0
    assert fake_rtl.calls[0][1] == "icarus"
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == len(run_model(SMOKE.read_text()))
    assert "agree" in captured.err


def test_replay_check_fails_at_the_first_difference(fake_rtl, capsys):
    def alter(results):
        results[4]["status"] = "fail_invalid"
        results[6]["status"] = "fail_invalid"

    fake_rtl.alter = alter
    assert cli.main(["replay", str(SMOKE), "--check", "--sim", "verilator"]) == 1
    out = capsys.readouterr().out
    line = run_model(SMOKE.read_text())[4]["line"]
    assert f"line {line}" in out
    assert "model:" in out and "rtl:" in out
    assert out.count("fail_invalid") == 1


def test_replay_without_rtl_backend_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "vmxu.sim.cocotb.runner", None)
    assert cli.main(["replay", str(SMOKE), "--sim", "icarus"]) == 2
    assert "RTL backend not available yet" in capsys.readouterr().err


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.jsonl")), ids=lambda p: p.name)
def test_examples_run_on_the_model_without_malformed_lines(example):
    """The examples are readable VMM sessions: every line is well formed."""
    results = run_model(example.read_text())
    assert results
    for result in results:
        assert result["status"] != "rejected", result


def test_vmcs_basics_example_does_what_a_vmm_does():
    results = {r["line"]: r for r in run_model((EXAMPLES / "vmcs-basics.jsonl").read_text())}
    by_op = [(r["op"], r["status"]) for r in results.values()]
    assert ("vmxon", "succeed") in by_op
    assert ("vmptrld", "succeed") in by_op
    assert any(r["op"] == "vmptrst" and r.get("value") == "0x2000" for r in results.values())
    assert any(r["op"] == "vmread" and r.get("value") == "0xfff0" for r in results.values())


def test_replay_reports_a_failed_rtl_run(fake_rtl, capsys):
    def alter(results):
        raise RuntimeError("the icarus replay run failed")

    fake_rtl.alter = alter
    assert cli.main(["replay", str(SMOKE), "--sim", "icarus"]) == 2
    assert "the icarus run failed" in capsys.readouterr().err


def test_subcommands_are_listed_in_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.SUBCOMMANDS:
        assert name in out


def test_dual_monitor_example_on_the_model_with_the_treatment():
    """examples/dual-monitor.jsonl with --dual-monitor (SDM 34.15): VMCALL activates (exit 18), an SMI is an SMM
    VM exit (6), the legacy handler's RSM exits (17), and the return from SMM reports entered."""
    done = vmxu("replay", str(EXAMPLES / "dual-monitor.jsonl"), "--dual-monitor")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    outcomes = [(r["op"], r["status"], r.get("reason")) for r in results if r["op"] in ("vmcall", "smi", "rsm")]
    assert outcomes[-4:] == [("vmcall", "exited", 18), ("smi", "exited", 6), ("smi", "ok", None), ("rsm", "exited", 17)]
    assert results[-1]["value"] == "0x20000006"  # the held SMI, delivered by the return: an SMM VM exit from root


def test_dual_monitor_is_the_default():
    """The dual-monitor treatment is the default (IA32_VMX_BASIC bit 49 on every backend): the example gives the same
    results with --dual-monitor and without it."""
    results = run_model((EXAMPLES / "dual-monitor.jsonl").read_text())
    done = vmxu("replay", str(EXAMPLES / "dual-monitor.jsonl"), "--dual-monitor")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == results


@pytest.mark.slow
def test_dual_monitor_example_agrees_on_the_rtl():
    """examples/dual-monitor.jsonl on the RTL: every result as the model's (``--check``; Verilator, in
    ``make test-slow``: both simulators run the same rules in tests/vectors through tests/rtl/test_unit.py, and
    the model's run of the example is in the default suite)."""
    done = vmxu("replay", str(EXAMPLES / "dual-monitor.jsonl"), "--check", "--sim", "verilator")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "agree on" in done.stderr
