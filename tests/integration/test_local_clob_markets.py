"""Every variety of planted market on the local CLOB, traded by a deposit wallet with the unmodified clients: a
neg-risk market settles on the neg-risk exchange, a 0.1 and a 0.001 tick, a minimum size above 5, a scheduled tick
change, taker fees by category — each rule refusing what live refuses, with live's text."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest
from polymarket.errors import RequestRejectedError
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2, OrderType
from py_clob_client_v2.exceptions import PolyApiException

from copytrade_cli.localworld.clob_server import ClobServerThread
from copytrade_cli.localworld.plant import plant_polymarket
from tests.conftest import DEV_KEYS

from .test_local_clob_wallets import fills_of, maker_of, make_worker, relayer_thread, sdk_client

pytestmark = pytest.mark.timeout(180)
MM_KEY, OPERATOR_KEY = DEV_KEYS[2], DEV_KEYS[3]


@pytest.fixture(scope="module")
def chain(anvil):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    world = plant_polymarket(w3, DEV_KEYS[0])  # every market variety
    yield w3, world
    w3.provider.make_request("evm_revert", [snap])


def by(world, **want):
    return next(m for m in world.markets if all(getattr(m, k) == v for k, v in want.items()))


@pytest.fixture(scope="module")
def server(chain, anvil):
    _w3, world = chain
    # The geopolitics market's tick changes 120 s in on the fork; here 2 s in, so the test sees it happen.
    m = by(world, category="geopolitics")
    fast = world.model_copy(update={"markets": [x.model_copy(update={"tick_changes": [(2, "0.001")]}) if x is m else x
                                                for x in world.markets]})
    with ClobServerThread(fast, anvil.url, operator_key=OPERATOR_KEY, market_maker_key=MM_KEY, levels=3,
                          level_size=200, confirm_delay_s=0.3) as srv:
        yield srv


@pytest.fixture(scope="module")
def relayer(chain, anvil):
    with relayer_thread(chain[1], anvil.url) as r:
        yield r


def _v2(server, owner, wallet):
    c = ClobClient(server.base_url, 137, key=owner.key.hex(), signature_type=3, funder=wallet)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


def _info(server, cid):
    with urllib.request.urlopen(f"{server.base_url}/clob-markets/{cid}") as r:
        return json.load(r)


def test_neg_risk_orders_are_signed_for_and_settle_on_the_neg_risk_exchange(chain, server, relayer, anvil):
    w3, world = chain
    m = by(world, neg_risk=True)
    assert world.neg_risk_exchange and _info(server, m.condition_id)["nr"] is True
    owner, wallet = make_worker(w3, world)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    resp = client.place_market_order(token_id=m.token_ids[0], side="BUY", amount="5", order_type="FAK")
    assert resp.ok, resp
    (tx,) = client.wait_for_order_fill_settlement(resp, timeout_s=20)
    fills = fills_of(w3, world, tx)
    assert {lg["address"] for lg in fills} == {world.neg_risk_exchange} and wallet in {maker_of(lg) for lg in fills}
    # The same order signed for the standard exchange does not verify on a neg-risk market.
    c = _v2(server, owner, wallet)
    wrong = c.builder.build_order(OrderArgsV2(token_id=m.token_ids[0], price=0.30, size=10, side="BUY"),
                                  CreateOrderOptions(tick_size="0.01", neg_risk=False))
    with pytest.raises(PolyApiException) as err:
        c.post_order(wrong, OrderType.GTC)
    assert err.value.error_msg["error"] == "invalid signature"


def test_a_coarse_tick_refuses_finer_prices(chain, server):
    w3, world = chain
    m = by(world, tick_size="0.1")
    assert _info(server, m.condition_id)["mts"] == 0.1
    owner, wallet = make_worker(w3, world, usdc=20)
    c = _v2(server, owner, wallet)
    fine = c.builder.build_order(OrderArgsV2(token_id=m.token_ids[0], price=0.35, size=10, side="BUY"),
                                 CreateOrderOptions(tick_size="0.01", neg_risk=False))
    with pytest.raises(PolyApiException) as err:
        c.post_order(fine, OrderType.GTC)
    assert err.value.error_msg["error"].endswith("is invalid. Price (0.35) breaks minimum tick size rule: 0.1")
    ok = c.create_and_post_order(OrderArgsV2(token_id=m.token_ids[0], price=0.3, size=10, side="BUY"))
    assert ok["status"] == "live"
    c.cancel_all()


def test_a_fine_tick_market_minimum_size_and_market_amount_precision(chain, server, relayer, anvil):
    w3, world = chain
    m = by(world, tick_size="0.001")
    assert m.min_order_size == 15 and _info(server, m.condition_id)["mos"] == 15
    owner, wallet = make_worker(w3, world)
    c = _v2(server, owner, wallet)
    with pytest.raises(PolyApiException) as err:
        c.create_and_post_order(OrderArgsV2(token_id=m.token_ids[0], price=0.405, size=10, side="BUY"))
    assert err.value.error_msg["error"].endswith("is invalid. Size (10) lower than the minimum: 15")
    assert c.create_and_post_order(OrderArgsV2(token_id=m.token_ids[0], price=0.405, size=15,
                                                side="BUY"))["status"] == "live"
    c.cancel_all()
    client = sdk_client(server, relayer, anvil, owner, wallet)
    # $9.98 at the 0.501 ask: the SDK signs a 5-decimal taker (19.92015) on this tick; live refuses it (#99).
    with pytest.raises(RequestRejectedError) as err:
        client.place_market_order(token_id=m.token_ids[0], side="BUY", amount="9.98", order_type="FAK")
    assert str(err.value) == ("invalid amounts, the market buy orders maker amount supports a max accuracy of 2 "
                              "decimals, taker amount a max of 4 decimals")
    resp = client.place_market_order(token_id=m.token_ids[0], side="BUY", amount="5.01", order_type="FAK")  # 10 sh
    assert resp.ok, resp
    assert client.wait_for_order_fill_settlement(resp, timeout_s=20)


def test_the_scheduled_tick_change_happens(chain, server):
    _w3, world = chain
    m = by(world, category="geopolitics")
    deadline = time.time() + 10
    while _info(server, m.condition_id)["mts"] != 0.001 and time.time() < deadline:
        time.sleep(0.2)
    assert _info(server, m.condition_id)["mts"] == 0.001
    with urllib.request.urlopen(f"{server.base_url}/book?token_id={m.token_ids[0]}") as r:
        assert json.load(r)["tick_size"] == "0.001"


def test_fees_follow_the_category(chain, server):
    _w3, world = chain
    fees = {m.category: _info(server, m.condition_id)["fd"]["r"] for m in world.markets}
    assert fees["crypto"] == 0.07 and fees["politics"] == 0.04 and fees["geopolitics"] == 0.0
