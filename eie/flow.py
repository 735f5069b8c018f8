"""End-to-end flows behind the ``eie`` command: model -> images -> golden -> RTL.

The CLI parses options and prints; this module does the work, so that the same steps are
available from Python (and from the tests) without going through click.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eie.spec.config import EIEConfig

console = Console(highlight=False, width=None if sys.stdout.isatty() else 110)

__all__ = ["write_rtl", "run_rtl", "verify_rtl", "run_synth", "print_golden_comparison",
           "print_cycles", "accuracy"]


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float(np.mean(np.argmax(scores, axis=1) == labels))


# --- golden ----------------------------------------------------------------------------------

def print_golden_comparison(images, x_float, y_int, labels=None) -> dict:
    """Print the golden model next to the float reference (from the manifest) on float inputs."""
    from eie.sim.reference import reference_forward_float
    from eie.spec.numerics import dequantize_output
    y = dequantize_output(y_int, images.output_frac_bits)
    ref = reference_forward_float(images, x_float)
    agree = 100.0 * float(np.mean(np.argmax(y, axis=1) == np.argmax(ref, axis=1)))
    result = {"argmax_agreement": agree, "max_abs_diff": float(np.abs(y - ref).max())}
    table = Table(title="golden model (fixed point, from images) vs float reference")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if labels is not None:
        result["golden_accuracy"] = accuracy(y, labels)
        result["float_accuracy"] = accuracy(ref, labels)
        table.add_row("float reference accuracy", f"{result['float_accuracy']:.2f} %")
        table.add_row("golden model accuracy", f"{result['golden_accuracy']:.2f} %")
    table.add_row("argmax agreement", f"{agree:.2f} %")
    table.add_row("max |golden - float|", f"{result['max_abs_diff']:.4g}")
    console.print(table)
    return result


# --- RTL -------------------------------------------------------------------------------------

def _atomic_dir(out: Path):
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "config.json").is_file():
        raise FileExistsError(f"{out} exists and was not written by eie rtl; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))


def write_rtl(config: EIEConfig, out, *, name="eie_top", images=None) -> Path:
    """Write ``<name>.v`` and ``config.json`` to ``out`` atomically; returns the Verilog path."""
    import json
    import shutil

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


def run_rtl(images, x_int, *, queue_depth=None):
    """Run integer inputs through the generated RTL on Verilator; returns tb.sim_run's result."""
    from eie.tb.sim_run import simulate
    config = images.config if queue_depth is None else images.config.replace(queue_depth=queue_depth)
    return simulate(images, x_int, config=config)


def print_cycles(images, x_int, result, golden) -> None:
    """Cycles per input and per layer next to the ideal (see :mod:`sim.cycles`).

    ``golden`` is :func:`sim.golden.golden_layers` of ``x_int``: every layer's outputs, from
    which each layer's non-zero inputs and work follow.
    """
    from eie.sim.cycles import layer_work
    layer_inputs = [np.asarray(x_int)] + list(golden[:-1])
    cyc = np.asarray(result.cycles)
    out = np.asarray(result.report.get("output_phase", [0]))
    console.print(f"RTL: {cyc.size} inputs, cycles per input: mean {cyc.mean():.1f}, min {cyc.min()}, "
                  f"max {cyc.max()} (of which streaming the {images.n_out} outputs: {out.mean():.1f})")
    per_layer = np.asarray(result.layer_cycles)            # (batch, n_layers)
    table = Table(title="cycles per layer (mean over inputs); ideal = max(busiest PE's MACs, non-zero inputs)")
    for col in ("layer", "shape", "cycles", "busiest PE MACs", "non-zero inputs", "ideal/cycles",
                "load efficiency"):
        table.add_column(col, justify="right")
    for l, info in enumerate(images.layers):
        w = layer_work(images, l, layer_inputs[l])
        c = float(per_layer[:, l].mean())
        table.add_row(str(l), f"{info.n_in}x{info.n_out}", f"{c:.1f}", f"{w.busiest:.1f}",
                      f"{w.nonzero_inputs:.1f}", f"{w.ideal / c:.2f}", f"{w.total / images.config.n_pe / c:.2f}")
    console.print(table)


