"""Draw docs/img/timing.svg: a VMREAD of an on-die field and a VMPTRLD of a cached VMCS, cycle by cycle.

The picture is measured, not drawn: the VMX unit runs in Amaranth's simulator
with the bench's bus timing (a Wishbone slave that acknowledges one clock
after the strobe, a requester that takes each response at once), every signal
shown is sampled once per clock, and wavedrom turns the samples into SVG.

    .venv/bin/pip install -e '.[docs]'
    .venv/bin/python docs/timing_diagram.py          # or: make docs
"""

import json
import sys
from pathlib import Path

import wavedrom
from amaranth import Value
from amaranth.sim import Simulator

from vmxu.rtl.arch import msrs
from vmxu.rtl.arch.fields import FIELD_BY_NAME
from vmxu.rtl.arch.ops import Op, OperandSize, Status
from vmxu.rtl.arch.state import CR0, CR4, element_id
from vmxu.rtl.vmx.unit import VmxUnit

OUTPUT = Path(__file__).parent / "img" / "timing.svg"
VMXON_REGION, VMCS_REGION = 0x1000, 0x2000
GUEST_RIP = FIELD_BY_NAME["GUEST_RIP"].encoding


def simulate() -> tuple[list[dict[str, int]], list[tuple[str, int, int]]]:
    """Samples of the port and the bus, one per cycle, and (name, accepted, answered) of the two operations shown."""
    unit = VmxUnit()
    memory = {VMXON_REGION // 4: msrs.VMCS_REVISION_ID, VMCS_REGION // 4: msrs.VMCS_REVISION_ID}
    samples: list[dict[str, int]] = []
    shown: list[tuple[str, int, int]] = []
    watched = {
        "req.valid": unit.req.valid,
        "req.ready": unit.req.ready,
        "req.op": unit.req.op,
        "resp.valid": unit.resp.valid,
        "resp.ready": unit.resp.ready,
        "resp.status": unit.resp.status,
        "resp.value": unit.resp.value,
        "bus.cyc": unit.bus.cyc,
        "bus.stb": unit.bus.stb,
        "bus.we": unit.bus.we,
        "bus.adr": unit.bus.adr,
        "bus.ack": unit.bus.ack,
    }

    async def bench(ctx):
        slave = {"ack": False, "pending": False}
        in_flight = [Op.VMXON]  # the last operation requested, so the picture shows a value only where one is read

        async def cycle():
            """Record this cycle, let the clock tick, then play the bus slave for the next cycle."""
            sample = {name: ctx.get(Value.cast(signal)) for name, signal in watched.items()}
            samples.append({**sample, "in_flight": in_flight[0]})
            await ctx.tick()
            strobe = ctx.get(unit.bus.cyc) and ctx.get(unit.bus.stb)
            if slave["ack"]:
                ctx.set(unit.bus.ack, 0)
                slave["ack"], slave["pending"] = False, bool(strobe)
            elif slave["pending"]:
                address = ctx.get(unit.bus.adr)
                if ctx.get(unit.bus.we):
                    memory[address] = ctx.get(unit.bus.dat_w)
                else:
                    ctx.set(unit.bus.dat_r, memory.get(address, 0))
                ctx.set(unit.bus.ack, 1)
                slave["ack"], slave["pending"] = True, False
            elif strobe:
                slave["pending"] = True

        async def execute(op: Op, index: int = 0, value: int = 0, show: str | None = None):
            ctx.set(unit.req.op, op)
            in_flight[0] = op
            ctx.set(unit.req.size, OperandSize.S64)
            ctx.set(unit.req.index, index)
            ctx.set(unit.req.value, value)
            ctx.set(unit.req.valid, 1)
            while not ctx.get(unit.req.ready):
                await cycle()
            accepted = len(samples)
            await cycle()
            ctx.set(unit.req.valid, 0)
            while not ctx.get(unit.resp.valid):
                await cycle()
            ctx.set(unit.resp.ready, 1)
            answered = len(samples)
            status = ctx.get(unit.resp.status)
            await cycle()
            ctx.set(unit.resp.ready, 0)
            if status not in (Status.SUCCEED, Status.OK):
                raise AssertionError(f"{op.name}: {status}")
            if show is not None:
                shown.append((show, accepted, answered))

        while not ctx.get(unit.req.ready):  # the machine state restores its power-up values
            await cycle()
        feature_control = msrs.FEATURE_CONTROL_LOCK | msrs.FEATURE_CONTROL_VMX_OUTSIDE_SMX
        await execute(Op.WRMSR, msrs.IA32_FEATURE_CONTROL, feature_control)
        await execute(Op.SET, element_id("cr0"), CR0.PE | CR0.NE | CR0.PG)
        await execute(Op.SET, element_id("cr4"), CR4.VMXE)
        await execute(Op.VMXON, value=VMXON_REGION)
        await execute(Op.VMPTRLD, value=VMCS_REGION)  # fills the cache
        await execute(Op.VMWRITE, GUEST_RIP, 0xFFF0)
        await cycle()
        await execute(Op.VMREAD, GUEST_RIP, show="VMREAD GUEST_RIP (on-die)")
        await cycle()
        await execute(Op.VMPTRLD, value=VMCS_REGION, show="VMPTRLD 0x2000 (cached)")
        for _ in range(2):
            await cycle()

    sim = Simulator(unit)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return samples, shown


def _wave(values: list[int | None], label=None) -> tuple[str, list[str]]:
    """A WaveJSON wave string for 1-bit values, or a data lane (``label`` names each value; None is don't-care)."""
    wave, data, previous = "", [], object()
    for value in values:
        if value == previous:
            wave += "."
        elif value is None:
            wave += "x"
        elif label is None:
            wave += str(value)
        else:
            wave += "="
            data.append(label(value))
        previous = value
    return wave, data


def wavejson(samples: list[dict[str, int]], shown: list[tuple[str, int, int]]) -> dict:
    first, last = shown[0][1] - 1, shown[-1][2] + 2
    window = samples[first : last + 1]

    def lane(name: str, when=lambda sample: True, label=None) -> dict:
        values = [s[name] if when(s) else None for s in window]
        wave, data = _wave(values, label)
        return {"name": name, "wave": wave, **({"data": data} if data else {})}

    req_valid = lane("req.valid")
    resp_valid = lane("resp.valid")
    # Nodes mark acceptance and response of each operation; edges label the latency between them.
    nodes_req, nodes_resp, edges = ["."] * len(window), ["."] * len(window), []
    for (name, accepted, answered), (a, b) in zip(shown, ("ab", "cd"), strict=True):
        nodes_req[accepted - first], nodes_resp[answered - first] = a, b
        edges.append(f"{a}~>{b} {name}: {answered - accepted} cycles")
    req_valid["node"], resp_valid["node"] = "".join(nodes_req), "".join(nodes_resp)
    return {
        "signal": [
            {"name": "clk", "wave": "p" + "." * (len(window) - 1)},
            [
                "request",
                req_valid,
                lane("req.ready"),
                lane("req.op", lambda s: s["req.valid"], lambda v: Op(v).name),
            ],
            [
                "response",
                resp_valid,
                lane("resp.ready"),
                lane("resp.status", lambda s: s["resp.valid"], lambda v: Status(v).name),
                lane("resp.value", lambda s: s["resp.valid"] and s["in_flight"] == Op.VMREAD, lambda v: f"{v:#x}"),
            ],
            [
                "Wishbone",
                lane("bus.cyc"),
                lane("bus.stb"),
                lane("bus.adr", lambda s: s["bus.cyc"], lambda v: f"{4 * v:#x}"),
                lane("bus.ack"),
            ],
        ],
        "edge": edges,
        "head": {"text": "VMREAD of an on-die field, then VMPTRLD of a cached VMCS (simulated RTL)"},
        "foot": {"text": "Wishbone slave acking one clock after the strobe; latency from acceptance to response"},
        "config": {"hscale": 2},
    }


def main() -> int:
    samples, shown = simulate()
    for name, accepted, answered in shown:
        print(f"{name}: {answered - accepted} cycles")
    diagram = wavejson(samples, shown)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    wavedrom.render(json.dumps(diagram)).saveas(str(OUTPUT))
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
