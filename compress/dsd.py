"""Dense → Sparse → Dense training (DSD, Han et al. 2016).

1. **D**: train the dense network.
2. **S**: prune each layer by magnitude to the given sparsity and retrain with the masks fixed.
3. **D**: restore the pruned connections, starting at zero, and retrain the whole dense network at
   a tenth of the learning rate.

The sparse phase acts as a regulariser; the final dense network is usually more accurate than the
first one, and is what the pipeline then compresses when ``dsd=True``.

A model that is already pruned (``torch.nn.utils.prune`` masks, exact zeros, or ``alive`` masks; see
:func:`eie.compress.prune.live_masks`) keeps its pruning: its live weights, the *support*, play the dense
network. The dense phases train only inside the support, the sparse phase removes ``sparsity`` of
each layer's live weights, and the re-dense phase restores connections only up to the support.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import nn

from eie.compress.prune import copy_model, finalize, live_masks, prune_once, target_count
from eie.compress.train import Dataset, evaluate, train_epochs
from eie.spec.errors import CompressError

__all__ = ["DSDResult", "run_dsd"]


@dataclass
class DSDResult:
    """The re-densified model and the test score (%, the data's task) after each phase."""

    model: nn.Module
    dense_accuracy: float
    sparse_accuracy: float
    redense_accuracy: float


def run_dsd(model: nn.Module, data: Dataset, *, sparsity: float = 0.5, dense_epochs: int = 20,
            sparse_epochs: int = 20, redense_epochs: int = 20, lr: float = 1e-3, weight_decay: float = 0.0,
            seed: int = 0, progress: Callable[[str, int, int], None] | None = None,
            alive: Sequence[np.ndarray | None] | None = None) -> DSDResult:
    """Run DSD training on a copy of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged; the dense phase continues from its weights. May be pruned already.
    data : Dataset
    sparsity : float
        Fraction of every layer's live weights removed in the sparse phase, in (0, 1).
    dense_epochs, sparse_epochs, redense_epochs : int
    lr : float
        Learning rate of the first two phases; the last uses ``lr / 10``.
    weight_decay : float
    seed : int
    progress : callable, optional
        ``progress(description, completed, 3)`` after each phase.
    alive : sequence of (numpy.ndarray or None), optional
        The user's masks, one per Linear layer (see :func:`eie.compress.prune.live_masks`).

    Returns
    -------
    DSDResult
        ``model`` is a plain model (no pruning parametrization) that is zero outside the support.
    """
    if not 0.0 < sparsity < 1.0:
        raise CompressError(f"the DSD sparsity must be in (0, 1), not {sparsity}")
    report = progress or (lambda *args: None)
    start = copy_model(model)
    support = live_masks(start, alive)
    finalize(start)
    dense = train_epochs(start, data, dense_epochs, lr, masks=support, seed=seed, weight_decay=weight_decay)
    dense_accuracy = evaluate(dense, data)
    report("DSD dense", 1, 3)
    # Densities are fractions of the whole layer; this one keeps 1 - sparsity of the live weights.
    densities = [target_count(int(mask.sum()), 1.0 - sparsity) / mask.size for mask in support]
    pruned = prune_once(dense, densities, alive=support)
    sparse = train_epochs(pruned.model, data, sparse_epochs, lr, masks=pruned.masks, seed=seed + 1,
                          weight_decay=weight_decay)
    sparse_accuracy = evaluate(sparse, data)
    report("DSD sparse", 2, 3)
    redense = train_epochs(copy.deepcopy(sparse), data, redense_epochs, lr / 10, masks=support, seed=seed + 2,
                           weight_decay=weight_decay)
    report("DSD re-dense", 3, 3)
    return DSDResult(model=redense, dense_accuracy=dense_accuracy, sparse_accuracy=sparse_accuracy,
                     redense_accuracy=evaluate(redense, data))
