"""Sample a running process with py-spy (collapsed stacks) and print where its threads spend their time.

    .venv/bin/python -m bench.profile --pid PID --seconds 20
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from .common import PY


def py_spy() -> str | None:
    cand = Path(PY).parent / "py-spy"
    if cand.exists():
        return str(cand)
    return shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path | None = None, rate: int = 100, idle: bool = False,
           gil: bool = True) -> Path | None:
    """py-spy record in raw (collapsed) format; None when py-spy is missing or not permitted."""
    exe = py_spy()
    if exe is None:
        print("  (py-spy not installed: `.venv/bin/pip install py-spy` to profile)")
        return None
    out = out or Path(tempfile.mkstemp(suffix=".txt", prefix="pyspy-")[1])
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate), "--format", "raw",
           "--output", str(out), "--nonblocking", "--threads"]
    if idle:
        cmd.append("--idle")
    if gil:
        cmd.append("--gil")  # only the thread holding the GIL: where the process's Python CPU really goes
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0 or not out.exists():
        print(f"  (py-spy failed: {r.stderr.strip()[-300:]})")
        return None
    return out


def _frame_name(frame: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"
    name, _, loc = frame.partition(" (")
    loc = loc.rstrip(")")
    path = loc.rsplit(":", 1)[0]
    short = path.split("site-packages/")[-1] if "site-packages/" in path else path.split("/main/")[-1]
    return f"{name} ({short})"


def summarize(collapsed: Path, top: int = 25, focus: str = "copytrade_cli") -> str:
    """Inclusive and self sample shares per function, busiest threads first."""
    incl: Counter[str] = Counter()
    self_: Counter[str] = Counter()
    via: dict[str, Counter[str]] = {}
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        k = int(n)
        frames = stack.split(";")
        total += k
        threads[frames[0]] += k
        names = [_frame_name(f) for f in frames[1:]] or [frames[0]]
        for nm in set(names):
            incl[nm] += k
        self_[names[-1]] += k
        ours = [nm for nm in names if focus in nm]
        via.setdefault(names[-1], Counter())[ours[-1] if ours else "(outside " + focus + ")"] += k
    if not total:
        return "  (no samples)"
    lines = [f"  samples: {total} (active, all threads)"]
    lines.append("  busiest threads: " + ", ".join(f"{t.split('(')[0].strip()} {100 * c / total:.0f}%"
                                               for t, c in threads.most_common(6)))
    lines.append(f"  top inclusive ({focus} frames and their callees):")
    shown = 0
    for nm, c in incl.most_common():
        if focus and focus not in nm and "py_clob_client" not in nm and "web3" not in nm.split("(")[-1][:5]:
            continue
        lines.append(f"    {100 * c / total:5.1f}%  {nm}")
        shown += 1
        if shown >= top:
            break
    lines.append(f"  top self (where the CPU actually is; <- nearest {focus} caller):")
    for nm, c in self_.most_common(top):
        caller, cc = via[nm].most_common(1)[0]
        lines.append(f"    {100 * c / total:5.1f}%  {nm}  <- {caller.split(' (')[0]}"
                     + (f" ({100 * cc / c:.0f}%)" if cc != c else ""))
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--idle", action="store_true")
    a = ap.parse_args()
    p = record(a.pid, a.seconds, idle=a.idle)
    if p:
        print(summarize(p))
    sys.exit(0 if p else 1)
