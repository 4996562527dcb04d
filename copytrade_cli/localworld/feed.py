"""The local activity feed: Polymarket's RTDS activity websocket and Data API, served from the fork.

`ActivityFeed` follows the planted exchange's V2 `OrderFilled` logs (eth_getLogs from the last block
seen, every ~100 ms), turns each fill into a trade record shaped like Polymarket's (CLOB-WIRE §7-§8),
publishes it on `/ws` to `activity`/`trades` subscribers, and keeps it for the Data API routes
`GET /activity` and `GET /trades` (their queries: `feed_api`). `proxyWallet` is the order's maker: on the
fork the leader is an EOA.

Mount it beside other routes with `attach_feed(app, rpc_url, world)`, serve it alone with
`create_feed_app(...)`, or run it in a background thread with `start_feed_in_thread(...)` (tests, CLI).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

from copytrade_cli.localworld.app_thread import AppThread
from copytrade_cli.localworld.feed_api import TradeRecord, activity_rows, trade_rows
from copytrade_cli.localworld.world import World
from copytrade_cli.polymarket.fills import ORDER_FILLED_V2_TOPIC, DecodeError, decode_order_filled_v2

log = logging.getLogger(__name__)

MAX_LOG_RANGE = 2_000  # blocks per eth_getLogs call
FEED_KEY: web.AppKey["ActivityFeed"] = web.AppKey("copytrade_activity_feed")


@dataclass(eq=False)
class _Subscriber:
    ws: web.WebSocketResponse
    connection_id: str
    subs: list[dict[str, Any]] = field(default_factory=list)

    def wants(self, payload: dict[str, Any]) -> bool:
        """Whether one of this socket's subscriptions matches the trade (topic, type, event/market slug)."""
        for s in self.subs:
            if s.get("topic") != "activity" or s.get("type", "trades") not in ("trades", "*"):
                continue
            flt = s.get("filters")
            if flt:
                if flt.get("event_slug") and flt["event_slug"] != payload.get("eventSlug"):
                    continue
                if flt.get("market_slug") and flt["market_slug"] != payload.get("slug"):
                    continue
            return True
        return False


