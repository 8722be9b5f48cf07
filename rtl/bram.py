"""Block-RAM read ports without read-during-write logic.

# Ref: yosys ``memory_dff`` and ``memory_libmap`` (the ``no_rw_check`` memory
# attribute); Lattice iCE40 sysMEM: a read of the word being written in the
# same cycle returns an undefined value.

Amaranth's synchronous read port promises the old data when a read and a write
of the same word meet in one cycle. The iCE40 block RAM does not, so yosys
adds a copy of the write data, an address comparator and a bypass multiplexer
to every such port. The VMX unit's blocks never read a word in the cycle they
write it, so they build their read ports here instead: an asynchronous read
port followed by a register, which yosys folds into the block RAM's own read
port, on a memory marked ``NO_RW_CHECK`` (collision result: don't care). The
core's register file (rtl/cpu/core.py) carries the same attribute around its
own registers. Simulation still gives the old data on a collision.
"""

from amaranth import Module, Signal, Value
from amaranth.lib import memory

__all__ = ["NO_RW_CHECK", "registered_read"]

#: Attributes of a memory whose users never read a word in the cycle they write it.
NO_RW_CHECK = {"no_rw_check": 1}


def registered_read(m: Module, mem: memory.Memory, *, addr: Value, en: Value, name: str) -> Signal:
    """Read ``mem`` at ``addr``; the data is valid the cycle after ``en`` and holds while ``en`` is low."""
    port = mem.read_port(domain="comb")
    data = Signal(mem.shape, name=name)
    m.d.comb += port.addr.eq(addr)
    with m.If(en):
        m.d.sync += data.eq(port.data)
    return data
