"""cocotb tests of the host-link top (``HostLinkTop``: UART, host link, PE array) driven through its
``rx``/``tx`` pins by the host client :class:`eie.host.Device` itself, bridged into the simulation
(:class:`eie.tb.host_serial.SimSerial` on cocotbext-uart).

Run through :func:`eie.tb.host_sim.run_host_link` (pytest: ``tests/test_rtl_host_link.py``), which
writes the knobs (:mod:`eie.tb.knobs`):

================ ===============================================================================
``images``       image directories, loaded and run one after the other through the protocol
                 without a reset
``inputs``       one ``.npy`` of integer inputs ``(batch, n_in)`` per image set
``expected``     one ``.npy`` of golden outputs per image set
``divisor``      the DUT's clocks per UART bit
``port_timeout`` the client's read timeout in simulated seconds
``load_frame``   the client's LOAD_DATA payload size in bytes
``baked``        the DUT was built with the first image set baked in (no load expected)
``inject_fault`` the scoreboard corrupts one expectation, so ``end_to_end`` must fail
``report``       where to write the measured figures as JSON (optional)
================ ===============================================================================
"""

from __future__ import annotations

import json
import time

import cocotb
import numpy as np
from cocotb.task import bridge

from eie.host import Device
from eie.tb.driver import cycle_now, start_clock_and_reset
from eie.tb.host_scenarios import CASES, check_errors, load_and_run
from eie.tb.host_serial import SimSerial
from eie.tb.knobs import read_knobs
from eie.tb.runner import CLOCK_PERIOD_NS
from eie.tb.scoreboard import Scoreboard


def _cases(knobs):
    from eie.spec.image import load_images
    images, inputs, expected = knobs.paths("images"), knobs.paths("inputs"), knobs.paths("expected")
    if not len(images) == len(inputs) == len(expected):
        raise RuntimeError("knobs images, inputs and expected must list as many paths")
    return [(load_images(d), np.atleast_2d(np.load(x)), np.load(y)) for d, x, y in zip(images, inputs, expected)]


async def _start(dut, knobs) -> Device:
    divisor = int(knobs.require("divisor"))
    port = SimSerial(dut.rx, dut.tx, baudrate=1e9 / (CLOCK_PERIOD_NS * divisor),
                     timeout=float(knobs.get("port_timeout", 1e-3)))
    await start_clock_and_reset(dut)
    return Device(port, load_frame_bytes=int(knobs.get("load_frame", 1024)))


def _report(knobs, figures: dict) -> None:
    if (path := knobs.path("report", required=False)) is not None:
        path.write_text(json.dumps(figures) + "\n")


@cocotb.test()
async def end_to_end(dut):
    """Every image set loaded through the protocol (one over the other), every input run, every
    output vector checked against the golden model by the scoreboard."""
    wall = time.monotonic()
    knobs = read_knobs()
    device = await _start(dut, knobs)
    port = device.port
    baked = knobs.flag("baked")
    figures = []
    for k, (images, x, expected) in enumerate(_cases(knobs)):
        scoreboard = Scoreboard(expected, n_pe=images.config.n_pe, layer=len(images.layers) - 1,
                                inject_fault=knobs.flag("inject_fault") and k == 0,
                                context=f" [image set {k}: {images.path}]")
        if k == 0:
            status = await bridge(device.status)()
            assert status.loaded == baked, f"a fresh device reports {status}"
        holds = await bridge(device.holds)(images)
        assert holds == (baked and k == 0), f"image set {k}: the device {'holds' if holds else 'lacks'} them"
        t0, sent0 = cycle_now(), port.bytes_written
        writes = 0 if holds else await bridge(device.load)(images)
        load_cycles, load_bytes = cycle_now() - t0, port.bytes_written - sent0
        t1 = cycle_now()
        result = await bridge(load_and_run)(device, images, x, scoreboard)
        scoreboard.finish()
        figures.append({"writes": writes, "load_cycles": load_cycles, "load_bytes": load_bytes,
                        "run_cycles": result["cycles"], "inputs": len(x),
                        "run_wall_cycles": cycle_now() - t1})
        dut._log.info("image set %d: %d writes in %d bytes and %d cycles; %d inputs bit-exact, compute cycles %s",
                      k, writes, load_bytes, load_cycles, len(x), result["cycles"])
    _report(knobs, {"cases": figures, "simulated_cycles": cycle_now(),
                    "wall_seconds": round(time.monotonic() - wall, 3)})


@cocotb.test()
async def protocol_errors(dut):
    """Every protocol error case of :func:`eie.tb.host_scenarios.check_errors` on the first image set."""
    knobs = read_knobs()
    device = await _start(dut, knobs)
    images, x, expected = _cases(knobs)[0]
    if not await bridge(device.holds)(images):
        await bridge(device.load)(images)
    done = await bridge(check_errors)(device, images, x, expected)
    assert done == CASES, f"cases run: {done}"
    _report(knobs, {"cases": done, "simulated_cycles": cycle_now()})
