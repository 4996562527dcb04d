"""The Redis backends against the machine's real Redis (private key prefix), without a chain: the stream queue
(consumer group, lease, reclaim, attempts, dead-letter), dedup, cap counters racing across instances, the
worker-key registry, re-fill after Redis lost everything, health keys."""
from __future__ import annotations

import threading
import time

import pytest
import redis

from copytrade_cli.errors import NotReadyError
from copytrade_cli.settings import Settings
from copytrade_cli.state import State
from copytrade_cli.supervisor.backends import Delivery
from copytrade_cli.supervisor.coordination.redis_ops import dlq_list, dlq_retry, read_health
from copytrade_cli.supervisor.coordination.redis_scaleout import ScaleOut

URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.timeout(60)


def _settings(tmp_path, prefix, **env):
    return Settings(COPYTRADE_HOME=str(tmp_path), SUPERVISOR_REDIS_URL=URL, SUPERVISOR_REDIS_PREFIX=prefix,
                    SUPERVISOR_LEASE_MS=str(env.pop("lease", 600)), **env)


def _group(state: State, gid: str, status: str = "queued") -> None:
    state.create_group({"group_id": gid, "fill_key": f"f-{gid}", "flow": "standard", "side": "BUY", "token_id": "1",
                        "price_limit": "0.5", "stage": "queued", "status": status, "legs_json": "[]"}, [])


@pytest.fixture
def pair(tmp_path, redis_prefix):
    """Two instances (two ScaleOut objects, two connections to one state file) on one prefix."""
    s = _settings(tmp_path, redis_prefix)
    a = ScaleOut(s, State(s.state_path), "inst-a")
    b = ScaleOut(s, State(s.state_path), "inst-b")
    a.link.connect()
    b.link.connect()
    yield a, b
    a.link.close()
    b.link.close()


def test_stream_queue_one_consumer_per_entry_ack_deletes(pair):
    a, b = pair
    for i in range(6):
        assert a.queue.put(f"g{i}") == "queued"
    assert a.queue.put("g0") == "duplicate"
    got_a = [a.queue.get(0.05) for _ in range(3)]
    got_b = [b.queue.get(0.05) for _ in range(4)]
    ids = [d.group_id for d in got_a + got_b if d]
    assert sorted(ids) == [f"g{i}" for i in range(6)]  # each entry delivered to exactly one consumer
    assert a.queue.depth() == 6
    for d in got_a + got_b:
        if d:
            (a.queue if d in got_a else b.queue).ack(d)
    assert a.queue.depth() == 0
    assert a.link.r.hlen(a.queue.ids) == 0


def test_bounded_stream_reports_full(tmp_path, redis_prefix):
    s = _settings(tmp_path, redis_prefix, SUPERVISOR_QUEUE_MAX_SIZE="2")
    a = ScaleOut(s, State(s.state_path), "inst-a")
    a.link.connect()
    assert [a.queue.put(g) for g in ("x", "y", "z")] == ["queued", "queued", "full"]


def test_dead_consumer_entries_reclaimed_after_lease_then_dead_lettered(pair):
    a, b = pair
    _group(a.state, "gx")
    a.queue.put("gx")
    d = a.queue.get(0.05)
    assert d and d.attempts == 1
    a.queue.forget(d)  # instance a "dies": it stops renewing
    assert b.queue.get(0.05) is None  # still leased
    time.sleep(0.7)
    b.queue._last_claim = 0
    d2 = b.queue.get(0.05)
    assert d2 and d2.group_id == "gx" and d2.entry_id == d.entry_id and d2.attempts == 2
    # b dies too, repeatedly, until the attempts run out
    seen = [d2.attempts]
    for _ in range(6):
        b.queue.forget(d2)
        time.sleep(0.7)
        b.queue._last_claim = 0
        d2 = b.queue.get(0.05)
        if d2 is None:
            break
        seen.append(d2.attempts)
    assert seen == [2, 3, 4, 5]  # SUPERVISOR_MAX_DELIVERIES=5, then the dead-letter stream
    dead = dlq_list(a.settings)
    assert [r["gid"] for r in dead] == ["gx"] and dead[0]["attempts"] == "6"
    assert a.queue.depth() == 0
    a.state.update_group("gx", status="dlq")
    assert dlq_retry(a.settings, a.state) == ["gx"]
    assert dlq_list(a.settings) == [] and a.state.get_group("gx")["status"] == "queued"
    d3 = a.queue.get(0.05)
    assert d3 and d3.group_id == "gx" and d3.attempts == 1


