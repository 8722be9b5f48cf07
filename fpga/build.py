"""Build the SoC for a board into a bitstream, and report what it uses and how fast it runs (``vmxu build``).

The board's platform (amaranth-boards) writes the design and its build plan;
each of the plan's commands (yosys, nextpnr, icepack/ecppack) runs here with
the YoWASP tools (fpga/toolchain.py), so progress shows tool by tool. nextpnr
runs with ``--timing-allow-fail``: missing the board clock is a result in the
report, not an error. A design that needs more of a resource than the device
has is also a report (what packing counted, no bitstream); a tool that fails
otherwise raises RuntimeError with the tail of its log.

Resource numbers: LUT4, FF, block RAM and SPRAM are the cells yosys maps
(fpga/reports.py); ``placed`` is nextpnr's utilisation of the device. Fmax is
nextpnr's after routing, for the board clock's domain (the only one).
"""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .boards import BAUD, BOARDS, Board, uart_divisor
from .reports import (
    NextpnrReport,
    block_rams,
    cell_counts,
    flip_flops,
    lut4s,
    read_nextpnr_report,
    sprams,
    utilisation_from_log,
)
from .synth import TARGETS
from .toolchain import run_tool, tool

__all__ = ["BuildError", "BoardReport", "build_board", "default_demo", "read_image", "prepare"]

#: Extra nextpnr options: missing the clock is reported, not fatal; the report holds Fmax and utilisation.
NEXTPNR_OPTIONS = ("--timing-allow-fail", "--report", "top-report.json")


class BuildError(Exception):
    """The build cannot start: an image that does not fit the board's RAM, or is not an ELF."""


@dataclass
class BoardReport:
    board: Board
    image: Path
    image_bytes: int
    stack_top: int
    clock_mhz: float
    cells: dict[str, int]
    placed: NextpnrReport
    seconds: float
    work_dir: Path
    bitstream: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return TARGETS[self.board.target].family

    @property
    def luts(self) -> int:
        return lut4s(self.cells, self.family)

    @property
    def flip_flops(self) -> int:
        return flip_flops(self.cells, self.family)

    @property
    def brams(self) -> int:
        return block_rams(self.cells, self.family)

    @property
    def sprams(self) -> int:
        return sprams(self.cells)

    @property
    def fits(self) -> bool:
        return not self.placed.overfull

    @property
    def fmax_mhz(self) -> float | None:
        return self.placed.fmax_mhz

    @property
    def uart_divisor(self) -> int:
        return uart_divisor(self.clock_mhz * 1e6)

    @property
    def baud(self) -> float:
        return self.clock_mhz * 1e6 / (16 * self.uart_divisor)

    def resources(self) -> list[tuple[str, int, int]]:
        """(what, used, available) for each resource the report shows."""
        target = TARGETS[self.board.target]
        rows = [
            ("LUT4", self.luts, target.luts),
            ("FF", self.flip_flops, target.flip_flops),
            (f"block RAM ({target.bram_kbits} kbit)", self.brams, target.brams),
        ]
        if self.board.sprams:
            rows.append(("SPRAM (256 kbit)", self.sprams, self.board.sprams))
        return rows

    def lines(self) -> list[str]:
        board = self.board
        out = [f"{board.title}: {self.image.name} ({self.image_bytes} bytes, needs RAM to {self.stack_top:#x})", ""]
        width = max(len(what) for what, _, _ in self.resources())
        out.append(f"  {'resource':<{width}}  {'used':>6}  {'total':>6}  {'%':>4}")
        for what, used, available in self.resources():
            out.append(f"  {what:<{width}}  {used:>6}  {available:>6}  {100 * used / available:>3.0f}%")
        utilisation = sorted(self.placed.utilisation.items())
        placed = ", ".join(f"{bel} {used}/{available}" for bel, (used, available) in utilisation)
        out.append(f"  nextpnr's cells: {placed}")
        out.append("")
        if self.fmax_mhz is None:
            out.append("Fmax: not reported (the design was not placed and routed)")
        else:
            board_clock = "met" if self.fmax_mhz >= self.clock_mhz else "NOT met"
            issue = "met" if self.fmax_mhz >= board.fmax_target_mhz else "not met"
            out.append(
                f"Fmax: {self.fmax_mhz:.1f} MHz; board clock {self.clock_mhz:g} MHz: {board_clock}; "
                f"the SoC's target {board.fmax_target_mhz:g} MHz: {issue}"
            )
        error = 100 * (self.baud - BAUD) / BAUD
        out += [
            f"RAM: {board.ram}",
            f"VMX unit: {board.cache_entries} VMCS cache entries ({board.cache_reason})",
            f"guests: {'yes' if board.guests else 'no'} ({board.guests_reason})",
            f"UART: {self.baud:.0f} baud 8N1 (divisor {self.uart_divisor} at {self.clock_mhz:g} MHz; "
            f"{BAUD} {error:+.2f}%): set your terminal to {BAUD} 8N1",
            f"LEDs: {board.leds}",
            f"build time: {self.seconds:.0f} s (logs and netlists: {self.work_dir})",
        ]
        if not self.fits:
            over = ", ".join(f"{bel} {used}/{available}" for bel, (used, available) in self.placed.overfull.items())
            out.append(f"DOES NOT FIT: the design needs {over}; no bitstream")
            return out
        if self.bitstream is None:
            out.append("fits the device (packing only: no placement, routing or bitstream)")
            return out
        out.append(f"bitstream: {self.bitstream}")
        for name, path in self.files.items():
            out.append(f"{name}: {path}")
        out.append("program:")
        out += [f"  {command}" for command in board.program(self.bitstream, self.files)]
        return out


