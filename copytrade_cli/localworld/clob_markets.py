"""The local CLOB's markets and books: lookups by token or condition id and the read-only views of
GET /book, /midpoint, /price, /spread, /last-trade-price, /markets and /clob-markets (CLOB-WIRE §6.5)."""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from .book import Book, MatchingEngine
from .clob_orders import SIDE_BUY, SIDE_SELL, VALID_TICKS, ClobApiError, fraction_to_decimal_str


def _price_str(value: Fraction | None) -> str | None:
    return fraction_to_decimal_str(value) if value is not None else None


class ClobMarkets:
    """The world's markets, one book per outcome token in `engine`, and what the market routes show of them."""

    def __init__(self, world, engine: MatchingEngine):
        self.world = world
        self.engine = engine
        self.markets = {m.condition_id.lower(): m for m in world.markets}
        self.tokens: dict[str, tuple[Any, int]] = {tid: (m, i) for m in world.markets for i, tid in enumerate(m.token_ids)}
        for m in world.markets:
            for tid in m.token_ids:
                self.engine.add_book(Book(m.condition_id, tid, m.tick_size, m.min_order_size, m.neg_risk))
        # Scheduled tick changes (Market.tick_changes), soonest first: (seconds after start, market, new tick).
        self._tick_schedule = sorted(((float(after), m, str(tick)) for m in world.markets
                                      for after, tick in m.tick_changes), key=lambda x: x[0])

    # ------------------------------------------------------------------------------------ ticks
    def tick_of(self, market) -> str:
        """The market's tick now (its books carry it; scheduled changes move it)."""
        return self.engine.books[market.token_ids[0]].tick_size

    def apply_tick_changes(self, elapsed_s: float) -> list[tuple[Any, str]]:
        """Apply the scheduled tick changes due `elapsed_s` after start; returns (market, new tick) applied."""
        done = []
        while self._tick_schedule and self._tick_schedule[0][0] <= elapsed_s:
            _after, m, tick = self._tick_schedule.pop(0)
            self.set_tick(m, tick)
            done.append((m, tick))
        return done

    def set_tick(self, market, tick: str) -> None:
        """Change a market's tick size now (resting orders stay; new ones must respect it)."""
        if tick not in VALID_TICKS:
            raise ClobApiError(f"invalid tick size {tick}")
        for tid in market.token_ids:
            self.engine.books[tid].tick_size = tick

    # ------------------------------------------------------------------------------------ lookups
    def _outcome(self, token_id: str) -> str:
        market, idx = self.tokens[token_id]
        return market.outcomes[idx] if idx < len(market.outcomes) else str(idx)

    def _market_of(self, token_id: str):
        found = self.tokens.get(token_id)
        if found is None:
            raise ClobApiError(f"market not found for token id {token_id}", status=404)
        return found

    # --------------------------------------------------------------------------------- views
    def book(self, token_id: str) -> Book:
        """A token's book; 404 like the real CLOB when unknown."""
        book = self.engine.books.get(str(token_id or ""))
        if book is None:
            raise ClobApiError("No orderbook exists for the requested token id", status=404)
        return book

    def midpoint(self, token_id: str) -> dict:
        """The /midpoint body."""
        return {"mid": _price_str(self.book(token_id).midpoint())}

    def price(self, token_id: str, side: str) -> dict:
        """The /price body: BUY = best bid, SELL = best ask."""
        side = side.upper()
        if side not in (SIDE_BUY, SIDE_SELL):
            raise ClobApiError("Invalid side")
        # NOTE: BUY = best bid, SELL = best ask (the price on that side of the book) [unverified vs. real]
        return {"price": _price_str(self.book(token_id).best(side))}

    def spread(self, token_id: str) -> dict:
        """The /spread body (null while one side is empty)."""
        b = self.book(token_id)
        bid, ask = b.best(SIDE_BUY), b.best(SIDE_SELL)
        return {"spread": _price_str(ask - bid) if bid is not None and ask is not None else None}

    def last_trade_price(self, token_id: str) -> dict:
        """The /last-trade-price body (0.5 before the first trade)."""
        b = self.book(token_id)
        return {"price": _price_str(b.last_trade_price) or "0.5", "side": ""}

    def market_by_token(self, token_id: str) -> dict:
        """The /markets-by-token/{token_id} body."""
        m, _ = self._market_of(token_id)
        return {"condition_id": m.condition_id, "primary_token_id": m.token_ids[0],
                "secondary_token_id": m.token_ids[1] if len(m.token_ids) > 1 else None}

    def _market(self, condition_id: str):
        m = self.markets.get(condition_id.lower())
        if m is None:
            raise ClobApiError("market not found", status=404)
        return m

    def find_market(self, id_or_slug: str):
        """A market by condition id or slug; 404 when unknown."""
        for m in self.world.markets:
            if id_or_slug.lower() in (m.condition_id.lower(), m.slug.lower()):
                return m
        raise ClobApiError("market not found", status=404)

    def market(self, condition_id: str) -> dict:
        """The /markets/{condition_id} body; 404 when unknown."""
        return self.market_json(self._market(condition_id))

    def all_markets(self) -> list[dict]:
        """Every market, in world order, as /markets lists them."""
        return [self.market_json(m) for m in self.world.markets]

    def clob_market_info(self, condition_id: str) -> dict:
        """The /clob-markets/{condition_id} body."""
        m = self._market(condition_id)
        return {
            "t": [{"t": tid, "o": m.outcomes[i] if i < len(m.outcomes) else str(i)} for i, tid in enumerate(m.token_ids)],
            "mts": float(self.tick_of(m)),
            "nr": bool(m.neg_risk),
            "mos": m.min_order_size,
            "mbf": 0,
            "tbf": 0,
            "fd": {"r": float(m.fee_rate), "e": int(m.fee_exponent), "to": True},
            "c": m.condition_id,
        }

    def market_json(self, m) -> dict:
        """A market in the shape of GET /markets/{condition_id} (subset)."""
        return {
            "condition_id": m.condition_id,
            "question_id": m.question_id,
            "question": m.title,
            "market_slug": m.slug,
            "minimum_order_size": m.min_order_size,
            "minimum_tick_size": float(self.tick_of(m)),
            "neg_risk": bool(m.neg_risk),
            "active": True,
            "closed": False,
            "accepting_orders": True,
            "enable_order_book": True,
            "tokens": [{"token_id": tid, "outcome": m.outcomes[i] if i < len(m.outcomes) else str(i),
                        "price": float(self.engine.books[tid].midpoint() or Fraction(1, 2))}
                       for i, tid in enumerate(m.token_ids)],
        }
