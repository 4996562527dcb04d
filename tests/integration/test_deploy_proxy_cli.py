"""`copytrade deploy ...` and `copytrade proxy ...` on a fork, as an operator runs them: idempotent,
recorded, --dry-run changes nothing, bad input changes nothing."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from copytrade_cli.chain.proxies import erc20
from copytrade_cli.cli.main import app

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def cli(fork):
    runner = CliRunner()
    env = {"COPYTRADE_HOME": str(fork.settings.home)}

    def invoke(*args):
        return runner.invoke(app, list(args), env=env)

    return invoke


def _rows(fork):
    return [(d.name, d.address, d.generation, d.status) for d in fork.state.list_deployments()]


def test_redeploy_is_a_no_op_and_dry_run_changes_nothing(fork, cli):
    before = _rows(fork)
    block = fork.w3.eth.block_number
    res = cli("deploy", "executor")
    assert res.exit_code == 0, res.output
    assert "Executor already deployed (generation 1); use --force to deploy a new one" in res.output
    res = cli("--json", "deploy", "factory", "--dry-run")
    assert res.exit_code == 0 and json.loads(res.output)["dry_run"] is True
    res = cli("deploy", "factory")
    assert "ProxyFactory already deployed" in res.output
    assert _rows(fork) == before
    assert fork.w3.eth.block_number == block  # nothing was sent


def test_addresses_formats_and_write_env(fork, cli, tmp_path):
    data = json.loads(cli("deploy", "addresses", "--format", "json").output)
    assert data["contracts"]["Executor"] == fork.report.addresses["Executor"]
    env = cli("deploy", "addresses", "--format", "env").output.splitlines()
    assert f"EXECUTOR_ADDRESS={fork.report.addresses['Executor']}" in env
    assert f"PROXY_FACTORY_ADDRESS={fork.report.addresses['ProxyFactory']}" in env
    target = tmp_path / ".env"
    target.write_text("KEEP_ME=1\nEXECUTOR_ADDRESS=0xold\n")
    cli("deploy", "addresses", "--write-env", str(target))
    lines = target.read_text().splitlines()
    assert "KEEP_ME=1" in lines and "EXECUTOR_ADDRESS=0xold" not in lines
    assert f"EXECUTOR_ADDRESS={fork.report.addresses['Executor']}" in lines
    recorded = json.loads((fork.settings.home / "deployed-addresses.json").read_text()) \
        if (fork.settings.home / "deployed-addresses.json").exists() else None
    assert recorded is None or "polygon:local" in recorded


def test_proxy_create_fund_list_withdraw(fork, cli):
    owner = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    res = cli("--json", "proxy", "create", "--owner", owner)
    assert res.exit_code == 0, res.output
    first = json.loads(res.output)
    assert first["created"] is True
    again = json.loads(cli("--json", "proxy", "create", "--owner", owner).output)
    assert again["created"] is False and again["proxy"] == first["proxy"]
    res = cli("--json", "proxy", "fund", "--amount", "12.5", "--proxy", first["proxy"])
    assert json.loads(res.output)["balance_micro"] == 12_500_000
    listed = {r["proxy"]: r for r in json.loads(cli("--json", "proxy", "list").output)}
    assert listed[first["proxy"]]["collateral_micro"] == 12_500_000
    # the operator owns the operator proxy: withdraw 1 USDC from it
    op_proxy = fork.report.addresses["Operator proxy"]
    bal = erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(op_proxy).call()
    res = cli("--json", "proxy", "withdraw", "--amount", "1")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["balance_micro"] == bal - 1_000_000
    # someone else's proxy: refused, nothing moves
    res = cli("proxy", "withdraw", "--amount", "1", "--proxy", first["proxy"])
    assert res.exit_code == 2 and "is not the owner of proxy" in res.output
    assert erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(first["proxy"]).call() == 12_500_000


@pytest.mark.parametrize("args,code,needle", [
    (["proxy", "create", "--owner", "0x90F79bf6EB2c4f870365E785982E1f101E93b907"], 2, "--owner: bad EIP-55 checksum"),
    (["proxy", "fund", "--amount", "abc"], 2, "amount 'abc' is not a number"),
    (["proxy", "fund", "--amount", "1", "--proxy", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"], 2,
     "is not a proxy of the factory"),
])
def test_bad_proxy_input_is_one_line_and_changes_nothing(fork, cli, args, code, needle):
    block = fork.w3.eth.block_number
    res = cli(*args)
    assert res.exit_code == code and needle in res.output, res.output
    assert fork.w3.eth.block_number == block


def test_supervise_live_view_renders_and_stops(fork, cli):
    import signal

    old = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        res = cli("supervise", "--live", "--max-seconds", "2", "--channels", "logs")
    finally:
        signal.signal(signal.SIGINT, old[0])
        signal.signal(signal.SIGTERM, old[1])
    assert res.exit_code == 0, res.output
    assert "copytrade supervise — up" in res.output and "Fleet: 20/20 ready" in res.output
    assert "Supervisor stopped:" in res.output
