"""The shared queue: groups on a Redis stream read through one consumer group, with a dead-letter stream."""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from ..backends import Delivery
from .redis_link import GROUP, RedisDown, RedisLink

log = logging.getLogger("copytrade.redis")

# --- queue -----------------------------------------------------------------------------------------------

_ENQUEUE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'duplicate' end
if tonumber(ARGV[2]) > 0 and redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then return 'full' end
local id = redis.call('XADD', KEYS[1], '*', 'gid', ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], id)
return id
"""

_ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
local cur = redis.call('HGET', KEYS[2], ARGV[2])
if cur then
  if cur == ARGV[3] then
    redis.call('HDEL', KEYS[2], ARGV[2])
  elseif ARGV[4] == 'all' then
    redis.call('XACK', KEYS[1], ARGV[1], cur)
    redis.call('XDEL', KEYS[1], cur)
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
return 1
"""

_REQUEUE = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
local id = redis.call('XADD', KEYS[1], '*', 'gid', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], id)
return id
"""

_DEAD_LETTER = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then redis.call('HDEL', KEYS[2], ARGV[2]) end
return redis.call('XADD', KEYS[3], '*', 'gid', ARGV[2], 'attempts', ARGV[4], 'reason', ARGV[5],
                  'consumer', ARGV[6], 'at', ARGV[7])
"""


