"""Batched chain reads: many `eth_call` / `eth_getBalance` / `eth_getCode` in one JSON-RPC batch.

web3's own `batch_requests()` fails the whole batch when one call reverts; readiness and migration read
hundreds of values where one bad address must only spoil its own answer. A failed read is `FAILED`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

FAILED: Any = type("Failed", (), {"__repr__": lambda self: "FAILED", "__bool__": lambda self: False})()
"""The value of a read that reverted, returned nothing decodable, or got no answer."""

CHUNK = 400  # requests per HTTP batch: well under node limits (anvil and public RPCs take 1000)


@dataclass(frozen=True)
class Read:
    """One JSON-RPC read and how to decode its result."""

    method: str
    params: list
    decode: Callable[[Any], Any]


def call(fn) -> Read:
    """A read of a bound web3 contract function (`c.functions.name(*args)`)."""
    from eth_abi import decode

    types = [o["type"] for o in fn.abi.get("outputs", [])]
    data = fn._encode_transaction_data()

    def _decode(raw: str) -> Any:
        out = decode(types, bytes.fromhex(raw[2:]))
        return out[0] if len(out) == 1 else out

    return Read("eth_call", [{"to": fn.address, "data": data}, "latest"], _decode)


@functools.lru_cache(maxsize=256)
def _selector(signature: str) -> tuple[bytes, tuple[str, ...]]:
    from eth_utils import keccak

    inputs = signature[signature.index("(") + 1:-1]
    return keccak(text=signature)[:4], tuple(t for t in inputs.split(",") if t)


def view(to: str, signature: str, *args: Any, returns: str = "bool") -> Read:
    """A read of a view function by its signature, e.g. `view(ex, "isWorker(address)", a)`; encoded with
    eth_abi directly (web3's contract layer costs ~1 ms per call, which adds up over a fleet)."""
    from eth_abi import decode, encode

    selector, types = _selector(signature)
    data = "0x" + (selector + encode(list(types), list(args))).hex()
    return Read("eth_call", [{"to": to, "data": data}, "latest"],
                lambda raw: decode([returns], bytes.fromhex(raw[2:]))[0])


def balance(address: str) -> Read:
    """A read of the native (POL) balance in wei."""
    return Read("eth_getBalance", [address, "latest"], lambda raw: int(raw, 16))


def has_code(address: str) -> Read:
    """A read of whether a contract lives at `address`."""
    return Read("eth_getCode", [address, "latest"], lambda raw: len(raw) > 2)


def read_many(w3, reads: Sequence[Read]) -> list[Any]:
    """Run `reads` in as few round trips as possible; each result is its decoded value or FAILED."""
    from .rpc import chain_io

    io = chain_io(w3)
    if io is None:
        return _read_many_web3(w3.provider, reads)
    out: list[Any] = []
    for i in range(0, len(reads), CHUNK):
        chunk = reads[i:i + CHUNK]
        try:
            answers = io.rpc.batch([(r.method, r.params) for r in chunk])
        except Exception:  # noqa: BLE001 — no endpoint answered: every read of the chunk failed
            answers = [None] * len(chunk)
        out.extend(_decoded_result(r, a) for r, a in zip(chunk, answers))
    return out


def _decoded_result(r: Read, raw: Any) -> Any:
    if raw is None or isinstance(raw, Exception):
        return FAILED
    return _decoded(r, {"result": raw})


def _read_many_web3(provider, reads: Sequence[Read]) -> list[Any]:
    """`read_many` over a provider that is not plain HTTP (web3's own batching, else one by one)."""
    out: list[Any] = []
    batching = hasattr(provider, "make_batch_request")
    for i in range(0, len(reads), CHUNK):
        chunk = reads[i:i + CHUNK]
        if batching and len(chunk) > 1:
            try:
                answers = provider.make_batch_request([(r.method, r.params) for r in chunk])
            except Exception:  # noqa: BLE001 — a provider without batch support: read one by one
                answers = [_single(provider, r) for r in chunk]
        else:
            answers = [_single(provider, r) for r in chunk]
        if isinstance(answers, dict):  # a batch refused as a whole comes back as one error object
            answers = [answers] * len(chunk)
        by_pos = _in_order(answers, len(chunk))
        for r, ans in zip(chunk, by_pos):
            out.append(_decoded(r, ans))
    return out


def _single(provider, r: Read) -> dict:
    try:
        return provider.make_request(r.method, r.params)
    except Exception as exc:  # noqa: BLE001 — one failed read spoils only itself
        return {"error": {"message": str(exc)}}


def _in_order(answers: list, n: int) -> list:
    # NOTE: JSON-RPC lets a server answer a batch in any order; web3 re-sorts by id, but a raw
    # provider may not. Sort by id when every answer has one, else trust the order given.
    if all(isinstance(a, dict) and isinstance(a.get("id"), int) for a in answers) and len(answers) == n:
        return sorted(answers, key=lambda a: a["id"])
    return list(answers) + [{"error": {"message": "no answer"}}] * (n - len(answers))


def _decoded(r: Read, ans: Any) -> Any:
    if not isinstance(ans, dict) or ans.get("error") or ans.get("result") is None:
        return FAILED
    raw = ans["result"]
    if r.method == "eth_call" and raw in ("0x", ""):
        return FAILED
    try:
        return r.decode(raw)
    except Exception:  # noqa: BLE001 — undecodable (an EOA, a different ABI): only this read fails
        return FAILED


def erc20_balances(w3, token: str, holders: Sequence[str]) -> list[int]:
    """`token.balanceOf(h)` for every holder in ONE plain JSON-RPC batch (the supervisor's hot path: web3's
    contract call stack cost ~15% of its Python CPU under load); raises ChainError if any read failed."""
    from ..errors import ChainError
    from .rpc import chain_io

    if not holders:
        return []
    io = chain_io(w3)
    if io is None:
        got = read_many(w3, [view(token, "balanceOf(address)", h, returns="uint256") for h in holders])
        if any(g is FAILED for g in got):
            raise ChainError(f"balanceOf on {token} failed")
        return [int(g) for g in got]
    got = io.rpc.batch([("eth_call", [{"to": token, "data": "0x70a08231" + h[2:].lower().rjust(64, "0")}, "latest"])
                        for h in holders])
    bad = [g for g in got if isinstance(g, Exception) or g in (None, "0x")]
    if bad:
        raise ChainError(f"balanceOf on {token} failed: {bad[0]}")
    return [int(g, 16) for g in got]
