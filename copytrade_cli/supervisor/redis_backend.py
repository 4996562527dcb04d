"""Scale-out on Redis (compatibility path): the implementation lives in `coordination/` (redis_link, redis_store,
redis_queue, redis_registry, redis_scaleout, redis_ops, redis_coord); these names keep importing from here.

What is durable where (see docs/scale-out.md):
- SQLite (the state file every instance on a machine shares) holds everything acknowledged: signals, the
  unique job rows (fill x follower, the at-most-once rule), groups with their journal and execution lease,
  and the guardrail ledger. It is written BEFORE Redis.
- Redis holds what makes sharing fast: the stream of queued group ids, dedup keys, cap counters, worker
  ownership and health keys. A Redis that restarts empty is re-filled from SQLite (queued groups, today's
  ledger) by the first instance that reconnects, under a lock, before anyone takes work again.
"""
from __future__ import annotations

from .coordination.redis_link import DAY_TTL_S, GROUP, RedisDown, RedisLink
from .coordination.redis_ops import dlq_list, dlq_retry, instance_id, read_health
from .coordination.redis_queue import RedisQueue
from .coordination.redis_registry import WorkerRegistry
from .coordination.redis_scaleout import ScaleOut
from .coordination.redis_store import RedisCaps, RedisDedup

__all__ = ["DAY_TTL_S", "GROUP", "RedisCaps", "RedisDedup", "RedisDown", "RedisLink", "RedisQueue", "ScaleOut",
           "WorkerRegistry", "dlq_list", "dlq_retry", "instance_id", "read_health"]
