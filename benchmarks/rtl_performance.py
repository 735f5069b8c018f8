"""RTL performance figures (printed, not asserted): cycles per layer against the ideal, load
efficiency, the activation-queue depth sweep (EIE Fig. 8's question) and Verilator speed.

Every run is also checked bit-exact against the golden model: a performance figure from a
wrong result is worthless.

    .venv/bin/python benchmarks/rtl_performance.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eie.sim.cycles import layer_work
from eie.sim.golden import golden_layers
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import fit_config, write_images
from eie.spec.image import load_images
from eie.tb.sim_run import simulate

console = Console(highlight=False)


def run_case(root: Path, config: EIEConfig, shapes, *, density, batch, act_density, seed=0):
    net = random_network(seed, shapes, config, density=density)
    config = fit_config(net, config)
    images = load_images(write_images(net, config, root / f"img-{config.config_hash()}-{seed}"))
    x = random_inputs(seed + 1, batch, shapes[0], config, density=act_density)
    layers = golden_layers(images, x)
    result = simulate(images, x, config=config)
    wall = result.report["wall_seconds"]             # the simulation alone, not the build
    if not np.array_equal(result.outputs, layers[-1]):
        raise SystemExit(f"RTL differs from the golden model for {config}: benchmark aborted")
    inputs = [x] + layers[:-1]
    works = [layer_work(images, l, inputs[l]) for l in range(len(images.layers))]
    return result, works, wall


def compute_rate(result, wall: float) -> float:
    """Simulated cycles per second once the images are loaded: the RTL running free between
    one Python wake-up per input and per output (loading writes one ``cfg`` beat per wake-up)."""
    rep = result.report
    return (rep["simulated_cycles"] - rep["load_cycles"]) / (wall - rep["load_wall_seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller layers and batches")
    args = parser.parse_args()
    n, batch = (256, 4) if args.quick else (1024, 8)
    root = Path(tempfile.mkdtemp(prefix="eie-bench-"))

    table = Table(title=f"random {n}x{n} layers, 10% weights, 35% activations (EIE's Alex-7 ratios)")
    for col in ("PEs", "cycles/layer", "busiest PE MACs", "non-zero inputs", "ideal/cycles",
                "load efficiency", "sim cycles/s computing", "sim cycles/s loading"):
        table.add_column(col, justify="right")
    for n_pe in (4, 16, 64):
        config = EIEConfig(n_pe=n_pe)
        result, works, wall = run_case(root, config, [n, n, n], density=0.1, batch=batch, act_density=0.35)
        cyc = result.layer_cycles[:, 0].mean()
        w = works[0]
        table.add_row(str(n_pe), f"{cyc:.0f}", f"{w.busiest:.0f}", f"{w.nonzero_inputs:.0f}",
                      f"{w.ideal / cyc:.2f}", f"{w.total / n_pe / cyc:.2f}",
                      f"{compute_rate(result, wall):,.0f}",
                      f"{result.report['load_cycles'] / result.report['load_wall_seconds']:,.0f}")
    console.print(table)

    sweep = Table(title=f"activation queue depth sweep, 64 PEs, {n}x{n} at 10%")
    for col in ("queue depth", "cycles/layer", "busiest PE MACs", "non-zero inputs", "load efficiency"):
        sweep.add_column(col, justify="right")
    base = EIEConfig(n_pe=64)
    for depth in (1, 2, 4, 8, 16):
        result, works, _ = run_case(root, base.replace(queue_depth=depth), [n, n], density=0.1,
                                    batch=batch, act_density=0.35)
        cyc = result.layer_cycles[:, 0].mean()
        w = works[0]
        sweep.add_row(str(depth), f"{cyc:.0f}", f"{w.busiest:.0f}", f"{w.nonzero_inputs:.0f}",
                      f"{w.total / 64 / cyc:.2f}")
    console.print(sweep)


if __name__ == "__main__":
    main()
