"""The mempool channel's trust checks without a node: the operator cache's TTLs and the ghost watcher's verdicts,
against a scripted JSON-RPC stand-in (named as one: the real node is exercised in tests/faults)."""
from __future__ import annotations

import threading

from copytrade_cli.supervisor import detect
from copytrade_cli.supervisor.ghosts import DROPPED, REVERTED, GhostWatcher

EX, OP, NOBODY = "0x" + "aa" * 20, "0x" + "01" * 20, "0x" + "02" * 20
TRUE, FALSE = "0x" + "0" * 63 + "1", "0x" + "0" * 64


class ScriptedRpc:
    """A stand-in for chain.rpc: answers from dicts, counts calls."""

    def __init__(self):
        self.operators: set[str] = {OP}
        self.head = 100
        self.receipts: dict[str, dict] = {}
        self.pool: set[str] = set()
        self.calls: list[str] = []

    def call(self, method, params=None):
        self.calls.append(method)
        assert method == "eth_blockNumber"
        return hex(self.head)

    def batch(self, calls):
        out = []
        for method, params in calls:
            self.calls.append(method)
            if method == "eth_call":
                who = "0x" + params[0]["data"][-40:]
                out.append(TRUE if who in self.operators else FALSE)
            elif method == "eth_getTransactionReceipt":
                out.append(self.receipts.get(params[0]))
            elif method == "eth_getTransactionByHash":
                out.append({"hash": params[0]} if params[0] in self.pool else None)
        return out


def test_operator_cache_ttls(monkeypatch):
    rpc = ScriptedRpc()
    clock = [1000.0]
    monkeypatch.setattr(detect.time, "monotonic", lambda: clock[0])
    cache = detect.OperatorCache(rpc, positive_ttl_s=60, negative_ttl_s=10)
    assert cache.resolve([(EX, OP), (EX, NOBODY), (EX, OP)]) == {(EX, OP): True, (EX, NOBODY): False}
    assert cache.reads == 2  # one batch, each pair once
    rpc.operators.add(NOBODY)  # a new operator
    clock[0] += 9
    assert cache.resolve([(EX, NOBODY)])[(EX, NOBODY)] is False and cache.reads == 2  # cached "no"
    clock[0] += 2  # past the negative TTL: asked again, now yes
    assert cache.resolve([(EX, NOBODY), (EX, OP)]) == {(EX, NOBODY): True, (EX, OP): True} and cache.reads == 3
    rpc.operators.discard(OP)  # removed: believed until the positive TTL runs out
    clock[0] += 50
    assert cache.resolve([(EX, OP)])[(EX, OP)] is False and cache.reads == 4


def test_ghost_watcher_verdicts():
    rpc = ScriptedRpc()
    ghosts = []
    w = GhostWatcher(rpc, lambda h, why: ghosts.append((h, why)), threading.Event(), dropped_after_blocks=5)
    mined, reverted, gone, pending = ("0x" + c * 64 for c in "1234")
    w.check_once()  # reads the head
    for h in (mined, reverted, gone, pending):
        w.watch(h)
    rpc.receipts = {mined: {"status": "0x1"}, reverted: {"status": "0x0"}}
    rpc.pool = {pending}
    assert w.check_once() == [(reverted, REVERTED)]
    assert w.watching() == 2  # the gone one waits for blocks; the pending one is pending
    rpc.head += 4
    assert w.check_once() == []  # gone, but only 4 blocks since the node last knew it
    rpc.head += 1
    assert w.check_once() == [(gone, DROPPED)]
    assert ghosts == [(reverted, REVERTED), (gone, DROPPED)] and w.watching() == 1
    rpc.head += 50
    assert w.check_once() == [] and w.watching() == 1  # still in the pool: not a ghost
