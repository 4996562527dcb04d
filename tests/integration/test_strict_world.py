"""The planted world refuses what live refuses (issue #13), on a real anvil behind the tip guard, the world planted
with pUSD as the exchanges' collateral: on-chain order signatures (types 0-3), operator-only matching, the trading
pause, the max fee rate, V2 fees in pUSD charged to the taker, the neg-risk exchange's own domain, pUSD's
onramp/offramp, and the node's 25-gwei tip floor (bor's error text)."""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.lanes import GWEI, FeeOracle, TxLane, floor_fees
from copytrade_cli.chain.node import start_node, stop_pid
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.localworld.exchange import ExchangeClient, SettlementError, taker_fee
from copytrade_cli.localworld.plant import fund_collateral, plant_polymarket, wrap_as
from copytrade_cli.polymarket.addresses import ERC20_ABI, exchange_v2_abi
from copytrade_cli.polymarket.orders import order_v2_digest, order_v2_tuple
from copytrade_cli.polymarket.world import DEV_KEYS

USDC = 10**6
Z32 = "0x" + "00" * 32
DEPLOYER, LEADER, MM, OPERATOR, STRANGER, OWNER = (Account.from_key(DEV_KEYS[i]) for i in (0, 1, 2, 3, 7, 6))
FLOOR_TEXT = "transaction gas price below minimum: gas tip cap {}, minimum needed 25000000000"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = start_node("anvil", port=None, chain_id=137, log_dir=tmp_path_factory.mktemp("strict"))
    yield n
    stop_pid(n.pid, "anvil")


