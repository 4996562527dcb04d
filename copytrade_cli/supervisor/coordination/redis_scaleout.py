"""Everything one supervisor instance shares through Redis (queue, dedup, caps, worker keys, health keys),
and its (re)initialisation from SQLite after Redis restarted empty."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from ..model import GROUP_PARKED, GroupStatus
from .redis_link import RedisDown, RedisLink
from .redis_queue import _ENQUEUE, RedisQueue
from .redis_registry import _CAS_DEL, WorkerRegistry
from .redis_store import RedisCaps, RedisDedup

log = logging.getLogger("copytrade.redis")

# --- the whole Redis side of one instance -------------------------------------------------------------------

class ScaleOut:
    """Everything one supervisor instance shares through Redis, built from the settings."""

    def __init__(self, settings, state, instance: str, *, on_dead: Callable[[str, int, str], None] | None = None):
        self.settings, self.state, self.instance = settings, state, instance
        self.link = RedisLink(settings.redis, settings.supervisor_redis_prefix)
        lease = settings.supervisor_lease_ms
        self.lease_ms = lease
        self.dedup = RedisDedup(self.link, instance, settings.supervisor_dedup_ttl_ms, stale_ms=lease)
        self.caps = RedisCaps(self.link, state, self.ensure_initialized)
        self.queue = RedisQueue(self.link, instance, max_size=settings.supervisor_queue_max_size, lease_ms=lease,
                                max_deliveries=settings.supervisor_max_deliveries, on_dead=on_dead,
                                ensure_initialized=self.ensure_initialized)
        slot = f"w{settings.copy_trading_worker_index}"
        self.registry = WorkerRegistry(self.link, instance, slot, lease)
        self.rebuilds = 0
        self.link.on_up.append(self._on_up)
        self.link.after_up.append(self.caps.replay_pending)

    # --- (re)initialisation -----------------------------------------------------------------------------
    def _on_up(self) -> None:
        """Runs on start-up and after every reconnect, before the gate opens."""
        self._ensure_initialized(self.link.r)

    def ensure_initialized(self) -> None:
        """Public: make sure the consumer group, the counters and the queue exist (after a Redis restart)."""
        try:
            self._ensure_initialized(self.link.r)
        except Exception as exc:  # noqa: BLE001
            self.link.mark_down(exc)
            raise RedisDown(str(exc)) from None

    def _ensure_initialized(self, r) -> None:
        epoch = self.link.k("meta", "epoch")
        if r.exists(epoch):
            return
        lock = self.link.k("meta", "init-lock")
        deadline = time.time() + 60
        while not r.set(lock, self.instance, nx=True, px=30_000):
            if r.exists(epoch):
                return
            if time.time() > deadline:
                raise RedisDown("another instance is still re-filling Redis")
            time.sleep(0.1)
        try:
            if r.exists(epoch):
                return
            self.queue.create_group()
            from ..decide import utc_day

            pipe = r.pipeline(transaction=True)
            n_res = self.caps.rebuild(utc_day(), pipe)
            pipe.execute()
            n_groups = self._refill(force=True)
            r.set(epoch, json.dumps({"by": self.instance, "at": time.time()}))
            self.rebuilds += 1
            log.warning("Redis initialised by %s: %d queued group(s) re-filled from SQLite, %d reservation(s) "
                        "of today rebuilt", self.instance, n_groups, n_res)
        finally:
            s = self.link.script("cas_del", _CAS_DEL)
            s(keys=[lock], args=[self.instance])

    def refill(self) -> int:
        """Queue every unfinished group of the state file that has no stream entry and no live lease."""
        return self._refill(force=False)

    def _refill(self, force: bool) -> int:
        n = 0
        for g in self.state.orphaned_groups():
            if g["status"] == GroupStatus.DROPPED or g["status"] in GROUP_PARKED:
                continue
            s = self.link.script("enqueue", _ENQUEUE)
            res = s(keys=[self.queue.stream, self.queue.ids], args=[g["group_id"], 0])
            if res not in ("duplicate", "full"):
                n += 1
        return n

    def sweep(self) -> int:
        """Periodic safety net (one instance at a time): re-queue orphaned groups (an instance died between
        recording a group and queueing it, or Redis lost an entry)."""
        lock = self.link.k("meta", "sweep-lock")
        if not self.link.call(self.link.r.set, lock, self.instance, nx=True, px=max(1000, self.lease_ms // 2)):
            return 0
        try:
            return int(self.link.call(self.refill))
        except RedisDown:
            return 0

    # --- health -------------------------------------------------------------------------------------------
    def write_health(self, doc: dict[str, Any], ttl_ms: int) -> None:
        """The instance's health key, expiring unless refreshed."""
        self.link.call(self.link.r.set, self.link.k("health", self.instance), json.dumps(doc), px=ttl_ms)

    def clear_health(self) -> None:
        """Remove the health key (clean shutdown)."""
        try:
            self.link.call(self.link.r.delete, self.link.k("health", self.instance))
        except RedisDown:
            pass
