"""The JSON-RPC client (call, batch) over a transport and the failover policy, in a sync and an asyncio
flavour that share the encoding, the decoding and the error rules.

A call whose answer is an error raises `RpcError` ("method: message"). A batch never raises for one bad entry:
each result is its value or an `RpcError` instance (a whole batch refused: `BatchRefused` in every place), so
one failed read spoils only itself. No answer at all raises `TransportError` once every endpoint was tried.
"""
from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, Sequence

from .base import AsyncTransport, BatchRefused, RpcError, Transport
from .policy import Endpoints

Calls = Sequence[tuple[str, list]]


def _message(err: Any) -> Any:
    return err.get("message", err) if isinstance(err, dict) else err


def encode_call(call_id: int, method: str, params: list | None) -> dict[str, Any]:
    """One JSON-RPC 2.0 request object."""
    return {"jsonrpc": "2.0", "id": call_id, "method": method, "params": params or []}


def encode_batch(first_id: int, calls: Calls) -> list[dict[str, Any]]:
    """A batch of request objects with ids `first_id`, `first_id + 1`, ..."""
    return [encode_call(first_id + i, m, p) for i, (m, p) in enumerate(calls)]


def decode_call(method: str, answer: Any) -> Any:
    """The result of one call; raises `RpcError` on an error answer."""
    if not isinstance(answer, dict):
        raise RpcError(f"{method}: unexpected answer {str(answer)[:80]}")
    if answer.get("error"):
        raise RpcError(f"{method}: {_message(answer['error'])}")
    return answer.get("result")


def decode_batch(first_id: int, calls: Calls, answer: Any) -> list[Any]:
    """Results in call order (a server may answer a batch in any order); a failed entry is an `RpcError`."""
    if isinstance(answer, dict):  # a node that rejects batches answers with one error object
        refused = BatchRefused(f"batch: {_message(answer.get('error', answer))}")
        return [refused] * len(calls)
    by_id = {d.get("id"): d for d in answer if isinstance(d, dict)}
    out: list[Any] = []
    for i, (method, _params) in enumerate(calls):
        d = by_id.get(first_id + i) or {}
        if d.get("error"):
            out.append(RpcError(f"{method}: {_message(d['error'])}"))
        elif "result" not in d:
            out.append(RpcError(f"{method}: no answer in the batch"))
        else:
            out.append(d["result"])
    return out


class JsonRpc:
    """Plain JSON-RPC over a `Transport` (default: keep-alive http.client) and an `Endpoints` policy: several
    times less CPU per call than web3's middleware stack, for the hot paths."""

    def __init__(self, endpoints: Endpoints | str | list[str], transport: Transport | None = None, *,
                 timeout: float = 30.0):
        from .http import HttpTransport

        self.endpoints = endpoints if isinstance(endpoints, Endpoints) else Endpoints(endpoints)
        self.transport = transport if transport is not None else HttpTransport(timeout)
        self._ids = itertools.count(1)

    @property
    def url(self) -> str:
        """The endpoint in use (never print it: use `redact`)."""
        return self.endpoints.current

    def post(self, body: Any) -> Any:
        """POST a raw JSON-RPC body under the failover policy; the decoded answer."""
        return self.endpoints.run(lambda url: self.transport.post(url, body))

    def call(self, method: str, params: list | None = None) -> Any:
        """One call's result; raises `RpcError` on an error answer."""
        return decode_call(method, self.post(encode_call(next(self._ids), method, params)))

    def batch(self, calls: Calls) -> list[Any]:
        """Results in order; an entry that failed is an `RpcError` instance (not raised)."""
        if not calls:
            return []
        first = next(self._ids) * 1000
        return decode_batch(first, calls, self.post(encode_batch(first, calls)))

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """A receipt's essentials (status, gasUsed, blockNumber as ints), or None while not mined."""
        from .receipts import essentials

        r = self.call("eth_getTransactionReceipt", [tx_hash])
        return essentials(r) if r else None

    def close(self) -> None:
        """Close the transport's connections."""
        self.transport.close()


class AsyncJsonRpc:
    """The asyncio flavour of `JsonRpc` (default transport: one aiohttp session); counts the methods sent."""

    def __init__(self, endpoints: Endpoints | str | list[str], transport: AsyncTransport | None = None, *,
                 timeout: float = 30.0, max_connections: int = 64):
        self.endpoints = endpoints if isinstance(endpoints, Endpoints) else Endpoints(endpoints)
        if transport is None:
            from .aiohttp_transport import AiohttpTransport

            transport = AiohttpTransport(timeout, max_connections)
        self.transport = transport
        self._ids = itertools.count(1)
        self.calls: Counter[str] = Counter()  # JSON-RPC methods sent (batched calls counted one by one)

    @property
    def url(self) -> str:
        """The endpoint in use (never print it: use `redact`)."""
        return self.endpoints.current

    async def post(self, body: Any) -> Any:
        """POST a raw JSON-RPC body under the failover policy; the decoded answer."""
        return await self.endpoints.arun(lambda url: self.transport.post(url, body))

    async def call(self, method: str, params: list | None = None) -> Any:
        """One call's result; raises `RpcError` on an error answer."""
        self.calls[method] += 1
        return decode_call(method, await self.post(encode_call(next(self._ids), method, params)))

    async def batch(self, calls: Calls) -> list[Any]:
        """Results in order; an entry that failed is an `RpcError` instance (not raised)."""
        if not calls:
            return []
        first = next(self._ids) * 1000
        self.calls.update(m for m, _ in calls)
        return decode_batch(first, calls, await self.post(encode_batch(first, calls)))

    async def close(self) -> None:
        """Close the transport's connections."""
        await self.transport.close()
