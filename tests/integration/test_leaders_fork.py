"""Issue #17 on a real fork: a fresh leader trades a scripted history (a win, a loss, sells, a resolution and its
redeem) while the real supervisor copies it; `leaders report` and `backtest` read the local Data API v2 + Gamma
and are checked against hand-computed values; the zero-latency, fee-free backtest over the CLOB's book matches
the on-chain outcome of the real copies to 1e-6; `supervise --dry-run` journals copies with no transaction and
no order.

The market resolves through the CTF's `reportPayouts`, sent by the oracle (dev account 0, the planted conditions'
oracle), and the leader redeems with `redeemPositions`: the local world has no resolution service of its own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.chain.proxies import erc20, erc1155
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.localworld.plant import fund_collateral
from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.localworld.world import DEV_KEYS
from copytrade_cli.supervisor.configs import add_follow

from .conftest import RunningSupervisor, clear_follows, new_follower

pytestmark = pytest.mark.timeout(420)
ROOT = Path(__file__).resolve().parents[2]
LEADER_KEY = DEV_KEYS[8]  # a fresh leader: no planted inventory, so its history is its whole position
LEADER = Account.from_key(LEADER_KEY).address
MAX = 2**256 - 1
D = Decimal


def _send(fork, key, contract, fn, *args, gas=400_000):
    lane = TxLane(fork.w3, Account.from_key(key), chain_id=fork.world.chain_id)
    h = lane.send({"to": contract.address, "data": contract.encode_abi(fn, args=list(args))}, gas=gas)
    rc = wait_receipt(fork.w3, h)
    assert rc["status"] == 1, f"{fn} reverted"
    return h


def _collateral(fork):
    """What the supervisor's proxies hold and copies spend (`chain_contracts`, as the supervisor reads it)."""
    from copytrade_cli.polymarket.addresses import chain_contracts

    return chain_contracts(fork.chain.chain_id, fork.world, fork.settings).collateral


def _ctf(fork):
    abi = [{"type": "function", "name": n, "stateMutability": "nonpayable", "inputs": i, "outputs": []} for n, i in (
        ("setApprovalForAll", [{"name": "o", "type": "address"}, {"name": "a", "type": "bool"}]),
        ("reportPayouts", [{"name": "q", "type": "bytes32"}, {"name": "p", "type": "uint256[]"}]),
        ("redeemPositions", [{"name": "c", "type": "address"}, {"name": "pc", "type": "bytes32"},
                             {"name": "cid", "type": "bytes32"}, {"name": "s", "type": "uint256[]"}]))]
    return fork.w3.eth.contract(address=fork.world.ctf, abi=abi)


def _fund_leader(fork):
    w = fork.world
    fund_collateral(fork.w3, w, DEV_KEYS[0], LEADER, 500)
    coll = fork.w3.eth.contract(address=w.exchange_collateral, abi=[{
        "type": "function", "name": "approve", "stateMutability": "nonpayable", "outputs": [{"type": "bool"}],
        "inputs": [{"name": "s", "type": "address"}, {"name": "a", "type": "uint256"}]}])
    for spender in {w.exchange, w.ctf}:
        _send(fork, LEADER_KEY, coll, "approve", spender, MAX)
    _send(fork, LEADER_KEY, _ctf(fork), "setApprovalForAll", w.exchange, True)


