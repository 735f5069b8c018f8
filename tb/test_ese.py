"""cocotb test of the ESE accelerator (LSTM): whole sequences, every output against the golden model.

Run through :func:`eie.tb.runner.run_cocotb` (pytest: ``tests/test_rtl_ese.py``; Python API:
:mod:`eie.tb.ese_run`, which writes the knobs, :mod:`eie.tb.knobs`):

================ ===============================================================================
``images``       image directories, loaded one after the other into the running accelerator
``inputs``       one ``.npy`` of integer sequences ``(batch, T, I)`` per image set
``mode``         ``"check"`` (the scoreboard checks every output) or ``"run"`` (record only)
``expected``     (check) one ``.npy`` of golden outputs ``(batch, n_out)``, or ``(batch, T, n_out)``
                 for an every-step model, per image set
``outputs``      where to write each image set's outputs (optional)
``cycles``       where to write, per image set, ``cycles`` per sequence and ``phases`` (per
                 sequence, per step, the cycles of each phase), ``load_cycles``, ``cfg_writes``
``seed``         the back-pressure and idle patterns' seed
``backpressure`` the output's ready pattern (:class:`eie.tb.driver.ReadyPattern`)
``idle``         the probability of an idle cycle between inputs
``serial``       turn the scheduler's overlap off (``Flags.SERIAL``), for comparison
``inject_fault`` the scoreboard corrupts one expectation (first image set), so the test must fail
``max_cycles``   per-sequence timeout in cycles (default: a bound from the images)
================ ===============================================================================
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from eie.tb.driver import ReadyPattern, cycle_now
from eie.tb.ese_driver import ESETB
from eie.tb.knobs import read_knobs, write_result_json, write_result_npy
from eie.tb.scoreboard import Scoreboard


class SequenceScoreboard(Scoreboard):
    """The array scoreboard with outputs named by sequence, step and row."""

    def __init__(self, expected, *, n_out: int, every_step: bool, **kw):
        super().__init__(np.asarray(expected).reshape(len(expected), -1), **kw)
        self.row_count = n_out
        self.every_step = every_step

    def describe(self, b: int, row: int) -> str:
        step, j = divmod(row, self.row_count)
        where = f", step {step}" if self.every_step else ""
        return (f"sequence {b}{where}, layer {self.layer}, row {j} (PE {j % self.n_pe}, local row "
                f"{j // self.n_pe})")


def timeout_cycles(images, steps: int, p_ready: float = 1.0) -> int:
    """A generous bound on one sequence: every entry of the busiest PE, every column and row, eight
    times over per step, slowed by the output back-pressure."""
    per_step = 0
    for info in images.layers:
        busiest = max(int(images.ptr[p][info.ptr_base + info.n_in] - images.ptr[p][info.ptr_base])
                      for p in range(images.config.n_pe))
        per_step += busiest + info.n_in + info.n_out + 4 * images.config.codebook_size
    return int((8 * per_step * steps + 4000) / p_ready)


async def run_case(tb, images, x, expected, *, seed, pattern, p_idle, inject_fault, overlap, max_cycles=None):
    """Load one image set and run its sequences; returns ``(outputs, report)``."""
    info = images.lstm
    n_out = images.n_out
    per_sequence = n_out * (x.shape[1] if info.every_step else 1)
    context = (f" [seed {seed}, back-pressure p_ready={pattern.p_ready}, idle {p_idle}, {images.config.n_pe} PEs, "
               f"{'overlapped' if overlap else 'serial'} schedule, images {images.path}]")
    scoreboard = None
    if expected is not None:
        want = (x.shape[0], x.shape[1], n_out) if info.every_step else (x.shape[0], n_out)
        if expected.shape != want:
            raise RuntimeError(f"expected outputs have shape {expected.shape}, the sequences need {want}")
        scoreboard = SequenceScoreboard(expected, n_out=n_out, every_step=info.every_step, n_pe=images.config.n_pe,
                                        layer=len(images.layers) - 1, inject_fault=inject_fault, context=context)
    max_cycles = int(max_cycles or timeout_cycles(images, x.shape[1], pattern.p_ready))
    t0, wall0 = cycle_now(), time.monotonic()
    writes = await tb.load_images(images, overlap=overlap)
    load_cycles, load_wall = cycle_now() - t0, time.monotonic() - wall0
    outputs = np.zeros((x.shape[0], per_sequence), dtype=np.int64)
    cycles, phases = [], []
    for b, seq in enumerate(x):
        check = None if scoreboard is None else (lambda row, got, cycle, b=b: scoreboard.check(b, row, got, cycle))
        result = await tb.run(seq.tolist(), per_sequence, max_cycles=max_cycles, on_output=check)
        outputs[b] = result.outputs
        cycles.append(result.cycles)
        phases.append({str(k): v for k, v in result.phases.items()})
    if scoreboard is not None:
        scoreboard.finish()
    shape = (x.shape[0], x.shape[1], n_out) if info.every_step else (x.shape[0], n_out)
    return outputs.reshape(shape), {"images": str(images.path), "cycles": cycles, "phases": phases,
                                    "load_cycles": load_cycles, "load_wall_seconds": round(load_wall, 3),
                                    "cfg_writes": writes}


@cocotb.test()
async def run_lstm(dut):
    """Load each image set through ``cfg`` into the running accelerator, run its sequences, check (or
    record) every output."""
    from eie.spec.ese_image import load_lstm_images

    t_wall = time.monotonic()
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
    overlap = not knobs.flag("serial")

    tb = ESETB(dut, seed=seed, backpressure=pattern, p_idle=p_idle)
    await tb.start()
    reports, n_sequences = [], 0
    for k, image_dir in enumerate(image_dirs):
        images = load_lstm_images(image_dir)
        x = np.load(inputs[k])
        if x.ndim != 3:
            raise RuntimeError(f"{inputs[k]} holds shape {x.shape}; the sequences must be (batch, steps, inputs)")
        want = None if expected[k] is None else np.load(expected[k])
        y, report = await run_case(tb, images, x, want, seed=seed, pattern=pattern, p_idle=p_idle,
                                   inject_fault=knobs.flag("inject_fault") and k == 0, overlap=overlap,
                                   max_cycles=knobs.get("max_cycles"))
        if outputs_to:
            write_result_npy(outputs_to[k], y)
        reports.append(report)
        n_sequences += x.shape[0]
    wall = time.monotonic() - t_wall
    simulated = cycle_now()
    dut._log.info("%d image set(s), %d sequences: %s; %d simulated cycles in %.2f s (%.0f cycles/s)",
                  len(image_dirs), n_sequences, "all outputs bit-exact" if mode == "check" else "outputs recorded",
                  simulated, wall, simulated / wall if wall else 0.0)
    if (cyc_path := knobs.path("cycles", required=False)) is not None:
        summary = {"cases": reports, "simulated_cycles": simulated, "wall_seconds": round(wall, 3), "seed": seed,
                   "p_ready": pattern.p_ready, "p_idle": p_idle, "overlap": overlap}
        write_result_json(cyc_path, summary)
