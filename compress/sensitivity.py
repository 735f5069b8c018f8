"""Per-layer pruning sensitivity (Deep Compression, Han et al. 2015, figure 6).

Each layer alone is pruned over a grid of densities, without retraining, while the others stay dense;
the accuracy drop on the evaluation data gives the layer's sensitivity. A layer's density is the
smallest on the grid whose drop stays within the accuracy budget: robust layers are pruned hard,
sensitive ones gently, and the prune → retrain loop then reaches those densities.

:func:`budget_for_density` turns the table around: the smallest budget whose densities keep at most a
given fraction of the network's weights, so a target overall density is spread over the layers by
their sensitivity (every layer gets the same worst-case drop).

The pipeline evaluates on the training set so that the test set, on which the results are reported,
plays no part in choosing the densities.

A model that is already pruned keeps its pruning (see :func:`eie.compress.prune.live_masks`): densities
are fractions of the whole layer, and a grid density above a layer's live density keeps exactly its
live weights, so it costs no accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from eie.compress.prune import prune_once
from eie.compress.train import Dataset, evaluate, linear_layers
from eie.spec.errors import CompressError

__all__ = ["DEFAULT_GRID", "SensitivityResult", "sensitivity_analysis", "budget_for_density"]

DEFAULT_GRID = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.045, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15,
                0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)


@dataclass(frozen=True)
class SensitivityResult:
    """Accuracy of the network with one layer pruned, per layer and grid density.

    Attributes
    ----------
    grid : tuple of float
        Densities tried, ascending.
    baseline : float
        Accuracy (%) of the unpruned network (the model's live weights).
    accuracies : list of list of float
        ``accuracies[l][g]``: accuracy with layer ``l`` alone pruned to ``grid[g]``.
    sizes : list of int
        Weights of each layer.
    budget : float
        Largest accepted drop, in accuracy points.
    densities : list of float
        Chosen density of each layer.
    """

    grid: tuple[float, ...]
    baseline: float
    accuracies: list[list[float]]
    sizes: list[int]
    budget: float
    densities: list[float]

    def densities_within(self, budget: float) -> list[float]:
        """Each layer's smallest grid density whose drop is at most ``budget`` points."""
        return [next(d for d, a in zip(self.grid, row, strict=True) if self.baseline - a <= budget)
                for row in self.accuracies]

    @property
    def overall_density(self) -> float:
        """Fraction of all weights kept at the chosen densities."""
        return sum(d * n for d, n in zip(self.densities, self.sizes, strict=True)) / sum(self.sizes)

    def rows(self, names: Sequence[str] | None = None) -> list[dict]:
        """One dict per layer (name, drop at each density, chosen density) for printing as a table."""
        names = names if names is not None else [f"layer{l}" for l in range(len(self.accuracies))]
        return [{"layer": name,
                 **{f"{d:g}": round(self.baseline - a, 2) for d, a in zip(self.grid, accs, strict=True)},
                 "chosen": density}
                for name, accs, density in zip(names, self.accuracies, self.densities, strict=True)]


def sensitivity_analysis(model: nn.Module, data: Dataset, *, budget: float,
                         grid: Sequence[float] = DEFAULT_GRID, granularity: str = "fine",
                         block_size: int = 4, balance_pes: int | None = None,
                         alive: Sequence[np.ndarray | None] | None = None) -> SensitivityResult:
    """Prune each layer alone over ``grid`` and pick its smallest density within ``budget``.

    Parameters
    ----------
    model : torch.nn.Module
        Chain of Linear layers; left unchanged.
    data : Dataset
        Scored on its training split (the test split, on which results are reported, plays no
        part in choosing densities).
    budget : float
        Largest accuracy drop (points, on the 0..100 scale) a layer may cause.
    grid : sequence of float
        Candidate densities in (0, 1]; 1.0 (no pruning) is always a candidate.
    granularity, block_size, balance_pes, alive
        As for :func:`eie.compress.prune.prune_once`.

    Returns
    -------
    SensitivityResult
    """
    if budget < 0:
        raise CompressError(f"the accuracy budget must be non-negative, not {budget}")
    grid = tuple(sorted(set(grid) | {1.0}))
    n_layers = len(linear_layers(model))
    # The unpruned network is the model restricted to its live weights.
    baseline = evaluate(prune_once(model, [1.0] * n_layers, alive=alive).model, data, "train")
    table = []
    for l in range(n_layers):
        row = []
        for density in grid:
            densities = [1.0] * n_layers
            densities[l] = density
            pruned = prune_once(model, densities, granularity=granularity, block_size=block_size,
                                balance_pes=balance_pes, alive=alive).model
            row.append(evaluate(pruned, data, "train"))
        table.append(row)
    result = SensitivityResult(grid=grid, baseline=baseline, accuracies=table,
                               sizes=[layer.weight.numel() for layer in linear_layers(model)],
                               budget=budget, densities=[])
    return replace(result, densities=result.densities_within(budget))


def budget_for_density(result: SensitivityResult, target: float) -> SensitivityResult:
    """``result`` re-chosen with the smallest budget whose overall density is at most ``target``.

    Parameters
    ----------
    result : SensitivityResult
    target : float
        Fraction of all weights to keep, in (0, 1]. Below what the grid allows, every layer gets
        its smallest grid density.

    Returns
    -------
    SensitivityResult
        With ``budget`` and ``densities`` replaced.
    """
    if not 0.0 < target <= 1.0:
        raise CompressError(f"the target density must be in (0, 1], not {target}")
    total = sum(result.sizes)
    drops = sorted({max(0.0, result.baseline - a) for row in result.accuracies for a in row})
    for budget in drops:
        densities = result.densities_within(budget)
        if sum(d * n for d, n in zip(densities, result.sizes, strict=True)) <= target * total:
            return replace(result, budget=budget, densities=densities)
    return replace(result, budget=drops[-1], densities=result.densities_within(drops[-1]))
