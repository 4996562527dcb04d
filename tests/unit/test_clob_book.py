"""Order parsing/verification and the matching engine of the local CLOB (no chain).

Orders are built by py_clob_client_v2's own OrderBuilder, so amounts and signatures are exactly what the
real client posts. Every plan is checked against the settlement arithmetic of MockExchangeV2.matchOrders.
"""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_clob_client_v2.clob_types import CreateOrderOptions, MarketOrderArgsV2, OrderArgsV2, OrderType
from py_clob_client_v2.order_builder.builder import OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
from py_clob_client_v2.signer import Signer

from copytrade_cli.localworld.book import (
    STATUS_CANCELED,
    STATUS_LIVE,
    STATUS_MATCHED,
    Book,
    BookOrder,
    MatchingEngine,
    max_making_for_taking,
    proceeds,
)
from copytrade_cli.localworld.clob_orders import (
    ERR_FAK,
    ERR_FOK,
    ERR_PAYLOAD,
    ERR_POST_ONLY_CROSS,
    ERR_SIGNATURE,
    ERR_VERSION,
    ClobApiError,
    exchange_address,
    parse_order,
    price_on_tick,
    verify_order_signature,
)
from tests.conftest import DEV_KEYS

TOKEN = "1234567890"
MARKET = "0x" + "ab" * 32
TRADER, MAKER = DEV_KEYS[1], DEV_KEYS[2]


def _builder(key):
    return OrderBuilder(Signer(key, 137))


def limit_wire(key, side, price, size, neg_risk=False, tick="0.01"):
    order = _builder(key).build_order(OrderArgsV2(token_id=TOKEN, price=price, size=size, side=side),
                                      CreateOrderOptions(tick_size=tick, neg_risk=neg_risk))
    return order_to_json_v2(order, "owner", OrderType.GTC)["order"], order


def market_wire(key, side, amount, price):
    order = _builder(key).build_market_order(MarketOrderArgsV2(token_id=TOKEN, amount=amount, side=side, price=price),
                                             CreateOrderOptions(tick_size="0.01", neg_risk=False))
    return order_to_json_v2(order, "owner", OrderType.FOK)["order"]


def book_order(wire, order_type="GTC", owner="o"):
    order = parse_order(wire)
    oid = verify_order_signature(order, 137, False)
    return BookOrder(order_id=oid, order=order, owner=owner, order_type=order_type, market=MARKET, asset_id=TOKEN,
                     price=order.price, remaining_making=order.maker_amount, remaining_size=order.size_units,
                     original_size=order.size_units, tick_size="0.01")


def engine_with(*makers):
    eng = MatchingEngine()
    eng.add_book(Book(MARKET, TOKEN, "0.01", 5, False))
    for wire in makers:
        o = book_order(wire)
        eng.submit(o)
    return eng


def assert_chain_consistent(plan):
    """The invariants MockExchangeV2.matchOrders enforces, so the settlement cannot revert on arithmetic."""
    t = plan.taker.order
    assert plan.taker_making == sum(f.taking for f in plan.fills)
    assert plan.taker_making <= t.maker_amount
    for f in plan.fills:
        m = f.maker.order
        assert f.making > 0 and f.taking == proceeds(m.maker_amount, m.taker_amount, f.making)
        assert m.side != t.side
        if t.side == "BUY":  # NotCrossing
            assert t.maker_amount * m.maker_amount >= t.taker_amount * m.taker_amount
        else:
            assert m.maker_amount * t.maker_amount >= m.taker_amount * t.taker_amount
    taker_taking = sum(f.making for f in plan.fills)
    assert taker_taking >= plan.taker_making * t.taker_amount // t.maker_amount  # TooLittleTokensReceived


# ------------------------------------------------------------------------------------------ orders
def test_order_id_is_the_clients_order_hash():
    wire, signed = limit_wire(TRADER, "BUY", 0.55, 10)
    eb = ExchangeOrderBuilderV2(exchange_address(137, False), 137, Signer(TRADER, 137))
    expected = eb.build_order_hash(eb.build_order_typed_data(signed))
    assert verify_order_signature(parse_order(wire), 137, False) == expected
    assert (int(wire["makerAmount"]), int(wire["takerAmount"])) == (5_500_000, 10_000_000)


def test_tampered_order_is_an_invalid_signature():
    wire, _ = limit_wire(TRADER, "BUY", 0.55, 10)
    wire["makerAmount"] = str(int(wire["makerAmount"]) - 1)
    with pytest.raises(ClobApiError) as err:
        verify_order_signature(parse_order(wire), 137, False)
    assert err.value.message == ERR_SIGNATURE


def test_neg_risk_orders_verify_against_the_neg_risk_exchange():
    wire, _ = limit_wire(TRADER, "SELL", 0.3, 10, neg_risk=True)
    verify_order_signature(parse_order(wire), 137, True)
    with pytest.raises(ClobApiError):
        verify_order_signature(parse_order(wire), 137, False)


