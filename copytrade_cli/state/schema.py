"""Schema of the state file as named migrations, applied in order, each recorded in one transaction."""
from __future__ import annotations

from typing import Callable

import sqlite_utils


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["nodes"].create({
        "name": str, "kind": str, "pid": int, "rpc_url": str, "ws_url": str, "chain_id": int, "port": int,
        "log_path": str, "fork_url": str, "started_at": str, "world_json": str,
        "clob_pid": int, "clob_url": str, "feed_url": str, "block_time": float,
    }, pk="name", if_not_exists=True)
    db["deployments"].create({
        "id": int, "network": str, "name": str, "address": str, "tx": str, "block": int, "gas_used": int,
        "deployer": str, "generation": int, "status": str, "created_at": str,
    }, pk="id", if_not_exists=True)
    db["deployments"].create_index(["network", "name", "generation"], unique=True, if_not_exists=True)
    db["proxies"].create({
        "network": str, "address": str, "owner": str, "factory": str, "tx": str, "status": str,
        "migration_status": str, "created_at": str,
    }, pk=("network", "address"), if_not_exists=True)
    db["proxies"].create_index(["network", "factory", "owner"], unique=True, if_not_exists=True)
    db["follows"].create({
        "id": int, "follower": str, "owner": str, "leader": str, "sizing": str, "amount": str,
        "min_usd": str, "max_usd": str, "max_slippage": str, "sell_mode": str, "side_filter": str,
        "min_leader_usd": str, "max_price": str, "flow": str, "status": str, "created_at": str, "updated_at": str,
    }, pk="id", if_not_exists=True)
    db["follows"].create_index(["follower", "leader"], unique=True, if_not_exists=True)
    db["follows"].create_index(["updated_at"], if_not_exists=True)
    db["signals"].create({
        "fill_key": str, "leader": str, "tx_hash": str, "log_index": int, "token_id": str, "condition_id": str,
        "side": str, "shares": str, "price": str, "usd": str, "channel": str, "channels": str, "seen_at": str,
        "detected_ms": float,
    }, pk="fill_key")
    db["jobs"].create({
        "id": int, "fill_key": str, "follower": str, "leader": str, "follow_id": int, "side": str,
        "token_id": str, "condition_id": str, "usd": str, "shares": str, "price": str, "flow": str,
        "status": str, "reason": str, "group_id": str, "worker": str, "attempts": int,
        "created_at": str, "updated_at": str,
    }, pk="id", if_not_exists=True)
    db["jobs"].create_index(["fill_key", "follower"], unique=True, if_not_exists=True)
    db["jobs"].create_index(["status"], if_not_exists=True)
    db["jobs"].create_index(["group_id"], if_not_exists=True)
    db["job_steps"].create({
        "id": int, "group_id": str, "job_id": int, "step": str, "status": str, "tx_hash": str, "detail": str,
        "amount": str, "started_at": str, "ended_at": str, "ms": float,
    }, pk="id", if_not_exists=True)
    db["job_steps"].create_index(["group_id"], if_not_exists=True)
    db["guardrail_ledger"].create({
        "id": int, "day": str, "wallet": str, "usd": str, "job_key": str, "status": str, "created_at": str,
    }, pk="id", if_not_exists=True)
    db["guardrail_ledger"].create_index(["day", "wallet"], if_not_exists=True)
    db["guardrail_ledger"].create_index(["job_key"], unique=True, if_not_exists=True)
    db["workers"].create({
        "network": str, "address": str, "idx": int, "registered": int, "updated_at": str,
    }, pk=("network", "address"), if_not_exists=True)
    db["debts"].create({
        "id": int, "group_id": str, "job_id": int, "worker": str, "proxy": str, "token": str, "amount": int,
        "status": str, "paid_tx": str, "created_at": str, "paid_at": str,
    }, pk="id", if_not_exists=True)
    db["debts"].create_index(["status"], if_not_exists=True)
    db["cursors"].create({"name": str, "value": str, "updated_at": str}, pk="name", if_not_exists=True)


def _m002_groups(db: sqlite_utils.Database) -> None:
    # An execution group: the copies of one leader fill executed together (one order, batch pull/push).
    # Its stage is journalled before and after every side effect so a restart resumes it exactly.
    db["groups"].create({
        "group_id": str, "fill_key": str, "flow": str, "side": str, "token_id": str, "condition_id": str,
        "price_limit": str, "worker": str, "stage": str, "status": str, "legs_json": str,
        "pull_tx": str, "order_id": str, "order_json": str, "filled_shares": int, "spent_micro": int,
        "proceeds_micro": int, "push_tx": str, "refund_tx": str, "error": str, "attempts": int,
        "t_detected": float, "t_queued": float, "t_order_accepted": float, "t_done": float,
        "created_at": str, "updated_at": str,
    }, pk="group_id", if_not_exists=True)
    db["groups"].create_index(["status"], if_not_exists=True)


