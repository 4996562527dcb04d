"""The node's tip floor: a thin loopback JSON-RPC guard in front of anvil / hardhat that refuses, as Polygon's
bor does at pool admission (LIVE-2026 §16), every transaction tipping under the minimum:

    transaction gas price below minimum: gas tip cap X, minimum needed 25000000000

Run as the node's parent process (`chain/node.py` starts it): it spawns the node on an internal port, listens on
the node's public port and forwards everything byte for byte, except `eth_sendRawTransaction` /
`eth_sendTransaction` tipping under the floor, which it answers itself with bor's error (JSON-RPC code -32000).
The tip: an EIP-1559 (type 2/4) transaction's `maxPriorityFeePerGas`; a legacy / type-1 `gasPrice` counts
`gasPrice - baseFee` (stricter than bor, which compares gasPrice itself; docs/live-assumptions.md); an
`eth_sendTransaction` without fee fields gets what the node would fill in (its `eth_maxPriorityFeePerGas`).
WebSocket upgrades are piped through unchecked (subscriptions; transactions sent over ws bypass the floor).
Responses are piped back byte for byte (asyncio protocols, no per-response parsing).

Stopping it (SIGTERM/SIGINT) stops the node; if it is killed outright the node gets SIGTERM from the kernel
(PR_SET_PDEATHSIG). Fast path: a request whose body does not mention `eth_send` is not parsed at all.
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import signal
import subprocess
import sys
import time

GWEI = 10**9
DEFAULT_MIN_TIP_GWEI = 25.0
REFUSAL = "transaction gas price below minimum: gas tip cap {tip}, minimum needed {floor}"
_SEND = b"eth_send"


def refusal_text(tip: int, floor: int) -> str:
    """bor's pool-admission error for a tip under the floor."""
    return REFUSAL.format(tip=tip, floor=floor)


def raw_tx_tip(raw: bytes, base_fee: int) -> int:
    """The tip of a signed raw transaction (see the module doc for legacy / type-1)."""
    import rlp

    if not raw:
        raise ValueError("empty transaction")
    kind = raw[0]
    if kind >= 0xC0:  # legacy: [nonce, gasPrice, ...]
        return _int(rlp.decode(raw)[1]) - base_fee
    fields = rlp.decode(raw[1:])
    if kind == 0x01:  # [chainId, nonce, gasPrice, ...]
        return _int(fields[2]) - base_fee
    if kind == 0x03 and isinstance(fields[0], list):  # blob tx in network form: [tx, blobs, commitments, proofs]
        fields = fields[0]
    return _int(fields[2])  # types 2/3/4: [chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, ...]


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def _q(v) -> int:
    return int(v, 16) if isinstance(v, str) else int(v)


