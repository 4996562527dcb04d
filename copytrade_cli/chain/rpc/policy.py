"""The one failover policy of chain I/O, shared by the sync client, the async client and the web3 provider.

- **Order**: endpoints are used in the order given (COPY_TRADING_RPC_URL first, then COPY_TRADING_RPC_URLS).
- **When to fail over**: on a transport error only (see `base`): the request moves off the endpoint that
  failed to the next one, round robin. An RPC error (the node answered) never moves anything.
- **When to come back**: never by probing. The current endpoint stays current while it works; when it fails,
  the next in order is tried, and that wraps round to the first, so an endpoint that came back is used again
  once the one after it fails. NOTE: sticky on purpose: switching back costs detection its node-local
  filters, and a primary that answers one probe can still be flapping.
- **Retry**: a client that may repeat a request (`retry=True`, every stateless read and send) retries it on
  each endpoint in turn, once; one whose requests are tied to the endpoint (detection's filters) does not
  retry: the error is raised after the move, and the caller starts over on the new endpoint.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable, TypeVar

from .base import TransportError, redact

log = logging.getLogger("copytrade.rpc")
T = TypeVar("T")


class Endpoints:
    """An ordered list of RPC endpoints with the current one; thread-safe, shared by everything that talks
    over one connection (so web3 and the plain JSON-RPC client fail over together)."""

    def __init__(self, urls: str | list[str], *, retry: bool = True, user: str = "chain I/O"):
        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ValueError("no RPC endpoint given")
        self.urls = list(dict.fromkeys(urls))
        self.retry = retry
        self.user = user
        self.failovers = 0
        self._i = 0
        self._lock = threading.Lock()

    @property
    def current(self) -> str:
        """The endpoint requests go to now."""
        return self.urls[self._i]

    def move_to(self, url: str) -> None:
        """Make `url` current (adding it first if it is new)."""
        with self._lock:
            if url not in self.urls:
                self.urls.insert(0, url)
            self._i = self.urls.index(url)

    def fail_over(self, bad_url: str) -> bool:
        """Move off `bad_url` (if still current) to the next endpoint; False when there is nowhere else to go."""
        if len(self.urls) < 2:
            return False
        with self._lock:
            if self.urls[self._i] == bad_url:
                self._i = (self._i + 1) % len(self.urls)
                self.failovers += 1
                log.warning("RPC endpoint %s failed; %s moves to %s", redact(bad_url), self.user,
                            redact(self.urls[self._i]))
        return True

    @property
    def tries(self) -> int:
        """How many endpoints one request may be tried on."""
        return len(self.urls) if self.retry else 1

    def run(self, send: Callable[[str], T], errors: tuple[type[BaseException], ...] = (TransportError,)) -> T:
        """`send(url)` on the current endpoint; on one of `errors` fail over and (with `retry`) try the next."""
        for attempt in range(self.tries):
            url = self.current
            try:
                return send(url)
            except errors:
                if not self.fail_over(url) or attempt == self.tries - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def arun(self, send, errors: tuple[type[BaseException], ...] = (TransportError,)):
        """The asyncio twin of `run` (`send(url)` is a coroutine function)."""
        for attempt in range(self.tries):
            url = self.current
            try:
                return await send(url)
            except errors:
                if not self.fail_over(url) or attempt == self.tries - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
