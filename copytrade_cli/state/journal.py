"""The journal of detection and decision: leader fills seen (signals), the copies decided (jobs, one per fill x
follower, at most once) and each execution step (job_steps).

The packed model (issue #16, migration 007): deciding a fill writes ONE signal row (its copies not made packed in
`skips_json`) and its group row(s) (the copies made packed as legs, each with its job id). The per-copy job rows
are created when a group starts (`create_group_jobs`); until then `job_rows` (a view) shows the packed copies as
the job rows they will be, so `jobs list|show` and every reader see the same copies either way."""
from __future__ import annotations

import operator
import sqlite3
from typing import Any, Iterable

from .db import StateDB, now_iso
from .schema import JOB_ID_SHIFT

# Columns of a job row, in the order the planner packs nothing of (job_rows has the same columns).
_JOB_INSERT = ("id, fill_key, follower, leader, follow_id, side, token_id, condition_id, usd, shares, price, flow, "
               "status, reason, group_id, attempts, created_at, updated_at")


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

    def record_fill(self, row: dict[str, Any]) -> int | None:
        """Insert a new leader fill's signal row (the fill's one row in the packed journal); the first job id of
        its copies (copy k has `first + k`), or None if the fill was already recorded (then only its channel
        list grows: it was decided then, never decide it twice)."""
        with self._lock:
            r = dict(row)
            r.setdefault("channels", r.get("channel"))
            r.setdefault("seen_at", now_iso())
            got = self.db.conn.execute(
                f"insert into signals ({','.join(r)}) values ({','.join('?' * len(r))}) on conflict do nothing "
                "returning rowid", list(r.values())).fetchone()
            if got is None:
                self.record_signal({"fill_key": row["fill_key"], "channel": row.get("channel")})
                return None
            return (got[0] + self._job_id_base()) << JOB_ID_SHIFT

    def _job_id_base(self) -> int:
        base = getattr(self, "_base_memo", None)
        if base is None:
            base = self._base_memo = int(self.db.conn.execute(
                "select value from journal_meta where name='job_id_base'").fetchone()[0])
        return base

    def set_skips(self, fill_key: str, skips_json: str) -> None:
        """Pack the copies of a fill that were not made (follower, reason...) into its signal row."""
        with self._lock:
            self.db.conn.execute("update signals set skips_json=? where fill_key=?", [skips_json, fill_key])

    def create_group_jobs(self, group_id: str, *, status: str = "queued", reason: str | None = None,
                          into: str | None = None) -> int:
        """The group starts (or is dropped, or absorbed `into` another): create the job rows of its packed
        legs, once (at most one row per fill x follower, the unique index), and mark the group as having them.
        Returns the number of job rows created (0 when they already exist)."""
        import json

        with self._lock:
            conn = self.db.conn
            g = conn.execute("select fill_key, side, token_id, condition_id, price_limit, flow, legs_json, "
                             "jobs_created, created_at from groups where group_id=?", [group_id]).fetchone()
            if g is None or g[7] != 0:
                return 0
            fill_key, side, token, cond, price, flow, legs_json, _c, created = g
            lead = conn.execute("select leader from signals where fill_key=?", [fill_key]).fetchone()
            leader = lead[0] if lead else None
            stamp = now_iso()
            rows = []
            for d in json.loads(legs_json or "[]"):
                rows.append((d["job_id"], fill_key, d["proxy"], leader, d.get("follow_id"), side, token, cond,
                             d.get("usd"), d.get("shares"), price, flow, status, reason, into or group_id, 0,
                             created, stamp))
            self._begin()
            try:
                n = 0
                if rows:
                    cur = conn.executemany(f"insert into jobs ({_JOB_INSERT}) values ({','.join('?' * 18)}) "
                                           "on conflict do nothing", rows)
                    n = cur.rowcount
                conn.execute("update groups set jobs_created=1 where group_id=?", [group_id])
                self._commit()
                return n
            except Exception:
                self._rollback()
                raise

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
        """Every job copying a fill of transaction `tx_hash` (a ghost fill's copies; packed ones included)."""
        keys = [r["fill_key"] for r in self._q("select fill_key from signals where tx_hash = ?", [tx_hash.lower()])]
        if not keys:
            return []
        return self._q(f"select * from job_rows where fill_key in ({','.join('?' * len(keys))}) order by id", keys)

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
        """One job (its row, or the packed copy it will be created from when its group starts)."""
        rows = self._q("select * from jobs where id=?", [job_id])
        if rows:
            return rows[0]
        rowid = (job_id >> JOB_ID_SHIFT) - self._job_id_base()
        sig = self._q("select fill_key from signals where rowid=?", [rowid]) if rowid > 0 else []
        if not sig:
            return None
        for r in self._packed_of_fill(sig[0]["fill_key"]):
            if r["id"] == job_id:
                return r
        return None

    def _packed_of_fill(self, fill_key: str) -> list[dict[str, Any]]:
        """The packed copies of one fill as job rows (job_rows' second and third parts, for this fill only)."""
        return [r for r in self._q("select * from job_rows where fill_key=? and id not in "
                                   "(select id from jobs where fill_key=?)", [fill_key, fill_key])]

    def list_jobs(self, *, status: str | None = None, limit: int = 50, group_id: str | None = None,
                  statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Jobs (created or still packed), newest first."""
        table = "jobs"
        if group_id is None:
            table = "job_rows"
        else:
            packed = self._q("select 1 from groups where group_id=? and jobs_created=0", [group_id])
            if packed:
                table = "job_rows"
        sql, params = f"select * from {table} where 1=1", []
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
        """Number of jobs (created or still packed) by status."""
        return {r["status"]: r["n"] for r in self._q("select status, count(*) n from job_rows group by status")}

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
