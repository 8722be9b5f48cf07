"""The vmcs firmware demo on the RTL SoC in lockstep with the ISS: 645 thousand records (slow: `make test-slow`).

The default suite runs hello and the directed and random programs in lockstep
(test_lockstep.py) and the vmcs demo on the RTL and the ISS with their consoles
compared (tests/cli); this run checks every record of the longest firmware.
"""

import pytest

from vmxu.sim.firmware_run import run_firmware
from vmxu.sim.iss.run import build_firmware


@pytest.mark.slow
def test_vmcs_demo_agrees_with_iss_record_by_record():
    outcome = run_firmware(build_firmware("vmcs"), "verilator", max_cycles=10_000_000, lockstep=True)
    assert outcome.exit_code == 0, outcome.console[-2000:]
    assert outcome.lockstep_records >= outcome.instructions  # every retired instruction, and the traps
