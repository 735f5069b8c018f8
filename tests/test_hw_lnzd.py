# amaranth: UnusedElaboratable=no
"""The leading non-zero detector: lowest valid input wins, one-hot grant when accepted."""

import pytest
from amaranth.hdl import Fragment

from eie.hw.lnzd import LeadingNonZeroDetector
from eie.tb.units import lnzd, run_unit


@pytest.mark.parametrize("n_inputs", [1, 5, 16, 64])
def test_lowest_valid_wins(simulator, n_inputs):
    stimulus = lnzd.stimulus(n_inputs, n_inputs=n_inputs)
    assert run_unit(simulator, lnzd, {"n_inputs": n_inputs}, stimulus) == lnzd.reference(stimulus), \
        f"seed {n_inputs}"


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
