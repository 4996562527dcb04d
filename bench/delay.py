"""A loopback TCP proxy that adds a fixed round-trip delay: the distances of a real deployment, on one machine.

Each byte crossing the proxy is held for half the round trip in its direction (client -> server, then server ->
client), so one HTTP request/response or one JSON-RPC call costs `rtt_ms` more, and websockets see the same delay
per frame; the delay never limits throughput (chunks are released by their arrival time plus the delay, not one
after another). Used by `bench.latency --delays` to put the node 60 ms, the CLOB 120 ms and the relayer 300 ms
(round trip) away from the supervisor, as a supervisor hosted far from Polymarket's servers sees them.
"""
from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlsplit, urlunsplit


class DelayProxy:
    """`DelayProxy("http://127.0.0.1:8545", rtt_ms=60).start()`; `.url` is the delayed address of the same server."""

    def __init__(self, target_url: str, rtt_ms: float):
        u = urlsplit(target_url)
        self._target = (u.hostname or "127.0.0.1", u.port or (443 if u.scheme in ("https", "wss") else 80))
        self._parts = u
        self.half_s = max(0.0, float(rtt_ms)) / 2000.0
        self.rtt_ms = float(rtt_ms)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="delay-proxy", daemon=True)
        self.connections = 0

    @property
    def url(self) -> str:
        """The target URL with the proxy's port (same scheme and path)."""
        p = self._parts
        return urlunsplit((p.scheme, f"127.0.0.1:{self.port}", p.path, p.query, p.fragment))

    def start(self) -> "DelayProxy":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer), return_exceptions=True)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy src -> dst, each chunk released `half_s` after it arrived (a queue keeps chunks in order)."""
        q: asyncio.Queue = asyncio.Queue()

        async def release() -> None:
            while True:
                due, data = await q.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if data is None:
                    break
                dst.write(data)
                await dst.drain()
            try:
                dst.write_eof()
            except (OSError, RuntimeError):
                pass

        task = asyncio.ensure_future(release())
        try:
            while True:
                data = await src.read(65536)
                q.put_nowait((time.monotonic() + self.half_s, data or None))
                if not data:
                    break
        except (OSError, ConnectionError):
            q.put_nowait((time.monotonic(), None))
        try:
            await task
        except (OSError, ConnectionError):
            pass
        finally:
            try:
                dst.close()
            except (OSError, RuntimeError):
                pass


def measure_rtt(url: str, n: int = 5) -> float:
    """Median ms of `n` HTTP GETs through `url` (any answer counts): checks a proxy really adds its delay."""
    import statistics
    import urllib.error
    import urllib.request

    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            urllib.request.urlopen(url, timeout=10).read()
        except urllib.error.HTTPError:
            pass
        except OSError:
            pass
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)
