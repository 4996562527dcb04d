"""Order placement: the group's one CLOB order, sized by the market's rules (tick, taker fee inside the budget,
minimum size), posted once (its id journalled before posting), reconciled by id after a crash or a lost answer,
its settlement followed by trade status (MATCHED / MINED / RETRYING wait, CONFIRMED settles with its tx hash,
FAILED fills nothing; each transition journalled), its fill taken from the settlement's `OrderFilled` logs (never
from balance deltas: other orders of the same worker may settle meanwhile), the taker fee included."""
from __future__ import annotations

import json
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

from ...errors import ClobError
from ...polymarket.clob import settlement_of
from ...polymarket.fills import ORDER_FILLED_V2_TOPIC, DecodeError, decode_order_filled_v2
from ...polymarket.market_rules import below_minimum, buy_budget, on_tick
from .journal import MICRO

if TYPE_CHECKING:
    from .chain_io import GroupChain
    from .context import FlowWorker
    from .journal import Journal

log = logging.getLogger("copytrade.flows")
_FILLED = ("MATCHED", "FILLED", "MINED", "CONFIRMED")
SETTLE_TIMEOUT_S = 60.0  # how long one run waits for an order's trades to be final (then it stalls and resumes)
_POLL_S = 0.25  # the SDK's own settlement poll interval


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


def order_fee(receipts: Iterable[dict[str, Any] | None], order_id: str) -> int:
    """The taker fee our order `order_id` paid in these settlement receipts (the `fee` word of its own
    `OrderFilled` logs, pUSD micro units; reverted receipts and logs failing the decoder's checks count nothing)."""
    oid = str(order_id).lower()
    fee = 0
    for r in receipts:
        if not r or int(str(r.get("status") or "0x0"), 16) != 1:
            continue
        for lg in r.get("logs") or []:
            topics = lg.get("topics") or []
            if not topics or str(topics[0]).lower() != ORDER_FILLED_V2_TOPIC:
                continue
            try:
                f = decode_order_filled_v2(lg)
            except DecodeError:
                continue
            if f is None or f.order_hash != oid:
                continue
            data = bytes.fromhex(str(lg.get("data") or "0x")[2:])
            fee += int.from_bytes(data[128:160], "big")  # (side, tokenId, making, taking, fee, builder, metadata)
    return fee


