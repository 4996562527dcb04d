"""The reimburser: Smart Buffer debts (what a proxy owes the worker whose float paid its copy), repaid later,
batched per worker, with the same write-ahead rule as the flows (debts marked "paying" with the tx before it
is broadcast)."""
from __future__ import annotations

import logging
import time
from typing import Any

from ...chain.contracts import encode_call
from ...chain.reads import FAILED, erc20_balances, read_many, view
from ...chain.rpc import wait_receipt
from ...errors import ChainError
from .admission import MAX_LEGS
from .context import FlowContext
from .flow import LEG_STATUS

log = logging.getLogger("copytrade.flows")


class Reimburser:
    """Smart Buffer: pull what proxies owe their workers, batched per worker, asynchronously."""

    def __init__(self, ctx: FlowContext, fleet, batch: int = 100):
        self.c, self.fleet, self.batch = ctx, fleet, batch
        self._warned: dict[str, int] = {}  # proxy -> leg status already logged (one warning per change)

    def run_once(self) -> int:
        """Repay open debts of this fleet's workers; returns how many debts were paid.

        Per worker, debts are summed per proxy (one leg per proxy, however many copies it owes for), the
        proxies' balances are read in one batched request, and each chunk is one `pullCollateral`. The debts
        are journalled as "paying" with the tx hash BEFORE it is broadcast, so after a crash they are settled
        from that transaction's fate (mined: paid; reverted or never sent: open again), never pulled twice."""
        self._settle_in_flight()
        paid = 0
        debts = [d for d in self.c.state.open_debts() if d["status"] == "open"]
        by_worker: dict[str, list[dict[str, Any]]] = {}
        for d in debts:
            if d["worker"].lower() in self.fleet.by_address:
                by_worker.setdefault(d["worker"].lower(), []).append(d)
        for addr, rows in by_worker.items():
            legs = self._payable(rows)
            if not legs:
                continue
            with self.fleet.checkout(addr) as w:
                for i in range(0, len(legs), self.batch):
                    paid += self._pay(w, legs[i:i + self.batch])
        return paid

    def _payable(self, rows: list[dict[str, Any]]) -> list[tuple[str, int, list[dict[str, Any]]]]:
        """(proxy, amount, debts) per proxy: its debts oldest first, as far as the proxy's balance goes."""
        per_proxy: dict[str, list[dict[str, Any]]] = {}
        for d in rows:
            per_proxy.setdefault(d["proxy"], []).append(d)
        proxies = list(per_proxy)
        balances, status = self._balances(proxies)
        legs: list[tuple[str, int, list[dict[str, Any]]]] = []
        for p in proxies:
            code = int(status.get(p, 0))
            if code:
                # A paused or foreign proxy would revert the whole batch: its debts stay open (repaid once the
                # proxy is usable again), the other proxies are repaid now.
                if self._warned.get(p) != code:
                    self._warned[p] = code
                    log.warning("Smart Buffer debts of proxy %s not reimbursed for now: %s", p,
                                LEG_STATUS.get(code, f"leg status {code}"))
                continue
            self._warned.pop(p, None)
            owed, take = 0, []
            for d in per_proxy[p]:
                if owed + d["amount"] > balances.get(p, 0):
                    break
                owed += d["amount"]
                take.append(d)
            if take:
                legs.append((p, owed, take))
        return legs

    def _pay(self, w, chunk: list[tuple[str, int, list[dict[str, Any]]]]) -> int:
        """One `pullCollateral` for a chunk of proxies; the number of debts it paid."""
        payable = [d for _p, _a, ds in chunk for d in ds]
        self.c.fault("reimburse")
        t0 = time.time()
        data = encode_call("Executor", "pullCollateral", self.c.collateral, [p for p, _a, _d in chunk],
                           [a for _p, a, _d in chunk])
        ids = [d["id"] for d in payable]
        tx = w.lane.send({"to": self.c.executor, "data": data}, gas=120_000 + 60_000 * len(chunk),
                         before_send=lambda h, ids=ids: self.c.state.mark_debts_paying(ids, h))
        try:
            wait_receipt(self.c.w3, tx, timeout=120)
        except ChainError:
            self.c.state.reopen_debts(ids)  # reverted or lost: nothing was pulled
            raise
        with self.c.state.transaction():
            self.c.state.mark_debts_paid(ids, tx)
            for gid in sorted({d["group_id"] for d in payable}):
                self.c.state.add_step(group_id=gid, step="Reimburse", status="ok", tx_hash=tx,
                                      ms=(time.time() - t0) * 1000)
        if self.c.on_step is not None:
            self.c.on_step("Reimburse", "ok", time.time() - t0)
        for gid in sorted({d["group_id"] for d in payable}):
            self.c.report(gid, "Reimburse", f"{len(payable)} debts, tx {tx}")
        return len(payable)

    def _balances(self, proxies: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        """The proxies' collateral and their `Executor.legStatus` (0 ok), in one batch; a status that cannot be
        read counts as ok (the pull then says)."""
        reads = [view(self.c.executor, "legStatus(address[])", proxies, returns="uint256[]")]
        reads += [view(self.c.collateral, "balanceOf(address)", p, returns="uint256") for p in proxies]
        got = read_many(self.c.w3, reads) if len(proxies) <= MAX_LEGS else [FAILED] * len(reads)
        status = {} if got[0] is FAILED or len(got[0]) != len(proxies) else dict(zip(proxies, got[0]))
        if all(v is not FAILED for v in got[1:]):
            return dict(zip(proxies, got[1:])), status
        try:
            return dict(zip(proxies, erc20_balances(self.c.w3, self.c.collateral, proxies))), status
        except ChainError:
            pass  # one more time through web3 (its own retries), per proxy
        token = self.c.contracts.get("erc20", self.c.collateral)
        return {p: token.functions.balanceOf(p).call() for p in proxies}, status

    def _settle_in_flight(self) -> None:
        """Debts journalled as being paid by a tx when the process stopped: paid if it was mined, open again if
        it reverted or never reached the node; left alone while it is still pending."""
        rows = [d for d in self.c.state.paying_debts() if d["worker"].lower() in self.fleet.by_address]
        by_tx: dict[str, list[int]] = {}
        for d in rows:
            by_tx.setdefault(d["paid_tx"], []).append(d["id"])
        for tx, ids in by_tx.items():
            try:
                r = self.c.w3.eth.get_transaction_receipt(tx)
            except Exception:  # noqa: BLE001 — not mined (yet?)
                r = None
            if r is not None:
                if r["status"] == 1:
                    self.c.state.mark_debts_paid(ids, tx)
                else:
                    self.c.state.reopen_debts(ids)
                continue
            try:
                self.c.w3.eth.get_transaction(tx)  # still pending: wait for it
            except Exception:  # noqa: BLE001 — unknown to the node: it was never broadcast
                self.c.state.reopen_debts(ids)
