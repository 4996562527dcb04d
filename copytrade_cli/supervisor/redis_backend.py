"""Scale-out on Redis: the shared queue (a stream with a consumer group), the dedup set, the guardrail counters,
the worker-key registry and the health keys of several `copytrade supervise` instances.

What is durable where (see docs/scale-out.md):
- SQLite (the state file every instance on a machine shares) holds everything acknowledged: signals, the
  unique job rows (fill x follower, the at-most-once rule), groups with their journal and execution lease,
  and the guardrail ledger. It is written BEFORE Redis.
- Redis holds what makes sharing fast: the stream of queued group ids, dedup keys, cap counters, worker
  ownership and health keys. A Redis that restarts empty is re-filled from SQLite (queued groups, today's
  ledger) by the first instance that reconnects, under a lock, before anyone takes work again.

Every key starts with SUPERVISOR_REDIS_PREFIX. Lua scripts build some keys from that prefix, so this
needs a single Redis node (not Redis Cluster).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from typing import Any, Callable

from ..errors import NotReadyError, UsageError
from .backends import Delivery

log = logging.getLogger("copytrade.redis")
GROUP = "supervisors"
DAY_TTL_S = 3 * 86_400  # counters and reservations outlive their UTC day by two days


class RedisDown(Exception):
    """Redis could not be reached; the caller pauses and the link reconnects with backoff."""


class RedisLink:
    """One Redis connection pool plus the up/down state: operations that fail mark it down, a reconnect
    thread pings with backoff and, once Redis answers, runs the `on_up` hooks (re-fill after a restart)."""

    def __init__(self, url: str, prefix: str):
        import redis

        self.url, self.prefix = url, prefix
        self.r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, decode_responses=True)
        self.up = threading.Event()
        self.on_up: list[Callable[[], None]] = []  # before the gate opens (raw client only)
        self.after_up: list[Callable[[], None]] = []  # after it opened (may use call())
        self.downs = 0
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def k(self, *parts: str) -> str:
        """A key under this deployment's prefix."""
        return self.prefix + ":".join(parts)

    def script(self, name: str, lua: str):
        """A registered Lua script (redis-py reloads it after a Redis restart: NOSCRIPT is handled)."""
        s = self._scripts.get(name)
        if s is None:
            s = self._scripts[name] = self.r.register_script(lua)
        return s

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Redis operation; a connection problem marks the link down and raises RedisDown."""
        import redis

        if not self.up.is_set():
            raise RedisDown("Redis is down; reconnecting")
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError) as exc:
            self.mark_down(exc)
            raise RedisDown(str(exc)) from None
        except redis.ResponseError as exc:
            if "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
                self.mark_down(exc)
                raise RedisDown(str(exc)) from None
            raise

    def connect(self) -> None:
        """First connection (start-up): fail fast with a message that says what to do."""
        try:
            self.r.ping()
        except Exception as exc:  # noqa: BLE001
            raise NotReadyError(f"Redis at {_safe_url(self.url)} is unreachable ({exc}): start it, or unset "
                                "SUPERVISOR_REDIS_URL/REDIS_URL to run one instance in process") from None
        for hook in self.on_up:
            hook()
        self.up.set()
        self._after_up()

    def _after_up(self) -> None:
        for hook in self.after_up:
            try:
                hook()
            except RedisDown:
                return  # down again: the reconnect loop runs the hooks next time
            except Exception:  # noqa: BLE001
                log.exception("post-reconnect step failed")

    def mark_down(self, exc: BaseException) -> None:
        """Note the outage once; the reconnect thread takes over."""
        with self._lock:
            if self.up.is_set():
                self.up.clear()
                self.downs += 1
                log.warning("Redis connection lost (%s): intake paused, reconnecting with backoff", str(exc)[:120])

    def reconnect_loop(self, stop: threading.Event) -> None:
        """Ping with exponential backoff while down; on success run the hooks, then open the gate."""
        backoff = 0.1
        while not stop.is_set():
            if self.up.is_set():
                stop.wait(0.2)
                continue
            try:
                self.r.ping()
                for hook in self.on_up:
                    hook()
                self.up.set()
                backoff = 0.1
                log.warning("Redis reconnected: intake resumed")
                self._after_up()
            except Exception as exc:  # noqa: BLE001 — keep trying
                log.info("Redis still down (%s); retry in %.1fs", str(exc)[:80], backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def wait_up(self, timeout: float | None = None) -> bool:
        """Block until Redis is reachable again (or the timeout passes)."""
        return self.up.wait(timeout)

    def close(self) -> None:
        """Close the pool."""
        try:
            self.r.close()
        except Exception:  # noqa: BLE001
            pass


def _safe_url(url: str) -> str:
    """The URL without a password."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# --- dedup -----------------------------------------------------------------------------------------------

