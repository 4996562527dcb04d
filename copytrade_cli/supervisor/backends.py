"""The three things several supervisor instances must share, as small interfaces with an in-process default.

- `GroupQueue`: the queue of execution groups (bounded; full = a recorded drop, never a silent one).
- `Dedup`: the fast per-fill dedup set with a TTL (the durable rule stays the unique job row in SQLite).
- `CapStore`: the guardrail counters, reserved / committed / released atomically.

Without a Redis URL the supervisor uses `MemoryQueue`, `TTLSet` (coordination/local.py) and `SqliteCaps`, exactly
as a single instance always did; with one, `coordination/redis_*.py` provide the same calls on Redis. Which set
is used is decided once (`coordination.choose`).
"""
from __future__ import annotations

import queue
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

MICRO = 10**6


@dataclass
class Delivery:
    """One queued group handed to this instance; `entry_id` is the Redis stream entry (None in process)."""

    group_id: str
    entry_id: str | None = None
    attempts: int = 1


class GroupQueue(Protocol):
    """Where decided groups wait for a worker."""

    def put(self, group_id: str) -> str:
        """Queue a group: "queued", "full" (caller records the drop) or "duplicate" (already queued)."""

    def get(self, timeout: float) -> Delivery | None:
        """The next group for this instance, or None after `timeout` seconds."""

    def ack(self, delivery: Delivery, *, only_own: bool = False) -> None:
        """The group is finished (or someone else holds it): forget the delivery."""

    def depth(self) -> int:
        """Groups waiting or running (for the metric and the live view)."""

    def idle(self) -> bool:
        """Nothing is buffered for this instance."""


class Dedup(Protocol):
    """The fast dedup set."""

    def add(self, key: str, channel: str = "") -> tuple[bool, bool]:
        """(new key, new channel for this key) within the TTL."""

    def seen(self, key: str) -> bool:
        """A cheap hint that the key is known (False when it cannot tell); `add` decides."""

    def done(self, key: str) -> None:
        """Every decision about this fill is recorded (a replay may now be treated as a duplicate for good)."""


class CapStore(Protocol):
    """The guardrail counters for the UTC day."""

    commits_in_state: bool  # commits belong in the state file's transaction (the ledger is the store)

    def reserve(self, *, day: str, wallet: str, usd_micro: int, job_key: str, wallet_cap_micro: int | None,
                global_cap_micro: int | None) -> tuple[bool, str]:
        """Reserve against both caps atomically; (False, reason) if either would be exceeded; idempotent by key."""

    def reserve_many(self, *, day: str, items: list[tuple[str, int, str]], wallet_cap_micro: int | None,
                     global_cap_micro: int | None) -> list[tuple[bool, str]]:
        """`reserve` for several (wallet, usd_micro, job_key), in order."""

    def commit(self, job_key: str, usd_micro: int | None = None) -> None:
        """Keep a reservation (with the amount actually spent)."""

    def release(self, job_key: str) -> None:
        """Give a reservation back."""


class MemoryQueue:
    """The in-process bounded queue (one instance)."""

    def __init__(self, max_size: int):
        self._q: queue.Queue[str] = queue.Queue(maxsize=max_size)

    def put(self, group_id: str) -> str:
        """Queue a group, or "full"."""
        try:
            self._q.put_nowait(group_id)
            return "queued"
        except queue.Full:
            return "full"

    def get(self, timeout: float) -> Delivery | None:
        """Next group, or None after `timeout`."""
        try:
            return Delivery(self._q.get(timeout=timeout))
        except queue.Empty:
            return None

    def ack(self, delivery: Delivery, *, only_own: bool = False) -> None:
        """Nothing to acknowledge in process."""

    def depth(self) -> int:
        """Groups waiting."""
        return self._q.qsize()

    def idle(self) -> bool:
        """True when nothing waits."""
        return self._q.empty()


def _usd(micro: int) -> str:
    return str(Decimal(micro) / MICRO)


class SqliteCaps:
    """Caps reserved in the state file's ledger (BEGIN IMMEDIATE): atomic for every process sharing the file."""

    commits_in_state = True

    def __init__(self, state):
        self.state = state

    def reserve(self, *, day: str, wallet: str, usd_micro: int, job_key: str, wallet_cap_micro: int | None,
                global_cap_micro: int | None) -> tuple[bool, str]:
        """Reserve in the ledger."""
        return self.state.reserve_usd(day=day, wallet=wallet, usd=_usd(usd_micro), job_key=job_key,
                                      wallet_cap=None if wallet_cap_micro is None else _usd(wallet_cap_micro),
                                      global_cap=None if global_cap_micro is None else _usd(global_cap_micro))

    def reserve_many(self, *, day: str, items: list[tuple[str, int, str]], wallet_cap_micro: int | None,
                     global_cap_micro: int | None) -> list[tuple[bool, str]]:
        """`reserve` for several (wallet, usd_micro, job_key) at once: one read of the totals, one executemany."""
        return self.state.reserve_usd_many(day=day, items=items, wallet_cap_micro=wallet_cap_micro,
                                           global_cap_micro=global_cap_micro)

    def commit(self, job_key: str, usd_micro: int | None = None) -> None:
        """Mark committed (with the actual amount)."""
        self.state.settle_reservation(job_key, "committed", None if usd_micro is None else _usd(usd_micro))

    def release(self, job_key: str) -> None:
        """Mark released."""
        self.state.settle_reservation(job_key, "released")
