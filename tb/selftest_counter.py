"""The runner's own check: a tiny Amaranth counter and a cocotb test of it.

``counter_verilog()`` gives the design; ``tests/test_tb_runner.py`` builds it through
``tb.runner`` and runs the cocotb tests below, including one that must fail when the knob
``inject_fault`` is on (it then expects a wrong count), proving failures reach pytest.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from eie.tb.driver import start_clock_and_reset
from eie.tb.knobs import read_knobs


def counter_verilog(width: int = 8, name: str = "counter") -> str:
    from amaranth import Module, unsigned
    from amaranth.back import verilog
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Counter(wiring.Component):
        """Counts enabled cycles modulo ``2**width``; ``count`` is the registered total."""

        def __init__(self):
            super().__init__({"en": In(1), "count": Out(unsigned(width))})

        def elaborate(self, platform):
            m = Module()
            with m.If(self.en):
                m.d.sync += self.count.eq(self.count + 1)
            return m

    return verilog.convert(Counter(), name=name, emit_src=False)


@cocotb.test()
@cocotb.parametrize(cycles=[5, 300])
async def counts_enabled_cycles(dut, cycles):
    await start_clock_and_reset(dut)
    width = len(dut.count)
    fault = read_knobs().flag("inject_fault")
    dut.en.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.en.value = 0
    await RisingEdge(dut.clk)
    await ReadOnly()
    expected = (cycles + (1 if fault else 0)) % (1 << width)
    got = int(dut.count.value)
    assert got == expected, f"count {got}, expected {expected} after {cycles} enabled cycles"


@cocotb.test()
async def hangs_when_asked(dut):
    """Busy-waits in Python without advancing time when the knob ``hang`` is on (for the runner's
    wall-clock timeout)."""
    if read_knobs().flag("hang"):
        while True:
            pass
