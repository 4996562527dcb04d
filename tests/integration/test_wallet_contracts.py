"""The deposit-wallet contracts' own rules on anvil, below the relayer: who may call what, and what they refuse.

Each refusal is a revert with the contract's reason and leaves the wallet's nonce and the chain state as they were.
"""
from __future__ import annotations

import pytest
from eth_account import Account
from web3 import Web3

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.localworld.wallets_plant import RELAYER_ADDRESS, RELAYER_KEY, plant_deposit_wallets
from copytrade_cli.polymarket import wallets as W
from copytrade_cli.polymarket.world import DEV_KEYS

from ..conftest import AnvilNode


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    node = AnvilNode(home=tmp_path_factory.mktemp("anvil-home"))
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
        planted = plant_deposit_wallets(w3, DEV_KEYS[0])
        factory = w3.eth.contract(address=planted.factory, abi=C.load_artifact("DepositWalletFactory").abi)
        yield w3, planted, factory, TxLane(w3, Account.from_key(RELAYER_KEY))
    finally:
        node.stop()


def _wallet(w3, address):
    return w3.eth.contract(address=address, abi=C.load_artifact("DepositWallet").abi)


def _deploy(env):
    w3, _planted, factory, lane = env
    owner = Account.create()
    wait_receipt(w3, lane.send({"to": factory.address, "data": factory.encode_abi("deploy", args=[owner.address])}))
    return owner, _wallet(w3, W.deposit_wallet_address(owner.address))


def _reverts(w3, sender, to, data, reason):
    with pytest.raises(Exception) as exc:
        w3.eth.call({"from": sender, "to": to, "data": data})
    assert reason in str(exc.value)


def _batch_args(w3, wallet, key, calls, *, nonce=None, deadline=None, session=None):
    nonce = wallet.functions.nonce().call() if nonce is None else nonce
    deadline = deadline or w3.eth.get_block("latest")["timestamp"] + 600
    sig = Account.unsafe_sign_hash(W.batch_digest(137, wallet.address, nonce, deadline, calls), key).signature
    if session:
        sig = W.wrap_session_signature(session, sig)
    return [wallet.address, [(c.target, c.value, c.data) for c in calls], nonce, deadline, sig]


def test_factory_deploys_at_the_sdk_address_once_and_only_for_the_relayer(env):
    w3, planted, factory, lane = env
    assert factory.functions.BEACON().call() == planted.beacon == W.DEPOSIT_WALLET_BEACON
    assert factory.functions.RELAYER().call() == RELAYER_ADDRESS
    owner, wallet = _deploy(env)
    assert factory.functions.predictWallet(owner.address).call() == wallet.address
    assert wallet.functions.owner().call() == owner.address and wallet.functions.factory().call() == factory.address
    data = factory.encode_abi("deploy", args=[owner.address])
    _reverts(w3, RELAYER_ADDRESS, factory.address, data, "")  # CREATE2 collision: already deployed
    _reverts(w3, owner.address, factory.address, factory.encode_abi("deploy", args=[Account.create().address]),
             "DepositWalletFactory: only the relayer")


def test_execute_rules(env):
    w3, _planted, factory, lane = env
    owner, wallet = _deploy(env)
    call = [W.Call(wallet.address, 0, b"")]
    good = _batch_args(w3, wallet, owner.key, call)
    ex = factory.encode_abi("execute", args=good)
    _reverts(w3, owner.address, factory.address, ex, "DepositWalletFactory: only the relayer")
    _reverts(w3, RELAYER_ADDRESS, wallet.address, wallet.encode_abi("execute", args=good[1:]),
             "DepositWallet: only the factory")
    bad = {
        "DepositWallet: bad nonce": _batch_args(w3, wallet, owner.key, call, nonce=1),
        "DepositWallet: batch deadline passed": _batch_args(w3, wallet, owner.key, call,
                                                            deadline=w3.eth.get_block("latest")["timestamp"] - 1),
        "DepositWallet: invalid signature": _batch_args(w3, wallet, Account.create().key, call),
    }
    for reason, args in bad.items():
        _reverts(w3, RELAYER_ADDRESS, factory.address, factory.encode_abi("execute", args=args), reason)
    undeployed = [Account.create().address] + good[1:]
    _reverts(w3, RELAYER_ADDRESS, factory.address, factory.encode_abi("execute", args=undeployed),
             "DepositWalletFactory: wallet not deployed")
    wait_receipt(w3, lane.send({"to": factory.address, "data": ex}))
    assert wallet.functions.nonce().call() == 1
    _reverts(w3, RELAYER_ADDRESS, factory.address, ex, "DepositWallet: bad nonce")  # no replay


