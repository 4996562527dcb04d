"""Attacks and faults on the execution side (issue 15): a backlog replayed with the real-trading switch off on a
live network, a stale group, a group whose limit the book has left, a CLOB answer claiming more than the order, a
hand-edited impossible value in a group row, and a paused proxy inside an aggregated batch. Real anvil, the local
world and CLOB, the real supervisor; every outcome checked on chain (tests/faults/ledger.py)."""
from __future__ import annotations

import dataclasses
import json
import os
import time

import pytest

from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.chain.lanes import floor_fees
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow
from copytrade_cli.supervisor.plan import _JOB_COLS

from ..integration.conftest import RunningSupervisor, clear_follows, fork, make_settings, new_follower  # noqa: F401
from .ledger import balances, check_once, injected, jobs_for, wait_settled
from .tools import FaultProxy, setup_follow

pytestmark = [pytest.mark.timeout(240)]
MICRO = 10**6


def _followers(fork, n: int, amount: str = "3"):
    """`n` fresh funded followers of the seed leader (the only follows), same config (one aggregated group)."""
    clear_follows(fork)
    out = []
    for _ in range(n):
        p = new_follower(fork)
        f = add_follow(fork.state, follower=p, leader=SEED_LEADER, amount=amount)
        out.append((p, f))
    token = int(fork.world.market(0).token_id("Yes"))
    return out, token


def _queued_group(fork, follows, token: int, *, usd_micro: int = 2_000_000, price_limit: str = "0.55",
                  age_s: float = 0.0, legs_json: str | None = None) -> tuple[str, list[int]]:
    """A BUY group as the planner journals it (jobs queued and attached, group queued, nothing pulled): the
    backlog a restart finds. Returns (group id, job ids)."""
    gid = os.urandom(8).hex()
    fkey = f"{SEED_LEADER.lower()}:0x{os.urandom(32).hex()}:{token}:BUY:{usd_micro}"
    cond = fork.world.market(0).condition_id
    rows = [(fkey, SEED_LEADER, "BUY", str(token), cond, p, f.id, "standard", "queued", None,
             str(usd_micro / MICRO), None, price_limit, gid) for p, f in follows]
    with fork.state.transaction():
        ids = fork.state.claim_jobs(rows, cols=_JOB_COLS)
        legs = [{"job_id": jid, "proxy": p, "usd_micro": usd_micro, "shares_micro": 0, "reserve_key": None}
                for jid, (p, _f) in zip(ids, follows)]
        now = time.time()
        fork.state.create_group({"group_id": gid, "fill_key": fkey, "flow": "standard", "side": "BUY",
                                 "token_id": str(token), "condition_id": cond, "price_limit": price_limit,
                                 "t_detected": now - age_s, "stage": "queued", "status": "queued",
                                 "legs_json": legs_json or json.dumps(legs), "t_queued": now - age_s}, [])
    return gid, ids


def _jobs(fork, ids):
    return {j["id"]: j for j in fork.state.jobs_by_ids(ids)}


# --- the switch, re-checked before the first step ------------------------------------------------------------
def test_switch_off_on_a_live_network_executes_no_queued_group(fork):
    """A restart on a live network with ENABLE_REAL_TRADING off and a backlog in the journal (queued groups,
    nothing pulled): resume refuses every one before its first step; nothing moves on chain."""
    from copytrade_cli.supervisor.runner import Supervisor, SupervisorOptions

    follows, token = _followers(fork, 2)
    before = {p: balances(fork, p, token) for p, _f in follows}
    gid, ids = _queued_group(fork, follows, token)
    # The fork posing as a live network (as test_readiness does): same node and contracts, is_local False.
    live = dataclasses.replace(fork.chain, is_local=False)
    s = make_settings(fork.settings.home, COPYTRADE_CLOB_URL=fork.state.get_node().clob_url,
                      ENABLE_REAL_TRADING="false")
    lines: list[str] = []
    sup = Supervisor(s, fork.state, live, say=lines.append, options=SupervisorOptions(channels=("logs",)))
    injected("restart with the switch off and a backlog (live)")
    try:
        sup.start()  # recovery resumes the journal's unfinished groups right here
    finally:
        sup.shutdown()
    g = fork.state.get_group(gid)
    assert g["status"] == "dropped" and "ENABLE_REAL_TRADING is off" in g["error"], g
    jobs = _jobs(fork, ids)
    assert {j["status"] for j in jobs.values()} == {"skipped"}
    assert all("ENABLE_REAL_TRADING" in j["reason"] for j in jobs.values())
    assert [st["step"] for st in fork.state.steps(gid)] == ["Start"]
    for p, _f in follows:
        assert balances(fork, p, token) == before[p], "nothing executed"
        check_once(fork, p, token, before[p], expect="skipped")


