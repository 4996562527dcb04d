"""web3's HTTP provider on the failover policy: web3 and the plain JSON-RPC client of one connection share one
`Endpoints`, so a failure seen by either moves both to the next endpoint."""
from __future__ import annotations

from typing import Any

import requests
from web3 import HTTPProvider

from .base import no_answer, redact, scrub
from .policy import Endpoints


class _Failed(Exception):
    """A requests error that counts as a transport error (internal: carries the original and its URL)."""

    def __init__(self, exc: Exception, url: str):
        super().__init__(str(exc))
        self.exc, self.url = exc, url


class FailoverHTTPProvider(HTTPProvider):
    """An HTTP provider over several endpoints (COPY_TRADING_RPC_URL(S), in order) under the `Endpoints` policy.
    A request that gets no answer moves to the next endpoint; the last error is re-raised as requests raised
    it, with the endpoint's path and query taken out of the message (they often carry API keys)."""

    def __init__(self, urls: list[str] | Endpoints, **kwargs: Any):
        from .connection import ChainIO

        self.endpoints = urls if isinstance(urls, Endpoints) else Endpoints(urls)
        super().__init__(self.endpoints.current, **kwargs)
        if len(self.endpoints.urls) > 1:
            self.exception_retry_configuration = None  # the next endpoint is the retry
        timeout = (kwargs.get("request_kwargs") or {}).get("timeout", 30.0)
        self.chain_io = ChainIO(self.endpoints, timeout=timeout)

    # NOTE: web3 reads `endpoint_uri` for every request; it is the policy's current endpoint, not a copy.
    @property
    def endpoint_uri(self):  # type: ignore[override]
        """The endpoint requests go to now."""
        return self.endpoints.current

    @endpoint_uri.setter
    def endpoint_uri(self, value) -> None:
        self.endpoints.move_to(str(value))

    @property
    def urls(self) -> list[str]:
        """Every endpoint, in failover order."""
        return self.endpoints.urls

    @property
    def failovers(self) -> int:
        """How many times the connection moved to another endpoint."""
        return self.endpoints.failovers

    def fail_over(self, bad_url: str) -> bool:
        """Move off `bad_url` (if still current); False when there is nowhere else to go."""
        return self.endpoints.fail_over(bad_url)

    def __str__(self) -> str:
        return f"RPC connection {redact(self.endpoints.current)}"

    def _under_policy(self, send):
        def attempt(url: str):
            try:
                return send()
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Failed(exc, url) from None
            except requests.HTTPError as exc:
                r = exc.response
                if r is not None and no_answer(r.status_code, r.content or b""):
                    raise _Failed(exc, url) from None
                raise  # an error status with a JSON body: the node answered

        try:
            return self.endpoints.run(attempt, errors=(_Failed,))
        except _Failed as failed:
            exc = failed.exc
            raise type(exc)(scrub(str(exc), failed.url), response=getattr(exc, "response", None)) from None

    def make_request(self, method, params):
        """web3's request, under the failover policy."""
        return self._under_policy(lambda: super(FailoverHTTPProvider, self).make_request(method, params))

    def make_batch_request(self, batch_requests):
        """web3's batch request, under the failover policy."""
        return self._under_policy(lambda: super(FailoverHTTPProvider, self).make_batch_request(batch_requests))
