"""The local CLOB against the UNMODIFIED py_clob_client_v2, on a real anvil with the planted Polymarket world.

Every fill is settled on chain by the planted exchange; balances and OrderFilled events are checked there. The trader
here is the seed leader, a plain EOA signing type 0: live refuses those makers ("maker address not allowed, please
use the deposit wallet flow", tested below), so these servers list it as grandfathered. The deposit-wallet flow
(type 3, both SDKs) is tests/integration/test_local_clob_wallets.py.
"""
from __future__ import annotations

import time

import pytest
from eth_account import Account
from eth_utils import keccak
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import (
    ApiCreds,
    AssetType,
    BalanceAllowanceParams,
    CreateOrderOptions,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderType,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException

from copytrade_cli.localworld.clob_orders import (
    ERR_BALANCE,
    ERR_FAK,
    ERR_FOK,
    ERR_SIGNATURE,
    ERR_VERSION,
)
from copytrade_cli.localworld.clob_server import ClobServerThread
from copytrade_cli.localworld.plant import plant_polymarket
from copytrade_cli.polymarket.addresses import CTF_ABI, ERC20_ABI
from tests.conftest import DEV_KEYS

TRADER_KEY = DEV_KEYS[1]  # the seed leader: planted with USDC, outcome tokens and approvals
MM_KEY, OPERATOR_KEY = DEV_KEYS[2], DEV_KEYS[3]
# Side servers settle with the planted trade operator (account 4), so their nonces never race the main server's.
SIDE_OPERATOR_KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
ORDER_FILLED = "0x" + keccak(
    text="OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)").hex()
LEVEL_SIZE = 1000
TRADER = Account.from_key(TRADER_KEY).address
GRANDFATHERED = (TRADER,)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def chain(anvil):
    """The session anvil, planted, restored to its prior state after this module."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    world = plant_polymarket(w3, DEV_KEYS[0], n_markets=2)
    yield w3, world
    w3.provider.make_request("evm_revert", [snap])


@pytest.fixture(scope="module")
def server(chain, anvil):
    _w3, world = chain
    srv = ClobServerThread(world, anvil.url, operator_key=OPERATOR_KEY, market_maker_key=MM_KEY,
                           levels=5, level_size=LEVEL_SIZE, grandfathered=GRANDFATHERED)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    c = ClobClient(server.base_url, 137, key=TRADER_KEY)
    c.set_api_creds(c.create_or_derive_api_key())
    return c


@pytest.fixture(scope="module")
def world(chain):
    return chain[1]


@pytest.fixture(scope="module")
def yes(world):
    return world.markets[0].token_ids[0]


def _balances(w3, world, who, token_id):
    usdc = w3.eth.contract(address=world.exchange_collateral, abi=ERC20_ABI)
    ctf = w3.eth.contract(address=world.ctf, abi=CTF_ABI)
    return usdc.functions.balanceOf(who).call(), ctf.functions.balanceOf(who, int(token_id)).call()


def _wait_status(c, trade_id, want="CONFIRMED", timeout=10.0) -> dict:
    deadline = time.time() + timeout
    while True:
        (trade,) = c.get_trades(TradeParams(id=trade_id))
        if trade["status"] == want or time.time() > deadline:
            return trade
        time.sleep(0.1)


def _api_error(exc_info) -> tuple[int, str]:
    exc = exc_info.value
    msg = exc.error_msg.get("error") if isinstance(exc.error_msg, dict) else exc.error_msg
    return exc.status_code, msg


def test_client_derives_creds_and_reads_the_book(server, yes):
    c = ClobClient(server.base_url, 137, key=TRADER_KEY)
    created = c.create_or_derive_api_key()
    assert c.derive_api_key() == created == c.create_api_key()
    assert c.create_api_key(nonce=1).api_key != created.api_key
    assert c.get_ok() == "OK" and isinstance(c.get_server_time(), int) and c.get_version() == 2
    assert c.get_tick_size(yes) == "0.01" and c.get_neg_risk(yes) is False
    book = c.get_order_book(yes)
    asks = [float(a["price"]) for a in book["asks"]]
    bids = [float(b["price"]) for b in book["bids"]]
    assert asks == sorted(asks, reverse=True) and asks[-1] == 0.51  # best ask last
    assert bids == sorted(bids) and bids[-1] == 0.49  # best bid last
    assert all(isinstance(a["size"], str) for a in book["asks"])
    assert c.get_order_book_hash(dict(book)) == book["hash"]
    assert c.get_midpoint(yes) == {"mid": "0.5"}
    assert c.get_order_books([{"token_id": yes}])[0]["asset_id"] == yes


def test_market_buy_fok_settles_on_chain(client, chain, yes):
    w3, world = chain
    me = client.get_address()
    usdc0, yes0 = _balances(w3, world, me, yes)
    mm_usdc0, mm_yes0 = _balances(w3, world, world.market_maker, yes)
    t0 = time.time()
    resp = client.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                               order_type=OrderType.FOK)
    assert time.time() - t0 < 10  # no 30 s trade polling: the hash came back with the order
    assert resp["success"] and resp["status"] == "matched" and resp["tradeIDs"]
    (tx,) = resp["transactionsHashes"]
    receipt = w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1
    fills = [lg for lg in receipt["logs"] if lg["address"] == world.exchange and "0x" + lg["topics"][0].hex() == ORDER_FILLED]
    assert len(fills) == 2  # the maker's fill and the taker's
    usdc1, yes1 = _balances(w3, world, me, yes)
    got = yes1 - yes0
    assert usdc0 - usdc1 == 5_000_000
    assert got == int(round(float(resp["takingAmount"]) * 1e6)) and got >= 5_000_000 / 0.51 - 1
    mm_usdc1, mm_yes1 = _balances(w3, world, world.market_maker, yes)
    assert (mm_usdc1 - mm_usdc0, mm_yes0 - mm_yes1) == (5_000_000, got)
    (trade,) = client.get_trades(TradeParams(id=resp["tradeIDs"][0]))
    assert trade["status"] == "MINED" and trade["transaction_hash"] == tx  # answered once the receipt was in
    trade = _wait_status(client, resp["tradeIDs"][0])
    assert trade["status"] == "CONFIRMED" and trade["transaction_hash"] == tx and trade["fee_rate_bps"] == "0"
    assert trade["taker_order_id"] == resp["orderID"] and trade["maker_orders"][0]["price"] == "0.51"


def test_market_sell_fok_hits_the_bids_on_chain(client, chain, yes):
    w3, world = chain
    me = client.get_address()
    usdc0, yes0 = _balances(w3, world, me, yes)
    resp = client.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=20, side="SELL"),
                                               order_type=OrderType.FOK)
    assert resp["status"] == "matched" and len(resp["transactionsHashes"]) == 1
    usdc1, yes1 = _balances(w3, world, me, yes)
    assert yes0 - yes1 == 20_000_000
    assert usdc1 - usdc0 == 20 * 490_000  # best bid 0.49


def test_walking_several_levels_and_the_book_replenishes(client, server, yes):
    before = client.get_order_book(yes)["asks"]
    amount = 0.51 * LEVEL_SIZE + 0.52 * 10  # the whole 0.51 level and a bit of 0.52
    resp = client.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=amount, side="BUY"),
                                               order_type=OrderType.FOK)
    assert resp["status"] == "matched"
    assert server.clob.stats.mm_requotes >= 1
    after = client.get_order_book(yes)["asks"]
    assert after[-1]["price"] == "0.51" and float(after[-1]["size"]) == LEVEL_SIZE  # re-quoted
    assert len(after) == len(before)


def test_tampered_signature_is_rejected(client, yes):
    order = client.create_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"))
    sig = bytearray(bytes.fromhex(order.signature[2:]))
    sig[10] ^= 0xFF
    order.signature = "0x" + sig.hex()
    with pytest.raises(PolyApiException) as err:
        client.post_order(order, OrderType.FOK)
    assert _api_error(err) == (400, ERR_SIGNATURE)


def test_wrong_tick_is_rejected(client, yes):
    # The client refuses a finer tick than the market's, so build the order with its builder directly.
    order = client.builder.build_order(OrderArgsV2(token_id=yes, price=0.555, size=10, side="BUY"),
                                       CreateOrderOptions(tick_size="0.001", neg_risk=False))
    with pytest.raises(PolyApiException) as err:
        client.post_order(order, OrderType.GTC)
    status, msg = _api_error(err)
    assert status == 400 and msg.endswith("is invalid. Price (0.555) breaks minimum tick size rule: 0.01")


def test_size_below_minimum_is_rejected(client, yes):
    with pytest.raises(PolyApiException) as err:
        client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=4, side="BUY"))
    status, msg = _api_error(err)
    assert status == 400 and msg.endswith("is invalid. Size (4) lower than the minimum: 5")


def test_unfillable_fok_is_killed(client, yes):
    with pytest.raises(PolyApiException) as err:
        client.create_and_post_market_order(
            MarketOrderArgsV2(token_id=yes, amount=2 * LEVEL_SIZE, side="BUY", price=0.51), order_type=OrderType.FOK)
    assert _api_error(err) == (400, ERR_FOK)


def test_fak_without_a_match_is_killed(client, yes):
    with pytest.raises(PolyApiException) as err:
        client.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY", price=0.30),
                                            order_type=OrderType.FAK)
    assert _api_error(err) == (400, ERR_FAK)


def test_gtd_orders_need_a_future_expiration(client, yes):
    soon = int(time.time()) + 30  # inside the one-minute security threshold
    with pytest.raises(PolyApiException) as err:
        client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=10, side="BUY", expiration=soon),
                                     order_type=OrderType.GTD)
    assert _api_error(err) == (400, "invalid expiration")
    later = int(time.time()) + 3600
    resp = client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=10, side="BUY", expiration=later),
                                        order_type=OrderType.GTD)
    assert resp["status"] == "live" and client.get_order(resp["orderID"])["expiration"] == str(later)
    client.cancel_all()


def test_a_fresh_eoa_signing_type_0_gets_lives_refusal(server, yes):
    fresh = ClobClient(server.base_url, 137, key=Account.create().key.hex())
    fresh.set_api_creds(fresh.create_or_derive_api_key())
    for post in (lambda: fresh.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                                            order_type=OrderType.FOK),
                 lambda: fresh.create_and_post_order(OrderArgsV2(token_id=yes, price=0.4, size=10, side="BUY"))):
        with pytest.raises(PolyApiException) as err:
            post()
        assert _api_error(err) == (400, "maker address not allowed, please use the deposit wallet flow")
    assert fresh.get_open_orders() == []


def test_insufficient_balance_is_rejected(server, yes):
    broke = ClobClient(server.base_url, 137, key=Account.create().key.hex())
    broke.set_api_creds(broke.create_or_derive_api_key())
    server.clob.makers.grandfather([broke.get_address()])  # past the maker rule, to the balance check
    with pytest.raises(PolyApiException) as err:
        broke.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                           order_type=OrderType.FOK)
    assert _api_error(err) == (400, ERR_BALANCE)
    with pytest.raises(PolyApiException) as err:
        broke.create_and_post_order(OrderArgsV2(token_id=yes, price=0.6, size=10, side="SELL"))
    assert _api_error(err) == (400, ERR_BALANCE)


def test_more_than_the_balance_counting_open_orders_is_rejected(client, chain, yes):
    w3, world = chain
    _usdc, tokens = _balances(w3, world, client.get_address(), yes)
    shares = tokens / 1e6
    resting = client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.90, size=int(shares * 0.6), side="SELL"))
    assert resting["status"] == "live"
    try:
        with pytest.raises(PolyApiException) as err:
            client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.91, size=int(shares * 0.6), side="SELL"))
        assert _api_error(err) == (400, ERR_BALANCE)
    finally:
        client.cancel_order(OrderPayload(orderID=resting["orderID"]))


def test_bad_l2_hmac_is_401(server, client):
    wrong = ClobClient(server.base_url, 137, key=TRADER_KEY,
                       creds=ApiCreds(client.creds.api_key, "A" * 43 + "=", client.creds.api_passphrase))
    with pytest.raises(PolyApiException) as err:
        wrong.get_trades()
    assert _api_error(err) == (401, "Unauthorized/Invalid api key")
    anon = ClobClient(server.base_url, 137, key=Account.create().key.hex(),
                      creds=ApiCreds("00000000-0000-4000-8000-000000000000", "A" * 43 + "=", "x"))
    with pytest.raises(PolyApiException) as err:
        anon.get_open_orders()
    assert err.value.status_code == 401


def test_v1_orders_are_a_version_mismatch(client, yes):
    order = client.builder.build_order(OrderArgsV2(token_id=yes, price=0.40, size=10, side="BUY"),
                                       CreateOrderOptions(tick_size="0.01", neg_risk=False), version=1)
    with pytest.raises(PolyApiException) as err:
        client.post_order(order, OrderType.GTC)
    assert _api_error(err) == (400, ERR_VERSION)


def test_duplicate_order_is_rejected(client, yes):
    order = client.create_order(OrderArgsV2(token_id=yes, price=0.30, size=10, side="BUY"))
    first = client.post_order(order, OrderType.GTC)
    try:
        with pytest.raises(PolyApiException) as err:
            client.post_order(order, OrderType.GTC)
        assert _api_error(err) == (400, f"order {first['orderID']} is invalid. Duplicated.")
    finally:
        client.cancel_order(OrderPayload(orderID=first["orderID"]))


def test_resting_order_lifecycle(client, yes, world):
    resp = client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.45, size=10, side="BUY"))
    oid = resp["orderID"]
    assert resp["status"] == "live" and resp["transactionsHashes"] == []
    assert client.get_order(oid)["status"] == "LIVE"
    assert [o["id"] for o in client.get_open_orders(OpenOrderParams(asset_id=yes))] == [oid]
    book = client.get_order_book(yes)
    assert {"price": "0.45", "size": str(LEVEL_SIZE + 10)} in book["bids"]
    assert client.cancel_order(OrderPayload(orderID=oid)) == {"canceled": [oid], "not_canceled": {}}
    assert client.get_order(oid)["status"] == "CANCELED"
    assert client.get_open_orders() == []
    ids = [client.create_and_post_order(OrderArgsV2(token_id=yes, price=p, size=5, side="BUY"))["orderID"]
           for p in (0.20, 0.21)]
    assert sorted(client.cancel_orders(ids)["canceled"]) == sorted(ids)
    keep = client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.22, size=5, side="BUY"))["orderID"]
    by_market = client.cancel_market_orders(OrderMarketCancelParams(market=world.markets[0].condition_id))
    assert by_market["canceled"] == [keep]
    client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.23, size=5, side="BUY"))
    assert len(client.cancel_all()["canceled"]) == 1


def test_marketable_limit_order_matches_and_rests_the_rest(client, chain, yes):
    w3, world = chain
    resp = client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.51, size=LEVEL_SIZE + 7, side="BUY"))
    assert resp["status"] == "matched" and resp["transactionsHashes"]
    try:
        open_orders = client.get_open_orders(OpenOrderParams(id=resp["orderID"]))
        assert float(open_orders[0]["size_matched"]) == LEVEL_SIZE and open_orders[0]["original_size"] == str(LEVEL_SIZE + 7)
    finally:
        client.cancel_all()


def test_post_orders_batch(client, yes):
    orders = [PostOrdersV2Args(order=client.create_order(OrderArgsV2(token_id=yes, price=p, size=5, side="BUY")),
                             orderType=OrderType.GTC) for p in (0.31, 0.32)]
    orders.append(PostOrdersV2Args(order=client.create_market_order(MarketOrderArgsV2(token_id=yes, amount=1, side="BUY")),
                                 orderType=OrderType.FOK))
    out = client.post_orders(orders)
    assert [o["status"] for o in out] == ["live", "live", "matched"]
    assert out[2]["transactionsHashes"]
    client.cancel_all()


def test_balance_allowance_and_heartbeat(client, chain, yes):
    w3, world = chain
    usdc, tokens = _balances(w3, world, client.get_address(), yes)
    col = client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.COLLATERAL))
    assert int(col["balance"]) == usdc and int(col["allowance"]) > 0
    cond = client.get_balance_allowance(BalanceAllowanceParams(asset_type=AssetType.CONDITIONAL, token_id=yes))
    assert int(cond["balance"]) == tokens
    assert "heartbeat_id" in client.post_heartbeat()


def test_a_reverted_settlement_is_not_reported_as_matched(chain, anvil, yes):
    # Balance checks off: an unfunded taker passes the server, and the chain refuses the fill.
    _w3, world = chain
    with ClobServerThread(world, anvil.url, operator_key=SIDE_OPERATOR_KEY, market_maker_key=MM_KEY, levels=2,
                          level_size=50, check_balances=False, mm_inventory_interval_s=0) as srv:
        broke = ClobClient(srv.base_url, 137, key=Account.create().key.hex())
        broke.set_api_creds(broke.create_or_derive_api_key())
        srv.clob.makers.grandfather([broke.get_address()])
        before = broke.get_order_book(yes)["asks"]
        with pytest.raises(PolyApiException) as err:
            broke.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=5, side="BUY"),
                                               order_type=OrderType.FOK)
        status, msg = _api_error(err)
        assert status == 400 and "could not be executed" in msg and "reverted" in msg
        assert broke.get_order_book(yes)["asks"] == before  # the maker got its size back
        assert srv.clob.stats.trades_failed == 1 and srv.clob.trades[-1].status == "FAILED"


def test_trades_resolve_through_data_trades_when_not_waiting(chain, anvil, yes):
    # settle_wait="none": the answer carries tradeIDs only; the client resolves hashes via GET /data/trades.
    w3, world = chain
    with ClobServerThread(world, anvil.url, operator_key=SIDE_OPERATOR_KEY, market_maker_key=MM_KEY, levels=2,
                          level_size=50, settle_wait="none", mm_inventory_interval_s=0,
                          grandfathered=GRANDFATHERED) as srv:
        c = ClobClient(srv.base_url, 137, key=TRADER_KEY)
        c.set_api_creds(c.create_or_derive_api_key())
        t0 = time.time()
        resp = c.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=2, side="BUY"),
                                              order_type=OrderType.FOK)
        assert time.time() - t0 < 5
        (tx,) = resp["transactionsHashes"]
        assert w3.eth.wait_for_transaction_receipt(tx, timeout=10)["status"] == 1


def test_market_maker_tops_up_its_inventory(chain, anvil):
    # A ladder bigger than the planted inventory: the keeper splits collateral until the quotes are covered.
    w3, world = chain
    m = world.markets[1]
    with ClobServerThread(world, anvil.url, operator_key=SIDE_OPERATOR_KEY, market_maker_key=MM_KEY, levels=3,
                          level_size=60_000, quote_bids=False, mm_inventory_interval_s=0) as srv:
        mm = world.market_maker
        _, yes0 = _balances(w3, world, mm, m.token_ids[0])
        assert yes0 < 3 * 60_000 * 10**6
        hashes = srv.call(srv.clob.rebalance_inventory)
        assert hashes and all(w3.eth.get_transaction_receipt(h)["status"] == 1 for h in hashes)
        for tok in m.token_ids:
            assert _balances(w3, world, mm, tok)[1] >= 3 * 60_000 * 10**6
        assert srv.call(srv.clob.rebalance_inventory) == []  # nothing left to do


def test_slow_blocks_are_answered_in_time_and_confirmed_later(chain, anvil, yes):
    # Automine off: the receipt cannot come within `answer_within_s`, so the order is answered with its hash
    # (before the client's 5 s HTTP timeout) and the trade is confirmed once a block is mined.
    w3, world = chain
    with ClobServerThread(world, anvil.url, operator_key=SIDE_OPERATOR_KEY, market_maker_key=MM_KEY, levels=2,
                          level_size=50, answer_within_s=0.5, mm_inventory_interval_s=0,
                          grandfathered=GRANDFATHERED) as srv:
        c = ClobClient(srv.base_url, 137, key=TRADER_KEY)
        c.set_api_creds(c.create_or_derive_api_key())
        w3.provider.make_request("evm_setAutomine", [False])
        try:
            resp = c.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=2, side="BUY"),
                                                  order_type=OrderType.FOK)
            (tx,) = resp["transactionsHashes"]
            assert srv.clob.trades[-1].status == "MATCHED"
            w3.provider.make_request("evm_mine", [])
        finally:
            w3.provider.make_request("evm_setAutomine", [True])
        assert w3.eth.get_transaction_receipt(tx)["status"] == 1
        assert _wait_status(c, resp["tradeIDs"][0])["status"] == "CONFIRMED"
