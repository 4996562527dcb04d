"""The SQLite state file: typed read/write functions over sqlite-utils. No SQL outside this package."""
from __future__ import annotations

import datetime as dt
import json
import operator
import sqlite3
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from ..errors import StateError
from .schema import MIGRATIONS, SCHEMA_VERSION

TABLES = ["nodes", "deployments", "proxies", "follows", "signals", "jobs", "groups", "job_steps",
          "guardrail_ledger", "workers", "debts", "cursors", "migration_ops"]


def now_iso() -> str:
    """UTC timestamp with milliseconds, the one time format of the state file."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class NodeRecord:
    """A local node copytrade started (and the local CLOB/feed that go with it)."""

    name: str
    kind: str
    pid: int
    rpc_url: str
    ws_url: str
    chain_id: int
    port: int
    log_path: str
    started_at: str
    fork_url: str | None = None
    world_json: str | None = None
    clob_pid: int | None = None
    clob_url: str | None = None
    feed_url: str | None = None
    block_time: float | None = None


@dataclass
class Deployment:
    """One deployed contract on one network, of one generation (migrations add generations)."""

    network: str
    name: str
    address: str
    tx: str | None
    block: int | None
    gas_used: int | None
    deployer: str | None
    generation: int = 1
    status: str = "active"
    created_at: str = field(default_factory=now_iso)
    id: int | None = None


@dataclass
class ProxyRecord:
    """A follower's proxy wallet."""

    network: str
    address: str
    owner: str
    factory: str
    tx: str | None = None
    status: str = "active"
    migration_status: str | None = None
    created_at: str = field(default_factory=now_iso)


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