def _cli(fork, *args):
    env = {**os.environ, "COPYTRADE_HOME": str(fork.settings.copytrade_home)}
    return subprocess.run([sys.executable, "-m", "copytrade_cli.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture(scope="module")
def scripted(fork):
    """The leader's history, copied by the real supervisor; returns what the checks need."""
    clear_follows(fork)
    _fund_leader(fork)
    proxy = new_follower(fork)
    follow = add_follow(fork.state, follower=proxy, leader=LEADER, sizing="fixed", amount="10", flow="standard")
    w = fork.world
    tokens = [int(w.market(i).token_id("Yes")) for i in range(3)]
    coll, ctf = erc20(fork.w3, _collateral(fork)), erc1155(fork.w3, w.ctf)
    before = (coll.functions.balanceOf(proxy).call(), [ctf.functions.balanceOf(proxy, t).call() for t in tokens])
    sup = RunningSupervisor(fork)

    def settled(n):
        return sup.wait(lambda: len([j for j in fork.state.list_jobs(limit=1000) if j["follower"] == proxy
                                     and j["status"] in ("complete", "failed", "refunded", "skipped")]) >= n, 90)

    try:
        # m0: BUY 20 @0.5, SELL 10 @0.55 (the copy's limit 0.53 is above the book's 0.49 bid: FOK refused), resolves YES
        # m1: BUY 20 @0.6, SELL 20 @0.5 (a loss); m2: BUY 20 @0.5, left open
        script = [dict(market_index=0, side="BUY", usd=10, price="0.5"),
                  dict(market_index=1, side="BUY", usd=12, price="0.6"),
                  dict(market_index=0, side="SELL", usd=5.5, price="0.55"),
                  dict(market_index=1, side="SELL", usd=10, price="0.5"),
                  dict(market_index=2, side="BUY", usd=10, price="0.5")]
        for n, step in enumerate(script, 1):
            leader_trade(fork.w3, w, leader=LEADER, **step)
            assert settled(n), f"copy {n} not settled: {fork.state.list_jobs(limit=10)}"
            time.sleep(1.1)  # one fill per second: the Data API's timestamps order them
    finally:
        sup.stop()
    m0 = w.market(0)
    _send(fork, DEV_KEYS[0], _ctf(fork), "reportPayouts", bytes.fromhex(m0.question_id[2:]), [1, 0])
    _send(fork, LEADER_KEY, _ctf(fork), "redeemPositions", w.exchange_collateral, b"\0" * 32,
          bytes.fromhex(m0.condition_id[2:]), [1, 2])
    after = (coll.functions.balanceOf(proxy).call(), [ctf.functions.balanceOf(proxy, t).call() for t in tokens])
    base = fork.state.get_node().clob_url
    deadline = time.time() + 20
    while time.time() < deadline:  # the feed follows the chain every ~100 ms
        got = httpx.get(base + "/v2/activity", params={"user": LEADER, "limit": 100}).json()
        if sum(1 for r in got["data"] if r["type"] == "TRADE") == 5 and any(r["type"] == "REDEEM" for r in got["data"]):
            break
        time.sleep(0.2)
    return {"proxy": proxy, "follow": follow, "tokens": tokens, "before": before, "after": after, "base": base}


def test_local_data_api_v2_and_gamma_parse_with_the_sdk(fork, scripted):
    from polymarket._internal.data_envelope import parse_data_page
    from polymarket.models.data import Trade
    from polymarket.models.data.activity import RedeemActivity, parse_activities

    base = scripted["base"]
    page = httpx.get(base + "/v2/trades", params={"user": LEADER, "limit": 2, "taker_only": "false"}).json()
    parsed = parse_data_page(page, Trade.parse_response_list)  # the SDK's own parser accepts our rows
    assert len(parsed.items) == 2 and parsed.server_next_cursor is not None
    assert parsed.items[0].timestamp >= parsed.items[1].timestamp  # newest first
    act = httpx.get(base + "/v2/activity", params={"user": LEADER, "limit": 1000}).json()
    items = parse_data_page(act, parse_activities).items
    redeems = [a for a in items if isinstance(a, RedeemActivity)]
    assert len(redeems) == 1 and redeems[0].amount == 10  # 10 YES shares left x payout 1
    bad = httpx.get(base + "/v2/trades", params={"user": LEADER, "limit": 1001})
    assert bad.status_code == 400 and bad.json() == {"error": "limit must be between 1 and 1000"}
    from polymarket.models.gamma import Market

    mk = httpx.get(base + "/markets/keyset", params=[("condition_ids", fork.world.market(0).condition_id)]).json()
    m = Market.parse_response(mk["markets"][0])
    assert m.state.closed is True and m.outcomes.yes.price == 1 and m.outcomes.no.price == 0


def test_leaders_report_against_the_scripted_history(fork, scripted, tmp_path):
    res = _cli(fork, "leaders", "report", LEADER, "--json", "--save", str(tmp_path / "h.json"))
    assert res.returncode == 0, res.stderr
    assert "downloading trades: page 1, 5 rows" in res.stderr  # progress while pages download
    r = json.loads(res.stdout)
    assert (r["trades"], r["buys"], r["sells"], r["redeems"]) == (5, 3, 2, 1)
    assert D(r["volume"]) == D("47.5")  # 10 + 12 + 5.5 + 10 + 10
    assert (D(r["spent"]), D(r["received"]), D(r["redeemed"])) == (32, D("15.5"), 10)
    # m0: +0.5 on the sell, +5 on the redeem; m1: 10 - 12 = -2; m2 open at the last traded price
    m2 = next(m for m in r["per_market"] if m["condition_id"] == fork.world.market(2).condition_id.lower())
    last = D(json.loads(httpx.get(scripted["base"] + "/markets/keyset", params=[
        ("condition_ids", fork.world.market(2).condition_id)]).json()["markets"][0]["outcomePrices"])[0])
    assert D(r["realized_pnl"]) == D("3.5") and D(m2["unrealized"]) == 20 * last - 10
    assert (r["markets_decided"], r["wins"], r["win_rate"]) == (2, 1, 0.5)
    assert r["maker_taker"]["taker"] == 5  # the leader's orders are the takers of its matches
    assert r["holding_s"]["round_trips"] == 2 and r["holding_s"]["open_positions"] == 1
    assert r["best_market"]["condition_id"] == fork.world.market(0).condition_id.lower()
    saved = json.loads((tmp_path / "h.json").read_text())
    assert len(saved["trades"]) == 5 and len(saved["taker_trades"]) == 5
    again = _cli(fork, "leaders", "report", LEADER, "--json", "--from-file", str(tmp_path / "h.json"))
    assert json.loads(again.stdout) == r


def test_backtest_matches_the_real_copies_on_chain(fork, scripted, tmp_path):
    res = _cli(fork, "backtest", "--leader", LEADER, "--follow", str(scripted["follow"].id), "--no-fees",
               "--book", "clob", "--json", "--save", str(tmp_path / "bt.json"), "--html", str(tmp_path / "bt.html"))
    assert res.returncode == 0, res.stderr
    r = json.loads(res.stdout)
    assert (r["copies"], r["skipped"]) == (4, 1)
    assert list(r["skips_by_reason"]) == ["book too thin within the price limit # (FOK): sold # of #"]
    # the real supervisor: 4 complete copies and the refused SELL
    jobs = [j for j in fork.state.list_jobs(limit=100) if j["follower"] == scripted["proxy"]]
    assert sorted(j["status"] for j in jobs).count("complete") == 4
    groups = [fork.state.get_group(j["group_id"]) for j in sorted(jobs, key=lambda j: j["id"])
              if j["status"] == "complete"]
    for g, cp in zip(groups, r["copy_list"]):
        assert g["side"] == cp["side"] and g["token_id"] == cp["token_id"]
        if g["side"] == "BUY":
            assert (g["spent_micro"], g["filled_shares"]) == (int(D(cp["usd"]) * 10**6), int(D(cp["shares"]) * 10**6))
        else:
            assert g["proceeds_micro"] == int(D(cp["usd"]) * 10**6)
    (c0, t0), (c1, t1) = scripted["before"], scripted["after"]
    onchain_cash = D(c1 - c0) / 10**6
    bt_cash = D(r["received"]) - D(r["spent"]) + D(r["redeemed"])
    # the follower did not redeem on chain: its YES of m0 (resolved YES) is worth 1 each, what the backtest redeemed
    held = {str(t): D(b - a) / 10**6 for t, a, b in zip(scripted["tokens"], t0, t1)}
    m0_yes = str(scripted["tokens"][0])
    assert abs(held[m0_yes] - D(r["redeemed"])) <= D("0.000001")
    assert abs((onchain_cash + held[m0_yes]) - bt_cash) <= D("0.000001")
    for tok, shares in r["positions"].items():  # what the backtest still holds is on the proxy
        assert abs(held[tok] - D(shares)) <= D("0.000001")
    assert (tmp_path / "bt.html").read_text().count("<svg") == 3


def test_supervise_dry_run_journals_copies_without_transactions_or_orders(fork, scripted):
    from copytrade_cli.chain.accounts import worker_accounts
    from copytrade_cli.supervisor.execute.dryrun import DryRunSupervisor, clob_url_for

    w3, base = fork.w3, scripted["base"]
    workers = [a.address for a in worker_accounts(fork.settings)]
    nonces = [w3.eth.get_transaction_count(a) for a in workers]
    stats0 = httpx.get(base + "/local/stats").json()
    proxy_before = erc20(w3, _collateral(fork)).functions.balanceOf(scripted["proxy"]).call()
    lines: list[str] = []
    sup = DryRunSupervisor(fork.settings, fork.state, fork.chain, channels=("mempool", "logs", "activity"),
                           clob_url=clob_url_for(fork.settings, fork.state, fork.chain), say=lines.append)
    sup.start()
    t = threading.Thread(target=sup.run, daemon=True)
    t.start()
    try:
        time.sleep(0.5)
        leader_trade(w3, fork.world, leader=LEADER, market_index=2, side="BUY", usd=10, price="0.5")
        deadline = time.time() + 30
        while time.time() < deadline and not fork.state.list_jobs(status="dry_run"):
            time.sleep(0.1)
        time.sleep(1.0)  # the other channels see the same fill: still one job
        # a SELL the book cannot take within the copy's limit (0.55 x 0.95 -> 0.53 > the 0.49 bid)
        leader_trade(w3, fork.world, leader=LEADER, market_index=2, side="SELL", usd=5.5, price="0.55")
        while time.time() < deadline + 30 and not fork.state.list_jobs(status="dry_run_skipped"):
            time.sleep(0.1)
    finally:
        sup.stop_event.set()
        t.join(15)
    dry = fork.state.list_jobs(status="dry_run")
    assert len(dry) == 1 and dry[0]["fill_key"].startswith("dryrun:") and dry[0]["follower"] == scripted["proxy"]
    # 10 USD at the book's best ask 0.51: the largest m with floor(m x 0.51) <= 10 USD is 19.607845 shares
    assert (D(dry[0]["usd"]), D(dry[0]["shares"]), D(dry[0]["price"])) == (10, D("19.607845"), D("0.51"))
    assert "nothing sent" in dry[0]["reason"]
    refused = fork.state.list_jobs(status="dry_run_skipped")
    assert len(refused) == 1 and refused[0]["side"] == "SELL" and refused[0]["reason"].startswith(
        "would not fill: book too thin within the price limit 0.53 (FOK)")
    assert [w3.eth.get_transaction_count(a) for a in workers] == nonces  # zero worker transactions
    stats1 = httpx.get(base + "/local/stats").json()
    assert (stats1["orders_known"], stats1["trades_known"]) == (stats0["orders_known"], stats0["trades_known"])
    assert erc20(w3, _collateral(fork)).functions.balanceOf(scripted["proxy"]).call() == proxy_before
    assert any("(dry run)" in ln for ln in lines)
    res = _cli(fork, "jobs", "list")
    assert res.returncode == 0 and "Dry-run copies, nothing executed (dry_run 1, dry_run_skipped 1)" in res.stdout
