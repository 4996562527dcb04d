"""Deposit wallets and the local relayer, driven by the UNMODIFIED polymarket-client 0.14.0 against a real anvil.

The SDK's `SecureClient.create` also calls the CLOB's /auth endpoints (and session keys poll the CLOB's
/v1/user/session-signers): those come from `FakeClobAuth` below, a named fake of the part the local CLOB
(H-clob) serves, so this file tests the relayer and the wallet contracts only.
"""
from __future__ import annotations

import base64
import secrets
import time
from dataclasses import replace

import httpx
import pytest
from aiohttp import web
from eth_account import Account

from copytrade_cli.localworld.app_thread import AppThread
from copytrade_cli.localworld.plant import fund_collateral, plant_polymarket
from copytrade_cli.localworld.relayer import RelayerOptions
from copytrade_cli.localworld.relayer_auth import BuilderKey, RelayerAuth
from copytrade_cli.localworld.relayer_server import RelayerServerThread
from copytrade_cli.localworld.wallets_plant import RELAYER_ADDRESS, RELAYER_KEY
from copytrade_cli.polymarket import wallets as W
from copytrade_cli.polymarket.world import DEV_KEYS

from ..conftest import AnvilNode

MAX = 2**256 - 1
POSITION_MANAGER = "0x006F54F7f9A22e0000CC2AB60031000000ae9fEF"
MAGIC = bytes.fromhex("1626ba7e")
BUILDER = ("local-builder", base64.urlsafe_b64encode(b"b" * 32).decode(), "local-pass")
WALLET_ABI = [
    {"type": "function", "name": n, "stateMutability": "view", "inputs": i, "outputs": o} for n, i, o in [
        ("nonce", [], [{"type": "uint256"}]),
        ("owner", [], [{"type": "address"}]),
        ("sessionSigners", [{"type": "address", "name": "s"}], [{"type": "uint256"}]),
        ("isValidSignature", [{"type": "bytes32", "name": "h"}, {"type": "bytes", "name": "s"}],
         [{"type": "bytes4"}]),
    ]]
ERC20 = [
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"type": "address", "name": "a"}, {"type": "address", "name": "b"}], "outputs": [{"type": "uint256"}]},
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"type": "address", "name": "a"}], "outputs": [{"type": "uint256"}]},
]
ERC1155 = [{"type": "function", "name": "isApprovedForAll", "stateMutability": "view",
            "inputs": [{"type": "address", "name": "a"}, {"type": "address", "name": "b"}],
            "outputs": [{"type": "bool"}]}]


class FakeClobAuth(AppThread):
    """FAKE of the local CLOB's auth and session-signer reads (H-clob builds the real ones)."""

    def __init__(self, relayer):
        app = web.Application()

        async def create_key(_request):
            return web.json_response({"apiKey": secrets.token_hex(8), "passphrase": secrets.token_hex(8),
                                      "secret": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()})

        async def signers(request):
            owner = request.headers["POLY_ADDRESS"]
            wallet = W.deposit_wallet_address(owner, relayer.factory, relayer.beacon)
            return web.json_response(relayer.session_signers(wallet))

        app.add_routes([web.post("/auth/api-key", create_key), web.get("/v1/user/session-signers", signers)])
        super().__init__(app, name="fake-clob-auth", label="fake CLOB auth")


@pytest.fixture(scope="module")
def world_env(tmp_path_factory):
    from web3 import Web3

    node = AnvilNode(home=tmp_path_factory.mktemp("anvil-home"))
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
        world = plant_polymarket(w3, DEV_KEYS[0], n_markets=1)
        # NOTE: Protocol V2's PositionManager (an ERC-1155 setup_trading_approvals reads and approves) is not
        # planted by this branch (H-chain's part): a copy of the CTF mock stands in for it here.
        from copytrade_cli.chain.cheats import Cheats

        Cheats(w3).set_code(POSITION_MANAGER, bytes(w3.eth.get_code(world.ctf)))
        auth = RelayerAuth(builder_keys={BUILDER[0]: BuilderKey(secret=BUILDER[1], passphrase=BUILDER[2])})
        relayer = RelayerServerThread(world, node.url, gas_key=RELAYER_KEY, options=RelayerOptions(auth=auth))
        relayer.start()
        clob = FakeClobAuth(relayer.relayer)
        clob.start()
        from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment

        env = create_environment(name="local", config=replace(
            PRODUCTION_CONFIG, clob_url=clob.base_url, relayer_url=relayer.base_url, rpc_url=node.url,
            relayer_poll_frequency_ms=100))
        yield w3, world, relayer, env
    finally:
        for thing in ("clob", "relayer"):
            if thing in locals():
                locals()[thing].stop()
        node.stop()


