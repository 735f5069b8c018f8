"""cocotb tests of the EIE accelerator (top level), configured through environment variables.

Run through :func:`tb.runner.run_cocotb` (pytest: ``tests/test_rtl_accelerator.py``; Python API:
:func:`tb.sim_run.simulate`). Variables:

==================== ===========================================================================
``EIE_IMAGES``       image directory (required); loaded into the DUT through ``cfg``
``EIE_INPUTS``       ``.npy`` of integer input activations, ``(batch, n_in)`` (required)
``EIE_EXPECTED``     ``.npy`` of golden outputs, ``(batch, n_out)`` (required when checking)
``EIE_MODE``         ``check`` (default): compare every output; ``run``: only record outputs
``EIE_OUTPUTS``      where to write the RTL outputs as ``.npy`` (optional)
``EIE_CYCLES``       where to write the measured cycles as JSON (optional): per input ``cycles``
                     and ``layer_cycles``, plus ``load_cycles``, ``cfg_writes``, the simulated
                     cycles and the wall time
``EIE_SEED``         seed of the back-pressure and idle patterns (default 0)
``EIE_BACKPRESSURE`` ``none`` (default), ``random`` or ``random:P`` (``o.ready`` high with prob. P)
``EIE_IDLE``         probability of an idle cycle before each ``cfg``/``i`` beat (default 0)
``EIE_INJECT_FAULT`` ``1``: the scoreboard corrupts one expectation, so the test must fail
``EIE_MAX_CYCLES``   per-input timeout in cycles (default: a bound from the images)
==================== ===========================================================================
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np

from tb.driver import TB, ReadyPattern, cycle_now
from tb.scoreboard import Scoreboard, inject_fault_enabled


def _env_path(name: str, required: bool = True) -> Path | None:
    value = os.environ.get(name)
    if not value:
        if required:
            raise RuntimeError(f"environment variable {name} is not set; see tb/test_accelerator.py")
        return None
    return Path(value)


def timeout_cycles(images, p_ready: float = 1.0) -> int:
    """A generous bound on one input's cycles: every entry of the busiest PE, every column and
    every output row, eight times over, slowed by the output back-pressure."""
    work = 0
    for info in images.layers:
        per_pe = [int(images.ptr[p][info.ptr_base + info.n_in] - images.ptr[p][info.ptr_base])
                  for p in range(images.config.n_pe)]
        work += max(per_pe) + info.n_in + info.n_out
    return int((8 * work + 2000) / p_ready)


def _write_atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


@cocotb.test()
async def run_network(dut):
    """Load the images through ``cfg``, run every input vector, check (or record) every output."""
    from sim.image import load_images

    t_wall = time.monotonic()
    images = load_images(_env_path("EIE_IMAGES"))
    x = np.load(_env_path("EIE_INPUTS"))
    if x.ndim == 1:
        x = x[None, :]
    mode = os.environ.get("EIE_MODE", "check")
    if mode not in ("check", "run"):
        raise RuntimeError(f"EIE_MODE must be 'check' or 'run', not {mode!r}")
    seed = int(os.environ.get("EIE_SEED", "0"))
    pattern = ReadyPattern.parse(os.environ.get("EIE_BACKPRESSURE"), seed)
    p_idle = float(os.environ.get("EIE_IDLE", "0"))
    cfg = images.config
    n_layers = len(images.layers)
    n_out = images.n_out
    context = (f" [seed {seed}, back-pressure p_ready={pattern.p_ready}, idle {p_idle}, "
               f"{cfg.n_pe} PEs, queue depth {cfg.queue_depth}, images {images.path}]")
    scoreboard = None
    if mode == "check":
        expected = np.load(_env_path("EIE_EXPECTED"))
        if expected.shape != (x.shape[0], n_out):
            raise RuntimeError(f"EIE_EXPECTED has shape {expected.shape}, the inputs need "
                               f"{(x.shape[0], n_out)}")
        scoreboard = Scoreboard(expected, n_pe=cfg.n_pe, layer=n_layers - 1,
                                inject_fault=inject_fault_enabled(os.environ), context=context)
    max_cycles = int(os.environ.get("EIE_MAX_CYCLES") or timeout_cycles(images, pattern.p_ready))

    tb = TB(dut, seed=seed, backpressure=pattern, p_idle=p_idle)
    await tb.start()
    t0 = cycle_now()
    writes = await tb.load_images(images)
    load_cycles = cycle_now() - t0

    outputs = np.zeros((x.shape[0], n_out), dtype=np.int64)
    cycles, layer_cycles = [], []
    for b, vec in enumerate(x):
        check = None if scoreboard is None else (
            lambda row, got, cycle, b=b: scoreboard.check(b, row, got, cycle))
        result = await tb.run([int(v) for v in vec], n_out, max_cycles=max_cycles, on_output=check)
        outputs[b] = result.outputs
        cycles.append(result.cycles)
        per_layer = list(result.per_layer_cycles) + [0] * (n_layers - len(result.per_layer_cycles))
        layer_cycles.append(per_layer[:n_layers])
    if scoreboard is not None:
        scoreboard.finish()
    wall = time.monotonic() - t_wall
    simulated = cycle_now()
    dut._log.info("%d inputs: %s; cycles per input mean %.1f; %d simulated cycles in %.2f s "
                  "(%.0f cycles/s)", x.shape[0], "all outputs bit-exact" if scoreboard else
                  "outputs recorded", float(np.mean(cycles)) if cycles else 0.0, simulated, wall,
                  simulated / wall if wall else 0.0)

    if (out_path := _env_path("EIE_OUTPUTS", required=False)) is not None:
        _write_atomic(out_path, lambda p: np.save(open(p, "wb"), outputs))
    if (cyc_path := _env_path("EIE_CYCLES", required=False)) is not None:
        report = {"cycles": cycles, "layer_cycles": layer_cycles, "load_cycles": load_cycles,
                  "cfg_writes": writes, "simulated_cycles": simulated,
                  "wall_seconds": round(wall, 3), "seed": seed, "p_ready": pattern.p_ready,
                  "n_pe": cfg.n_pe, "queue_depth": cfg.queue_depth}
        _write_atomic(cyc_path, lambda p: p.write_text(json.dumps(report) + "\n"))
