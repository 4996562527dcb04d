"""The worker fleet: one worker = a signer key (one nonce lane: it sends the Executor calls and pays their gas) + its
trading wallet (the deposit wallet that holds its pUSD float and outcome tokens and makes its CLOB orders, LIVE-2026
§6) + one CLOB session; each runs up to SUPERVISOR_GROUPS_PER_WORKER job groups at once (slots), refuelled with gas
from the funder when low."""
from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..chain.lanes import FeeOracle, TxLane

from ..chain.rpc import wait_receipt
from ..errors import CopytradeError

log = logging.getLogger("copytrade.fleet")
REFUEL_BELOW_WEI = 5 * 10**17   # 0.5 POL: below this a worker is topped up
REFUEL_TOP_UP_WEI = 2 * 10**18  # by 2 POL


@dataclass
class Worker:
    """One worker: its signer `account` (+ nonce lane) and its trading `wallet`."""

    index: int
    account: Any
    lane: TxLane
    clob: Any = None
    wallet: str = ""
    """The trading (deposit) wallet: where the Executor pulls collateral and outcome tokens to and pushes them
    from (`Executor.walletOf(signer)`), the maker of the worker's orders; = the signer for an EOA worker."""
    jobs_done: int = 0
    # Collateral (1e-6 units) that groups still running on this worker after giving it back (order accepted,
    # settlement/push pending) have committed or parked on it: not float a Smart Buffer check may spend.
    reserved: dict = field(default_factory=dict)
    _res_lock: Any = field(default_factory=threading.Lock, repr=False)
    # Held across a Smart Buffer check and its reservation: two groups on this worker never both count the same
    # float (several groups may run on one worker at once, SUPERVISOR_GROUPS_PER_WORKER).
    check_lock: Any = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not self.wallet:
            self.wallet = getattr(self.clob, "wallet", None) or self.account.address

    @property
    def address(self) -> str:
        """The signer's address (the lane, the Executor's `isWorker`, the group's `worker`)."""
        return self.account.address

    def reserve(self, group_id: str, amount: int) -> None:
        """Set (or with 0 drop) what group `group_id` holds of this worker's collateral."""
        with self._res_lock:
            if amount > 0:
                self.reserved[group_id] = int(amount)
            else:
                self.reserved.pop(group_id, None)

    def reserved_except(self, group_id: str) -> int:
        """Collateral held by the other groups in flight on this worker."""
        with self._res_lock:
            return sum(v for k, v in self.reserved.items() if k != group_id)


class Lease:
    """One checkout of a worker; `give_back()` returns it to the fleet early (idempotent: a lease never
    returns a worker that has since been handed to someone else)."""

    def __init__(self, fleet: "Fleet", worker: Worker):
        self.fleet, self.worker, self._done = fleet, worker, False

    def give_back(self) -> None:
        with self.fleet._cv:
            if self._done:
                return
            self._done = True
            self.fleet._put(self.worker)
            self.fleet._cv.notify_all()


