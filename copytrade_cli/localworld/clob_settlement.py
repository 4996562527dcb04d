"""On-chain settlement of the local CLOB's matches, asynchronous as live (LIVE-2026 §5.6): one `matchOrders` per trade
on the market's exchange (standard or neg-risk), sent by the exchange operator, with the taker's fee.

A trade moves MATCHED (sent, hash known) → MINED (receipt, status 1) → CONFIRMED (`confirm_blocks` more blocks, or
`confirm_delay_s` after MINED, whichever first); a refused send or a reverted receipt makes it FAILED and the match
is undone in the book. Faults injected through the `Guard` (the next N trades): RETRYING — the first hash is a
transaction signed but never sent (dropped), after `retry_delay_s` the trade turns RETRYING with the replacement's
new hash (for another `retry_delay_s`), then MINED and CONFIRMED on that one; FAILED — nothing is sent, after `fail_delay_s` the trade is FAILED.

POST /order answers per `settle_wait`: "receipt" once every normal trade is MINED (or `answer_within_s` passed),
"sent" once sent, "none" right after matching; injected trades never hold the answer back. While a trade is in
flight its amounts (and the taker's fee) stay reserved, so a wallet cannot promise the same funds twice.
"""
from __future__ import annotations

import asyncio
import logging
import time

from .book import MatchingEngine, MatchPlan
from .clob_chain import AsyncRpc, AsyncTxSender, RpcError, TxOutcome
from .clob_guard import FAULT_FAILED, FAULT_RETRYING, Guard
from .clob_options import ClobOptions
from .clob_orders import ClobApiError
from .clob_trades import (
    TRADE_CONFIRMED,
    TRADE_FAILED,
    TRADE_MINED,
    TRADE_RETRYING,
    ClobStats,
    Trade,
    asset_key,
    fee_asset,
)
from .exchange import match_gas, match_orders_calldata

log = logging.getLogger(__name__)