def test_renewed_entries_are_not_reclaimed(pair):
    a, b = pair
    a.queue.put("live")
    d = a.queue.get(0.05)
    for _ in range(4):
        time.sleep(0.25)
        a.queue.renew()
    b.queue._last_claim = 0
    assert b.queue.get(0.05) is None
    a.queue.ack(d)


def test_dedup_across_instances_and_stale_claim_takeover(pair):
    a, b = pair
    assert a.dedup.add("k1", "mempool") == (True, True)
    assert b.dedup.add("k1", "logs") == (False, True)
    assert b.dedup.add("k1", "logs") == (False, False)
    a.dedup.done("k1")
    time.sleep(0.7)
    assert b.dedup.add("k1", "activity") == (False, True)  # done: a duplicate for good
    assert a.dedup.add("k2", "mempool")[0]
    time.sleep(0.7)  # a died before recording k2: after the lease, the claim is taken over
    assert b.dedup.add("k2", "logs")[0]


def test_caps_never_exceeded_by_racing_instances(pair):
    a, b = pair
    results = []

    def go(inst, i):
        results.append(inst.caps.reserve(day="2026-01-01", wallet="0xw", usd_micro=1_000_000, job_key=f"j{i}",
                                         wallet_cap_micro=7_000_000, global_cap_micro=None))

    threads = [threading.Thread(target=go, args=((a, b)[i % 2], i)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(ok for ok, _ in results) == 7
    assert all("cap" in why for ok, why in results if not ok)
    # idempotent per job key; release gives room back; commit with a smaller actual amount too
    assert a.caps.reserve(day="2026-01-01", wallet="0xw", usd_micro=1_000_000, job_key="j0",
                          wallet_cap_micro=7_000_000, global_cap_micro=None)[0] in (True, False)
    ok_keys = [f"j{i}" for i in range(60) if a.state.get_reservation(f"j{i}")]
    assert len(ok_keys) == 7  # every Redis reservation is journalled in SQLite
    b.caps.release(ok_keys[0])
    a.caps.commit(ok_keys[1], 400_000)
    assert a.link.r.get(a.link.k("cap", "2026-01-01", "wallet", "0xw")) == str(5_400_000)


def test_redis_restarted_empty_is_refilled_from_sqlite(pair, redis_prefix):
    a, b = pair
    from copytrade_cli.supervisor.decide import utc_day

    for g in ("r1", "r2", "r3"):
        _group(a.state, g)
        a.queue.put(g)
    _group(a.state, "done1", status="complete")
    a.caps.reserve(day=utc_day(), wallet="0xw", usd_micro=3_000_000, job_key="res1", wallet_cap_micro=5_000_000,
                   global_cap_micro=None)
    r = redis.Redis(host="127.0.0.1", port=6379)
    for key in r.scan_iter(match=redis_prefix + "*"):  # what a restarted Redis without persistence looks like
        r.delete(key)
    ok, _ = b.caps.reserve(day=utc_day(), wallet="0xw", usd_micro=3_000_000, job_key="res2",
                           wallet_cap_micro=5_000_000, global_cap_micro=None)
    assert not ok, "the rebuilt counter must still hold the 3 USD reserved before the restart"
    got = {b.queue.get(0.05).group_id for _ in range(3)}
    assert got == {"r1", "r2", "r3"} and b.queue.get(0.05) is None


def test_worker_registry_refuses_overlap_and_takes_over_own_slot(tmp_path, redis_prefix):
    s0 = _settings(tmp_path, redis_prefix)
    s1 = _settings(tmp_path, redis_prefix, COPY_TRADING_WORKER_INDEX="1")
    a = ScaleOut(s0, State(s0.state_path), "inst-a")
    b = ScaleOut(s1, State(s1.state_path), "inst-b")
    a.link.connect()
    b.link.connect()
    a.registry.acquire_fleet(["0x" + "11" * 20, "0x" + "22" * 20])
    with pytest.raises(NotReadyError, match="COPY_TRADING_WORKER_INDEX"):
        b.registry.acquire_fleet(["0x" + "33" * 20, "0x" + "22" * 20])
    assert not b.registry.held  # nothing kept from a refused start
    # the same slot restarting on this host (same worker index, previous PID gone) takes its keys over
    a2 = ScaleOut(s0, State(s0.state_path), "inst-a2")
    a2.link.connect()
    a2.registry.acquire_fleet(["0x" + "11" * 20])  # same PID here: treated as this slot's previous life
    # adoption of a dead instance's worker once its key lapsed
    assert not b.registry.adopt("0x" + "22" * 20)
    time.sleep(0.7)
    assert b.registry.adopt("0x" + "22" * 20)
    b.registry.release("0x" + "22" * 20)


def test_health_keys_expire(pair):
    a, _ = pair
    a.write_health({"instance": "inst-a", "status": "ok"}, 300)
    assert [d["instance"] for d in read_health(a.settings)] == ["inst-a"]
    time.sleep(0.4)
    assert read_health(a.settings) == []


def test_ack_of_unknown_delivery_is_harmless(pair):
    a, _ = pair
    a.queue.ack(Delivery("nope", "1-0"))


def test_reserve_many_is_one_lua_call_with_the_verdicts_of_one_call_per_copy(pair, monkeypatch):
    """#16: every copy of a fill reserved in ONE script call (racing instances still never exceed a cap), each
    reservation journalled in SQLite, verdicts in order exactly as reserving one copy at a time."""
    a, b = pair
    calls = []
    real = a.link.call
    monkeypatch.setattr(a.link, "call", lambda fn, *x, **kw: (calls.append(fn), real(fn, *x, **kw))[1])
    items = [("0xw1", 3_000_000, "f1:0xw1"), ("0xw2", 3_000_000, "f1:0xw2"), ("0xw1", 3_000_000, "f1:0xw1b"),
             ("0xw3", 3_000_000, "f1:0xw3"), ("0xw1", 1_000_000, "f1:0xw1")]
    got = a.caps.reserve_many(day="2026-01-01", items=items, wallet_cap_micro=5_000_000,
                              global_cap_micro=9_000_000)
    assert len(calls) == 1, "one Lua call for the whole fill"
    assert got[0] == (True, "reserved") and got[1] == (True, "reserved")
    assert got[2][0] is False and got[2][1] == "wallet daily cap 5 USD reached (3 used, all instances)"
    assert got[3] == (True, "reserved")
    assert got[4] == (True, "already reserved")
    assert a.link.r.get(a.link.k("cap", "2026-01-01", "global")) == str(9_000_000)
    assert [r["job_key"] for r in a.state.reservations("2026-01-01")] == ["f1:0xw1", "f1:0xw2", "f1:0xw3"]
    # the global cap is now full for every instance; a repeat of the same fill only answers "already reserved"
    again = b.caps.reserve_many(day="2026-01-01", items=items[:2] + [("0xw4", 1, "f2:0xw4")],
                                wallet_cap_micro=5_000_000, global_cap_micro=9_000_000)
    assert again[:2] == [(True, "already reserved")] * 2
    assert again[2] == (False, "daily cap 9 USD reached (9 used, all instances)")
    # racing instances, 5-copy fills against a wallet cap of 7 USD: never more than 7 reserved
    results = []

    def go(inst, i):
        results.extend(inst.caps.reserve_many(day="2026-01-02", items=[("0xw", 1_000_000, f"r{i}:{k}")
                                                                         for k in range(5)],
                                              wallet_cap_micro=7_000_000, global_cap_micro=None))

    threads = [threading.Thread(target=go, args=((a, b)[i % 2], i)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(ok for ok, _ in results) == 7
    assert len(a.state.reservations("2026-01-02")) == 7
