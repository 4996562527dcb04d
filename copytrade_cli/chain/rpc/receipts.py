"""Waiting for receipts: the one batched watcher bound to a connection, and the plain web3 poll."""
from __future__ import annotations

import threading
import time
from typing import Any

from ...errors import ChainError


def essentials(r: dict[str, Any]) -> dict[str, Any]:
    """A raw JSON-RPC receipt as {transactionHash, status, gasUsed, blockNumber, effectiveGasPrice} (ints)."""
    from hexbytes import HexBytes

    return {"transactionHash": HexBytes(r.get("transactionHash") or "0x"), "status": int(r.get("status") or "0x0", 16),
            "gasUsed": int(r.get("gasUsed") or "0x0", 16), "blockNumber": int(r.get("blockNumber") or "0x0", 16),
            "effectiveGasPrice": int(r.get("effectiveGasPrice") or "0x0", 16)}


class ReceiptWatcher:
    """One poller for every transaction the connection waits on: each tick asks for all the pending receipts in
    ONE JSON-RPC batch and wakes the waiters whose transaction was mined. Twenty workers polling their own
    receipts every 20 ms were ~1,000 requests/s to the node (and most of the supervisor's CPU)."""

    def __init__(self, rpc, poll_s: float = 0.02):
        self.rpc, self.poll_s = rpc, poll_s
        self._cv = threading.Condition()
        self._want: dict[str, int] = {}  # tx hash -> number of waiters
        self._got: dict[str, dict[str, Any]] = {}
        self._events: dict[str, list[threading.Event]] = {}  # tx hash -> the waiters' events
        self._thread: threading.Thread | None = None
        self.polls = 0

    def wait_any(self, hashes: list[str], timeout: float) -> tuple[str, dict[str, Any]] | None:
        """The first of `hashes` to be mined, with its receipt, or None after `timeout` seconds."""
        keys = [h.lower() for h in hashes]
        deadline = time.time() + max(0.0, timeout)
        # NOTE: each waiter sleeps on its own Event, set only when one of ITS hashes is mined. A shared
        # Condition with notify_all woke every waiting group thread on every mined receipt: with ~100 groups
        # in flight that was thousands of GIL hand-offs per second and every group's wait got slower.
        ev = threading.Event()
        with self._cv:
            for k in keys:
                self._want[k] = self._want.get(k, 0) + 1
                self._events.setdefault(k, []).append(ev)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="receipt-watcher", daemon=True)
                self._thread.start()
            self._cv.notify()  # the watcher: something new to poll
        try:
            while True:
                with self._cv:
                    ev.clear()
                    for h, k in zip(hashes, keys):
                        r = self._got.get(k)
                        if r is not None:
                            return h, r
                left = deadline - time.time()
                if left <= 0:
                    return None
                ev.wait(left)
        finally:
            with self._cv:
                for k in keys:
                    evs = self._events.get(k)
                    if evs is not None:
                        try:
                            evs.remove(ev)
                        except ValueError:
                            pass
                        if not evs:
                            self._events.pop(k, None)
                    n = self._want.get(k, 0) - 1
                    if n <= 0:
                        self._want.pop(k, None)
                        self._got.pop(k, None)
                    else:
                        self._want[k] = n

    def _run(self) -> None:
        idle = 0
        while True:
            with self._cv:
                want = [k for k in self._want if k not in self._got]
                if not want:
                    if not self._want:
                        idle += 1
                        if idle > 500:  # ~10 s with nothing to watch: let the thread go
                            self._thread = None
                            return
                    self._cv.wait(self.poll_s)
                    continue
            idle = 0
            try:
                got = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in want])
            except Exception:  # noqa: BLE001 — node unreachable: waiters keep their own deadlines
                got = [None] * len(want)
            self.polls += 1
            with self._cv:
                for k, r in zip(want, got):
                    if r and not isinstance(r, Exception) and k in self._want:
                        self._got[k] = essentials(r)
                        for ev in self._events.get(k, ()):
                            ev.set()
            time.sleep(self.poll_s)


def wait_receipt(w3, tx_hash: str, timeout: float = 60, poll: float = 0.02, check: bool = True) -> dict[str, Any]:
    """Wait for a receipt over web3 (the full receipt, with logs); raise ChainError if it reverted (when `check`)."""
    deadline = time.time() + timeout
    while True:
        try:
            r = w3.eth.get_transaction_receipt(tx_hash)
            if r is not None:
                if check and r["status"] != 1:
                    raise ChainError(f"transaction {tx_hash} reverted (gas used {r['gasUsed']})")
                return r
        except ChainError:
            raise
        except Exception:  # noqa: BLE001 — TransactionNotFound until mined
            pass
        if time.time() > deadline:
            raise ChainError(f"transaction {tx_hash} not mined within {timeout:.0f}s")
        time.sleep(poll)
