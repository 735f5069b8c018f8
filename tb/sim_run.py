"""Python API for running images on the generated RTL (used by ``eie sim`` and ``eie verify``).

:func:`simulate` builds the accelerator for the images' configuration (both the Verilog and
the Verilator build are cached under ``build/``), runs the cocotb testbench in record mode
(``tb/test_accelerator.py`` in mode ``run``) and returns the outputs and cycle counts.
:func:`verify` runs the same testbench in check mode against given expectations.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from eie.tb.knobs import knob_plusargs
from eie.tb.runner import build_config, run_cocotb, write_preload

__all__ = ["SimResult", "simulate", "verify", "verify_suite", "TEST_MODULE"]

TEST_MODULE = "eie.tb.test_accelerator"


class SimResult(NamedTuple):
    """``outputs`` ``(batch, n_out)`` int64; ``cycles`` ``(batch,)`` (last input accepted to
    ``done``); ``layer_cycles`` ``(batch, n_layers)`` (the last layer ends at its first output);
    ``report``: the testbench's JSON (``output_phase``, load cycles, simulated cycles, wall
    time of the simulation alone, ...)."""

    outputs: np.ndarray
    cycles: np.ndarray
    layer_cycles: np.ndarray
    report: dict


def _images_and_dir(images):
    from eie.spec.image import Images, load_images
    if isinstance(images, Images):
        if images.path is None:
            raise ValueError("these Images were not loaded from a directory; the testbench "
                             "reads an image directory (write one with eie.spec.emit)")
        return images, Path(images.path)
    return load_images(images), Path(images)


def _run(cases, *, config, mode, seed=0, backpressure="none", p_idle=0.0, inject_fault=False,
         extra_knobs=None, preload=None) -> list[SimResult]:
    """Run ``cases`` (``(images, x, expected or None)``) in one simulation, in order.

    ``preload`` (default: when there is one image set): the simulator fills the PEs' memories
    from the images at time 0 (:func:`eie.tb.runner.write_preload`); only the codebooks, the
    layer table and the layer count then go through ``cfg``."""
    loaded = []
    for images, x_int, expected in cases:
        images, image_dir = _images_and_dir(images)
        x = np.atleast_2d(np.asarray(x_int))
        if not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"integer input activations expected, not {x.dtype}")
        if x.shape[1] != images.n_in:
            raise ValueError(f"inputs must have shape (batch, {images.n_in}), not {x.shape}")
        loaded.append((images, image_dir, x, expected))
    config = loaded[0][0].config if config is None else config
    for images, image_dir, _, _ in loaded:
        if config.config_hash() != images.config.config_hash():
            raise ValueError(f"the images in {image_dir} were made for configuration "
                             f"{images.config.config_hash()}, not {config.config_hash()} (only "
                             f"queue_depth may differ)")
    preload = len(loaded) == 1 if preload is None else preload
    if preload and len(loaded) != 1:
        raise ValueError(f"preloading takes one image set, not {len(loaded)}")
    build = build_config(config)
    with tempfile.TemporaryDirectory(prefix="eie-sim-") as tmp:
        tmp = Path(tmp)
        plusargs = []
        if preload:
            plusargs.append(write_preload(loaded[0][0], tmp / "preload"))
        knobs = {"images": [], "inputs": [], "outputs": [], "expected": []}
        for k, (_, image_dir, x, expected) in enumerate(loaded):
            knobs["images"].append(image_dir)
            np.save(tmp / f"x{k}.npy", x.astype(np.int64))
            knobs["inputs"].append(tmp / f"x{k}.npy")
            knobs["outputs"].append(tmp / f"y{k}.npy")
            if expected is not None:
                np.save(tmp / f"expected{k}.npy", np.asarray(expected, dtype=np.int64))
                knobs["expected"].append(tmp / f"expected{k}.npy")
        knobs.update({"mode": mode, "cycles": tmp / "cycles.json", "seed": seed, "backpressure": backpressure,
                      "idle": p_idle, "inject_fault": inject_fault, "preloaded": preload, **(extra_knobs or {})})
        plusargs += knob_plusargs(tmp / "knobs.json", **knobs)
        run_cocotb(build, TEST_MODULE, "run_network", plusargs=plusargs)
        summary = json.loads((tmp / "cycles.json").read_text())
        results = []
        for k, report in enumerate(summary["cases"]):
            report = {**report, **{key: v for key, v in summary.items() if key != "cases"}}
            results.append(SimResult(outputs=np.load(tmp / f"y{k}.npy"),
                                     cycles=np.asarray(report["cycles"], dtype=np.int64),
                                     layer_cycles=np.asarray(report["layer_cycles"], dtype=np.int64),
                                     report=report))
    return results


def simulate(images, x_int, *, config=None, seed: int = 0, backpressure: str = "none",
             p_idle: float = 0.0, preload: bool = True) -> SimResult:
    """Run integer inputs through the RTL and return its outputs and cycle counts.

    Parameters
    ----------
    images : path-like or eie.spec.image.Images
        An image directory (or its loaded images, which remember their directory).
    x_int : array-like of int, (batch, n_in) or (n_in,)
        Quantised input activations.
    config : EIEConfig, optional
        The hardware to build; defaults to the images' configuration. Only ``queue_depth``
        (timing) may differ from it.
    seed, backpressure, p_idle
        Stimulus knobs (see ``tb/test_accelerator.py``); they change timing, never outputs.
    preload : bool
        Fill the PEs' memories from the images when the simulation starts (default) instead
        of streaming every word through ``cfg``; the codebooks, the layer table and the layer
        count still go through ``cfg``. Outputs and computing cycles are the same either way;
        ``report["load_cycles"]`` then counts only those few writes.

    Returns
    -------
    SimResult
        ``(outputs, cycles, layer_cycles, report)``; unpacks as a tuple.
    """
    return _run([(images, x_int, None)], config=config, mode="run", seed=seed,
                backpressure=backpressure, p_idle=p_idle, preload=preload)[0]


def verify(images, x_int, expected=None, *, config=None, seed: int = 0, backpressure: str = "none",
           p_idle: float = 0.0, inject_fault: bool = False, extra_knobs=None, preload: bool = True) -> SimResult:
    """Like :func:`simulate`, but the testbench's scoreboard checks every output against
    ``expected`` (default: the golden model) and raises :class:`eie.tb.runner.CocotbFailure` on the
    first mismatch."""
    return verify_suite([(images, x_int, expected)], config=config, seed=seed,
                        backpressure=backpressure, p_idle=p_idle, inject_fault=inject_fault,
                        extra_knobs=extra_knobs, preload=preload)[0]


def verify_suite(cases, *, config=None, seed: int = 0, backpressure: str = "none",
                 p_idle: float = 0.0, inject_fault: bool = False, extra_knobs=None,
                 preload: bool | None = None) -> list[SimResult]:
    """:func:`verify` of several ``(images, x_int, expected or None)`` in one simulation.

    The image sets (all made for one configuration) are loaded through ``cfg`` one after the
    other into the running accelerator, without a reset in between, so this also checks that
    loading new images over old ones leaves nothing behind. One process start and one image
    load per set instead of one simulation each. ``preload`` (default: with a single case)
    fills the PEs' memories of that one set at time 0 instead (see :func:`simulate`).
    """
    from eie.sim.golden import run_golden
    checked = []
    for images, x_int, expected in cases:
        if expected is None:
            images, _ = _images_and_dir(images)
            expected = run_golden(images, np.atleast_2d(np.asarray(x_int)))
        checked.append((images, x_int, expected))
    return _run(checked, config=config, mode="check", seed=seed, backpressure=backpressure,
                p_idle=p_idle, inject_fault=inject_fault, extra_knobs=extra_knobs, preload=preload)
