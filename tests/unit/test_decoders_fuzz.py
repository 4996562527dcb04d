"""Hostile input for every fill decoder: whatever arrives, a decoder returns a well-formed result or raises
DecodeError, never anything else (hypothesis)."""
from __future__ import annotations

import json
import time
import re
from decimal import Decimal

import pytest
from eth_abi import encode as abi_encode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrade_cli.localworld.exchange import match_orders_calldata
from copytrade_cli.localworld.world import DEV_ADDRESSES, DEV_KEYS
from copytrade_cli.polymarket import fills as F
from copytrade_cli.polymarket.addresses import polymarket_addresses
from copytrade_cli.polymarket.orders import build_signed_order_v2

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EX2 = polymarket_addresses(137).exchange_v2
LEADER = DEV_ADDRESSES[1]
TX = "0x" + "ab" * 32
TOKEN = 123456789
_TX_RE = re.compile(r"0x[0-9a-f]{64}\Z")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80)
    | st.sampled_from(["BUY", "sell", "0x" + "ab" * 32, "1e400", "NaN", "-0", " 12 ", "0x", "١٢٣"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=12,
)
hexish = st.one_of(st.binary(max_size=300), st.text(max_size=90), st.integers(), st.none(),
                   st.binary(max_size=300).map(lambda b: "0x" + b.hex()))


def check_fill(f: F.LeaderFill) -> None:
    assert f.side in ("BUY", "SELL")
    assert f.shares_micro >= 0 and (f.usd_micro is None or f.usd_micro >= 0)
    assert _TX_RE.match(f.tx_hash)
    assert f.token_id.isdigit()
    assert f.key.count(":") == 3


def run(fn, *args, **kw):
    try:
        out = fn(*args, **kw)
    except F.DecodeError:
        return
    for f in out if isinstance(out, list) else ([out] if out is not None else []):
        check_fill(f)


_VALID_PAYLOAD = {"asset": str(TOKEN), "conditionId": "0x" + "cd" * 32, "price": 0.5, "proxyWallet": LEADER,
                  "side": "BUY", "size": 10, "timestamp": 1785027308, "transactionHash": TX}


@FUZZ
@given(json_values)
def test_activity_message_arbitrary_json(value):
    run(F.decode_activity_message, value)
    run(F.decode_activity_message, {"topic": "activity", "type": "trades", "payload": value})
    run(F.decode_data_api_row, value)


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(_VALID_PAYLOAD) + ["usdcSize", "type"]), json_values, max_size=6))
def test_activity_message_mutated_fields(overrides):
    payload = {**_VALID_PAYLOAD, **overrides}
    run(F.decode_activity_message, {"topic": "activity", "type": "trades", "payload": payload}, [LEADER])
    run(F.decode_activity_message, json.dumps({"payload": payload}, default=str))
    run(F.decode_data_api_row, payload)


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400))
def test_activity_message_raw_frames(frame):
    run(F.decode_activity_message, frame)


@FUZZ
@given(st.sampled_from([F.ORDER_FILLED_V2_TOPIC, F.ORDER_FILLED_V1_TOPIC, F.TRANSFER_SINGLE_TOPIC,
                        F.TRANSFER_BATCH_TOPIC]),
       st.lists(hexish, max_size=5), hexish, hexish, json_values)
def test_logs_hostile(topic0, more_topics, data, tx_hash, log_index):
    log = {"topics": [topic0, *more_topics], "data": data, "transactionHash": tx_hash, "logIndex": log_index,
           "address": EX2}
    for fn in (F.decode_order_filled_v2, F.decode_order_filled_v1, F.decode_ctf_transfer, F.decode_log):
        run(fn, log)
        run(fn, log, [LEADER])


@FUZZ
@given(st.sampled_from([0, 1, 2, 255]), st.integers(0, 2**256 - 1), st.integers(0, 2**256 - 1),
       st.integers(0, 2**256 - 1), st.binary(min_size=12, max_size=12))
