"""Order placement: the group's one CLOB order, posted once (its id journalled before posting), reconciled by id
after a crash or a lost answer, its fill taken from the CLOB's answer or from the settlement's `OrderFilled`
logs (never from balance deltas: other orders of the same worker may settle meanwhile)."""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

from ...errors import ClobError
from ...polymarket.fills import ORDER_FILLED_V2_TOPIC, DecodeError, decode_order_filled_v2
from .journal import MICRO

if TYPE_CHECKING:
    from .chain_io import GroupChain
    from .context import FlowWorker
    from .journal import Journal

log = logging.getLogger("copytrade.flows")
_FILLED = ("MATCHED", "FILLED", "MINED", "CONFIRMED")


def order_fill(receipts: Iterable[dict[str, Any] | None], order_id: str) -> tuple[int, int]:
    """What order `order_id` gave and got in these settlement receipts (reverted ones count nothing): the taker
    log (topic orderHash = our order id) says what we got; what we gave is what the makers took from us (their
    logs in the same transaction), or the taker log's making without any. Logs go through the checked decoder
    of `polymarket.fills`; one that carries the topic but fails its checks is not counted."""
    oid = str(order_id).lower()
    gave = got = 0
    for r in receipts:
        if not r or int(str(r.get("status") or "0x0"), 16) != 1:
            continue
        mine, makers = None, 0
        for lg in r.get("logs") or []:
            topics = lg.get("topics") or []
            if not topics or str(topics[0]).lower() != ORDER_FILLED_V2_TOPIC:
                continue
            try:
                f = decode_order_filled_v2(lg)
            except DecodeError as exc:
                log.warning("order %s: settlement log not counted: %s", oid, exc)
                continue
            if f is None:
                continue
            # The log's own order: BUY gave USD (making) for shares (taking); SELL the other way round.
            making, taking = (f.usd_micro, f.shares_micro) if f.side == "BUY" else (f.shares_micro, f.usd_micro)
            if f.order_hash == oid:
                mine = (making, taking)
            else:
                makers += taking  # what this maker took (from us, the transaction's one taker)
        if mine is not None:
            got += mine[1]
            gave += makers if makers else mine[0]
    return gave, got


