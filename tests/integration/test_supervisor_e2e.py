"""The supervisor end to end on a real fork: balances on chain and rows in state, not logs."""
from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

from copytrade_cli.chain.proxies import erc20, erc1155
from copytrade_cli.localworld.trades import leader_batch, leader_trade
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from .conftest import RunningSupervisor, clear_follows, make_settings, new_follower

pytestmark = pytest.mark.timeout(240)


def _bal(fork, proxy, token):
    return (erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(proxy).call(),
            erc1155(fork.w3, fork.world.ctf).functions.balanceOf(proxy, token).call())


def _k(fill):
    from copytrade_cli.supervisor.runner import signal_key

    return signal_key(fill)


def _jobs_for(fork, proxy):
    return [j for j in fork.state.list_jobs(limit=10_000) if j["follower"].lower() == proxy.lower()]


def test_buy_copied_for_two_followers_in_both_flows(fork):
    clear_follows(fork)
    p_std, p_buf = new_follower(fork), new_follower(fork)
    add_follow(fork.state, follower=p_std, leader=SEED_LEADER, sizing="fixed", amount="10", flow="standard")
    add_follow(fork.state, follower=p_buf, leader=SEED_LEADER, sizing="proportional", amount="0.25", flow="buffer")
    token = int(fork.world.market(0).token_id("Yes"))
    b_std, b_buf = _bal(fork, p_std, token), _bal(fork, p_buf, token)
    sup = RunningSupervisor(fork)
    try:
        res = leader_trade(fork.w3, fork.world, side="BUY", usd=20.0, price="0.5")
        assert sup.wait(lambda: all(j["status"] == "complete" for j in _jobs_for(fork, p_std) + _jobs_for(fork, p_buf))
                        and len(_jobs_for(fork, p_std) + _jobs_for(fork, p_buf)) == 2
                        and not fork.state.open_debts())
    finally:
        sup.stop()
    a_std, a_buf = _bal(fork, p_std, token), _bal(fork, p_buf, token)
    # Standard: 10 USD fixed; proportional: 0.25 x the leader's 20 USD notional = 5 USD (repaid to the worker).
    assert b_std[0] - a_std[0] == 10_000_000
    assert b_buf[0] - a_buf[0] == 5_000_000
    assert a_std[1] > b_std[1] and a_buf[1] > b_buf[1]
    # same price for both: shares per USD equal up to one micro-share of rounding
    assert abs(Decimal(a_std[1] - b_std[1]) / 10 - Decimal(a_buf[1] - b_buf[1]) / 5) <= 1
    jobs = _jobs_for(fork, p_std) + _jobs_for(fork, p_buf)
    assert {j["fill_key"] for j in jobs} == {_k(res.fills[0])}
    steps = [s["step"] for j in jobs for s in fork.state.steps(j["group_id"])]
    assert {"Pull Funds", "Place Order", "Push", "Check Buffer", "Reimburse"} <= set(steps)
    assert any("Job Complete" in l for l in sup.lines) and any("SIGNAL DETECTED" in l for l in sup.lines)


def test_sell_copied_proportionally(fork):
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, sizing="fixed", amount="10", flow="standard")
    token = int(fork.world.market(1).token_id("Yes"))
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, fork.world, market_index=1, side="BUY", usd=10.0, price="0.5")
        assert sup.wait(lambda: [j["status"] for j in _jobs_for(fork, p)] == ["complete"])
        usdc0, held = _bal(fork, p, token)
        leader_before = erc1155(fork.w3, fork.world.ctf).functions.balanceOf(SEED_LEADER, token).call()
        # Half the leader's position: the follower's proportional sell stays above the market's minimum size
        # (a copy under it is skipped: tests/faults/test_settlement_faults.py).
        sold = leader_trade(fork.w3, fork.world, market_index=1, side="SELL", usd=leader_before / 4e6, price="0.5")
        sold_shares = sold.fills[0].shares_micro
        assert sup.wait(lambda: sum(j["status"] == "complete" for j in _jobs_for(fork, p)) == 2)
    finally:
        sup.stop()
    usdc1, held1 = _bal(fork, p, token)
    expected = held * sold_shares // leader_before
    expected -= expected % 10_000
    assert held - held1 == expected
    assert usdc1 > usdc0  # proceeds came back to the proxy


