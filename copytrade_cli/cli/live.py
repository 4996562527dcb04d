"""The compact live view of `copytrade supervise --live`: one refreshing panel instead of a log stream."""
from __future__ import annotations

import statistics
import threading
import time
from collections import deque


class LiveView:
    """Collects the supervisor's lines and renders counters + the last few events with rich.Live."""

    def __init__(self, out, sup, keep: int = 8):
        self.out, self.sup = out, sup
        self.lines: deque[str] = deque(maxlen=keep)
        self.t0 = time.time()

    def say(self, line: str) -> None:
        """The supervisor's `say`: keep the line for the panel."""
        self.lines.append(self.out.scrub(line))

    def render(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        m = self.sup.metrics
        lat = sorted(m.latency_ms)
        p50 = f"{statistics.median(lat):.0f} ms" if lat else "-"
        p99 = f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.0f} ms" if lat else "-"
        fleet = self.sup.fleet
        t = Table(title=f"copytrade supervise — up {time.time() - self.t0:.0f}s", show_header=True,
                  title_justify="left")
        for col in ("signals by channel", "jobs", "queue", "groups done", "drops", "detect→order p50/p99", "workers"):
            t.add_column(col)
        t.add_row(", ".join(f"{k} {v}" for k, v in sorted(m.signals.items())) or "0",
                  ", ".join(f"{k} {v}" for k, v in sorted(m.jobs.items())) or "0",
                  str(self.sup.queue_depth() if hasattr(self.sup, "queue_depth") else "-"),
                  str(m.groups_done), str(m.drops), f"{p50} / {p99}",
                  f"{len(fleet)}" if fleet is not None else "-")
        return Group(t, Text("\n".join(self.lines)))

    def run(self, runner: threading.Thread) -> None:
        """Refresh until the supervisor's run thread ends."""
        from rich.live import Live

        with Live(self.render(), console=self.out.console, refresh_per_second=4, transient=False) as live:
            while runner.is_alive():
                live.update(self.render())
                runner.join(0.25)
            live.update(self.render())
