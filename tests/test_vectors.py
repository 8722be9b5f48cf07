"""The directed SDM-rule vectors of tests/vectors: the committed files are current, and every rule holds on the model.

tests/vectors/generate.py writes one transaction script per rule family and
keeps the expected outcome of each operation (status, error, vector, value).
These tests replay the committed files on the reference model (no simulator);
the RTL bench (tests/rtl) replays the same files against the RTL.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from vmxu.rtl.arch.fields import FIELD_BY_NAME, FIELDS
from vmxu.sim.replay.model_backend import run_model
from vmxu.sim.replay.script import Operation, parse_script

VECTORS = Path(__file__).parent / "vectors"
REGENERATE = "run `.venv/bin/python tests/vectors/generate.py` and commit tests/vectors"


def _load_generator():
    spec = importlib.util.spec_from_file_location("vmxu_tests_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


generator = _load_generator()
SCRIPTS = generator.SCRIPTS
NAMES = sorted(SCRIPTS)
FIELDS_SCRIPTS = [name for name in NAMES if name.startswith("fields_")]


def _committed_text(name: str) -> str:
    path = VECTORS / f"{name}.jsonl"
    assert path.exists(), f"{path} is missing: {REGENERATE}"
    return path.read_text()


@cache
def _model_results(name: str) -> dict[int, dict[str, Any]]:
    """The model's result for each operation of the committed file, by file line."""
    return {result["line"]: result for result in run_model(_committed_text(name))}


# -- (a) the committed files are what the generator writes ------------------------------


def test_every_vector_file_comes_from_the_generator():
    on_disk = {path.stem for path in VECTORS.glob("*.jsonl")}
    assert on_disk == set(SCRIPTS), (
        f"files without a generator function: {sorted(on_disk - set(SCRIPTS))}; "
        f"missing files: {sorted(set(SCRIPTS) - on_disk)}; {REGENERATE}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_vector_file_is_current(name):
    assert _committed_text(name) == SCRIPTS[name].text(), (
        f"tests/vectors/{name}.jsonl differs from its generator: {REGENERATE}"
    )


# -- (b) every rule holds on the model ------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_rule_vectors_are_well_formed(name):
    """No line is rejected."""
    bad = [
        f"line {line}: {SCRIPTS[name].lines[line - 1]} -> {result.get('why')}"
        for line, result in _model_results(name).items()
        if result["status"] == "rejected"
    ]
    assert not bad, f"{name}: rejected lines:\n" + "\n".join(bad)


@pytest.mark.parametrize("name", NAMES)
def test_every_operation_has_an_expectation(name):
    script = SCRIPTS[name]
    assert sorted(_model_results(name)) == script.operation_lines
    missing = [line for line in script.operation_lines if line not in script.expected]
    assert not missing, f"{name}: operations without an expected outcome at lines {missing}"


def _mismatch(expect, result: dict[str, Any]) -> str | None:
    wanted = {"status": expect.status}
    for key in ("error", "vector", "reason", "event", "error_code", "abort", "pending"):
        if getattr(expect, key) is not None:
            wanted[key] = getattr(expect, key)
    if expect.value is not None:
        wanted["value"] = f"{expect.value:#x}"
    got = {key: result.get(key) for key in wanted}
    return None if got == wanted else f"expected {wanted}, model gave {got}"


@pytest.mark.parametrize("name", NAMES)
def test_rule_holds_on_model(name):
    """Each annotated operation ends with the status (and error, vector, value) the rule says."""
    script = SCRIPTS[name]
    results = _model_results(name)
    failures = []
    for line, expect in sorted(script.expected.items()):
        problem = _mismatch(expect, results[line])
        if problem is not None:
            failures.append(f"line {line}: {script.lines[line - 1]}\n    {problem}")
    assert not failures, f"{name}: {len(failures)} operations disagree with the rules:\n" + "\n".join(failures[:20])


# -- (c) the fields scripts reach every field at both operand sizes -------------------------


def test_fields_scripts_cover_every_field_at_both_operand_sizes():
    seen: set[tuple[int, int]] = set()
    for name in FIELDS_SCRIPTS:
        for item in parse_script(_committed_text(name)):
            if isinstance(item, Operation) and item.op in ("vmread", "vmwrite"):
                seen.add((int(item.args["field"]), int(item.args["size"])))
    missing = [f"{f.name} ({size}-bit)" for f in FIELDS for size in (32, 64) if (f.encoding, size) not in seen]
    assert not missing, f"fields never used with this operand size in {FIELDS_SCRIPTS}: {missing}"


def test_fields_are_given_by_name_and_by_encoding():
    forms = set()
    for name in NAMES:
        for item in parse_script(_committed_text(name)):
            if isinstance(item, Operation) and "field" in item.echo:
                forms.add("name" if str(item.echo["field"]).upper() in FIELD_BY_NAME else "encoding")
    assert forms == {"name", "encoding"}
