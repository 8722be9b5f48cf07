"""Which signals of the generated Verilog a waveform shows: those with a design name.

Amaranth's Verilog keeps every intermediate value of an expression as a net
named ``$N`` (unnamed signals as ``$signal$N``, the nets it joins submodule
ports with as ``port$N$M``);
a waveform that records them buries the design's own signals under thousands
of anonymous ones (3,062 of the unit's 5,498). The simulators are told to
record only the named ones: Icarus through an explicit ``$dumpvars`` list of
every named net of every instance, Verilator through ``tracing_off`` around
the anonymous declarations. Memories (arrays) are never dumped.
"""

import re
from collections.abc import Iterator

__all__ = ["is_anonymous", "named_nets", "hide_anonymous_from_verilator"]

_IDENT = r"(?:\\\S+|[A-Za-z_][\w$]*)"
_MODULE = re.compile(rf"^module ({_IDENT})\s*\(", re.MULTILINE)
_DECLARATION = re.compile(
    rf"^(\s*)(?:input|output|inout|wire|reg)(?:\s+signed)?(?:\s*\[[^\]]*\])?\s+({_IDENT})\s*(\[[^\]]*\])?\s*(?:=[^;]*)?;",
    re.MULTILINE,
)
_INSTANCE = re.compile(rf"^\s+({_IDENT})\s+({_IDENT})\s*\(\s*$", re.MULTILINE)
_ANONYMOUS = re.compile(r"^\\(?:\$|port\$\d+\$\d+$)")


def is_anonymous(name: str) -> bool:
    """A net without a design name, as written in the Verilog: Amaranth's numbered intermediates
    (``\\$12``), unnamed signals (``\\$signal$29``), port joins (``\\port$912$0``), Yosys's own
    (``\\$auto$...``)."""
    return _ANONYMOUS.match(name) is not None


def _modules(text: str) -> dict[str, str]:
    """Each module's body, by name as written (escaped names keep their backslash)."""
    starts = list(_MODULE.finditer(text))
    bodies = {}
    for i, match in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        bodies[match.group(1)] = text[match.end() : end]
    return bodies


def named_nets(text: str, top: str) -> list[str]:
    """Hierarchical references (``top.inst.name``; escaped names end with a space) of every named,
    non-array net of every instance under ``top``, as Icarus's ``$dumpvars`` takes them."""
    bodies = _modules(text)
    if top not in bodies:
        raise ValueError(f"the Verilog has no module {top!r}")

    def walk(module: str, path: str) -> Iterator[str]:
        body = bodies[module]
        seen = set()
        for match in _DECLARATION.finditer(body):
            name, array = match.group(2), match.group(3)
            if array or is_anonymous(name) or name in seen:
                continue
            seen.add(name)
            yield f"{path}.{name}" + (" " if name.startswith("\\") else "")
        for match in _INSTANCE.finditer(body):
            if match.group(1) in bodies:
                instance = match.group(2)
                yield from walk(match.group(1), f"{path}.{instance}" + (" " if instance.startswith("\\") else ""))

    return list(walk(top, top))


def hide_anonymous_from_verilator(text: str) -> str:
    """The Verilog with every anonymous declaration between ``tracing_off`` and ``tracing_on``."""

    def hide(match: re.Match) -> str:
        if not is_anonymous(match.group(2)):
            return match.group(0)
        return f"{match.group(1)}/*verilator tracing_off*/{match.group(0).lstrip()}/*verilator tracing_on*/"

    return _DECLARATION.sub(hide, text)
