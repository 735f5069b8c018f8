"""Work and load-balance figures of a layer: the yardstick for the RTL's cycle counts.

For one input vector, PE ``p`` must issue ``Σ_j [a_j != 0] · work_p[j]`` cycles in a layer, where
``work_p[j]`` is the issue cost of its share of column ``j`` on the hardware (``timing``, by
default the current PE: one cycle per real entry, padding entries folded into the next entry for
free where the sparse-matrix read can; EIE's padded PE pays one cycle per stored entry). The
central control broadcasts one non-zero activation per cycle at best. So a layer needs at least
``ideal = max(busiest PE's issue cycles, non-zero input activations)`` cycles; the first term is
EIE's "theoretical" time (the paper's layers are MAC-bound), the second binds small layers on
many PEs. The *total* is the sum over PEs, and the load efficiency of a measured run is
``total / (n_pe · cycles)`` (EIE's figure: 1 − bubbles/total cycles).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eie.sim.cycle_model import CURRENT_HARDWARE, ColumnUnits, HardwareTiming, layer_work_for
from eie.spec.image import Images

__all__ = ["LayerWork", "layer_work", "column_entries"]


@dataclass(frozen=True)
class LayerWork:
    """Mean over the inputs of: ``busiest`` (the busiest PE's issue cycles), ``nonzero_inputs``
    (broadcasts the LNZD must make), ``ideal`` (the larger of the two, per input), ``total``
    (all PEs' issue cycles) and ``per_pe`` (issue cycles per PE)."""

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


def layer_work(images: Images, l: int, a_in: np.ndarray, timing: HardwareTiming = CURRENT_HARDWARE) -> LayerWork:
    """Work of layer ``l`` for integer input activations ``a_in`` ``(batch, n_in)`` on the
    hardware ``timing`` describes (see the module docstring)."""
    work = layer_work_for(images, l, timing)
    counts = work.work if isinstance(work, ColumnUnits) else np.asarray(work)   # (n_pe, n_in)
    nz = (np.atleast_2d(a_in) != 0).astype(np.int64)         # (batch, n_in)
    per_pe = nz @ counts.T                                   # (batch, n_pe)
    busiest, broadcasts = per_pe.max(axis=1), nz.sum(axis=1)
    return LayerWork(busiest=float(busiest.mean()), nonzero_inputs=float(broadcasts.mean()),
                     ideal=float(np.maximum(busiest, broadcasts).mean()),
                     total=float(per_pe.sum(axis=1).mean()), per_pe=per_pe.mean(axis=0))
