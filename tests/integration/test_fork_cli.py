"""`copytrade fork up|status|down` and the demo as an operator runs them (subprocesses, private homes)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from copytrade_cli.chain.node import pid_alive

pytestmark = pytest.mark.timeout(300)
USDC = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
CTF = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
PUSD = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"
WHALE = "0xe7804c37c13166fF0b37F5aE0BB07A3aEbb6e245"
ERC20 = [{"type": "function", "name": "balanceOf", "stateMutability": "view",
          "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]}]


def ct(home: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, COPYTRADE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "copytrade_cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _fork_roundtrip(home: Path, node: str) -> dict:
    up = ct(home, "--json", "fork", "up", "--node", node)
    assert up.returncode == 0, up.stderr
    report = json.loads(up.stdout)
    st = json.loads(ct(home, "--json", "fork", "status").stdout)
    try:
        assert st["running"] and st["chain_id"] == 137 and st["kind"] == node
        w3 = Web3(Web3.HTTPProvider(st["rpc_url"]))
        for addr in (USDC, PUSD, CTF, EXCHANGE_V2):
            assert len(w3.eth.get_code(addr)) > 0, f"nothing planted at {addr}"
        usdc = w3.eth.contract(address=USDC, abi=ERC20)
        pusd = w3.eth.contract(address=PUSD, abi=ERC20)
        proxy = st["addresses"]["Operator proxy"]
        # the proxy holds pUSD: the whale's USDC.e wrapped through the onramp (LIVE-2026 §7)
        assert pusd.functions.balanceOf(proxy).call() == 1000 * 10**6
        assert usdc.functions.balanceOf(proxy).call() == 0
        assert usdc.functions.balanceOf(WHALE).call() > 10**12
        workers = json.loads(ct(home, "--json", "state", "info").stdout)["tables"]["workers"]
        assert workers == 20
        from copytrade_cli.chain.accounts import worker_accounts
        from copytrade_cli.settings import Settings

        for wk in worker_accounts(Settings(COPYTRADE_HOME=str(home))):
            assert w3.eth.get_balance(wk.address) >= 10**18, "worker without gas"
        # a second fork up in the same home refuses, changing nothing
        again = ct(home, "fork", "up")
        assert again.returncode == 4 and "already runs" in again.stderr
    finally:
        down = ct(home, "--json", "fork", "down")
    d = json.loads(down.stdout)
    assert d["stopped"] is True
    deadline = time.time() + 5
    pids = [st["pid"], st["clob_pid"], st.get("relayer_pid")]
    while time.time() < deadline and any(p and pid_alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(p and pid_alive(p) for p in pids), "fork down left a process behind"
    assert ct(home, "fork", "status").returncode == 4
    return report


def test_fork_up_status_down_anvil(tmp_path):
    report = _fork_roundtrip(tmp_path, "anvil")
    print(f"fork up (anvil) to a funded proxy: {report['seconds']} s")


@pytest.mark.slow
@pytest.mark.hardhat
def test_fork_up_status_down_hardhat(tmp_path):
    report = _fork_roundtrip(tmp_path, "hardhat")
    print(f"fork up (hardhat) to a funded proxy: {report['seconds']} s")


def test_bad_inputs_change_nothing(tmp_path):
    bad = ct(tmp_path, "fork", "up", "--node", "geth")
    assert bad.returncode == 4 and bad.stderr.strip() == "Error: unknown node kind 'geth': use anvil or hardhat"
    assert json.loads(ct(tmp_path, "--json", "fork", "status").stdout) == {"running": False}
    bad = ct(tmp_path, "deploy", "executor", "--network", "polygon:moon")
    assert bad.returncode == 2 and "unknown network 'polygon:moon'" in bad.stderr
    dead = ct(tmp_path, "deploy", "executor", "--network", "polygon:mainnet", "--yes")
    assert dead.returncode == 4 and "COPY_TRADING_RPC_URL" in dead.stderr


@pytest.mark.slow
def test_demo_passes_from_a_fresh_home(tmp_path):
    t0 = time.time()
    res = ct(tmp_path, "demo", timeout=280)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    out = res.stdout
    for needle in ("Signal Sent!", "SIGNAL DETECTED", "Dispatching", "Pull Funds", "Place Order", "Push",
                   "Check Buffer", "Reimburse", "Job Complete", "Demo PASSED"):
        assert needle in out, f"{needle!r} missing from the demo output"
    print(f"demo wall time: {time.time() - t0:.1f} s")
    assert json.loads(ct(tmp_path, "--json", "fork", "status").stdout)["running"] is False
