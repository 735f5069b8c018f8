"""`make synth-sweep`: Fmax and utilisation of the board top at 1..64 PEs on the ULX3S 85F, and the
digits model on the iCEBreaker, from the project's own flow (`eie build`, YoWASP Yosys + nextpnr).

Each point is one `eie build` in its own process (nextpnr is single-threaded), two at a time. The
ULX3S points use the reference memories of the timing targets (512 sparse-matrix words, 1,024
pointers, 256 biases and 64 rows per PE, EIE's 16-bit activations and 4-bit indices), so that Fmax is
compared at equal memories across PE counts; the clock target is the FPGA issue's 150 MHz (the
board's default is lower) with --allow-timing-fail, so every point reports the Fmax it reaches.

A point that nextpnr cannot place (it does not fit), or that runs past ``--timeout`` minutes (nextpnr
is killed), still reports its utilisation: nextpnr's after packing (``top.tim``, logged before
placement), else what Yosys synthesised (``top.rpt``), marked as such.
Each point's result is written to its folder (``point.json``) as soon as it ends, so that a sweep cut
short keeps what it measured; ``--only-missing`` runs only the points without one. Results go to
build/synth-sweep/ (one folder per point, report.md, results.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EIE = str(Path(sys.executable).with_name("eie"))
OUT = ROOT / "build" / "synth-sweep"


def run_point(name: str, args: list[str], timeout_min: float | None = None) -> dict:
    """One ``eie build`` in its own process group (so that a time-out kills nextpnr too)."""
    from eie.build import read_packing, read_synthesis
    out = OUT / name
    cmd = [EIE, "build", "--out", str(out), "--json", "--allow-timing-fail", "--no-fit-check", *args]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_min * 60 if timeout_min else None)
        error = None if proc.returncode == 0 else (stderr.strip().splitlines() or ["(no message)"])[-1]
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        error = f"stopped after {timeout_min:g} min (nextpnr had not finished)"
    seconds = time.monotonic() - t0
    if error is None:
        result = {"name": name, "args": args, "seconds": round(seconds), **json.loads(stdout)}
    else:
        rpt, tim = out / "build" / "top.rpt", out / "build" / "top.tim"
        result = {"name": name, "args": args, "error": error, "seconds": round(seconds), "n_pe": _pes(args),
                  "synthesis": read_synthesis(rpt) if rpt.is_file() else {},
                  "packed": read_packing(tim) if tim.is_file() else {}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "point.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def _pes(args: list[str]) -> int | None:
    return int(args[args.index("--pes") + 1]) if "--pes" in args else None


def digits_images() -> Path:
    """The digits model compressed for the iCEBreaker (eie compress --board icebreaker)."""
    images = OUT / "digits-icebreaker-images"
    model = ROOT / "out" / "digits" / "model.pt"
    if not model.is_file():
        subprocess.run([EIE, "digits", "--out", str(ROOT / "out" / "digits"), "--no-rtl"], check=True,
                       capture_output=True)
    subprocess.run([EIE, "compress", str(model), "--data", "digits", "--board", "icebreaker", "--out",
                    str(images)], check=True, capture_output=True)
    return images


def _used(utilisation: dict, *names: str) -> str:
    for n in names:
        if n in utilisation:
            return f"{utilisation[n]['used']:,} / {utilisation[n]['available']:,}"
    return "-"


def table(rows: list[dict]) -> str:
    lines = ["| point | PEs | target MHz | Fmax MHz | LUT (TRELLIS_COMB / ICESTORM_LC) | FF | block RAM | DSP | "
             "critical path | time |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" not in r:
            path = r["critical_paths"][0] if r["critical_paths"] else {}
            cells = (r["config"]["n_pe"], f"{r['clock']['target_mhz']:.0f}", f"{r['clock']['achieved_mhz']:.1f}",
                     *_resources(r["utilisation"]), f"{path.get('delay_ns', 0):.1f} ns to {path.get('end')}")
        elif r.get("packed"):     # nextpnr packed the design: its utilisation, logged before placement
            luts, ffs, brams, dsps = _resources(r["packed"])
            cells = (r["n_pe"] or "", "", "not placed", f"{luts} (packed)", ffs, brams, dsps, r["error"])
        elif c := r.get("synthesis"):   # Yosys's cells: LUT4 plus two per carry cell (CCU2C / SB_CARRY)
            luts = c.get("LUT4", 0) + 2 * c.get("CCU2C", 0) or c.get("SB_LUT4", 0)
            ffs = c.get("TRELLIS_FF", 0) or sum(v for k, v in c.items() if k.startswith("SB_DFF"))
            cells = (r["n_pe"] or "", "", "not placed", f"{luts:,} LUT4 (Yosys)", f"{ffs:,}",
                     c.get("DP16KD", 0) or c.get("SB_RAM40_4K", 0), c.get("MULT18X18D", 0) or c.get("SB_MAC16", 0),
                     r["error"])
        else:
            cells = (r.get("n_pe") or "", "", "", "", "", "", "", r["error"])
        lines.append("| " + " | ".join(map(str, (r["name"], *cells, f"{r['seconds']} s"))) + " |")
    return "\n".join(lines)


def _resources(u: dict) -> tuple[str, str, str, str]:
    """LUT, FF, block RAM and DSP columns of a nextpnr utilisation (either family)."""
    return (_used(u, "TRELLIS_COMB", "ICESTORM_LC"), _used(u, "TRELLIS_FF"), _used(u, "DP16KD", "ICESTORM_RAM"),
            _used(u, "MULT18X18D", "ICESTORM_DSP"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pes", default="1,4,8,16,32,64", help="PE counts on the ULX3S 85F")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-icebreaker", action="store_true")
    parser.add_argument("--freq", type=float, default=150.0, help="clock target of the ULX3S points (MHz)")
    parser.add_argument("--timeout", type=float, default=None, metavar="MIN",
                        help="stop a point after this many minutes and report its synthesis only")
    parser.add_argument("--only-missing", action="store_true",
                        help="run only the points without a point.json; report all")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    memories = ["--mat-depth", "512", "--ptr-depth", "1024", "--bias-depth", "256", "--max-rows-per-pe", "64"]
    points = [(f"ulx3s-85f-pe{n}", ["--board", "ulx3s-85f", "--pes", str(n), "--freq", f"{args.freq:g}", *memories])
              for n in map(int, args.pes.split(","))]
    if not args.no_icebreaker:
        points.append(("icebreaker-digits", ["--board", "icebreaker", "--images", str(digits_images())]))

    def point(p):
        done = OUT / p[0] / "point.json"
        if args.only_missing and done.is_file():
            return json.loads(done.read_text())
        return run_point(*p, timeout_min=args.timeout)

    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(point, points))
    (OUT / "results.json").write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    report = table(rows)
    (OUT / "report.md").write_text("# Synthesis sweep\n\n" + report + "\n")
    print(report)
    fitting = [r for r in rows if "error" not in r and r["name"].startswith("ulx3s-85f")]
    if fitting:
        best = max(fitting, key=lambda r: r["config"]["n_pe"])
        print(f"largest configuration placed and routed on the 85F: {best['config']['n_pe']} PEs at "
              f"{best['clock']['achieved_mhz']:.1f} MHz")
    return 0


if __name__ == "__main__":
    sys.exit(main())