def verify_rtl(images, x_int, *, queue_depth=None) -> bool:
    """Golden model and RTL on the same inputs; prints the first mismatch. True when identical."""
    from eie.sim.golden import golden_layers
    golden = golden_layers(images, x_int)
    expected = golden[-1]
    result = run_rtl(images, x_int, queue_depth=queue_depth)
    got = np.asarray(result.outputs)
    bad = np.argwhere(got != expected)
    if bad.size:
        b, row = bad[0]
        console.print(f"[red]MISMATCH[/red]: {len(bad)} of {expected.size} outputs differ; first at input "
                      f"{b}, output row {row} (PE {row % images.config.n_pe}): golden {expected[b, row]}, "
                      f"RTL {got[b, row]}")
        return False
    console.print(f"[green]bit-exact[/green]: {expected.shape[0]} inputs x {expected.shape[1]} outputs, "
                  f"RTL == golden model")
    print_cycles(images, x_int, result, golden)
    return True


def run_synth(config: EIEConfig, out) -> dict:
    """Yosys synthesis for ECP5; prints and returns the cell counts."""
    from eie.hw.synth import synth_ecp5
    cells = synth_ecp5(config, out)
    table = Table(title=f"ECP5 synthesis, {config.n_pe} PEs")
    table.add_column("cell")
    table.add_column("count", justify="right")
    for k, v in sorted(cells.items()):
        if not k.startswith("$"):          # Yosys bookkeeping ($scopeinfo), not logic
            table.add_row(k, str(v))
    console.print(table)
    return cells


# --- compression -----------------------------------------------------------------------------

def load_user_model(path):
    """Load a ``torch.save``d module and check that it is a supported Linear/ReLU chain."""
    from eie.compress.model_io import extract_layers, load_model
    model = load_model(path)
    extract_layers(model)
    return model


def load_data(data_file, model):
    """Training/test data from an ``.npz`` (x_train, y_train, x_test, y_test), or the bundled
    digits set for 64-input models."""
    import torch

    from eie.compress.digits import load_digits_split
    from eie.compress.model_io import extract_layers
    from eie.compress.train import Dataset, check_dataset
    from eie.spec.errors import CompressError
    specs = extract_layers(model)
    n_in, n_out = specs[0].n_in, specs[-1].n_out
    if data_file is None:
        if n_in != 64:
            raise CompressError(f"the model takes {n_in} inputs, so the bundled digits data (64 inputs) "
                                f"cannot train it; pass --data FILE.npz with x_train, y_train, x_test, y_test")
        data = load_digits_split(0)
    else:
        try:
            with np.load(data_file, allow_pickle=False) as z:
                missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in z.files]
                if missing:
                    raise CompressError(f"{data_file} lacks {', '.join(missing)}; it needs x_train, "
                                        f"y_train, x_test, y_test")
                data = Dataset(torch.as_tensor(z["x_train"], dtype=torch.float32),
                               torch.as_tensor(z["y_train"]).long(),
                               torch.as_tensor(z["x_test"], dtype=torch.float32),
                               torch.as_tensor(z["y_test"]).long())
        except FileNotFoundError:
            raise CompressError(f"data file {data_file} does not exist") from None
        except (OSError, ValueError) as e:
            raise CompressError(f"data file {data_file} is not a NumPy .npz archive ({e})") from None
    check_dataset(data, n_in, n_out)
    return data


def golden_accuracy(images, data) -> tuple[float, np.ndarray, list[np.ndarray]]:
    """Accuracy of the golden model on the test set, the integer test inputs and every layer's
    golden outputs for them (:func:`sim.golden.golden_layers`)."""
    from eie.sim.golden import golden_layers
    from eie.spec.numerics import quantize_input
    xq = quantize_input(data.x_test.numpy(), images.input_frac_bits, images.config.act_bits)
    layers = golden_layers(images, xq)
    return accuracy(layers[-1], data.y_test.numpy()), xq, layers


