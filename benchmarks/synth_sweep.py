"""`make synth-sweep`: Fmax and utilisation of the board top at 1..64 PEs on the ULX3S 85F, and the
digits model on the iCEBreaker, from the project's own flow (`eie build`, YoWASP Yosys + nextpnr).

Each point is one `eie build` in its own process (nextpnr is single-threaded), two at a time. The
ULX3S points use the reference memories of the timing targets (512 sparse-matrix words, 1,024
pointers, 256 biases and 64 rows per PE, EIE's 16-bit activations and 4-bit indices), so that Fmax is
compared at equal memories across PE counts; the clock target is the board's (150 MHz on the 85F) with
--allow-timing-fail, so every point reports the Fmax it reaches. Results go to build/synth-sweep/
(one folder per point, report.md, results.json).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EIE = str(Path(sys.executable).with_name("eie"))
OUT = ROOT / "build" / "synth-sweep"


def run_point(name: str, args: list[str]) -> dict:
    out = OUT / name
    cmd = [EIE, "build", "--out", str(out), "--json", "--allow-timing-fail", "--no-fit-check", *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if proc.returncode != 0:
        error = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        return {"name": name, "args": args, "error": error, "seconds": round(seconds)}
    report = json.loads(proc.stdout)
    return {"name": name, "args": args, "seconds": round(seconds), **report}


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
        if "error" in r:
            lines.append(f"| {r['name']} | | | | | | | | {r['error']} | {r['seconds']} s |")
            continue
        u = r["utilisation"]
        path = r["critical_paths"][0] if r["critical_paths"] else {}
        lines.append(f"| {r['name']} | {r['config']['n_pe']} | {r['clock']['target_mhz']:.0f} | "
                     f"{r['clock']['achieved_mhz']:.1f} | {_used(u, 'TRELLIS_COMB', 'ICESTORM_LC')} | "
                     f"{_used(u, 'TRELLIS_FF')} | {_used(u, 'DP16KD', 'ICESTORM_RAM')} | "
                     f"{_used(u, 'MULT18X18D', 'ICESTORM_DSP')} | "
                     f"{path.get('delay_ns', 0):.1f} ns to {path.get('end')} | {r['seconds']} s |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pes", default="1,4,8,16,32,64", help="PE counts on the ULX3S 85F")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-icebreaker", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    memories = ["--mat-depth", "512", "--ptr-depth", "1024", "--bias-depth", "256", "--max-rows-per-pe", "64"]
    points = [(f"ulx3s-85f-pe{n}", ["--board", "ulx3s-85f", "--pes", str(n), *memories])
              for n in map(int, args.pes.split(","))]
    if not args.no_icebreaker:
        points.append(("icebreaker-digits", ["--board", "icebreaker", "--images", str(digits_images())]))
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda p: run_point(*p), points))
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
