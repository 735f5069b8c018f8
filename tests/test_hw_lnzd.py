# amaranth: UnusedElaboratable=no
"""The leading non-zero detector: lowest valid input wins, one-hot grant when accepted."""

import random

import pytest
from amaranth.hdl import Fragment

from eie.hw.lnzd import LeadingNonZeroDetector
from eie.hw.testing import simulate


def reference(valid, ready):
    """Naive model: the lowest-numbered valid input, granted when the output is ready."""
    chosen = next((k for k, v in enumerate(valid) if v), None)
    grant = [int(ready and k == chosen) for k in range(len(valid))]
    return chosen, grant


@pytest.mark.parametrize("n_inputs", [1, 3, 4, 5, 16, 64])
def test_lowest_valid_wins(n_inputs):
    seed = n_inputs
    rng = random.Random(seed)
    dut = LeadingNonZeroDetector(n_inputs=n_inputs, act_bits=8, index_width=7)
    patterns = [[0] * n_inputs, [1] * n_inputs]
    patterns += [[int(k == n) for k in range(n_inputs)] for n in range(n_inputs)]
    patterns += [[int(rng.random() < d) for _ in range(n_inputs)]
                 for d in (0.05, 0.3, 0.8) for _ in range(20)]

    async def bench(ctx):
        for k in range(n_inputs):
            ctx.set(dut.i[k].payload, {"value": (k * 37 % 255) - 127, "index": k})
        for valid in patterns:
            for ready in (0, 1):
                for k, v in enumerate(valid):
                    ctx.set(dut.i[k].valid, v)
                ctx.set(dut.o.ready, ready)
                await ctx.delay(1e-9)
                chosen, grant = reference(valid, ready)
                got_grant = [ctx.get(dut.grant[k]) for k in range(n_inputs)]
                assert got_grant == grant, f"seed {seed}: valid={valid} ready={ready}"
                assert [ctx.get(dut.i[k].ready) for k in range(n_inputs)] == grant
                assert ctx.get(dut.o.valid) == (chosen is not None)
                if chosen is not None:
                    payload = ctx.get(dut.o.payload)
                    assert payload.index == chosen
                    assert payload.value == (chosen * 37 % 255) - 127

    simulate(dut, bench, clock=False, name=f"lnzd_{n_inputs}")


@pytest.mark.parametrize("n_inputs, nodes", [(1, 0), (4, 1), (5, 3), (16, 5), (64, 21), (256, 85)])
def test_quadtree_size(n_inputs, nodes):
    dut = LeadingNonZeroDetector(n_inputs=n_inputs, act_bits=16, index_width=8)
    assert dut.n_nodes == nodes
    Fragment.get(dut, None)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"n_inputs": 0, "act_bits": 16, "index_width": 4}, ValueError, r"^n_inputs must be >= 1, not 0$"),
    ({"n_inputs": 2.0, "act_bits": 16, "index_width": 4}, TypeError,
     r"^n_inputs must be an integer, not 2\.0$"),
    ({"n_inputs": 2, "act_bits": 1, "index_width": 4}, ValueError, r"^act_bits must be >= 2, not 1$"),
    ({"n_inputs": 2, "act_bits": 16, "index_width": 0}, ValueError,
     r"^index_width must be >= 1, not 0$"),
])
def test_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        LeadingNonZeroDetector(**kwargs)
