"""The SoC: the RV32 core, the VMX unit, RAM, the UART, the timer, the LEDs and the test finisher.

# Ref: rtl/arch/soc.py (memory map and I/O ports), docs/soc.md.

The core and the VMX unit share one Wishbone bus (the unit reaches VMCS regions
in RAM while the core waits for its answer); an address decoder routes it to
RAM, the finisher and the timer. IN/OUT go to a port decoder: the UART at
0x3F8, the POST/LED port at 0x80. The UART's interrupt is the core's external
interrupt, the timer's its timer interrupt.

With guests the SoC has SMM (docs/smm-soc.md, rtl/soc/smm.py): the SMI command
port 0xB2, the SMRAM alias (0x30000-0x3FFFF onto RAM 0x10000-0x1FFFF, for both
masters) and the decode that keeps the core's accesses out of SMRAM and MSEG.
"""

from amaranth import Module, ResetInserter
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..arch.layout import CACHE_ENTRIES
from ..arch.soc import FINISHER, IO_PORTS, RAM, TIMER
from ..cpu.core import Core
from ..cpu.ports import TraceSignature
from ..vmx.unit import VmxUnit
from .interconnect import Arbiter, Decoder
from .io_decoder import IoDecoder
from .peripherals import Finisher, PostPort, Ram, Timer
from .smm import SmiPort, SmramAlias, SmramFilter
from .uart import Uart

__all__ = ["Soc"]

_PORT = {p.name: p for p in IO_PORTS}


def _region_size(size: int) -> int:
    return 1 << (size - 1).bit_length()


