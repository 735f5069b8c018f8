"""The LSTM flows (ESE): model → images → golden model → RTL, their reports and input checks.

:mod:`eie.flow` hands recurrent models here (``eie compress`` and :func:`eie.compress_model` treat an
LSTM like an MLP); the ``eie`` command's ``golden``, ``sim``, ``verify`` and ``rtl`` dispatch on the
image format; ``eie digits-lstm`` (what ``make sim`` runs after the MLP) is :func:`digits_lstm`.

How much to prune (:func:`compress_lstm`) follows the MLP's rules: ``densities`` (one for every
matrix, or one per matrix: gates, projection, head) or ``target_density`` as asked; the model's own
sparsity kept (``keep_sparsity``); otherwise the sparsest of :data:`SEARCH_DENSITIES` (one density for
every matrix) whose golden model stays within ``budget`` points of the input model, by bisection.
The result is checked against the budget in every mode (:class:`~eie.spec.errors.BudgetError`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.errors import BudgetError, CompressError, InputError
from eie.spec.ese import ESEConfig

__all__ = ["SEARCH_DENSITIES", "ese_config", "LSTMCandidate", "LSTMCompressOutcome", "compress_lstm",
           "golden_scores", "LSTMRtlRun", "run_lstm_rtl", "compress_report", "rtl_report", "golden_report",
           "print_compress_report", "print_rtl_report", "print_golden_report", "prepare_lstm_inputs",
           "train_digits_lstm", "digits_lstm", "digits_lstm_config", "DIGITS_BUDGET"]

#: Densities (fractions of every matrix's weights) the accuracy-driven search chooses from.
SEARCH_DENSITIES = (0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7)
#: The built-in digits LSTM's accuracy budget (the issue's target: at most one point lost).
DIGITS_BUDGET = 1.0

Log = Callable[[str], None]


def _quiet(line: str) -> None:
    """A log that drops its lines."""


def ese_config(config: EIEConfig) -> ESEConfig:
    """``config`` as an ESE configuration (an :class:`EIEConfig`'s fields kept, ESE defaults added)."""
    if isinstance(config, ESEConfig):
        return config
    if not isinstance(config, EIEConfig):
        raise TypeError(f"config must be an EIEConfig, not {config!r}")
    return ESEConfig(**config.to_dict())


@dataclass(frozen=True)
class LSTMCandidate:
    """One compression evaluated; ``density`` None means no pruning (weight sharing only)."""

    density: float | None
    densities: tuple[float, ...]
    compression: float
    gate_compression: float
    golden: float
    within_budget: bool
    fits: bool = True

    def to_dict(self) -> dict:
        return {"target_density": self.density, "densities": list(self.densities),
                "compression_ratio": round(self.compression, 3),
                "gate_compression_ratio": round(self.gate_compression, 3),
                "golden_score": round(self.golden, 4), "within_budget": self.within_budget, "fits": self.fits}


@dataclass
class LSTMCompressOutcome:
    """What :func:`compress_lstm` produced (as :class:`eie.flow.CompressOutcome` for an MLP).

    ``trace`` is the golden model's :class:`~eie.sim.lstm.LSTMTrace` on the integer test sequences
    ``test_inputs``; ``output_error`` the golden outputs against the float model the images encode
    (``vs_float``: fixed point and the table non-linearities) and against the input model.
    """

    images: object
    path: Path
    pipeline: object
    prepared: object
    mode: str
    reason: str
    candidates: list[LSTMCandidate]
    budget: float
    golden_score: float
    reference_score: float
    test_inputs: np.ndarray
    trace: object
    chosen_density: float | None = None
    output_error: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    @property
    def loss(self) -> float:
        return self.pipeline.float_score - self.golden_score


# --- compression -------------------------------------------------------------------------------

@dataclass
class _Built:
    pipeline: object
    contents: dict
    images: object
    golden: float


def golden_scores(images, prepared):
    """``(golden score, float-reference score, integer test sequences, golden trace, float reference
    outputs)`` of LSTM ``images`` on the test split of ``prepared``."""
    from eie.compress.lstm import _flat
    from eie.sim.lstm import float_lstm_from_images, run_lstm_golden
    from eie.spec.numerics import dequantize_output, quantize_input
    data = prepared.dataset
    x = data.x_test.numpy().astype(np.float64)
    xq = quantize_input(x, images.input_frac_bits, images.config.act_bits)
    trace = run_lstm_golden(images, xq)
    task = data.task
    import torch
    y = data.y_test

    def score(out):
        return task.score(*_flat(task, torch.as_tensor(out), y))

    ref = float_lstm_from_images(images, x)
    return (score(dequantize_output(trace.outputs, images.output_frac_bits)), score(ref), xq, trace, ref)


def _source(options, spec, prepared) -> dict:
    return {"seed": options.seed, "balance_pes": options.balance_pes, "kmeans_init": options.kmeans_init,
            "model_kind": "LSTM", "batch_first": bool(spec.batch_first), "input_shape": list(prepared.input_shape),
            "task": prepared.task.kind}


def _build(spec, prepared, options, config: ESEConfig) -> _Built:
    from eie.compress.lstm import calibrate_lstm, run_lstm_pipeline
    from eie.spec.ese_image import build_lstm_images, lstm_images_from_bytes
    result = run_lstm_pipeline(spec, prepared.dataset, options)
    net, reference = calibrate_lstm(result.shared, prepared.calibration, config)
    stats = {"float_score": result.float_score, "pruned_score": result.pruned_score,
             "kmeans_score": result.kmeans_score, "quantized_score": result.quantized_score,
             "densities": [float(d) for d in result.densities], "compression_ratio": result.storage.ratio,
             "gate_compression_ratio": result.gate_storage.ratio, "metric": prepared.task.metric}
    contents = build_lstm_images(net, config, source=_source(options, spec, prepared), stats=stats, reference=reference)
    images = lstm_images_from_bytes(contents, expect_config=config)
    golden, _, _, _, _ = golden_scores(images, prepared)
    return _Built(result, contents, images, golden)


def compress_lstm(model, data=None, calib=None, *, config: EIEConfig, options=None, out=None,
                  budget: float = 0.5, allow_loss: bool = False, keep_sparsity: bool | None = None,
                  task: str | None = None, log: Log = _quiet, progress=None) -> LSTMCompressOutcome:
    """Compress an LSTM model for an ESE array and write its images (see the module docstring).

    ``config`` may be an :class:`EIEConfig` (its fields are kept; see :func:`ese_config`). The other
    parameters are those of :func:`eie.flow.compress`.

    Raises
    ------
    EIEError
        One line: an unsupported model (the variant and what is supported), bad data or options, a
        model that does not fit, or :class:`BudgetError`.
    """
    from eie.compress.lstm_data import prepare_sequences
    from eie.compress.lstm_io import read_lstm_model
    from eie.compress.pipeline import CompressOptions
    from eie.spec.emit import write_image_files
    from eie.spec.ese_image import load_lstm_images
    config = ese_config(config)
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not budget >= 0:
        raise InputError(f"budget must be a non-negative number of points, not {budget!r}")
    options = replace(options or CompressOptions(), weight_bits=config.weight_bits, index_bits=config.index_bits)
    spec = read_lstm_model(model)
    for note in spec.notes:
        log(f"model: {note}")
    prepared = prepare_sequences(data, calib, spec=spec, model=model, task=task, seed=options.seed)
    log(f"data: {prepared.description}")
    if keep_sparsity and options.prunes:
        raise CompressError("--keep-sparsity keeps the model's sparsity as it is; drop --density (or use "
                            "--no-keep-sparsity to prune further)")
    if keep_sparsity is None:
        keep_sparsity = spec.is_sparse and not options.prunes
        if keep_sparsity:
            log("model: already sparse; keeping its sparsity and sharing weights only (--no-keep-sparsity to prune "
                "further, --density to choose)")
    candidates: list[LSTMCandidate] = []
    if options.prunes or keep_sparsity:
        mode = "keep-sparsity" if keep_sparsity else ("densities" if options.densities else "target-density")
        chosen = _build(spec, prepared, options, config)
        candidates.append(_candidate(options.target_density, chosen, budget))
        if mode == "target-density":
            reason = f"{options.target_density:.2%} of every matrix's weights as given"
        else:
            reason = "the model's own sparsity, weights shared" if keep_sparsity else "densities as given"
        chosen_density = options.target_density
    else:
        mode = "search"
        chosen, candidates, chosen_density = _search(spec, prepared, options, config, budget, log)
        within = chosen.pipeline.float_score - chosen.golden <= budget
        what = "no pruning (weight sharing only)" if chosen_density is None else \
            f"{chosen_density:.1%} of every matrix's weights"
        reason = (f"the sparsest candidate whose golden {prepared.task.metric} stays within {budget:g} points of the "
                  f"input model ({what})") if within else f"no candidate stays within the budget; the densest ({what})"
    loss = chosen.pipeline.float_score - chosen.golden
    if loss > budget and not allow_loss:
        raise BudgetError(f"the compressed LSTM's golden {prepared.task.metric} is {chosen.golden:.2f} % against "
                          f"{chosen.pipeline.float_score:.2f} % for the input model, {loss:.2f} points lost, more than "
                          f"the budget of {budget:g}; nothing was written (raise --budget, give --density, or "
                          f"--allow-loss to keep it)")
    golden, reference, xq, trace, ref_out = golden_scores(chosen.images, prepared)
    outcome = LSTMCompressOutcome(images=chosen.images, path=Path(), pipeline=chosen.pipeline, prepared=prepared,
                                  mode=mode, reason=reason, candidates=candidates, budget=budget, golden_score=golden,
                                  reference_score=reference, test_inputs=xq, trace=trace, chosen_density=chosen_density,
                                  output_error=_output_error(model, spec, prepared, chosen.images, trace, ref_out))
    outcome.report = compress_report(outcome, config)
    target = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="ese-images-")) / "images"
    extra = {"report.json": (json.dumps(outcome.report, indent=2, sort_keys=True) + "\n").encode()}
    outcome.path = write_image_files(chosen.contents, config, target, extra=extra, loader=load_lstm_images)
    outcome.images = load_lstm_images(outcome.path, expect_config=config)
    return outcome


