"""Magnitude pruning (Deep Compression, Mao et al.'s coarse granularities, ESE's load balance).

Masks are made and applied with ``torch.nn.utils.prune``: every granularity uses
:class:`GroupMagnitudePruning`, a ``prune.BasePruningMethod`` over :func:`magnitude_mask` (fine
selection breaks magnitude ties towards the lower flat index). While a model is pruned its Linear
layers carry the ``weight_orig`` / ``weight_mask`` parametrization, so retraining keeps pruned
weights exactly zero; :func:`finalize` removes the parametrization and returns the masks.

Granularities (``group`` is the shape of the unit that is kept or pruned as a whole):

- ``fine``: single weights, ``(1, 1)``;
- ``vector``: ``k`` consecutive weights along a row, ``(1, k)``, scored by the block's norm;
- ``block``: ``k × k`` blocks, ``(k, k)``.

Blocks at the right and bottom edges are smaller when ``k`` does not divide the matrix. Coarse
granularities keep whole blocks, so they reach the target count only to the nearest block (exact when
the block size divides it).

Load-balance-aware pruning (ESE, ``n_pe``): row ``i`` belongs to PE ``i % n_pe`` (EIE's
interleaving) and each PE's sub-matrix ``W[p::n_pe]`` is pruned on its own to an equal share of the
layer's target. When the target is not a multiple of ``n_pe`` the least-loaded PEs, lowest number
first, hold one extra weight, so counts differ by at most one (and are equal when it divides); a PE
whose live weights are fewer than its share keeps them all and the rest is spread over the others.
Coarse blocks are then laid on each PE's local sub-matrix (local rows are consecutive in its SRAM).

Models that arrive already pruned (``torch.nn.utils.prune`` masks attached, or exact zeros left by
``prune.remove``) keep their pruning. Each layer has a *live set*: the weights that may still be kept,
the non-zero weights of the layer (read through an attached ``weight_mask``) inside an optional
``alive`` mask (:func:`live_masks`). Pruning only removes weights from the live set and retraining
never revives one outside it; an exact zero is never live, so no mask ever keeps a zero weight. A
density is a fraction of the *whole* layer: when it asks for more weights than are live the layer
keeps exactly its live weights (:func:`kept_count`). Coarse blocks count only their live weights.

:func:`prune_once` and :func:`iterative_prune` drive a
:class:`~eie.compress.sparsifier.MagnitudeSparsifier`, the same object users put in their own
training loops.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from eie.compress.train import Dataset, evaluate, linear_layers, train_epochs
from eie.spec.errors import CompressError

__all__ = ["GRANULARITIES", "PruneResult", "GroupMagnitudePruning", "group_shape", "check_pruning_options",
           "target_count", "kept_count", "balanced_counts", "magnitude_mask", "live_masks", "prune_layer",
           "finalize", "copy_model", "prune_once", "iterative_prune", "step_densities", "block_view", "pe_rows"]

GRANULARITIES = ("fine", "vector", "block")


@dataclass
class PruneResult:
    """A pruned model and its masks.

    Attributes
    ----------
    model : torch.nn.Module
        Plain (parametrization removed) model whose pruned weights are exactly zero.
    masks : list of numpy.ndarray
        Boolean ``(out, in)`` per Linear layer, ``True`` = kept.
    step_accuracies : list of float
        Test accuracy (%) after each prune-and-retrain step (empty for one-shot pruning).
    """

    model: nn.Module
    masks: list[np.ndarray]
    step_accuracies: list[float]


def group_shape(granularity: str, block_size: int) -> tuple[int, int]:
    """The pruning unit ``(rows, cols)`` of a granularity."""
    if granularity not in GRANULARITIES:
        raise CompressError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    if granularity != "fine" and (not isinstance(block_size, int) or block_size < 1):
        raise CompressError(f"block size must be a positive integer, not {block_size!r}")
    return {"fine": (1, 1), "vector": (1, block_size), "block": (block_size, block_size)}[granularity]


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_pruning_options(granularity: str, block_size: int, balance_pes: int | None, norm: int) -> tuple[int, int]:
    """Validate the pruning options (see the module docstring) and return the pruning unit.

    Raises
    ------
    TypeError
        An option of the wrong type.
    CompressError
        An option out of range.
    """
    if not isinstance(granularity, str):
        raise TypeError(f"granularity must be a string, not {granularity!r}")
    if not _is_int(block_size):
        raise TypeError(f"block size must be an integer, not {block_size!r}")
    if balance_pes is not None and not _is_int(balance_pes):
        raise TypeError(f"the number of PEs to balance over must be an integer or None, not {balance_pes!r}")
    if not _is_int(norm):
        raise TypeError(f"block norm must be an integer, not {norm!r}")
    group = group_shape(granularity, int(block_size))
    if balance_pes is not None and balance_pes < 1:
        raise CompressError(f"the number of PEs to balance over must be a positive integer, not {balance_pes!r}")
    if norm not in (1, 2):
        raise CompressError(f"block norm must be 1 or 2, not {norm!r}")
    return group


def target_count(numel: int, density: float) -> int:
    """Weights kept at ``density``: ``round(density * numel)`` (half up), at least one."""
    if not 0.0 < density <= 1.0:
        raise CompressError(f"density must be in (0, 1], not {density}")
    return max(1, min(numel, int(np.floor(density * numel + 0.5))))


def kept_count(numel: int, density: float, n_alive: int) -> int:
    """Weights a layer of ``numel`` weights, ``n_alive`` of them live, keeps at ``density``.

    ``density`` is a fraction of the whole layer, so this is :func:`target_count`; a layer asked for
    more weights than are live keeps exactly its live weights.
    """
    return min(target_count(numel, density), int(n_alive))


def balanced_counts(total: int, capacities: Sequence[int]) -> np.ndarray:
    """Split ``total`` kept weights over PEs as evenly as their capacities allow.

    Parameters
    ----------
    total : int
        At most ``sum(capacities)``.
    capacities : sequence of int
        Live weights of each PE's sub-matrix: a PE with fewer than its share keeps them all.

    Returns
    -------
    numpy.ndarray
        ``int64`` counts summing to ``total``; uncapped PEs differ by at most one, extras going to the
        least-loaded PEs, lowest number first.

    Raises
    ------
    CompressError
        ``total`` exceeds the capacities.
    """
    caps = np.asarray(capacities, dtype=np.int64)
    if total > caps.sum():
        raise CompressError(f"cannot spread {total} weights over PEs that hold {int(caps.sum())}; keep at most "
                            f"that many")
    counts = np.zeros_like(caps)
    remaining = int(total)
    while remaining > 0:
        open_pes = np.flatnonzero(counts < caps)
        open_pes = open_pes[np.argsort(counts[open_pes], kind="stable")]
        share, extra = divmod(remaining, open_pes.size)
        add = np.full(open_pes.size, share, dtype=np.int64)
        add[:extra] += 1
        add = np.minimum(add, caps[open_pes] - counts[open_pes])
        counts[open_pes] += add
        remaining -= int(add.sum())
    return counts


def block_view(a: np.ndarray, group: tuple[int, int]) -> np.ndarray:
    """``a`` zero-padded to whole blocks, as ``(block_rows, block_cols, gh * gw)``."""
    gh, gw = group
    h, w = a.shape
    bh, bw = -(-h // gh), -(-w // gw)
    padded = np.zeros((bh * gh, bw * gw), dtype=a.dtype)
    padded[:h, :w] = a
    return padded.reshape(bh, gh, bw, gw).transpose(0, 2, 1, 3).reshape(bh, bw, gh * gw)


def pe_rows(n_out: int, n_pe: int | None) -> list[np.ndarray]:
    """Rows of each PE (``p, p + n_pe, ...``); one part holding every row when ``n_pe`` is None."""
    n_parts = 1 if n_pe is None else n_pe
    return [np.arange(p, n_out, n_parts) for p in range(n_parts)]


def _keep_weights(weight: np.ndarray, alive: np.ndarray, n_keep: int) -> np.ndarray:
    """Fine-grained :func:`_keep_blocks`: the same choice (ties go to the lower flat index) in O(n).

    A selection by ``np.partition`` instead of a full sort: on a 9216×4096 layer this is the
    difference between about a second and tens of seconds.
    """
    scores = np.where(alive, np.abs(weight), -np.inf).ravel()
    n = min(int(n_keep), scores.size)
    kth = np.partition(scores, scores.size - n)[scores.size - n]
    keep = scores > kth
    ties = np.flatnonzero(scores == kth)[:n - int(np.count_nonzero(keep))]
    keep[ties] = True
    return keep.reshape(weight.shape) & alive


def _keep_blocks(weight: np.ndarray, alive: np.ndarray, n_keep: int, group: tuple[int, int],
                 norm: int) -> np.ndarray:
    """Mask keeping the highest-norm blocks of ``weight`` whose live weights add up nearest to ``n_keep``."""
    h, w = weight.shape
    if n_keep == 0 or weight.size == 0:
        return np.zeros(weight.shape, dtype=bool)
    if group == (1, 1):
        return _keep_weights(weight, alive, n_keep)
    magnitude = np.abs(weight * alive) ** norm
    scores = block_view(magnitude, group).sum(axis=2)
    sizes = block_view(alive.astype(np.int64), group).sum(axis=2)
    # Blocks without live weights rank below every live block, even one whose norm underflows to zero.
    scores[sizes == 0] = -np.inf
    order = np.argsort(-scores, axis=None, kind="stable")
    kept = np.concatenate(([0], np.cumsum(sizes.reshape(-1)[order])))
    n_blocks = int(np.argmin(np.abs(kept - n_keep)))
    keep = np.zeros(scores.size, dtype=bool)
    keep[order[:n_blocks]] = True
    gh, gw = group
    full = np.repeat(np.repeat(keep.reshape(scores.shape), gh, axis=0), gw, axis=1)
    return full[:h, :w] & alive


def magnitude_mask(weight: np.ndarray, n_keep: int, group: tuple[int, int] = (1, 1),
                   n_pe: int | None = None, norm: int = 2, alive: np.ndarray | None = None) -> np.ndarray:
    """Keep-mask of the ``n_keep`` largest-magnitude live weights (or blocks) of ``weight``.

    Parameters
    ----------
    weight : numpy.ndarray
        ``(out, in)``. Exact zeros are never kept.
    n_keep : int
        Weights to keep in the whole matrix; more than the live weights keeps exactly the live weights.
    group : (int, int)
        Pruning unit; blocks are scored by the L``norm`` norm of their live weights and counted by
        their live weights.
    n_pe : int, optional
        Load-balance-aware pruning over ``n_pe`` interleaved PEs (see the module docstring); each PE's
        capacity is its live weights.
    norm : int
        1 or 2.
    alive : numpy.ndarray, optional
        Previous mask; weights outside it stay pruned.

    Returns
    -------
    numpy.ndarray
        Boolean ``(out, in)``, a subset of ``alive`` holding no zero weight.
    """
    weight = np.asarray(weight, dtype=np.float64)
    live = weight != 0
    if alive is not None:
        live &= np.asarray(alive, dtype=bool)
    if norm not in (1, 2):
        raise CompressError(f"block norm must be 1 or 2, not {norm!r}")
    rows = pe_rows(weight.shape[0], n_pe)
    n_keep = min(int(n_keep), int(np.count_nonzero(live)))
    counts = balanced_counts(n_keep, [np.count_nonzero(live[r]) for r in rows])
    mask = np.zeros(weight.shape, dtype=bool)
    for r, count in zip(rows, counts, strict=True):
        mask[r] = _keep_blocks(weight[r], live[r], int(count), group, norm)
    return mask


class GroupMagnitudePruning(torch_prune.BasePruningMethod):
    """``torch.nn.utils.prune`` method: block-norm magnitude pruning, optionally load-balanced.

    Parameters
    ----------
    n_keep : int
        Weights the tensor keeps after this pruning step (at most its live weights).
    group : (int, int)
    n_pe : int, optional
    norm : int
    """

    PRUNING_TYPE = "global"

    def __init__(self, n_keep: int, group: tuple[int, int] = (1, 1), n_pe: int | None = None, norm: int = 2):
        self.n_keep = n_keep
        self.group = group
        self.n_pe = n_pe
        self.norm = norm

    def compute_mask(self, t, default_mask):
        alive = default_mask.detach().cpu().numpy() != 0
        keep = magnitude_mask(t.detach().cpu().to(torch.float64).numpy(), self.n_keep, self.group,
                              self.n_pe, self.norm, alive)
        return torch.as_tensor(keep, dtype=default_mask.dtype)


def _effective_weight(layer: nn.Linear) -> torch.Tensor:
    """The weights the layer computes with, ``weight_orig * weight_mask`` while a prune mask is attached.

    Computed afresh: the ``weight`` attribute of a pruned layer is only refreshed by a forward pass.
    """
    if hasattr(layer, "weight_mask"):
        return layer.weight_orig * layer.weight_mask
    return layer.weight


def live_masks(model: nn.Module, alive: Sequence[np.ndarray | None] | None = None) -> list[np.ndarray]:
    """The live set of every Linear layer: its non-zero weights that lie inside ``alive``.

    Parameters
    ----------
    model : torch.nn.Module
        Weights are read through an attached ``torch.nn.utils.prune`` mask, so its pruned weights
        (zero) are not live.
    alive : sequence of (numpy.ndarray or None), optional
        One boolean ``(out, in)`` mask per Linear layer (:func:`eie.compress.train.linear_layers` order);
        None, for all layers or for one, means every weight.

    Returns
    -------
    list of numpy.ndarray
        Boolean ``(out, in)`` per layer; never true at an exact zero.

    Raises
    ------
    TypeError
        ``alive`` is not a sequence.
    CompressError
        ``alive`` does not give one mask of the right shape per layer.
    """
    layers = linear_layers(model)
    if alive is None:
        alive = [None] * len(layers)
    elif not isinstance(alive, Sequence):
        raise TypeError(f"alive must be a sequence of masks, one per Linear layer (None = dense), not "
                        f"{type(alive).__name__}")
    if len(alive) != len(layers):
        raise CompressError(f"{len(alive)} alive masks given for {len(layers)} layers; give one per layer "
                            f"(None = dense)")
    live = []
    for l, (layer, mask) in enumerate(zip(layers, alive, strict=True)):
        nonzero = _effective_weight(layer).detach().cpu().numpy() != 0
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.shape != nonzero.shape:
                raise CompressError(f"alive mask {l} has shape {mask.shape} but Linear layer {l} has weights of "
                                    f"shape {nonzero.shape}; give one (out, in) mask per layer")
            nonzero &= mask
        live.append(nonzero)
    return live


def prune_layer(layer: nn.Linear, density: float, *, granularity: str = "fine", block_size: int = 4,
                balance_pes: int | None = None, norm: int = 2) -> None:
    """Prune ``layer.weight`` in place down to ``density`` with ``torch.nn.utils.prune``.

    ``density`` is a fraction of the whole layer (:func:`kept_count`). A layer that is already pruned
    is pruned further (the masks compose in a ``PruningContainer``); scores are the current masked
    weights, and only live weights (non-zero, inside the attached mask) can be kept.
    """
    group = check_pruning_options(granularity, block_size, balance_pes, norm)
    scores = _effective_weight(layer).detach()
    n_keep = kept_count(scores.numel(), density, int(torch.count_nonzero(scores)))
    GroupMagnitudePruning.apply(layer, "weight", n_keep, group, balance_pes, norm, importance_scores=scores)


def finalize(model: nn.Module) -> list[np.ndarray]:
    """Remove the pruning parametrization of every Linear layer (in place) and return the masks.

    Pruned weights are set to exactly ``+0.0``. A mask is the layer's non-zero weights: all-true for a
    layer that was never pruned and holds no zero, and a kept weight that training drove to exactly zero
    counts as pruned (no mask keeps a zero weight).
    """
    masks = []
    for layer in linear_layers(model):
        if hasattr(layer, "weight_mask"):
            pruned = torch.as_tensor(layer.weight_mask.detach().cpu().numpy() == 0)
            torch_prune.remove(layer, "weight")
            with torch.no_grad():
                layer.weight.masked_fill_(pruned, 0.0)
        masks.append(layer.weight.detach().cpu().numpy() != 0)
    return masks


def copy_model(model: nn.Module) -> nn.Module:
    """A deep copy of ``model``, also while ``torch.nn.utils.prune`` masks are attached.

    The ``weight`` of a pruned layer is computed from ``weight_orig`` and cannot be deep-copied; the
    copy gets a detached clone of it (its next forward pass recomputes it anyway).
    """
    memo = {id(t): t.detach().clone() for m in model.modules() for t in vars(m).values()
            if isinstance(t, torch.Tensor) and not t.is_leaf}
    return copy.deepcopy(model, memo)


def prune_once(model: nn.Module, densities: Sequence[float], *, granularity: str = "fine",
               block_size: int = 4, balance_pes: int | None = None, norm: int = 2,
               alive: Sequence[np.ndarray | None] | None = None) -> PruneResult:
    """One-shot magnitude pruning of a copy of ``model`` (no retraining).

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged; may be pruned already (see the module docstring).
    densities : sequence of float
        Fraction of the weights of each Linear layer to keep, in (0, 1].
    granularity, block_size, balance_pes, norm
        See the module docstring.
    alive : sequence of (numpy.ndarray or None), optional
        The user's masks, one per Linear layer (see :func:`live_masks`).

    Returns
    -------
    PruneResult
    """
    from eie.compress.sparsifier import MagnitudeSparsifier  # built on this module, hence imported here

    sparsifier = MagnitudeSparsifier(densities, granularity=granularity, block_size=block_size,
                                     balance_pes=balance_pes, norm=norm)
    pruned = copy_model(model)
    sparsifier.prepare(pruned, alive=alive)
    sparsifier.step()
    return PruneResult(model=pruned, masks=sparsifier.squash_mask(), step_accuracies=[])


def step_densities(density: float, steps: int, *, start: float = 1.0) -> list[float]:
    """Cubic schedule (Zhu and Gupta): ``density + (start - density) (1 - s / steps)**3``, s = 1..steps.

    Early steps, while the network is redundant, prune much; the last ones little. ``start`` is the
    density before the first step (a pruned layer's live density).
    """
    return [density + (start - density) * (1.0 - s / steps) ** 3 for s in range(1, steps + 1)]


def iterative_prune(model: nn.Module, data: Dataset, densities: Sequence[float], *, steps: int = 3,
                    epochs: int = 10, lr: float = 1e-3, granularity: str = "fine", block_size: int = 4,
                    balance_pes: int | None = None, norm: int = 2, weight_decay: float = 0.0, seed: int = 0,
                    progress: Callable[[str, int, int], None] | None = None,
                    alive: Sequence[np.ndarray | None] | None = None) -> PruneResult:
    """Deep Compression's prune → retrain loop on a copy of ``model``.

    A :class:`~eie.compress.sparsifier.MagnitudeSparsifier` with ``steps`` steps: each prunes every
    layer to its next density of :func:`step_densities` (starting from the layer's live density) and
    the whole network then retrains for ``epochs`` epochs with the masks fixed.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged; may be pruned already (see the module docstring).
    data : Dataset
    densities : sequence of float
        Final fraction of the weights of each Linear layer to keep.
    steps, epochs, lr, weight_decay
        Schedule, Adam learning rate and L2 weight decay of retraining.
    granularity, block_size, balance_pes, norm
        See the module docstring.
    seed : int
    progress : callable, optional
        ``progress(description, completed, total)`` after every step.
    alive : sequence of (numpy.ndarray or None), optional
        The user's masks, one per Linear layer (see :func:`live_masks`).

    Returns
    -------
    PruneResult
    """
    from eie.compress.sparsifier import MagnitudeSparsifier  # built on this module, hence imported here

    sparsifier = MagnitudeSparsifier(densities, granularity=granularity, block_size=block_size,
                                     balance_pes=balance_pes, norm=norm, steps=steps)
    pruned = copy_model(model)
    sparsifier.prepare(pruned, alive=alive)
    step_accuracies = []
    for step in range(steps):
        sparsifier.step()
        train_epochs(pruned, data, epochs, lr, seed=seed + step, weight_decay=weight_decay)
        step_accuracies.append(evaluate(pruned, data))
        if progress is not None:
            progress("prune and retrain", step + 1, steps)
    return PruneResult(model=pruned, masks=sparsifier.squash_mask(), step_accuracies=step_accuracies)
