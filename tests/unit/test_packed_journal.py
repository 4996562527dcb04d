"""The packed journal (issue #16): one signal row and one group row per fill, its copies packed as legs with
their job ids, job rows created when a group starts; every reader (jobs list/show, counts, the ghost path, caps)
sees the same copies before and after; an existing state file migrates."""
from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import sqlite_utils
from eth_account import Account
from typer.testing import CliRunner

from copytrade_cli.cli.main import app
from copytrade_cli.polymarket.fills import LeaderFill
from copytrade_cli.settings import Settings
from copytrade_cli.state import Follow, State, open_state
from copytrade_cli.state.schema import JOB_ID_SHIFT, MIGRATIONS


class _Chain:
    network, chain_id, is_local, w3, rpc_url, world = "polygon:local", 137, True, None, "http://127.0.0.1:1", None


def _supervisor(home: Path, n_followers: int = 3, **env):
    from copytrade_cli.supervisor.runner import Supervisor

    settings = Settings(COPYTRADE_HOME=str(home), **env)
    state = open_state(settings)
    rnd = random.Random(5)
    leader = Account.from_key(rnd.randbytes(32)).address
    stamp = "2000-01-01T00:00:00.000+00:00"
    followers = [Account.from_key(rnd.randbytes(32)).address for _ in range(n_followers)]
    for f in followers:
        r = asdict(Follow(follower=f, leader=leader, amount="1", flow="buffer", created_at=stamp, updated_at=stamp))
        r.pop("id")
        state.db["follows"].insert(r)
    lines: list[str] = []
    return Supervisor(settings, state, _Chain(), say=lines.append), leader, followers, lines


def _fill(leader: str, i: int = 0) -> LeaderFill:
    return LeaderFill(leader=leader, tx_hash="0x" + f"{i + 1:064x}", token_id="123456789", side="BUY",
                      shares_micro=2_000_000 + i, usd_micro=1_000_000, price=Decimal("0.5"), source="mempool",
                      log_index=0)


def _count(state: State, table: str) -> int:
    return state.db.execute(f"select count(*) from {table}").fetchone()[0]


def test_a_fill_is_one_signal_row_and_one_group_row_and_its_copies_are_job_rows_once_it_starts(tmp_path):
    sup, leader, followers, _ = _supervisor(tmp_path)
    sup.on_fill(_fill(leader))
    st = sup.state
    assert (_count(st, "signals"), _count(st, "groups"), _count(st, "jobs")) == (1, 1, 0)
    (g,) = st.list_groups()
    assert g["jobs_created"] == 0 and len(json.loads(g["legs_json"])) == 3
    packed = st.list_jobs()
    assert sorted(j["follower"] for j in packed) == sorted(followers)
    assert {(j["status"], j["usd"], j["price"], j["flow"], j["side"], j["group_id"], j["leader"]) for j in packed} == \
        {("queued", "1", "0.52", "buffer", "BUY", g["group_id"], leader)}
    assert st.job_counts() == {"queued": 3}
    ids = sorted(j["id"] for j in packed)
    assert ids == [ids[0], ids[0] + 1, ids[0] + 2] and ids[0] >> JOB_ID_SHIFT >= 1
    assert st.get_job(ids[1]) == next(j for j in packed if j["id"] == ids[1])
    assert st.get_job(ids[2] + 1) is None
    # the group starts: the same copies, now job rows, created once
    assert st.create_group_jobs(g["group_id"]) == 3
    assert st.create_group_jobs(g["group_id"]) == 0
    assert _count(st, "jobs") == 3 and st.get_group(g["group_id"])["jobs_created"] == 1
    rows = st.list_jobs()
    strip = lambda js: sorted(({k: v for k, v in j.items() if k != "updated_at"} for j in js),  # noqa: E731
                              key=lambda j: j["id"])
    assert strip(rows) == strip(packed)
    assert st.job_counts() == {"queued": 3}
    assert [leg["job_id"] for leg in json.loads(g["legs_json"])] == sorted(j["id"] for j in rows)


def test_the_same_fill_again_is_never_decided_twice(tmp_path):
    sup, leader, _f, _ = _supervisor(tmp_path)
    f = _fill(leader)
    sup.on_fill(f)
    sup.intake.coord.dedup._d.clear()  # the fast dedup forgot it (a restart): the signal row is the rule
    sup.on_fill(f)
    sup.on_fills([f, _fill(leader, 1)])
    assert (_count(sup.state, "signals"), _count(sup.state, "groups")) == (2, 2)
    assert sup.state.job_counts() == {"queued": 6}


