"""The numerics contract in executable form (``docs/numerics.md``).

Activations are ``act_bits``-wide two's complement integers with a power-of-two scale: the real
value of an integer ``q`` in format ``f`` is ``q * 2^-f``. These functions are the only definitions
of the conversions and of the write-back arithmetic; the golden model, the compressor and the tests
use them, and the RTL's requantiser is verified against :func:`requantize`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["act_range", "requantize", "quantize_input", "dequantize_output"]


def act_range(act_bits: int) -> tuple[int, int]:
    """The smallest and largest ``act_bits``-bit two's complement value."""
    return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1


def requantize(t: np.ndarray, shift: int, relu: bool, act_bits: int) -> np.ndarray:
    """Write-back arithmetic on biased sums ``t`` (int64): round half up, shift, saturate, ReLU."""
    if shift > 0:
        t = (t + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
    y = np.clip(t, -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1)
    return np.maximum(y, 0) if relu else y


def quantize_input(x: np.ndarray, frac_bits: int, act_bits: int = 16) -> np.ndarray:
    """Float inputs to integer activations: ``sat(floor(x * 2^f + 1/2))``."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("input contains NaN or infinite values")
    q = np.floor(np.ldexp(x, frac_bits) + 0.5)
    return np.clip(q, -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1).astype(np.int64)


def dequantize_output(y: np.ndarray, frac_bits: int) -> np.ndarray:
    """Integer outputs to floats: ``y * 2^-f``."""
    return np.ldexp(np.asarray(y, dtype=np.float64), -frac_bits)
