# amaranth: UnusedElaboratable=no
"""The doors between the unit's blocks: signatures, and the errors their constructors raise.

The blocks' latencies are pinned in test_unit_latency.py, in the unit.
"""

import pytest

from vmxu.rtl.arch.ops import Op
from vmxu.rtl.vmcs.region import RegionArbiter, RegionCommand, RegionCommandSignature, RegionPort
from vmxu.rtl.vmcs.vmcs_cache import TagPortSignature
from vmxu.rtl.vmx.dispatcher import Dispatcher
from vmxu.rtl.vmx.entry_checks import CheckSignature
from vmxu.rtl.vmx.machine_state import StatePortSignature
from vmxu.rtl.vmx.operation import OperationSignature
from vmxu.rtl.vmx.unit import BLOCKS
from vmxu.rtl.vmx.vmcs_pointers import VmcsPointers


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (lambda n: RegionCommandSignature(n), "RegionCommandSignature(entries={})"),
        (lambda n: TagPortSignature(n), "TagPortSignature(entries={})"),
        (lambda n: CheckSignature(n), "CheckSignature(entries={})"),
    ],
)
def test_signatures_sized_by_the_cache_compare_by_size_and_validate_it(make, text):
    assert make(4) == make(4) and make(4) != make(2)
    assert repr(make(2)) == text.format(2)
    with pytest.raises(ValueError, match=r"^Cache entries must be a power of two, at least 2, not 3$"):
        make(3)


def test_fixed_signatures_compare_equal():
    assert OperationSignature() == OperationSignature() and repr(OperationSignature()) == "OperationSignature()"
    assert StatePortSignature() == StatePortSignature() and repr(StatePortSignature()) == "StatePortSignature()"
    assert set(OperationSignature().members) == {
        "accept", "request", "operation", "start", "done", "outcome", "result", "result_en", "read_value"
    }  # fmt: skip


def test_every_operation_but_the_dispatchers_own_belongs_to_one_block():
    """The dispatcher answers VMCALL (VMfail(1)) itself in root operation; the SMM block carries out SMI and RSM
    (the dispatcher's #UD of RSM outside SMM comes first)."""
    owned = [op for ops in BLOCKS.values() for op in ops]
    assert sorted(owned + [Op.VMCALL], key=lambda op: op.value) == list(Op)


@pytest.mark.parametrize(
    ("blocks", "message"),
    [
        ({**BLOCKS, "more": (Op.GET,)}, r"^Operation GET is carried out by two blocks \(or is the dispatcher's own\)$"),
        ({**BLOCKS, "more": (Op.VMCALL,)}, r"^Operation VMCALL is carried out by two blocks"),
        ({k: v for k, v in BLOCKS.items() if k != "msrs"}, r"^No block carries out RDMSR, WRMSR, GET, SET$"),
        ({**BLOCKS, "cache": ()}, r"^Block names must be identifiers other than the dispatcher's members, not 'cache'"),
    ],
)
def test_the_dispatcher_rejects_a_bad_block_map(blocks, message):
    with pytest.raises(ValueError, match=message):
        Dispatcher(2, blocks)


def test_the_region_arbiter_rejects_its_own_port_name():
    with pytest.raises(ValueError, match=r"^Client names must be identifiers other than 'port', not 'port'$"):
        RegionArbiter(2, ("port",))


def test_vmxoff_latency_counts_at_most_every_entry():
    pointers = VmcsPointers(2, region_latency=RegionPort(2).latency)
    write_back = pointers.region_latency[RegionCommand.WRITE_BACK]
    assert pointers.vmxoff_latency(dirty=1, launched_clean=1) == 2 * 2 + write_back + 2
    with pytest.raises(ValueError, match=r"^A cache of 2 entries has no 3 such entries$"):
        pointers.vmxoff_latency(dirty=2, launched_clean=1)
