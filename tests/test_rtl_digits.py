"""The built-in digits model end to end: every test image through the RTL, bit-exact."""

import numpy as np
import pytest

from eie import flow
from eie.compress.digits import load_digits_split, train_default_model
from eie.sim.golden import run_golden
from eie.spec.config import EIEConfig
from eie.tb.sim_run import simulate

pytestmark = pytest.mark.rtl


@pytest.fixture(scope="module")
def digits_images(tmp_path_factory):
    data = load_digits_split(0)
    model = train_default_model(0, data)
    config = EIEConfig(n_pe=4, max_rows_per_pe=80, mat_depth=128, ptr_depth=512, bias_depth=128)
    report = flow.compress_to_images(model, data, flow.make_options(config), config,
                                     tmp_path_factory.mktemp("digits") / "images", progress=False)
    return report, data


def test_all_digits_test_images_are_bit_exact_and_as_accurate_as_the_golden_model(digits_images):
    report, data = digits_images
    golden_acc, xq = report.golden_accuracy, report.test_inputs
    assert xq.shape == (450, 64)
    expected = run_golden(report.images, xq)
    assert np.array_equal(report.golden_outputs[-1], expected)
    result = simulate(report.images, xq)
    assert np.array_equal(result.outputs, expected), "RTL differs from the golden model"
    assert flow.accuracy(result.outputs, data.y_test.numpy()) == golden_acc
    # Targets of the compression issue, measured on the same run.
    assert report.pipeline.storage.ratio >= 40
    assert report.pipeline.float_accuracy - golden_acc <= 0.5
    # Every layer takes at least its ideal (busiest PE's MACs) and its cycles are all accounted.
    assert result.layer_cycles.shape == (450, 3)
    assert np.all(result.cycles >= result.layer_cycles.sum(axis=1))