class OrderDesk:
    """Places, reconciles and records the group's order on its worker's CLOB client."""

    def __init__(self, journal: "Journal", chain: "GroupChain", worker: "FlowWorker"):
        self.j, self.tx, self.w = journal, chain, worker

    def place(self, side: str, amount: Decimal) -> None:
        """Build (journal `order_built` with its id), post once, and journal the outcome."""
        g = self.j.g
        t0 = time.time()
        signed, wire, order_id = self.w.clob.build_market_order(g["token_id"], side, amount, Decimal(g["price_limit"]))
        self.j.set(stage="order_built", order_id=order_id, order_json=json.dumps({"wire": wire}))
        try:
            placed = self.w.clob.post(signed, order_id, wire)
            self.j.c.fault("order")
        except ClobError as exc:
            # Outcome unknown (timeout after posting?): never re-post blindly; reconcile by querying.
            self.j.step("Place Order", "unknown", detail=str(exc), t0=t0)
            self.j.set(stage="order_posted")
            self.reconcile()
            return
        self.j.later(t_order_accepted=time.time() if placed.accepted else None)
        if not placed.accepted:
            self.j.step("Place Order", "failed", detail=f"{side} {amount} rejected: {placed.error}", t0=t0)
            self.j.set(stage="order_failed", error=placed.error)
            return
        gave, got = placed.making_micro, placed.taking_micro
        if gave is not None and got is not None and (gave < 0 or got < 0):
            gave = got = None  # a negative amount is no answer: the settlement's logs say what was filled
        if gave is not None and gave > self.planned():
            # The CLOB claims the order gave more than it was for: never charge beyond the plan. The logs of the
            # settlement are checked before anything is pushed (`await_settlement`).
            self.discrepancy(f"the CLOB reported {side} making {gave / MICRO:.6f}, more than the order's "
                             f"{self.planned() / MICRO:.6f}; capped")
            gave = self.planned()
        if gave is None or got is None:
            # The CLOB did not say how much was filled: the settlement's own logs say it (exact).
            gave, got = self.fill_from_chain(placed.tx_hashes)
        # NOTE: no balance deltas: with the worker given back after this, other orders of the same worker
        # may settle meanwhile. The settlement itself is awaited after the worker is given back.
        self.record_fill(side, t0, placed.tx_hashes, gave, got)

    def planned(self) -> int:
        """What the order was for: a BUY's USD (the sum of its legs), a SELL's shares."""
        field = "usd_micro" if self.j.g["side"] == "BUY" else "shares_micro"
        return sum(getattr(leg, field) for leg in self.j.legs)

    def discrepancy(self, detail: str) -> None:
        """Journal (and report) a difference between what the CLOB said and what the order / the chain says."""
        log.warning("group %s: %s", self.j.gid, detail)
        self.j.step("Settlement", "mismatch", detail=detail[:300])
        self.j.c.report(self.j.gid, "Settlement", f"mismatch: {detail[:160]}")

    def fill_from_chain(self, hashes: list[str]) -> tuple[int, int]:
        """What our order gave and got, from its settlement transactions once they are mined."""
        self.tx.settled(hashes)
        return order_fill((self.tx.receipt(h) for h in hashes), self.j.g["order_id"])

    def record_fill(self, side: str, t0: float | None, txs: list[str] | None, gave: int, got: int) -> None:
        """Journal the fill (stage `filled`) from what the order gave and got, with its settlement txs."""
        g = self.j.g
        order_json = json.dumps({**self.j.order_info(), "settle_txs": list(txs or [])})
        if side == "BUY":
            filled, spent = got, gave
            if filled <= 0:
                self.j.step("Place Order", "failed", detail="order accepted but nothing filled", t0=t0)
                self.j.set(stage="order_failed", error="nothing filled")
                return
            fields = {"stage": "filled", "filled_shares": filled, "spent_micro": spent}
            detail = f"BUY filled {filled / MICRO:.2f} shares for {spent / MICRO:.2f} USD"
        else:
            sold, proceeds = gave, got
            if sold <= 0:
                self.j.step("Place Order", "failed", detail="order accepted but nothing sold", t0=t0)
                self.j.set(stage="order_failed", error="nothing sold")
                return
            fields = {"stage": "filled", "filled_shares": sold, "proceeds_micro": proceeds}
            detail = f"SELL {sold / MICRO:.2f} shares for {proceeds / MICRO:.2f} USD"
        with self.j.batch():
            self.j.set(**fields, order_json=order_json)
            self.j.step("Place Order", "ok", tx=(txs or [None])[0],
                        detail=f"{detail} (order {g['order_id'][:10]}…)", t0=t0)

    def reconcile(self) -> None:
        """After a crash or a lost response: ask the CLOB what became of the journalled order id."""
        g = self.j.g
        try:
            rec = self.w.clob.lookup(g["order_id"])
        except ClobError as exc:
            raise ClobError(f"cannot reconcile order {g['order_id']}: {exc}") from None
        status = str((rec or {}).get("status", "")).upper()
        if rec and status in _FILLED:
            # The amounts come from the settlement's logs, never from balance deltas: other orders of this
            # worker may have settled since this one was built.
            hashes = None
            deadline = time.time() + 10.0
            while True:
                try:
                    hashes = self.w.clob.settlement_txs(rec)
                except ClobError as exc:
                    raise ClobError(f"cannot reconcile order {g['order_id']}: {exc}") from None
                if hashes is not None or time.time() > deadline:
                    break
                time.sleep(0.25)
            if hashes is None:
                raise ClobError(f"order {g['order_id']} matched but its settlement is not known yet")
            gave, got = self.fill_from_chain(hashes)
            self.record_fill(g["side"], None, hashes, gave, got)
        else:
            self.j.step("Place Order", "failed", detail=f"order {g['order_id'][:10]}… not filled "
                                                        f"({status or 'unknown to the CLOB'}); refunding")
            self.j.set(stage="order_failed", error=f"order {status or 'not found'}")

    def await_settlement(self) -> None:
        """Stage `filled`: the CLOB's settlement transactions must be mined before anything is pushed; then the
        fill journalled from the CLOB's answer is checked against the settlement's `OrderFilled` logs (through
        the checked decoder): where they differ (a settlement reverted, or the answer claimed more) the logs'
        amounts, capped at what the order was for, are what the followers are charged, the difference journalled."""
        g = self.j.g
        hashes = self.j.order_info().get("settle_txs") or []
        if not hashes:
            return
        statuses = self.tx.settled(hashes)
        gave, got = order_fill((self.tx.receipt(h) for h in hashes), g["order_id"])
        side = g["side"]
        # Before anyone is charged: what the settlement's OrderFilled logs say this order gave and got is the
        # fill, never more than the order was for. The CLOB's answer is only taken where the logs agree.
        gave = min(gave, self.planned())
        filled, paid = (got, gave) if side == "BUY" else (gave, got)
        booked = (g["filled_shares"], g["spent_micro" if side == "BUY" else "proceeds_micro"])
        if (filled, paid) == booked:
            return
        if all(v == 1 for v in statuses.values()):
            self.discrepancy(f"the CLOB's answer (filled {booked[0] / MICRO:.6f}, "
                             f"{'spent' if side == 'BUY' else 'proceeds'} {(booked[1] or 0) / MICRO:.6f}) differs "
                             f"from the settlement's logs ({filled / MICRO:.6f}, {paid / MICRO:.6f}); "
                             "charging what the logs say")
        else:
            log.warning("group %s: a settlement of order %s reverted; filled %d (not %d)", self.j.gid,
                        g["order_id"], filled, g["filled_shares"])
        if filled <= 0:
            reverted = not all(v == 1 for v in statuses.values())
            why = "settlement reverted" if reverted else "the settlement's logs show nothing filled for this order"
            with self.j.batch():
                self.j.step("Settlement", "failed", detail=f"{why}: nothing filled")
                self.j.set(stage="order_failed", error=why)
            return
        money = {"spent_micro": paid} if side == "BUY" else {"proceeds_micro": paid}
        self.j.set(filled_shares=filled, **money)
