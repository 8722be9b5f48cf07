"""SMM on the RTL SoC, in lockstep with the ISS (docs/smm-soc.md): the SoC with guests (``Soc(guests=True)``: the
SMI command port, the SMRAM alias and decode, the core's SMI, RSM and its move into and out of SMM) runs SMM
handlers in assembly (tests/soc/smm_programs.py), and an STM under the dual-monitor treatment; every record, the
SMIs' own included, must equal the ISS's (``Iss(guests=True)``, sim/iss/smm.py).
"""

import pytest
from guest_programs import assert_agree_with_the_iss
from smm_programs import (
    dual_monitor_smi_from_a_guest,
    rsm_outside_smm_is_illegal,
    smbase_relocation,
    smram_closed_outside_smm,
)

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
    assert_agree_with_the_iss(PROGRAMS, sim, tmp_path)