def test_v2_log_well_typed_values(side, token, making, taking, pad):
    data = abi_encode(["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
                      [min(side, 255), token, making, taking, 0, b"\0" * 32, b"\0" * 32])
    log = {"topics": [F.ORDER_FILLED_V2_TOPIC, "0x" + "11" * 32, "0x" + pad.hex() + LEADER[2:].lower(),
                      "0x" + "00" * 32], "data": "0x" + data.hex(), "transactionHash": TX}
    run(F.decode_order_filled_v2, log)


def _valid_match() -> bytes:
    leader = build_signed_order_v2(DEV_KEYS[1], token_id=TOKEN, side="BUY", maker_amount=5_500_000,
                                   taker_amount=10_000_000, chain_id=137, exchange=EX2)
    mm = build_signed_order_v2(DEV_KEYS[2], token_id=TOKEN, side="SELL", maker_amount=10_000_000,
                               taker_amount=5_500_000, chain_id=137, exchange=EX2)
    return match_orders_calldata("0x" + "cd" * 32, leader, [mm], 5_500_000, [10_000_000])


VALID_MATCH = _valid_match()


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID_MATCH) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(VALID_MATCH) + 64), st.binary(max_size=64))
def test_pending_match_orders_mutated(flips, cut, tail):
    data = bytearray(VALID_MATCH)
    for pos, val in flips:
        if pos >= 4:  # keep the selector so the decoder actually parses
            data[pos] = val
    data = bytes(data[:cut]) + tail
    tx = {"hash": TX, "to": EX2, "from": DEV_ADDRESSES[3], "input": "0x" + data.hex()}
    run(F.decode_pending_tx, tx, [LEADER], verify_signatures=False)
    run(F.decode_pending_tx, tx, None)


@FUZZ
@given(st.sampled_from(sorted(F._selectors())), st.binary(max_size=700), json_values, hexish)
def test_pending_known_selectors_random_args(selector, body, sender, tx_hash):
    to = polymarket_addresses(137).ctf if F._selectors()[selector].startswith("ctf") else EX2
    tx = {"hash": tx_hash, "to": to, "from": sender, "input": selector + body}
    run(F.decode_pending_tx, tx, [LEADER])
    run(F.decode_pending_tx, {**tx, "hash": TX, "from": None}, None, verify_signatures=False)


@FUZZ
@given(st.dictionaries(st.sampled_from(["hash", "to", "from", "input", "data", "blockNumber"]), hexish, max_size=6)
       | json_values)
def test_pending_arbitrary_objects(tx):
    run(F.decode_pending_tx, tx, [LEADER])


@FUZZ
@given(size=st.decimals(min_value=0, max_value=10**9, places=6, allow_nan=False) | st.floats(0, 1e9),
       price=st.none() | st.decimals(min_value=0, max_value=2, places=4, allow_nan=False),
       side=st.sampled_from(["BUY", "SELL", "buy", "Sell"]), usdc=st.none() | st.floats(0, 1e9),
       wallet=st.sampled_from([LEADER, LEADER.lower(), LEADER.upper().replace("0X", "0x"), DEV_ADDRESSES[2]]))
def test_activity_fill_agrees_with_its_message(size, price, side, usdc, wallet):
    """Never a wrong trade at the decoder: a fill it returns is the message's trade (leader, side, size, price,
    tx), only for the wanted leader; anything it cannot represent exactly is a DecodeError, not a guess."""
    payload = {**_VALID_PAYLOAD, "size": size, "side": side, "proxyWallet": wallet}
    if price is None:
        payload.pop("price")
    else:
        payload["price"] = str(price)
    if usdc is not None:
        payload["usdcSize"] = usdc
    try:
        f = F.decode_activity_message({"topic": "activity", "type": "trades", "payload": payload}, [LEADER])
    except F.DecodeError:
        return
    if wallet.lower() != LEADER.lower():
        assert f is None
        return
    assert f is not None
    assert f.leader == LEADER and f.side == side.upper() and f.tx_hash == TX and f.token_id == str(TOKEN)
    assert abs(f.shares_micro - float(size) * 10**6) <= 1
    assert f.price == (None if price is None else Decimal(str(price)))


def test_a_hostile_array_length_is_refused_before_decoding():
    """A length word of 2**32 with every element's offset pointing at the same bytes used to make the ABI
    decoder build billions of orders (the fuzzer hung on it): refused at once, with the reason."""
    data = bytearray(VALID_MATCH)
    body = data[4:]
    offset = int.from_bytes(body[64:96], "big")  # makerOrders (3rd argument)
    body[offset:offset + 32] = (2**32).to_bytes(32, "big")
    tx = {"hash": TX, "to": EX2, "from": DEV_ADDRESSES[3], "input": "0x" + (bytes(data[:4]) + bytes(body)).hex()}
    t0 = time.perf_counter()
    with pytest.raises(F.DecodeError, match="at most 256"):
        F.decode_pending_tx(tx, [LEADER], verify_signatures=False)
    assert time.perf_counter() - t0 < 1.0