def _client(env, key: str, *, builder: bool = False, wallet: str | None = None):
    from polymarket import SecureClient
    from polymarket.auth import BuilderApiKey, RelayerApiKey

    api_key = BuilderApiKey(key=BUILDER[0], secret=BUILDER[1], passphrase=BUILDER[2]) if builder else \
        RelayerApiKey(key="local-relayer-key", address=Account.from_key(key).address)
    return SecureClient.create(private_key=key, environment=env, api_key=api_key, wallet=wallet)


@pytest.fixture(scope="module")
def owner(world_env):
    """One SDK client whose deposit wallet the relayer deployed during create()."""
    _w3, _world, _relayer, env = world_env
    acct = Account.create()
    return acct, _client(env, acct.key.hex())


def _wallet(w3, address):
    return w3.eth.contract(address=address, abi=WALLET_ABI)


def _sign_order(client, exchange: str, token_id: str = "71321045679252212594626385532706912750332728571942532289631379312455583992563"):
    """An order signed by the client's own signing path (SecureClient._sign_order) and its EIP-712 order hash."""
    from polymarket._internal.actions.orders.types import OrderDraft

    draft = OrderDraft(chain_id=137, exchange_address=exchange, expiration=0, funder_address=client.wallet,
                       offered_amount=5_000_000, order_type="GTC", side="BUY", signer=client.signer,
                       requested_amount=10_000_000, asset_id=token_id)
    signed = client._sign_order(draft, post_only=False)
    sig = bytes.fromhex(signed.signature[2:])
    inner = W.unwrap_session_signature(sig)
    body = (inner.inner if inner else sig)
    order_hash = W.keccak(b"\x19\x01" + body[65:97] + body[97:129])
    return sig, order_hash


def test_create_deploys_the_wallet_at_the_derived_address(world_env, owner):
    w3, world, _relayer, _env = world_env
    acct, client = owner
    want = W.deposit_wallet_address(acct.address)
    assert client.wallet == want and client.wallet_type == "DEPOSIT_WALLET"
    assert len(w3.eth.get_code(want)) == 146  # the beacon proxy + its 64 bytes of args
    assert _wallet(w3, want).functions.owner().call() == acct.address
    assert world.relayer_account == RELAYER_ADDRESS


def test_setup_trading_approvals_runs_as_one_wallet_batch(world_env, owner):
    w3, world, relayer, _env = world_env
    _acct, client = owner
    wallet = client.wallet
    pusd = w3.eth.contract(address=world.pusd, abi=ERC20)
    ctf = w3.eth.contract(address=world.ctf, abi=ERC1155)
    assert pusd.functions.allowance(wallet, world.exchange).call() == 0
    gas_before = w3.eth.get_balance(RELAYER_ADDRESS)
    nonce = _wallet(w3, wallet).functions.nonce().call()
    client.setup_trading_approvals().wait()
    assert _wallet(w3, wallet).functions.nonce().call() == nonce + 1
    for spender in (world.exchange, "0xe2222d279d744050d28e00520010520000310F59"):
        assert pusd.functions.allowance(wallet, spender).call() == MAX
        assert ctf.functions.isApprovedForAll(wallet, spender).call() is True
    assert w3.eth.get_balance(RELAYER_ADDRESS) < gas_before  # the relayer paid the gas
    assert w3.eth.get_balance(wallet) == 0


def test_transfer_and_erc1155_approval_change_chain_state(world_env, owner):
    w3, world, _relayer, _env = world_env
    _acct, client = owner
    wallet = client.wallet
    fund_collateral(w3, world, DEV_KEYS[0], wallet, 25, token=world.pusd)
    pusd = w3.eth.contract(address=world.pusd, abi=ERC20)
    to = Account.create().address
    out = client.transfer_erc20(token_address=world.pusd, recipient_address=to, amount=7_500_000).wait()
    assert out.transaction_hash.startswith("0x")
    assert pusd.functions.balanceOf(to).call() == 7_500_000
    assert pusd.functions.balanceOf(wallet).call() == 17_500_000
    operator = Account.create().address
    client.approve_erc1155_for_all(token_address=world.ctf, operator_address=operator).wait()
    assert w3.eth.contract(address=world.ctf, abi=ERC1155).functions.isApprovedForAll(wallet, operator).call()


