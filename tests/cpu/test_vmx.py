"""The VMX extension on the core: requests to the VMX unit and their outcomes, x86 CSRs, CPUID, IN/OUT, RSM.

docs/cpu.md "The VMX extension" and the x86 CSRs of "CSRs"; rtl/arch/isa.py.
The VMX unit is a fake here (tests/cpu/core_bench.py) that records each request
and answers what the test programs; the real unit is tested in tests/rtl.
"""

import pytest
from core_bench import HALT, Request, Response
from programs import HANDLER_REGS, WAITS, retired, run, traps, with_handler

from vmxu.rtl.arch.isa import INSTRUCTIONS, Csr, IoSize, Operand, TrapCause
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.state import element_id
from vmxu.rtl.cpu.cpuid import CPUID_LEAVES, cpuid
from vmxu.sim.rv32 import asm
from vmxu.sim.rv32.asm import Program, li

UNIT_INSTRUCTIONS = [i for i in INSTRUCTIONS if i.unit_op is not None]
RS1, RS2, XHI = 0x1234_5678, 0x9ABC_DEF0, 0x0BAD_CAFE


def _registers_of(insn):
    """Register numbers for the instruction's operand fields: rd x10, rs1 x11, rs2 x12."""
    return [n for n, role in ((10, insn.rd), (11, insn.rs1), (12, insn.rs2)) if role != Operand.NONE]


def _expected_request(insn):
    index = RS1 if insn.rs1 in (Operand.FIELD, Operand.MSR) else 0
    if insn.rs1 == Operand.ADDR_LOW:
        value = (RS2 << 32) | RS1
    elif insn.unit_op == Op.WRMSR:
        value = (XHI << 32) | RS2
    elif insn.rs2 == Operand.VALUE:
        value = RS2
    else:
        value = 0
    return Request(insn.unit_op, OperandSize.S32, index, value)


def _program(insn):
    p = Program()
    p.emit(li(10, 0x5555), li(11, RS1), li(12, RS2), li(13, XHI), asm.csrw("xhi", 13))
    at = p.emit(getattr(asm, insn.name)(*_registers_of(insn)))
    p.emit(asm.csrr(14, "xhi"), HALT)
    return p, at


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
@pytest.mark.parametrize("insn", UNIT_INSTRUCTIONS, ids=[i.name for i in UNIT_INSTRUCTIONS])
def test_request_carries_op_size_index_value(insn, waits):
    p, at = _program(insn)
    bench = run(p, waits=waits)
    assert bench.requests == [_expected_request(insn)]
    record = next(r for r in bench.records if r.pc == at)
    assert record.vmx and record.vmx_status == Status.SUCCEED and not record.trap


def _outcome_unit(response):
    def unit(request):
        return response

    return unit


@pytest.mark.parametrize("insn", UNIT_INSTRUCTIONS, ids=[i.name for i in UNIT_INSTRUCTIONS])
@pytest.mark.parametrize("status", [Status.SUCCEED, Status.FAIL_INVALID, Status.FAIL_VALID, Status.OK])
def test_rd_written_only_by_a_completed_result(insn, status):
    """VMREAD/VMPTRST write rd on VMsucceed, RDMSR on OK (and xhi := bits 63:32); nothing else writes."""
    p, at = _program(insn)
    bench = run(p, unit=_outcome_unit(Response(status, value=0xFEED_FACE_0123_4567)))
    record = next(r for r in bench.records if r.pc == at)
    assert (record.vmx, record.vmx_status, record.trap) == (True, status, False)
    writes = insn.rd == Operand.RESULT and (
        (insn.unit_op == Op.RDMSR and status == Status.OK) or (insn.unit_op != Op.RDMSR and status == Status.SUCCEED)
    )
    if writes:
        assert (record.rd, record.rd_value) == (10, 0x0123_4567)
    else:
        assert record.rd == 0
        assert bench.registers[10] == 0x5555
    xhi = 0xFEED_FACE if insn.unit_op == Op.RDMSR and status == Status.OK else XHI
    assert bench.registers[14] == xhi


