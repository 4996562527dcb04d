"""Pieces of the local CLOB's chain layer that need no node: transaction signing and CTF calldata."""
from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from copytrade_cli.localworld.clob_chain import AsyncTxSender, ChainView
from copytrade_cli.polymarket.addresses import CTF_ABI
from tests.conftest import DEV_KEYS

EXCHANGE = "0xE111180000d2663C0091e4f400237545B87B996B"


@pytest.mark.parametrize("data,value", [(b"", 0), (b"\x01" * 1500, 0), (b"\xab\xcd", 12345)])
def test_hand_signed_envelope_is_byte_identical_to_eth_account(data, value):
    sender = AsyncTxSender(None, DEV_KEYS[3], 137)
    raw = sender._sign(42, EXCHANGE, data, 350_000, 3 * 10**9, 10**9, value)
    ref = Account.from_key(DEV_KEYS[3]).sign_transaction({
        "chainId": 137, "nonce": 42, "to": EXCHANGE, "value": value, "data": data, "gas": 350_000,
        "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "type": 2})
    assert raw == bytes(ref.raw_transaction)


def test_split_and_merge_calldata_match_the_ctf_abi():
    collateral, ctf = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174", "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
    view = ChainView(None, collateral=collateral, ctf=ctf)
    cid = "0x" + "cd" * 32
    c = Web3().eth.contract(address=ctf, abi=CTF_ABI)
    for fn, ours in (("splitPosition", view.split_calldata), ("mergePositions", view.merge_calldata)):
        expected = c.encode_abi(fn, args=[collateral, b"\0" * 32, bytes.fromhex(cid[2:]), [1, 2], 777])
        assert "0x" + ours(cid, 777).hex() == expected
