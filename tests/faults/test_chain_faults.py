"""Chain-side faults with a running supervisor, each checked on chain balances and in the journal:
the node unreachable for ~10 s (SIGSTOP/SIGCONT of our own anvil, by PID), one of two RPC endpoints dead
(at start, and dying mid-run: failover), a worker out of gas (refuelled, group retried), a nonce gap (filled)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from ..integration.conftest import RunningSupervisor, clear_follows, fork, make_settings, new_follower  # noqa: F401
from .ledger import balances, check_once, injected, jobs_for
from .tools import FaultProxy, setup_follow

pytestmark = [pytest.mark.timeout(240)]


def _anvil_pids(fork) -> list[int]:
    """The node process `fork up` recorded (the npm wrapper) and its children (the anvil binary)."""
    pid = fork.state.get_node().pid
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


@pytest.mark.slow
def test_node_unreachable_for_10s_mid_flow(fork):
    proxy, token, before = setup_follow(fork)
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    stopped: list[int] = []
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        # freeze the node right away: detection, decision or execution is in flight
        for p in _anvil_pids(fork):
            os.kill(p, signal.SIGSTOP)
            stopped.append(p)
        injected("node unreachable 10 s")
        time.sleep(10)
    finally:
        for p in stopped:
            os.kill(p, signal.SIGCONT)
    try:
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 90), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        assert sup.thread.is_alive()
    finally:
        sup.stop()
    check_once(fork, proxy, token, before, expect="complete")


def _failover_chain(fork, urls):
    """The fork's chain context over `urls` in failover order. NOTE: built by hand: `connect_network` refuses any
    endpoint on polygon:local but the recorded node (tests/faults/test_attacks_local.py), and these tests need a
    second, killable endpoint in front of it."""
    from copytrade_cli.chain.network import ChainContext
    from copytrade_cli.chain.rpc import connect_checked
    from copytrade_cli.runbook.fork import LOCAL_NETWORK

    w3 = connect_checked(urls, expect_chain_id=137)
    ctx = ChainContext(network=LOCAL_NETWORK, chain_id=137, is_local=True, w3=w3, rpc_url=w3.provider.endpoint_uri,
                       world=fork.world)
    ctx._settings = fork.settings
    return ctx


def test_rpc_endpoint_dead_at_start_is_skipped(fork):
    from copytrade_cli.chain.node import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    chain = _failover_chain(fork, [dead, fork.chain.rpc_url])
    injected("RPC endpoint dead at start")
    assert chain.rpc_url == fork.chain.rpc_url
    assert dead in chain.w3.provider.urls  # kept for failover, tried after the live one
    assert chain.w3.eth.block_number > 0


@pytest.mark.slow
def test_rpc_endpoint_dies_mid_run_fails_over(fork):
    proxy, token, before = setup_follow(fork, amount="2")
    fwd = FaultProxy(fork.chain.rpc_url)
    s = make_settings(fork.settings.home)
    chain = _failover_chain(fork, [fwd.url, fork.chain.rpc_url])
    assert chain.rpc_url == fwd.url
    real_chain = fork.chain
    fork.chain = chain  # RunningSupervisor uses fork.chain
    try:
        sup = RunningSupervisor(fork, settings=s, channels=("mempool", "logs"))
    finally:
        fork.chain = real_chain
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.0, price="0.5", pending_ms=0)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60)
        assert fwd.calls > 0, "the first endpoint was in use"
        fwd.kill()
        injected("RPC endpoint died mid-run")
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.2, price="0.5", pending_ms=0)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"] * 2, 90), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        assert chain.w3.provider.failovers >= 1 or str(chain.w3.provider.endpoint_uri) != fwd.url
    finally:
        sup.stop()
    check_once(fork, proxy, token, before, expect="complete")


@pytest.mark.slow
def test_worker_out_of_gas_is_refuelled_and_retried(fork):
    from copytrade_cli.chain.cheats import Cheats

    proxy, token, before = setup_follow(fork, amount="2")
    s = make_settings(fork.settings.home, SUPERVISOR_WORKER_POOL_SIZE="1")
    sup = RunningSupervisor(fork, settings=s, channels=("mempool", "logs"))
    try:
        worker = sup.sup.fleet.workers[0].address
        Cheats(fork.w3).set_balance(worker, 0)
        injected("worker out of gas")
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.0, price="0.5", pending_ms=0)
        ok = sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60)
        assert ok, ([(j["status"], j["reason"]) for j in jobs_for(fork, proxy)], sup.lines[-6:])
        assert any("refuelled" in line for line in sup.lines), sup.lines[-10:]
        assert fork.w3.eth.get_balance(worker) > 0
    finally:
        sup.stop()
    check_once(fork, proxy, token, before, expect="complete")


@pytest.mark.slow
def test_nonce_gap_is_filled(fork):
    proxy, token, before = setup_follow(fork, amount="2")
    s = make_settings(fork.settings.home, SUPERVISOR_WORKER_POOL_SIZE="1")
    sup = RunningSupervisor(fork, settings=s, channels=("mempool", "logs"))
    try:
        w = sup.sup.fleet.workers[0]
        sup.sup.flow_ctx.stuck_after_s = 1.0
        n0 = fork.w3.eth.get_transaction_count(w.address, "pending")
        w.lane._nonce = n0 + 1  # nonce n0 never reaches the node: everything after it would wait forever
        injected("nonce gap")
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.0, price="0.5", pending_ms=0)
        ok = sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 90)
        assert ok, ([(j["status"], j["reason"]) for j in jobs_for(fork, proxy)], sup.lines[-6:])
        assert fork.w3.eth.get_transaction_count(w.address, "latest") >= n0 + 3  # plug + pull + push
    finally:
        sup.stop()
    check_once(fork, proxy, token, before, expect="complete")


@pytest.mark.slow
def test_dry_proxy_at_pull_time_costs_only_its_own_copy(fork):
    """A Smart Buffer group whose worker float is short falls back to a Standard pull; one of its proxies is
    dry (Smart Buffer decisions read no balance): that leg is skipped with the reason, the others are copied
    (before, the whole batched pull reverted and every follower's copy failed)."""
    from copytrade_cli.chain.cheats import Cheats
    from copytrade_cli.chain.proxies import erc20

    clear_follows(fork)
    funded, dry = new_follower(fork), new_follower(fork, usdc=0)
    for p in (funded, dry):
        add_follow(fork.state, follower=p, leader=SEED_LEADER, amount="2", flow="buffer")
    token = int(fork.world.market(0).token_id("Yes"))
    before = {p: balances(fork, p, token) for p in (funded, dry)}
    time.sleep(1.0 - time.time() % 1.0 + 0.05)
    s = make_settings(fork.settings.home, SUPERVISOR_WORKER_POOL_SIZE="1")
    sup = RunningSupervisor(fork, settings=s, channels=("mempool", "logs"))
    usdc = erc20(fork.w3, fork.world.exchange_collateral)
    worker = sup.sup.fleet.workers[0].wallet  # the float lives in the worker's deposit wallet
    float0 = usdc.functions.balanceOf(worker).call()
    cheats = Cheats(fork.w3)
    cheats.set_balance(worker, 10**18)  # gas for the impersonated wallet contract's own transfer
    cheats.impersonate(worker)
    try:
        usdc.functions.transfer(fork.world.whale, float0).transact({"from": worker})  # float gone
        injected("dry proxy at pull time (float short: Standard fallback)")
        leader_trade(fork.w3, fork.world, side="BUY", usd=6.0, price="0.5", pending_ms=0)
        ok = sup.wait(lambda: sorted(j["status"] for p in (funded, dry) for j in jobs_for(fork, p))
                      == ["complete", "skipped"], 60)
        assert ok, [(j["status"], j["reason"]) for p in (funded, dry) for j in jobs_for(fork, p)]
    finally:
        sup.stop()
        cheats.stop_impersonating(worker)
        cheats.impersonate(fork.world.whale)
        usdc.functions.transfer(worker, float0).transact({"from": fork.world.whale})
        cheats.stop_impersonating(fork.world.whale)
    check_once(fork, funded, token, before[funded], expect="complete")
    (job,) = check_once(fork, dry, token, before[dry], expect="skipped")
    assert "at pull time" in job["reason"], job["reason"]
