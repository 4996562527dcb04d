"""Follow configs: who copies whom, with which sizing, caps and filters (table follows)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .db import StateDB, now_iso


@dataclass
class Follow:
    """A follow config: follower proxy copies leader with this sizing, caps and filters."""

    follower: str
    leader: str
    owner: str | None = None
    sizing: str = "fixed"          # fixed | proportional | percent
    amount: str = "10"             # USD (fixed), scale (proportional), percent of balance (percent)
    min_usd: str | None = None
    max_usd: str | None = None
    max_slippage: str = "0.05"
    sell_mode: str = "proportional"  # proportional | ignore
    side_filter: str = "BOTH"       # BOTH | BUY | SELL
    min_leader_usd: str | None = None
    max_price: str | None = None
    flow: str = "standard"          # standard | buffer
    status: str = "active"          # active | paused
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    id: int | None = None


class FollowTables(StateDB):
    """Follow configs, read by the supervisor's follow book and written by `copytrade follow`."""

    def upsert_follow(self, follow: Follow) -> Follow:
        """Insert or update the follow (follower, leader)."""
        with self._lock:
            row = asdict(follow)
            row.pop("id")
            existing = self._q("select id, created_at from follows where lower(follower)=lower(?) and lower(leader)=lower(?)",
                               [follow.follower, follow.leader])
            row["updated_at"] = now_iso()
            if existing:
                row["created_at"] = existing[0]["created_at"]
                self.db["follows"].update(existing[0]["id"], row)
                fid = existing[0]["id"]
            else:
                fid = self.db["follows"].insert(row).last_pk
        return self.get_follow(fid)  # type: ignore[arg-type,return-value]

    def get_follow(self, follow_id: int) -> Follow | None:
        """One follow config by id."""
        rows = self._q("select * from follows where id=?", [follow_id])
        return Follow(**rows[0]) if rows else None

    def list_follows(self, *, status: str | None = None, updated_since: str | None = None) -> list[Follow]:
        """Follow configs, optionally only active ones or only those changed since a time."""
        sql, params = "select * from follows where 1=1", []
        if status:
            sql += " and status=?"
            params.append(status)
        if updated_since:
            sql += " and updated_at > ?"
            params.append(updated_since)
        return [Follow(**r) for r in self._q(sql + " order by id", params)]

    def set_follow_status(self, follow_id: int, status: str) -> bool:
        """Pause/activate a follow; False if it does not exist."""
        with self._lock:
            cur = self.db.execute("update follows set status=?, updated_at=? where id=?", [status, now_iso(), follow_id])
            return cur.rowcount > 0

    def delete_follow(self, follow_id: int) -> bool:
        """Remove a follow; False if it does not exist."""
        with self._lock:
            cur = self.db.execute("delete from follows where id=?", [follow_id])
            return cur.rowcount > 0
