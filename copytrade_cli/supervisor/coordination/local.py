"""One instance on its own: an in-process queue and dedup set, guardrail caps in the state file's ledger."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from ..backends import Delivery, MemoryQueue, SqliteCaps
from .base import Coordination


class TTLSet:
    """In-memory dedup with a TTL (the fast path; the durable rule is the unique job row). Remembers which
    channels saw each key, so a duplicate from a new channel can still be noted."""

    def __init__(self, ttl_s: float, max_items: int = 200_000):
        self.ttl, self.max = ttl_s, max_items
        self._d: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, channel: str = "") -> tuple[bool, bool]:
        """(new key, new channel for this key) within the TTL."""
        now = time.time()
        with self._lock:
            while self._d and (next(iter(self._d.values()))[0] < now - self.ttl or len(self._d) > self.max):
                self._d.popitem(last=False)
            hit = self._d.get(key)
            if hit is not None:
                if channel in hit[1]:
                    return False, False
                hit[1].add(channel)
                return False, True
            self._d[key] = (now, {channel})
            return True, True

    def seen(self, key: str) -> bool:
        """The key is in the set (a hint for reading ahead; `add` decides)."""
        return key in self._d

    def done(self, key: str) -> None:
        """Nothing to mark in process (the set lives as long as the process)."""


class LocalCoordination(Coordination):
    """In process + SQLite: the defaults of a single instance."""

    mode = "in-process"
    group_commit = True
    coalesces = True
    adopts_workers = False
    redelivers_stalled = False

    def __init__(self, settings, state):
        self.state = state
        self.dedup = TTLSet(settings.supervisor_dedup_ttl_ms / 1000)
        self.caps = SqliteCaps(state)
        self.queue = MemoryQueue(settings.supervisor_queue_max_size)

    def claim(self, group_id: str, delivery: Delivery | None) -> dict[str, Any] | None:
        """The group row (one instance: nobody else runs it)."""
        return self.state.get_group(group_id)

    def recover(self, regroup: Callable[[float | None], None], run_unfinished: Callable[[], None],
                say: Callable[[str], None]) -> None:
        """Group every orphaned job, then run the unfinished groups right away (continue or refund)."""
        regroup(None)
        run_unfinished()
