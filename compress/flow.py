"""End-to-end flows behind the ``eie`` command: model -> images -> golden -> RTL.

The CLI parses options and prints; this module does the work, so that the same steps are
available from Python (and from the tests) without going through click.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from hw.config import EIEConfig

console = Console(highlight=False)

__all__ = ["write_rtl", "run_rtl", "verify_rtl", "run_synth", "print_golden_comparison",
           "print_cycles", "accuracy"]


def accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return 100.0 * float(np.mean(np.argmax(scores, axis=1) == labels))


# --- golden ----------------------------------------------------------------------------------

def print_golden_comparison(images, x_float, y_int, labels=None) -> dict:
    """Print the golden model next to the float reference (from the manifest) on float inputs."""
    from sim.golden import dequantize_output
    from sim.reference import reference_forward_float
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

    from hw.generate import generate_verilog
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
    from tb.sim_run import simulate
    config = images.config if queue_depth is None else images.config.replace(queue_depth=queue_depth)
    return simulate(images, x_int, config=config)


def print_cycles(images, x_int, result) -> None:
    """Cycles per input and per layer, next to the ideal (busiest PE's work) — see sim.cycles."""
    from sim.cycles import layer_work
    from sim.golden import golden_layers
    layer_inputs = [np.asarray(x_int)] + golden_layers(images, x_int)[:-1]
    cyc = np.asarray(result.cycles)
    console.print(f"RTL: {cyc.size} inputs, cycles per input: mean {cyc.mean():.1f}, "
                  f"min {cyc.min()}, max {cyc.max()}")
    per_layer = np.asarray(result.layer_cycles)            # (batch, n_layers)
    table = Table(title="cycles per layer (mean over inputs)")
    for col in ("layer", "shape", "cycles", "ideal", "ideal/cycles", "load efficiency"):
        table.add_column(col, justify="right")
    works = [layer_work(images, l, layer_inputs[l]) for l in range(len(images.layers))]
    for l, info in enumerate(images.layers):
        w = works[l]
        c = float(per_layer[:, l].mean())
        table.add_row(str(l), f"{info.n_in}x{info.n_out}", f"{c:.1f}", f"{w.ideal:.1f}",
                      f"{w.ideal / c:.2f}", f"{w.total / images.config.n_pe / c:.2f}")
    console.print(table)


def verify_rtl(images, x_int, *, queue_depth=None) -> bool:
    """Golden model and RTL on the same inputs; prints the first mismatch. True when identical."""
    from sim.golden import run_golden
    expected = run_golden(images, x_int)
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
    print_cycles(images, x_int, result)
    return True


def run_synth(config: EIEConfig, out) -> dict:
    """Yosys synthesis for ECP5; prints and returns the cell counts."""
    from hw.synth import synth_ecp5
    cells = synth_ecp5(config, out)
    table = Table(title=f"ECP5 synthesis, {config.n_pe} PEs")
    table.add_column("cell")
    table.add_column("count", justify="right")
    for k, v in sorted(cells.items()):
        table.add_row(k, str(v))
    console.print(table)
    return cells
