"""The core's retired instructions in a SoC waveform, from its trace port (rtl/cpu/ports.py TraceSignature).

A record is read at each rising clock edge where ``trace.valid`` is high, into
the ISS's ``Retired`` (sim/iss/trace.py), so ``vmxu wave --core`` prints them
as ``vmxu run --trace`` does, interleaved with the VMX unit's transactions.
"""

from __future__ import annotations

from vmxu.sim.iss.trace import Retired

from .reader import WaveError, Waves

__all__ = ["TRACE_MEMBERS", "trace_scope", "retired"]

TRACE_MEMBERS = (
    "valid", "pc", "insn", "rd", "rd_value", "trap", "cause", "vmx", "vmx_status",
    "store", "store_addr", "store_data", "store_mask",
)  # fmt: skip


def trace_scope(waves: Waves) -> str:
    """The outermost scope with the core's trace port (the SoC's top level)."""
    found = waves.scopes_with([f"trace__{m}" for m in TRACE_MEMBERS])
    if not found:
        raise WaveError(f"{waves.path} records no core trace port (trace__valid, trace__pc, ...): not a SoC waveform")
    return found[0]


def retired(waves: Waves, clock_scope: str) -> list[tuple[int, Retired]]:
    """(cycle, record) of every retired instruction; cycles count as the unit decoder counts them
    (rising edges of ``clock_scope``'s clock after its reset)."""
    scope = trace_scope(waves)
    edges = waves.rising_edges(f"{clock_scope}.clk")
    names = [f"{clock_scope}.rst"] + [f"{scope}.trace__{m}" for m in TRACE_MEMBERS]
    rows = waves.sample(names, edges)
    reset, columns = rows[0], dict(zip(TRACE_MEMBERS, rows[1:], strict=True))
    records = []
    cycle = -1
    for i in range(len(edges)):
        if reset[i] != 0 and cycle < 0:
            continue
        cycle += 1
        if columns["valid"][i]:
            values = {m: columns[m][i] or 0 for m in TRACE_MEMBERS}
            records.append((cycle, Retired.from_port(values)))
    return records
