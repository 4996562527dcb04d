"""The local CLOB's trade records: one `Trade` per settlement transaction, the history /data/trades reads,
the POST /order answer built from them, and the server's counters.

(`localworld.trades` is something else: it makes *leaders* trade on the planted exchange.)
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Mapping

from .book import BookOrder, MakerFill, MatchPlan
from .clob_orders import SIDE_BUY, fraction_to_decimal_str, units_to_str
from .exchange import MAX_MAKERS

MAX_MAKERS_PER_TX = MAX_MAKERS  # MockExchangeV2's bound on maker orders per matchOrders
COLLATERAL = "COLLATERAL"

TRADE_MATCHED = "MATCHED"
TRADE_MINED = "MINED"
TRADE_CONFIRMED = "CONFIRMED"
TRADE_RETRYING = "RETRYING"
TRADE_FAILED = "FAILED"
TRADE_FINISHED = (TRADE_CONFIRMED, TRADE_FAILED)


def asset_key(side: str, token_id: str) -> str:
    """What an order on `side` gives: collateral for a BUY, the outcome token for a SELL."""
    return COLLATERAL if side == SIDE_BUY else token_id


def fee_asset() -> str:
    """Fees are paid in the exchange collateral (pUSD), LIVE-2026 §8."""
    return COLLATERAL


def taker_fee(fills: list[MakerFill], rate: float, exponent: int) -> int:
    """The taker's fee in collateral units: sum over fills of C x rate x (p(1-p))^e (C shares at the maker's price p),
    floored to a unit (LIVE-2026 §8; the rounding is ours, docs/live-assumptions.md)."""
    if not rate:
        return 0
    r = Fraction(str(rate))
    total = Fraction(0)
    for f in fills:
        p = f.maker.price
        total += Fraction(f.shares) * r * (p * (1 - p)) ** int(exponent)
    return int(total)


def fee_rate_bps(rate: float) -> str:
    """The market's fee rate in basis points as trades show it ("400" for 0.04)."""
    return str(int((Fraction(str(rate)) * 10_000).limit_denominator(1)))


@dataclass
class Trade:
    """One settlement of a taker against up to 16 makers (one matchOrders transaction)."""

    id: str
    taker: BookOrder
    fills: list[MakerFill]
    market: str
    asset_id: str
    outcome: str
    shares: int
    usdc: int
    match_time: int
    status: str = TRADE_MATCHED
    transaction_hash: str = ""
    last_update: int = 0
    taker_making: int = 0
    error: str = ""
    exchange: str = ""
    """The exchange the trade settles on (the neg-risk exchange for neg-risk markets)."""
    fee: int = 0
    """The taker's fee in collateral units, passed to matchOrders."""
    fee_rate_bps: str = "0"
    block_number: int | None = None
    tx_hashes: list[str] = field(default_factory=list)
    """Every hash the trade had, oldest first (a RETRYING trade has its dropped first hash here)."""

    def set_hash(self, tx_hash: str) -> None:
        """The trade's (new) settlement transaction."""
        self.transaction_hash = tx_hash
        self.tx_hashes.append(tx_hash)
        self.last_update = int(time.time())

    def mark(self, status: str) -> None:
        """Move the trade to `status` (MINED, CONFIRMED, RETRYING, FAILED)."""
        self.status = status
        self.last_update = int(time.time())

    @property
    def price(self) -> Fraction:
        """Average price of the trade."""
        return Fraction(self.usdc, self.shares) if self.shares else self.taker.price

    @property
    def maker_making(self) -> int:
        """What the makers give in total."""
        return sum(f.making for f in self.fills)

    def plan(self) -> MatchPlan:
        """The part of the match this trade settles (to undo it when the settlement fails)."""
        return MatchPlan(self.taker, self.fills, self.taker_making, self.maker_making, self.shares, self.usdc)

    def involves(self, *addresses: str) -> bool:
        """Whether one of `addresses` is the taker or one of the makers."""
        mine = {a.lower() for a in addresses}
        return self.taker.maker_address.lower() in mine or any(f.maker.maker_address.lower() in mine
                                                                 for f in self.fills)

    def to_json(self, viewer: str | tuple[str, ...] | None = None) -> dict:
        """The /data/trades row (LIVE-2026 §5.6), seen by `viewer` (its addresses; taker or maker side)."""
        viewers = {viewer.lower()} if isinstance(viewer, str) else {v.lower() for v in viewer or ()}
        is_maker = bool(viewers) and self.taker.maker_address.lower() not in viewers
        return {
            "id": self.id,
            "taker_order_id": self.taker.order_id,
            "market": self.market,
            "asset_id": self.asset_id,
            "side": self.taker.side,
            "size": units_to_str(self.shares),
            "fee_rate_bps": self.fee_rate_bps,
            "price": fraction_to_decimal_str(self.price, 4),
            "status": self.status,
            "match_time": str(self.match_time),
            "last_update": str(self.last_update or self.match_time),
            "outcome": self.outcome,
            "bucket_index": 0,
            "owner": self.taker.owner,
            "maker_address": self.taker.maker_address,
            "transaction_hash": self.transaction_hash,
            "trader_side": "MAKER" if is_maker else "TAKER",
            "type": "MAKER" if is_maker else "TAKER",
            "maker_orders": [
                {
                    "order_id": f.maker.order_id,
                    "maker_address": f.maker.maker_address,
                    "owner": f.maker.owner,
                    "matched_amount": units_to_str(f.shares),
                    "fee_rate_bps": "0",  # makers pay no fee
                    "price": fraction_to_decimal_str(f.maker.price),
                    "asset_id": f.maker.asset_id,
                    "outcome": self.outcome,
                    "side": f.maker.side,
                }
                for f in self.fills
            ],
        }


