"""The local activity feed on a real anvil: a leader trade reaches RTDS websocket subscribers and the Data API
(/activity, /trades) with the same fill key as the chain log."""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
import websockets
from web3 import Web3

from copytrade_cli.localworld.feed import start_feed_in_thread
from copytrade_cli.localworld.plant import plant_polymarket
from copytrade_cli.localworld.trades import leader_batch, leader_trade
from copytrade_cli.localworld.world import DEV_KEYS, SEED_LEADER
from copytrade_cli.polymarket import fills as F

SUBSCRIBE = {"action": "subscribe", "subscriptions": [{"topic": "activity", "type": "trades"}]}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from tests.conftest import AnvilNode

    node = AnvilNode(home=tmp_path_factory.mktemp("anvil-feed"))
    w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 30}))
    world = plant_polymarket(w3, DEV_KEYS[0], n_markets=2)
    feed = start_feed_in_thread(node.url, world, poll_interval=0.05)
    feed.wait_ready()
    yield w3, world, feed
    feed.stop()
    node.stop()


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


async def _recv_trades(ws, n, timeout=10):
    out = []
    while len(out) < n:
        raw = await asyncio.wait_for(ws.recv(), timeout)
        out.append(json.loads(raw))
    return out


def test_websocket_delivers_the_leader_trade(planted):
    w3, world, feed = planted

    async def scenario():
        async with websockets.connect(feed.ws_url) as ws:
            await ws.send("ping")
            assert await asyncio.wait_for(ws.recv(), 5) == "pong"
            await ws.send(json.dumps(SUBSCRIBE))
            await asyncio.sleep(0.05)
            res = await asyncio.to_thread(leader_trade, w3, world, usd=10, price="0.4", pending_ms=20)
            msgs = await _recv_trades(ws, 2)  # the leader's (taker) fill and the market maker's
            return res, msgs

    res, msgs = asyncio.run(scenario())
    for m in msgs:
        assert m["topic"] == "activity" and m["type"] == "trades" and m["connection_id"]
        assert m["timestamp"] > 10**12  # envelope: ms; payload: seconds
        assert m["payload"]["timestamp"] < 10**11
    leader_msgs = [m for m in msgs if F.decode_activity_message(m, [SEED_LEADER])]
    assert len(leader_msgs) == 1
    p = leader_msgs[0]["payload"]
    market = world.markets[0]
    assert (p["proxyWallet"], p["side"], p["size"], p["price"], p["outcome"], p["outcomeIndex"]) == (
        SEED_LEADER, "BUY", 25.0, 0.4, "Yes", 0)
    assert (p["asset"], p["conditionId"], p["slug"], p["title"], p["transactionHash"]) == (
        market.token_ids[0], market.condition_id, market.slug, market.title, res.tx_hash)
    # Same fill, same key, whichever channel saw it.
    assert F.decode_activity_message(json.dumps(leader_msgs[0]), [SEED_LEADER]).key == res.keys[0]


def test_subscription_filters_and_unsubscribe(planted):
    w3, world, feed = planted
    other = world.markets[1]

    async def scenario():
        async with websockets.connect(feed.ws_url) as only_m1, websockets.connect(feed.ws_url) as gone:
            sub = {"action": "subscribe", "subscriptions": [
                {"topic": "activity", "type": "trades", "filters": json.dumps({"market_slug": other.slug})}]}
            await only_m1.send(json.dumps(sub))
            await gone.send(json.dumps(SUBSCRIBE))
            await gone.send(json.dumps({**SUBSCRIBE, "action": "unsubscribe"}))
            await asyncio.sleep(0.05)
            await asyncio.to_thread(leader_trade, w3, world, market_index=0, usd=2, pending_ms=20)
            res = await asyncio.to_thread(leader_trade, w3, world, market_index=1, usd=3, pending_ms=20)
            msgs = await _recv_trades(only_m1, 2)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(gone.recv(), 0.5)
            return res, msgs

    res, msgs = asyncio.run(scenario())
    assert {m["payload"]["slug"] for m in msgs} == {other.slug}
    assert {m["payload"]["transactionHash"] for m in msgs} == {res.tx_hash}


def test_data_api_activity_and_trades(planted):
    w3, world, feed = planted
    single = leader_trade(w3, world, usd=4, price="0.5", pending_ms=20)
    batch = leader_batch(w3, world, count=3, usd=1, pending_ms=20)
    want = set(single.keys) | set(batch.keys)
    end = time.time() + 5
    rows = []
    while time.time() < end:
        rows = get_json(f"{feed.url}/activity?user={SEED_LEADER.lower()}&type=TRADE&limit=500")
        keys = {F.decode_data_api_row(r, [SEED_LEADER]).key for r in rows}
        if want <= keys:
            break
        time.sleep(0.05)
    assert want <= {F.decode_data_api_row(r).key for r in rows}
    row = next(r for r in rows if r["transactionHash"] == single.tx_hash)
    assert row["type"] == "TRADE" and row["usdcSize"] == 4.0 and row["size"] == 8.0
    assert rows == sorted(rows, key=lambda r: r["timestamp"], reverse=True)
    # paging and time windows
    assert len(get_json(f"{feed.url}/activity?user={SEED_LEADER}&limit=1")) == 1
    assert get_json(f"{feed.url}/activity?user={SEED_LEADER}&start=9999999999") == []
    assert get_json(f"{feed.url}/activity?user={SEED_LEADER}&type=SPLIT") == []
    # /trades is taker-only by default (the batch made the leader a maker), like the real Data API.
    taker = {r["transactionHash"] for r in get_json(f"{feed.url}/trades?user={SEED_LEADER}")}
    assert single.tx_hash in taker and batch.tx_hash not in taker
    every = {r["transactionHash"] for r in get_json(f"{feed.url}/trades?user={SEED_LEADER}&takerOnly=false")}
    assert batch.tx_hash in every
    for bad in ("/activity", "/activity?user=0x12", f"/activity?user={SEED_LEADER}&limit=501"):
        with pytest.raises(urllib.error.HTTPError) as exc:
            get_json(feed.url + bad)
        assert exc.value.code == 400
    assert get_json(feed.url + "/feed/ok") == "OK"
