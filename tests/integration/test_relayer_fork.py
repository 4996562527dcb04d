"""`fork up` starts the local relayer, records it, `fork status` shows it, `fork down` stops it by PID; the
unmodified SDK deploys a deposit wallet through it and the local CLOB's auth (subprocesses, private home)."""
from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from eth_account import Account

from copytrade_cli.chain.node import pid_alive
from copytrade_cli.polymarket.wallets import deposit_wallet_address

from .test_fork_cli import ct

pytestmark = pytest.mark.timeout(300)


def test_fork_up_runs_the_relayer_and_down_stops_it(tmp_path):
    up = ct(tmp_path, "--json", "fork", "up")
    assert up.returncode == 0, up.stderr
    report = json.loads(up.stdout)
    steps = [s["step"] for s in report["steps"]]
    assert "relayer" in steps and steps.index("relayer") < steps.index("fleet")  # the fleet's wallets need it
    st = json.loads(ct(tmp_path, "--json", "fork", "status").stdout)
    try:
        assert st["relayer_url"] and pid_alive(st["relayer_pid"])
        assert st["addresses"]["Deposit-wallet factory"] == "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07"
        human = ct(tmp_path, "fork", "status").stdout
        assert f"local relayer: {st['relayer_url']} (PID {st['relayer_pid']})" in human
        from polymarket import SecureClient
        from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
        from polymarket.auth import RelayerApiKey
        from web3 import Web3

        env = create_environment(name="local", config=replace(
            PRODUCTION_CONFIG, clob_url=st["clob_url"], relayer_url=st["relayer_url"], rpc_url=st["rpc_url"],
            relayer_poll_frequency_ms=100))
        acct = Account.create()
        client = SecureClient.create(private_key=acct.key.hex(), environment=env,
                                     api_key=RelayerApiKey(key="local", address=acct.address))
        assert client.wallet == deposit_wallet_address(acct.address)
        assert len(Web3(Web3.HTTPProvider(st["rpc_url"])).eth.get_code(client.wallet)) == 146
    finally:
        down = ct(tmp_path, "fork", "down")
    assert down.returncode == 0
    assert f"and local relayer (PID {st['relayer_pid']})" in down.stdout
    deadline = time.time() + 5
    while time.time() < deadline and pid_alive(st["relayer_pid"]):
        time.sleep(0.1)
    assert not pid_alive(st["relayer_pid"])
