"""Verilator simulation speed of the 64-PE EIE array on an Alex-7-shaped layer (issue 9).

An Alex-7-shaped layer (4096x4096, 9% weights, 35.3% non-zero activations) on 64 PEs with queue
depth 8 goes through :func:`eie.tb.sim_run.simulate`, every output checked bit-exact against the
golden model:

* end to end with nothing cached (Verilog generation and the Verilator build included, in a
  fresh build directory), then with the build cached;
* its images streamed through ``cfg`` instead of preloaded (the ``cfg`` load rate);
* the simulated cycles per second while computing (the RTL running free from the last input to
  the first output), per wall second and per CPU second of the simulator process (the second
  is what the simulator can do on a machine shared with other jobs);
* the RTL running free behind one timer for a fixed number of cycles (no testbench at all).

``--levers`` also builds the 64-PE array with each lever off (reset as a top-level input; g++
``-O0``, ``-O1``, ``-O2``) and measures each build's free-running speed: about 15 minutes.

    .venv/bin/python benchmarks/sim_speed.py [--levers] [--inputs N]

Measured on the project's 2-core machine while other jobs were running (load average 3-10, so
wall times are pessimistic; the CPU-second rates are the simulator's own). 64 PEs, Alex-7
memories; "free" is the RTL running free after reset behind one timer, "computing" the layers
of the Alex-7 run (last input to first output):

=========================================== ========= ========================= ================
lever (cumulative)                           g++ CPU   free cycles/CPU s         Alex-7, 2 inputs
=========================================== ========= ========================= ================
before: -O0, zero initialisers, all via cfg  43 s      5.4k                      ~280 s (issue)
no all-zero initialisers (Verilog 118->5 MB) --        --                        Verilog 6 min->21 s
-O1 per-cycle code, -O0 slow code, split     69 s      27.1k (-O2: 29.9k, 95 s)  --
reset behind a register                      60 s      41.6k                     --
PE memories preloaded, 23 cfg writes         --        --                        cached 5.5 s
  (final run, load 4.5)                      122 s*    37.4k (37.2k/s wall)      uncached 167 s
=========================================== ========= ========================= ================

(*) wall seconds of the whole Verilator build at load 4.5. While computing: 25.7k cycles/CPU s,
17k cycles/s wall. Streaming the 491,653 image words through ``cfg`` instead: 12.5k writes/s
(one clock cycle of the 64-PE model per write), 43 s. Not kept: PE units shared between PEs
(Verilator inlines them again; with ``-fno-inline`` 204 s of g++ and 30.7k cycles/CPU s),
``--threads 2`` (1.7k cycles/s against the other jobs), every input registered (no faster).

Again after the folded-padding PE was committed (92fcf5b), load average 5.2: uncached 206 s
(Verilator build 158 s), cached 6.5 s (simulation 4.4 s); computing 14.7k cycles/s wall, 21.0k per
CPU s; free-running 28.4k cycles/CPU s; 491,653 writes streamed through ``cfg`` at 7.2k/s (75 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from eie.sim.golden import run_golden
from eie.sim.random_net import random_inputs, random_network
from eie.spec.config import EIEConfig
from eie.spec.emit import write_images
from eie.spec.image import load_images

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eie_report import hw_fingerprint  # noqa: E402  (the report keys RTL figures by the same sources)

ROOT = Path(__file__).resolve().parents[1]
console = Console(highlight=False, width=150)
#: The docstring's record of what each lever gave (printed, and quoted by the EIE report).
LEVERS_RECORD = __doc__[__doc__.index("Measured on"):].strip()

CONFIG = EIEConfig(n_pe=64, mat_depth=16384, ptr_bits=18, ptr_depth=32768, max_rows_per_pe=512,
                   bias_depth=512, max_layers=1, queue_depth=8)
SHAPE, DENSITY, ACT_DENSITY = (4096, 4096), 0.09, 0.353


def alex7(root: Path, batch: int):
    t = time.monotonic()
    net = random_network(0, list(SHAPE), CONFIG, density=DENSITY)
    images = load_images(write_images(net, CONFIG, root / "alex7"), expect_config=CONFIG)
    x = random_inputs(1, batch, SHAPE[0], CONFIG, density=ACT_DENSITY)
    return images, x, time.monotonic() - t


def timed_simulate(images, x, **kw):
    from eie.tb.sim_run import simulate
    t = time.monotonic()
    result = simulate(images, x, **kw)
    wall = time.monotonic() - t
    if not np.array_equal(result.outputs, run_golden(images, x)):
        raise SystemExit("RTL differs from the golden model: benchmark aborted")
    return result, wall


def compute_rates(report) -> tuple[float, float]:
    """Simulated cycles per wall and per CPU second while the layers compute."""
    cycles = float(np.sum(report["layer_cycles"]))
    return cycles / sum(report["compute_wall_seconds"]), cycles / sum(report["compute_cpu_seconds"])


def free_run(build, cycles: int) -> dict:
    from eie.tb.knobs import knob_plusargs
    from eie.tb.runner import run_cocotb
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "free.json"
        run_cocotb(build, "eie.tb.test_accelerator", "free_run",
                   plusargs=knob_plusargs(Path(tmp) / "knobs.json", free_run=cycles, cycles=out))
        return json.loads(out.read_text())


def end_to_end(root: Path, images, x) -> tuple[Table, dict]:
    from eie.tb.runner import build_config
    table = Table(title=f"Alex-7 shape {SHAPE[0]}x{SHAPE[1]}, {DENSITY:.0%} weights, "
                        f"{ACT_DENSITY:.1%} activations, 64 PEs, {x.shape[0]} inputs, bit-exact")
    for col in ("run", "total s", "build s", "simulation s", "cfg writes",
                "cfg writes/s", "cycles/s computing", "cycles/CPU s computing"):
        table.add_column(col, justify="right")
    os.environ["EIE_BUILD_DIR"] = str(root / "cache")   # nothing cached
    runs = [("uncached", {}), ("cached", {}), ("cached, streamed through cfg", {"preload": False})]
    figures = {"runs": {}}
    for name, kw in runs:
        result, wall = timed_simulate(images, x, **kw)
        rep = result.report
        rate, cpu_rate = compute_rates(rep)
        load = rep["cfg_writes"] / rep["load_wall_seconds"] if rep["load_wall_seconds"] else 0.0
        built, build_s = "cached", None
        if name == "uncached":   # the Verilator build's own stamp; the rest is Verilog generation
            stamp = json.loads((build_config(CONFIG).build_dir / "eie-build.json").read_text())
            built, build_s = f"{stamp['seconds']:.1f} build", stamp["seconds"]
        table.add_row(name, f"{wall:.1f}", built, f"{rep['wall_seconds']:.1f}", f"{rep['cfg_writes']:,}",
                      f"{load:,.0f}", f"{rate:,.0f}", f"{cpu_rate:,.0f}")
        figures["runs"][name] = {"total_seconds": wall, "build_seconds": build_s,
                                 "simulation_seconds": rep["wall_seconds"], "cfg_writes": rep["cfg_writes"],
                                 "cfg_writes_per_second": load, "cycles_per_second": rate,
                                 "cycles_per_cpu_second": cpu_rate}
    free = free_run(build_config(CONFIG), 50_000)
    figures["free_running"] = {"cycles_per_second": free["cycles"] / free["wall_seconds"],
                               "cycles_per_cpu_second": free["cycles"] / free["cpu_seconds"]}
    table.caption = (f"RTL free-running (one timer, no testbench): {free['cycles'] / free['wall_seconds']:,.0f} "
                     f"cycles/s, {free['cycles'] / free['cpu_seconds']:,.0f} cycles/CPU s")
    return table, figures


def levers(root: Path, config: EIEConfig = CONFIG) -> Table:
    from eie.hw.generate import generate_verilog
    from eie.tb.runner import build_verilog, config_verilog
    os.environ["EIE_BUILD_DIR"] = str(root / "levers")
    variants = (("top-level input", generate_verilog(config, zero_init=False)),
                ("registered", config_verilog(config)))
    table = Table(title=f"levers, {config.n_pe} PEs (RTL free-running 20,000 cycles)")
    for col in ("reset", "g++", "build s", "cycles/s", "cycles/CPU s"):
        table.add_column(col, justify="right")
    for reset, text in variants:
        for opt in ("-O0", "-O1", "-O2"):
            build = build_verilog(text, "eie_top", config_hash=f"lever{opt}", cxx_opt=opt)
            free = free_run(build, 20_000)
            table.add_row(reset, opt, f"{build.seconds:.0f}", f"{free['cycles'] / free['wall_seconds']:,.0f}",
                          f"{free['cycles'] / free['cpu_seconds']:,.0f}")
    return table


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=2, help="input vectors (default 2)")
    parser.add_argument("--levers", action="store_true", help="also build every lever off (~15 min)")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench-report" / "sim-speed.json",
                        help="where the figures go for the EIE report (benchmarks/eie_report.py)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="eie-simspeed-"))
    saved = os.environ.get("EIE_BUILD_DIR")
    try:
        images, x, gen_s = alex7(root, args.inputs)
        console.print(f"images and inputs: {gen_s:.1f} s; load average {os.getloadavg()[0]:.1f} on "
                      f"{os.cpu_count()} cores")
        table, figures = end_to_end(root, images, x)
        console.print(table)
        figures.update(shape=list(SHAPE), density=DENSITY, act_density=ACT_DENSITY, n_pe=CONFIG.n_pe,
                       inputs=int(x.shape[0]), load_average=os.getloadavg()[0], cores=os.cpu_count(),
                       hardware=hw_fingerprint(), levers_record=LEVERS_RECORD)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
        if args.levers:
            console.print(levers(root))
        console.print("Recorded when the levers were chosen (benchmarks/sim_speed.py):")
        console.print(LEVERS_RECORD, markup=False)
    finally:
        if saved is None:
            os.environ.pop("EIE_BUILD_DIR", None)
        else:
            os.environ["EIE_BUILD_DIR"] = saved
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
