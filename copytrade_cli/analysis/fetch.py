"""Download a leader's history: Data API v2 `/v2/trades` and `/v2/activity` (cursor pages of up to 1000 rows,
LIVE-2026 §13) and Gamma `/markets/keyset` for the markets traded (resolution, category, neg-risk).

Paging ends when `pagination.has_more` is false (or the cursor is null / "LTE=", as the SDK reads it). A 429 is
honoured: the wait is `Retry-After` (seconds) or the body's `retry_after_seconds`, 1 s when neither says, at most
`MAX_RETRIES` times per page; a longer wait than `MAX_WAIT_S` is an error line, not a silent hang.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import httpx

from ..errors import CopytradeError, UsageError
from .history import History

PAGE = 1000
MAX_RETRIES = 5
MAX_WAIT_S = 60.0
END_CURSORS = (None, "", "LTE=")
DATA_URL = "https://data-api.polymarket.com"
GAMMA_URL = "https://gamma-api.polymarket.com"

Progress = Callable[[str, int, int], None]  # (what, pages so far, rows so far)


class FetchError(CopytradeError):
    """An endpoint refused or answered something that is not its documented shape."""

    exit_code = 7


class Fetcher:
    """GETs with 429 handling; `sleep` is injectable so tests can count the waits."""

    def __init__(self, *, timeout: float = 20.0, sleep: Callable[[float], None] = time.sleep,
                 client: httpx.Client | None = None):
        self.client = client or httpx.Client(timeout=timeout, headers={"User-Agent": "copytrade-leaders"})
        self.sleep = sleep
        self.waits: list[float] = []

    def get(self, url: str, params: list[tuple[str, Any]]) -> Any:
        """One JSON GET; 429 -> wait as told and retry; another non-2xx -> FetchError with the server's text."""
        for attempt in range(MAX_RETRIES + 1):
            try:
                resp = self.client.get(url, params=params)
            except httpx.HTTPError as exc:
                raise FetchError(f"GET {_where(url)} failed: {type(exc).__name__}") from None
            if resp.status_code == 429:
                wait = _retry_after(resp)
                if attempt >= MAX_RETRIES or wait > MAX_WAIT_S:
                    raise FetchError(f"GET {_where(url)}: rate limited (429), retry after {wait:g}s; try later")
                self.waits.append(wait)
                self.sleep(wait)
                continue
            if not 200 <= resp.status_code < 300:
                raise FetchError(f"GET {_where(url)}: HTTP {resp.status_code}: {_text(resp)}")
            try:
                return resp.json()
            except ValueError:
                raise FetchError(f"GET {_where(url)}: not JSON") from None
        raise FetchError(f"GET {_where(url)}: rate limited")  # pragma: no cover — the loop returns or raises

    def close(self) -> None:
        self.client.close()


def _where(url: str) -> str:
    """The URL without query (the path names the endpoint; never print anything else of it)."""
    return httpx.URL(url).copy_with(query=None, fragment=None).path or url


def _text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("error"):
            return str(body["error"])[:160]
    except ValueError:
        pass
    return resp.text[:160]


def _retry_after(resp: httpx.Response) -> float:
    raw = resp.headers.get("Retry-After")
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    try:
        body = resp.json()
        if isinstance(body, dict) and body.get("retry_after_seconds") is not None:
            return max(0.0, float(body["retry_after_seconds"]))
    except (ValueError, TypeError):
        pass
    return 1.0


def data_pages(f: Fetcher, base: str, path: str, params: dict[str, Any], what: str,
               progress: Progress | None = None) -> list[dict]:
    """Every row of a Data API v2 cursor-paginated list."""
    rows: list[dict] = []
    cursor: str | None = None
    pages = 0
    while True:
        q = [(k, v) for k, v in params.items() if v is not None] + [("limit", PAGE)]
        if cursor is not None:
            q.append(("cursor", cursor))
        body = f.get(base.rstrip("/") + path, q)
        if not isinstance(body, dict) or not isinstance(body.get("data"), list) \
                or not isinstance(body.get("pagination"), dict):
            raise FetchError(f"GET {path}: response has no data/pagination")
        rows.extend(body["data"])
        pages += 1
        if progress:
            progress(what, pages, len(rows))
        pag = body["pagination"]
        nxt = pag.get("next_cursor")
        if not pag.get("has_more") or nxt in END_CURSORS:
            return rows
        if nxt == cursor:
            raise FetchError(f"GET {path}: the cursor did not advance")
        cursor = nxt


def gamma_markets(f: Fetcher, base: str, condition_ids: list[str], progress: Progress | None = None) -> list[dict]:
    """Gamma `/markets/keyset?condition_ids=...` for the markets traded (100 ids a request)."""
    rows: list[dict] = []
    pages = 0
    for start in range(0, len(condition_ids), 100):
        ids = condition_ids[start:start + 100]
        cursor = None
        while True:
            q: list[tuple[str, Any]] = [("condition_ids", c) for c in ids] + [("limit", 100)]
            if cursor:
                q.append(("after_cursor", cursor))
            body = f.get(base.rstrip("/") + "/markets/keyset", q)
            if not isinstance(body, dict) or not isinstance(body.get("markets"), list):
                raise FetchError("GET /markets/keyset: response has no markets list")
            rows.extend(body["markets"])
            pages += 1
            if progress:
                progress("markets", pages, len(rows))
            nxt = body.get("next_cursor")
            if nxt in END_CURSORS or nxt == cursor:
                break
            cursor = nxt
    return rows


def fetch_history(user: str, *, data_url: str | None = None, gamma_url: str | None = None, since: int | None = None,
                  progress: Progress | None = None, fetcher: Fetcher | None = None) -> History:
    """Download trades (all, and taker-only for the maker/taker mix), activity and the markets traded."""
    if not (isinstance(user, str) and user.startswith("0x") and len(user) == 42):
        raise UsageError(f"ADDRESS {user!r} is not 0x + 40 hex")
    f = fetcher or Fetcher()
    data, gamma = data_url or DATA_URL, gamma_url or GAMMA_URL
    start = since if since is not None else 1  # the SDK's full_history: start=1 (a missing start may mean a window)
    try:
        base = {"user": user.lower(), "start": start}
        trades = data_pages(f, data, "/v2/trades", {**base, "taker_only": "false"}, "trades", progress)
        taker = data_pages(f, data, "/v2/trades", {**base, "taker_only": "true"}, "taker trades", progress)
        activity = data_pages(f, data, "/v2/activity", {**base, "exclude_deposits_withdrawals": "false"},
                              "activity", progress)
        conds = sorted({str(r.get("condition_id", "")).lower() for r in trades + activity
                        if isinstance(r, dict) and r.get("condition_id")})
        markets = gamma_markets(f, gamma, conds, progress) if conds else []
    finally:
        if fetcher is None:
            f.close()
    raw = {"user": user, "since": since, "trades": trades, "taker_trades": taker, "activity": activity,
           "markets": markets}
    return History.from_raw(raw, since)
