"""cocotb driver of the ESE accelerator: the ``ESETB`` class and the cycle accounting of a sequence.

The same sampling convention and stream drivers as :mod:`eie.tb.driver` (one Python wake-up per
stream beat; the RTL runs free in between). Per-step and per-phase cycles come from value changes of
the ``phase`` and ``step`` ports (a few wake-ups per step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import FallingEdge, First, RisingEdge, ValueChange, with_timeout

from eie.tb.driver import ReadyPattern, StreamSink, StreamSource, _port, cycle_now, start_clock_and_reset
from eie.tb.runner import CLOCK_PERIOD_NS

__all__ = ["ESETB", "SequenceOutcome", "PHASES"]

#: Names of the ``phase`` port's values (:class:`eie.hw.ese_accelerator.Phase`).
PHASES = ("idle", "load", "x", "h", "gates", "proj", "head", "output")


@dataclass(frozen=True)
class SequenceOutcome:
    """One input sequence through the accelerator.

    ``cycles`` runs from the edge that accepted the last input to the ``done`` pulse; ``phases``
    gives, per step, the cycles spent in each phase (``{step: {phase name: cycles}}``).
    """

    outputs: list[int]
    cycles: int
    phases: dict = field(default_factory=dict)
    output_cycles: list[int] = field(default_factory=list)


class ESETB:
    """Testbench of ``ESEAccelerator``: clock, reset, the ``cfg``/``i`` sources and the ``o`` sink.

    Parameters
    ----------
    dut
        The cocotb handle of the top level.
    seed : int
        Seeds the back-pressure and idle patterns.
    backpressure : str or ReadyPattern
        Ready pattern of the output sink.
    p_idle : float
        Probability of an idle cycle before each ``cfg`` and ``i`` beat.
    """

    def __init__(self, dut, *, seed: int = 0, backpressure="none", p_idle: float = 0.0):
        self.dut = dut
        self.log = dut._log
        self.clk = dut.clk
        pattern = backpressure if isinstance(backpressure, ReadyPattern) else ReadyPattern.parse(backpressure, seed)
        self.cfg = StreamSource(dut, "cfg", self.clk, p_idle=p_idle, seed=seed + 1)
        self.inp = StreamSource(dut, "i", self.clk, p_idle=p_idle, seed=seed + 2)
        self.out = StreamSink(dut, "o", self.clk, pattern=pattern)
        self.busy = _port(dut, "busy")
        self.done = _port(dut, "done")
        self.phase = _port(dut, "phase")
        self.step = _port(dut, "step")
        self._edge = RisingEdge(self.clk)
        self._config = None
        self._steps = None

    async def start(self):
        await start_clock_and_reset(self.dut)

    async def wait_idle(self, max_cycles: int = 100_000):
        await self._edge
        if self.busy.value:
            await with_timeout(FallingEdge(self.busy), max_cycles * CLOCK_PERIOD_NS, "ns")
            await self._edge

    async def write(self, writes) -> int:
        """Send ``(space, pe, addr, data)`` writes through ``cfg`` once the array is idle."""
        from eie.hw.io_map import pack_cfg
        await self.wait_idle()
        return await self.cfg.send([pack_cfg(self._config, *w) for w in writes])

    async def load_images(self, images, *, overlap: bool = True) -> int:
        """Stream every image write (and the control registers) through ``cfg``; returns the count."""
        from eie.hw.ese_io_map import lstm_image_writes
        self._config = images.config
        self._steps = None
        n = await self.write(lstm_image_writes(images, overlap=overlap))
        self.log.info("loaded images: %d cfg writes, cycle %d", n, cycle_now())
        return n

    async def run(self, sequence, n_outputs: int, *, max_cycles: int, on_output=None) -> SequenceOutcome:
        """Feed one sequence (``T`` lists of ``I`` ints), collect ``n_outputs`` outputs, wait for ``done``."""
        from eie.hw.ese_io_map import steps_write
        steps = len(sequence)
        if steps != self._steps:
            await self.write([steps_write(steps)])
            self._steps = steps
        await self.wait_idle()
        changes = []

        async def watch():
            while True:
                await First(ValueChange(self.phase), ValueChange(self.step))
                changes.append((cycle_now(), int(self.phase.value), int(self.step.value)))

        async def watch_done():
            await RisingEdge(self.done)
            return cycle_now()

        watcher = cocotb.start_soon(watch())
        done_task = cocotb.start_soon(watch_done())
        try:
            await self.inp.send([v for x_t in sequence for v in x_t])
            t_start = self.inp.last_accept_cycle
            got = await with_timeout(self.out.receive(n_outputs, on_output), max_cycles * CLOCK_PERIOD_NS, "ns")
            t_done = await with_timeout(done_task, max_cycles * CLOCK_PERIOD_NS, "ns")
        finally:
            watcher.cancel()
            if not done_task.done():
                done_task.cancel()
        await self._edge
        if self.out.valid.value:
            raise AssertionError(f"o.valid is high at cycle {cycle_now()} after all {n_outputs} outputs and the "
                                 f"done pulse: the DUT offers an extra output")
        return SequenceOutcome(outputs=[v for v, _ in got], cycles=t_done - t_start,
                               phases=_phase_cycles(changes, t_start, t_done),
                               output_cycles=[c for _, c in got])


def _phase_cycles(changes, t_start: int, t_done: int) -> dict:
    """``{step: {phase: cycles}}`` between the last input and ``done`` from ``(cycle, phase, step)``
    changes (a value seen at a cycle holds from that cycle on)."""
    phase, step = 1, 0                      # loading step 0 until the first change after the last input
    for c, p, s in changes:
        if c <= t_start:
            phase, step = p, s
    out: dict = {}
    prev = t_start
    for c, p, s in [x for x in changes if t_start < x[0] < t_done] + [(t_done, 0, step)]:
        per_step = out.setdefault(step, {})
        name = PHASES[phase]
        per_step[name] = per_step.get(name, 0) + c - prev
        prev, phase, step = c, p, s
    return out
