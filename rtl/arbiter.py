"""Joining the clients of a shared port: the checks on their names and the fixed-priority multiplexers.

The unit runs one operation at a time, so the blocks that share a port (the
cache's data port, the machine state's element port, the region port) never
use it in the same cycle. An arbiter therefore needs no grant logic: for each
group of members that one enable qualifies, the first client whose enable is
set owns the group, else the last client does, whatever its enable (its
addresses then reach the port without passing through it). The enables are
ORed; what the port answers goes to every client.
"""

from collections.abc import Mapping, Sequence

from amaranth import Module, Mux
from amaranth.lib import wiring

__all__ = ["check_clients", "join_by_priority"]


def check_clients(clients: Sequence[str], *, reserved: str) -> tuple[str, ...]:
    """The client names of an arbiter, as a tuple, if they are valid port names besides ``reserved``."""
    clients = tuple(clients)
    if not clients:
        raise ValueError("An arbiter needs at least one client")
    for name in clients:
        if not isinstance(name, str) or not name.isidentifier() or name == reserved:
            raise ValueError(f"Client names must be identifiers other than {reserved!r}, not {name!r}")
    if len(set(clients)) != len(clients):
        raise ValueError(f"Client names must be distinct, not {clients!r}")
    return clients


def join_by_priority(
    m: Module,
    target: wiring.PureInterface,
    ports: Sequence[wiring.PureInterface],
    groups: Mapping[str, Sequence[str]],
    answers: Sequence[str],
) -> None:
    """Statements joining ``ports`` (highest priority first) onto ``target``.

    ``groups`` maps each enable member to the members it qualifies; ``answers``
    are the members the target drives back to every client.
    """
    for enable, members in groups.items():
        for member in members:
            value = getattr(ports[-1], member)
            for port in reversed(ports[:-1]):
                value = Mux(getattr(port, enable).any(), getattr(port, member), value)
            m.d.comb += getattr(target, member).eq(value)
        either = getattr(ports[0], enable)
        for port in ports[1:]:
            either = either | getattr(port, enable)
        m.d.comb += getattr(target, enable).eq(either)
    for port in ports:
        for member in answers:
            m.d.comb += getattr(port, member).eq(getattr(target, member))
