"""Deep Compression's weight sharing: per-layer 1-D k-means over the unpruned weights, and
centroid fine-tuning.

Codebook layout (``docs/numerics.md``): a layer with ``b``-bit weight indices has ``2**b`` codebook
slots. Slot 0 is the exact zero used by pruned weights and padding entries, so k-means finds
``K = 2**b - 1`` shared non-zero values, stored ascending in slots ``1..K'`` (``K' <= K``: empty
clusters are dropped and a layer with at most ``K`` distinct weights keeps them exactly); unused
slots hold ``0.0`` and no weight refers to them.

Centroids are float32 values (held in float64), so the float32 shared model and the float64
reference of the images compute with the same weights.

No unpruned weight may share the zero of slot 0: a centroid that comes out exactly ``0.0`` (a
cluster whose members average to zero) is nudged to the smallest normal float32,
``±1.18e-38``, signed like the sum of its members (``+`` when that is zero). The fixed-point
calibration then gives it the smallest non-zero code, as it does for any tiny centroid.

The clustered set is exactly the mask, and the mask must not hold an exact zero: that weight is
pruned, and clustering it would give it a non-zero code (the zero would join, and pull, a non-zero
cluster). :func:`share_weights` rejects such a mask; the pruning functions of :mod:`eie.compress.prune`
never make one. No position outside the mask gets a non-zero index.

Fine-tuning trains the codebook itself: ``W = codebook[index]`` (the :class:`CodebookWeight`
parametrization of :class:`~eie.compress.sparsifier.WeightSharer`, which :func:`finetune_centroids`
drives, or the :class:`SharedLinear` module) has a backward pass that groups the weight gradients by
index, ``dL/dC_k = Σ dL/dW_ij`` over ``index_ij == k`` (:func:`centroid_gradients`, an
``index_add``); slot 0 gets no gradient, so pruned weights stay exactly zero and out of the codebook.

k-means is Lloyd's algorithm on the sorted weights: clusters of a 1-D k-means are intervals, so
each iteration is a ``searchsorted`` of the centroid midpoints plus a ``reduceat`` of the sums,
``O(K log n)``, after one ``O(n log n)`` sort; it stops when the assignment no longer changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from eie.compress.train import Dataset, linear_layers, train_epochs
from eie.spec.errors import CompressError

__all__ = ["INITS", "SharedLayer", "init_centroids", "kmeans_1d", "share_weights", "quantize_layers",
           "centroid_gradients", "CodebookWeight", "SharedLinear", "shared_module", "with_codebook",
           "finetune_centroids"]

INITS = ("linear", "density", "random")
MAX_ITER = 1000
_TINY = float(np.finfo(np.float32).tiny)


@dataclass
class SharedLayer:
    """A pruned, weight-shared fully-connected layer ``y = C[index] x + bias``.

    Attributes
    ----------
    index : numpy.ndarray
        ``uint8`` ``(out, in)``: 0 where pruned, ``1..2**b - 1`` otherwise.
    centroids : numpy.ndarray
        ``float64`` ``(2**b,)``; ``centroids[0] == 0.0``, unused slots ``0.0``.
    bias : numpy.ndarray
        ``float64`` ``(out,)``.
    relu : bool
    name : str
    """

    index: np.ndarray
    centroids: np.ndarray
    bias: np.ndarray
    relu: bool
    name: str

    @property
    def weight(self) -> np.ndarray:
        """The shared float weights ``centroids[index]`` ``(out, in)``."""
        return self.centroids[self.index]

    @property
    def mask(self) -> np.ndarray:
        """Boolean ``(out, in)``: the unpruned weights."""
        return self.index != 0

    @property
    def nnz(self) -> int:
        return int(np.count_nonzero(self.index))


def init_centroids(values: np.ndarray, k: int, init: str = "linear", seed: int = 0) -> np.ndarray:
    """Initial centroids for :func:`kmeans_1d` (Deep Compression section 3.2).

    Parameters
    ----------
    values : numpy.ndarray
        Sorted 1-D weights.
    k : int
    init : {"linear", "density", "random"}
        ``linear``: evenly spaced between min and max; ``density``: the ``(i + 1/2) / k``
        quantiles (evenly spaced on the CDF); ``random``: ``k`` distinct weights drawn with
        ``numpy.random.default_rng(seed)`` (Forgy).
    seed : int

    Returns
    -------
    numpy.ndarray
        ``k`` sorted centroids.
    """
    if init == "linear":
        return np.linspace(values[0], values[-1], k)
    if init == "density":
        return np.quantile(values, (np.arange(k) + 0.5) / k)
    if init == "random":
        distinct = np.unique(values)
        return np.sort(np.random.default_rng(seed).choice(distinct, size=k, replace=False))
    raise CompressError(f"k-means initialisation must be one of {', '.join(INITS)}, not {init!r}")


def _assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cluster of each value: the nearest centroid, ties to the larger one."""
    return np.searchsorted((centroids[:-1] + centroids[1:]) / 2, values, side="right")


