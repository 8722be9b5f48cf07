"""The pure-Python reference model of the VMX unit: the oracle the RTL is compared with.

``VmxModel(memory).execute(op, index, value, size) -> Outcome`` mirrors the
unit's request port (docs/semantics.md); ``PhysicalMemory`` is the replay
platform's RAM.
"""

from .machine_state import MachineState
from .memory import RAM_BYTES, PhysicalMemory
from .outcome import Outcome
from .vmcs_cache import CacheEntryView, VmcsCache
from .vmx import NO_CURRENT_VMCS, VmxModel

__all__ = [
    "RAM_BYTES",
    "PhysicalMemory",
    "Outcome",
    "MachineState",
    "VmcsCache",
    "CacheEntryView",
    "VmxModel",
    "NO_CURRENT_VMCS",
]
