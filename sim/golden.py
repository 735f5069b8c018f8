"""The golden model: bit-exact execution of EIE images in integer NumPy.

:func:`run_golden` reads only an :class:`~eie.spec.image.Images` (what ``load_images`` returns)
and executes the network exactly as ``docs/numerics.md`` defines it, on a batch of inputs at
once. Each layer runs as a sparse product over the decoded entry stream (padding included),
then the write-back: bias, round-half-up shift, saturation, ReLU.

:func:`reference_forward` is the deliberately naive twin used by the tests: dense Python-integer
arithmetic straight from the ``QuantizedNetwork``, no sharing of code with the golden model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from eie.spec.image import Images, decode_layer
from eie.spec.network import QuantizedNetwork
from eie.spec.numerics import requantize

__all__ = ["run_golden", "golden_layers", "reference_forward"]


def _layer_matrix(images: Images, l: int) -> sp.csr_matrix:
    info = images.layers[l]
    rows, cols, v = decode_layer(images, l)
    vals = images.codebook[l][v]
    return sp.csr_matrix((vals.astype(np.int64), (rows, cols)), shape=(info.n_out, info.n_in),
                         dtype=np.int64)


def _check_input(x: np.ndarray, n_in: int, act_bits: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ValueError(f"input must have shape (batch, {n_in}), not {x.shape}")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"integer input expected (quantised activations), not {x.dtype}; "
                         f"use quantize_input")
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"input activations must fit {act_bits}-bit signed ({lo}..{hi})")
    return x.astype(np.int64)


def golden_layers(images: Images, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of every layer (each ``(batch, n_out)`` int64) for integer inputs ``x``."""
    cfg = images.config
    a = _check_input(x, images.n_in, cfg.act_bits)
    outs = []
    for l, info in enumerate(images.layers):
        w = _layer_matrix(images, l)
        b = np.empty(info.n_out, dtype=np.int64)
        for p in range(cfg.n_pe):
            mine = b[p::cfg.n_pe]
            mine[:] = images.bias[p][info.bias_base:info.bias_base + mine.size]
        acc = np.asarray((w @ a.T).T, dtype=np.int64)
        a = requantize(acc + b, info.shift, info.relu, cfg.act_bits)
        outs.append(a)
    return outs


def run_golden(images: Images, x: np.ndarray) -> np.ndarray:
    """Integer outputs ``(batch, n_out)`` of the last layer for integer inputs ``x``."""
    return golden_layers(images, x)[-1]


def reference_forward(net: QuantizedNetwork, x, act_bits: int = 16) -> list[list[int]]:
    """Naive dense Python-integer forward pass of one input vector ``x`` (list of ints)."""
    a = [int(v) for v in x]
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    for layer in net.layers:
        out = []
        for i in range(layer.n_out):
            t = int(layer.bias[i])
            for j in range(layer.n_in):
                t += int(layer.codebook[layer.index[i, j]]) * a[j]
            s = layer.shift
            r = (t + (1 << (s - 1))) >> s if s > 0 else t
            y = min(max(r, lo), hi)
            out.append(max(y, 0) if layer.relu else y)
        a = out
    return a
