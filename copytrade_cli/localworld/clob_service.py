"""The local CLOB as a plain object: markets, books, orders and matching, cancels, balances and auth.

`LocalClob` knows nothing about HTTP: `clob_routes` turns requests into calls of its public methods and
their results (wire-shaped dicts, LIVE-2026 §4–§5) into responses; errors are `ClobApiError` / `AuthError`.
Who may make orders is `clob_makers` (deposit wallets, grandfathered makers); rate limits, cancel-only and
injected faults are `clob_guard`; matches are settled on the fork by `clob_settlement.Settlement`; the market
maker's ladders (`clob_mm`) live on the books like any other orders.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import asdict
from fractions import Fraction
from typing import Any, Mapping

from eth_utils import to_checksum_address

from .book import STATUS_LIVE, STATUS_MATCHED, BookOrder, MatchingEngine
from .clob_auth import ApiKey, ApiKeyRegistry
from .clob_chain import MAX_UINT256, AsyncRpc, AsyncTxSender, ChainView, RpcError
from .clob_guard import Guard
from .clob_makers import MakerPolicy
from .clob_markets import ClobMarkets
from .clob_mm import MarketMakerDesk
from .clob_options import ClobOptions
from .clob_orders import (
    ERR_BALANCE,
    ERR_POST_ONLY_TYPE,
    SIDE_BUY,
    SIG_POLY_1271,
    TAKE_ONLY_TYPES,
    ClobApiError,
    SignedOrder,
    check_order_terms,
    err_duplicate,
    parse_post,
)
from .clob_settlement import Settlement
from .clob_trades import COLLATERAL, ClobStats, Trade, TradeHistory, asset_key, order_response, trades_of
from .market_maker import MarketMaker

log = logging.getLogger(__name__)

ASSET_TYPES = ("COLLATERAL", "CONDITIONAL")


class LocalClob(MarketMakerDesk, ClobMarkets):
    """The CLOB's state and logic (auth, books, orders, trades, settlement), independent of HTTP routing."""

    def __init__(self, world, rpc_url: str, *, operator_key: str, market_maker_key: str | None,
                 seed_book: bool = True, options: ClobOptions | None = None):
        super().__init__(world, MatchingEngine())
        self.rpc_url = rpc_url
        self.chain_id = int(world.chain_id)
        self.options = opts = options or ClobOptions()
        self.seed_book = seed_book
        self.registry = ApiKeyRegistry(self.chain_id, opts.auth_seed, max_skew_s=opts.max_clock_skew_s)
        self.exchange = to_checksum_address(world.exchange)
        self._operator_key = operator_key
        self.mm = MarketMaker(market_maker_key, self.chain_id, opts.ladder()) if market_maker_key else None
        self.mm_key: ApiKey | None = self.registry.issue(self.mm.address, 0) if self.mm else None
        self.makers = MakerPolicy(self.chain_id, factory=world.deposit_wallet_factory,
                                  beacon=world.deposit_wallet_beacon, grandfathered=opts.grandfathered)
        self.guard = Guard(rate_per_s=opts.rate_limit_per_s, burst=opts.rate_limit_burst,
                           cancel_only=opts.cancel_only)
        self.history = TradeHistory()
        self.stats = ClobStats()
        self.settlement = Settlement(self.engine, self.stats, opts, self.exchange, self.guard)
        self.rpc: AsyncRpc | None = None
        self.chain: ChainView | None = None
        self.mm_sender: AsyncTxSender | None = None
        self._mm_key = market_maker_key
        self._pending_ids: set[str] = set()
        self._heartbeats: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()
        self._started = time.monotonic()

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
        self._started = time.monotonic()
        if self.seed_book and self.mm is not None:
            await self.seed()
        if self.mm is not None:
            self.mm_sender = AsyncTxSender(self.rpc, self._mm_key, self.chain_id,
                                           priority_gwei=self.options.priority_fee_gwei)
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

    def addresses_of(self, key: ApiKey) -> tuple[str, ...]:
        """The key's EOA and the wallets it trades for: whose orders and trades the key sees."""
        return key.address, *self.makers.wallets_of(key.address)

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

    async def _funds(self, order: SignedOrder, exchange: str) -> int:
        """What the order's maker can still promise to `exchange` in the order's maker asset (balance and allowance
        less what it already owes)."""
        assert self.chain is not None
        try:
            if order.side == SIDE_BUY:
                balance, allowance = await self.chain.collateral_funds(order.maker, exchange)
            else:
                balance, approved = await self.chain.token_funds(order.maker, order.token_id, exchange)
                allowance = MAX_UINT256 if approved else 0
        except RpcError as exc:
            raise ClobApiError(f"could not read balances from the node: {exc}", status=503) from None
        # NOTE: committed funds are read after the await, so concurrent orders of one wallet see each other.
        return min(balance, allowance) - self.committed(order.maker, asset_key(order.side, str(order.token_id)))

    async def balance_allowance(self, key: ApiKey, q: Mapping[str, str]) -> dict:
        """On-chain balance and allowances (to both exchanges) of the wallet behind (POLY_ADDRESS, signature_type)."""
        assert self.chain is not None
        asset_type = (q.get("asset_type") or COLLATERAL).upper()
        if asset_type not in ASSET_TYPES:
            raise ClobApiError(f"invalid asset_type {asset_type}")
        raw_type = q.get("signature_type", "0")
        if not str(raw_type).isdigit():
            raise ClobApiError(f"invalid signature_type {raw_type}")
        owner = self.makers.funder(key.address, int(raw_type))
        spenders = [self.exchange] + ([self.world.neg_risk_exchange] if self.world.neg_risk_exchange else [])
        allowances = {}
        try:
            for spender in spenders:
                if asset_type == COLLATERAL:
                    balance, allowance = await self.chain.collateral_funds(owner, spender)
                else:
                    token = q.get("token_id")
                    if not token or not token.isdigit():
                        raise ClobApiError("token_id is required for CONDITIONAL balances")
                    balance, approved = await self.chain.token_funds(owner, int(token), spender)
                    allowance = MAX_UINT256 if approved else 0
                allowances[spender] = str(allowance)
        except RpcError as exc:
            raise ClobApiError(f"could not read balances from the node: {exc}", status=503) from None
        return {"balance": str(balance), "allowance": allowances[self.exchange], "allowances": allowances}

    # ---------------------------------------------------------------------------------------- orders
    def admit(self, key: ApiKey, cost: float, *, placing: bool) -> dict[str, str]:
        """The guard's verdict on a request of `cost` (raises 429 / 503); the Poly-RateLimit-* headers to send."""
        return self.guard.admit(key.address, cost, placing=placing)

    async def place(self, payload: Any, key: ApiKey, *, admitted: bool = False) -> dict:
        """Validate, match and settle one POST /order body; returns the response body or raises ClobApiError."""
        try:
            if not admitted:
                self.admit(key, 1, placing=True)
            return await self._place(payload, key)
        except ClobApiError:
            self.stats.orders_rejected += 1
            raise

    async def _place(self, payload: Any, key: ApiKey) -> dict:
        order, order_type, post_only = parse_post(payload, key.api_key, key.address)
        self.makers.check_maker(order)
        token_id = str(order.token_id)
        market, _ = self._market_of(token_id)
        if post_only and order_type in TAKE_ONLY_TYPES:
            raise ClobApiError(ERR_POST_ONLY_TYPE)
        exchange = self._verifying_contract(market.neg_risk)
        order_id = self._verify(order, market.neg_risk)
        if order_id in self.engine.orders or order_id in self._pending_ids:
            raise err_duplicate(order_id)
        now = time.time()
        tick = self.tick_of(market)
        check_order_terms(order, order_id, order_type, tick, market.min_order_size, now)
        if order.signature_type == SIG_POLY_1271:
            await self.makers.check_wallet_order(order, order_id, key.address, exchange, self.chain)
        self._pending_ids.add(order_id)
        try:
            free = await self._funds(order, exchange) if self.options.check_balances else None
            if free is not None and free < order.maker_amount:
                raise ClobApiError(ERR_BALANCE)
            taker = BookOrder(
                order_id=order_id, order=order, owner=key.api_key, order_type=order_type,
                market=market.condition_id, asset_id=token_id, price=order.price,
                remaining_making=order.maker_amount, remaining_size=order.size_units,
                original_size=order.size_units, tick_size=tick, created_at=int(now),
                outcome=self._outcome(token_id),
            )
            # From here to the end of commit nothing awaits: the book cannot change under the match.
            plan = self.engine.submit(taker, post_only=post_only, now=now)
        finally:
            self._pending_ids.discard(order_id)
        if not plan.fills:
            self.stats.orders_accepted += 1
            return order_response(taker, "live", [], [])
        trades = trades_of(plan, taker.outcome, exchange=exchange, fee_rate=market.fee_rate,
                           fee_exponent=market.fee_exponent)
        fee = sum(t.fee for t in trades)
        if free is not None and order.side == SIDE_BUY and free < plan.taker_making + fee:
            # NOTE: a BUY taker's fee is pulled on top of what it pays (docs/exchange-abi.md): without the funds for
            # both the match is undone, as if the order had never reached the book.
            self.engine.undo(plan)
            self.engine.orders.pop(order_id, None)
            raise ClobApiError(ERR_BALANCE)
        for trade in trades:
            self.history.add(trade)
            self.settlement.reserve(trade, +1)
        self._requote([f.maker for f in plan.fills if f.maker.is_market_maker and f.maker.status == STATUS_MATCHED])
        hashes = await self.settlement.settle(plan, trades)
        self.stats.orders_accepted += 1
        return order_response(taker, "matched", hashes, trades)

    def _owned(self, order: BookOrder, key: ApiKey) -> bool:
        if order.owner == key.api_key:
            return True
        mine = {a.lower() for a in self.addresses_of(key)}
        return order.order.signer.lower() in mine or order.maker_address.lower() in mine

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
        return self.history.query(self.addresses_of(key), q)

    def heartbeat(self, key: ApiKey) -> dict:
        """Record a heartbeat; the reply carries the next heartbeat id."""
        self._heartbeats[key.api_key] = time.monotonic()
        return {"heartbeat_id": str(uuid.uuid4())}

    # ---------------------------------------------------------------------------------- housekeeping
    async def _housekeeping(self) -> None:
        """Every quarter second: scheduled tick changes; once a second: heartbeat timeouts, GTD expiry, history."""
        rounds = 0
        while True:
            await asyncio.sleep(0.25)
            rounds += 1
            try:
                for market, tick in self.apply_tick_changes(time.monotonic() - self._started):
                    log.info("market %s: tick size changed to %s", market.slug, tick)
                if rounds % 4:
                    continue
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
