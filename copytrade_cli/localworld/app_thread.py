"""Serve an aiohttp application from a daemon thread on its own event loop (tests, embedding, the CLI).

The local CLOB (`clob_server.ClobServerThread`) and the activity feed (`feed.FeedHandle`) are both served
this way: `start()` returns once the socket listens (or raises what start-up raised), `call()` runs code on
the server's loop, `stop()` stops the loop, runs the app's cleanup and joins the thread.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Callable

from aiohttp import web


class AppThread:
    """One aiohttp app on host:port (0 = any free port), served from a background thread."""

    def __init__(self, app: web.Application, *, host: str = "127.0.0.1", port: int = 0, name: str = "aiohttp-app",
                 label: str = "server", access_log: logging.Logger | None = None):
        self.app = app
        self.host = host
        self.port = port
        self.base_url: str | None = None
        self._name = name
        self._label = label
        self._access_log = access_log
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = 60.0) -> str:
        """Start serving; returns the base URL (http://host:port) once the app's start-up has run."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"{self._label} did not start within {timeout:.0f}s")
        if self._error is not None:
            self._thread.join(5)
            raise RuntimeError(f"{self._label} failed to start: {self._error}") from self._error
        return self.base_url  # type: ignore[return-value]

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 — reported to start()
            self._error = exc
            self._ready.set()
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=self._access_log, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        _host, port = self._runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{self.host}:{port}"
        self._ready.set()

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Run `fn` on the server's loop (thread-safe access to its state); coroutines are awaited."""
        assert self._loop is not None

        async def _wrap():
            out = fn()
            if asyncio.iscoroutine(out):
                out = await out
            return out

        return asyncio.run_coroutine_threadsafe(_wrap(), self._loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (the app's cleanup runs on its loop) and join the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
        self._loop = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def spawn_server(settings: Any, argv: list[str], *, what: str, port: int, stop_marker: str,
                 timeout: float = 20.0) -> tuple[str, int]:
    """Start one of the local world's servers (`python -m <argv>`, its own session, output to
    `logs/<what>-<port>.log`) for this home; return (url, pid) once GET /ok answers, or raise NodeError with the
    log's last line (the process stopped by PID if it never answered)."""
    import os
    import subprocess
    import sys
    import time
    import urllib.request

    from ..chain import node as nodes
    from ..errors import NodeError

    log = settings.home / "logs" / f"{what.split()[-1].lower()}-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, COPYTRADE_HOME=str(settings.home))
    if settings.state_file:
        env["COPYTRADE_STATE_FILE"] = str(settings.state_path)
    with open(log, "ab") as fh:
        proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()
            raise NodeError(f"the {what} exited at start: {tail[-1] if tail else 'no output'}; log: {log}")
        try:
            with urllib.request.urlopen(url + "/ok", timeout=0.5) as resp:
                if resp.status == 200:
                    return url, proc.pid
        except OSError:
            time.sleep(0.1)
    nodes.stop_pid(proc.pid, stop_marker)
    raise NodeError(f"the {what} did not answer on {url} within {timeout:.0f}s; log: {log}")
