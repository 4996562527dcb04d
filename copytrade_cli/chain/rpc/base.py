"""The transport interface under every JSON-RPC client (httpx's model: one small interface, one implementation
per file), the error types of chain I/O, and how an endpoint is shown (scheme://host[:port], never its path).

A *transport error* means the endpoint gave no JSON-RPC answer at all (refused, reset, timed out, an HTTP error
status without a JSON body, a body that is not JSON): the failover policy moves to the next endpoint. An *RPC
error* is an answer, the node's own `{"error": ...}`: the endpoint works, so it is raised (or returned) as is.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ...errors import ChainError
from ...redact import redact_url


class RpcError(ChainError):
    """A JSON-RPC request failed: the node answered with an error, or (`TransportError`) not at all."""


class TransportError(RpcError):
    """The endpoint gave no JSON-RPC answer (unreachable, refused, timed out, not JSON): fail over."""


class BatchRefused(RpcError):
    """The node answered a whole batch with one error object (it takes no batches, or not this one)."""


class Transport:
    """POST one JSON body to a URL and return the decoded JSON answer; `TransportError` when there is none."""

    def post(self, url: str, body: Any) -> Any:  # pragma: no cover - interface
        """The JSON answer to `body` POSTed to `url`."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the connections this transport holds."""


class AsyncTransport:
    """The asyncio twin of `Transport`."""

    async def post(self, url: str, body: Any) -> Any:  # pragma: no cover - interface
        """The JSON answer to `body` POSTed to `url`."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the connections this transport holds."""


def redact(url: str) -> str:
    """An endpoint as scheme://host[:port] (paths and credentials often carry API keys: never shown)."""
    return redact_url(url) or ""


def scrub(text: str, url: str) -> str:
    """`text` (an exception's message) with `url`, its path and its query replaced by the redacted form."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text.replace(url, "<unparseable URL>")
    text = text.replace(url, redact(url))
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    if secret not in ("", "/"):
        text = text.replace(secret, "/...")
    if parts.query:
        text = text.replace(parts.query, "...")
    if parts.password:
        text = text.replace(parts.password, "...")
    return text


def no_answer(status: int, raw: bytes) -> bool:
    """True if an HTTP reply carries no JSON-RPC answer: an error status without a JSON body (a proxy's 502,
    a rate limiter's 429 page). A node's error status WITH a JSON body is an answer (an RPC error)."""
    return status >= 400 and not raw.strip().startswith((b"{", b"["))
