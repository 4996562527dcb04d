"""polymarket/wallets.py against LIVE-2026 §6.1's worked example and the SDK's own functions (no node)."""
from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from copytrade_cli.polymarket import wallets as W

ANVIL0_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"


def _sdk_config():
    from polymarket._internal.environment import PRODUCTION_CONFIG

    return PRODUCTION_CONFIG.wallet_derivation


def test_worked_example_of_live_2026():
    assert W.deposit_wallet_salt(ANVIL0).hex() == "0ec592c39f277afb386b7c0f09483fcdb1ebc95a667a382a72281e837a2d90b3"
    assert keccak(W.beacon_proxy_init_code(W.deposit_wallet_args(ANVIL0))).hex() == (
        "bef1328ed91f68ba9acb42880b44445531f9be19f99cdd9e224c4c65da7f2478"
    )
    assert W.deposit_wallet_address(ANVIL0) == "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"


def test_derivation_equals_the_sdk_for_random_owners():
    from polymarket._internal.wallet import derive_beacon_deposit_wallet_address

    cfg = _sdk_config()
    for _ in range(25):
        owner = Account.create().address
        assert W.deposit_wallet_address(owner) == derive_beacon_deposit_wallet_address(owner, cfg)
    # another factory/beacon pair too (the derivation must use both)
    factory, beacon = Account.create().address, Account.create().address
    cfg2 = replace(cfg, deposit_wallet_factory=factory, deposit_wallet_beacon=beacon)
    owner = Account.create().address
    assert W.deposit_wallet_address(owner, factory, beacon) == derive_beacon_deposit_wallet_address(owner, cfg2)
    assert W.deposit_wallet_address(owner, factory, beacon) != W.deposit_wallet_address(owner)


def _sdk_order(key: str, wallet: str, *, exchange: str = EXCHANGE_V2, chain_id: int = 137):
    """An order signed exactly as SecureClient._sign_order does (typed data, wrapper), and its order hash."""
    from polymarket._internal.actions.orders.typed_data import build_order_signature, build_order_typed_data
    from polymarket._internal.actions.orders.types import BYTES32_ZERO, UnsignedOrder

    unsigned = UnsignedOrder(
        chain_id=chain_id, builder=BYTES32_ZERO, exchange_address=exchange, expiration=0, maker=wallet,
        maker_amount=5_000_000, metadata=BYTES32_ZERO, order_type="FAK", salt=secrets.randbits(53), side="BUY",
        signature_type=3, signer=wallet, taker_amount=9_433_900, timestamp=1796148551000,
        token_id="71321045679252212594626385532706912750332728571942532289631379312455583992563",
    )
    typed = build_order_typed_data(unsigned)
    signed = Account.from_key(key).sign_typed_data(full_message=typed)
    sig = build_order_signature(unsigned, "0x" + signed.signature.hex().removeprefix("0x"))
    plain = dict(typed, primaryType="Order", types={k: v for k, v in typed["types"].items() if k != "TypedDataSign"},
                 message=typed["message"]["contents"])
    sm = encode_typed_data(full_message=plain)
    order_hash = keccak(b"\x19" + sm.version + sm.header + sm.body)
    return unsigned, bytes.fromhex(sig[2:]), order_hash


def test_recover_1271_signer_on_an_sdk_signature():
    wallet = W.deposit_wallet_address(ANVIL0)
    _, sig, order_hash = _sdk_order(ANVIL0_KEY, wallet)
    assert len(sig) == 317 and sig[-2:] == b"\x00\xba"
    assert W.recover_1271_signer(order_hash, sig, 137, wallet, EXCHANGE_V2) == ANVIL0


def test_recover_1271_signer_refuses_tampering():
    wallet = W.deposit_wallet_address(ANVIL0)
    _, sig, order_hash = _sdk_order(ANVIL0_KEY, wallet)
    rec = W.recover_1271_signer
    assert rec(order_hash, sig, 137, wallet, EXCHANGE_V2) == ANVIL0
    other_hash = bytes([order_hash[0] ^ 1]) + order_hash[1:]
    assert rec(other_hash, sig, 137, wallet, EXCHANGE_V2) is None  # contents do not hash to the order
    assert rec(order_hash, sig, 80002, wallet, EXCHANGE_V2) is None  # other chain
    assert rec(order_hash, sig, 137, wallet, "0xe2222d279d744050d28e00520010520000310F59") is None  # other exchange
    assert rec(order_hash, sig, 137, wallet, EXCHANGE_V2, version="3") is None
    for i in (0, 40, 70, 100, 140, 315):  # any byte of the wrapper
        bad = bytearray(sig)
        bad[i] ^= 0x01
        got = rec(order_hash, bytes(bad), 137, wallet, EXCHANGE_V2)
        assert got != ANVIL0
    assert rec(order_hash, sig[:-1], 137, wallet, EXCHANGE_V2) is None
    assert rec(order_hash, sig + b"\0", 137, wallet, EXCHANGE_V2) is None
    # wrong verifyingContract in TypedDataSign: signature for wallet A does not recover the owner for wallet B
    other_wallet = W.deposit_wallet_address(Account.create().address)
    assert rec(order_hash, sig, 137, other_wallet, EXCHANGE_V2) != ANVIL0


