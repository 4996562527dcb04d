"""Position accounting shared by the report (the leader) and the backtest (the follower): average cost per token,
cash flows per market, realized PnL at each sell / redeem, and the value of what is still held at the end.

Rules (docs/leaders.md states them): a SELL realizes `proceeds - average cost x shares sold`; a REDEEM of a
market realizes `payout - cost of every share held in it`; at the end, shares of a resolved market are worth the
payout (realized: the outcome is fixed), shares of an open market are marked at the current price (unrealized).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
DUST = Decimal("0.000001")


@dataclass
class Position:
    """One token held: shares and their cost basis."""

    shares: Decimal = ZERO
    cost: Decimal = ZERO
    opened_at: int | None = None


@dataclass
class MarketBook:
    """Cash and PnL of one market (condition)."""

    spent: Decimal = ZERO
    received: Decimal = ZERO
    redeemed: Decimal = ZERO
    fees: Decimal = ZERO
    realized: Decimal = ZERO
    unrealized: Decimal = ZERO
    trades: int = 0


class Ledger:
    """Applies buys, sells and redeems in time order; `close()` values what is left."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}
        self.token_market: dict[str, str] = {}
        self.markets: dict[str, MarketBook] = {}
        self.holds: list[float] = []  # seconds of every round trip that went back to zero
        self.equity: list[tuple[int, Decimal]] = []  # (time, cumulative realized PnL)
        self._realized = ZERO

    def _m(self, condition_id: str) -> MarketBook:
        return self.markets.setdefault(condition_id, MarketBook())

    def _realize(self, ts: int, condition_id: str, amount: Decimal) -> None:
        self._m(condition_id).realized += amount
        self._realized += amount
        self.equity.append((ts, self._realized))

    def held(self, token_id: str) -> Decimal:
        """Shares held of a token."""
        p = self.positions.get(token_id)
        return p.shares if p else ZERO

    def buy(self, ts: int, condition_id: str, token_id: str, shares: Decimal, usd: Decimal,
            fee: Decimal = ZERO) -> None:
        """Shares bought for `usd` (plus `fee`, part of the cost)."""
        self.token_market[token_id] = condition_id
        p = self.positions.setdefault(token_id, Position())
        if p.shares <= DUST:
            p.opened_at = ts
        p.shares += shares
        p.cost += usd + fee
        m = self._m(condition_id)
        m.spent += usd
        m.fees += fee
        m.trades += 1

    def sell(self, ts: int, condition_id: str, token_id: str, shares: Decimal, usd: Decimal,
             fee: Decimal = ZERO) -> None:
        """Shares sold for `usd` (less `fee`). Selling more than held (history starting mid-way) realizes the
        proceeds of the excess at zero cost."""
        self.token_market[token_id] = condition_id
        p = self.positions.setdefault(token_id, Position())
        m = self._m(condition_id)
        m.received += usd
        m.fees += fee
        m.trades += 1
        sold = min(shares, p.shares)
        basis = p.cost * sold / p.shares if p.shares > 0 else ZERO
        p.shares -= sold
        p.cost -= basis
        self._realize(ts, condition_id, usd - fee - basis)
        if p.shares <= DUST:
            if p.opened_at is not None and sold > 0:
                self.holds.append(ts - p.opened_at)
            p.shares, p.cost, p.opened_at = ZERO, ZERO, None

    def redeem(self, ts: int, condition_id: str, usd: Decimal) -> None:
        """A market's payout: closes every position held in it."""
        m = self._m(condition_id)
        m.redeemed += usd
        basis = ZERO
        for tok, p in self.positions.items():
            if self.token_market.get(tok) == condition_id and p.shares > 0:
                basis += p.cost
                if p.opened_at is not None:
                    self.holds.append(ts - p.opened_at)
                p.shares, p.cost, p.opened_at = ZERO, ZERO, None
        self._realize(ts, condition_id, usd - basis)

    def close(self, ts: int, payout, price) -> None:
        """Value what is still held: `payout(token)` (resolved: realized) or `price(token)` (open: unrealized);
        both return a Decimal or None (then the token is worth its cost: no PnL claimed)."""
        for tok, p in self.positions.items():
            if p.shares <= DUST:
                continue
            cid = self.token_market[tok]
            pay = payout(tok)
            if pay is not None:
                self._realize(ts, cid, p.shares * pay - p.cost)
                continue
            px = price(tok)
            if px is not None:
                self._m(cid).unrealized += p.shares * px - p.cost

    @property
    def realized(self) -> Decimal:
        return sum((m.realized for m in self.markets.values()), ZERO)

    @property
    def unrealized(self) -> Decimal:
        return sum((m.unrealized for m in self.markets.values()), ZERO)

    def totals(self) -> dict[str, Decimal]:
        """Spent, received, redeemed, fees, realized, unrealized, made (= realized + unrealized)."""
        ms = self.markets.values()
        out = {k: sum((getattr(m, k) for m in ms), ZERO) for k in ("spent", "received", "redeemed", "fees")}
        out["realized"], out["unrealized"] = self.realized, self.unrealized
        out["made"] = out["realized"] + out["unrealized"]
        return out

    def open_positions(self) -> int:
        """Tokens still held."""
        return sum(1 for p in self.positions.values() if p.shares > DUST)


def wilson(wins: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None without observations."""
    if n <= 0:
        return None
    p = wins / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / den
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Quantiles:
    """A size distribution."""

    values: list[Decimal] = field(default_factory=list)

    def summary(self) -> dict[str, str] | None:
        if not self.values:
            return None
        v = sorted(self.values)

        def q(f: float) -> Decimal:  # nearest-rank on the sorted values (exact on small hand-made samples)
            return v[min(len(v) - 1, max(0, int(round(f * (len(v) - 1)))))]

        return {k: str(x.quantize(DUST)) for k, x in (("min", v[0]), ("p25", q(0.25)), ("median", q(0.5)),
                                                      ("p75", q(0.75)), ("max", v[-1]), ("mean", sum(v) / len(v)))}
