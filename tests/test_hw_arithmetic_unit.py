# amaranth: UnusedElaboratable=no
"""The arithmetic unit against a naive accumulate model, with read-after-write hazards."""

import pytest

from eie.hw.arithmetic_unit import ArithmeticUnit
from eie.spec.config import EIEConfig
from eie.tb.units import arithmetic_unit as arithmetic
from eie.tb.units import run_unit

CONFIG = EIEConfig(n_pe=1, max_rows_per_pe=4, index_bits=2, weight_bits=3, act_bits=8, acc_bits=24,
                   max_shift=16)


UNIT_CONFIG = EIEConfig(n_pe=4, ptr_depth=64, mat_depth=64, max_rows_per_pe=16, bias_depth=32, max_layers=4)


def test_latency_constant_matches_the_unit():
    assert arithmetic.CLEAR_LATENCY == ArithmeticUnit.CLEAR_LATENCY


@pytest.mark.parametrize("config, seed, p_idle", [(CONFIG, 1, 0.0), (CONFIG, 2, 0.3), (UNIT_CONFIG, 3, 0.1)],
                         ids=["4rows-dense", "4rows-idle", "16rows"])
def test_hazards_and_clears_match_a_sequential_accumulate(simulator, config, seed, p_idle):
    """Rows reused 1, 2 and 3 entries later, clears among the entries, idle cycles: every read-out
    (row, value and cycle) equals the sequential model's."""
    params = {"config": config.to_dict()}
    stimulus = arithmetic.stimulus(seed, p_idle=p_idle, **params)
    assert run_unit(simulator, arithmetic, params, stimulus) == arithmetic.reference(stimulus, **params), \
        f"seed {seed}"


def test_validation():
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not None$"):
        ArithmeticUnit(config=None)
