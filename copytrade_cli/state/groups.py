"""Execution groups: the copies of one fill (or several coalesced fills) executed together, their journalled
stage, and the execution lease that lets several instances share this file (table groups)."""
from __future__ import annotations

import json
import time
from typing import Any

from .db import StateDB, now_iso
from .records import GROUP_PARKED, GROUP_TERMINAL, sql_in

# Finished groups never run again; dead-lettered ones wait for `jobs dlq retry`, so recovery skips both.
_FINISHED = sql_in(GROUP_TERMINAL)
_NOT_RECOVERABLE = sql_in(GROUP_TERMINAL | GROUP_PARKED)


class GroupTables(StateDB):
    """Execution groups and their leases."""

    def create_group(self, row: dict[str, Any], job_ids: list[int], *, exclusive: bool = False) -> bool:
        """Record a new execution group and attach its jobs, in one transaction. With `exclusive`, nothing is
        written (False) if another group already holds one of the jobs (several instances share this file)."""
        stamp = now_iso()
        row = {**row, "created_at": stamp, "updated_at": stamp, "attempts": row.get("attempts", 0)}
        with self._lock:
            conn = self.db.conn
            if not job_ids:  # one statement is atomic by itself: no savepoint (the decision hot path)
                conn.execute("insert into groups (" + ",".join(row) + ") values (" + ",".join("?" * len(row)) + ")",
                             list(row.values()))
                return True
            self._begin()
            try:
                conn.execute("insert into groups (" + ",".join(row) + ") values (" + ",".join("?" * len(row)) + ")",
                             list(row.values()))
                if job_ids:
                    cur = conn.execute(f"update jobs set group_id=?, status='queued', updated_at=? where id in "
                                       f"({','.join('?' * len(job_ids))})" + (" and group_id is null" if exclusive
                                                                              else ""),
                                       [row["group_id"], stamp, *job_ids])
                    if exclusive and cur.rowcount != len(set(job_ids)):
                        self._rollback()
                        return False
                self._commit()
                return True
            except Exception:
                self._rollback()
                raise

    def drop_group(self, group_id: str, error: str) -> bool:
        """Mark a queued group dropped (queue full), unless a worker already started or absorbed it."""
        with self._lock:
            cur = self.db.conn.execute("update groups set status='dropped', stage='dropped', error=?, updated_at=? "
                                       "where group_id=? and status='queued'", [error, now_iso(), group_id])
            return cur.rowcount == 1

    def absorb_queued_groups(self, group_id: str, *, flow: str, side: str, token_id: str, price_limit: str,
                             max_legs: int) -> list[dict[str, Any]]:
        """Coalescing (in-process mode): queued groups of the same flow, side, token and price limit that no
        worker has started, up to `max_legs` legs in all, are marked "merged" into `group_id` and their jobs
        moved to it, atomically; returns their rows (with their legs) so the caller adds them to its own."""
        with self._lock:
            self._begin()
            try:
                rows = self._q("select * from groups where status='queued' and stage='queued' and worker is null "
                               "and group_id!=? and flow=? and side=? and token_id=? and price_limit=? "
                               "order by created_at limit 500", [group_id, flow, side, token_id, price_limit])
                taken, n = [], 0
                for r in rows:
                    k = len(json.loads(r["legs_json"]))
                    if n + k > max_legs:
                        break
                    taken.append(r)
                    n += k
                if taken:
                    for r in taken:  # their packed copies become job rows, in the group that takes them
                        if r.get("jobs_created") == 0:
                            self.create_group_jobs(r["group_id"], into=group_id)
                            r["jobs_created"] = 1
                    ids = [r["group_id"] for r in taken]
                    marks = ",".join("?" * len(ids))
                    stamp = now_iso()
                    self.db.conn.execute(f"update groups set status='merged', stage='merged', error=?, updated_at=? "
                                         f"where group_id in ({marks})", [f"merged into {group_id}", stamp, *ids])
                    self.db.conn.execute(f"update jobs set group_id=?, updated_at=? where group_id in ({marks})",
                                         [group_id, stamp, *ids])
                self._commit()
                return taken
            except Exception:
                self._rollback()
                raise

    def update_group(self, group_id: str, **values: Any) -> None:
        """Journal a group's new stage/fields (call BEFORE and AFTER each side effect)."""
        values["updated_at"] = now_iso()
        sets = ",".join(f"{k}=?" for k in values)
        with self._lock:
            self.db.execute(f"update groups set {sets} where group_id=?", [*values.values(), group_id])

    def get_group(self, group_id: str) -> dict[str, Any] | None:
        """One execution group."""
        rows = self._q("select * from groups where group_id=?", [group_id])
        return rows[0] if rows else None

    def unfinished_groups(self) -> list[dict[str, Any]]:
        """Groups a previous run left open (to resume at start-up)."""
        return self._q(f"select * from groups where status not in {_FINISHED} order by created_at")

    def list_groups(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent execution groups."""
        return self._q("select * from groups order by created_at desc limit ?", [limit])

    def claim_group(self, group_id: str, owner: str, lease_s: float) -> tuple[str, dict[str, Any] | None]:
        """Take the execution lease of a group (scale-out): ("claimed", row), ("done", row) if it is finished,
        ("busy", row) if another owner holds a live lease, ("missing", None)."""
        with self._lock:
            conn = self.db.conn
            self._begin()
            try:
                rows = self._q("select * from groups where group_id=?", [group_id])
                if not rows:
                    self._commit()
                    return "missing", None
                g = rows[0]
                now = time.time()
                # NOTE: a merged group is finished too (its jobs moved to the group that absorbed it): never run it
                if g["status"] in GROUP_TERMINAL:
                    self._commit()
                    return "done", g
                if g.get("owner") not in (None, owner) and (g.get("lease_until") or 0) > now:
                    self._commit()
                    return "busy", g
                conn.execute("update groups set owner=?, lease_until=?, updated_at=? where group_id=?",
                             [owner, now + lease_s, now_iso(), group_id])
                self._commit()
                g.update(owner=owner, lease_until=now + lease_s)
                return "claimed", g
            except Exception:
                self._rollback()
                raise

    def renew_group_leases(self, group_ids: list[str], owner: str, lease_s: float) -> None:
        """Extend this owner's leases on the groups it is running."""
        if not group_ids:
            return
        with self._lock:
            self.db.execute(f"update groups set lease_until=? where owner=? and group_id in "
                            f"({','.join('?' * len(group_ids))})", [time.time() + lease_s, owner, *group_ids])

    def release_group_lease(self, group_id: str, owner: str) -> None:
        """Give a group's lease up (finished, or stopped so another instance may take it); the owner stays recorded."""
        with self._lock:
            self.db.execute("update groups set lease_until=0 where group_id=? and owner=?", [group_id, owner])

    def orphaned_groups(self) -> list[dict[str, Any]]:
        """Unfinished groups nobody holds a live lease on and not dead-lettered (to re-queue)."""
        return self._q(f"select * from groups where status not in {_NOT_RECOVERABLE} "
                       "and coalesce(lease_until, 0) < ? order by created_at", [time.time()])
