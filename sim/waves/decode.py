"""Turning a waveform back into what the VMX unit did: one transaction per request on its port.

The unit is found by name (the scope that holds ``req__valid``, ``resp__valid``
and ``bus__cyc``: ``vmx_unit`` standalone, ``soc.unit`` in the SoC). Every
signal is sampled just before each rising edge of the unit's clock, as the
unit's registers sample them: a request is accepted at an edge where
``req.valid`` and ``req.ready`` are high, its response taken at the first later
edge where ``resp.valid`` and ``resp.ready`` are; the bus words between the
two belong to it. A transaction is written in the result format of
``vmxu replay`` (shared/vmx/REPLAY.md "Statuses"), through the same
functions the replay backends use (``from_request``, ``outcome_from_response``,
``format_outcome``), plus the ``cycle`` that accepted the request (rising edges
since the first after reset) and its ``latency`` (cycles to the response, the
bench's measure).

``script_lines`` writes the transactions as a replay script: before each
request, a ``write`` of every memory word the unit then read whose value the
script's memory would not hold (memory starts zero and follows the unit's own
bus writes), so that the script replays the waveform on the model. Platform
``read``s and malformed lines of the original script never reach the port and
are not in a waveform.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.sim.model.outcome import Outcome, outcome_from_response
from vmxu.sim.model.request import Request
from vmxu.sim.replay.request import from_request
from vmxu.sim.replay.result import format_outcome
from vmxu.sim.replay.script import Operation

from .reader import WaveError, Waves

__all__ = [
    "BusWord",
    "Transaction",
    "decode",
    "unit_scope",
    "results",
    "script_lines",
    "text_line",
    "TEXT_HEADER",
    "PORT_SIGNALS",
]

_REQUEST = ("valid", "ready", "op", "size", "index", "value", "length", "gpr", "io_size")
_RESPONSE = ("valid", "ready", "status", "error", "vector", "value")
_BUS = ("cyc", "stb", "we", "adr", "dat_w", "dat_r", "sel", "ack", "err")
#: The unit's port and bus, as members of its scope.
PORT_SIGNALS = (
    ("clk", "rst")
    + tuple(f"req__{m}" for m in _REQUEST)
    + tuple(f"resp__{m}" for m in _RESPONSE)
    + tuple(f"bus__{m}" for m in _BUS)
)


@dataclass(frozen=True)
class BusWord:
    """One word the unit moved on its memory bus: ``address`` in bytes; ``error``: the bus answered err."""

    cycle: int
    address: int
    write: bool
    data: int
    select: int
    error: bool


@dataclass
class Transaction:
    """A request, the response it got, and the bus words in between."""

    request: Request
    cycle: int
    outcome: Outcome | None = None
    latency: int | None = None
    bus: list[BusWord] = field(default_factory=list)

    def result(self, number: int) -> dict[str, Any]:
        """The transaction in ``vmxu replay``'s result format, ``line`` its ``number``, with cycle and latency."""
        line = from_request(self.request)
        operation = Operation(number, line["op"], {}, line)
        if self.outcome is None:
            result = {"line": number, **line, "status": "pending"}
        else:
            result = format_outcome(operation, self.outcome)
        result["cycle"] = self.cycle
        if self.latency is not None:
            result["latency"] = self.latency
        return result


def unit_scope(waves: Waves, scope: str | None = None) -> str:
    """The scope of the VMX unit: ``scope`` if given, else the one scope holding its port."""
    if scope is not None:
        missing = [s for s in PORT_SIGNALS if not waves.has(f"{scope}.{s}")]
        if missing:
            raise WaveError(f"{waves.path}: scope {scope!r} has no {', '.join(missing[:4])}: not a VMX unit")
        return scope
    found = waves.scopes_with(list(PORT_SIGNALS))
    # A module that only wires the unit up (the SoC) may hold nets of the same names: the unit is the innermost.
    found = [s for s in found if not any(other.startswith(s + ".") for other in found)]
    if not found:
        raise WaveError(f"{waves.path} records no VMX unit (no scope with req__valid, resp__valid and bus__cyc)")
    if len(found) > 1:
        raise WaveError(f"{waves.path} records {len(found)} VMX units ({', '.join(found)}): choose one with --scope")
    return found[0]