def trades_of(plan: MatchPlan, outcome: str, *, exchange: str = "", fee_rate: float = 0.0,
              fee_exponent: int = 1) -> list[Trade]:
    """Cut a committed match into trades of at most MAX_MAKERS_PER_TX makers (one transaction each), each with the
    taker's fee at the market's rate."""
    now = int(time.time())
    trades = []
    for i in range(0, len(plan.fills), MAX_MAKERS_PER_TX):
        chunk = plan.fills[i:i + MAX_MAKERS_PER_TX]
        trade = Trade(
            id=str(uuid.uuid4()), taker=plan.taker, fills=chunk, market=plan.taker.market,
            asset_id=plan.taker.asset_id, outcome=outcome, shares=sum(f.shares for f in chunk),
            usdc=sum(f.usdc for f in chunk), match_time=now, last_update=now,
            taker_making=sum(f.taking for f in chunk), exchange=exchange,
            fee=taker_fee(chunk, fee_rate, fee_exponent), fee_rate_bps=fee_rate_bps(fee_rate),
        )
        plan.taker.associate_trades.append(trade.id)
        for f in chunk:
            f.maker.associate_trades.append(trade.id)
        trades.append(trade)
    return trades


def order_response(taker: BookOrder, status: str, hashes: list[str], trades: list[Trade]) -> dict:
    """The POST /order answer (CLOB-WIRE §6.1): what the taker gave and got in its trades that did not fail."""
    ok = [t for t in trades if t.status != TRADE_FAILED]
    return {
        "success": True,
        "errorMsg": "",
        "orderID": taker.order_id,
        "status": status,
        "makingAmount": units_to_str(sum(t.taker_making for t in ok)),
        "takingAmount": units_to_str(sum(f.making for t in ok for f in t.fills)),
        "transactionsHashes": hashes,
        "tradeIDs": [t.id for t in ok],
    }


class TradeHistory:
    """Every trade the server matched, oldest first, bounded by `prune`."""

    def __init__(self):
        self.trades: list[Trade] = []
        self.by_id: dict[str, Trade] = {}

    def __len__(self) -> int:
        return len(self.trades)

    def add(self, trade: Trade) -> None:
        """Remember a new trade."""
        self.trades.append(trade)
        self.by_id[trade.id] = trade

    def query(self, address: str | tuple[str, ...], q: Mapping[str, str]) -> list[dict]:
        """/data/trades rows of trades involving `address` (or any of several), newest first, with the filters."""
        addresses = (address,) if isinstance(address, str) else tuple(address)
        out = []
        trade_id, market, asset_id = q.get("id"), q.get("market"), q.get("asset_id")
        maker_address = q.get("maker_address")
        after, before = q.get("after"), q.get("before")
        for trade in reversed(self.trades):
            if trade_id and trade.id != trade_id:
                continue
            if not trade.involves(*addresses):
                continue
            if maker_address and not trade.involves(maker_address):
                continue
            if market and trade.market.lower() != market.lower():
                continue
            if asset_id and trade.asset_id != asset_id:
                continue
            if after and after.isdigit() and trade.match_time <= int(after):
                continue
            if before and before.isdigit() and trade.match_time >= int(before):
                continue
            out.append(trade.to_json(addresses))
        return out

    def prune(self, cap: int) -> int:
        """Forget the oldest finished trades once there are more than `cap`; returns how many went."""
        if len(self.trades) <= cap:
            return 0
        keep_from = len(self.trades) - int(cap * 0.9)
        old = [t for t in self.trades[:keep_from] if t.status in TRADE_FINISHED]
        gone = {id(t) for t in old}
        self.trades = [t for t in self.trades if id(t) not in gone]
        for t in old:
            self.by_id.pop(t.id, None)
        return len(old)


@dataclass
class ClobStats:
    """Counters for benchmarks and `status` views."""

    orders_accepted: int = 0
    orders_rejected: int = 0
    trades_settled: int = 0
    trades_failed: int = 0
    mm_requotes: int = 0
