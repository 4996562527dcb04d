"""The SDK pin, the local environment, and the CLOB gateway on the unmodified SDK against a FAKE loopback
Polymarket (tests/unit/fake_polymarket.py): signing per market (tick, neg-risk exchange, amounts), the order id
known before posting, refusals and rate limits mapped to one line, trade statuses followed to settlement."""
from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from copytrade_cli.errors import ClobError
from copytrade_cli.polymarket import sdk
from copytrade_cli.polymarket.clob import ClobGateway, settlement_of
from copytrade_cli.polymarket.market_rules import MarketRules, below_minimum, buy_budget, on_tick
from copytrade_cli.polymarket.orders import ORDER_V2_TYPE, order_v2_hash

from .fake_polymarket import TOKEN, FakePolymarket

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil #0 (public)
EOA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"  # LIVE-2026 §6.1's worked example


# ------------------------------------------------------------------------------------------------ the pin
def test_sdk_is_the_pinned_version_with_the_fields_we_build_from():
    sdk.check_sdk()
    assert sdk.sdk_version() == "0.14.0" == sdk.SDK_VERSION
    assert tuple(f.name for f in fields(sdk.PRODUCTION_CONFIG)) == sdk.CONFIG_FIELDS
    prod = sdk.config_of(sdk.production_environment())
    assert (prod.chain_id, prod.standard_exchange, prod.neg_risk_exchange, prod.collateral_token) == (
        137, "0xE111180000d2663C0091e4f400237545B87B996B", "0xe2222d279d744050d28e00520010520000310F59",
        "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB")


def test_the_pin_check_fails_loudly_on_another_version(monkeypatch):
    monkeypatch.setattr(sdk._pm, "__version__", "0.15.0")
    with pytest.raises(RuntimeError, match="pinned to 0.14.0"):
        sdk.check_sdk()


def test_local_environment_points_every_url_and_address_at_the_local_world():
    addrs = sdk.LocalAddresses(exchange="0x" + "01" * 20, neg_risk_exchange="0x" + "02" * 20,
                               collateral="0x" + "03" * 20)
    env = sdk.local_environment("http://127.0.0.1:8080/", "http://127.0.0.1:8081", "http://127.0.0.1:8545",
                                data_url="http://127.0.0.1:8083", addresses=addrs)
    c = sdk.config_of(env)
    assert (c.clob_url, c.relayer_url, c.rpc_url, c.data_url, c.gamma_url) == (
        "http://127.0.0.1:8080", "http://127.0.0.1:8081", "http://127.0.0.1:8545", "http://127.0.0.1:8083",
        "http://127.0.0.1:8080")
    assert c.clob_user_ws_url == "ws://127.0.0.1:8080/ws/user"
    assert (c.standard_exchange, c.neg_risk_exchange, c.collateral_token) == ("0x" + "01" * 20, "0x" + "02" * 20,
                                                                              "0x" + "03" * 20)
    assert c.wallet_derivation.deposit_wallet_factory == "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"
    assert sdk.deposit_wallet_of(EOA, env) == WALLET


# ------------------------------------------------------------------------------------------------ gateway
@pytest.fixture
def fake():
    f = FakePolymarket()
    yield f
    f.close()


def _gateway(fake: FakePolymarket) -> ClobGateway:
    env = sdk.local_environment(fake.url, fake.url, "http://127.0.0.1:1")
    return ClobGateway(env, KEY)


def _sdk_hash(order: dict, exchange: str) -> str:
    """The order's EIP-712 hash computed independently (eth_account's typed-data encoder)."""
    fields_ = [{"name": n.split()[1], "type": n.split()[0]} for n in ORDER_V2_TYPE[6:-1].split(",")]
    msg = {k: order[k] for k in ("maker", "signer", "metadata", "builder")}
    msg.update({k: int(order[k]) for k in ("salt", "tokenId", "makerAmount", "takerAmount", "signatureType",
                                           "timestamp")})
    msg["side"] = 0 if order["side"] == "BUY" else 1
    full = {"types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                       {"name": "chainId", "type": "uint256"},
                                       {"name": "verifyingContract", "type": "address"}], "Order": fields_},
            "primaryType": "Order", "domain": {"name": "Polymarket CTF Exchange", "version": "2", "chainId": 137,
                                               "verifyingContract": exchange}, "message": msg}
    s = encode_typed_data(full_message=full)
    return "0x" + keccak(b"\x19" + s.version + s.header + s.body).hex()


