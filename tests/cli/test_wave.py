"""``vmxu wave``: waveforms from every simulator, in both formats, decode back into what the unit did.

The round trip of issue 9: ``vmxu replay S --sim X --waves W`` records W; decoding W gives the
replay's results request by request, and the script decoded from W (``--script``) replays on the
model to the same results. A script's ``write``/``read`` lines act on the platform's memory, not
on the unit's port, so they are not in a waveform and are left out of the comparison; so is
``line`` (a decoded request is numbered by its place among the requests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vmxu.sim.cocotb.runner import run_replay
from vmxu.sim.cocotb.toolchain import SIMULATORS
from vmxu.sim.replay import run_model
from vmxu.sim.replay.script import MEMORY_OPS
from vmxu.sim.waves.decode import decode, results, script_lines, unit_scope
from vmxu.sim.waves.reader import WaveError, Waves

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPT = EXAMPLES / "guest-exits.jsonl"
#: What a result adds to the line it echoes, by status (REPLAY.md "Statuses"; ``value`` where the op reads).
_ADDED = {"fail_valid": ("error",), "fault": ("vector",), "exited": ("reason",), "entry_failed": ("reason",)}
_ADDED |= {"entered": ("event", "error_code"), "shutdown": ("abort",), "rejected": ("why",)}
_READS = {"vmread", "vmptrst", "rdmsr", "get", "rdtsc", "in"}


def _outcomes(lines: list[dict]) -> list[dict]:
    """The results of requests on the unit's port, by what they say about the outcome (not the operands,
    which a script may write in several ways)."""
    kept = [r for r in lines if r["op"] not in MEMORY_OPS and r["status"] != "rejected"]
    outcomes = []
    for r in kept:
        keys = ("op", "status", *_ADDED.get(r["status"], ()), *(("value",) if r["op"] in _READS else ()))
        outcomes.append({k: r[k] for k in keys if k in r})
    return outcomes


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> dict[str, list[dict]]:
    return {"model": run_model(SCRIPT.read_text())}


# The VCD form in `make test-slow` (the suite's time): the same writer and reader as FST's but the container.
@pytest.mark.parametrize("suffix", [pytest.param(".vcd", marks=pytest.mark.slow), ".fst"])
@pytest.mark.parametrize("sim", SIMULATORS)
def test_waves_round_trip_to_the_replay(sim, suffix, tmp_path, replayed):
    waves_path = tmp_path / f"replay{suffix}"
    rtl = run_replay(SCRIPT, sim, waves=waves_path)
    assert _outcomes(rtl) == _outcomes(replayed["model"])
    waves = Waves(waves_path)
    assert unit_scope(waves) == "vmx_unit"
    assert not [n for n in waves.names if n.rsplit(".", 1)[-1].startswith("$")], "anonymous nets recorded"
    transactions = decode(waves)
    decoded = results(transactions)
    assert _outcomes(decoded) == _outcomes(rtl)
    assert all(t.latency is not None and t.latency >= 1 for t in transactions)
    script = "\n".join(script_lines(transactions, source=str(waves_path)))
    assert _outcomes(run_model(script)) == _outcomes(rtl)
    if suffix == ".vcd":  # the two readers agree on a VCD
        by_vcdvcd = results(decode(Waves(waves_path, reader="vcdvcd")))
        assert by_vcdvcd == results(decode(Waves(waves_path, reader="pywellen")))


def test_exit_latencies_in_the_log_are_the_bench_latencies(tmp_path):
    """The decoder's latency is the bench's measure: a VM exit and an entry take their latency-table cycles."""
    from vmxu.sim.cocotb.bench import latency_table

    waves_path = tmp_path / "replay.fst"
    run_replay(SCRIPT, "icarus", waves=waves_path)
    decoded = results(decode(Waves(waves_path)))
    latency = latency_table()
    vmcalls = [r for r in decoded if r["op"] == "vmcall" and r["status"] == "exited"]
    entries = [r for r in decoded if r["op"] == "vmresume" and r["status"] == "entered"]
    assert vmcalls and entries
    assert {r["latency"] for r in vmcalls} == {latency["VM exit (VMCALL)"]}
    assert {r["latency"] for r in entries} == {latency["VMRESUME to entered"]}


def _vmxu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmxu.cli", *args], capture_output=True, text=True)


def test_bad_input_is_refused_clearly(tmp_path):
    not_waves = tmp_path / "notes.vcd"
    not_waves.write_text("hello\n")
    assert "not a readable VCD or FST" in _vmxu("wave", str(not_waves)).stderr
    missing = _vmxu("wave", str(tmp_path / "none.fst"))
    assert missing.returncode == 2 and "no such waveform" in missing.stderr
    other = tmp_path / "other.vcd"
    other.write_text(
        "$timescale 1ns $end\n$scope module top $end\n$var wire 1 ! clk $end\n$upscope $end\n"
        "$enddefinitions $end\n#0\n0!\n#5\n1!\n"
    )
    done = _vmxu("wave", str(other))
    assert done.returncode == 2 and "records no VMX unit" in done.stderr
    with pytest.raises(WaveError, match="vcdvcd reads only VCD"):
        Waves(_fst_stand_in(tmp_path), reader="vcdvcd")
    usage = _vmxu("wave", str(other), "--wavedrom")
    assert usage.returncode == 2 and "--from" in usage.stderr


def _fst_stand_in(tmp_path: Path) -> Path:
    """A file that is not VCD text (FST is binary)."""
    path = tmp_path / "binary.fst"
    path.write_bytes(b"\x00\x01\x02")
    return path


def test_script_and_text_and_wavedrom_from_the_command(tmp_path):
    waves_path = tmp_path / "replay.vcd"
    run_replay(EXAMPLES / "vmcs-basics.jsonl", "icarus", waves=waves_path)
    log = _vmxu("wave", str(waves_path))
    assert log.returncode == 0, log.stderr
    lines = [json.loads(line) for line in log.stdout.splitlines()]
    assert lines[0]["line"] == 1 and {"cycle", "latency", "status"} <= set(lines[0])
    script = _vmxu("wave", str(waves_path), "--script")
    assert _outcomes(run_model(script.stdout)) == _outcomes(lines)
    text = _vmxu("wave", str(waves_path), "--text").stdout.splitlines()
    assert text[0].split()[:4] == ["cycle", "lat", "op", "operands"] and len(text) == len(lines) + 1
    first = lines[0]["cycle"]
    window = ("--wavedrom", "--from", str(first), "--to", str(first + 5))
    drawn = json.loads(_vmxu("wave", str(waves_path), *window).stdout)
    lanes = [lane for entry in drawn["signal"] for lane in (entry[1:] if isinstance(entry, list) else [entry])]
    op_lane = next(lane for lane in lanes if lane["name"] == "req.op")
    assert len(op_lane["wave"]) == 6 and lines[0]["op"].upper() in op_lane["data"]


def test_vmxu_waves_records_every_run_named_after_its_test(tmp_path, monkeypatch):
    monkeypatch.setenv("VMXU_WAVES", str(tmp_path))
    monkeypatch.setenv("VMXU_WAVES_FORMAT", "vcd")
    run_replay(EXAMPLES / "vmcs-basics.jsonl", "icarus")
    name = "test_wave-test_vmxu_waves_records_every_run_named_after_its_test-icarus.vcd"
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert decode(Waves(tmp_path / name))
    monkeypatch.setenv("VMXU_WAVES_FORMAT", "ghw")
    with pytest.raises(ValueError, match="VCD or FST"):
        run_replay(EXAMPLES / "vmcs-basics.jsonl", "icarus")