class Settlement:
    """Sends, mines, confirms or fails the trades of each match; owns the in-flight reservations and tasks."""

    def __init__(self, engine: MatchingEngine, stats: ClobStats, options: ClobOptions, exchange: str,
                 guard: Guard | None = None):
        self.engine = engine
        self.stats = stats
        self.options = options
        self.exchange = exchange
        self.guard = guard or Guard()
        self.sender: AsyncTxSender | None = None
        self._inflight: dict[tuple[str, str], int] = {}
        self._tasks: set[asyncio.Task] = set()

    def open(self, rpc: AsyncRpc, operator_key: str, chain_id: int) -> None:
        """Start sending as the exchange operator over `rpc`."""
        self.sender = AsyncTxSender(rpc, operator_key, chain_id, priority_gwei=self.options.priority_fee_gwei)

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
        """Add (`sign`=+1) or release (-1) what each party of `trade` gives (the taker's fee included)."""
        entries = [(trade.taker.maker_address, asset_key(trade.taker.side, trade.asset_id), trade.taker_making)]
        entries += [(f.maker.maker_address, asset_key(f.maker.side, trade.asset_id), f.making) for f in trade.fills]
        if trade.fee and trade.taker.side == "BUY":
            entries.append((trade.taker.maker_address, fee_asset(), trade.fee))
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
        normal: list[Trade] = []
        hashes: list[str] = []
        injected = 0
        for trade in trades:
            fault = self.guard.next_settlement_fault()
            if fault is None:
                normal.append(trade)
                continue
            injected += 1
            if fault == FAULT_RETRYING:
                await self._ghost(trade)
                hashes.append(trade.transaction_hash)
                self._spawn(self._retry(trade))
            elif fault == FAULT_FAILED:
                self._spawn(self._fail_later(trade))
        mode = self.options.settle_wait
        if mode == "none":
            if normal:
                self._spawn(self._settle_all(normal))
            return hashes
        sent = [t for t in normal if await self._send(t)]
        mines = [self._spawn(self._mine(t)) for t in sent]
        if mode == "receipt" and mines:
            # NOTE: the clients' HTTP timeouts are 5 s; a receipt slower than `answer_within_s` (interval mining) is
            # answered like "sent" and followed in the background (a later revert marks the trade FAILED).
            done, _slow = await asyncio.wait(mines, timeout=self.options.answer_within_s)
            sent = [t for t, task in zip(sent, mines) if task not in done or task.result()]
        if not sent and not injected:
            reasons = "; ".join(t.error for t in trades if t.error) or "settlement failed"
            raise ClobApiError(f"order {plan.taker.order_id} could not be executed: {reasons}", status=400)
        return [t.transaction_hash for t in sent] + hashes

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _calldata(self, trade: Trade) -> tuple[bytes, int]:
        taker = trade.taker
        data = match_orders_calldata(taker.market, taker.order.wire, [f.maker.order.wire for f in trade.fills],
                                     trade.taker_making, [f.making for f in trade.fills], trade.fee)
        return data, match_gas(len(trade.fills))

    async def _send(self, trade: Trade) -> bool:
        assert self.sender is not None
        data, gas = self._calldata(trade)
        try:
            tx = await self.sender.send(trade.exchange or self.exchange, data, gas)
        except RpcError as exc:
            self.fail(trade, f"settlement transaction refused by the node: {exc}")
            return False
        trade.set_hash(tx)
        return True

    async def _mine(self, trade: Trade) -> bool:
        """Wait for the receipt: MINED (and the confirmation follows in the background) or FAILED."""
        assert self.sender is not None
        outcome: TxOutcome = await self.sender.wait(trade.transaction_hash, self.options.receipt_timeout_s)
        if not outcome.ok:
            self.fail(trade, f"settlement transaction {trade.transaction_hash} {outcome.error or 'failed'}")
            return False
        trade.mark(TRADE_MINED)
        trade.block_number = outcome.block_number
        self.reserve(trade, -1)
        self.stats.trades_settled += 1
        self._spawn(self._confirm(trade))
        return True

    async def _confirm(self, trade: Trade) -> None:
        assert self.sender is not None
        deadline = time.monotonic() + self.options.confirm_delay_s
        target = (trade.block_number or 0) + self.options.confirm_blocks
        while time.monotonic() < deadline:
            try:
                if await self.sender.block_number() >= target:
                    break
            except RpcError:
                pass
            await asyncio.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        trade.mark(TRADE_CONFIRMED)

    async def _settle_all(self, trades: list[Trade]) -> None:
        sent = [t for t in trades if await self._send(t)]
        if sent:
            await asyncio.gather(*(self._mine(t) for t in sent))

    # ----------------------------------------------------------------------------- injected faults
    async def _ghost(self, trade: Trade) -> None:
        assert self.sender is not None
        data, gas = self._calldata(trade)
        trade.set_hash(await self.sender.ghost(trade.exchange or self.exchange, data, gas))

    async def _retry(self, trade: Trade) -> None:
        await asyncio.sleep(self.options.retry_delay_s)
        dropped = trade.transaction_hash
        if not await self._send(trade):
            return
        trade.mark(TRADE_RETRYING)
        log.info("trade %s: first transaction %s dropped, replaced by %s", trade.id, dropped, trade.transaction_hash)
        await asyncio.sleep(self.options.retry_delay_s)  # RETRYING stays visible (with the new hash) for a while
        await self._mine(trade)

    async def _fail_later(self, trade: Trade) -> None:
        await asyncio.sleep(self.options.fail_delay_s)
        self.fail(trade, "settlement failed (injected): nothing was settled")

    def fail(self, trade: Trade, reason: str) -> None:
        """Mark `trade` FAILED, release its reservations, give the makers their size back, drop the taker's rest."""
        if trade.status == TRADE_FAILED:
            return
        log.warning("trade %s of order %s failed: %s", trade.id, trade.taker.order_id, reason)
        trade.mark(TRADE_FAILED)
        trade.error = reason
        self.reserve(trade, -1)
        self.stats.trades_failed += 1
        self.engine.undo(trade.plan())
