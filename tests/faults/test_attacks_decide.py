"""Attacks on the decision side (#15 items 5, 6a, 9b) on a real fork (anvil + planted Polymarket + local CLOB):
a forged huge SELL from a leader with no prior position, SELLs above max trade and over the daily cap through the
log channel, and `follow add` with a follower that is not a proxy of a trusted factory. Outcomes asserted on
chain (positions) and in state (job rows, exit codes, the exact line). Listed in docs/faults.md."""
from __future__ import annotations

import os
from decimal import Decimal

import pytest
from eth_account import Account
from typer.testing import CliRunner

from copytrade_cli.chain.proxies import erc1155
from copytrade_cli.cli.main import app
from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.polymarket.fills import LeaderFill
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from ..integration.conftest import RunningSupervisor, clear_follows, fork, make_settings, new_follower  # noqa: F401

pytestmark = [pytest.mark.timeout(300)]

MARKET = 2  # a market no other test of this module trades


def _position(fork, proxy, token: int) -> int:
    return erc1155(fork.w3, fork.world.ctf).functions.balanceOf(proxy, token).call()


def _jobs(fork, proxy, leader: str | None = None):
    return [j for j in fork.state.list_jobs(limit=10_000) if j["follower"].lower() == proxy.lower()
            and (leader is None or j["leader"].lower() == leader.lower())]


@pytest.fixture(scope="module")
def holder(fork):
    """A follower of the seed leader holding ~20 shares of MARKET's Yes, bought by copying a leader BUY."""
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, sizing="fixed", amount="10")
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, fork.world, market_index=MARKET, side="BUY", usd=10.0, price="0.5")
        assert sup.wait(lambda: [j["status"] for j in _jobs(fork, p)] == ["complete"])
    finally:
        sup.stop()
    token = int(fork.world.market(MARKET).token_id("Yes"))
    assert _position(fork, p, token) > 10 * 10**6
    return p, token


@pytest.mark.parametrize("mined", [True, False], ids=["mined-claim", "pending-claim"])
def test_forged_huge_sell_from_a_leader_that_never_held_sells_nothing(fork, holder, mined):
    """A 1,000,000-share SELL by a leader that held nothing before it (mined, or pending in the mempool):
    before the fix the fraction became 1 and every follower sold its whole position at ~0.01."""
    p, token = holder
    stranger = Account.create().address  # never held anything on this fork
    clear_follows(fork)
    add_follow(fork.state, follower=p, leader=stranger)
    held = _position(fork, p, token)
    sup = RunningSupervisor(fork, channels=())
    try:
        fill = LeaderFill(leader=stranger, tx_hash="0x" + os.urandom(32).hex(), token_id=str(token), side="SELL",
                          shares_micro=10**12, usd_micro=10**10, price=Decimal("0.01"),
                          source="log_v2" if mined else "mempool",
                          block_number=fork.w3.eth.block_number if mined else None, log_index=0 if mined else None)
        sup.sup.on_fill(fill)
        assert sup.wait(lambda: any(j["leader"].lower() == stranger.lower() for j in _jobs(fork, p)))
        sup.wait(lambda: False, timeout=2.0)  # anything queued would have started by now
    finally:
        sup.stop()
    (job,) = [j for j in _jobs(fork, p) if j["leader"].lower() == stranger.lower()]
    assert job["status"] == "skipped"
    assert job["reason"] == "leader held no position before this sell on record; not copying"
    assert _position(fork, p, token) == held  # nothing sold, on chain


