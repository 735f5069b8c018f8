"""Compression and emission of an AlexNet-FC6-shaped layer (9216 x 4096, 9% density, 64 PEs).

Prints the time of each stage (magnitude pruning, k-means weight sharing, fixed-point calibration,
image emission with verification) and the storage figures. A figure, not a timed test; the
target from the issue is 30 s on 2 cores.

    .venv/bin/python benchmarks/compress_alexnet_fc6.py [--pes 64] [--density 0.09]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eie.compress.fixedpoint import calibrate
from eie.compress.prune import magnitude_mask, target_count
from eie.compress.quantize import SharedLayer, share_weights
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images

console = Console(highlight=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pes", type=int, default=64)
    parser.add_argument("--density", type=float, default=0.09)
    parser.add_argument("--n-in", type=int, default=9216)
    parser.add_argument("--n-out", type=int, default=4096)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    weight = rng.standard_normal((args.n_out, args.n_in), dtype=np.float32) * 0.01
    bias = rng.standard_normal(args.n_out) * 0.01
    x_calib = np.maximum(rng.standard_normal((16, args.n_in)), 0)     # ReLU'd activations

    times = {}
    t = time.perf_counter()
    mask = magnitude_mask(weight, target_count(weight.size, args.density))
    times["magnitude pruning"] = time.perf_counter() - t

    t = time.perf_counter()
    index, centroids = share_weights(weight, mask, weight_bits=4)
    times["k-means weight sharing (15 clusters)"] = time.perf_counter() - t

    t = time.perf_counter()
    layer = SharedLayer(index=index, centroids=centroids, bias=bias, relu=True, name="fc6")
    rows = -(-args.n_out // args.pes)
    config = EIEConfig(n_pe=args.pes, max_rows_per_pe=max(rows, -(-args.n_in // args.pes)),
                       mat_depth=8192, ptr_bits=17, ptr_depth=2 * (args.n_in // 2 + 1),
                       bias_depth=rows, acc_bits=48)
    net, reference = calibrate([layer], x_calib, config)
    times["fixed-point calibration"] = time.perf_counter() - t

    t = time.perf_counter()
    out = write_images(net, config, Path(tempfile.mkdtemp(prefix="eie-fc6-")) / "images",
                       reference=reference)
    times["emission + verification (load_images)"] = time.perf_counter() - t

    table = Table(title=f"AlexNet-FC6-shaped layer {args.n_in}x{args.n_out}, density {args.density:.0%}, "
                        f"{args.pes} PEs")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    total = sum(times.values())
    for name, sec in times.items():
        table.add_row(name, f"{sec:.2f}", f"{sec / total:.0%}")
    table.add_row("total", f"{total:.2f}", "100%")
    console.print(table)
    nnz = int(mask.sum())
    size = sum(p.stat().st_size for p in out.iterdir())
    console.print(f"non-zeros {nnz:,} ({nnz / weight.size:.2%}); image directory {size / 2**20:.1f} MiB of hex "
                  f"text; target 30 s on 2 cores: {'met' if total <= 30 else 'NOT met'}")


if __name__ == "__main__":
    main()