# --- age and book ---------------------------------------------------------------------------------------------
def test_stale_and_off_book_groups_are_refused_fresh_one_runs(fork):
    """Three queued groups at a restart: one older than SUPERVISOR_MAX_GROUP_AGE_MS (refused: stale), one a few
    seconds old whose BUY limit is below the book's best ask (refused before any pull), one fresh (executes)."""
    follows, token = _followers(fork, 3)
    before = {p: balances(fork, p, token) for p, _f in follows}
    stale, stale_ids = _queued_group(fork, follows[:1], token, age_s=120)
    off_book, off_ids = _queued_group(fork, follows[1:2], token, age_s=5, price_limit="0.05")
    fresh, fresh_ids = _queued_group(fork, follows[2:], token, age_s=0)
    injected("stale group", 1)
    injected("group past the book", 1)
    sup = RunningSupervisor(fork, settings=make_settings(fork.settings.home, SUPERVISOR_MAX_GROUP_AGE_MS="60000"),
                            channels=("logs",))
    try:
        assert sup.wait(lambda: fork.state.get_group(fresh)["status"] == "complete", 60), fork.state.get_group(fresh)
        wait_settled(fork, [p for p, _f in follows])
    finally:
        sup.stop()
    g = fork.state.get_group(stale)
    assert g["status"] == "dropped" and g["error"].startswith("stale: detected 12"), g
    assert "SUPERVISOR_MAX_GROUP_AGE_MS" in _jobs(fork, stale_ids)[stale_ids[0]]["reason"]
    g = fork.state.get_group(off_book)
    assert g["status"] == "dropped" and "best ask" in g["error"] and "limit 0.05" in g["error"], g
    assert not g["pull_tx"] and not g["order_id"]
    check_once(fork, follows[0][0], token, before[follows[0][0]], expect="skipped")
    check_once(fork, follows[1][0], token, before[follows[1][0]], expect="skipped")
    check_once(fork, follows[2][0], token, before[follows[2][0]], expect="complete")


def test_leg_no_longer_in_the_allowlist_is_dropped_at_start(fork):
    """A queued group of two legs; at the restart COPY_TRADING_EXECUTION_ALLOWLIST names only one follower:
    the other leg is skipped with the reason before the pull, the allowed one copies."""
    follows, token = _followers(fork, 2)
    before = {p: balances(fork, p, token) for p, _f in follows}
    gid, ids = _queued_group(fork, follows, token)
    allowed, gone = follows[0][0], follows[1][0]
    injected("leg removed from the allowlist before its group started")
    sup = RunningSupervisor(fork, settings=make_settings(fork.settings.home,
                                                         COPY_TRADING_EXECUTION_ALLOWLIST=allowed), channels=("logs",))
    try:
        assert sup.wait(lambda: fork.state.get_group(gid)["status"] == "complete", 60), fork.state.get_group(gid)
        wait_settled(fork, [allowed, gone])
    finally:
        sup.stop()
    jobs = _jobs(fork, ids)
    assert jobs[ids[1]]["status"] == "skipped"
    assert jobs[ids[1]]["reason"] == "follower not in COPY_TRADING_EXECUTION_ALLOWLIST (re-checked at start)"
    check_once(fork, allowed, token, before[allowed], expect="complete")
    check_once(fork, gone, token, before[gone], expect="skipped")


# --- impossible values ----------------------------------------------------------------------------------------
def test_hand_edited_legs_1e400_fail_terminal_with_the_reason(fork, caplog):
    """A group row edited by hand to an amount of 1e400: the group fails (terminal) with its reason, its job
    failed with it, no traceback, nothing stuck `running`, nothing moved."""
    follows, token = _followers(fork, 1)
    p, _f = follows[0]
    before = balances(fork, p, token)
    gid, ids = _queued_group(fork, follows, token, legs_json="[]")
    legs = '[{"job_id": %d, "proxy": "%s", "usd_micro": 1e400, "shares_micro": 0, "reserve_key": null}]' % (ids[0], p)
    fork.state.update_group(gid, legs_json=legs)
    injected("hand-edited legs_json 1e400")
    sup = RunningSupervisor(fork, channels=("logs",))
    try:
        assert sup.wait(lambda: fork.state.get_group(gid)["status"] == "failed", 30), fork.state.get_group(gid)
    finally:
        sup.stop()
    g = fork.state.get_group(gid)
    assert g["error"] == "invalid group: leg 0: usd_micro 'inf' is not an integer", g["error"]
    job = _jobs(fork, ids)[ids[0]]
    assert job["status"] == "failed" and job["reason"] == g["error"]
    assert not [r for r in caplog.records if r.exc_info], "no traceback"
    check_once(fork, p, token, before, expect="failed")


# --- the CLOB's reported amounts ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clob_proxy(fork):
    p = FaultProxy(fork.state.get_node().clob_url)
    yield p
    p.close()


