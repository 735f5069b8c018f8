"""Testbench knobs: what a cocotb test is told, in one JSON file named by a plus-argument, and how
it hands its results back (:func:`write_result_npy`, :func:`write_result_json`).

The Python side writes the knobs with :func:`knob_plusargs` and hands the result to
:func:`eie.tb.runner.run_cocotb` (``plusargs=``); the testbench reads them back with
:func:`read_knobs` from ``cocotb.plusargs``. Nothing reaches a testbench through environment
variables: each knob is typed JSON (paths as strings, lists as lists, switches as booleans), named
in its testbench's docstring, and a missing required knob is an error that names it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["PLUSARG", "Knobs", "knob_plusargs", "read_knobs", "write_result_npy", "write_result_json"]

#: The simulator plus-argument that names the knob file: ``+eie_knobs=/path/to/knobs.json``.
PLUSARG = "eie_knobs"


def _plain(value):
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def knob_plusargs(path, **knobs) -> list[str]:
    """Write ``knobs`` to the JSON file ``path`` (paths become absolute strings) and return the
    plus-arguments that name it, for :func:`eie.tb.runner.run_cocotb`."""
    path = Path(path)
    path.write_text(json.dumps({name: _plain(v) for name, v in knobs.items()}, sort_keys=True) + "\n")
    return [f"+{PLUSARG}={path.resolve()}"]


class Knobs:
    """The knobs of one simulation (:func:`read_knobs`); ``source`` says where they came from."""

    def __init__(self, values: dict, source: str):
        if not isinstance(values, dict):
            raise RuntimeError(f"the testbench knobs in {source} must be a JSON object")
        self._values = values
        self.source = source

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def get(self, name: str, default=None):
        """The knob ``name``, or ``default`` when it is not given."""
        return self._values.get(name, default)

    def require(self, name: str):
        """The knob ``name``; a missing one is an error naming it."""
        if name not in self._values:
            raise RuntimeError(f"testbench knob {name!r} is missing ({self.source}); run the test through its "
                               f"Python runner, which writes the knobs")
        return self._values[name]

    def flag(self, name: str) -> bool:
        """A switch: absent means off."""
        return bool(self._values.get(name, False))

    def paths(self, name: str, *, required: bool = True) -> list[Path]:
        """A list of paths (empty when not required and not given)."""
        value = self.require(name) if required else self._values.get(name) or []
        return [Path(p) for p in value]

    def path(self, name: str, *, required: bool = True) -> Path | None:
        """One path (None when not required and not given)."""
        value = self.require(name) if required else self._values.get(name)
        return None if value is None else Path(value)


def read_knobs() -> Knobs:
    """The knobs of the running simulation, from the ``+eie_knobs=`` plus-argument (none given: no knobs)."""
    import cocotb
    where = cocotb.plusargs.get(PLUSARG)
    if where is None:
        return Knobs({}, f"no +{PLUSARG} plus-argument")
    try:
        return Knobs(json.loads(Path(where).read_text()), where)
    except (OSError, ValueError) as e:
        raise RuntimeError(f"cannot read the testbench knobs {where}: {e}") from None


def _write_atomic(path: Path, write) -> None:
    """``write(tmp)`` then rename: a reader never sees half a result (the runner reads after the
    simulator exits, but a killed or timed-out run must not leave a plausible partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def write_result_npy(path, array) -> None:
    """Save ``array`` as ``.npy`` at exactly ``path`` (``np.save(path)`` would append ``.npy``)."""
    import numpy as np

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array)
    _write_atomic(path, save)


def write_result_json(path, value) -> None:
    """Write ``value`` as one line of JSON at ``path``."""
    _write_atomic(path, lambda tmp: tmp.write_text(json.dumps(value) + "\n"))
