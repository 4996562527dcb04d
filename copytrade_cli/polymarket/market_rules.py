"""One market's order rules as the CLOB serves them (tick, neg-risk, taker fee, minimum size) and the sizing that
follows from them: the price limit on the tick grid, the fee-inclusive BUY budget, the minimum-size check.

Pure functions over `MarketRules` (no I/O): `polymarket.clob.ClobGateway.market()` reads the rules through the SDK
(`/markets-by-token` + `/clob-markets` for tick / neg-risk / `fd.r` / `fd.e`, `/book` for `min_order_size`, the
live tick and the asks), the supervisor's order desk sizes with them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

MICRO = 10**6
TICKS = (Decimal("0.1"), Decimal("0.01"), Decimal("0.005"), Decimal("0.0025"), Decimal("0.001"), Decimal("0.0001"))


@dataclass(frozen=True)
class MarketRules:
    """What the CLOB enforces on one token's orders."""

    token_id: str
    tick: Decimal
    neg_risk: bool
    fee_rate: Decimal = Decimal(0)
    """`fd.r`: taker fee = C x rate x (p(1-p))^exponent (LIVE-2026 §8); only takers pay."""
    fee_exponent: Decimal = Decimal(1)
    min_size: Decimal = Decimal(0)
    """`min_order_size` of /book, in shares."""
    asks: tuple[Decimal, ...] = field(default_factory=tuple)
    """Prices of the resting asks (where a BUY can fill), as the book showed them."""
    bids: tuple[Decimal, ...] = field(default_factory=tuple)

    def fee_per_usd(self, price: Decimal) -> Decimal:
        """The taker fee per USD of notional filled at `price`: rate x (p(1-p))^e / p (the SDK's `eff / p`)."""
        p = Decimal(price)
        if self.fee_rate <= 0 or not 0 < p < 1:
            return Decimal(0)
        return self.fee_rate * ((p * (1 - p)) ** self.fee_exponent) / p

    def fee_micro(self, shares_micro: int, price: Decimal) -> int:
        """The taker fee of `shares_micro` shares filled at `price`, micro USD, rounded up (never undercounted)."""
        p = Decimal(price)
        if self.fee_rate <= 0 or not 0 < p < 1:
            return 0
        fee = Decimal(shares_micro) * self.fee_rate * ((p * (1 - p)) ** self.fee_exponent)
        return int(fee.to_integral_value(ROUND_CEILING))


def on_tick(limit: Decimal, side: str, tick: Decimal) -> Decimal:
    """A price limit moved onto the market's tick grid, never to a worse price: a BUY's down, a SELL's up; kept in
    [tick, 1 - tick] (the SDK refuses a protected price outside it)."""
    t = Decimal(tick)
    q = Decimal(limit) / t
    q = q.to_integral_value(ROUND_DOWN if side == "BUY" else ROUND_CEILING)
    return min(max(q * t, t), 1 - t).quantize(t)


def worst_fee_price(rules: MarketRules, limit: Decimal) -> Decimal:
    """The fill price at which a BUY's fee per USD is highest among the prices it can fill at (resting asks at or
    under the limit, and the limit itself): the fee of a fill at a better price than the limit is higher per USD
    (for e = 1 it is rate x (1 - p)), so sizing at the limit alone could overspend."""
    cands = [p for p in rules.asks if 0 < p <= limit] + [Decimal(limit)]
    return max(cands, key=rules.fee_per_usd)


def buy_budget(total_micro: int, rules: MarketRules, limit: Decimal) -> int:
    """What of `total_micro` a BUY may put into its order so that order + taker fee costs at most the total: the
    SDK's `max_spend` formula (amount = max_spend / (1 + eff/p)) at the worst fill price, floored to the cent the
    SDK keeps of a market order's amount."""
    from .sdk import PlatformFeeInfo, adjust_buy_amount_for_fees

    total = Decimal(total_micro) / MICRO
    p = worst_fee_price(rules, limit)
    amount = adjust_buy_amount_for_fees(amount=total, price=p, max_spend=total,
                                        fee=PlatformFeeInfo(rate=rules.fee_rate, exponent=rules.fee_exponent))
    cents = (amount * 100).to_integral_value(ROUND_DOWN)
    out = int(cents) * 10_000
    # The exchange rounds each fill's fee up to the micro unit: keep one micro per possible fill level spare.
    while out > 0 and out + _fee_bound(out, rules, limit) > total_micro:
        out -= 10_000
    return max(out, 0)


def _fee_bound(amount_micro: int, rules: MarketRules, limit: Decimal) -> int:
    """The highest taker fee (micro USD, rounded up per fill level) an order of `amount_micro` can pay."""
    if rules.fee_rate <= 0:
        return 0
    p = worst_fee_price(rules, limit)
    levels = max(1, len([a for a in rules.asks if a <= limit]))
    return int((Decimal(amount_micro) * rules.fee_per_usd(p)).to_integral_value(ROUND_CEILING)) + levels


MARKET_MIN_USD = Decimal(1)
"""The smallest marketable (FOK/FAK) order live takes, in USD of notional: "market order: minimum amount is $1;
limit order: minimum shares size is 5" (nautilus_trader#3874, py-clob-client#301); the book's `min_order_size`
binds resting orders only (the local CLOB does the same, docs/live-assumptions.md)."""


def order_shares(side: str, amount_micro: int, limit: Decimal) -> Decimal:
    """The order's size in shares at its limit (BUY: amount / limit, SELL: the shares)."""
    if side == "BUY":
        return (Decimal(amount_micro) / MICRO / Decimal(limit)).quantize(Decimal("0.000001"), ROUND_DOWN)
    return Decimal(amount_micro) / MICRO


def order_usd(side: str, amount_micro: int, limit: Decimal) -> Decimal:
    """The order's notional in USD at its limit (BUY: the amount, SELL: shares x limit)."""
    usd = Decimal(amount_micro) / MICRO
    return usd if side == "BUY" else (usd * Decimal(limit)).quantize(Decimal("0.000001"), ROUND_DOWN)


def below_minimum(side: str, amount_micro: int, limit: Decimal, rules: MarketRules | None = None,
                  order_type: str = "FOK") -> str | None:
    """Why the order is under the market's minimum (the skip reason), or None: a marketable order under
    `MARKET_MIN_USD` of notional; a resting one (GTC/GTD) under the book's `min_order_size` shares."""
    if order_type in ("GTC", "GTD"):
        if rules is None or rules.min_size <= 0:
            return None
        shares = order_shares(side, amount_micro, limit)
        if shares >= rules.min_size:
            return None
        return f"order of {shares:.2f} shares is below the market's minimum size of {rules.min_size.normalize()} shares"
    usd = order_usd(side, amount_micro, limit)
    if usd >= MARKET_MIN_USD:
        return None
    cents = usd.quantize(Decimal("0.01"), ROUND_DOWN)  # never shown as reaching the minimum it misses
    what = f"{cents} USD" if side == "BUY" else f"{Decimal(amount_micro) / MICRO:.2f} shares at {limit} = {cents} USD"
    return f"order of {what} is below the minimum of {MARKET_MIN_USD} USD for a market order"
