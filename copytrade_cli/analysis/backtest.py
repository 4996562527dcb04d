"""`copytrade backtest`: a leader's history replayed through the supervisor's own decision code.

Every leader fill becomes a `LeaderFill` and goes through `supervisor.decide.decide` (sizing, filters, max trade,
slippage limit) and `supervisor.decide.Guardrails` (daily caps, in a scratch state file, per replayed UTC day),
exactly as the supervisor calls them; then the copy is filled by `fills.walk` against the book (the recorded one
when there is one, else one level at the reference price), with the market's taker fee and minimum size. The
delay model (docs/backtest.md): after `latency_ms` the reference price is that of the leader's own last fill of
the same token and side within the delay (the leader walked the book; the copy arrives after), and the book is
moved by that much; the tick rounds it against the copy.
"""
from __future__ import annotations

import datetime as dt
import math
import re
import tempfile
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

from ..polymarket.fills import LeaderFill
from ..state import Follow, State
from ..supervisor.decide import Guardrails, decide
from ..supervisor.execute import simfill as F
from .history import History, Trade
from .ledger import ZERO, Ledger
from .report import _s, replay_leader

MICRO = 10**6
BookSource = Callable[[str], "dict[str, Any] | None"]


@dataclass
class Options:
    latency_ms: int = 0
    fees: bool = True
    balance_usd: Decimal = Decimal(1000)
    books: BookSource | None = None


def _norm(reason: str) -> str:
    """A skip reason without its numbers, to count skips by kind."""
    return re.sub(r"0x[0-9a-fA-F]+|\d+(\.\d+)?(E[+-]?\d+)?", "#", reason)


def _ref_price(h: History, i: int, t: Trade, latency_ms: int) -> Decimal:
    """The price the copy meets after the delay: the leader's last same-token, same-side fill within it."""
    if latency_ms <= 0:
        return t.price
    horizon = t.timestamp + math.ceil(latency_ms / 1000)
    ref = t.price
    for later in h.trades[i + 1:]:
        if later.timestamp > horizon:
            break
        if later.token_id == t.token_id and later.side == t.side:
            ref = later.price
    return ref


def _on_tick(p: Decimal, tick: Decimal, side: str) -> Decimal:
    """Round against the copy onto the tick grid (BUY up, SELL down), inside (tick, 1 - tick)."""
    q = (p / tick).to_integral_value(ROUND_CEILING if side == "BUY" else ROUND_FLOOR) * tick
    return min(max(q, tick), 1 - tick)


