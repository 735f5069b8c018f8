"""cocotb driver of the EIE accelerator: clock, reset, stream sources and sink, the ``TB`` class.

Sampling convention (measured on cocotb 2.1 + Verilator 5.048, see ``tests/test_tb_runner.py``):
a value read right after ``await RisingEdge(clk)`` is the value *before* the edge, i.e. the one
the DUT sampled at that edge, and a value written then takes effect for the next edge. So a
stream beat costs one Python wake-up: drive ``payload``/``valid`` (or ``ready``), await the edge,
read the other side's handshake signal. Between beats the RTL runs free: the sink sleeps on
``RisingEdge(o.valid)`` while no output is offered, cycle counts come from the simulation time,
and per-layer times from value changes of ``layer`` (one wake-up per layer).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, SimTimeoutError, ValueChange, with_timeout
from cocotb.utils import get_sim_time

from eie.tb.runner import CLOCK_PERIOD_NS

__all__ = ["start_clock_and_reset", "cycle_now", "StreamSource", "StreamSink", "TB", "RunOutcome",
           "ReadyPattern"]


def cycle_now() -> int:
    """The current clock cycle number (simulation time / clock period)."""
    return int(get_sim_time("ns")) // CLOCK_PERIOD_NS


async def start_clock_and_reset(dut, cycles: int = 2):
    """Start ``dut.clk`` (GPI clock: no Python wake-up per edge) and pulse the sync ``dut.rst``."""
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    await ClockCycles(dut.clk, cycles)
    dut.rst.value = 0
    await RisingEdge(dut.clk)


def _port(dut, name: str):
    handle = getattr(dut, name, None)
    if handle is None:
        raise AttributeError(f"the DUT has no port {name!r}; its ports are "
                             f"{sorted(h._name for h in dut)}")
    return handle


class ReadyPattern:
    """Back-pressure of a sink: ``ready`` is high with probability ``p_ready`` per cycle.

    ``p_ready = 1`` means always ready (the sink then never drives ``ready`` low).
    """

    def __init__(self, p_ready: float = 1.0, seed: int = 0):
        if not 0.0 < p_ready <= 1.0:
            raise ValueError(f"p_ready must be in (0, 1], not {p_ready}")
        self.p_ready = p_ready
        self._rng = random.Random(seed)

    @property
    def always(self) -> bool:
        return self.p_ready >= 1.0

    def __call__(self) -> int:
        return 1 if self.always or self._rng.random() < self.p_ready else 0

    @classmethod
    def parse(cls, text: str | None, seed: int = 0) -> ReadyPattern:
        """``"none"``/``""`` (always ready) or ``"random"`` (p = 0.5) or ``"random:P"``."""
        text = (text or "none").strip().lower()
        if text in ("none", "always", "1"):
            return cls(1.0, seed)
        if text == "random":
            return cls(0.5, seed)
        if text.startswith("random:"):
            return cls(float(text.split(":", 1)[1]), seed)
        raise ValueError(f"back-pressure pattern must be 'none', 'random' or 'random:P', not {text!r}")


class StreamSource:
    """Drives ``<name>__valid``/``<name>__payload`` of an Amaranth stream into the DUT.

    ``p_idle`` inserts idle cycles (valid low) before a beat with that probability, so the DUT's
    consumer also sees gaps, not only back-to-back beats.
    """

    def __init__(self, dut, name: str, clk, *, p_idle: float = 0.0, seed: int = 0,
                 max_stall: int = 100_000):
        self.name = name
        self.valid = _port(dut, f"{name}__valid")
        self.ready = _port(dut, f"{name}__ready")
        self.payload = _port(dut, f"{name}__payload")
        self.width = len(self.payload)
        self._mask = (1 << self.width) - 1
        self._edge = RisingEdge(clk)
        self._ready_rise = RisingEdge(self.ready)
        self._p_idle = p_idle
        self._rng = random.Random(seed)
        self.max_stall = max_stall
        self.valid.value = 0
        self.last_accept_cycle = None

    def reseed(self, p_idle: float, seed: int) -> None:
        """New idle probability and seed (between sends)."""
        self._p_idle = p_idle
        self._rng = random.Random(seed)

    async def send(self, payloads) -> int:
        """Send every payload (ints; negative ones as two's complement); returns the count.

        Must be called from a write-capable phase (e.g. after an ``await RisingEdge``).
        """
        valid, ready, payload, edge, mask = self.valid, self.ready, self.payload, self._edge, self._mask
        n = 0
        for p in payloads:
            if self._p_idle:
                while self._rng.random() < self._p_idle:
                    valid.value = 0
                    await edge
            payload.value = int(p) & mask
            valid.value = 1
            await edge
            while not ready.value:
                # Sleep until ready rises (the RTL runs free meanwhile), then sample at an edge.
                try:
                    await with_timeout(self._ready_rise, self.max_stall * CLOCK_PERIOD_NS, "ns")
                except SimTimeoutError:
                    raise AssertionError(f"{self.name}.ready stayed low for {self.max_stall} "
                                         f"cycles (beat {n}, cycle {cycle_now()})") from None
                await edge
            n += 1
        valid.value = 0
        if n:
            self.last_accept_cycle = cycle_now()
        return n


class StreamSink:
    """Receives ``<name>__payload`` beats from the DUT, applying a :class:`ReadyPattern`."""

    def __init__(self, dut, name: str, clk, *, pattern: ReadyPattern | None = None,
                 signed: bool = True):
        self.name = name
        self.valid = _port(dut, f"{name}__valid")
        self.ready = _port(dut, f"{name}__ready")
        self.payload = _port(dut, f"{name}__payload")
        self._edge = RisingEdge(clk)
        self._rise = RisingEdge(self.valid)
        self.pattern = pattern or ReadyPattern()
        self.signed = signed
        self.ready.value = 1 if self.pattern.always else 0

    async def receive(self, n: int, on_item=None) -> list[tuple[int, int]]:
        """Receive ``n`` beats; returns ``[(value, cycle)]``; calls ``on_item(k, value, cycle)``.

        Must be called from a write-capable phase; returns right after the edge that
        transferred the last beat.
        """
        valid, ready, payload, edge, rise = self.valid, self.ready, self.payload, self._edge, self._rise
        pattern = self.pattern
        always = pattern.always
        items = []
        if always:
            ready.value = 1
        while len(items) < n:
            if not always:
                ready.value = pattern()
            await edge
            if valid.value:
                if ready.value:
                    v = payload.value
                    v = v.to_signed() if self.signed else v.to_unsigned()
                    c = cycle_now()
                    if on_item is not None:
                        on_item(len(items), v, c)
                    items.append((v, c))
            else:
                # Nothing was offered at this edge: sleep until valid rises (maybe right now).
                await rise
        if not always:
            ready.value = 0
        return items


@dataclass(frozen=True)
class RunOutcome:
    """One input vector through the accelerator."""

    outputs: list[int]
    cycles: int                 # from the edge that accepted the last input to the done pulse
    per_layer_cycles: list[int]
    output_cycles: list[int]    # cycle at which each output was accepted
    output_phase: int           # from the first output accepted to the done pulse
    compute_wall: float = 0.0   # wall seconds from the last input accepted to the first output
    compute_cpu: float = 0.0    # the simulator process's CPU seconds over the same span


class TB:
    """Testbench of ``EIEAccelerator``: owns clock, reset, the ``cfg``/``i`` sources and the ``o``
    sink.

    Parameters
    ----------
    dut
        The cocotb handle of the top level.
    seed : int
        Seeds every random pattern (back-pressure, idle cycles).
    backpressure : str or ReadyPattern
        Ready pattern of the output sink (see :meth:`ReadyPattern.parse`).
    p_idle : float
        Probability of an idle cycle before each ``cfg`` and ``i`` beat.
    """

    def __init__(self, dut, *, seed: int = 0, backpressure="none", p_idle: float = 0.0):
        self.dut = dut
        self.log = dut._log
        self.seed = seed
        self.clk = dut.clk
        pattern = backpressure if isinstance(backpressure, ReadyPattern) else \
            ReadyPattern.parse(backpressure, seed)
        self.cfg = StreamSource(dut, "cfg", self.clk, p_idle=p_idle, seed=seed + 1)
        self.inp = StreamSource(dut, "i", self.clk, p_idle=p_idle, seed=seed + 2)
        self.out = StreamSink(dut, "o", self.clk, pattern=pattern)
        self.busy = _port(dut, "busy")
        self.layer = _port(dut, "layer")
        self.done = _port(dut, "done")
        self._edge = RisingEdge(self.clk)

    async def start(self):
        await start_clock_and_reset(self.dut)

    async def wait_idle(self, max_cycles: int = 100_000):
        """Wait until ``busy`` is low (it is sampled at the next edge)."""
        await self._edge
        if self.busy.value:
            await with_timeout(FallingEdge(self.busy), max_cycles * CLOCK_PERIOD_NS, "ns")
            await self._edge

    async def load_images(self, images, *, preloaded: bool = False) -> int:
        """Stream every image write through ``cfg``; returns the number of writes.

        ``preloaded``: the PEs' memories already hold the images (``+eie_preload``, see
        :func:`eie.tb.runner.write_preload`); only the codebooks, the layer table and the number of
        layers go through ``cfg``.
        """
        from eie.hw.io_map import image_writes, pack_cfg
        payloads = [pack_cfg(images.config, *w) for w in image_writes(images, pe_memories=not preloaded)]
        await self.wait_idle()
        n = await self.cfg.send(payloads)  # waits while cfg.ready is low (clearing after reset)
        self.log.info("loaded images: %d cfg writes, cycle %d", n, cycle_now())
        return n

    async def run(self, x, n_out: int, *, max_cycles: int, on_output=None) -> RunOutcome:
        """Feed one input vector, collect ``n_out`` outputs, wait for ``done``.

        Raises :class:`AssertionError` (with the cycle) on a protocol error and
        :class:`cocotb.triggers.SimTimeoutError` after ``max_cycles`` without completion.
        """
        await self.wait_idle()
        changes = []

        async def watch_layer():
            while True:
                await ValueChange(self.layer)
                changes.append((cycle_now(), int(self.layer.value)))

        async def watch_done():
            await RisingEdge(self.done)
            return cycle_now()

        first_out = []  # wall and CPU time at the first output

        def on_item(k, v, c):
            if not first_out:
                first_out.extend((time.monotonic(), time.process_time()))
            if on_output is not None:
                on_output(k, v, c)

        layer_task = cocotb.start_soon(watch_layer())
        done_task = cocotb.start_soon(watch_done())
        start_layer = int(self.layer.value)
        try:
            await self.inp.send(x)
            t_start = self.inp.last_accept_cycle
            wall_start, cpu_start = time.monotonic(), time.process_time()
            await self._edge
            if not self.busy.value or self.cfg.ready.value:
                raise AssertionError(f"cycle {cycle_now()}: after the last input busy is "
                                     f"{self.busy.value} and cfg.ready {self.cfg.ready.value}; "
                                     f"expected busy 1, cfg.ready 0")
            got = await with_timeout(self.out.receive(n_out, on_item),
                                     max_cycles * CLOCK_PERIOD_NS, "ns")
            t_done = await with_timeout(done_task, max_cycles * CLOCK_PERIOD_NS, "ns")
        finally:
            layer_task.cancel()
            if not done_task.done():
                done_task.cancel()
        await self._edge
        if self.out.valid.value:
            raise AssertionError(f"o.valid is high at cycle {cycle_now()} after all {n_out} "
                                 f"outputs and the done pulse: the DUT offers an extra output")
        current = start_layer
        for c, v in changes:
            if c <= t_start:
                current = v
        # The last layer ends when its first output is accepted; streaming the outputs out is
        # not layer work (it is reported as ``output_phase``).
        t_first_out = got[0][1] if got else t_done
        per_layer = {}
        prev = t_start
        for c, v in [(c, v) for c, v in changes if t_start < c < t_first_out] + [(t_first_out, None)]:
            per_layer[current] = per_layer.get(current, 0) + c - prev
            prev, current = c, v
        n_layers = max(per_layer) + 1 if per_layer else 1
        layer_cycles = [per_layer.get(l, 0) for l in range(n_layers)]
        return RunOutcome(outputs=[v for v, _ in got], cycles=t_done - t_start,
                          per_layer_cycles=layer_cycles, output_cycles=[c for _, c in got],
                          output_phase=t_done - t_first_out,
                          compute_wall=(first_out or [time.monotonic()])[0] - wall_start,
                          compute_cpu=(first_out or [0, time.process_time()])[1] - cpu_start)
