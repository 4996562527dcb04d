"""The Data API v2 and Gamma's keyset markets, served from the fork beside the activity feed (LIVE-2026 §13).

- `GET /v2/trades?user&condition_id&side&taker_only&start&end&limit&cursor`: the feed's fills, newest first,
  `{"data": [...], "pagination": {"has_more", "next_cursor"}}` with snake_case rows (the SDK's `Trade`).
- `GET /v2/activity?user&type&condition_id&side&start&end&sort_direction&limit&cursor`: TRADE rows (the feed's)
  and REDEEM rows (the CTF's `PayoutRedemption` logs of the user, read from the node on request).
- `GET /markets/keyset?condition_ids=..&limit&after_cursor`: Gamma markets of the world with the resolution read
  from the CTF (`payoutDenominator`/`payoutNumerators`): a resolved market is `closed` with its payout vector
  as `outcomePrices`; an open one shows its last traded price.
Cursors are opaque (base64 of an offset); `limit` above the live maxima (1000 rows, 100 markets) is a 400 with
the reason, as is any malformed parameter.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Mapping

from aiohttp import web
from eth_utils import keccak

TRADES_MAX = 1000
MARKETS_MAX = 100
ACTIVITY_TYPES = {"TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "MAKER_REBATE", "TAKER_REBATE",
                  "DEPOSIT", "WITHDRAWAL", "YIELD", "REFERRAL_REWARD", "MIGRATION", "TIP"}
PAYOUT_REDEMPTION = "0x" + keccak(text="PayoutRedemption(address,address,bytes32,bytes32,uint256[],uint256)").hex()
_DEN = keccak(text="payoutDenominator(bytes32)")[:4].hex()
_NUM = keccak(text="payoutNumerators(bytes32,uint256)")[:4].hex()


class BadQuery(ValueError):
    """A parameter the live API would refuse (400 with this text)."""


def _limit(q: Mapping[str, str], default: int, maximum: int) -> int:
    raw = q.get("limit")
    if raw in (None, ""):
        return default
    try:
        n = int(raw)
    except ValueError:
        raise BadQuery("limit must be an integer") from None
    if not 1 <= n <= maximum:
        raise BadQuery(f"limit must be between 1 and {maximum}")
    return n


def _cursor(raw: str | None) -> int:
    if raw in (None, ""):
        return 0
    try:
        n = int(base64.urlsafe_b64decode(raw.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise BadQuery("invalid cursor") from None
    if n < 0:
        raise BadQuery("invalid cursor")
    return n


def _next(offset: int, limit: int, total: int) -> str | None:
    nxt = offset + limit
    return base64.urlsafe_b64encode(str(nxt).encode()).decode() if nxt < total else None


def _user(q: Mapping[str, str], required: bool) -> str | None:
    v = (q.get("user") or "").strip().lower()
    if not v:
        if required:
            raise BadQuery("user is required")
        return None
    if len(v) != 42 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
        raise BadQuery("user must be 0x + 40 hex")
    return v


def _int(q: Mapping[str, str], key: str) -> int | None:
    raw = q.get(key)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise BadQuery(f"{key} must be an integer (epoch seconds)") from None


def _bool(q: Mapping[str, str], key: str, default: bool) -> bool:
    raw = (q.get(key) or "").lower()
    if raw == "":
        return default
    if raw not in ("true", "false"):
        raise BadQuery(f"{key} must be true or false")
    return raw == "true"


def _side(q: Mapping[str, str]) -> str | None:
    v = (q.get("side") or "").upper()
    if v and v not in ("BUY", "SELL"):
        raise BadQuery("side must be BUY or SELL")
    return v or None


def _csv(q: Mapping[str, str], key: str) -> set[str]:
    return {x.strip().lower() for x in (q.get(key) or "").split(",") if x.strip()}


def _trade_row(t) -> dict[str, Any]:
    p = t.payload
    return {"proxy_wallet": p["proxyWallet"], "side": p["side"], "token_id": p["asset"],
            "condition_id": p["conditionId"], "size": p["size"], "price": p["price"], "timestamp": p["timestamp"],
            "transaction_hash": p["transactionHash"], "title": p.get("title") or None, "slug": p.get("slug") or None,
            "event_slug": p.get("eventSlug") or None, "outcome": p.get("outcome") or None,
            "outcome_index": p.get("outcomeIndex"), "name": None, "pseudonym": None}


def _page(rows: list, q: Mapping[str, str], default: int, maximum: int) -> dict[str, Any]:
    limit, offset = _limit(q, default, maximum), _cursor(q.get("cursor"))
    nxt = _next(offset, limit, len(rows))
    return {"data": rows[offset:offset + limit], "pagination": {"has_more": nxt is not None, "next_cursor": nxt}}


def trades_v2(records, q: Mapping[str, str]) -> dict[str, Any]:
    """The `/v2/trades` page for query `q` (taker_only defaults to true, as v1's takerOnly did)."""
    user, side = _user(q, required=False), _side(q)
    conds = _csv(q, "condition_id")
    start, end = _int(q, "start"), _int(q, "end")
    taker_only = _bool(q, "taker_only", True)
    rows = [t for t in records if (user is None or t.user == user) and (not taker_only or t.is_taker)
            and (side is None or t.payload["side"] == side)
            and (not conds or t.payload["conditionId"].lower() in conds)
            and (start is None or t.payload["timestamp"] >= start) and (end is None or t.payload["timestamp"] <= end)]
    rows.sort(key=lambda t: (t.payload["timestamp"], t.block_number, t.log_index), reverse=True)
    return _page([_trade_row(t) for t in rows], q, 100, TRADES_MAX)


def activity_v2(records, redeems: list[dict[str, Any]], q: Mapping[str, str]) -> dict[str, Any]:
    """The `/v2/activity` page: the user's TRADE rows and REDEEM rows, newest first unless ASC."""
    user, side = _user(q, required=True), _side(q)
    types = {t.strip().upper() for t in (q.get("type") or "").split(",") if t.strip()}
    if types - ACTIVITY_TYPES:
        raise BadQuery(f"type must be among {', '.join(sorted(ACTIVITY_TYPES))}")
    direction = (q.get("sort_direction") or "DESC").upper()
    if direction not in ("ASC", "DESC"):
        raise BadQuery("sort_direction must be ASC or DESC")
    conds = _csv(q, "condition_id")
    start, end = _int(q, "start"), _int(q, "end")
    rows: list[tuple[tuple, dict]] = []
    if not types or "TRADE" in types:
        for t in records:
            p = t.payload
            if t.user != user or (side and p["side"] != side) or (conds and p["conditionId"].lower() not in conds):
                continue
            rows.append(((p["timestamp"], t.block_number, t.log_index),
                         {**_trade_row(t), "type": "TRADE", "usdc_size": t.usdc_size, "is_combo": False}))
    if (not types or "REDEEM" in types) and not side:
        for r in redeems:
            if not conds or r["condition_id"].lower() in conds:
                rows.append(((r["timestamp"], r["_block"], r["_log"]), {k: v for k, v in r.items() if k[0] != "_"}))
    rows = [r for r in rows if (start is None or r[0][0] >= start) and (end is None or r[0][0] <= end)]
    rows.sort(key=lambda r: r[0], reverse=(direction == "DESC"))
    return _page([r[1] for r in rows], q, 100, TRADES_MAX)


class DataApiV2:
    """The v2 routes over an `ActivityFeed` (its fills and its node connection)."""

    def __init__(self, feed):
        self.feed = feed

    async def _call(self, to: str, data: str) -> int:
        out = await self.feed._rpc("eth_call", [{"to": to, "data": data}, "latest"])
        return int(out, 16) if out and out != "0x" else 0

    async def _payouts(self, condition_id: str, slots: int) -> list[int] | None:
        ctf, cid = self.feed.world.ctf, condition_id[2:].rjust(64, "0")
        den = await self._call(ctf, "0x" + _DEN + cid)
        if den == 0:
            return None
        return [await self._call(ctf, "0x" + _NUM + cid + hex(i)[2:].rjust(64, "0")) for i in range(slots)], den

    async def _redeems(self, user: str) -> list[dict[str, Any]]:
        logs = await self.feed._rpc("eth_getLogs", [{
            "fromBlock": hex(self.feed.world.planted_block or 0), "toBlock": "latest", "address": self.feed.world.ctf,
            "topics": [PAYOUT_REDEMPTION, "0x" + user[2:].rjust(64, "0")]}]) or []
        markets = {m.condition_id.lower(): m for m in self.feed.world.markets}
        stamps: dict[int, int] = {}
        out = []
        for lg in logs:
            data = bytes.fromhex(lg["data"][2:])
            cid = "0x" + data[:32].hex()
            payout = int.from_bytes(data[64:96], "big")
            bn = int(lg["blockNumber"], 16)
            if bn not in stamps:
                block = await self.feed._rpc("eth_getBlockByNumber", [hex(bn), False])
                stamps[bn] = int(block["timestamp"], 16)
            m = markets.get(cid)
            out.append({"type": "REDEEM", "proxy_wallet": user, "condition_id": cid, "usdc_size": payout / 1e6,
                        "timestamp": stamps[bn], "transaction_hash": lg["transactionHash"], "is_combo": False,
                        "title": m.title if m else None, "slug": m.slug if m else None,
                        "_block": bn, "_log": int(lg["logIndex"], 16)})
        return out

    async def trades(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(trades_v2(self.feed.trades, request.query))
        except BadQuery as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def activity(self, request: web.Request) -> web.Response:
        try:
            user = _user(request.query, required=True)
            return web.json_response(activity_v2(self.feed.trades, await self._redeems(user), request.query))
        except BadQuery as exc:
            return web.json_response({"error": str(exc)}, status=400)

    async def markets_keyset(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            limit = _limit(q, 20, MARKETS_MAX)
            offset = _cursor(q.get("after_cursor"))
            wanted = {c.strip().lower() for v in q.getall("condition_ids", []) for c in v.split(",") if c.strip()}
        except BadQuery as exc:
            return web.json_response({"error": str(exc)}, status=400)
        ms = [m for m in self.feed.world.markets if not wanted or m.condition_id.lower() in wanted]
        rows = [await self._market(m) for m in ms[offset:offset + limit]]
        return web.json_response({"markets": rows, "next_cursor": _next(offset, limit, len(ms))})

    async def _market(self, m) -> dict[str, Any]:
        got = await self._payouts(m.condition_id, len(m.token_ids))
        if got is not None:
            nums, den = got
            prices = [str(n / den) if n % den else str(n // den) for n in nums]
        else:
            last = {}
            for t in self.feed.trades:
                last[t.payload["asset"]] = t.payload["price"]
            prices = [str(last.get(tid, 0.5)) for tid in m.token_ids]
        resolved = got is not None
        return {"id": str(int(m.condition_id[2:10], 16)), "conditionId": m.condition_id, "questionID": m.question_id,
                "question": m.title, "slug": m.slug, "category": m.category, "negRisk": m.neg_risk,
                "outcomes": json.dumps(m.outcomes), "outcomePrices": json.dumps(prices),
                "clobTokenIds": json.dumps(m.token_ids), "active": not resolved, "closed": resolved,
                "archived": False, "acceptingOrders": not resolved, "enableOrderBook": True,
                "orderMinSize": m.min_order_size, "orderPriceMinTickSize": float(m.tick_size),
                "resolutionStatus": "resolved" if resolved else "active", "feesEnabled": m.fee_rate > 0,
                "events": [], "tags": []}

    def add_routes(self, app: web.Application, prefix: str = "") -> None:
        app.router.add_get(prefix + "/v2/trades", self.trades)
        app.router.add_get(prefix + "/v2/activity", self.activity)
        app.router.add_get(prefix + "/markets/keyset", self.markets_keyset)


def add_v2_routes(app: web.Application, feed, prefix: str = "") -> DataApiV2:
    """Register the v2 Data API and Gamma keyset routes over `feed` on `app`."""
    api = DataApiV2(feed)
    api.add_routes(app, prefix)
    return api
