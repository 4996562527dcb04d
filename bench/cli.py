"""CLI cold start: `copytrade --help` (median of >= 5 fresh processes) and `copytrade fork up` to a funded
operator proxy (median of 3; each torn down with `copytrade fork down`).

    .venv/bin/python -m bench.cli
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import ROOT, med, print_header, row

TARGET_HELP_S = 0.5


def _copytrade() -> list[str]:
    exe = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin" / "copytrade"
    return [str(exe)] if exe.exists() else [str(ROOT / ".venv" / "bin" / "python"), "-m", "copytrade_cli"]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0, p


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--help-runs", type=int, default=7)
    ap.add_argument("--fork-runs", type=int, default=3)
    a = ap.parse_args(argv)
    cmd = _copytrade()
    print_header("CLI cold start", command=" ".join(cmd), help_runs=a.help_runs, fork_runs=a.fork_runs)
    env = dict(os.environ, COPYTRADE_HOME=tempfile.mkdtemp(prefix="ct-cli-"))
    helps = []
    for _ in range(a.help_runs):
        dt, p = timed(cmd + ["--help"], env)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-500:])
        helps.append(dt)
    row("copytrade --help", f"median {med(helps):.3f} s (min {min(helps):.3f}, max {max(helps):.3f}, {len(helps)} runs)"
        f"  target < {TARGET_HELP_S} s: {'MET' if med(helps) < TARGET_HELP_S else 'NOT MET'}")
    forks, downs = [], []
    for _ in range(a.fork_runs):
        e = dict(env, COPYTRADE_HOME=tempfile.mkdtemp(prefix="ct-cli-fork-"))
        dt, p = timed(cmd + ["fork", "up"], e)
        try:
            if p.returncode != 0:
                raise RuntimeError(f"fork up failed: {(p.stdout + p.stderr)[-800:]}")
            if "proxy" not in (p.stdout + p.stderr).lower():
                raise RuntimeError("fork up did not report a funded proxy:\n" + p.stdout[-800:])
            forks.append(dt)
        finally:
            d, _ = timed(cmd + ["fork", "down"], e)
            downs.append(d)
    row("copytrade fork up (to a funded proxy)",
        f"median {med(forks):.2f} s (min {min(forks):.2f}, max {max(forks):.2f}, {len(forks)} runs; anvil + plant + "
        f"deploy + proxy funded with 1000 USDC + 20 workers funded and approved + local CLOB)")
    row("copytrade fork down", f"median {med(downs):.2f} s")
    return {"help_median_s": med(helps), "fork_up_median_s": med(forks)}


if __name__ == "__main__":
    main()
