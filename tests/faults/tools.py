"""Shared pieces of the fault suite: a fault-injecting HTTP proxy and a fresh follower to copy."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from decimal import Decimal

from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from ..integration.conftest import clear_follows, new_follower
from .ledger import balances


def setup_follow(fork, flow="standard", amount="3", **follow):
    """A fresh funded follower of the seed leader (the only follow); returns (proxy, token, balances before)."""
    clear_follows(fork)
    proxy = new_follower(fork)
    add_follow(fork.state, follower=proxy, leader=SEED_LEADER, amount=amount, flow=flow, **follow)
    token = int(fork.world.market(0).token_id("Yes"))
    # A follow copies fills from the moment it exists, and chain timestamps are whole seconds: a fill in the
    # very second the follow was created is (conservatively) not copied. Trade from the next second on.
    time.sleep(1.0 - time.time() % 1.0 + 0.05)
    return proxy, token, balances(fork, proxy, token)


class FaultProxy:
    """An HTTP proxy (aiohttp, own thread) in front of a server: forwards every request (a second, killable
    RPC endpoint in front of the node), except POST /order per `mode` (in front of the CLOB): "5xx" answers 503 without
    forwarding; "timeout" forwards (the CLOB accepts and settles) but answers only after the client gave up;
    "inflate" forwards and multiplies `makingAmount` / `takingAmount` of the answer by 10 (a CLOB claiming more)."""

    def __init__(self, target: str, *, drop_path: bool = False):
        """`drop_path`: forward every request to the target's root (an RPC URL with an API-key path, e.g.
        `/v2/<key>`, in front of a node that answers on `/` only)."""
        from aiohttp import ClientSession, ClientTimeout, web

        self.target, self.mode = target.rstrip("/"), "pass"
        self.calls = 0  # every request that came in
        self.posted = 0  # POST /order that reached the CLOB
        self.refused = 0
        self.inflated = 0  # answers rewritten in "inflate" mode
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handle(request):
            self.calls += 1
            body = await request.read()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            is_order = request.method == "POST" and request.path == "/order"
            if is_order and self.mode == "5xx":
                self.refused += 1
                return web.json_response({"error": "upstream unavailable"}, status=503)
            if is_order:
                self.posted += 1
            where = self.target + ("/" if drop_path else request.path_qs)
            async with self._session.request(request.method, where, data=body,
                                             headers=headers) as r:
                data, status, ctype = await r.read(), r.status, r.content_type
            if is_order and self.mode == "timeout":
                await asyncio.sleep(12)  # the SDK's read timeout is 10 s (LIVE-2026 §2)
            if is_order and self.mode == "inflate" and status == 200:
                doc = json.loads(data)
                if isinstance(doc, dict) and doc.get("makingAmount"):
                    for k in ("makingAmount", "takingAmount"):
                        doc[k] = str(Decimal(str(doc[k])) * 10)
                    data = json.dumps(doc).encode()
                    self.inflated += 1
            return web.Response(body=data, status=status, content_type=ctype)

        async def main():
            self._session = ClientSession(timeout=ClientTimeout(total=30))
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
            self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
            ready.set()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(main())
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10)

    def close(self) -> None:
        async def down():
            await self._runner.cleanup()
            await self._session.close()

        asyncio.run_coroutine_threadsafe(down(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    kill = close