def test_v1_bodies_are_a_version_mismatch_and_garbage_is_invalid():
    v1 = {"salt": 1, "maker": "0x" + "11" * 20, "signer": "0x" + "11" * 20, "taker": "0x" + "00" * 20,
          "tokenId": "1", "makerAmount": "1", "takerAmount": "1", "side": "BUY", "expiration": "0",
          "nonce": "0", "feeRateBps": "0", "signatureType": 0, "signature": "0x"}
    with pytest.raises(ClobApiError) as err:
        parse_order(v1)
    assert (err.value.message, err.value.status) == (ERR_VERSION, 400)
    wire, _ = limit_wire(TRADER, "BUY", 0.5, 10)
    for bad in ({**wire, "side": "HOLD"}, {**wire, "makerAmount": "-1"}, {k: v for k, v in wire.items() if k != "salt"},
                {**wire, "metadata": "0x12"}):
        with pytest.raises(ClobApiError) as err:
            parse_order(bad)
        assert err.value.message == ERR_PAYLOAD


@pytest.mark.parametrize("price,tick,ok", [
    (Fraction(55, 100), "0.01", True), (Fraction(555, 1000), "0.01", False), (Fraction(555, 1000), "0.001", True),
    (Fraction(1, 100), "0.01", True), (Fraction(99, 100), "0.01", True), (Fraction(0), "0.01", False),
    (Fraction(1), "0.01", False), (Fraction(25, 10000), "0.0025", True),
])
def test_price_on_tick(price, tick, ok):
    assert price_on_tick(price, tick) is ok


def test_max_making_for_taking_is_the_largest_affordable():
    for ma, ta, limit in [(100, 55, 5_000_000), (10_000_000, 5_500_000, 3), (5_500_000, 10_000_000, 10_000_000),
                          (7, 3, 0), (3, 7, 1)]:
        m = max_making_for_taking(ma, ta, limit)
        assert proceeds(ma, ta, m) <= limit < proceeds(ma, ta, m + 1)


# ---------------------------------------------------------------------------------------- matching
def test_market_buy_walks_asks_with_price_time_priority():
    first, _ = limit_wire(MAKER, "SELL", 0.51, 20)
    second, _ = limit_wire(MAKER, "SELL", 0.51, 20)
    worse, _ = limit_wire(MAKER, "SELL", 0.52, 100)
    better_later, _ = limit_wire(MAKER, "SELL", 0.50, 4)
    eng = engine_with(worse, first, second, better_later)
    taker = book_order(market_wire(TRADER, "BUY", 25, 0.52), "FOK")
    plan = eng.submit(taker)
    prices = [f.maker.price for f in plan.fills]
    assert prices == [Fraction(1, 2), Fraction(51, 100), Fraction(51, 100), Fraction(52, 100)]
    assert plan.fills[1].maker.order.salt == parse_order(first).salt  # time priority within the level
    assert plan.taker_making == 25_000_000  # the whole $25 is spent
    assert taker.status == STATUS_MATCHED
    assert_chain_consistent(plan)
    summary = eng.books[TOKEN].summary()
    assert summary["asks"][-1]["price"] == "0.52"  # best ask last; 0.50 and 0.51 are gone
    assert float(summary["asks"][-1]["size"]) < 100


def test_fok_that_cannot_fill_is_killed_and_changes_nothing():
    ask, _ = limit_wire(MAKER, "SELL", 0.51, 10)
    eng = engine_with(ask)
    before = eng.books[TOKEN].summary()["asks"]
    with pytest.raises(ClobApiError) as err:
        eng.submit(book_order(market_wire(TRADER, "BUY", 50, 0.51), "FOK"))
    assert err.value.message == ERR_FOK
    assert eng.books[TOKEN].summary()["asks"] == before


def test_fak_fills_what_it_can_and_needs_a_match():
    ask, _ = limit_wire(MAKER, "SELL", 0.51, 10)
    eng = engine_with(ask)
    taker = book_order(market_wire(TRADER, "BUY", 50, 0.51), "FAK")
    plan = eng.submit(taker)
    assert plan.shares == 10_000_000 and plan.taker_making == 5_100_000
    assert taker.status == STATUS_MATCHED and not eng.books[TOKEN].summary()["asks"]
    with pytest.raises(ClobApiError) as err:
        eng.submit(book_order(market_wire(TRADER, "BUY", 5, 0.51), "FAK"))
    assert err.value.message == ERR_FAK


def test_gtc_rests_its_remainder_then_fills_as_a_maker():
    ask, _ = limit_wire(MAKER, "SELL", 0.50, 4)
    eng = engine_with(ask)
    bid_wire, _ = limit_wire(TRADER, "BUY", 0.52, 10)
    bid = book_order(bid_wire)
    plan = eng.submit(bid)
    assert plan.shares == 4_000_000 and plan.taker_making == 2_000_000  # price improvement: paid 0.50
    assert bid.status == STATUS_LIVE and bid.remaining_size == 6_000_000
    assert eng.books[TOKEN].summary()["bids"] == [{"price": "0.52", "size": "6"}]
    seller = book_order(market_wire(MAKER, "SELL", 10, 0.5), "FAK")
    plan2 = eng.submit(seller)
    assert plan2.fills[0].maker is bid and plan2.shares == 6_000_000
    assert bid.status == STATUS_MATCHED
    assert_chain_consistent(plan2)