def test_clob_answer_claiming_more_is_capped_and_logs_charged(fork, clob_proxy):
    """The CLOB's answer to POST /order claims ten times what the order made and took: the follower is charged
    no more than planned, and exactly what the settlement's OrderFilled logs say (on chain); the difference
    is journalled."""
    proxy, token, before = setup_follow(fork, "standard", amount="3")
    clob_proxy.mode = "inflate"
    sup = RunningSupervisor(fork, settings=make_settings(fork.settings.home, COPYTRADE_CLOB_URL=clob_proxy.url),
                            channels=("mempool", "logs"))
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("CLOB answer claiming 10x the order")
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        wait_settled(fork, [proxy])
    finally:
        clob_proxy.mode = "pass"
        sup.stop()
    assert clob_proxy.inflated >= 1
    job = jobs_for(fork, proxy)[0]
    g = fork.state.get_group(job["group_id"])
    after = balances(fork, proxy, token)
    assert 0 < before[0] - after[0] <= 3 * MICRO, "charged no more than planned"
    assert before[0] - after[0] == g["spent_micro"] and after[1] - before[1] == g["filled_shares"]
    steps = [(s["step"], s["status"], s["detail"] or "") for s in fork.state.steps(job["group_id"])]
    assert any(tuple(st) == ("Settlement", "mismatch") and "capped" in d for *st, d in steps), steps
    assert any(tuple(st) == ("Settlement", "mismatch") and "logs" in d for *st, d in steps), steps
    check_once(fork, proxy, token, before, expect="complete")


# --- a paused proxy inside an aggregated batch ---------------------------------------------------------------
def _set_paused(fork, proxy: str, paused: bool) -> None:
    from copytrade_cli.chain.deploy import contract

    factory = contract(fork.w3, "ProxyFactory", fork.report.addresses["ProxyFactory"])
    admin = factory.functions.admin().call()
    fork.w3.provider.make_request("anvil_impersonateAccount", [admin])
    try:
        tx = fork.w3.eth.send_transaction({"from": admin, "to": factory.address, **floor_fees(fork.w3),
                                           "data": factory.encode_abi("setProxiesPaused", args=[[proxy], paused])})
        assert fork.w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
    finally:
        fork.w3.provider.make_request("anvil_stopImpersonatingAccount", [admin])


def test_paused_proxy_in_an_aggregated_batch_is_skipped_others_copy(fork):
    """Three followers, one aggregated group; one proxy paused by the factory admin after the follow: the
    other two copy, the paused one is skipped with its reason before the pull; balances on chain."""
    follows, token = _followers(fork, 3)
    before = {p: balances(fork, p, token) for p, _f in follows}
    paused = follows[1][0]
    _set_paused(fork, paused, True)
    time.sleep(1.0 - time.time() % 1.0 + 0.05)  # a follow copies fills from the next second on
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("paused proxy inside an aggregated batch")
        everyone = [p for p, _f in follows]
        assert sup.wait(lambda: all(len(jobs_for(fork, p)) == 1 and jobs_for(fork, p)[0]["status"] in
                                    ("complete", "skipped") for p in everyone), 60), \
            [(j["follower"], j["status"], j["reason"]) for p in everyone for j in jobs_for(fork, p)]
        wait_settled(fork, everyone)
    finally:
        sup.stop()
        _set_paused(fork, paused, False)
    job = jobs_for(fork, paused)[0]
    assert job["status"] == "skipped" and job["reason"] == "the proxy is paused (at pull time)", job
    groups = {jobs_for(fork, p)[0]["group_id"] for p, _f in follows}
    assert len(groups) == 1, "one aggregated group"
    for p, _f in follows:
        check_once(fork, p, token, before[p], expect="skipped" if p == paused else "complete")


def test_paused_proxy_keeps_its_debt_the_others_are_reimbursed(fork):
    """Smart Buffer: two followers copy on the worker's float; one proxy is paused before the reimbursement.
    The reimbursement batch leaves its debt open (never reverting the batch) and repays the other; unpaused,
    the debt is repaid at the next run. Balances on chain."""
    follows, token = _followers(fork, 2)
    for p, f in follows:
        add_follow(fork.state, follower=p, leader=SEED_LEADER, amount="3", flow="buffer")
    before = {p: balances(fork, p, token) for p, _f in follows}
    paused, other = follows[0][0], follows[1][0]
    time.sleep(1.0 - time.time() % 1.0 + 0.05)
    sup = RunningSupervisor(fork, channels=("mempool", "logs"), reimburse_every_s=3600)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        assert sup.wait(lambda: all([j["status"] for j in jobs_for(fork, p)] == ["complete"] for p in (paused, other)),
                        60), [(j["follower"], j["status"], j["reason"]) for j in fork.state.list_jobs(limit=5)]
        assert {d["proxy"].lower() for d in fork.state.open_debts()} >= {paused.lower(), other.lower()}
        _set_paused(fork, paused, True)
        injected("paused proxy with an open Smart Buffer debt")
    finally:
        sup.stop()  # the shutdown repays what it can
    open_now = {d["proxy"].lower() for d in fork.state.open_debts()}
    assert paused.lower() in open_now and other.lower() not in open_now, open_now
    check_once(fork, other, token, before[other], expect="complete")
    assert balances(fork, paused, token)[0] == before[paused][0], "nothing pulled from the paused proxy"
    _set_paused(fork, paused, False)
    sup = RunningSupervisor(fork, channels=("logs",))
    try:
        wait_settled(fork, [paused], 60)
    finally:
        sup.stop()
    check_once(fork, paused, token, before[paused], expect="complete")
