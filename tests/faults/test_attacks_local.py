"""Attack: a live chain passing as the fork. Mainnet is chain 137 like the fork, so on `polygon:local` an
endpoint from COPY_TRADING_RPC_URL(S) that is not the node `fork up` recorded would skip the real-trading switch
and readiness. Each is refused with one line, exit code 2 (ConfigError), nothing written to the state file:
(a) a second anvil on another port, (b) a non-loopback URL, (c) a loopback stub that says it is Geth on chain 137."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from copytrade_cli.chain.node import free_port, start_node, stop_pid
from copytrade_cli.errors import ConfigError

from ..integration.conftest import fork, make_settings  # noqa: F401
from .ledger import injected

pytestmark = [pytest.mark.timeout(240)]
REFUSED = "Error: polygon:local only talks to the fork node recorded by `fork up`"
COMMANDS = (["supervise", "--max-seconds", "2", "--channels", "logs"], ["proxy", "list"],
            ["verify", "readiness"], ["trade", "impersonate", "--usd", "5", "--pending-ms", "0"])


class GethStub:
    """A loopback JSON-RPC server standing in for mainnet: Geth, chain id 137, block 65M (a fake, named as one)."""

    ANSWERS = {"web3_clientVersion": "Geth/v1.14.8-stable/linux-amd64/go1.22.5", "eth_chainId": "0x89",
               "net_version": "137", "eth_blockNumber": hex(65_000_000)}

    def __init__(self):
        stub = self
        self.calls: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 — http.server's name
                req = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                reqs = req if isinstance(req, list) else [req]
                out = []
                for r in reqs:
                    stub.calls.append(r.get("method"))
                    out.append({"jsonrpc": "2.0", "id": r.get("id"), "result": stub.ANSWERS.get(r.get("method"), "0x")})
                body = json.dumps(out if isinstance(req, list) else out[0]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def second_anvil(tmp_path_factory):
    node = start_node("anvil", port=None, chain_id=137, log_dir=tmp_path_factory.mktemp("anvil2"))
    yield node.rpc_url
    stop_pid(node.pid, "anvil")


@pytest.fixture(scope="module")
def geth_stub():
    stub = GethStub()
    yield stub
    stub.close()


def _dump(fork) -> list[str]:
    con = sqlite3.connect(fork.settings.state_path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _ct(fork, args, **env):
    full = dict(os.environ, COPYTRADE_HOME=str(fork.settings.home), **env)
    for k in ("COPY_TRADING_RPC_URL", "COPY_TRADING_RPC_URLS", "COPYTRADE_NETWORK"):
        if k not in env:
            full.pop(k, None)
    return subprocess.run([sys.executable, "-m", "copytrade_cli", *args], capture_output=True, text=True,
                          env=full, timeout=120)


@pytest.mark.parametrize("which", ["second anvil", "non-loopback", "geth stub"])
def test_polygon_local_refuses_an_endpoint_that_is_not_the_fork(fork, second_anvil, geth_stub, which):
    url = {"second anvil": second_anvil, "non-loopback": "https://polygon-rpc.com/v2/SECRETKEY",
           "geth stub": geth_stub.url}[which]
    injected(f"polygon:local pointed at {which}")
    before, stub_calls = _dump(fork), len(geth_stub.calls)
    for args in COMMANDS:
        res = _ct(fork, args, COPY_TRADING_RPC_URL=url)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1, (args, res.returncode, res.stdout[-800:], res.stderr[-800:])
        assert lines[0].startswith(REFUSED) and "COPY_TRADING_RPC_URL(S)" in lines[0], lines[0]
        assert "unset COPY_TRADING_RPC_URL and COPY_TRADING_RPC_URLS" in lines[0]
        assert "SECRETKEY" not in res.stderr + res.stdout and "Signal Sent" not in res.stdout
    # also as a failover endpoint behind the real node
    res = _ct(fork, ["proxy", "list"], COPY_TRADING_RPC_URLS=f"{fork.chain.rpc_url},{url}")
    assert res.returncode == 2 and res.stderr.startswith(REFUSED), res.stderr
    assert _dump(fork) == before, "nothing is written to the state file"
    assert len(geth_stub.calls) == stub_calls, "a refused endpoint is never contacted"


def test_the_recorded_node_is_still_accepted(fork):
    from copytrade_cli.chain.network import check_dev_node, endpoint_urls

    port = fork.state.get_node().port
    s = make_settings(fork.settings.home, COPY_TRADING_RPC_URL=f"http://localhost:{port}",
                      COPY_TRADING_RPC_URLS=fork.chain.rpc_url)
    assert endpoint_urls(s, fork.state) == [f"http://localhost:{port}", fork.chain.rpc_url]
    assert "anvil" in check_dev_node(fork.chain.rpc_url).lower()
    with pytest.raises(ConfigError, match="COPY_TRADING_RPC_URL"):  # the node's port, but an API-key path
        endpoint_urls(make_settings(fork.settings.home, COPY_TRADING_RPC_URL=f"{fork.chain.rpc_url}/v2/KEY"),
                      fork.state)


def test_a_recorded_port_that_is_not_anvil_or_hardhat_is_refused(geth_stub):
    """The client check on its own (the stub cannot take the recorded port while the fork holds it)."""
    from copytrade_cli.chain.network import check_dev_node

    with pytest.raises(ConfigError, match="needs an anvil or hardhat node.*'Geth/v1.14"):
        check_dev_node(geth_stub.url)
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception, match="does not answer web3_clientVersion"):
        check_dev_node(dead)
