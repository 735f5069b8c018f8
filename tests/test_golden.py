"""The golden model (sparse, from images) equals a naive dense integer reference."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eie.sim.golden import golden_layers, reference_forward, run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images
from eie.spec.numerics import requantize


@given(n_pe=st.integers(1, 17), seed=st.integers(0, 2**16), density=st.sampled_from([0.05, 0.3, 1.0]),
       extreme=st.booleans())
def test_golden_equals_dense_integer_reference(tmp_path_factory, n_pe, seed, density, extreme):
    config = EIEConfig(n_pe=n_pe, max_rows_per_pe=64)
    net = random_network(seed, [23, 41, 9], config, density=density, extreme=extreme)
    images = load_images(write_images(net, config, tmp_path_factory.mktemp("g") / "img"))
    x = random_inputs(seed, 4, 23, config, extreme=extreme)
    expected = np.array([reference_forward(net, xi) for xi in x])
    assert np.array_equal(run_golden(images, x), expected)


def test_all_zero_input_gives_requantised_bias(tmp_path):
    config = EIEConfig(n_pe=4)
    net = random_network(3, [16, 8], config)
    images = load_images(write_images(net, config, tmp_path / "img"))
    y = golden_layers(images, np.zeros((1, 16), dtype=np.int64))[0]
    layer = net.layers[0]
    assert np.array_equal(y[0], requantize(layer.bias.astype(np.int64), layer.shift, layer.relu, 16))


@pytest.mark.parametrize("bad, match", [
    (np.zeros((2, 5), dtype=np.int64), r"input must have shape \(batch, 16\)"),
    (np.zeros((2, 16)), r"integer input expected"),
    (np.full((1, 16), 40000), r"input activations must fit 16-bit signed"),
])
def test_bad_inputs_are_rejected(tmp_path, bad, match):
    config = EIEConfig(n_pe=2)
    images = load_images(write_images(random_network(1, [16, 4], config), config, tmp_path / "i"))
    with pytest.raises(ValueError, match=match):
        run_golden(images, bad)
