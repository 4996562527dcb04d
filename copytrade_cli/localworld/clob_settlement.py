"""On-chain settlement of the local CLOB's matches: one `matchOrders` per trade through the planted exchange,
sent by the exchange operator, answered per the `settle_wait` policy; a failed settlement is undone in the book.

The transport (signing, pipelined nonces, batched receipt watching) is `clob_chain.AsyncTxSender`; this module
decides what to send, when POST /order may answer, and what a failure gives back. While a trade is in flight
its amounts stay reserved, so a wallet cannot promise the same funds twice before the chain has moved them.
"""
from __future__ import annotations

import asyncio
import logging
import time

from .book import MatchingEngine, MatchPlan
from .clob_chain import AsyncRpc, AsyncTxSender, RpcError, TxOutcome
from .clob_options import ClobOptions
from .clob_orders import ClobApiError
from .clob_trades import TRADE_CONFIRMED, TRADE_FAILED, ClobStats, Trade, asset_key
from .exchange import match_gas, match_orders_calldata

log = logging.getLogger(__name__)


class Settlement:
    """Sends, confirms or fails the trades of each match; owns the in-flight reservations and tasks."""

    def __init__(self, engine: MatchingEngine, stats: ClobStats, options: ClobOptions, exchange: str):
        self.engine = engine
        self.stats = stats
        self.options = options
        self.exchange = exchange
        self.sender: AsyncTxSender | None = None
        self._inflight: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task] = set()

    def open(self, rpc: AsyncRpc, operator_key: str, chain_id: int) -> None:
        """Start sending as the exchange operator over `rpc`."""
        self.sender = AsyncTxSender(rpc, operator_key, chain_id)

    @property
    def in_flight(self) -> int:
        """Settlements whose outcome is still being awaited in the background."""
        return len(self._tasks)

    async def drain(self, timeout: float) -> None:
        """Wait (at most `timeout`) for the settlements in flight."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    # ------------------------------------------------------------------------------- reservations
    def reserved(self, address: str, asset: str) -> int:
        """What `address` owes in `asset` to settlements not finished yet."""
        return self._inflight.get((address.lower(), asset), 0)

    def reserve(self, trade: Trade, sign: int) -> None:
        """Add (`sign`=+1) or release (-1) what each party of `trade` gives."""
        entries = [(trade.taker.maker_address, asset_key(trade.taker.side, trade.asset_id), trade.taker_making)]
        entries += [(f.maker.maker_address, asset_key(f.maker.side, trade.asset_id), f.making) for f in trade.fills]
        for address, asset, amount in entries:
            k = (address.lower(), asset)
            left = self._inflight.get(k, 0) + sign * amount
            if left > 0:
                self._inflight[k] = left
            else:
                self._inflight.pop(k, None)

    # --------------------------------------------------------------------------------- settlement
    async def settle(self, plan: MatchPlan, trades: list[Trade]) -> list[str]:
        """Settle per the `settle_wait` policy; returns the hashes to report (raises if nothing settled)."""
        mode = self.options.settle_wait
        if mode == "none":
            self._spawn(self._settle_all(trades))
            return []
        sent = []
        for trade in trades:
            if await self._send(trade):
                sent.append(trade)
        confirms = [self._spawn(self._confirm(t)) for t in sent]
        if mode == "receipt" and confirms:
            # NOTE: py-clob-client's HTTP timeout is 5 s; a receipt slower than `answer_within_s` (interval
            # mining) is answered like "sent" and confirmed in the background (a later revert marks it FAILED).
            done, _slow = await asyncio.wait(confirms, timeout=self.options.answer_within_s)
            sent = [t for t, task in zip(sent, confirms) if task not in done or task.result()]
        if not sent:
            reasons = "; ".join(t.error for t in trades if t.error) or "settlement failed"
            raise ClobApiError(f"order {plan.taker.order_id} could not be executed: {reasons}", status=400)
        return [t.transaction_hash for t in sent]

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _send(self, trade: Trade) -> bool:
        assert self.sender is not None
        taker = trade.taker
        data = match_orders_calldata(taker.market, taker.order.wire, [f.maker.order.wire for f in trade.fills],
                                     trade.taker_making, [f.making for f in trade.fills])
        gas = match_gas(len(trade.fills))
        try:
            trade.transaction_hash = await self.sender.send(self.exchange, data, gas)
        except RpcError as exc:
            self.fail(trade, f"settlement transaction refused by the node: {exc}")
            return False
        return True

    async def _confirm(self, trade: Trade) -> bool:
        assert self.sender is not None
        outcome: TxOutcome = await self.sender.wait(trade.transaction_hash, self.options.receipt_timeout_s)
        if not outcome.ok:
            self.fail(trade, f"settlement transaction {trade.transaction_hash} {outcome.error or 'failed'}")
            return False
        trade.status = TRADE_CONFIRMED
        trade.last_update = int(time.time())
        self.reserve(trade, -1)
        self.stats.trades_settled += 1
        return True

    async def _settle_all(self, trades: list[Trade]) -> None:
        sent = [t for t in trades if await self._send(t)]
        if sent:
            await asyncio.gather(*(self._confirm(t) for t in sent))

    def fail(self, trade: Trade, reason: str) -> None:
        """Mark `trade` FAILED, release its reservations, give the makers their size back, drop the taker's rest."""
        if trade.status == TRADE_FAILED:
            return
        log.warning("trade %s of order %s failed: %s", trade.id, trade.taker.order_id, reason)
        trade.status = TRADE_FAILED
        trade.error = reason
        trade.last_update = int(time.time())
        self.reserve(trade, -1)
        self.stats.trades_failed += 1
        self.engine.undo(trade.plan())