def test_copies_not_made_are_packed_in_the_signal_row_with_their_reasons(tmp_path):
    sup, leader, followers, lines = _supervisor(tmp_path, COPY_TRADING_WALLET_DAILY_CAP_USD="1.5")
    sup.on_fill(_fill(leader, 0))
    sup.on_fill(_fill(leader, 1))  # every wallet has 1 of its 1.5 USD used: the second fill's copies are refused
    st = sup.state
    assert _count(st, "jobs") == 0 and _count(st, "groups") == 1
    skipped = st.list_jobs(status="skipped")
    assert len(skipped) == 3 and {j["reason"] for j in skipped} == {"wallet daily cap 1.5 USD reached (1 used)"}
    assert {j["usd"] for j in skipped} == {"1"} and all(j["group_id"] is None for j in skipped)
    assert st.job_counts() == {"queued": 3, "skipped": 3}
    one = st.get_job(skipped[0]["id"])
    assert one["status"] == "skipped" and one["follower"] == skipped[0]["follower"]
    assert sum(line.startswith("Skipped copy for ") for line in lines) == 3
    # the reservations of the first fill: one packed row for the fill, seen by every reader
    assert _count(st, "guardrail_packs") == 1 and _count(st, "guardrail_ledger") == 0
    day = st.reservations(st.db.execute("select day from guardrail_packs").fetchone()[0])
    assert sorted(r["wallet"] for r in day) == sorted(f.lower() for f in followers)


def test_packed_reservations_settle_exactly_like_ledger_rows(tmp_path):
    st = State(tmp_path / "s.db")
    items = [("w1", 2_000_000, "f1:w1"), ("w2", 1_000_000, "f1:w2"), ("w1", 4_000_000, "f1:w1x")]
    got = st.reserve_usd_many(day="d", items=items, wallet_cap_micro=5_000_000, global_cap_micro=None)
    assert got == [(True, "reserved"), (True, "reserved"), (False, "wallet daily cap 5 USD reached (2 used)")]
    assert st.reserve_usd_many(day="d", items=items[:1], wallet_cap_micro=5_000_000, global_cap_micro=None) == \
        [(True, "already reserved")]
    assert st.reserve_usd(day="d", wallet="w1", usd="2", job_key="f1:w1", wallet_cap="5", global_cap=None) == \
        (True, "already reserved")
    assert st.get_reservation("f1:w2")["usd"] == "1" and st.spent_usd("d") == "3" and st.spent_usd("d", "w1") == "2"
    st.settle_reservation("f1:w1", "committed", "1.5")  # moved out into its ledger row, then settled
    st.settle_reservation("f1:w2", "released")
    assert st.get_reservation("f1:w1")["status"] == "committed" and st.get_reservation("f1:w2")["status"] == "released"
    assert st.spent_usd("d") == "1.5" and _count(st, "guardrail_packs") == 0
    assert dict(st.db.execute("select wallet, micro from guardrail_totals where day='d'").fetchall()) == \
        {"*": 1_500_000, "w1": 1_500_000, "w2": 0}
    assert st.reserve_usd(day="d", wallet="w1", usd="3.5", job_key="f2:w1", wallet_cap="5", global_cap=None)[0]


def test_jobs_cli_shows_a_packed_copy_exactly_as_its_job_row(tmp_path):
    sup, leader, _f, _ = _supervisor(tmp_path)
    sup.on_fill(_fill(leader))
    sup.state.close()
    runner = CliRunner()
    env = {"COPYTRADE_HOME": str(tmp_path)}

    def cli(*args: str) -> str:
        r = runner.invoke(app, list(args), env=env)
        assert r.exit_code == 0, r.output
        return r.output

    st = State(tmp_path / "state.db")
    job = st.list_jobs(limit=1)[0]
    g = st.get_group(job["group_id"])
    before_list, before_show = cli("jobs", "list"), cli("jobs", "show", str(job["id"]))
    lines = before_show.splitlines()
    assert lines[0] == f"Job {job['id']}: queued BUY for {job['follower']} (flow buffer)"
    assert lines[1] == f"Fill: {job['fill_key']}"
    assert lines[2] == f"Group {g['group_id']}: stage queued, worker None, order -"
    assert "Jobs (queued 3)" in before_list and str(job["id"]) in before_list
    st.create_group_jobs(g["group_id"])
    assert cli("jobs", "list") == before_list and cli("jobs", "show", str(job["id"])) == before_show
    shown = json.loads(cli("jobs", "show", str(job["id"]), "--json"))
    assert shown["job"]["id"] == job["id"] and shown["group"]["group_id"] == g["group_id"]
    r = runner.invoke(app, ["jobs", "show", str(job["id"] + 99)], env=env)
    assert r.exit_code != 0 and f"no job {job['id'] + 99} (see `copytrade jobs list`)" in r.output


