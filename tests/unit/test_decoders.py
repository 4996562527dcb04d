"""Fill decoders without a node: exchange logs (V1/V2), CTF transfers, pending transactions, the activity
websocket and the Data API all give the same LeaderFill key for the same fill."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from hexbytes import HexBytes
from web3.datastructures import AttributeDict

from copytrade_cli.localworld.exchange import match_orders_calldata
from copytrade_cli.localworld.world import DEV_ADDRESSES, DEV_KEYS
from copytrade_cli.polymarket import fills as F
from copytrade_cli.polymarket.addresses import exchange_v1_abi, exchange_v2_abi, polymarket_addresses
from copytrade_cli.polymarket.orders import (
    ORDER_V1_ABI, build_signed_order_v2, order_v1_digest, order_v1_tuple, order_v2_hash, recover_signer,
)

ADDR = polymarket_addresses(137)
EX2 = ADDR.exchange_v2
EX1 = ADDR.exchange_v1
LEADER, MM, OTHER = DEV_ADDRESSES[1], DEV_ADDRESSES[2], DEV_ADDRESSES[5]
LEADER_KEY, MM_KEY = DEV_KEYS[1], DEV_KEYS[2]
TOKEN = 71321045679252212594626385532706912750332728571942532289631379312455583992563
TX = "0x" + "ab" * 32
OPERATOR = DEV_ADDRESSES[3]


def topic_addr(a: str) -> str:
    return "0x" + "00" * 12 + a[2:].lower()


def v2_log(maker, taker, side, token, making, taking, fee=0, tx=TX, log_index=3, raw=True):
    data = abi_encode(["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
                      [side, token, making, taking, fee, b"\0" * 32, b"\0" * 32])
    d = {"address": EX2.lower(), "topics": [F.ORDER_FILLED_V2_TOPIC, "0x" + "11" * 32, topic_addr(maker),
                                            topic_addr(taker)],
         "data": "0x" + data.hex(), "transactionHash": tx, "logIndex": hex(log_index), "blockNumber": "0x10"}
    if raw:
        return d
    return AttributeDict({**d, "topics": [HexBytes(t) for t in d["topics"]], "data": HexBytes(d["data"]),
                          "transactionHash": HexBytes(tx), "logIndex": log_index, "blockNumber": 16})


def v1_log(maker, taker, maker_asset, taker_asset, making, taking, fee=0):
    data = abi_encode(["uint256"] * 5, [maker_asset, taker_asset, making, taking, fee])
    return {"address": EX1, "topics": [F.ORDER_FILLED_V1_TOPIC, "0x" + "22" * 32, topic_addr(maker),
                                       topic_addr(taker)],
            "data": "0x" + data.hex(), "transactionHash": TX, "logIndex": "0x1", "blockNumber": "0x5"}


# ------------------------------------------------------------------------------ topics / ABIs
def test_topics_match_the_package_abis():
    from eth_utils import event_abi_to_log_topic

    def topic(abi, name):
        ev = next(e for e in abi if e.get("type") == "event" and e["name"] == name)
        return "0x" + event_abi_to_log_topic(ev).hex()

    assert topic(exchange_v2_abi(), "OrderFilled") == F.ORDER_FILLED_V2_TOPIC
    assert topic(exchange_v1_abi(), "OrderFilled") == F.ORDER_FILLED_V1_TOPIC


def test_addresses_come_from_the_package():
    from py_clob_client_v2.config import get_contract_config

    cfg = get_contract_config(137)
    assert ADDR.exchange_v2 == cfg.exchange_v2 and ADDR.ctf == cfg.conditional_tokens
    assert ADDR.pusd == "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"
    assert ADDR.usdc_e == "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
    assert polymarket_addresses(80002).ctf == "0x69308FB512518e39F9b16112fA8d994F4e2Bf8bB"
    with pytest.raises(ValueError):
        polymarket_addresses(1)


# ------------------------------------------------------------------------------ V2 / V1 logs
@pytest.mark.parametrize("raw", [True, False])
def test_v2_order_filled_buy(raw):
    f = F.decode_order_filled_v2(v2_log(LEADER, EX2, 0, TOKEN, 5_500_000, 10_000_000, raw=raw), [LEADER.lower()])
    assert f.leader == LEADER and f.side == "BUY" and f.token_id == str(TOKEN)
    assert f.shares_micro == 10_000_000 and f.usd_micro == 5_500_000 and f.price == Decimal("0.55")
    assert f.log_index == 3 and f.block_number == 16 and f.source == F.SOURCE_LOG_V2
    assert f.key == f"{TX}:{TOKEN}:BUY:10000000"
    assert f.shares == Decimal(10) and f.usd == Decimal("5.5")


def test_v2_order_filled_sell_and_filters():
    f = F.decode_order_filled_v2(v2_log(LEADER, MM, 1, TOKEN, 7_120_000, 3_560_000), [LEADER])
    assert (f.side, f.shares_micro, f.usd_micro, f.price) == ("SELL", 7_120_000, 3_560_000, Decimal("0.5"))
    assert f.counterparty == MM
    assert F.decode_order_filled_v2(v2_log(MM, LEADER, 1, TOKEN, 1, 1), [LEADER]) is None  # leader only as taker
    assert F.decode_order_filled_v1(v2_log(LEADER, MM, 1, TOKEN, 1, 1)) is None  # other event
    with pytest.raises(F.DecodeError):
        F.decode_order_filled_v2(v2_log(LEADER, MM, 2, TOKEN, 1, 1))  # side 2


def test_v1_order_filled_asset_zero_means_maker_bought():
    buy = F.decode_order_filled_v1(v1_log(LEADER, MM, 0, TOKEN, 5_500_000, 10_000_000), [LEADER])
    sell = F.decode_order_filled_v1(v1_log(LEADER, MM, TOKEN, 0, 10_000_000, 5_500_000), [LEADER])
    assert (buy.side, buy.shares_micro, buy.usd_micro) == ("BUY", 10_000_000, 5_500_000)
    assert (sell.side, sell.shares_micro, sell.usd_micro) == ("SELL", 10_000_000, 5_500_000)
    assert buy.token_id == sell.token_id == str(TOKEN)
    with pytest.raises(F.DecodeError):
        F.decode_order_filled_v1(v1_log(LEADER, MM, 0, 0, 1, 1))


def test_ctf_transfers_touching_a_leader():
    single = {"address": ADDR.ctf, "topics": [F.TRANSFER_SINGLE_TOPIC, topic_addr(EX2), topic_addr(EX2),
                                              topic_addr(LEADER)],
              "data": "0x" + abi_encode(["uint256", "uint256"], [TOKEN, 10_000_000]).hex(), "transactionHash": TX,
              "logIndex": "0x2"}
    [f] = F.decode_ctf_transfer(single, [LEADER])
    assert (f.side, f.shares_micro, f.price, f.key) == ("BUY", 10_000_000, None, f"{TX}:{TOKEN}:BUY:10000000")
    batch = {**single, "topics": [F.TRANSFER_BATCH_TOPIC, topic_addr(LEADER), topic_addr(LEADER), topic_addr(OTHER)],
             "data": "0x" + abi_encode(["uint256[]", "uint256[]"], [[1, 2], [3, 0]]).hex()}
    fills = F.decode_ctf_transfer(batch, [LEADER])
    assert [(x.side, x.token_id, x.shares_micro) for x in fills] == [("SELL", "1", 3)]  # zero value skipped
    mint = {**batch, "topics": [F.TRANSFER_BATCH_TOPIC, topic_addr(LEADER), "0x" + "00" * 32, topic_addr(LEADER)]}
    assert F.decode_ctf_transfer(mint, [LEADER]) == []
    assert len(F.decode_ctf_transfer(mint, [LEADER], include_mint_burn=True)) == 1  # the zero value is skipped
    assert F.decode_log(single, [LEADER])[0].key == f.key


# ------------------------------------------------------------------------------ orders / hashes
def test_order_hash_matches_package_builder():
    from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
    from py_clob_client_v2.order_utils.model.side import Side
    from py_clob_client_v2.signer import Signer

    b = ExchangeOrderBuilderV2(EX2, 137, Signer(LEADER_KEY, 137))
    o = b.build_order(OrderDataV2(maker=LEADER, tokenId=str(TOKEN), makerAmount="5500000", takerAmount="10000000",
                                  side=Side.BUY))
    want = b.build_order_hash(b.build_order_typed_data(o))
    wire = {"salt": int(o.salt), "maker": o.maker, "signer": o.signer, "tokenId": o.tokenId,
            "makerAmount": o.makerAmount, "takerAmount": o.takerAmount, "side": "BUY", "expiration": "0",
            "signatureType": 0, "timestamp": o.timestamp, "metadata": o.metadata, "builder": o.builder}
    assert order_v2_hash(wire, 137, EX2) == want


def test_v1_digest_matches_package_builder():
    from py_clob_client_v2.order_utils.exchange_order_builder_v1 import ExchangeOrderBuilderV1
    from py_clob_client_v2.order_utils.model.order_data_v1 import OrderDataV1
    from py_clob_client_v2.order_utils.model.side import Side
    from py_clob_client_v2.signer import Signer

    b = ExchangeOrderBuilderV1(EX1, 137, Signer(LEADER_KEY, 137))
    s = b.build_signed_order(OrderDataV1(maker=LEADER, taker="0x" + "00" * 20, tokenId=str(TOKEN),
                                         makerAmount="5500000", takerAmount="10000000", side=Side.BUY,
                                         feeRateBps="10", nonce="3", expiration="0"))
    want = b.build_order_hash(b.build_order_typed_data(s))
    t = order_v1_tuple({**s.__dict__, "side": int(s.side), "signatureType": int(s.signatureType)})
    digest = order_v1_digest(t, 137, EX1)
    assert "0x" + digest.hex() == want
    assert recover_signer(digest, s.signature) == LEADER


# ------------------------------------------------------------------------------ pending transactions
def _orders(side="BUY", shares=10_000_000, usd=5_500_000, key=LEADER_KEY, mm_key=MM_KEY):
    making, taking = (usd, shares) if side == "BUY" else (shares, usd)
    leader = build_signed_order_v2(key, token_id=TOKEN, side=side, maker_amount=making, taker_amount=taking,
                                   chain_id=137, exchange=EX2)
    mm = build_signed_order_v2(mm_key, token_id=TOKEN, side="SELL" if side == "BUY" else "BUY",
                               maker_amount=taking, taker_amount=making, chain_id=137, exchange=EX2)
    return leader, mm


def _tx(data: bytes, to=EX2, sender=OPERATOR):
    return {"hash": TX, "to": to, "from": sender, "input": "0x" + data.hex(), "blockNumber": None}


def test_pending_v2_match_leader_taker_buy_equals_mined_log_key():
    leader, mm = _orders("BUY", 10_000_000, 5_500_000)
    data = match_orders_calldata("0x" + "cd" * 32, leader, [mm], 5_500_000, [10_000_000])
    [f] = F.decode_pending_tx(_tx(data), [LEADER])
    # What the exchange logs for the taker: makerAmountFilled = taker fill, takerAmountFilled = makers' making.
    mined = F.decode_order_filled_v2(v2_log(LEADER, EX2, 0, TOKEN, 5_500_000, 10_000_000), [LEADER])
    assert f.key == mined.key and f.source == F.SOURCE_MEMPOOL and f.condition_id == "0x" + "cd" * 32
    assert f.usd_micro == 5_500_000 and f.price == Decimal("0.55")
    # The market maker's fill shows up only when asked for.
    both = F.decode_pending_tx(_tx(data), None)
    assert {(x.leader, x.side) for x in both} == {(LEADER, "BUY"), (MM, "SELL")}


def test_pending_v2_match_leader_as_maker_sell_and_raw_web3_tx():
    leader, mm = _orders("SELL", 7_120_000, 3_560_000)
    data = match_orders_calldata("0x" + "cd" * 32, mm, [leader], 3_560_000, [7_120_000])
    tx = AttributeDict({"hash": HexBytes(TX), "to": EX2, "from": OPERATOR, "input": HexBytes(data)})
    [f] = F.decode_pending_tx(tx, [LEADER])
    mined = F.decode_order_filled_v2(v2_log(LEADER, MM, 1, TOKEN, 7_120_000, 3_560_000), [LEADER])
    assert f.key == mined.key and (f.side, f.usd_micro) == ("SELL", 3_560_000)


def test_pending_spoofed_and_foreign_transactions_are_ignored():
    leader, mm = _orders()
    forged = {**leader, "signature": build_signed_order_v2(DEV_KEYS[6], token_id=TOKEN, side="BUY",
                                                           maker_amount=1, taker_amount=1, chain_id=137,
                                                           exchange=EX2)["signature"]}
    data = match_orders_calldata("0x" + "cd" * 32, forged, [mm], 5_500_000, [10_000_000])
    assert F.decode_pending_tx(_tx(data), [LEADER]) == []
    assert len(F.decode_pending_tx(_tx(data), [LEADER], verify_signatures=False)) == 1
    good = match_orders_calldata("0x" + "cd" * 32, leader, [mm], 5_500_000, [10_000_000])
    assert F.decode_pending_tx(_tx(good, to=OTHER), [LEADER]) == []  # not an exchange
    assert F.decode_pending_tx(_tx(good), [LEADER], operators=[DEV_ADDRESSES[4]]) == []  # unknown sender
    assert len(F.decode_pending_tx(_tx(good), [LEADER], operators=[OPERATOR])) == 1
    assert F.decode_pending_tx(_tx(b"\x12\x34\x56\x78" + b"\0" * 64), [LEADER]) == []  # unknown selector
    assert F.decode_pending_tx({**_tx(good), "to": None}, [LEADER]) == []  # contract creation


def _v1_order(key, side, making, taking, token=TOKEN):
    acct = Account.from_key(key)
    o = {"salt": 7, "maker": acct.address, "signer": acct.address, "taker": "0x" + "00" * 20, "tokenId": token,
         "makerAmount": making, "takerAmount": taking, "expiration": 0, "nonce": 0, "feeRateBps": 0,
         "side": side, "signatureType": 0, "signature": b""}
    digest = order_v1_digest(order_v1_tuple(o), 137, EX1)
    o["signature"] = bytes(Account._sign_hash(digest, private_key=key).signature)
    return order_v1_tuple(o)


def test_pending_v1_match_fill_order_and_fill_orders():
    from eth_utils import keccak

    taker = _v1_order(LEADER_KEY, 0, 5_500_000, 10_000_000)
    maker = _v1_order(MM_KEY, 1, 10_000_000, 5_500_000)
    sel = keccak(text=f"matchOrders({ORDER_V1_ABI},{ORDER_V1_ABI}[],uint256,uint256[])")[:4]
    data = sel + abi_encode([ORDER_V1_ABI, f"{ORDER_V1_ABI}[]", "uint256", "uint256[]"],
                            [taker, [maker], 5_500_000, [10_000_000]])
    [f] = F.decode_pending_tx(_tx(data, to=EX1), [LEADER])
    mined = F.decode_order_filled_v1(v1_log(LEADER, EX1, 0, TOKEN, 5_500_000, 10_000_000), [LEADER])
    assert f.key == mined.key
    sel = keccak(text=f"fillOrder({ORDER_V1_ABI},uint256)")[:4]
    data = sel + abi_encode([ORDER_V1_ABI, "uint256"], [taker, 2_750_000])
    [f] = F.decode_pending_tx(_tx(data, to=EX1), [LEADER])
    assert (f.side, f.shares_micro, f.usd_micro) == ("BUY", 5_000_000, 2_750_000)
    sel = keccak(text=f"fillOrders({ORDER_V1_ABI}[],uint256[])")[:4]
    data = sel + abi_encode([f"{ORDER_V1_ABI}[]", "uint256[]"], [[taker, maker], [1_100_000, 2_000_000]])
    got = F.decode_pending_tx(_tx(data, to=EX1), None)
    assert [(x.leader, x.side, x.shares_micro) for x in got] == [(LEADER, "BUY", 2_000_000), (MM, "SELL", 2_000_000)]


def test_pending_ctf_batch_transfer_from_a_leader():
    from eth_utils import keccak

    sel = keccak(text="safeBatchTransferFrom(address,address,uint256[],uint256[],bytes)")[:4]
    data = sel + abi_encode(["address", "address", "uint256[]", "uint256[]", "bytes"],
                            [LEADER, OTHER, [TOKEN, 5], [1_000_000, 2], b""])
    got = F.decode_pending_tx(_tx(data, to=ADDR.ctf, sender=LEADER), [LEADER])
    assert [(x.side, x.token_id, x.shares_micro) for x in got] == [("SELL", str(TOKEN), 1_000_000), ("SELL", "5", 2)]
    assert F.decode_pending_tx(_tx(data, to=EX2, sender=LEADER), [LEADER]) == []  # must go to the CTF


# ------------------------------------------------------------------------------ websocket / Data API
def _payload(**kw):
    p = {"asset": str(TOKEN), "bio": "", "conditionId": "0x" + "cd" * 32, "eventSlug": "e", "icon": "", "name": "",
         "outcome": "Yes", "outcomeIndex": 0, "price": 0.55, "profileImage": "", "proxyWallet": LEADER.lower(),
         "pseudonym": "", "side": "BUY", "size": 10, "slug": "s", "timestamp": 1785027308, "title": "t",
         "transactionHash": TX.upper().replace("0X", "0x")}
    p.update(kw)
    return p


def test_activity_message_same_key_as_chain_and_string_numbers():
    msg = {"connection_id": "x", "topic": "activity", "type": "trades", "timestamp": 1785027308241,
           "payload": _payload()}
    chain = F.decode_order_filled_v2(v2_log(LEADER, EX2, 0, TOKEN, 5_500_000, 10_000_000), [LEADER])
    for frame in (msg, json.dumps(msg), json.dumps(msg).encode()):
        f = F.decode_activity_message(frame, [LEADER])
        assert f.key == chain.key and f.leader == LEADER and f.timestamp == 1785027308
        assert f.usd_micro == 5_500_000 and f.source == F.SOURCE_ACTIVITY_WS
    s = F.decode_activity_message({**msg, "payload": _payload(size="4.33", price="0.45", asset=f" {TOKEN}")})
    assert (s.shares_micro, s.price, s.usd_micro) == (4_330_000, Decimal("0.45"), 1_948_500)
    assert F.decode_activity_message({**msg, "payload": _payload(size=20.009999999999998)}).shares_micro == 20_010_000


def test_activity_non_trades_and_other_leaders_are_none():
    assert F.decode_activity_message("pong") is None
    assert F.decode_activity_message("") is None
    assert F.decode_activity_message({"topic": "comments", "type": "x", "payload": {}}) is None
    msg = {"topic": "activity", "type": "trades", "payload": _payload(proxyWallet=OTHER)}
    assert F.decode_activity_message(msg, [LEADER]) is None
    for bad in ({**msg, "payload": _payload(side="HOLD")}, {**msg, "payload": _payload(size="NaN")},
                {**msg, "payload": _payload(size=-1)}, {**msg, "payload": _payload(transactionHash="0x12")},
                {**msg, "payload": _payload(asset="0x1234")}, {**msg, "payload": [1]}, "{payload", b"\xff payload"):
        with pytest.raises(F.DecodeError):
            F.decode_activity_message(bad)


def test_data_api_rows():
    act = {**_payload(), "type": "TRADE", "usdcSize": 5.5}
    f = F.decode_data_api_row(act, [LEADER])
    assert f.key == f"{TX}:{TOKEN}:BUY:10000000" and f.usd_micro == 5_500_000 and f.source == F.SOURCE_DATA_API
    assert F.decode_data_api_row({**act, "type": "SPLIT"}) is None
    assert F.decode_data_api_row(_payload(), [LEADER]).key == f.key  # /trades rows carry no type
    with pytest.raises(F.DecodeError):
        F.decode_data_api_row([act])


def test_fill_to_dict_is_json_serialisable():
    f = F.decode_order_filled_v2(v2_log(LEADER, EX2, 0, TOKEN, 5_500_000, 10_000_000))
    d = json.loads(json.dumps(f.to_dict()))
    assert d["key"] == f.key and d["price"] == "0.550000"


def test_pending_signature_types_are_checked_as_the_exchange_does():
    from copytrade_cli.polymarket.orders import order_v2_digest, order_v2_tuple

    leader, mm = _orders()
    cond = "0x" + "cd" * 32

    def decode(order, **kw):
        refused: list = []
        got = F.decode_pending_tx(_tx(match_orders_calldata(cond, order, [mm], 5_500_000, [10_000_000])), [LEADER],
                                  refused=refused, **kw)
        return len(got), len(refused)

    assert decode(leader) == (1, 0)
    # type 0 is an EOA order: signer must be the maker, even with a signature that recovers to the signer
    other_maker = build_signed_order_v2(LEADER_KEY, token_id=TOKEN, side="BUY", maker_amount=5_500_000,
                                        taker_amount=10_000_000, chain_id=137, exchange=EX2, maker=OTHER)
    assert F.decode_pending_tx(_tx(match_orders_calldata(cond, other_maker, [mm], 5_500_000, [10_000_000])),
                               [LEADER], refused=[]) == []
    # fields changed after signing: refused (and reported through `refused`)
    assert decode({**leader, "makerAmount": "9000000"}) == (0, 1)
    assert decode({**leader, "signatureType": 7}) == (0, 1)  # unknown type
    # type 3 (deposit wallet): signer == maker and ERC-1271 on the wallet; no checker -> refused (stricter)
    wallet = {**leader, "signatureType": 3, "signature": "0x" + "11" * 317}
    assert decode(wallet) == (0, 1)
    asked = []

    def erc1271(who, digest, sig):
        asked.append((who, digest, sig))
        return True

    assert decode(wallet, erc1271=erc1271) == (1, 0)
    (who, digest, sig), = asked
    assert who == LEADER and sig == b"\x11" * 317
    assert digest == order_v2_digest(order_v2_tuple(wallet), 137, EX2)
    assert decode(wallet, erc1271=lambda *a: False) == (0, 1)
    assert decode(wallet, erc1271=lambda *a: 1 / 0) == (0, 1)  # a wallet that cannot answer has not signed
    assert decode({**wallet, "signer": OTHER}, erc1271=erc1271) == (0, 1)  # type 3 needs signer == maker
