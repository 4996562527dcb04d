"""Dedup and guardrail counters on Redis, shared by every instance (atomic Lua scripts)."""
from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Callable

from .redis_link import DAY_TTL_S, RedisDown, RedisLink

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

    def seen(self, key: str) -> bool:
        """No cheap local hint on a shared set: always False (the caller then reads ahead, harmlessly)."""
        return False

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


# Every copy of one fill in ONE call: KEYS = global counter, epoch, then (wallet counter, reservation) per copy;
# ARGV = global cap, wallet cap, day, ttl, then (wallet, usd) per copy. Checked in order, exactly as one
# _CAP_RESERVE call per copy would (a wallet met twice sees its own first reservation).
_CAP_RESERVE_MANY = """
if redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
local gcap, wcap, day, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local g = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {}
local n = (#KEYS - 2) / 2
for i = 1, n do
  local wk, rk = KEYS[1 + 2 * i], KEYS[2 + 2 * i]
  local wallet, usd = ARGV[3 + 2 * i], tonumber(ARGV[4 + 2 * i])
  if redis.call('EXISTS', rk) == 1 then
    table.insert(out, 1); table.insert(out, 'already reserved'); table.insert(out, '0')
  else
    local w = tonumber(redis.call('GET', wk) or '0')
    if gcap >= 0 and g + usd > gcap then
      table.insert(out, 0); table.insert(out, 'global'); table.insert(out, tostring(g))
    elseif wcap >= 0 and w + usd > wcap then
      table.insert(out, 0); table.insert(out, 'wallet'); table.insert(out, tostring(w))
    else
      g = g + usd
      redis.call('INCRBY', KEYS[1], usd)
      redis.call('INCRBY', wk, usd)
      redis.call('EXPIRE', wk, ttl)
      redis.call('HSET', rk, 'day', day, 'wallet', wallet, 'usd', usd, 'status', 'reserved')
      redis.call('EXPIRE', rk, ttl)
      table.insert(out, 1); table.insert(out, 'reserved'); table.insert(out, tostring(g - usd))
    end
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return out
"""


class RedisCaps:
    """Guardrail caps on Redis: one Lua script checks both caps and reserves, so N instances racing for the
    last dollar of a cap cannot both pass. Every reservation is also journalled in the SQLite ledger (the
    durable copy the counters are rebuilt from if Redis restarts empty). Window: the UTC calendar day."""

    commits_in_state = False  # commits go to Redis, outside the state file's transaction

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

    def reserve_many(self, *, day: str, items: list[tuple[str, int, str]], wallet_cap_micro: int | None,
                     global_cap_micro: int | None) -> list[tuple[bool, str]]:
        """`reserve` for several (wallet, usd_micro, job_key), in order, in ONE Lua call (atomic across
        instances), then journalled in SQLite with one statement; safe to repeat after an outage (a key
        already reserved answers "already reserved")."""
        if not items:
            return []
        s = self.link.script("cap_reserve_many", _CAP_RESERVE_MANY)
        keys = [self.link.k("cap", day, "global"), self.link.k("meta", "epoch")]
        args: list = [-1 if global_cap_micro is None else global_cap_micro,
                      -1 if wallet_cap_micro is None else wallet_cap_micro, day, DAY_TTL_S]
        for wallet, usd_micro, job_key in items:
            keys += [self.link.k("cap", day, "wallet", wallet), self.link.k("cap", "res", job_key)]
            args += [wallet, usd_micro]
        for _ in range(3):
            got = self.link.call(s, keys=keys, args=args)
            if int(got[0]) != -1 or len(got) > 1:
                break
            self.ensure_initialized()
        else:
            raise RedisDown("Redis counters are not initialised yet")
        out: list[tuple[bool, str]] = []
        new: list[tuple[str, str, str]] = []
        for i, (wallet, usd_micro, job_key) in enumerate(items):
            code, what, used = int(got[3 * i]), _text(got[3 * i + 1]), got[3 * i + 2]
            if code == 1:
                if what == "reserved":
                    new.append((wallet, _usd(usd_micro), job_key))
                out.append((True, what))
                continue
            used_s = _usd(int(float(used)))
            if what == "global":
                out.append((False, f"daily cap {_usd(global_cap_micro or 0)} USD reached ({used_s} used, "
                                   "all instances)"))
            else:
                out.append((False, f"wallet daily cap {_usd(wallet_cap_micro or 0)} USD reached ({used_s} used, "
                                   "all instances)"))
        if new:
            self.state.record_reservations(day=day, rows=new)
        return out

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


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _usd(micro: int) -> str:
    return str(Decimal(micro) / 10**6)


def _micro(usd: str) -> int:
    return int(Decimal(usd) * 10**6)
