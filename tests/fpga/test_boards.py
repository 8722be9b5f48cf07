"""The SoC on the iCEBreaker and the ULX3S (fpga/boards.py, fpga/build.py, `vmxu build`).

The builds print their numbers to the test log (``pytest -rP`` shows them).
The default suite builds both boards up to nextpnr's packing (the iCEBreaker
about 40 s, the ULX3S with guests about 70 s; each fails if its SoC no longer
fits); the full builds to a bitstream, with placement, routing and Fmax (the
UP5K 3-6 minutes, the ULX3S about 170 s on the 2-core build machine), are
marked ``slow`` (``make test-slow``, or
``.venv/bin/python -m pytest tests/fpga -m slow -rP``).
"""

import re
import subprocess
import sys

import pytest

from vmxu import cli
from vmxu.fpga import build as fpga_build
from vmxu.fpga.boards import BOARDS, uart_divisor
from vmxu.fpga.build import BuildError, build_board, prepare, read_image
from vmxu.rtl.arch.soc import FLASH_IMAGE_OFFSET
from vmxu.rtl.soc.flash_loader import MAGIC, flash_image
from vmxu.sim.iss.run import build_firmware


@pytest.fixture(scope="module")
def vmcs_elf(tmp_path_factory):
    return build_firmware("vmcs", build_dir=tmp_path_factory.mktemp("firmware"))


@pytest.fixture(scope="module")
def default_elf(tmp_path_factory):
    """Each board's default demo, built: the hypervisor where its SoC runs guests, else vmcs."""
    build_dir = tmp_path_factory.mktemp("defaults")
    return {name: build_firmware(fpga_build.default_demo(board), build_dir=build_dir) for name, board in BOARDS.items()}


def test_uart_divisors_give_57600_baud_within_half_a_percent():
    for clock_hz, divisor in ((12e6, 13), (25e6, 27)):
        assert uart_divisor(clock_hz) == divisor
        assert abs(clock_hz / (16 * divisor) / 57600 - 1) < 0.005


# -- elaboration (no tools) ---------------------------------------------------------


def test_icebreaker_top_uses_spram_the_flash_and_the_ftdi_uart():
    _, plan = prepare(BOARDS["icebreaker"], b"")
    rtlil = plan.files["top.il"]
    assert len(re.findall(r"cell \\SB_SPRAM256KA ", rtlil)) == 4
    pins = dict(re.findall(r"set_io (\S+) (\S+)", plan.files["top.pcf"]))
    # amaranth-boards' iCEBreaker: flash /CS 16, SCK 15, COPI 14, CIPO 17, /WP 12, /HOLD 13; UART tx 9, rx 6;
    # LEDs 11 (red), 37 (green).
    flash = {name.split("__")[1]: pin for name, pin in pins.items() if name.startswith("spi_flash_1x_0__")}
    assert flash == {"cs": "16", "clk": "15", "copi": "14", "cipo": "17", "wp": "12", "hold": "13"}
    assert pins["uart_0__tx__io"] == "9" and pins["uart_0__rx__io"] == "6"
    assert pins["led_r_0__io"] == "11" and pins["led_g_0__io"] == "37"
    assert "--timing-allow-fail" in plan.files["build_top.json"]


def test_ulx3s_top_holds_the_image_in_block_ram_and_drives_eight_leds():
    image = bytes.fromhex("13000000 6f000000")  # nop; j .
    _, plan = prepare(BOARDS["ulx3s"], image)
    assert "SB_SPRAM256KA" not in plan.files["top.il"]
    constraints = plan.files["top.lpf"]
    assert len(re.findall(r'LOCATE COMP "led_\d__io" SITE', constraints)) == 8
    assert 'LOCATE COMP "uart_0__tx__io" SITE "L4"' in constraints
    assert 'LOCATE COMP "button_fire_0__io" SITE "R1"' in constraints  # FIRE 1: an SMI (docs/smm-soc.md)
    assert "--timing-allow-fail" in plan.files["build_top.json"]


def test_a_button_press_is_one_pulse_whatever_its_bounces():
    """fpga/boards.py ``_press`` (the ULX3S's SMI button): a rising edge after two flip-flops, then deaf while
    it settles; a press that bounces is one pulse, a later press another."""
    from amaranth import Module, Signal
    from amaranth.lib import io
    from amaranth.sim import Simulator

    from vmxu.fpga.boards import _press

    m = Module()
    pin = io.SimulationPort("i", 1)
    pulse = _press(m, "button", pin, clock_hz=1000, settle_s=0.02)  # deaf for 20 cycles
    seen = Signal(8)
    m.d.sync += seen.eq(seen + pulse)
    pattern = [0] * 3 + [1, 0, 1, 0, 1] + [1] * 10 + [0] * 20 + [1] * 5 + [0] * 5

    async def testbench(ctx):
        for level in pattern:
            ctx.set(pin.i, level)
            await ctx.tick()
        await ctx.tick().repeat(4)
        assert ctx.get(seen) == 2

    sim = Simulator(m)
    sim.add_clock(1e-3)
    sim.add_testbench(testbench)
    sim.run()


def test_flash_image_is_the_header_then_the_padded_image():
    data = flash_image(b"\x01\x02\x03\x04\x05")
    assert data[:4] == b"VMXU" and int.from_bytes(data[:4], "little") == MAGIC
    assert int.from_bytes(data[4:8], "little") == 5
    assert data[8:] == b"\x01\x02\x03\x04\x05\x00\x00\x00"


