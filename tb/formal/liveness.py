"""No deadlock: on a small array, every started layer finishes within a bound.

The whole :class:`~eie.hw.accelerator.EIEAccelerator` is checked, its memories initialised from
images of a small random network (bitstream mode), for **any** input vector (values and timing
free, following the stream rules) and any output back-pressure that lets an output through at
least every other cycle. While the array is busy and not waiting for its environment (an input
it is ready for, or an output it offers), something must happen within ``bound`` cycles: the
``layer`` output moves on, an output is taken, or ``done`` pulses. ``bound`` comes from the
images: per layer, the busiest PE's entries, the inputs and the outputs, three times over, plus
the fixed set-up, codebook copy, pipeline and write-back latencies.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from amaranth.asserts import AnySeq
from amaranth.hdl import Assert, Assume, Cover, Signal

from eie.hw.accelerator import EIEAccelerator
from eie.sim.random_net import random_network
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.tb.formal.harness import SMALL, Harness, free_source

__all__ = ["LayerLiveness", "LIVENESS_CONFIG", "small_images", "layer_bound"]

#: Set-up, codebook copy, pipeline fill and drain and write-back latencies of one layer, with room.
FIXED_LATENCY = 24


#: The array of the check: :data:`~eie.tb.formal.properties.SMALL` with room for a two-layer network.
LIVENESS_CONFIG = SMALL.replace(weight_bits=1, max_rows_per_pe=2, ptr_depth=12, queue_depth=1)


def small_images(seed: int = 3, shapes=(2, 3, 2), config=LIVENESS_CONFIG, *, density=0.7):
    """Images of a small random network for ``config`` (in a temporary directory)."""
    net = random_network(seed, list(shapes), config, density=density, empty_cols=0.2)
    out = Path(tempfile.mkdtemp(prefix="eie-formal-")) / "images"
    return load_images(write_images(net, config, out), expect_config=config)


def layer_bound(images) -> int:
    """Cycles within which a layer of ``images`` must finish (see the module docstring)."""
    worst = 0
    for info in images.layers:
        entries = max(int(images.ptr[p][info.ptr_base + info.n_in] - images.ptr[p][info.ptr_base])
                      for p in range(images.config.n_pe))
        worst = max(worst, 2 * (entries + info.n_in + info.n_out))
    return worst + FIXED_LATENCY


class LayerLiveness(Harness):
    """See the module docstring; ``cover`` also requires a complete run (``done``) to be reachable."""

    def __init__(self, images=None, mutate=None):
        super().__init__(mutate)
        self.images = images if images is not None else small_images()
        self.bound = layer_bound(self.images)

    def elaborate(self, platform):
        images = self.images
        dut = EIEAccelerator(config=images.config, images=images)
        m = self.module(dut)
        m.d.comb += dut.cfg.valid.eq(0)
        free_source(m, dut.i, "i")
        ready = AnySeq(1)
        refused = Signal()
        m.d.sync += refused.eq(dut.o.valid & ~dut.o.ready)
        m.d.comb += [dut.o.ready.eq(ready), Assume(~refused | ready)]

        layer = Signal.like(dut.layer)
        m.d.sync += layer.eq(dut.layer)
        progress = (dut.layer != layer) | dut.done | (dut.o.valid & dut.o.ready) | (dut.i.valid & dut.i.ready)
        waiting = (dut.i.ready & ~dut.i.valid) | (dut.o.valid & ~dut.o.ready)
        stall = Signal(range(self.bound + 1))
        with m.If(~dut.busy | progress | waiting):
            m.d.sync += stall.eq(0)
        with m.Elif(stall < self.bound):
            m.d.sync += stall.eq(stall + 1)
        m.d.comb += Assert(stall < self.bound, "deadlock: a started layer did not finish within the bound")
        m.d.comb += Cover(dut.done)
        return m
