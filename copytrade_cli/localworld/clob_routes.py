"""The local CLOB's HTTP surface (CLOB-WIRE §2): aiohttp routes over `LocalClob`'s public methods.

A route reads the request (query, L2 headers, body), makes one service call and writes its result as
compact JSON; `error_middleware` turns `ClobApiError` / `AuthError` into the real CLOB's error bodies.
"""
from __future__ import annotations

import base64
import json
import logging
import time
from typing import Any

from aiohttp import web

from .clob_auth import ApiKey, AuthError
from .clob_orders import ERR_PAYLOAD, SIDE_BUY, SIDE_SELL, ClobApiError
from .clob_service import LocalClob

log = logging.getLogger(__name__)

INITIAL_CURSOR = "MA=="  # base64("0")
END_CURSOR = "LTE="  # base64("-1")
MAX_BATCH_ORDERS = 15
MAX_CANCEL_IDS = 3000
MARKETS_PAGE_SIZE = 500


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(data, separators=(",", ":")), status=status, content_type="application/json",
                        headers=headers)


def _err(message: str, status: int = 400) -> web.Response:
    return _json({"error": message}, status)


@web.middleware
async def error_middleware(request: web.Request, handler):
    """Every failure as a JSON body: the CLOB's own errors as it sends them, anything else as a 500."""
    try:
        return await handler(request)
    except ClobApiError as exc:
        response = _json(exc.body(), exc.status)
        response.headers.update(exc.headers)
        return response
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


def _cursor_offset(cursor: str | None) -> int:
    if not cursor or cursor == INITIAL_CURSOR:
        return 0
    try:
        return max(0, int(base64.b64decode(cursor).decode()))
    except Exception:
        raise ClobApiError("invalid next_cursor") from None


def page(items: list, cursor: str | None, size: int) -> dict:
    """One page of `items` in the CLOB's cursor envelope (base64 offsets, "LTE=" after the last)."""
    start = _cursor_offset(cursor)
    chunk = items[start:start + size]
    end = start + len(chunk)
    nxt = base64.b64encode(str(end).encode()).decode() if end < len(items) else END_CURSOR
    return {"limit": size, "count": len(chunk), "next_cursor": nxt, "data": chunk}


async def _body_json(request: web.Request, raw: bytes | None = None) -> Any:
    raw = raw if raw is not None else await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ClobApiError(ERR_PAYLOAD) from None


def _token_param(request: web.Request) -> str:
    token = request.query.get("token_id", "")
    if not token:
        raise ClobApiError("token_id is required")
    return token


