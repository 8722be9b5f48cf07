"""Transaction scripts (`vmxu replay`): parser, result formatting, backend-neutral runner, model backend.

# Ref: shared/vmx/REPLAY.md.
"""

from .model_backend import ModelPlatform, run_model
from .request import UNIT_OPS, Request, is_memory_op, to_request
from .result import ENTRY_NOT_IMPLEMENTED_WHY, STATUS_NAMES, format_outcome, format_rejected, result_line
from .runner import Difference, Platform, compare, run
from .script import MEMORY_OPS, OPS, VMX_OPS, Operation, Rejected, parse_line, parse_script

__all__ = [
    "parse_script",
    "parse_line",
    "Operation",
    "Rejected",
    "OPS",
    "VMX_OPS",
    "MEMORY_OPS",
    "Request",
    "UNIT_OPS",
    "to_request",
    "is_memory_op",
    "STATUS_NAMES",
    "ENTRY_NOT_IMPLEMENTED_WHY",
    "format_outcome",
    "format_rejected",
    "result_line",
    "Platform",
    "run",
    "Difference",
    "compare",
    "ModelPlatform",
    "run_model",
]
