"""The local Polymarket CLOB: an aiohttp app speaking what the unmodified polymarket-client and py-clob-client-v2 use.

Contract: /work/shared/LIVE-2026.md §1–§5, §12, §14 (docs/local-clob.md). Orders are checked as live does: L2 HMAC,
the deposit-wallet flow (type 3, maker = signer = the key's wallet; types 0/1/2 only for grandfathered makers), the
POLY_1271 / EIP-712 signature for the market's exchange (neg-risk or standard), the market's tick (scheduled changes
included), minimum size and amount decimals, on-chain balance/allowance (plus the taker fee), FOK/FAK rules, per-signer
rate limits and cancel-only mode. Matches run with price-time priority against a book seeded by a market maker and
are settled on the fork through the planted exchange's `matchOrders` (with the taker fee), sent by the exchange
operator; trades move MATCHED → MINED → CONFIRMED (or RETRYING / FAILED, injectable).

This module is the host: it builds the app and serves it (`serve` in the foreground; `ClobServerThread` in a
background thread). `copytrade clob serve` (`python -m copytrade_cli clob serve`, started by `fork up`) reaches
`serve` through `service.serve_for_node`, which loads the fork's world from state. The parts live beside it:

- `clob_options`    ClobOptions, the server's configuration
- `clob_trades`     the trade records and statuses, fees, the trade history and the POST /order answer
- `clob_markets`    markets and books: lookups, ticks and the read-only market views
- `clob_service`    LocalClob, the CLOB as a plain object (auth, orders, matching, cancels, balances)
- `clob_makers`     who may make orders: API key ↔ signer EOA ↔ deposit wallet, grandfathered makers
- `clob_guard`      rate limits, cancel-only mode, injected faults
- `clob_mm`         the market maker desk (seeding, re-quoting, inventory)
- `clob_settlement` asynchronous on-chain settlement of matched trades (over `clob_chain`'s sender)
- `clob_routes`     the HTTP routes, over LocalClob's public methods only
- `app_thread`      serving an aiohttp app from a background thread (shared with the activity feed)

under them the pure pieces: `book` (books, matching engine), `clob_orders` (order parsing and checks),
`clob_auth` (L1/L2 auth, API keys), `market_maker` (the ladders), and `clob_chain` (async node I/O).

Public API: `build_app`, `ClobServerThread`, `serve`, `ClobOptions`.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from aiohttp import web

from .app_thread import AppThread
from .clob_options import SETTLE_WAIT_MODES, ClobOptions, resolve_options
from .clob_routes import END_CURSOR, INITIAL_CURSOR, MAX_BATCH_ORDERS, error_middleware, routes
from .clob_service import LocalClob
from .clob_trades import COLLATERAL, MAX_MAKERS_PER_TX, ClobStats, Trade

__all__ = [
    "CLOB_KEY", "COLLATERAL", "END_CURSOR", "INITIAL_CURSOR", "MAX_BATCH_ORDERS", "MAX_MAKERS_PER_TX",
    "SETTLE_WAIT_MODES", "ClobOptions", "ClobServerThread", "ClobStats", "LocalClob", "Trade", "build_app", "serve",
]

log = logging.getLogger(__name__)

CLOB_KEY = web.AppKey("clob", LocalClob)


def _access_log(clob: LocalClob) -> logging.Logger | None:
    return logging.getLogger("aiohttp.access") if clob.options.access_log else None


def build_app(world, rpc_url: str, *, operator_key: str, market_maker_key: str | None = None,
              seed_book: bool = True, options: ClobOptions | None = None, feed: bool = False,
              extend: Callable[[web.Application], None] | None = None, **overrides: Any) -> web.Application:
    """The local CLOB as an aiohttp application (routes of CLOB-WIRE §2); node work starts on app startup.

    `options` (or keyword overrides of its fields, e.g. `levels=5, settle_wait="sent"`) shape the
    book and the settlement policy. `feed=True` also serves the activity websocket and Data API
    (`localworld.feed.attach_feed`: /ws, /activity, /trades) from the same app; `extend(app)` may add
    other routes beside ours.
    """
    opts = resolve_options(options, overrides)
    clob = LocalClob(world, rpc_url, operator_key=operator_key, market_maker_key=market_maker_key,
                     seed_book=seed_book, options=opts)
    app = web.Application(middlewares=[error_middleware], client_max_size=4 * 1024 * 1024)
    app[CLOB_KEY] = clob
    app.add_routes(routes(clob))

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


class ClobServerThread(AppThread):
    """Runs the local CLOB on its own event loop in a background thread (tests, embedding)."""

    def __init__(self, world, rpc_url: str, *, host: str = "127.0.0.1", port: int = 0, **kwargs: Any):
        app = build_app(world, rpc_url, **kwargs)
        self.clob: LocalClob = app[CLOB_KEY]
        # NOTE: start() returns once the book is seeded (the app's start-up); stop() waits for the settlements
        # in flight (bounded by receipt_timeout_s) before the node connection closes.
        super().__init__(app, host=host, port=port, name="local-clob", label="local CLOB",
                         access_log=_access_log(self.clob))


def serve(world, rpc_url: str, host: str = "127.0.0.1", port: int = 8081, **kwargs: Any) -> None:
    """Serve the local CLOB until interrupted (blocking; SIGINT/SIGTERM stop it cleanly)."""
    app = build_app(world, rpc_url, **kwargs)
    log.info("local CLOB listening on http://%s:%d", host, port)
    web.run_app(app, host=host, port=port, print=None, access_log=_access_log(app[CLOB_KEY]), handle_signals=True)
