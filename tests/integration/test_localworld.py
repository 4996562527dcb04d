"""The offline Polymarket on a real anvil: planting at the mainnet addresses, leader trades that are
visible pending before they are mined (same fill key pending and mined), batches in one tx / one block,
and concurrent settlement through ExchangeClient."""
from __future__ import annotations

import threading
import time

import pytest
from web3 import Web3

from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.localworld.exchange import ExchangeClient, SettlementError
from copytrade_cli.localworld.plant import MARKET_SPECS, plant_polymarket
from copytrade_cli.localworld.trades import leader_batch, leader_trade
from copytrade_cli.localworld.world import (
    DEV_ADDRESSES, DEV_KEYS, EXCHANGE_OPERATOR, MARKET_MAKER, SEED_LEADER, World,
)
from copytrade_cli.polymarket import fills as F
from copytrade_cli.polymarket.addresses import ERC20_ABI, ERC1155_ABI, polymarket_addresses
from copytrade_cli.polymarket.orders import build_signed_order_v2
from tests.conftest import AnvilNode

USDC = 10**6
LEADER2 = DEV_ADDRESSES[5]


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    n = AnvilNode(home=tmp_path_factory.mktemp("anvil-localworld"))
    yield n
    n.stop()


@pytest.fixture(scope="module")
def chain(node):
    return Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))


@pytest.fixture(scope="module")
def world(chain) -> World:
    t = time.perf_counter()
    w = plant_polymarket(chain, DEV_KEYS[0], leaders=[SEED_LEADER, LEADER2])
    print(f"\nplant_polymarket: {time.perf_counter() - t:.2f}s")
    return w


def erc20(w3, addr):
    return w3.eth.contract(address=addr, abi=ERC20_ABI)


def ctf(w3, world):
    return w3.eth.contract(address=world.ctf, abi=ERC1155_ABI)


def positions(w3, world, who, token_id):
    return ctf(w3, world).functions.balanceOf(who, int(token_id)).call()


# ----------------------------------------------------------------------------------------- plant
def test_plant_code_at_mainnet_addresses_and_balances(chain, world):
    real = polymarket_addresses(137)
    assert (world.collateral, world.pusd, world.ctf, world.exchange) == (real.usdc_e, real.pusd, real.ctf,
                                                                        real.exchange_v2)
    for addr in (world.collateral, world.pusd, world.ctf, world.exchange):
        assert len(chain.eth.get_code(addr)) > 100, addr
    from copytrade_cli.chain.contracts import load_artifact

    ex = chain.eth.contract(address=world.exchange, abi=load_artifact("MockExchangeV2").abi)
    assert ex.functions.getCollateral().call() == world.exchange_collateral == world.pusd  # pUSD by default, as live
    assert ex.functions.getCtf().call() == world.ctf
    assert ex.functions.isOperator(world.exchange_operator).call() and ex.functions.isOperator(
        world.trade_operator).call()
    assert world.exchange_operator == DEV_ADDRESSES[EXCHANGE_OPERATOR]
    assert world.market_maker == DEV_ADDRESSES[MARKET_MAKER] and world.leaders == [SEED_LEADER, LEADER2]

    usdc, pusd = erc20(chain, world.collateral), erc20(chain, world.pusd)
    coll = erc20(chain, world.exchange_collateral)  # what the market maker and leaders trade with
    assert usdc.functions.balanceOf(world.whale).call() == 10_000_000 * USDC
    assert pusd.functions.balanceOf(world.whale).call() == 10_000_000 * USDC
    assert coll.functions.balanceOf(world.market_maker).call() == 1_000_000 * USDC
    assert coll.functions.balanceOf(SEED_LEADER).call() == 100_000 * USDC
    assert chain.eth.get_balance(world.whale) > 0
    assert len(world.markets) == len(MARKET_SPECS) == 7 and len({m.condition_id for m in world.markets}) == 7
    for m in world.markets[:3]:  # the long-standing ones the suites trade
        assert m.outcomes == ["Yes", "No"] and m.tick_size == "0.01" and m.min_order_size == 5 and not m.neg_risk
        assert m.fee_rate == 0
    kinds = [(m.tick_size, m.category, m.fee_rate, m.neg_risk, bool(m.tick_changes)) for m in world.markets[3:]]
    assert kinds == [("0.1", "politics", 0.04, False, False), ("0.001", "crypto", 0.07, False, False),
                     ("0.01", "geopolitics", 0.0, False, True), ("0.01", "politics", 0.04, True, False)]
    assert world.neg_risk_exchange == "0xe2222d279d744050d28e00520010520000310F59"
    assert (world.onramp, world.offramp) == ("0x93070a847efEf7F70739046A929D47a521F5B8ee",
                                             "0x2957922Eb93258b93368531d39fAcCA3B4dC5854")
    for m in world.markets:
        for tid in m.token_ids:
            assert positions(chain, world, world.market_maker, tid) == 100_000 * USDC
            assert positions(chain, world, SEED_LEADER, tid) == 1_000 * USDC
    for who in (world.market_maker, *world.leaders):
        for ex in (world.exchange, world.neg_risk_exchange):
            assert coll.functions.allowance(who, ex).call() == 2**256 - 1
            assert ctf(chain, world).functions.isApprovedForAll(who, ex).call()
    assert World.from_json(world.to_json()) == world
    assert "0x59c6995e" not in world.to_json()  # addresses only, never keys