class State:
    """Open (and migrate) the state file; every read and write of copytrade's records goes through here."""

    def __init__(self, path: Path | str):
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._tx_depth = 0  # nesting of write transactions on this connection (guarded by _lock)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open state file {self.path}: {exc}") from None
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    # --- schema --------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            if "_migrations" not in self.db.table_names():
                self.db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
            done = {r["name"] for r in self.db["_migrations"].rows}
            unknown = done - {name for name, _ in MIGRATIONS}
            if unknown:
                raise StateError(f"state file {self.path} is from a newer copytrade (migrations {sorted(unknown)}); "
                                 "upgrade copytrade or use another COPYTRADE_HOME")
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                # NOTE: sqlite-utils commits DDL itself, so each migration's tables are created with
                # if_not_exists and the migration is recorded last: a crash halfway re-runs it harmlessly.
                fn(self.db)
                self.db["_migrations"].insert({"name": name, "applied_at": now_iso()})

    @property
    def schema_version(self) -> int:
        """Number of migrations applied."""
        return self.db["_migrations"].count

    def info(self) -> dict[str, Any]:
        """Path, schema version and row counts, for `copytrade state info`."""
        return {"path": str(self.path), "schema_version": self.schema_version, "latest_version": SCHEMA_VERSION,
                "journal_mode": self.db.execute("PRAGMA journal_mode").fetchone()[0],
                "tables": {t: self.db[t].count for t in TABLES}}

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def _q(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, list(params))
            cols = [c[0] for c in cur.description] if cur.description else []
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def transaction(self):
        """A write transaction (BEGIN IMMEDIATE), holding the in-process lock. Transactions nest: inside one,
        the methods below that need their own (create_group, reserve_usd, claim_group...) use a savepoint, so
        a caller can group the writes of one fill (or one batch of fills) into a single commit."""
        return _Tx(self)

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, or a savepoint inside an open transaction (call with _lock held)."""
        if self._tx_depth == 0:
            self.db.conn.execute("BEGIN IMMEDIATE")
        else:
            self.db.conn.execute(f"SAVEPOINT ct_{self._tx_depth}")
        self._tx_depth += 1

    def _commit(self) -> None:
        self._tx_depth -= 1
        if self._tx_depth == 0:
            self.db.conn.execute("COMMIT")
        else:
            self.db.conn.execute(f"RELEASE ct_{self._tx_depth}")

    def _rollback(self) -> None:
        self._tx_depth -= 1
        if self._tx_depth == 0:
            self.db.conn.execute("ROLLBACK")
        else:
            self.db.conn.execute(f"ROLLBACK TO ct_{self._tx_depth}")
            self.db.conn.execute(f"RELEASE ct_{self._tx_depth}")

    # --- nodes -----------------------------------------------------------------------------------------
    def save_node(self, node: NodeRecord) -> None:
        """Record a running node (replaces the previous record of that name)."""
        with self._lock:
            self.db["nodes"].upsert(asdict(node), pk="name")

    def get_node(self, name: str = "default") -> NodeRecord | None:
        """The recorded node, or None."""
        rows = self._q("select * from nodes where name = ?", [name])
        return NodeRecord(**rows[0]) if rows else None

    def update_node(self, name: str, **values: Any) -> None:
        """Change fields of a recorded node."""
        with self._lock:
            self.db["nodes"].update(name, values)

    def delete_node(self, name: str = "default") -> None:
        """Forget a node (after it was stopped)."""
        with self._lock:
            self.db["nodes"].delete_where("name = ?", [name])

    # --- deployments -------------------------------------------------------------------------------------
    def record_deployment(self, dep: Deployment) -> Deployment:
        """Record a deployment (unique per network, name and generation)."""
        with self._lock:
            row = asdict(dep)
            row.pop("id")
            # INSERT OR REPLACE: the unique (network, name, generation) index replaces a forced redeploy
            self.db["deployments"].insert(row, replace=True)
        return self.get_deployment(dep.network, dep.name, dep.generation)  # type: ignore[return-value]

    def get_deployment(self, network: str, name: str, generation: int | None = None) -> Deployment | None:
        """The active (or a given generation's) deployment of `name` on `network`."""
        if generation is None:
            rows = self._q("select * from deployments where network=? and name=? and status='active' "
                           "order by generation desc limit 1", [network, name])
        else:
            rows = self._q("select * from deployments where network=? and name=? and generation=?",
                           [network, name, generation])
        return Deployment(**rows[0]) if rows else None

    def list_deployments(self, network: str | None = None) -> list[Deployment]:
        """All deployments, newest generation first."""
        if network:
            rows = self._q("select * from deployments where network=? order by generation desc, id", [network])
        else:
            rows = self._q("select * from deployments order by network, generation desc, id")
        return [Deployment(**r) for r in rows]

    def set_deployment_status(self, network: str, name: str, generation: int, status: str) -> None:
        """Mark a generation active or previous."""
        with self._lock:
            self.db.execute("update deployments set status=? where network=? and name=? and generation=?",
                            [status, network, name, generation])

    def forget_network(self, network: str) -> None:
        """Drop every record tied to a network (used when a fresh local fork replaces an old one)."""
        with self._lock:
            for table in ("deployments", "proxies", "workers", "migration_ops"):
                self.db.execute(f"delete from {table} where network=?", [network])

    # --- proxies ------------------------------------------------------------------------------------------
    def record_proxy(self, proxy: ProxyRecord) -> None:
        """Record a proxy (idempotent)."""
        with self._lock:
            self.db["proxies"].upsert(asdict(proxy), pk=("network", "address"))

    def list_proxies(self, network: str, factory: str | None = None) -> list[ProxyRecord]:
        """Proxies on a network (optionally of one factory)."""
        if factory:
            rows = self._q("select * from proxies where network=? and factory=? order by created_at", [network, factory])
        else:
            rows = self._q("select * from proxies where network=? order by created_at", [network])
        return [ProxyRecord(**r) for r in rows]

    def get_proxy(self, network: str, address: str) -> ProxyRecord | None:
        """One proxy by address (case-insensitive)."""
        rows = self._q("select * from proxies where network=? and lower(address)=lower(?)", [network, address])
        return ProxyRecord(**rows[0]) if rows else None

    def set_proxy_fields(self, network: str, address: str, **values: Any) -> None:
        """Update a proxy's status fields."""
        with self._lock:
            self.db["proxies"].update((network, address), values)

    # --- follows -------------------------------------------------------------------------------------------
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

    # --- signals & jobs ------------------------------------------------------------------------------------
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

    # --- execution groups -------------------------------------------------------------------------------
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

    def jobs_by_ids(self, job_ids: list[int]) -> list[dict[str, Any]]:
        """Job rows by id."""
        if not job_ids:
            return []
        return self._q(f"select * from jobs where id in ({','.join('?' * len(job_ids))})", list(job_ids))

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
        return self._q("select * from groups where status not in ('complete','refunded','failed','dropped','merged') "
                       "order by created_at")

    def list_groups(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recent execution groups."""
        return self._q("select * from groups order by created_at desc limit ?", [limit])

    def claim_group(self, group_id: str, owner: str, lease_s: float) -> tuple[str, dict[str, Any] | None]:
        """Take the execution lease of a group (scale-out): ("claimed", row), ("done", row) if it is finished,
        ("busy", row) if another owner holds a live lease, ("missing", None)."""
        import time as _time

        with self._lock:
            conn = self.db.conn
            self._begin()
            try:
                rows = self._q("select * from groups where group_id=?", [group_id])
                if not rows:
                    self._commit()
                    return "missing", None
                g = rows[0]
                now = _time.time()
                if g["status"] in ("complete", "refunded", "failed", "dropped"):
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
        import time as _time

        if not group_ids:
            return
        with self._lock:
            self.db.execute(f"update groups set lease_until=? where owner=? and group_id in "
                            f"({','.join('?' * len(group_ids))})", [_time.time() + lease_s, owner, *group_ids])

    def release_group_lease(self, group_id: str, owner: str) -> None:
        """Give a group's lease up (finished, or stopped so another instance may take it); the owner stays recorded."""
        with self._lock:
            self.db.execute("update groups set lease_until=0 where group_id=? and owner=?", [group_id, owner])

    def orphaned_groups(self) -> list[dict[str, Any]]:
        """Unfinished groups nobody holds a live lease on and not dead-lettered (to re-queue)."""
        import time as _time

        return self._q("select * from groups where status not in ('complete','refunded','failed','dropped','dlq','merged') "
                       "and coalesce(lease_until, 0) < ? order by created_at", [_time.time()])

    # --- guardrails -----------------------------------------------------------------------------------------
    def reserve_usd(self, *, day: str, wallet: str, usd: str, job_key: str, wallet_cap: str | None,
                    global_cap: str | None) -> tuple[bool, str]:
        """Atomically reserve `usd` against the day's caps; (False, reason) if a cap would be exceeded."""
        from decimal import Decimal

        with self._lock:
            conn = self.db.conn
            self._begin()
            try:
                if self._q("select 1 from guardrail_ledger where job_key=?", [job_key]):
                    self._commit()
                    return True, "already reserved"
                if global_cap is not None:
                    spent = self._spent_micro(day) / Decimal(10**6)
                    if spent + Decimal(usd) > Decimal(global_cap):
                        self._commit()
                        return False, f"daily cap {global_cap} USD reached ({spent} used)"
                if wallet_cap is not None:
                    spent = self._spent_micro(day, wallet) / Decimal(10**6)
                    if spent + Decimal(usd) > Decimal(wallet_cap):
                        self._commit()
                        return False, f"wallet daily cap {wallet_cap} USD reached ({spent} used)"
                conn.execute("insert into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                             "values (?, ?, ?, ?, 'reserved', ?)", [day, wallet, usd, job_key, now_iso()])
                self._commit()
                return True, "reserved"
            except Exception:
                self._rollback()
                raise

    def reserve_usd_many(self, *, day: str, items: list[tuple[str, int, str]], wallet_cap_micro: int | None,
                         global_cap_micro: int | None) -> list[tuple[bool, str]]:
        """`reserve_usd` for several copies at once, (wallet, usd_micro, job_key) each, checked in order against
        the caps with running totals (read once, two rows per wallet at most, instead of one SELECT per copy),
        and journalled with one executemany, atomically: same verdicts as one `reserve_usd` call per item."""
        from decimal import Decimal

        if not items:
            return []
        m = Decimal(10**6)
        out: list[tuple[bool, str]] = []
        with self._lock:
            conn = self.db.conn
            self._begin()
            try:
                keys = list(dict.fromkeys(k for _w, _u, k in items))
                seen = {r[0] for r in conn.execute(
                    f"select job_key from guardrail_ledger where job_key in ({','.join('?' * len(keys))})", keys)}
                wallets = list(dict.fromkeys(w for w, _u, _k in items)) if wallet_cap_micro is not None else []
                want = (["*"] if global_cap_micro is not None else []) + wallets
                spent = dict.fromkeys(want, 0)
                if want:
                    spent.update(conn.execute(
                        f"select wallet, micro from guardrail_totals where day=? and wallet in "
                        f"({','.join('?' * len(want))})", [day, *want]).fetchall())
                stamp, new = now_iso(), []
                for wallet, usd_micro, key in items:
                    if key in seen:
                        out.append((True, "already reserved"))
                        continue
                    if global_cap_micro is not None and spent["*"] + usd_micro > global_cap_micro:
                        out.append((False, f"daily cap {Decimal(global_cap_micro) / m} USD reached "
                                           f"({int(spent['*']) / m} used)"))
                        continue
                    if wallet_cap_micro is not None and spent[wallet] + usd_micro > wallet_cap_micro:
                        out.append((False, f"wallet daily cap {Decimal(wallet_cap_micro) / m} USD reached "
                                           f"({int(spent[wallet]) / m} used)"))
                        continue
                    seen.add(key)
                    if global_cap_micro is not None:
                        spent["*"] += usd_micro
                    if wallet_cap_micro is not None:
                        spent[wallet] += usd_micro
                    new.append((day, wallet, str(Decimal(usd_micro) / m), key, stamp))
                    out.append((True, "reserved"))
                if new:
                    conn.executemany("insert into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                                     "values (?, ?, ?, ?, 'reserved', ?)", new)
                self._commit()
                return out
            except Exception:
                self._rollback()
                raise

    def _spent_micro(self, day: str, wallet: str | None = None) -> int:
        """Micro-USD reserved or committed on a day (one wallet, or all), from the running totals the ledger's
        triggers keep (migration 005): O(1) per reservation instead of summing the day's ledger."""
        row = self.db.conn.execute("select micro from guardrail_totals where day=? and wallet=?",
                                   [day, "*" if wallet is None else wallet]).fetchone()
        return int(row[0]) if row else 0

    def record_reservation(self, *, day: str, wallet: str, usd: str, job_key: str) -> None:
        """Journal a reservation another store (Redis) already checked against the caps; idempotent."""
        with self._lock:
            self.db.execute("insert or ignore into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                            "values (?, ?, ?, ?, 'reserved', ?)", [day, wallet, usd, job_key, now_iso()])

    def reservations(self, day: str) -> list[dict[str, Any]]:
        """The day's reservations not released (to rebuild shared counters)."""
        return self._q("select * from guardrail_ledger where day=? and status!='released'", [day])

    def get_reservation(self, job_key: str) -> dict[str, Any] | None:
        """One ledger row by its job key."""
        rows = self._q("select * from guardrail_ledger where job_key=?", [job_key])
        return rows[0] if rows else None

    def settle_reservation(self, job_key: str, status: str, usd: str | None = None) -> None:
        """Commit (optionally with the actual amount) or release a reservation."""
        with self._lock:
            if usd is None:
                self.db.execute("update guardrail_ledger set status=? where job_key=?", [status, job_key])
            else:
                self.db.execute("update guardrail_ledger set status=?, usd=? where job_key=?", [status, usd, job_key])

    def spent_usd(self, day: str, wallet: str | None = None) -> str:
        """USD reserved or committed on a day (all wallets, or one)."""
        from decimal import Decimal

        sql, params = "select usd from guardrail_ledger where day=? and status!='released'", [day]
        if wallet:
            sql += " and wallet=?"
            params.append(wallet)
        return str(sum((Decimal(r["usd"]) for r in self._q(sql, params)), Decimal(0)))

    # --- workers ---------------------------------------------------------------------------------------------
    def record_workers(self, network: str, addresses: list[str]) -> None:
        """Record the registered worker fleet."""
        with self._lock:
            self.db["workers"].upsert_all(
                [{"network": network, "address": a, "idx": i, "registered": 1, "updated_at": now_iso()}
                 for i, a in enumerate(addresses)], pk=("network", "address"))

    def list_workers(self, network: str) -> list[str]:
        """Registered worker addresses."""
        return [r["address"] for r in self._q("select address from workers where network=? order by idx", [network])]

    # --- debts ----------------------------------------------------------------------------------------------
    def add_debts(self, rows: list[dict[str, Any]]) -> None:
        """Record Smart Buffer debts (proxy owes worker) until reimbursed."""
        if not rows:
            return
        stamp = now_iso()
        cols = list(dict.fromkeys([*rows[0], "status", "created_at"]))
        with self._lock:
            self.db.conn.executemany(
                f"insert into debts ({','.join(cols)}) values ({','.join('?' * len(cols))})",
                [[{**r, "status": "open", "created_at": stamp}.get(c) for c in cols] for r in rows])

    def open_debts(self, worker: str | None = None) -> list[dict[str, Any]]:
        """Debts not yet reimbursed (open, or being paid by a journalled tx not yet confirmed)."""
        if worker:
            return self._q("select * from debts where status in ('open','paying') and worker=? order by id", [worker])
        return self._q("select * from debts where status in ('open','paying') order by id")

    def mark_debts_paying(self, ids: list[int], tx_hash: str) -> None:
        """Journal the reimbursement tx of these debts before it is broadcast (write-ahead)."""
        if not ids:
            return
        with self._lock:
            self.db.conn.execute(f"update debts set status='paying', paid_tx=? where status in ('open','paying') "
                                 f"and id in ({','.join('?' * len(ids))})", [tx_hash, *ids])

    def paying_debts(self) -> list[dict[str, Any]]:
        """Debts whose reimbursement tx was journalled but not yet confirmed."""
        return self._q("select * from debts where status='paying' order by id")

    def reopen_debts(self, ids: list[int]) -> None:
        """Debts whose reimbursement did not happen (reverted, never broadcast): open again."""
        if not ids:
            return
        with self._lock:
            self.db.conn.execute(f"update debts set status='open', paid_tx=null where status='paying' and id in "
                                 f"({','.join('?' * len(ids))})", list(ids))

    def mark_debts_paid(self, ids: list[int], tx_hash: str) -> None:
        """Mark debts reimbursed by a transaction."""
        if not ids:
            return
        with self._lock:
            self.db.execute(f"update debts set status='paid', paid_tx=?, paid_at=? where id in ({','.join('?' * len(ids))})",
                            [tx_hash, now_iso(), *ids])

    # --- cursors --------------------------------------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        """A persisted detection cursor (last block processed, Data API timestamp...)."""
        rows = self._q("select value from cursors where name=?", [name])
        return rows[0]["value"] if rows else None

    def set_cursor(self, name: str, value: str) -> None:
        """Persist a detection cursor."""
        with self._lock:
            self.db.conn.execute("insert into cursors (name, value, updated_at) values (?, ?, ?) on conflict(name) "
                                 "do update set value=excluded.value, updated_at=excluded.updated_at",
                                 [name, value, now_iso()])

    # --- contract migrations (generations) ------------------------------------------------------------
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

    def known_token_ids(self, limit: int = 500) -> list[str]:
        """Outcome token ids of the leader fills seen, most recently traded first (the positions worth reading
        on a live network; every copy's token is one of them)."""
        rows = self._q("select token_id, max(seen_at) last from signals where token_id is not null "
                       "group by token_id order by last desc limit ?", [limit])
        return [r["token_id"] for r in rows if r["token_id"]]

    def rows(self, table: str, limit: int = 1000) -> Iterator[dict[str, Any]]:
        """Raw rows of a table (for diagnostics and tests)."""
        if table not in TABLES:
            raise StateError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        yield from self._q(f"select * from {table} limit ?", [limit])


class _Tx:
    def __init__(self, state: State):
        self.state = state

    def __enter__(self):
        self.state._lock.acquire()
        try:
            self.state._begin()
        except BaseException:
            self.state._lock.release()
            raise
        return self.state

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type:
                self.state._rollback()
            else:
                self.state._commit()
        finally:
            self.state._lock.release()
        return False


def open_state(settings) -> State:
    """Open the state file named by the settings."""
    return State(settings.state_path)


def dumps(obj: Any) -> str:
    """JSON for state columns."""
    return json.dumps(obj, separators=(",", ":"), default=str)