def make_options(config: EIEConfig, *, densities=None, budget=None, granularity="fine", block=None,
                 balance=False, kmeans_init="linear", dsd=False, seed=0, prune_steps=None,
                 retrain_epochs=None, finetune_epochs=None):
    """:class:`~compress.pipeline.CompressOptions` consistent with the hardware configuration."""
    from eie.compress.pipeline import CompressOptions
    from eie.spec.errors import CompressError
    kw = {}
    if densities is not None:
        try:
            kw["densities"] = tuple(float(d) for d in densities.split(","))
        except ValueError:
            raise CompressError(f"--density takes comma-separated fractions such as 0.1,0.05,0.5, not "
                                f"{densities!r}") from None
    for name, value in (("block_size", block), ("prune_steps", prune_steps),
                        ("retrain_epochs", retrain_epochs), ("finetune_epochs", finetune_epochs)):
        if value is not None:
            kw[name] = value
    return CompressOptions(weight_bits=config.weight_bits, index_bits=config.index_bits,
                           accuracy_budget=budget, granularity=granularity,
                           balance_pes=config.n_pe if balance else None, kmeans_init=kmeans_init,
                           dsd=dsd, seed=seed, **kw)


@dataclass
class CompressReport:
    """What one compression produced, for printing and for the manifest's ``stats``."""

    images_dir: Path
    pipeline: object
    images: object
    golden_accuracy: float
    reference_accuracy: float
    test_inputs: np.ndarray | None = None          # integer test inputs
    golden_outputs: list | None = None             # every layer's golden outputs for them

    def stats(self) -> dict:
        r = self.pipeline
        return {"float_accuracy": r.float_accuracy, "pruned_accuracy": r.pruned_accuracy,
                "kmeans_accuracy": r.kmeans_accuracy, "quantized_accuracy": r.quantized_accuracy,
                "densities": [float(d) for d in r.densities],
                "storage": [{k: (float(v) if isinstance(v, float) else v) for k, v in row.items()}
                            for row in r.storage.rows()],
                "compression_ratio": r.storage.ratio}


def compress_to_images(model, data, options, config: EIEConfig, out, *, progress=True) -> CompressReport:
    """Run the Deep Compression pipeline, calibrate fixed point, write and check the images."""
    from eie.compress.fixedpoint import calibrate
    from eie.compress.pipeline import rich_progress, run_pipeline
    from eie.sim.reference import reference_forward_float
    from eie.spec.emit import write_images
    from eie.spec.image import load_images
    if progress:
        with rich_progress(console) as bar:
            result = run_pipeline(model, data, options, progress=bar)
    else:
        result = run_pipeline(model, data, options)
    net, reference = calibrate(result.shared_layers, data.x_train.numpy(), config)
    stats_only = CompressReport(Path(out), result, None, 0.0, 0.0).stats()
    source = {"seed": options.seed, "granularity": options.granularity, "dsd": options.dsd,
              "balance_pes": options.balance_pes, "kmeans_init": options.kmeans_init}
    out = write_images(net, config, out, source=source, stats=stats_only, reference=reference)
    images = load_images(out, expect_config=config)
    golden_acc, xq, golden = golden_accuracy(images, data)
    ref_acc = accuracy(reference_forward_float(images, data.x_test.numpy()), data.y_test.numpy())
    return CompressReport(out, result, images, golden_acc, ref_acc, xq, golden)


