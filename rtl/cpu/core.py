"""vmxu's RV32 softcore: RV32I + Zicsr + machine mode + the VMX extension, multi-cycle.

# Ref: docs/cpu.md (the architectural contract: base ISA, CSRs, the VMX
# extension, traps, the trace); The RISC-V Instruction Set Manual, Volume I
# 20191213 (RV32I, Zicsr) and Volume II 20211203 (machine mode); Wishbone B4,
# chapter 3 (classic cycles); docs/core.md (this micro-architecture).

One instruction at a time, through a sequencer whose states say what the
hardware does:

- FETCH: a Wishbone read at pc; the register file reads rs1 and rs2 with the
  fields of the word on the bus, in the cycle the read ends.
- DECODE: the decoder's output, rs1 and the ALU's second operand (imm or rs2,
  already inverted for a subtraction) are registered; next_pc := pc + 4. rs2
  stays in the register file's output register (its port reads ir's field
  after FETCH).
- EXECUTE: one carry chain (the ALU), the branch decision, pc + imm (the adder
  that made pc + 4 in DECODE), the CSR read, the trap checks (illegal, misaligned, ECALL/EBREAK); the
  results land in registers.
- then, as the instruction needs: MEMORY (the load or store), SHIFT (one bit a
  cycle), CSR_MODIFY (the CSR is written here), UNIT_REQUEST/UNIT_RESPONSE
  (the VMX unit; GET and SET for the x86 CSRs), PORT_IO, WAIT_INTERRUPT (WFI),
  BRANCH_MISALIGNED (a taken branch to a misaligned target);
- WRITE_BACK: rd, pc, minstret, one trace record, and the interrupt check; or
  TRAP: mepc/mcause/mtval, pc := mtvec, one trace record.
- with guests (docs/guests.md, docs/smm-soc.md): SAVE (RIP, RSP, IDTR.base into
  the unit) before a guest's request, a VMCALL and an SMI; MOVE (the same back,
  and CS.base in SMM) after the unit moved the processor: an entry, an exit, an
  SMI delivered, RSM. An SMI latched by the SoC is taken at the boundary in
  WRITE_BACK (SAVE, then the SMI request, a record of its own).

Latency: 4 cycles for an ALU instruction with a bus that acknowledges in the
cycle of the strobe, 5 for loads and stores; ``CYCLES`` has every class and
docs/core.md the reasoning. The register file is a block RAM (two read ports,
one write port, written only in WRITE_BACK; x0 is never written and keeps the
0 it has after configuration; x1-x31 are not reset).
"""

from types import SimpleNamespace

from amaranth import Array, C, Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .. import wishbone
from ..arch.isa import (
    GUEST_EXCEPTIONS,
    INTERRUPT_VECTORS,
    TSC_CSRS,
    TSC_HIGH_CSRS,
    VECTOR_TO_CAUSE,
    IoSize,
    TrapCause,
    injected_cause,
)
from ..arch.ops import Op, OperandSize, Status
from ..arch.riscv import MCAUSE_CODE_BITS, Mcause
from ..arch.smm import IO_SMI
from ..arch.soc import SMI_PORT
from ..arch.state import element_id
from ..bram import NO_RW_CHECK
from ..vmx.port import GuestTimeSignature, RequestSignature, ResponseSignature, SmmStatusSignature
from .alu import Alu
from .cpuid import CPUID_LEAVES
from .csr import Bank, CsrFile, pack
from .decoder import Computed, Decoded, Decoder, Kind, Result, ValueHigh
from .ports import IoSignature, SmiSignature, TraceSignature

__all__ = ["Core", "CYCLES"]


#: Cycles per instruction class with a bus slave that acknowledges in the cycle
#: of the strobe (add one per bus access for a slave that acknowledges a clock
#: later, like the SoC's RAM), an I/O device and a VMX unit that answer at once.
#: tests/cpu/test_timing.py measures every row; docs/core.md explains them.
CYCLES = {
    "alu": 4,
    "shift": 5,  # + the shift amount
    "load": 5,
    "store": 5,
    "branch_not_taken": 4,
    "branch_taken": 4,
    "jump": 4,
    "csr": 5,
    "x86_csr_read": 7,  # + the unit's latency (GET)
    "x86_csr_write": 9,  # + the unit's latency (GET, SET)
    "vmx": 6,  # + the unit's latency
    "port_io": 5,  # + the device's wait states
    "trap": 4,  # detected in EXECUTE; TRAP is the 4th cycle
    "interrupt": 1,  # a TRAP cycle after the preempted boundary's WRITE_BACK
}


class _TrapValue(enum.Enum, shape=4):
    """What mtval receives on a trap: one-hot, each bit lets one register into an AND-OR (smaller
    than a multiplexer with an encoded select)."""

    ZERO = 0  # ECALL, interrupts
    PC = 1 << 0  # EBREAK, fetch access fault
    INSN = 1 << 1  # illegal instruction, #UD/#GP/VM entry from the VMX unit
    ADDRESS = 1 << 2  # load/store misaligned or access fault: the effective address; JALR's target
    TARGET = 1 << 3  # instruction-address misaligned: the jump or branch target (next_pc)


