"""The state file without a node: migrations, at-most-once claims, atomic cap reservations, the transaction
layer (nested savepoints), the terminal status sets, owner-only file modes."""
from __future__ import annotations

import os
import stat
import threading
from decimal import Decimal

import pytest

from copytrade_cli.state import Follow, State

PROXY = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def test_migrations_recorded_and_reopen(tmp_path):
    s = State(tmp_path / "s.db")
    assert s.schema_version >= 2
    s.close()
    assert State(tmp_path / "s.db").schema_version >= 2


def test_claim_job_is_at_most_once_under_threads(tmp_path):
    s = State(tmp_path / "s.db")
    got = []
    threads = [threading.Thread(target=lambda: got.append(s.claim_job({"fill_key": "k", "follower": PROXY,
                                                                       "status": "pending"}))) for _ in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(g is not None for g in got) == 1


def test_daily_cap_reservation_is_atomic(tmp_path):
    s = State(tmp_path / "s.db")
    results = []

    def reserve(i):
        results.append(s.reserve_usd(day="2026-11-25", wallet="w", usd="1", job_key=f"j{i}", wallet_cap="5",
                                     global_cap="100")[0])

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(results) == 5
    assert s.spent_usd("2026-11-25", "w") == "5"
    s.settle_reservation("j0", "released")
    assert s.spent_usd("2026-11-25") == "4"


def test_batched_cap_reservation_matches_one_by_one(tmp_path):
    """reserve_usd_many (one fill's copies at once) gives the verdicts, reasons and ledger of reserve_usd per copy."""
    items = [("w1", 2_000_000, "k1"), ("w2", 3_000_000, "k2"), ("w1", 2_000_000, "k3"), ("w1", 1_500_000, "k4"),
             ("w3", 4_000_000, "k5"), ("w2", 1_000_000, "k2"), ("w3", 10_000, "k6")]
    one, many = State(tmp_path / "one.db"), State(tmp_path / "many.db")
    for st in (one, many):  # some spending earlier in the day, and one key already reserved
        st.reserve_usd(day="d", wallet="w1", usd="0.5", job_key="k0", wallet_cap="5", global_cap="12")
        st.reserve_usd(day="d", wallet="w3", usd="1", job_key="k6", wallet_cap="5", global_cap="12")
    by_one = [one.reserve_usd(day="d", wallet=w, usd=str(Decimal(u) / 10**6), job_key=k, wallet_cap="5",
                              global_cap="12") for w, u, k in items]
    with many.transaction():
        by_many = many.reserve_usd_many(day="d", items=items, wallet_cap_micro=5_000_000, global_cap_micro=12_000_000)
    assert by_many == by_one
    assert [ok for ok, _ in by_many] == [True, True, True, False, False, True, True]  # k2 and k6: already reserved
    rows = lambda st: sorted((r["wallet"], r["usd"], r["job_key"]) for r in st.reservations("d"))  # noqa: E731
    assert rows(many) == rows(one)
    assert [many.spent_usd("d", w) for w in ("w1", "w2", "w3", None)] == [one.spent_usd("d", w) for w in
                                                                         ("w1", "w2", "w3", None)]
    assert many._spent_micro("d") == one._spent_micro("d") == 8_500_000


def test_claim_jobs_tuples_and_dicts_at_most_once(tmp_path):
    s = State(tmp_path / "s.db")
    cols = ["fill_key", "follower", "status"]
    assert s.claim_jobs([("f", "a", "queued"), ("f", "b", "queued")], cols=cols) == [1, 2]
    got = s.claim_jobs([{"fill_key": "f", "follower": "b", "status": "x"}, {"fill_key": "f", "follower": "c",
                                                                          "status": "x"}])
    assert got == [None, 3]
    assert s.get_job(3)["attempts"] == 0 and s.get_job(3)["created_at"]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_state_file_and_its_wal_are_owner_only(tmp_path):
    s = State(tmp_path / "s.db")
    s.set_cursor("logs", "1")  # a write, so the -wal and -shm files exist
    for suffix in ("", "-wal", "-shm"):
        assert _mode(f"{tmp_path / 's.db'}{suffix}") == 0o600, suffix
    s.close()


def test_an_existing_state_file_is_tightened_on_open(tmp_path):
    path = tmp_path / "s.db"
    State(path).close()
    os.chmod(path, 0o644)
    State(path).close()
    assert _mode(path) == 0o600


def test_nested_transactions_use_savepoints(tmp_path):
    s = State(tmp_path / "s.db")
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.set_cursor("a", "1")
            with s.transaction():
                s.set_cursor("b", "1")
            raise RuntimeError("the outer transaction fails")
    assert s.get_cursor("a") is None and s.get_cursor("b") is None  # the whole outer transaction rolled back
    with s.transaction():
        s.set_cursor("a", "2")
        with pytest.raises(RuntimeError):
            with s.transaction():
                s.set_cursor("b", "2")
                raise RuntimeError("only the savepoint fails")
    assert (s.get_cursor("a"), s.get_cursor("b")) == ("2", None)
    assert s._tx_depth == 0 and not s.db.conn.in_transaction


def test_exclusive_group_rolls_back_to_its_savepoint_only(tmp_path):
    s = State(tmp_path / "s.db")
    (j,) = s.claim_jobs([("f", PROXY, "queued")], cols=["fill_key", "follower", "status"])
    g = {"fill_key": "f", "flow": "standard", "side": "BUY", "status": "queued", "stage": "queued", "legs_json": "[]"}
    with s.transaction():
        s.set_cursor("c", "1")
        assert s.create_group({**g, "group_id": "g1"}, [j], exclusive=True)
        assert not s.create_group({**g, "group_id": "g2"}, [j], exclusive=True)  # g1 holds the job already
    assert s.get_cursor("c") == "1" and s.get_group("g1") and s.get_group("g2") is None
    assert s.get_job(j)["group_id"] == "g1"


def test_terminal_sets_decide_resume_claim_and_orphans(tmp_path):
    s = State(tmp_path / "s.db")
    for status in ("queued", "running", "stalled", "dlq", "complete", "refunded", "failed", "dropped", "merged"):
        s.create_group({"group_id": status, "status": status, "stage": status, "legs_json": "[]"}, [])
    assert sorted(g["group_id"] for g in s.unfinished_groups()) == ["dlq", "queued", "running", "stalled"]
    assert sorted(g["group_id"] for g in s.orphaned_groups()) == ["queued", "running", "stalled"]
    for status in ("complete", "refunded", "failed", "dropped", "merged"):  # merged: absorbed, never run again
        assert s.claim_group(status, "me", 30)[0] == "done", status
    assert s.claim_group("queued", "me", 30)[0] == "claimed"
    assert s.claim_group("queued", "other", 30)[0] == "busy"
    assert s.claim_group("nope", "me", 30) == ("missing", None)


def test_every_table_module_round_trips(tmp_path):
    """One write and one read through each table module, behind the one State."""
    from copytrade_cli.state import Deployment, NodeRecord, ProxyRecord

    s = State(tmp_path / "s.db")
    s.save_node(NodeRecord(name="default", kind="anvil", pid=1, rpc_url="http://x", ws_url="ws://x", chain_id=137,
                           port=1, log_path="l", started_at="t"))
    s.update_node("default", pid=2)
    assert s.get_node().pid == 2
    s.record_deployment(Deployment(network="n", name="ProxyFactory", address="0xF1", tx=None, block=None,
                                   gas_used=None, deployer=None))
    s.record_deployment(Deployment(network="n", name="ProxyFactory", address="0xF2", tx=None, block=None,
                                   gas_used=None, deployer=None, generation=2, status="previous"))
    s.activate_generation("n", 2)
    assert s.get_deployment("n", "ProxyFactory").address == "0xF2"
    s.record_proxy(ProxyRecord(network="n", address="0xP1", owner="0xO", factory="0xF1"))
    assert "0xp1" in s.unroutable_proxies("n") and s.get_proxy("n", "0XP1").owner == "0xO"
    s.record_workers("n", ["0xW1", "0xW2"])
    assert s.list_workers("n") == ["0xW1", "0xW2"]
    s.record_migration_op("n", 2, 1, "plan", "done", detail={"k": 1}, items_done=1, items_total=1)
    assert s.migration_ops("n", 2)[0]["detail"] == '{"k":1}'
    f = s.upsert_follow(Follow(follower=PROXY, leader="0xL"))
    assert s.set_follow_status(f.id, "paused") and s.list_follows(status="paused")[0].id == f.id
    assert s.record_signal({"fill_key": "k", "leader": "0xL", "token_id": "7", "channel": "logs"})
    assert not s.record_signal({"fill_key": "k", "channel": "mempool"})
    assert s.get_signal("k")["channels"] == "logs,mempool" and s.known_token_ids() == ["7"]
    s.add_debts([{"group_id": "g", "job_id": 1, "worker": "0xW1", "proxy": PROXY, "token": "0xT", "amount": 5}])
    (d,) = s.open_debts("0xW1")
    s.mark_debts_paying([d["id"]], "0xtx")
    assert [x["id"] for x in s.paying_debts()] == [d["id"]]
    s.mark_debts_paid([d["id"]], "0xtx")
    assert s.open_debts() == []
    s.forget_network("n")
    assert s.list_deployments("n") == [] and s.list_proxies("n") == [] and s.migration_ops("n") == []
    assert s.info()["tables"]["follows"] == 1 and list(s.rows("signals"))[0]["fill_key"] == "k"


def test_a_leg_stores_every_field_and_reads_back_equal():
    from dataclasses import fields

    from copytrade_cli.state.records import Leg, legs_from_json, legs_to_json

    leg = Leg(job_id=7, proxy="0x" + "ab" * 20, usd_micro=10_000_000, shares_micro=3, reserve_key="k:7")
    assert list(leg.to_dict()) == [f.name for f in fields(Leg)]  # a new field must be stored too
    assert legs_from_json(legs_to_json([leg])) == [leg]