_DEDUP_ADD = """
local cur = redis.call('GET', KEYS[1])
local newch = redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local claim = ARGV[1] .. '|' .. now
if not cur then
  redis.call('SET', KEYS[1], claim, 'PX', ARGV[3])
  return {1, newch}
end
if cur ~= 'done' then
  local ts = tonumber(string.match(cur, '|([0-9]+)$'))
  if ts and now - ts > tonumber(ARGV[4]) then
    redis.call('SET', KEYS[1], claim, 'PX', ARGV[3])
    return {2, newch}
  end
end
return {0, newch}
"""


class RedisDedup:
    """SET-if-absent with a TTL, shared by every instance. A claim that was never marked done within the lease
    (its instance died between dedup and recording) is taken over, so a replay after a crash is not lost."""

    def __init__(self, link: RedisLink, owner: str, ttl_ms: int, stale_ms: int):
        self.link, self.owner, self.ttl_ms, self.stale_ms = link, owner, ttl_ms, stale_ms

    def add(self, key: str, channel: str = "") -> tuple[bool, bool]:
        """(new key or taken-over claim, new channel for this key)."""
        s = self.link.script("dedup_add", _DEDUP_ADD)
        new, newch = self.link.call(s, keys=[self.link.k("dedup", key), self.link.k("dedup", key, "ch")],
                                    args=[self.owner, channel or "-", self.ttl_ms, self.stale_ms])
        return int(new) > 0, int(newch) > 0

    def done(self, key: str) -> None:
        """Mark the fill fully recorded."""
        self.link.call(self.link.r.set, self.link.k("dedup", key), "done", xx=True, keepttl=True)


# --- guardrail counters ----------------------------------------------------------------------------------

_CAP_RESERVE = """
if redis.call('EXISTS', KEYS[4]) == 0 then return {-1, 'uninitialized', '0'} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {1, 'already reserved', '0'} end
local usd = tonumber(ARGV[1])
local g = tonumber(redis.call('GET', KEYS[1]) or '0')
local w = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) >= 0 and g + usd > tonumber(ARGV[2]) then return {0, 'global', tostring(g)} end
if tonumber(ARGV[3]) >= 0 and w + usd > tonumber(ARGV[3]) then return {0, 'wallet', tostring(w)} end
redis.call('INCRBY', KEYS[1], usd)
redis.call('INCRBY', KEYS[2], usd)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('HSET', KEYS[3], 'day', ARGV[4], 'wallet', ARGV[5], 'usd', usd, 'status', 'reserved')
redis.call('EXPIRE', KEYS[3], ARGV[6])
return {1, 'reserved', tostring(g)}
"""

_CAP_SETTLE = """
local r = redis.call('HMGET', KEYS[1], 'day', 'wallet', 'usd', 'status')
if not r[1] or r[4] ~= 'reserved' then return 0 end
local usd = tonumber(r[3])
local delta = 0
local status = 'committed'
local final = usd
if ARGV[2] == 'release' then
  delta = -usd
  status = 'released'
elseif tonumber(ARGV[3]) >= 0 then
  delta = tonumber(ARGV[3]) - usd
  final = tonumber(ARGV[3])
end
if delta ~= 0 then
  redis.call('INCRBY', ARGV[1] .. r[1] .. ':global', delta)
  redis.call('INCRBY', ARGV[1] .. r[1] .. ':wallet:' .. r[2], delta)
end
redis.call('HSET', KEYS[1], 'status', status, 'usd', final)
return 1
"""