def test_buy_is_signed_type3_for_the_deposit_wallet_with_its_id_known_before_posting(fake):
    gw = _gateway(fake)
    assert (gw.signer, gw.wallet) == (EOA, WALLET)
    signed, wire, oid = gw.build_market_order(TOKEN, "BUY", Decimal("5"), Decimal("0.55"))
    o = wire["order"]
    assert (o["maker"], o["signer"], o["signatureType"], o["side"]) == (WALLET, WALLET, 3, "BUY")
    assert (o["makerAmount"], o["takerAmount"]) == ("5000000", "9090900")  # floor(5 / 0.55, 4 dp)
    assert len(bytes.fromhex(o["signature"][2:])) == 317  # the TypedDataSign wrapper (§5.2)
    exchange = sdk.config_of(gw.environment).standard_exchange
    assert oid == order_v2_hash(o, 137, exchange) == _sdk_hash(o, exchange)
    assert not fake.posted  # nothing posted yet: the id can be journalled first
    fake.order_answers.append((200, {"success": True, "errorMsg": "", "orderID": oid, "status": "matched",
                                     "makingAmount": "5", "takingAmount": "9.0909", "tradeIDs": ["t-1"]}, {}))
    placed = gw.post(signed, oid, wire)
    assert placed.accepted and placed.trade_ids == ["t-1"] and placed.making_micro == 5_000_000
    assert fake.posted[0]["order"]["salt"] == o["salt"]


def test_neg_risk_market_is_signed_for_the_neg_risk_exchange_and_the_limit_moves_onto_a_coarse_tick(fake):
    fake.market.update(mts="0.1", nr=True)
    fake.book.update(tick_size="0.1", neg_risk=True)
    gw = _gateway(fake)
    _signed, wire, oid = gw.build_market_order(TOKEN, "BUY", Decimal("5"), Decimal("0.57"))
    cfg = sdk.config_of(gw.environment)
    assert oid == _sdk_hash(wire["order"], cfg.neg_risk_exchange) != _sdk_hash(wire["order"], cfg.standard_exchange)
    # 0.57 -> 0.5 on the 0.1 grid (a BUY's limit only moves down): taker = 5 / 0.5 = 10 shares
    assert (wire["order"]["makerAmount"], wire["order"]["takerAmount"]) == ("5000000", "10000000")
    _s, sell, _ = gw.build_market_order(TOKEN, "SELL", Decimal("7.129"), Decimal("0.43"))
    assert (sell["order"]["makerAmount"], sell["order"]["takerAmount"]) == ("7120000", "3560000")  # 7.12 at 0.5


def test_a_tick_change_seen_on_the_book_refreshes_the_sdk_metadata(fake):
    gw = _gateway(fake)
    assert gw.market(TOKEN).tick == Decimal("0.01")
    fake.market["mts"] = "0.001"
    fake.book["tick_size"] = "0.001"
    rules = gw.market(TOKEN)
    assert rules.tick == Decimal("0.001") and rules.min_size == 5 and rules.fee_rate == Decimal("0.03")
    _s, wire, _ = gw.build_market_order(TOKEN, "BUY", Decimal("9.98"), Decimal("0.985"), rules=rules)
    # LIVE-2026 §5.4's fine-tick example: the SDK alone signs 10131970 (5 decimals), which live refuses for a
    # marketable order; cut to 4 decimals (the implied price stays at or above 0.985)
    assert wire["order"]["takerAmount"] == "10131900"
    assert Decimal(wire["order"]["makerAmount"]) / Decimal(wire["order"]["takerAmount"]) >= Decimal("0.985")


def test_refusals_rate_limits_and_restrictions_are_one_line(fake):
    gw = _gateway(fake)
    signed, wire, oid = gw.build_market_order(TOKEN, "BUY", Decimal("5"), Decimal("0.55"))
    fake.order_answers += [
        (429, {"error": "too many requests"}, {"Retry-After": "0"}),
        (200, {"success": False, "errorMsg": "order couldn't be fully filled. FOK orders are fully filled or "
                                             "killed.", "orderID": "", "status": "", "makingAmount": "",
               "takingAmount": ""}, {}),
    ]
    waits: list[float] = []
    placed = gw.post(signed, oid, wire, sleep=waits.append)
    assert waits == [0.0] and len(fake.posted) == 2  # the 429 was waited out, the same order posted again
    assert not placed.accepted and placed.error.startswith("fok_not_filled")
    fake.order_answers.append((503, {"error": "trading is currently cancel-only"}, {}))
    placed = gw.post(signed, oid, wire)
    assert not placed.accepted and "cancel-only mode" in placed.error and "\n" not in placed.error
    fake.order_answers.append((429, {"error": "slow down"}, {"Retry-After": "60"}))
    placed = gw.post(signed, oid, wire)
    assert not placed.accepted and "retry after 60 s" in placed.error
    fake.order_answers.append((500, {"error": "internal"}, {}))
    with pytest.raises(ClobError, match="HTTP 500"):  # outcome unknown: the caller reconciles by id
        gw.post(signed, oid, wire)
    assert gw.lookup(oid) is None  # 404: unknown to the CLOB


