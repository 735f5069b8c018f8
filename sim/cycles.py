"""Work and load-balance figures of a layer: the yardstick for the RTL's cycle counts.

For one input vector, PE ``p`` must process ``Σ_j [a_j != 0] · (P_p[j+1] - P_p[j])`` entries
(padding included) in a layer: one multiply-accumulate per cycle at best. The central control
broadcasts one non-zero activation per cycle at best. So a layer needs at least
``ideal = max(busiest PE's entries, non-zero input activations)`` cycles; the first term is
EIE's "theoretical" time (the paper's layers are MAC-bound), the second binds small layers on
many PEs. The *total* is the sum over PEs, and the load efficiency of a measured run is
``total / (n_pe · cycles)`` (EIE's figure: 1 − bubbles/total cycles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eie.spec.image import Images

__all__ = ["LayerWork", "layer_work", "column_entries"]


@dataclass(frozen=True)
class LayerWork:
    """Mean over the inputs of: ``busiest`` (the busiest PE's entries), ``nonzero_inputs``
    (broadcasts the LNZD must make), ``ideal`` (the larger of the two, per input), ``total``
    (all PEs' entries) and ``per_pe`` (entries per PE)."""

    busiest: float
    nonzero_inputs: float
    ideal: float
    total: float
    per_pe: np.ndarray


def column_entries(images: Images, l: int) -> np.ndarray:
    """``(n_pe, n_in)`` entry counts of every PE's share of every column of layer ``l``."""
    info = images.layers[l]
    return np.stack([np.diff(images.ptr[p][info.ptr_base:info.ptr_base + info.n_in + 1])
                     for p in range(images.config.n_pe)])


def layer_work(images: Images, l: int, a_in: np.ndarray) -> LayerWork:
    """Work of layer ``l`` for integer input activations ``a_in`` ``(batch, n_in)``."""
    counts = column_entries(images, l)                       # (n_pe, n_in)
    nz = (np.atleast_2d(a_in) != 0).astype(np.int64)         # (batch, n_in)
    per_pe = nz @ counts.T                                   # (batch, n_pe)
    busiest, broadcasts = per_pe.max(axis=1), nz.sum(axis=1)
    return LayerWork(busiest=float(busiest.mean()), nonzero_inputs=float(broadcasts.mean()),
                     ideal=float(np.maximum(busiest, broadcasts).mean()),
                     total=float(per_pe.sum(axis=1).mean()), per_pe=per_pe.mean(axis=0))