class RedisCaps:
    """Guardrail caps on Redis: one Lua script checks both caps and reserves, so N instances racing for the
    last dollar of a cap cannot both pass. Every reservation is also journalled in the SQLite ledger (the
    durable copy the counters are rebuilt from if Redis restarts empty). Window: the UTC calendar day."""

    def __init__(self, link: RedisLink, state, ensure_initialized: Callable[[], None]):
        self.link, self.state, self.ensure_initialized = link, state, ensure_initialized
        self.pending: deque[tuple[str, str, int | None]] = deque()  # settles to replay after an outage

    def _keys(self, day: str, wallet: str, job_key: str) -> list[str]:
        return [self.link.k("cap", day, "global"), self.link.k("cap", day, "wallet", wallet),
                self.link.k("cap", "res", job_key), self.link.k("meta", "epoch")]

    def reserve(self, *, day: str, wallet: str, usd_micro: int, job_key: str, wallet_cap_micro: int | None,
                global_cap_micro: int | None) -> tuple[bool, str]:
        """Reserve in Redis (atomic across instances), then journal in SQLite."""
        s = self.link.script("cap_reserve", _CAP_RESERVE)
        for _ in range(3):
            code, what, used = self.link.call(s, keys=self._keys(day, wallet, job_key), args=[
                usd_micro, -1 if global_cap_micro is None else global_cap_micro,
                -1 if wallet_cap_micro is None else wallet_cap_micro, day, wallet, DAY_TTL_S])
            if int(code) != -1:
                break
            self.ensure_initialized()
        else:
            raise RedisDown("Redis counters are not initialised yet")
        code = int(code)
        if code == 1:
            if what == "reserved":
                self.state.record_reservation(day=day, wallet=wallet, usd=_usd(usd_micro), job_key=job_key)
            return True, what
        used_s = _usd(int(float(used)))
        if what == "global":
            return False, f"daily cap {_usd(global_cap_micro or 0)} USD reached ({used_s} used, all instances)"
        return False, f"wallet daily cap {_usd(wallet_cap_micro or 0)} USD reached ({used_s} used, all instances)"

    def _settle(self, job_key: str, mode: str, usd_micro: int | None) -> None:
        s = self.link.script("cap_settle", _CAP_SETTLE)
        self.link.call(s, keys=[self.link.k("cap", "res", job_key)],
                       args=[self.link.k("cap", ""), mode, -1 if usd_micro is None else usd_micro])

    def commit(self, job_key: str, usd_micro: int | None = None) -> None:
        """SQLite first (durable), then Redis; a Redis outage queues the settle for replay."""
        self.state.settle_reservation(job_key, "committed", None if usd_micro is None else _usd(usd_micro))
        self._try(job_key, "commit", usd_micro)

    def release(self, job_key: str) -> None:
        """SQLite first (durable), then Redis; a Redis outage queues the settle for replay."""
        self.state.settle_reservation(job_key, "released")
        self._try(job_key, "release", None)

    def _try(self, job_key: str, mode: str, usd_micro: int | None) -> None:
        try:
            self._settle(job_key, mode, usd_micro)
        except RedisDown:
            self.pending.append((job_key, mode, usd_micro))

    def replay_pending(self) -> None:
        """Apply settles that failed while Redis was down (a conservative over-count until then)."""
        while self.pending:
            job_key, mode, usd = self.pending[0]
            self._settle(job_key, mode, usd)
            self.pending.popleft()

    def rebuild(self, day: str, pipe) -> int:
        """Counters and reservations of `day` from the SQLite ledger (after Redis restarted empty)."""
        rows = self.state.reservations(day)
        totals: dict[str, int] = {}
        g = 0
        for r in rows:
            micro = int(_micro(r["usd"]))
            g += micro
            totals[r["wallet"]] = totals.get(r["wallet"], 0) + micro
            key = self.link.k("cap", "res", r["job_key"])
            pipe.hset(key, mapping={"day": day, "wallet": r["wallet"], "usd": micro, "status": r["status"]})
            pipe.expire(key, DAY_TTL_S)
        pipe.set(self.link.k("cap", day, "global"), g, ex=DAY_TTL_S)
        for wallet, micro in totals.items():
            pipe.set(self.link.k("cap", day, "wallet", wallet), micro, ex=DAY_TTL_S)
        return len(rows)


