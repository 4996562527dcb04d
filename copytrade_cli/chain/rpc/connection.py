"""A chain connection: `connect` returns a web3 whose provider carries the connection's `ChainIO` (endpoint
policy, plain JSON-RPC client, receipt watcher); `chain_io(w3)` finds it. One of each per connection, no
process-wide caches."""
from __future__ import annotations

from ...errors import ChainError
from .base import redact
from .client import JsonRpc
from .http import HttpTransport
from .policy import Endpoints
from .receipts import ReceiptWatcher


class ChainIO:
    """Everything one connection uses to talk to the chain besides web3: the `Endpoints` it shares with the web3
    provider, the plain JSON-RPC client (hot paths) and the one receipt watcher."""

    def __init__(self, endpoints: Endpoints, *, timeout: float = 30.0):
        self.endpoints = endpoints
        self.rpc = JsonRpc(endpoints, HttpTransport(timeout))
        self.receipts = ReceiptWatcher(self.rpc)


def chain_io(w3) -> ChainIO | None:
    """The `ChainIO` of a web3 connection over HTTP (None for other providers: use web3 then). A provider not
    made by `connect` (a plain `Web3.HTTPProvider`) gets one on first use, kept on the provider."""
    provider = w3.provider
    io = getattr(provider, "chain_io", None)
    if io is not None:
        return io
    uri = str(getattr(provider, "endpoint_uri", "") or "")
    if not uri.startswith(("http://", "https://")):
        return None
    # NOTE: dict.setdefault is atomic: two threads racing here keep the same one (no thread is started yet).
    return provider.__dict__.setdefault("chain_io", ChainIO(Endpoints(uri)))


def connect(url: str | list[str], timeout: float = 30.0):
    """A web3 HTTP connection (keep-alive session) to one endpoint, or to several with failover."""
    from web3 import Web3

    from .web3_provider import FailoverHTTPProvider

    urls = [url] if isinstance(url, str) else list(url)
    # NOTE: web3's validation middleware asks eth_chainId before every eth_call / estimate (a second round
    # trip per read); an endpoint's chain id does not change, so that one answer is cached per connection.
    return Web3(FailoverHTTPProvider(urls, request_kwargs={"timeout": timeout}, cache_allowed_requests=True,
                                     cacheable_requests={"eth_chainId"}))


def connect_checked(urls: list[str], expect_chain_id: int | None = None, timeout: float = 30.0):
    """The first endpoint that answers (failover order), checked against the expected chain id; the others are
    kept as failover endpoints, tried in order after it (round robin)."""
    errors = []
    for url in urls:
        w3 = connect(url, timeout)
        try:
            cid = w3.eth.chain_id
        except Exception as exc:  # noqa: BLE001 — try the next endpoint
            errors.append(f"{redact(url)}: {type(exc).__name__}")
            continue
        if expect_chain_id is not None and cid != expect_chain_id:
            errors.append(f"{redact(url)}: chain id {cid}, expected {expect_chain_id}")
            continue
        if len(urls) > 1:
            i = urls.index(url)
            w3 = connect(urls[i:] + urls[:i], timeout)
            w3.eth.chain_id  # noqa: B018 — cache it on the new connection
        return w3
    raise ChainError("no RPC endpoint answered (" + "; ".join(errors) + "); start the fork with "
                     "`copytrade fork up` or fix COPY_TRADING_RPC_URL(S)")