def _m003_group_leases(db: sqlite_utils.Database) -> None:
    # Scale-out: several instances share this file; a group is executed by the one instance holding its
    # lease (owner + expiry), renewed while it runs, so a dead instance's group can be taken over safely.
    cols = db["groups"].columns_dict
    if "owner" not in cols:
        db["groups"].add_column("owner", str)
    if "lease_until" not in cols:
        db["groups"].add_column("lease_until", float)


def _m004_migration_ops(db: sqlite_utils.Database) -> None:
    # Progress of `copytrade migrate` (moving users to new contract logic): one row per step of one
    # migration (network, target generation), so an interrupted step resumes where it stopped.
    db["migration_ops"].create({
        "network": str, "to_generation": int, "from_generation": int, "step": str, "status": str,
        "items_done": int, "items_total": int, "detail": str, "started_at": str, "updated_at": str,
    }, pk=("network", "to_generation", "step"), if_not_exists=True)


_MICRO = "cast(round(cast({x} as real) * 1000000) as integer)"


def _m005_guardrail_totals(db: sqlite_utils.Database) -> None:
    # Running totals of the guardrail ledger per (day, wallet) and per day (wallet '*'), kept by triggers so
    # every writer (reserve, settle, the Redis journal) keeps them right; a reservation then reads two rows
    # instead of summing the whole day's ledger (which made each reservation O(rows of the day)).
    conn = db.conn
    conn.execute("create table if not exists guardrail_totals (day text not null, wallet text not null, "
                 "micro integer not null default 0, primary key (day, wallet))")
    for name in ("guardrail_totals_ins", "guardrail_totals_del", "guardrail_totals_upd"):
        conn.execute(f"drop trigger if exists {name}")
    conn.execute("delete from guardrail_totals")
    m = _MICRO.format(x="usd")
    conn.execute(f"insert into guardrail_totals (day, wallet, micro) select day, wallet, sum({m}) from "
                 "guardrail_ledger where status != 'released' group by day, wallet")
    conn.execute(f"insert into guardrail_totals (day, wallet, micro) select day, '*', sum({m}) from "
                 "guardrail_ledger where status != 'released' group by day")

    def bump(row: str, sign: str, only_if: str = "") -> str:
        amount = _MICRO.format(x=f"{row}.usd")
        where = f" where {only_if}" if only_if else ""
        # NOTE: "select ... where" (not "values") so a condition can gate it; "on conflict" after a select
        # needs a where clause to parse, hence "where 1" when there is no condition.
        return "".join(
            f"insert into guardrail_totals (day, wallet, micro) select {row}.day, {who}, {sign}{amount}"
            f"{where or ' where 1'} on conflict(day, wallet) do update set micro = micro + excluded.micro; "
            for who in (f"{row}.wallet", "'*'"))

    conn.execute("create trigger guardrail_totals_ins after insert on guardrail_ledger "
                 f"when new.status != 'released' begin {bump('new', '')} end")
    conn.execute("create trigger guardrail_totals_del after delete on guardrail_ledger "
                 f"when old.status != 'released' begin {bump('old', '-')} end")
    minus_old = bump("old", "-", "old.status != 'released'")
    plus_new = bump("new", "", "new.status != 'released'")
    conn.execute("create trigger guardrail_totals_upd after update of status, usd, day, wallet on guardrail_ledger "
                 f"begin {minus_old}{plus_new} end")
    if conn.in_transaction:
        conn.execute("commit")


def _m006_relayer(db: sqlite_utils.Database) -> None:
    # The local relayer `fork up` starts beside the local CLOB (deposit wallets, LIVE-2026 §6.2).
    cols = db["nodes"].columns_dict
    for name, kind in (("relayer_pid", int), ("relayer_url", str)):
        if name not in cols:
            db["nodes"].add_column(name, kind)


# Job ids of the packed journal (migration 007): a fill's copies are numbered from its signal row, so a copy has
# its id from the moment it is decided, before (and whether or not) its job row exists.
JOB_ID_SHIFT = 20  # up to 2**20 copies of one fill