def test_wallet_validates_the_sdk_order_signature_and_refuses_others(world_env, owner):
    w3, world, _relayer, _env = world_env
    _acct, client = owner
    wallet = _wallet(w3, client.wallet)
    sig, order_hash = _sign_order(client, world.exchange)
    assert len(sig) == 317
    assert wallet.functions.isValidSignature(order_hash, sig).call() == MAGIC
    assert W.recover_1271_signer(order_hash, sig, 137, client.wallet, world.exchange) == client.signer
    tampered = bytearray(sig)
    tampered[140] ^= 1  # the contents type
    assert wallet.functions.isValidSignature(order_hash, bytes(tampered)).call() != MAGIC
    other_hash = bytes([order_hash[0] ^ 1]) + order_hash[1:]
    assert wallet.functions.isValidSignature(other_hash, sig).call() != MAGIC
    # a stranger's well-formed signature (the SDK's signing functions) for this wallet
    stranger_sig, stranger_hash = _stranger_order(Account.create(), client.wallet, world.exchange)
    assert W.recover_1271_signer(stranger_hash, stranger_sig, 137, client.wallet, world.exchange) is not None
    assert wallet.functions.isValidSignature(stranger_hash, stranger_sig).call() != MAGIC


def _stranger_order(acct, wallet, exchange):
    from tests.unit.test_wallets import _sdk_order

    _, sig, order_hash = _sdk_order(acct.key.hex(), wallet, exchange=exchange)
    return sig, order_hash


def _payload(client, w3, *, nonce=None, deadline=None, key=None, to=None, calls=None):
    """A WALLET submit built with the SDK's own payload and signing functions."""
    from polymarket._internal.actions.relayer.calls import erc20_approval_call
    from polymarket._internal.actions.relayer.gasless import build_deposit_wallet_payload
    from polymarket._internal.actions.relayer.signing.deposit_wallet import sign_deposit_wallet_batch

    wallet = client.wallet
    calls = calls or [erc20_approval_call(token_address="0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB",
                                          spender=Account.create().address, amount=5)]
    nonce = str(_wallet(w3, wallet).functions.nonce().call() if nonce is None else nonce)
    deadline = str(deadline if deadline is not None else w3.eth.get_block("latest")["timestamp"] + 600)
    signer = Account.from_key(key) if key else client._ctx.signer
    sig = sign_deposit_wallet_batch(signer, wallet=wallet, calls=calls, nonce=nonce, deadline=deadline, chain_id=137)
    return build_deposit_wallet_payload(signer_address=client.signer, deposit_wallet_factory=to or W.DEPOSIT_WALLET_FACTORY,
                                        wallet=wallet, calls=calls, nonce=nonce, deadline=deadline, signature=sig,
                                        metadata="test")


def _post(relayer, payload, headers=None):
    h = {"RELAYER_API_KEY": "k", "RELAYER_API_KEY_ADDRESS": payload["from"]} if headers is None else headers
    return httpx.post(relayer.base_url + "/submit", json=payload, headers=h, timeout=30)


@pytest.mark.parametrize("case,expect", [
    ("to", "invalid 'to' field: must be deposit wallet factory"),
    ("nonce_high", "batch nonce {n1} does not match on-chain nonce {n}"),
    ("nonce_low", "batch nonce {n0} does not match on-chain nonce {n}"),
    ("deadline", "batch deadline {d} has passed (chain time {t})"),
    ("signature", "invalid signature: the batch is not signed by 'from'"),
    ("auth", "invalid authorization: RELAYER_API_KEY_ADDRESS must be {from}"),
])
def test_bad_batches_are_refused_with_live_text_and_change_nothing(world_env, owner, case, expect):
    w3, _world, relayer, _env = world_env
    _acct, client = owner
    client.setup_trading_approvals()  # make sure the nonce is > 0 so "nonce_low" exists
    n = _wallet(w3, client.wallet).functions.nonce().call()
    t = w3.eth.get_block("latest")["timestamp"]
    headers = None
    if case == "to":
        p = _payload(client, w3, to=Account.create().address)
    elif case == "nonce_high":
        p = _payload(client, w3, nonce=n + 1)
    elif case == "nonce_low":
        p = _payload(client, w3, nonce=n - 1)
    elif case == "deadline":
        p = _payload(client, w3, deadline=t - 1)
    elif case == "signature":
        p = _payload(client, w3, key=Account.create().key.hex())
    else:
        p = _payload(client, w3)
        headers = {"RELAYER_API_KEY": "k", "RELAYER_API_KEY_ADDRESS": Account.create().address}
    block = w3.eth.block_number
    r = _post(relayer, p, headers)
    assert r.status_code == (401 if case == "auth" else 400)
    assert r.json() == {"error": expect.format(n=n, n1=n + 1, n0=n - 1, d=t - 1, t=t, **{"from": client.signer})}
    assert w3.eth.block_number == block  # nothing sent
    assert _wallet(w3, client.wallet).functions.nonce().call() == n


