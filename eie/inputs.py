"""Checking what users feed to compressed images: inputs and labels, for golden, sim and verify.

One set of checks for the ``eie golden``, ``eie sim`` and ``eie verify`` commands and for the Python
API (:class:`eie.Compressed`), run before anything is computed or written:

- **shape**: ``(batch, n_in)``; a model that began by flattening (the manifest's ``source.flatten``)
  also takes ``(batch, *input_shape)``; a single 1-D input is refused with the fix (``x[None, :]``);
- **dtype**: real numbers only (no complex, boolean, string or object arrays); with ``raw``,
  integers that fit the activation width;
- **values**: no NaN or infinity; an empty batch is an error;
- **saturation**: float inputs outside the calibrated input range are counted and reported as a
  warning (:attr:`PreparedInputs.saturated`), not silently clipped;
- **labels**: one integer per input in ``0..n_out - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eie.spec.errors import InputError
from eie.spec.image import Images
from eie.spec.numerics import act_range, quantize_input

__all__ = ["PreparedInputs", "prepare_inputs", "check_labels"]


@dataclass(frozen=True)
class PreparedInputs:
    """Inputs ready for the golden model or the RTL.

    Attributes
    ----------
    x_int : numpy.ndarray
        int64 ``(batch, n_in)`` activations in the input format.
    x_float : numpy.ndarray or None
        float64 ``(batch, n_in)`` inputs as given (None for raw inputs).
    saturated : int
        Input values that did not fit the input format and were saturated.
    """

    x_int: np.ndarray
    x_float: np.ndarray | None
    saturated: int

    @property
    def batch(self) -> int:
        return self.x_int.shape[0]

    def warning(self, images: Images) -> str | None:
        """A one-line warning about saturated inputs, or None."""
        if not self.saturated:
            return None
        lo, hi = act_range(images.config.act_bits)
        scale = 2.0 ** -images.input_frac_bits
        return (f"warning: {self.saturated} of {self.x_int.size} input values lie outside the calibrated input "
                f"range [{lo * scale:g}, {hi * scale:g}] and were saturated (pass --raw if the inputs are already "
                f"integer activations)")


def _accepted_shapes(images: Images) -> list[tuple[int, ...]]:
    source = images.manifest.get("source", {})
    shapes = [(images.n_in,)]
    shape = source.get("input_shape")
    if source.get("flatten") and isinstance(shape, list) and math.prod(shape) == images.n_in:
        shapes.append(tuple(int(d) for d in shape))
    return shapes


def prepare_inputs(images: Images, x, *, raw: bool = False) -> PreparedInputs:
    """Check ``x`` against ``images`` and convert it to integer activations.

    Parameters
    ----------
    images : Images
    x : array-like
        ``(batch, n_in)`` (or ``(batch, *input_shape)`` for a model that flattens) float inputs, or
        integer activations with ``raw``.
    raw : bool
        ``x`` holds integer activations in the input format.

    Returns
    -------
    PreparedInputs

    Raises
    ------
    InputError
        One line naming the problem and the fix.
    """
    x = np.asarray(x)
    shapes = _accepted_shapes(images)
    want = " or ".join(f"(batch, {', '.join(map(str, s))})" for s in shapes)
    if x.dtype.kind == "c":
        raise InputError(f"input is complex ({x.dtype}); the network takes real values")
    if x.dtype.kind not in "iuf":
        raise InputError(f"input has dtype {x.dtype}; give real numbers (float, or integers with --raw)")
    if x.ndim == 0 or (x.ndim == 1 and x.shape[0] == images.n_in):
        raise InputError(f"input has shape {x.shape}; give a batch {want} (x[None, :] for a single input)")
    if x.shape[0] == 0:
        raise InputError(f"input is an empty batch (shape {x.shape}); give at least one input")
    if tuple(x.shape[1:]) not in shapes:
        raise InputError(f"input has shape {x.shape} but the network takes {want}")
    x = x.reshape(x.shape[0], images.n_in)
    lo, hi = act_range(images.config.act_bits)
    if raw:
        if x.dtype.kind not in "iu":
            raise InputError(f"--raw expects integer activations, not {x.dtype}; drop --raw to pass float inputs")
        if x.min() < lo or x.max() > hi:
            raise InputError(f"input activations must fit {images.config.act_bits}-bit signed ({lo}..{hi}); "
                             f"the smallest is {x.min()} and the largest {x.max()}")
        return PreparedInputs(x.astype(np.int64), None, 0)
    xf = x.astype(np.float64)
    if not np.all(np.isfinite(xf)):
        raise InputError("input contains NaN or infinite values")
    scaled = np.floor(np.ldexp(xf, images.input_frac_bits) + 0.5)
    saturated = int(np.count_nonzero((scaled < lo) | (scaled > hi)))
    return PreparedInputs(quantize_input(xf, images.input_frac_bits, images.config.act_bits), xf, saturated)


def check_labels(labels, batch: int, n_out: int) -> np.ndarray:
    """``labels`` as int64 ``(batch,)`` class indices in ``0..n_out - 1``, or :class:`InputError`."""
    y = np.asarray(labels)
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise InputError(f"labels have dtype {y.dtype}; give integer class indices")
    if y.shape != (batch,):
        raise InputError(f"labels have shape {y.shape}, expected ({batch},): one per input")
    if y.size and (y.min() < 0 or y.max() >= n_out):
        raise InputError(f"labels lie in {int(y.min())}..{int(y.max())} but the network has {n_out} outputs "
                         f"(labels 0..{n_out - 1})")
    return y.astype(np.int64)