def job_view_sql() -> str:
    """Every copy as a job row: the job rows created so far, the legs of groups that have not started (packed in
    the group row), and the copies decided but not made (packed in the signal row, `skips_json`)."""
    cols = ("id, fill_key, follower, leader, follow_id, side, token_id, condition_id, usd, shares, price, flow, "
            "status, reason, group_id, worker, attempts, created_at, updated_at")
    return (
        f"create view job_rows as select {cols} from jobs "
        "union all select cast(json_extract(l.value, '$.job_id') as integer), g.fill_key, "
        "json_extract(l.value, '$.proxy'), s.leader, json_extract(l.value, '$.follow_id'), g.side, g.token_id, "
        "g.condition_id, json_extract(l.value, '$.usd'), json_extract(l.value, '$.shares'), g.price_limit, g.flow, "
        "case g.status when 'merged' then 'queued' when 'stalled' then 'queued' when 'dlq' then 'queued' "
        "when 'dropped' then 'dropped' else g.status end, "
        "case g.status when 'dropped' then g.error else null end, g.group_id, g.worker, 0, g.created_at, g.updated_at "
        "from groups g join json_each(g.legs_json) l left join signals s on s.fill_key = g.fill_key "
        "where g.jobs_created = 0 "
        "union all select cast(json_extract(k.value, '$.id') as integer), s.fill_key, json_extract(k.value, '$.follower'), "
        "s.leader, json_extract(k.value, '$.follow_id'), s.side, s.token_id, s.condition_id, "
        "json_extract(k.value, '$.usd'), json_extract(k.value, '$.shares'), null, json_extract(k.value, '$.flow'), "
        "'skipped', json_extract(k.value, '$.reason'), null, null, 0, s.seen_at, s.seen_at "
        "from signals s join json_each(s.skips_json) k where s.skips_json is not null")


def _m007_packed_journal(db: sqlite_utils.Database) -> None:
    # Issue #16: ONE row per fill. A fill's decided copies are packed with their group (groups.legs_json: job id,
    # proxy, follow id, amounts) and its copies not made with its signal (signals.skips_json); the per-copy job
    # rows are created when the group starts (`jobs_created` 1), and `job_rows` shows every copy either way.
    # An existing file keeps its job rows: its groups are marked as having them, and new job ids start above
    # the largest existing one (`journal_meta.job_id_base`).
    conn = db.conn
    if "skips_json" not in db["signals"].columns_dict:
        db["signals"].add_column("skips_json", str)
    if "jobs_created" not in db["groups"].columns_dict:
        db["groups"].add_column("jobs_created", int)
    conn.execute("update groups set jobs_created = 1 where jobs_created is null")
    conn.execute("create index if not exists groups_jobs_pending on groups (created_at) where jobs_created = 0")
    conn.execute("create table if not exists journal_meta (name text primary key, value integer not null)")
    top = conn.execute("select coalesce(max(id), 0) from jobs").fetchone()[0]
    conn.execute("insert or ignore into journal_meta (name, value) values ('job_id_base', ?)",
                 [(int(top) >> JOB_ID_SHIFT) + 1])
    # The cap reservations of one fill, packed (one row per fill instead of one ledger row per copy): their amounts
    # are in guardrail_totals already; settling a copy moves it out into guardrail_ledger (state/guardrails.py).
    conn.execute("create table if not exists guardrail_packs (pack text primary key, day text not null, "
                 "items_json text not null)")
    conn.execute("create index if not exists guardrail_packs_day on guardrail_packs (day)")
    conn.execute("drop view if exists job_rows")
    conn.execute(job_view_sql())
    if conn.in_transaction:
        conn.execute("commit")


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = [
    ("001_initial", _m001_initial),
    ("002_groups", _m002_groups),
    ("003_group_leases", _m003_group_leases),
    ("004_migration_ops", _m004_migration_ops),
    ("005_guardrail_totals", _m005_guardrail_totals),
    ("006_relayer", _m006_relayer),
    ("007_packed_journal", _m007_packed_journal),
]
SCHEMA_VERSION = len(MIGRATIONS)
# The tables of copytrade's records (for `state info` and `State.rows`); `_migrations` and the running totals
# of the guardrail ledger are bookkeeping, not records.
TABLES = ["nodes", "deployments", "proxies", "follows", "signals", "jobs", "groups", "job_steps",
          "guardrail_ledger", "guardrail_packs", "workers", "debts", "cursors", "migration_ops"]
