"""How supervisor instances coordinate: one interface, chosen once at start-up (see `choose`).

Like aiokafka's `GroupCoordinator` / `NoGroupCoordinator`: `LocalCoordination` (in process + the SQLite state
file: one instance) and `RedisCoordination` (several instances sharing Redis) offer the same calls and the same
capability flags, and nothing above this package asks which one it has.

What an implementation provides: the fast dedup set (`dedup`), the guardrail counters (`caps`), the queue of
groups (`queue`), worker ownership (`acquire_fleet`, `adopt_worker`), group leases (`claim`, `settle`), recovery
at start-up (`recover`), its upkeep loops, and its side of health (`write_health`, `stats`).
"""
from __future__ import annotations

import os
import socket
import uuid
from abc import ABC, abstractmethod
from typing import Any, Callable, TypeVar

from ..backends import Delivery

T = TypeVar("T")
UpkeepLoop = tuple[str, Callable[[Any], None]]  # (name, fn(stop_event))


class Coordination(ABC):
    """Dedup, caps, queue, worker registry, group leases and health of one supervisor instance."""

    mode: str = ""  # as the health document says it: "in-process" or "redis"
    # A fill's writes (signal, reservations, jobs, groups) commit in ONE state transaction, and the fills of one
    # channel poll share it (group commit). Off when the dedup marks a fill done only once that fill is durably
    # recorded on its own, and reservations live outside the state file.
    group_commit: bool = True
    # A queued group of the same order may join a group a worker starts (one order for both).
    coalesces: bool = True
    # A group journalled on a worker outside this fleet (a dead instance's) may be finished on it here.
    adopts_workers: bool = False
    # A stalled group comes back by itself (stream redelivery after the lease); otherwise the dispatcher
    # schedules its retry.
    redelivers_stalled: bool = False

    dedup: Any
    caps: Any
    queue: Any

    def connect(self) -> None:
        """Start-up: reach the shared store, or raise NotReadyError (nothing has started yet)."""

    def through_outage(self, op: Callable[[], T]) -> T:
        """Run one operation on the coordination store; while it is unreachable, wait here until it is back."""
        return op()

    def paused(self) -> bool:
        """True while intake waits for the coordination store."""
        return False

    def dispatch_slots(self, fanout: int, fleet_capacity: int) -> int:
        """How many groups this instance runs at once (reads from a shared queue never exceed it)."""
        return max(1, fanout)

    def acquire_fleet(self, addresses: list[str]) -> None:
        """Own these workers' nonce lanes for this instance's life, or raise NotReadyError."""

    def adopt_worker(self, address: str) -> bool:
        """Hold a dead instance's worker for one group; False if its owner still holds it."""
        return False

    def release_worker(self, address: str) -> None:
        """Give back an adopted worker."""

    @abstractmethod
    def claim(self, group_id: str, delivery: Delivery | None) -> dict[str, Any] | None:
        """The group row to run, or None if it is not this instance's to run (finished, held elsewhere)."""

    def settle(self, group_id: str, delivery: Delivery, final: bool) -> None:
        """After running a delivered group: acknowledge it (final) or give its lease up (not final)."""

    def enqueue(self, group_id: str) -> str:
        """Queue a recorded group: "queued", "duplicate", "full" (the caller records a drop) or "deferred"
        (the store is unreachable; recovery queues it from the state file later)."""
        return self.queue.put(group_id)

    def wait_after_read_error(self, interval: float) -> None:
        """The queue read failed: wait (for the store to come back) before the next read."""

    @abstractmethod
    def recover(self, regroup: Callable[[float | None], None], run_unfinished: Callable[[], None],
                say: Callable[[str], None]) -> None:
        """Start-up: group jobs a dead process claimed but never grouped, then get unfinished groups going."""

    def upkeep_loops(self) -> list[UpkeepLoop]:
        """Background loops that must run until the very end of shutdown (leases, reconnects)."""
        return []

    def write_health(self, doc: dict[str, Any]) -> None:
        """Publish the health document where other instances and `supervise --health` read it."""

    def release_at_shutdown(self, running: int) -> None:
        """Clean stop: hand back what this instance holds but will not finish."""

    def stats(self) -> list[tuple[str, str, str, float]]:
        """Extra metrics as (kind "gauge"|"counter", name, help, value)."""
        return []


def instance_id() -> str:
    """A name for this process: host, PID and a random suffix (unique across restarts)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def choose(settings, state, instance: str, say: Callable[[str], None]) -> Coordination:
    """The coordination for these settings, decided once: Redis when a Redis URL is set, else in process."""
    if settings.redis:
        from .redis_coord import RedisCoordination

        return RedisCoordination(settings, state, instance, say)
    from .local import LocalCoordination

    return LocalCoordination(settings, state)