class Soc(wiring.Component):
    """The whole system on one clock domain.

    Parameters
    ----------
    ram_size : int
        Bytes of RAM at address 0 (a power of two).
    image : list[int] | None
        Words to initialise RAM with (FPGA builds: the firmware in the bitstream).
    uart_divisor : int
        The UART's divisor latch after reset (baud = clock / (16 * divisor)).
    cache_entries : int
        VMCSs the VMX unit keeps on die.
    ram : wiring.Component | None
        The RAM at address 0, if not block RAM: a component with Ram's
        signature (``bus``, ``load_en``, ``load_addr``, ``load_data``), e.g. the
        iCE40's SPRAM. ``ram_size`` must be its size.

    Members
    -------
    uart_tx : Out(1)
    uart_rx : In(1)
    leds : Out(8)
    done, code : Out
        The test finisher: the run ended, with this code (0 = success).
    failed : Out(1)
        The run ended with a non-zero code (``done & (code != 0)`` as one
        register: a board's failure LED needs no more).
    hold : In(1)
        Keeps the core in reset (the rest runs): simulation loads RAM meanwhile.
    smi_button : In(1)
        With guests (SMM): a one-cycle pulse raises a plain SMI (a board's button, synchronized and
        edge-detected by the board's top level; docs/smm-soc.md). Unused without guests.
    load_en, load_addr, load_data : In
        Write a RAM word (while ``hold`` is high).
    console, console_data : Out
        A character entered the UART's transmitter this cycle.
    trace : Out(TraceSignature())
        The core's retired-instruction trace.
    cycles, retired : Out(64)
        Clock cycles since ``hold`` was released, and instructions retired
        (trace records that are not traps): a bench reads them at the end of a
        run without watching every cycle.
    """

    def __init__(
        self,
        *,
        ram_size: int = RAM.size,
        image: list[int] | None = None,
        uart_divisor: int = 1,
        cache_entries: int = CACHE_ENTRIES,
        ram: wiring.Component | None = None,
        guests: bool = False,
    ):
        if ram is not None and image is not None:
            raise ValueError("Give an image to initialise block RAM, or a RAM component, not both")
        self.ram = ram
        self.ram_size = ram_size
        #: The core runs guests and the unit has VM entries and exits (docs/guests.md); else neither.
        self.guests = guests
        self.image = image
        self.uart_divisor = uart_divisor
        self.cache_entries = cache_entries
        super().__init__(
            {
                "uart_tx": Out(1),
                "uart_rx": In(1, init=1),
                "leds": Out(8),
                "done": Out(1),
                "code": Out(16),
                "failed": Out(1),
                "hold": In(1),
                "smi_button": In(1),
                "load_en": In(1),
                "load_addr": In(range(ram_size // 4)),
                "load_data": In(32),
                "console": Out(1),
                "console_data": Out(8),
                "trace": Out(TraceSignature()),
                "cycles": Out(64),
                "retired": Out(64),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = ResetInserter(self.hold)(Core(reset_vector=RAM.base, guests=self.guests))
        # Without guests (the default until the core runs every guest event, docs/guests.md), the
        # unit without VM entries and exits (docs/soc.md).
        m.submodules.unit = unit = VmxUnit(cache_entries=self.cache_entries, guests=self.guests)
        m.submodules.arbiter = arbiter = Arbiter(2)
        m.submodules.decoder = decoder = Decoder(
            [
                (RAM.base, self.ram_size),
                (FINISHER.base, _region_size(FINISHER.size)),
                (TIMER.base, _region_size(TIMER.size)),
            ]
        )
        m.submodules.ram = ram = self.ram if self.ram is not None else Ram(self.ram_size, init=self.image)
        m.submodules.finisher = finisher = Finisher()
        m.submodules.timer = timer = Timer()
        uart_port, post_port, smi_port = _PORT["uart"], _PORT["post"], _PORT["smi"]
        ports = [(uart_port.base, uart_port.count), (post_port.base, post_port.count)]
        if self.guests:
            ports.append((smi_port.base, smi_port.count))
        m.submodules.io = io = IoDecoder(ports)
        m.submodules.uart = uart = Uart(divisor=self.uart_divisor)
        m.submodules.post = post = PostPort()

        wiring.connect(m, core.vmx_req, unit.req)
        m.d.comb += unit.tsc.eq(self.cycles)
        wiring.connect(m, unit.resp, core.vmx_resp)
        wiring.connect(m, unit.guest_time, core.guest_time)
        # While held, the core's first fetch is kept off the bus: the RAM then has no acknowledge
        # waiting when hold falls, and the first fetch takes the same cycles however long the hold.
        master = arbiter.masters[0]
        if self.guests:
            master = self._smm(m, core, unit, io, arbiter, decoder, self.smi_button)
        for name, member in core.bus.signature.members.items():
            if member.flow == Out:
                value = getattr(core.bus, name)
                m.d.comb += getattr(master, name).eq(value & ~self.hold if name in ("cyc", "stb") else value)
            else:
                m.d.comb += getattr(core.bus, name).eq(getattr(master, name))
        wiring.connect(m, unit.bus, arbiter.masters[1])
        if not self.guests:
            wiring.connect(m, arbiter.bus, decoder.bus)
        wiring.connect(m, decoder.slaves[0], ram.bus)
        wiring.connect(m, decoder.slaves[1], finisher.bus)
        wiring.connect(m, decoder.slaves[2], timer.bus)
        wiring.connect(m, core.io, io.io)
        wiring.connect(m, io.devices[0], uart.io)
        wiring.connect(m, io.devices[1], post.io)
        wiring.connect(m, core.trace, wiring.flipped(self.trace))
        m.d.comb += [
            core.irq_timer.eq(timer.irq),
            core.irq_external.eq(uart.irq),
            self.uart_tx.eq(uart.tx),
            uart.rx.eq(self.uart_rx),
            self.leds.eq(post.leds),
            self.done.eq(finisher.done),
            self.code.eq(finisher.code),
            self.failed.eq(finisher.failed),
            ram.load_en.eq(self.load_en),
            ram.load_addr.eq(self.load_addr),
            ram.load_data.eq(self.load_data),
            self.console.eq(uart.sent),
            self.console_data.eq(uart.sent_data),
        ]
        with m.If(~self.hold & ~finisher.done):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(core.trace.valid & ~core.trace.trap):
                m.d.sync += self.retired.eq(self.retired + 1)
        return m

    @staticmethod
    def _smm(m: Module, core, unit, io, arbiter, decoder, button):  # noqa: ANN001, ANN205
        """SMM on the SoC with guests (docs/smm-soc.md): the SMI command port (the I/O decoder's third device),
        the SMRAM alias for both masters, the SMRAM/MSEG decode of the core's accesses. Returns the bus the
        core's accesses go to (the filter's)."""
        m.submodules.smi = smi = SmiPort()
        m.submodules.smram_filter = smram_filter = SmramFilter()
        m.submodules.smram_alias = alias = SmramAlias()
        wiring.connect(m, io.devices[2], smi.io)
        wiring.connect(m, smi.smi, core.smi)
        m.d.comb += smi.button.eq(button)
        wiring.connect(m, unit.smm_status, core.smm_status, smram_filter.status)
        wiring.connect(m, smram_filter.bus, arbiter.masters[0])
        wiring.connect(m, arbiter.bus, alias.masters)
        wiring.connect(m, alias.bus, decoder.bus)
        return smram_filter.core
