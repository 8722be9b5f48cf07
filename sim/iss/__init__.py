"""The instruction-set simulator of vmxu's RV32 core: the RTL core's oracle in lockstep, and a firmware runner.

``Iss(image).step() -> Retired`` (docs/cpu.md is the contract); ``Iss.run``,
``run_image`` and ``build_firmware`` run firmware; ``LockstepChecker`` follows
the RTL's trace; ``format_retired`` prints a record with its disassembly.
"""

from .core import Iss, LockstepError, Override, RunResult, StopReason
from .lockstep import LockstepChecker, LockstepMismatch
from .run import FirmwareBuildError, build_firmware, load_image, run_image
from .trace import Retired, Store, differences, disassemble, format_retired

__all__ = [
    "Iss",
    "Override",
    "Retired",
    "Store",
    "RunResult",
    "StopReason",
    "LockstepError",
    "LockstepChecker",
    "LockstepMismatch",
    "run_image",
    "load_image",
    "build_firmware",
    "FirmwareBuildError",
    "differences",
    "disassemble",
    "format_retired",
]
