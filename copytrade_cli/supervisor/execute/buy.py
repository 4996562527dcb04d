"""The BUY stage machine.

Standard BUY:     Pull Funds (proxies -> worker, one batch tx) -> Place Order (one FOK order for the sum)
                  -> Push (outcome tokens -> proxies, one batch tx, pro rata) ; refund on failure.
Smart Buffer BUY: Check Buffer (worker float covers the sum) -> Place Order -> Push -> debts recorded;
                  Reimburse (proxies -> worker) runs later, batched (see `reimburse.Reimburser`).
Stages: queued -> (pull_sent ->) funded -> order_built / order_posted -> filled -> push_sent -> complete, or
order_failed -> refund_sent -> refunded (a Smart Buffer group took nothing: failed).
"""
from __future__ import annotations

import time
from decimal import Decimal

from ...chain.reads import erc20_balances
from ..model import GroupStatus, JobStatus
from .allocation import buy_split
from .flow import Flow
from .journal import MICRO, Finished

_HOLDING = ("funded", "order_built", "order_posted", "filled", "order_failed")


class BuyFlow(Flow):
    """A BUY group from its journalled stage to complete / refunded / failed."""

    def run(self) -> str:
        """Drive the BUY from the journalled stage; returns the status it came to."""
        g = self.j.g
        total = sum(leg.usd_micro for leg in self.j.legs)
        buffer = g["flow"] == "buffer"
        stage = g["stage"]
        if stage == "queued":
            self.screen_market()  # under the market's minimum size: skipped before anything moves
            if buffer:
                total = self.screen_legs(None)  # the float pays; a paused proxy could never reimburse it
                if not self._check_buffer(total):
                    self.j.set(flow="standard")
                    return self.run()
            else:
                self._pull_collateral(total)
        elif stage == "pull_sent":
            self.confirm_pull()
        stage = g["stage"]
        total = sum(leg.usd_micro for leg in self.j.legs)  # legs a dry proxy could not pay were dropped before the pull
        if stage in _HOLDING:
            self.hold(total)  # committed to the order / parked on the worker until the settlement is mined
        if stage == "funded":
            self.orders.place("BUY", Decimal(total) / MICRO)
        elif stage in ("order_built", "order_posted"):
            self.orders.reconcile()
        self.release()
        if g["stage"] == "filled":
            self.orders.await_settlement()
            if g["stage"] == "filled":
                # Settled: a Smart Buffer group's spend has left the balance; a Standard group's change is still
                # the proxies' until it is refunded.
                self.hold(0 if buffer else total - g["spent_micro"])
        stage = g["stage"]
        if stage == "filled":
            return self._push_outcome()
        if stage == "push_sent":
            return self.confirm_push()
        if stage == "order_failed":
            return self._refund_collateral()
        if stage == "refund_sent":
            return self.confirm_refund()
        return g["status"]

    def _check_buffer(self, total: int) -> bool:
        """Smart Buffer: does the worker's float (less what its other groups hold) cover the sum? Held if so."""
        t0 = time.time()
        # Reservations first, then the balance: a settlement mined in between is counted twice (safe),
        # never not at all. Check and reservation are one step per worker (several groups may run on it).
        with self.w.check_lock:
            held = self.held_elsewhere()
            have = erc20_balances(self.c.w3, self.c.collateral, [self.w.wallet])[0]  # the float is in the wallet
            have -= held
            if have >= total:
                self.hold(total)
        if have < total:
            self.j.step("Check Buffer", "failed", detail=f"float {have / MICRO:.2f} < {total / MICRO:.2f} USD; "
                        "falling back to Standard", t0=t0)
            return False
        self.j.step("Check Buffer", "ok", detail=f"float {have / MICRO:.2f} USD covers {total / MICRO:.2f}", t0=t0)
        self.j.set(stage="funded")
        return True

    def _pull_collateral(self, total: int) -> None:
        t0 = time.time()
        total = self.screen_legs("collateral")
        self.hold(total)  # the pulled collateral is this group's from the moment it lands: never another's float
        tx = self.tx.send("pullCollateral", self.c.collateral, self.j.proxies(), [leg.usd_micro for leg in self.j.legs],
                          intent={"stage": "pull_sent"}, tx_field="pull_tx")
        self.j.set(stage="pull_sent", pull_tx=tx)
        self.confirm_pull(t0, f"{total / MICRO:.2f} USD from {len(self.j.legs)} proxies")

    def _push_outcome(self) -> str:
        g = self.j.g
        t0 = time.time()
        split = buy_split(self.j.legs, g["filled_shares"], g["spent_micro"], standard=g["flow"] == "standard")
        tx = self.send_push("pushOutcome", self.c.ctf, int(g["token_id"]), self.j.proxies(), split["shares"],
                            split=split)
        self.tx.wait(tx, "push_tx")
        self.c.fault("push")
        return self.confirm_push(t0)

    def _refund_collateral(self) -> str:
        g = self.j.g
        if g["flow"] == "buffer":
            # Nothing was taken from the proxies: the copy simply did not happen.
            self.j.set(stage="failed", status=GroupStatus.FAILED.value)
            self.j.jobs(JobStatus.FAILED.value, g.get("error") or "order failed")
            self.release_caps()
            return GroupStatus.FAILED.value
        return self.send_refund("pushCollateral", self.c.collateral, self.j.proxies(),
                                [leg.usd_micro for leg in self.j.legs])
