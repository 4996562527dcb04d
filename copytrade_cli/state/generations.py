"""Contract generations and the migration between them (`copytrade migrate`): which generation is active, the
recorded progress of each migration step, and the proxies nothing may be routed to any more (table
migration_ops, over deployments and proxies)."""
from __future__ import annotations

from typing import Any

from .db import StateDB, dumps, now_iso


class GenerationTables(StateDB):
    """Activation of a contract generation and the journal of the migration steps."""

    def activate_generation(self, network: str, generation: int) -> None:
        """Make `generation`'s deployments the active ones and every other active row "previous", atomically."""
        with self.transaction():
            self.db.execute("update deployments set status='previous' where network=? and status='active' "
                            "and generation!=?", [network, generation])
            self.db.execute("update deployments set status='active' where network=? and generation=?",
                            [network, generation])

    def migration_ops(self, network: str, to_generation: int | None = None) -> list[dict[str, Any]]:
        """Recorded migration steps on a network (of one migration, or all), oldest first."""
        if to_generation is None:
            return self._q("select * from migration_ops where network=? order by to_generation, started_at",
                           [network])
        return self._q("select * from migration_ops where network=? and to_generation=? order by started_at",
                       [network, to_generation])

    def record_migration_op(self, network: str, to_generation: int, from_generation: int, step: str, status: str,
                            *, detail: Any = None, items_done: int | None = None,
                            items_total: int | None = None) -> None:
        """Record (or advance) one migration step: its status, progress counters and detail."""
        row: dict[str, Any] = {"network": network, "to_generation": to_generation,
                               "from_generation": from_generation, "step": step, "status": status,
                               "updated_at": now_iso()}
        if detail is not None:
            row["detail"] = dumps(detail)
        if items_done is not None:
            row["items_done"] = items_done
        if items_total is not None:
            row["items_total"] = items_total
        with self._lock:
            existing = self._q("select started_at from migration_ops where network=? and to_generation=? and step=?",
                               [network, to_generation, step])
            row["started_at"] = existing[0]["started_at"] if existing else row["updated_at"]
            self.db["migration_ops"].upsert(row, pk=("network", "to_generation", "step"))

    def unroutable_proxies(self, network: str) -> dict[str, str]:
        """Proxies the supervisor must not route copies to (lowercase address -> reason): deprecated or
        paused in state, or made by a factory of a previous contract generation."""
        rows = self._q(
            "select p.address, p.status, d.generation from proxies p left join deployments d "
            "on d.network=p.network and d.name='ProxyFactory' and lower(d.address)=lower(p.factory) "
            "and d.status='previous' where p.network=? and (p.status in ('deprecated','paused') "
            "or d.generation is not null)", [network])
        out = {}
        for r in rows:
            if r["status"] in ("deprecated", "paused"):
                out[r["address"].lower()] = (f"proxy {r['status']} (contracts migrated): nothing is routed to it; "
                                             "its owner re-deposits into a new proxy")
            else:
                out[r["address"].lower()] = (f"proxy on previous-generation contracts (generation {r['generation']}): "
                                             "its owner re-deposits into a new proxy")
        return out
