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

from vmxu.sim.cocotb.build import SOC, SOC_GUESTS, run_cocotb
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


#: The SoC with guests (the ULX3S's) on Verilator in the default suite (about 25 s), on Icarus behind slow (60 s).
SOCS = [
    pytest.param(sim, guests, marks=[pytest.mark.slow] if guests and sim == "icarus" else [])
    for guests in (False, True)
    for sim in SIMULATORS
]


@pytest.mark.parametrize(
    ("sim", "guests"), SOCS, ids=lambda value: {False: "soc", True: "soc-with-guests"}.get(value, value)
)
def test_core_agrees_with_iss_on_every_program(sim, guests, programs):
    """On the iCEBreaker's SoC and on the ULX3S's, whose core also runs guests (docs/guests.md): root
    operation is the same on both."""
    directory, seed = programs
    env = {"VMXU_PROGRAMS": str(directory)} | ({"VMXU_GUESTS": "1"} if guests else {})
    results = run_cocotb(SOC_GUESTS if guests else SOC, sim, "vmxu.sim.cocotb.soc_tests", testcase=["program"],
                         extra_env=env)  # fmt: skip
    assert len(results.tests) == len(list(directory.iterdir())), results.summary()
    assert not results.failed, f"random seed {seed}\n{results.summary()}"
