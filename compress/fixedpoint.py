"""Fixed-point calibration: a weight-shared float network to a :class:`QuantizedNetwork`.

Implements the "Choosing the formats" section of ``docs/numerics.md``: power-of-two formats
for inputs, codebooks and every layer's output, calibrated on data, and integer biases in
accumulator scale. The float reference (centroids and biases as floats) is returned beside
the integer network so that it can travel in the image manifest.
"""

from __future__ import annotations

import math

import numpy as np

from eie.spec.config import ConfigError, EIEConfig
from eie.spec.network import QuantizedLayer, QuantizedNetwork

__all__ = ["frac_bits_for", "calibrate"]


def frac_bits_for(max_abs: float, act_bits: int) -> int:
    """Largest ``f`` with ``max_abs * 2^f <= 2^(act_bits-1) - 1`` (``act_bits - 1`` for zero)."""
    limit = (1 << (act_bits - 1)) - 1
    if max_abs == 0.0:
        return act_bits - 1
    f = math.floor(math.log2(limit / max_abs))
    while math.ldexp(max_abs, f) > limit:
        f -= 1
    while math.ldexp(max_abs, f + 1) <= limit:
        f += 1
    return f


def _round_half_up(x: np.ndarray, f: int) -> np.ndarray:
    return np.floor(np.ldexp(np.asarray(x, dtype=np.float64), f) + 0.5)


def calibrate(layers, x_calib: np.ndarray, config: EIEConfig, *, input_frac_bits: int | None = None):
    """Choose formats and quantise a weight-shared network.

    Parameters
    ----------
    layers : sequence
        Objects with ``index`` ((out, in) ints, 0 = pruned), ``centroids`` (float, 2**b,
        ``centroids[0] == 0``), ``bias`` (float (out,)), ``relu`` (bool) and ``name``.
    x_calib : numpy.ndarray
        ``(batch, n_in)`` float calibration inputs.
    config : EIEConfig
    input_frac_bits : int, optional
        The input format ``f_in(0)`` when it is fixed elsewhere (the head after an LSTM reads ``h_t``
        in the LSTM's format); default: calibrated on ``x_calib``.

    Returns
    -------
    (QuantizedNetwork, dict)
        The integer network and the float reference ``{"layers": [{"centroids", "bias"}]}``.

    Raises
    ------
    ConfigError
        NaN/inf in weights or data, or a codebook of the wrong size.
    """
    x = np.asarray(x_calib, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ConfigError(f"calibration inputs must be a non-empty (batch, n_in) array, not {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigError("calibration inputs contain NaN or infinite values; clean the data set")
    a_bits = config.act_bits
    f_in = frac_bits_for(float(np.abs(x).max()), a_bits) if input_frac_bits is None else int(input_frac_bits)
    input_frac_bits = f_in
    act = x
    qlayers, reference = [], []
    for l, layer in enumerate(layers):
        name = getattr(layer, "name", "") or f"layer{l}"
        centroids = np.asarray(layer.centroids, dtype=np.float64)
        bias = np.asarray(layer.bias, dtype=np.float64)
        index = np.asarray(layer.index)
        if centroids.shape != (config.codebook_size,):
            raise ConfigError(f"{name}: {centroids.size} centroids but weight_bits={config.weight_bits} "
                              f"needs {config.codebook_size}; compress with the same weight_bits")
        if not (np.all(np.isfinite(centroids)) and np.all(np.isfinite(bias))):
            raise ConfigError(f"{name}: NaN or infinite weights or biases; retrain the model")
        f_w = frac_bits_for(float(np.abs(centroids).max()), a_bits)
        cb = np.clip(_round_half_up(centroids, f_w), config.act_min, config.act_max).astype(np.int64)
        # A tiny shared weight must not vanish: it keeps the smallest representable magnitude.
        tiny = (cb == 0) & (centroids != 0)
        cb[tiny] = np.sign(centroids[tiny]).astype(np.int64)
        cb[0] = 0
        # Float model with the weights the hardware will really use, to calibrate outputs.
        w = np.ldexp(cb.astype(np.float64), -f_w)[index]
        act = act @ w.T + bias
        if layer.relu:
            act = np.maximum(act, 0.0)
        f_out = frac_bits_for(float(np.abs(act).max()), a_bits)
        f_out = min(f_out, f_in + f_w)                       # shift >= 0
        f_out = max(f_out, f_in + f_w - config.max_shift)    # shift <= max_shift
        b = _round_half_up(bias, f_in + f_w)
        if np.abs(b).max(initial=0) > config.acc_max:
            raise ConfigError(f"{name}: a bias needs more than acc_bits={config.acc_bits} bits at this "
                              f"scale; raise acc_bits")
        qlayers.append(QuantizedLayer(
            index=index.astype(np.uint8), codebook=cb, bias=b.astype(np.int64),
            shift=f_in + f_w - f_out, relu=bool(layer.relu), in_frac_bits=f_in, w_frac_bits=f_w,
            out_frac_bits=f_out, name=name))
        reference.append({"centroids": [float(c) for c in centroids],
                          "bias": [float(v) for v in bias]})
        f_in = f_out
    return QuantizedNetwork(layers=tuple(qlayers), input_frac_bits=input_frac_bits), {"layers": reference}
