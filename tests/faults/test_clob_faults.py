"""CLOB faults through a fault-injecting HTTP proxy (aiohttp) in front of the local CLOB, the supervisor
pointed at it with COPYTRADE_CLOB_URL: 5xx answers, a timeout after the order was accepted (reconciled by
querying, never re-posted), a FOK rejected on a thin book (refund); and a full queue (recorded drop)."""
from __future__ import annotations

import pytest

from copytrade_cli.localworld.trades import leader_batch, leader_trade

from ..integration.conftest import RunningSupervisor, fork, make_settings  # noqa: F401
from .ledger import check_once, injected, jobs_for, wait_settled
from .tools import FaultProxy, setup_follow

pytestmark = [pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def clob_proxy(fork):
    p = FaultProxy(fork.state.get_node().clob_url)
    yield p
    p.close()


def _sup(fork, clob_proxy, **env):
    s = make_settings(fork.settings.home, COPYTRADE_CLOB_URL=clob_proxy.url, **env)
    return RunningSupervisor(fork, settings=s, channels=("mempool", "logs"))


@pytest.mark.parametrize("flow", ["standard", "buffer"])
def test_clob_5xx_is_reconciled_and_refunded(fork, clob_proxy, flow):
    proxy, token, before = setup_follow(fork, flow)
    clob_proxy.mode = "5xx"
    posted0 = clob_proxy.posted
    sup = _sup(fork, clob_proxy)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("CLOB 5xx")
        want = "refunded" if flow == "standard" else "failed"
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == [want], 60), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        wait_settled(fork, [proxy])
    finally:
        clob_proxy.mode = "pass"
        sup.stop()
    assert clob_proxy.posted == posted0, "no order reached the CLOB"
    check_once(fork, proxy, token, before)


def test_clob_timeout_after_accepting_is_reconciled_never_reposted(fork, clob_proxy):
    proxy, token, before = setup_follow(fork, "standard")
    clob_proxy.mode = "timeout"
    posted0 = clob_proxy.posted
    sup = _sup(fork, clob_proxy)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("CLOB timeout after accepting")
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        steps = [(s["step"], s["status"]) for j in jobs_for(fork, proxy) for s in fork.state.steps(j["group_id"])]
        assert ("Place Order", "unknown") in steps and ("Place Order", "ok") in steps, steps
    finally:
        clob_proxy.mode = "pass"
        sup.stop()
    assert clob_proxy.posted - posted0 == 1, "the order was posted exactly once (reconciled by querying)"
    check_once(fork, proxy, token, before, expect="complete")


def test_fok_on_a_thin_book_is_refunded(fork, clob_proxy):
    # The follower accepts no slippage at all; the book's best ask is a tick above the leader's price.
    proxy, token, before = setup_follow(fork, "standard", max_slippage="0")
    sup = _sup(fork, clob_proxy)
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        injected("FOK rejected (thin book)")
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["refunded"], 60), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        steps = [(s["step"], s["status"]) for j in jobs_for(fork, proxy) for s in fork.state.steps(j["group_id"])]
        assert ("Place Order", "failed") in steps and ("Refund", "ok") in steps, steps
    finally:
        sup.stop()
    check_once(fork, proxy, token, before, expect="refunded")


def test_queue_full_is_a_recorded_drop(fork, clob_proxy):
    proxy, token, before = setup_follow(fork, "standard", amount="1")
    sup = _sup(fork, clob_proxy, SUPERVISOR_QUEUE_MAX_SIZE="1", SUPERVISOR_FANOUT_CONCURRENCY="1")
    try:
        leader_batch(fork.w3, fork.world, count=6, usd=2.0, pending_ms=300)  # six fills seen at once
        injected("queue full")
        assert sup.wait(lambda: len(jobs_for(fork, proxy)) == 6
                        and all(j["status"] in ("complete", "dropped") for j in jobs_for(fork, proxy)), 90), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        jobs = jobs_for(fork, proxy)
        dropped = [j for j in jobs if j["status"] == "dropped"]
        assert dropped, "with room for one group, some of six simultaneous fills must be dropped"
        assert all("queue full" in (j["reason"] or "") for j in dropped)
        assert sup.sup.metrics.drops == len(dropped)
        assert any("[TaskQueue] FULL" in line for line in sup.lines)
    finally:
        sup.stop()
    check_once(fork, proxy, token, before)
