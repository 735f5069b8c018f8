"""Pruning and weight sharing inside the user's own training loop (torchao's sparsifier lifecycle).

Two optimizer-like objects follow ``prepare`` → ``step`` → ``squash_mask`` / ``finalize``:

- :class:`MagnitudeSparsifier` attaches a ``torch.nn.utils.prune`` mask to every Linear layer;
  each :meth:`~MagnitudeSparsifier.step` moves one step along the cubic schedule and prunes by
  magnitude inside the current mask; the user trains between steps with any optimizer, and masked
  weights stay exactly zero.
- :class:`WeightSharer` clusters each Linear layer's live weights with k-means and makes its weight
  ``codebook[index]`` with the codebook as the trainable parameter, so the user's optimizer
  fine-tunes the shared values (Deep Compression's grouped gradients).

The built-in :func:`~eie.compress.prune.prune_once`, :func:`~eie.compress.prune.iterative_prune` and
:func:`~eie.compress.quantize.finetune_centroids` drive these same objects.

Both respect pruning the model already carries: the live set of a layer is its non-zero weights
(read through an attached ``weight_mask``) inside an optional ``alive`` mask
(:func:`~eie.compress.prune.live_masks`); nothing outside it is ever kept, revived or given a
non-zero code.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.utils.parametrize as parametrize
import torch.nn.utils.prune as torch_prune
from torch import nn

from eie.compress.model_io import extract_layers
from eie.compress.prune import (
    check_pruning_options,
    finalize,
    live_masks,
    prune_layer,
    step_densities,
    target_count,
)
from eie.compress.quantize import INITS, CodebookWeight, SharedLayer, quantize_layers, with_codebook
from eie.spec.errors import CompressError

__all__ = ["LAYER_OPTIONS", "MagnitudeSparsifier", "WeightSharer"]

LAYER_OPTIONS = ("density", "granularity", "block_size", "balance_pes", "norm")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _named_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """``(qualified name, layer)`` of every ``nn.Linear``, in :func:`eie.compress.train.linear_layers` order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"the model must be an nn.Module, not {type(model).__name__}")
    named = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not named:
        raise CompressError("the model has no nn.Linear layer; EIE compresses fully-connected networks")
    return named


@dataclass(frozen=True)
class _LayerPlan:
    """How one layer is pruned: its final density and the options of :func:`eie.compress.prune.prune_layer`."""

    density: float
    granularity: str
    block_size: int
    balance_pes: int | None
    norm: int

    def __post_init__(self):
        if not isinstance(self.density, numbers.Real) or isinstance(self.density, bool):
            raise TypeError(f"density must be a real number, not {self.density!r}")
        target_count(1, self.density)
        check_pruning_options(self.granularity, self.block_size, self.balance_pes, self.norm)


