"""The deposit-wallet flow on the local CLOB, with both UNMODIFIED clients, on a real anvil with the planted world.

A worker is an owner EOA plus its deposit wallet W (h-wallet's DepositWallet, deployed by the factory at the SDK's
CREATE2 address); orders are type 3 (POLY_1271) with maker = signer = W. The exchange checks W.isValidSignature on
chain, so every fill below is also a proof that the wallet accepted the signature. The relayer is h-wallet's local
relayer (`SecureClient.create` asks it whether W is deployed; one test has it deploy W through WALLET-CREATE). Funding
and approvals of W are planted (impersonation) to keep the suite fast.
"""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector as selector
from eth_utils import keccak
from polymarket import SecureClient
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
from polymarket.errors import RateLimitError, RequestRejectedError, TransactionFailedError
from py_clob_client_v2.client import ClobClient
from py_clob_client_v2.clob_types import MarketOrderArgsV2, OrderArgsV2, OrderPayload, OrderType, TradeParams
from py_clob_client_v2.exceptions import PolyApiException

from copytrade_cli.localworld.clob_makers import ERR_MAKER_NOT_ALLOWED
from copytrade_cli.localworld.clob_orders import ERR_SIGNATURE, ERR_SIGNER
from copytrade_cli.localworld.clob_server import ClobServerThread
from copytrade_cli.localworld.plant import plant_polymarket
from copytrade_cli.localworld.wallets_plant import RELAYER_ADDRESS, plant_deposit_wallets
from copytrade_cli.polymarket.addresses import CTF_ABI, ERC20_ABI
from copytrade_cli.polymarket.wallets import deposit_wallet_address
from tests.conftest import DEV_KEYS

pytestmark = pytest.mark.timeout(180)

SEED = Account.from_key(DEV_KEYS[1]).address  # planted with collateral and outcome tokens
MM_KEY, OPERATOR_KEY = DEV_KEYS[2], DEV_KEYS[3]
ORDER_FILLED = "0x" + keccak(
    text="OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)").hex()
MAX = 2**256 - 1
FEE_RATE = 0.04  # the second market is given politics' taker fee for these tests


def _send(w3, sender, to, data, value=0):
    w3.provider.make_request("anvil_impersonateAccount", [sender])
    tx = w3.eth.send_transaction({"from": sender, "to": to, "data": data, "value": value, "gas": 1_000_000})
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=30)
    assert receipt["status"] == 1, f"setup call to {to} reverted"
    return receipt


def make_worker(w3, world, *, usdc=100, shares=0, deploy=True):
    """A fresh owner EOA and its deposit wallet: deployed by the factory (as the relayer), funded, approved."""
    owner = Account.create()
    wallet = deposit_wallet_address(owner.address)
    if not deploy:
        return owner, wallet
    _send(w3, RELAYER_ADDRESS, world.deposit_wallet_factory or "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07",
          selector("deploy(address)") + abi_encode(["address"], [owner.address]))
    assert w3.eth.get_code(wallet), "the factory deployed at the SDK's derived address"
    w3.provider.make_request("anvil_setBalance", [wallet, hex(10**18)])
    coll, ctf = world.exchange_collateral, world.ctf
    _send(w3, SEED, coll, selector("transfer(address,uint256)") + abi_encode(["address", "uint256"],
                                                                           [wallet, usdc * 10**6]))
    for m in world.markets if shares else ():
        for tok in m.token_ids[:1]:
            _send(w3, SEED, ctf, selector("safeTransferFrom(address,address,uint256,uint256,bytes)") + abi_encode(
                ["address", "address", "uint256", "uint256", "bytes"], [SEED, wallet, int(tok), shares * 10**6, b""]))
    for spender in filter(None, (world.exchange, world.neg_risk_exchange)):
        _send(w3, wallet, coll, selector("approve(address,uint256)") + abi_encode(["address", "uint256"],
                                                                                [spender, MAX]))
        _send(w3, wallet, ctf, selector("setApprovalForAll(address,bool)") + abi_encode(["address", "bool"],
                                                                                      [spender, True]))
    return owner, wallet