def routes(clob: LocalClob) -> web.RouteTableDef:
    """The route table of the local CLOB, bound to `clob`."""
    r = web.RouteTableDef()

    async def _l2(request: web.Request) -> tuple[ApiKey, bytes]:
        # The HMAC covers the raw body bytes: read them once, authenticate, then parse.
        raw = await request.read()
        return clob.authenticate(request.headers, request.method, request.path, raw), raw

    async def _params(request) -> list[dict]:
        body = await _body_json(request)
        if not isinstance(body, list):
            raise ClobApiError("Invalid payload")
        return [p for p in body if isinstance(p, dict) and p.get("token_id")]

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

    # Not Polymarket routes either: the test/operator switches of this local server (loopback only).
    @r.get("/local/faults")
    async def local_faults(request):
        return _json(clob.guard.snapshot())

    @r.post("/local/faults")
    async def set_local_faults(request):
        return _json(clob.guard.configure(await _body_json(request)))

    @r.post("/local/grandfathered")
    async def set_grandfathered(request):
        body = await _body_json(request)
        addresses = body.get("addresses") if isinstance(body, dict) else None
        if not isinstance(addresses, list):
            raise ClobApiError("Invalid payload")
        try:
            return _json({"grandfathered": clob.makers.grandfather(addresses)})
        except ValueError:
            raise ClobApiError("Invalid payload") from None

    @r.post("/local/tick-size")
    async def set_tick_size(request):
        body = await _body_json(request)
        if not isinstance(body, dict) or not isinstance(body.get("tick_size"), str):
            raise ClobApiError("Invalid payload")
        market = clob.find_market(str(body.get("market", "")))
        clob.set_tick(market, body["tick_size"])
        return _json({"market": market.condition_id, "tick_size": clob.tick_of(market)})

    # -------------------------------------------------------------------------------------- L1 auth
    @r.post("/auth/api-key")
    async def create_api_key(request):
        return _json(clob.issue_api_key(request.headers).as_response())

    @r.get("/auth/derive-api-key")
    async def derive_api_key(request):
        return _json(clob.issue_api_key(request.headers).as_response())

    @r.get("/auth/api-keys")
    async def api_keys(request):
        key, _ = await _l2(request)
        return _json({"apiKeys": clob.api_keys(key)})

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
        return _json(clob.market_by_token(request.match_info["token_id"]))

    @r.get("/clob-markets/{condition_id}")
    async def clob_market(request):
        return _json(clob.clob_market_info(request.match_info["condition_id"]))

    @r.get("/markets/{condition_id}")
    async def market(request):
        return _json(clob.market(request.match_info["condition_id"]))

    @r.get("/markets")
    async def markets(request):
        return _json(page(clob.all_markets(), request.query.get("next_cursor"), MARKETS_PAGE_SIZE))

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

    @r.get("/midpoint")
    async def midpoint(request):
        return _json(clob.midpoint(_token_param(request)))

    @r.get("/price")
    async def price(request):
        return _json(clob.price(_token_param(request), request.query.get("side", "")))

    @r.get("/spread")
    async def spread(request):
        return _json(clob.spread(_token_param(request)))

    @r.get("/last-trade-price")
    async def last_trade_price(request):
        return _json(clob.last_trade_price(_token_param(request)))

    @r.post("/midpoints")
    async def midpoints(request):
        return _json({p["token_id"]: clob.midpoint(str(p["token_id"]))["mid"] for p in await _params(request)})

    @r.post("/prices")
    async def prices(request):
        out: dict[str, dict] = {}
        for p in await _params(request):
            tok = str(p["token_id"])
            sides = [str(p["side"]).upper()] if p.get("side") else [SIDE_BUY, SIDE_SELL]
            out.setdefault(tok, {}).update({s: clob.price(tok, s)["price"] for s in sides})
        return _json(out)

    @r.post("/spreads")
    async def spreads(request):
        return _json({p["token_id"]: clob.spread(str(p["token_id"]))["spread"] for p in await _params(request)})

    @r.post("/last-trades-prices")
    async def last_trades_prices(request):
        return _json([{"token_id": p["token_id"], **clob.last_trade_price(str(p["token_id"]))}
                      for p in await _params(request)])

    # -------------------------------------------------------------------------------------- orders
    @r.post("/order")
    async def post_order(request):
        key, raw = await _l2(request)
        try:
            limits = clob.admit(key, 1, placing=True)
        except ClobApiError:
            clob.stats.orders_rejected += 1
            raise
        return _json(await clob.place(await _body_json(request, raw), key, admitted=True), headers=limits)

    @r.post("/orders")
    async def post_orders(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw)
        if not isinstance(body, list) or not body:
            raise ClobApiError(ERR_PAYLOAD)
        if len(body) > MAX_BATCH_ORDERS:
            raise ClobApiError(f"Too many orders in payload: {len(body)}, max allowed: {MAX_BATCH_ORDERS}")
        limits = clob.admit(key, len(body), placing=True)  # all or nothing (LIVE-2026 §12)
        out = []
        for item in body:  # in order: later orders may match earlier ones
            try:
                out.append(await clob.place(item, key, admitted=True))
            except ClobApiError as exc:
                out.append({"success": False, "errorMsg": exc.message, "error": exc.message, "orderID": "",
                            "status": "", "makingAmount": "0", "takingAmount": "0", "transactionsHashes": [],
                            "tradeIDs": []})
        return _json(out, headers=limits)

    @r.get("/data/order/{order_id}")
    async def get_order(request):
        key, _ = await _l2(request)
        return _json(clob.order(key, request.match_info["order_id"]))

    @r.get("/data/orders")
    async def get_orders(request):
        key, _ = await _l2(request)
        q = request.query
        items = clob.open_orders(key, market=q.get("market"), asset_id=q.get("asset_id"), order_id=q.get("id"))
        return _json(page(items, q.get("next_cursor"), clob.options.page_size))

    @r.get("/data/trades")
    async def get_trades(request):
        key, _ = await _l2(request)
        q = request.query
        return _json(page(clob.trades_for(key, q), q.get("next_cursor"), clob.options.page_size))

    @r.delete("/order")
    async def cancel_order(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw)
        oid = body.get("orderID") if isinstance(body, dict) else None
        if not isinstance(oid, str) or not oid.startswith("0x"):
            raise ClobApiError("Invalid orderID")
        limits = clob.admit(key, 1, placing=False)
        return _json(clob.cancel(key, [oid]), headers=limits)

    @r.delete("/orders")
    async def cancel_orders(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw)
        if not isinstance(body, list):
            raise ClobApiError("Invalid orderID")
        if len(body) > MAX_CANCEL_IDS:
            raise ClobApiError(f"Too many orders in payload: {len(body)}, max allowed: {MAX_CANCEL_IDS}")
        limits = clob.admit(key, max(1, len(body)), placing=False)
        return _json(clob.cancel(key, [str(x) for x in body]), headers=limits)

    @r.delete("/cancel-all")
    async def cancel_all(request):
        key, _ = await _l2(request)
        limits = clob.admit(key, 1 + len(clob.open_orders(key)), placing=False)
        return _json(clob.cancel_open(key), headers=limits)

    @r.delete("/cancel-market-orders")
    async def cancel_market_orders(request):
        key, raw = await _l2(request)
        body = await _body_json(request, raw) or {}
        if not isinstance(body, dict):
            raise ClobApiError(ERR_PAYLOAD)
        market, asset_id = body.get("market"), body.get("asset_id")
        limits = clob.admit(key, 1 + len(clob.open_orders(key, market=market, asset_id=asset_id)), placing=False)
        return _json(clob.cancel_open(key, market=market, asset_id=asset_id), headers=limits)

    @r.get("/balance-allowance")
    async def balance_allowance(request):
        key, _ = await _l2(request)
        return _json(await clob.balance_allowance(key, request.query))

    @r.get("/balance-allowance/update")
    async def balance_allowance_update(request):
        key, _ = await _l2(request)
        return _json(await clob.balance_allowance(key, request.query))

    @r.get("/v1/user/session-signers")
    async def session_signers(request):
        key, _ = await _l2(request)
        return _json(await clob.makers.session_signers(clob.chain, key.address))

    @r.post("/v1/heartbeats")
    async def heartbeats(request):
        key, _ = await _l2(request)
        return _json(clob.heartbeat(key))

    return r