def print_report(report: CompressReport) -> None:
    """Accuracy per stage, density per layer and storage per stage, as tables."""
    r = report.pipeline
    acc = Table(title="test accuracy")
    acc.add_column("model")
    acc.add_column("accuracy", justify="right")
    acc.add_column("vs float", justify="right")
    for name, value in (("float (input model)", r.float_accuracy),
                        ("pruned + retrained", r.pruned_accuracy),
                        ("weight-shared (k-means)", r.kmeans_accuracy),
                        ("weight-shared, centroids fine-tuned", r.quantized_accuracy),
                        ("float reference from the images", report.reference_accuracy),
                        ("golden model (16-bit fixed point)", report.golden_accuracy)):
        acc.add_row(name, f"{value:.2f} %", f"{value - r.float_accuracy:+.2f}")
    console.print(acc)

    layers = Table(title="layers")
    for col in ("layer", "shape", "density", "kept", "padding", "shared weights", "shift", "entries/PE (max)"):
        layers.add_column(col, justify="right")
    for row, info in zip(r.layer_rows(), report.images.manifest["layers"], strict=True):
        layers.add_row(row["layer"], row["shape"], f"{row['density']:.2%}", str(row["kept"]),
                       str(info["entries"] - info["nnz"]), str(row["shared weights"]), str(info["shift"]),
                       str(max(info["entries_per_pe"])))
    console.print(layers)

    storage = Table(title="storage in bytes (Deep Compression accounting, all index and pointer metadata)")
    for col in ("stage", "weights", "indices", "pointers", "codebooks", "huffman tables", "biases",
                "total", "ratio"):
        storage.add_column(col, justify="right")
    for row in r.storage.rows():
        storage.add_row(row["stage"], *(f"{row[k] / 8:,.0f}" for k in
                                        ("weights", "indices", "pointers", "codebooks", "huffman tables",
                                         "biases")),
                        f"{row['bytes']:,.0f}", f"{row['ratio']:.1f}x")
    console.print(storage)
    hw_bytes = sum(p.stat().st_size for p in report.images_dir.glob("*.hex"))
    console.print(f"images: {report.images_dir} ({report.images.config.n_pe} PEs, configuration "
                  f"{report.images.config.config_hash()}, {hw_bytes:,} bytes of hex text)")


def _load_or_train_default(path: Path, data, *, retrain: bool, seed: int):
    import torch

    from eie.compress.digits import train_default_model
    from eie.compress.model_io import load_model
    if path.is_file() and not retrain:
        console.print(f"default model: loaded {path} (--retrain to train it again)")
        return load_model(path)
    model = train_default_model(seed, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(model, tmp)
    os.replace(tmp, path)
    console.print(f"default model: trained the 64-300-100-10 digits MLP, saved {path}")
    return model


def digits_flow(out: Path, config: EIEConfig, *, with_rtl=True, retrain=False, seed=0) -> bool:
    """``make sim``: default model → compression → images → golden model (→ RTL on Verilator).

    Returns True when every reported target is met and, with the RTL, every output is bit-exact.
    """
    from eie.compress.digits import load_digits_split
    from eie.spec.errors import CompressError
    data = load_digits_split(seed)
    model = _load_or_train_default(out / "model.pt", data, retrain=retrain, seed=seed)
    report = compress_to_images(model, data, make_options(config, seed=seed), config, out / "images")
    print_report(report)
    r = report.pipeline
    loss = r.float_accuracy - report.golden_accuracy
    console.print(f"compression {r.storage.ratio:.1f}x against fp32 (target >= 40x: "
                  f"{'met' if r.storage.ratio >= 40 else 'NOT met'}); accuracy loss float -> golden "
                  f"{loss:+.2f} points (target <= 0.5: {'met' if loss <= 0.5 else 'NOT met'})")
    if not with_rtl:
        return True
    xq, expected = report.test_inputs, report.golden_outputs[-1]
    console.print(f"RTL: {xq.shape[0]} test images through the generated Verilog on Verilator "
                  f"({config.n_pe} PEs) ...")
    result = run_rtl(report.images, xq)
    got = np.asarray(result.outputs)
    mismatches = int(np.count_nonzero(got != expected))
    rtl_acc = accuracy(got, data.y_test.numpy())
    console.print(f"RTL accuracy {rtl_acc:.2f} % (golden {report.golden_accuracy:.2f} %), "
                  f"{mismatches} mismatching outputs of {expected.size}")
    print_cycles(report.images, xq, result, report.golden_outputs)
    if mismatches:
        b, row = np.argwhere(got != expected)[0]
        raise CompressError(f"RTL differs from the golden model at test image {b}, output {row}: golden "
                            f"{expected[b, row]}, RTL {got[b, row]}")
    return True
