"""The local Polymarket CLOB: an aiohttp app speaking the REST subset the unmodified py-clob-client-v2 uses.

Contract: /work/shared/CLOB-WIRE.md §1–§6, §9. Orders are checked like the real CLOB does (L2 HMAC, EIP-712
signature, tick, minimum size, on-chain balance/allowance, FOK/FAK rules), matched with price-time
priority against a book seeded by a market maker, and every match is settled on the fork through the
planted exchange's `matchOrders`, sent by the exchange-operator account. By default a POST /order is
answered once the settlement receipt is in and successful, with its `transactionsHashes` and `tradeIDs`.

Public API: `build_app`, `ClobServerThread`, `serve`, `ClobOptions`.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field, fields
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable, Mapping

from aiohttp import web
from eth_utils import to_checksum_address

from .book import (
    STATUS_LIVE,
    STATUS_MATCHED,
    Book,
    BookOrder,
    MakerFill,
    MatchingEngine,
    MatchPlan,
)
from .clob_auth import DEFAULT_AUTH_SEED, ApiKey, ApiKeyRegistry, AuthError
from .clob_chain import MAX_UINT256, SPLIT_GAS, AsyncRpc, AsyncTxSender, ChainView, RpcError, TxOutcome
from .exchange import MAX_MAKERS, match_gas, match_orders_calldata
from .clob_orders import (
    ERR_BALANCE,
    ERR_EXPIRATION,
    ERR_OWNER,
    ERR_PAYLOAD,
    ERR_POST_ONLY_TYPE,
    ERR_SIGNATURE,
    ERR_SIGNER,
    GTD_SECURITY_THRESHOLD_S,
    ORDER_TYPES,
    RESTING_TYPES,
    SIDE_BUY,
    SIDE_SELL,
    SIG_POLY_1271,
    TAKE_ONLY_TYPES,
    UNIT,
    ClobApiError,
    SignedOrder,
    check_market_amount_precision,
    err_duplicate,
    err_min_size,
    err_tick,
    exchange_address,
    fraction_to_decimal_str,
    parse_order,
    price_on_tick,
    units_to_str,
    verify_order_signature,
)
from .market_maker import LadderConfig, MarketMaker, Quote

log = logging.getLogger(__name__)

INITIAL_CURSOR = "MA=="  # base64("0")
END_CURSOR = "LTE="  # base64("-1")
MAX_BATCH_ORDERS = 15
MAX_MAKERS_PER_TX = MAX_MAKERS  # MockExchangeV2's bound on maker orders per matchOrders
COLLATERAL = "COLLATERAL"
SETTLE_WAIT_MODES = ("receipt", "sent", "none")


@dataclass
class ClobOptions:
    """Everything tunable about the local CLOB (book shape, settlement policy, auth)."""

    mid: float = 0.5
    """Market-maker mid for each market's first outcome (the second is quoted around 1 - mid)."""
    mids: Mapping[str, float] = field(default_factory=dict)
    """Per-token mid overrides."""
    levels: int = 10
    """Market-maker price levels per side."""
    level_size: float = 5000.0
    """Shares per market-maker level."""
    spread_ticks: int = 1
    """Ticks between the mid and the best quotes."""
    quote_bids: bool = True
    """Whether the market maker also quotes BUY ladders."""
    replenish: bool = True
    """Re-quote a market-maker level as soon as it fills out."""
    settle_wait: str = "receipt"
    """When POST /order answers: "receipt" (settlement mined and successful; a revert is an error),
    "sent" (node accepted the tx), "none" (right after matching; trades resolve via /data/trades)."""
    receipt_timeout_s: float = 60.0
    answer_within_s: float = 4.0
    """With settle_wait="receipt": answer after at most this long even if the receipt is not in yet
    (the client's HTTP timeout is 5 s); the settlement is then confirmed in the background."""
    mm_inventory_interval_s: float = 1.0
    """How often the market maker tops up its inventory (split collateral into outcomes when its quotes
    outgrow its tokens, merge outcomes back when its bids outgrow its collateral); 0 disables."""
    check_balances: bool = True
    """Check the poster's balance/allowance on chain (real CLOB behaviour)."""
    page_size: int = 100
    heartbeat_timeout_s: float = 10.0
    """Cancel a key's orders when its heartbeats stop for this long (0 disables)."""
    max_history: int = 100_000
    """Settled trades kept for /data/trades (finished orders: twice that); older ones are forgotten."""
    auth_seed: bytes = DEFAULT_AUTH_SEED
    max_clock_skew_s: float | None = None
    access_log: bool = False

    def ladder(self) -> LadderConfig:
        """The market maker's part of the options."""
        return LadderConfig(mid=self.mid, mids=dict(self.mids), levels=self.levels, level_size=self.level_size,
                            spread_ticks=self.spread_ticks, quote_bids=self.quote_bids, replenish=self.replenish)


