"""The host-link top on Verilator: cached Verilog and builds, and the cocotb runs of ``tb/test_host_link.py``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from eie.tb.knobs import knob_plusargs
from eie.tb.runner import Build, build_verilog, cached_verilog, run_cocotb

__all__ = ["host_top_verilog", "build_host_top", "run_host_link", "TEST_MODULE", "TOPLEVEL"]

TEST_MODULE = "eie.tb.test_host_link"
TOPLEVEL = "host_top"


def host_top_verilog(config, *, images=None, divisor: int, timeout: int) -> str:
    """Verilog of :class:`~eie.hw.host_link.HostLinkTop` (cached by configuration, images, divisor,
    timeout and the source of ``hw/``)."""
    from eie.hw.link_map import image_id

    def generate() -> str:
        from amaranth.back import verilog

        from eie.hw.host_link import HostLinkTop
        return verilog.convert(HostLinkTop(config=config, images=images, divisor=divisor, timeout=timeout),
                               name=TOPLEVEL, emit_src=False)

    return cached_verilog(TOPLEVEL, [json.dumps(config.to_dict(), sort_keys=True),
                                     "" if images is None else image_id(images), str(divisor), str(timeout)],
                          generate)


def build_host_top(config, *, images=None, divisor: int, timeout: int) -> Build:
    return build_verilog(host_top_verilog(config, images=images, divisor=divisor, timeout=timeout), TOPLEVEL,
                         config_hash=config.config_hash())


def run_host_link(cases, testcase: str, *, divisor: int = 4, timeout: int = 2000, port_timeout: float = 5e-4,
                  baked: bool = False, inject_fault: bool = False, load_frame: int = 1024) -> dict:
    """Run one cocotb test of ``tb/test_host_link.py``.

    Parameters
    ----------
    cases : list of (Images, x_int, expected)
        Image sets (loaded from directories) with their inputs and golden outputs.
    testcase : str
        ``"end_to_end"`` or ``"protocol_errors"``.
    divisor, timeout
        The DUT's clocks per UART bit and inter-byte timeout in cycles.
    port_timeout : float
        The host client's read timeout, in simulated seconds.
    baked : bool
        Build the DUT with the first image set in its memories.

    Returns
    -------
    dict
        The test's figures (its ``report`` knob).
    """
    config = cases[0][0].config
    build = build_host_top(config, images=cases[0][0] if baked else None, divisor=divisor, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="eie-host-") as tmp:
        tmp = Path(tmp)
        knobs = {"images": [], "inputs": [], "expected": []}
        for k, (images, x, expected) in enumerate(cases):
            np.save(tmp / f"x{k}.npy", np.asarray(x, dtype=np.int64))
            np.save(tmp / f"y{k}.npy", np.asarray(expected, dtype=np.int64))
            knobs["images"].append(Path(images.path))
            knobs["inputs"].append(tmp / f"x{k}.npy")
            knobs["expected"].append(tmp / f"y{k}.npy")
        knobs.update({"divisor": divisor, "port_timeout": port_timeout, "baked": baked, "inject_fault": inject_fault,
                      "report": tmp / "report.json", "load_frame": load_frame})
        result = run_cocotb(build, TEST_MODULE, testcase, plusargs=knob_plusargs(tmp / "knobs.json", **knobs))
        report = json.loads((tmp / "report.json").read_text())
    report["sim_seconds"] = round(result.seconds, 2)
    report["build_seconds"] = round(build.seconds, 2)
    return report