class Guard:
    """The proxy: one upstream connection per client connection (keeps each client's request order)."""

    def __init__(self, upstream_port: int, min_tip_wei: int):
        self.up_port = upstream_port
        self.floor = int(min_tip_wei)
        self._base = (0.0, 0)
        self._suggested = (0.0, 0)

    # ---- upstream reads the checks need (cached briefly) ----------------------------------------
    async def _call(self, method: str, params: list) -> object:
        r, w = await asyncio.open_connection("127.0.0.1", self.up_port)
        try:
            body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
            w.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            await w.drain()
            _, _, payload = await _read_message(r)
            return json.loads(payload).get("result")
        finally:
            w.close()

    async def base_fee(self) -> int:
        at, value = self._base
        if time.monotonic() - at > 0.5:
            block = await self._call("eth_getBlockByNumber", ["latest", False]) or {}
            value = _q(block.get("baseFeePerGas") or 0)
            self._base = (time.monotonic(), value)
        return value

    async def suggested_tip(self) -> int:
        at, value = self._suggested
        if time.monotonic() - at > 2.0:
            value = _q(await self._call("eth_maxPriorityFeePerGas", []) or 0)
            self._suggested = (time.monotonic(), value)
        return value

    async def tip_of(self, req: dict) -> int | None:
        """The tip of one JSON-RPC request if it sends a transaction, else None."""
        method, params = req.get("method"), req.get("params") or []
        if method == "eth_sendRawTransaction" and params:
            raw = bytes.fromhex(str(params[0]).removeprefix("0x"))
            kind = raw[:1]
            base = await self.base_fee() if kind and (kind[0] >= 0xC0 or kind[0] == 1) else 0
            return raw_tx_tip(raw, base)
        if method == "eth_sendTransaction" and params and isinstance(params[0], dict):
            tx = params[0]
            if tx.get("maxPriorityFeePerGas") is not None:
                return _q(tx["maxPriorityFeePerGas"])
            if tx.get("gasPrice") is not None:
                return _q(tx["gasPrice"]) - await self.base_fee()
            return await self.suggested_tip()
        return None

    async def refusal(self, req: dict) -> dict | None:
        """bor's error response for `req` if it tips under the floor, else None."""
        try:
            tip = await self.tip_of(req)
        except Exception:  # noqa: BLE001 - undecodable: let the node give its own error
            return None
        if tip is None or tip >= self.floor:
            return None
        return {"jsonrpc": "2.0", "id": req.get("id"),
                "error": {"code": -32000, "message": refusal_text(max(tip, 0), self.floor)}}

    # ---- the proxy: see _Client (requests are framed and checked; responses are piped back raw) ---------
    async def checked(self, body: bytes, head: bytes) -> bytes | None:
        """None: forward as is; else the JSON body to answer (refusals, merged with forwarded batch parts)."""
        try:
            req = json.loads(body)
        except ValueError:
            return None
        if isinstance(req, dict):
            bad = await self.refusal(req)
            return None if bad is None else json.dumps(bad).encode()
        if not isinstance(req, list):
            return None
        bad = [await self.refusal(r) if isinstance(r, dict) else None for r in req]
        if not any(bad):
            return None
        rest = [r for r, b in zip(req, bad) if b is None]
        answers: dict = {}
        if rest:
            fwd = json.dumps(rest).encode()
            r, w = await asyncio.open_connection("127.0.0.1", self.up_port)
            try:
                w.write(_with_length(head, len(fwd)) + fwd)
                await w.drain()
                _, _, rbody = await _read_message(r)
            finally:
                w.close()
            for a in json.loads(rbody):
                answers[json.dumps(a.get("id"))] = a
        out = [b if b is not None else answers.get(json.dumps(r.get("id"))) for r, b in zip(req, bad)]
        return json.dumps(out).encode()


class _Upstream(asyncio.Protocol):
    """The node side of one client connection: whatever the node answers goes straight back to the client."""

    def __init__(self, client: "_Client"):
        self.client = client
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.transport.write(data)

    def connection_lost(self, exc) -> None:
        # NOTE: the node closed (Connection: close, or an idle keep-alive timeout): close the client's side too,
        # as a server would; HTTP clients reconnect for their next request.
        self.client.transport.close()


