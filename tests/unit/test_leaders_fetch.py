"""Downloading a history from a real (loopback) HTTP server: cursor pages, progress, 429 with Retry-After honoured,
a 429 that asks too long is one clear error, a bad shape is refused."""
from __future__ import annotations

import pytest
from aiohttp import web

from copytrade_cli.analysis import fetch
from copytrade_cli.analysis.fetch import FetchError, Fetcher, fetch_history
from copytrade_cli.localworld.app_thread import AppThread

from .test_leaders_analysis import LEADER, raw_history


class FakeApi:
    """A loopback Data API v2 + Gamma serving the hand-made history two rows a page, 429 on chosen requests."""

    def __init__(self, throttle: dict[int, str]):
        self.raw, self.throttle, self.n, self.seen = raw_history(), throttle, 0, []

    async def handle(self, request: web.Request) -> web.Response:
        self.n += 1
        self.seen.append((request.path, dict(request.query)))
        if self.n in self.throttle:
            return web.json_response({"error": "Too Many Requests"}, status=429,
                                     headers={"Retry-After": self.throttle[self.n]})
        if request.path == "/markets/keyset":
            want = set(request.query.getall("condition_ids"))
            return web.json_response({"markets": [m for m in self.raw["markets"] if m["conditionId"] in want],
                                      "next_cursor": None})
        rows = {"/v2/activity": self.raw["activity"]}.get(request.path)
        if rows is None:
            rows = self.raw["trades"] if request.query["taker_only"] == "false" else self.raw["taker_trades"]
        off = int(request.query.get("cursor", "0"))
        nxt = str(off + 2) if off + 2 < len(rows) else None
        return web.json_response({"data": rows[off:off + 2], "pagination": {"has_more": nxt is not None,
                                                                            "next_cursor": nxt}})


@pytest.fixture
def api():
    def make(throttle=None):
        fake = FakeApi(throttle or {})
        app = web.Application()
        for path in ("/v2/trades", "/v2/activity", "/markets/keyset"):
            app.router.add_get(path, fake.handle)
            app.router.add_get("/bad" + path, lambda r: web.json_response({"oops": 1}))
        th = AppThread(app, name="fake-data-api")
        th.start()
        made.append(th)
        return fake, f"http://127.0.0.1:{th.port}"

    made: list = []
    yield make
    for th in made:
        th.stop()


def test_pages_progress_and_retry_after(api):
    fake, url = api({2: "0.25", 3: "0"})
    waits: list[float] = []
    f = Fetcher(sleep=waits.append)
    progress: list[tuple] = []
    h = fetch_history(LEADER, data_url=url, gamma_url=url, progress=lambda *a: progress.append(a), fetcher=f)
    assert waits == [0.25, 0.0]  # each 429's Retry-After, honoured before the retry
    assert len(h.trades) == 5 and len(h.redeems) == 1 and len(h.markets) == 3
    assert progress[:3] == [("trades", 1, 2), ("trades", 2, 4), ("trades", 3, 5)]
    assert ("activity", 1, 2) in progress and ("markets", 1, 3) in progress
    first = fake.seen[0][1]
    assert first["user"] == LEADER.lower() and first["start"] == "1" and first["limit"] == "1000"


def test_429_asking_too_long_is_one_line(api):
    _fake, url = api({1: "3600"})
    with pytest.raises(FetchError, match=r"^GET /v2/trades: rate limited \(429\), retry after 3600s; try later$"):
        fetch_history(LEADER, data_url=url, gamma_url=url, fetcher=Fetcher(sleep=lambda s: None))


def test_bad_shape_and_address(api):
    _fake, url = api()
    with pytest.raises(FetchError, match="response has no markets list"):
        fetch.gamma_markets(Fetcher(), url + "/bad", ["0x1"])
    with pytest.raises(FetchError, match="^GET /v2/trades: response has no data/pagination$"):
        fetch.data_pages(Fetcher(), url + "/bad", "/v2/trades", {}, "trades")
    from copytrade_cli.errors import UsageError

    with pytest.raises(UsageError, match="is not 0x"):
        fetch_history("0x123", data_url=url, gamma_url=url)
