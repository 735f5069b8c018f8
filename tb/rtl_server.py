"""The generated accelerator as a Python function, served by one long-running simulation.

``with RTLServer(config) as rtl: rtl.run(images, x)`` builds the accelerator for ``config``
(cached), starts the cocotb test :mod:`eie.tb.serve` in Verilator and talks to it over a Unix
socket: each :meth:`RTLServer.run` loads an image set into the running accelerator through
``cfg`` and returns the outputs of its input vectors. One process start serves any number of
cases, so a random regression of thousands of networks costs milliseconds per case.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from eie.hw.io_map import image_writes, pack_cfg
from eie.tb.runner import Build, build_config, run_cocotb

__all__ = ["RTLServer", "RTLError", "Served"]

MODULE = "eie.tb.serve"


class RTLError(AssertionError):
    """The simulation reported a timeout or a protocol error for one request, or died."""


class Served(NamedTuple):
    """One request's answer: ``outputs`` ``(batch, n_out)``, ``cycles`` per input, ``load_cycles``."""

    outputs: np.ndarray
    cycles: np.ndarray
    load_cycles: int


def max_cycles(images, p_ready: float = 1.0) -> int:
    """A generous bound on one input's cycles (every entry of the busiest PE, every column and row,
    eight times over, slowed by the output back-pressure)."""
    work = 0
    for info in images.layers:
        per_pe = [int(images.ptr[p][info.ptr_base + info.n_in] - images.ptr[p][info.ptr_base])
                  for p in range(images.config.n_pe)]
        work += max(per_pe) + info.n_in + info.n_out
    return int((8 * work + 2000) / p_ready)


class RTLServer:
    """A running accelerator simulation that answers :meth:`run` requests.

    Parameters
    ----------
    target : EIEConfig or eie.tb.runner.Build
        The hardware (built and cached) or a prepared build whose top has the accelerator's ports.
    config : EIEConfig, optional
        The configuration of ``target`` when it is a build.
    start_timeout : float
        Seconds to wait for the simulation to connect.
    """

    def __init__(self, target, *, config=None, start_timeout: float = 600.0):
        if isinstance(target, Build):
            if config is None:
                raise TypeError("a Build target needs its config")
            self.build, self.config = target, config
        else:
            self.build, self.config = build_config(target), target
        self.start_timeout = start_timeout
        self._failure = None
        self._conn = None
        self.requests = 0

    def __enter__(self) -> RTLServer:
        self._dir = Path(tempfile.mkdtemp(prefix="eie-serve-"))
        path = str(self._dir / "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(1.0)
        self._thread = threading.Thread(target=self._simulate, args=(path,), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout
        while self._conn is None:
            try:
                self._conn, _ = listener.accept()
            except TimeoutError:
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    listener.close()
                    raise RTLError(f"the simulation never connected: {self._failure}") from None
        listener.close()
        self._conn.settimeout(None)
        self._stream = self._conn.makefile("rw")
        return self

    def _simulate(self, path):
        try:
            run_cocotb(self.build, MODULE, "serve", plusargs=[f"+eie_serve={path}"], wall_timeout=24 * 3600)
        except Exception as e:  # reported by __enter__, run and __exit__
            self._failure = e

    def run(self, images, x, *, p_ready: float = 1.0, p_idle: float = 0.0, seed: int = 0) -> Served:
        """Load ``images`` (made for this server's configuration) and run the integer inputs ``x``.

        Raises
        ------
        ValueError
            The images were made for another configuration.
        RTLError
            The accelerator timed out or broke the protocol (it is reset and keeps serving), or
            the simulation died.
        """
        if images.config.config_hash() != self.config.config_hash():
            raise ValueError(f"images for configuration {images.config.config_hash()}, the server runs "
                             f"{self.config.config_hash()}")
        x = np.atleast_2d(np.asarray(x, dtype=np.int64))
        request = {"op": "run", "writes": [pack_cfg(images.config, *w) for w in image_writes(images)],
                   "inputs": x.tolist(), "n_out": images.n_out, "p_ready": p_ready, "p_idle": p_idle,
                   "seed": seed, "max_cycles": max_cycles(images, p_ready)}
        try:
            self._stream.write(json.dumps(request) + "\n")
            self._stream.flush()
            line = self._stream.readline()
        except OSError as e:
            raise RTLError(f"the simulation went away ({e}): {self._failure}") from None
        if not line:
            self._thread.join(timeout=60)
            raise RTLError(f"the simulation ended: {self._failure}")
        reply = json.loads(line)
        self.requests += 1
        if "error" in reply:
            raise RTLError(reply["error"])
        return Served(np.asarray(reply["outputs"], dtype=np.int64).reshape(x.shape[0], images.n_out),
                      np.asarray(reply["cycles"], dtype=np.int64), int(reply["load_cycles"]))

    def __exit__(self, *exc):
        try:
            self._stream.write(json.dumps({"op": "stop"}) + "\n")
            self._stream.flush()
        except OSError:
            pass
        self._conn.close()
        self._thread.join(timeout=120)
        shutil.rmtree(self._dir, ignore_errors=True)
        if self._failure is not None and exc[0] is None:
            raise RTLError(f"the serving simulation failed: {self._failure}")
        return False