def balances(w3, world, who, token_id):
    usdc = w3.eth.contract(address=world.exchange_collateral, abi=ERC20_ABI)
    ctf = w3.eth.contract(address=world.ctf, abi=CTF_ABI)
    return usdc.functions.balanceOf(who).call(), ctf.functions.balanceOf(who, int(token_id)).call()


def fills_of(w3, world, tx):
    receipt = w3.eth.get_transaction_receipt(tx)
    assert receipt["status"] == 1
    return [lg for lg in receipt["logs"] if lg["address"] in (world.exchange, world.neg_risk_exchange)
            and "0x" + lg["topics"][0].hex() == ORDER_FILLED]


def maker_of(log) -> str:
    return w3_checksum("0x" + log["topics"][2].hex()[-40:])


def w3_checksum(a):
    from eth_utils import to_checksum_address

    return to_checksum_address(a)


def relayer_thread(world, rpc_url):
    """h-wallet's local relayer for `world` (gas from dev account 5)."""
    from copytrade_cli.localworld.relayer_server import RelayerServerThread
    from copytrade_cli.localworld.wallets_plant import RELAYER_KEY

    return RelayerServerThread(world, rpc_url, gas_key=RELAYER_KEY)


@pytest.fixture(scope="module")
def chain(anvil):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    world = plant_polymarket(w3, DEV_KEYS[0], n_markets=2)
    planted = plant_deposit_wallets(w3, DEV_KEYS[0])
    fee_market = world.markets[1].model_copy(update={"category": "politics", "fee_rate": FEE_RATE})
    world = world.model_copy(update={"markets": [world.markets[0], fee_market],
                                     "deposit_wallet_factory": planted.factory,
                                     "deposit_wallet_beacon": planted.beacon})
    yield w3, world
    w3.provider.make_request("evm_revert", [snap])


@pytest.fixture(scope="module")
def server(chain, anvil):
    _w3, world = chain
    with ClobServerThread(world, anvil.url, operator_key=OPERATOR_KEY, market_maker_key=MM_KEY, levels=5,
                          level_size=500, confirm_delay_s=0.5, retry_delay_s=0.3, fail_delay_s=0.3) as srv:
        yield srv


@pytest.fixture(scope="module")
def relayer(chain, anvil):
    with relayer_thread(chain[1], anvil.url) as r:
        yield r


def local_env(server, relayer, anvil):
    return create_environment(name="local", config=replace(
        PRODUCTION_CONFIG, clob_url=server.base_url, relayer_url=relayer.base_url, gamma_url=server.base_url,
        data_url=server.base_url, rpc_url=anvil.url, relayer_poll_frequency_ms=200))


def sdk_client(server, relayer, anvil, owner, wallet):
    return SecureClient.create(private_key=owner.key.hex(), wallet=wallet, environment=local_env(server, relayer, anvil))


@pytest.fixture(scope="module")
def yes(chain):
    return chain[1].markets[0].token_ids[0]


def faults(server, **body):
    return server.call(lambda: server.clob.guard.configure(body))