def _options(options: ClobOptions | None, overrides: Mapping[str, Any]) -> ClobOptions:
    names = {f.name for f in fields(ClobOptions)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown CLOB option(s): {', '.join(sorted(unknown))}")
    opts = options or ClobOptions()
    if overrides:
        opts = ClobOptions(**{**{n: getattr(opts, n) for n in names}, **overrides})
    if opts.settle_wait not in SETTLE_WAIT_MODES:
        raise ValueError(f"settle_wait must be one of {SETTLE_WAIT_MODES}, got {opts.settle_wait!r}")
    return opts


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
    status: str = "MATCHED"
    transaction_hash: str = ""
    last_update: int = 0
    taker_making: int = 0
    error: str = ""

    @property
    def price(self) -> Fraction:
        """Average price of the trade."""
        return Fraction(self.usdc, self.shares) if self.shares else self.taker.price

    def involves(self, address: str) -> bool:
        """Whether `address` is the taker or one of the makers."""
        a = address.lower()
        return self.taker.maker_address.lower() == a or any(f.maker.maker_address.lower() == a for f in self.fills)

    def to_json(self, viewer: str | None = None) -> dict:
        """The /data/trades row (CLOB-WIRE §6.3), seen by `viewer` (taker or maker side)."""
        is_maker = viewer is not None and self.taker.maker_address.lower() != viewer.lower()
        return {
            "id": self.id,
            "taker_order_id": self.taker.order_id,
            "market": self.market,
            "asset_id": self.asset_id,
            "side": self.taker.side,
            "size": units_to_str(self.shares),
            "fee_rate_bps": "0",
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
                    "fee_rate_bps": "0",
                    "price": fraction_to_decimal_str(f.maker.price),
                    "asset_id": f.maker.asset_id,
                    "outcome": self.outcome,
                    "side": f.maker.side,
                }
                for f in self.fills
            ],
        }


@dataclass
class ClobStats:
    """Counters for benchmarks and `status` views."""

    orders_accepted: int = 0
    orders_rejected: int = 0
    trades_settled: int = 0
    trades_failed: int = 0
    mm_requotes: int = 0


def _cursor_offset(cursor: str | None) -> int:
    if not cursor or cursor == INITIAL_CURSOR:
        return 0
    try:
        return max(0, int(base64.b64decode(cursor).decode()))
    except Exception:
        raise ClobApiError("invalid next_cursor") from None


def _page(items: list, cursor: str | None, size: int) -> dict:
    start = _cursor_offset(cursor)
    chunk = items[start:start + size]
    end = start + len(chunk)
    nxt = base64.b64encode(str(end).encode()).decode() if end < len(items) else END_CURSOR
    return {"limit": size, "count": len(chunk), "next_cursor": nxt, "data": chunk}


