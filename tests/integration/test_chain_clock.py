"""The feeds' future-timestamp check on the fork uses the chain's clock when it runs ahead of the host's."""
from __future__ import annotations

import json
import time

import pytest
from web3 import Web3

from copytrade_cli.polymarket.fills import DecodeError, decode_activity_message
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.channels import ChainClock


def test_a_fork_pushed_two_days_ahead_still_takes_its_feed_rows(fresh_anvil):
    w3 = Web3(Web3.HTTPProvider(fresh_anvil.url))
    w3.provider.make_request("evm_increaseTime", [2 * 86400])  # what an admin-delay grant does on the fork
    w3.provider.make_request("evm_mine", [])
    stamp = int(w3.eth.get_block("latest")["timestamp"])
    assert stamp > time.time() + 86400
    row = {"proxyWallet": SEED_LEADER, "side": "BUY", "size": 20, "price": 0.5, "usdcSize": 10, "asset": "123",
           "transactionHash": "0x" + "ab" * 32, "timestamp": stamp, "type": "TRADE"}
    msg = json.dumps({"topic": "activity", "type": "trades", "payload": row})
    with pytest.raises(DecodeError, match="in the future"):
        decode_activity_message(msg)  # against the host's clock: refused
    clock = ChainClock(w3)
    assert clock() >= stamp
    fill = decode_activity_message(msg, now=clock())
    assert fill is not None and fill.side == "BUY" and fill.leader == SEED_LEADER