class Core(wiring.Component):
    """The RV32 softcore (docs/cpu.md); cycles per instruction in ``CYCLES``.

    Parameters
    ----------
    reset_vector : int
        The pc after reset.

    Members
    -------
    bus : Out(wishbone.Signature(addr_width=30))
        Instruction fetch and data, one classic Wishbone master (32-bit, byte
        ``sel``); ``cyc``/``stb`` stay high until ``ack`` or ``err``.
    io : Out(IoSignature())
        IN/OUT (``wdata`` carries all of rs2; the device takes ``size``'s low bytes).
    vmx_req : Out(RequestSignature())
    vmx_resp : In(ResponseSignature())
        To and from the VMX unit (``wiring.connect(m, core.vmx_req, unit.req)``,
        ``wiring.connect(m, unit.resp, core.vmx_resp)``).
    guest_time : In(GuestTimeSignature())
        From the unit (``wiring.connect(m, unit.guest_time, core.guest_time)``): in a guest, the core sends
        RUN at an instruction boundary where ``due`` is high (the VMX-preemption timer, the windows).
    irq_timer, irq_external : In(1)
        mip.MTIP and mip.MEIP (level-sensitive).
    trace : Out(TraceSignature())
        One record per instruction that completes (retires or traps) and per interrupt.
    smi : In(SmiSignature())
        With guests: a latched SMI (the SoC's port 0xB2), which the core takes at an instruction boundary
        (SAVE, then an I/O SMI request; ``take`` clears it) (docs/smm-soc.md).
    smm_status : In(SmmStatusSignature())
        With guests: the unit's SMM state (``wiring.connect(m, unit.smm_status, core.smm_status)``): after a
        move, the bank of trap registers, and whether pc adds CS.base.
    """

    def __init__(self, *, reset_vector: int = 0, guests: bool = False):
        if not isinstance(reset_vector, int) or not 0 <= reset_vector < (1 << 32) or reset_vector % 4:
            raise ValueError(f"Reset vector must be a 4-byte aligned 32-bit address, not {reset_vector!r}")
        self.reset_vector = reset_vector
        #: Whether the core runs guests (docs/guests.md): its unit must have the VM-entry capability.
        self.guests = guests
        members = {
            "bus": Out(wishbone.Signature(addr_width=30)),
            "io": Out(IoSignature()),
            "vmx_req": Out(RequestSignature()),
            "vmx_resp": In(ResponseSignature()),
            "guest_time": In(GuestTimeSignature()),
            "irq_timer": In(1),
            "irq_external": In(1),
            "trace": Out(TraceSignature()),
        }
        if guests:
            members |= {"smi": In(SmiSignature()), "smm_status": In(SmmStatusSignature())}
        super().__init__(members)

    @property
    def cycles(self) -> dict[str, int]:
        """Cycles per instruction class (see ``CYCLES``)."""
        return dict(CYCLES)

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = decoder = Decoder(smm=self.guests)
        m.submodules.alu = alu = Alu()
        m.submodules.csr = csr = CsrFile(banked=self.guests)
        # x0..x31 in block RAM. The read ports are asynchronous into a register that yosys folds
        # into the RAM's own output register. The core only uses what the ports read in the
        # cycle a fetch ends, never in WRITE_BACK, the one cycle it writes: no_rw_check tells
        # yosys so, and it adds no read-during-write logic around the RAM.
        m.submodules.registers = registers = Memory(shape=32, depth=32, init=[], attrs=NO_RW_CHECK)
        # The addresses are the bus's read data in the cycle the fetch ends (unregistered);
        # rs1_read holds rs1 in DECODE, which copies it into rs1. rs2's port reads ir's field after
        # FETCH, so that rs2 (the RAM's output register) holds rs2 until WRITE_BACK writes the
        # register file: no copy of it.
        rs1_port = registers.read_port(domain="comb")
        rs2_port = registers.read_port(domain="comb")
        rs1_read = Signal(32, reset_less=True)
        rs2 = Signal(32, reset_less=True)
        m.d.sync += [rs1_read.eq(rs1_port.data), rs2.eq(rs2_port.data)]
        fetching = Signal()
        rd_port = registers.write_port()

        pc = Signal(32, init=self.reset_vector)
        ir = Signal(32)  # the instruction word (0 for a fetch fault or an interrupt)
        dec = Signal(Decoded)
        rs1 = Signal(32)
        operand_b = Signal(33)  # the ALU's second operand (imm or rs2), as the adder takes it
        b = operand_b[:32]  # uninverted when not subtracting: shifts, logic
        cpuid_leaf = Signal(range(len(CPUID_LEAVES) + 1))  # which row of CPUID_LEAVES rs1 names
        cpuid_register = Signal(2)  # rs2[1:0], registered in DECODE: the RAM's output stays out of EXECUTE's path
        result = Signal(32)  # rd's value (Result.RESULT), the shifter, a load's word, a VMX request's value[31:0]
        address = Signal(32)  # rs1 + b: the sum, a load/store address, a CSR source
        less = Signal()
        next_pc = Signal(32)  # pc + 4 from DECODE on; EXECUTE may replace it with a jump's target
        writes_rd = Signal()
        shift_count = Signal(5)
        branch_taken = Signal()
        set_phase = Signal()  # the x86 CSR's SET follows its GET
        non_root = Signal()  # the core runs a guest (docs/guests.md)
        step = Signal(2)  # which of RIP, RSP, IDTR.base SAVE writes and MOVE reads
        saving = Signal()  # SAVE: the unit gets the guest's RIP, RSP, IDTR.base before a request
        moving = Signal()  # MOVE: the core takes RIP, RSP, IDTR.base after an entry or exit
        # CPUID in a guest: a request (leaf rs1, subleaf rs2), which exits.
        cpuid_request = Signal()
        m.d.comb += cpuid_request.eq((dec.computed == Computed.CPUID) & non_root)
        # A guest's read of the cycle counter: RDTSC for the unit ("RDTSC exiting", TSC offsetting).
        csr_number = ir[20:32]
        tsc_request, tsc_high = Signal(), Signal()
        if self.guests:
            m.d.comb += [
                tsc_request.eq((dec.kind == Kind.CSR) & non_root & Cat(*(csr_number == c for c in TSC_CSRS)).any()),
                tsc_high.eq(Cat(*(csr_number == c for c in TSC_HIGH_CSRS)).any()),
            ]
        # A guest's trap first asks the unit (EXCEPTION): asking_exception while it does, exception_asked once
        # it did (then TRAP takes the trap); exit_trap: the exit's record carries the trap.
        asking_exception, exception_asked, exit_trap = Signal(), Signal(), Signal()
        # A guest's pending interrupt (enabled in mie, whatever its mstatus.MIE) first asks the unit (INTERRUPT).
        asking_interrupt = Signal()
        # At a boundary where the unit says the guest's time is due, RUN (the preemption timer, the windows).
        asking_run = Signal()
        # The event a VM entry injects, taken as a trap after the entry's record.
        inject, inject_interrupt = Signal(), Signal()
        inject_code = Signal(MCAUSE_CODE_BITS)
        inject_error = Signal(32)
        # SMM (docs/smm-soc.md): the SMI taken at a boundary (SAVE, then SMI), its write's size; in_smm: the
        # unit was in SMM after the last move (SMM's bank; no interrupts).
        asking_smi, in_smm = Signal(), Signal()
        smi_size, smi_io = Signal(IoSize), Signal()
        unit_status = Signal(Status)
        vmx_record = Signal()  # the record is a VMX-extension instruction's
        trap_code = Signal(MCAUSE_CODE_BITS)
        trap_interrupt = Signal()
        trap_value = Signal(_TrapValue)

        rd = ir[7:12]
        funct3 = dec.funct3
        size = dec.mem_funct3[:2]

        m.d.comb += [
            decoder.insn.eq(ir),
            # Outside a fetch, rs1's port reads sp (x2): a guest's RSP for the unit (SAVE).
            rs1_port.addr.eq(Mux(fetching, self.bus.dat_r[15:20], 2) if self.guests else self.bus.dat_r[15:20]),
            rs2_port.addr.eq(Mux(fetching, self.bus.dat_r[20:25], ir[20:25])),
            csr.id.eq(dec.csr),
            csr.irq_timer.eq(self.irq_timer),
            csr.irq_external.eq(self.irq_external),
        ]

        # -- EXECUTE's datapath: registered operands, one carry chain, shallow muxes --------------
        m.d.comb += [
            alu.a.eq(rs1),
            alu.b.eq(operand_b),
            alu.subtract.eq(dec.subtract),
            alu.unsigned.eq(dec.unsigned),
            alu.logic_op.eq(dec.logic),
        ]
        # One adder for pc: pc + 4 in DECODE (into next_pc; FETCH sets imm to 4), pc + imm in EXECUTE.
        pc_imm = Signal(32)
        m.d.comb += pc_imm.eq(pc + dec.imm)
        taken = Mux(funct3[2], alu.less, alu.equal) ^ funct3[0]
        # Alignment needs only the low two bits of rs1 + imm (pc is always aligned).
        low_bits = Signal(2)
        m.d.comb += low_bits.eq(rs1[:2] + dec.imm[:2])
        access_misaligned = Mux(size == 0, 0, Mux(size == 1, low_bits[0], low_bits != 0))

        cpuid_value = Signal(32)
        with m.Switch(cpuid_leaf):
            for row, registers_of_leaf in enumerate(CPUID_LEAVES.values()):
                with m.Case(row):
                    with m.Switch(cpuid_register):
                        for i, value in enumerate(registers_of_leaf):
                            with m.Case(i):
                                m.d.comb += cpuid_value.eq(value)

        computed = Signal(32)
        with m.Switch(dec.computed):
            with m.Case(Computed.LOGIC):
                m.d.comb += computed.eq(alu.logic)
            with m.Case(Computed.CPUID):
                m.d.comb += computed.eq(cpuid_value)
            with m.Case(Computed.RS1):
                m.d.comb += computed.eq(rs1)
            with m.Case(Computed.PC_IMM):
                m.d.comb += computed.eq(pc_imm)
            with m.Case(Computed.PC_4):
                m.d.comb += computed.eq(next_pc)
            with m.Case(Computed.CSR):
                m.d.comb += computed.eq(csr.read_data)

        # CSRRW(I): the source; CSRRS(I): old | source; CSRRC(I): old & ~source. The old value is in
        # result (EXECUTE read the machine CSR into it, UNIT_RESPONSE the x86 CSR's GET), the source
        # in address; both stay there until WRITE_BACK, so this also drives the x86 CSR's SET.
        csr_modified = Signal(32)
        with m.Switch(funct3[:2]):
            with m.Case(0b01):
                m.d.comb += csr_modified.eq(address)
            with m.Case(0b10):
                m.d.comb += csr_modified.eq(result | address)
            with m.Case(0b11):
                m.d.comb += csr_modified.eq(result & ~address)

        # -- Loads and stores -----------------------------------------------------------------
        offset = address[:2]
        store_mask = Signal(4)
        store_data = Signal(32)
        with m.Switch(size):
            with m.Case(0):
                m.d.comb += store_mask.eq(1 << offset)
            with m.Case(1):
                m.d.comb += store_mask.eq(Mux(offset[1], 0b1100, 0b0011))
            with m.Default():
                m.d.comb += store_mask.eq(0b1111)
        byte0 = rs2[0:8]
        lanes = Cat(
            byte0,
            Mux(size == 0, byte0, rs2[8:16]),
            Mux(size[1], rs2[16:24], byte0),
            Mux(size == 0, byte0, Mux(size[1], rs2[24:32], rs2[8:16])),
        )
        # The value replicated into the lanes it does not use (sel tells the slave which lanes count).
        m.d.comb += store_data.eq(lanes)

        # A load's word, shifted down and extended as mem_funct3 says (WORD, and so the result
        # register as it is, for every instruction but loads and stores).
        load_byte = result.word_select(offset, 8)
        load_half = result.word_select(offset[1], 16)
        unsigned_load = dec.mem_funct3[2]
        loaded = Signal(32)
        with m.Switch(size):
            with m.Case(0):
                m.d.comb += loaded.eq(Cat(load_byte, (load_byte[7] & ~unsigned_load).replicate(24)))
            with m.Case(1):
                m.d.comb += loaded.eq(Cat(load_half, (load_half[15] & ~unsigned_load).replicate(16)))
            with m.Default():
                m.d.comb += loaded.eq(result)

        # rd's value, chosen in WRITE_BACK among registers. SLT(U) left 0 in result.
        written = Signal(32)
        m.d.comb += written.eq(Mux(dec.result == Result.SUM, address, loaded) | (less & (dec.result == Result.LESS)))

        # -- The bus --------------------------------------------------------------------------
        bus = self.bus
        m.d.comb += bus.dat_w.eq(store_data)

        # -- VMX unit request operands --------------------------------------------------------
        req = self.vmx_req
        op = Mux(set_phase, Op.SET, dec.unit_op)
        index = Mux(dec.index_rs1, rs1, dec.element)
        # Bits 31:0: what EXECUTE left in result (rs1, rs2 or 0), or the x86 CSR's new value (SET).
        value_low = Mux(set_phase, csr_modified, result)
        port_io = (dec.kind == Kind.IN) | (dec.kind == Kind.OUT)  # in a guest, IN and OUT ask the unit first
        if self.guests:
            # SAVE and MOVE: SET and GET of RIP, RSP, IDTR.base (step 0, 1, 2), SET of activity := 0 after a
            # HLT that did not exit (step 3); a guest's CPUID, WFI (HLT), IN/OUT and traps (EXCEPTION).
            # MOVE's step 3 in SMM: GET of CS.base (pc := RIP + CS.base).
            fourth = Mux(moving, element_id("cs.base"), element_id("activity"))
            state = Array([*(Const(element_id(name), 6) for name in ("rip", "rsp", "idtr.base")), fourth])[step]
            core_value = Array([pc, rs1_read, csr.mtvec, Const(0, 32)])[step]
            vector, error_code = self._guest_exception(m, trap_code)
            op = Mux(
                dec.kind == Kind.WFI, Op.HLT, Mux(dec.kind == Kind.IN, Op.IN, Mux(dec.kind == Kind.OUT, Op.OUT, op))
            )
            op = Mux(cpuid_request, Op.CPUID, Mux(tsc_request, Op.RDTSC, op))
            op = Mux(asking_interrupt, Op.INTERRUPT, Mux(asking_run, Op.RUN, Mux(asking_smi, Op.SMI, op)))
            op = Mux(moving, Op.GET, Mux(saving, Op.SET, Mux(asking_exception, Op.EXCEPTION, op)))
            index = Mux(cpuid_request, rs1, Mux(port_io, rs1[:16], index))
            interrupt_vector = Mux(
                trap_code == TrapCause.MACHINE_EXTERNAL_INTERRUPT.value & 0x1F,
                INTERRUPT_VECTORS[TrapCause.MACHINE_EXTERNAL_INTERRUPT],
                INTERRUPT_VECTORS[TrapCause.MACHINE_TIMER_INTERRUPT],
            )
            index = Mux(asking_interrupt, interrupt_vector, Mux(asking_smi, Mux(smi_io, SMI_PORT, 0), index))
            index = Mux(saving | moving, state, Mux(asking_exception, vector, index))
            value_low = Mux(cpuid_request | port_io, rs2, value_low)
            value_low = Mux(asking_run, self.guest_time.cycles[:32], Mux(asking_smi, Mux(smi_io, IO_SMI, 0), value_low))
            value_low = Mux(saving, core_value, Mux(asking_exception, error_code, value_low))
            io_size = Mux(asking_smi, smi_size, dec.io_size)
            m.d.comb += req.io_size.eq(Mux(io_size == IoSize.DWORD, 3, io_size))
        m.d.comb += [req.op.eq(op), req.size.eq(OperandSize.S32), req.index.eq(index), req.value[:32].eq(value_low)]
        if self.guests:
            # What a VM exit records: every instruction is 4 bytes; MOV CR's register (x86 has 16: rd or
            # rs1 mod 16, docs/guests.md).
            m.d.comb += [req.length.eq(4), req.gpr.eq(Mux(set_phase, ir[15:19], ir[7:11]))]
        with m.If(~saving & ~asking_exception & ~asking_smi if self.guests else ~saving & ~asking_exception):
            with m.Switch(dec.value_high):
                with m.Case(ValueHigh.RS2):
                    m.d.comb += req.value[32:].eq(rs2)
                with m.Case(ValueHigh.XHI):
                    m.d.comb += req.value[32:].eq(csr.xhi)
        if self.guests:
            with m.If(asking_run & ~saving):
                m.d.comb += req.value[32:].eq(self.guest_time.cycles[32:])

        # -- Port I/O -------------------------------------------------------------------------
        io = self.io
        m.d.comb += [
            io.write.eq(dec.kind == Kind.OUT),
            io.port.eq(rs1[:16]),
            io.size.eq(dec.io_size),
            io.wdata.eq(rs2),
        ]
        io_rdata = Signal(32)
        with m.Switch(dec.io_size):
            with m.Case(IoSize.BYTE):
                m.d.comb += io_rdata.eq(io.rdata[:8])
            with m.Case(IoSize.WORD):
                m.d.comb += io_rdata.eq(io.rdata[:16])
            with m.Default():
                m.d.comb += io_rdata.eq(io.rdata)

        # -- The trace ------------------------------------------------------------------------
        trace = self.trace
        writing_rd = writes_rd & (rd != 0)
        m.d.comb += [
            trace.pc.eq(pc),
            trace.insn.eq(ir),
            trace.vmx_status.eq(unit_status),
            trace.store_addr.eq(address),
            trace.store_data.eq(store_data),
            trace.store_mask.eq(store_mask),
        ]

        def trap(cause, value: _TrapValue):
            m.d.sync += [trap_code.eq(cause), trap_interrupt.eq(0), trap_value.eq(value)]
            m.next = "TRAP"

        # The signals and steps the FSM's states share, for the methods that hold them (one per mechanism).
        # fmt: off
        s = SimpleNamespace(
            m=m, fetching=fetching, bus=bus, pc=pc, ir=ir, trap=trap, dec=dec, decoder=decoder, rs1_read=rs1_read,
            rs1=rs1, operand_b=operand_b, rs2=rs2, cpuid_leaf=cpuid_leaf, cpuid_register=cpuid_register,
            next_pc=next_pc, pc_imm=pc_imm, set_phase=set_phase, result=result, computed=computed, address=address,
            alu=alu, less=less, writes_rd=writes_rd, shift_count=shift_count, b=b, branch_taken=branch_taken,
            taken=taken, low_bits=low_bits, access_misaligned=access_misaligned, tsc_request=tsc_request,
            non_root=non_root, cpuid_request=cpuid_request, csr=csr, funct3=funct3, store_mask=store_mask,
            csr_modified=csr_modified, req=req, unit_status=unit_status, vmx_record=vmx_record,
            exit_trap=exit_trap, asking_exception=asking_exception, asking_interrupt=asking_interrupt,
            asking_run=asking_run, asking_smi=asking_smi, step=step, inject=inject, inject_code=inject_code,
            inject_interrupt=inject_interrupt, inject_error=inject_error, tsc_high=tsc_high, in_smm=in_smm,
            exception_asked=exception_asked, port_io=port_io, io=io, io_rdata=io_rdata, rd_port=rd_port,
            writing_rd=writing_rd, rd=rd, written=written, trace=trace, trap_code=trap_code,
            trap_interrupt=trap_interrupt, trap_value=trap_value, smi_size=smi_size, smi_io=smi_io,
        )
        # fmt: on
        with m.FSM():
            # In this order: the states' encoding follows it.
            self._fetch_states(s)
            self._execute_state(s)
            self._multicycle_states(s)
            self._unit_states(s)
            if self.guests:
                self._save_and_move(m, step, saving, moving, next_pc, rd_port, csr, (non_root, in_smm))
            self._retire_states(s)
        return m

    def _fetch_states(self, s: SimpleNamespace) -> None:
        """FETCH and DECODE: the instruction word from the bus, its fields, the registers it reads."""
        m, fetching, bus, pc, ir, trap, dec, decoder = s.m, s.fetching, s.bus, s.pc, s.ir, s.trap, s.dec, s.decoder
        rs1_read, rs1, operand_b, rs2, cpuid_leaf = s.rs1_read, s.rs1, s.operand_b, s.rs2, s.cpuid_leaf
        cpuid_register, next_pc, pc_imm, set_phase = s.cpuid_register, s.next_pc, s.pc_imm, s.set_phase
        with m.State("FETCH"):
            m.d.comb += [
                fetching.eq(1),
                bus.cyc.eq(1),
                bus.stb.eq(1),
                bus.adr.eq(pc[2:]),
                bus.sel.eq(0b1111),
            ]
            with m.If(bus.err):
                m.d.sync += ir.eq(0)
                trap(TrapCause.INSTRUCTION_ACCESS_FAULT, _TrapValue.PC)
            with m.Elif(bus.ack):
                m.d.sync += ir.eq(bus.dat_r)
                m.next = "DECODE"
            # DECODE's pc + imm is pc + 4.
            m.d.sync += dec.imm.eq(4)

        with m.State("DECODE"):
            decoded = decoder.decoded
            leaf = len(CPUID_LEAVES)
            for row, number in enumerate(CPUID_LEAVES):
                leaf = Mux(rs1_read == number, row, leaf)
            m.d.sync += [
                dec.eq(decoded),
                rs1.eq(Mux(decoder.rs1_zero, 0, rs1_read)),
                operand_b.eq(
                    Alu.operand_b(
                        Mux(decoded.b_imm, decoded.imm, rs2),
                        subtract=decoded.subtract,
                        unsigned=decoded.unsigned,
                    )
                ),
                cpuid_leaf.eq(leaf),
                cpuid_register.eq(rs2[:2]),
                next_pc.eq(pc_imm),
                set_phase.eq(0),
            ]
            m.next = "EXECUTE"

    def _execute_state(self, s: SimpleNamespace) -> None:
        """EXECUTE: the ALU, a branch's or jump's target, and where each kind of instruction goes next."""
        m, result, computed, address, alu, dec, less = s.m, s.result, s.computed, s.address, s.alu, s.dec, s.less
        writes_rd, shift_count, b, trap, branch_taken = s.writes_rd, s.shift_count, s.b, s.trap, s.branch_taken
        taken, next_pc, pc_imm, low_bits = s.taken, s.next_pc, s.pc_imm, s.low_bits
        access_misaligned, tsc_request, non_root = s.access_misaligned, s.tsc_request, s.non_root
        cpuid_request, csr = s.cpuid_request, s.csr
        with m.State("EXECUTE"):
            m.d.sync += [
                result.eq(computed),
                # A JALR's target (bit 0 cleared) waits here for WRITE_BACK: the sum feeds nothing
                # but this register, and each bit's flip-flop shares the adder's logic cell.
                address.eq(Cat(alu.sum[0] & (dec.kind != Kind.JALR), alu.sum[1:])),
                less.eq(alu.less),
                writes_rd.eq(dec.writes_rd),
                shift_count.eq(b[:5]),
            ]
            m.next = "WRITE_BACK"
            with m.If(dec.illegal):
                trap(TrapCause.ILLEGAL_INSTRUCTION, _TrapValue.INSN)
            with m.Else():
                with m.Switch(dec.kind):
                    with m.Case(Kind.SHIFT):
                        m.next = "SHIFT"
                    with m.Case(Kind.BRANCH):
                        m.d.sync += branch_taken.eq(taken)
                        with m.If(taken):
                            m.d.sync += next_pc.eq(pc_imm)
                        # Whether to trap waits a cycle, so that the comparison feeds only next_pc.
                        with m.If(dec.imm[1]):
                            m.next = "BRANCH_MISALIGNED"
                    with m.Case(Kind.JAL):
                        m.d.sync += next_pc.eq(pc_imm)
                        with m.If(dec.imm[1]):
                            trap(TrapCause.INSTRUCTION_MISALIGNED, _TrapValue.TARGET)
                    with m.Case(Kind.JALR):
                        # next_pc keeps pc + 4 (the link); WRITE_BACK takes the target from address.
                        with m.If(low_bits[1]):
                            trap(TrapCause.INSTRUCTION_MISALIGNED, _TrapValue.ADDRESS)
                    with m.Case(Kind.LOAD):
                        with m.If(access_misaligned):
                            trap(TrapCause.LOAD_MISALIGNED, _TrapValue.ADDRESS)
                        with m.Else():
                            m.next = "MEMORY"
                    with m.Case(Kind.STORE):
                        with m.If(access_misaligned):
                            trap(TrapCause.STORE_MISALIGNED, _TrapValue.ADDRESS)
                        with m.Else():
                            m.next = "MEMORY"
                    with m.Case(Kind.CSR):
                        m.next = "CSR_MODIFY"
                        if self.guests:
                            with m.If(tsc_request):
                                m.next = "SAVE_REQUEST"
                    with m.Case(Kind.X86_CSR, Kind.UNIT):
                        m.next = "UNIT_REQUEST"
                        if self.guests:
                            # VMCALL in VMX root operation may exit to the STM, which returns to its RIP.
                            vmcall = (dec.kind == Kind.UNIT) & (dec.unit_op == Op.VMCALL)
                            with m.If(non_root | vmcall):
                                m.next = "SAVE_REQUEST"
                    if self.guests:
                        with m.Case(Kind.ALU):
                            with m.If(cpuid_request):
                                m.next = "SAVE_REQUEST"
                    with m.Case(Kind.ECALL):
                        trap(TrapCause.ECALL_M, _TrapValue.ZERO)
                    with m.Case(Kind.EBREAK):
                        trap(TrapCause.BREAKPOINT, _TrapValue.PC)
                    with m.Case(Kind.MRET):
                        # mstatus moves now, so that WRITE_BACK sees MIE as MRET leaves it.
                        m.d.comb += csr.mret.eq(1)
                        m.d.sync += next_pc.eq(csr.mepc)
                    with m.Case(Kind.WFI):
                        m.next = "WAIT_INTERRUPT"
                        if self.guests:
                            with m.If(non_root):
                                m.next = "SAVE_REQUEST"
                    with m.Case(Kind.IN, Kind.OUT):
                        m.next = "PORT_IO"
                        if self.guests:
                            with m.If(non_root):
                                m.next = "SAVE_REQUEST"

    def _multicycle_states(self, s: SimpleNamespace) -> None:
        """The states some instructions add: a misaligned branch target, the shifter, a load or store, a CSR's write."""
        m, branch_taken, trap, shift_count, funct3 = s.m, s.branch_taken, s.trap, s.shift_count, s.funct3
        result, ir, dec, bus, address, store_mask, csr = s.result, s.ir, s.dec, s.bus, s.address, s.store_mask, s.csr
        csr_modified, set_phase = s.csr_modified, s.set_phase
        with m.State("BRANCH_MISALIGNED"):
            with m.If(branch_taken):
                trap(TrapCause.INSTRUCTION_MISALIGNED, _TrapValue.TARGET)
            with m.Else():
                m.next = "WRITE_BACK"

        with m.State("SHIFT"):
            with m.If(shift_count == 0):
                m.next = "WRITE_BACK"
            with m.Else():
                m.d.sync += shift_count.eq(shift_count - 1)
                with m.If(funct3[2]):
                    m.d.sync += result.eq(Cat(result[1:], result[31] & ir[30]))
                with m.Else():
                    m.d.sync += result.eq(Cat(C(0, 1), result[:31]))

        with m.State("MEMORY"):
            store = dec.kind == Kind.STORE
            m.d.comb += [
                bus.cyc.eq(1),
                bus.stb.eq(1),
                bus.adr.eq(address[2:]),
                bus.we.eq(store),
                bus.sel.eq(store_mask),
            ]
            with m.If(bus.err):
                trap(
                    Mux(store, TrapCause.STORE_ACCESS_FAULT, TrapCause.LOAD_ACCESS_FAULT),
                    _TrapValue.ADDRESS,
                )
            with m.Elif(bus.ack):
                m.d.sync += result.eq(bus.dat_r)
                m.next = "WRITE_BACK"

        with m.State("CSR_MODIFY"):
            # rd takes the old value (in result); the CSR := the new one, now: the instruction
            # cannot fail any more, and WRITE_BACK then sees the interrupt enables it wrote.
            # An x86 CSR's SET sends the new value from the same multiplexer.
            m.d.comb += [
                csr.write.eq((dec.kind == Kind.CSR) & dec.csr_write),
                csr.write_data.eq(csr_modified),
            ]
            with m.If((dec.kind == Kind.X86_CSR) & dec.csr_write):
                m.d.sync += set_phase.eq(1)
                m.next = "UNIT_REQUEST"
            with m.Else():
                m.next = "WRITE_BACK"

    def _unit_states(self, s: SimpleNamespace) -> None:
        """UNIT_REQUEST and UNIT_RESPONSE: a request to the VMX unit, and what each status does."""
        m, req, dec, unit_status, vmx_record = s.m, s.req, s.dec, s.unit_status, s.vmx_record
        trap, exit_trap, asking_exception = s.trap, s.exit_trap, s.asking_exception
        asking_interrupt, asking_run, asking_smi, step = s.asking_interrupt, s.asking_run, s.asking_smi, s.step
        writes_rd, inject, inject_code, inject_interrupt = s.writes_rd, s.inject, s.inject_code, s.inject_interrupt
        inject_error, set_phase, result, tsc_high, csr = s.inject_error, s.set_phase, s.result, s.tsc_high, s.csr
        in_smm, next_pc, pc, exception_asked, port_io = s.in_smm, s.next_pc, s.pc, s.exception_asked, s.port_io
        with m.State("UNIT_REQUEST"):
            m.d.comb += req.valid.eq(1)
            with m.If(req.ready):
                m.next = "UNIT_RESPONSE"

        with m.State("UNIT_RESPONSE"):
            resp = self.vmx_resp
            m.d.comb += resp.ready.eq(1)
            with m.If(resp.valid):
                unit_instruction = dec.kind == Kind.UNIT
                m.d.sync += [unit_status.eq(resp.status), vmx_record.eq(unit_instruction)]
                with m.Switch(resp.status):
                    with m.Case(Status.FAULT):
                        cause = TrapCause.GENERAL_PROTECTION
                        for vector, vector_cause in VECTOR_TO_CAUSE.items():
                            cause = Mux(resp.vector == vector, vector_cause, cause)
                        trap(cause, _TrapValue.INSN)
                    with m.Case(Status.ENTRY_NOT_IMPLEMENTED):
                        trap(TrapCause.ENTRY_NOT_IMPLEMENTED, _TrapValue.INSN)
                    if self.guests:
                        with m.Case(Status.ENTERED, Status.EXITED, Status.ENTRY_FAILED):
                            # The processor moved between host and guest (or into and out of SMM): the
                            # instruction retires with the status and nothing else; MOVE takes RIP, RSP,
                            # IDTR.base.
                            entered = resp.status == Status.ENTERED
                            m.d.sync += [exit_trap.eq(asking_exception | asking_interrupt)]
                            asking = (asking_exception, asking_interrupt, asking_run, asking_smi)
                            self._start_move(m, step, vmx_record, writes_rd, asking)
                            self._injection(m, resp, entered, inject, inject_code, inject_interrupt, inject_error)
                    with m.Default():
                        # VMsucceed for a VMX instruction, OK for RDMSR/WRMSR.
                        completed = Mux(dec.platform_op, resp.status == Status.OK, resp.status == Status.SUCCEED)
                        # The value read: the VMX instruction's or RDMSR's, or the x86 CSR's (GET).
                        with m.If(~set_phase):
                            m.d.sync += result.eq(Mux(tsc_high, resp.value[32:], resp.value[:32]))

                        def completes():
                            with m.If(unit_instruction):
                                m.d.sync += writes_rd.eq(dec.writes_rd & completed)
                                m.d.comb += [
                                    csr.xhi_write.eq(dec.rdmsr & (resp.status == Status.OK)),
                                    csr.xhi_data.eq(resp.value[32:]),
                                ]
                                m.next = "WRITE_BACK"
                            with m.Elif(set_phase):
                                m.next = "WRITE_BACK"
                            with m.Else():
                                m.next = "CSR_MODIFY"

                        if self.guests:
                            # An SMI delivered into SMM (the core was not there) and RSM move the core too.
                            smi_delivered = asking_smi & self.smm_status.in_smm & ~in_smm
                            rsm = unit_instruction & (dec.unit_op == Op.RSM)
                            with m.If((resp.status == Status.OK) & (smi_delivered | rsm)):
                                self._start_move(m, step, vmx_record, writes_rd, (asking_smi,))
                            with m.Elif(asking_smi):
                                # An SMI held (the unit in SMM, or SMIs blocked): a record of its own, where
                                # the core is.
                                m.d.sync += [asking_smi.eq(0), vmx_record.eq(1), writes_rd.eq(0), next_pc.eq(pc)]
                                m.next = "WRITE_BACK"
                            # A guest's trap the unit lets the guest take; a HLT that did not exit (the
                            # guest waits, active for the unit); IN/OUT that did not exit (the device).
                            with m.Elif(asking_exception):
                                m.d.sync += [asking_exception.eq(0), exception_asked.eq(1)]
                                m.next = "TRAP"
                            with m.Elif(asking_run):
                                # No exit after all (a tick short): the guest goes on.
                                m.d.sync += asking_run.eq(0)
                                m.next = "FETCH"
                            with m.Elif(asking_interrupt):
                                # No exit: the guest takes the interrupt if its mstatus.MIE lets it.
                                m.d.sync += asking_interrupt.eq(0)
                                m.next = "FETCH"
                                with m.If(csr.interrupt):
                                    m.next = "TRAP"
                            with m.Elif(dec.kind == Kind.WFI):
                                m.d.sync += step.eq(3)
                                m.next = "SAVE_REQUEST"
                            with m.Elif(port_io):
                                m.next = "PORT_IO"
                            with m.Else():
                                completes()
                        else:
                            completes()

    def _retire_states(self, s: SimpleNamespace) -> None:
        """PORT_IO, WAIT_INTERRUPT, WRITE_BACK (rd, pc, the record, an SMI or interrupt at the boundary) and TRAP."""
        m, io, result, io_rdata, csr, rd_port = s.m, s.io, s.result, s.io_rdata, s.csr, s.rd_port
        writing_rd, rd, written, trace, vmx_record, dec = s.writing_rd, s.rd, s.written, s.trace, s.vmx_record, s.dec
        exit_trap, pc, address, next_pc, trap_code = s.exit_trap, s.pc, s.address, s.next_pc, s.trap_code
        trap_interrupt, inject, inject_code = s.trap_interrupt, s.inject, s.inject_code
        inject_interrupt, trap_value, inject_error, ir = s.inject_interrupt, s.trap_value, s.inject_error, s.ir
        exception_asked, asking_smi, step, smi_size = s.exception_asked, s.asking_smi, s.step, s.smi_size
        smi_io, non_root, asking_run, in_smm = s.smi_io, s.non_root, s.asking_run, s.in_smm
        asking_interrupt, asking_exception = s.asking_interrupt, s.asking_exception
        with m.State("PORT_IO"):
            m.d.comb += io.valid.eq(1)
            with m.If(io.ready):
                m.d.sync += result.eq(io_rdata)
                m.next = "WRITE_BACK"

        with m.State("WAIT_INTERRUPT"):
            with m.If(csr.wake):
                m.next = "WRITE_BACK"

        with m.State("WRITE_BACK"):
            m.d.comb += [
                rd_port.en.eq(writing_rd),
                rd_port.addr.eq(rd),
                rd_port.data.eq(written),
                csr.retire.eq(1),
                trace.valid.eq(1),
                trace.rd.eq(Mux(writing_rd, rd, 0)),
                trace.rd_value.eq(written),
                trace.vmx.eq(vmx_record),
                # (A store whose fault exited stored nothing; a JALR's goes on at HOST_RIP.)
                trace.store.eq((dec.kind == Kind.STORE) & ~exit_trap),
            ]
            m.d.sync += [pc.eq(Mux((dec.kind == Kind.JALR) & ~exit_trap, address, next_pc)), vmx_record.eq(0)]
            if self.guests:
                # A trap that exited: the record carries it, and the instruction does not retire.
                m.d.comb += [
                    trace.trap.eq(exit_trap),
                    trace.cause.eq(pack(Mcause, code=trap_code, interrupt=trap_interrupt)),
                    csr.retire.eq(~exit_trap),
                ]
                m.d.sync += exit_trap.eq(0)
            with m.If(inject if self.guests else 0):
                # The event the entry injected: a trap of the guest at its first instruction (mtval: the
                # error code), which the unit is not asked about.
                m.d.sync += [
                    trap_code.eq(inject_code),
                    trap_interrupt.eq(inject_interrupt),
                    trap_value.eq(_TrapValue.ADDRESS),
                    address.eq(inject_error),
                    ir.eq(0),
                    inject.eq(0),
                    exception_asked.eq(1),
                ]
                m.next = "TRAP"
            if self.guests:
                with m.Elif(self.smi.pending):
                    # An SMI: SAVE (in every mode), then the SMI request; a record of its own (insn 0).
                    m.d.comb += self.smi.take.eq(1)
                    m.d.sync += [
                        ir.eq(0),
                        asking_smi.eq(1),
                        step.eq(0),
                        smi_size.eq(self.smi.size),
                        smi_io.eq(self.smi.io),
                    ]
                    m.next = "SAVE_REQUEST"
            with m.Elif(self.guest_time.due & non_root if self.guests else 0):
                # In a guest whose time is due: RUN (an exit of its own at this boundary, insn 0).
                m.d.sync += [ir.eq(0), asking_run.eq(1), step.eq(0)]
                m.next = "SAVE_REQUEST" if self.guests else "FETCH"
            with m.Elif(csr.wake & non_root & ~in_smm if self.guests else 0):
                # In a guest: INTERRUPT for the unit first ("external-interrupt exiting").
                m.d.sync += [
                    trap_code.eq(csr.interrupt_cause.code[:MCAUSE_CODE_BITS]),
                    trap_interrupt.eq(1),
                    trap_value.eq(_TrapValue.ZERO),
                    ir.eq(0),
                    asking_interrupt.eq(1),
                    step.eq(0),
                ]
                m.next = "SAVE_REQUEST" if self.guests else "TRAP"
            with m.Elif(csr.interrupt & ~in_smm if self.guests else csr.interrupt):
                # (In SMM the core takes no interrupt, docs/smm-soc.md.)
                m.d.sync += [
                    trap_code.eq(csr.interrupt_cause.code[:MCAUSE_CODE_BITS]),
                    trap_interrupt.eq(1),
                    trap_value.eq(_TrapValue.ZERO),
                    ir.eq(0),
                ]
                m.next = "TRAP"
            with m.Else():
                m.next = "FETCH"

        with m.State("TRAP"):
            if self.guests:
                mapped = Const(0, 1)
                for cause in GUEST_EXCEPTIONS:
                    mapped = mapped | (trap_code == int(cause))
                with m.If(non_root & ~trap_interrupt & mapped & ~exception_asked):
                    # A guest's trap: first EXCEPTION for the unit (the exception bitmap decides).
                    m.d.sync += [asking_exception.eq(1), step.eq(0)]
                    m.next = "SAVE_REQUEST"
                with m.Else():
                    m.d.sync += exception_asked.eq(0)
                    self._take_trap(
                        m, csr, trace, pc, ir, address, next_pc, trap_code, trap_interrupt, trap_value, vmx_record
                    )
            else:
                self._take_trap(
                    m, csr, trace, pc, ir, address, next_pc, trap_code, trap_interrupt, trap_value, vmx_record
                )

    @staticmethod
    def _take_trap(m, csr, trace, pc, ir, address, next_pc, trap_code, trap_interrupt, trap_value, vmx_record):  # noqa: ANN001, ANN205, E501
        """TRAP: mepc, mcause, mtval; pc := mtvec; one trace record."""
        trap_cause = pack(Mcause, code=trap_code, interrupt=trap_interrupt)
        value = C(0, 32)
        for which, register in [
            (_TrapValue.PC, pc),
            (_TrapValue.INSN, ir),
            (_TrapValue.ADDRESS, address),
            (_TrapValue.TARGET, next_pc),
        ]:
            value = value | Mux((trap_value.as_value() & which.value).any(), register, 0)
        m.d.comb += csr.trap_value.eq(value)
        m.d.comb += [
            csr.trap.eq(1),
            csr.trap_pc.eq(pc),
            csr.trap_cause.eq(trap_cause),
            trace.valid.eq(1),
            trace.trap.eq(1),
            trace.cause.eq(trap_cause),
            trace.vmx.eq(vmx_record),
        ]
        m.d.sync += [pc.eq(csr.mtvec), vmx_record.eq(0)]
        m.next = "FETCH"

    @staticmethod
    def _guest_exception(m, trap_code):  # noqa: ANN001, ANN205
        """The x86 exception of a guest's trap (rtl/arch/isa.py GUEST_EXCEPTIONS): (vector, error code)."""
        vector, error_code = Signal(8), Signal(32)
        with m.Switch(trap_code):
            for cause, exception in GUEST_EXCEPTIONS.items():
                with m.Case(int(cause)):
                    m.d.comb += [vector.eq(exception.vector), error_code.eq(exception.error_code or 0)]
        return vector, error_code

    @staticmethod
    def _injection(m, resp, entered, inject, inject_code, inject_interrupt, inject_error) -> None:  # noqa: ANN001
        """An entry's response value: the injected event's interruption information (31:0, valid bit 31, error
        code valid bit 11) and error code (63:32); its trap is ``injected_cause(vector)``."""
        info = resp.value[:32]
        m.d.sync += [
            inject.eq(entered & info[31]),
            inject_error.eq(Mux(info[11], resp.value[32:], 0)),
            inject_code.eq(info[:MCAUSE_CODE_BITS]),
            inject_interrupt.eq(0),
        ]
        with m.Switch(info[:8]):
            for vector in range(256):
                cause = Mcause.from_bits(injected_cause(vector)) if injected_cause(vector) >> 31 else None
                code = injected_cause(vector) & ((1 << MCAUSE_CODE_BITS) - 1)
                if cause is None and code == vector & ((1 << MCAUSE_CODE_BITS) - 1):
                    continue  # the default above
                with m.Case(vector):
                    m.d.sync += [inject_code.eq(code), inject_interrupt.eq(cause is not None)]

    def _save_and_move(self, m, step, saving, moving, next_pc, rd_port, csr, mode) -> None:  # noqa: ANN001
        """SAVE: before a guest's request (and an SMI), SET of the unit's RIP, RSP, IDTR.base to pc, sp, mtvec;
        then the request. MOVE: after an entry, an exit, an SMI's delivery or RSM, GET of them into next_pc,
        sp, mtvec (and in SMM of CS.base, added to next_pc); with the last, ``_moved``; then WRITE_BACK."""
        req, resp = self.vmx_req, self.vmx_resp
        with m.State("SAVE_REQUEST"):
            m.d.comb += [saving.eq(1), req.valid.eq(1)]
            with m.If(req.ready):
                m.next = "SAVE_RESPONSE"
        with m.State("SAVE_RESPONSE"):
            m.d.comb += resp.ready.eq(1)
            with m.If(resp.valid):
                m.d.sync += step.eq(step + 1)
                m.next = "SAVE_REQUEST"
                with m.If(step == 2):
                    m.d.sync += step.eq(0)
                    m.next = "UNIT_REQUEST"
                with m.If(step == 3):
                    m.d.sync += step.eq(0)
                    m.next = "WAIT_INTERRUPT"
        with m.State("MOVE_REQUEST"):
            m.d.comb += [moving.eq(1), req.valid.eq(1)]
            with m.If(req.ready):
                m.next = "MOVE_RESPONSE"
        with m.State("MOVE_RESPONSE"):
            m.d.comb += resp.ready.eq(1)
            with m.If(resp.valid):
                m.d.sync += step.eq(step + 1)
                m.next = "MOVE_REQUEST"
                with m.Switch(step):
                    with m.Case(0):
                        m.d.sync += next_pc.eq(resp.value[:32])
                    with m.Case(1):
                        m.d.comb += [rd_port.en.eq(1), rd_port.addr.eq(2), rd_port.data.eq(resp.value[:32])]
                    with m.Case(2):
                        m.d.comb += [csr.mtvec_load.eq(1), csr.mtvec_value.eq(resp.value[:32])]
                        with m.If(~self.smm_status.in_smm):
                            self._moved(m, step, csr, *mode)
                    with m.Case(3):
                        # In SMM the core's pc is linear: RIP + CS.base (SMBASE after an SMI's delivery).
                        m.d.sync += next_pc.eq(next_pc + resp.value[:32])
                        self._moved(m, step, csr, *mode)

    def _moved(self, m, step, csr, non_root, in_smm) -> None:  # noqa: ANN001
        """The end of MOVE: the core takes the unit's mode, and the bank of trap registers that goes with it
        (SMM's in SMM, else a guest's in VMX non-root operation, else the host's); WRITE_BACK retires the
        record."""
        status = self.smm_status
        m.d.sync += [step.eq(0), non_root.eq(status.non_root), in_smm.eq(status.in_smm)]
        m.d.comb += [
            csr.swap.eq(1),
            csr.bank.eq(Mux(status.in_smm, Bank.SMM, Mux(status.non_root, Bank.GUEST, Bank.HOST))),
        ]
        m.next = "WRITE_BACK"

    @staticmethod
    def _start_move(m, step, vmx_record, writes_rd, asking) -> None:  # noqa: ANN001
        """The unit moved the processor: the record is the request's, with its status and nothing else; MOVE."""
        m.d.sync += [step.eq(0), vmx_record.eq(1), writes_rd.eq(0), *(a.eq(0) for a in asking)]
        m.next = "MOVE_REQUEST"