class OrderDesk:
    """Sizes, places, reconciles and settles the group's order on its worker's CLOB client."""

    def __init__(self, journal: "Journal", chain: "GroupChain", worker: "FlowWorker"):
        self.j, self.tx, self.w = journal, chain, worker
        self.settle_timeout_s = float(getattr(journal.c, "settle_timeout_s", SETTLE_TIMEOUT_S))
        self._rules = None

    # --- the market's rules -------------------------------------------------------------------------------
    def rules(self, fresh: bool = False):
        """The market's order rules (tick, neg-risk, fee, minimum size), read once per run (again with `fresh`)."""
        if self._rules is None or fresh:
            market = getattr(self.w.clob, "market", None)
            self._rules = market(self.j.g["token_id"]) if market is not None else None
        return self._rules

    def limit(self, rules) -> Decimal:
        """The group's price limit on the market's tick grid (never moved to a worse price)."""
        lim = Decimal(self.j.g["price_limit"])
        return on_tick(lim, self.j.g["side"], rules.tick) if rules is not None else lim

    def sized(self, total: int) -> tuple[int, str | None]:
        """(what the order is for, why it cannot be placed): a BUY's budget leaves room for the taker fee at the
        worst price it can fill at, so order + fee <= what the legs put in; under the market's minimum size the
        order is not placed (the reason is the skip's)."""
        side = self.j.g["side"]
        try:
            rules = self.rules()
        except ClobError as exc:
            log.warning("group %s: market rules unreadable (%s); the CLOB's answer decides", self.j.gid, exc)
            return total, None
        if rules is None:
            return total, None
        lim = self.limit(rules)
        amount = buy_budget(total, rules, lim) if side == "BUY" else total
        why = below_minimum(side, amount, lim, rules)
        if why is None and amount <= 0:
            why = f"order of {total / MICRO:.2f} USD leaves nothing once the taker fee is paid"
        return amount, why

    def below_minimum(self) -> str | None:
        """Before anything moves: why the group's order would be under the market's minimum size (or None)."""
        field = "usd_micro" if self.j.g["side"] == "BUY" else "shares_micro"
        return self.sized(sum(getattr(leg, field) for leg in self.j.legs))[1]

    # --- place --------------------------------------------------------------------------------------------
    def place(self, side: str, amount: Decimal) -> None:
        """Size by the market's rules, build (journal `order_built` with its id), post once, journal the outcome
        and the order's trades (their settlement is followed by `await_settlement`)."""
        g = self.j.g
        t0 = time.time()
        order_amount, why = self.sized(int((Decimal(amount) * MICRO).to_integral_value()))
        if why is not None:
            with self.j.batch():
                self.j.step("Place Order", "failed", detail=f"not placed: {why}", t0=t0)
                self.j.set(stage="order_failed", error=why[:300])
            return
        rules = self._rules
        kwargs = {"rules": rules} if rules is not None else {}
        lim = self.limit(rules)
        try:
            signed, wire, order_id = self.w.clob.build_market_order(g["token_id"], side,
                                                                    Decimal(order_amount) / MICRO, lim, **kwargs)
        except ClobError as exc:
            # Nothing was posted (no id journalled): the order cannot be made as it stands; the money goes back.
            with self.j.batch():
                self.j.step("Place Order", "failed", detail=str(exc)[:300], t0=t0)
                self.j.set(stage="order_failed", error=str(exc)[:300])
            return
        info = {"wire": wire, "limit": str(lim), "order_micro": order_amount}
        if rules is not None:
            info["rules"] = {"tick": str(rules.tick), "neg_risk": rules.neg_risk, "fee_rate": str(rules.fee_rate),
                             "fee_exponent": str(rules.fee_exponent), "min_size": str(rules.min_size)}
        self.j.set(stage="order_built", order_id=order_id, order_json=json.dumps(info))
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
        trades = {tid: {"status": "MATCHED", "tx": None} for tid in placed.trade_ids}
        if gave is None or got is None:
            if trades:
                gave = got = 0  # provisional: the settlement's logs say what was filled
            else:
                # The CLOB did not say how much was filled: the settlement's own logs say it (exact).
                gave, got = self.fill_from_chain(placed.tx_hashes)
        # NOTE: no balance deltas: with the worker given back after this, other orders of the same worker
        # may settle meanwhile. The settlement itself is awaited after the worker is given back.
        self.record_fill(side, t0, placed.tx_hashes if not trades else [], gave, got, trades=trades)

    def planned(self) -> int:
        """What the order may spend: a BUY's USD (the sum of its legs, fee included), a SELL's shares."""
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

    def record_fill(self, side: str, t0: float | None, txs: list[str] | None, gave: int, got: int,
                    trades: dict[str, dict[str, Any]] | None = None) -> None:
        """Journal the fill (stage `filled`) from what the order gave and got, with its settlement txs (or the
        trades whose settlement is still to come: then the amounts are provisional, the logs decide)."""
        g = self.j.g
        order_json = json.dumps({**self.j.order_info(), "settle_txs": list(txs or []), "trades": trades or {}})
        pending = bool(trades)
        if side == "BUY":
            filled, spent = got, gave
            if filled <= 0 and not pending:
                self.j.step("Place Order", "failed", detail="order accepted but nothing filled", t0=t0)
                self.j.set(stage="order_failed", error="nothing filled")
                return
            fields = {"stage": "filled", "filled_shares": filled, "spent_micro": spent}
            detail = f"BUY filled {filled / MICRO:.2f} shares for {spent / MICRO:.2f} USD"
        else:
            sold, proceeds = gave, got
            if sold <= 0 and not pending:
                self.j.step("Place Order", "failed", detail="order accepted but nothing sold", t0=t0)
                self.j.set(stage="order_failed", error="nothing sold")
                return
            fields = {"stage": "filled", "filled_shares": sold, "proceeds_micro": proceeds}
            detail = f"SELL {sold / MICRO:.2f} shares for {proceeds / MICRO:.2f} USD"
        if pending:
            detail += f"; settling ({len(trades)} trade{'s' if len(trades) != 1 else ''})"
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
            ids = [str(t) for t in rec.get("associate_trades") or []]
            if ids and hasattr(self.w.clob, "trades"):
                # Its trades are followed like a fresh order's: journalled, then settled by status.
                self.record_fill(g["side"], None, [], 0, 0,
                                 trades={**{t: {"status": "MATCHED", "tx": None} for t in ids},
                                         **self.j.order_info().get("trades", {})})
                return
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
                time.sleep(_POLL_S)
            if hashes is None:
                raise ClobError(f"order {g['order_id']} matched but its settlement is not known yet")
            gave, got = self.fill_from_chain(hashes)
            self.record_fill(g["side"], None, hashes, gave, got)
        else:
            self.j.step("Place Order", "failed", detail=f"order {g['order_id'][:10]}… not filled "
                                                        f"({status or 'unknown to the CLOB'}); refunding")
            self.j.set(stage="order_failed", error=f"order {status or 'not found'}")

    # --- settlement ---------------------------------------------------------------------------------------
    def follow_trades(self) -> list[str] | None:
        """Stage `filled` with trades to settle: poll their status until every one is final (each transition
        journalled in `order_json`, so a restart resumes from it and a FAILED order is refunded once). Returns
        the hashes of the CONFIRMED trades; None when every trade FAILED (journalled `order_failed`); raises
        ClobError (the group stalls and resumes later) when they are not final within the timeout."""
        info = self.j.order_info()
        trades: dict[str, dict[str, Any]] = dict(info.get("trades") or {})
        if not trades or info.get("settled"):
            return list(info.get("settle_txs") or [])
        deadline = time.time() + self.settle_timeout_s
        while True:
            seen = self.w.clob.trades(list(trades))
            moved = [f"{tid[:12]} {trades[tid].get('status')}->{t['status']}"
                     + (f" tx {t['tx']}" if t.get("tx") and t.get("tx") != trades[tid].get("tx") else "")
                     for tid, t in seen.items() if tid in trades and (t["status"], t.get("tx")) !=
                     (trades[tid].get("status"), trades[tid].get("tx"))]
            for tid, t in seen.items():
                if tid in trades:
                    trades[tid] = {"status": t["status"], "tx": t.get("tx")}
            s = settlement_of(trades)
            if moved or s.state != "pending":
                info = {**info, "trades": trades}
                if s.state != "pending":
                    info.update(settled=True, settle_txs=list(s.hashes))
                detail = "; ".join(moved)
                with self.j.batch():  # the transition and what follows from it: one commit
                    self.j.set(order_json=json.dumps(info))
                    if s.state == "failed":
                        self.j.step("Settlement", "failed", detail=f"every trade FAILED, nothing filled ({detail})"[:300])
                        self.j.set(stage="order_failed", error="trade FAILED: nothing filled")
                    else:
                        self.j.step("Settlement", "pending" if s.state == "pending" else "ok", detail=detail[:300] or None)
            if s.state == "failed":
                return None
            if s.state == "confirmed":
                return list(s.hashes)
            if time.time() > deadline:
                states = ", ".join(f"{t['status']}" for t in trades.values())
                raise ClobError(f"order {self.j.g['order_id'][:10]}… not settled after {self.settle_timeout_s:g} s "
                                f"(trades {states}); resuming later")
            time.sleep(_POLL_S)

    def await_settlement(self) -> None:
        """Stage `filled`: the order's trades must be final and their transactions mined before anything is
        pushed; then the fill is what the settlement's `OrderFilled` logs say (through the checked decoder), the
        taker fee included (a BUY pays it on top, a SELL's proceeds are net of it), never more than the order
        was for; a difference from the CLOB's answer is journalled."""
        g = self.j.g
        hashes = self.follow_trades()
        if hashes is None or not hashes:
            return
        statuses = self.tx.settled(hashes)
        receipts = [self.tx.receipt(h) for h in hashes]
        gave, got = order_fill(receipts, g["order_id"])
        fee = order_fee(receipts, g["order_id"])
        side = g["side"]
        # Before anyone is charged: what the settlement's OrderFilled logs say this order gave and got is the
        # fill, never more than the order was for. The CLOB's answer is only taken where the logs agree.
        if side == "BUY":
            gave = min(gave + fee, self.planned())
        else:
            gave, got = min(gave, self.planned()), max(got - fee, 0)
        filled, paid = (got, gave) if side == "BUY" else (gave, got)
        if fee:
            self.j.set(order_json=json.dumps({**self.j.order_info(), "fee_micro": fee}))
        booked = (g["filled_shares"], g["spent_micro" if side == "BUY" else "proceeds_micro"])
        if (filled, paid) == booked:
            return
        net = (filled, paid - fee if side == "BUY" else paid + fee)
        if all(v == 1 for v in statuses.values()) and booked[0] and net != booked:
            self.discrepancy(f"the CLOB's answer (filled {booked[0] / MICRO:.6f}, "
                             f"{'spent' if side == 'BUY' else 'proceeds'} {(booked[1] or 0) / MICRO:.6f}) differs "
                             f"from the settlement's logs ({filled / MICRO:.6f}, {paid / MICRO:.6f}); "
                             "charging what the logs say")
        elif not all(v == 1 for v in statuses.values()):
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
