"""The core's ALU: one adder/subtractor, the comparisons, the bitwise operations.

# Ref: The RISC-V Instruction Set Manual, Volume I 20191213, 2.4 (integer
# computational instructions), 2.5 (conditional branches).

The second operand arrives ready for the adder (``Alu.operand_b`` builds it a
cycle earlier, when the core registers it): extended to 33 bits, sign- or
zero-extended as the comparison needs, and inverted for a subtraction. Bit 32
of the 33-bit difference is then ``a < b``, straight off the carry chain, and
nothing but the chain lies between the operand registers and ``sum``/``less``.

Shifts are not here: the core shifts iteratively, one bit a cycle, in its
result register.
"""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .decoder import Logic

__all__ = ["Alu"]


class Alu(wiring.Component):
    """Combinational: ``sum`` = a + b (a - b when ``subtract``), ``less``, ``equal``, ``logic``.

    Members
    -------
    a : In(32)
    unsigned : In(1)
        ``less`` compares unsigned (else signed); it is meaningful only when subtracting.
    b : In(33)
        The second operand as ``operand_b`` prepared it.
    subtract : In(1)
        The carry into the adder (``b`` is already inverted).
    logic_op : In(Logic)
    sum : Out(32)
    less : Out(1)
        a < b (when subtracting).
    equal : Out(1)
        a == b (when subtracting).
    logic : Out(32)
        a XOR/OR/AND b, or b (when not subtracting).
    """

    a: In(32)
    unsigned: In(1)
    b: In(33)
    subtract: In(1)
    logic_op: In(Logic)
    sum: Out(32)
    less: Out(1)
    equal: Out(1)
    logic: Out(32)

    @staticmethod
    def operand_b(b, *, subtract, unsigned):
        """The ``b`` input for second operand ``b`` (32 bits): extended, and inverted when subtracting."""
        b33 = Cat(b, b[31] & ~unsigned)
        return Mux(subtract, ~b33, b33)

    def elaborate(self, platform):
        m = Module()
        a = self.a
        b = self.b[:32]
        full = Signal(33)
        m.d.comb += full.eq(Cat(a, a[31] & ~self.unsigned) + self.b + self.subtract)
        difference = Signal(32)
        m.d.comb += [
            difference.eq(a ^ b),
            self.sum.eq(full[:32]),
            self.less.eq(full[32]),
            # b is inverted when subtracting: equal operands differ in every bit.
            self.equal.eq(difference.all()),
        ]
        with m.Switch(self.logic_op):
            with m.Case(Logic.XOR):
                m.d.comb += self.logic.eq(difference)
            with m.Case(Logic.OR):
                m.d.comb += self.logic.eq(a | b)
            with m.Case(Logic.AND):
                m.d.comb += self.logic.eq(a & b)
            with m.Case(Logic.B):
                m.d.comb += self.logic.eq(b)
        return m
