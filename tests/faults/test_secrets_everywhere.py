"""Secrets never leave in output, logs or world-readable files: RPC URLs carrying an API-key path
(`http://127.0.0.1:<port>/v2/SECRETKEY`, a loopback forwarder in front of a node), a Redis URL with a password and a
private key are configured; `config show`, `fork status`, `verify readiness --json` and the JSON logs of a
supervisor whose RPC endpoint dies (failover) show none of them; the files we write with addresses, keys or URLs
(state, deployed-addresses.json, health files, the node log) are 0600."""
from __future__ import annotations

import io
import json
import logging
import os
import stat
import subprocess
import sys

import pytest

from copytrade_cli.localworld.trades import leader_trade

from ..integration.conftest import RunningSupervisor, fork, make_settings  # noqa: F401
from .ledger import injected, jobs_for
from .tools import FaultProxy, setup_follow

pytestmark = [pytest.mark.timeout(240)]
KEY = "0x" + "7e57" * 16  # not a dev key: only this test knows it
SECRETS = ("SECRETKEY", "PASSW0RD", KEY[2:])


def _ct(home, *args, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("COPY_TRADING_", "COPYTRADE_", "REDIS_URL",
                                                                     "SUPERVISOR_", "TRADING_"))}
    full.update(COPYTRADE_HOME=str(home), **env)
    return subprocess.run([sys.executable, "-m", "copytrade_cli", *args], capture_output=True, text=True, env=full,
                          timeout=120)


def _clean(res) -> str:
    text = res.stdout + res.stderr
    for s in SECRETS:
        assert s not in text, f"{s} shown in {text[-1500:]}"
    return text


def _private(path) -> None:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, f"{path} is {oct(mode)}"


@pytest.fixture(scope="module")
def keyed_rpc(fork):
    fwd = FaultProxy(fork.chain.rpc_url, drop_path=True)
    yield fwd, f"{fwd.url}/v2/SECRETKEY"
    fwd.close()


def test_config_show_and_readiness_json_hide_paths_passwords_and_keys(fork, keyed_rpc):
    _, rpc = keyed_rpc
    env = {"COPYTRADE_NETWORK": "polygon:mainnet", "COPY_TRADING_RPC_URL": rpc,
           "COPY_TRADING_RPC_URLS": f"{fork.chain.rpc_url}/?apikey=SECRETKEY",
           "SUPERVISOR_REDIS_URL": "redis://:PASSW0RD@127.0.0.1:6379/0", "TRADING_PRIVATE_KEY": KEY,
           "COPYTRADE_FUNDER_PRIVATE_KEY": KEY, "COPY_TRADING_WORKER_KEYS": KEY}
    for args in (["config", "show"], ["--json", "config", "show"]):
        res = _ct(fork.settings.home, *args, **env)
        assert res.returncode == 0, res.stderr
        assert "127.0.0.1" in _clean(res)
    res = _ct(fork.settings.home, "verify", "readiness", "--json", **env)
    text = _clean(res)
    rows = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    assert rows["rpc #1"]["ok"] and rows["rpc #1"]["detail"].startswith(rpc.split("/v2/")[0] + "/... (primary)")
    assert "redis://***@127.0.0.1:6379/0" in rows["redis"]["detail"], rows["redis"]
    assert res.returncode == 8 and "PASSW0RD" not in text  # not ready: nothing of ours is recorded on mainnet


def test_fork_status_hides_the_fork_url_path_and_the_node_log_is_private(fork, keyed_rpc, tmp_path):
    _, rpc = keyed_rpc
    up = _ct(tmp_path, "fork", "up", "--fork-url", rpc)
    try:
        assert up.returncode == 0, up.stderr[-800:]
        _clean(up)
        for args in (["fork", "status"], ["--json", "fork", "status"]):
            st = _ct(tmp_path, *args)
            assert st.returncode == 0 and "127.0.0.1" in _clean(st)
        status = json.loads(_ct(tmp_path, "--json", "fork", "status").stdout)
        assert status["fork_url"] == rpc.split("/v2/")[0] + "/..."
        assert "SECRETKEY" in open(status["log"]).read(), "the node log holds the fork URL ..."
        _private(status["log"])  # ... so nobody else may read it
        _private(make_settings(tmp_path).state_path)
    finally:
        _ct(tmp_path, "fork", "down")


