"""The on-die VMCS cache's data port: one signature every client holds, and the arbiter that joins them.

# Ref: Intel SDM vol. 3C, 24.11.1 "Software use of virtual-machine control
# structures" (the processor may keep an active VMCS's data on die).

Several blocks read or write cached fields, one at a time: the region port
(fill and write-back), the entry checker (its walk), the field-access block
(VMREAD/VMWRITE of on-die fields) and the dispatcher (the VMfailValid error
number); a transition sequencer will be one more. Each holds a
``CachePortSignature`` and an ``CacheArbiter`` joins them onto the cache's one
port with ``wiring.connect``.
"""

from collections.abc import Sequence

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arbiter import check_clients, join_by_priority
from ..arch.layout import SLOTS_PER_VMCS

__all__ = ["CachePortSignature", "CacheArbiter", "SLOT_BITS", "check_entries"]

SLOT_BITS = (SLOTS_PER_VMCS - 1).bit_length()


def check_entries(entries: int) -> int:
    """``entries`` if it is a valid cache size, else the error a cache signature raises; returns the entry bits."""
    if not isinstance(entries, int) or isinstance(entries, bool):
        raise TypeError(f"Cache entries must be an integer, not {entries!r}")
    if entries < 2 or entries & (entries - 1):
        raise ValueError(f"Cache entries must be a power of two, at least 2, not {entries!r}")
    return (entries - 1).bit_length()


class CachePortSignature(wiring.Signature):
    """A data port of the on-die VMCS cache, seen from a client.

    The cache stores 64-bit slots, ``SLOTS_PER_VMCS`` per entry, written by
    32-bit halves. A read has a latency of one clock cycle: ``rd_data`` holds
    the slot from the cycle after ``rd_en`` and keeps it while no client reads.
    A write takes effect at the next clock edge; a read of the slot written in
    the same cycle returns an undefined value (``bram.registered_read``).

    Parameters
    ----------
    entries : int
        VMCSs the cache holds: a power of two, at least 2.

    Members
    -------
    rd_entry : Out(entry_bits)
        The cache entry to read.
    rd_slot : Out(SLOT_BITS)
        The slot of that entry to read.
    rd_en : Out(1)
        Read ``rd_slot`` of ``rd_entry`` in this cycle.
    rd_data : In(64)
        The slot read, from the cycle after ``rd_en``.
    wr_entry : Out(entry_bits)
        The cache entry to write.
    wr_slot : Out(SLOT_BITS)
        The slot of that entry to write.
    wr_data : Out(64)
        The word to write, to either half.
    wr_en : Out(2)
        Halves of ``wr_data`` to write: bit 0 is bits 31:0, bit 1 bits 63:32 (a client writing
        one 32-bit word puts it in both halves and enables one).
    """

    def __init__(self, entries: int):
        self.entries = entries
        self.entry_bits = check_entries(entries)
        super().__init__(
            {
                "rd_entry": Out(self.entry_bits),
                "rd_slot": Out(SLOT_BITS),
                "rd_en": Out(1),
                "rd_data": In(64),
                "wr_entry": Out(self.entry_bits),
                "wr_slot": Out(SLOT_BITS),
                "wr_data": Out(64),
                "wr_en": Out(2),
            }
        )

    def __eq__(self, other):
        return isinstance(other, CachePortSignature) and self.entries == other.entries

    def __repr__(self):
        return f"CachePortSignature(entries={self.entries})"


_READ = ("rd_entry", "rd_slot")
_WRITE = ("wr_entry", "wr_slot", "wr_data")


class CacheArbiter(wiring.Component):
    """Joins the cache's data-port clients onto its one port, by fixed priority on their enables.

    Ownership is decided per half of the port, every cycle: the read half
    (``rd_entry``, ``rd_slot``) goes to the first client, in the order of
    ``clients``, whose ``rd_en`` is high, and the write half (``wr_entry``,
    ``wr_slot``, ``wr_data``) to the first whose ``wr_en`` is not zero. When
    no earlier client enables, the last client owns the half whatever its own
    enable, so its addresses reach the cache without passing through its
    enable (the field-access block's VMREAD address comes from the field
    decoder's ROM, which is slow on ECP5). The enables are ORed and ``rd_data``
    goes to every client. Clients never enable in the same cycle: the unit
    runs one operation at a time, and each of its blocks uses the port only
    while that operation is its own.

    Latency: none. The arbiter is combinational: a client's read or write
    reaches the cache in the cycle the client issues it, as if it held the
    cache alone (``latency`` is 0).

    Parameters
    ----------
    entries : int
        VMCSs the cache holds (see ``CachePortSignature``).
    clients : sequence of str
        Names of the client ports, highest priority first.

    Members
    -------
    cache : Out(CachePortSignature(entries))
        To the cache.
    <client> : In(CachePortSignature(entries))
        One per name in ``clients``.
    """

    def __init__(self, entries: int, clients: Sequence[str]):
        self.clients = check_clients(clients, reserved="cache")
        signature = CachePortSignature(entries)
        super().__init__({"cache": Out(signature), **{name: In(signature) for name in clients}})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        ports = [getattr(self, name) for name in self.clients]
        join_by_priority(m, self.cache, ports, {"rd_en": _READ, "wr_en": _WRITE}, ("rd_data",))
        return m
