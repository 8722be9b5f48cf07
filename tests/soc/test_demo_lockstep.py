"""Firmware demos on the RTL SoC in lockstep with the ISS, record by record (slow: `make test-slow`).

The default suite runs hello and the directed and random programs in lockstep
(test_lockstep.py, test_smm_rtl.py) and the demos on the RTL and the ISS with their
consoles compared (tests/cli); these runs check every record of the vmcs demo (645
thousand records) and of the stm demo (77 thousand: SMIs, RSMs and SMM's decode).
"""

import pytest

from vmxu.sim.firmware_run import run_firmware
from vmxu.sim.iss.run import build_firmware


@pytest.mark.slow
def test_vmcs_demo_agrees_with_iss_record_by_record():
    outcome = run_firmware(build_firmware("vmcs"), "verilator", max_cycles=10_000_000, lockstep=True)
    assert outcome.exit_code == 0, outcome.console[-2000:]
    assert outcome.lockstep_records >= outcome.instructions  # every retired instruction, and the traps


@pytest.mark.slow
def test_stm_demo_agrees_with_iss_record_by_record():
    """The stm demo (docs/smm-soc.md) in lockstep: SMIs, RSMs, SMM's bank and SMRAM/MSEG decode, every record."""
    outcome = run_firmware(build_firmware("stm"), "verilator", max_cycles=10_000_000, lockstep=True, guests=True)
    assert outcome.exit_code == 0, outcome.console[-2000:]
    assert outcome.lockstep_records >= outcome.instructions