def test_deploy_writes_the_addresses_file_0600(fork):
    path = fork.settings.home / "deployed-addresses.json"
    if path.exists():
        path.chmod(0o644)  # as an older version left it
    res = _ct(fork.settings.home, "deploy", "executor")
    assert res.returncode == 0, res.stderr[-800:]
    _private(path)
    assert json.loads(path.read_text())["polygon:local"]["Executor"].startswith("0x")
    _private(fork.settings.state_path)


def test_supervisor_json_logs_of_a_failover_show_no_secret(fork, keyed_rpc):
    from copytrade_cli.chain.network import ChainContext
    from copytrade_cli.chain.rpc import connect_checked
    from copytrade_cli.supervisor.observe import health_dir, setup_json_logging

    proxy, token, before = setup_follow(fork, amount="2")
    fwd = FaultProxy(fork.chain.rpc_url, drop_path=True)
    rpc = f"{fwd.url}/v2/SECRETKEY"
    from eth_account import Account

    from copytrade_cli.chain.cheats import Cheats

    s = make_settings(fork.settings.home, COPYTRADE_FUNDER_PRIVATE_KEY=KEY)
    Cheats(fork.w3).set_balance(Account.from_key(KEY).address, 10**20)
    w3 = connect_checked([rpc, f"{fork.chain.rpc_url}/"], expect_chain_id=137)
    # NOTE: built by hand: polygon:local refuses any endpoint but the recorded node (test_attacks_local.py)
    chain = ChainContext(network=fork.chain.network, chain_id=137, is_local=True, w3=w3, rpc_url=rpc,
                         world=fork.world)
    chain._settings = s
    out = io.StringIO()
    root = logging.getLogger("copytrade")
    saved = (root.handlers[:], root.level, root.propagate)
    setup_json_logging(out, {"instance": "secrets-test"}, s.secret_values())
    real, fork.chain = fork.chain, chain
    try:
        sup = RunningSupervisor(fork, settings=s, channels=("mempool", "logs"))
    finally:
        fork.chain = real
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.0, price="0.5", pending_ms=0)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60)
        fwd.kill()
        injected("keyed RPC endpoint died mid-run")
        logging.getLogger("copytrade.test").warning("endpoint %s said no", rpc, exc_info=ConnectionError(rpc))
        leader_trade(fork.w3, fork.world, side="BUY", usd=4.2, price="0.5", pending_ms=0)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"] * 2, 90)
        assert w3.provider.failovers >= 1
    finally:
        sup.stop()
        root.handlers[:], root.level, root.propagate = saved
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    text = out.getvalue()
    assert any("RPC endpoint" in d["msg"] and "failed" in d["msg"] for d in lines), text[-2000:]
    said = next(d for d in lines if d["msg"].startswith("endpoint "))
    assert said["msg"] == f"endpoint {fwd.url}/... said no" and "ConnectionError" in said["exc"], said
    for secret in SECRETS:
        assert secret not in text
    for f in health_dir(s).glob("*.json"):
        _private(f)


def test_redis_errors_show_neither_password_nor_query():
    from copytrade_cli.chain.node import free_port
    from copytrade_cli.errors import NotReadyError
    from copytrade_cli.supervisor.coordination.redis_link import RedisLink

    port = free_port()
    link = RedisLink(f"redis://copy:PASSW0RD@127.0.0.1:{port}/0?client_name=SECRETKEY", "ct-secrets:")
    with pytest.raises(NotReadyError) as err:
        link.connect()
    assert str(err.value).startswith(f"Redis at redis://***@127.0.0.1:{port}/... is unreachable (")
    assert "PASSW0RD" not in str(err.value) and "SECRETKEY" not in str(err.value)
