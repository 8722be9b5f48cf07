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

from .signal_names import hide_anonymous_from_verilator, named_nets
from .toolchain import toolchain_fingerprint

__all__ = [
    "Design", "UNIT", "SOC", "SOC_GUESTS", "WAVE_SUFFIXES", "wave_suffix", "waves_for_test",
    "build_root", "locked", "soc_verilog", "run_cocotb", "CocotbResults", "TestResult",
]  # fmt: skip

TIMESCALE = ("1ns", "1ps")
#: The waveform formats every simulator writes, chosen by the file's suffix.
WAVE_SUFFIXES = (".vcd", ".fst")


def wave_suffix(path: Path) -> str:
    """The format a waveform path asks for; ValueError for any other suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in WAVE_SUFFIXES:
        raise ValueError(f"a waveform is written as VCD or FST: give a path ending in .vcd or .fst, not {str(path)!r}")
    return suffix


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


def _make_soc_with_guests():
    from vmxu.rtl.soc.soc import Soc

    return Soc(guests=True)


#: The SoC whose core runs guests and whose unit has VM entries and exits (docs/guests.md).
SOC_GUESTS = Design("soc", _make_soc_with_guests)


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
    in an ``initial #0`` instead happens after every block waits, and wakes them all.

    Verilator is told not to record the anonymous nets (signal_names.py)."""
    if sim == "verilator":
        return hide_anonymous_from_verilator(text)
    if sim == "icarus":
        text, count = _TIME_ZERO_TRIGGER.subn(r"\1reg \2;\n\1initial #0 \2 = 1'b0;", text)
        if count == 0 and "always @*" in text:
            raise RuntimeError("the Verilog has always @* blocks but no time-zero trigger to patch")
    return text


def _top_ports_only(toplevel: str, build_dir: Path) -> Path:
    """A Verilator control file that makes only the top module's signals visible to VPI.

    cocotb's runner passes ``--public-flat-rw``, which keeps every signal of every module
    public: Verilator then registers each one in a single constructor that g++ takes many
    minutes to compile, and cannot optimise any of them away. The benches drive and read
    only the top-level ports, and ``--trace`` still records every signal in the waveforms."""
    path = build_dir / f"{toplevel}.vlt"
    path.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
    return path


def _runner(sim: str, waves: str | None, named_nets: list[str]):
    """cocotb's runner for ``sim``, recording waves in the format ``waves`` (".vcd", ".fst") of named nets only."""
    from cocotb_tools.runner import Icarus, Verilator

    if sim == "icarus":

        class NamedNetsIcarus(Icarus):
            def _create_iverilog_dump_file(self) -> None:
                # cocotb's dump module records every net ($dumpvars(0, top)); this one the named nets.
                nets = ",\n        ".join(named_nets)
                self.iverilog_dump_file.write_text(
                    "module cocotb_iverilog_dump();\ninitial begin\n    string dumpfile_path;\n"
                    '    if ($value$plusargs("dumpfile_path=%s", dumpfile_path)) $dumpfile(dumpfile_path);\n'
                    f"    $dumpvars(0,\n        {nets});\nend\nendmodule\n"
                )

            def _test_command(self):
                # vvp writes VCD with -vcd and FST with -fst (which cocotb always asks for).
                commands = super()._test_command()
                suffix = getattr(self, "wave_suffix", ".fst")
                return [[f"-{suffix[1:]}" if arg == "-fst" else arg for arg in command] for command in commands]

        return NamedNetsIcarus()

    class TopPortsVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            drop = {"--public-flat-rw"} | ({"--trace"} if waves == ".fst" else set())
            commands[0] = [arg for arg in commands[0] if arg not in drop]
            if waves == ".fst":
                commands[0].insert(1, "--trace-fst")
            return commands

    return TopPortsVerilator()


_BUILD_ARGS = {"icarus": [], "verilator": ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]}


def _flavour(sim: str, waves: str | None) -> str:
    """Builds differ by simulator and by what they record: Icarus picks VCD or FST when it runs,
    Verilator when it compiles."""
    if waves is None:
        return sim
    return f"{sim}-waves" if sim == "icarus" else f"{sim}-{waves[1:]}"