def test_high_s_signature_is_refused():
    wallet = W.deposit_wallet_address(ANVIL0)
    _, sig, order_hash = _sdk_order(ANVIL0_KEY, wallet)
    r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
    malleable = r + (W._SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v]) + sig[65:]
    assert W.recover_1271_signer(order_hash, malleable, 137, wallet, EXCHANGE_V2) is None


def test_session_wrapped_order_signature():
    from polymarket._internal.wallet import wrap_deposit_wallet_session_signer_signature

    owner = Account.create()
    session = Account.create()
    wallet = W.deposit_wallet_address(owner.address)
    _, sig, order_hash = _sdk_order(session.key.hex(), wallet)
    wrapped = bytes.fromhex(wrap_deposit_wallet_session_signer_signature(session.address, "0x" + sig.hex())[2:])
    assert wrapped == W.wrap_session_signature(session.address, sig)
    assert W.unwrap_session_signature(wrapped) == W.SessionSignature(session.address, sig)
    assert W.recover_1271_signer(order_hash, wrapped, 137, wallet, EXCHANGE_V2) == session.address
    # a wrapper naming someone else than the key that signed is refused
    lying = W.wrap_session_signature(Account.create().address, sig)
    assert W.recover_1271_signer(order_hash, lying, 137, wallet, EXCHANGE_V2) is None
    # a non-zero reserved word is refused (strict reading, docs/live-assumptions.md)
    bad = bytearray(wrapped)
    bad[63] = 1
    assert W.unwrap_session_signature(bytes(bad)) is None


def test_batch_digest_equals_the_sdk_typed_data():
    from polymarket._internal.actions.relayer.calls import TransactionCall
    from polymarket._internal.actions.relayer.signing.deposit_wallet import (
        build_deposit_wallet_typed_data,
        sign_deposit_wallet_batch,
    )

    owner = Account.create()
    wallet = W.deposit_wallet_address(owner.address)
    sdk_calls = [
        TransactionCall(to="0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB", value="0", data="0x095ea7b3" + "11" * 64),
        TransactionCall(to="0x4D97DCd97eC945f40cF65F87097ACe5EA0476045", value="0", data="0x"),
    ]
    calls = W.calls_from_wire([{"target": c.to, "value": c.value, "data": c.data} for c in sdk_calls])
    typed = build_deposit_wallet_typed_data(wallet=wallet, calls=sdk_calls, nonce="7", deadline="1796148551", chain_id=137)
    sm = encode_typed_data(full_message=typed)
    assert W.batch_digest(137, wallet, 7, 1796148551, calls) == keccak(b"\x19" + sm.version + sm.header + sm.body)
    assert W.BATCH_TYPEHASH.hex() == "712ef66e8362c387e862cabf0923c209db0fa24cfc97d25eccba7c86f3ee1dd3"
    sig = bytes.fromhex(sign_deposit_wallet_batch(owner, wallet=wallet, calls=sdk_calls, nonce="7",
                                                  deadline="1796148551", chain_id=137)[2:])
    assert W.recover_batch_signer(137, wallet, 7, 1796148551, calls, sig) == owner.address
    assert W.recover_batch_signer(137, wallet, 8, 1796148551, calls, sig) != owner.address
    assert W.recover_batch_signer(137, wallet, 7, 1796148551, calls[:1], sig) != owner.address


def test_calls_from_wire_refuses_malformed():
    with pytest.raises(ValueError):
        W.calls_from_wire([{"target": "0x12", "value": "0", "data": "0x"}])
    with pytest.raises(ValueError):
        W.calls_from_wire([{"target": ANVIL0, "value": "0", "data": "0x", "extra": 1}])
