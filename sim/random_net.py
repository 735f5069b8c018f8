"""Random integer networks for tests and benchmarks.

Every network made here satisfies :func:`eie.spec.network.check_fits` for the configuration it is
made for: codebook magnitudes are scaled so the accumulator bound holds, and shifts are chosen
so that outputs spread over the activation range instead of saturating everywhere.
"""

from __future__ import annotations

import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.network import QuantizedLayer, QuantizedNetwork, accumulator_bound

__all__ = ["random_layer", "random_network", "random_inputs"]


def random_layer(rng: np.random.Generator, n_in: int, n_out: int, config: EIEConfig, *,
                 density: float = 0.1, relu: bool = True, extreme: bool = False,
                 empty_cols: float = 0.0, name: str = "") -> QuantizedLayer:
    """A random layer with about ``density`` non-zeros.

    ``extreme`` uses the most negative and most positive codebook values and biases near the
    bound, to exercise saturation. ``empty_cols`` is the fraction of columns left empty.
    """
    k = config.codebook_size
    mask = rng.random((n_out, n_in)) < density
    if empty_cols:
        mask[:, rng.random(n_in) < empty_cols] = False
    index = np.where(mask, rng.integers(1, k, size=(n_out, n_in)), 0).astype(np.uint8)
    # Largest codebook magnitude such that the accumulator bound holds with room for the bias.
    worst_row = max(int(mask.sum(axis=1).max(initial=0)), 1)
    cmax = min(config.act_max, (config.acc_max // 2) // (worst_row << (config.act_bits - 1)))
    cmax = max(cmax, 1)
    mags = rng.integers(1, cmax + 1, size=k - 1)
    signs = rng.choice([-1, 1], size=k - 1)
    cb = np.concatenate(([0], mags * signs)).astype(np.int64)
    if extreme and k > 2:
        cb[1], cb[2] = cmax, -min(cmax + 1, 1 << (config.act_bits - 1))
    typical = max(1, int(np.sqrt(worst_row)) * cmax * (1 << (config.act_bits - 3)))
    shift = int(np.clip(typical.bit_length() - (config.act_bits - 2), 0, config.max_shift))
    if extreme:
        shift = int(np.clip(shift - 3, 0, config.max_shift))  # drive outputs into saturation
    bias_mag = max(1, min(typical, config.acc_max // 4))
    bias = rng.integers(-bias_mag, bias_mag + 1, size=n_out).astype(np.int64)
    layer = QuantizedLayer(index=index, codebook=cb, bias=bias, shift=shift, relu=relu, name=name)
    assert accumulator_bound(layer, config.act_bits) <= config.acc_max
    return layer


def random_network(seed: int, shapes: list[int], config: EIEConfig, **kw) -> QuantizedNetwork:
    """A chain of random layers ``shapes[0] -> shapes[1] -> ...``; ReLU on all but the last."""
    rng = np.random.default_rng(seed)
    layers = tuple(
        random_layer(rng, n_in, n_out, config, relu=(l < len(shapes) - 2), name=f"fc{l}", **kw)
        for l, (n_in, n_out) in enumerate(zip(shapes[:-1], shapes[1:])))
    return QuantizedNetwork(layers=layers, input_frac_bits=0)


def random_inputs(seed: int, batch: int, n_in: int, config: EIEConfig, *, density: float = 0.5,
                  extreme: bool = False) -> np.ndarray:
    """Random integer input activations (``density`` of them non-zero)."""
    rng = np.random.default_rng(seed)
    lo, hi = config.act_min, config.act_max
    if extreme:
        x = rng.choice([lo, hi, 0, -1, 1], size=(batch, n_in))
    else:
        x = rng.integers(lo, hi + 1, size=(batch, n_in))
    x[rng.random((batch, n_in)) >= density] = 0
    return x.astype(np.int64)