def _row(rows: dict[str, list[int | None]], i: int, prefix: str) -> dict[str, int]:
    """The members of one interface at edge ``i`` (x or z read as 0)."""
    return {name[len(prefix) :]: column[i] or 0 for name, column in rows.items() if name.startswith(prefix)}


def _request(r: dict[str, int]) -> Request:
    size = OperandSize(r["size"])
    return Request(Op(r["op"]), r["index"], r["value"], size, r["length"], r["gpr"], r["io_size"] + 1)


def _bus_word(b: dict[str, int], cycle: int) -> BusWord:
    write = bool(b["we"])
    return BusWord(cycle, b["adr"] * 4, write, b["dat_w"] if write else b["dat_r"], b["sel"], bool(b["err"]))


def decode(waves: Waves, scope: str | None = None) -> list[Transaction]:
    """Every transaction on the unit's port, in order (the last may have no response yet)."""
    scope = unit_scope(waves, scope)
    edges = waves.rising_edges(f"{scope}.clk")
    columns = waves.sample([f"{scope}.{s}" for s in PORT_SIGNALS], edges)
    rows = dict(zip(PORT_SIGNALS, columns, strict=True))
    transactions: list[Transaction] = []
    pending: list[Transaction] = []
    reset, bus_ack, bus_err = rows["rst"], rows["bus__ack"], rows["bus__err"]
    took, accepted = rows["resp__ready"], rows["req__ready"]
    cycle = -1
    for i in range(len(edges)):
        if reset[i] != 0:
            if cycle < 0:
                continue
            raise WaveError(f"{waves.path}: the unit is reset again at {edges[i]} (cycle {cycle + 1}): not decoded")
        cycle += 1
        if (bus_ack[i] or bus_err[i]) and pending and rows["bus__cyc"][i] and rows["bus__stb"][i]:
            pending[0].bus.append(_bus_word(_row(rows, i, "bus__"), cycle))
        if took[i] and rows["resp__valid"][i] and pending:
            done = pending.pop(0)
            response = _row(rows, i, "resp__")
            done.outcome = outcome_from_response(
                done.request.op, Status(response["status"]), response["error"], response["vector"], response["value"]
            )
            done.latency = cycle - done.cycle
        if accepted[i] and rows["req__valid"][i]:
            transaction = Transaction(_request(_row(rows, i, "req__")), cycle)
            transactions.append(transaction)
            pending.append(transaction)
    return transactions


def text_line(transaction: Transaction, number: int) -> str:
    """A transaction as a table row: cycle, latency, the op and its operands, the status and what it carries."""
    result = transaction.result(number)
    line = from_request(transaction.request)
    operands = " ".join(f"{k}={v}" for k, v in line.items() if k != "op")
    shown = {"line", "cycle", "latency", "status", *line}
    outcome = " ".join(f"{k}={v}" for k, v in result.items() if k not in shown)
    latency = result.get("latency", "")
    row = f"{result['cycle']:>8} {latency:>5}  {line['op']:<9} {operands:<44} {result['status']:<12} {outcome}"
    return row.rstrip()


TEXT_HEADER = f"{'cycle':>8} {'lat':>5}  {'op':<9} {'operands':<44} {'status':<12} result"


def results(transactions: Sequence[Transaction]) -> list[dict[str, Any]]:
    """The transactions in the result format of ``vmxu replay``, numbered from 1."""
    return [t.result(n) for n, t in enumerate(transactions, start=1)]


def script_lines(transactions: Sequence[Transaction], *, source: str = "") -> Iterator[str]:
    """A replay script of the transactions, with the memory writes that make the model read what the unit read."""
    yield f"# vmxu wave --script{': ' + source if source else ''}"
    yield "# the requests on the VMX unit's port; each 'write' sets a word the unit read next"
    memory: dict[int, int] = {}
    for transaction in transactions:
        writes: dict[int, int] = {}
        image = dict(memory)
        for word in transaction.bus:
            if word.error:
                continue
            if word.write:
                mask = sum(0xFF << (8 * b) for b in range(4) if word.select >> b & 1)
                image[word.address] = image.get(word.address, 0) & ~mask | word.data & mask
            elif image.get(word.address, 0) != word.data:
                writes.setdefault(word.address, word.data)
                image[word.address] = word.data
        for address, data in writes.items():
            yield json.dumps({"op": "write", "addr": f"{address:#x}", "value": f"{data:#x}"})
        memory = image
        yield json.dumps(from_request(transaction.request))
