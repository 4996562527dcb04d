"""The async transport: one aiohttp session (keep-alive, bounded connection pool) for the local CLOB's loop."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from .base import AsyncTransport, TransportError, no_answer, redact, scrub

_HEADERS = {"Content-Type": "application/json"}


class AiohttpTransport(AsyncTransport):
    """POST a JSON body and read a JSON answer without blocking the event loop; `TransportError` when the
    endpoint is unreachable, times out or answers without JSON. The session opens on first use."""

    def __init__(self, timeout: float = 30.0, max_connections: int = 64):
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def _ensure(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._max_connections))
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: Any) -> Any:
        """The JSON answer to `body` POSTed to `url`."""
        session = await self._ensure()
        try:
            async with session.post(url, data=json.dumps(body), headers=_HEADERS) as resp:
                status, raw = resp.status, await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise TransportError(f"node unreachable at {redact(url)}: {scrub(str(exc), url)}") from None
        if no_answer(status, raw):
            raise TransportError(f"node at {redact(url)} answered HTTP {status}")
        try:
            return json.loads(raw)
        except ValueError:
            raise TransportError(f"node at {redact(url)} answered HTTP {status} without JSON") from None