def read_image(path: Path, ram_size: int) -> tuple[bytes, int]:
    """RAM's bytes from 0 for the ELF ``path``, and its ``__stack_top``; BuildError if it does not fit ``ram_size``."""
    from vmxu.sim.firmware_run import ram_image

    try:
        with open(path, "rb") as file:
            symbols = ELFFile(file).get_section_by_name(".symtab")
            found = symbols.get_symbol_by_name("__stack_top") if symbols is not None else None
    except (OSError, ELFError) as error:
        raise BuildError(f"{path}: not a readable ELF image ({error})") from None
    if not found:
        raise BuildError(f"{path}: no __stack_top symbol (firmware/link.ld defines it: where the image's RAM ends)")
    stack_top = found[0]["st_value"]
    try:
        image, _segments = ram_image(path)
    except ValueError as error:
        raise BuildError(str(error)) from None
    if stack_top > ram_size or len(image) > ram_size:
        needs = max(stack_top, len(image))
        raise BuildError(
            f"{path.name} needs {needs} bytes of RAM (to __stack_top {stack_top:#x}); "
            f"this board's SoC has {ram_size} ({ram_size // 1024} KiB)"
        )
    return image, stack_top


def prepare(board: Board, image: bytes):
    """The board's platform and Amaranth build plan for ``image`` (files: top.il, constraints, build_top.json)."""
    platform = board.platform()
    plan = platform.prepare(board.top(image), name="top", nextpnr_opts=" ".join(NEXTPNR_OPTIONS))
    return platform, plan


#: nextpnr's options that write the placed and routed design: meaningless after packing alone (nextpnr-ecp5
#: stops with an exception writing --textcfg of an unplaced design).
_PLACED_OUTPUTS = ("--textcfg", "--asc")


def _without_outputs(command: list[str]) -> list[str]:
    """``command`` without the options (and their file arguments) of ``_PLACED_OUTPUTS``."""
    kept: list[str] = []
    skip = False
    for arg in command:
        if skip:
            skip = False
        elif arg in _PLACED_OUTPUTS:
            skip = True
        else:
            kept.append(arg)
    return kept


