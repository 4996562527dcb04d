"""Settlement faults on the fork's local CLOB (its admin routes inject them): a trade RETRYING then CONFIRMED with
a new hash, a trade FAILED (Standard refunded, Smart Buffer released), a copy under the market order minimum, and a
tick change mid-run. Each ends with the proxies' chain balances matching their journal (0 duplicates, 0 losses)."""
from __future__ import annotations

import json

import httpx
import pytest

from copytrade_cli.localworld.trades import leader_trade

from ..integration.conftest import RunningSupervisor, fork  # noqa: F401
from .ledger import check_once, injected, jobs_for, wait_settled
from .tools import setup_follow

pytestmark = [pytest.mark.timeout(240)]


def _inject(fork, **faults) -> dict:
    """Clear the CLOB's injected faults, then queue these (the admin route applies `clear` last)."""
    _admin(fork, "/local/faults", {"clear": True})
    return _admin(fork, "/local/faults", faults)


def _admin(fork, path: str, body: dict) -> dict:
    url = fork.state.get_node().clob_url.rstrip("/") + path
    r = httpx.post(url, json=body, timeout=10)
    r.raise_for_status()
    return r.json()


def _steps(fork, proxy):
    return [(s["step"], s["status"], s["detail"] or "") for j in jobs_for(fork, proxy) if j["group_id"]
            for s in fork.state.steps(j["group_id"])]


def _group(fork, proxy) -> dict:
    return fork.state.get_group(jobs_for(fork, proxy)[0]["group_id"])


def test_retrying_then_confirmed_follows_the_new_hash(fork):
    proxy, token, before = setup_follow(fork, "standard")
    assert _inject(fork, retrying=1)["settlement_faults"] == ["RETRYING"]
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("trade RETRYING")
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 90), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        wait_settled(fork, [proxy])
    finally:
        _admin(fork, "/local/faults", {"clear": True})
        sup.stop()
    steps = _steps(fork, proxy)
    seen = " ".join(d for s, _st, d in steps if s == "Settlement")
    assert "RETRYING" in seen and "CONFIRMED" in seen, steps
    info = json.loads(_group(fork, proxy)["order_json"])
    (trade,) = info["trades"].values()
    assert trade["status"] == "CONFIRMED" and info["settle_txs"] == [trade["tx"]]
    receipt = fork.w3.eth.get_transaction_receipt(trade["tx"])
    assert receipt["status"] == 1  # the hash followed is the one that settled
    check_once(fork, proxy, token, before, expect="complete")


@pytest.mark.parametrize("flow", ["standard", "buffer"])
def test_failed_trade_is_refunded_or_released_once(fork, flow):
    proxy, token, before = setup_follow(fork, flow)
    assert _inject(fork, failed=1)["settlement_faults"] == ["FAILED"]
    sup = RunningSupervisor(fork)
    want = "refunded" if flow == "standard" else "failed"
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("trade FAILED")
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == [want], 90), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        wait_settled(fork, [proxy])
    finally:
        _admin(fork, "/local/faults", {"clear": True})
        sup.stop()
    steps = _steps(fork, proxy)
    assert [(s, st) for s, st, _d in steps if s == "Settlement"][-1] == ("Settlement", "failed"), steps
    assert sum(1 for s, st, _d in steps if s == "Refund" and st == "ok") == (1 if flow == "standard" else 0), steps
    assert _group(fork, proxy)["error"] == "trade FAILED: nothing filled"
    check_once(fork, proxy, token, before, expect=want)


def test_copy_under_the_market_order_minimum_is_skipped_with_the_reason(fork):
    proxy, token, before = setup_follow(fork, "standard", amount="0.6")
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("copy under the minimum")
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["skipped"], 60), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
    finally:
        sup.stop()
    (job,) = jobs_for(fork, proxy)
    assert "below the minimum of 1 USD for a market order" in job["reason"], job["reason"]
    assert not any(s == "Pull Funds" for s, _st, _d in _steps(fork, proxy))  # nothing moved
    check_once(fork, proxy, token, before, expect="skipped")


def test_tick_change_mid_run_signs_on_the_new_tick(fork):
    market = fork.world.market(0)
    proxy, token, before = setup_follow(fork, "standard")
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 90)
        first = json.loads(_group(fork, proxy)["order_json"])["rules"]["tick"]
        new_tick = "0.001" if first != "0.001" else "0.01"
        _admin(fork, "/local/tick-size", {"market": market.condition_id, "tick_size": new_tick})
        injected("tick change mid-run")
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        assert sup.wait(lambda: len(jobs_for(fork, proxy)) == 2 and all(
            j["status"] in ("complete", "refunded") for j in jobs_for(fork, proxy)), 90), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        wait_settled(fork, [proxy])
    finally:
        _admin(fork, "/local/tick-size", {"market": market.condition_id, "tick_size": market.tick_size})
        sup.stop()
    groups = [fork.state.get_group(j["group_id"]) for j in jobs_for(fork, proxy)]
    ticks = {json.loads(g["order_json"])["rules"]["tick"] for g in groups}
    assert ticks == {first, new_tick}, ticks  # the second order was signed for the new tick
    check_once(fork, proxy, token, before)
