"""The RTL core against the ISS, instruction by instruction, on the whole SoC (Icarus and Verilator).

docs/cpu.md is the contract both implement. Every program of lockstep_programs
(each RV32I instruction with edge operands, CSRs, traps, interrupts, port I/O,
the VMX extension, seeded random mixes) and the hello firmware run on the RTL
SoC while the ISS follows; the first record that differs fails the test with
both records and the ones before it. Set VMXU_SEED to choose the random
programs' seeds (printed on failure).
"""

import os
import random

import pytest
from lockstep_programs import PROGRAMS, build, random_program

from vmxu.sim.cocotb.build import SOC, run_cocotb
from vmxu.sim.cocotb.toolchain import SIMULATORS
from vmxu.sim.iss.run import build_firmware

RANDOM_PROGRAMS = 4


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("programs")
    seed = int(os.environ.get("VMXU_SEED", random.randrange(2**32)))
    for name, body in PROGRAMS.items():
        (directory / f"{name}.bin").write_bytes(build(body))
    for n in range(RANDOM_PROGRAMS):
        (directory / f"random_{seed + n}.bin").write_bytes(build(random_program(seed + n)))
    (directory / "hello.elf").write_bytes(build_firmware("hello").read_bytes())
    return directory, seed


@pytest.mark.parametrize("sim", SIMULATORS)
def test_core_agrees_with_iss_on_every_program(sim, programs):
    directory, seed = programs
    results = run_cocotb(
        SOC, sim, "vmxu.sim.cocotb.soc_tests", testcase=["program"], extra_env={"VMXU_PROGRAMS": str(directory)}
    )
    assert len(results.tests) == len(list(directory.iterdir())), results.summary()
    assert not results.failed, f"random seed {seed}\n{results.summary()}"
