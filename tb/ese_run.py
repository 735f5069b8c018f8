"""Python API for running LSTM images on the generated ESE RTL (used by ``eie sim``/``verify`` and tests).

:func:`simulate_lstm` builds the ESE array for the images' configuration (Verilog and Verilator build
both cached under ``build/``), runs ``tb/test_ese.py`` in record mode and returns the outputs and the
cycle accounting; :func:`verify_lstm_suite` runs several image sets in one simulation with the
scoreboard checking every output against the golden model (or given expectations).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from eie.tb.knobs import knob_plusargs
from eie.tb.runner import build_config, run_cocotb

__all__ = ["LSTMSimResult", "simulate_lstm", "verify_lstm", "verify_lstm_suite", "TEST_MODULE", "TOPLEVEL"]

TEST_MODULE = "eie.tb.test_ese"
TOPLEVEL = "ese_top"


class LSTMSimResult(NamedTuple):
    """``outputs`` as the golden model's (``(batch, n_out)`` or ``(batch, T, n_out)``); ``cycles``
    ``(batch,)`` from the last input accepted to ``done``; ``phases`` per sequence ``{step: {phase:
    cycles}}``; ``report`` the testbench's JSON."""

    outputs: np.ndarray
    cycles: np.ndarray
    phases: list
    report: dict


def _images_and_dir(images):
    from eie.spec.ese_image import LSTMImages, load_lstm_images
    if isinstance(images, LSTMImages):
        if images.path is None:
            raise ValueError("these LSTMImages were not loaded from a directory; the testbench reads an image "
                             "directory (write one with eie.spec.ese_image.write_lstm_images)")
        return images, Path(images.path)
    return load_lstm_images(images), Path(images)


def _run(cases, *, config, mode, seed=0, backpressure="none", p_idle=0.0, inject_fault=False, overlap=True,
         extra_knobs=None) -> list[LSTMSimResult]:
    from eie.sim.lstm import check_sequences
    loaded = []
    for images, x_int, expected in cases:
        images, image_dir = _images_and_dir(images)
        x = check_sequences(x_int, images)
        if x.shape[1] > images.max_steps:
            raise ValueError(f"sequences of {x.shape[1]} steps do not fit the activation store, which holds "
                             f"{images.max_steps}; raise act_depth")
        loaded.append((images, image_dir, x, expected))
    config = loaded[0][0].config if config is None else config
    for images, image_dir, _, _ in loaded:
        if config.config_hash() != images.config.config_hash():
            raise ValueError(f"the images in {image_dir} were made for configuration {images.config.config_hash()}, "
                             f"not {config.config_hash()} (only queue_depth may differ)")
    build = build_config(config, name=TOPLEVEL)
    with tempfile.TemporaryDirectory(prefix="ese-sim-") as tmp:
        tmp = Path(tmp)
        knobs = {"images": [], "inputs": [], "outputs": [], "expected": []}
        for k, (_, image_dir, x, expected) in enumerate(loaded):
            knobs["images"].append(image_dir)
            np.save(tmp / f"x{k}.npy", x)
            knobs["inputs"].append(tmp / f"x{k}.npy")
            knobs["outputs"].append(tmp / f"y{k}.npy")
            if expected is not None:
                np.save(tmp / f"expected{k}.npy", np.asarray(expected, dtype=np.int64))
                knobs["expected"].append(tmp / f"expected{k}.npy")
        knobs.update({"mode": mode, "cycles": tmp / "cycles.json", "seed": seed, "backpressure": backpressure,
                      "idle": p_idle, "serial": not overlap, "inject_fault": inject_fault, **(extra_knobs or {})})
        run_cocotb(build, TEST_MODULE, "run_lstm", plusargs=knob_plusargs(tmp / "knobs.json", **knobs))
        summary = json.loads((tmp / "cycles.json").read_text())
        results = []
        for k, report in enumerate(summary["cases"]):
            report = {**report, **{key: v for key, v in summary.items() if key != "cases"}}
            phases = [{int(step): v for step, v in p.items()} for p in report["phases"]]
            results.append(LSTMSimResult(outputs=np.load(tmp / f"y{k}.npy"),
                                         cycles=np.asarray(report["cycles"], dtype=np.int64), phases=phases,
                                         report=report))
    return results


def simulate_lstm(images, x_int, *, config=None, seed: int = 0, backpressure: str = "none", p_idle: float = 0.0,
                  overlap: bool = True) -> LSTMSimResult:
    """Run integer sequences ``(batch, T, I)`` through the ESE RTL; returns its outputs and cycles.

    ``config`` defaults to the images' (only ``queue_depth`` may differ); ``overlap=False`` runs the
    serial schedule (no overlap of the next step's input products with the write-back).
    """
    return _run([(images, x_int, None)], config=config, mode="run", seed=seed, backpressure=backpressure,
                p_idle=p_idle, overlap=overlap)[0]


def verify_lstm(images, x_int, expected=None, **kw) -> LSTMSimResult:
    """Like :func:`simulate_lstm`, with the scoreboard checking every output against ``expected``
    (default: the golden model); raises :class:`eie.tb.runner.CocotbFailure` on the first mismatch."""
    return verify_lstm_suite([(images, x_int, expected)], **kw)[0]


def verify_lstm_suite(cases, *, config=None, seed: int = 0, backpressure: str = "none", p_idle: float = 0.0,
                      inject_fault: bool = False, overlap: bool = True, extra_knobs=None) -> list[LSTMSimResult]:
    """:func:`verify_lstm` of several ``(images, x_int, expected or None)`` in one simulation: the image
    sets are loaded one after the other into the running accelerator, without a reset in between."""
    from eie.sim.lstm import run_lstm_golden
    checked = []
    for images, x_int, expected in cases:
        if expected is None:
            images, _ = _images_and_dir(images)
            expected = run_lstm_golden(images, x_int).outputs
        checked.append((images, x_int, expected))
    return _run(checked, config=config, mode="check", seed=seed, backpressure=backpressure, p_idle=p_idle,
                inject_fault=inject_fault, overlap=overlap, extra_knobs=extra_knobs)