def _candidate(density, built: _Built, budget: float, fits: bool = True) -> LSTMCandidate:
    p = built.pipeline
    return LSTMCandidate(density, tuple(p.densities), p.storage.ratio, p.gate_storage.ratio, built.golden,
                         p.float_score - built.golden <= budget, fits)


def _search(spec, prepared, options, config, budget, log: Log):
    """Bisect :data:`SEARCH_DENSITIES` (more weights never scoring worse) for the sparsest candidate
    within the budget; weight sharing without pruning anchors it, or the densest pruned candidate
    when sharing alone misses the budget (pruned candidates are retrained)."""
    from eie.spec.errors import FitError
    live = float(np.mean(spec.gate_mask)) if spec.gate_mask is not None else 1.0
    targets = [d for d in SEARCH_DENSITIES if d < live]
    log(f"searching the highest compression within {budget:g} points of the input model's {prepared.task.metric} "
        f"({len(targets) + 1} candidates, bisected)")
    built: dict[int, _Built | None] = {}
    candidates: list[LSTMCandidate] = []

    def evaluate(i: int) -> _Built | None:
        if i not in built:
            density = targets[i] if i < len(targets) else None
            opts = replace(options, densities=None, target_density=density)
            what = "no pruning (weight sharing only)" if density is None else f"{density:.1%} of the weights"
            try:
                b = _build(spec, prepared, opts, config)
            except FitError as e:
                candidates.append(LSTMCandidate(density, (), 0.0, 0.0, 0.0, False, fits=False))
                log(f"  {what}: does not fit ({e})")
                built[i] = None
                return None
            candidates.append(_candidate(density, b, budget))
            loss = b.pipeline.float_score - b.golden
            log(f"  {what}: gate matrices {b.pipeline.gate_storage.ratio:.1f}x smaller, golden {prepared.task.metric} "
                f"{b.golden:.2f} % ({-loss:+.2f} points): {'within' if loss <= budget else 'outside'} the budget")
            built[i] = b
        return built[i]

    def ok(i: int) -> bool:
        b = evaluate(i)
        return b is not None and b.pipeline.float_score - b.golden <= budget

    anchor = len(targets)
    if not ok(anchor) and targets and ok(len(targets) - 1):
        anchor = len(targets) - 1
    if not ok(anchor):
        if built.get(anchor) is None:
            raise FitError("the LSTM does not fit the configured SRAMs; add PEs or raise the memory depths")
        return built[anchor], candidates, targets[anchor] if anchor < len(targets) else None
    lo, hi = -1, anchor
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return built[hi], candidates, targets[hi] if hi < len(targets) else None


