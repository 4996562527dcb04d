"""Run every bench, one after the other, each printing its figures and conditions.

    bash bench/run.sh                     # = .venv/bin/python -m bench (full: ~15 min on 2 cores)
    bash bench/run.sh --only cli,decision
    bash bench/run.sh --quick             # short windows (a smoke run; figures not for the README)

Output also goes to bench/results/latest.txt.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path

from .common import PY, ROOT

ALL = ["cli", "decision", "cost", "throughput", "latency", "gas", "scale"]


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            st.write(s)
            st.flush()
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()


def _external(script: str, *args: str) -> None:
    """Benches by other parts of the project (their own scripts), run as they document themselves."""
    print(f"\n=== {script} {' '.join(args)} ===", flush=True)
    p = subprocess.run([PY, str(ROOT / "bench" / script), *args], cwd=ROOT, capture_output=True, text=True)
    sys.stdout.write(p.stdout)
    if p.returncode != 0:
        sys.stdout.write(f"  ({script} exited {p.returncode}: {p.stderr.strip()[-400:]})\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(ALL), help="comma list of " + ", ".join(ALL))
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    log = open(out / "latest.txt", "w")
    t0 = time.time()
    with contextlib.redirect_stdout(_Tee(sys.__stdout__, log)):
        print(f"copytrade benches: {', '.join(only)}  (command: bash bench/run.sh {' '.join(sys.argv[1:])})")
        for name in only:
            try:
                if name == "cli":
                    from . import cli
                    cli.main(["--help-runs", "5", "--fork-runs", "1"] if a.quick else [])
                elif name == "decision":
                    from . import decision
                    decision.main(["--fills", "3000"] if a.quick else [])
                elif name == "cost":
                    from . import cost
                    cost.main(["--fills", "2"] if a.quick else [])
                elif name == "throughput":
                    from . import throughput
                    throughput.main(["--seconds", "10", "--warmup", "4"] if a.quick else [])
                elif name == "latency":
                    from . import latency
                    latency.main(["--seconds", "5"] if a.quick else [])
                    # the same with a deployment's distances (node 60 ms, CLOB 120 ms, relayer 300 ms round trip)
                    latency.main(["--delays", "live", "--rates", "10,100"] + (["--seconds", "5"] if a.quick else []))
                elif name == "gas":
                    _external("gas_contracts.py")
                elif name == "scale":
                    _external("scale.py", *(["--batches", "4"] if a.quick else ["--batches", "12", "--followers", "10"]))
                else:
                    print(f"unknown bench {name!r}; use {', '.join(ALL)}")
            except Exception as exc:  # noqa: BLE001 — report and go on with the next bench
                import traceback

                print(f"\n!! bench {name} failed: {exc}")
                traceback.print_exc(file=sys.stdout)
        print(f"\nall benches done in {time.time() - t0:.0f} s; log: {out / 'latest.txt'}")
    log.close()


if __name__ == "__main__":
    main()
