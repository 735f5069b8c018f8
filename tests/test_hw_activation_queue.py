# amaranth: UnusedElaboratable=no
"""The activation queue: order, level and back-pressure."""

import pytest

from eie.hw.activation_queue import ActivationQueue
from eie.hw.testing import run_cycles
from eie.tb.units import activation_queue as queue
from eie.tb.units import run_unit


@pytest.mark.parametrize("depth", [1, 2, 3, 8])
def test_order_level_and_back_pressure_match_the_fifo_model(simulator, depth):
    """Bursts that fill the queue, drains and random back-pressure: level, ready and every popped
    activation (with its cycle) as the cycle model says, on both simulators."""
    stimulus = queue.stimulus(depth, cycles=600)
    got = run_unit(simulator, queue, {"depth": depth}, stimulus)
    assert got == queue.reference(stimulus, depth=depth), f"seed {depth}"
    assert depth in got["levels"], "the stimulus never filled the queue: back-pressure was not exercised"


@pytest.mark.parametrize("depth, first", [(2, 1), (3, 2), (8, 2)])
def test_full_throughput(depth, first):
    """Depth >= 2: one activation in and one out every cycle."""
    dut = ActivationQueue(depth=depth, act_bits=8, index_width=6)
    n = 20
    stimulus = [[(dut.i.valid, 1), (dut.i.payload, {"value": k, "index": k})] for k in range(n)]
    trace = run_cycles(dut, stimulus, [dut.i.ready, dut.o.valid, dut.o.payload], n + 4,
                       defaults=[(dut.i.valid, 0), (dut.o.ready, 1)], name="queue_rate")
    assert all(ready for ready, _, _ in trace[:n])
    out = [t for t, (_, valid, _) in enumerate(trace) if valid]
    assert out == list(range(first, first + n))
    assert [p.index for _, valid, p in trace if valid] == list(range(n))


def test_depth_one_alternates():
    dut = ActivationQueue(depth=1, act_bits=8, index_width=6)
    stimulus = [[(dut.i.valid, 1), (dut.i.payload, {"value": 0, "index": 0})]] * 10
    trace = run_cycles(dut, stimulus, [dut.i.ready], 10, defaults=[(dut.o.ready, 1)],
                       name="queue_depth1")
    assert [ready for ready, in trace] == [1, 0] * 5


@pytest.mark.parametrize("kwargs, error, match", [
    ({"depth": 0, "act_bits": 16, "index_width": 4}, ValueError, r"^depth must be >= 1, not 0$"),
    ({"depth": "8", "act_bits": 16, "index_width": 4}, TypeError,
     r"^depth must be an integer, not '8'$"),
    ({"depth": 8, "act_bits": 1, "index_width": 4}, ValueError, r"^act_bits must be >= 2, not 1$"),
    ({"depth": 8, "act_bits": 16, "index_width": True}, TypeError,
     r"^index_width must be an integer, not True$"),
])
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        ActivationQueue(**kwargs)
