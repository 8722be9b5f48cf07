"""Running firmware on the ISS from a file, and building the firmware: what ``vmxu`` calls.

``run_image(path, max_instructions=...)`` loads an ELF (its PT_LOAD segments,
with pyelftools) or a raw binary (at address 0) and runs it until the test
finisher or the limit. ``build_firmware(demo)`` runs ``make`` in firmware/ and
returns the ELF; it names the missing compiler and how to install it when the
build cannot start.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from vmxu.rtl.arch.soc import RAM

from .core import Iss, RunResult
from .trace import format_retired

__all__ = ["run_image", "load_image", "build_firmware", "FirmwareBuildError", "FIRMWARE_DIR", "RunResult"]

#: firmware/ of the repository (the ISS is installed editable from it).
FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware"
#: The firmware demos that launch guests: they run on a SoC (or ISS) whose core runs them (docs/guests.md).
GUEST_DEMOS = frozenset({"hypervisor", "vmexit", "stm"})

_ELF_MAGIC = b"\x7fELF"
_EM_RISCV = "EM_RISCV"


def load_image(path: str | Path) -> tuple[dict[int, bytes], int]:
    """The image's segments (address -> bytes) and entry point: an ELF's PT_LOAD segments, or a raw binary at 0."""
    data = Path(path).read_bytes()
    if not data.startswith(_ELF_MAGIC):
        return {RAM.base: data}, RAM.base
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        try:
            elf = ELFFile(stream)
        except ELFError as error:
            raise ValueError(f"{path}: not a valid ELF file ({error})") from None
        if elf.elfclass != 32 or elf.header.e_machine != _EM_RISCV:
            raise ValueError(f"{path}: not a 32-bit RISC-V ELF ({elf.elfclass}-bit, {elf.header.e_machine})")
        segments = {}
        for segment in elf.iter_segments():
            if segment["p_type"] != "PT_LOAD" or segment["p_memsz"] == 0:
                continue
            addr, memsz = segment["p_paddr"], segment["p_memsz"]
            if not RAM.contains(addr, memsz):
                raise ValueError(f"{path}: segment at {addr:#x} ({memsz} bytes) is outside RAM")
            body = segment.data()
            segments[addr] = body + bytes(memsz - len(body))
        return segments, elf.header.e_entry


def run_image(
    path: str | Path,
    *,
    max_instructions: int,
    trace: bool = False,
    reset_vector: int | None = None,
    guests: bool = False,
) -> RunResult:
    """Run an ELF or raw image on the ISS until the finisher or ``max_instructions`` records.

    ``reset_vector`` defaults to the ELF's entry point (0 for a raw binary).
    With ``trace``, ``RunResult.trace`` holds one formatted line per record.
    With ``guests``, the core runs guests (docs/guests.md).
    """
    segments, entry = load_image(path)
    iss = Iss(segments, reset_vector=entry if reset_vector is None else reset_vector, guests=guests)
    lines: list[str] = []
    result = iss.run(max_instructions, on_retire=(lambda r: lines.append(format_retired(r))) if trace else None)
    if trace:
        return RunResult(result.console, result.instructions, result.exit_code, result.reason, tuple(lines))
    return result


class FirmwareBuildError(RuntimeError):
    """The firmware could not be built (missing compiler, make, or a compile error)."""


def build_firmware(
    demo: str, *, cc: str | None = None, build_dir: Path | None = None, firmware_dir: Path = FIRMWARE_DIR
) -> Path:
    """Build firmware/demos/``demo`` with ``make`` and return its ELF (``build_dir``/``demo``.elf).

    ``cc`` replaces the Makefile's compiler (default: clang from the ziglang
    package, run by this Python); ``build_dir`` the Makefile's build/ (the raw
    binary ``demo``.bin lands beside the ELF).
    """
    if not (firmware_dir / "Makefile").is_file():
        raise FirmwareBuildError(f"no firmware Makefile in {firmware_dir} (is this a source checkout?)")
    if not (firmware_dir / "demos" / demo).is_dir():
        demos = sorted(p.name for p in (firmware_dir / "demos").iterdir() if p.is_dir())
        raise FirmwareBuildError(f"no firmware demo {demo!r}; there are: {', '.join(demos)}")
    make = shutil.which("make")
    if make is None:
        raise FirmwareBuildError("`make` is not installed: apt-get install make")
    build = (firmware_dir / "build") if build_dir is None else Path(build_dir).resolve()
    command = [make, "-C", str(firmware_dir), f"PYTHON={sys.executable}", f"BUILD={build}", demo]
    if cc is None:
        if importlib.util.find_spec("ziglang") is None:
            raise FirmwareBuildError(
                "the firmware compiler is clang from the `ziglang` package, which is not installed: "
                f"{sys.executable} -m pip install ziglang (or pass cc=, e.g. riscv64-unknown-elf-gcc)"
            )
    else:
        program = shlex.split(cc)[0]
        if shutil.which(program) is None:
            raise FirmwareBuildError(
                f"the firmware compiler {program!r} is not on PATH: install it "
                "(Debian: apt-get install gcc-riscv64-unknown-elf) or use the default (pip install ziglang)"
            )
        command.append(f"CC={cc}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise FirmwareBuildError(f"building firmware demo {demo!r} failed:\n{done.stdout}{done.stderr}")
    elf = build / f"{demo}.elf"
    if not elf.is_file():
        raise FirmwareBuildError(f"make succeeded but {elf} is missing")
    return elf
