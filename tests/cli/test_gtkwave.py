"""GTKWave save files for a waveform (issue 9, "GTKWave speaks VMX"): sim/waves/gtkwave.py.

Waveforms come from real simulations (Icarus, both formats): the unit replaying
examples/guest-exits.jsonl, and the SoC running a small program. A save file
must name only signals the waveform declares, spelled as GTKWave spells them;
each translate filter must name every value of its rtl/arch table, once, as
GTKWave displays the value. With GTKWave installed (and Xvfb), GTKWave itself
opens the save file and shows the names.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vmxu.rtl.arch.errors import ExitReason, VmError
from vmxu.rtl.arch.events import ExceptionVector
from vmxu.rtl.arch.fields import FIELD_BY_ENCODING, FIELDS
from vmxu.rtl.arch.ops import Op, Status
from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, IO_PORTS
from vmxu.rtl.arch.state import ELEMENTS, element_id
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import li
from vmxu.sim.waves.gtkwave import filter_lines, groups, write_gtkw
from vmxu.sim.waves.reader import WaveError, Waves

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "guest-exits.jsonl"
UNIT_GROUPS = ["request", "response", "region bus", "cache", "machine state", "checks and transitions"]
SOC_GROUPS = ["core", *UNIT_GROUPS, "UART", "finisher"]
#: Each table's values and names, straight from rtl/arch (not from the module under test).
TABLES = {
    "op": {op.value: op.name for op in Op},
    "status": {status.value: status.name for status in Status},
    "vm_error": {error.value: error.name for error in VmError},
    "vector": {vector.value: vector.name for vector in ExceptionVector},
    "exit_reason": {reason.value: reason.name for reason in ExitReason},
    "field": {field.encoding: field.name for field in FIELDS},
    "element": {element_id(element.name): element.name for element in ELEMENTS},
}


def vmxu(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "vmxu.cli", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _program(path: Path) -> Path:
    """Print "ok" on the UART, then pass at the finisher (tests/soc/test_run_command.py's shape)."""
    uart = next(port.base for port in IO_PORTS if port.name == "uart")
    words = [li(10, uart)]
    for ch in "ok\n":
        words += [li(11, ord(ch)), asm.outb(10, 11)]
    words += [li(10, FINISHER.base), li(11, FINISHER_PASS), asm.sw(11, 0, 10), asm.jal(0, 0)]
    flat = [word for item in words for word in (item if isinstance(item, list) else [item])]
    path.write_bytes(b"".join(word.to_bytes(4, "little") for word in flat))
    return path


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Record a waveform by name (``unit.fst``, ``soc.vcd``...) once for the module: Icarus, from a real run."""
    directory = tmp_path_factory.mktemp("waves")
    paths: dict[str, Path] = {}

    def record(name: str) -> Path:
        if name not in paths:
            path = directory / name
            if path.stem == "unit":
                vmxu("replay", str(SCRIPT), "--sim", "icarus", "--waves", str(path))
            else:
                image = _program(directory / "ok.bin")
                vmxu("run", str(image), "--sim", "icarus", "--max-cycles", "20000", "--waves", str(path))
            paths[name] = path
        return paths[name]

    return record


@pytest.fixture(params=["unit.fst", "unit.vcd", "soc.fst", "soc.vcd"])
def waveform(request, recorded) -> Path:
    return recorded(request.param)


def declared_names(path: Path) -> set[str]:
    """Every signal as GTKWave names it, read from the file without the module's reader: the hierarchical
    name as declared (escapes kept) and a vector's bit range."""
    if path.suffix == ".vcd":
        scopes: list[str] = []
        names = set()
        with open(path) as f:
            for line in f:
                tokens = line.split()
                if not tokens:
                    continue
                if tokens[0] == "$scope":
                    scopes.append(tokens[2])
                elif tokens[0] == "$upscope":
                    scopes.pop()
                elif tokens[0] == "$var":
                    bits = tokens[5] if tokens[5] != "$end" else ""
                    names.add(".".join([*scopes, tokens[4]]) + bits)
                elif tokens[0] == "$enddefinitions":
                    break
        return names
    import pywellen

    variables = pywellen.Waveform(str(path)).all_vars()
    return {v.full_name + (f"[{v.bitwidth - 1}:0]" if v.bitwidth > 1 else "") for v in variables}


def parse_gtkw(text: str) -> tuple[list[str], list[str], list[tuple[str, str, int]]]:
    """The group titles, the signal lines (aliases dropped), and each filtered signal with its filter file
    and flags, of a save file."""
    titles, signals, filtered = [], [], []
    flags, filter_file = 0, None
    for line in text.splitlines():
        if line.startswith("@"):
            flags = int(line[1:], 16)
        elif line.startswith("^"):
            filter_file = line.split(" ", 1)[1]
        elif line.startswith("-"):
            if flags & (1 << 23):
                titles.append(line[1:])
        elif line and line[0] not in "[*>":
            name = line.split("} ", 1)[1] if line.startswith("+{") else line
            signals.append(name)
            if flags & (1 << 13):
                filtered.append((name, filter_file, flags))
    return titles, signals, filtered


def test_every_signal_the_save_file_names_is_in_the_waveform(waveform, tmp_path):
    written = write_gtkw(Waves(waveform), tmp_path / "view.gtkw")
    assert written[0] == tmp_path / "view.gtkw"
    titles, signals, filtered = parse_gtkw(written[0].read_text())
    assert titles == (UNIT_GROUPS if waveform.stem == "unit" else SOC_GROUPS)
    missing = sorted(set(signals) - declared_names(waveform))
    assert not missing, f"the save file names signals the waveform lacks: {missing[:5]}"
    unit = "vmx_unit" if waveform.stem == "unit" else "soc.unit"
    for signal in ("req__valid", "req__op[4:0]", "resp__status[3:0]", "bus__cyc", "state.port__rd_id[6:0]"):
        assert f"{unit}.{signal}" in signals
    if waveform.stem == "soc":
        assert {"soc.core.trace__pc[31:0]", "soc.core.trace__insn[31:0]", "soc.core.pc[31:0]"} <= set(signals)
        assert {"soc.uart.tx", "soc.uart.sent_data[7:0]", "soc.finisher.bus__cyc"} <= set(signals)
    # A filtered signal shows hex (the filters' left-hand sides) and names a filter file this call wrote.
    assert {name for name, _, _ in filtered} >= {f"{unit}.req__op[4:0]", f"{unit}.req__index[63:0]"}
    for name, filter_file, flags in filtered:
        assert flags & 0b10, f"{name} is filtered but not shown in hex"
        assert Path(filter_file) in written and Path(filter_file).is_absolute()
    assert f'[dumpfile] "{waveform}"' in written[0].read_text()


def _filter(path: Path) -> tuple[str, dict[str, str]]:
    table, digits = re.fullmatch(r"(\w+)-(\d+)hex\.txt", path.name).groups()
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        value, name = line.split(" ", 1)
        assert value not in entries, f"{path.name}: {value} twice"
        assert re.fullmatch(f"[0-9A-F]{{{digits}}}", value), f"{path.name}: {value} is not {digits} hex digits"
        entries[value] = name
    return table, entries


def test_every_filter_names_every_value_of_its_table_once(waveform, tmp_path):
    written = write_gtkw(Waves(waveform), tmp_path / "view.gtkw")
    tables = set()
    for path in written[1:]:
        table, entries = _filter(path)
        tables.add(table)
        digits = len(next(iter(entries)))
        expected = {f"{value:0{digits}X}": name for value, name in TABLES[table].items() if value < 16**digits}
        assert {value: entries[value] for value in expected if value in entries} == expected, path.name
        extra = set(entries) - set(expected)
        if table == "exit_reason":  # ENTRY_FAILED's full exit reason: bit 31 and a VM-entry failure's reason
            assert {int(value, 16) & 0x7FFF_FFFF for value in extra} <= {33, 34, 41}
        else:
            assert not extra, f"{path.name} names values its table lacks: {sorted(extra)[:4]}"
    assert tables == set(TABLES)


def test_a_filter_spells_values_as_gtkwave_shows_them():
    """One hex digit per 4 bits, leading zeros kept: the text GTKWave matches (case aside)."""
    assert "05 VMREAD" in filter_lines("op", 5)
    assert "1 SUCCEED" in filter_lines("status", 4)
    assert "0C UNSUPPORTED_VMCS_COMPONENT" in filter_lines("vm_error", 5)
    assert "0000000000004400 VM_INSTRUCTION_ERROR" in filter_lines("field", 64)
    assert "0D GP" in filter_lines("vector", 8)
    assert "0012 VMCALL" in filter_lines("exit_reason", 16)
    assert "0000000080000021 ENTRY_FAILURE_GUEST_STATE" in filter_lines("exit_reason", 64)
    assert f"{element_id('rflags'):02X} rflags" in filter_lines("element", 6)
    assert filter_lines("element", 6) == filter_lines("element", 7)  # both show two digits


class Hidden:
    """A waveform with some of its signals taken out (what another simulator might not record)."""

    def __init__(self, waves: Waves, hidden):
        self.waves = waves
        self.path = waves.path
        self.names = [name for name in waves.names if not hidden(name)]
        self._hidden = hidden

    def has(self, name: str) -> bool:
        return self.waves.has(name) and not self._hidden(name)

    def scopes_with(self, members):
        return Waves.scopes_with(self, members)

    def declared(self, name):
        return self.waves.declared(name)

    def rising_edges(self, clock):
        return self.waves.rising_edges(clock)

    def traces(self, names):
        return self.waves.traces(names)


def test_a_signal_missing_from_the_waveform_is_left_out(recorded, tmp_path):
    waves = Waves(recorded("unit.fst"))
    _, signals, _ = parse_gtkw(write_gtkw(waves, tmp_path / "all.gtkw")[0].read_text())
    assert "vmx_unit.req__op[4:0]" in signals
    without_op = Hidden(waves, lambda name: name == "vmx_unit.req__op")
    titles, signals, _ = parse_gtkw(write_gtkw(without_op, tmp_path / "no-op.gtkw")[0].read_text())
    assert "vmx_unit.req__op[4:0]" not in signals and "vmx_unit.req__index[63:0]" in signals
    assert titles == UNIT_GROUPS


def test_a_group_whose_signals_are_all_missing_is_not_written(recorded, tmp_path):
    waves = Waves(recorded("unit.vcd"))
    without_state = Hidden(waves, lambda name: name.startswith("vmx_unit.state."))
    assert [group.title for group in groups(without_state)] == [t for t in UNIT_GROUPS if t != "machine state"]
    text = write_gtkw(without_state, tmp_path / "no-state.gtkw")[0].read_text()
    assert "-machine state" not in text and not [line for line in text.splitlines() if ".state." in line]
    with pytest.raises(WaveError, match="no VMX unit or SoC signals"):
        write_gtkw(Hidden(waves, lambda name: True), tmp_path / "empty.gtkw")


_PROBE = """\
set out [open {%s} w]
gtkwave::setMarker %d
set n [gtkwave::getTotalNumTraces]
puts $out $n
for {set i 0} {$i < $n} {incr i} {
    puts $out "[gtkwave::getTraceNameFromIndex $i]|[gtkwave::getTraceValueAtMarkerFromIndex $i]"
}
close $out
gtkwave::/File/Quit
"""


@pytest.mark.skipif(not (shutil.which("gtkwave") and shutil.which("xvfb-run")), reason="needs gtkwave and xvfb-run")
@pytest.mark.parametrize("name", ["unit.fst", "unit.vcd"])
def test_gtkwave_opens_the_save_file_and_shows_names(name, recorded, tmp_path):
    waves = Waves(recorded(name))
    save = write_gtkw(waves, tmp_path / "view.gtkw")[0]
    valid, op, index = waves.traces(["vmx_unit.req__valid", "vmx_unit.req__op", "vmx_unit.req__index"])
    rises = [t for t, v in zip(valid.times, valid.values, strict=True) if v == 1]
    vmread = next(t for t in rises if op.at(t + 1) == Op.VMREAD.value)
    probe, shown = tmp_path / "probe.tcl", tmp_path / "shown.txt"
    probe.write_text(_PROBE % (shown, vmread))
    subprocess.run(["xvfb-run", "-a", "gtkwave", "-S", str(probe), str(save)], capture_output=True, timeout=120)
    count, *rows = shown.read_text().splitlines()
    values = dict(row.split("|", 1) for row in rows)
    expected = sum(len(group.rows) + 2 for group in groups(waves))  # each group adds its opening and closing line
    assert int(count) == expected, "GTKWave did not show every line of the save file"
    assert values["req__op[4:0]"] == "VMREAD"
    assert values["req__index[63:0]"] == FIELD_BY_ENCODING[index.at(vmread + 1)].name
