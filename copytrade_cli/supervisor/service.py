"""The lifecycle of one supervisor instance (silverback's runner): named loops, one stop event, a bounded join.

`stop` is the one event the outside sets (signal handlers do nothing else). Loops come in two kinds:
- work loops (channels, dispatcher, retries, reimburser, config refresh, auto-refuel) end when `stop` is set;
- upkeep loops (health, leases, reconnects) must outlive the drain (running groups keep their leases and the
  health key until the end), so they end when shutdown, after draining, calls `halt()`.
Shutdown then joins every thread within one bounded wait; threads are daemons, so one stuck on a dead peer
never holds the process.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger("copytrade.supervisor")
LoopFn = Callable[[threading.Event], None]


class Service:
    """The named threads of one instance and their two-step stop."""

    def __init__(self, stop: threading.Event | None = None):
        self.stop = stop or threading.Event()
        self._halt = threading.Event()  # set by halt(), once the drain is over
        self.threads: list[threading.Thread] = []

    def spawn(self, name: str, fn: LoopFn, *, upkeep: bool = False) -> threading.Thread:
        """Run `fn(event)` in a named daemon thread; `event` is `stop` (work) or the halt event (upkeep)."""
        ev = self._halt if upkeep else self.stop
        t = threading.Thread(target=_guarded(name, fn, ev), name=name, daemon=True)
        t.start()
        self.threads.append(t)
        return t

    def adopt(self, thread: threading.Thread) -> None:
        """Track a thread started elsewhere (a detection channel: it watches `stop` itself)."""
        self.threads.append(thread)

    def halt(self) -> None:
        """End the upkeep loops too (after the drain)."""
        self.stop.set()
        self._halt.set()

    def join(self, timeout_s: float) -> list[str]:
        """Wait for every thread, `timeout_s` in all; returns the names of threads still running."""
        deadline = time.monotonic() + timeout_s
        for t in self.threads:
            if t is threading.current_thread():
                continue
            t.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in self.threads if t.is_alive() and t is not threading.current_thread()]
        if left:
            log.info("threads still finishing at exit: %s", ", ".join(left))
        return left


def _guarded(name: str, fn: LoopFn, ev: threading.Event) -> Callable[[], None]:
    def run() -> None:
        try:
            fn(ev)
        except Exception:  # noqa: BLE001 — a loop that dies says so; the others go on
            log.exception("loop %s stopped on an error", name)
    return run
