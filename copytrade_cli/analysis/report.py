"""`copytrade leaders report`: the figures of one leader's history (see docs/leaders.md for each definition)."""
from __future__ import annotations

import statistics
import time
from decimal import Decimal
from typing import Any

from .history import History
from .ledger import ZERO, Ledger, Quantiles, wilson

Q6 = Decimal("0.000001")


def _s(d: Decimal | None) -> str | None:
    return None if d is None else str(d.quantize(Q6))


def replay_leader(h: History) -> Ledger:
    """The leader's own trades and redeems through the ledger, valued at the end."""
    led = Ledger()
    events: list[tuple[int, int, Any]] = [(t.timestamp, 0, t) for t in h.trades] + \
        [(r.timestamp, 1, r) for r in h.redeems]
    for ts, kind, ev in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            (led.buy if ev.side == "BUY" else led.sell)(ts, ev.condition_id, ev.token_id, ev.size, ev.usd)
        else:
            led.redeem(ts, ev.condition_id, ev.usd)
    last_px = {t.token_id: t.price for t in h.trades}
    end = max([e[0] for e in events], default=int(time.time()))
    led.close(end, lambda tok: _payout(h, tok, led), lambda tok: _price(h, tok, led) or last_px.get(tok))
    return led


def _payout(h: History, tok: str, led: Ledger) -> Decimal | None:
    m = h.markets.get(led.token_market.get(tok, ""))
    return m.payout(tok) if m else None


def _price(h: History, tok: str, led: Ledger) -> Decimal | None:
    m = h.markets.get(led.token_market.get(tok, ""))
    return m.price(tok) if m else None


def market_rows(h: History, led: Ledger) -> list[dict[str, Any]]:
    """One row per market traded: title, category, kind, status, PnL."""
    rows = []
    titles = {t.condition_id: t.title for t in h.trades}
    for cid, mb in led.markets.items():
        m = h.markets.get(cid)
        held = any(p.shares > 0 and led.token_market.get(tok) == cid for tok, p in led.positions.items())
        status = "resolved" if m and m.resolved else ("open" if held else "exited")
        rows.append({"condition_id": cid, "title": (m.question if m and m.question else titles.get(cid, "")),
                     "category": m.category if m else "unknown", "kind": m.kind if m else "unknown",
                     "status": status, "trades": mb.trades, "spent": _s(mb.spent), "received": _s(mb.received),
                     "redeemed": _s(mb.redeemed), "realized": _s(mb.realized), "unrealized": _s(mb.unrealized),
                     "pnl": _s(mb.realized + mb.unrealized)})
    rows.sort(key=lambda r: Decimal(r["pnl"]), reverse=True)
    return rows


def build_report(h: History) -> dict[str, Any]:
    """Every figure of the report, JSON-ready (amounts as decimal strings, 6 places)."""
    led = replay_leader(h)
    tot = led.totals()
    markets = market_rows(h, led)
    # A market counts for the win rate once it is over for the leader: resolved, or every share sold.
    decided = [r for r in markets if r["status"] in ("resolved", "exited")]
    wins = sum(1 for r in decided if Decimal(r["pnl"]) > 0)
    ci = wilson(wins, len(decided))
    sizes = Quantiles([t.usd for t in h.trades])
    taker = sum(1 for t in h.trades if t.is_taker is True)
    maker = sum(1 for t in h.trades if t.is_taker is False)
    cats: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for t in h.trades:
        m = h.markets.get(t.condition_id)
        for bucket, name in ((cats, m.category if m else "unknown"), (kinds, m.kind if m else "unknown")):
            b = bucket.setdefault(name, {"trades": 0, "volume": ZERO})
            b["trades"] += 1
            b["volume"] += t.usd
    for bucket in (cats, kinds):
        for b in bucket.values():
            b["volume"] = _s(b["volume"])
    total = tot["made"]
    best = markets[0] if markets else None
    best_share = None
    if best is not None and total > 0:
        best_share = float(Decimal(best["pnl"]) / total)
    holds = led.holds
    return {
        "leader": h.user,
        "trades": len(h.trades), "buys": sum(t.side == "BUY" for t in h.trades),
        "sells": sum(t.side == "SELL" for t in h.trades), "redeems": len(h.redeems),
        "volume": _s(sum((t.usd for t in h.trades), ZERO)),
        "first_trade": h.trades[0].timestamp if h.trades else None,
        "last_trade": h.trades[-1].timestamp if h.trades else None,
        "spent": _s(tot["spent"]), "received": _s(tot["received"]), "redeemed": _s(tot["redeemed"]),
        "realized_pnl": _s(tot["realized"]), "unrealized_pnl": _s(tot["unrealized"]), "pnl": _s(total),
        "markets_traded": len(markets), "markets_decided": len(decided), "wins": wins,
        "win_rate": (wins / len(decided)) if decided else None,
        "win_rate_ci95": list(ci) if ci else None,
        "size_usd": sizes.summary(),
        "maker_taker": {"taker": taker, "maker": maker, "unknown": len(h.trades) - taker - maker,
                        "taker_share": (taker / (taker + maker)) if taker + maker else None},
        "categories": cats, "kinds": kinds,
        "holding_s": {"round_trips": len(holds), "median": statistics.median(holds) if holds else None,
                      "mean": statistics.fmean(holds) if holds else None, "open_positions": led.open_positions()},
        "best_market": best, "best_market_share": best_share,
        "other_activity": h.other_activity,
        "per_market": markets,
        "equity": [[ts, _s(v)] for ts, v in led.equity],
    }