class _Client(asyncio.Protocol):
    """One client connection. Requests are framed (Content-Length or chunked) and those mentioning `eth_send` are
    checked before they are forwarded; one request is in flight at a time per connection (HTTP/1.1 clients wait
    for a response before the next request), so the node's responses can be piped back byte for byte and the
    guard's own refusals never interleave with them. A WebSocket upgrade turns the connection into a raw pipe."""

    def __init__(self, guard: "Guard"):
        self.guard = guard
        self.buf = bytearray()
        self.up: _Upstream | None = None
        self.early: list[bytes] = []
        self.busy = False
        self.raw = False
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        asyncio.ensure_future(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, self.up = await loop.create_connection(lambda: _Upstream(self), "127.0.0.1", self.guard.up_port)
        except OSError:
            self.transport.close()
            return
        if self.closed:
            self.up.transport.close()
            return
        for data in self.early:
            self.up.transport.write(data)
        self.early = []
        self._next()

    def _send_up(self, data: bytes) -> None:
        if self.up is None:
            self.early.append(data)
        else:
            self.up.transport.write(data)

    def data_received(self, data: bytes) -> None:
        if self.raw:
            self._send_up(data)
            return
        self.buf += data
        if self.up is not None:
            self._next()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.up is not None and self.up.transport is not None:
            self.up.transport.close()

    def _next(self) -> None:
        """Handle every complete request in the buffer (stop at a check in progress)."""
        while not self.busy and not self.raw:
            framed = _frame_request(self.buf)
            if framed is None:
                return
            head, body, used = framed
            del self.buf[:used]
            low = head.lower()
            if b"\r\nupgrade:" in low:
                self.raw = True
                self._send_up(head + body + bytes(self.buf))
                self.buf.clear()
                return
            if _SEND in body:
                self.busy = True
                asyncio.ensure_future(self._check(head, body, b"\r\nconnection: close" in low))
                return
            self._send_up(head + body)

    async def _check(self, head: bytes, body: bytes, close: bool) -> None:
        try:
            answer = await self.guard.checked(body, head)
        except Exception:  # noqa: BLE001 - the node's own answer is the safe fallback
            answer = None
        if self.closed:
            return
        if answer is None:
            self._send_up(head + body)
        else:
            self.transport.write(_response(answer, close))
            if close:
                self.transport.close()
                return
        self.busy = False
        self._next()


def _frame_request(buf: bytearray) -> tuple[bytes, bytes, int] | None:
    """(head, body, bytes used) of the first complete request in `buf`, or None if it is incomplete. A chunked
    body is re-framed with a Content-Length."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end + 4])
    low = head.lower()
    i = low.find(b"\r\ncontent-length:")
    if i >= 0:
        n = int(low[i + 17:low.index(b"\r\n", i + 2)])
        if len(buf) < end + 4 + n:
            return None
        return head, bytes(buf[end + 4:end + 4 + n]), end + 4 + n
    if b"\r\ntransfer-encoding: chunked" not in low:
        return head, b"", end + 4
    pos, parts = end + 4, []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            fin = buf.find(b"\r\n", eol + 2)
            if fin < 0:
                return None
            body = b"".join(parts)
            return _with_length(head, len(body)), body, fin + 2
        if len(buf) < eol + 2 + size + 2:
            return None
        parts.append(bytes(buf[eol + 2:eol + 2 + size]))
        pos = eol + 2 + size + 2


def _with_length(head: bytes, n: int) -> bytes:
    lines = [ln for ln in head.split(b"\r\n") if ln and not ln.lower().startswith(b"content-length:")
             and not ln.lower().startswith(b"transfer-encoding:")]
    return b"\r\n".join(lines + [b"Content-Length: " + str(n).encode()]) + b"\r\n\r\n"


def _response(body: bytes, close: bool) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
            (b"\r\nConnection: close" if close else b"") + b"\r\n\r\n" + body)


async def _read_message(reader: asyncio.StreamReader, request: bool = False) -> tuple[bytes, dict, bytes]:
    """One HTTP/1.1 message: (head bytes as received, lower-cased headers, body). Chunked bodies are
    re-framed with a Content-Length so the peer reads them the same way."""
    head = await reader.readuntil(b"\r\n\r\n")
    headers: dict[bytes, bytes] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    if b"content-length" in headers:
        body = await reader.readexactly(int(headers[b"content-length"]))
    elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
        head = _with_length(head, len(body))
    elif request or head.split(b" ", 2)[1:2] in ([b"204"], [b"304"]) or b"upgrade" in headers.get(b"connection", b"").lower():
        body = b""
    else:
        body = await reader.read()  # close-delimited
        head = _with_length(head, len(body))
    return head, headers, body


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


async def serve(listen_port: int, upstream_port: int, min_tip_wei: int, node_cmd: list[str]) -> int:
    """Start the node, serve until a signal or the node exits; returns the exit code."""
    node = subprocess.Popen(node_cmd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    guard = Guard(upstream_port, min_tip_wei)
    server = await asyncio.get_running_loop().create_server(lambda: _Client(guard), "127.0.0.1", listen_port,
                                                            backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def watch_node():
        while node.poll() is None:
            await asyncio.sleep(0.2)
        stop.set()

    watcher = asyncio.create_task(watch_node())
    await stop.wait()
    watcher.cancel()
    server.close()
    if node.poll() is None:
        node.terminate()
        try:
            node.wait(timeout=8)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()
    return node.returncode or 0


def main(argv: list[str] | None = None) -> int:
    """`python -m copytrade_cli.chain.tipguard --listen P --upstream Q --min-tip-gwei 25 -- NODE ARGS...`"""
    ap = argparse.ArgumentParser(prog="tipguard")
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--upstream", type=int, required=True)
    ap.add_argument("--min-tip-gwei", type=float, default=DEFAULT_MIN_TIP_GWEI)
    ap.add_argument("node", nargs=argparse.REMAINDER)
    a = ap.parse_args(argv)
    cmd = a.node[1:] if a.node[:1] == ["--"] else a.node
    if not cmd:
        ap.error("the node command goes after --")
    return asyncio.run(serve(a.listen, a.upstream, int(round(a.min_tip_gwei * GWEI)), cmd))


if __name__ == "__main__":
    sys.exit(main())