def test_replant_is_idempotent(chain, world):
    usdc = erc20(chain, world.exchange_collateral)
    before = usdc.functions.balanceOf(world.market_maker).call()
    again = plant_polymarket(chain, DEV_KEYS[0], leaders=[SEED_LEADER, LEADER2])
    assert again.model_dump(exclude={"planted_block"}) == world.model_dump(exclude={"planted_block"})
    assert usdc.functions.balanceOf(world.market_maker).call() == before


def test_cheats_layer(chain):
    c = Cheats(chain)
    assert c.kind == "anvil"
    who = "0x" + "42" * 20
    c.set_balance(who, 123)
    assert chain.eth.get_balance(Web3.to_checksum_address(who)) == 123
    c.set_code(who, "6001600055")  # unprefixed hex is accepted too
    assert bytes(chain.eth.get_code(Web3.to_checksum_address(who))) == bytes.fromhex("6001600055")
    c.set_storage_at(who, 0, 7)
    assert int.from_bytes(chain.eth.get_storage_at(Web3.to_checksum_address(who), 0), "big") == 7
    snap = c.snapshot()
    assert c.automine() is True
    c.automine(False)
    assert c.automine() is False
    c.automine(True)
    c.mine(2)
    assert c.revert(snap)


# ----------------------------------------------------------------------------------------- trades
def _watch_pending(w3, world, stop: threading.Event, seen: list):
    flt = w3.eth.filter("pending")
    while not stop.is_set():
        for h in flt.get_new_entries():
            tx = w3.eth.get_transaction(h)
            mined = tx["blockNumber"] is not None
            seen.append((mined, F.decode_pending_tx(tx, world.leaders, exchanges=[world.exchange],
                                                    operators=[world.trade_operator], chain_id=world.chain_id)))
        time.sleep(0.02)


def test_leader_trade_is_pending_first_and_keys_match(chain, world):
    m = world.markets[0]
    yes = m.token_id("Yes")
    usdc = erc20(chain, world.exchange_collateral)
    cash0 = usdc.functions.balanceOf(SEED_LEADER).call()
    pos0 = positions(chain, world, SEED_LEADER, yes)
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=_watch_pending, args=(chain, world, stop, seen))
    watcher.start()
    try:
        time.sleep(0.1)
        res = leader_trade(chain, world, usd=11, price="0.55", pending_ms=500)
    finally:
        time.sleep(0.05)
        stop.set()
        watcher.join()
    assert chain.eth.get_block("latest")["number"] == res.block_number
    [fill] = res.fills
    assert (fill.leader, fill.side, fill.token_id, fill.shares_micro, fill.usd_micro) == (
        SEED_LEADER, "BUY", yes, 20_000_000, 11_000_000)
    assert fill.condition_id == m.condition_id and fill.source == F.SOURCE_LOG_V2
    pending = [fills for mined, fills in seen if not mined and fills]
    assert pending, f"the trade was never seen pending: {seen}"
    assert [f.key for f in pending[0]] == res.keys
    assert usdc.functions.balanceOf(SEED_LEADER).call() == cash0 - 11_000_000
    assert positions(chain, world, SEED_LEADER, yes) == pos0 + 20_000_000
    assert Cheats(chain).automine() is True  # restored

    # The CTF's TransferSingle to the leader (a weaker signal) gives the same key.
    receipt = chain.eth.get_transaction_receipt(res.tx_hash)
    ctf_fills = [f for lg in receipt["logs"] if lg["address"] == world.ctf
                 for f in F.decode_ctf_transfer(lg, [SEED_LEADER])]
    assert [f.key for f in ctf_fills] == res.keys