class MagnitudeSparsifier:
    """Magnitude pruning as an optimizer-like object for the user's own training loop.

    ``prepare`` attaches a ``torch.nn.utils.prune.custom_from_mask`` mask holding the live set to
    every ``nn.Linear`` (pruning the model already carries is kept); each ``step`` moves every
    configured layer one step along the cubic schedule of :func:`eie.compress.prune.step_densities`,
    from its live density to its target, and prunes by magnitude inside the current mask
    (:func:`eie.compress.prune.prune_layer`; the masks compose); ``squash_mask`` removes the
    parametrization and returns the masks. Between steps the model trains like any other: the
    parametrization keeps masked weights exactly zero whatever the optimizer does. Steps after the
    last one hold the final density.

    Parameters
    ----------
    densities : sequence of float, or mapping
        Final fraction of the weights to keep, of the whole layer: one per ``nn.Linear`` (in
        :func:`eie.compress.train.linear_layers` order), or a mapping from a Linear's qualified module name
        (``"0"``, ``"fc1"``, ``"encoder.proj"``) to a density or to a dict of per-layer options, keys
        among :data:`LAYER_OPTIONS` (``density`` required, the others default to the arguments below).
        Layers a mapping leaves out keep their live weights and are never pruned.
    granularity : {"fine", "vector", "block"}
    block_size : int
    balance_pes : int, optional
    norm : {1, 2}
        See :mod:`eie.compress.prune`.
    steps : int
        Pruning steps to reach the densities.

    Attributes
    ----------
    steps : int
    step_count : int
        Steps taken since :meth:`prepare`.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    CompressError
        An argument out of range.

    Examples
    --------
    Prune a model to 10% in four steps while training it with one's own loop::

        sparsifier = MagnitudeSparsifier([0.1, 0.1, 0.3], steps=4)
        sparsifier.prepare(model)          # keeps any pruning the model already has
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for epoch in range(8):
            if epoch % 2 == 0:
                sparsifier.step()
            for x, y in loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
        masks = sparsifier.squash_mask()   # plain Linear layers; pruned weights are exactly 0.0
    """

    def __init__(self, densities: Sequence[float] | Mapping[str, float | Mapping[str, object]], *,
                 granularity: str = "fine", block_size: int = 4, balance_pes: int | None = None, norm: int = 2,
                 steps: int = 1):
        defaults = {"granularity": granularity, "block_size": block_size, "balance_pes": balance_pes,
                    "norm": norm}
        check_pruning_options(**defaults)
        if not _is_int(steps):
            raise TypeError(f"the number of pruning steps must be an integer, not {steps!r}")
        if steps < 1:
            raise CompressError(f"the number of pruning steps must be a positive integer, not {steps!r}")
        if isinstance(densities, Mapping):
            self._plans: list[_LayerPlan] | dict[str, _LayerPlan] = {
                name: self._layer_plan(name, value, defaults) for name, value in densities.items()}
        elif isinstance(densities, Sequence | np.ndarray) and not isinstance(densities, str):
            self._plans = [_LayerPlan(density, **defaults) for density in densities]
        else:
            raise TypeError(f"densities must be a sequence of floats or a mapping from layer names to "
                            f"densities, not {type(densities).__name__}")
        self.steps = int(steps)
        self.step_count = 0
        self._model: nn.Module | None = None
        self._layers: list[nn.Linear] = []
        self._schedules: list[list[float] | None] = []
        self._layer_plans: list[_LayerPlan | None] = []

    @staticmethod
    def _layer_plan(name, value, defaults: dict) -> _LayerPlan:
        if not isinstance(name, str):
            raise TypeError(f"layer names must be strings, not {name!r}")
        if isinstance(value, Mapping):
            unknown = [key for key in value if key not in LAYER_OPTIONS]
            if unknown:
                raise CompressError(f"layer {name!r}: unknown option {unknown[0]!r}; use "
                                    f"{', '.join(LAYER_OPTIONS)}")
            if "density" not in value:
                raise CompressError(f"layer {name!r}: the options must include a density")
            return _LayerPlan(**{**defaults, **value})
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return _LayerPlan(value, **defaults)
        raise TypeError(f"layer {name!r}: give a density or a dict of options, not {value!r}")

    def _resolve(self, named: list[tuple[str, nn.Linear]]) -> list[_LayerPlan | None]:
        """The plan of every Linear layer (None: not pruned)."""
        if isinstance(self._plans, dict):
            names = [name for name, _ in named]
            for name in self._plans:
                if name not in names:
                    raise CompressError(f"the model has no nn.Linear named {name!r}; its Linear layers are "
                                        f"{', '.join(repr(n) for n in names)}")
            return [self._plans.get(name) for name in names]
        if len(self._plans) != len(named):
            raise CompressError(f"{len(self._plans)} densities given for {len(named)} layers; give one per layer")
        return list(self._plans)

    def _check_prepared(self) -> nn.Module:
        if self._model is None:
            raise CompressError("the sparsifier is not prepared; call prepare(model) first")
        return self._model

    def prepare(self, model: nn.Module, alive: Sequence[np.ndarray | None] | None = None) -> None:
        """Attach a mask holding its live set to every Linear layer of ``model`` (in place).

        Parameters
        ----------
        model : torch.nn.Module
            May carry ``torch.nn.utils.prune`` masks or exact zeros: both are kept pruned.
        alive : sequence of (numpy.ndarray or None), optional
            The user's masks, one boolean ``(out, in)`` per Linear layer (None = dense); see
            :func:`eie.compress.prune.live_masks`.

        Raises
        ------
        CompressError
            Already prepared, densities that do not match the layers, or bad ``alive`` masks.
        """
        if self._model is not None:
            raise CompressError("the sparsifier is already prepared; call squash_mask() before preparing again")
        named = _named_linears(model)
        plans = self._resolve(named)
        live = live_masks(model, alive)
        self._schedules = [
            None if plan is None else step_densities(plan.density, self.steps, start=float(mask.mean()))
            for plan, mask in zip(plans, live, strict=True)]
        for (_, layer), mask in zip(named, live, strict=True):
            torch_prune.custom_from_mask(layer, "weight", torch.as_tensor(mask))
        self._model, self._layers, self._layer_plans, self.step_count = model, [m for _, m in named], plans, 0

    def step(self) -> None:
        """Prune every configured layer to its next density of the schedule (in place).

        Raises
        ------
        CompressError
            Not prepared.
        """
        self._check_prepared()
        self.step_count += 1
        for layer, plan, schedule in zip(self._layers, self._layer_plans, self._schedules, strict=True):
            if plan is not None:
                prune_layer(layer, schedule[min(self.step_count, self.steps) - 1], granularity=plan.granularity,
                            block_size=plan.block_size, balance_pes=plan.balance_pes, norm=plan.norm)

    @property
    def masks(self) -> list[np.ndarray]:
        """The current boolean ``(out, in)`` mask of every Linear layer."""
        self._check_prepared()
        return [layer.weight_mask.detach().cpu().numpy() != 0 for layer in self._layers]

    def squash_mask(self) -> list[np.ndarray]:
        """Remove the masks' parametrization (in place) and return the masks.

        Returns
        -------
        list of numpy.ndarray
            Boolean ``(out, in)`` per Linear layer (:func:`eie.compress.prune.finalize`); the pruned
            weights of the now plain layers are exactly ``0.0``.
        """
        masks = finalize(self._check_prepared())
        self._model, self._layers, self._layer_plans, self._schedules = None, [], [], []
        return masks

    finalize = squash_mask