# ---------------------------------------------------------------------------------------- polymarket-client
def test_sdk_places_queries_and_cancels_with_a_deposit_wallet(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    assert client.wallet.lower() == wallet.lower() and client.wallet_type == "DEPOSIT_WALLET"
    bal = client.get_balance_allowance(asset_type="COLLATERAL")  # (POLY_ADDRESS = owner, type 3) -> W
    assert bal.balance == balances(w3, world, wallet, yes)[0] == 100 * 10**6
    assert bal.allowances[world.exchange] == MAX

    resting = client.place_limit_order(token_id=yes, price="0.40", size="10", side="BUY")
    assert resting.ok and resting.status == "live", resting
    got = client.get_order(order_id=resting.order_id)
    assert got.maker_address.lower() == wallet.lower() and got.status == "LIVE" and str(got.price) == "0.4"
    assert [o.id for o in client.list_open_orders().first_page().items] == [resting.order_id]
    assert resting.order_id in client.cancel_order(order_id=resting.order_id).canceled
    assert client.get_order(order_id=resting.order_id).status == "CANCELED"

    usdc0, yes0 = balances(w3, world, wallet, yes)
    bought = client.place_market_order(token_id=yes, side="BUY", amount="5", order_type="FAK")
    assert bought.ok and bought.status == "matched" and bought.trade_ids, bought
    hashes = client.wait_for_order_fill_settlement(bought, timeout_s=20)  # polls /data/trades to CONFIRMED
    (tx,) = hashes
    fills = fills_of(w3, world, tx)
    assert wallet in {maker_of(lg) for lg in fills}, "OrderFilled's maker is the deposit wallet (it has code)"
    usdc1, yes1 = balances(w3, world, wallet, yes)
    assert usdc0 - usdc1 == 5_000_000 and yes1 - yes0 == int(bought.taking_amount * 10**6)
    (trade,) = client.list_account_trades().first_page().items
    assert trade.status == "CONFIRMED" and trade.transaction_hash == tx and trade.maker_address.lower() == wallet.lower()


def test_sdk_creates_the_wallet_through_the_relayer_then_trades(chain, server, relayer, anvil, yes):
    from polymarket.auth import RelayerApiKey

    w3, world = chain
    owner = Account.create()
    wallet = deposit_wallet_address(owner.address)
    assert not w3.eth.get_code(wallet)
    client = SecureClient.create(private_key=owner.key.hex(), environment=local_env(server, relayer, anvil),
                                 api_key=RelayerApiKey(key="local-relayer-key", address=owner.address))
    assert client.wallet.lower() == wallet.lower() and w3.eth.get_code(wallet)  # WALLET-CREATE at the SDK's address
    with pytest.raises(RequestRejectedError) as err:  # deployed, but nothing in it yet
        client.place_limit_order(token_id=yes, price="0.40", size="10", side="BUY")
    assert str(err.value) == "not enough balance / allowance"
    # Funded and approved by planting (the relayer batch path is h-wallet's and h-fleet's test).
    w3.provider.make_request("anvil_setBalance", [wallet, hex(10**18)])
    _send(w3, SEED, world.exchange_collateral, selector("transfer(address,uint256)") + abi_encode(
        ["address", "uint256"], [wallet, 10 * 10**6]))
    _send(w3, wallet, world.exchange_collateral, selector("approve(address,uint256)") + abi_encode(
        ["address", "uint256"], [world.exchange, MAX]))
    resp = client.place_market_order(token_id=yes, side="BUY", amount="5", order_type="FAK")
    assert resp.ok, resp
    (tx,) = client.wait_for_order_fill_settlement(resp, timeout_s=20)
    assert wallet in {maker_of(lg) for lg in fills_of(w3, world, tx)}


def test_sdk_taker_pays_the_markets_fee_in_collateral(chain, server, relayer, anvil):
    w3, world = chain
    m = world.markets[1]
    tok = m.token_ids[0]
    owner, wallet = make_worker(w3, world)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    usdc0, yes0 = balances(w3, world, wallet, tok)
    resp = client.place_market_order(token_id=tok, side="BUY", amount="10", order_type="FOK")
    assert resp.ok, resp
    (tx,) = client.wait_for_order_fill_settlement(resp, timeout_s=20)
    usdc1, yes1 = balances(w3, world, wallet, tok)
    shares = yes1 - yes0
    expected_fee = int(shares * FEE_RATE * 0.51 * 0.49)  # C x r x p(1-p) at the 0.51 ask
    assert usdc0 - usdc1 == 10_000_000 + expected_fee and expected_fee > 0
    taker_fill = [lg for lg in fills_of(w3, world, tx) if maker_of(lg) == wallet]
    assert int.from_bytes(taker_fill[0]["data"][-96:-64], "big") == expected_fee  # OrderFilled.fee
    (trade,) = [t for t in client.list_account_trades().first_page().items if t.id == resp.trade_ids[0]]
    assert trade.fee_rate_bps == 400


def test_a_fresh_eoa_type_0_order_gets_lives_refusal_with_the_sdk(chain, server, relayer, anvil, yes):
    fresh = Account.create()
    client = SecureClient.create(private_key=fresh.key.hex(), wallet=fresh.address,
                                 environment=local_env(server, relayer, anvil))
    assert client.wallet_type == "EOA"
    with pytest.raises(RequestRejectedError) as err:
        client.place_limit_order(token_id=yes, price="0.40", size="10", side="BUY")
    assert err.value.status == 400 and str(err.value) == ERR_MAKER_NOT_ALLOWED


def test_type_3_orders_the_wallet_did_not_sign_are_refused(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world, usdc=20)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    signed = client.create_limit_order(token_id=yes, price="0.40", size="10", side="BUY")
    bad = bytearray(bytes.fromhex(signed.signature[2:]))
    bad[5] ^= 0xFF  # the ECDSA part of the 317-byte wrapper
    with pytest.raises(RequestRejectedError) as err:
        client.post_order(replace(signed, signature="0x" + bad.hex()))
    assert (err.value.status, str(err.value)) == (400, ERR_SIGNATURE)
    # Another EOA's key posting W's (validly signed) order: W is not that key's wallet.
    stranger, stranger_wallet = make_worker(w3, world, usdc=1)
    other = sdk_client(server, relayer, anvil, stranger, stranger_wallet)
    with pytest.raises(RequestRejectedError) as err:
        other.post_order(signed)
    assert (err.value.status, str(err.value)) in {(400, ERR_SIGNER), (400, "the order owner has to be the owner of the API KEY")}
    assert client.list_open_orders().first_page().items == ()


def test_an_undeployed_wallet_is_refused(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world, deploy=False)
    client = ClobClient(server.base_url, 137, key=owner.key.hex(), signature_type=3, funder=wallet)
    client.set_api_creds(client.create_or_derive_api_key())
    with pytest.raises(PolyApiException) as err:
        client.create_and_post_order(OrderArgsV2(token_id=yes, price=0.40, size=10, side="BUY"))
    assert err.value.status_code == 400 and err.value.error_msg["error"] == ERR_SIGNATURE


# ---------------------------------------------------------------------------------------- py-clob-client-v2
def test_py_clob_client_v2_places_queries_and_cancels_with_a_deposit_wallet(chain, server, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world, shares=30)
    c = ClobClient(server.base_url, 137, key=owner.key.hex(), signature_type=3, funder=wallet)
    c.set_api_creds(c.create_or_derive_api_key())
    resting = c.create_and_post_order(OrderArgsV2(token_id=yes, price=0.41, size=10, side="BUY"))
    assert resting["success"] and resting["status"] == "live"
    assert c.get_order(resting["orderID"])["maker_address"] == wallet
    assert c.cancel_order(OrderPayload(orderID=resting["orderID"])) == {"canceled": [resting["orderID"]],
                                                                         "not_canceled": {}}
    usdc0, yes0 = balances(w3, world, wallet, yes)
    resp = c.create_and_post_market_order(MarketOrderArgsV2(token_id=yes, amount=20, side="SELL"),
                                          order_type=OrderType.FOK)
    assert resp["status"] == "matched"
    (tx,) = resp["transactionsHashes"]
    assert wallet in {maker_of(lg) for lg in fills_of(w3, world, tx)}
    usdc1, yes1 = balances(w3, world, wallet, yes)
    assert yes0 - yes1 == 20_000_000 and usdc1 - usdc0 == 20 * 490_000
    assert c.get_trades(TradeParams(id=resp["tradeIDs"][0]))[0]["maker_address"] == wallet


# ---------------------------------------------------------------------------------- async settlement faults
def _wait_trade(server, trade_id, want, timeout=10.0):
    deadline = time.time() + timeout
    seen = []
    while time.time() < deadline:
        t = server.clob.trades_by_id[trade_id]
        if not seen or seen[-1] != (t.status, t.transaction_hash):
            seen.append((t.status, t.transaction_hash))
        if t.status == want:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"trade {trade_id} never reached {want}: {seen}")