class ActivityFeed:
    """Follows OrderFilled logs on the node; serves them as RTDS messages and Data API rows."""

    def __init__(self, rpc_url: str, world: World, *, poll_interval: float = 0.1, from_block: int = 0,
                 max_trades: int = 200_000):
        self.rpc_url = rpc_url
        self.world = world
        self.poll_interval = poll_interval
        self.next_block = from_block
        self.max_trades = max_trades
        self.trades: list[TradeRecord] = []
        self.subscribers: set[_Subscriber] = set()
        self._tokens = world.token_index()
        self._task: asyncio.Task | None = None
        self._session: ClientSession | None = None
        self._rpc_id = 0
        self.ready: asyncio.Event | None = None  # created in start(): it needs the running loop
        self.last_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Open the RPC session and start polling (idempotent)."""
        if self._task is not None:
            return
        self.ready = asyncio.Event()
        self._session = ClientSession(timeout=ClientTimeout(total=30))
        self._task = asyncio.create_task(self._run(), name="activity-feed-poller")

    async def stop(self) -> None:
        """Stop polling, close subscribers and the RPC session."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._task = None
        for sub in list(self.subscribers):
            await sub.ws.close()
        self.subscribers.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ chain following
    async def _rpc(self, method: str, params: list) -> Any:
        self._rpc_id += 1
        assert self._session is not None
        async with self._session.post(self.rpc_url, json={"jsonrpc": "2.0", "id": self._rpc_id, "method": method,
                                                          "params": params}) as resp:
            body = await resp.json(content_type=None)
        if body.get("error"):
            raise RuntimeError(f"{method}: {body['error']}")
        return body.get("result")

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
                self.last_error = None
                if self.ready is not None:
                    self.ready.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - node restarts / hiccups: keep following
                if self.last_error != str(exc):
                    log.warning("activity feed: %s", exc)
                self.last_error = str(exc)
            await asyncio.sleep(self.poll_interval)

    async def poll_once(self) -> int:
        """Fetch logs from the next unseen block to the head; publish and store new trades. Returns how many."""
        head = int(await self._rpc("eth_blockNumber", []), 16)
        if head < self.next_block - 1:
            # The chain went backwards (evm_revert / restart): forget what no longer exists.
            self.trades = [t for t in self.trades if t.block_number <= head]
            self.next_block = head + 1
            return 0
        new = 0
        while self.next_block <= head:
            to = min(head, self.next_block + MAX_LOG_RANGE - 1)
            logs = await self._rpc("eth_getLogs", [{
                "fromBlock": hex(self.next_block), "toBlock": hex(to), "address": self.world.exchange,
                "topics": [ORDER_FILLED_V2_TOPIC],
            }])
            records = await self._records(logs or [])
            self.next_block = to + 1
            for rec in records:
                self.trades.append(rec)
                await self.publish(rec.payload)
            new += len(records)
        if len(self.trades) > self.max_trades:
            del self.trades[: len(self.trades) - self.max_trades]
        return new

    async def _records(self, logs: list[dict]) -> list[TradeRecord]:
        stamps: dict[int, int] = {}
        for lg in logs:
            if lg.get("blockTimestamp") is not None:
                stamps[int(lg["blockNumber"], 16)] = int(lg["blockTimestamp"], 16)
        for bn in {int(lg["blockNumber"], 16) for lg in logs} - set(stamps):
            block = await self._rpc("eth_getBlockByNumber", [hex(bn), False])
            stamps[bn] = int(block["timestamp"], 16) if block else int(time.time())
        out = []
        for lg in logs:
            if lg.get("removed"):
                continue
            try:
                fill = decode_order_filled_v2(lg)
            except DecodeError as exc:
                log.warning("activity feed: undecodable OrderFilled: %s", exc)
                continue
            if fill is None or fill.shares_micro == 0:
                continue
            bn = int(lg["blockNumber"], 16)
            out.append(self._record(fill, stamps.get(bn, int(time.time())), bn))
        return out

    def _record(self, fill: Any, timestamp: int, block_number: int) -> TradeRecord:
        hit = self._tokens.get(fill.token_id)
        market, idx = hit if hit else (None, None)
        payload = {
            "asset": fill.token_id,
            "bio": "",
            "conditionId": market.condition_id if market else "",
            "eventSlug": market.slug if market else "",
            "icon": "",
            "name": "",
            "outcome": market.outcomes[idx] if market else "",
            "outcomeIndex": idx if market else 0,
            "price": float(fill.price) if fill.price is not None else 0.0,
            "profileImage": "",
            "proxyWallet": fill.leader,
            "pseudonym": "",
            "side": fill.side,
            "size": fill.shares_micro / 1e6,
            "slug": market.slug if market else "",
            "timestamp": timestamp,
            "title": market.title if market else "",
            "transactionHash": fill.tx_hash,
        }
        return TradeRecord(payload=payload, usdc_size=(fill.usd_micro or 0) / 1e6, block_number=block_number,
                           log_index=fill.log_index or 0,
                           is_taker=(fill.counterparty or "").lower() == self.world.exchange.lower())

    # ------------------------------------------------------------------ websocket
    async def publish(self, payload: dict[str, Any]) -> None:
        """Send one trade to every subscriber that wants it (slow or dead sockets are dropped)."""
        now_ms = int(time.time() * 1000)
        sends = []
        targets = [s for s in list(self.subscribers) if s.wants(payload)]
        for sub in targets:
            msg = json.dumps({"connection_id": sub.connection_id, "topic": "activity", "type": "trades",
                              "timestamp": now_ms, "payload": payload}, separators=(",", ":"))
            sends.append(asyncio.wait_for(sub.ws.send_str(msg), timeout=5))
        results = await asyncio.gather(*sends, return_exceptions=True)
        for sub, res in zip(targets, results):
            if isinstance(res, Exception):
                self.subscribers.discard(sub)

    async def ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        """`/ws`: RTDS-style subscribe/unsubscribe; answers text `ping` with `pong`."""
        # NOTE: no server heartbeat: real RTDS subscribers may idle for long stretches.
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=1 << 20)
        await ws.prepare(request)
        sub = _Subscriber(ws, base64.b64encode(os.urandom(12)).decode())
        self.subscribers.add(sub)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                text = msg.data.strip()
                if text.lower() == "ping":
                    await ws.send_str("pong")
                    continue
                if not text:
                    continue
                try:
                    body = json.loads(text)
                except ValueError:
                    continue
                if isinstance(body, dict):
                    self._apply(sub, body)
        finally:
            self.subscribers.discard(sub)
        return ws

    @staticmethod
    def _apply(sub: _Subscriber, body: dict[str, Any]) -> None:
        action = body.get("action")
        subs = body.get("subscriptions")
        if action not in ("subscribe", "unsubscribe") or not isinstance(subs, list):
            return  # like RTDS: messages without an action are ignored
        for s in subs:
            if not isinstance(s, dict):
                continue
            entry = {"topic": s.get("topic"), "type": s.get("type", "trades"), "filters": None}
            raw = s.get("filters")
            if isinstance(raw, str) and raw:
                try:
                    f = json.loads(raw)
                    entry["filters"] = f if isinstance(f, dict) else None
                except ValueError:
                    pass
            elif isinstance(raw, dict):
                entry["filters"] = raw
            if action == "subscribe":
                sub.subs.append(entry)
            else:
                sub.subs = [x for x in sub.subs if (x["topic"], x["type"]) != (entry["topic"], entry["type"])]

    # ------------------------------------------------------------------ Data API
    async def activity_handler(self, request: web.Request) -> web.Response:
        """`GET /activity?user=&type=&start=&end=&limit=&offset=&market=&side=&sortBy=&sortDirection=`."""
        try:
            return web.json_response(activity_rows(self.trades, request.query))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def trades_handler(self, request: web.Request) -> web.Response:
        """`GET /trades?user=&limit=&offset=&takerOnly=&market=&side=` (newest first)."""
        try:
            return web.json_response(trade_rows(self.trades, request.query))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def ok_handler(self, request: web.Request) -> web.Response:
        """Liveness: 200 "OK" once the feed has caught up with the node at least once."""
        if self.ready is None or not self.ready.is_set():
            return web.json_response({"error": self.last_error or "starting"}, status=503)
        return web.json_response("OK")

    def add_routes(self, app: web.Application, prefix: str = "") -> None:
        """Register `/ws`, `/activity`, `/trades`, `/feed/ok` and the v2 routes on `app` (under `prefix`)."""
        app.router.add_get(prefix + "/ws", self.ws_handler)
        app.router.add_get(prefix + "/activity", self.activity_handler)
        app.router.add_get(prefix + "/trades", self.trades_handler)
        app.router.add_get(prefix + "/feed/ok", self.ok_handler)
        from .data_api_v2 import add_v2_routes  # /v2/trades, /v2/activity, Gamma /markets/keyset (issue #17)

        add_v2_routes(app, self, prefix)