def _usd(micro: int) -> str:
    from decimal import Decimal

    return str(Decimal(micro) / 10**6)


def _micro(usd: str) -> int:
    from decimal import Decimal

    return int(Decimal(usd) * 10**6)


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


# --- worker-key registry -----------------------------------------------------------------------------------

_CAS_PEXPIRE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_CAS_DEL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_CAS_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return false
"""


class WorkerRegistry:
    """One Redis key per worker address, held (with a TTL, renewed) by the instance whose nonce lane it is.

    Start-up takes every key of its fleet or refuses: another live instance holding one means two instances
    share a nonce lane (overlapping COPY_TRADING_WORKER_INDEX). A key left by this same slot's previous,
    dead process (same host and worker index) is taken over. A dead instance's worker can be *adopted* for
    one group by another instance (to finish a group journalled on that worker) once its key has lapsed.
    """

    def __init__(self, link: RedisLink, instance: str, slot: str, lease_ms: int):
        self.link, self.instance, self.slot, self.lease_ms = link, instance, slot, lease_ms
        self.held: dict[str, str] = {}  # address (lower) -> value we wrote

    def _key(self, address: str) -> str:
        return self.link.k("worker", address.lower())

    def _value(self, mode: str) -> str:
        return json.dumps({"instance": self.instance, "slot": self.slot, "host": socket.gethostname(),
                           "pid": os.getpid(), "mode": mode}, separators=(",", ":"))

    def acquire_fleet(self, addresses: list[str], wait_s: float = 0.0) -> None:
        """Take every worker key or raise NotReadyError naming the overlap."""
        deadline = time.time() + wait_s
        while True:
            conflicts = self._try_acquire(addresses)
            if not conflicts:
                return
            adopting = [c for c in conflicts if c[1].get("mode") == "adopt"]
            if adopting and time.time() < deadline:
                time.sleep(0.5)
                continue
            self.release_all()
            addr, owner = conflicts[0]
            raise NotReadyError(
                f"worker {addr} is already held by instance {owner.get('instance')} (slot {owner.get('slot')}, "
                f"PID {owner.get('pid')} on {owner.get('host')}); {len(conflicts)} of this fleet's workers overlap: "
                "give each instance its own COPY_TRADING_WORKER_INDEX (two instances must never share a nonce lane)")

    def _try_acquire(self, addresses: list[str]) -> list[tuple[str, dict]]:
        conflicts = []
        value = self._value("own")
        for a in addresses:
            key = self._key(a)
            if self.link.call(self.link.r.set, key, value, nx=True, px=self.lease_ms):
                self.held[a.lower()] = value
                continue
            cur = self.link.call(self.link.r.get, key)
            if cur is None:
                if self.link.call(self.link.r.set, key, value, nx=True, px=self.lease_ms):
                    self.held[a.lower()] = value
                    continue
                cur = self.link.call(self.link.r.get, key) or "{}"
            owner = _loads(cur)
            if owner.get("instance") == self.instance or self._previous_life(owner):
                s = self.link.script("cas_set", _CAS_SET)
                if self.link.call(s, keys=[key], args=[cur, value, self.lease_ms]):
                    self.held[a.lower()] = value
                    continue
            conflicts.append((a, owner))
        return conflicts

    def _previous_life(self, owner: dict) -> bool:
        """The key was left by this slot's previous process, which is gone (a restart after a crash)."""
        if owner.get("slot") != self.slot or owner.get("mode") != "own":
            return False
        if owner.get("host") != socket.gethostname():
            return False
        pid = owner.get("pid")
        return not isinstance(pid, int) or pid == os.getpid() or not _pid_alive(pid)

    def adopt(self, address: str) -> bool:
        """Hold a dead instance's worker for one group; False if its owner still holds it."""
        value = self._value("adopt")
        if self.link.call(self.link.r.set, self._key(address), value, nx=True, px=self.lease_ms):
            self.held[address.lower()] = value
            return True
        return False

    def renew(self) -> list[str]:
        """Extend every key we hold; returns addresses whose key was lost (then re-taken if free)."""
        lost = []
        s = self.link.script("cas_pexpire", _CAS_PEXPIRE)
        for addr, value in list(self.held.items()):
            if not int(self.link.call(s, keys=[self._key(addr)], args=[value, self.lease_ms]) or 0):
                # Redis restarted empty (or the key lapsed): take it back unless somebody else has it now.
                if self.link.call(self.link.r.set, self._key(addr), value, nx=True, px=self.lease_ms):
                    continue
                lost.append(addr)
        return lost

    def release(self, address: str) -> None:
        """Drop one key we hold."""
        value = self.held.pop(address.lower(), None)
        if value is not None:
            s = self.link.script("cas_del", _CAS_DEL)
            self.link.call(s, keys=[self._key(address)], args=[value])

    def release_all(self) -> None:
        """Drop every key we hold (clean shutdown)."""
        for addr in list(self.held):
            try:
                self.release(addr)
            except RedisDown:
                return