def test_leader_sell(chain, world):
    no = world.markets[1].token_id("No")
    pos0 = positions(chain, world, SEED_LEADER, no)
    res = leader_trade(chain, world, market_index=1, outcome="No", side="SELL", usd=3, price="0.3", pending_ms=50)
    [fill] = res.fills
    assert (fill.side, fill.shares_micro, fill.usd_micro) == ("SELL", 10_000_000, 3_000_000)
    assert positions(chain, world, SEED_LEADER, no) == pos0 - 10_000_000


def test_leader_batch_one_tx_one_block(chain, world):
    res = leader_batch(chain, world, count=5, leaders=[SEED_LEADER, LEADER2], usd=5, pending_ms=50)
    assert len(res.tx_hashes) == 1 and len(res.fills) == 5 and len(set(res.keys)) == 5
    block = chain.eth.get_block(res.block_number)
    assert [("0x" + bytes(h).hex()) for h in block["transactions"]] == [res.tx_hash]
    assert [f.leader for f in res.fills] == [SEED_LEADER, LEADER2, SEED_LEADER, LEADER2, SEED_LEADER]
    assert {f.tx_hash for f in res.fills} == {res.tx_hash}
    # The mempool decoder, run on the same transaction, predicts exactly these fills.
    tx = chain.eth.get_transaction(res.tx_hash)
    assert sorted(f.key for f in F.decode_pending_tx(tx, world.leaders, exchanges=[world.exchange])) == sorted(res.keys)


def test_leader_batch_across_markets_and_over_16_fills_lands_in_one_block(chain, world):
    res = leader_batch(chain, world, count=34, market_indexes=[0, 2], usd=1, pending_ms=50)
    # 17 fills per market; at most 16 maker orders per matchOrders -> 2 transactions per market.
    assert len(res.fills) == 34 and len(res.tx_hashes) == 4 and len(set(res.keys)) == 34
    blocks = {chain.eth.get_transaction_receipt(h)["blockNumber"] for h in res.tx_hashes}
    assert blocks == {res.block_number}
    assert {f.token_id for f in res.fills} == {world.markets[0].token_ids[0], world.markets[2].token_ids[0]}


def test_interval_mining_node(chain, world):
    c = Cheats(chain)
    c.automine(False)
    chain.provider.make_request("evm_setIntervalMining", [1])
    try:
        res = leader_trade(chain, world, usd=1, pending_ms=50)
        assert len(res.fills) == 1
        assert c.automine() is False  # left as we found it
    finally:
        chain.provider.make_request("evm_setIntervalMining", [0])
        c.automine(True)


# ----------------------------------------------------------------------------------------- ExchangeClient
def _match(world, i, client):
    m = world.markets[i % len(world.markets)]
    tid = m.token_id("Yes")
    shares, usd = 1_000_000 * (i + 1), 500_000 * (i + 1)
    taker = build_signed_order_v2(DEV_KEYS[1], token_id=tid, side="BUY", maker_amount=usd, taker_amount=shares,
                                  chain_id=world.chain_id, exchange=world.exchange)
    maker = build_signed_order_v2(DEV_KEYS[2], token_id=tid, side="SELL", maker_amount=shares, taker_amount=usd,
                                  chain_id=world.chain_id, exchange=world.exchange)
    return m.condition_id, taker, [maker], usd, [shares]


