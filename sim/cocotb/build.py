"""Build an Amaranth design once per simulator and run cocotb test modules against it.

Verilog is generated from the Amaranth design and the simulator build is kept
under a directory named after a hash of that Verilog, so every test (and
``vmxu replay``) reuses one build until the RTL changes. Builds live in
``$VMXU_BUILD_DIR`` (default ``~/.cache/vmxu``); a file lock lets parallel
pytest workers share them.
"""

import fcntl
import hashlib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from amaranth.back import verilog

from .toolchain import prepare_simulator

__all__ = ["Design", "UNIT", "SOC", "build_root", "locked", "soc_verilog", "run_cocotb", "CocotbResults", "TestResult"]

TIMESCALE = ("1ns", "1ps")


@dataclass(frozen=True)
class Design:
    """An Amaranth top level and the Verilog module name it is emitted as."""

    toplevel: str
    make: Callable[[], object]


def _make_unit():
    from vmxu.rtl.vmx.unit import VmxUnit

    return VmxUnit()


UNIT = Design("vmx_unit", _make_unit)


def _make_soc():
    from vmxu.rtl.soc.soc import Soc

    return Soc()


SOC = Design("soc", _make_soc)


def soc_verilog() -> tuple[str, str]:
    """The SoC's Verilog and its hash (the key of every build of it)."""
    return _verilog(SOC)


def build_root() -> Path:
    root = Path(os.environ.get("VMXU_BUILD_DIR") or Path.home() / ".cache" / "vmxu")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _verilog(design: Design) -> tuple[str, str]:
    text = verilog.convert(design.make(), name=design.toplevel, emit_src=False)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


_TIME_ZERO_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$", re.MULTILINE)


def _for_simulator(text: str, sim: str) -> str:
    """Amaranth writes combinational logic as ``always @*`` blocks that all read one dummy
    register initialised to 0, so that they run once at time zero. Icarus may initialise that
    register before the blocks wait on it, and then a block whose real inputs keep their initial
    values never runs and its outputs stay X (amaranth-lang/amaranth#1629). Assigning the dummy
    in an ``initial #0`` instead happens after every block waits, and wakes them all."""
    if sim == "icarus":
        text, count = _TIME_ZERO_TRIGGER.subn(r"\1reg \2;\n\1initial #0 \2 = 1'b0;", text)
        if count == 0 and "always @*" in text:
            raise RuntimeError("the Verilog has always @* blocks but no time-zero trigger to patch")
    return text


_built: dict[tuple[str, str, bool], Path] = {}


def _top_ports_only(toplevel: str, build_dir: Path) -> Path:
    """A Verilator control file that makes only the top module's signals visible to VPI.

    cocotb's runner passes ``--public-flat-rw``, which keeps every signal of every module
    public: Verilator then registers each one in a single constructor that g++ takes many
    minutes to compile, and cannot optimise any of them away. The benches drive and read
    only the top-level ports, and ``--trace`` still records every signal in the waveforms."""
    path = build_dir.parent / f"{toplevel}.vlt"
    path.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
    return path


def _runner(sim: str):
    from cocotb_tools.runner import Verilator, get_runner

    if sim != "verilator":
        return get_runner(sim)

    class TopPortsVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            return commands

    return TopPortsVerilator()


def _build(design: Design, sim: str, waves: bool) -> tuple[object, Path]:
    prepare_simulator(sim)
    text, digest = _verilog(design)
    build_dir = build_root() / f"{design.toplevel}-{digest}" / (f"{sim}-waves" if waves else sim)
    source = build_dir.parent / f"{design.toplevel}.{sim}.v"
    runner = _runner(sim)
    with locked(build_dir.parent / f".{sim}.lock"):
        if not source.exists():
            source.write_text(_for_simulator(text, sim))
        sources = [source]
        if sim == "verilator":
            sources.insert(0, _top_ports_only(design.toplevel, build_dir))
        runner.build(
            sources=sources,
            hdl_toplevel=design.toplevel,
            build_dir=build_dir,
            timescale=TIMESCALE,
            waves=waves,
            build_args=["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"] if sim == "verilator" else [],
            log_file=build_dir / "build.log",
        )
    return runner, build_dir


@dataclass(frozen=True)
class TestResult:
    name: str
    passed: bool
    message: str
    seconds: float


@dataclass(frozen=True)
class CocotbResults:
    tests: tuple[TestResult, ...]
    log: Path
    waves: Path | None

    @property
    def failed(self) -> tuple[TestResult, ...]:
        return tuple(t for t in self.tests if not t.passed)

    def summary(self) -> str:
        lines = [f"{len(self.tests) - len(self.failed)}/{len(self.tests)} cocotb tests passed (log: {self.log})"]
        for t in self.failed:
            lines.append(f"FAILED {t.name}: {t.message}")
        return "\n".join(lines)


def _parse_results(path: Path) -> tuple[TestResult, ...]:
    if not path.is_file():
        return ()
    results = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        message = "" if problem is None else (problem.get("message") or problem.text or "").strip()
        results.append(TestResult(case.get("name", "?"), problem is None, message, float(case.get("time", 0))))
    return tuple(results)


def run_cocotb(
    design: Design,
    sim: str,
    test_module: str,
    *,
    testcase: Sequence[str] | None = None,
    seed: int | None = None,
    extra_env: Mapping[str, str] | None = None,
    waves: bool = False,
    run_name: str = "run",
) -> CocotbResults:
    """Run a cocotb test module on ``design`` in ``sim``; the simulator is built once and reused."""
    runner, build_dir = _build(design, sim, waves)
    test_dir = build_dir / "runs" / f"{run_name}-{os.getpid()}"
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    log = test_dir / "sim.log"
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.update(extra_env or {})
    runner.test(
        test_module=test_module,
        hdl_toplevel=design.toplevel,
        # A test filter rather than ``testcase``: it also selects the parametrized
        # instances of a test ("vector/vector=vmclear").
        test_filter="|".join(rf"\.{re.escape(name)}(/.*)?$" for name in testcase) if testcase else None,
        seed=seed,
        extra_env=env,
        build_dir=build_dir,
        test_dir=test_dir,
        results_xml=str(results_xml),
        waves=waves,
        timescale=TIMESCALE,
        log_file=log,
    )
    wave_file = None
    if waves:
        candidates = [test_dir / "dump.vcd", build_dir / f"{design.toplevel}.fst", test_dir / f"{design.toplevel}.fst"]
        wave_file = next((p for p in candidates if p.exists()), None)
    tests = _parse_results(results_xml)
    if not tests:
        raise RuntimeError(f"the {sim} simulation ended without results; see {log}")
    return CocotbResults(tests, log, wave_file)
