"""The supervisor copies through deposit-wallet workers on the strict fork (planted factory, local relayer, fleet
set up by `fork up`): the order is type 3 from the worker's wallet, the settlement's `OrderFilled` for our order
names that wallet (an address with code) as maker, and the follower's chain balances moved by what the journal
says, the taker fee included."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from copytrade_cli.chain.proxies import erc20, erc1155
from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.polymarket.fills import ORDER_FILLED_V2_TOPIC
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from .conftest import RunningSupervisor, clear_follows, new_follower

pytestmark = pytest.mark.timeout(240)
MICRO = 10**6


KINDS = {"fine tick, crypto fee": lambda m: m.tick_size == "0.001" and m.fee_rate > 0 and not m.tick_changes,
         "neg-risk, politics fee": lambda m: m.neg_risk and m.fee_rate > 0}


@pytest.mark.parametrize("kind", list(KINDS))
def test_copy_is_made_by_the_workers_deposit_wallet(fork, kind):
    world = fork.world
    if not world.deposit_wallet_factory:
        pytest.skip("this fork is planted without deposit wallets (workers trade from their signer)")
    market = next((m for m in world.markets if KINDS[kind](m)), None)
    if market is None:
        pytest.skip(f"no {kind} market planted")
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, sizing="fixed", amount="10", flow="standard")
    index = world.markets.index(market)
    token = int(market.token_id("Yes"))
    coll, ctf = erc20(fork.w3, world.exchange_collateral), erc1155(fork.w3, world.ctf)
    usd0, tok0 = coll.functions.balanceOf(p).call(), ctf.functions.balanceOf(p, token).call()
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, world, market_index=index, side="BUY", usd=20.0, price="0.5")
        mine = lambda: [j for j in fork.state.list_jobs(limit=1000) if j["follower"].lower() == p.lower()]  # noqa: E731
        assert sup.wait(lambda: [j["status"] for j in mine()] == ["complete"], 120), \
            [(j["status"], j["reason"], [(s["step"], s["status"], s["detail"]) for s in fork.state.steps(j["group_id"])]
              if j["group_id"] else None) for j in mine()]
    finally:
        sup.stop()
    (job,) = [j for j in fork.state.list_jobs(limit=1000) if j["follower"].lower() == p.lower()]
    g = fork.state.get_group(job["group_id"])
    info = json.loads(g["order_json"])
    wire = info["wire"]["order"]
    assert wire["signatureType"] == 3 and wire["maker"] == wire["signer"] != g["worker"]
    wallet = wire["maker"]
    assert len(fork.w3.eth.get_code(wallet)) > 0, "the maker is a deployed deposit wallet"
    makers = []
    for h in info["settle_txs"]:
        for lg in fork.w3.eth.get_transaction_receipt(h)["logs"]:
            if lg["topics"][0].hex().removeprefix("0x") == ORDER_FILLED_V2_TOPIC.removeprefix("0x") and \
                    "0x" + lg["topics"][1].hex().removeprefix("0x") == g["order_id"].lower():
                makers.append("0x" + lg["topics"][2].hex()[-40:])
    assert makers and {m.lower() for m in makers} == {wallet.lower()}, makers
    # chain balances = the journal: pUSD down by what the copy cost (fee included, at most the 10 USD), tokens up
    usd1, tok1 = coll.functions.balanceOf(p).call(), ctf.functions.balanceOf(p, token).call()
    assert usd0 - usd1 == int(Decimal(job["usd"]) * MICRO) <= 10 * MICRO
    assert tok1 - tok0 == int(Decimal(job["shares"]) * MICRO) > 0
    assert info["fee_micro"] > 0 and g["spent_micro"] == usd0 - usd1  # the taker fee is in what the follower paid
    assert info["rules"]["neg_risk"] == market.neg_risk and info["rules"]["tick"] == market.tick_size
    if market.neg_risk:
        assert fork.w3.eth.get_transaction_receipt(info["settle_txs"][0])["to"] == world.neg_risk_exchange