def test_missing_relayer_credentials_are_refused(world_env, owner):
    w3, _world, relayer, _env = world_env
    r = _post(relayer, _payload(owner[1], w3), headers={})
    assert r.status_code == 401 and r.json()["error"].startswith("invalid authorization")


def test_rate_limit_then_busy_then_success(world_env, owner):
    w3, world, relayer, _env = world_env
    _acct, client = owner
    relayer.relayer.inject_faults(rate_limited=2, busy=1, retry_after=1)
    operator = Account.create().address
    t0 = time.time()
    client.approve_erc1155_for_all(token_address=world.ctf, operator_address=operator).wait()
    assert w3.eth.contract(address=world.ctf, abi=ERC1155).functions.isApprovedForAll(client.wallet, operator).call()
    assert relayer.relayer._faults["rate_limited"] == 0 and relayer.relayer._faults["busy"] == 0
    assert time.time() - t0 >= 0.3  # three refusals, each followed by the SDK's poll delay (0.1 s)


def test_rate_limit_answer_carries_retry_after(world_env, owner):
    w3, _world, relayer, _env = world_env
    relayer.relayer.inject_faults(rate_limited=1, retry_after=3)
    r = _post(relayer, _payload(owner[1], w3))
    assert r.status_code == 429 and r.headers["Retry-After"] == "3"
    relayer.relayer.inject_faults()


def test_session_signer_authorised_validates_then_revoked_is_refused(world_env):
    w3, world, relayer, env = world_env
    acct = Account.create()
    owner_client = _client(env, acct.key.hex(), builder=True)
    session = Account.create()
    result = owner_client.authorize_session_key(address=session.address)
    assert result.session_key.address == session.address
    wallet = _wallet(w3, owner_client.wallet)
    assert wallet.functions.sessionSigners(session.address).call() > w3.eth.get_block("latest")["timestamp"]
    session_client = _client(env, session.key.hex(), wallet=owner_client.wallet)
    assert session_client.wallet == owner_client.wallet
    sig, order_hash = _sign_order(session_client, world.exchange)
    assert W.unwrap_session_signature(sig).session_signer == session.address
    assert wallet.functions.isValidSignature(order_hash, sig).call() == MAGIC
    # the session signer's own batch works too (nonce from the relayer's params for the session EOA)
    to = Account.create().address
    fund_collateral(w3, world, DEV_KEYS[0], owner_client.wallet, 2, token=world.pusd)
    session_client.transfer_erc20(token_address=world.pusd, recipient_address=to, amount=1_000_000).wait()
    assert w3.eth.contract(address=world.pusd, abi=ERC20).functions.balanceOf(to).call() == 1_000_000
    owner_client.revoke_session_key(address=session.address)
    deadline = time.time() + 10
    while wallet.functions.sessionSigners(session.address).call() != 0 and time.time() < deadline:
        time.sleep(0.1)
    assert wallet.functions.sessionSigners(session.address).call() == 0
    assert wallet.functions.isValidSignature(order_hash, sig).call() != MAGIC
    assert relayer.relayer.session_signers(owner_client.wallet)["signers"] == []


def test_session_authorization_needs_a_builder_key(world_env, owner):
    from polymarket.errors import UserInputError

    with pytest.raises(UserInputError):
        owner[1].authorize_session_key(address=Account.create().address)


def test_a_reverting_batch_fails_with_the_reason_and_keeps_the_nonce(world_env, owner):
    from polymarket.errors import TransactionFailedError

    w3, world, relayer, _env = world_env
    _acct, client = owner
    n = _wallet(w3, client.wallet).functions.nonce().call()
    block = w3.eth.block_number
    with pytest.raises(TransactionFailedError, match="transaction would revert"):
        client.transfer_erc20(token_address=world.pusd, recipient_address=Account.create().address,
                              amount=10**15).wait()
    assert _wallet(w3, client.wallet).functions.nonce().call() == n and w3.eth.block_number == block
    failed = [t for t in relayer.relayer.txs.values() if t.state.value == "STATE_FAILED"]
    assert failed and failed[-1].hash == ""
