"""cocotb tests of the EIE accelerator (top level).

Run through :func:`eie.tb.runner.run_cocotb` (pytest: ``tests/test_rtl_accelerator.py``; Python API:
:func:`eie.tb.sim_run.simulate`, which writes the knobs, :mod:`eie.tb.knobs`):

================ ===============================================================================
``images``       image directories (required), loaded into the DUT through ``cfg`` one after the
                 other without a reset; ``inputs``, ``expected`` and ``outputs`` list one path each
``inputs``       ``.npy`` of integer input activations, ``(batch, n_in)`` (required)
``expected``     ``.npy`` of golden outputs, ``(batch, n_out)`` (required when checking)
``mode``         ``"check"`` (default): compare every output; ``"run"``: only record outputs
``outputs``      where to write the RTL outputs as ``.npy`` (optional)
``cycles``       where to write the measured cycles as JSON (optional): per image set
                 (``cases``) the ``cycles``, ``layer_cycles`` (the last layer ends at its first
                 output), ``output_phase`` (streaming the outputs) and
                 ``compute_wall_seconds``/``compute_cpu_seconds`` (wall and simulator CPU time of
                 the layers: the RTL running free from the last input to the first output) of
                 every input, ``load_cycles``, ``load_wall_seconds`` and ``cfg_writes``; the
                 simulated cycles, the wall time and the simulator process's CPU time
``seed``         seed of the back-pressure and idle patterns (default 0)
``backpressure`` ``"none"`` (default), ``"random"`` or ``"random:P"`` (``o.ready`` high with prob. P)
``idle``         probability of an idle cycle before each ``cfg``/``i`` beat (default 0)
``inject_fault`` the scoreboard corrupts one expectation (first image set), so the test must fail
``max_cycles``   per-input timeout in cycles (default: a bound from the images)
``preloaded``    the simulator initialised the PEs' memories from the (single) image set
                 (``+eie_preload``, see :func:`eie.tb.runner.write_preload`); only the codebooks,
                 the layer table and the layer count go through ``cfg``
``free_run``     (test ``free_run``) the cycles to run
================ ===============================================================================
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from eie.tb.driver import TB, ReadyPattern, cycle_now
from eie.tb.knobs import read_knobs, write_result_json, write_result_npy
from eie.tb.scoreboard import Scoreboard


def timeout_cycles(images, p_ready: float = 1.0) -> int:
    """A generous bound on one input's cycles: every entry of the busiest PE, every column and
    every output row, eight times over, slowed by the output back-pressure."""
    work = 0
    for info in images.layers:
        per_pe = [int(images.ptr[p][info.ptr_base + info.n_in] - images.ptr[p][info.ptr_base])
                  for p in range(images.config.n_pe)]
        work += max(per_pe) + info.n_in + info.n_out
    return int((8 * work + 2000) / p_ready)


async def run_case(tb, images, x, expected, *, seed, pattern, p_idle, inject_fault, preloaded=False,
                   max_cycles=None):
    """Load one image set through ``cfg`` and run its input vectors; returns
    ``(outputs, report)``. With ``expected``, a scoreboard checks every output as it arrives."""
    cfg = images.config
    n_layers, n_out = len(images.layers), images.n_out
    context = (f" [seed {seed}, back-pressure p_ready={pattern.p_ready}, idle {p_idle}, "
               f"{cfg.n_pe} PEs, images {images.path}]")
    scoreboard = None
    if expected is not None:
        if expected.shape != (x.shape[0], n_out):
            raise RuntimeError(f"expected outputs have shape {expected.shape}, the inputs of "
                               f"{images.path} need {(x.shape[0], n_out)}")
        scoreboard = Scoreboard(expected, n_pe=cfg.n_pe, layer=n_layers - 1,
                                inject_fault=inject_fault, context=context)
    max_cycles = int(max_cycles or timeout_cycles(images, pattern.p_ready))
    t0, wall0 = cycle_now(), time.monotonic()
    writes = await tb.load_images(images, preloaded=preloaded)
    load_cycles, load_wall = cycle_now() - t0, time.monotonic() - wall0
    outputs = np.zeros((x.shape[0], n_out), dtype=np.int64)
    cycles, layer_cycles, output_phase, compute_wall, compute_cpu = [], [], [], [], []
    for b, vec in enumerate(x):
        check = None if scoreboard is None else (
            lambda row, got, cycle, b=b: scoreboard.check(b, row, got, cycle))
        result = await tb.run([int(v) for v in vec], n_out, max_cycles=max_cycles, on_output=check)
        outputs[b] = result.outputs
        cycles.append(result.cycles)
        output_phase.append(result.output_phase)
        compute_wall.append(round(result.compute_wall, 4))
        compute_cpu.append(round(result.compute_cpu, 4))
        per_layer = list(result.per_layer_cycles) + [0] * (n_layers - len(result.per_layer_cycles))
        layer_cycles.append(per_layer[:n_layers])
    if scoreboard is not None:
        scoreboard.finish()
    return outputs, {"images": str(images.path), "cycles": cycles, "layer_cycles": layer_cycles,
                     "output_phase": output_phase, "compute_wall_seconds": compute_wall,
                     "compute_cpu_seconds": compute_cpu,
                     "load_cycles": load_cycles,
                     "load_wall_seconds": round(load_wall, 3), "cfg_writes": writes}


@cocotb.test()
async def run_network(dut):
    """Load each image set through ``cfg`` (one after the other into the same running
    accelerator), run its input vectors, check (or record) every output."""
    from eie.spec.image import load_images

    t_wall, t_cpu = time.monotonic(), time.process_time()
    knobs = read_knobs()
    image_dirs = knobs.paths("images")
    inputs = knobs.paths("inputs")
    mode = knobs.get("mode", "check")
    if mode not in ("check", "run"):
        raise RuntimeError(f"knob mode must be 'check' or 'run', not {mode!r}")
    expected = knobs.paths("expected") if mode == "check" else [None] * len(image_dirs)
    outputs_to = knobs.paths("outputs", required=False)
    for name, paths in (("inputs", inputs), ("expected", expected), ("outputs", outputs_to or image_dirs)):
        if len(paths) != len(image_dirs):
            raise RuntimeError(f"knob {name} lists {len(paths)} paths for {len(image_dirs)} image sets")
    seed = int(knobs.get("seed", 0))
    pattern = ReadyPattern.parse(knobs.get("backpressure"), seed)
    p_idle = float(knobs.get("idle", 0.0))
    preloaded = knobs.flag("preloaded")
    if preloaded and len(image_dirs) != 1:
        raise RuntimeError(f"a preloaded simulation takes one image set, not {len(image_dirs)}")

    tb = TB(dut, seed=seed, backpressure=pattern, p_idle=p_idle)
    await tb.start()
    reports, n_inputs = [], 0
    for k, image_dir in enumerate(image_dirs):
        images = load_images(image_dir)
        x = np.atleast_2d(np.load(inputs[k]))
        want = None if expected[k] is None else np.load(expected[k])
        y, report = await run_case(tb, images, x, want, seed=seed, pattern=pattern, p_idle=p_idle,
                                   inject_fault=knobs.flag("inject_fault") and k == 0,
                                   preloaded=preloaded, max_cycles=knobs.get("max_cycles"))
        if outputs_to:
            write_result_npy(outputs_to[k], y)
        reports.append(report)
        n_inputs += x.shape[0]
    wall, cpu = time.monotonic() - t_wall, time.process_time() - t_cpu
    simulated = cycle_now()
    dut._log.info("%d image set(s), %d inputs: %s; %d simulated cycles in %.2f s (%.0f cycles/s)",
                  len(image_dirs), n_inputs, "all outputs bit-exact" if mode == "check" else
                  "outputs recorded", simulated, wall, simulated / wall if wall else 0.0)
    if (cyc_path := knobs.path("cycles", required=False)) is not None:
        summary = {"cases": reports, "simulated_cycles": simulated, "wall_seconds": round(wall, 3),
                   "cpu_seconds": round(cpu, 3),
                   "seed": seed, "p_ready": pattern.p_ready, "p_idle": p_idle}
        write_result_json(cyc_path, summary)


@cocotb.test()
async def free_run(dut):
    """Reset, then let the RTL run ``free_run`` cycles behind one timer (no Python wake-up);
    writes ``{"cycles", "wall_seconds", "cpu_seconds"}`` to ``cycles``. Measures the simulator
    alone (``benchmarks/sim_speed.py``); without the knob it does nothing."""
    from cocotb.triggers import Timer

    from eie.tb.runner import CLOCK_PERIOD_NS
    knobs = read_knobs()
    if "free_run" not in knobs:
        return
    n = int(knobs.get("free_run"))
    tb = TB(dut)
    await tb.start()
    wall, cpu = time.monotonic(), time.process_time()
    await Timer(n * CLOCK_PERIOD_NS, "ns")
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    if (path := knobs.path("cycles", required=False)) is not None:
        write_result_json(path, {"cycles": n, "wall_seconds": round(wall, 4), "cpu_seconds": round(cpu, 4)})
