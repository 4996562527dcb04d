"""The execution package's pure parts: the fill read from settlement receipts (through the checked decoder of
`polymarket.fills`), the per-follower split, legs stored unchanged, and the typed stall cause."""
from __future__ import annotations

import json

from eth_abi import encode

from copytrade_cli.errors import ChainError, ClobError, OutOfGasError
from copytrade_cli.polymarket.fills import ORDER_FILLED_V2_TOPIC
from copytrade_cli.supervisor.execute.allocation import buy_split, sell_split
from copytrade_cli.supervisor.execute.group import stall_cause
from copytrade_cli.supervisor.execute.orders import order_fill
from copytrade_cli.supervisor.model import Leg, StallCause, legs_from_json, legs_to_json

OURS = "0x" + "ab" * 32
OTHER = "0x" + "cd" * 32
TX = "0x" + "11" * 32


def _addr_topic(n: int) -> str:
    return "0x" + "00" * 12 + f"{n:02x}" * 20


def _log(order_hash: str, side: int, making: int, taking: int, *, words: int = 7) -> dict:
    data = encode(["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
                  [side, 42, making, taking, 0, b"\0" * 32, b"\0" * 32])[:32 * words]
    return {"topics": [ORDER_FILLED_V2_TOPIC, order_hash, _addr_topic(1), _addr_topic(2)],
            "data": "0x" + data.hex(), "transactionHash": TX, "address": "0x" + "33" * 20}


def test_fill_of_our_taker_order_from_the_maker_logs():
    # We BUY as taker: our log says making 5 USD / taking 10 shares; two makers SOLD us 6 + 4 shares for USD,
    # their logs' taking (USD from us) is what we gave.
    r = {"status": "0x1", "logs": [_log(OURS, 0, 5_000_000, 10_000_000), _log(OTHER, 1, 6_000_000, 2_900_000),
                                   _log(OTHER, 1, 4_000_000, 2_000_000)]}
    assert order_fill([r], OURS) == (4_900_000, 10_000_000)
    # Without maker logs, what we gave is our own log's making.
    assert order_fill([{"status": "0x1", "logs": [_log(OURS, 0, 5_000_000, 10_000_000)]}], OURS) == (5_000_000,
                                                                                                    10_000_000)


def test_reverted_foreign_and_malformed_logs_count_nothing():
    reverted = {"status": "0x0", "logs": [_log(OURS, 0, 5_000_000, 10_000_000)]}
    short = {"status": "0x1", "logs": [_log(OURS, 0, 5_000_000, 10_000_000, words=4)]}  # fails the decoder's checks
    foreign = {"status": "0x1", "logs": [{"topics": ["0x" + "99" * 32], "data": "0x", "transactionHash": TX}, {}]}
    assert order_fill([reverted, short, foreign, None], OURS) == (0, 0)


def test_split_journal_keys_and_pro_rata():
    legs = [Leg(1, "0xa", 3_000_000, 0), Leg(2, "0xb", 1_000_000, 0)]
    std = buy_split(legs, 7_000_001, 3_999_999, standard=True)
    assert list(std) == ["shares", "refunds", "spent"]
    assert std["shares"] == [5_250_001, 1_750_000] and sum(std["spent"]) == 3_999_999
    assert [r + s for r, s in zip(std["refunds"], std["spent"])] == [3_000_000, 1_000_000]
    assert list(buy_split(legs, 1, 1, standard=False)) == ["shares", "spent"]
    assert sell_split([Leg(1, "0xa", 0, 2), Leg(2, "0xb", 0, 1)], 3) == {"shares": [2, 1]}


def test_legs_json_round_trips_unchanged():
    stored = json.dumps([{"job_id": 7, "proxy": "0xA", "usd_micro": 4_000_000, "shares_micro": 0,
                          "reserve_key": "0xf:1:BUY:5:0xa"},
                         {"job_id": 8, "proxy": "0xB", "usd_micro": 0, "shares_micro": 2, "reserve_key": None}])
    assert legs_to_json(legs_from_json(stored)) == stored


def test_stall_cause_is_typed():
    assert stall_cause(OutOfGasError("0xw lacks gas")) is StallCause.OUT_OF_GAS
    assert stall_cause(ChainError("node unreachable")) is StallCause.RPC
    assert stall_cause(ClobError("rpc timeout")) is StallCause.OTHER
