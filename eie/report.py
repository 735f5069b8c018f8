"""Reports of the flows, as JSON-serialisable dicts and as ``rich`` tables.

Every table the ``eie`` command prints is made from the dict that ``--json`` prints and that
``eie compress`` writes to ``report.json`` beside the images, so the two never disagree.

Units, everywhere: scores in percent (``score_unit``), losses in points of that percent,
densities as fractions (0..1), storage in bytes, compression ratios against fp32, cycles in clock
cycles. The report holds nothing that varies between identical runs (no times, no absolute
paths), so it is as deterministic as the images.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from rich.console import Console
from rich.table import Table

__all__ = ["REPORT_VERSION", "compress_report", "golden_report", "rtl_report", "print_compress_report",
           "print_golden_report", "print_rtl_report", "to_json", "make_console"]

REPORT_VERSION = 1


def make_console(file=None) -> Console:
    """The console the CLI prints to (110 columns when not a terminal, no markup highlighting)."""
    stream = file or sys.stdout
    return Console(file=stream, highlight=False, width=None if stream.isatty() else 110)


def _r(x: float, digits: int = 4) -> float:
    return round(float(x), digits)


def to_json(report: dict) -> str:
    """The report as indented JSON with sorted keys."""
    return json.dumps(report, indent=2, sort_keys=True)


# --- compression -------------------------------------------------------------------------------

def compress_report(outcome, config) -> dict:
    """The report of an :class:`eie.flow.CompressOutcome`."""
    r = outcome.pipeline
    task = outcome.prepared.task
    data = outcome.prepared.dataset
    layers = []
    for spec, shared, density, stats, info in zip(r.model.layers, r.shared_layers, r.densities, r.storage.layers,
                                                  outcome.images.manifest["layers"], strict=True):
        layers.append({
            "name": shared.name, "n_in": int(shared.index.shape[1]), "n_out": int(shared.index.shape[0]),
            "relu": bool(shared.relu),
            "input_density": _r(spec.mask.mean()) if spec.mask is not None else 1.0,
            "target_density": _r(density), "density": _r(stats.density), "kept": int(stats.nnz),
            "padding_entries": int(info["entries"] - info["nnz"]),
            "shared_weights": int(np.count_nonzero(np.unique(shared.index))),
            "codebook_size": int(config.codebook_size), "shift": int(info["shift"]),
            "entries_per_pe_max": int(max(info["entries_per_pe"])),
        })
    scores = {"float": _r(r.float_score), "pruned": _r(r.pruned_score), "weight_shared": _r(r.kmeans_score),
              "fine_tuned": _r(r.quantized_score), "reference_from_images": _r(outcome.reference_score),
              "golden": _r(outcome.golden_score)}
    storage = [{"stage": row["stage"], "weights": _r(row["weights"] / 8, 3), "indices": _r(row["indices"] / 8, 3),
                "pointers": _r(row["pointers"] / 8, 3), "codebooks": _r(row["codebooks"] / 8, 3),
                "huffman_tables": _r(row["huffman tables"] / 8, 3), "biases": _r(row["biases"] / 8, 3),
                "total": _r(row["bytes"], 3), "ratio": _r(row["ratio"])} for row in r.storage.rows()]
    images = outcome.images
    return {
        "report_version": REPORT_VERSION,
        "model": {"kind": r.model.kind, "flatten": bool(r.model.flatten), "sparse": bool(r.model.is_sparse),
                  "notes": list(r.model.notes), "input_shape": list(outcome.prepared.input_shape),
                  "n_in": int(r.model.n_in), "n_out": int(r.model.n_out)},
        "data": {"description": outcome.prepared.description, "task": task.kind, "metric": task.metric,
                 "n_train": int(data.x_train.shape[0]), "n_test": int(data.x_test.shape[0]),
                 "n_calibration": int(outcome.prepared.calibration.shape[0])},
        "config": {**config.to_dict(), "hash": config.config_hash()},
        "choice": {"mode": outcome.mode, "reason": outcome.reason, "budget_points": outcome.budget,
                   "chosen_target_density": outcome.chosen_target_density,
                   "candidates": [c.to_dict() for c in outcome.candidates]},
        "options": {"seed": r.options.seed, "granularity": r.options.granularity,
                    "block_size": r.options.block_size, "balance_pes": r.options.balance_pes,
                    "kmeans_init": r.options.kmeans_init, "dsd": r.options.dsd,
                    "prune_steps": r.options.prune_steps, "retrain_epochs": r.options.retrain_epochs,
                    "finetune_epochs": r.options.finetune_epochs},
        "score_unit": "percent",
        "scores": scores,
        "loss_points": _r(r.float_score - outcome.golden_score),
        "golden_vs_input_model": {k: _r(v, 6) for k, v in outcome.output_error.items()},
        "layers": layers,
        "storage_bytes": storage,
        "compression_ratio": _r(r.storage.ratio),
        "images": {"n_pe": int(config.n_pe), "config_hash": config.config_hash(),
                   "input_frac_bits": int(images.input_frac_bits),
                   "output_frac_bits": int(images.output_frac_bits),
                   "hex_bytes": sum(int(m["depth"]) * (-(-int(m["width"]) // 4) + 1)
                                    for m in images.manifest["files"].values())},
    }


def print_compress_report(report: dict, console: Console) -> None:
    """Scores per stage, the choice, density per layer and storage per stage, as tables."""
    metric = report["data"]["metric"]
    float_score = report["scores"]["float"]
    acc = Table(title=f"test {metric}")
    for col, justify in (("model", "left"), (metric, "right"), ("vs input model", "right")):
        acc.add_column(col, justify=justify)
    names = (("float", "float (input model)"), ("pruned", "pruned + retrained"),
             ("weight_shared", "weight-shared (k-means)"), ("fine_tuned", "weight-shared, centroids fine-tuned"),
             ("reference_from_images", "float reference from the images"),
             ("golden", f"golden model ({report['config']['act_bits']}-bit fixed point)"))
    for key, name in names:
        value = report["scores"][key]
        acc.add_row(name, f"{value:.2f} %", f"{value - float_score:+.2f}")
    console.print(acc)

    choice = report["choice"]
    if len(choice["candidates"]) > 1:
        tried = Table(title=f"candidates tried (budget {choice['budget_points']:g} points)")
        for col in ("target density", "layer densities", "compression", f"golden {metric}", "within budget"):
            tried.add_column(col, justify="right")
        for c in choice["candidates"]:
            tried.add_row("none (no pruning)" if c["target_density"] is None else f"{c['target_density']:.1%}",
                          ", ".join(f"{d:.1%}" for d in c["densities"]),
                          f"{c['compression_ratio']:.1f}x" if c["fits"] else "does not fit",
                          f"{c['golden_score']:.2f} %" if c["fits"] else "-", "yes" if c["within_budget"] else "no")
        console.print(tried)
    console.print(f"chosen: {choice['reason']}")

    layers = Table(title="layers")
    for col in ("layer", "shape", "input density", "density", "kept", "padding", "shared weights", "shift",
                "entries/PE (max)"):
        layers.add_column(col, justify="right")
    for row in report["layers"]:
        layers.add_row(row["name"], f"{row['n_in']}→{row['n_out']}", f"{row['input_density']:.2%}",
                       f"{row['density']:.2%}", str(row["kept"]), str(row["padding_entries"]),
                       str(row["shared_weights"]), str(row["shift"]), str(row["entries_per_pe_max"]))
    console.print(layers)

    storage = Table(title="storage in bytes (Deep Compression accounting, all index and pointer metadata)")
    for col in ("stage", "weights", "indices", "pointers", "codebooks", "huffman tables", "biases", "total",
                "ratio"):
        storage.add_column(col, justify="right")
    for row in report["storage_bytes"]:
        storage.add_row(row["stage"], *(f"{row[k]:,.0f}" for k in ("weights", "indices", "pointers", "codebooks",
                                                                     "huffman_tables", "biases", "total")),
                        f"{row['ratio']:.1f}x")
    console.print(storage)
    error = report["golden_vs_input_model"]
    if "mse_golden" in error:
        console.print(f"mean squared error against the targets: input model {error['mse_input_model']:.4g}, golden "
                      f"model {error['mse_golden']:.4g}")
    console.print(f"golden model outputs against the input model's: RMS difference {error['rms']:.4g}, largest "
                  f"{error['max_abs']:.4g}")
    console.print(f"compression {report['compression_ratio']:.1f}x against fp32; golden {metric} "
                  f"{report['scores']['golden']:.2f} % against {float_score:.2f} % for the input model "
                  f"({-report['loss_points']:+.2f} points, budget {choice['budget_points']:g})")


# --- golden ------------------------------------------------------------------------------------

def golden_report(images, x_float, y_int, labels=None) -> dict:
    """Golden model (from the images) next to the float reference, on float inputs."""
    from eie.sim.reference import reference_forward_float
    from eie.spec.numerics import dequantize_output
    y = dequantize_output(y_int, images.output_frac_bits)
    ref = reference_forward_float(images, x_float)
    result = {"inputs": int(y.shape[0]), "score_unit": "percent",
              "argmax_agreement": _r(100.0 * float(np.mean(np.argmax(y, axis=1) == np.argmax(ref, axis=1)))),
              "max_abs_diff": float(np.abs(y - ref).max())}
    if labels is not None:
        result["golden_accuracy"] = _r(100.0 * float(np.mean(np.argmax(y, axis=1) == labels)))
        result["float_accuracy"] = _r(100.0 * float(np.mean(np.argmax(ref, axis=1) == labels)))
    return result


def print_golden_report(report: dict, console: Console) -> None:
    table = Table(title="golden model (fixed point, from images) vs float reference")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if "golden_accuracy" in report:
        table.add_row("float reference accuracy", f"{report['float_accuracy']:.2f} %")
        table.add_row("golden model accuracy", f"{report['golden_accuracy']:.2f} %")
    table.add_row("argmax agreement", f"{report['argmax_agreement']:.2f} %")
    table.add_row("max |golden - float|", f"{report['max_abs_diff']:.4g}")
    console.print(table)


# --- RTL ---------------------------------------------------------------------------------------

def rtl_report(images, run) -> dict:
    """Bit-exactness and cycles of an :class:`eie.flow.RtlRun` (cycles against the ideal per layer)."""
    from eie.sim.cycles import layer_work
    layer_inputs = [np.asarray(run.inputs)] + list(run.golden[:-1])
    cycles = np.asarray(run.sim.cycles)
    per_layer = np.asarray(run.sim.layer_cycles)
    output_phase = np.asarray(run.sim.report.get("output_phase", [0]))
    bad = run.mismatches
    layers = []
    for l, info in enumerate(images.layers):
        w = layer_work(images, l, layer_inputs[l])
        c = float(per_layer[:, l].mean())
        layers.append({"layer": l, "n_in": info.n_in, "n_out": info.n_out, "cycles": _r(c, 2),
                       "busiest_pe_issue_cycles": _r(w.busiest, 2), "nonzero_inputs": _r(w.nonzero_inputs, 2),
                       "ideal_over_cycles": _r(w.ideal / c), "load_efficiency": _r(w.total / images.config.n_pe / c)})
    report = {"inputs": int(cycles.size), "outputs": int(run.outputs.size), "bit_exact": bool(run.bit_exact),
              "mismatches": int(bad.shape[0]), "n_pe": int(images.config.n_pe),
              "cycles_per_input": {"mean": _r(cycles.mean(), 2), "min": int(cycles.min()), "max": int(cycles.max()),
                                   "output_streaming": _r(output_phase.mean(), 2)},
              "layers": layers}
    if bad.size:
        b, row = (int(v) for v in bad[0])
        report["first_mismatch"] = {"input": b, "output": row, "pe": row % images.config.n_pe,
                                    "golden": int(run.golden[-1][b, row]), "rtl": int(run.outputs[b, row])}
    return report


def print_rtl_report(report: dict, console: Console) -> None:
    if report["bit_exact"]:
        console.print(f"[green]bit-exact[/green]: {report['inputs']} inputs, {report['outputs']} outputs, "
                      f"RTL == golden model")
    else:
        m = report["first_mismatch"]
        console.print(f"[red]MISMATCH[/red]: {report['mismatches']} of {report['outputs']} outputs differ; first at "
                      f"input {m['input']}, output row {m['output']} (PE {m['pe']}): golden {m['golden']}, "
                      f"RTL {m['rtl']}")
    c = report["cycles_per_input"]
    console.print(f"RTL: {report['inputs']} inputs on {report['n_pe']} PEs, cycles per input: mean {c['mean']:.1f}, "
                  f"min {c['min']}, max {c['max']} (of which streaming the outputs: {c['output_streaming']:.1f})")
    table = Table(title="cycles per layer (mean over inputs); ideal = max(busiest PE's issue cycles: one per MAC, "
                        "padding folded; non-zero inputs: one broadcast per cycle)")
    for col in ("layer", "shape", "cycles", "busiest PE issue cycles", "non-zero inputs", "ideal/cycles",
                "load efficiency"):
        table.add_column(col, justify="right")
    for row in report["layers"]:
        table.add_row(str(row["layer"]), f"{row['n_in']}x{row['n_out']}", f"{row['cycles']:.1f}",
                      f"{row['busiest_pe_issue_cycles']:.1f}", f"{row['nonzero_inputs']:.1f}",
                      f"{row['ideal_over_cycles']:.2f}", f"{row['load_efficiency']:.2f}")
    console.print(table)