def kmeans_1d(values: np.ndarray, k: int, init: str = "linear",
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means of 1-D ``values`` into at most ``k`` clusters.

    Parameters
    ----------
    values : numpy.ndarray
        Non-empty 1-D float array.
    k : int
    init, seed
        See :func:`init_centroids`.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Ascending distinct centroids ``(k',)`` (``k' <= k``; empty clusters dropped) and the
        cluster (``0..k'-1``) of every value.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    x = np.sort(values)
    distinct = np.unique(x)
    if distinct.size <= k:
        return distinct, np.searchsorted(distinct, values)
    centroids = init_centroids(x, k, init, seed)
    bounds = None
    for _ in range(MAX_ITER):
        mids = (centroids[:-1] + centroids[1:]) / 2
        new_bounds = np.concatenate(([0], np.searchsorted(x, mids, side="left"), [x.size]))
        if bounds is not None and np.array_equal(new_bounds, bounds):
            break
        bounds = new_bounds
        counts = np.diff(bounds)
        full = counts > 0
        centroids = centroids.copy()
        centroids[full] = np.add.reduceat(x, bounds[:-1][full]) / counts[full]
    centroids = np.unique(centroids[np.diff(bounds) > 0])
    return centroids, _assign(values, centroids)


def _nonzero_centroids(centroids: np.ndarray, members_sum: np.ndarray) -> np.ndarray:
    """Round to float32 and nudge exact zeros to ±tiny (see the module docstring)."""
    c = centroids.astype(np.float32).astype(np.float64)
    zero = c == 0.0
    c[zero] = np.where(members_sum[zero] < 0, -_TINY, _TINY)
    return c


def share_weights(weight: np.ndarray, mask: np.ndarray, weight_bits: int, init: str = "linear",
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means weight sharing of one layer's unpruned weights.

    Parameters
    ----------
    weight : numpy.ndarray
        ``(out, in)`` float.
    mask : numpy.ndarray
        Boolean ``(out, in)``, ``True`` = unpruned: exactly these weights are clustered, and none of
        them may be zero.
    weight_bits : int
        ``b`` in 1..8: ``2**b`` codebook slots, ``2**b - 1`` clusters.
    init, seed
        See :func:`init_centroids`.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``index`` ``uint8`` ``(out, in)``, non-zero exactly inside ``mask``, and ``centroids``
        ``float64`` ``(2**b,)``.

    Raises
    ------
    CompressError
        ``weight_bits`` out of range, or ``mask`` keeps an exact zero.
    """
    if not isinstance(weight_bits, int) or not 1 <= weight_bits <= 8:
        raise CompressError(f"weight_bits must be an integer in 1..8, not {weight_bits!r}")
    weight = np.asarray(weight, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    zeros = int(np.count_nonzero(weight[mask] == 0))
    if zeros:
        raise CompressError(f"the mask keeps {zeros} weights that are exactly zero, and clustering them would "
                            f"encode a pruned weight as non-zero; leave exact zeros out of the mask")
    index = np.zeros(weight.shape, dtype=np.uint8)
    codebook = np.zeros(2 ** weight_bits, dtype=np.float64)
    if not mask.any():
        return index, codebook
    values = weight[mask]
    centroids, labels = kmeans_1d(values, 2 ** weight_bits - 1, init, seed)
    sums = np.bincount(labels, weights=values, minlength=centroids.size)
    centroids = _nonzero_centroids(centroids, sums)
    # float32 rounding may merge neighbours; relabel so each stored slot is distinct and used.
    stored, labels = np.unique(centroids[labels], return_inverse=True)
    index[mask] = labels.reshape(-1) + 1
    codebook[1:stored.size + 1] = stored
    return index, codebook


def quantize_layers(model: nn.Module, masks: Sequence[np.ndarray], relus: Sequence[bool],
                    names: Sequence[str], weight_bits: int = 4, init: str = "linear",
                    seed: int = 0) -> list[SharedLayer]:
    """Weight sharing of every Linear layer of a pruned model.

    Parameters
    ----------
    model : torch.nn.Module
        Chain of Linear layers (:func:`eie.compress.train.linear_layers` order).
    masks : sequence of numpy.ndarray
        Boolean keep-mask per layer, holding no exact zero (see :func:`share_weights`).
    relus, names : sequence
        Per layer, copied into the :class:`SharedLayer`.
    weight_bits, init, seed
        See :func:`share_weights`.

    Returns
    -------
    list of SharedLayer
    """
    shared = []
    for layer, mask, relu, name in zip(linear_layers(model), masks, relus, names, strict=True):
        weight = layer.weight.detach().to(torch.float64).numpy()
        index, centroids = share_weights(weight, mask, weight_bits, init, seed)
        bias = layer.bias.detach().to(torch.float64).numpy().copy() if layer.bias is not None \
            else np.zeros(weight.shape[0])
        shared.append(SharedLayer(index=index, centroids=centroids, bias=bias, relu=bool(relu), name=name))
    return shared


def centroid_gradients(weight_grad: torch.Tensor, index: torch.Tensor, n_centroids: int) -> torch.Tensor:
    """``dL/dC_k = Σ dL/dW_ij`` over the weights with ``index_ij == k`` (0 for slot 0).

    Parameters
    ----------
    weight_grad : torch.Tensor
        ``(out, in)``.
    index : torch.Tensor
        ``int64`` ``(out, in)``.
    n_centroids : int

    Returns
    -------
    torch.Tensor
        ``(n_centroids,)``, slot 0 zero: the zero weight is not trained.
    """
    grad = torch.zeros(n_centroids, dtype=weight_grad.dtype)
    grad.index_add_(0, index.reshape(-1), weight_grad.reshape(-1))
    grad[0] = 0.0
    return grad


def shared_module(layers: Sequence[SharedLayer], dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """Float model ``Linear [ReLU] ...`` whose weights are ``centroids[index]``."""
    mods: list[nn.Module] = []
    for layer in layers:
        n_out, n_in = layer.index.shape
        lin = nn.Linear(n_in, n_out, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(layer.weight, dtype=dtype))
            lin.bias.copy_(torch.as_tensor(layer.bias, dtype=dtype))
        mods.append(lin)
        if layer.relu:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods).eval()


class _SharedWeight(torch.autograd.Function):
    """``W = codebook[index]``; backward: ``dL/dC_k`` by :func:`centroid_gradients`."""

    @staticmethod
    def forward(ctx, codebook: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.size = codebook.numel()
        return codebook[index]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        return centroid_gradients(grad, index, ctx.size), None


class CodebookWeight(nn.Module):
    """``torch.nn.utils.parametrize`` parametrization of a weight as ``codebook[index]``.

    Registered with ``unsafe=True`` on a layer's ``weight``, it turns the weight parameter into the
    codebook: :meth:`right_inverse` fits the codebook to the weight, so a weight that already equals
    ``centroids[index]`` gives back exactly those centroids. The backward pass is
    :func:`centroid_gradients` (slot 0 gets no gradient).

    Parameters
    ----------
    index : numpy.ndarray
        Integer ``(out, in)`` codebook indices, 0 where pruned.
    n_slots : int
        Codebook size, ``2**b``.
    """

    def __init__(self, index: np.ndarray, n_slots: int):
        super().__init__()
        self.n_slots = n_slots
        self.register_buffer("index", torch.as_tensor(np.asarray(index, dtype=np.int64)))

    def forward(self, codebook: torch.Tensor) -> torch.Tensor:
        return _SharedWeight.apply(codebook, self.index)

    def right_inverse(self, weight: torch.Tensor) -> torch.Tensor:
        """The least-squares codebook of ``weight``: the mean of each slot's weights (slot 0, unused: 0)."""
        flat = self.index.reshape(-1)
        sums = torch.zeros(self.n_slots, dtype=torch.float64).index_add_(
            0, flat, weight.detach().reshape(-1).to(torch.float64))
        counts = torch.bincount(flat, minlength=self.n_slots)
        codebook = torch.where(counts > 0, sums / counts.clamp(min=1), 0.0)
        codebook[0] = 0.0
        return codebook.to(weight.dtype)


class SharedLinear(nn.Module):
    """A fully-connected layer whose weights are codebook entries, ``W = codebook[index]``.

    The trainable parameters are the codebook and the bias; slot 0 receives no gradient, so pruned
    weights (index 0) are exactly zero throughout training.
    """

    def __init__(self, layer: SharedLayer, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.codebook = nn.Parameter(torch.as_tensor(layer.centroids, dtype=dtype))
        self.bias = nn.Parameter(torch.as_tensor(layer.bias, dtype=dtype))
        self.register_buffer("index", torch.as_tensor(layer.index, dtype=torch.int64))

    @property
    def weight(self) -> torch.Tensor:
        return _SharedWeight.apply(self.codebook, self.index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def with_codebook(layer: SharedLayer, codebook: np.ndarray, bias: np.ndarray) -> SharedLayer:
    """``layer`` with a trained codebook and bias and the same indices.

    The used slots get the trained values rounded to float32, an exact zero nudged off zero with the
    sign of the slot's previous centroid (see the module docstring); slot 0 and unused slots are
    ``0.0``.
    """
    used = np.unique(layer.index[layer.index > 0])
    centroids = np.zeros(layer.centroids.size)
    centroids[used] = _nonzero_centroids(np.asarray(codebook, dtype=np.float64)[used], layer.centroids[used])
    return SharedLayer(index=layer.index.copy(), centroids=centroids, bias=np.asarray(bias, dtype=np.float64),
                       relu=layer.relu, name=layer.name)


def finetune_centroids(layers: Sequence[SharedLayer], data: Dataset, epochs: int, lr: float,
                       seed: int = 0) -> list[SharedLayer]:
    """Train the shared centroids (and biases) of a weight-shared network.

    :func:`shared_module` under a :class:`~eie.compress.sparsifier.WeightSharer` started from ``layers``,
    trained by :func:`eie.compress.train.train_epochs`.

    Parameters
    ----------
    layers : sequence of SharedLayer
    data : Dataset
    epochs : int
        0 returns the layers unchanged.
    lr : float
        Adam learning rate.
    seed : int

    Returns
    -------
    list of SharedLayer
        New layers with the same ``index`` and trained ``centroids`` and ``bias``; pruned weights
        and slot 0 stay exactly zero.
    """
    from eie.compress.sparsifier import WeightSharer  # built on this module, hence imported here

    if epochs == 0:
        return list(layers)
    model = shared_module(layers)
    sharer = WeightSharer()
    sharer.prepare(model, shared=layers)
    train_epochs(model, data, epochs, lr, seed=seed)
    return sharer.finalize(relus=[layer.relu for layer in layers], names=[layer.name for layer in layers])
