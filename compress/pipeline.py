"""The whole Deep Compression flow on the float side: (DSD) → prune → share weights → fine-tune.

:func:`run_pipeline` takes a trained PyTorch model and a data set and returns the pruned,
weight-shared layers (:class:`~eie.compress.quantize.SharedLayer`: codebook indices, float centroids,
biases) that the fixed-point calibration turns into EIE images, together with the score after every
stage (the data's :class:`~eie.compress.task.Task`: accuracy, R² or agreement, in percent) and the
storage report.

How much is pruned is decided by the options:

- ``densities``: each layer's fraction of kept weights;
- ``target_density``: a fraction of all weights, spread over the layers by sensitivity analysis;
- neither: nothing is pruned; the model's own sparsity is kept (*keep sparsity*) and only the
  weights are shared.

Sparsity the model already has (``weight_mask`` buffers, parametrizations or exact zeros; see
:func:`~eie.compress.model_io.read_model`) is the set of live weights in every mode: pruning only
removes weights from it, retraining never revives one, and a density above a layer's live density
keeps exactly its live weights, never a zero.

Same model, data and options (seed included) give bit-identical results: the whole run is
single-threaded with deterministic algorithms (:func:`eie.compress.train.deterministic`), so it does
not depend on the machine's core count either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from eie.compress.dsd import DSDResult, run_dsd
from eie.compress.model_io import ModelSpec, read_model, specs_to_module
from eie.compress.prune import GRANULARITIES, group_shape, iterative_prune
from eie.compress.quantize import INITS, SharedLayer, finetune_centroids, quantize_layers, shared_module
from eie.compress.sensitivity import SensitivityResult, budget_for_density, sensitivity_analysis
from eie.compress.storage import StorageReport, storage_report
from eie.compress.train import Dataset, check_dataset, deterministic, evaluate
from eie.spec.errors import CompressError

__all__ = ["CompressOptions", "PipelineResult", "run_pipeline", "rich_progress", "make_options", "live_masks",
           "sensitivity_for"]

Progress = Callable[[str, int, int], None]


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise CompressError(message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class CompressOptions:
    """Options of :func:`run_pipeline`; validated on construction.

    Attributes
    ----------
    weight_bits : int
        ``b``: codebook index bits; ``2**b - 1`` shared weights per layer (EIE: 4).
    index_bits : int
        ``r``: relative row index bits of the storage report (EIE: 4).
    densities : tuple of float, optional
        Fraction of weights each layer keeps; a single value applies to every layer.
    target_density : float, optional
        Without ``densities``: the fraction of all weights to keep, spread over the layers by
        sensitivity analysis (every layer gets the same worst-case drop). Without either, nothing is
        pruned (the model's own sparsity is kept).
    granularity : {"fine", "vector", "block"}
    block_size : int
        ``k`` of ``vector`` (1×k) and ``block`` (k×k) pruning.
    balance_pes : int, optional
        Load-balance-aware pruning over this many PEs (ESE).
    prune_steps, retrain_epochs : int
        Prune → retrain iterations and epochs of retraining after each.
    lr, weight_decay : float
        Adam learning rate and L2 weight decay of retraining.
    kmeans_init : {"linear", "density", "random"}
    finetune_epochs : int
        Centroid fine-tuning epochs (0: none).
    finetune_lr : float
    dsd : bool
        Train with Dense → Sparse → Dense first and compress the result.
    dsd_sparsity : float
        Sparsity of DSD's sparse phase.
    dsd_epochs : int
        Epochs of each DSD phase.
    dsd_lr : float
        Learning rate of DSD's dense and sparse phases (the re-dense phase uses a tenth).
    ptr_bits : int, optional
        Column pointer width of the storage report (default: the fewest bits that hold it).
    seed : int
    """

    weight_bits: int = 4
    index_bits: int = 4
    densities: tuple[float, ...] | None = None
    target_density: float | None = None
    granularity: str = "fine"
    block_size: int = 4
    balance_pes: int | None = None
    prune_steps: int = 5
    retrain_epochs: int = 20
    lr: float = 5e-3
    weight_decay: float = 1e-3
    kmeans_init: str = "linear"
    finetune_epochs: int = 10
    finetune_lr: float = 1e-3
    dsd: bool = False
    dsd_sparsity: float = 0.5
    dsd_epochs: int = 20
    dsd_lr: float = 1e-3
    ptr_bits: int | None = None
    seed: int = 0

    def __post_init__(self):
        _need(_is_int(self.weight_bits) and 1 <= self.weight_bits <= 8,
              f"weight_bits must be an integer in 1..8, not {self.weight_bits!r}")
        _need(_is_int(self.index_bits) and 1 <= self.index_bits <= 8,
              f"index_bits must be an integer in 1..8, not {self.index_bits!r}")
        if self.densities is not None:
            object.__setattr__(self, "densities", tuple(float(d) for d in self.densities))
            bad = [d for d in self.densities if not 0.0 < d <= 1.0]
            _need(not bad and len(self.densities) > 0,
                  f"densities must be fractions in (0, 1], one per layer, not {list(self.densities)}")
        _need(self.target_density is None or 0.0 < self.target_density <= 1.0,
              f"target_density must be in (0, 1], not {self.target_density}")
        _need(self.densities is None or self.target_density is None,
              "give densities or target_density, not both")
        _need(self.granularity in GRANULARITIES,
              f"granularity must be one of {', '.join(GRANULARITIES)}, not {self.granularity!r}")
        _need(_is_int(self.block_size) and self.block_size >= 1,
              f"block_size must be a positive integer, not {self.block_size!r}")
        _need(self.balance_pes is None or (_is_int(self.balance_pes) and self.balance_pes >= 1),
              f"balance_pes must be a positive integer or None, not {self.balance_pes!r}")
        _need(_is_int(self.prune_steps) and self.prune_steps >= 1,
              f"prune_steps must be a positive integer, not {self.prune_steps!r}")
        for name in ("retrain_epochs", "finetune_epochs", "dsd_epochs"):
            value = getattr(self, name)
            _need(_is_int(value) and value >= 0, f"{name} must be a non-negative integer, not {value!r}")
        for name in ("lr", "finetune_lr", "dsd_lr"):
            _need(getattr(self, name) > 0, f"{name} must be positive, not {getattr(self, name)}")
        _need(self.weight_decay >= 0, f"weight_decay must be non-negative, not {self.weight_decay}")
        _need(self.kmeans_init in INITS,
              f"kmeans_init must be one of {', '.join(INITS)}, not {self.kmeans_init!r}")
        _need(0.0 < self.dsd_sparsity < 1.0, f"dsd_sparsity must be in (0, 1), not {self.dsd_sparsity}")
        _need(self.ptr_bits is None or (_is_int(self.ptr_bits) and self.ptr_bits >= 1),
              f"ptr_bits must be a positive integer or None, not {self.ptr_bits!r}")
        _need(_is_int(self.seed), f"seed must be an integer, not {self.seed!r}")

    @property
    def prunes(self) -> bool:
        """Whether the options ask for pruning (otherwise the model's sparsity is kept)."""
        return self.densities is not None or self.target_density is not None

    @property
    def group(self) -> tuple[int, int]:
        """Pruning block shape of the granularity."""
        return group_shape(self.granularity, self.block_size)


def make_options(config, *, densities=None, target_density=None, granularity="fine", block=None, balance=False,
                 kmeans_init="linear", dsd=False, seed=0, prune_steps=None, retrain_epochs=None,
                 finetune_epochs=None) -> CompressOptions:
    """:class:`CompressOptions` consistent with a hardware configuration (an ``EIEConfig``).

    ``densities`` may be a comma-separated string (the CLI's ``--density``) or a sequence; options
    left None keep their defaults. ``balance`` balances over the configuration's PEs.
    """
    kw = {}
    if isinstance(densities, str):
        try:
            densities = tuple(float(d) for d in densities.split(","))
        except ValueError:
            raise CompressError(f"--density takes comma-separated fractions such as 0.1,0.05,0.5, not "
                                f"{densities!r}") from None
    for name, value in (("densities", densities), ("target_density", target_density), ("block_size", block),
                        ("prune_steps", prune_steps), ("retrain_epochs", retrain_epochs),
                        ("finetune_epochs", finetune_epochs)):
        if value is not None:
            kw[name] = value
    return CompressOptions(weight_bits=config.weight_bits, index_bits=config.index_bits, granularity=granularity,
                           balance_pes=config.n_pe if balance else None, kmeans_init=kmeans_init, dsd=dsd,
                           seed=seed, **kw)


@dataclass
class PipelineResult:
    """Everything :func:`run_pipeline` produced.

    Attributes
    ----------
    shared_layers : list of SharedLayer
        The compressed network (input to ``compress.fixedpoint.calibrate``).
    masks : list of numpy.ndarray
        Boolean keep-mask of each layer.
    densities : list of float
        Target density of each layer (the live density where nothing was pruned).
    float_score : float
        Test score (%, the data's task) of the input model.
    pruned_score : float
        After pruning and retraining (float weights); the input model's when nothing was pruned.
    kmeans_score : float
        With shared weights, before centroid fine-tuning.
    quantized_score : float
        Float model with the final shared weights (:meth:`shared_model`).
    storage : StorageReport
    prune_step_scores : list of float
    dsd : DSDResult or None
    sensitivity : SensitivityResult or None
        When the densities were chosen by sensitivity analysis.
    options : CompressOptions
    model : ModelSpec
        The input model as read (layers, user masks, notes).
    """

    shared_layers: list[SharedLayer]
    masks: list[np.ndarray]
    densities: list[float]
    float_score: float
    pruned_score: float
    kmeans_score: float
    quantized_score: float
    storage: StorageReport
    prune_step_scores: list[float]
    dsd: DSDResult | None
    sensitivity: SensitivityResult | None
    options: CompressOptions
    model: ModelSpec

    @property
    def score_loss(self) -> float:
        """Points lost from the input model to the weight-shared model."""
        return self.float_score - self.quantized_score

    def shared_model(self, dtype: torch.dtype = torch.float32) -> nn.Module:
        """The float model with the shared weights ``centroids[index]``."""
        return shared_module(self.shared_layers, dtype)

    def layer_rows(self) -> list[dict]:
        """One dict per layer (name, shape, target and reached density, entries, codebook use)."""
        return [{"layer": layer.name, "shape": f"{layer.index.shape[1]}→{layer.index.shape[0]}",
                 "relu": layer.relu, "target density": target, "kept": stats.nnz,
                 "density": stats.density, "fillers": stats.fillers,
                 "shared weights": int(np.count_nonzero(np.unique(layer.index)))}
                for layer, target, stats in zip(self.shared_layers, self.densities, self.storage.layers,
                                                strict=True)]


def _silent(description: str, completed: int, total: int) -> None:
    """A progress callback that ignores progress."""


@contextmanager
def rich_progress(console=None) -> Iterator[Progress]:
    """A ``rich`` progress display; yields the callback to pass to :func:`run_pipeline`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(description: str, completed: int, total: int) -> None:
            if description not in tasks:
                tasks[description] = bar.add_task(description, total=total)
            bar.update(tasks[description], completed=completed, total=total)

        yield update


def live_masks(spec: ModelSpec) -> list[np.ndarray | None]:
    """Each layer's live weights: the user's mask, or None for a dense layer."""
    return [layer.mask for layer in spec.layers]


def sensitivity_for(model: nn.Module | ModelSpec, data: Dataset, options: CompressOptions) -> SensitivityResult:
    """Per-layer pruning sensitivity of the (read) model on the training data, with the live masks."""
    spec = model if isinstance(model, ModelSpec) else read_model(model)
    with deterministic(options.seed):
        return sensitivity_analysis(specs_to_module(spec.layers), data, budget=0.0,
                                    granularity=options.granularity, block_size=options.block_size,
                                    balance_pes=options.balance_pes, alive=live_masks(spec))


def _choose_densities(spec: ModelSpec, start: nn.Module, data: Dataset, options: CompressOptions,
                      sensitivity: SensitivityResult | None) -> tuple[list[float], SensitivityResult | None]:
    n_layers = len(spec.layers)
    if options.densities is not None:
        if len(options.densities) == 1:
            return list(options.densities) * n_layers, None
        _need(len(options.densities) == n_layers,
              f"{len(options.densities)} densities given but the model has {n_layers} layers; give one per "
              f"layer, or one for all")
        return list(options.densities), None
    if sensitivity is None:
        sensitivity = sensitivity_analysis(start, data, budget=0.0, granularity=options.granularity,
                                           block_size=options.block_size, balance_pes=options.balance_pes,
                                           alive=live_masks(spec))
    result = budget_for_density(sensitivity, options.target_density)
    return result.densities, result


def run_pipeline(model: nn.Module | ModelSpec, data: Dataset, options: CompressOptions | None = None,
                 progress: Progress | None = None, *,
                 sensitivity: SensitivityResult | None = None) -> PipelineResult:
    """Compress a trained fully-connected network with Deep Compression (and optionally DSD).

    Parameters
    ----------
    model : torch.nn.Module or ModelSpec
        A chain of Linear / ReLU layers (see :func:`eie.compress.model_io.read_model`), or the
        already read model.
    data : Dataset
        Training data (retraining, sensitivity, fine-tuning) and test data (reported scores).
    options : CompressOptions, optional
    progress : callable, optional
        ``progress(description, completed, total)``; see :func:`rich_progress`.
    sensitivity : SensitivityResult, optional
        A sensitivity analysis of the same model and data (:func:`sensitivity_for`) to reuse with
        ``target_density``.

    Returns
    -------
    PipelineResult

    Raises
    ------
    CompressError
        Unsupported model, data that does not fit it, or inconsistent options.
    """
    options = options or CompressOptions()
    spec = model if isinstance(model, ModelSpec) else read_model(model)
    with deterministic(options.seed):
        return _run(spec, data, options, progress or _silent, sensitivity)


def _run(spec: ModelSpec, data: Dataset, options: CompressOptions, report: Progress,
         sensitivity: SensitivityResult | None) -> PipelineResult:
    specs = list(spec.layers)
    check_dataset(data, specs[0].n_in, specs[-1].n_out)
    start = specs_to_module(specs)
    alive = live_masks(spec)
    float_score = evaluate(start, data)
    dsd = None
    if options.dsd:
        dsd = run_dsd(start, data, sparsity=options.dsd_sparsity, dense_epochs=options.dsd_epochs,
                      sparse_epochs=options.dsd_epochs, redense_epochs=options.dsd_epochs,
                      lr=options.dsd_lr, weight_decay=options.weight_decay, seed=options.seed,
                      progress=report, alive=alive)
        start = dsd.model
    if options.prunes:
        report("sensitivity analysis", 0, 1)
        densities, chosen = _choose_densities(spec, start, data, options, sensitivity if not options.dsd else None)
        report("sensitivity analysis", 1, 1)
        pruned = iterative_prune(start, data, densities, steps=options.prune_steps, epochs=options.retrain_epochs,
                                 lr=options.lr, granularity=options.granularity, block_size=options.block_size,
                                 balance_pes=options.balance_pes, weight_decay=options.weight_decay,
                                 seed=options.seed, progress=report, alive=alive)
        pruned_model, masks, step_scores = pruned.model, pruned.masks, pruned.step_accuracies
    else:
        chosen = None
        linears = [m for m in start.modules() if isinstance(m, nn.Linear)]
        masks = [(lin.weight.detach().numpy() != 0) & (True if m is None else np.asarray(m, dtype=bool))
                 for lin, m in zip(linears, alive, strict=True)]
        densities = [float(m.mean()) for m in masks]
        pruned_model, step_scores = start, []
    pruned_score = evaluate(pruned_model, data)
    report("weight sharing", 0, 1)
    shared = quantize_layers(pruned_model, masks, [s.relu for s in specs], [s.name for s in specs],
                             options.weight_bits, options.kmeans_init, options.seed)
    kmeans_score = evaluate(shared_module(shared), data)
    shared = finetune_centroids(shared, data, options.finetune_epochs, options.finetune_lr, options.seed)
    report("weight sharing", 1, 1)
    storage = storage_report(shared, index_bits=options.index_bits, group=options.group,
                             n_pe=options.balance_pes, ptr_bits=options.ptr_bits)
    return PipelineResult(
        shared_layers=shared, masks=masks, densities=densities, float_score=float_score,
        pruned_score=pruned_score, kmeans_score=kmeans_score,
        quantized_score=evaluate(shared_module(shared), data), storage=storage,
        prune_step_scores=step_scores, dsd=dsd, sensitivity=chosen, options=options, model=spec)
