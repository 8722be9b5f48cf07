"""SMM on the RTL SoC, in lockstep with the ISS (docs/smm-soc.md): the SoC with guests (``Soc(guests=True)``: the
SMI command port, the SMRAM alias and decode, the core's SMI, RSM and its move into and out of SMM) runs SMM
handlers in assembly (tests/soc/smm_programs.py), and an STM under the dual-monitor treatment; every record, the
SMIs' own included, must equal the ISS's (``Iss(guests=True)``, sim/iss/smm.py).
"""

import pytest
from smm_programs import (
    dual_monitor_smi_from_a_guest,
    rsm_outside_smm_is_illegal,
    smbase_relocation,
    smram_closed_outside_smm,
)

from vmxu.sim.cocotb.build import SOC_GUESTS, run_cocotb
from vmxu.sim.cocotb.toolchain import SIMULATORS
from vmxu.sim.iss import Iss

PROGRAMS = {
    "smbase_relocation": smbase_relocation,
    "smram_closed_outside_smm": smram_closed_outside_smm,
    "rsm_outside_smm_is_illegal": rsm_outside_smm_is_illegal,
    "dual_monitor_smi_from_a_guest": dual_monitor_smi_from_a_guest,
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_program_passes_on_the_iss(name):
    result = Iss(PROGRAMS[name](), guests=True).run(100_000)
    assert result.passed, result


@pytest.mark.parametrize("sim", SIMULATORS)
def test_smis_and_smm_agree_with_the_iss_record_by_record(sim, tmp_path):
    for name, make in PROGRAMS.items():
        (tmp_path / f"{name}.bin").write_bytes(make())
    env = {"VMXU_PROGRAMS": str(tmp_path), "VMXU_GUESTS": "1"}
    results = run_cocotb(SOC_GUESTS, sim, "vmxu.sim.cocotb.soc_tests", testcase=["program"], extra_env=env)
    assert len(results.tests) == len(PROGRAMS), results.summary()
    assert not results.failed, results.summary()
