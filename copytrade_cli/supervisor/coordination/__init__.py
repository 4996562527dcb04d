"""Coordination of supervisor instances: `choose()` picks local (in process + SQLite) or Redis once.

Local: `local.LocalCoordination` (in-process queue and dedup, caps in the state file). Redis (scale-out):
`redis_coord.RedisCoordination` over redis_link, redis_store (dedup, caps), redis_queue (the shared stream),
redis_registry (worker ownership), redis_scaleout, redis_ops (operator commands: dead letters, health).

What is durable where (see docs/scale-out.md):
- SQLite (the state file every instance on a machine shares) holds everything acknowledged: signals, the
  unique job rows (fill x follower, the at-most-once rule), groups with their journal and execution lease,
  and the guardrail ledger. It is written BEFORE Redis.
- Redis holds what makes sharing fast: the stream of queued group ids, dedup keys, cap counters, worker
  ownership and health keys. A Redis that restarts empty is re-filled from SQLite (queued groups, today's
  ledger) by the first instance that reconnects, under a lock, before anyone takes work again.
"""
from .base import Coordination, choose

__all__ = ["Coordination", "choose"]
