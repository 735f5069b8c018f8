"""The built-in digits model end to end: every test image through the RTL, bit-exact."""

import numpy as np
import pytest

from eie import flow
from eie.compress.digits import load_digits_split, train_default_model
from eie.compress.pipeline import make_options
from eie.sim.golden import run_golden
from eie.spec.config import EIEConfig
from eie.tb.sim_run import simulate

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def digits_images(tmp_path_factory):
    data = load_digits_split(0)
    model = train_default_model(0, data)
    config = EIEConfig(n_pe=4, max_rows_per_pe=80, mat_depth=128, ptr_depth=512, bias_depth=128)
    outcome = flow.compress(model, "digits", config=config, options=make_options(config),
                            out=tmp_path_factory.mktemp("digits") / "images")
    return outcome, data


def test_all_digits_test_images_are_bit_exact_and_as_accurate_as_the_golden_model(digits_images):
    outcome, data = digits_images
    golden_acc, xq = outcome.golden_score, outcome.test_inputs
    assert xq.shape == (450, 64)
    expected = run_golden(outcome.images, xq)
    assert np.array_equal(outcome.golden_outputs[-1], expected)
    result = simulate(outcome.images, xq)
    assert np.array_equal(result.outputs, expected), "RTL differs from the golden model"
    assert 100.0 * np.mean(np.argmax(result.outputs, axis=1) == data.y_test.numpy()) == golden_acc
    # Deep Compression's LeNet-300-100 targets, reached by the default (accuracy-driven) choice.
    assert outcome.mode == "search"
    assert outcome.pipeline.storage.ratio >= 40
    assert outcome.pipeline.float_score - golden_acc <= 0.5
    # Every layer takes at least its ideal (busiest PE's MACs) and its cycles are all accounted.
    assert result.layer_cycles.shape == (450, 3)
    assert np.all(result.cycles >= result.layer_cycles.sum(axis=1))
