"""The firmware builds, is plain RV32I, and its generated files match rtl/arch (docs/firmware.md)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from vmxu.rtl.arch.fields import FIELDS
from vmxu.rtl.arch.isa import INSTRUCTIONS
from vmxu.rtl.arch.soc import RAM
from vmxu.sim.iss import FirmwareBuildError, Iss, build_firmware, run_image
from vmxu.sim.iss.run import FIRMWARE_DIR


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_headers", FIRMWARE_DIR / "gen_headers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date() -> None:
    assert load_generator().main(["--check"]) == 0, "run: make -C firmware headers"


def test_memory_map_of_the_linker_script_is_the_socs_ram() -> None:
    text = (FIRMWARE_DIR / "include" / "vmxu_memory.ld").read_text()
    assert f"ORIGIN = 0x{RAM.base:08X}, LENGTH = 0x{RAM.size:08X}" in text
    assert "INCLUDE include/vmxu_memory.ld" in (FIRMWARE_DIR / "link.ld").read_text()


def test_isa_header_has_every_instruction_and_field() -> None:
    isa = (FIRMWARE_DIR / "include" / "vmxu_isa.h").read_text()
    vmcs = (FIRMWARE_DIR / "include" / "vmxu_vmcs.h").read_text()
    for insn in INSTRUCTIONS:
        assert f"vmxu_insn_{insn.name}(" in isa
        assert f".insn r 0x0b, {insn.funct3}, {insn.funct7}," in isa
    for field in FIELDS:
        assert f"#define VMCS_{field.name} 0x{field.encoding:04X}u" in vmcs
        assert f'{{"{field.name}", 0x{field.encoding:04X}u}},' in vmcs


@pytest.mark.parametrize("demo", ["hello", "vmcs", "hypervisor"])
def test_demo_is_a_plain_rv32i_elf_at_address_0(firmware: dict[str, Path], demo: str) -> None:
    elf_path = firmware[demo]
    assert elf_path.with_suffix(".bin").is_file()
    iss = Iss()
    with open(elf_path, "rb") as stream:
        elf = ELFFile(stream)
        assert (elf.elfclass, elf.little_endian, elf.header.e_machine) == (32, True, "EM_RISCV")
        assert elf.header.e_flags == 0  # no RVC, soft float
        assert elf.header.e_entry == 0
        for section in elf.iter_sections():
            if section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR:
                data = section.data()
                words = [int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4)]
                illegal = [f"{section['sh_addr'] + 4 * i:#x}: {w:#010x}" for i, w in enumerate(words)
                           if not iss.implements(w)]  # fmt: skip
                assert not illegal, f"{demo}: words the core does not implement: {illegal[:5]}"


def test_raw_binary_runs_like_the_elf(firmware: dict[str, Path]) -> None:
    from_elf = run_image(firmware["hello"], max_instructions=100_000)
    from_bin = run_image(firmware["hello"].with_suffix(".bin"), max_instructions=100_000)
    assert from_bin == from_elf


def test_unknown_demo_is_refused() -> None:
    with pytest.raises(FirmwareBuildError, match="no firmware demo 'nope'; there are: hello, hypervisor, stm, vmcs"):
        build_firmware("nope")


def test_missing_compiler_is_named() -> None:
    with pytest.raises(FirmwareBuildError, match="'riscv99-nothing-gcc' is not on PATH.*apt-get install"):
        build_firmware("hello", cc="riscv99-nothing-gcc")


GCC = shutil.which("riscv64-unknown-elf-gcc") or shutil.which("riscv32-unknown-elf-gcc")


@pytest.mark.skipif(GCC is None, reason="no riscv*-unknown-elf-gcc (Debian: gcc-riscv64-unknown-elf)")
def test_a_system_gcc_builds_the_same_demos(tmp_path: Path) -> None:
    elf = build_firmware("vmcs", cc=Path(GCC).name, build_dir=tmp_path)
    result = run_image(elf, max_instructions=2_000_000)
    assert result.passed, result.console[-2000:]
    with open(elf, "rb") as stream:
        assert ELFFile(stream).header.e_flags == 0