def default_demo(board: Board) -> str:
    """The demo a board's build runs when told none: the hypervisor where the SoC runs guests, else vmcs."""
    return "hypervisor" if board.guests else "vmcs"


def build_board(
    name: str,
    work_dir: Path,
    *,
    image: Path | None = None,
    demo: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
    pack_only: bool = False,
) -> BoardReport:
    """Build the SoC with ``image``, or firmware/demos/``demo`` built first, for board ``name`` in ``work_dir``.

    Without either: the board's default demo (:func:`default_demo`). A demo that runs guests on a board
    whose SoC leaves them out is refused (:class:`BuildError`). ``pack_only`` stops nextpnr after packing
    (``--pack-only``): the resources and whether the design fits, without placement, routing, Fmax or
    bitstream (seconds instead of minutes on a full device).
    """
    from vmxu.sim.iss.run import GUEST_DEMOS, build_firmware

    board = BOARDS[name]
    start = time.monotonic()
    if image is not None and demo is not None:
        raise BuildError("give an image or a demo, not both")
    if image is None:
        demo = demo or default_demo(board)
        if demo in GUEST_DEMOS and not board.guests:
            raise BuildError(f"the {demo} demo runs guests, and the {board.title} SoC has none: {board.guests_reason}")
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if image is None:
        progress(f"building firmware/demos/{demo}")
        image = build_firmware(demo, build_dir=work_dir / "firmware")
    ram, stack_top = read_image(Path(image), board.ram_size)

    progress(f"{board.name}: elaborating the SoC")
    platform, plan = prepare(board, ram)
    commands = json.loads(plan.files["build_top.json"])["commands"]
    if pack_only:
        place = next(i for i, command in enumerate(commands) if command[0].startswith("nextpnr"))
        commands = [*commands[:place], [*_without_outputs(commands[place]), "--pack-only"]]
    resolved = [[*tool(command[0]), *command[1:]] for command in commands]  # a missing tool is named first
    for stale in ("top-report.json", board.bitstream):
        (work_dir / stale).unlink(missing_ok=True)
    for file_name, content in plan.files.items():
        data = content.encode() if isinstance(content, str) else content
        (work_dir / file_name).write_bytes(data)

    placed = NextpnrReport()
    for original, command in zip(commands, resolved, strict=True):
        tool_name = original[0]
        # yosys (-l) and nextpnr (--log) keep their own full logs: an error is at the end of those.
        own_log = next((work_dir / command[i + 1] for i, arg in enumerate(command) if arg in ("-l", "--log")), None)
        try:
            run_tool(command, work_dir / f"{tool_name}.log", progress)
        except RuntimeError as error:
            log = own_log.read_text() if own_log is not None and own_log.is_file() else ""
            placed = NextpnrReport(utilisation=utilisation_from_log(log))
            if not tool_name.startswith("nextpnr") or not placed.overfull:
                tail = "\n".join(log.splitlines()[-10:])
                raise RuntimeError(f"{error}\n{own_log}:\n{tail}" if log else str(error)) from None
            progress(f"{board.name}: the design does not fit the device")
            break
        if tool_name.startswith("nextpnr"):
            placed = read_nextpnr_report(work_dir / "top-report.json")

    report = BoardReport(
        board=board,
        image=Path(image),
        image_bytes=len(ram),
        stack_top=stack_top,
        clock_mhz=platform.default_clk_frequency / 1e6,
        cells=cell_counts(work_dir / "top.json", "top"),
        placed=placed,
        seconds=0.0,
        work_dir=work_dir,
    )
    for file_name, content in board.extra_files(ram).items():
        (work_dir / file_name).write_bytes(content)
        report.files[file_name] = work_dir / file_name
    if report.fits and not pack_only:
        report.bitstream = work_dir / board.bitstream
    report.seconds = time.monotonic() - start
    return report
