"""What a copy would get: a market order (FOK) walked through an order book level by level, the taker fee by
market category (LIVE-2026 §8) and the market's minimum size. Shared by the backtest and `supervise --dry-run`.

Amounts are integers in 1e-6 units with exact prices, the way the exchange settles a fill: a BUY spending U at
a level of price p gets the largest m shares with floor(m x p) <= U and pays floor(m x p) (the CLOB's
`max_making_for_taking` / `proceeds`), a SELL of S shares at price p receives floor(S x p).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Iterable

MICRO = 10**6
# Taker fee rate by category [docs trading/fees via LIVE-2026 §8]; tech/mentions/other are third-party figures.
CATEGORY_FEE_RATES: dict[str, Decimal] = {
    "crypto": Decimal("0.07"), "sports": Decimal("0.03"), "finance": Decimal("0.04"), "politics": Decimal("0.04"),
    "economics": Decimal("0.05"), "culture": Decimal("0.05"), "weather": Decimal("0.05"),
    "geopolitics": Decimal(0), "tech": Decimal("0.04"), "mentions": Decimal("0.04"), "other": Decimal("0.05"),
}
DEFAULT_FEE_RATE = Decimal("0.05")  # an unknown category pays the "other" rate (the stricter reading)


def fee_rate_for(category: str | None) -> Decimal:
    """The taker fee rate of a market category."""
    return CATEGORY_FEE_RATES.get((category or "other").lower(), DEFAULT_FEE_RATE)


def taker_fee(shares: Decimal, price: Decimal, rate: Decimal, exponent: int = 1) -> Decimal:
    """`fee = C x rate x (p(1-p))^e` in USD for C shares at price p; only takers pay."""
    return shares * rate * (price * (1 - price)) ** exponent


@dataclass(frozen=True)
class Level:
    price: Fraction
    size_micro: int


@dataclass
class Fill:
    """The outcome of walking the book."""

    filled: bool
    shares_micro: int = 0
    usd_micro: int = 0
    fee_micro: int = 0
    levels: int = 0
    reason: str | None = None

    @property
    def avg_price(self) -> Decimal | None:
        return None if not self.shares_micro else (Decimal(self.usd_micro) / Decimal(self.shares_micro))


def levels_of(book: dict[str, Any] | None, side: str) -> list[Level]:
    """The levels a taker on `side` walks (BUY: asks, cheapest first; SELL: bids, highest first) from a
    `/book` body (prices and sizes as strings)."""
    if not book:
        return []
    rows = book.get("asks" if side == "BUY" else "bids") or []
    out = []
    for r in rows:
        try:
            out.append(Level(Fraction(str(r["price"])), int(Decimal(str(r["size"])) * MICRO)))
        except (KeyError, ValueError, ArithmeticError):
            continue
    out.sort(key=lambda lv: lv.price, reverse=(side == "SELL"))
    return [lv for lv in out if lv.size_micro > 0 and 0 < lv.price < 1]


def shifted(levels: Iterable[Level], delta: Fraction, tick: Fraction) -> list[Level]:
    """The book moved by `delta` (the delay's price move), kept inside (tick, 1 - tick)."""
    out = []
    for lv in levels:
        p = min(max(lv.price + delta, tick), 1 - tick)
        out.append(Level(p, lv.size_micro))
    return out


def walk(levels: list[Level], side: str, amount_micro: int, limit: Decimal, *, fee_rate: Decimal = Decimal(0),
         fee_exponent: int = 1, min_shares: Decimal | None = None) -> Fill:
    """A FOK market order: BUY spends `amount_micro` USD, SELL sells `amount_micro` shares, never at a price
    worse than `limit`; all or nothing. The fee is the taker fee of each level's shares at its price."""
    lim = Fraction(str(limit))
    left = amount_micro
    shares = usd = n = 0
    fee = Decimal(0)
    for lv in levels:
        if left <= 0:
            break
        if (side == "BUY" and lv.price > lim) or (side == "SELL" and lv.price < lim):
            break
        if side == "BUY":
            # largest m with floor(m * p) <= left (the exchange's rounding), capped by the level
            m = min(lv.size_micro, int(-(-(left + 1) // lv.price)) - 1)
            if m <= 0:
                break
            paid = int(m * lv.price)
            shares, usd, left = shares + m, usd + paid, left - paid
        else:
            m = min(lv.size_micro, left)
            got = int(m * lv.price)
            if got <= 0:
                continue
            shares, usd, left = shares + m, usd + got, left - m
        n += 1
        p = Decimal(lv.price.numerator) / Decimal(lv.price.denominator)
        fee += taker_fee(Decimal(m) / MICRO, p, fee_rate, fee_exponent)
    dust = 100  # the CLOB's FILL_DUST: a residue below 0.0001 counts as filled
    fee_micro = int(fee * MICRO)
    if left > dust:
        return Fill(False, shares, usd, fee_micro, n,
                    reason=f"book too thin within the price limit {limit} (FOK): "
                           f"{'spent' if side == 'BUY' else 'sold'} {Decimal(amount_micro - left) / MICRO} of "
                           f"{Decimal(amount_micro) / MICRO}")
    if min_shares is not None and Decimal(shares) / MICRO < min_shares:
        return Fill(False, shares, usd, fee_micro, n,
                    reason=f"{Decimal(shares) / MICRO} shares is below the market's minimum size {min_shares}")
    return Fill(True, shares, usd, fee_micro, n)


def flat_book(price: Decimal, side: str) -> list[Level]:
    """A book of unlimited depth at one price (no recorded book: the copy trades at the reference price)."""
    return [Level(Fraction(str(price)), 10**18)]
