"""Price-time priority order books and the matching engine of the local CLOB (pure: no chain, no I/O).

Amounts are integers in 1e-6 units, as on chain. A fill is expressed the way the exchange's
`matchOrders` takes it: each maker gives `making` of its maker asset and receives
`making * takerAmount // makerAmount` (the exchange's own rounding), and the taker gives the sum of
what the makers receive. So the plan computed here is exactly what the chain will execute.
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Iterator

from .clob_orders import (
    ERR_FAK,
    ERR_FOK,
    ERR_POST_ONLY_CROSS,
    GTD_SECURITY_THRESHOLD_S,
    RESTING_TYPES,
    SIDE_BUY,
    SIDE_SELL,
    ClobApiError,
    SignedOrder,
    fraction_to_decimal_str,
    units_to_str,
)

# A taker counts as fully filled when at most this many units (0.0001) are left: integer rounding on
# the exchange can leave a residue below one unit of the other asset.
FILL_DUST = 100

STATUS_LIVE = "LIVE"
STATUS_MATCHED = "MATCHED"
STATUS_CANCELED = "CANCELED"


def max_making_for_taking(maker_amount: int, taker_amount: int, limit: int) -> int:
    """Largest `making` whose proceeds `making * taker_amount // maker_amount` do not exceed `limit`."""
    if limit < 0:
        return 0
    # floor(m * ta / ma) <= L  <=>  m * ta < (L + 1) * ma  <=>  m <= ceil((L + 1) * ma / ta) - 1
    return -(-(limit + 1) * maker_amount // taker_amount) - 1


def proceeds(maker_amount: int, taker_amount: int, making: int) -> int:
    """What an order receives for giving `making` (the exchange's floor division)."""
    return making * taker_amount // maker_amount


@dataclass
class BookOrder:
    """An order known to the engine: resting, filled, cancelled, or a taker being processed."""

    order_id: str
    order: SignedOrder
    owner: str  # API key of the poster
    order_type: str
    market: str  # condition id
    asset_id: str  # token id, decimal string
    price: Fraction  # exact limit price, USDC per share
    remaining_making: int  # maker-asset units still fillable on chain
    remaining_size: int  # share units the order still wants (caps BUY limit orders)
    original_size: int
    tick_size: str
    size_matched: int = 0
    status: str = STATUS_LIVE
    created_at: int = field(default_factory=lambda: int(time.time()))
    seq: int = 0
    associate_trades: list = field(default_factory=list)
    is_market_maker: bool = False
    outcome: str = ""

    @property
    def side(self) -> str:
        """BUY or SELL."""
        return self.order.side

    @property
    def maker_address(self) -> str:
        """The funder (order.maker)."""
        return self.order.maker

    def expired(self, now: float) -> bool:
        """GTD orders expire one security minute before their expiration (CLOB-WIRE §5.5)."""
        exp = self.order.expiration
        return bool(exp) and now >= exp - GTD_SECURITY_THRESHOLD_S

    def fillable_making(self) -> int:
        """Maker-asset units this order may still give (BUY limit orders are capped by their share size)."""
        if self.side == SIDE_SELL:
            return min(self.remaining_making, self.remaining_size)
        cap = max_making_for_taking(self.order.maker_amount, self.order.taker_amount, self.remaining_size)
        return max(0, min(self.remaining_making, cap))

    def display_size(self) -> int:
        """Shares shown in the book for this order."""
        if self.side == SIDE_SELL:
            return self.fillable_making()
        return proceeds(self.order.maker_amount, self.order.taker_amount, self.fillable_making())

    def is_exhausted(self) -> bool:
        """Nothing meaningful left to fill."""
        return self.remaining_size <= 0 or self.fillable_making() <= 0 or self.display_size() <= 0

    def to_open_order(self) -> dict:
        """The OpenOrder JSON of GET /data/order and /data/orders (CLOB-WIRE §6.4)."""
        return {
            "id": self.order_id,
            "status": self.status,
            "owner": self.owner,
            "maker_address": self.maker_address,
            "market": self.market,
            "asset_id": self.asset_id,
            "side": self.side,
            "original_size": units_to_str(self.original_size),
            "size_matched": units_to_str(self.size_matched),
            "price": fraction_to_decimal_str(self.price),
            "outcome": self.outcome,
            "expiration": str(self.order.expiration),
            "order_type": self.order_type,
            "type": self.order_type,
            "created_at": self.created_at,
            "associate_trades": list(self.associate_trades),
        }


@dataclass
class MakerFill:
    """One maker's part of a match."""

    maker: BookOrder
    making: int  # what the maker gives (its maker asset)
    taking: int  # what the maker receives
    shares: int  # outcome share units exchanged
    usdc: int  # USDC units exchanged


@dataclass
class MatchPlan:
    """The result of matching one taker: maker fills plus the taker's totals."""

    taker: BookOrder
    fills: list[MakerFill]
    taker_making: int  # what the taker gives = sum of maker takings
    taker_taking: int  # what the taker receives = sum of maker makings
    shares: int
    usdc: int

    @property
    def price(self) -> Fraction:
        """Average execution price in USDC per share."""
        return Fraction(self.usdc, self.shares) if self.shares else self.taker.price


class Book:
    """One token's bids and asks, each a set of price levels holding FIFO queues."""

    def __init__(self, market: str, asset_id: str, tick_size: str, min_order_size, neg_risk: bool):
        self.market = market
        self.asset_id = asset_id
        self.tick_size = tick_size
        self.min_order_size = min_order_size
        self.neg_risk = neg_risk
        self.last_trade_price: Fraction | None = None
        self._levels: dict[str, dict[Fraction, deque[BookOrder]]] = {SIDE_BUY: {}, SIDE_SELL: {}}
        self._prices: dict[str, list[Fraction]] = {SIDE_BUY: [], SIDE_SELL: []}  # ascending

    # -- structure -----------------------------------------------------------------------------------
    def add(self, order: BookOrder) -> None:
        """Rest an order at the back of its price level."""
        levels = self._levels[order.side]
        queue = levels.get(order.price)
        if queue is None:
            queue = levels[order.price] = deque()
            bisect.insort(self._prices[order.side], order.price)
        queue.append(order)

    def reinstate(self, order: BookOrder) -> None:
        """Put an order back at its original time priority (after a failed settlement)."""
        levels = self._levels[order.side]
        queue = levels.get(order.price)
        if queue is None:
            self.add(order)
            return
        if any(o is order for o in queue):
            return
        items = sorted([*queue, order], key=lambda o: o.seq)
        queue.clear()
        queue.extend(items)

    def remove(self, order: BookOrder) -> bool:
        """Take an order out of the book; False if it was not resting."""
        levels = self._levels[order.side]
        queue = levels.get(order.price)
        if not queue:
            return False
        try:
            queue.remove(order)
        except ValueError:
            return False
        if not queue:
            del levels[order.price]
            prices = self._prices[order.side]
            i = bisect.bisect_left(prices, order.price)
            if i < len(prices) and prices[i] == order.price:
                prices.pop(i)
        return True

    def iter_side(self, side: str, best_first: bool = True) -> Iterator[tuple[Fraction, deque[BookOrder]]]:
        """Price levels of one side; best first by default (highest bid, lowest ask)."""
        prices = self._prices[side]
        ordered = reversed(prices) if (side == SIDE_BUY) == best_first else iter(prices)
        for price in list(ordered):
            queue = self._levels[side].get(price)
            if queue:
                yield price, queue

    def orders(self) -> Iterable[BookOrder]:
        """Every resting order."""
        for side in (SIDE_BUY, SIDE_SELL):
            for queue in self._levels[side].values():
                yield from queue

    # -- prices --------------------------------------------------------------------------------------
    def best(self, side: str) -> Fraction | None:
        """Best price on a side (BUY = best bid, SELL = best ask)."""
        for price, _queue in self.iter_side(side):
            return price
        return None

    def midpoint(self) -> Fraction | None:
        """Mid between best bid and best ask (or the one side present)."""
        bid, ask = self.best(SIDE_BUY), self.best(SIDE_SELL)
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        return bid if bid is not None else ask

    def level_sizes(self, side: str) -> list[tuple[Fraction, int]]:
        """(price, share units) per level, best first."""
        out = []
        for price, queue in self.iter_side(side):
            size = sum(o.display_size() for o in queue)
            if size > 0:
                out.append((price, size))
        return out

    def summary(self, timestamp_ms: int | None = None) -> dict:
        """The GET /book body: bids ascending and asks descending (best level last), strings (CLOB-WIRE §2)."""
        bids = [{"price": fraction_to_decimal_str(p), "size": units_to_str(s)}
                for p, s in reversed(self.level_sizes(SIDE_BUY))]
        asks = [{"price": fraction_to_decimal_str(p), "size": units_to_str(s)}
                for p, s in reversed(self.level_sizes(SIDE_SELL))]
        body = {
            "market": self.market,
            "asset_id": self.asset_id,
            "timestamp": str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)),
            "hash": "",
            "bids": bids,
            "asks": asks,
            "min_order_size": str(self.min_order_size),
            "tick_size": self.tick_size,
            "neg_risk": self.neg_risk,
            "last_trade_price": (fraction_to_decimal_str(self.last_trade_price)
                                 if self.last_trade_price is not None else "0.5"),
        }
        # Same SHA1 the client's get_order_book_hash computes (CLOB-WIRE §6.5).
        body["hash"] = hashlib.sha1(
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()
        return body


def _crosses(taker: BookOrder, maker_price: Fraction) -> bool:
    return maker_price <= taker.price if taker.side == SIDE_BUY else maker_price >= taker.price


class MatchingEngine:
    """All books plus the order index; matches takers with price-time priority and commits or undoes fills."""

    def __init__(self):
        self.books: dict[str, Book] = {}
        self.orders: dict[str, BookOrder] = {}
        self._seq = itertools.count(1)

    def add_book(self, book: Book) -> None:
        """Register a token's book."""
        self.books[book.asset_id] = book

    def next_seq(self) -> int:
        """Monotonic arrival number (time priority)."""
        return next(self._seq)

    # -- matching ------------------------------------------------------------------------------------
    def plan(self, taker: BookOrder, *, now: float | None = None) -> MatchPlan:
        """Walk the opposite side best-first and compute the fills for `taker` without changing anything."""
        book = self.books[taker.asset_id]
        now = time.time() if now is None else now
        opposite = SIDE_SELL if taker.side == SIDE_BUY else SIDE_BUY
        taker_left = taker.remaining_making  # what the taker may still give
        # Limit BUY orders want a number of shares; market (FOK/FAK) BUY orders spend their USDC.
        shares_wanted = taker.remaining_size if (taker.side == SIDE_BUY and taker.order_type in RESTING_TYPES) else None
        fills: list[MakerFill] = []
        shares = usdc = 0
        exhausted = False  # the taker cannot pay for even one more unit at this or any worse price
        for price, queue in book.iter_side(opposite):
            if exhausted or not _crosses(taker, price) or taker_left <= 0:
                break
            for maker in queue:
                if taker_left <= 0 or (shares_wanted is not None and shares >= shares_wanted):
                    break
                if maker.status != STATUS_LIVE or maker.expired(now) or maker.order_id == taker.order_id:
                    continue
                ma, ta = maker.order.maker_amount, maker.order.taker_amount
                cap = maker.fillable_making()
                if taker.side == SIDE_BUY:
                    # maker SELLs shares (making) for USDC (taking); the taker's USDC bounds the takings.
                    if shares_wanted is not None:
                        cap = min(cap, shares_wanted - shares)
                    affordable = max_making_for_taking(ma, ta, taker_left)
                    if affordable <= 0:
                        exhausted = True
                        break
                    making = min(cap, affordable)
                    if making <= 0:
                        continue
                    taking = proceeds(ma, ta, making)
                    fills.append(MakerFill(maker, making, taking, shares=making, usdc=taking))
                    shares += making
                    usdc += taking
                else:
                    # maker BUYs shares (taking) with USDC (making); the taker's shares bound the takings.
                    affordable = max_making_for_taking(ma, ta, taker_left)
                    if affordable <= 0:
                        exhausted = True
                        break
                    making = min(cap, affordable)
                    if making <= 0:
                        continue
                    taking = proceeds(ma, ta, making)
                    if taking <= 0:
                        continue
                    fills.append(MakerFill(maker, making, taking, shares=taking, usdc=making))
                    shares += taking
                    usdc += making
                taker_left -= taking
            if shares_wanted is not None and shares >= shares_wanted:
                break
        taker_making = sum(f.taking for f in fills)
        taker_taking = sum(f.making for f in fills)
        return MatchPlan(taker, fills, taker_making, taker_taking, shares, usdc)

    def fully_filled(self, plan: MatchPlan) -> bool:
        """Whether the plan fills the taker completely (up to rounding dust)."""
        taker = plan.taker
        if taker.remaining_making - plan.taker_making <= FILL_DUST:
            return True
        if taker.side == SIDE_BUY and taker.order_type in RESTING_TYPES:
            return taker.remaining_size - plan.shares <= FILL_DUST
        if taker.side == SIDE_SELL:
            return taker.remaining_size - plan.shares <= FILL_DUST
        return False

    def submit(self, taker: BookOrder, *, post_only: bool = False, now: float | None = None) -> MatchPlan:
        """Match a new order and commit: FOK all-or-nothing, FAK needs a fill, GTC/GTD rest the remainder.

        Raises ClobApiError (FOK/FAK/post-only rules) without changing any state.
        """
        book = self.books[taker.asset_id]
        if post_only:
            opposite = SIDE_SELL if taker.side == SIDE_BUY else SIDE_BUY
            best = book.best(opposite)
            if best is not None and _crosses(taker, best):
                raise ClobApiError(ERR_POST_ONLY_CROSS)
            plan = MatchPlan(taker, [], 0, 0, 0, 0)
        else:
            plan = self.plan(taker, now=now)
            if taker.order_type == "FOK" and not self.fully_filled(plan):
                raise ClobApiError(ERR_FOK)
            if taker.order_type == "FAK" and not plan.fills:
                raise ClobApiError(ERR_FAK)
        taker.seq = self.next_seq()
        self.orders[taker.order_id] = taker
        self.commit(plan)
        if taker.order_type in RESTING_TYPES and not taker.is_exhausted() and not self.fully_filled_after(taker):
            book.add(taker)
        elif taker.status == STATUS_LIVE:
            taker.status = STATUS_MATCHED if plan.fills else STATUS_CANCELED
        return plan

    @staticmethod
    def fully_filled_after(order: BookOrder) -> bool:
        """True if what is left of an order is only rounding dust."""
        return order.remaining_size <= FILL_DUST and order.size_matched > 0

    def commit(self, plan: MatchPlan) -> None:
        """Apply a plan's fills to the makers and the taker."""
        book = self.books[plan.taker.asset_id]
        for fill in plan.fills:
            maker = fill.maker
            maker.remaining_making -= fill.making
            maker.remaining_size -= fill.shares
            maker.size_matched += fill.shares
            if maker.is_exhausted() or self.fully_filled_after(maker):
                maker.status = STATUS_MATCHED
                book.remove(maker)
        taker = plan.taker
        taker.remaining_making -= plan.taker_making
        taker.remaining_size -= plan.shares
        taker.size_matched += plan.shares
        if plan.fills:
            book.last_trade_price = plan.fills[-1].maker.price
        if taker.is_exhausted() or (plan.fills and self.fully_filled_after(taker)):
            taker.status = STATUS_MATCHED

    def undo(self, plan: MatchPlan) -> None:
        """Reverse a committed plan after its settlement failed: makers get their size back, the taker is cancelled."""
        book = self.books[plan.taker.asset_id]
        for fill in plan.fills:
            maker = fill.maker
            maker.remaining_making += fill.making
            maker.remaining_size += fill.shares
            maker.size_matched -= fill.shares
            if maker.status == STATUS_MATCHED:
                maker.status = STATUS_LIVE
            if maker.status == STATUS_LIVE:
                book.reinstate(maker)
        taker = plan.taker
        taker.remaining_making += plan.taker_making
        taker.remaining_size += plan.shares
        taker.size_matched -= plan.shares
        book.remove(taker)
        taker.status = STATUS_CANCELED

    # -- cancels and lookups -------------------------------------------------------------------------
    def cancel(self, order_id: str) -> bool:
        """Cancel a live order; False if unknown or not live."""
        order = self.orders.get(order_id)
        if order is None or order.status != STATUS_LIVE:
            return False
        self.books[order.asset_id].remove(order)
        order.status = STATUS_CANCELED
        return True

    def live_orders(self, *, owner: str | None = None, maker: str | None = None) -> list[BookOrder]:
        """Resting orders, optionally filtered by API key owner or maker address."""
        out = []
        for book in self.books.values():
            for order in book.orders():
                if order.status != STATUS_LIVE:
                    continue
                if owner is not None and order.owner != owner:
                    continue
                if maker is not None and order.maker_address.lower() != maker.lower():
                    continue
                out.append(order)
        out.sort(key=lambda o: o.seq)
        return out

    def expire(self, now: float | None = None) -> list[BookOrder]:
        """Drop expired GTD orders from the books."""
        now = time.time() if now is None else now
        gone = []
        for book in self.books.values():
            for order in list(book.orders()):
                if order.expired(now):
                    book.remove(order)
                    order.status = STATUS_CANCELED
                    gone.append(order)
        return gone
