# amaranth: UnusedElaboratable=no
"""The requantiser against a model written straight from docs/numerics.md."""

import pytest

from eie.hw.requantize import Requantizer
from eie.spec.config import EIEConfig
from eie.tb.units import requantize, run_unit


def test_latency_constant_matches_the_unit():
    assert requantize.LATENCY == Requantizer.LATENCY


@pytest.mark.parametrize("config", [
    EIEConfig(),
    EIEConfig(act_bits=8, acc_bits=16, max_shift=15),
], ids=["a16c40", "a8c16"])
def test_matches_numerics(simulator, config):
    """Accumulator limits, saturation thresholds and rounding ties at every shift, with idle
    cycles: each result, and its cycle, as docs/numerics.md says."""
    params = {"config": config.to_dict()}
    stimulus = requantize.stimulus(config.act_bits, **params)
    assert run_unit(simulator, requantize, params, stimulus) == requantize.reference(stimulus, **params), \
        f"seed {config.act_bits}"


def test_validation():
    with pytest.raises(TypeError, match=r"^config must be an EIEConfig, not 4$"):
        Requantizer(config=4)