def _output_error(model, spec, prepared, images, trace, ref_out) -> dict:
    import torch

    from eie.compress.lstm_io import lstm_forward
    from eie.spec.numerics import dequantize_output
    ours = dequantize_output(trace.outputs, images.output_frac_bits)
    theirs = lstm_forward(model, spec, prepared.dataset.x_test).to(torch.float64).numpy() \
        if isinstance(model, torch.nn.Module) else ref_out
    return {"rms_vs_float": float(np.sqrt(np.mean((ours - ref_out) ** 2))),
            "max_abs_vs_float": float(np.abs(ours - ref_out).max()),
            "rms": float(np.sqrt(np.mean((ours - theirs) ** 2))), "max_abs": float(np.abs(ours - theirs).max())}


# --- RTL ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LSTMRtlRun:
    """Golden model and ESE RTL on the same integer sequences; ``sim`` the testbench's result."""

    inputs: np.ndarray
    trace: object
    outputs: np.ndarray
    sim: object
    overlap: bool = True

    @property
    def mismatches(self) -> np.ndarray:
        diff = (self.outputs != self.trace.outputs).reshape(self.outputs.shape[0], -1)
        return np.argwhere(diff)

    @property
    def bit_exact(self) -> bool:
        return self.mismatches.size == 0


def run_lstm_rtl(images, x_int, *, queue_depth=None, overlap: bool = True) -> LSTMRtlRun:
    """Integer sequences through the golden model and the generated ESE RTL on Verilator."""
    from eie.sim.lstm import check_sequences, run_lstm_golden
    from eie.tb.ese_run import simulate_lstm
    x = check_sequences(x_int, images)
    if x.shape[1] > images.max_steps:
        raise InputError(f"sequences of {x.shape[1]} steps do not fit the activation store, which holds "
                         f"{images.max_steps}; raise act_depth and re-run eie compress")
    config = images.config if queue_depth is None else images.config.replace(queue_depth=queue_depth)
    trace = run_lstm_golden(images, x)
    sim = simulate_lstm(images, x, config=config, overlap=overlap)
    return LSTMRtlRun(x, trace, np.asarray(sim.outputs), sim, overlap)