@pytest.mark.parametrize(
    "response, cause",
    [
        (Response(Status.FAULT, vector=6), TrapCause.ILLEGAL_INSTRUCTION),
        (Response(Status.FAULT, vector=13), TrapCause.GENERAL_PROTECTION),
        (Response(Status.ENTRY_NOT_IMPLEMENTED), TrapCause.ENTRY_NOT_IMPLEMENTED),
    ],
    ids=["ud", "gp", "entry-not-implemented"],
)
@pytest.mark.parametrize("insn", UNIT_INSTRUCTIONS, ids=[i.name for i in UNIT_INSTRUCTIONS])
def test_unit_exceptions_trap_with_the_word_and_change_nothing(insn, response, cause):
    word = getattr(asm, insn.name)(*_registers_of(insn))

    def body(p):
        p.emit(li(10, 0x5555), li(11, RS1), li(12, RS2), li(13, XHI), asm.csrw("xhi", 13))
        p.label("insn")
        p.emit(word)

    def handler(p):
        p.emit(asm.csrr(28, "mcause"), asm.csrr(29, "mepc"), asm.csrr(30, "mtval"), asm.csrr(14, "xhi"), HALT)

    p = with_handler(body, handler=handler)
    bench = run(p, unit=_outcome_unit(Response(response.status, value=0xFFFF_FFFF_FFFF_FFFF, vector=response.vector)))
    regs = bench.registers
    assert [regs[r] for r in HANDLER_REGS] == [cause, p.labels["insn"], word]
    assert regs[10] == 0x5555 and regs[14] == XHI
    record = traps(bench.records)[0]
    assert (record.pc, record.insn, record.rd, record.cause) == (p.labels["insn"], word, 0, cause)
    assert record.vmx and record.vmx_status == response.status


def test_flags_are_the_units():
    """VMfailInvalid/VMfailValid are the unit's business: the core reads RFLAGS with a GET."""
    rflags = element_id("rflags")
    state = {rflags: 0x2}

    def unit(request):
        if request.op == Op.VMPTRLD:
            state[rflags] = 0x2 | 0x1  # CF: VMfailInvalid
            return Response(Status.FAIL_INVALID)
        if request.op == Op.GET:
            return Response(Status.OK, value=state[request.index])
        return Response(Status.SUCCEED)

    p = Program()
    p.emit(asm.vmptrld(1, 0))
    at = p.emit(asm.csrr(5, "xflags"))
    p.emit(HALT)
    bench = run(p, unit=unit)
    assert bench.requests[1] == Request(Op.GET, OperandSize.S32, rflags, 0)
    record = next(r for r in bench.records if r.pc == at)
    assert (record.rd, record.rd_value, record.vmx) == (5, 0x3, False)


X86_CSRS = [(Csr.XCR0, "cr0"), (Csr.XCR3, "cr3"), (Csr.XCR4, "cr4"), (Csr.XFLAGS, "rflags")]


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
@pytest.mark.parametrize("csr, element", X86_CSRS, ids=[c.name for c, _ in X86_CSRS])
def test_x86_csrs_are_get_and_set(csr, element, waits):
    index = element_id(element)
    p = Program()
    p.emit(li(1, 0xF000_000F), li(2, 0x0000_0FF0))
    ops = [
        p.emit(asm.csrr(3, csr)),  # GET
        p.emit(asm.csrrw(4, csr, 1)),  # GET, SET F000000F
        p.emit(asm.csrrs(5, csr, 2)),  # GET, SET F0000FFF
        p.emit(asm.csrrc(6, csr, 1)),  # GET, SET 00000FF0
        p.emit(asm.csrrwi(7, csr, 5)),  # GET, SET 5
        p.emit(asm.csrrsi(8, csr, 0)),  # GET only
        p.emit(asm.csrrci(9, csr, 1)),  # GET, SET 4
    ]
    p.emit(HALT)
    bench = run(p, waits=waits)
    get = Request(Op.GET, OperandSize.S32, index, 0)

    def put(v):
        return Request(Op.SET, OperandSize.S32, index, v)

    assert bench.requests == [
        get,
        get,
        put(0xF000_000F),
        get,
        put(0xF000_0FFF),
        get,
        put(0x0000_0FF0),
        get,
        put(5),
        get,
        get,
        put(4),
    ]
    by_pc = {r.pc: r for r in retired(bench.records)}
    assert [by_pc[pc].rd_value for pc in ops] == [0, 0, 0xF000_000F, 0xF000_0FFF, 0x0FF0, 5, 5]
    assert not any(by_pc[pc].vmx for pc in ops)


@pytest.mark.parametrize("csr", [c for c, _ in X86_CSRS], ids=[c.name for c, _ in X86_CSRS])
def test_refused_x86_csr_write_is_general_protection(csr):
    """A SET the unit refuses (#GP): cause 24, mtval = the word, rd unchanged, the record is not vmx."""

    def unit(request):
        if request.op == Op.SET:
            return Response(Status.FAULT, vector=13)
        return Response(Status.OK, value=0x11)

    word = asm.csrrw(5, csr, 1)

    def body(p):
        p.emit(li(5, 0x5555), li(1, 0xFFFF_FFFF))
        p.label("write")
        p.emit(word)

    p = with_handler(body)
    bench = run(p, unit=unit)
    assert [bench.registers[r] for r in HANDLER_REGS] == [TrapCause.GENERAL_PROTECTION, p.labels["write"], word]
    assert bench.registers[5] == 0x5555
    record = traps(bench.records)[0]
    assert not record.vmx and record.rd == 0


