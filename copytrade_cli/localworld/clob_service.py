"""The local CLOB as a plain object: markets, books, orders and matching, cancels, balances and auth.

`LocalClob` knows nothing about HTTP: `clob_routes` turns requests into calls of its public methods and
their results (wire-shaped dicts, CLOB-WIRE §5–§6) into responses; errors are `ClobApiError` / `AuthError`.
Matches are settled on the fork by `clob_settlement.Settlement`; the market maker's ladders live on the books
like any other orders.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import asdict
from decimal import Decimal
from typing import Any, Mapping

from eth_utils import to_checksum_address

from .book import STATUS_LIVE, STATUS_MATCHED, BookOrder, MatchingEngine
from .clob_auth import ApiKey, ApiKeyRegistry
from .clob_chain import MAX_UINT256, SPLIT_GAS, AsyncRpc, AsyncTxSender, ChainView, RpcError
from .clob_markets import ClobMarkets
from .clob_options import ClobOptions
from .clob_orders import (
    ERR_BALANCE,
    ERR_POST_ONLY_TYPE,
    ERR_SIGNATURE,
    SIDE_BUY,
    SIG_POLY_1271,
    TAKE_ONLY_TYPES,
    UNIT,
    ClobApiError,
    SignedOrder,
    check_order_terms,
    err_duplicate,
    exchange_address,
    parse_order,
    parse_post,
    units_to_str,
    verify_order_signature,
)
from .clob_settlement import Settlement
from .clob_trades import COLLATERAL, ClobStats, Trade, TradeHistory, asset_key, order_response, trades_of
from .market_maker import MarketMaker, Quote

log = logging.getLogger(__name__)


class LocalClob(ClobMarkets):
    """The CLOB's state and logic (auth, books, orders, trades, settlement), independent of HTTP routing."""

    def __init__(self, world, rpc_url: str, *, operator_key: str, market_maker_key: str | None,
                 seed_book: bool = True, options: ClobOptions | None = None):
        super().__init__(world, MatchingEngine())
        self.rpc_url = rpc_url
        self.chain_id = int(world.chain_id)
        self.options = options or ClobOptions()
        self.seed_book = seed_book
        self.registry = ApiKeyRegistry(self.chain_id, self.options.auth_seed, max_skew_s=self.options.max_clock_skew_s)
        self.exchange = to_checksum_address(world.exchange)
        self._operator_key = operator_key
        self.mm = MarketMaker(market_maker_key, self.chain_id, self.options.ladder()) if market_maker_key else None
        self.mm_key: ApiKey | None = self.registry.issue(self.mm.address, 0) if self.mm else None
        self.history = TradeHistory()
        self.stats = ClobStats()
        self.settlement = Settlement(self.engine, self.stats, self.options, self.exchange)
        self.rpc: AsyncRpc | None = None
        self.chain: ChainView | None = None
        self.mm_sender: AsyncTxSender | None = None
        self._mm_key = market_maker_key
        self._pending_ids: set[str] = set()
        self._heartbeats: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    @property
    def trades(self) -> list[Trade]:
        """Every trade still remembered, oldest first."""
        return self.history.trades

    @property
    def trades_by_id(self) -> dict[str, Trade]:
        """The remembered trades by id."""
        return self.history.by_id

    # ------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the node connection and seed the market maker's book."""
        self.rpc = AsyncRpc(self.rpc_url)
        collateral = getattr(self.world, "exchange_collateral", None) or self.world.collateral
        self.chain = ChainView(self.rpc, collateral=collateral, ctf=self.world.ctf)
        self.settlement.open(self.rpc, self._operator_key, self.chain_id)
        if self.seed_book and self.mm is not None:
            await self.seed()
        if self.mm is not None:
            self.mm_sender = AsyncTxSender(self.rpc, self._mm_key, self.chain_id)
            if self.options.mm_inventory_interval_s > 0:
                self._spawn(self._inventory_keeper())
        self._spawn(self._housekeeping())

    async def stop(self) -> None:
        """Let in-flight settlements finish (bounded), stop background tasks, close the node connection."""
        await self.settlement.drain(self.options.receipt_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.rpc is not None:
            await self.rpc.close()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def stats_json(self) -> dict:
        """Counters, queue sizes and node calls, for benchmarks and status views."""
        return {
            **asdict(self.stats),
            "orders_known": len(self.engine.orders),
            "resting_orders": sum(1 for b in self.engine.books.values() for _ in b.orders()),
            "trades_known": len(self.history),
            "settlements_in_flight": self.settlement.in_flight,
            "rpc_calls": dict(self.rpc.calls) if self.rpc is not None else {},
            "settle_wait": self.options.settle_wait,
        }

    # ------------------------------------------------------------------------------------------ auth
    def issue_api_key(self, headers: Mapping[str, str]) -> ApiKey:
        """L1: the credentials of the address whose ClobAuth signature is in `headers` (raises AuthError)."""
        address, nonce = self.registry.authenticate_l1(headers)
        return self.registry.issue(address, nonce)

    def authenticate(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> ApiKey:
        """L2: the API key whose HMAC signs this request (raises AuthError)."""
        return self.registry.authenticate_l2(headers, method, path, body)

    def api_keys(self, key: ApiKey) -> list[str]:
        """Every API key issued to the key's address."""
        return [k.api_key for k in self.registry.keys_of(key.address)]

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
            free_collateral = collateral - self.committed(self.mm.address, COLLATERAL)
            free_tokens = [b - self.committed(self.mm.address, t) for b, t in zip(balances, m.token_ids)]
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
    def committed(self, address: str, asset: str) -> int:
        """What `address` already owes in `asset`: its resting orders plus in-flight settlements."""
        a = address.lower()
        total = self.settlement.reserved(a, asset)
        for book in self.engine.books.values():
            if asset != COLLATERAL and book.asset_id != asset:
                continue
            for order in book.orders():
                if order.status == STATUS_LIVE and order.maker_address.lower() == a and \
                        asset_key(order.side, order.asset_id) == asset:
                    total += order.remaining_making
        return total

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
        need = order.maker_amount + self.committed(order.maker, asset_key(order.side, token_id))
        if balance < need or allowance < need or not approved:
            raise ClobApiError(ERR_BALANCE)

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

    # ---------------------------------------------------------------------------------------- orders
    async def place(self, payload: Any, key: ApiKey) -> dict:
        """Validate, match and settle one POST /order body; returns the response body or raises ClobApiError."""
        try:
            return await self._place(payload, key)
        except ClobApiError:
            self.stats.orders_rejected += 1
            raise

    async def _place(self, payload: Any, key: ApiKey) -> dict:
        order, order_type, post_only = parse_post(payload, key.api_key, key.address)
        token_id = str(order.token_id)
        market, _ = self._market_of(token_id)
        if post_only and order_type in TAKE_ONLY_TYPES:
            raise ClobApiError(ERR_POST_ONLY_TYPE)
        order_id = self._verify(order, market.neg_risk)
        if order_id in self.engine.orders or order_id in self._pending_ids:
            raise err_duplicate(order_id)
        now = time.time()
        check_order_terms(order, order_id, order_type, market.tick_size, market.min_order_size, now)
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
                market=market.condition_id, asset_id=token_id, price=order.price,
                remaining_making=order.maker_amount, remaining_size=order.size_units,
                original_size=order.size_units, tick_size=market.tick_size, created_at=int(now),
                outcome=self._outcome(token_id),
            )
            # From here to the end of commit nothing awaits: the book cannot change under the match.
            plan = self.engine.submit(taker, post_only=post_only, now=now)
        finally:
            self._pending_ids.discard(order_id)
        if not plan.fills:
            self.stats.orders_accepted += 1
            return order_response(taker, "live", [], [])
        trades = trades_of(plan, taker.outcome)
        for trade in trades:
            self.history.add(trade)
            self.settlement.reserve(trade, +1)
        self._requote([f.maker for f in plan.fills if f.maker.is_market_maker and f.maker.status == STATUS_MATCHED])
        hashes = await self.settlement.settle(plan, trades)
        self.stats.orders_accepted += 1
        return order_response(taker, "matched", hashes, trades)

    def _owned(self, order: BookOrder, key: ApiKey) -> bool:
        return order.order.signer.lower() == key.address.lower() or order.maker_address.lower() == key.address.lower()

    def order(self, key: ApiKey, order_id: str) -> dict:
        """One order of the key's owner (any status) as GET /data/order shows it; 404 otherwise."""
        order = self.engine.orders.get(order_id)
        if order is None or not self._owned(order, key):
            raise ClobApiError("order not found", status=404)
        return order.to_open_order()

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

    def cancel_open(self, key: ApiKey, *, market: str | None = None, asset_id: str | None = None) -> dict:
        """Cancel every live order of the key's owner (optionally of one market / token)."""
        return self.cancel(key, [o["id"] for o in self.open_orders(key, market=market, asset_id=asset_id)])

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
        return self.history.query(key.address, q)

    def heartbeat(self, key: ApiKey) -> dict:
        """Record a heartbeat; the reply carries the next heartbeat id."""
        self._heartbeats[key.api_key] = time.monotonic()
        return {"heartbeat_id": str(uuid.uuid4())}

    # ---------------------------------------------------------------------------------- housekeeping
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
        dropped = self.history.prune(cap)
        if len(self.engine.orders) > 2 * cap:
            finished = sorted((o for o in self.engine.orders.values() if o.status != STATUS_LIVE), key=lambda o: o.seq)
            for o in finished[: len(self.engine.orders) - int(2 * cap * 0.9)]:
                del self.engine.orders[o.order_id]
                dropped += 1
        return dropped
