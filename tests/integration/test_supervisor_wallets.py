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


def test_copy_is_made_by_the_workers_deposit_wallet(fork):
    world = fork.world
    if not world.deposit_wallet_factory:
        pytest.skip("this fork is planted without deposit wallets (workers trade from their signer)")
    clear_follows(fork)
    p = new_follower(fork)
    add_follow(fork.state, follower=p, leader=SEED_LEADER, sizing="fixed", amount="10", flow="standard")
    market = next(m for m in world.markets if m.fee_rate > 0) if any(m.fee_rate > 0 for m in world.markets) \
        else world.market(0)
    index = world.markets.index(market)
    token = int(market.token_id("Yes"))
    coll, ctf = erc20(fork.w3, world.exchange_collateral), erc1155(fork.w3, world.ctf)
    usd0, tok0 = coll.functions.balanceOf(p).call(), ctf.functions.balanceOf(p, token).call()
    sup = RunningSupervisor(fork)
    try:
        leader_trade(fork.w3, world, market_index=index, side="BUY", usd=20.0, price="0.5")
        assert sup.wait(lambda: [j["status"] for j in fork.state.list_jobs(limit=1000)
                                 if j["follower"].lower() == p.lower()] == ["complete"], 120)
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
    if market.fee_rate > 0:
        assert info.get("fee_micro", 0) > 0 and g["spent_micro"] == usd0 - usd1
