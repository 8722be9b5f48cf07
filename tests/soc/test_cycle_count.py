"""`vmxu run`'s cycle count is the design's, not the harness's: the same image gives the same counts on Icarus
(through cocotb, sim/cocotb/soc_tb.py) and on Verilator (the native main, sim/native/soc_main.cpp).

docs/tools.md defines the count: the rising clock edges from the first one after reset (the core's first
cycle) up to and including the one that writes the finisher. Both harnesses write the image with the SoC in
reset and release it in the same state, so neither the image's length nor how a harness writes it (the
native main skips zero words) moves a cycle; an image with an odd number of zero words once took one cycle
more on the native harness (issue 9).
"""

from pathlib import Path

import pytest

from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, IO_PORTS
from vmxu.rtl.cpu.core import CYCLES
from vmxu.sim.firmware_run import run_firmware
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li

UART = next(p.base for p in IO_PORTS if p.name == "uart")
#: The SoC's RAM acknowledges a clock after the strobe: one cycle more per bus access than ``CYCLES`` counts.
RAM_WAIT_STATES = 1
#: Cycles of the finishing store that the count includes: a store with its two bus accesses' wait states, less
#: the two cycles after the edge that writes the finisher (the data access's acknowledge, WRITE_BACK). What
#: remains: the fetch and its wait state, DECODE, EXECUTE and the strobe's cycle.
FINISHING_STORE = CYCLES["store"] + 2 * RAM_WAIT_STATES - 2


def _words(*items) -> list[int]:
    words = []
    for item in items:
        words += _words(*item) if isinstance(item, list) else [item]
    return words


def _finish() -> list[int]:
    return _words(li(10, FINISHER.base), li(11, FINISHER_PASS), asm.sw(11, 0, 10), asm.jal(0, 0))


#: name -> the image's words. Each ends with the finisher's pass.
IMAGES = {
    # Only ALU instructions before the finishing store: the count the design promises is known.
    "straight": _finish(),
    # A jump over an odd number of zero words, which the native harness does not write.
    "gap": _words(asm.jal(0, 4 * 16), [0] * 15, _finish()),
    # A loop, console output through the UART, and an even number of zero words.
    "loop_and_print": _words(
        li(5, 20),
        asm.addi(5, 5, -1),
        asm.bne(5, 0, -4),
        asm.jal(0, 4 * 3),
        [0] * 2,
        li(10, UART),
        [[li(11, ord(ch)), asm.outb(10, 11)] for ch in "ok\n"],
        _finish(),
    ),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("cycle-count")
    paths = {}
    for name, words in IMAGES.items():
        paths[name] = directory / f"{name}.bin"
        paths[name].write_bytes(b"".join(word.to_bytes(4, "little") for word in words))
    return paths


# One program in the default suite, the others in `make test-slow` (the suite's time).
_NAMES = [n if n == "straight" else pytest.param(n, marks=pytest.mark.slow) for n in sorted(IMAGES)]


@pytest.mark.parametrize("name", _NAMES)
def test_icarus_and_native_verilator_count_the_same_cycles_and_instructions(images, name):
    icarus = run_firmware(images[name], "icarus", max_cycles=100_000)
    verilator = run_firmware(images[name], "verilator", max_cycles=100_000)  # no waves: the native harness
    assert (icarus.exit_code, verilator.exit_code) == (0, 0), (icarus.reason, verilator.reason)
    assert (verilator.cycles, verilator.instructions) == (icarus.cycles, icarus.instructions)


def test_the_count_starts_at_the_first_fetch_and_ends_at_the_finishing_write(images):
    """Straight-line ALU instructions cost ``CYCLES["alu"]`` and a RAM wait state each, the first as any other:
    the first fetch starts from reset, not from an acknowledge left over from the load."""
    alu_instructions = len(IMAGES["straight"]) - 2  # all but the store and the final jump
    expected = alu_instructions * (CYCLES["alu"] + RAM_WAIT_STATES) + FINISHING_STORE
    for backend in ("icarus", "verilator"):
        outcome = run_firmware(images["straight"], backend, max_cycles=100_000)
        assert (outcome.cycles, outcome.instructions) == (expected, alu_instructions), backend