def test_trade_statuses_are_followed_to_settlement(fake):
    gw = _gateway(fake)
    fake.trades["t-1"] = {"status": "TRADE_STATUS_MATCHED", "tx": None}
    fake.trades["t-2"] = {"status": "MINED", "tx": "0x" + "aa" * 32}
    s = settlement_of(gw.trades(["t-1", "t-2"]))
    assert s.state == "pending"
    fake.trades["t-1"] = {"status": "CONFIRMED", "tx": "0x" + "bb" * 32}
    fake.trades["t-2"] = {"status": "RETRYING", "tx": "0x" + "cc" * 32}
    assert settlement_of(gw.trades(["t-1", "t-2"])).state == "pending"
    fake.trades["t-2"] = {"status": "CONFIRMED", "tx": "0x" + "dd" * 32}  # the retried transaction, its new hash
    s = settlement_of(gw.trades(["t-1", "t-2"]))
    assert s.state == "confirmed" and s.hashes == ("0x" + "bb" * 32, "0x" + "dd" * 32)
    assert gw.settlement_txs({"associate_trades": ["t-1", "t-2", "t-3"]}) is None  # t-3 not listed yet


def test_settlement_states():
    assert settlement_of({}).state == "pending"
    failed = settlement_of({"a": {"status": "FAILED", "tx": "0x1"}, "b": {"status": "FAILED", "tx": None}})
    assert failed.state == "failed" and failed.hashes == ()
    mixed = settlement_of({"a": {"status": "FAILED", "tx": "0x1"}, "b": {"status": "CONFIRMED", "tx": "0x2"}})
    assert mixed.state == "confirmed" and mixed.hashes == ("0x2",)
    assert settlement_of({"a": {"status": "CONFIRMED", "tx": None}}).state == "pending"


# ------------------------------------------------------------------------------------------------ sizing
def _rules(**kw) -> MarketRules:
    base = {"token_id": TOKEN, "tick": Decimal("0.01"), "neg_risk": False, "fee_rate": Decimal("0.03"),
            "fee_exponent": Decimal(1), "min_size": Decimal(5)}
    base.update(kw)
    return MarketRules(**base)


def test_buy_budget_is_the_sdk_formula_and_never_spends_past_the_total():
    # LIVE-2026 §8: r .03, e 1, p .5, $100 -> 98.5222; floored to the cent (the SDK keeps 2 decimals)
    assert buy_budget(100_000_000, _rules(), Decimal("0.5")) == 98_520_000
    # A fill below the limit pays more fee per USD (rate x (1 - p)): sized at the lowest ask it can fill at.
    low = _rules(asks=(Decimal("0.2"), Decimal("0.5")))
    b = buy_budget(100_000_000, low, Decimal("0.5"))
    assert b == 97_650_000 and b + b * Decimal("0.03") * Decimal("0.8") <= 100_000_000
    assert buy_budget(100_000_000, _rules(fee_rate=Decimal(0)), Decimal("0.5")) == 100_000_000
    for total in (1_000_000, 5_000_001, 12_345_678):
        for p in ("0.01", "0.37", "0.99"):
            amt = buy_budget(total, _rules(), Decimal(p))
            fee = Decimal(amt) * Decimal("0.03") * (1 - Decimal(p))
            assert amt + fee <= total


def test_limit_on_tick_and_minimum_size():
    assert on_tick(Decimal("0.57"), "BUY", Decimal("0.1")) == Decimal("0.5")
    assert on_tick(Decimal("0.53"), "SELL", Decimal("0.1")) == Decimal("0.6")
    assert on_tick(Decimal("0.995"), "BUY", Decimal("0.01")) == Decimal("0.99")
    assert on_tick(Decimal("0.0004"), "SELL", Decimal("0.001")) == Decimal("0.001")
    assert below_minimum("BUY", 990_000, Decimal("0.5"), _rules()) == (
        "order of 0.99 USD is below the minimum of 1 USD for a market order")
    assert below_minimum("BUY", 1_000_000, Decimal("0.5"), _rules()) is None
    assert below_minimum("SELL", 1_990_000, Decimal("0.50"), _rules()) == (
        "order of 1.99 shares at 0.50 = 0.99 USD is below the minimum of 1 USD for a market order")
    # resting orders: the book's min_order_size in shares
    assert "4.00 shares is below the market's minimum size of 5" in below_minimum(
        "BUY", 2_000_000, Decimal("0.5"), _rules(), order_type="GTC")