def test_injected_retrying_settles_under_a_new_hash(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    faults(server, retrying=1)
    resp = client.place_market_order(token_id=yes, side="BUY", amount="5", order_type="FAK")
    first = resp.transactions_hashes[0]
    seen = _wait_trade(server, resp.trade_ids[0], "CONFIRMED")
    statuses = [s for s, _h in seen]
    assert statuses[0] == "MATCHED" and "RETRYING" in statuses and statuses[-1] == "CONFIRMED", seen
    final = seen[-1][1]
    assert final != first and w3.eth.get_transaction_receipt(final)["status"] == 1
    with pytest.raises(Exception):
        w3.eth.get_transaction_receipt(first)  # the first transaction was dropped: never mined
    assert client.wait_for_order_fill_settlement(resp, timeout_s=10) == (final,)


def test_injected_failed_settles_nothing(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    before = balances(w3, world, wallet, yes)
    book_before = server.clob.book(yes).summary()["asks"]
    faults(server, failed=1)
    resp = client.place_market_order(token_id=yes, side="BUY", amount="5", order_type="FAK")
    assert resp.ok and resp.trade_ids  # live: the failure comes later, by trade status
    with pytest.raises(TransactionFailedError):
        client.wait_for_order_fill_settlement(resp, timeout_s=10)
    assert balances(w3, world, wallet, yes) == before
    assert server.clob.book(yes).summary()["asks"] == book_before  # the maker got its size back


# ------------------------------------------------------------------------------ rate limits, cancel-only
def test_429_with_retry_after_injected_and_from_the_bucket(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world, usdc=50)
    updates = []
    client = SecureClient.create(private_key=owner.key.hex(), wallet=wallet, on_rate_limit_update=updates.append,
                                 environment=local_env(server, relayer, anvil))
    faults(server, rate_limit={"count": 1, "retry_after": 3})
    with pytest.raises(RateLimitError) as err:
        client.place_limit_order(token_id=yes, price="0.30", size="5", side="BUY")
    assert err.value.retry_after == 3
    faults(server, rate_per_s=0.5, burst=2)  # a real per-signer bucket: two orders, then wait
    try:
        for p in ("0.30", "0.31"):
            assert client.place_limit_order(token_id=yes, price=p, size="5", side="BUY").ok
        with pytest.raises(RateLimitError) as err:
            client.place_limit_order(token_id=yes, price="0.32", size="5", side="BUY")
        assert err.value.retry_after == 2
        assert [u.remaining for u in updates][-2:] == [1, 0]  # Poly-RateLimit-Remaining after each accepted order
    finally:
        faults(server, rate_per_s=50, burst=500)
    assert len(client.cancel_all().canceled) == 2


def test_cancel_only_mode_refuses_orders_and_keeps_cancels(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world, usdc=50)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    resting = client.place_limit_order(token_id=yes, price="0.30", size="5", side="BUY")
    faults(server, cancel_only=True)
    try:
        with pytest.raises(RequestRejectedError) as err:
            client.place_limit_order(token_id=yes, price="0.31", size="5", side="BUY")
        assert err.value.status == 503 and err.value.restriction == "cancel_only"
        assert client.cancel_order(order_id=resting.order_id).canceled == (resting.order_id,)
    finally:
        faults(server, cancel_only=False)


# ------------------------------------------------------------------------------------------ market rules
def test_market_info_carries_tick_neg_risk_fee_and_minimum(chain, server, relayer, anvil):
    _w3, world = chain
    m = world.markets[1]
    import json
    import urllib.request

    with urllib.request.urlopen(f"{server.base_url}/clob-markets/{m.condition_id}") as r:
        info = json.load(r)
    assert info["mts"] == 0.01 and info["nr"] is False and info["fd"] == {"r": FEE_RATE, "e": 1, "to": True}
    assert info["mos"] == m.min_order_size
    with urllib.request.urlopen(f"{server.base_url}/book?token_id={m.token_ids[0]}") as r:
        book = json.load(r)
    assert book["tick_size"] == "0.01" and book["min_order_size"] == "5" and book["neg_risk"] is False
    assert all(isinstance(level["price"], str) and isinstance(level["size"], str) for level in book["asks"])
    assert book["hash"] and book["timestamp"].isdigit()


def test_a_tick_change_applies_to_new_orders(chain, server, relayer, anvil):
    w3, world = chain
    m = world.markets[1]
    owner, wallet = make_worker(w3, world, usdc=50)
    c = ClobClient(server.base_url, 137, key=owner.key.hex(), signature_type=3, funder=wallet)
    c.set_api_creds(c.create_or_derive_api_key())
    server.call(lambda: server.clob.set_tick(m, "0.001"))
    try:
        assert c.get_clob_market_info(m.condition_id)["mts"] == 0.001
        ok = c.create_and_post_order(OrderArgsV2(token_id=m.token_ids[0], price=0.405, size=10, side="BUY"))
        assert ok["status"] == "live"
        server.call(lambda: server.clob.set_tick(m, "0.01"))
        # A client that cached the old tick still signs 0.405: refused with live's text.
        with pytest.raises(PolyApiException) as err:
            c.create_and_post_order(OrderArgsV2(token_id=m.token_ids[0], price=0.415, size=10, side="BUY"))
        assert err.value.error_msg["error"].endswith("breaks minimum tick size rule: 0.01")
    finally:
        server.call(lambda: server.clob.set_tick(m, "0.01"))
        c.cancel_all()


# ------------------------------------------------------------------------------------------- session signers
def test_a_session_signer_trades_for_the_wallet_until_revoked(chain, server, relayer, anvil, yes):
    w3, world = chain
    owner, wallet = make_worker(w3, world)
    session = Account.create()
    until = w3.eth.get_block("latest")["timestamp"] + 3600
    # Planting shortcut: the wallet calls itself (as one of its batches would) to authorise the session key.
    _send(w3, wallet, wallet, selector("authorizeSessionSigner(address,uint256)") + abi_encode(
        ["address", "uint256"], [session.address, until]))
    owner_client = sdk_client(server, relayer, anvil, owner, wallet)
    (listed,) = owner_client.fetch_session_keys()  # GET /v1/user/session-signers, read from the wallet's events
    assert listed.address.lower() == session.address.lower() and int(listed.valid_until.timestamp()) == until
    client = SecureClient.create(private_key=session.key.hex(), wallet=wallet,
                                 environment=local_env(server, relayer, anvil))
    assert client.signer.lower() == session.address.lower() and client.wallet.lower() == wallet.lower()
    resp = client.place_market_order(token_id=yes, side="BUY", amount="5", order_type="FAK")
    assert resp.ok, resp
    (tx,) = client.wait_for_order_fill_settlement(resp, timeout_s=20)
    assert wallet in {maker_of(lg) for lg in fills_of(w3, world, tx)}  # the wallet accepted the session signature
    _send(w3, wallet, wallet, selector("revokeSessionSigner(address)") + abi_encode(["address"], [session.address]))
    assert owner_client.fetch_session_keys() == ()
    with pytest.raises(RequestRejectedError) as err:
        client.place_limit_order(token_id=yes, price="0.40", size="10", side="BUY")
    assert (err.value.status, str(err.value)) == (400, ERR_SIGNER)


def test_sdk_batch_answers_each_order_and_admin_tick_route(chain, server, relayer, anvil, yes):
    import json
    import urllib.request

    w3, world = chain
    owner, wallet = make_worker(w3, world, usdc=20)
    client = sdk_client(server, relayer, anvil, owner, wallet)
    good = client.create_limit_order(token_id=yes, price="0.30", size="5", side="BUY")
    small = client.create_limit_order(token_id=yes, price="0.30", size="1", side="BUY")  # under the minimum of 5
    out = client.post_orders([good, small])
    assert out[0].ok and out[0].status == "live"
    assert not out[1].ok and out[1].message.endswith("is invalid. Size (1) lower than the minimum: 5")
    client.cancel_all()
    m = world.markets[1]
    req = urllib.request.Request(f"{server.base_url}/local/tick-size", method="POST",
                                 data=json.dumps({"market": m.slug, "tick_size": "0.001"}).encode())
    try:
        with urllib.request.urlopen(req) as r:
            assert json.load(r) == {"market": m.condition_id, "tick_size": "0.001"}
    finally:
        server.call(lambda: server.clob.set_tick(m, "0.01"))
