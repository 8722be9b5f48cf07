"""Reading the tools' numbers: yosys's cells from its JSON netlist, nextpnr's Fmax and utilisation from its report.

LUT4 counts are yosys's LUT4 cells; on ECP5 each carry cell (CCU2C) holds two
more LUT4s and is counted as two (PFUMX/L6MUX21 combine LUT outputs and are not
counted). On iCE40 a carry chain's LUTs are SB_LUT4 cells already.
"""

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "cell_counts",
    "lut4s",
    "flip_flops",
    "block_rams",
    "sprams",
    "NextpnrReport",
    "read_nextpnr_report",
    "utilisation_from_log",
]

_LUT_CELLS = {"ice40": ("SB_LUT4",), "ecp5": ("LUT4",)}
_FF_CELLS = {"ice40": ("SB_DFF",), "ecp5": ("TRELLIS_FF",)}
_BRAM_CELLS = {"ice40": ("SB_RAM40_4K",), "ecp5": ("DP16KD", "PDPW16KD")}


def cell_counts(netlist_json: Path, top: str) -> dict[str, int]:
    """How many cells of each type the flattened module ``top`` of a yosys JSON netlist holds."""
    design = json.loads(netlist_json.read_text())
    cells: dict[str, int] = {}
    for cell in design["modules"][top]["cells"].values():
        cells[cell["type"]] = cells.get(cell["type"], 0) + 1
    return cells


def _count(cells: dict[str, int], prefixes: tuple[str, ...]) -> int:
    return sum(n for name, n in cells.items() if name.startswith(prefixes))


def lut4s(cells: dict[str, int], family: str) -> int:
    carry_luts = 2 * cells.get("CCU2C", 0) if family == "ecp5" else 0
    return _count(cells, _LUT_CELLS[family]) + carry_luts


def flip_flops(cells: dict[str, int], family: str) -> int:
    return _count(cells, _FF_CELLS[family])


def block_rams(cells: dict[str, int], family: str) -> int:
    return _count(cells, _BRAM_CELLS[family])


def sprams(cells: dict[str, int]) -> int:
    """iCE40 UltraPlus single-port RAMs (256 kbit each)."""
    return cells.get("SB_SPRAM256KA", 0)


@dataclass
class NextpnrReport:
    #: Per clock: (achieved MHz, constrained MHz).
    fmax: dict[str, tuple[float, float | None]] = field(default_factory=dict)
    #: Per bel type used: (used, available).
    utilisation: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def fmax_mhz(self) -> float | None:
        """The slowest clock's Fmax (None when nextpnr reported none)."""
        return min((achieved for achieved, _ in self.fmax.values()), default=None)

    @property
    def overfull(self) -> dict[str, tuple[int, int]]:
        """Bel types the design needs more of than the device has."""
        return {bel: (used, available) for bel, (used, available) in self.utilisation.items() if used > available}


def read_nextpnr_report(report_json: Path) -> NextpnrReport:
    """The numbers of nextpnr's ``--report`` file (written when place and route completes)."""
    report = json.loads(report_json.read_text())
    fmax = {
        clock: (numbers["achieved"], numbers.get("constraint"))
        for clock, numbers in report.get("fmax", {}).items()
        if "achieved" in numbers
    }
    utilisation = {
        bel: (numbers["used"], numbers["available"])
        for bel, numbers in report.get("utilization", {}).items()
        if numbers.get("used")
    }
    return NextpnrReport(fmax, utilisation)


_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%$")


def utilisation_from_log(log: str) -> dict[str, tuple[int, int]]:
    """The first "Device utilisation" table of a nextpnr log: what packing needs, known even when placement fails."""
    utilisation: dict[str, tuple[int, int]] = {}
    lines = iter(log.splitlines())
    for line in lines:
        if line.startswith("Info: Device utilisation:"):
            break
    for line in lines:
        found = _UTILISATION_LINE.match(line.strip().replace("\t", " "))
        if not found:
            break
        used, available = int(found[2]), int(found[3])
        if used:
            utilisation[found[1]] = (used, available)
    return utilisation