@pytest.mark.parametrize("leaf", [0, 1, 2, 0x8000_0000, 0xFFFF_FFFF])
def test_cpuid(leaf):
    p = Program()
    p.emit(li(1, leaf))
    reads = []
    for register in range(4):
        p.emit(li(2, register | 0x100))  # only rs2 bits 1:0 count
        reads.append(p.emit(asm.cpuid(10 + register, 1, 2)))
    p.emit(HALT)
    bench = run(p)
    by_pc = {r.pc: r for r in bench.records}
    assert [by_pc[pc].rd_value for pc in reads] == [cpuid(leaf, r) for r in range(4)]
    assert not bench.requests and not any(r.vmx for r in bench.records)


def test_cpuid_vendor_string():
    ebx, ecx, edx = CPUID_LEAVES[0][1:]
    vendor = b"".join(v.to_bytes(4, "little") for v in (ebx, edx, ecx))
    assert vendor == b"vmxuRV32core" and CPUID_LEAVES[0][0] == 1 and CPUID_LEAVES[1][2] == 1 << 5


@pytest.mark.parametrize("waits", WAITS.values(), ids=WAITS.keys())
def test_in_and_out(waits):
    p = Program()
    p.emit(li(1, 0x1_03F8), li(2, 0xA5B6_C7D8), li(3, 0x80))
    outs = [p.emit(asm.outb(1, 2)), p.emit(asm.outw(3, 2)), p.emit(asm.outl(1, 2))]
    ins = [p.emit(asm.inb(10, 1)), p.emit(asm.inw(11, 1)), p.emit(asm.inl(12, 1)), p.emit(asm.inl(13, 3))]
    p.emit(li(4, 0x1234))
    unanswered = p.emit(asm.inw(14, 4))
    p.emit(HALT)
    bench = run(p, waits=waits, ports={0x3F8: 0xFFFF_FFFF})
    assert [(w, port, size) for w, port, size, _ in bench.io_accesses[:3]] == [
        (True, 0x3F8, IoSize.BYTE),
        (True, 0x80, IoSize.WORD),
        (True, 0x3F8, IoSize.DWORD),
    ]
    assert all(data == 0xA5B6_C7D8 for _, _, _, data in bench.io_accesses[:3])
    by_pc = {r.pc: r for r in bench.records}
    assert all(by_pc[pc].rd == 0 for pc in outs)
    # The port keeps the last OUT (the responder masks by size): 0xA5B6C7D8 at 0x3F8, 0xC7D8 at 0x80.
    assert [by_pc[pc].rd_value for pc in ins] == [0xD8, 0xC7D8, 0xA5B6_C7D8, 0xC7D8]
    assert by_pc[unanswered].rd_value == 0xFFFF
    assert not bench.requests


def test_rsm_is_illegal_outside_smm():
    word = asm.rsm()

    def body(p):
        p.label("rsm")
        p.emit(word)

    p = with_handler(body)
    bench = run(p)
    assert [bench.registers[r] for r in HANDLER_REGS] == [TrapCause.ILLEGAL_INSTRUCTION, p.labels["rsm"], word]
    assert not bench.requests


def test_vmlaunch_entry_not_implemented():
    def body(p):
        p.label("launch")
        p.emit(asm.vmlaunch())

    p = with_handler(body)
    bench = run(p, unit=_outcome_unit(Response(Status.ENTRY_NOT_IMPLEMENTED)))
    assert bench.registers[HANDLER_REGS[0]] == TrapCause.ENTRY_NOT_IMPLEMENTED
    assert bench.requests == [Request(Op.VMLAUNCH, OperandSize.S32, 0, 0)]


def test_unit_latency_does_not_matter():
    """A slow unit (20 cycles) gives the same records, later."""
    insn = next(i for i in INSTRUCTIONS if i.name == "vmread")
    p, at = _program(insn)
    fast = run(p, unit=_outcome_unit(Response(Status.SUCCEED, value=42)), unit_latency=1, waits=(0,))
    slow = run(p, unit=_outcome_unit(Response(Status.SUCCEED, value=42)), unit_latency=20, waits=(0,))
    strip = [(r.pc, r.rd, r.rd_value, r.vmx, r.vmx_status) for r in fast.records]
    assert strip == [(r.pc, r.rd, r.rd_value, r.vmx, r.vmx_status) for r in slow.records]
    assert slow.records[-1].cycle - fast.records[-1].cycle == 19