def _loads(text: str) -> dict:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
            from .decide import utc_day

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
            if g["status"] in ("dropped", "dlq"):
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


# --- operator functions (CLI) ---------------------------------------------------------------------------

def _operator_link(settings) -> RedisLink:
    if not settings.redis:
        raise UsageError("the queue lives in process without Redis: set SUPERVISOR_REDIS_URL (or REDIS_URL) to "
                         "use the shared queue and its dead-letter stream")
    link = RedisLink(settings.redis, settings.supervisor_redis_prefix)
    try:
        link.r.ping()
    except Exception as exc:  # noqa: BLE001
        raise NotReadyError(f"Redis at {_safe_url(settings.redis)} is unreachable ({exc})") from None
    link.up.set()
    return link


def dlq_list(settings, limit: int = 100) -> list[dict[str, Any]]:
    """Dead-lettered groups, oldest first."""
    link = _operator_link(settings)
    try:
        rows = link.r.xrange(link.k("q", "dlq"), count=limit)
        return [{"entry": eid, **fields} for eid, fields in rows]
    finally:
        link.close()


def dlq_retry(settings, state, entries: list[str] | None = None) -> list[str]:
    """Put dead-lettered groups back on the queue (all, or the given entry ids); returns the group ids."""
    link = _operator_link(settings)
    try:
        dlq = link.k("q", "dlq")
        rows = link.r.xrange(dlq)
        if entries:
            wanted = set(entries)
            missing = wanted - {eid for eid, _ in rows}
            if missing:
                raise UsageError(f"no dead-letter entry {sorted(missing)[0]} (see `copytrade jobs dlq list`)")
            rows = [(eid, f) for eid, f in rows if eid in wanted]
        done = []
        queue = RedisQueue(link, "operator", max_size=0, lease_ms=settings.supervisor_lease_ms,
                           max_deliveries=settings.supervisor_max_deliveries)
        queue.create_group()
        for eid, fields in rows:
            gid = fields["gid"]
            g = state.get_group(gid)
            if g is not None and g["status"] == "dlq":
                # SQLite first: the sweep re-queues it even if the XADD below is lost.
                state.update_group(gid, status="queued", lease_until=0, attempts=0)
            queue.requeue_entry(gid)
            link.r.xdel(dlq, eid)
            done.append(gid)
        return done
    finally:
        link.close()


def read_health(settings) -> list[dict[str, Any]]:
    """Every live instance's health document from Redis (expired instances have no key)."""
    link = _operator_link(settings)
    try:
        out = []
        for key in link.r.scan_iter(match=link.k("health", "*"), count=500):
            raw = link.r.get(key)
            if raw:
                out.append({**_loads(raw), "ttl_ms": link.r.pttl(key)})
        return sorted(out, key=lambda d: str(d.get("instance")))
    finally:
        link.close()


def instance_id() -> str:
    """A name for this process: host, PID and a random suffix (unique across restarts)."""
    import uuid

    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:4]}"
