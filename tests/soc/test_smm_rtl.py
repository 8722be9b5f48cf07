"""SMM on the RTL SoC, in lockstep with the ISS (docs/smm-soc.md): the SoC with guests (``Soc(guests=True)``: the
SMI command port, the SMRAM alias and decode, the core's SMI, RSM and its move into and out of SMM) runs SMM
handlers in assembly (tests/soc/smm_programs.py), and an STM under the dual-monitor treatment; every record, the
SMIs' own included, must equal the ISS's (``Iss(guests=True)``, sim/iss/smm.py).
"""

import json

import pytest
from guest_programs import assert_agree_with_the_iss
from smm_programs import (
    button_smi,
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
    assert_agree_with_the_iss(PROGRAMS, sim, tmp_path)


def test_a_buttons_smi_on_the_iss_is_a_plain_smi():
    """The ISS's button (``CoreSmm.press``): the handler finds the save map's I/O state field 0."""
    iss = Iss(button_smi(), guests=True)
    for _ in range(50):
        iss.step()
    iss.smm.press()
    assert iss.run(10_000).passed


@pytest.mark.parametrize("sim", SIMULATORS)
def test_the_socs_smi_button_raises_a_plain_smi(sim, tmp_path):
    """``Soc.smi_button`` (the ULX3S's FIRE 1): a one-cycle press latches an SMI that the core sends as a plain
    SMI (not an I/O SMI: the save map's I/O state field is 0), at the reset SMBASE through the alias."""
    image, result = tmp_path / "button_smi.bin", tmp_path / "result.json"
    image.write_bytes(button_smi())
    env = {"VMXU_IMAGE": str(image), "VMXU_BUTTON_CYCLE": "400", "VMXU_RESULT": str(result)}
    results = run_cocotb(SOC_GUESTS, sim, "vmxu.sim.cocotb.soc_tests", testcase=["button"], extra_env=env)
    assert len(results.tests) == 1, results.summary()
    assert not results.failed, results.summary()
    assert json.loads(result.read_text())["exit_code"] == 0
