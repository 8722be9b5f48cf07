"""Run the SoC on Verilator at full speed: a C++ main instead of cocotb, for `vmxu run --sim verilator`.

cocotb reaches every signal through VPI (the model is built with
--public-flat-rw) and costs an order of magnitude in speed; a run that only
needs the console and the exit code does not need it. The binary is built
once per SoC Verilog (cached beside the cocotb builds) and loads each image at
run time through the SoC's load port.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from vmxu.sim.cocotb.build import SOC, build_root, locked, soc_verilog
from vmxu.sim.cocotb.toolchain import toolchain_fingerprint

__all__ = ["build_native_soc", "run_native"]

_MAIN = Path(__file__).with_name("soc_main.cpp")
_FLAGS = [
    "-O3", "--x-assign", "fast", "--x-initial", "fast",
    "-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
]  # fmt: skip


def build_native_soc() -> Path:
    """The Verilator binary of the SoC, built on first use and reused while its key holds: the SoC's Verilog,
    the main (sim/native/soc_main.cpp), the flags and the toolchain (sim/cocotb/build.py keys its builds so)."""
    tools = toolchain_fingerprint("verilator")
    text, digest = soc_verilog()
    key = hashlib.sha256("\0".join([tools, *_FLAGS, _MAIN.read_text()]).encode()).hexdigest()[:12]
    work = build_root() / f"{SOC.toplevel}-{digest}" / f"native-{key}"
    binary = work / "obj_dir" / "soc_sim"
    with locked(work / ".lock"):
        if binary.exists():
            return binary
        source = work / f"{SOC.toplevel}.v"
        source.write_text(text)
        cmd = [
            "verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1), *_FLAGS,
            "--top-module", SOC.toplevel, "-o", "soc_sim", str(source), str(_MAIN),
        ]  # fmt: skip
        log = work / "build.log"
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        log.write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise RuntimeError(f"the Verilator build of the SoC failed (see {log})")
    return binary


def run_native(image: bytes, max_cycles: int, *, echo: bool = False) -> dict:
    """Run a RAM image (bytes from address 0); console, cycles, instructions, exit code, seconds."""
    binary = build_native_soc()
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(image)
        f.flush()
        console = bytearray()
        with subprocess.Popen(
            [binary, f.name, str(max_cycles)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            for chunk in iter(lambda: process.stdout.read1(4096), b""):
                console += chunk
                if echo:
                    sys.stdout.write(chunk.decode(errors="replace"))
                    sys.stdout.flush()
            stderr = process.stderr.read().decode()
        if process.returncode != 0:
            raise RuntimeError(f"the Verilator SoC run failed: {stderr.strip()}")
    result = json.loads(stderr.strip().splitlines()[-1])
    result["console"] = console.decode(errors="replace")
    return result