def test_post_only_that_crosses_is_rejected():
    ask, _ = limit_wire(MAKER, "SELL", 0.50, 10)
    eng = engine_with(ask)
    bid_wire, _ = limit_wire(TRADER, "BUY", 0.50, 10)
    with pytest.raises(ClobApiError) as err:
        eng.submit(book_order(bid_wire), post_only=True)
    assert err.value.message == ERR_POST_ONLY_CROSS
    ok_wire, _ = limit_wire(TRADER, "BUY", 0.49, 10)
    assert not eng.submit(book_order(ok_wire), post_only=True).fills


def test_undo_gives_makers_their_size_back():
    ask, _ = limit_wire(MAKER, "SELL", 0.51, 10)
    eng = engine_with(ask)
    before = eng.books[TOKEN].summary()["asks"]
    taker = book_order(market_wire(TRADER, "BUY", 6, 0.51), "FAK")
    plan = eng.submit(taker)
    assert plan.fills[0].maker.status == STATUS_MATCHED
    eng.undo(plan)
    assert eng.books[TOKEN].summary()["asks"] == before
    assert taker.status == STATUS_CANCELED


def test_cancel():
    ask, _ = limit_wire(MAKER, "SELL", 0.51, 10)
    eng = engine_with(ask)
    (oid,) = list(eng.orders)
    assert eng.cancel(oid) and not eng.cancel(oid)
    assert not eng.books[TOKEN].summary()["asks"]


@settings(max_examples=40, deadline=None)
@given(
    asks=st.lists(st.tuples(st.integers(40, 60), st.integers(5, 300)), min_size=1, max_size=6),
    bids=st.lists(st.tuples(st.integers(40, 60), st.integers(5, 300)), min_size=1, max_size=6),
    side=st.sampled_from(["BUY", "SELL"]),
    amount=st.integers(100, 20_000),
    limit=st.integers(1, 99),
    order_type=st.sampled_from(["FOK", "FAK"]),
)
def test_every_plan_is_settleable(asks, bids, side, amount, limit, order_type):
    eng = engine_with(*[limit_wire(MAKER, "SELL", p / 100, s)[0] for p, s in asks],
                      *[limit_wire(MAKER, "BUY", p / 100 - 0.2, s)[0] for p, s in bids])
    taker = book_order(market_wire(TRADER, side, amount / 100, limit / 100), order_type)
    try:
        plan = eng.submit(taker)
    except ClobApiError as exc:
        assert exc.message in (ERR_FOK, ERR_FAK)
        return
    assert_chain_consistent(plan)
    if order_type == "FOK":
        assert taker.order.maker_amount - plan.taker_making <= 100


def test_market_amount_precision_is_two_and_four_decimals_whatever_the_tick():
    from copytrade_cli.localworld.clob_orders import check_market_amount_precision

    order = parse_order(market_wire(TRADER, "SELL", 12.345, 0.42))  # 12340000 / 5182800: 2 and 4 decimals
    check_market_amount_precision(order, "0.01")
    check_market_amount_precision(order, "0.001")
    order.taker_amount += 10  # 5 decimals: refused even on a 0.001 market (live, py-clob-client-v2#99)
    for tick in ("0.01", "0.001", "0.0001"):
        with pytest.raises(ClobApiError) as err:
            check_market_amount_precision(order, tick)
        assert err.value.message == ("invalid amounts, the market sell orders maker amount supports a max accuracy "
                                     "of 2 decimals, taker amount a max of 4 decimals")
    order.taker_amount -= 10
    order.maker_amount += 1000  # 3 decimals of shares
    with pytest.raises(ClobApiError):
        check_market_amount_precision(order, "0.001")


@pytest.mark.parametrize("side,price,size,tick,ok", [
    ("BUY", 0.55, 10, "0.01", True),         # 5.5 / 10
    ("BUY", 0.555, 10.01, "0.001", True),    # 5.55555 (5 dp on a 0.001 tick) / 10.01
    ("SELL", 0.555, 10.01, "0.001", True),
])
def test_limit_amount_precision_follows_the_tick(side, price, size, tick, ok):
    from copytrade_cli.localworld.clob_orders import check_limit_amount_precision

    order = parse_order(limit_wire(TRADER, side, price, size, tick=tick)[0])
    check_limit_amount_precision(order, tick)
    if side == "BUY":
        order.maker_amount += 1  # 6 decimals of collateral
        want = (f"invalid amounts, the buy orders maker amount supports a max accuracy of "
                f"{4 if tick == '0.01' else 5} decimals, taker amount a max of 2 decimals")
    else:
        order.taker_amount += 1
        want = (f"invalid amounts, the sell orders maker amount supports a max accuracy of 2 decimals, taker amount "
                f"a max of {4 if tick == '0.01' else 5} decimals")
    with pytest.raises(ClobApiError) as err:
        check_limit_amount_precision(order, tick)
    assert err.value.message == want