def attach_feed(app: web.Application, rpc_url: str, world: World, *, prefix: str = "",
                poll_interval: float = 0.1, from_block: int = 0) -> ActivityFeed:
    """Add the feed's routes to `app` and start/stop its poller with the app; returns the feed."""
    feed = ActivityFeed(rpc_url, world, poll_interval=poll_interval, from_block=from_block)
    feed.add_routes(app, prefix)

    async def _start(_app: web.Application) -> None:
        await feed.start()

    async def _stop(_app: web.Application) -> None:
        await feed.stop()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return feed


def create_feed_app(rpc_url: str, world: World, *, poll_interval: float = 0.1, from_block: int = 0) -> web.Application:
    """A standalone aiohttp app serving only the feed (ws + Data API)."""
    app = web.Application()
    app[FEED_KEY] = attach_feed(app, rpc_url, world, poll_interval=poll_interval, from_block=from_block)
    return app


class FeedHandle(AppThread):
    """A feed served from a background thread (its own event loop); `stop()` shuts it down."""

    def __init__(self, rpc_url: str, world: World, host: str, port: int, poll_interval: float, from_block: int):
        app = create_feed_app(rpc_url, world, poll_interval=poll_interval, from_block=from_block)
        self.feed: ActivityFeed = app[FEED_KEY]
        # NOTE: aiohttp's default access logger, as `web.AppRunner(app)` uses it.
        super().__init__(app, host=host, port=port, name="activity-feed", label="activity feed",
                         access_log=logging.getLogger("aiohttp.access"))

    @property
    def url(self) -> str:
        """Base URL of the Data API routes."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The RTDS websocket URL."""
        return f"ws://{self.host}:{self.port}/ws"

    def start(self, timeout: float = 10) -> "FeedHandle":  # type: ignore[override]
        """Start serving; returns the handle once the socket listens."""
        super().start(timeout)
        return self

    def wait_ready(self, timeout: float = 10) -> None:
        """Block until the feed has polled the node successfully once."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.feed.ready is not None and self.feed.ready.is_set():
                return
            time.sleep(0.02)
        raise RuntimeError(f"activity feed not caught up: {self.feed.last_error}")

    def stop(self, timeout: float = 10) -> None:
        """Stop serving and join the thread."""
        super().stop(timeout)


def start_feed_in_thread(rpc_url: str, world: World, host: str = "127.0.0.1", port: int = 0, *,
                         poll_interval: float = 0.1, from_block: int = 0) -> FeedHandle:
    """Serve the feed on host:port (0 = any free port) from a daemon thread; returns a handle with .stop()."""
    return FeedHandle(rpc_url, world, host, port, poll_interval, from_block).start()
