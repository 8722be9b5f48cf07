"""The dual-monitor model under the unit's random stimulus: no sequence of requests crashes the oracle.

The random programs of sim/cocotb/stimulus.py (every request of the port, VMCSs, guests, SMIs and RSMs) run on
``VmxModel(dual_monitor=True)`` after firmware enabled the treatment (an MSEG header, IA32_SMM_MONITOR_CTL
written in SMM), with a VMCALL now and then to activate it. Every request must end in an outcome (a Python
exception is a bug in the model); over the seeds, the treatment must be activated and SMM VM exits happen.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.errors import ExitReason
from vmxu.rtl.arch.ops import Op, Status
from vmxu.rtl.arch.smm import (
    MSEG_CR3_OFFSET,
    MSEG_CS_SELECTOR,
    MSEG_EIP_OFFSET,
    MSEG_ESP_OFFSET,
    MSEG_FEATURES,
    MSEG_GDTR_BASE_OFFSET,
    MSEG_GDTR_LIMIT,
    MSEG_REVISION,
)
from vmxu.sim.cocotb.stimulus import MemoryWrite, RandomProgram
from vmxu.sim.model.memory import PhysicalMemory
from vmxu.sim.model.request import Request
from vmxu.sim.model.vmx import VmxModel

SEEDS = range(12)
OPERATIONS = 2000
MSEG = 0x80000


def _run(seed: int) -> tuple[Counter, bool]:
    rng = random.Random(seed)
    memory = PhysicalMemory()
    model = VmxModel(memory, dual_monitor=True)
    header = {MSEG_REVISION: msrs.MSEG_REVISION_ID, MSEG_FEATURES: rng.choice((0, 0, 1, 2)), MSEG_GDTR_LIMIT: 0x2F}
    header |= {MSEG_GDTR_BASE_OFFSET: 0x100, MSEG_CS_SELECTOR: 8, MSEG_EIP_OFFSET: 0x1000, MSEG_ESP_OFFSET: 0x3000}
    header |= {MSEG_CR3_OFFSET: 0x4000}
    for offset, value in header.items():
        memory.write(MSEG + offset, 4, value)
    for request in (Request(Op.SMI), Request(Op.WRMSR, msrs.IA32_SMM_MONITOR_CTL, MSEG | 1), Request(Op.RSM)):
        assert model.perform(request).status == Status.OK
    program = RandomProgram(seed)
    steps = itertools.chain(program.setup(), program.operations())
    seen: Counter = Counter()
    activated = False
    done = 0
    while done < OPERATIONS:
        step = next(steps)
        if isinstance(step, MemoryWrite):
            memory.write(step.addr, step.nbytes, step.value)
            continue
        done += 1
        request = Request(Op.VMCALL) if rng.random() < 0.01 else step
        outcome = model.perform(request)
        seen[(request.op, outcome.status, outcome.reason)] += 1
        activated |= model.dual_monitor_active
    return seen, activated


def test_random_requests_never_crash_the_dual_monitor_model():
    totals: Counter = Counter()
    activations = 0
    for seed in SEEDS:
        seen, activated = _run(seed)
        totals.update(seen)
        activations += activated
    assert activations > 0, "no seed activated the dual-monitor treatment"
    smm_exits = sum(n for (op, status, reason), n in totals.items() if op == Op.SMI and status == Status.EXITED)
    assert smm_exits > 0, "no SMI became an SMM VM exit"
    assert totals[(Op.VMCALL, Status.EXITED, int(ExitReason.VMCALL))] > 0