def test_a_dropped_group_gets_its_job_rows_dropped_with_the_reason(tmp_path):
    sup, leader, _f, _ = _supervisor(tmp_path)
    sup.on_fill(_fill(leader))
    (g,) = sup.state.list_groups()
    assert sup.dispatcher.drop_queued(g["group_id"], "queue full", "queue full (SUPERVISOR_QUEUE_MAX_SIZE)")
    rows = sup.state.list_jobs()
    assert _count(sup.state, "jobs") == 3
    assert {(j["status"], j["reason"]) for j in rows} == {("dropped", "queue full (SUPERVISOR_QUEUE_MAX_SIZE)")}


def test_an_existing_state_file_migrates_and_keeps_its_job_rows(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    db["_migrations"].create({"name": str, "applied_at": str}, pk="name")
    for name, fn in MIGRATIONS:
        if name.startswith("007"):
            break
        fn(db)
        db["_migrations"].insert({"name": name, "applied_at": "2026-01-01T00:00:00.000+00:00"})
    db["signals"].insert({"fill_key": "0xl:f1", "leader": "0xL", "tx_hash": "0xt", "side": "BUY", "token_id": "1"})
    db["jobs"].insert({"id": 3_000_000, "fill_key": "0xl:f1", "follower": "0xF", "leader": "0xL", "side": "BUY",
                       "token_id": "1", "usd": "1", "status": "complete", "group_id": "g-old", "flow": "buffer",
                       "created_at": "2026-01-01T00:00:00.000+00:00", "updated_at": "2026-01-01T00:00:00.000+00:00"})
    db["groups"].insert({"group_id": "g-old", "fill_key": "0xl:f1", "flow": "buffer", "side": "BUY", "token_id": "1",
                         "price_limit": "0.5", "stage": "done", "status": "complete",
                         "legs_json": json.dumps([{"job_id": 3_000_000, "proxy": "0xF", "usd_micro": 1}]),
                         "created_at": "2026-01-01T00:00:00.000+00:00"})
    db.conn.close()
    st = State(path)
    assert "007_packed_journal" in {r["name"] for r in st.db["_migrations"].rows}
    assert [(j["id"], j["status"]) for j in st.list_jobs()] == [(3_000_000, "complete")]
    assert st.job_counts() == {"complete": 1} and st.get_group("g-old")["jobs_created"] == 1
    first = st.record_fill({"fill_key": "0xl:f2", "leader": "0xL", "side": "BUY", "token_id": "1"})
    assert first > 3_000_000  # new job ids start above every existing one
    assert st.record_fill({"fill_key": "0xl:f2", "leader": "0xL", "side": "BUY", "token_id": "1"}) is None


def test_a_restart_finds_decided_groups_and_their_job_rows_exist_before_the_flow_runs(tmp_path):
    """The window #16 opens: killed after a fill's commit, before its group started. The next start resumes the
    group from the file (run_unfinished -> execute -> claim); its job rows are created before the flow's first
    step, so everything the flow journals on them lands."""
    sup, leader, _f, _ = _supervisor(tmp_path)
    sup.on_fill(_fill(leader))
    home = sup.settings.home
    sup.state.close()  # the process is gone; only the file remains
    again, *_ = _supervisor(tmp_path / "unused")
    again.state = State(Path(home) / "state.db")
    d = again.dispatcher
    d.state = again.state
    d.coord.state = again.state
    seen = []

    def run_on_worker(group, worker_address, on_release=None):
        seen.append((group["jobs_created"], [j["id"] for j in again.state._q("select id from jobs")]))
        return "complete"

    d._run_on_worker = run_on_worker
    (g,) = again.state.unfinished_groups()
    d.inflight.acquire()
    d.running += 1
    d.execute(g["group_id"])
    legs = [leg["job_id"] for leg in json.loads(g["legs_json"])]
    assert len(seen) == 1 and seen[0][0] == 1 and sorted(seen[0][1]) == sorted(legs)
    assert again.state.get_group(g["group_id"])["jobs_created"] == 1
