"""Guests on the RTL core, in lockstep with the ISS (docs/guests.md): the SoC built with guests
(``Soc(guests=True)``: the core's SAVE and MOVE sequences and banked trap registers, the unit
with VM entries and exits) runs a VMM that launches a guest; every record of host and guest,
across the exits and the entry, must equal the ISS's (``Iss(guests=True)``).
"""

import pytest
from guest_programs import (
    assert_agree_with_the_iss,
    cpuid_then_vmcall,
    guest_events,
    injected_event,
    interrupt_window_exit,
    preemption_timer_exit,
    rdtsc_offset_then_exiting,
    timer_interrupt_exit,
)

from vmxu.sim.cocotb.toolchain import SIMULATORS
from vmxu.sim.iss import Iss

PROGRAMS = {
    "cpuid_then_vmcall": cpuid_then_vmcall,
    "guest_events": guest_events,
    "injected_event": injected_event,
    "timer_interrupt_exit": timer_interrupt_exit,
    "rdtsc_offset_then_exiting": rdtsc_offset_then_exiting,
    "preemption_timer_exit": preemption_timer_exit,
    "interrupt_window_exit": interrupt_window_exit,
}


@pytest.mark.parametrize("name", PROGRAMS)
def test_the_program_passes_on_the_iss(name):
    result = Iss(PROGRAMS[name](), guests=True).run(100_000)
    assert result.passed, result


@pytest.mark.parametrize("sim", SIMULATORS)
def test_host_and_guest_agree_with_the_iss_record_by_record(sim, tmp_path):
    assert_agree_with_the_iss(PROGRAMS, sim, tmp_path)


@pytest.mark.slow
def test_the_hypervisor_demo_agrees_with_the_iss_record_by_record():
    """firmware/demos/hypervisor (a VMM in C, its guest's I/O, CPUID, MSR, CR0, breakpoint, HLT and timer exits)
    on the RTL SoC with guests, every record of host and guest checked against the ISS (Verilator: about a
    million cycles, two minutes: behind ``slow``, ``make test-slow``)."""
    from vmxu.sim.firmware_run import run_firmware
    from vmxu.sim.iss.run import build_firmware

    image = build_firmware("hypervisor")
    rtl = run_firmware(image, "verilator", max_cycles=2_000_000, lockstep=True, guests=True)
    assert rtl.exit_code == 0, rtl.console
    assert rtl.lockstep_records >= rtl.instructions > 100_000
    assert "guest: hello from the guest" in rtl.console