class LocalClob:
    """The CLOB's state and logic (auth, books, orders, trades, settlement), independent of HTTP routing."""

    def __init__(self, world, rpc_url: str, *, operator_key: str, market_maker_key: str | None,
                 seed_book: bool = True, options: ClobOptions | None = None):
        self.world = world
        self.rpc_url = rpc_url
        self.chain_id = int(world.chain_id)
        self.options = options or ClobOptions()
        self.seed_book = seed_book
        self.registry = ApiKeyRegistry(self.chain_id, self.options.auth_seed, max_skew_s=self.options.max_clock_skew_s)
        self.engine = MatchingEngine()
        self.exchange = to_checksum_address(world.exchange)
        self._operator_key = operator_key
        self.mm = MarketMaker(market_maker_key, self.chain_id, self.options.ladder()) if market_maker_key else None
        self.mm_key: ApiKey | None = self.registry.issue(self.mm.address, 0) if self.mm else None
        self.markets = {m.condition_id.lower(): m for m in world.markets}
        self.tokens: dict[str, tuple[Any, int]] = {tid: (m, i) for m in world.markets for i, tid in enumerate(m.token_ids)}
        for m in world.markets:
            for tid in m.token_ids:
                self.engine.add_book(Book(m.condition_id, tid, m.tick_size, m.min_order_size, m.neg_risk))
        self.trades: list[Trade] = []
        self.trades_by_id: dict[str, Trade] = {}
        self.stats = ClobStats()
        self.rpc: AsyncRpc | None = None
        self.chain: ChainView | None = None
        self.sender: AsyncTxSender | None = None
        self.mm_sender: AsyncTxSender | None = None
        self._mm_key = market_maker_key
        self._inflight: dict[tuple[str, str], int] = {}
        self._pending_ids: set[str] = set()
        self._heartbeats: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()
        self._settling: set[asyncio.Task] = set()

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the node connection and seed the market maker's book."""
        self.rpc = AsyncRpc(self.rpc_url)
        collateral = getattr(self.world, "exchange_collateral", None) or self.world.collateral
        self.chain = ChainView(self.rpc, collateral=collateral, ctf=self.world.ctf)
        self.sender = AsyncTxSender(self.rpc, self._operator_key, self.chain_id)
        if self.seed_book and self.mm is not None:
            await self.seed()
        if self.mm is not None:
            self.mm_sender = AsyncTxSender(self.rpc, self._mm_key, self.chain_id)
            if self.options.mm_inventory_interval_s > 0:
                self._spawn(self._inventory_keeper())
        self._spawn(self._housekeeping())

    async def stop(self) -> None:
        """Let in-flight settlements finish (bounded), stop background tasks, close the node connection."""
        if self._settling:
            await asyncio.wait(list(self._settling), timeout=self.options.receipt_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.rpc is not None:
            await self.rpc.close()

    def _spawn(self, coro, *, settling: bool = False) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        bucket = self._settling if settling else self._tasks
        bucket.add(task)
        task.add_done_callback(bucket.discard)
        return task

    def stats_json(self) -> dict:
        """Counters, queue sizes and node calls, for benchmarks and status views."""
        from dataclasses import asdict

        return {
            **asdict(self.stats),
            "orders_known": len(self.engine.orders),
            "resting_orders": sum(1 for b in self.engine.books.values() for _ in b.orders()),
            "trades_known": len(self.trades),
            "settlements_in_flight": len(self._settling),
            "rpc_calls": dict(self.rpc.calls) if self.rpc is not None else {},
            "settle_wait": self.options.settle_wait,
        }

    # ---------------------------------------------------------------------------------- market maker
    def _verifying_contract(self, neg_risk: bool) -> str:
        try:
            return exchange_address(self.chain_id, neg_risk)
        except Exception:  # a chain id py_clob_client_v2 does not know: orders are signed for the world's exchange
            return self.exchange

    def _verify(self, order: SignedOrder, neg_risk: bool) -> str:
        try:
            return verify_order_signature(order, self.chain_id, neg_risk, self._verifying_contract(neg_risk))
        except ClobApiError:
            raise
        except Exception:
            raise ClobApiError(ERR_SIGNATURE) from None

    async def seed(self) -> int:
        """Post the market maker's ladders on every book (signing off the event loop); returns orders posted."""
        assert self.mm is not None
        jobs: list[tuple[Quote, str]] = []
        for m in self.world.markets:
            exchange = self._verifying_contract(m.neg_risk)
            jobs.extend((q, exchange) for q in self.mm.quotes_for(list(m.token_ids), m.tick_size))
        loop = asyncio.get_running_loop()
        signed = await loop.run_in_executor(None, lambda: [self.mm.sign(q, ex) for q, ex in jobs])
        for (quote, _ex), wire in zip(jobs, signed):
            self._rest_mm_order(quote, wire)
        log.info("market maker %s quoted %d orders on %d books", self.mm.address, len(signed), len(self.engine.books))
        return len(signed)

    def _rest_mm_order(self, quote: Quote, wire: dict) -> BookOrder:
        assert self.mm_key is not None
        market, _idx = self.tokens[quote.token_id]
        order = parse_order(wire)
        order_id = self._verify(order, market.neg_risk)
        book_order = BookOrder(
            order_id=order_id, order=order, owner=self.mm_key.api_key, order_type="GTC",
            market=market.condition_id, asset_id=quote.token_id, price=order.price,
            remaining_making=order.maker_amount, remaining_size=order.size_units, original_size=order.size_units,
            tick_size=market.tick_size, is_market_maker=True, outcome=self._outcome(quote.token_id),
        )
        book_order.seq = self.engine.next_seq()
        self.engine.orders[order_id] = book_order
        self.engine.books[quote.token_id].add(book_order)
        return book_order

    def _requote(self, filled: list[BookOrder]) -> None:
        """Replace market-maker orders that filled out with fresh ones at the same price."""
        if self.mm is None or not self.options.replenish:
            return
        for old in filled:
            market, _ = self.tokens[old.asset_id]
            quote = Quote(old.asset_id, old.side, Decimal(old.price.numerator) / Decimal(old.price.denominator),
                          old.original_size)
            wire = self.mm.sign(quote, self._verifying_contract(market.neg_risk))
            self._rest_mm_order(quote, wire)
            self.stats.mm_requotes += 1

    async def _inventory_keeper(self) -> None:
        while True:
            await asyncio.sleep(self.options.mm_inventory_interval_s)
            try:
                await self.rebalance_inventory()
            except Exception as exc:  # noqa: BLE001 — keep quoting; try again next round
                log.warning("market maker inventory check failed: %s", exc)

    async def rebalance_inventory(self) -> list[str]:
        """Keep the market maker able to honour its quotes: split or merge on the CTF; returns tx hashes."""
        if self.mm is None or self.chain is None or self.mm_sender is None:
            return []
        ladder_units = int(self.options.levels * self.options.level_size * UNIT)
        hashes = []
        for m in self.world.markets:
            collateral, balances = await self.chain.holdings(self.mm.address, [int(t) for t in m.token_ids])
            free_collateral = collateral - self._committed(self.mm.address, COLLATERAL)
            free_tokens = [b - self._committed(self.mm.address, t) for b, t in zip(balances, m.token_ids)]
            short_tokens = max(0, -min(free_tokens))
            if short_tokens and free_collateral > 0:
                amount = min(free_collateral, short_tokens + ladder_units)
                data, what = self.chain.split_calldata(m.condition_id, amount), "split"
            elif free_collateral < 0 and min(free_tokens) > 0:
                amount = min(min(free_tokens), -free_collateral + ladder_units)
                data, what = self.chain.merge_calldata(m.condition_id, amount), "merge"
            else:
                continue
            tx = await self.mm_sender.send(self.world.ctf, data, SPLIT_GAS)
            outcome = await self.mm_sender.wait(tx, self.options.receipt_timeout_s)
            log.info("market maker %s %s on %s: %s", what, units_to_str(amount), m.slug,
                     "ok" if outcome.ok else outcome.error)
            hashes.append(tx)
        return hashes

    # ------------------------------------------------------------------------------------ accounting
    def _asset_key(self, side: str, token_id: str) -> str:
        return COLLATERAL if side == SIDE_BUY else token_id

    def _committed(self, address: str, asset: str) -> int:
        """What `address` already owes in `asset`: its resting orders plus in-flight settlements."""
        a = address.lower()
        total = self._inflight.get((a, asset), 0)
        for book in self.engine.books.values():
            if asset != COLLATERAL and book.asset_id != asset:
                continue
            for order in book.orders():
                if order.status == STATUS_LIVE and order.maker_address.lower() == a and \
                        self._asset_key(order.side, order.asset_id) == asset:
                    total += order.remaining_making
        return total

    def _reserve(self, trade: Trade, sign: int) -> None:
        entries = [(trade.taker.maker_address, self._asset_key(trade.taker.side, trade.asset_id), trade.taker_making)]
        entries += [(f.maker.maker_address, self._asset_key(f.maker.side, trade.asset_id), f.making) for f in trade.fills]
        for address, asset, amount in entries:
            k = (address.lower(), asset)
            left = self._inflight.get(k, 0) + sign * amount
            if left > 0:
                self._inflight[k] = left
            else:
                self._inflight.pop(k, None)

    async def _check_funds(self, order: SignedOrder, token_id: str) -> None:
        assert self.chain is not None
        try:
            if order.side == SIDE_BUY:
                balance, allowance = await self.chain.collateral_funds(order.maker, self.exchange)
                approved = True
            else:
                balance, approved = await self.chain.token_funds(order.maker, order.token_id, self.exchange)
                allowance = MAX_UINT256 if approved else 0
        except RpcError as exc:
            raise ClobApiError(f"could not read balances from the node: {exc}", status=503) from None
        # NOTE: committed funds are read after the await, so concurrent orders of one wallet see each other.
        need = order.maker_amount + self._committed(order.maker, self._asset_key(order.side, token_id))
        if balance < need or allowance < need or not approved:
            raise ClobApiError(ERR_BALANCE)

    # ---------------------------------------------------------------------------------------- orders
    def _outcome(self, token_id: str) -> str:
        market, idx = self.tokens[token_id]
        return market.outcomes[idx] if idx < len(market.outcomes) else str(idx)

    def _market_of(self, token_id: str):
        found = self.tokens.get(token_id)
        if found is None:
            raise ClobApiError(f"market not found for token id {token_id}", status=404)
        return found

    async def place(self, payload: Any, key: ApiKey) -> dict:
        """Validate, match and settle one POST /order body; returns the response body or raises ClobApiError."""
        try:
            return await self._place(payload, key)
        except ClobApiError:
            self.stats.orders_rejected += 1
            raise

    async def _place(self, payload: Any, key: ApiKey) -> dict:
        if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
            raise ClobApiError(ERR_PAYLOAD)
        order = parse_order(payload["order"])
        order_type = str(payload.get("orderType") or "GTC").upper()
        if order_type not in ORDER_TYPES:
            raise ClobApiError(ERR_PAYLOAD)
        post_only = bool(payload.get("postOnly", False))
        if payload.get("owner") != key.api_key:
            raise ClobApiError(ERR_OWNER)
        if order.signature_type != SIG_POLY_1271 and order.signer.lower() != key.address.lower():
            raise ClobApiError(ERR_SIGNER)
        token_id = str(order.token_id)
        market, _ = self._market_of(token_id)
        if post_only and order_type in TAKE_ONLY_TYPES:
            raise ClobApiError(ERR_POST_ONLY_TYPE)
        order_id = self._verify(order, market.neg_risk)
        if order_id in self.engine.orders or order_id in self._pending_ids:
            raise err_duplicate(order_id)
        now = time.time()
        if order_type == "GTD":
            if not order.expiration or order.expiration <= now + GTD_SECURITY_THRESHOLD_S:
                raise ClobApiError(ERR_EXPIRATION)
        price = order.price
        tick = market.tick_size
        if order_type in RESTING_TYPES:
            if not price_on_tick(price, tick):
                raise err_tick(order_id, fraction_to_decimal_str(price), tick)
            if order.size_units < int(Decimal(str(market.min_order_size)) * UNIT):
                raise err_min_size(order_id, units_to_str(order.size_units), market.min_order_size)
        else:
            check_market_amount_precision(order, tick)
            lo = Fraction(Decimal(tick))
            if price < lo or price > 1 - lo:
                raise err_tick(order_id, fraction_to_decimal_str(price), tick)
        if order.signature_type == SIG_POLY_1271 and self.chain is not None:
            digest = bytes.fromhex(order_id[2:])
            if not await self.chain.is_valid_1271(order.maker, digest, bytes.fromhex(order.signature[2:])):
                raise ClobApiError(ERR_SIGNATURE)
        self._pending_ids.add(order_id)
        try:
            if self.options.check_balances:
                await self._check_funds(order, token_id)
            taker = BookOrder(
                order_id=order_id, order=order, owner=key.api_key, order_type=order_type,
                market=market.condition_id, asset_id=token_id, price=price,
                remaining_making=order.maker_amount, remaining_size=order.size_units,
                original_size=order.size_units, tick_size=tick, created_at=int(now), outcome=self._outcome(token_id),
            )
            # From here to the end of commit nothing awaits: the book cannot change under the match.
            plan = self.engine.submit(taker, post_only=post_only, now=now)
        finally:
            self._pending_ids.discard(order_id)
        if not plan.fills:
            self.stats.orders_accepted += 1
            return self._order_response(taker, "live", [], [])
        trades = self._record_trades(plan, taker.outcome)
        self._requote([f.maker for f in plan.fills if f.maker.is_market_maker and f.maker.status == STATUS_MATCHED])
        hashes = await self._settle(plan, trades)
        self.stats.orders_accepted += 1
        return self._order_response(taker, "matched", hashes, trades)

    def _order_response(self, taker: BookOrder, status: str, hashes: list[str], trades: list[Trade]) -> dict:
        ok = [t for t in trades if t.status != "FAILED"]
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

    def _record_trades(self, plan: MatchPlan, outcome: str) -> list[Trade]:
        now = int(time.time())
        trades = []
        for i in range(0, len(plan.fills), MAX_MAKERS_PER_TX):
            chunk = plan.fills[i:i + MAX_MAKERS_PER_TX]
            shares = sum(f.shares for f in chunk)
            usdc = sum(f.usdc for f in chunk)
            trade = Trade(
                id=str(uuid.uuid4()), taker=plan.taker, fills=chunk, market=plan.taker.market,
                asset_id=plan.taker.asset_id, outcome=outcome, shares=shares, usdc=usdc, match_time=now,
                last_update=now, taker_making=sum(f.taking for f in chunk),
            )
            self.trades.append(trade)
            self.trades_by_id[trade.id] = trade
            plan.taker.associate_trades.append(trade.id)
            for f in chunk:
                f.maker.associate_trades.append(trade.id)
            self._reserve(trade, +1)
            trades.append(trade)
        return trades

    # ------------------------------------------------------------------------------------ settlement
    async def _send_trade(self, trade: Trade) -> bool:
        assert self.sender is not None
        taker = trade.taker
        data = match_orders_calldata(taker.market, taker.order.wire, [f.maker.order.wire for f in trade.fills],
                                     trade.taker_making, [f.making for f in trade.fills])
        gas = match_gas(len(trade.fills))
        try:
            trade.transaction_hash = await self.sender.send(self.exchange, data, gas)
        except RpcError as exc:
            self._fail(trade, f"settlement transaction refused by the node: {exc}")
            return False
        return True

    async def _confirm_trade(self, trade: Trade) -> bool:
        assert self.sender is not None
        outcome: TxOutcome = await self.sender.wait(trade.transaction_hash, self.options.receipt_timeout_s)
        if not outcome.ok:
            self._fail(trade, f"settlement transaction {trade.transaction_hash} {outcome.error or 'failed'}")
            return False
        trade.status = "CONFIRMED"
        trade.last_update = int(time.time())
        self._reserve(trade, -1)
        self.stats.trades_settled += 1
        return True

    def _fail(self, trade: Trade, reason: str) -> None:
        if trade.status == "FAILED":
            return
        log.warning("trade %s of order %s failed: %s", trade.id, trade.taker.order_id, reason)
        trade.status = "FAILED"
        trade.error = reason
        trade.last_update = int(time.time())
        self._reserve(trade, -1)
        self.stats.trades_failed += 1
        # Give the makers their size back and drop what is left of the taker.
        self.engine.undo(MatchPlan(trade.taker, trade.fills, trade.taker_making,
                                   sum(f.making for f in trade.fills), trade.shares, trade.usdc))

    async def _settle_all(self, trades: list[Trade]) -> None:
        sent = [t for t in trades if await self._send_trade(t)]
        if sent:
            await asyncio.gather(*(self._confirm_trade(t) for t in sent))

    async def _settle(self, plan: MatchPlan, trades: list[Trade]) -> list[str]:
        """Settle per the `settle_wait` policy; returns the hashes to report (raises if nothing settled)."""
        mode = self.options.settle_wait
        if mode == "none":
            self._spawn(self._settle_all(trades), settling=True)
            return []
        sent = []
        for trade in trades:
            if await self._send_trade(trade):
                sent.append(trade)
        confirms = [self._spawn(self._confirm_trade(t), settling=True) for t in sent]
        if mode == "receipt" and confirms:
            # NOTE: py-clob-client's HTTP timeout is 5 s; a receipt slower than `answer_within_s` (interval
            # mining) is answered like "sent" and confirmed in the background (a later revert marks it FAILED).
            done, _slow = await asyncio.wait(confirms, timeout=self.options.answer_within_s)
            sent = [t for t, task in zip(sent, confirms) if task not in done or task.result()]
        if not sent:
            reasons = "; ".join(t.error for t in trades if t.error) or "settlement failed"
            raise ClobApiError(f"order {plan.taker.order_id} could not be executed: {reasons}", status=400)
        return [t.transaction_hash for t in sent]

    # ------------------------------------------------------------------------------- queries/cancels
    def _owned(self, order: BookOrder, key: ApiKey) -> bool:
        return order.order.signer.lower() == key.address.lower() or order.maker_address.lower() == key.address.lower()

    def cancel(self, key: ApiKey, order_ids: list[str]) -> dict:
        """Cancel the given orders of `key`'s owner: {"canceled": [...], "not_canceled": {id: reason}}."""
        canceled, not_canceled = [], {}
        for oid in order_ids:
            order = self.engine.orders.get(oid) if isinstance(oid, str) else None
            if order is None or not self._owned(order, key):
                not_canceled[str(oid)] = "order not found"
            elif order.status != STATUS_LIVE:
                not_canceled[oid] = f"order is {order.status.lower()}"
            elif self.engine.cancel(oid):
                canceled.append(oid)
            else:
                not_canceled[oid] = "order could not be canceled"
        return {"canceled": canceled, "not_canceled": not_canceled}

    def open_orders(self, key: ApiKey, *, market: str | None = None, asset_id: str | None = None,
                    order_id: str | None = None) -> list[dict]:
        """Live orders of the key's owner, oldest first."""
        out = []
        for order in self.engine.live_orders():
            if not self._owned(order, key):
                continue
            if market and order.market.lower() != market.lower():
                continue
            if asset_id and order.asset_id != asset_id:
                continue
            if order_id and order.order_id.lower() != order_id.lower():
                continue
            out.append(order.to_open_order())
        return out

    def trades_for(self, key: ApiKey, q: Mapping[str, str]) -> list[dict]:
        """Trades involving the key's owner, newest first, with the /data/trades filters."""
        out = []
        trade_id, market, asset_id = q.get("id"), q.get("market"), q.get("asset_id")
        maker_address = q.get("maker_address")
        after, before = q.get("after"), q.get("before")
        for trade in reversed(self.trades):
            if trade_id and trade.id != trade_id:
                continue
            if not trade.involves(key.address):
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
            out.append(trade.to_json(key.address))
        return out

    def heartbeat(self, key: ApiKey) -> dict:
        """Record a heartbeat; the reply carries the next heartbeat id."""
        self._heartbeats[key.api_key] = time.monotonic()
        return {"heartbeat_id": str(uuid.uuid4())}

    async def _housekeeping(self) -> None:
        """Once a second: heartbeat timeouts, GTD expiry, bounded history."""
        while True:
            await asyncio.sleep(1.0)
            try:
                self._sweep_heartbeats()
                for order in self.engine.expire():
                    log.debug("order %s expired", order.order_id)
                self.prune_history()
            except Exception:  # noqa: BLE001 — housekeeping must not die
                log.exception("CLOB housekeeping failed")

    def _sweep_heartbeats(self) -> None:
        if self.options.heartbeat_timeout_s <= 0:
            return
        cutoff = time.monotonic() - self.options.heartbeat_timeout_s
        for api_key, last in list(self._heartbeats.items()):
            if last >= cutoff:
                continue
            del self._heartbeats[api_key]
            creds = self.registry.get(api_key)
            if creds is None:
                continue
            ids = [o["id"] for o in self.open_orders(creds)]
            if ids:
                log.info("heartbeats of %s stopped: cancelling %d orders", creds.address, len(ids))
                self.cancel(creds, ids)

    def prune_history(self) -> int:
        """Forget the oldest settled trades and finished orders beyond `max_history` (long benchmarks)."""
        cap = self.options.max_history
        dropped = 0
        if len(self.trades) > cap:
            keep_from = len(self.trades) - int(cap * 0.9)
            old = [t for t in self.trades[:keep_from] if t.status in ("CONFIRMED", "FAILED")]
            gone = {id(t) for t in old}
            self.trades = [t for t in self.trades if id(t) not in gone]
            for t in old:
                self.trades_by_id.pop(t.id, None)
            dropped += len(old)
        if len(self.engine.orders) > 2 * cap:
            finished = sorted((o for o in self.engine.orders.values() if o.status != STATUS_LIVE), key=lambda o: o.seq)
            for o in finished[: len(self.engine.orders) - int(2 * cap * 0.9)]:
                del self.engine.orders[o.order_id]
                dropped += 1
        return dropped

    async def balance_allowance(self, key: ApiKey, q: Mapping[str, str]) -> dict:
        """Raw on-chain balance and allowance for the key's address (COLLATERAL or CONDITIONAL token_id)."""
        assert self.chain is not None
        asset_type = (q.get("asset_type") or COLLATERAL).upper()
        try:
            if asset_type == COLLATERAL:
                balance, allowance = await self.chain.collateral_funds(key.address, self.exchange)
            elif asset_type == "CONDITIONAL":
                token = q.get("token_id")
                if not token or not token.isdigit():
                    raise ClobApiError("token_id is required for CONDITIONAL balances")
                balance, approved = await self.chain.token_funds(key.address, int(token), self.exchange)
                allowance = MAX_UINT256 if approved else 0
            else:
                raise ClobApiError(f"invalid asset_type {asset_type}")
        except RpcError as exc:
            raise ClobApiError(f"could not read balances from the node: {exc}", status=503) from None
        return {"balance": str(balance), "allowance": str(allowance), "allowances": {self.exchange: str(allowance)}}

    # --------------------------------------------------------------------------------- market views
    def book(self, token_id: str) -> Book:
        """A token's book; 404 like the real CLOB when unknown."""
        book = self.engine.books.get(str(token_id or ""))
        if book is None:
            raise ClobApiError("No orderbook exists for the requested token id", status=404)
        return book

    def clob_market_info(self, condition_id: str) -> dict:
        """The /clob-markets/{condition_id} body."""
        m = self.markets.get(condition_id.lower())
        if m is None:
            raise ClobApiError("market not found", status=404)
        return {
            "t": [{"t": tid, "o": m.outcomes[i] if i < len(m.outcomes) else str(i)} for i, tid in enumerate(m.token_ids)],
            "mts": float(m.tick_size),
            "nr": bool(m.neg_risk),
            "mos": m.min_order_size,
            "mbf": 0,
            "tbf": 0,
            "fd": {"r": 0, "e": 0, "to": False},
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
            "minimum_tick_size": float(m.tick_size),
            "neg_risk": bool(m.neg_risk),
            "active": True,
            "closed": False,
            "accepting_orders": True,
            "enable_order_book": True,
            "tokens": [{"token_id": tid, "outcome": m.outcomes[i] if i < len(m.outcomes) else str(i),
                        "price": float(self.engine.books[tid].midpoint() or Fraction(1, 2))}
                       for i, tid in enumerate(m.token_ids)],
        }


# ============================================================================================= HTTP

CLOB_KEY = web.AppKey("clob", LocalClob)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json")


def _err(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


@web.middleware
async def _errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ClobApiError as exc:
        return _json(exc.body(), exc.status)
    except AuthError as exc:
        log.debug("auth failed on %s %s: %s", request.method, request.path, exc)
        return _err(exc.message, 401)
    except web.HTTPException as exc:
        if exc.status == 404:
            return _err("not found", 404)
        if exc.status == 405:
            return _err("method not allowed", 405)
        raise
    except Exception:  # noqa: BLE001 — the client must get JSON, the log gets the traceback
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _err("internal error", 500)


async def _body_json(request: web.Request, raw: bytes | None = None) -> Any:
    raw = raw if raw is not None else await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ClobApiError(ERR_PAYLOAD) from None


async def _l2(request: web.Request) -> tuple[ApiKey, bytes]:
    raw = await request.read()
    key = request.app[CLOB_KEY].registry.authenticate_l2(request.headers, request.method, request.path, raw)
    return key, raw


def _price_str(value: Fraction | None) -> str | None:
    return fraction_to_decimal_str(value) if value is not None else None


def _token_param(request: web.Request) -> str:
    token = request.query.get("token_id", "")
    if not token:
        raise ClobApiError("token_id is required")
    return token


def _routes(clob: LocalClob) -> web.RouteTableDef:
    r = web.RouteTableDef()

    # ------------------------------------------------------------------------------------ L0 basics
    @r.get("/")
    async def root(request):
        return _json("OK")

    @r.get("/ok")
    async def ok(request):
        return _json("OK")

    @r.get("/time")
    async def server_time(request):
        return _json(int(time.time()))

    @r.get("/version")
    async def version(request):
        return _json({"version": 2})

    @r.get("/local/stats")
    async def local_stats(request):
        # Not a Polymarket route: counters of this local server (benchmarks, `fork status`).
        return _json(clob.stats_json())

    # -------------------------------------------------------------------------------------- L1 auth
    @r.post("/auth/api-key")
    async def create_api_key(request):
        address, nonce = clob.registry.authenticate_l1(request.headers)
        return _json(clob.registry.issue(address, nonce).as_response())

    @r.get("/auth/derive-api-key")
    async def derive_api_key(request):
        address, nonce = clob.registry.authenticate_l1(request.headers)
        return _json(clob.registry.issue(address, nonce).as_response())

    @r.get("/auth/api-keys")
    async def api_keys(request):
        key, _ = await _l2(request)
        return _json({"apiKeys": [k.api_key for k in clob.registry.keys_of(key.address)]})

    # ------------------------------------------------------------------------------------- markets
    @r.get("/tick-size")
    async def tick_size(request):
        return _json({"minimum_tick_size": float(clob.book(_token_param(request)).tick_size)})

    @r.get("/neg-risk")
    async def neg_risk(request):
        return _json({"neg_risk": bool(clob.book(_token_param(request)).neg_risk)})

    @r.get("/fee-rate")
    async def fee_rate(request):
        clob.book(_token_param(request))
        return _json({"base_fee": 0})

    @r.get("/markets-by-token/{token_id}")
    async def market_by_token(request):
        m, _ = clob._market_of(request.match_info["token_id"])
        return _json({"condition_id": m.condition_id, "primary_token_id": m.token_ids[0],
                      "secondary_token_id": m.token_ids[1] if len(m.token_ids) > 1 else None})

    @r.get("/clob-markets/{condition_id}")
    async def clob_market(request):
        return _json(clob.clob_market_info(request.match_info["condition_id"]))

    @r.get("/markets/{condition_id}")
    async def market(request):
        m = clob.markets.get(request.match_info["condition_id"].lower())
        if m is None:
            raise ClobApiError("market not found", status=404)
        return _json(clob.market_json(m))

    @r.get("/markets")
    async def markets(request):
        items = [clob.market_json(m) for m in clob.world.markets]
        return _json(_page(items, request.query.get("next_cursor"), 500))

    # --------------------------------------------------------------------------------------- books
    @r.get("/book")
    async def book(request):
        return _json(clob.book(_token_param(request)).summary())

    @r.post("/books")
    async def books(request):
        body = await _body_json(request)
        if not isinstance(body, list):
            raise ClobApiError("Invalid payload")
        return _json([clob.book(str(item.get("token_id", ""))).summary() for item in body if isinstance(item, dict)])

    def _mid(token: str) -> dict:
        return {"mid": _price_str(clob.book(token).midpoint())}

    def _price(token: str, side: str) -> dict:
        side = side.upper()
        if side not in (SIDE_BUY, SIDE_SELL):
            raise ClobApiError("Invalid side")
        # NOTE: BUY = best bid, SELL = best ask (the price on that side of the book) [unverified vs. real]
        return {"price": _price_str(clob.book(token).best(side))}

    def _spread(token: str) -> dict:
        b = clob.book(token)
        bid, ask = b.best(SIDE_BUY), b.best(SIDE_SELL)
        return {"spread": _price_str(ask - bid) if bid is not None and ask is not None else None}

    def _last(token: str) -> dict:
        b = clob.book(token)
        return {"price": _price_str(b.last_trade_price) or "0.5", "side": ""}

    @r.get("/midpoint")
    async def midpoint(request):
        return _json(_mid(_token_param(request)))

    @r.get("/price")
    async def price(request):
        return _json(_price(_token_param(request), request.query.get("side", "")))

    @r.get("/spread")
    async def spread(request):
        return _json(_spread(_token_param(request)))

    @r.get("/last-trade-price")
    async def last_trade_price(request):
        return _json(_last(_token_param(request)))

    async def _params(request) -> list[dict]:
        body = await _body_json(request)
        if not isinstance(body, list):
            raise ClobApiError("Invalid payload")
        return [p for p in body if isinstance(p, dict) and p.get("token_id")]

    @r.post("/midpoints")
    async def midpoints(request):
        return _json({p["token_id"]: _mid(str(p["token_id"]))["mid"] for p in await _params(request)})

    @r.post("/prices")
    async def prices(request):
        out: dict[str, dict] = {}
        for p in await _params(request):
            tok = str(p["token_id"])
            sides = [str(p["side"]).upper()] if p.get("side") else [SIDE_BUY, SIDE_SELL]
            out.setdefault(tok, {}).update({s: _price(tok, s)["price"] for s in sides})
        return _json(out)

    @r.post("/spreads")
    async def spreads(request):
        return _json({p["token_id"]: _spread(str(p["token_id"]))["spread"] for p in await _params(request)})

    @r.post("/last-trades-prices")
    async def last_trades_prices(request):
        return _json([{"token_id": p["token_id"], **_last(str(p["token_id"]))} for p in await _params(request)])

    # -------------------------------------------------------------------------------------- orders
    @r.post("/order")
    async def post_order(request):
        key, raw = await _l2(request)
        return _json(await clob.place(await _body_json(request, raw), key))

    @r.post("/orders")
    async def post_orders(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw)
        if not isinstance(body, list):
            raise ClobApiError(ERR_PAYLOAD)
        if len(body) > MAX_BATCH_ORDERS:
            raise ClobApiError(f"Too many orders in payload: {len(body)}, max allowed: {MAX_BATCH_ORDERS}")
        out = []
        for item in body:  # in order: later orders may match earlier ones
            try:
                out.append(await clob.place(item, key))
            except ClobApiError as exc:
                out.append({"success": False, "errorMsg": exc.message, "error": exc.message, "orderID": "",
                            "status": "", "transactionsHashes": [], "tradeIDs": []})
        return _json(out)

    @r.get("/data/order/{order_id}")
    async def get_order(request):
        key, _ = await _l2(request)
        order = clob.engine.orders.get(request.match_info["order_id"])
        if order is None or not clob._owned(order, key):
            raise ClobApiError("order not found", status=404)
        return _json(order.to_open_order())

    @r.get("/data/orders")
    async def get_orders(request):
        key, _ = await _l2(request)
        q = request.query
        items = clob.open_orders(key, market=q.get("market"), asset_id=q.get("asset_id"), order_id=q.get("id"))
        return _json(_page(items, q.get("next_cursor"), clob.options.page_size))

    @r.get("/data/trades")
    async def get_trades(request):
        key, _ = await _l2(request)
        q = request.query
        return _json(_page(clob.trades_for(key, q), q.get("next_cursor"), clob.options.page_size))

    @r.delete("/order")
    async def cancel_order(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw)
        oid = body.get("orderID") if isinstance(body, dict) else None
        if not isinstance(oid, str) or not oid.startswith("0x"):
            raise ClobApiError("Invalid orderID")
        return _json(clob.cancel(key, [oid]))

    @r.delete("/orders")
    async def cancel_orders(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw)
        if not isinstance(body, list):
            raise ClobApiError("Invalid orderID")
        return _json(clob.cancel(key, [str(x) for x in body]))

    @r.delete("/cancel-all")
    async def cancel_all(request):
        key, _ = await _l2(request)
        return _json(clob.cancel(key, [o["id"] for o in clob.open_orders(key)]))

    @r.delete("/cancel-market-orders")
    async def cancel_market_orders(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw) or {}
        if not isinstance(body, dict):
            raise ClobApiError(ERR_PAYLOAD)
        ids = [o["id"] for o in clob.open_orders(key, market=body.get("market"), asset_id=body.get("asset_id"))]
        return _json(clob.cancel(key, ids))

    @r.get("/balance-allowance")
    async def balance_allowance(request):
        key, _ = await _l2(request)
        return _json(await clob.balance_allowance(key, request.query))

    @r.get("/balance-allowance/update")
    async def balance_allowance_update(request):
        key, _ = await _l2(request)
        return _json(await clob.balance_allowance(key, request.query))

    @r.post("/v1/heartbeats")
    async def heartbeats(request):
        key, _ = await _l2(request)
        return _json(clob.heartbeat(key))

    return r


def build_app(world, rpc_url: str, *, operator_key: str, market_maker_key: str | None = None,
              seed_book: bool = True, options: ClobOptions | None = None, feed: bool = False,
              extend: Callable[[web.Application], None] | None = None, **overrides: Any) -> web.Application:
    """The local CLOB as an aiohttp application (routes of CLOB-WIRE §2); node work starts on app startup.

    `options` (or keyword overrides of its fields, e.g. `levels=5, settle_wait="sent"`) shape the
    book and the settlement policy. `feed=True` also serves the activity websocket and Data API
    (`localworld.feed.attach_feed`: /ws, /activity, /trades) from the same app; `extend(app)` may add
    other routes beside ours.
    """
    opts = _options(options, overrides)
    clob = LocalClob(world, rpc_url, operator_key=operator_key, market_maker_key=market_maker_key,
                     seed_book=seed_book, options=opts)
    app = web.Application(middlewares=[_errors], client_max_size=4 * 1024 * 1024)
    app[CLOB_KEY] = clob
    app.add_routes(_routes(clob))

    async def _startup(_app):
        await clob.start()

    async def _cleanup(_app):
        await clob.stop()

    app.on_startup.append(_startup)
    app.on_cleanup.append(_cleanup)
    if feed:
        from .feed import attach_feed

        attach_feed(app, rpc_url, world)
    if extend is not None:
        extend(app)
    return app


class ClobServerThread:
    """Runs the local CLOB on its own event loop in a background thread (tests, embedding)."""

    def __init__(self, world, rpc_url: str, *, host: str = "127.0.0.1", port: int = 0, **kwargs: Any):
        self.host = host
        self.port = port
        self.app = build_app(world, rpc_url, **kwargs)
        self.clob: LocalClob = self.app[CLOB_KEY]
        self.base_url: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 60.0) -> str:
        """Start serving; returns the base URL (http://host:port) once the book is seeded."""
        self._thread = threading.Thread(target=self._run, name="local-clob", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"local CLOB did not start within {timeout:.0f}s")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError(f"local CLOB failed to start: {self._error}") from self._error
        return self.base_url  # type: ignore[return-value]

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 — reported to start()
            self._error = exc
            self._ready.set()
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _serve(self) -> None:
        access_log = logging.getLogger("aiohttp.access") if self.clob.options.access_log else None
        self._runner = web.AppRunner(self.app, access_log=access_log)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{self.host}:{port}"
        self._ready.set()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run `fn` on the server's loop (thread-safe access to its state); coroutines are awaited."""
        assert self._loop is not None

        async def _wrap():
            out = fn()
            if asyncio.iscoroutine(out):
                out = await out
            return out

        return asyncio.run_coroutine_threadsafe(_wrap(), self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (waits for in-flight settlements, bounded) and join the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = None

    def __enter__(self) -> "ClobServerThread":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(world, rpc_url: str, host: str = "127.0.0.1", port: int = 8081, **kwargs: Any) -> None:
    """Serve the local CLOB until interrupted (blocking; SIGINT/SIGTERM stop it cleanly)."""
    app = build_app(world, rpc_url, **kwargs)
    access_log = logging.getLogger("aiohttp.access") if app[CLOB_KEY].options.access_log else None
    log.info("local CLOB listening on http://%s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=access_log, handle_signals=True)
