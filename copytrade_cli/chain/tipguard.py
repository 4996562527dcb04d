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

    # ---- the proxy ------------------------------------------------------------------------------
    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r = up_w = None
        try:
            while True:
                try:
                    head, headers, body = await _read_message(reader, request=True)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if up_w is None:
                    up_r, up_w = await asyncio.open_connection("127.0.0.1", self.up_port)
                if b"upgrade" in headers.get(b"connection", b"").lower():
                    up_w.write(head + body)
                    await _pipe_both(reader, writer, up_r, up_w)
                    return
                if _SEND in body:
                    answer = await self._checked(body, up_r, up_w, head)
                    if answer is not None:
                        writer.write(_response(answer, headers))
                        await writer.drain()
                        if headers.get(b"connection", b"").lower() == b"close":
                            return
                        continue
                up_w.write(head + body)
                await up_w.drain()
                rhead, rheaders, rbody = await _read_message(up_r)
                writer.write(rhead + rbody)
                await writer.drain()
                if rheaders.get(b"connection", b"").lower() == b"close" or \
                        headers.get(b"connection", b"").lower() == b"close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            return
        finally:
            for w in (writer, up_w):
                if w is not None:
                    w.close()

    async def _checked(self, body: bytes, up_r, up_w, head: bytes) -> bytes | None:
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
            up_w.write(_with_length(head, len(fwd)) + fwd)
            await up_w.drain()
            _, _, rbody = await _read_message(up_r)
            for a in json.loads(rbody):
                answers[json.dumps(a.get("id"))] = a
        out = [b if b is not None else answers.get(json.dumps(r.get("id"))) for r, b in zip(req, bad)]
        return json.dumps(out).encode()


def _with_length(head: bytes, n: int) -> bytes:
    lines = [ln for ln in head.split(b"\r\n") if ln and not ln.lower().startswith(b"content-length:")
             and not ln.lower().startswith(b"transfer-encoding:")]
    return b"\r\n".join(lines + [b"Content-Length: " + str(n).encode()]) + b"\r\n\r\n"


def _response(body: bytes, req_headers: dict) -> bytes:
    close = req_headers.get(b"connection", b"").lower() == b"close"
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


async def _pipe_both(cr, cw, ur, uw) -> None:
    async def pipe(r, w):
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    await asyncio.gather(pipe(cr, uw), pipe(ur, cw))


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


async def serve(listen_port: int, upstream_port: int, min_tip_wei: int, node_cmd: list[str]) -> int:
    """Start the node, serve until a signal or the node exits; returns the exit code."""
    node = subprocess.Popen(node_cmd, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    guard = Guard(upstream_port, min_tip_wei)
    server = await asyncio.start_server(guard.handle, "127.0.0.1", listen_port, backlog=1024)
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
