"""Shared fixtures: a real anvil node on a free loopback port (stopped by PID), private homes, Redis prefix."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = ROOT / "node_modules" / ".bin" / "anvil"

# anvil's well-known dev mnemonic; account 0 is the default deployer/operator, account 1 is the seed's leader.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AnvilNode:
    """A real anvil process owned by one test session; stopped by its own PID."""

    def __init__(self, chain_id: int = 137, home: Path | None = None):
        self.port = free_port()
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        env = dict(os.environ)
        if home is not None:
            env["HOME"] = str(home)  # anvil keeps old states under ~/.foundry
        self.proc = subprocess.Popen(
            [str(ANVIL_BIN), "--port", str(self.port), "--host", "127.0.0.1",
             "--chain-id", str(chain_id), "--prune-history", "1000", "--silent",
             "--accounts", "10", "--balance", "1000000", "--code-size-limit", "100000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("anvil did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def anvil(tmp_path_factory):
    """One anvil (chain id 137) for the whole session; tests isolate with snapshot/revert or fresh deploys."""
    node = AnvilNode(home=tmp_path_factory.mktemp("anvil-home"))
    yield node
    node.stop()


@pytest.fixture
def fresh_anvil(tmp_path):
    """A private anvil for one test (use when a test mutates global chain state)."""
    node = AnvilNode(home=tmp_path)
    yield node
    node.stop()


@pytest.fixture
def w3(anvil):
    from web3 import Web3

    return Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))


@pytest.fixture
def redis_prefix():
    """A private key prefix on the machine's Redis; every key under it is deleted afterwards."""
    import redis

    prefix = f"ct-test-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis(host="127.0.0.1", port=6379)
    yield prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.fixture
def ct_home(tmp_path, monkeypatch):
    """A private COPYTRADE_HOME so tests never touch each other's state."""
    home = tmp_path / "ct-home"
    home.mkdir()
    monkeypatch.setenv("COPYTRADE_HOME", str(home))
    return home


# --- the fault suite's session-wide summary (tests/faults/ledger.py; tests/faults and the scale-out faults add
# to it) -------------------------------------------------------------------------------------------------------
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from tests.faults.ledger import LEDGER

    if not LEDGER["faults"] and not LEDGER["jobs"]:
        return
    kinds = sorted(set(LEDGER["kinds"]))
    terminalreporter.write_sep("=", "fault suite summary")
    terminalreporter.write_line(
        f"FAULT SUMMARY: faults injected {LEDGER['faults']}, jobs checked {LEDGER['jobs']}, "
        f"duplicates found {LEDGER['duplicates']}, losses found {LEDGER['losses']}"
        + (f"  ({', '.join(kinds)})" if kinds else ""))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    from tests.faults.ledger import LEDGER

    if LEDGER["duplicates"] or LEDGER["losses"]:
        session.exitstatus = 1
