"""The journal of detection and decision: leader fills seen (signals), the copies decided (jobs, one per fill x
follower, at most once) and each execution step (job_steps)."""
from __future__ import annotations

import operator
import sqlite3
from typing import Any, Iterable

from .db import StateDB, now_iso


class JournalTables(StateDB):
    """Signals, jobs and job steps."""

    def record_signal(self, row: dict[str, Any]) -> bool:
        """Record a leader fill; returns False if this fill key was already recorded (then only its channel list grows)."""
        with self._lock:
            if "leader" in row:  # a full row: insert unless present (one statement on the hot path)
                r = dict(row)
                r.setdefault("channels", r.get("channel"))
                r.setdefault("seen_at", now_iso())
                cur = self.db.conn.execute(
                    f"insert into signals ({','.join(r)}) values ({','.join('?' * len(r))}) on conflict do nothing",
                    list(r.values()))
                if cur.rowcount == 1:
                    return True
            existing = self._q("select channels from signals where fill_key=?", [row["fill_key"]])
            if existing:
                chans = set((existing[0]["channels"] or "").split(",")) - {""}
                if row.get("channel") and row["channel"] not in chans:
                    chans.add(row["channel"])
                    self.db.execute("update signals set channels=? where fill_key=?",
                                    [",".join(sorted(chans)), row["fill_key"]])
                return False
            row = dict(row)
            row.setdefault("channels", row.get("channel"))
            row.setdefault("seen_at", now_iso())
            self.db["signals"].insert(row)
            return True

    def get_signal(self, fill_key: str) -> dict[str, Any] | None:
        """A recorded leader fill."""
        rows = self._q("select * from signals where fill_key=?", [fill_key])
        return rows[0] if rows else None

    def known_token_ids(self, limit: int = 500) -> list[str]:
        """Outcome token ids of the leader fills seen, most recently traded first (the positions worth reading
        on a live network; every copy's token is one of them)."""
        rows = self._q("select token_id, max(seen_at) last from signals where token_id is not null "
                       "group by token_id order by last desc limit ?", [limit])
        return [r["token_id"] for r in rows if r["token_id"]]

    def jobs_of_tx(self, tx_hash: str) -> list[dict[str, Any]]:
        """Every job copying a fill of transaction `tx_hash` (a ghost fill's copies)."""
        return self._q("select j.* from jobs j join signals s on s.fill_key = j.fill_key where s.tx_hash = ? "
                       "order by j.id", [tx_hash.lower()])

    def claim_job(self, row: dict[str, Any]) -> int | None:
        """Create the job (fill × follower) if it does not exist yet: the durable at-most-once rule. Returns its id or None."""
        row = dict(row)
        row.setdefault("created_at", now_iso())
        row.setdefault("updated_at", row["created_at"])
        row.setdefault("attempts", 0)
        with self._lock:
            try:
                cur = self.db.execute(
                    "insert into jobs (" + ",".join(row) + ") values (" + ",".join("?" * len(row)) + ")",
                    list(row.values()))
                return cur.lastrowid
            except sqlite3.IntegrityError:
                return None

    def claim_jobs(self, rows: list[Any], cols: list[str] | None = None) -> list[int | None]:
        """`claim_job` for many rows in one statement (same at-most-once rule per fill x follower): the new
        job ids in input order, None where the job already existed. All rows must have the same columns:
        dicts, or tuples in the order of `cols` (the decision hot path builds no dict per job)."""
        if not rows:
            return []
        stamp = now_iso()
        if cols is None:
            own = list(rows[0])
            pick = operator.itemgetter(*own)
            rows = [pick(r) if len(own) > 1 else (r[own[0]],) for r in rows]
        else:
            own = list(cols)
        defaults = {"created_at": stamp, "updated_at": stamp, "attempts": 0}
        extra = [c for c in defaults if c not in own]
        tail = tuple(defaults[c] for c in extra)
        cols = own + extra
        i_fk, i_fo = own.index("fill_key"), own.index("follower")
        out: list[int | None] = [None] * len(rows)
        chunk = max(1, 30_000 // len(cols))
        one = "(" + ",".join("?" * len(cols)) + ")"
        with self._lock:
            for start in range(0, len(rows), chunk):
                part = rows[start:start + chunk]
                params: list[Any] = []
                for r in part:
                    params.extend(r)
                    params.extend(tail)
                cur = self.db.conn.execute(
                    f"insert into jobs ({','.join(cols)}) values {','.join([one] * len(part))} "
                    "on conflict do nothing returning id, fill_key, follower", params)
                got = {(fk, fo): i for i, fk, fo in cur.fetchall()}
                for k, r in enumerate(part):
                    out[start + k] = got.get((r[i_fk], r[i_fo]))
        return out

    def update_job(self, job_id: int, **values: Any) -> None:
        """Change a job's status/fields."""
        values["updated_at"] = now_iso()
        # NOTE: plain SQL, not sqlite-utils' Table.update (which commits by itself and so would end an
        # enclosing `transaction()` early).
        sets = ",".join(f"{k}=?" for k in values)
        with self._lock:
            self.db.conn.execute(f"update jobs set {sets} where id=?", [*values.values(), job_id])

    def update_jobs(self, job_ids: list[int], **values: Any) -> None:
        """Change many jobs at once (aggregated groups)."""
        if not job_ids:
            return
        values["updated_at"] = now_iso()
        sets = ",".join(f"{k}=?" for k in values)
        with self._lock:
            self.db.execute(f"update jobs set {sets} where id in ({','.join('?' * len(job_ids))})",
                            [*values.values(), *job_ids])

    def get_job(self, job_id: int) -> dict[str, Any] | None:
        """One job row."""
        rows = self._q("select * from jobs where id=?", [job_id])
        return rows[0] if rows else None

    def list_jobs(self, *, status: str | None = None, limit: int = 50, group_id: str | None = None,
                  statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Jobs, newest first."""
        sql, params = "select * from jobs where 1=1", []
        if status:
            sql += " and status=?"
            params.append(status)
        if statuses:
            st = list(statuses)
            sql += f" and status in ({','.join('?' * len(st))})"
            params.extend(st)
        if group_id:
            sql += " and group_id=?"
            params.append(group_id)
        sql += " order by id desc limit ?"
        params.append(limit)
        return self._q(sql, params)

    def job_counts(self) -> dict[str, int]:
        """Number of jobs by status."""
        return {r["status"]: r["n"] for r in self._q("select status, count(*) n from jobs group by status")}

    def jobs_by_ids(self, job_ids: list[int]) -> list[dict[str, Any]]:
        """Job rows by id."""
        if not job_ids:
            return []
        return self._q(f"select * from jobs where id in ({','.join('?' * len(job_ids))})", list(job_ids))

    def add_step(self, *, group_id: str, step: str, status: str, job_id: int | None = None, tx_hash: str | None = None,
                 detail: str | None = None, amount: str | None = None, ms: float | None = None) -> None:
        """Journal one execution step of a job group."""
        stamp = now_iso()
        with self._lock:
            self.db.conn.execute(
                "insert into job_steps (group_id, job_id, step, status, tx_hash, detail, amount, ms, started_at, "
                "ended_at) values (?,?,?,?,?,?,?,?,?,?)",
                [group_id, job_id, step, status, tx_hash, detail, amount, ms, stamp, stamp])

    def steps(self, group_id: str) -> list[dict[str, Any]]:
        """The journal of one job group, in order."""
        return self._q("select * from job_steps where group_id=? order by id", [group_id])
