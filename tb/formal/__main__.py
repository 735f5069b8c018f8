"""``python -m eie.tb.formal [--quick] [--workdir DIR] [NAME ...]``: run the proofs and their broken
designs (``make formal`` runs all of them) and print one line per job with its verdict and time.

Exit status 1 when a proof fails or a broken design passes.
"""

from __future__ import annotations

import argparse
import sys

from eie.tb.formal.properties import PROPERTIES, assertion_text
from eie.tb.formal.sby import run_sby


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eie.tb.formal", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"properties to check (default all): {', '.join(PROPERTIES)}")
    parser.add_argument("--quick", action="store_true", help="only the proofs `make test` runs")
    parser.add_argument("--workdir", default="build/formal", help="where the sby jobs run (default build/formal)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(PROPERTIES))
    if unknown:
        parser.error(f"unknown properties {', '.join(unknown)}")
    chosen = [PROPERTIES[n] for n in args.names or PROPERTIES if not args.quick or PROPERTIES[n].quick]
    bad = 0
    for prop in chosen:
        for breakage in (None, *prop.breakages):
            label = prop.name if breakage is None else f"{prop.name} / broken: {breakage.description}"
            job = prop.name if breakage is None else f"{prop.name}_broken{prop.breakages.index(breakage)}"
            result = run_sby(prop.design(breakage), name=job, mode=prop.mode, depth=prop.depth,
                             workdir=args.workdir, timeout=prop.timeout)
            expected = "PASS" if breakage is None else "FAIL"
            ok = result.status == expected and (breakage is None or any(
                breakage.fails in assertion_text(f) for f in result.failures))
            bad += not ok
            how = "k-induction" if prop.mode == "prove" else f"{prop.mode} depth {prop.depth}"
            caught = "" if breakage is None else "; caught by: " + "; ".join(
                assertion_text(f) for f in result.failures)
            print(f"{'ok ' if ok else 'BAD'} {label}: {result.status} ({how}, {result.seconds:.1f} s){caught}",
                  flush=True)
    print(f"{len(chosen)} properties, {bad} unexpected verdict(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
