"""The VMX unit's RTL against the reference model, on Icarus Verilog and on Verilator (cocotb).

Each test runs one cocotb test of sim/cocotb/unit_tests.py on a simulator
build shared by all of them; the scoreboard there compares every operation's
status, error, vector and value, and the whole bus memory, with the model.
Set VMXU_SEED to replay a random run (its seed is in the failure message).
"""

import os
import random
from pathlib import Path

import pytest

from vmxu.sim.cocotb.build import UNIT, run_cocotb
from vmxu.sim.cocotb.toolchain import SIMULATORS

MODULE = "vmxu.sim.cocotb.unit_tests"
VECTORS = Path(__file__).parent.parent / "vectors"
RANDOM_OPERATIONS = 10_000
RANDOM_DUAL_MONITOR_OPERATIONS = 2_000


def _run(sim: str, testcase: str, **env: str):
    seed = int(os.environ.get("VMXU_SEED", random.randrange(2**32)))
    results = run_cocotb(UNIT, sim, MODULE, testcase=[testcase], seed=seed, extra_env=env, run_name=testcase)
    assert results.tests, f"no cocotb test ran (seed {seed})"
    assert not results.failed, f"seed {seed}\n{results.summary()}"
    return results


@pytest.mark.parametrize("sim", SIMULATORS)
def test_random_operations_agree_with_model(sim):
    """10,000 seeded random operations, with bus wait states and response backpressure."""
    _run(sim, "random_differential", VMXU_RANDOM_OPERATIONS=str(RANDOM_OPERATIONS))


@pytest.mark.parametrize("sim", SIMULATORS)
def test_sdm_rule_vectors_agree_with_model(sim):
    """Every directed SDM-rule script of tests/vectors, operation by operation."""
    results = _run(sim, "vector", VMXU_VECTORS=str(VECTORS))
    assert len(results.tests) == len(list(VECTORS.glob("*.jsonl")))


@pytest.mark.parametrize(
    "sim", [pytest.param(sim, marks=pytest.mark.slow) if sim == "icarus" else sim for sim in SIMULATORS]
)
def test_random_dual_monitor_operations_agree_with_model(sim):
    """2,000 seeded random operations after firmware enabled the dual-monitor treatment (on Icarus in
    ``make test-slow``: the suite's time), with VMCALLs that activate it: SMM VM exits, returns from SMM
    and guests in SMM as the random requests make them."""
    _run(sim, "random_dual_monitor", VMXU_RANDOM_DUAL_MONITOR=str(RANDOM_DUAL_MONITOR_OPERATIONS))
