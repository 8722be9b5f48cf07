"""A test bench for the core on Amaranth's simulator: memory, a fake VMX unit, I/O devices, interrupt lines.

``CoreBench(program).run()`` runs the core until it retires ``j .`` (the halt
idiom) or ``max_cycles`` pass, and returns the trace records. Around the core:

- a Python memory on the Wishbone bus (RAM at 0..``RAM_SIZE``), acknowledging
  after a random number of wait states drawn from ``waits`` (0 = in the cycle of
  the strobe); any address outside RAM ends the cycle with ERR; a store to
  ``IRQ_CONTROL`` drives the interrupt lines (bit 0 timer, bit 1 external), so
  a program raises its own interrupts at a known instruction, and a store of
  ``(delay << 8) | lines`` to ``IRQ_DELAYED`` drives them ``delay`` cycles later
  (to wake a WFI);
- a fake VMX unit that accepts a request after random wait states, records it,
  and answers ``unit(request)`` (by default: GET/SET on a dict of machine-state
  elements, ``Status.OK``; every other operation ``Status.SUCCEED``);
- an I/O responder that records OUTs and answers INs from ``ports`` (all ones
  for a port nobody answers).

Registers are not peeked at: ``registers`` replays the trace's rd writes.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from vmxu.rtl.arch.isa import IoSize
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.cpu.core import Core

__all__ = [
    "CoreBench",
    "Record",
    "Request",
    "Response",
    "RAM_SIZE",
    "IRQ_CONTROL",
    "IRQ_DELAYED",
    "HALT",
    "ERROR_ADDRESS",
]

RAM_SIZE = 0x1_0000
IRQ_CONTROL = 0x2000_0000
IRQ_DELAYED = 0x2000_0004
ERROR_ADDRESS = 0x4000_0000
#: ``j .``: the bench stops after retiring it.
HALT = 0x0000_006F


@dataclass
class Record:
    cycle: int
    pc: int
    insn: int
    rd: int
    rd_value: int
    trap: bool
    cause: int
    vmx: bool
    vmx_status: Status
    store: bool
    store_addr: int
    store_data: int
    store_mask: int

    def __str__(self) -> str:
        s = f"@{self.cycle} pc={self.pc:#x} insn={self.insn:#010x}"
        if self.rd:
            s += f" x{self.rd}={self.rd_value:#x}"
        if self.trap:
            s += f" trap cause={self.cause:#x}"
        if self.vmx:
            s += f" vmx {self.vmx_status.name}"
        if self.store:
            s += f" store [{self.store_addr:#x}] {self.store_data:#010x}/{self.store_mask:04b}"
        return s


@dataclass(frozen=True)
class Request:
    op: Op
    size: OperandSize
    index: int
    value: int


@dataclass(frozen=True)
class Response:
    status: Status
    value: int = 0
    vector: int = 0
    error: int = 0


@dataclass
class CoreBench:
    program: list[int]
    #: word address of the program (bytes)
    base: int = 0
    seed: int = 0
    #: wait states are drawn from this sequence (per bus access, unit handshake, I/O access)
    waits: tuple[int, ...] = (0, 0, 1, 2, 3)
    unit: Callable[[Request], Response] | None = None
    ports: dict[int, int] = field(default_factory=dict)
    data: dict[int, int] = field(default_factory=dict)  # byte address (word-aligned) -> word
    max_cycles: int = 20_000
    #: response latency of the fake unit (cycles from acceptance to a valid response, at least 1)
    unit_latency: int | None = None
    reset_vector: int = 0

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        self.memory: dict[int, int] = {}
        for i, word in enumerate(self.program):
            self.memory[(self.base >> 2) + i] = word
        for addr, word in self.data.items():
            self.memory[addr >> 2] = word
        self.requests: list[Request] = []
        self.io_accesses: list[tuple[bool, int, IoSize, int]] = []  # (write, port, size, data)
        self.state = {}  # element -> value, for the default unit
        self.records: list[Record] = []
        self.irq_lines = 0
        self.irq_later: tuple[int, int] | None = None  # (cycle, lines)
        self.cycle = 0

    # -- the default fake VMX unit ---------------------------------------------------------
    def default_unit(self, request: Request) -> Response:
        if request.op == Op.GET:
            return Response(Status.OK, self.state.get(request.index, 0))
        if request.op == Op.SET:
            self.state[request.index] = request.value
            return Response(Status.OK)
        return Response(Status.SUCCEED)

    def wait(self) -> int:
        return self.rng.choice(self.waits)

    # -- memory helpers -----------------------------------------------------------------------
    def word(self, addr: int) -> int:
        return self.memory.get(addr >> 2, 0)

    @property
    def registers(self) -> list[int]:
        regs = [0] * 32
        for r in self.records:
            if r.rd:
                regs[r.rd] = r.rd_value
        return regs

    # -- the run ---------------------------------------------------------------------------------
    def run(self, until: Callable[[Record], bool] | None = None) -> list[Record]:
        self.core = dut = Core(reset_vector=self.reset_vector)
        unit = self.unit or self.default_unit
        until = until or (lambda r: r.insn == HALT and not r.trap)
        bus, req, resp, io, trace = dut.bus, dut.vmx_req, dut.vmx_resp, dut.io, dut.trace
        done = False

        async def testbench(ctx):
            nonlocal done
            bus_wait = None
            unit_phase, unit_wait = "idle", None
            pending: Response | None = None
            io_wait = None
            for cycle in range(self.max_cycles):
                # Strobes of the previous cycle end.
                ctx.set(bus.ack, 0)
                ctx.set(bus.err, 0)
                ctx.set(req.ready, 0)
                ctx.set(io.ready, 0)
                self.cycle = cycle
                if self.irq_later is not None and cycle >= self.irq_later[0]:
                    self.irq_lines, self.irq_later = self.irq_later[1], None
                ctx.set(dut.irq_timer, self.irq_lines & 1)
                ctx.set(dut.irq_external, (self.irq_lines >> 1) & 1)

                if ctx.get(trace.valid):
                    # As the port means them (and sim.iss.trace reads them): rd_value counts only when
                    # rd is not 0, store_data only in the lanes of store_mask.
                    rd = ctx.get(trace.rd)
                    mask = ctx.get(trace.store_mask)
                    lanes = sum(0xFF << (8 * i) for i in range(4) if mask >> i & 1)
                    record = Record(
                        cycle,
                        ctx.get(trace.pc),
                        ctx.get(trace.insn),
                        rd,
                        ctx.get(trace.rd_value) if rd else 0,
                        bool(ctx.get(trace.trap)),
                        ctx.get(trace.cause),
                        bool(ctx.get(trace.vmx)),
                        Status(ctx.get(trace.vmx_status)),
                        bool(ctx.get(trace.store)),
                        ctx.get(trace.store_addr),
                        ctx.get(trace.store_data) & lanes,
                        mask,
                    )
                    self.records.append(record)
                    if until(record):
                        done = True
                        return

                # The bus.
                if ctx.get(bus.cyc) and ctx.get(bus.stb):
                    if bus_wait is None:
                        bus_wait = self.wait()
                    if bus_wait == 0:
                        bus_wait = None
                        self._access(ctx, bus)
                    else:
                        bus_wait -= 1
                else:
                    assert bus_wait is None, "the core dropped its strobe before the acknowledge"

                # The VMX unit: accept, then answer `latency` cycles later.
                if unit_phase == "idle" and ctx.get(req.valid):
                    if unit_wait is None:
                        unit_wait = self.wait()
                    if unit_wait == 0:
                        ctx.set(req.ready, 1)
                        request = Request(
                            Op(ctx.get(req.op)), OperandSize(ctx.get(req.size)), ctx.get(req.index), ctx.get(req.value)
                        )
                        self.requests.append(request)
                        pending = unit(request)
                        latency = self.unit_latency if self.unit_latency is not None else 1 + self.wait()
                        unit_wait, unit_phase = latency, "busy"
                    else:
                        unit_wait -= 1
                elif unit_phase == "busy":
                    unit_wait -= 1
                    if unit_wait == 0:
                        ctx.set(resp.valid, 1)
                        ctx.set(resp.status, pending.status)
                        ctx.set(resp.value, pending.value)
                        ctx.set(resp.vector, pending.vector)
                        ctx.set(resp.error, pending.error)
                        unit_wait, unit_phase = None, "responding"
                response_taken = unit_phase == "responding" and ctx.get(resp.ready)

                # Port I/O.
                if ctx.get(io.valid):
                    if io_wait is None:
                        io_wait = self.wait()
                    if io_wait == 0:
                        io_wait = None
                        write = bool(ctx.get(io.write))
                        port = ctx.get(io.port)
                        size = IoSize(ctx.get(io.size))
                        mask = (1 << (8 * size.bytes)) - 1
                        if write:
                            data = ctx.get(io.wdata)
                            self.ports[port] = data & mask
                        else:
                            data = self.ports.get(port, 0xFFFF_FFFF)
                            ctx.set(io.rdata, data)
                        self.io_accesses.append((write, port, size, data))
                        ctx.set(io.ready, 1)
                    else:
                        io_wait -= 1

                await ctx.tick()
                if response_taken:
                    ctx.set(resp.valid, 0)
                    unit_phase = "idle"

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(testbench)
        sim.run()
        if not done and until is not None:
            tail = "\n".join(str(r) for r in self.records[-8:])
            raise AssertionError(f"the program did not finish in {self.max_cycles} cycles; last records:\n{tail}")
        return self.records

    def _access(self, ctx, bus) -> None:
        addr = ctx.get(bus.adr) << 2
        we = ctx.get(bus.we)
        if addr == IRQ_CONTROL and we:
            self.irq_lines = ctx.get(bus.dat_w) & 3
            ctx.set(bus.ack, 1)
            return
        if addr == IRQ_DELAYED and we:
            value = ctx.get(bus.dat_w)
            self.irq_later = (self.cycle + (value >> 8), value & 3)
            ctx.set(bus.ack, 1)
            return
        if not 0 <= addr < RAM_SIZE:
            ctx.set(bus.dat_r, 0xFFFF_FFFF)
            ctx.set(bus.err, 1)
            return
        word = self.memory.get(addr >> 2, 0)
        if we:
            sel = ctx.get(bus.sel)
            data = ctx.get(bus.dat_w)
            mask = sum(0xFF << (8 * i) for i in range(4) if sel >> i & 1)
            self.memory[addr >> 2] = (word & ~mask) | (data & mask)
        else:
            ctx.set(bus.dat_r, word)
        ctx.set(bus.ack, 1)
