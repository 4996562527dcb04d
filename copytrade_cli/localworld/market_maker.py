"""The local CLOB's market maker: resting SELL/BUY ladders around a mid, signed with the maker's key by
py_clob_client_v2's own order builder, re-quoted whenever a level fills out."""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from fractions import Fraction
from typing import Mapping

from eth_account import Account

from ..polymarket.orders import build_signed_order_v2
from .clob_orders import SIDE_BUY, SIDE_SELL, UNIT


@dataclass
class LadderConfig:
    """Shape of the market maker's quotes (per token)."""

    mid: float = 0.5
    """Mid price of the first outcome (YES); the second outcome (NO) is quoted around 1 - mid."""
    mids: Mapping[str, float] = field(default_factory=dict)
    """Per-token mid overrides (token id -> mid)."""
    levels: int = 10
    """Price levels per side."""
    level_size: float = 5000.0
    """Shares quoted at each level (one order per level)."""
    spread_ticks: int = 1
    """Distance in ticks from the mid to the best bid/ask."""
    quote_bids: bool = True
    """Also quote a BUY ladder (needs collateral on the market maker)."""
    replenish: bool = True
    """Re-post a level's order as soon as it fills out."""


@dataclass(frozen=True)
class Quote:
    """One order the market maker wants resting."""

    token_id: str
    side: str
    price: Decimal
    size_units: int


def ladder(token_id: str, mid: float, tick: str, cfg: LadderConfig) -> list[Quote]:
    """The quotes for one token: asks above and bids below the mid, on tick, inside (0, 1)."""
    t = Decimal(tick)
    m = (Decimal(str(mid)) / t).to_integral_value() * t
    size_units = int((Decimal(str(cfg.level_size)).quantize(Decimal("0.01"), rounding=ROUND_DOWN)) * UNIT)
    quotes: list[Quote] = []
    for k in range(cfg.spread_ticks, cfg.spread_ticks + cfg.levels):
        ask = m + k * t
        if t <= ask <= 1 - t:
            quotes.append(Quote(token_id, SIDE_SELL, ask, size_units))
        if cfg.quote_bids:
            bid = m - k * t
            if t <= bid <= 1 - t:
                quotes.append(Quote(token_id, SIDE_BUY, bid, size_units))
    return quotes


def quote_amounts(side: str, price: Decimal, size_units: int) -> tuple[int, int]:
    """(makerAmount, takerAmount) of a quote, exact (size trimmed so the USDC leg is a whole unit)."""
    p = Fraction(price)
    # shares * price must be an integer number of units: trim the size to a multiple of the price's denominator
    size_units -= size_units % p.denominator
    usdc = size_units * p
    assert usdc.denominator == 1
    if side == SIDE_SELL:
        return size_units, int(usdc)
    return int(usdc), size_units


class MarketMaker:
    """Builds the market maker's signed orders (wire JSON, exactly as the real client posts them)."""

    def __init__(self, private_key: str, chain_id: int, config: LadderConfig | None = None):
        self._key = private_key
        self.address = Account.from_key(private_key).address
        self.chain_id = chain_id
        self.config = config or LadderConfig()

    def mid_for(self, token_ids: list[str], index: int) -> float:
        """The mid of outcome `index` of a market (overrides first, then mid / 1 - mid)."""
        token_id = token_ids[index]
        if token_id in self.config.mids:
            return float(self.config.mids[token_id])
        return self.config.mid if index == 0 else 1.0 - self.config.mid

    def quotes_for(self, token_ids: list[str], tick: str) -> list[Quote]:
        """Every quote for one market's tokens."""
        out: list[Quote] = []
        for i, token_id in enumerate(token_ids):
            out.extend(ladder(token_id, self.mid_for(token_ids, i), tick, self.config))
        return out

    def sign(self, quote: Quote, exchange: str) -> dict:
        """A signed V2 EOA order (wire JSON) for a quote, built by py_clob_client_v2's order builder."""
        maker_amount, taker_amount = quote_amounts(quote.side, quote.price, quote.size_units)
        return build_signed_order_v2(
            self._key, token_id=quote.token_id, side=quote.side, maker_amount=maker_amount,
            taker_amount=taker_amount, chain_id=self.chain_id, exchange=exchange,
        )