@pytest.fixture(scope="module")
def w3(node):
    return Web3(Web3.HTTPProvider(node.rpc_url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="module")
def world(w3):
    return plant_polymarket(w3, DEV_KEYS[0], exchange_collateral="pusd")


@pytest.fixture(autouse=True)
def isolated(w3, world):
    cheats = Cheats(w3)
    snap = cheats.snapshot()
    yield
    cheats.revert(snap)


def order(key: str, token: int | str, side: str, making: int, taking: int, exchange: str, *, maker: str | None = None,
          signer: str | None = None, sig_type: int = 0, sign_with: str | None = None, salt: int = 7) -> dict:
    """A V2 order dict signed (plain EIP-712 digest) by `sign_with` or `key`."""
    me = Account.from_key(key).address
    o = {"salt": salt, "maker": maker or me, "signer": signer or me, "tokenId": str(token),
         "makerAmount": str(making), "takerAmount": str(taking), "side": side, "signatureType": sig_type,
         "timestamp": "1764547200000", "metadata": Z32, "builder": Z32}
    digest = order_v2_digest(order_v2_tuple({**o, "signature": b""}), 137, exchange)
    o["signature"] = "0x" + bytes(Account._sign_hash(digest, private_key=sign_with or key).signature).hex()
    return o


def erc20(w3, addr):
    return w3.eth.contract(address=addr, abi=ERC20_ABI)


def reason(fn, sender) -> str:
    """The revert reason of an eth_call of `fn` from `sender` ('' if it does not revert)."""
    try:
        fn.call({"from": sender})
    except ContractLogicError as exc:
        return str(exc)
    return ""


def ex(w3, world, neg_risk=False):
    abi = C.load_artifact("MockExchangeV2").abi
    return w3.eth.contract(address=world.neg_risk_exchange if neg_risk else world.exchange, abi=abi)


def buy_vs_sell(world, market, *, exchange=None, shares=10 * USDC, price=0.5, taker_key=DEV_KEYS[1], **taker_kw):
    """(taker BUY order of the leader, maker SELL order of the market maker, taker fill, maker fill)."""
    exchange = exchange or world.exchange
    tok = market.token_ids[0]
    usd = int(shares * price)
    t = order(taker_key, tok, "BUY", usd, shares, exchange, **taker_kw)
    m = order(DEV_KEYS[2], tok, "SELL", shares, usd, exchange)
    return t, m, usd, shares


# ------------------------------------------------------------------------------------------------ fees
def test_valid_match_charges_the_taker_fee_in_pusd_on_top(w3, world):
    m = world.market(3)  # politics, 0.04, tick 0.1
    t, mk, usd, shares = buy_vs_sell(world, m)
    fee = taker_fee(shares, "0.5", m.fee_rate, m.fee_exponent)
    assert fee == 100_000  # 10 shares x 0.04 x 0.25
    pusd = erc20(w3, world.pusd)
    before = [pusd.functions.balanceOf(a).call() for a in (LEADER.address, MM.address, DEPLOYER.address)]
    client = ExchangeClient(w3, world, DEV_KEYS[3])
    h = client.settle(m.condition_id, t, [mk], usd, [shares], taker_fee=fee, simulate=True)
    after = [pusd.functions.balanceOf(a).call() for a in (LEADER.address, MM.address, DEPLOYER.address)]
    assert [a - b for a, b in zip(after, before)] == [-(usd + fee), usd, fee]  # deployer = fee receiver
    rc = w3.eth.get_transaction_receipt(h)
    pkg = w3.eth.contract(address=world.exchange, abi=exchange_v2_abi())
    fills = pkg.events.OrderFilled().process_receipt(rc, errors=DISCARD)
    assert [f["args"]["fee"] for f in fills] == [0, fee]
    assert [e["args"]["amount"] for e in pkg.events.FeeCharged().process_receipt(rc, errors=DISCARD)] == [fee]


def test_fee_above_the_max_rate_is_refused(w3, world):
    m = world.market(4)
    t, mk, usd, shares = buy_vs_sell(world, m)
    client = ExchangeClient(w3, world, DEV_KEYS[3])
    assert ex(w3, world).functions.getMaxFeeRate().call() == 1000
    tx = client.build_tx(m.condition_id, t, [mk], usd, [shares], taker_fee=usd // 10 + 1)  # > 10% of cash
    with pytest.raises(SettlementError, match="FeeExceedsMaxRate"):
        client.simulate(tx)
    client.simulate(client.build_tx(m.condition_id, t, [mk], usd, [shares], taker_fee=usd // 10))  # at the cap: fine
    assert "MaxFeeRateExceedsCeiling" in reason(ex(w3, world).functions.setMaxFeeRate(10_000), DEPLOYER.address)
    assert "NotAdmin" in reason(ex(w3, world).functions.setMaxFeeRate(100), STRANGER.address)


# ------------------------------------------------------------------------------------------ operator, pause
def test_only_an_operator_may_match(w3, world):
    m = world.market(0)
    t, mk, usd, shares = buy_vs_sell(world, m)
    stranger = ExchangeClient(w3, world, DEV_KEYS[7])
    with pytest.raises(SettlementError, match="NotOperator"):
        stranger.simulate(stranger.build_tx(m.condition_id, t, [mk], usd, [shares]))


def test_paused_exchange_refuses_matches_until_unpaused(w3, world):
    m = world.market(0)
    t, mk, usd, shares = buy_vs_sell(world, m)
    e = ex(w3, world)
    assert "NotAdmin" in reason(e.functions.pauseTrading(), STRANGER.address)
    lane = TxLane(w3, DEPLOYER)
    lane.transact({"to": e.address, "data": e.encode_abi("pauseTrading", args=[])})
    assert e.functions.paused().call()
    client = ExchangeClient(w3, world, DEV_KEYS[3])
    with pytest.raises(SettlementError, match="Paused"):
        client.simulate(client.build_tx(m.condition_id, t, [mk], usd, [shares]))
    lane.transact({"to": e.address, "data": e.encode_abi("unpauseTrading", args=[])})
    client.settle(m.condition_id, t, [mk], usd, [shares], simulate=True)


# ------------------------------------------------------------------------------------------------ signatures
def test_type0_bad_signatures_are_refused_on_chain(w3, world):
    m = world.market(0)
    client = ExchangeClient(w3, world, DEV_KEYS[3])
    _, mk, usd, shares = buy_vs_sell(world, m)
    cases = {
        "signed by a stranger": buy_vs_sell(world, m, sign_with=DEV_KEYS[7])[0],
        "maker is not the signer": buy_vs_sell(world, m, maker=MM.address)[0],
        "signed for the neg-risk exchange": buy_vs_sell(world, m, exchange=world.neg_risk_exchange)[0],
        "POLY_PROXY type, maker is the EOA, not its proxy": buy_vs_sell(world, m, sig_type=1)[0],
    }
    for what, bad in cases.items():
        with pytest.raises(SettlementError, match="InvalidSignature"):
            client.simulate(client.build_tx(m.condition_id, bad, [mk], usd, [shares]))
        assert what  # each case refused
    tampered = dict(buy_vs_sell(world, m)[0], makerAmount=str(usd + 1))  # signature no longer covers the order
    with pytest.raises(SettlementError, match="InvalidSignature"):
        client.simulate(client.build_tx(m.condition_id, tampered, [mk], usd, [shares]))


def test_type1_and_2_makers_must_be_the_signers_create2_proxy_or_safe(w3, world):
    from copytrade_cli.localworld.clob_orders import poly_proxy_wallet, poly_safe_wallet

    e = ex(w3, world)
    # the exchange derives exactly what the local CLOB (and Polymarket's relayer clients) derive
    assert e.functions.getProxyWalletAddress(LEADER.address).call() == poly_proxy_wallet(LEADER.address)
    assert e.functions.getSafeWalletAddress(LEADER.address).call() == poly_safe_wallet(LEADER.address)
    tok = world.market(0).token_ids[0]
    for sig_type, owned in ((1, poly_proxy_wallet(LEADER.address)), (2, poly_safe_wallet(LEADER.address))):
        for maker, ok in ((owned, True), (STRANGER.address, False), (LEADER.address, False)):
            tup = order_v2_tuple(order(DEV_KEYS[1], tok, "BUY", 5 * USDC, 10 * USDC, world.exchange, maker=maker,
                                       sig_type=sig_type))
            h = e.functions.hashOrder(tup).call()
            got = reason(e.functions.validateOrderSignature(h, tup), OPERATOR.address)
            assert (got == "") if ok else ("InvalidSignature" in got), (sig_type, maker)
        # the right wallet, someone else's signature
        tup = order_v2_tuple(order(DEV_KEYS[1], tok, "BUY", 5 * USDC, 10 * USDC, world.exchange, maker=owned,
                                   sig_type=sig_type, sign_with=DEV_KEYS[7]))
        assert "InvalidSignature" in reason(e.functions.validateOrderSignature(e.functions.hashOrder(tup).call(), tup),
                                            OPERATOR.address)


def test_type3_checks_the_wallets_erc1271_answer(w3, world):
    m = world.market(0)
    tok = int(m.token_ids[0])
    wallet = C.deploy(w3, DEPLOYER, "Mock1271Wallet", OWNER.address)[0]
    w = C.contract(w3, "Mock1271Wallet", wallet)
    fund_collateral(w3, world, DEV_KEYS[0], wallet, 20)
    pusd = erc20(w3, world.pusd)
    lane = TxLane(w3, OWNER)
    lane.transact({"to": wallet, "data": w.encode_abi("call", args=[
        world.pusd, bytes.fromhex(pusd.encode_abi("approve", args=[world.exchange, 2**256 - 1])[2:])])}, gas=200_000)
    _, mk, usd, shares = buy_vs_sell(world, m)
    client = ExchangeClient(w3, world, DEV_KEYS[3])

    def taker(**kw):
        return order(DEV_KEYS[6], tok, "BUY", usd, shares, world.exchange, maker=wallet, signer=wallet, sig_type=3, **kw)

    for bad in (taker(sign_with=DEV_KEYS[7]),  # a stranger's signature: the wallet says no
                order(DEV_KEYS[6], tok, "BUY", usd, shares, world.exchange, sig_type=3),  # maker has no code
                order(DEV_KEYS[6], tok, "BUY", usd, shares, world.exchange, maker=wallet, sig_type=3)):  # signer != maker
        with pytest.raises(SettlementError, match="InvalidSignature"):
            client.simulate(client.build_tx(m.condition_id, bad, [mk], usd, [shares]))
    client.settle(m.condition_id, taker(), [mk], usd, [shares], simulate=True)
    ctf = w3.eth.contract(address=world.ctf, abi=[{"type": "function", "name": "balanceOf", "stateMutability": "view",
                                                   "inputs": [{"name": "a", "type": "address"}, {"name": "i", "type": "uint256"}],
                                                   "outputs": [{"name": "", "type": "uint256"}]}])
    assert ctf.functions.balanceOf(wallet, tok).call() == shares
    assert pusd.functions.balanceOf(wallet).call() == 20 * USDC - usd


# ------------------------------------------------------------------------------------------------ neg-risk
def test_neg_risk_market_settles_on_its_own_exchange(w3, world):
    m = world.market(6)
    assert m.neg_risk and world.neg_risk_exchange != world.exchange
    nr = ExchangeClient.for_market(w3, world, DEV_KEYS[3], m)
    assert nr.exchange == world.neg_risk_exchange
    wrong, mk, usd, shares = buy_vs_sell(world, m)  # signed for the standard exchange
    _, mk_nr, _, _ = buy_vs_sell(world, m, exchange=world.neg_risk_exchange)
    with pytest.raises(SettlementError, match="InvalidSignature"):
        nr.simulate(nr.build_tx(m.condition_id, wrong, [mk_nr], usd, [shares]))
    t, mk_nr, usd, shares = buy_vs_sell(world, m, exchange=world.neg_risk_exchange)
    h = nr.settle(m.condition_id, t, [mk_nr], usd, [shares], taker_fee=taker_fee(shares, "0.5", m.fee_rate),
                  simulate=True)
    rc = w3.eth.get_transaction_receipt(h)
    pkg = w3.eth.contract(address=world.neg_risk_exchange, abi=exchange_v2_abi())
    assert len(pkg.events.OrdersMatched().process_receipt(rc, errors=DISCARD)) == 1
    assert nr.order_hash(t) == "0x" + ex(w3, world, neg_risk=True).functions.hashOrder(order_v2_tuple(t)).call().hex()
    assert nr.order_hash(t) != ExchangeClient(w3, world, DEV_KEYS[3]).order_hash(t)


# ------------------------------------------------------------------------------------------------ pUSD ramps
def test_pusd_wraps_and_unwraps_one_to_one_through_the_ramps(w3, world):
    usdce, pusd = erc20(w3, world.collateral), erc20(w3, world.pusd)
    ramp_abi = C.load_artifact("MockCollateralRamp").abi
    on = w3.eth.contract(address=world.onramp, abi=ramp_abi)
    off = w3.eth.contract(address=world.offramp, abi=ramp_abi)
    whale = world.whale
    # no allowance: refused with Solady SafeTransferLib's error, nothing moves
    assert "TransferFromFailed" in reason(on.functions.wrap(world.collateral, whale, 5 * USDC), whale)
    u0, p0, locked0 = (usdce.functions.balanceOf(whale).call(), pusd.functions.balanceOf(whale).call(),
                       usdce.functions.balanceOf(world.pusd).call())
    wrap_as(w3, world, whale, 5)
    assert usdce.functions.balanceOf(whale).call() == u0 - 5 * USDC
    assert pusd.functions.balanceOf(whale).call() == p0 + 5 * USDC
    assert usdce.functions.balanceOf(world.pusd).call() == locked0 + 5 * USDC  # the backing is locked in pUSD
    # unwrap: pUSD allowance to the offramp needed, then 1:1 back
    assert "TransferFromFailed" in reason(off.functions.unwrap(world.collateral, whale, 2 * USDC), whale)
    Cheats(w3).impersonate(whale)
    for tx in ({"to": world.pusd, "data": pusd.encode_abi("approve", args=[world.offramp, 2 * USDC])},
               {"to": world.offramp, "data": off.encode_abi("unwrap", args=[world.collateral, whale, 2 * USDC])}):
        wait_receipt(w3, "0x" + bytes(w3.eth.send_transaction({"from": whale, "gas": 200_000, **floor_fees(w3), **tx})).hex())
    assert usdce.functions.balanceOf(whale).call() == u0 - 3 * USDC
    assert pusd.functions.balanceOf(whale).call() == p0 + 3 * USDC
    # pUSD is minted only by its wrappers (the ramps) and the planting minter
    tok = C.contract(w3, "MockCollateralToken", world.pusd)
    assert "Unauthorized" in reason(tok.functions.mint(whale, 1), whale)
    assert "Unauthorized" in reason(tok.functions.wrap(world.collateral, whale, 1, "0x" + "00" * 20, b""), whale)
    assert "InvalidAsset" in reason(on.functions.wrap(world.pusd, whale, 0), whale)


# ------------------------------------------------------------------------------------------------ tip floor
def _raw(w3, acct, tip_wei, *, legacy_price=None):
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    tx = {"chainId": 137, "nonce": w3.eth.get_transaction_count(acct.address, "pending"), "to": acct.address,
          "value": 0, "gas": 21_000}
    if legacy_price is not None:
        tx["gasPrice"] = legacy_price
    else:
        tx.update(maxFeePerGas=2 * base + tip_wei, maxPriorityFeePerGas=tip_wei)
    return "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()


def test_node_refuses_tips_under_25_gwei_with_bors_text(node, w3):
    acct = STRANGER
    nonce = w3.eth.get_transaction_count(acct.address)
    answer = w3.provider.make_request("eth_sendRawTransaction", [_raw(w3, acct, 1 * GWEI)])
    assert answer["error"] == {"code": -32000, "message": FLOOR_TEXT.format(10**9)}
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    legacy = w3.provider.make_request("eth_sendRawTransaction", [_raw(w3, acct, 0, legacy_price=base + 24 * GWEI)])
    assert legacy["error"]["message"] == FLOOR_TEXT.format(24 * GWEI)
    unlocked = w3.provider.make_request("eth_sendTransaction", [{
        "from": w3.eth.accounts[0], "to": acct.address, "maxPriorityFeePerGas": hex(GWEI), "maxFeePerGas": hex(2 * base + GWEI)}])
    assert unlocked["error"]["message"] == FLOOR_TEXT.format(GWEI)
    body = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [_raw(w3, acct, GWEI)]},
                       {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": []}]).encode()
    req = urllib.request.Request(node.rpc_url, body, {"Content-Type": "application/json"})
    got = {a["id"]: a for a in json.loads(urllib.request.urlopen(req, timeout=10).read())}
    assert got[1]["error"]["message"] == FLOOR_TEXT.format(GWEI) and got[2]["result"] == "0x89"
    assert w3.eth.get_transaction_count(acct.address, "pending") == nonce  # nothing reached the pool
    h = w3.eth.send_raw_transaction(_raw(w3, acct, 25 * GWEI))
    assert w3.eth.wait_for_transaction_receipt(h, timeout=30)["status"] == 1


def test_our_senders_tip_at_least_the_floor(w3):
    assert FeeOracle(w3, priority_gwei=1).fees()["maxPriorityFeePerGas"] == 25 * GWEI
    bumped = FeeOracle(w3, priority_gwei=1).fees(bump=1.3)
    assert bumped["maxPriorityFeePerGas"] >= 25 * GWEI and bumped["maxFeePerGas"] > bumped["maxPriorityFeePerGas"]

    class S:
        copy_trading_min_priority_fee_gwei = 30

    assert FeeOracle.from_settings(w3, S()).fees()["maxPriorityFeePerGas"] == 30 * GWEI
    rc = TxLane(w3, STRANGER).transact({"to": STRANGER.address, "value": 0}, gas=21_000)
    assert w3.eth.get_transaction(rc["transactionHash"])["maxPriorityFeePerGas"] == 25 * GWEI


# ------------------------------------------------------------------------------------------------ real CTF
def test_real_ctf_planted_with_its_erc165_registrations(w3, world):
    from copytrade_cli.localworld.real_ctf import INTERFACE_IDS, ctf_abi, deploy_real_ctf, interface_slot, runtime_code

    assert bytes(w3.eth.get_code(world.ctf)) == runtime_code()
    ctf = w3.eth.contract(address=world.ctf, abi=ctf_abi())
    assert [ctf.functions.supportsInterface(i).call() for i in INTERFACE_IDS] == [True, True]
    assert not ctf.functions.supportsInterface(bytes.fromhex("deadbeef")).call()
    # the slot we write is where the real constructor writes
    fresh = deploy_real_ctf(w3, DEPLOYER)
    for iid in INTERFACE_IDS:
        assert int.from_bytes(w3.eth.get_storage_at(fresh, interface_slot(iid)), "big") == 1
    # the real CTF calls onERC1155Received: a contract without it cannot receive outcome tokens
    tok = int(world.market(0).token_ids[0])
    assert reason(ctf.functions.safeTransferFrom(MM.address, world.onramp, tok, 1, b""), MM.address) != ""
    assert reason(ctf.functions.safeTransferFrom(MM.address, STRANGER.address, tok, 1, b""), MM.address) == ""


@pytest.mark.timeout(180)
def test_real_ctf_and_strict_exchange_on_hardhat(tmp_path):
    n = start_node("hardhat", port=None, chain_id=137, log_dir=tmp_path / "logs")
    try:
        hw3 = Web3(Web3.HTTPProvider(n.rpc_url, request_kwargs={"timeout": 60}))
        world = plant_polymarket(hw3, DEV_KEYS[0], n_markets=1, exchange_collateral="pusd")
        from copytrade_cli.localworld.real_ctf import ctf_abi, runtime_code

        assert bytes(hw3.eth.get_code(world.ctf)) == runtime_code()
        ctf = hw3.eth.contract(address=world.ctf, abi=ctf_abi())
        assert ctf.functions.supportsInterface(bytes.fromhex("d9b67a26")).call()
        m = world.market(0)
        t, mk, usd, shares = buy_vs_sell(world, m)
        ExchangeClient(hw3, world, DEV_KEYS[3]).settle(m.condition_id, t, [mk], usd, [shares], simulate=True)
        assert ctf.functions.balanceOf(LEADER.address, int(m.token_ids[0])).call() == 1_000 * USDC + shares
        assert "transaction gas price below minimum" in str(
            hw3.provider.make_request("eth_sendRawTransaction", [_raw(hw3, STRANGER, GWEI)]))
    finally:
        stop_pid(n.pid, "hardhat")
    assert Path(n.log_path).exists()
