"""The ``eie`` console command: compress, golden, rtl, sim, verify, synth and the digits flow.

Every failure a user can cause ends in one line ``Error: ...`` and exit status 1; outputs are
written atomically (a failed command leaves no half-written file or directory).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from eie.spec.config import ConfigError, EIEConfig

__all__ = ["main"]

#: Hardware options every command that makes or checks hardware accepts, with EIEConfig names.
_HW_OPTIONS = [
    ("--pes", "n_pe", "Processing elements (rows are interleaved over them)."),
    ("--queue-depth", "queue_depth", "Activation queue depth per PE."),
    ("--weight-bits", "weight_bits", "Codebook index bits (2**b codebook entries, entry 0 = zero)."),
    ("--index-bits", "index_bits", "Relative row index bits."),
    ("--acc-bits", "acc_bits", "Accumulator width."),
    ("--entries-per-word", "entries_per_word", "(v, z) entries per sparse-matrix SRAM word."),
    ("--ptr-bits", "ptr_bits", "Column pointer width."),
    ("--mat-depth", "mat_depth", "Sparse-matrix SRAM words per PE."),
    ("--ptr-depth", "ptr_depth", "Pointer SRAM entries per PE (even)."),
    ("--max-rows-per-pe", "max_rows_per_pe", "Activation register file depth per PE."),
    ("--bias-depth", "bias_depth", "Bias SRAM entries per PE."),
    ("--max-layers", "max_layers", "Layers the layer table holds."),
]


def hw_options(func):
    """Add ``--config FILE.json`` and one override option per :class:`EIEConfig` field."""
    for flag, field, help_ in reversed(_HW_OPTIONS):
        func = click.option(flag, field, type=int, default=None, help=help_)(func)
    return click.option("--config", "config_file", type=click.Path(dir_okay=False),
                        help="Hardware configuration JSON (EIEConfig fields); options override it.")(func)


def config_from_options(kw: dict, base: EIEConfig | None = None) -> EIEConfig:
    """Pop the hardware options out of ``kw`` and build the configuration."""
    config_file = kw.pop("config_file", None)
    overrides = {field: kw.pop(field) for _, field, _ in _HW_OPTIONS}
    if config_file:
        base = EIEConfig.from_json_file(config_file)
    base = base or EIEConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.replace(**changes) if changes else base


def _user_errors():
    from eie.spec.errors import CompressError
    from eie.spec.image import ImageError
    return (CompressError, ConfigError, ImageError, FileExistsError, FileNotFoundError)


def friendly(func):
    """Turn the errors a user can cause into one-line click errors (exit status 1)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except _user_errors() as e:
            raise click.ClickException(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        except ValueError as e:  # input arrays of the wrong shape, type or range
            raise click.ClickException(str(e).splitlines()[0]) from None
    return wrapper


def load_array(path, what: str) -> np.ndarray:
    """``np.load`` with one-line errors; never unpickles."""
    try:
        a = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise click.ClickException(f"{what} file {path} does not exist") from None
    except (ValueError, OSError) as e:
        raise click.ClickException(f"{what} file {path} is not a NumPy .npy array: {e}") from None
    if not isinstance(a, np.ndarray):
        raise click.ClickException(f"{what} file {path} must be a single .npy array, not an archive")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise click.ClickException(f"{what} file {path} contains NaN or infinite values")
    return a


def save_array_atomic(path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _prepare_input(images, x: np.ndarray, raw: bool) -> np.ndarray:
    from eie.spec.numerics import quantize_input
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != images.n_in:
        raise click.ClickException(f"input has shape {x.shape} but the network takes (batch, "
                                   f"{images.n_in})")
    if raw:
        if x.dtype.kind not in "iu":
            raise click.ClickException(f"--raw expects integer activations, not {x.dtype}; drop --raw "
                                       f"to pass float inputs")
        return x.astype(np.int64)
    return quantize_input(x, images.input_frac_bits, images.config.act_bits)


def _output(images, y: np.ndarray, raw: bool) -> np.ndarray:
    from eie.spec.numerics import dequantize_output
    return y.astype(np.int16 if images.config.act_bits <= 16 else np.int32) if raw else \
        dequantize_output(y, images.output_frac_bits)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Generator of EIE-style sparse, compressed neural-network accelerators.

    Typical flow: eie compress MODEL.pt --out IMG --pes 4, then eie golden / eie sim / eie verify
    on IMG, eie rtl for the Verilog and eie synth for an FPGA build.
    """


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Image directory to write.")
@click.option("--data", "data_file", type=click.Path(dir_okay=False),
              help="Training/calibration data .npz with x_train, y_train, x_test, y_test "
                   "(default: the bundled digits set, for 64-input models).")
@click.option("--density", "densities", type=str, default=None,
              help="Per-layer densities, comma separated (e.g. 0.1,0.1,0.5); default: sensitivity "
                   "analysis with --budget.")
@click.option("--budget", type=float, default=None, help="Accuracy budget (points) for sensitivity.")
@click.option("--granularity", type=click.Choice(["fine", "vector", "block"]), default="fine")
@click.option("--block", type=int, default=None, help="Vector length / block side for coarse pruning.")
@click.option("--balance/--no-balance", default=False,
              help="ESE load-balance-aware pruning: every PE keeps the same non-zeros per layer.")
@click.option("--init", "kmeans_init", type=click.Choice(["linear", "density", "random"]), default="linear",
              help="k-means centroid initialisation.")
@click.option("--dsd/--no-dsd", default=False, help="Dense-sparse-dense training before compression.")
@click.option("--prune-steps", type=int, default=None, help="Iterative prune/retrain steps.")
@click.option("--retrain-epochs", type=int, default=None, help="Retraining epochs after each pruning step.")
@click.option("--finetune-epochs", type=int, default=None, help="Centroid fine-tuning epochs (0: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@hw_options
@friendly
def compress(model, out, data_file, densities, budget, granularity, block, balance, kmeans_init, dsd,
             prune_steps, retrain_epochs, finetune_epochs, seed, **kw):
    """Prune, share weights and emit the SRAM images of MODEL (a torch.save'd nn.Module)."""
    from eie import flow
    config = config_from_options(kw)
    options = flow.make_options(config, densities=densities, budget=budget, granularity=granularity,
                                block=block, balance=balance, kmeans_init=kmeans_init, dsd=dsd,
                                seed=seed, prune_steps=prune_steps, retrain_epochs=retrain_epochs,
                                finetune_epochs=finetune_epochs)
    model_obj = flow.load_user_model(model)
    data = flow.load_data(data_file, model_obj)
    report = flow.compress_to_images(model_obj, data, options, config, out)
    flow.print_report(report)


@main.command()
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False),
              help="Inputs .npy (batch, n_in): floats, or raw integers with --raw.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), help="Outputs .npy.")
@click.option("--raw", is_flag=True, help="Raw int16 activations in and out instead of floats.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False),
              help="Labels .npy: print accuracy of the golden model and the float reference.")
@friendly
def golden(images_dir, input_file, out_file, raw, labels_file):
    """Run the bit-exact golden model on IMAGES_DIR."""
    from eie import flow
    from eie.sim.golden import run_golden
    from eie.spec.image import load_images
    images = load_images(images_dir)
    x = load_array(input_file, "input")
    xq = _prepare_input(images, x, raw)
    labels = load_array(labels_file, "labels") if labels_file else None
    if labels is not None and labels.shape != (xq.shape[0],):
        raise click.ClickException(f"labels have shape {labels.shape}, expected ({xq.shape[0]},)")
    y = run_golden(images, xq)
    save_array_atomic(out_file, _output(images, y, raw))
    click.echo(f"golden: {xq.shape[0]} inputs -> {out_file}")
    if not raw:
        flow.print_golden_comparison(images, x, y, labels)


@main.command()
@click.option("--images", "images_dir", type=click.Path(file_okay=False),
              help="Initialise the memories from these images (bitstream mode); their configuration "
                   "is used.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the Verilog.")
@click.option("--name", default="eie_top", show_default=True, help="Top module name.")
@hw_options
@friendly
def rtl(images_dir, out, name, **kw):
    """Write the Verilog of the PE array for a configuration (or for images)."""
    from eie import flow
    images = None
    if images_dir:
        from eie.spec.image import load_images
        images = load_images(images_dir)
        config = config_from_options(kw, base=images.config)
        if config.config_hash() != images.config.config_hash():
            raise click.ClickException("hardware options contradict the images' configuration; drop "
                                       "them or re-run eie compress with them")
    else:
        config = config_from_options(kw)
    path = flow.write_rtl(config, out, name=name, images=images)
    click.echo(f"wrote {path} ({config.n_pe} PEs, configuration {config.config_hash()})")


@main.command()
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
@click.option("--raw", is_flag=True, help="Raw int16 activations in and out instead of floats.")
@click.option("--queue-depth", type=int, default=None, help="Activation queue depth (timing only).")
@friendly
def sim(images_dir, input_file, out_file, raw, queue_depth):
    """Run the generated RTL on Verilator (cocotb) and print cycles per input."""
    from eie import flow
    from eie.sim.golden import golden_layers
    from eie.spec.image import load_images
    images = load_images(images_dir)
    xq = _prepare_input(images, load_array(input_file, "input"), raw)
    result = flow.run_rtl(images, xq, queue_depth=queue_depth)
    save_array_atomic(out_file, _output(images, result.outputs, raw))
    flow.print_cycles(images, xq, result, golden_layers(images, xq))


@main.command()
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False))
@click.option("--raw", is_flag=True, help="Inputs are raw integer activations.")
@click.option("--queue-depth", type=int, default=None, help="Activation queue depth (timing only).")
@friendly
def verify(images_dir, input_file, raw, queue_depth):
    """Run the golden model and the RTL on the same inputs and compare them bit for bit."""
    from eie import flow
    from eie.spec.image import load_images
    images = load_images(images_dir)
    xq = _prepare_input(images, load_array(input_file, "input"), raw)
    ok = flow.verify_rtl(images, xq, queue_depth=queue_depth)
    if not ok:
        sys.exit(1)


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Build directory.")
@hw_options
@friendly
def synth(out, **kw):
    """Synthesise the PE array for ECP5 with Yosys and print the resources."""
    from eie import flow
    flow.run_synth(config_from_options(kw), out)


@main.command()
@click.option("--out", default="out/digits", show_default=True, type=click.Path(file_okay=False))
@click.option("--rtl/--no-rtl", "with_rtl", default=True, help="Also run every test image through the RTL.")
@click.option("--retrain", is_flag=True, help="Retrain the default model even if a saved one exists.")
@click.option("--seed", type=int, default=0, show_default=True)
@hw_options
@friendly
def digits(out, with_rtl, retrain, seed, **kw):
    """The built-in default flow: train the 64-300-100-10 digits MLP, compress, golden, RTL."""
    from eie import flow
    flow.digits_flow(Path(out), config_from_options(kw), with_rtl=with_rtl, retrain=retrain, seed=seed)


if __name__ == "__main__":
    main()
