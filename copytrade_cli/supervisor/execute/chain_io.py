"""The chain I/O of one group: Executor calls sent on the worker's nonce lane (journalled after signing and
before broadcasting), waits that follow a fee-bumped replacement, receipts, and the crash-test fault hook."""
from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any, Callable

from ...chain.contracts import encode_call
from ...chain.rpc import chain_io, wait_receipt
from ...errors import ChainError

if TYPE_CHECKING:
    from .context import FlowContext, FlowWorker
    from .journal import Journal


def kill_here_if(kill_at: str | None, point: str) -> None:
    """Fault injection for the crash tests: SIGKILL this process at `point`, as `kill -9` would."""
    if kill_at == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _rpc(w3):
    """The connection's plain JSON-RPC client (None when the provider is not HTTP: use web3 then)."""
    io = chain_io(w3)
    return io.rpc if io is not None else None


class GroupChain:
    """Transactions of one group on its worker, and what the node says about them."""

    def __init__(self, ctx: "FlowContext", journal: "Journal", worker: "FlowWorker"):
        self.c, self.j, self.w = ctx, journal, worker
        self._sent: set[str] = set()  # tx hashes this process broadcast (send returned): no need to ask the node
        self._receipts: dict[str, dict[str, Any]] = {}  # receipts already waited for in this run

    def send(self, fn: str, *args, intent: dict[str, Any] | None = None, tx_field: str | None = None,
             journal: Callable[[str], None] | None = None) -> str:
        """Send an Executor call; with `intent`, the stage and the tx hash (`tx_field`) are journalled after
        signing and BEFORE broadcasting, so a crash at any instant leaves a journal that names the tx."""
        data = encode_call("Executor", fn, *args)  # = executor.encode_abi(...), ~15x less CPU
        gas = 120_000 + 60_000 * len(self.j.legs)
        before = journal if intent is None else (lambda h: self.j.set(**intent, **{tx_field: h}))
        h = self.w.lane.send({"to": self.c.executor, "data": data}, gas=gas, before_send=before)
        self._sent.add(h)
        return h

    def never_broadcast(self, tx: str) -> bool:
        """The journalled tx is unknown to the node: the process died between journalling and broadcasting."""
        if tx in self._sent:
            return False  # broadcast by this very run (the node accepted it): only a resume needs to ask
        rr = _rpc(self.c.w3)
        if rr is not None:
            got = rr.batch([("eth_getTransactionByHash", [tx]), ("eth_getTransactionReceipt", [tx])])
            if all(not isinstance(g, Exception) for g in got):
                return not got[0] and not got[1]
        try:
            self.c.w3.eth.get_transaction(tx)
            return False
        except Exception:  # noqa: BLE001 — TransactionNotFound
            try:
                self.c.w3.eth.get_transaction_receipt(tx)
                return False
            except Exception:  # noqa: BLE001
                return True

    def wait(self, tx: str, field: str | None = None) -> dict[str, Any]:
        """Wait for our transaction; one stuck past `stuck_after_s` is re-sent with a higher fee and the
        journal follows the replacement (so a resume waits for the hash that can still be mined)."""
        if tx in self._receipts:
            return self._receipts[tx]  # already mined and checked in this run (one receipt read, not two)
        if tx in self.w.lane.nonce_of:
            def replaced(new: str) -> None:
                """The lane re-sent the tx with a higher fee: follow the new hash."""
                self._sent.add(new)
                if field:
                    self.j.set(**{field: new})

            r = self.w.lane.wait(tx, stuck_after=self.c.stuck_after_s, timeout=max(120.0, 4 * self.c.stuck_after_s),
                                 on_replace=replaced)
        else:
            r = wait_receipt(self.c.w3, tx, timeout=120)
        self._receipts[tx] = r
        return r

    def settled(self, hashes: list[str], timeout: float = 60.0) -> dict[str, int]:
        """Wait until the CLOB's settlement transactions are mined, one batched poll; their receipt statuses.
        One not mined within `timeout` raises (the group stalls and is retried: never pushed blind)."""
        out: dict[str, int] = {}
        if not hashes:
            return out
        rr = _rpc(self.c.w3)
        deadline = time.time() + timeout
        if rr is None:
            for h in hashes:
                try:
                    out[h] = wait_receipt(self.c.w3, h, timeout=max(0.0, deadline - time.time()), check=False)["status"]
                except ChainError as exc:
                    raise ChainError(f"settlement {h} not mined: {exc}") from None
            return out
        io = chain_io(self.c.w3)
        watcher = io.receipts if io is not None else None
        for h in hashes:
            got = watcher.wait_any([h], max(0.0, deadline - time.time()))
            if got is None:
                raise ChainError(f"settlement {h} of order {self.j.g.get('order_id')} not mined within {timeout:.0f}s")
            out[h] = int(got[1]["status"])
        return out

    def receipt(self, h: str) -> dict[str, Any] | None:
        """A mined transaction's receipt in JSON-RPC form (hex status, logs with hex topics and data)."""
        rr = _rpc(self.c.w3)
        if rr is not None:
            return rr.call("eth_getTransactionReceipt", [h])
        r = self.c.w3.eth.get_transaction_receipt(h)
        return {"status": hex(r["status"]),
                "logs": [{"topics": ["0x" + bytes(t).hex() for t in lg["topics"]],
                          "data": "0x" + bytes(lg["data"]).hex(),
                          "transactionHash": "0x" + bytes(lg["transactionHash"]).hex(), "address": lg["address"]}
                         for lg in r["logs"]]}
