"""The ``eie`` console command: compress, golden, rtl, sim, verify, synth and the digits flow.

Every failure a user can cause ends in one line ``Error: ...`` and exit status 1, before anything
is written; outputs are written atomically with the usual file permissions. Commands that print
tables take ``--json`` and then print the same figures as one JSON document on standard output
(progress and warnings go to standard error).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from eie.spec.config import EIEConfig
from eie.spec.errors import EIEError

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


def json_option(func):
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the figures as JSON on standard output instead of tables.")(func)


def config_from_options(kw: dict, base: EIEConfig | None = None) -> EIEConfig:
    """Pop the hardware options out of ``kw`` and build the configuration."""
    config_file = kw.pop("config_file", None)
    overrides = {field: kw.pop(field) for _, field, _ in _HW_OPTIONS}
    if config_file:
        base = _config_class(config_file).from_json_file(config_file)
    base = base or EIEConfig()
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.replace(**changes) if changes else base


def _config_class(path) -> type:
    """:class:`ESEConfig` for a configuration file with the ESE array's keys (an LSTM's), else :class:`EIEConfig`."""
    import dataclasses
    import json

    from eie.spec.ese import ESEConfig
    try:
        keys = set(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError):
        return EIEConfig                    # EIEConfig.from_json_file reports the problem
    ese_only = {f.name for f in dataclasses.fields(ESEConfig)} - {f.name for f in dataclasses.fields(EIEConfig)}
    return ESEConfig if keys & ese_only else EIEConfig


def friendly(func):
    """Turn the errors a user can cause into one-line click errors (exit status 1)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (EIEError, FileExistsError, FileNotFoundError) as e:
            raise click.ClickException(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    return wrapper


def _consoles(as_json: bool):
    """``(out, log)``: tables go to ``out``; with ``--json`` everything but the JSON goes to stderr."""
    from eie.report import make_console
    err = make_console(sys.stderr)
    return (err if as_json else make_console()), err


def load_array(path, what: str) -> np.ndarray:
    """One array from ``.npy``, ``.npz`` (a single array, or ``x``) or ``.pt``; never unpickles code."""
    from eie.compress.data import load_arrays
    arrays = load_arrays(str(path), what)
    if set(arrays) != {"x"}:
        raise click.ClickException(f"{what} file {path} must hold one array, not {', '.join(sorted(arrays))}")
    return arrays["x"]


def save_array_atomic(path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` via a temporary file in the same directory (mode 0666 & ~umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npy", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _outputs(images, y: np.ndarray, raw: bool) -> np.ndarray:
    from eie.spec.numerics import dequantize_output
    return y.astype(np.int16 if images.config.act_bits <= 16 else np.int32) if raw else \
        dequantize_output(y, images.output_frac_bits)


def _inputs(images, input_file, raw: bool, log):
    from eie.inputs import prepare_inputs
    prepared = prepare_inputs(images, load_array(input_file, "input"), raw=raw)
    warning = prepared.warning(images)
    if warning:
        log.print(f"[yellow]{warning}[/yellow]")
    return prepared


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Generator of EIE-style sparse, compressed neural-network accelerators.

    Typical flow: eie compress MODEL.pt --data DATA.npz --out IMG --pes 4, then eie golden / eie sim
    / eie verify on IMG, eie rtl for the Verilog and eie synth for an FPGA build.
    """


@main.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Image directory to write.")
@click.option("--arch", help="module:Class or FILE.py:Class of the model, for a state_dict file or a model "
                             "class defined in the script that saved it.")
@click.option("--data", "data_file",
              help="Data: .npz/.pt with x_train, y_train, x_test, y_test (or x, y; or x alone), or 'digits' "
                   "for scikit-learn's bundled digits.")
@click.option("--calib", "calib_file", type=click.Path(dir_okay=False),
              help="Calibration inputs (.npy/.npz/.pt, inputs only); enough on their own: the model is then "
                   "judged by its agreement with the input model.")
@click.option("--task", type=click.Choice(["classification", "regression", "agreement"]), default=None,
              help="Override the task inferred from the data (int labels: classification; float targets: "
                   "regression; none: agreement).")
@click.option("--density", "densities", default=None,
              help="Per-layer densities, comma separated (e.g. 0.1,0.1,0.5; one value for every layer). "
                   "Default: the highest compression within --budget.")
@click.option("--target-density", type=float, default=None,
              help="Overall fraction of weights to keep, spread over the layers by sensitivity analysis.")
@click.option("--budget", type=float, default=0.5, show_default=True,
              help="Points of accuracy (or of the task's score) the golden model may lose against the input model.")
@click.option("--allow-loss", is_flag=True, help="Keep a compression that loses more than --budget.")
@click.option("--keep-sparsity/--no-keep-sparsity", default=None,
              help="Do not prune, only share weights (default when the model is already sparse and no density "
                   "is given).")
@click.option("--granularity", type=click.Choice(["fine", "vector", "block"]), default="fine", show_default=True)
@click.option("--block", type=int, default=None, help="Vector length / block side for coarse pruning.")
@click.option("--balance/--no-balance", default=False,
              help="ESE load-balance-aware pruning: every PE keeps the same non-zeros per layer.")
@click.option("--init", "kmeans_init", type=click.Choice(["linear", "density", "random"]), default="linear",
              show_default=True, help="k-means centroid initialisation.")
@click.option("--dsd/--no-dsd", default=False, help="Dense-sparse-dense training before compression.")
@click.option("--prune-steps", type=int, default=None, help="Iterative prune/retrain steps.")
@click.option("--retrain-epochs", type=int, default=None, help="Retraining epochs after each pruning step.")
@click.option("--finetune-epochs", type=int, default=None, help="Centroid fine-tuning epochs (0: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--board", help="Size the array for this board (constraints/NAME.toml): the most PEs (or --pes) and "
                              "the deepest memories that fit; hardware options give the widths.")
@json_option
@hw_options
@friendly
def compress(model, out, arch, data_file, calib_file, task, densities, target_density, budget, allow_loss,
             keep_sparsity, granularity, block, balance, kmeans_init, dsd, prune_steps, retrain_epochs,
             finetune_epochs, seed, board, as_json, **kw):
    """Prune, share weights and emit the SRAM images of MODEL (a saved nn.Module, a state_dict with
    --arch, or TorchScript), with a report.json beside them."""
    from eie import flow
    from eie.compress.pipeline import make_options, rich_progress
    from eie.report import print_compress_report, to_json
    out_console, log = _consoles(as_json)
    board_pes = kw.get("n_pe") if board else None     # --pes with --board: that many PEs, sized for it
    config = config_from_options(kw)
    options = make_options(config, densities=densities, target_density=target_density, granularity=granularity,
                           block=block, balance=balance, kmeans_init=kmeans_init, dsd=dsd, seed=seed,
                           prune_steps=prune_steps, retrain_epochs=retrain_epochs, finetune_epochs=finetune_epochs)
    with rich_progress(log) as progress:
        outcome = flow.compress(model, data_file, calib_file, config=config, options=options, out=out,
                                budget=budget, allow_loss=allow_loss, keep_sparsity=keep_sparsity, task=task,
                                arch=arch, board=board, board_pes=board_pes, log=log.print,
                                progress=progress)
    if as_json:
        click.echo(to_json(outcome.report))
        return
    if outcome.report.get("kind") == "lstm":
        from eie.lstm_flow import print_compress_report as print_lstm_compress_report
        print_lstm_compress_report(outcome.report, out_console)
    else:
        print_compress_report(outcome.report, out_console)
    config = outcome.images.config
    out_console.print(f"images: {outcome.path} ({config.n_pe} PEs, configuration {config.config_hash()}); "
                      f"report: {outcome.path / 'report.json'}")


@main.command()
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False),
              help="Inputs (batch, n_in) .npy/.npz/.pt: floats, or raw integers with --raw.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), help="Outputs .npy.")
@click.option("--raw", is_flag=True, help="Raw integer activations in and out instead of floats.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False),
              help="Labels .npy: print accuracy of the golden model and the float reference.")
@json_option
@friendly
def golden(images_dir, input_file, out_file, raw, labels_file, as_json):
    """Run the bit-exact golden model on IMAGES_DIR."""
    from eie.inputs import check_labels
    from eie.report import golden_report, print_golden_report, to_json
    from eie.sim.golden import run_golden
    from eie.spec.ese_image import LSTMImages, open_images
    out_console, log = _consoles(as_json)
    images = open_images(images_dir)
    if isinstance(images, LSTMImages):
        return _lstm_golden(images, input_file, out_file, raw, labels_file, as_json)
    x = _inputs(images, input_file, raw, log)
    labels = None
    if labels_file:
        labels = check_labels(load_array(labels_file, "labels"), x.batch, images.n_out)
    y = run_golden(images, x.x_int)
    report = golden_report(images, x.x_float, y, labels) if not raw else {"inputs": x.batch}
    save_array_atomic(out_file, _outputs(images, y, raw))
    if as_json:
        click.echo(to_json({**report, "outputs_file": str(out_file)}))
        return
    out_console.print(f"golden: {x.batch} inputs -> {out_file}")
    if not raw:
        print_golden_report(report, out_console)


@main.command()
@click.option("--images", "images_dir", type=click.Path(file_okay=False),
              help="Initialise the memories from these images (bitstream mode); their configuration is used.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the Verilog.")
@click.option("--name", default="eie_top", show_default=True, help="Top module name.")
@hw_options
@friendly
def rtl(images_dir, out, name, **kw):
    """Write the Verilog of the PE array for a configuration (or for images)."""
    from eie import flow
    images = None
    if images_dir:
        from eie.spec.ese_image import open_images
        images = open_images(images_dir)
        config = config_from_options(kw, base=images.config)
        if config.config_hash() != images.config.config_hash():
            raise click.ClickException("hardware options contradict the images' configuration; drop them or "
                                       "re-run eie compress with them")
    else:
        config = config_from_options(kw)
    path = flow.write_rtl(config, out, name=name, images=images)
    click.echo(f"wrote {path} ({config.n_pe} PEs, configuration {config.config_hash()})")


def _rtl_command(images_dir, input_file, raw, queue_depth, as_json, out_file=None) -> None:
    """``eie sim`` and ``eie verify``: golden model and RTL on the same inputs; exit 1 unless bit-exact."""
    from eie import flow
    from eie.report import print_rtl_report, rtl_report, to_json
    from eie.spec.ese_image import LSTMImages, open_images
    out_console, log = _consoles(as_json)
    images = open_images(images_dir)
    if isinstance(images, LSTMImages):
        return _lstm_rtl_command(images, input_file, raw, queue_depth, as_json, out_file)
    x = _inputs(images, input_file, raw, log)
    run = flow.run_rtl(images, x.x_int, queue_depth=queue_depth)
    report = rtl_report(images, run)
    if out_file is not None:
        save_array_atomic(out_file, _outputs(images, run.outputs, raw))
    if as_json:
        click.echo(to_json(report))
    else:
        print_rtl_report(report, out_console)
    if not run.bit_exact:
        sys.exit(1)


def _lstm_inputs(images, input_file, raw: bool, log):
    from eie.lstm_flow import prepare_lstm_inputs
    prepared = prepare_lstm_inputs(images, load_array(input_file, "input"), raw=raw)
    warning = prepared.warning(images)
    if warning:
        log.print(f"[yellow]{warning}[/yellow]")
    return prepared


def _lstm_golden(images, input_file, out_file, raw, labels_file, as_json) -> None:
    """``eie golden`` of LSTM images: sequences ``(batch, steps, I)`` in, the golden outputs out."""
    from eie.lstm_flow import golden_report, print_golden_report
    from eie.report import to_json
    from eie.sim.lstm import run_lstm_golden
    out_console, log = _consoles(as_json)
    x = _lstm_inputs(images, input_file, raw, log)
    labels = None
    if labels_file:
        labels = np.asarray(load_array(labels_file, "labels"))
        want = (x.batch, x.x_int.shape[1]) if images.lstm.every_step else (x.batch,)
        if labels.shape != want or labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= images.n_out:
            raise click.ClickException(f"labels must be integers in 0..{images.n_out - 1} of shape {want}, not "
                                       f"{labels.dtype} {labels.shape}")
    y = run_lstm_golden(images, x.x_int).outputs
    report = golden_report(images, x.x_float, y, labels) if not raw else {"inputs": x.batch}
    save_array_atomic(out_file, _outputs(images, y, raw))
    if as_json:
        click.echo(to_json({**report, "outputs_file": str(out_file)}))
        return
    out_console.print(f"golden: {x.batch} sequences -> {out_file}")
    if not raw:
        print_golden_report(report, out_console)


def _lstm_rtl_command(images, input_file, raw, queue_depth, as_json, out_file=None) -> None:
    """``eie sim`` and ``eie verify`` of LSTM images on the ESE array."""
    from eie import lstm_flow
    from eie.report import to_json
    out_console, log = _consoles(as_json)
    x = _lstm_inputs(images, input_file, raw, log)
    run = lstm_flow.run_lstm_rtl(images, x.x_int, queue_depth=queue_depth)
    report = lstm_flow.rtl_report(images, run)
    if out_file is not None:
        save_array_atomic(out_file, _outputs(images, run.outputs, raw))
    if as_json:
        click.echo(to_json(report))
    else:
        lstm_flow.print_rtl_report(report, out_console)
    if not run.bit_exact:
        sys.exit(1)


@main.command()
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
@click.option("--raw", is_flag=True, help="Raw integer activations in and out instead of floats.")
@click.option("--queue-depth", type=int, default=None, help="Activation queue depth (timing only).")
@json_option
@friendly
def sim(images_dir, input_file, out_file, raw, queue_depth, as_json):
    """Run the generated RTL on Verilator (cocotb), write its outputs and print cycles per input."""
    _rtl_command(images_dir, input_file, raw, queue_depth, as_json, out_file)


@main.command()
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False))
@click.option("--raw", is_flag=True, help="Inputs are raw integer activations.")
@click.option("--queue-depth", type=int, default=None, help="Activation queue depth (timing only).")
@json_option
@friendly
def verify(images_dir, input_file, raw, queue_depth, as_json):
    """Run the golden model and the RTL on the same inputs and compare them bit for bit (exit 1 if not)."""
    _rtl_command(images_dir, input_file, raw, queue_depth, as_json)


@main.command()
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Build directory.")
@hw_options
@friendly
def synth(out, **kw):
    """Synthesise the PE array for ECP5 with Yosys and print the resources."""
    from rich.table import Table

    from eie import flow
    from eie.report import make_console
    config = config_from_options(kw)
    cells = flow.run_synth(config, out)
    table = Table(title=f"ECP5 synthesis, {config.n_pe} PEs")
    table.add_column("cell")
    table.add_column("count", justify="right")
    for k, v in sorted(cells.items()):
        table.add_row(k, str(v))
    make_console().print(table)


@main.command()
@click.option("--board", required=True, help="Board name: a file of constraints/ (ulx3s-85f, icebreaker, ...).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--images", "images_dir", type=click.Path(file_okay=False),
              help="Bake these images into the memories (their configuration is used); without them the device "
                   "loads images at run time (eie run).")
@click.option("--freq", type=float, default=None, help="Clock in MHz made by the PLL (default: the board's target).")
@click.option("--baud", type=int, default=None, help="Host link rate (default: the board's).")
@click.option("--allow-timing-fail", is_flag=True, help="Keep a bitstream whose clock misses --freq.")
@click.option("--seed", type=int, default=1, show_default=True, help="nextpnr placement seed.")
@click.option("--no-fit-check", is_flag=True, help="Run the tools even when the resource estimate says the "
                                                    "configuration does not fit (to find the limit).")
@json_option
@hw_options
@friendly
def build(board, out, images_dir, freq, baud, allow_timing_fail, seed, no_fit_check, as_json, **kw):
    """Build a bitstream for a board with Yosys and nextpnr (YoWASP): Fmax, critical path, utilisation."""
    from eie import build as fpga
    from eie.hw.boards import load_board
    from eie.hw.fit import size_for_device
    from eie.report import to_json
    out_console, log = _consoles(as_json)
    images = None
    overrides = {f: kw[f] for _, f, _ in _HW_OPTIONS if kw.get(f) is not None}
    if images_dir:
        from eie.spec.image import load_images
        images = load_images(images_dir)
        config = config_from_options(kw, base=images.config)
    elif overrides.keys() - {"n_pe"} or kw.get("config_file"):
        config = config_from_options(kw)
    else:
        device = load_board(board).device
        kw.clear()
        config = size_for_device(device, n_pe=overrides.get("n_pe"))
    result = fpga.build(board, out=out, config=config, images=images, freq_mhz=freq, baud=baud,
                        allow_timing_fail=allow_timing_fail, seed=seed, check_fit=not no_fit_check, log=log.print)
    if as_json:
        click.echo(to_json(result.report))
    else:
        out_console.print((result.out / "build.txt").read_text().rstrip())
        out_console.print(f"bitstream: {result.bitstream}")


@main.command("run")
@click.argument("images_dir", type=click.Path(file_okay=False))
@click.option("--port", required=True, help="The board's serial port, e.g. /dev/ttyUSB0.")
@click.option("--input", "input_file", required=True, type=click.Path(dir_okay=False),
              help="Inputs (batch, n_in) .npy/.npz/.pt: floats, or raw integers with --raw.")
@click.option("--raw", is_flag=True, help="Raw integer activations in and out instead of floats.")
@click.option("--baud", type=int, default=3_000_000, show_default=True, help="Host link rate.")
@click.option("--load/--no-load", "load", default=None,
              help="Always (--load) or never (--no-load) load the images; default: unless the device holds them.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Write the device's outputs (.npy).")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds to wait for an answer.")
@json_option
@friendly
def run_command(images_dir, port, input_file, raw, baud, load, out_file, timeout, as_json):
    """Run inputs on a board through its serial link; check every output against the golden model (exit 1 if not
    bit-exact)."""
    from eie.host import Device, run_on_device
    from eie.report import to_json
    from eie.spec.image import load_images
    out_console, log = _consoles(as_json)
    images = load_images(images_dir)
    x = _inputs(images, input_file, raw, log)
    with Device.open(port, baud=baud, timeout=timeout) as device:
        run = run_on_device(device, images, x.x_int, load=load)
    if out_file is not None:
        save_array_atomic(out_file, _outputs(images, run.outputs, raw))
    bad = run.mismatches
    report = {"config_hash": run.status.config_hash, "image_id": run.status.image_id, "writes": run.writes,
              "inputs": x.batch, "outputs": _outputs(images, run.outputs, raw).tolist(),
              "cycles": run.cycles.tolist(), "bit_exact": run.bit_exact, "mismatches": int(len(bad))}
    if as_json:
        click.echo(to_json(report))
    else:
        loaded = f"loaded now ({run.writes} writes)" if run.writes else "already on the device"
        out_console.print(f"device: configuration {run.status.config_hash}, {run.status.n_pe} PEs; images "
                          f"{loaded}")
        shown = _outputs(images, run.outputs, raw)
        for b in range(min(x.batch, 8)):
            values = ", ".join(f"{v:g}" for v in shown[b])
            out_console.print(f"input {b}: outputs [{values}], {run.cycles[b]} cycles")
        if x.batch > 8:
            out_console.print(f"... {x.batch - 8} more inputs")
        out_console.print(f"cycles per input: mean {run.cycles.mean():.1f}, min {run.cycles.min()}, "
                          f"max {run.cycles.max()}")
        if run.bit_exact:
            out_console.print(f"bit-exact: {x.batch} inputs, {run.outputs.size} outputs, device == golden model")
        else:
            b, row = bad[0]
            out_console.print(f"MISMATCH: {len(bad)} of {run.outputs.size} outputs differ from the golden model; "
                              f"first: input {b}, row {row}: device {run.outputs[b, row]}, golden "
                              f"{run.golden[b, row]}")
    if not run.bit_exact:
        sys.exit(1)


@main.command()
@click.option("--out", default="out/digits", show_default=True, type=click.Path(file_okay=False))
@click.option("--rtl/--no-rtl", "with_rtl", default=True, help="Also run every test image through the RTL.")
@click.option("--retrain", is_flag=True, help="Retrain the default model even if a saved one exists.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@hw_options
@friendly
def digits(out, with_rtl, retrain, seed, as_json, **kw):
    """The built-in default flow: train the 64-300-100-10 digits MLP, compress, golden, RTL."""
    from eie import flow
    from eie.compress.pipeline import make_options, rich_progress
    from eie.report import print_compress_report, print_rtl_report, rtl_report, to_json
    from eie.spec.numerics import dequantize_output
    out_console, log = _consoles(as_json)
    config = config_from_options(kw)
    out = Path(out)
    model = flow.train_digits_model(out / "model.pt", retrain=retrain, seed=seed, log=log.print)
    with rich_progress(log) as progress:
        outcome = flow.compress(model, "digits", config=config, options=make_options(config, seed=seed),
                                out=out / "images", log=log.print, progress=progress)
    report = dict(outcome.report)
    if not as_json:
        print_compress_report(report, out_console)
        ratio, loss = report["compression_ratio"], report["loss_points"]
        out_console.print(f"Deep Compression's LeNet-300-100 targets: compression {ratio:.1f}x (>= 40x: "
                          f"{'met' if ratio >= 40 else 'NOT met'}), accuracy loss {loss:+.2f} points (<= 0.5: "
                          f"{'met' if loss <= 0.5 else 'NOT met'})")
    if with_rtl:
        log.print(f"RTL: {outcome.test_inputs.shape[0]} test images through the generated Verilog on Verilator "
                  f"({config.n_pe} PEs) ...")
        run = flow.run_rtl(outcome.images, outcome.test_inputs)
        report["rtl"] = rtl_report(outcome.images, run)
        report["rtl"]["score"] = outcome.prepared.task.score(
            dequantize_output(run.outputs, outcome.images.output_frac_bits), outcome.prepared.dataset.y_test.numpy())
        if not as_json:
            out_console.print(f"RTL accuracy {report['rtl']['score']:.2f} % (golden {outcome.golden_score:.2f} %)")
            print_rtl_report(report["rtl"], out_console)
        flow.update_report(outcome.path, report)
    if as_json:
        click.echo(to_json(report))
    if with_rtl and not run.bit_exact:
        sys.exit(1)


@main.command("digits-lstm")
@click.option("--out", default="out/digits-lstm", show_default=True, type=click.Path(file_okay=False))
@click.option("--rtl/--no-rtl", "with_rtl", default=True, help="Also run every test sequence through the RTL.")
@click.option("--retrain", is_flag=True, help="Retrain the default LSTM even if a saved one exists.")
@click.option("--budget", type=float, default=1.0, show_default=True,
              help="Points of accuracy the golden model may lose against the float LSTM.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@hw_options
@friendly
def digits_lstm(out, with_rtl, retrain, budget, seed, as_json, **kw):
    """The built-in sequence flow (ESE): the digits LSTM (8 rows of 8 pixels), load-balance-aware and plain
    pruning, golden model, RTL (8 PEs unless --pes)."""
    from eie import flow, lstm_flow
    from eie.compress.pipeline import rich_progress
    from eie.report import to_json
    out_console, log = _consoles(as_json)
    config_file = kw.pop("config_file", None)
    overrides = {field: kw.pop(field) for _, field, _ in _HW_OPTIONS}
    if config_file:
        config = lstm_flow.ese_config(_config_class(config_file).from_json_file(config_file))
        config = config.replace(**{k: v for k, v in overrides.items() if v is not None})
    else:
        config = lstm_flow.digits_lstm_config(**overrides)
    with rich_progress(log) as progress:
        run = lstm_flow.digits_lstm(Path(out), config, seed=seed, retrain=retrain, with_rtl=with_rtl, budget=budget,
                                    log=log.print, progress=progress)
    report = run.report
    flow.update_report(run.balanced.path, report["balanced"])
    flow.update_report(run.plain.path, report["plain"])
    if as_json:
        click.echo(to_json(report))
    else:
        _print_digits_lstm(run, report, budget, out_console)
    if with_rtl and not (run.rtl_balanced.bit_exact and run.rtl_plain.bit_exact):
        sys.exit(1)


def _print_digits_lstm(run, report, budget, console) -> None:
    from eie import lstm_flow
    b, p = report["balanced"], report["plain"]
    lstm_flow.print_compress_report(b, console)
    console.print(f"plain pruning at the same densities: golden {p['scores']['golden']:.2f} %, gate matrices "
                  f"{p['gate_compression_ratio']:.1f}x, gate PE balance {p['matrices'][0]['pe_balance']:.3f} "
                  f"(load-balance-aware: {b['matrices'][0]['pe_balance']:.3f})")
    if "rtl" in b:
        for name, r in (("load-balance-aware pruning", b["rtl"]), ("plain pruning", p["rtl"])):
            console.print(f"[bold]RTL, {name}[/bold]: accuracy {r['score']:.2f} %")
            lstm_flow.print_rtl_report(r, console)
    ratio, loss = b["gate_compression_ratio"], b["loss_points"]
    console.print(f"accuracy: float {b['scores']['float']:.2f} %, compressed (float, shared weights) "
                  f"{b['scores']['fine_tuned']:.2f} %, golden {b['scores']['golden']:.2f} %"
                  + (f", RTL {b['rtl']['score']:.2f} %" if "rtl" in b else ""))
    console.print(f"ESE targets: gate matrices {ratio:.1f}x smaller than fp32 (>= 15x: "
                  f"{'met' if ratio >= 15 else 'NOT met'}), accuracy loss {loss:+.2f} points (<= {budget:g}: "
                  f"{'met' if loss <= budget else 'NOT met'})")
    if "rtl" in b:
        ub, up = b["rtl"]["utilisation"], p["rtl"]["utilisation"]
        better = ub["mac_h_products"] > up["mac_h_products"]
        console.print(f"PE utilisation on {b['rtl']['n_pe']} PEs, load-balance-aware vs plain pruning: gate-product "
                      f"balance {ub['gate_balance']:.3f} vs {up['gate_balance']:.3f}; measured MAC utilisation of the "
                      f"recurrent products {ub['mac_h_products']:.3f} vs {up['mac_h_products']:.3f} "
                      f"({'improved' if better else 'NOT improved'}); cycles per step "
                      f"{b['rtl']['cycles_per_step']:.1f} vs {p['rtl']['cycles_per_step']:.1f} (ideal "
                      f"{b['rtl']['ideal_per_step']:.1f} vs {p['rtl']['ideal_per_step']:.1f})")


if __name__ == "__main__":
    main()