class RedisQueue:
    """Groups on a Redis stream read through one consumer group: every instance is a consumer.

    An entry stays pending on its consumer until acknowledged; the consumer renews it (XCLAIM JUSTID) while it
    runs, so only a dead consumer's entries go idle past the lease and are reclaimed with XAUTOCLAIM by a live
    one; each delivery counts as an attempt and after SUPERVISOR_MAX_DELIVERIES the entry moves to the
    dead-letter stream (`copytrade jobs dlq list|retry`). A hash group id -> entry id keeps one entry per group.
    """

    def __init__(self, link: RedisLink, consumer: str, *, max_size: int, lease_ms: int, max_deliveries: int,
                 on_dead: Callable[[str, int, str], None] | None = None,
                 ensure_initialized: Callable[[], None] | None = None):
        self.link, self.consumer = link, consumer
        self.max_size, self.lease_ms, self.max_deliveries = max_size, lease_ms, max_deliveries
        self.on_dead = on_dead
        self.ensure_initialized = ensure_initialized
        self.stream, self.ids, self.dlq = link.k("q", "groups"), link.k("q", "ids"), link.k("q", "dlq")
        self._buf: deque[Delivery] = deque()
        self.held: dict[str, str] = {}  # entry id -> group id, renewed while this instance lives
        self._held_lock = threading.Lock()
        self._last_claim = 0.0
        self.reclaimed = 0
        self.dead_lettered = 0

    def put(self, group_id: str) -> str:
        """XADD unless the group already has an entry or the stream is full."""
        s = self.link.script("enqueue", _ENQUEUE)
        res = self.link.call(s, keys=[self.stream, self.ids], args=[group_id, self.max_size])
        return res if res in ("full", "duplicate") else "queued"

    def requeue_entry(self, group_id: str) -> str:
        """Queue regardless of the size bound (re-fill from SQLite, DLQ retry): those were acknowledged already."""
        s = self.link.script("enqueue", _ENQUEUE)
        res = self.link.call(s, keys=[self.stream, self.ids], args=[group_id, 0])
        return res if res in ("full", "duplicate") else "queued"

    def get(self, timeout: float) -> Delivery | None:
        """A reclaimed entry first, else a new one (XREADGROUP, blocking up to `timeout`)."""
        if not self._buf and time.time() - self._last_claim >= self.lease_ms / 4000:
            self._last_claim = time.time()
            self._autoclaim()
        if self._buf:
            return self._buf.popleft()
        import redis

        try:
            resp = self.link.call(self.link.r.xreadgroup, GROUP, self.consumer, {self.stream: ">"}, count=1,
                                  block=max(1, int(timeout * 1000)))
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc) and self.ensure_initialized:
                self.ensure_initialized()
                return None
            raise
        for _stream, entries in resp or []:
            for entry_id, fields in entries:
                if not fields:
                    continue
                with self._held_lock:
                    self.held[entry_id] = fields["gid"]
                return Delivery(fields["gid"], entry_id, 1)
        return None

    def _autoclaim(self, count: int = 10) -> None:
        import redis

        try:
            res = self.link.call(self.link.r.xautoclaim, self.stream, GROUP, self.consumer,
                                 min_idle_time=self.lease_ms, start_id="0-0", count=count)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                return
            raise
        entries = res[1] if res else []
        for entry_id, fields in entries:
            if not fields:  # deleted while pending
                self.link.call(self.link.r.xack, self.stream, GROUP, entry_id)
                continue
            gid = fields["gid"]
            info = self.link.call(self.link.r.xpending_range, self.stream, GROUP, min=entry_id, max=entry_id,
                                  count=1)
            attempts = int(info[0]["times_delivered"]) if info else 1
            self.reclaimed += 1
            if attempts > self.max_deliveries:
                self.dead_letter(Delivery(gid, entry_id, attempts), f"{attempts - 1} deliveries without finishing")
                continue
            log.warning("reclaimed group %s from a dead consumer (attempt %d)", gid, attempts)
            with self._held_lock:
                self.held[entry_id] = gid
            self._buf.append(Delivery(gid, entry_id, attempts))

    def renew(self) -> None:
        """Reset the idle time of every entry this instance holds (the lease heartbeat)."""
        with self._held_lock:
            ids = list(self.held)
        if ids:
            self.link.call(self.link.r.xclaim, self.stream, GROUP, self.consumer, 0, ids, justid=True)

    def forget(self, delivery: Delivery) -> None:
        """Stop renewing an entry (left pending: another instance reclaims it after the lease)."""
        with self._held_lock:
            self.held.pop(delivery.entry_id or "", None)

    def ack(self, delivery: Delivery, *, only_own: bool = False) -> None:
        """XACK + XDEL the entry (and any other entry of the same group unless `only_own`)."""
        self.forget(delivery)
        if delivery.entry_id is None:
            return
        s = self.link.script("ack", _ACK)
        self.link.call(s, keys=[self.stream, self.ids],
                       args=[GROUP, delivery.group_id, delivery.entry_id, "own" if only_own else "all"])

    def release(self, delivery: Delivery) -> None:
        """Give an entry this instance will not start back to the queue (clean shutdown)."""
        self.forget(delivery)
        s = self.link.script("requeue", _REQUEUE)
        self.link.call(s, keys=[self.stream, self.ids], args=[GROUP, delivery.group_id, delivery.entry_id])

    def release_buffered(self) -> None:
        """Shutdown: hand back reclaimed entries not started."""
        while self._buf:
            d = self._buf.popleft()
            try:
                self.release(d)
            except RedisDown:
                return

    def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Move an entry to the dead-letter stream."""
        self.forget(delivery)
        s = self.link.script("dead_letter", _DEAD_LETTER)
        self.link.call(s, keys=[self.stream, self.ids, self.dlq],
                       args=[GROUP, delivery.group_id, delivery.entry_id, delivery.attempts, reason[:300],
                             self.consumer, f"{time.time():.3f}"])
        self.dead_lettered += 1
        log.error("group %s dead-lettered after %d attempts: %s", delivery.group_id, delivery.attempts, reason)
        if self.on_dead:
            self.on_dead(delivery.group_id, delivery.attempts, reason)

    def depth(self) -> int:
        """Entries queued or running (acknowledged entries are deleted)."""
        return int(self.link.call(self.link.r.xlen, self.stream))

    def idle(self) -> bool:
        """Nothing buffered or held by this instance."""
        return not self._buf and not self.held

    def create_group(self) -> None:
        """The consumer group (and the stream), from the start of the stream."""
        import redis

        try:
            self.link.r.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
