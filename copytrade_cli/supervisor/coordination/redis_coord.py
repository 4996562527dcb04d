"""Several instances sharing one Redis: the `Coordination` over `ScaleOut` (queue, dedup, caps, worker keys,
health keys), plus what one instance holds while it runs a group (its stream entry and the group's lease)."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..backends import Delivery
from .base import Coordination, UpkeepLoop
from .redis_link import RedisDown
from .redis_scaleout import ScaleOut

log = logging.getLogger("copytrade.supervisor")


class RedisCoordination(Coordination):
    """Shared mode: Redis for what must be shared fast, the state file for what is acknowledged."""

    mode = "redis"
    group_commit = False
    coalesces = False
    adopts_workers = True
    redelivers_stalled = True

    def __init__(self, settings, state, instance: str, say: Callable[[str], None]):
        self.settings, self.state, self.instance, self.say = settings, state, instance, say
        self.shared = ScaleOut(settings, state, instance, on_dead=self._on_dead_letter)
        self.link = self.shared.link
        self.dedup, self.caps, self.queue = self.shared.dedup, self.shared.caps, self.shared.queue
        self.registry = self.shared.registry
        self.lease_s = settings.supervisor_lease_ms / 1000
        self._held: dict[str, Delivery] = {}  # group id -> delivery, while this instance runs it
        self._held_lock = threading.Lock()

    def connect(self) -> None:
        """Reach Redis (start-up failure: stop before anything runs)."""
        self.link.connect()

    def through_outage(self, op):
        """Retry across a Redis outage: intake pauses here (the channel thread waits, its cursor does not move)."""
        while True:
            try:
                return op()
            except RedisDown:
                # NOTE: no stop check: returning would let a channel advance its cursor past an unrecorded
                # fill. A stopping process simply exits with this daemon thread still waiting.
                self.link.wait_up(1.0)

    def paused(self) -> bool:
        """True while Redis is unreachable."""
        return not self.link.up.is_set()

    def dispatch_slots(self, fanout: int, fleet_capacity: int) -> int:
        """Read no more groups than there are workers, so idle instances get the rest of the stream."""
        return max(1, min(fanout, fleet_capacity))

    def acquire_fleet(self, addresses: list[str]) -> None:
        """Two instances must never share a nonce lane: hold one Redis key per worker, or refuse to start."""
        self.registry.acquire_fleet(addresses, wait_s=2 * self.lease_s)

    def adopt_worker(self, address: str) -> bool:
        """Hold a dead instance's worker key for one group."""
        return self.through_outage(lambda: self.registry.adopt(address))

    def release_worker(self, address: str) -> None:
        """Drop the adopted worker's key."""
        try:
            self.registry.release(address)
        except Exception:  # noqa: BLE001 — the key lapses by itself
            pass

    def claim(self, group_id: str, delivery: Delivery | None) -> dict[str, Any] | None:
        """Take the group's execution lease in the state file; a finished or busy group's entry is acked."""
        if delivery is None:
            return self.state.get_group(group_id)
        verdict, group = self.state.claim_group(group_id, self.instance, self.lease_s)
        if verdict in ("done", "missing"):
            self.queue.ack(delivery)  # already finished (by us before a restart, or by another instance)
            return None
        if verdict == "busy":
            self.queue.ack(delivery, only_own=True)  # a live instance runs it; this entry is a duplicate
            return None
        with self._held_lock:
            self._held[group_id] = delivery
        return group

    def settle(self, group_id: str, delivery: Delivery, final: bool) -> None:
        """Acknowledge a finished group; an unfinished one is left pending with its lease given up, so any
        instance reclaims it after the lease (each reclaim is an attempt; too many -> dead-letter)."""
        with self._held_lock:
            self._held.pop(group_id, None)
        self.state.release_group_lease(group_id, self.instance)
        if not final:
            self.queue.forget(delivery)
            return
        try:
            self.queue.ack(delivery)
        except RedisDown:
            pass  # the group is final in SQLite: whoever gets the entry later finds it done and acks

    def enqueue(self, group_id: str) -> str:
        """XADD; while Redis is down the group waits in SQLite and the sweep after reconnecting queues it."""
        try:
            return self.queue.put(group_id)
        except RedisDown:
            return "deferred"

    def wait_after_read_error(self, interval: float) -> None:
        """Wait for the link (nothing is lost: entries stay in the stream)."""
        self.link.wait_up(interval)

    def recover(self, regroup: Callable[[float | None], None], run_unfinished: Callable[[], None],
                say: Callable[[str], None]) -> None:
        """Regroup orphaned jobs under a lock, then queue (not run) unfinished groups nobody leases; the
        consumer group spreads them over the live instances."""
        link = self.link
        lock = link.k("meta", "regroup-lock")
        if link.call(link.r.set, lock, self.instance, nx=True, px=60_000):
            try:
                # Only jobs older than a lease: a live instance may be between claiming jobs and grouping them.
                regroup(self.lease_s)
            finally:
                link.call(link.r.delete, lock)
        n = self.through_outage(self.shared.refill)
        if n:
            say(f"[TaskQueue] re-queued {n} unfinished group(s) from the journal on the shared queue")

    def upkeep_loops(self) -> list[UpkeepLoop]:
        """The reconnect loop and the lease heartbeat."""
        return [("redis-reconnect", self.link.reconnect_loop), ("leases", self._lease_loop)]

    def _lease_loop(self, stop: threading.Event) -> None:
        """Renew worker keys, group leases and stream entries every third of the lease; sweep orphans."""
        period = self.lease_s / 3
        last_sweep = time.time()
        while not stop.wait(period):
            try:
                with self._held_lock:
                    gids = list(self._held)
                self.state.renew_group_leases(gids, self.instance, self.lease_s)
                if not self.link.up.is_set():
                    continue
                lost = self.registry.renew()
                if lost:
                    log.error("worker key(s) %s taken by another instance: overlapping COPY_TRADING_WORKER_INDEX?",
                              ", ".join(lost))
                self.queue.renew()
                if time.time() - last_sweep >= self.lease_s:
                    last_sweep = time.time()
                    n = self.shared.sweep()
                    if n:
                        self.say(f"[TaskQueue] sweep re-queued {n} orphaned group(s)")
            except RedisDown:
                continue
            except Exception:  # noqa: BLE001 — upkeep must go on
                log.exception("lease upkeep failed")

    def write_health(self, doc: dict[str, Any]) -> None:
        """The health key (a lapsed key is the signal when Redis is down)."""
        try:
            self.shared.write_health(doc, doc["ttl_ms"])
        except Exception:  # noqa: BLE001
            pass

    def release_at_shutdown(self, running: int) -> None:
        """Hand back entries not started, drop worker keys and the health key. Groups still running past the
        grace period keep their lease and are reclaimed after it lapses."""
        try:
            self.queue.release_buffered()
            if running == 0:
                self.registry.release_all()
            self.shared.clear_health()
        except Exception:  # noqa: BLE001 — Redis down at shutdown: keys lapse by themselves
            log.warning("could not release shared keys at shutdown; they lapse after the lease")

    def stats(self) -> list[tuple[str, str, str, float]]:
        """Redis up, disconnects, reclaimed and dead-lettered entries."""
        return [("gauge", "copytrade_redis_up", "1 when Redis answers", 1 if self.link.up.is_set() else 0),
                ("counter", "copytrade_redis_disconnects", "Redis connection losses", self.link.downs),
                ("counter", "copytrade_queue_reclaimed", "Stream entries reclaimed from dead consumers",
                 self.queue.reclaimed),
                ("counter", "copytrade_queue_dead_lettered", "Groups moved to the dead-letter stream",
                 self.queue.dead_lettered)]

    def _on_dead_letter(self, gid: str, attempts: int, reason: str) -> None:
        self.state.update_group(gid, status="dlq", error=f"dead-lettered after {attempts} attempts: {reason}"[:300])
        self.say(f"[TaskQueue] group {gid} moved to the dead-letter stream after {attempts} attempts "
                 "(`copytrade jobs dlq list|retry`)")
