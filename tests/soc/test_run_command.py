"""`vmxu run IMAGE`: console, counts and the exit status on every backend (docs/soc.md, README)."""

import re
import subprocess
import sys

import pytest

from vmxu import cli
from vmxu.cli import EXIT_LARGE_CODE, EXIT_LIMIT, EXIT_MISMATCH
from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, IO_PORTS, finisher_fail
from vmxu.sim.iss.run import build_firmware
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li

UART = next(p.base for p in IO_PORTS if p.name == "uart")


def vmxu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vmxu.cli", *args], capture_output=True, text=True, timeout=900)


def _flat(words):
    for item in words:
        if isinstance(item, list):
            yield from _flat(item)
        else:
            yield item


def image(tmp_path, name: str, *words) -> str:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(b"".join(w.to_bytes(4, "little") for w in _flat(words)))
    return str(path)


def print_and_finish(text: str, finisher_word: int) -> list:
    words = [li(10, UART)]
    for ch in text:
        words += [li(11, ord(ch)), asm.outb(10, 11)]
    return words + [li(10, FINISHER.base), li(11, finisher_word), asm.sw(11, 0, 10), asm.jal(0, 0)]


@pytest.mark.parametrize("sim", ["iss", "icarus", "verilator"])
def test_exit_status_is_the_finishers_code(sim, tmp_path):
    passing = vmxu("run", image(tmp_path, "pass", print_and_finish("ok\n", FINISHER_PASS)), "--sim", sim)
    assert passing.returncode == 0, passing.stderr
    assert passing.stdout == "ok\n"
    assert "vmxu run: the program exited with code 0\n" in passing.stderr
    failing = vmxu("run", image(tmp_path, "fail", print_and_finish("no\n", finisher_fail(3))), "--sim", sim)
    assert failing.returncode == 3, failing.stderr
    assert "failed with code 3" in failing.stderr
    assert "vmxu run: the program exited with code 3\n" in failing.stderr


@pytest.mark.parametrize("sim", ["iss", "icarus", "verilator"])
def test_codes_from_124_up_exit_125_and_the_code_is_printed(sim, tmp_path):
    """124-127 and 128 + n mean something to a shell, and a status keeps 8 bits (docs/tools.md).
    The mapping is the command's; each backend reads the finisher's 16-bit code (the ISS all three)."""
    cases = [(0xFFFF, EXIT_LARGE_CODE)]
    if sim == "iss":
        cases += [(123, 123), (124, EXIT_LARGE_CODE)]
    for code, status in cases:
        done = vmxu("run", image(tmp_path, f"fail{code}", print_and_finish("", finisher_fail(code))), "--sim", sim)
        assert done.returncode == status, done.stderr
        printed = re.findall(r"^vmxu run: the program exited with code (\d+)", done.stderr, re.MULTILINE)
        assert printed == [str(code)], done.stderr


@pytest.mark.parametrize("sim", ["iss", "icarus", "verilator"])
def test_the_cycle_limit_has_its_own_exit_status(sim, tmp_path):
    done = vmxu("run", image(tmp_path, "loop", asm.jal(0, 0)), "--sim", sim, "--max-cycles", "2000")
    assert done.returncode == EXIT_LIMIT, done.stderr
    assert "limit was reached" in done.stderr
    assert "exited with code" not in done.stderr


def test_a_simulator_failure_exits_1_with_its_message(tmp_path, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise RuntimeError("the Verilator SoC run failed: out of memory")

    monkeypatch.setattr("vmxu.sim.firmware_run.run_firmware", fail)
    program = image(tmp_path, "pass", print_and_finish("", FINISHER_PASS))
    assert cli.main(["run", program, "--sim", "verilator"]) == EXIT_MISMATCH
    stderr = capsys.readouterr().err
    assert stderr == "vmxu run: pass.bin on the RTL SoC (verilator): the Verilator SoC run failed: out of memory\n"


def test_rtl_reports_cycles_instructions_and_speed(tmp_path):
    count_down = [li(5, 50_000), asm.addi(5, 5, -1), asm.bne(5, 0, -4)]  # about half a million cycles
    program = image(tmp_path, "spin", count_down, print_and_finish("hi\n", FINISHER_PASS))
    done = vmxu("run", program, "--sim", "verilator")
    assert re.search(r"\d+ cycles, \d+ instructions \(CPI [\d.]+, [\d,]+ cycles/s\); passed", done.stderr)


def test_trace_and_lockstep_on_the_rtl(tmp_path):
    hello = str(build_firmware("hello"))
    done = vmxu("run", hello, "--sim", "icarus", "--trace", "--lockstep")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("Hello from vmxu!")
    assert re.search(r"^00000000: [0-9a-f]{8} ", done.stdout, re.MULTILINE)  # the first retired instruction
    assert re.search(r"; (\d+) records agreed with the ISS", done.stderr)


def test_waves_are_written(tmp_path):
    waves = tmp_path / "run.fst"
    program = image(tmp_path, "pass", print_and_finish("w\n", FINISHER_PASS))
    done = vmxu("run", program, "--sim", "icarus", "--waves", str(waves))
    assert done.returncode == 0, done.stderr
    assert waves.stat().st_size > 0


def test_bad_input_is_refused_with_exit_2(tmp_path):
    assert vmxu("run", str(tmp_path / "missing.elf")).returncode == 2
    bad = tmp_path / "bad.elf"
    bad.write_bytes(b"\x7fELF" + bytes(60))
    done = vmxu("run", str(bad), "--sim", "iss")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
