"""Running images from files: raw binaries and ELF files (``run_image``, ``load_image``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from iss_words import image, li, store

from vmxu.rtl.arch.soc import FINISHER, FINISHER_PASS, RAM, finisher_fail
from vmxu.sim.iss import StopReason, load_image, run_image

EM_RISCV = 243
EM_X86_64 = 62


def finishing(code: int = 0) -> bytes:
    value = FINISHER_PASS if code == 0 else finisher_fail(code)
    return image(li(10, FINISHER.base), li(11, value), store("sw", 11, 0, 10))


def elf32(segments: list[tuple[int, bytes, int]], entry: int = 0, machine: int = EM_RISCV) -> bytes:
    """A minimal little-endian ELF32 executable: PT_LOAD segments (address, bytes, memsz)."""
    header_size, phdr_size = 52, 32
    offset = header_size + phdr_size * len(segments)
    phdrs, bodies = b"", b""
    for addr, body, memsz in segments:
        phdrs += struct.pack("<8I", 1, offset + len(bodies), addr, addr, len(body), memsz, 7, 4)
        bodies += body
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIIIIIHHHHHH", 2, machine, 1, entry, header_size, 0, 0, header_size, phdr_size, len(segments), 40, 0, 0
    )
    return header + phdrs + bodies


def test_run_raw_binary(tmp_path: Path) -> None:
    path = tmp_path / "pass.bin"
    path.write_bytes(finishing())
    result = run_image(path, max_instructions=100)
    assert (result.reason, result.exit_code, result.instructions, result.console) == (StopReason.PASS, 0, 5, "")
    assert result.trace == ()


def test_run_reports_failure_code(tmp_path: Path) -> None:
    path = tmp_path / "fail.bin"
    path.write_bytes(finishing(7))
    result = run_image(path, max_instructions=100)
    assert result.reason == StopReason.FAIL and result.exit_code == 7


def test_run_stops_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "loop.bin"
    path.write_bytes(image(0x0000_006F))  # j .
    result = run_image(path, max_instructions=50)
    assert result.reason == StopReason.LIMIT and result.exit_code is None and result.instructions == 50


def test_run_with_trace(tmp_path: Path) -> None:
    path = tmp_path / "pass.bin"
    path.write_bytes(finishing())
    result = run_image(path, max_instructions=100, trace=True)
    assert len(result.trace) == 5
    assert result.trace[0].startswith("00000000: 00100537 lui a0, 0x100")
    assert result.trace[-1].endswith("[0x00100000] = 0x00005555 mask 1111")


def test_elf_segments_load_with_their_bss(tmp_path: Path) -> None:
    path = tmp_path / "prog.elf"
    path.write_bytes(elf32([(0, finishing(), 64), (0x2000, b"\x01\x02", 8)], entry=0))
    segments, entry = load_image(path)
    assert entry == 0
    assert segments[0x2000] == b"\x01\x02" + bytes(6) and len(segments[0]) == 64
    assert run_image(path, max_instructions=100).reason == StopReason.PASS


def test_elf_entry_point_is_the_reset_vector(tmp_path: Path) -> None:
    path = tmp_path / "prog.elf"
    body = image(0x0000_006F) + finishing()  # j . at 0, the program at 4
    path.write_bytes(elf32([(0, body, len(body))], entry=4))
    assert run_image(path, max_instructions=100).reason == StopReason.PASS
    assert run_image(path, max_instructions=100, reset_vector=0).reason == StopReason.LIMIT


def test_elf_for_another_machine_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x86.elf"
    path.write_bytes(elf32([(0, finishing(), 0)], machine=EM_X86_64))
    with pytest.raises(ValueError, match="not a 32-bit RISC-V ELF"):
        load_image(path)


def test_elf_segment_outside_ram_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.elf"
    path.write_bytes(elf32([(RAM.end - 4, b"\0" * 8, 8)]))
    with pytest.raises(ValueError, match="outside RAM"):
        load_image(path)


def test_raw_image_too_big_for_ram(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(RAM.size + 4))
    with pytest.raises(ValueError, match="do not fit in RAM"):
        run_image(path, max_instructions=1)