def test_icebreaker_programming_puts_the_image_at_the_loaders_offset(tmp_path):
    commands = BOARDS["icebreaker"].program(tmp_path / "top.bin", {"image.bin": tmp_path / "image.bin"})
    assert commands == [f"iceprog {tmp_path / 'top.bin'}", f"iceprog -o 1M {tmp_path / 'image.bin'}"]
    assert FLASH_IMAGE_OFFSET == 1 << 20


# -- images ---------------------------------------------------------------------------


def test_an_image_that_needs_more_ram_than_the_board_has_is_refused(vmcs_elf):
    image, stack_top = read_image(vmcs_elf, 64 * 1024)
    assert 0 < len(image) <= stack_top <= 64 * 1024
    with pytest.raises(BuildError, match=r"vmcs\.elf needs \d+ bytes of RAM \(to __stack_top 0x[0-9a-f]+\); "):
        read_image(vmcs_elf, len(image))


def test_a_raw_binary_is_refused(tmp_path):
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"\x13\x00\x00\x00")
    with pytest.raises(BuildError, match="not a readable ELF image"):
        read_image(raw, 64 * 1024)


def test_the_ulx3s_runs_guests_and_the_icebreaker_refuses_a_guest_demo(tmp_path):
    """The ULX3S's SoC has the core's non-root operation and the unit's transitions; the UP5K cannot hold them,
    so a demo that launches guests is refused there, with the reason, before anything is built."""
    top = BOARDS["ulx3s"].top(b"")
    top._MustUse__silence = True  # looked at, not elaborated
    assert BOARDS["ulx3s"].guests and top.guests
    assert fpga_build.default_demo(BOARDS["ulx3s"]) == "hypervisor"
    assert not BOARDS["icebreaker"].guests and fpga_build.default_demo(BOARDS["icebreaker"]) == "vmcs"
    for demo in ("hypervisor", "vmexit"):
        with pytest.raises(BuildError, match=rf"the {demo} demo runs guests.*10,049 LUT4"):
            build_board("icebreaker", tmp_path / demo, demo=demo)
        assert not (tmp_path / demo).exists()
    with pytest.raises(BuildError, match="an image or a demo, not both"):
        build_board("ulx3s", tmp_path, image=tmp_path / "x.elf", demo="vmcs")
    both = subprocess.run(
        [sys.executable, "-m", "vmxu.cli", "build", "--board", "ulx3s", "--image", "x.elf", "--demo", "vmcs"],
        capture_output=True,
        text=True,
    )
    assert both.returncode == cli.EXIT_USAGE and "not allowed with argument" in both.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "vmxu.cli", "build", "--board", "icebreaker", "--demo", "hypervisor",
         "--work-dir", str(tmp_path / "cli")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert refused.returncode == cli.EXIT_USAGE and "runs guests" in refused.stderr


def test_cli_refuses_a_missing_image_and_an_unknown_board(tmp_path):
    missing = subprocess.run(
        [sys.executable, "-m", "vmxu.cli", "build", "--board", "ulx3s", "--image", str(tmp_path / "none.elf")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == cli.EXIT_USAGE and "no such image" in missing.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", "vmxu.cli", "build", "--board", "nexys"], capture_output=True, text=True
    )
    assert unknown.returncode == cli.EXIT_USAGE and "invalid choice" in unknown.stderr


def test_cli_exit_status_says_whether_a_bitstream_was_made(monkeypatch, capsys, tmp_path):
    class Report:
        fits = False

        def lines(self):
            return ["DOES NOT FIT"]

    monkeypatch.setattr(fpga_build, "build_board", lambda *args, **kwargs: Report())
    assert cli.main(["build", "--board", "icebreaker", "--work-dir", str(tmp_path)]) == cli.EXIT_MISMATCH
    Report.fits = True
    assert cli.main(["build", "--board", "icebreaker", "--work-dir", str(tmp_path)]) == 0
    assert "DOES NOT FIT" in capsys.readouterr().out


# -- full builds ----------------------------------------------------------------------


def _build(board, tmp_path, image, record_property, *, pack_only=False):
    messages: list[str] = []
    report = build_board(board, tmp_path, image=image, progress=messages.append, pack_only=pack_only)
    text = "\n".join(report.lines())
    print(text)
    record_property("build", text)
    assert any("yosys" in message for message in messages)
    assert report.luts > 0 and report.flip_flops > 0 and report.brams > 0
    assert report.fits, f"{board}: the SoC does not fit: {report.placed.overfull}"
    if board == "icebreaker":
        assert report.sprams == 4
        assert (tmp_path / "image.bin").read_bytes()[:4] == b"VMXU"
    return report, text


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_soc_fits_each_board_after_packing(board, tmp_path, default_elf, record_property):
    """Each board's SoC with its default demo fits its device (nextpnr's packing counts the cells)."""
    report, text = _build(board, tmp_path, default_elf[board], record_property, pack_only=True)
    for used, available in report.placed.utilisation.values():
        assert used <= available
    assert report.bitstream is None and report.fmax_mhz is None and "packing only" in text


@pytest.mark.slow
@pytest.mark.parametrize("board", sorted(BOARDS))
def test_board_builds_to_a_bitstream(board, tmp_path, default_elf, record_property):
    """Each board with its default demo: the ULX3S the hypervisor on the SoC with guests."""
    report, text = _build(board, tmp_path, default_elf[board], record_property)
    assert report.bitstream is not None and report.bitstream.is_file() and report.bitstream.stat().st_size > 0
    assert report.fmax_mhz is not None and report.fmax_mhz > 0
    assert "Fmax:" in text and "program:" in text
    assert f"guests: {'yes' if BOARDS[board].guests else 'no'}" in text
