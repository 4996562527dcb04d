"""Operator functions over the shared queue (CLI): the dead-letter stream and the health keys."""
from __future__ import annotations

from typing import Any

from ...errors import NotReadyError, UsageError
from .base import instance_id
from .redis_link import RedisLink, _safe_url
from .redis_queue import RedisQueue
from .redis_registry import _loads

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
