"""The SELL stage machine.

SELL: Pull Tokens (proxies -> worker) -> Place Order (FOK sell) -> Push proceeds pro rata ; tokens pushed back on
failure. Stages: queued -> pull_sent -> funded -> order_built / order_posted -> filled -> push_sent -> complete,
or order_failed -> refund_sent -> refunded.
"""
from __future__ import annotations

import time
from decimal import Decimal

from .allocation import sell_split
from .flow import Flow
from .journal import MICRO


class SellFlow(Flow):
    """A SELL group from its journalled stage to complete / refunded."""

    def run(self) -> str:
        """Drive the SELL from the journalled stage; returns the status it came to."""
        g = self.j.g
        stage = g["stage"]
        total = sum(leg.shares_micro for leg in self.j.legs)
        if stage == "queued":
            self.screen_market()  # under the market's minimum size: skipped before anything moves
            t0 = time.time()
            total = self.screen_legs("outcome")
            tx = self.tx.send("pullOutcome", self.c.ctf, int(g["token_id"]), self.j.proxies(),
                              [leg.shares_micro for leg in self.j.legs], intent={"stage": "pull_sent"},
                              tx_field="pull_tx")
            self.j.set(stage="pull_sent", pull_tx=tx)
            self.confirm_pull(t0, f"{total / MICRO:.2f} shares from {len(self.j.legs)} proxies")
        elif stage == "pull_sent":
            self.confirm_pull()
        stage = g["stage"]
        if stage == "funded":
            self.orders.place("SELL", Decimal(total) / MICRO)
        elif stage in ("order_built", "order_posted"):
            self.orders.reconcile()
        if g["stage"] in ("filled", "push_sent"):
            self.hold(g["proceeds_micro"] or 0)  # the proceeds sit on the worker until pushed
        self.release()
        if g["stage"] == "filled":
            self.orders.await_settlement()
            if g["stage"] == "filled":
                self.hold(g["proceeds_micro"] or 0)
        stage = g["stage"]
        if stage == "filled":
            t0 = time.time()
            split = sell_split(self.j.legs, g["proceeds_micro"])
            self.send_push("pushCollateral", self.c.collateral, self.j.proxies(), split["shares"], split=split)
            return self.confirm_push(t0)
        if stage == "push_sent":
            return self.confirm_push()
        if stage == "order_failed":
            return self.send_refund("pushOutcome", self.c.ctf, int(g["token_id"]), self.j.proxies(),
                                    [leg.shares_micro for leg in self.j.legs])
        if stage == "refund_sent":
            return self.confirm_refund()
        return g["status"]
