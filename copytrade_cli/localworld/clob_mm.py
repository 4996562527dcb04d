"""The local CLOB's own market maker desk: seeding the ladders, re-quoting filled levels, keeping inventory.

A mixin of `LocalClob` (it uses the CLOB's engine, markets, chain view and settlement). The market maker signs
type-0 EOA orders and rests them directly on the books: it is the CLOB's own liquidity, not an API user, so the
deposit-wallet rule for API makers (`clob_makers`) does not apply to it (docs/local-clob.md).
"""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from .book import BookOrder
from .clob_chain import SPLIT_GAS
from .clob_orders import ERR_SIGNATURE, UNIT, ClobApiError, SignedOrder, parse_order, units_to_str, \
    verify_order_signature
from .clob_trades import COLLATERAL
from .market_maker import Quote

log = logging.getLogger(__name__)


class MarketMakerDesk:
    """Seeding, re-quoting and inventory of the CLOB's market maker (mixed into LocalClob)."""

    def _verifying_contract(self, neg_risk: bool) -> str:
        """The exchange orders of a (neg-risk) market are signed for: the world's planted instance."""
        if neg_risk:
            if self.world.neg_risk_exchange:
                return self.world.neg_risk_exchange
            try:
                from .clob_orders import exchange_address

                return exchange_address(self.chain_id, True)
            except Exception:  # a chain id py_clob_client_v2 does not know
                return self.exchange
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
            jobs.extend((q, exchange) for q in self.mm.quotes_for(list(m.token_ids), self.tick_of(m)))
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
            tick_size=self.tick_of(market), is_market_maker=True, outcome=self._outcome(quote.token_id),
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
