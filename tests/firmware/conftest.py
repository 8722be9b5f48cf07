"""Firmware built once per test session (per xdist worker), into a temporary build directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmxu.sim.iss import build_firmware

DEMOS = ("hello", "vmcs", "hypervisor", "stm")


@pytest.fixture(scope="session")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """demo name -> ELF built with the default compiler (clang from the ziglang package)."""
    build = tmp_path_factory.mktemp("firmware-build")
    return {demo: build_firmware(demo, build_dir=build) for demo in DEMOS}