def test_session_signers_only_through_the_wallet_and_bounded(env):
    w3, _planted, factory, lane = env
    owner, wallet = _deploy(env)
    session = Account.create()
    now = w3.eth.get_block("latest")["timestamp"]
    auth = wallet.encode_abi("authorizeSessionSigner", args=[session.address, now + 3600])
    _reverts(w3, owner.address, wallet.address, auth, "DepositWallet: only the wallet")
    _reverts(w3, wallet.address, wallet.address, wallet.encode_abi("authorizeSessionSigner",
                                                                   args=[session.address, now - 1]),
             "DepositWallet: validUntil in the past")
    args = _batch_args(w3, wallet, owner.key, [W.Call(wallet.address, 0, bytes.fromhex(auth[2:]))])
    wait_receipt(w3, lane.send({"to": factory.address, "data": factory.encode_abi("execute", args=args)}))
    assert wallet.functions.sessionSigners(session.address).call() == now + 3600
    # the session signer's batch may move funds but not touch the wallet's signers
    revoke = wallet.encode_abi("revokeSessionSigner", args=[session.address])
    s_args = _batch_args(w3, wallet, session.key, [W.Call(wallet.address, 0, bytes.fromhex(revoke[2:]))],
                         session=session.address)
    _reverts(w3, RELAYER_ADDRESS, factory.address, factory.encode_abi("execute", args=s_args),
             "DepositWallet: session signer cannot call the wallet")
    ok = _batch_args(w3, wallet, session.key, [W.Call(Account.create().address, 0, b"")], session=session.address)
    wait_receipt(w3, lane.send({"to": factory.address, "data": factory.encode_abi("execute", args=ok)}))
    # a session signature naming another signer than the key that signed is refused
    liar = _batch_args(w3, wallet, Account.create().key, [W.Call(Account.create().address, 0, b"")],
                       session=session.address)
    _reverts(w3, RELAYER_ADDRESS, factory.address, factory.encode_abi("execute", args=liar),
             "DepositWallet: invalid signature")
    # expiry: past validUntil the session signer's batches are refused
    Cheats(w3).mine(1)
    w3.provider.make_request("evm_increaseTime", [3700])
    w3.provider.make_request("evm_mine", [])
    late = _batch_args(w3, wallet, session.key, [W.Call(Account.create().address, 0, b"")], session=session.address)
    _reverts(w3, RELAYER_ADDRESS, factory.address, factory.encode_abi("execute", args=late),
             "DepositWallet: invalid signature")


def test_receives_erc1155_and_answers_erc165(env):
    w3, _planted, _factory, _lane = env
    _owner, wallet = _deploy(env)
    assert wallet.functions.onERC1155Received(RELAYER_ADDRESS, RELAYER_ADDRESS, 1, 1, b"").call() == \
        bytes.fromhex("f23a6e61")
    assert wallet.functions.onERC1155BatchReceived(RELAYER_ADDRESS, RELAYER_ADDRESS, [1], [1], b"").call() == \
        bytes.fromhex("bc197c81")
    assert wallet.functions.supportsInterface(bytes.fromhex("4e2312e0")).call() is True
    assert wallet.functions.supportsInterface(bytes.fromhex("12345678")).call() is False
