"""The one failover policy of chain I/O (chain.rpc), against real loopback sockets: a dead endpoint at start,
one dying mid-run, one coming back; RPC errors vs transport errors; URLs never shown beyond scheme and host.

`StubNode` is a stand-in JSON-RPC endpoint (a tiny HTTP/1.1 keep-alive server answering with its own name),
so that an endpoint can be killed and revived on its port in milliseconds, which anvil cannot.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from copytrade_cli.chain.node import free_port
from copytrade_cli.chain.rpc import (BatchRefused, Endpoints, JsonRpc, RpcError, TransportError, chain_io, connect,
                                     redact)
from copytrade_cli.localworld.clob_chain import AsyncRpc
from copytrade_cli.supervisor.detect import _Rpc


class StubNode:
    """A JSON-RPC endpoint on 127.0.0.1 that answers `web3_clientVersion` with its name, `eth_blockNumber`
    with 0x10, and `fail_me` with an error; `mode` "502" answers an HTTP 502 page instead."""

    def __init__(self, name: str, port: int | None = None, path: str = "/"):
        self.name, self.port, self.path = name, port or free_port(), path
        self.mode = "ok"
        self.requests = 0
        self._server: ThreadingHTTPServer | None = None
        self._conns: set[socket.socket] = set()
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def _answer(self, req: dict) -> dict:
        if req["method"] == "fail_me":
            return {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32000, "message": f"{self.name} says no"}}
        result = self.name if req["method"] == "web3_clientVersion" else "0x10"
        return {"jsonrpc": "2.0", "id": req["id"], "result": result}

    def start(self) -> None:
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real node

            def setup(self):
                super().setup()
                node._conns.add(self.connection)

            def do_POST(self):  # noqa: N802 — http.server's name
                node.requests += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if node.mode == "502":
                    raw, status, ctype = b"<html>bad gateway</html>", 502, "text/html"
                else:
                    out = [node._answer(r) for r in body] if isinstance(body, list) else node._answer(body)
                    raw, status, ctype = json.dumps(out).encode(), 200, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def kill(self) -> None:
        """Stop listening AND drop the open keep-alive connections (a dead node, not a draining one)."""
        self._server.shutdown()
        self._server.server_close()
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._conns.clear()

    revive = start


@pytest.fixture
def nodes():
    made: list[StubNode] = []

    def make(name: str, **kw) -> StubNode:
        made.append(StubNode(name, **kw))
        return made[-1]

    yield make
    for n in made:
        try:
            n.kill()
        except Exception:  # noqa: BLE001 — already dead
            pass


def dead_url(path: str = "/") -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def test_dead_endpoint_at_start_is_skipped(nodes):
    live = nodes("B")
    rpc = JsonRpc([dead_url(), live.url], timeout=2)
    assert rpc.call("web3_clientVersion") == "B"
    assert rpc.endpoints.current == live.url and rpc.endpoints.failovers == 1
    assert rpc.call("web3_clientVersion") == "B" and rpc.endpoints.failovers == 1  # it stays there


def test_endpoint_dying_mid_run_fails_over_within_the_call(nodes):
    a, b = nodes("A"), nodes("B")
    rpc = JsonRpc([a.url, b.url], timeout=2)
    assert rpc.call("web3_clientVersion") == "A"  # keep-alive connection to A is open now
    a.kill()
    assert rpc.call("web3_clientVersion") == "B"
    assert rpc.endpoints.current == b.url and rpc.endpoints.failovers == 1


def test_endpoint_that_came_back_is_used_again_when_the_next_one_fails(nodes):
    a, b = nodes("A"), nodes("B")
    rpc = JsonRpc([a.url, b.url], timeout=2)
    a.kill()
    assert rpc.call("web3_clientVersion") == "B"
    a.revive()
    assert rpc.call("web3_clientVersion") == "B"  # sticky: no probing of the primary
    b.kill()
    assert rpc.call("web3_clientVersion") == "A"  # round robin: back to the first
    assert rpc.endpoints.failovers == 2


def test_rpc_error_is_an_answer_not_a_reason_to_fail_over(nodes):
    a, b = nodes("A"), nodes("B")
    rpc = JsonRpc([a.url, b.url], timeout=2)
    with pytest.raises(RpcError, match="fail_me: A says no") as exc:
        rpc.call("fail_me")
    assert not isinstance(exc.value, TransportError)
    assert rpc.endpoints.current == a.url and rpc.endpoints.failovers == 0
    got = rpc.batch([("web3_clientVersion", []), ("fail_me", [])])
    assert got[0] == "A" and isinstance(got[1], RpcError)


def test_http_error_page_counts_as_no_answer(nodes):
    a, b = nodes("A"), nodes("B")
    a.mode = "502"
    rpc = JsonRpc([a.url, b.url], timeout=2)
    assert rpc.call("web3_clientVersion") == "B" and rpc.endpoints.failovers == 1


def test_every_endpoint_dead_raises_transport_error_without_the_url_path():
    urls = [dead_url("/v2/SECRET-KEY-1"), dead_url("/rpc?apikey=SECRET-KEY-2")]
    rpc = JsonRpc(urls, timeout=2)
    with pytest.raises(TransportError) as exc:
        rpc.call("eth_blockNumber")
    assert "SECRET" not in str(exc.value) and "127.0.0.1" in str(exc.value)
    assert rpc.endpoints.failovers == 2  # each failed endpoint was moved off: the next call starts over at the first
    assert redact(urls[0]).endswith("/...") and "SECRET" not in redact(urls[1])


def test_detection_moves_and_raises_so_the_channel_restarts(nodes):
    a, b = nodes("A"), nodes("B")
    rpc = _Rpc([a.url, b.url])
    assert rpc.call("web3_clientVersion") == "A"
    a.kill()
    with pytest.raises(TransportError):
        rpc.call("web3_clientVersion")  # the filter it polled lived on A: the loop must start over
    assert rpc.call("web3_clientVersion") == "B"
    assert rpc.batch([("web3_clientVersion", []), ("fail_me", [])]) == ["B", None]


def test_web3_and_the_plain_client_share_one_policy(nodes):
    a, b = nodes("A"), nodes("B")
    w3 = connect([a.url, b.url], timeout=2)
    io = chain_io(w3)
    assert io is chain_io(w3) and io.endpoints is w3.provider.endpoints
    assert w3.eth.block_number == 16 and w3.provider.endpoint_uri == a.url
    a.kill()
    assert io.rpc.call("web3_clientVersion") == "B"  # the plain client failed over ...
    assert w3.provider.endpoint_uri == b.url and w3.provider.failovers == 1  # ... and web3 follows
    b.kill()
    a.revive()
    assert w3.eth.block_number == 16 and w3.provider.endpoint_uri == a.url  # web3 failed over, back to A
    assert io.rpc.url == a.url


def test_web3_error_keeps_its_type_and_loses_the_url_path():
    w3 = connect([dead_url("/v2/SECRET-KEY-3"), dead_url("/v2/SECRET-KEY-4")], timeout=2)
    with pytest.raises(requests.ConnectionError) as exc:
        w3.eth.block_number  # noqa: B018
    assert "SECRET" not in str(exc.value)
    assert "SECRET" not in str(w3.provider)


def test_async_client_same_policy(nodes):
    a, b = nodes("A"), nodes("B")

    async def run():
        rpc = AsyncRpc([dead_url(), a.url, b.url], timeout=2)
        try:
            first = await rpc.call("web3_clientVersion")  # dead at start: skipped
            a.kill()
            second = await rpc.batch([("web3_clientVersion", []), ("eth_blockNumber", [])])  # A died mid-run
            with pytest.raises(RpcError, match="B says no"):
                await rpc.batch([("fail_me", [])])  # a failed entry raises (never read as zero)
            return first, second, rpc.endpoints.failovers, dict(rpc.calls)
        finally:
            await rpc.close()

    first, second, failovers, calls = asyncio.run(run())
    assert first == "A" and second == ["B", "0x10"] and failovers == 2
    assert calls == {"web3_clientVersion": 2, "eth_blockNumber": 1, "fail_me": 1}


def test_batch_refused_as_a_whole():
    from copytrade_cli.chain.rpc.client import decode_batch

    got = decode_batch(1, [("a", []), ("b", [])], {"jsonrpc": "2.0", "id": None, "error": {"message": "no batches"}})
    assert all(isinstance(g, BatchRefused) for g in got) and str(got[0]) == "batch: no batches"


def test_endpoints_keep_order_and_drop_duplicates():
    e = Endpoints(["http://a", "http://b", "http://a"])
    assert e.urls == ["http://a", "http://b"] and e.current == "http://a" and e.tries == 2
    assert not Endpoints("http://a").fail_over("http://a")  # nowhere else to go
    assert Endpoints(["http://a", "http://b"], retry=False).tries == 1
