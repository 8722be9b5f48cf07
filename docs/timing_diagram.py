"""Draw the README's timing diagrams from recorded simulations of the RTL, with ``vmxu wave --wavedrom``.

Each picture is a real waveform: the script below runs on the unit in Icarus
Verilog (``vmxu replay --waves``), ``vmxu wave`` finds the requests in it, and
``vmxu wave --wavedrom --from C --to C`` draws the cycles around them, so the
pictures cannot drift from the RTL.

- docs/img/timing.svg: a VMREAD of an on-die field, then a VMPTRLD of a cached VMCS;
- docs/img/vm-exit.svg: a VM exit (VMCALL in a guest of examples/guest-exits.jsonl), with
  the machine-state writes that load the host's state.

    .venv/bin/pip install -e '.[docs]'
    .venv/bin/python docs/timing_diagram.py          # or: make docs
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "img"
VMXU = [sys.executable, "-m", "vmxu.cli"]

#: A VMM's first steps, then the two requests the first picture shows.
TIMING_SCRIPT = """\
{"op": "wrmsr", "msr": "0x3a", "value": 5}
{"op": "set", "element": "cr0", "value": "0x80000021"}
{"op": "set", "element": "cr4", "value": "0x2000"}
{"op": "write", "addr": "0x1000", "value": 1}
{"op": "write", "addr": "0x2000", "value": 1}
{"op": "vmxon", "addr": "0x1000"}
{"op": "vmptrld", "addr": "0x2000"}
{"op": "vmwrite", "field": "GUEST_RIP", "value": "0xfff0"}
{"op": "vmread", "field": "GUEST_RIP"}
{"op": "vmptrld", "addr": "0x2000"}
"""


def _vmxu(*args: str) -> str:
    done = subprocess.run([*VMXU, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"vmxu {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _record(script: Path, waves: Path) -> list[dict]:
    """The script's waveform on Icarus, and the transactions ``vmxu wave`` decodes from it."""
    _vmxu("replay", str(script), "--sim", "icarus", "--waves", str(waves))
    return [json.loads(line) for line in _vmxu("wave", str(waves)).splitlines()]


def _draw(waves: Path, first: dict, last: dict, out: Path, *signals: str) -> None:
    start, end = first["cycle"] - 1, last["cycle"] + last["latency"] + 1
    extra = [arg for name in signals for arg in ("--signal", name)]
    _vmxu("wave", str(waves), "--wavedrom", "--from", str(start), "--to", str(end), *extra, "-o", str(out))
    print(f"wrote {out.relative_to(ROOT)} (cycles {start}-{end})")


def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vmxu-docs-") as tmp:
        script = Path(tmp) / "timing.jsonl"
        script.write_text(TIMING_SCRIPT)
        waves = Path(tmp) / "timing.fst"
        log = _record(script, waves)
        vmread, vmptrld = log[-2], log[-1]
        for t in (vmread, vmptrld):
            print(f"{t['op'].upper()}: {t['latency']} cycles")
        _draw(waves, vmread, vmptrld, IMAGES / "timing.svg")

        waves = Path(tmp) / "guest-exits.fst"
        log = _record(ROOT / "examples" / "guest-exits.jsonl", waves)
        exit_ = next(t for t in log if t["op"] == "vmcall" and t["status"] == "exited")
        print(f"VM exit (VMCALL): {exit_['latency']} cycles")
        _draw(waves, exit_, exit_, IMAGES / "vm-exit.svg", "state.port__wr_en", "state.port__wr_id")
    return 0


if __name__ == "__main__":
    sys.exit(main())