def test_exchange_client_concurrent_settlement(chain, world):
    client = ExchangeClient(chain, world, DEV_KEYS[EXCHANGE_OPERATOR])
    from copytrade_cli.chain.contracts import load_artifact

    ex = chain.eth.contract(address=world.exchange, abi=load_artifact("MockExchangeV2").abi)
    cond, taker, makers, _, _ = _match(world, 0, client)
    from copytrade_cli.polymarket.orders import order_v2_tuple

    assert client.order_hash(taker) == "0x" + bytes(ex.functions.hashOrder(order_v2_tuple(taker)).call()).hex()

    hashes, errors = [], []

    def work(i):
        try:
            hashes.append(client.settle(*_match(world, i, client), wait=False))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    receipts = [client.wait(h) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    nonces = sorted(chain.eth.get_transaction(h)["nonce"] for h in hashes)
    assert nonces == list(range(nonces[0], nonces[0] + 8))


def test_settle_revert_is_reported(chain, world):
    client = ExchangeClient(chain, world, DEV_KEYS[EXCHANGE_OPERATOR])
    m = world.markets[0]
    tid = m.token_id("Yes")
    broke = DEV_KEYS[7]  # no collateral, no approvals
    taker = build_signed_order_v2(broke, token_id=tid, side="BUY", maker_amount=500_000, taker_amount=1_000_000,
                                  chain_id=world.chain_id, exchange=world.exchange)
    maker = build_signed_order_v2(DEV_KEYS[2], token_id=tid, side="SELL", maker_amount=1_000_000,
                                  taker_amount=500_000, chain_id=world.chain_id, exchange=world.exchange)
    with pytest.raises(SettlementError, match="(?i)insufficient|allowance"):
        client.settle(m.condition_id, taker, [maker], 500_000, [1_000_000], simulate=True)
    with pytest.raises(SettlementError, match="(?i)insufficient|allowance"):
        client.settle(m.condition_id, taker, [maker], 500_000, [1_000_000])
    # the lane is still usable afterwards
    assert client.settle(*_match(world, 1, client))


# ----------------------------------------------------------------------------------------- hardhat
@pytest.mark.hardhat
def test_plant_and_trade_on_hardhat(tmp_path):
    from copytrade_cli.chain.node import start_node, stop_pid

    n = start_node("hardhat", port=None, chain_id=137, log_dir=tmp_path / "logs")
    try:
        w3 = Web3(Web3.HTTPProvider(n.rpc_url))
        assert Cheats(w3).kind == "hardhat"
        w = plant_polymarket(w3, DEV_KEYS[0], n_markets=1)
        assert len(w3.eth.get_code(w.exchange)) > 100
        res = leader_trade(w3, w, usd=2, pending_ms=50)
        assert len(res.fills) == 1
        batch = leader_batch(w3, w, count=3, pending_ms=50)
        assert len(batch.tx_hashes) == 1 and len(batch.fills) == 3
    finally:
        stop_pid(n.pid, "hardhat")


def test_unfunded_leader_is_a_clear_error_and_replant_adds_leaders(chain, world):
    from copytrade_cli.errors import FundsError, UsageError

    newcomer = DEV_ADDRESSES[8]
    with pytest.raises(FundsError, match="re-run the fork's plant step"):
        leader_trade(chain, world, leader=newcomer, usd=1, pending_ms=0)
    with pytest.raises(UsageError, match="not a local dev account"):
        leader_trade(chain, world, leader="0x" + "77" * 20, usd=1, pending_ms=0)
    bigger = plant_polymarket(chain, DEV_KEYS[0], leaders=[*world.leaders, newcomer])
    res = leader_trade(chain, bigger, leader=newcomer, usd=1, pending_ms=0)
    assert [f.leader for f in res.fills] == [newcomer]


def test_plant_refuses_a_live_chain_fork(node, tmp_path):
    import subprocess

    from copytrade_cli.errors import DeploymentError
    from tests.conftest import ANVIL_BIN, free_port

    port = free_port()
    proc = subprocess.Popen([str(ANVIL_BIN), "--port", str(port), "--fork-url", node.url, "--silent",
                             "--prune-history"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    try:
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        deadline = time.time() + 10
        while not w3.is_connected() and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(DeploymentError, match="forks"):
            plant_polymarket(w3, DEV_KEYS[0])
    finally:
        proc.terminate()
        proc.wait(5)