class Backtest:
    """One follow config over one history."""

    def __init__(self, h: History, follow: Follow, settings, opts: Options, scratch: Path | None = None):
        self.h, self.follow, self.settings, self.opts = h, follow, settings, opts
        self._tmp = tempfile.TemporaryDirectory(prefix="ct-backtest-") if scratch is None else None
        self.state = State((scratch or Path(self._tmp.name)) / "caps.db")
        self.guard = Guardrails(settings, self.state)
        self.led = Ledger()
        self.balance = int(opts.balance_usd * MICRO)
        self.pos: dict[str, int] = {}
        self.leader_pos: dict[str, int] = {}
        self.copies: list[dict[str, Any]] = []
        self.skips: list[dict[str, Any]] = []
        self._books: dict[str, Any] = {}

    def book(self, token: str):
        if self.opts.books is None:
            return None
        if token not in self._books:
            self._books[token] = self.opts.books(token)
        return self._books[token]

    def run(self) -> dict[str, Any]:
        events = [(t.timestamp, 0, i, t) for i, t in enumerate(self.h.trades)] + \
            [(r.timestamp, 1, i, r) for i, r in enumerate(self.h.redeems)]
        for ts, kind, i, ev in sorted(events, key=lambda e: (e[0], e[1], e[2])):
            if kind == 0:
                self._trade(i, ev)
            else:
                self._redeem(ts, ev.condition_id)
        end = max([e[0] for e in events], default=0)
        mk = self.h.markets
        last_px = {t.token_id: t.price for t in self.h.trades}
        self.led.close(end, lambda tok: (mk[self.led.token_market[tok]].payout(tok)
                                          if self.led.token_market.get(tok) in mk else None),
                       lambda tok: ((mk[self.led.token_market[tok]].price(tok)
                                     if self.led.token_market.get(tok) in mk else None) or last_px.get(tok)))
        self.state.close()
        if self._tmp is not None:
            self._tmp.cleanup()
        return self.result()

    def _fill(self, t: Trade) -> LeaderFill:
        shares = int(t.size * MICRO)
        return LeaderFill(leader=self.h.user or self.follow.leader, tx_hash=t.tx_hash, token_id=t.token_id,
                          side=t.side, shares_micro=shares, usd_micro=int(Decimal(shares) * t.price),
                          price=t.price, source="backtest", timestamp=t.timestamp, condition_id=t.condition_id)

    def _trade(self, i: int, t: Trade) -> None:
        fill = self._fill(t)
        before = self.leader_pos.get(t.token_id, 0)
        self.leader_pos[t.token_id] = before + (fill.shares_micro if t.side == "BUY" else -fill.shares_micro)
        who = self.follow.follower.lower()
        # The supervisor's own decision: is_local=True since nothing is executed here (the live switch is moot).
        d = decide(fill, [self.follow], settings=self.settings, is_local=True, balances={who: self.balance},
                   positions={who: self.pos.get(t.token_id, 0)}, leader_position_before=max(before, 0))
        for sk in d.skips:
            self._skip(t, sk.reason)
        for cp in d.copies:
            day = dt.datetime.fromtimestamp(t.timestamp, dt.timezone.utc).strftime("%Y-%m-%d")
            key = f"{fill.key}:{who}"
            ok, why = self.guard.reserve_many([(self.follow.follower, cp.value_micro or cp.usd_micro, key)], day)[0]
            if not ok:
                self._skip(t, why)
                continue
            got = self._simulate(i, t, cp)
            if not got.filled:
                self.guard.release(key)
                self._skip(t, got.reason or "not filled")
                continue
            self.guard.commit(key, got.usd_micro if t.side == "BUY" else None)
            self._apply(t, got)

    def _simulate(self, i: int, t: Trade, cp) -> F.Fill:
        m = self.h.markets.get(t.condition_id)
        tick = (m.tick_size if m and m.tick_size else Decimal("0.01"))
        ref = _on_tick(_ref_price(self.h, i, t, self.opts.latency_ms), tick, t.side) \
            if self.opts.latency_ms > 0 else t.price
        levels = F.levels_of(self.book(t.token_id), t.side)
        if levels:
            levels = F.shifted(levels, Fraction(str(ref - t.price)), Fraction(str(tick))) if ref != t.price else levels
        else:
            levels = F.flat_book(ref, t.side)
        fees = self.opts.fees and not (m is not None and m.fees_enabled is False)
        rate = F.fee_rate_for(m.category if m else None) if fees else Decimal(0)
        amount = cp.usd_micro if t.side == "BUY" else cp.shares_micro
        return F.walk(levels, t.side, amount, cp.price_limit, fee_rate=rate,
                      min_shares=m.min_order_size if m else None)

    def _apply(self, t: Trade, got: F.Fill) -> None:
        shares, usd, fee = (Decimal(got.shares_micro) / MICRO, Decimal(got.usd_micro) / MICRO,
                            Decimal(got.fee_micro) / MICRO)
        if t.side == "BUY":
            self.balance -= got.usd_micro + got.fee_micro
            self.pos[t.token_id] = self.pos.get(t.token_id, 0) + got.shares_micro
            self.led.buy(t.timestamp, t.condition_id, t.token_id, shares, usd, fee)
        else:
            self.balance += got.usd_micro - got.fee_micro
            self.pos[t.token_id] = self.pos.get(t.token_id, 0) - got.shares_micro
            self.led.sell(t.timestamp, t.condition_id, t.token_id, shares, usd, fee)
        self.copies.append({"ts": t.timestamp, "tx": t.tx_hash, "side": t.side, "token_id": t.token_id,
                            "condition_id": t.condition_id, "shares": _s(shares), "usd": _s(usd), "fee": _s(fee),
                            "avg_price": _s(got.avg_price) if got.avg_price else None,
                            "leader_price": str(t.price)})

    def _redeem(self, ts: int, cid: str) -> None:
        """The leader redeemed: the follower redeems what it holds in that market at the payout (Gamma)."""
        m = self.h.markets.get(cid)
        if m is None or not m.resolved:
            return
        pay = 0
        held = False
        for tok in m.token_ids:
            n = self.pos.get(tok, 0)
            if n > 0:
                held = True
                pay += int(Decimal(n) * (m.payout(tok) or ZERO))
                self.pos[tok] = 0
        if held:
            self.balance += pay
            self.led.redeem(ts, cid, Decimal(pay) / MICRO)

    def _skip(self, t: Trade, reason: str) -> None:
        self.skips.append({"ts": t.timestamp, "tx": t.tx_hash, "side": t.side, "token_id": t.token_id,
                           "reason": reason})

    def result(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for s in self.skips:
            by[_norm(s["reason"])] = by.get(_norm(s["reason"]), 0) + 1
        tot = self.led.totals()
        lead = replay_leader(self.h).totals()
        f = self.follow
        per_market = {cid: _s(mb.realized + mb.unrealized) for cid, mb in self.led.markets.items()}
        return {
            "leader": self.h.user or f.leader,
            "follow": {"sizing": f.sizing, "amount": f.amount, "min_usd": f.min_usd, "max_usd": f.max_usd,
                       "max_slippage": f.max_slippage, "sell_mode": f.sell_mode, "side_filter": f.side_filter,
                       "min_leader_usd": f.min_leader_usd, "max_price": f.max_price, "flow": f.flow},
            "latency_ms": self.opts.latency_ms, "fees": self.opts.fees, "start_balance": str(self.opts.balance_usd),
            "book": "recorded" if self.opts.books else "flat at the reference price",
            "leader_fills": len(self.h.trades), "copies": len(self.copies), "skipped": len(self.skips),
            "skips_by_reason": dict(sorted(by.items(), key=lambda kv: -kv[1])),
            "spent": _s(tot["spent"]), "received": _s(tot["received"]), "redeemed": _s(tot["redeemed"]),
            "fees_paid": _s(tot["fees"]), "realized_pnl": _s(tot["realized"]), "unrealized_pnl": _s(tot["unrealized"]),
            "made": _s(tot["made"]), "end_balance": _s(Decimal(self.balance) / MICRO),
            "positions": {tok: _s(Decimal(n) / MICRO) for tok, n in self.pos.items() if n},
            "leader_totals": {k: _s(v) for k, v in lead.items()},
            "comparison": {
                "leader_made": _s(lead["made"]), "follower_made": _s(tot["made"]),
                "leader_return": float(lead["made"] / lead["spent"]) if lead["spent"] else None,
                "follower_return": float(tot["made"] / tot["spent"]) if tot["spent"] else None,
                "copy_rate": (len(self.copies) / len(self.h.trades)) if self.h.trades else None},
            "per_market": per_market,
            "equity": [[ts, _s(v)] for ts, v in self.led.equity],
            "leader_equity": [[ts, _s(v)] for ts, v in replay_leader(self.h).equity],
            "copy_list": self.copies, "skip_list": self.skips,
        }


def run_backtest(h: History, follow: Follow, settings, opts: Options) -> dict[str, Any]:
    """Replay `h` for `follow`; the result's figures are JSON-ready."""
    if not follow.follower:
        follow = replace(follow, follower="0x000000000000000000000000000000000000dEaD")
    return Backtest(h, follow, settings, opts).run()