def test_sell_above_max_trade_is_cut_and_counted_against_the_daily_cap(fork, holder):
    """Through the log channel: a leader SELL of 60% of its position -> the follower's proportional SELL is cut to
    COPY_TRADING_MAX_TRADE_USD at its limit price and reserved against the wallet's daily cap (3 USD); the next
    SELL (another ~2 USD at its limit) would pass the cap and is skipped, the position untouched."""
    p, token = holder
    clear_follows(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, sizing="fixed", amount="10")
    settings = make_settings(fork.settings.home, COPY_TRADING_MAX_TRADE_USD="2",
                             COPY_TRADING_WALLET_DAILY_CAP_USD="3")
    ctf = erc1155(fork.w3, fork.world.ctf)
    held0 = _position(fork, p, token)
    sup = RunningSupervisor(fork, settings=settings)
    try:
        leader_has = ctf.functions.balanceOf(SEED_LEADER, token).call()
        leader_trade(fork.w3, fork.world, market_index=MARKET, side="SELL",
                     usd=float(Decimal(leader_has) * Decimal("0.6") / 10**6 * Decimal("0.5")), price="0.5")
        assert sup.wait(lambda: sum(j["side"] == "SELL" and j["status"] == "complete"
                                    for j in _jobs(fork, p, SEED_LEADER)) == 1)
        held1 = _position(fork, p, token)
        leader_has = ctf.functions.balanceOf(SEED_LEADER, token).call()
        leader_trade(fork.w3, fork.world, market_index=MARKET, side="SELL",
                     usd=float(Decimal(leader_has) * Decimal("0.5") / 10**6 * Decimal("0.5")), price="0.5")
        assert sup.wait(lambda: sum(j["side"] == "SELL" for j in _jobs(fork, p, SEED_LEADER)) == 2)
        sup.wait(lambda: False, timeout=2.0)
    finally:
        sup.stop()
    # limit = 0.5 x (1 - 0.05) -> 0.48; 2 USD / 0.48 = 4.1666 shares -> 4.16 (without the cut: ~60% of 20 shares)
    assert held0 - held1 == 4_160_000
    sells = sorted((j for j in _jobs(fork, p, SEED_LEADER) if j["side"] == "SELL"), key=lambda j: j["id"])
    assert sells[0]["status"] == "complete" and Decimal(sells[0]["shares"]) == Decimal("4.16")
    assert sells[1]["status"] == "skipped" and sells[1]["reason"].startswith("wallet daily cap 3 USD reached"), \
        (sells, fork.state._q("select * from guardrail_ledger where wallet=?", [p.lower()]))
    assert _position(fork, p, token) == held1  # the second SELL sold nothing
    ledger = fork.state._q("select status, usd, job_key from guardrail_ledger where wallet=?", [p.lower()])
    # the first SELL only, committed at its proceeds (at least its 1.9968 USD reserved at the limit)
    assert [r["status"] for r in ledger] == ["committed"] and Decimal(ledger[0]["usd"]) >= Decimal("1.9968")
    assert ledger[0]["job_key"] == f"{sells[0]['fill_key']}:{p.lower()}"


def _follow_add(fork, follower: str):
    return CliRunner().invoke(app, ["follow", "add", "--follower", follower, "--leader", SEED_LEADER],
                              env={"COPYTRADE_HOME": str(fork.settings.home)})


def test_follow_add_refuses_an_eoa_and_a_contract_lying_about_its_factory(fork):
    from copytrade_cli.chain import contracts as C
    from copytrade_cli.chain.accounts import operator_account

    clear_follows(fork)
    factory = fork.report.addresses["ProxyFactory"]
    eoa = Account.create().address
    res = _follow_add(fork, eoa)
    assert res.exit_code == 2, res.output
    assert res.output == (f"Error: --follower {eoa} is not a proxy of a trusted ProxyFactory on polygon:local: it has "
                          "no code (an EOA?); create it with `copytrade proxy create --owner <owner>` (or name its "
                          "network with --network)\n")
    op = operator_account(fork.settings)
    liar = C.deploy(fork.w3, op, "MockAttacker")[0]
    mock = C.contract(fork.w3, "MockAttacker", liar)
    ZERO = "0x" + "00" * 20
    C.send_tx(fork.w3, op, mock.functions.configure(factory, ZERO, ZERO, b"").build_transaction({"from": op.address}))
    assert mock.functions.factory().call() == factory  # it claims the real factory
    res = _follow_add(fork, liar)
    assert res.exit_code == 2, res.output
    lines = res.output.splitlines()
    assert len(lines) == 1 and lines[0] == (
        f"Error: --follower {liar} is not a proxy of a trusted ProxyFactory on polygon:local: its factory {factory} "
        f"does not list it as the proxy of its owner {liar} (a contract claiming a factory it does not belong "
        "to); create it with `copytrade proxy create --owner <owner>` (or name its network with --network)")
    assert fork.state.list_follows() == []  # nothing written


def test_follow_add_verifies_an_unrecorded_real_proxy_on_chain(fork):
    clear_follows(fork)
    p = new_follower(fork, usdc=0)
    with fork.state._lock:
        fork.state.db.execute("delete from proxies where lower(address)=lower(?)", [p])
    assert fork.state.get_proxy("polygon:local", p) is None
    res = _follow_add(fork, p)
    assert res.exit_code == 0, res.output
    assert [f.follower for f in fork.state.list_follows()] == [p]