def test_batch_one_tx_gives_one_job_per_fill_per_follower(fork):
    clear_follows(fork)
    p1, p2 = new_follower(fork), new_follower(fork)
    add_follow(fork.state, follower=p1, leader=SEED_LEADER, amount="2")
    add_follow(fork.state, follower=p2, leader=SEED_LEADER, amount="3")
    sup = RunningSupervisor(fork)
    try:
        res = leader_batch(fork.w3, fork.world, count=3, usd=4.0)
        assert len({f.key for f in res.fills}) == 3 and len(res.tx_hashes or [res.tx_hash]) == 1
        assert sup.wait(lambda: len(_jobs_for(fork, p1)) == 3 and len(_jobs_for(fork, p2)) == 3
                        and all(j["status"] == "complete" for j in _jobs_for(fork, p1) + _jobs_for(fork, p2)))
    finally:
        sup.stop()
    for p in (p1, p2):
        assert {j["fill_key"] for j in _jobs_for(fork, p)} == {_k(f) for f in res.fills}


def test_same_fill_on_every_channel_executes_once(fork):
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, amount="3")
    token = int(fork.world.market(0).token_id("Yes"))
    before = _bal(fork, p, token)
    sup = RunningSupervisor(fork, channels=("mempool", "logs", "activity", "data_api"), data_api_poll_s=0.3)
    try:
        res = leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5")
        key = _k(res.fills[0])
        ok = sup.wait(lambda: len((fork.state.get_signal(key) or {}).get("channels", "").split(",")) >= 3, 30)
        assert ok, (fork.state.get_signal(key), [(c.name_, c.seen, c.errors, c.connected) for c in sup.sup.channels])
        ok = sup.wait(lambda: [j["status"] for j in _jobs_for(fork, p)] == ["complete"])
        assert ok, "\n".join([str([(j["status"], j["reason"]) for j in _jobs_for(fork, p)]),
                               str([(g["stage"], g["status"], g["error"]) for g in fork.state.list_groups(2)]),
                               *sup.lines[-8:]])
        time.sleep(1.0)
    finally:
        sup.stop()
    assert len(_jobs_for(fork, p)) == 1
    assert before[0] - _bal(fork, p, token)[0] == 3_000_000


def test_cap_never_exceeded_under_50_concurrent_fills(fork):
    from copytrade_cli.polymarket.fills import LeaderFill

    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, amount="1")
    settings = make_settings(fork.settings.home, COPY_TRADING_WALLET_DAILY_CAP_USD="5")
    token = fork.world.market(2).token_id("Yes")
    before = _bal(fork, p, int(token))[0]
    sup = RunningSupervisor(fork, settings=settings, channels=())
    fills = [LeaderFill(leader=SEED_LEADER, tx_hash="0x" + f"{i:064x}", token_id=token, side="BUY",
                        shares_micro=2_000_000, usd_micro=1_000_000, price=Decimal("0.5"), source="test")
             for i in range(1, 51)]
    try:
        threads = [threading.Thread(target=sup.sup.on_fill, args=(f,)) for f in fills]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs = _jobs_for(fork, p)
        assert len(jobs) == 50
        assert sum(j["status"] != "skipped" for j in jobs) == 5
        assert all("cap" in (j["reason"] or "") for j in jobs if j["status"] == "skipped")
        assert sup.wait(lambda: sum(j["status"] == "complete" for j in _jobs_for(fork, p)) == 5)
    finally:
        sup.stop()
    assert before - _bal(fork, p, int(token))[0] == 5_000_000


def test_skipped_copy_says_why(fork):
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, amount="2", side_filter="SELL")
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.0, price="0.5")
        assert sup.wait(lambda: len(_jobs_for(fork, p)) == 1)
    finally:
        sup.stop()
    (job,) = _jobs_for(fork, p)
    assert job["status"] == "skipped" and job["reason"] == "side filter SELL excludes a BUY"


def test_log_channel_follows_new_heads_by_subscription(fork):
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, amount="2")
    sup = RunningSupervisor(fork, channels=("logs",))
    try:
        (ch,) = sup.sup.channels
        assert sup.wait(lambda: ch.mode == "subscription", 10)
        # chain timestamps are whole seconds: a fill in the very second the follow was created is not copied
        time.sleep(max(0.0, 1.05 - (time.time() - int(time.time()))))
        res = leader_trade(fork.w3, fork.world, side="BUY", usd=4.0, price="0.5")
        assert sup.wait(lambda: [j["status"] for j in _jobs_for(fork, p)] == ["complete"])
    finally:
        sup.stop()
    sig = fork.state.get_signal(_k(res.fills[0]))
    assert sig["channel"] == "log_v2"
