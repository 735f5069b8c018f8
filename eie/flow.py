"""End-to-end flows: model → images → golden model → RTL, behind the ``eie`` command and the API.

The flows do the work and return results (:class:`CompressOutcome`, :class:`GoldenRun`,
:class:`RtlRun`); :mod:`eie.report` turns them into tables or JSON. Progress goes to a ``log``
callback (one line per call), so the same steps run from the CLI, from Python and from tests.

How much to prune (:func:`compress`)
-------------------------------------
- ``densities`` (one per layer) or ``target_density`` (a fraction of all weights): as asked.
- ``keep_sparsity``: nothing is pruned; the model's own sparsity is kept and only the weights are
  shared. The default when the model is already sparse (``weight_mask`` buffers,
  parametrizations or exact zeros) and no density is given.
- Otherwise the **accuracy-driven search**: the highest compression whose golden model — the
  fixed-point network decoded from its images, exactly what the hardware computes — stays within
  ``budget`` points of the input model on the test data. The candidates are overall densities
  (:data:`SEARCH_DENSITIES`, spread over the layers by sensitivity analysis, each pruned and
  retrained, weight-shared and calibrated); the search bisects them, assuming that more weights
  never score worse, and records every candidate it tried.

The test split does double duty in the search: it is the data on which the budget is checked, so
it acts as a validation set. Hold back a separate test set if you need an unbiased figure.

In every mode the final golden score is checked against the budget; a compression that loses
more raises :class:`BudgetError` with the numbers and writes nothing, unless ``allow_loss``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.errors import BudgetError, CompressError, InputError
from eie.spec.image import Images

__all__ = ["SEARCH_DENSITIES", "DEFAULT_BUDGET", "BudgetError", "Candidate", "CompressOutcome", "compress",
           "golden_scores", "update_report", "write_rtl", "run_rtl", "RtlRun", "verify_rtl", "run_synth",
           "train_digits_model"]

#: Overall densities (fractions of all weights) the accuracy-driven search chooses from.
SEARCH_DENSITIES = (0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.2,
                    0.25, 0.3, 0.4, 0.5, 0.7)
#: Points of the task's score the final golden model may lose against the input model.
DEFAULT_BUDGET = 0.5

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    """A log that drops its lines."""


@dataclass(frozen=True)
class Candidate:
    """One compression the search (or a fixed choice) evaluated.

    ``target_density`` is None for keep-sparsity (no pruning) and for explicit per-layer densities.
    Scores are percent (the task's metric); ``golden`` is the golden model's score on the test data.
    """

    target_density: float | None
    densities: tuple[float, ...]
    compression: float
    golden: float
    within_budget: bool
    fits: bool = True

    def to_dict(self) -> dict:
        return {"target_density": self.target_density, "densities": list(self.densities),
                "compression_ratio": round(self.compression, 3), "golden_score": round(self.golden, 4),
                "within_budget": self.within_budget, "fits": self.fits}


@dataclass
class CompressOutcome:
    """What :func:`compress` produced.

    Attributes
    ----------
    images : Images
        The verified images, loaded from ``path``.
    path : pathlib.Path
    pipeline : PipelineResult
    prepared : PreparedData
        The data as used (splits, task, calibration inputs).
    mode : str
        ``"search"``, ``"densities"``, ``"target-density"`` or ``"keep-sparsity"``.
    reason : str
        Why this compression was chosen, one sentence.
    candidates : list of Candidate
        Everything evaluated, in the order tried.
    budget : float
    golden_score, reference_score : float
        Scores (percent) of the golden model and of the float reference rebuilt from the images.
    test_inputs : numpy.ndarray
        Integer test inputs.
    golden_outputs : list of numpy.ndarray
        Every layer's golden outputs for them.
    chosen_target_density : float or None
        The overall density chosen (None: no pruning, or per-layer densities).
    output_error : dict
        The golden model's outputs against the input model's on the test inputs (``rms``,
        ``max_abs``), and for regression the mean squared error of both against the targets.
    report : dict
        The JSON-serialisable report, also written to ``path / "report.json"``.
    """

    images: Images
    path: Path
    pipeline: object
    prepared: object
    mode: str
    reason: str
    candidates: list[Candidate]
    budget: float
    golden_score: float
    reference_score: float
    test_inputs: np.ndarray
    golden_outputs: list
    chosen_target_density: float | None = None
    output_error: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """Points the golden model lost against the input model."""
        return self.pipeline.float_score - self.golden_score


# --- compression -------------------------------------------------------------------------------

@dataclass
class _Built:
    """One compressed network, calibrated and encoded in memory."""

    pipeline: object
    net: object
    reference: dict
    contents: dict
    images: Images
    golden: float


def golden_scores(images: Images, prepared) -> tuple[float, float, np.ndarray, list[np.ndarray]]:
    """Golden and float-reference scores of ``images`` on the test split of ``prepared``.

    Returns ``(golden score, reference score, integer test inputs, every layer's golden outputs)``.
    """
    from eie.sim.golden import golden_layers
    from eie.sim.reference import reference_forward_float
    from eie.spec.numerics import dequantize_output, quantize_input
    data = prepared.dataset
    x = data.x_test.numpy().astype(np.float64)
    xq = quantize_input(x, images.input_frac_bits, images.config.act_bits)
    layers = golden_layers(images, xq)
    golden = data.task.score(dequantize_output(layers[-1], images.output_frac_bits), data.y_test.numpy())
    reference = data.task.score(reference_forward_float(images, x), data.y_test.numpy())
    return golden, reference, xq, layers


def _source(options, spec, prepared) -> dict:
    return {"seed": options.seed, "granularity": options.granularity, "dsd": options.dsd,
            "balance_pes": options.balance_pes, "kmeans_init": options.kmeans_init,
            "model_kind": spec.kind, "flatten": bool(spec.flatten),
            "input_shape": list(prepared.input_shape), "task": prepared.task.kind}


def _pipeline_stats(result) -> dict:
    return {"metric": None, "float_score": result.float_score, "pruned_score": result.pruned_score,
            "kmeans_score": result.kmeans_score, "quantized_score": result.quantized_score,
            "densities": [float(d) for d in result.densities],
            "storage": [{k: (float(v) if isinstance(v, float) else v) for k, v in row.items()}
                        for row in result.storage.rows()],
            "compression_ratio": result.storage.ratio}


def _build(spec, prepared, options, config: EIEConfig, sensitivity=None, progress=None) -> _Built:
    from eie.compress.fixedpoint import calibrate
    from eie.compress.pipeline import run_pipeline
    from eie.spec.emit import build_images
    from eie.spec.image import images_from_bytes
    result = run_pipeline(spec, prepared.dataset, options, progress, sensitivity=sensitivity)
    net, reference = calibrate(result.shared_layers, prepared.calibration, config)
    stats = {**_pipeline_stats(result), "metric": prepared.task.metric}
    contents = build_images(net, config, source=_source(options, spec, prepared), stats=stats,
                            reference=reference)
    images = images_from_bytes(contents, expect_config=config)
    golden, _, _, _ = golden_scores(images, prepared)
    return _Built(result, net, reference, contents, images, golden)


def _search(spec, prepared, options, config, budget, log: Log, progress):
    """Bisect :data:`SEARCH_DENSITIES` for the sparsest candidate within the budget.

    Returns ``(chosen build, candidates tried, chosen index, targets)``; index ``len(targets)`` is
    weight sharing without pruning, which anchors the bisection; when it misses the budget the
    densest pruned candidate (pruned candidates are retrained, weight sharing alone is not) anchors
    it instead. Denser candidates that do not fit the SRAMs are skipped: the densest one that fits
    anchors the bisection. ``chosen`` is the anchor when no candidate meets the budget.
    """
    from eie.compress.pipeline import sensitivity_for
    from eie.compress.sensitivity import budget_for_density
    from eie.spec.errors import FitError
    live = sum(int(l.mask.sum()) if l.mask is not None else l.weight.size for l in spec.layers)
    total = sum(l.weight.size for l in spec.layers)
    targets = [t for t in SEARCH_DENSITIES if t < live / total]
    log(f"searching the highest compression within {budget:g} points of the input model's "
        f"{prepared.task.metric} ({len(targets) + 1} candidates, bisected)")
    sensitivity = sensitivity_for(spec, prepared.dataset, options)
    candidates: list[Candidate] = []
    built: dict[int, _Built | None] = {}

    same: dict[tuple, int] = {}             # per-layer densities -> the candidate that already has them

    def evaluate(i: int) -> _Built | None:
        if i in built:
            return built[i]
        target = targets[i] if i < len(targets) else None
        if target is not None:
            key = tuple(budget_for_density(sensitivity, target).densities)
            if key in same:                 # a coarser target gave the same layer densities: same result
                built[i] = built[same[key]]
                return built[i]
            same[key] = i
        opts = replace(options, target_density=target)
        try:
            b = _build(spec, prepared, opts, config, sensitivity if target is not None else None, progress)
        except FitError as e:
            candidates.append(Candidate(target, (), 0.0, 0.0, False, fits=False))
            log(f"  {_describe_target(targets, i)}: does not fit ({e})")
            built[i] = None
            return None
        loss = b.pipeline.float_score - b.golden
        candidates.append(Candidate(target, tuple(b.pipeline.densities), b.pipeline.storage.ratio, b.golden,
                                    loss <= budget))
        log(f"  {_describe_target(targets, i)}: compression {b.pipeline.storage.ratio:.1f}x, golden "
            f"{prepared.task.metric} {b.golden:.2f} % ({-loss:+.2f} points): "
            f"{'within' if loss <= budget else 'outside'} the budget")
        built[i] = b
        return b

    def ok(i: int) -> bool:
        b = evaluate(i)
        return b is not None and b.pipeline.float_score - b.golden <= budget

    anchor = len(targets)
    if evaluate(anchor) is None:            # bisect for the densest candidate that fits
        lo, hi = -1, anchor                 # evaluate(lo) fits (or lo == -1), evaluate(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if evaluate(mid) is not None else (lo, mid)
        if lo < 0:
            raise FitError(f"the model does not fit the configured SRAMs even at {targets[0]:.1%} of its "
                           f"weights; add PEs or raise the memory depths")
        anchor = lo
    if not ok(anchor) and anchor == len(targets) and targets:
        # Weight sharing alone misses the budget, but pruned candidates are retrained as well and
        # may not: the densest of them anchors the bisection instead.
        if ok(len(targets) - 1):
            anchor = len(targets) - 1
    if not ok(anchor):
        return built[anchor], candidates, anchor, targets
    lo, hi = -1, anchor                     # ok(hi); everything at or below lo fails
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return built[hi], candidates, hi, targets


def _describe_target(targets, i) -> str:
    return f"{targets[i]:.1%} of the weights" if i < len(targets) else "no pruning (weight sharing only)"


def compress(model, data=None, calib=None, *, config: EIEConfig, options=None, out=None,
             budget: float = DEFAULT_BUDGET, allow_loss: bool = False, keep_sparsity: bool | None = None,
             task: str | None = None, arch: str | None = None, board: str | None = None,
             board_pes: int | None = None, log: Log = _quiet, progress=None) -> CompressOutcome:
    """Compress ``model`` for ``config`` and write its images (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module, path-like or ModelSpec
        A model, a saved model file (whole module, state dict with ``arch``, or TorchScript), or
        an already read model.
    data, calib
        See :func:`eie.compress.data.prepare_data`.
    config : EIEConfig
    options : CompressOptions, optional
        Pruning, sharing and training options; its ``densities`` / ``target_density`` choose
        the mode. ``weight_bits`` and ``index_bits`` follow ``config``.
    out : path-like, optional
        Image directory to write; default a new temporary directory.
    budget : float
        Points of the task's score the golden model may lose against the input model.
    allow_loss : bool
        Keep a compression that loses more than ``budget`` instead of raising.
    keep_sparsity : bool, optional
        Do not prune, only share weights. Default: when the model is already sparse and no
        density is given.
    task : str, optional
        Overrides the task inferred from the data (see :mod:`eie.compress.task`).
    arch : str, optional
        ``module:Class`` or ``FILE.py:Class`` for state dicts and classes defined in ``__main__``.
    board : str, optional
        Size the configuration for this board's device (``constraints/NAME.toml``): the most PEs,
        small memories fitted to the model's layers and the deepest sparse-matrix memory the block RAMs
        allow; ``config`` gives the widths.
    board_pes : int, optional
        With ``board``: exactly this many PEs instead of the most that fit (a
        :class:`~eie.hw.fit.FitError` with the numbers when they do not).
    log : callable
        Receives one line of progress at a time.
    progress : callable, optional
        Pipeline progress callback (:func:`eie.compress.pipeline.rich_progress`).

    Returns
    -------
    CompressOutcome
        Or, for a model with an ``nn.LSTM``, the :class:`eie.lstm_flow.LSTMCompressOutcome` of
        :func:`eie.lstm_flow.compress_lstm` (ESE images).

    Raises
    ------
    EIEError
        Bad model, data, options or configuration (one line), :class:`BudgetError` when the
        result loses more than ``budget`` (nothing is written).
    """
    from eie.compress.data import prepare_data
    from eie.compress.model_io import ModelSpec, load_model, read_model, specs_to_module
    from eie.compress.pipeline import CompressOptions
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not budget >= 0:
        raise InputError(f"budget must be a non-negative number of points, not {budget!r}")
    options = options or CompressOptions()
    options = replace(options, weight_bits=config.weight_bits, index_bits=config.index_bits)
    if isinstance(model, str | os.PathLike):
        model = load_model(model, arch=arch)
    from eie.compress.lstm_io import is_recurrent
    if not isinstance(model, ModelSpec) and is_recurrent(model):     # an LSTM: the ESE flow
        from eie.lstm_flow import compress_lstm
        if board is not None:
            raise CompressError("--board sizes the EIE array of an MLP; give an LSTM's ESE array with the hardware "
                                "options (--pes, --mat-depth, ...)")
        return compress_lstm(model, data, calib, config=config, options=options, out=out, budget=budget,
                             allow_loss=allow_loss, keep_sparsity=keep_sparsity, task=task, log=log, progress=progress)
    from eie.spec.ese import ESEConfig
    if isinstance(config, ESEConfig):
        raise CompressError("an ESE configuration (with act_depth, nl_bits) is for an LSTM; this model is an MLP, "
                            "give an EIE configuration")
    spec = model if isinstance(model, ModelSpec) else read_model(model)
    for note in spec.notes:
        log(f"model: {note}")
    if board is not None:
        from eie.hw.boards import load_board
        from eie.hw.fit import plan, size_for_device
        device = load_board(board).device
        config = size_for_device(device, base=config, shape=[(l.n_in, l.n_out) for l in spec.layers],
                                 n_pe=board_pes)
        needs = plan(config, device).needs
        log(f"board {board}: {config.n_pe} PEs, {config.mat_depth} sparse-matrix words per PE; needs "
            + ", ".join(f"{k} {v[0]:,} of {v[1]:,}" for k, v in needs.items()))
        options = replace(options, weight_bits=config.weight_bits, index_bits=config.index_bits,
                          balance_pes=config.n_pe if options.balance_pes is not None else None)
    prepared = prepare_data(data, calib, teacher=specs_to_module(spec.layers), n_in=spec.n_in, n_out=spec.n_out,
                            flatten=spec.flatten, task=task, seed=options.seed)
    log(f"data: {prepared.description}")
    if keep_sparsity and options.prunes:
        raise CompressError("--keep-sparsity keeps the model's sparsity as it is; drop --density (or use "
                            "--no-keep-sparsity to prune further)")
    if keep_sparsity is None:
        keep_sparsity = spec.is_sparse and not options.prunes
        if keep_sparsity:
            live = sum(int(l.mask.sum()) for l in spec.layers if l.mask is not None)
            log(f"model: already sparse ({_density_note(spec)}, {live} live weights); keeping its sparsity and "
                f"sharing weights only (--no-keep-sparsity to prune further, --density to choose)")
    candidates: list[Candidate] = []
    chosen_target = options.target_density
    if options.prunes or keep_sparsity:
        mode = "keep-sparsity" if keep_sparsity else ("densities" if options.densities else "target-density")
        chosen = _build(spec, prepared, options, config, progress=progress)
        base = chosen.pipeline.float_score
        candidates.append(Candidate(options.target_density, tuple(chosen.pipeline.densities),
                                    chosen.pipeline.storage.ratio, chosen.golden, base - chosen.golden <= budget))
        if mode == "keep-sparsity":
            reason = "the model's own sparsity, weights shared"
        elif mode == "densities":
            reason = "per-layer densities as given"
        else:
            reason = f"{options.target_density:.2%} of the weights as given, spread by sensitivity"
    else:
        mode = "search"
        chosen, candidates, index, targets = _search(spec, prepared, options, config, budget, log, progress)
        chosen_target = targets[index] if index < len(targets) else None
        base = chosen.pipeline.float_score
        if base - chosen.golden <= budget:
            reason = (f"the sparsest candidate whose golden {prepared.task.metric} stays within {budget:g} points "
                      f"of the input model ({_describe_target(targets, index)})")
        else:
            reason = f"no candidate stays within the budget; the densest that fits ({_describe_target(targets, index)})"
    loss = base - chosen.golden
    if loss > budget and not allow_loss:
        raise BudgetError(f"the compressed model's golden {prepared.task.metric} is {chosen.golden:.2f} % against "
                          f"{base:.2f} % for the input model, {loss:.2f} points lost, more than the budget of "
                          f"{budget:g}; nothing was written (raise --budget, give --density, or --allow-loss to "
                          f"keep it)")
    golden, reference, xq, layers = golden_scores(chosen.images, prepared)
    outcome = CompressOutcome(images=chosen.images, path=Path(), pipeline=chosen.pipeline, prepared=prepared,
                              mode=mode, reason=reason, candidates=candidates, budget=budget, golden_score=golden,
                              reference_score=reference, test_inputs=xq, golden_outputs=layers,
                              chosen_target_density=chosen_target,
                              output_error=_output_error(spec, prepared, chosen.images, layers[-1]))
    from eie.report import compress_report
    outcome.report = compress_report(outcome, config)
    from eie.spec.emit import write_image_files
    from eie.spec.image import load_images
    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="eie-images-")) / "images"
    extra = {"report.json": (json.dumps(outcome.report, indent=2, sort_keys=True) + "\n").encode()}
    outcome.path = write_image_files(chosen.contents, config, target, extra=extra)
    outcome.images = load_images(outcome.path, expect_config=config)
    return outcome


def _output_error(spec, prepared, images, golden_out) -> dict:
    import torch

    from eie.compress.model_io import specs_to_module
    from eie.compress.train import predict
    from eie.spec.numerics import dequantize_output
    data = prepared.dataset
    ours = dequantize_output(golden_out, images.output_frac_bits)
    theirs = predict(specs_to_module(spec.layers, torch.float64), data.x_test.double()).numpy()
    error = {"rms": float(np.sqrt(np.mean((ours - theirs) ** 2))), "max_abs": float(np.abs(ours - theirs).max())}
    if data.task.kind == "regression":
        error["mse_input_model"] = data.task.mse(theirs, data.y_test.numpy())
        error["mse_golden"] = data.task.mse(ours, data.y_test.numpy())
    return error


def _density_note(spec) -> str:
    parts = [f"{l.name} {float(l.mask.mean()):.1%}" if l.mask is not None else f"{l.name} dense"
             for l in spec.layers]
    return "densities " + ", ".join(parts)


def update_report(images_dir, report: dict) -> None:
    """Replace ``report.json`` in an image directory atomically (e.g. after an RTL run)."""
    path = Path(images_dir) / "report.json"
    fd, tmp = tempfile.mkstemp(prefix=".report.", suffix=".json", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# --- RTL ---------------------------------------------------------------------------------------

def _atomic_dir(out: Path):
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise FileExistsError(f"{out} exists and was not written by eie rtl; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def write_rtl(config: EIEConfig, out, *, name="eie_top", images=None) -> Path:
    """Write ``<name>.v`` and ``config.json`` to ``out`` atomically; returns the Verilog path."""
    from eie.hw.generate import generate_verilog
    out = Path(out)
    tmp = _atomic_dir(out)
    try:
        (tmp / f"{name}.v").write_text(generate_verilog(config, images=images, name=name))
        (tmp / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / f"{name}.v"


@dataclass(frozen=True)
class RtlRun:
    """Golden model and RTL on the same inputs.

    ``golden`` holds every layer's golden outputs; ``outputs`` the RTL's last-layer outputs;
    ``sim`` the testbench's :class:`~eie.tb.sim_run.SimResult` (cycles per input and layer).
    """

    inputs: np.ndarray
    golden: list
    outputs: np.ndarray
    sim: object

    @property
    def mismatches(self) -> np.ndarray:
        """``(input, output row)`` of every output that differs from the golden model."""
        return np.argwhere(self.outputs != self.golden[-1])

    @property
    def bit_exact(self) -> bool:
        return self.mismatches.size == 0


def run_rtl(images: Images, x_int: np.ndarray, *, queue_depth=None) -> RtlRun:
    """Run integer inputs through the golden model and the generated RTL on Verilator."""
    from eie.sim.golden import golden_layers
    from eie.tb.sim_run import simulate
    config = images.config if queue_depth is None else images.config.replace(queue_depth=queue_depth)
    golden = golden_layers(images, x_int)
    sim = simulate(images, x_int, config=config)
    return RtlRun(np.asarray(x_int), golden, np.asarray(sim.outputs), sim)


def verify_rtl(images: Images, x_int: np.ndarray, *, queue_depth=None) -> RtlRun:
    """:func:`run_rtl`; check :attr:`RtlRun.bit_exact`."""
    return run_rtl(images, x_int, queue_depth=queue_depth)


def run_synth(config: EIEConfig, out) -> dict:
    """Yosys synthesis for ECP5; returns the cell counts (Yosys bookkeeping cells left out)."""
    from eie.hw.synth import synth_ecp5
    return {k: v for k, v in synth_ecp5(config, out).items() if not k.startswith("$")}


# --- the built-in default model ----------------------------------------------------------------

def train_digits_model(path: Path, *, retrain: bool, seed: int, log: Log = _quiet):
    """The default digits MLP: loaded from ``path`` if it exists (and not ``retrain``), else trained
    on the bundled digits and saved there atomically."""
    import torch

    from eie.compress.digits import load_digits_split, train_default_model
    from eie.compress.model_io import load_model
    if path.is_file() and not retrain:
        log(f"default model: loaded {path} (--retrain to train it again)")
        return load_model(path)
    model = train_default_model(seed, load_digits_split(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(model, tmp)
    os.replace(tmp, path)
    log(f"default model: trained the 64-300-100-10 digits MLP, saved {path}")
    return model
