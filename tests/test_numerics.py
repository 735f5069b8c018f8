"""Requantisation and the accumulator bound, against unbounded Python integers."""

import numpy as np
import pytest

from eie.compress.fixedpoint import calibrate, frac_bits_for
from eie.spec.config import ConfigError, EIEConfig
from eie.spec.network import QuantizedLayer, QuantizedNetwork, accumulator_bound, check_fits
from eie.spec.numerics import requantize


def _python_requantize(t, s, relu, bits=16):
    r = (t + (1 << (s - 1))) >> s if s > 0 else t
    y = min(max(r, -(1 << (bits - 1))), (1 << (bits - 1)) - 1)
    return max(y, 0) if relu else y


@pytest.mark.parametrize("t", [-(1 << 39) + 1, -70000, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 65535,
                               1 << 38])
@pytest.mark.parametrize("s", [0, 1, 2, 3, 16, 31])
@pytest.mark.parametrize("relu", [False, True])
def test_requantize_matches_python_integers(t, s, relu):
    assert int(requantize(np.array([t], dtype=np.int64), s, relu, 16)[0]) == _python_requantize(t, s, relu)


def test_rounding_ties_go_towards_plus_infinity():
    t = np.array([-3, -1, 1, 3, 5], dtype=np.int64)   # halves at s=1: -1.5 -0.5 0.5 1.5 2.5
    assert requantize(t, 1, False, 16).tolist() == [-1, 0, 1, 2, 3]


def _extreme_layer(n_in):
    idx = np.ones((2, n_in), dtype=np.uint8)
    cb = np.zeros(16, dtype=np.int64)
    cb[1] = -32768
    return QuantizedLayer(index=idx, codebook=cb, bias=np.array([0, 0]), shift=0, relu=False)


@pytest.mark.parametrize("n_in", [1, 7, 255, 256, 257])
def test_accumulator_bound_is_exact_for_worst_case_rows(n_in):
    layer = _extreme_layer(n_in)
    worst = sum(abs(-32768 * -32768) for _ in range(n_in))    # every input at -2^15
    assert accumulator_bound(layer, 16) == worst


def test_layer_that_could_overflow_is_rejected_with_required_width():
    config = EIEConfig(n_pe=1, acc_bits=40, max_rows_per_pe=1024)
    layer = _extreme_layer(600)                               # 600 * 2^30 > 2^39 - 1
    with pytest.raises(ConfigError, match=r"layer 0: accumulators can reach 644245094400, which "
                                          r"needs acc_bits >= 41 \(configured 40\); raise acc_bits"):
        check_fits(QuantizedNetwork(layers=(layer,)), config)
    check_fits(QuantizedNetwork(layers=(layer,)), config.replace(acc_bits=41))


@pytest.mark.parametrize("m, f", [(1.0, 14), (0.5, 15), (32767.0, 0), (32768.0, -1), (1e-9, 44),
                                  (0.0, 15)])
def test_frac_bits_choose_the_largest_format_that_fits(m, f):
    assert frac_bits_for(m, 16) == f


class _Shared:
    def __init__(self, index, centroids, bias, relu, name=""):
        self.index, self.centroids, self.bias, self.relu, self.name = index, centroids, bias, relu, name


def test_calibration_rejects_nan_weights_and_inputs():
    config = EIEConfig(n_pe=1)
    cents = np.zeros(16)
    cents[1] = np.nan
    layer = _Shared(np.ones((2, 3), dtype=np.uint8), cents, np.zeros(2), True, "fc1")
    with pytest.raises(ConfigError, match=r"^fc1: NaN or infinite weights or biases"):
        calibrate([layer], np.ones((4, 3)), config)
    cents[1] = 0.5
    with pytest.raises(ConfigError, match=r"^calibration inputs contain NaN"):
        calibrate([layer], np.full((4, 3), np.nan), config)


def test_calibration_keeps_tiny_centroids_non_zero_and_shift_in_range():
    config = EIEConfig(n_pe=1)
    cents = np.zeros(16)
    cents[1:4] = [1.0, 1e-7, -1e-7]
    layer = _Shared(np.array([[1, 2, 3]], dtype=np.uint8), cents, np.array([0.25]), False)
    net, ref = calibrate([layer], np.ones((2, 3)), config)
    cb = net.layers[0].codebook
    assert cb[0] == 0 and cb[2] == 1 and cb[3] == -1
    assert 0 <= net.layers[0].shift <= config.max_shift
    assert ref["layers"][0]["centroids"][1] == 1.0