class Fleet:
    """The pool of workers; `checkout()` / `lease()` hand out a worker slot: each worker runs up to
    `per_worker` groups at once (up to their orders' outcomes when the groups give it back early)."""

    def __init__(self, w3, accounts: list, *, clob_factory=None, fees: FeeOracle | None = None, per_worker: int = 1,
                 wallets: list[str] | None = None):
        self.w3 = w3
        self.fees = fees or FeeOracle(w3)
        chain_id = w3.eth.chain_id
        # A worker's wallet: `wallets[i]`, else its CLOB gateway's (the SDK-derived deposit wallet), else the signer.
        self.workers = [Worker(i, a, TxLane(w3, a, chain_id=chain_id, fees=self.fees),
                               clob=clob_factory(a) if clob_factory is not None else None,
                               wallet=wallets[i] if wallets is not None else "")
                        for i, a in enumerate(accounts)]
        self.by_address = {w.address.lower(): w for w in self.workers}
        # NOTE: free workers (LIFO, see _take) under one condition: taking a specific worker (a resumed group, the
        # reimburser) waits for THAT worker without taking the others out of circulation meanwhile (a queue
        # scan held every free worker hostage until the wanted one came back, starving the dispatcher).
        self._cv = threading.Condition()
        self.per_worker = max(1, int(per_worker))
        self._free: dict[str, Worker] = {}  # workers with at least one free slot, in the order they were freed
        self._slots: dict[str, int] = {}  # free slots per worker
        for w in self.workers:
            self._free[w.address.lower()] = w
            self._slots[w.address.lower()] = self.per_worker

    def _put(self, w: Worker) -> None:
        """One slot of `w` is free again (caller holds the condition)."""
        a = w.address.lower()
        self._slots[a] = min(self.per_worker, self._slots.get(a, 0) + 1)
        self._free.pop(a, None)
        self._free[a] = w  # most recently freed last (LIFO pick)

    def _pop(self, a: str) -> Worker:
        """Take one slot of worker `a` (caller holds the condition; `a` has a free slot)."""
        w = self._free[a]
        self._slots[a] -= 1
        if self._slots[a] <= 0:
            del self._free[a]
        return w

    def __len__(self) -> int:
        return len(self.workers)

    @contextlib.contextmanager
    def checkout(self, address: str | None = None, timeout: float | None = None) -> Iterator[Worker]:
        """Take a free worker (or a specific one, waiting until it is free) for the duration of a block."""
        with self.lease(address, timeout) as lease:
            yield lease.worker

    @contextlib.contextmanager
    def lease(self, address: str | None = None, timeout: float | None = None) -> Iterator[Lease]:
        """Like `checkout`, but the holder may give the worker back before the block ends (`give_back()`)."""
        lease = Lease(self, self._take(address, timeout))
        try:
            yield lease
        finally:
            lease.give_back()

    def _take(self, address: str | None, timeout: float | None) -> Worker:
        want = address.lower() if address is not None else None
        if want is not None and want not in self.by_address:
            raise CopytradeError(f"worker {address} is not in this instance's fleet (check COPY_TRADING_WORKER_INDEX)")
        deadline = None if timeout is None else time.time() + timeout
        with self._cv:
            while True:
                if want is None and self._free:
                    # LIFO: the worker freed last goes first, so under light load a few workers do the work
                    # and the Smart Buffer debts they front accumulate on them (reimbursed in fewer, bigger
                    # batches: one leg per proxy per worker and round).
                    return self._pop(next(reversed(self._free)))
                if want is not None and want in self._free:
                    return self._pop(want)
                left = None if deadline is None else deadline - time.time()
                if left is not None and left <= 0:
                    raise CopytradeError("no free worker")
                self._cv.wait(left)

    def status(self, registered: set[str] | None = None, min_gas_wei: int = 10**16) -> dict[str, Any]:
        """Readiness of every worker: gas held and (if given) registration on the Executor."""
        rows = []
        for w in self.workers:
            bal = self.w3.eth.get_balance(w.address)
            ok = bal >= min_gas_wei and (registered is None or w.address.lower() in registered)
            rows.append({"address": w.address, "wallet": w.wallet, "gas_wei": bal, "registered": None if registered is None
                         else w.address.lower() in registered, "ready": ok})
        return {"ready": sum(r["ready"] for r in rows), "total": len(rows), "workers": rows}

    def refuel(self, funder: TxLane, threshold_wei: int, top_up_wei: int) -> list[str]:
        """Send gas from the funder to every worker below the threshold; returns the tx hashes."""
        hashes = []
        for w in self.workers:
            if self.w3.eth.get_balance(w.address) < threshold_wei:
                hashes.append(funder.send({"to": w.address, "value": top_up_wei}, gas=21_000))
        for h in hashes:
            wait_receipt(self.w3, h)
        if hashes:
            log.info("refuelled %d workers", len(hashes))
        return hashes

    def resync_nonces(self) -> None:
        """Re-read every lane's nonce (after a restart or a detected gap)."""
        for w in self.workers:
            w.lane.resync()