class WeightSharer:
    """Deep Compression's weight sharing as an optimizer-like object for the user's own training loop.

    ``prepare`` clusters the live weights of every ``nn.Linear`` with k-means
    (:func:`eie.compress.quantize.quantize_layers`) and registers a ``torch.nn.utils.parametrize``
    parametrization, :class:`eie.compress.quantize.CodebookWeight`, that makes ``layer.weight`` the
    computed ``codebook[index]``. The codebook replaces the weight as the layer's parameter
    (``layer.parametrizations.weight.original``, the same ``Parameter`` object, now of ``2**b``
    values), so an optimizer over ``model.parameters()`` created after ``prepare`` trains the
    codebook and the bias only. Its gradient is the sum of the gradients of the weights that share a
    value; slot 0 (the pruned weights) gets none, so with any optimizer that leaves a zero parameter
    with zero gradient at zero (SGD, Adam, AdamW, with or without weight decay) pruned weights stay
    exactly zero and the indices never change. ``finalize`` returns the
    :class:`~eie.compress.quantize.SharedLayer` list and makes the weights plain parameters again,
    holding ``centroids[index]``.

    Parameters
    ----------
    weight_bits : int
        ``b`` in 1..8: ``2**b - 1`` shared values per layer.
    init : {"linear", "density", "random"}
        k-means initialisation (:func:`eie.compress.quantize.init_centroids`).
    seed : int
        Seed of the ``random`` initialisation.

    Raises
    ------
    TypeError
        An argument of the wrong type.
    CompressError
        An argument out of range.

    Examples
    --------
    Fine-tune the shared values of a pruned model with one's own loop::

        sharer = WeightSharer(weight_bits=4)
        sharer.prepare(model)              # the model's zeros stay pruned
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)   # codebooks and biases
        for x, y in loader:
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        layers = sharer.finalize()         # list of SharedLayer; plain Linear weights again
    """

    def __init__(self, weight_bits: int = 4, init: str = "linear", seed: int = 0):
        if not _is_int(weight_bits):
            raise TypeError(f"weight_bits must be an integer, not {weight_bits!r}")
        if not 1 <= weight_bits <= 8:
            raise CompressError(f"weight_bits must be an integer in 1..8, not {weight_bits!r}")
        if not isinstance(init, str):
            raise TypeError(f"k-means initialisation must be a string, not {init!r}")
        if init not in INITS:
            raise CompressError(f"k-means initialisation must be one of {', '.join(INITS)}, not {init!r}")
        if not _is_int(seed):
            raise TypeError(f"seed must be an integer, not {seed!r}")
        if seed < 0:
            raise CompressError(f"seed must be a non-negative integer, not {seed!r}")
        self.weight_bits, self.init, self.seed = int(weight_bits), init, int(seed)
        self._model: nn.Module | None = None
        self._named: list[tuple[str, nn.Linear]] = []
        self._initial: list[SharedLayer] = []

    def prepare(self, model: nn.Module, masks: Sequence[np.ndarray | None] | None = None, *,
                shared: Sequence[SharedLayer] | None = None) -> None:
        """Share the weights of every Linear layer of ``model`` (in place).

        ``torch.nn.utils.prune`` masks the model carries are removed first (their pruned weights
        become exact zeros, which stay pruned).

        Parameters
        ----------
        model : torch.nn.Module
        masks : sequence of (numpy.ndarray or None), optional
            Boolean ``(out, in)`` per Linear layer: the weights to cluster, none of them zero
            (None = the layer's non-zero weights).
        shared : sequence of SharedLayer, optional
            Start from these indices and codebooks instead of clustering (one per Linear layer; the
            model's biases are kept).

        Raises
        ------
        CompressError
            Already prepared, masks or shared layers that do not match the layers, or a mask that
            keeps a zero weight.
        """
        if self._model is not None:
            raise CompressError("the weight sharer is already prepared; call finalize() before preparing again")
        named = _named_linears(model)
        if masks is not None and shared is not None:
            raise CompressError("give masks or shared layers, not both")
        given, what = (masks, "masks") if shared is None else (shared, "shared layers")
        given = [None] * len(named) if given is None else list(given)
        if len(given) != len(named):
            raise CompressError(f"{len(given)} {what} given for {len(named)} layers; give one per layer")
        for (name, layer), item in zip(named, given, strict=True):
            shape = None if item is None else np.shape(item.index if shared is not None else item)
            if shape is not None and shape != tuple(layer.weight.shape):
                raise CompressError(f"layer {name!r} has weights of shape {tuple(layer.weight.shape)} but its "
                                    f"{what[:-1]} has shape {shape}")
        live = finalize(model)
        if shared is None:     # relu flags and names are settled by finalize()
            shared = quantize_layers(model, [l if m is None else m for m, l in zip(given, live, strict=True)],
                                     [False] * len(named), [name for name, _ in named], self.weight_bits,
                                     self.init, self.seed)
        for (_, layer), start in zip(named, shared, strict=True):
            with torch.no_grad():
                layer.weight.copy_(torch.as_tensor(start.weight, dtype=layer.weight.dtype))
            parametrize.register_parametrization(layer, "weight", CodebookWeight(start.index, start.centroids.size),
                                                 unsafe=True)
        self._model, self._named, self._initial = model, named, list(shared)

    def finalize(self, *, relus: Sequence[bool] | None = None,
                 names: Sequence[str] | None = None) -> list[SharedLayer]:
        """Remove the parametrizations (in place) and return the weight-shared layers.

        Parameters
        ----------
        relus : sequence of bool, optional
            Whether ReLU follows each Linear layer; by default read from the model, which must then
            be a chain of Linear and ReLU layers (:func:`eie.compress.model_io.extract_layers`).
        names : sequence of str, optional
            Layer names; by default the qualified module names.

        Returns
        -------
        list of SharedLayer
            Trained codebooks (float32 values, nudged off zero as :mod:`eie.compress.quantize` describes)
            and biases; the layers' weights become plain parameters holding ``centroids[index]``.

        Raises
        ------
        CompressError
            Not prepared, or ``relus`` not given for a model that is not a chain.
        """
        if self._model is None:
            raise CompressError("the weight sharer is not prepared; call prepare(model) first")
        n = len(self._named)
        names = [name for name, _ in self._named] if names is None else list(names)
        if relus is None:
            specs = extract_layers(self._model)
            if [s.name for s in specs] != [name for name, _ in self._named]:
                raise CompressError("the model's Linear layers do not form one chain in registration order; "
                                    "pass relus= to finalize()")
            relus = [s.relu for s in specs]
        if len(relus) != n or len(names) != n:
            raise CompressError(f"{len(relus)} relus and {len(names)} names given for {n} layers; give one "
                                f"of each per layer")
        layers = []
        for (_, layer), start, relu, name in zip(self._named, self._initial, relus, names, strict=True):
            codebook = layer.parametrizations.weight.original.detach().cpu().to(torch.float64).numpy()
            bias = (np.zeros(start.index.shape[0]) if layer.bias is None
                    else layer.bias.detach().cpu().to(torch.float64).numpy().copy())
            tuned = replace(with_codebook(start, codebook, bias), relu=bool(relu), name=name)
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
            with torch.no_grad():
                layer.weight.copy_(torch.as_tensor(tuned.weight, dtype=layer.weight.dtype))
            layers.append(tuned)
        self._model, self._named, self._initial = None, [], []
        return layers