def _build(design: Design, sim: str, waves: str | None) -> tuple[object, Path]:
    """Build ``design`` for ``sim`` once per key: the Verilog's hash, and a hash of everything else the
    build depends on (the simulator and its version, cocotb's location and version, Python, the flags,
    the source as this simulator gets it, the nets it records), so that another checkout, a recreated
    virtual environment or an upgraded tool rebuilds instead of reusing a build that points elsewhere."""
    tools = toolchain_fingerprint(sim)
    text, digest = _verilog(design)
    flavour = _flavour(sim, waves)
    source_text = _for_simulator(text, sim)
    named = named_nets(text, design.toplevel) if waves is not None and sim == "icarus" else []
    parts = [tools, flavour, *_BUILD_ARGS[sim], source_text, *named]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
    build_dir = build_root() / f"{design.toplevel}-{digest}" / f"{flavour}-{key}"
    runner = _runner(sim, waves, named)
    with locked(build_dir.parent / f".{flavour}-{key}.lock"):
        build_dir.mkdir(parents=True, exist_ok=True)
        source = build_dir / f"{design.toplevel}.v"
        if not source.exists():
            source.write_text(source_text)
        sources = [source]
        if sim == "verilator":
            sources.insert(0, _top_ports_only(design.toplevel, build_dir))
        runner.build(
            sources=sources,
            hdl_toplevel=design.toplevel,
            build_dir=build_dir,
            timescale=TIMESCALE,
            waves=waves is not None,
            build_args=_BUILD_ARGS[sim],
            log_file=build_dir / "build.log",
        )
    return runner, build_dir


def waves_for_test(directory: Path, sim: str, run_name: str) -> Path:
    """Where a run records its waveform under ``$VMXU_WAVES``: named after the pytest test running it
    (``$PYTEST_CURRENT_TEST``) or else the run, and the simulator; FST unless ``$VMXU_WAVES_FORMAT`` is vcd."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0].rsplit("/", 1)[-1] or run_name
    name = re.sub(r"[^\w.\-]+", "_", test.replace(".py::", "-").replace("::", "-")).strip("_")
    if sim not in name:
        name = f"{name}-{sim}"
    suffix = os.environ.get("VMXU_WAVES_FORMAT", "fst").lower().lstrip(".")
    return directory / f"{name}.{suffix}"


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
    waves: Path | None = None,
    run_name: str = "run",
) -> CocotbResults:
    """Run a cocotb test module on ``design`` in ``sim``; the simulator is built once and reused.

    With ``waves``, the run records the design's named signals there, as VCD or FST after its suffix;
    without, ``$VMXU_WAVES`` (a directory) gets one per run, named after the test (``waves_for_test``)."""
    if waves is None and os.environ.get("VMXU_WAVES"):
        waves = waves_for_test(Path(os.environ["VMXU_WAVES"]), sim, run_name)
    suffix = None if waves is None else wave_suffix(waves)
    runner, build_dir = _build(design, sim, suffix)
    test_dir = build_dir / "runs" / f"{run_name}-{os.getpid()}"
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    log = test_dir / "sim.log"
    plusargs, test_args = [], []
    if waves is not None:
        waves = Path(waves).resolve()
        waves.parent.mkdir(parents=True, exist_ok=True)
        waves.unlink(missing_ok=True)
        runner.wave_suffix = suffix
        plusargs = [f"+dumpfile_path={waves}"] if sim == "icarus" else []
        test_args = ["--trace-file", str(waves)] if sim == "verilator" else []
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
        waves=waves is not None,
        plusargs=plusargs,
        test_args=test_args,
        timescale=TIMESCALE,
        log_file=log,
    )
    tests = _parse_results(results_xml)
    if not tests:
        raise RuntimeError(f"the {sim} simulation ended without results; see {log}")
    if waves is not None and not waves.exists():
        raise RuntimeError(f"the {sim} simulation wrote no waveform to {waves}; see {log}")
    return CocotbResults(tests, log, waves)
