"""Nonce lanes on a real anvil: pipelining, a stuck transaction replaced with a higher fee, auto-refuel."""
from __future__ import annotations

import time

from eth_account import Account

from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.chain.rpc import wait_receipt

from ..conftest import DEV_KEYS


def test_pipelined_sends_then_one_wait(fresh_anvil):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(fresh_anvil.url))
    lane = TxLane(w3, Account.from_key(DEV_KEYS[0]))
    to = Account.create().address
    hashes = [lane.send({"to": to, "value": 1}, gas=21_000) for _ in range(30)]
    assert [lane.nonce_of[h] for h in hashes] == list(range(30))
    for h in hashes:
        wait_receipt(w3, h)
    assert w3.eth.get_balance(to) == 30


def test_stuck_transaction_is_replaced_and_journalled(fresh_anvil):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(fresh_anvil.url))
    cheats = Cheats(w3)
    lane = TxLane(w3, Account.from_key(DEV_KEYS[1]))
    to = Account.create().address
    cheats.automine(False)
    replaced = []
    try:
        h = lane.send({"to": to, "value": 7}, gas=21_000)
        import threading

        def mine_later():
            time.sleep(1.0)
            cheats.mine()

        threading.Thread(target=mine_later).start()
        r = lane.wait(h, stuck_after=0.3, timeout=10, on_replace=replaced.append)
    finally:
        cheats.automine(True)
    assert replaced, "the stuck transaction was not replaced"
    assert "0x" + bytes(r["transactionHash"]).hex() in replaced
    assert w3.eth.get_balance(to) == 7  # same nonce: paid once
    assert w3.eth.get_transaction_count(lane.address) == 1


def test_refuel_tops_up_only_low_workers(fresh_anvil):
    from web3 import Web3

    from copytrade_cli.supervisor.fleet import Fleet

    w3 = Web3(Web3.HTTPProvider(fresh_anvil.url))
    workers = [Account.create() for _ in range(3)]
    funder = TxLane(w3, Account.from_key(DEV_KEYS[0]))
    Cheats(w3).set_balance(workers[0].address, 10**19)
    fleet = Fleet(w3, workers)
    sent = fleet.refuel(funder, 10**18, 2 * 10**18)
    assert len(sent) == 2
    assert [w3.eth.get_balance(w.address) for w in workers] == [10**19, 2 * 10**18, 2 * 10**18]