# --- reports -------------------------------------------------------------------------------------

def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def _storage_rows(report) -> list[dict]:
    return [{"stage": row["stage"], "weights": _r(row["weights"] / 8, 3), "indices": _r(row["indices"] / 8, 3),
             "pointers": _r(row["pointers"] / 8, 3), "codebooks": _r(row["codebooks"] / 8, 3),
             "huffman_tables": _r(row["huffman tables"] / 8, 3), "biases": _r(row["biases"] / 8, 3),
             "total": _r(row["bytes"], 3), "ratio": _r(row["ratio"])} for row in report.rows()]


def compress_report(outcome: LSTMCompressOutcome, config: ESEConfig) -> dict:
    """The JSON report of an LSTM compression (the MLP report's fields, plus the gate matrices' storage
    and load balance)."""
    from eie.compress.lstm import pe_balance
    r = outcome.pipeline
    spec = r.model
    images = outcome.images
    info = images.lstm
    manifest_layers = images.manifest["layers"]
    rows = [manifest_layers[0]] + manifest_layers[2:]       # gates (both halves below), projection, head
    matrices = []
    for k, (shared, density) in enumerate(zip(r.shared.matrices(), r.densities, strict=True)):
        if k == 0:
            entries = [a + b for a, b in zip(manifest_layers[0]["entries_per_pe"], manifest_layers[1]["entries_per_pe"],
                                             strict=True)]
            shift = manifest_layers[0]["shift"]
            balance = pe_balance(shared.index, spec.hidden_size, config.n_pe)
        else:
            entries = rows[k]["entries_per_pe"]
            shift = rows[k]["shift"]
            balance = float(np.mean(entries) / max(1, max(entries)))
        matrices.append({"name": shared.name, "n_in": int(shared.index.shape[1]), "n_out": int(shared.index.shape[0]),
                         "target_density": _r(density), "density": _r(shared.nnz / shared.index.size),
                         "kept": int(shared.nnz), "shared_weights": int(np.count_nonzero(np.unique(shared.index))),
                         "shift": int(shift), "entries_per_pe_max": int(max(entries)),
                         "pe_balance": _r(balance)})
    data = outcome.prepared.dataset
    return {
        "report_version": 1,
        "kind": "lstm",
        "model": {"kind": "LSTM", "description": spec.describe(), "input_size": spec.input_size,
                  "hidden_size": spec.hidden_size, "proj_size": spec.proj_size, "every_step": spec.every_step,
                  "batch_first": spec.batch_first, "n_out": spec.n_out, "sparse": bool(spec.is_sparse),
                  "notes": list(spec.notes), "input_shape": list(outcome.prepared.input_shape)},
        "data": {"description": outcome.prepared.description, "task": data.task.kind, "metric": data.task.metric,
                 "n_train": int(data.x_train.shape[0]), "n_test": int(data.x_test.shape[0])},
        "config": {**config.to_dict(), "hash": config.config_hash()},
        "choice": {"mode": outcome.mode, "reason": outcome.reason, "budget_points": outcome.budget,
                   "chosen_target_density": outcome.chosen_density,
                   "candidates": [c.to_dict() for c in outcome.candidates]},
        "options": {"seed": r.options.seed, "balance_pes": r.options.balance_pes, "kmeans_init": r.options.kmeans_init,
                    "prune_steps": r.options.prune_steps, "retrain_epochs": r.options.retrain_epochs,
                    "finetune_epochs": r.options.finetune_epochs},
        "score_unit": "percent",
        "scores": {"float": _r(r.float_score), "pruned": _r(r.pruned_score), "weight_shared": _r(r.kmeans_score),
                   "fine_tuned": _r(r.quantized_score), "reference_from_images": _r(outcome.reference_score),
                   "golden": _r(outcome.golden_score)},
        "loss_points": _r(r.float_score - outcome.golden_score),
        "golden_vs_input_model": {k: _r(v, 6) for k, v in outcome.output_error.items()},
        "matrices": matrices,
        "storage_bytes": _storage_rows(r.storage),
        "gate_storage_bytes": _storage_rows(r.gate_storage),
        "compression_ratio": _r(r.storage.ratio),
        "gate_compression_ratio": _r(r.gate_storage.ratio),
        "images": {"format": "ese-images", "n_pe": int(config.n_pe), "config_hash": config.config_hash(),
                   "input_frac_bits": int(images.input_frac_bits), "output_frac_bits": int(images.output_frac_bits),
                   "h_shift": int(info.h_shift), "max_steps": int(images.max_steps),
                   "hex_bytes": sum(int(m["depth"]) * (-(-int(m["width"]) // 4) + 1)
                                    for m in images.manifest["files"].values())},
    }


def rtl_report(images, run: LSTMRtlRun) -> dict:
    """Bit-exactness, cycles per time step against the ideal, and the PEs' utilisation."""
    from eie.sim.lstm import step_work
    sim = run.sim
    n_pe = images.config.n_pe
    T = run.inputs.shape[1]
    work = step_work(images, run.inputs, run.trace)
    phases = sim.phases
    recurrent = ("x", "h", "gates", "proj")

    def mean_over(step, names):
        return float(np.mean([sum(p.get(step, {}).get(n, 0) for n in names) for p in phases]))

    per_step = []
    for t in range(T):
        cycles = mean_over(t, recurrent)
        per_step.append({"step": t, "cycles": _r(cycles, 2), "ideal": _r(work.ideal[t], 2),
                         "h_products": _r(mean_over(t, ("h",)), 2), "gates_writeback": _r(mean_over(t, ("gates",)), 2),
                         "busiest_pe_macs": _r(work.macs[t].max(), 2)})
    steady = [s for s in per_step if s["step"] > 0] or per_step
    cycles_step = float(np.mean([s["cycles"] for s in steady]))
    ideal_step = float(np.mean([s["ideal"] for s in steady]))
    rec_cycles = sum(s["cycles"] for s in per_step)
    h_cycles = sum(mean_over(t, ("h",)) for t in range(1, T))
    h_macs = float(work.h_macs[1:].sum()) if T > 1 else 0.0
    total = np.asarray(sim.cycles)
    bad = run.mismatches
    report = {
        "inputs": int(total.size), "outputs": int(run.outputs.size), "bit_exact": bool(run.bit_exact),
        "mismatches": int(bad.shape[0]), "n_pe": int(n_pe), "steps": int(T),
        "schedule": "overlapped" if run.overlap else "serial",
        "cycles_per_sequence": {"mean": _r(total.mean(), 2), "min": int(total.min()), "max": int(total.max()),
                                "head_and_output": _r(np.mean([sum(p.get(t, {}).get(n, 0) for t in p
                                                                   for n in ("head", "output")) for p in phases]), 2)},
        "cycles_per_step": _r(cycles_step, 2),
        "ideal_per_step": _r(ideal_step, 2),
        "ideal_over_cycles": _r(ideal_step / cycles_step) if cycles_step else 1.0,
        "per_step": per_step,
        "utilisation": {
            "gate_balance": _r(work.balance("all")),
            "h_balance": _r(work.balance("h")),
            "mac_recurrent": _r(float(work.macs.sum()) / (n_pe * rec_cycles)) if rec_cycles else 0.0,
            "mac_h_products": _r(h_macs / (n_pe * h_cycles)) if h_cycles else 0.0,
        },
    }
    if bad.size:
        b, row = (int(v) for v in bad[0])
        flat_rtl, flat_gold = run.outputs.reshape(run.outputs.shape[0], -1), run.trace.outputs.reshape(
            run.outputs.shape[0], -1)
        report["first_mismatch"] = {"input": b, "output": row, "golden": int(flat_gold[b, row]),
                                    "rtl": int(flat_rtl[b, row])}
    return report


def golden_report(images, x_float, y_int, labels=None) -> dict:
    """The golden model (from the images) next to the float model they encode, on float sequences."""
    from eie.sim.lstm import float_lstm_from_images
    from eie.spec.numerics import dequantize_output
    y = dequantize_output(y_int, images.output_frac_bits)
    ref = float_lstm_from_images(images, x_float)
    flat_y, flat_r = y.reshape(-1, y.shape[-1]), ref.reshape(-1, ref.shape[-1])
    out = {"inputs": int(y.shape[0]), "score_unit": "percent",
           "argmax_agreement": _r(100.0 * float(np.mean(flat_y.argmax(1) == flat_r.argmax(1)))),
           "max_abs_diff": float(np.abs(y - ref).max()), "rms_diff": float(np.sqrt(np.mean((y - ref) ** 2)))}
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        out["golden_accuracy"] = _r(100.0 * float(np.mean(flat_y.argmax(1) == lab)))
        out["float_accuracy"] = _r(100.0 * float(np.mean(flat_r.argmax(1) == lab)))
    return out


def print_compress_report(report: dict, console) -> None:
    """Scores per stage, the choice, the matrices and storage (the whole model and the gate matrices)."""
    from rich.table import Table
    metric = report["data"]["metric"]
    float_score = report["scores"]["float"]
    console.print(f"model: {report['model']['description']}")
    acc = Table(title=f"test {metric}")
    for col, justify in (("model", "left"), (metric, "right"), ("vs input model", "right")):
        acc.add_column(col, justify=justify)
    names = (("float", "float (input model)"), ("pruned", "pruned + retrained"),
             ("weight_shared", "weight-shared (k-means)"), ("fine_tuned", "weight-shared, centroids fine-tuned"),
             ("reference_from_images", "float reference from the images"),
             ("golden", f"golden model ({report['config']['act_bits']}-bit, table sigmoid/tanh)"))
    for key, name in names:
        acc.add_row(name, f"{report['scores'][key]:.2f} %", f"{report['scores'][key] - float_score:+.2f}")
    console.print(acc)
    choice = report["choice"]
    if len(choice["candidates"]) > 1:
        tried = Table(title=f"candidates tried (budget {choice['budget_points']:g} points)")
        for col in ("density", "gate matrices", "whole model", f"golden {metric}", "within budget"):
            tried.add_column(col, justify="right")
        for c in choice["candidates"]:
            tried.add_row("none (no pruning)" if c["target_density"] is None else f"{c['target_density']:.1%}",
                          f"{c['gate_compression_ratio']:.1f}x" if c["fits"] else "does not fit",
                          f"{c['compression_ratio']:.1f}x" if c["fits"] else "-",
                          f"{c['golden_score']:.2f} %" if c["fits"] else "-", "yes" if c["within_budget"] else "no")
        console.print(tried)
    console.print(f"chosen: {choice['reason']}")
    mats = Table(title="matrices (gates: [W_ih | W_hh] stacked)")
    for col in ("matrix", "shape", "density", "kept", "shared weights", "shift", "entries/PE (max)", "PE balance"):
        mats.add_column(col, justify="right")
    for m in report["matrices"]:
        mats.add_row(m["name"], f"{m['n_in']}→{m['n_out']}", f"{m['density']:.2%}", str(m["kept"]),
                     str(m["shared_weights"]), str(m["shift"]), str(m["entries_per_pe_max"]), f"{m['pe_balance']:.3f}")
    console.print(mats)
    for key, title in (("gate_storage_bytes", "gate matrices"), ("storage_bytes", "whole model")):
        storage = Table(title=f"storage in bytes, {title} (Deep Compression accounting, all index and pointer "
                              f"metadata)")
        for col in ("stage", "weights", "indices", "pointers", "codebooks", "huffman tables", "biases", "total",
                    "ratio"):
            storage.add_column(col, justify="right")
        for row in report[key]:
            storage.add_row(row["stage"], *(f"{row[k]:,.0f}" for k in ("weights", "indices", "pointers", "codebooks",
                                                                         "huffman_tables", "biases", "total")),
                            f"{row['ratio']:.1f}x")
        console.print(storage)
    e = report["golden_vs_input_model"]
    console.print(f"golden outputs against the float model of the images (fixed point, table sigmoid/tanh): RMS "
                  f"{e['rms_vs_float']:.4g}, largest {e['max_abs_vs_float']:.4g}; against the input model: RMS "
                  f"{e['rms']:.4g}, largest {e['max_abs']:.4g}")
    console.print(f"gate matrices {report['gate_compression_ratio']:.1f}x and the whole model "
                  f"{report['compression_ratio']:.1f}x smaller than fp32; golden {metric} "
                  f"{report['scores']['golden']:.2f} % against {float_score:.2f} % "
                  f"({-report['loss_points']:+.2f} points, budget {choice['budget_points']:g})")


def print_rtl_report(report: dict, console) -> None:
    from rich.table import Table
    if report["bit_exact"]:
        console.print(f"[green]bit-exact[/green]: {report['inputs']} sequences, {report['outputs']} outputs, RTL == "
                      f"golden model")
    else:
        m = report["first_mismatch"]
        console.print(f"[red]MISMATCH[/red]: {report['mismatches']} sequences differ; first: sequence {m['input']}, "
                      f"output {m['output']}: golden {m['golden']}, RTL {m['rtl']}")
    c = report["cycles_per_sequence"]
    u = report["utilisation"]
    console.print(f"RTL ({report['schedule']} schedule): {report['inputs']} sequences of {report['steps']} steps on "
                  f"{report['n_pe']} PEs, cycles per sequence: mean {c['mean']:.1f}, min {c['min']}, max {c['max']} "
                  f"(of which head and outputs {c['head_and_output']:.1f}); per time step "
                  f"{report['cycles_per_step']:.1f} against an ideal of {report['ideal_per_step']:.1f} (ideal/cycles "
                  f"{report['ideal_over_cycles']:.2f})")
    table = Table(title="cycles per time step (mean over sequences); ideal = h products + max(4U write-back rows, next "
                        "x products)")
    for col in ("step", "cycles", "ideal", "h products", "gates + element-wise", "busiest PE MACs"):
        table.add_column(col, justify="right")
    for s in report["per_step"]:
        table.add_row(str(s["step"]), f"{s['cycles']:.1f}", f"{s['ideal']:.1f}", f"{s['h_products']:.1f}",
                      f"{s['gates_writeback']:.1f}", f"{s['busiest_pe_macs']:.1f}")
    console.print(table)
    console.print(f"PE utilisation: gate-product load balance {u['gate_balance']:.3f} (recurrent part "
                  f"{u['h_balance']:.3f}); measured MAC utilisation {u['mac_h_products']:.3f} during the recurrent "
                  f"products, {u['mac_recurrent']:.3f} over the whole recurrence")


def print_golden_report(report: dict, console) -> None:
    from rich.table import Table
    table = Table(title="LSTM golden model (fixed point, table sigmoid/tanh) vs the float model of the images")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if "golden_accuracy" in report:
        table.add_row("float reference accuracy", f"{report['float_accuracy']:.2f} %")
        table.add_row("golden model accuracy", f"{report['golden_accuracy']:.2f} %")
    table.add_row("argmax agreement", f"{report['argmax_agreement']:.2f} %")
    table.add_row("RMS |golden - float|", f"{report['rms_diff']:.4g}")
    table.add_row("max |golden - float|", f"{report['max_abs_diff']:.4g}")
    console.print(table)


# --- inputs ------------------------------------------------------------------------------------

def prepare_lstm_inputs(images, x, *, raw: bool = False):
    """Check sequences for LSTM images and quantise them: :class:`eie.inputs.PreparedInputs` whose
    ``x_int`` is ``(batch, steps, I)``. One-line :class:`InputError` on a bad shape, dtype or value."""
    from eie.inputs import PreparedInputs
    from eie.spec.numerics import act_range, quantize_input
    x = np.asarray(x)
    I = images.lstm.input_size
    if x.dtype.kind not in "iuf":
        raise InputError(f"input has dtype {x.dtype}; give real numbers (float, or integers with --raw)")
    if x.ndim != 3 or x.shape[2] != I or x.shape[1] < 1:
        raise InputError(f"input has shape {x.shape} but the LSTM takes sequences (batch, steps, {I})")
    if x.shape[0] == 0:
        raise InputError(f"input is an empty batch (shape {x.shape}); give at least one sequence")
    lo, hi = act_range(images.config.act_bits)
    if raw:
        if x.dtype.kind not in "iu":
            raise InputError(f"--raw expects integer activations, not {x.dtype}; drop --raw to pass float inputs")
        if x.min() < lo or x.max() > hi:
            raise InputError(f"input activations must fit {images.config.act_bits}-bit signed ({lo}..{hi})")
        return PreparedInputs(x.astype(np.int64), None, 0)
    xf = x.astype(np.float64)
    if not np.all(np.isfinite(xf)):
        raise InputError("input contains NaN or infinite values")
    scaled = np.floor(np.ldexp(xf, images.input_frac_bits) + 0.5)
    saturated = int(np.count_nonzero((scaled < lo) | (scaled > hi)))
    return PreparedInputs(quantize_input(xf, images.input_frac_bits, images.config.act_bits), xf, saturated)


# --- the built-in digits LSTM ------------------------------------------------------------------

def digits_lstm_config(**overrides) -> ESEConfig:
    """The ESE array of the digits LSTM (8 PEs unless ``n_pe``), memories sized for it at any density;
    ``overrides`` (None values ignored) replace any field."""
    from eie.compress.digits_lstm import HIDDEN
    n = overrides.get("n_pe") or 8
    epw = overrides.get("entries_per_word") or 8

    def pow2(x: int) -> int:
        return 1 << max(0, int(x) - 1).bit_length()

    units = -(-HIDDEN // n)
    params = dict(n_pe=n, max_rows_per_pe=max(32, pow2(4 * units)),
                  mat_depth=pow2(-(-4 * HIDDEN * (8 + HIDDEN) // (n * epw)) + 64),
                  ptr_depth=256, bias_depth=pow2(8 * units + 10), act_depth=256, max_layers=6)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return ESEConfig(**params)


def train_digits_lstm(path: Path, *, retrain: bool, seed: int, log: Log = _quiet):
    """The default digits LSTM: loaded from ``path`` if it exists (and not ``retrain``), else trained and
    saved there atomically."""
    import torch

    from eie.compress.digits_lstm import load_digit_sequences, train_default_lstm
    from eie.compress.model_io import load_model
    if path.is_file() and not retrain:
        log(f"default LSTM: loaded {path} (--retrain to train it again)")
        return load_model(path)
    model = train_default_lstm(seed, load_digit_sequences(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(model, tmp)
    os.replace(tmp, path)
    log(f"default LSTM: trained nn.LSTM(8, 64) + Linear(64, 10) on the digits rows, saved {path}")
    return model


@dataclass
class DigitsLSTMRun:
    """The outcomes of :func:`digits_lstm`: load-balance-aware pruning and plain pruning at the same
    densities, and their RTL runs (None without RTL)."""

    balanced: LSTMCompressOutcome
    plain: LSTMCompressOutcome
    rtl_balanced: LSTMRtlRun | None
    rtl_plain: LSTMRtlRun | None
    report: dict


def digits_lstm(out: Path, config: EIEConfig, *, seed: int = 0, retrain: bool = False, with_rtl: bool = True,
                budget: float = DIGITS_BUDGET, options=None, log: Log = _quiet, progress=None) -> DigitsLSTMRun:
    """The built-in sequence flow: train (or load) the digits LSTM, compress it with load-balance-aware
    pruning (the sparsest within ``budget``), compress it with plain pruning at the same densities for
    ESE's comparison, and run all test sequences of both through the RTL."""
    from eie.compress.pipeline import make_options
    config = ese_config(config)
    model = train_digits_lstm(Path(out) / "model.pt", retrain=retrain, seed=seed, log=log)
    base = options or make_options(config, seed=seed)
    log(f"load-balance-aware pruning over {config.n_pe} PEs:")
    balanced = compress_lstm(model, "digits", config=config, options=replace(base, balance_pes=config.n_pe),
                             out=Path(out) / "images", budget=budget, log=log, progress=progress)
    log(f"plain pruning at the same densities ({', '.join(f'{d:.1%}' for d in balanced.pipeline.densities)}):")
    plain = compress_lstm(model, "digits", config=config,
                          options=replace(base, balance_pes=None, densities=tuple(balanced.pipeline.densities),
                                          target_density=None),
                          out=Path(out) / "images-plain", budget=budget, allow_loss=True, log=log, progress=progress)
    rtl_b = rtl_p = None
    report = {"balanced": dict(balanced.report), "plain": dict(plain.report)}
    if with_rtl:
        log(f"RTL: {balanced.test_inputs.shape[0]} test sequences through the generated ESE array on Verilator "
            f"({config.n_pe} PEs), load-balance-aware pruning ...")
        rtl_b = run_lstm_rtl(balanced.images, balanced.test_inputs)
        log("RTL: the same with plain pruning ...")
        rtl_p = run_lstm_rtl(plain.images, plain.test_inputs)
        for key, outcome, run in (("balanced", balanced, rtl_b), ("plain", plain, rtl_p)):
            r = rtl_report(outcome.images, run)
            r["score"] = _rtl_score(outcome, run)
            report[key]["rtl"] = r
    return DigitsLSTMRun(balanced, plain, rtl_b, rtl_p, report)


def _rtl_score(outcome: LSTMCompressOutcome, run: LSTMRtlRun) -> float:
    import torch

    from eie.compress.lstm import _flat
    from eie.spec.numerics import dequantize_output
    task = outcome.prepared.task
    y = dequantize_output(run.outputs, outcome.images.output_frac_bits)
    return round(task.score(*_flat(task, torch.as_tensor(y), outcome.prepared.dataset.y_test)), 4)
