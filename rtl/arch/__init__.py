"""Architectural tables of vmxu: one source of truth for the RTL, the model, the firmware and the tools.

Modules: ``fields`` (VMCS component encodings), ``layout`` (storage classes and
the VMCS-region layout), ``controls`` (control bits and supported settings),
``msrs`` (capability and platform MSRs), ``state`` (machine-state elements),
``errors`` (VM-instruction errors, exit reasons), ``ops`` (the unit's port).
"""

from . import controls, errors, fields, layout, msrs, ops, state

__all__ = ["controls", "errors", "fields", "layout", "msrs", "ops", "state"]
