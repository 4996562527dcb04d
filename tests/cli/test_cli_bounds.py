"""Hardening (#15): every number bounded where it enters, secrets and URL paths never shown, the network named."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from copytrade_cli.cli.main import app
from copytrade_cli.state import Follow
from copytrade_cli.supervisor.decide import decide
from copytrade_cli.settings import load_settings

from .test_cli import record_proxy, run

FOLLOWER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
LEADER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.mark.parametrize("extra,needle", [
    (["--amount", "1e400"], "--amount '1e400' must be between"),
    (["--amount", "10000001"], "--amount '10000001' must be between"),
    (["--sizing", "proportional", "--amount", "1e6"], "--amount '1e6' must be between"),
    (["--sizing", "percent", "--amount", "100.5"], "--amount '100.5' must be between"),
    (["--max-usd", "1e400"], "--max-usd '1e400' must be between"),
    (["--min-usd", "1e12"], "--min-usd '1e12' must be between"),
    (["--min-leader-usd", "1e400"], "--min-leader-usd '1e400' must be between"),
    (["--max-slippage", "NaN"], "--max-slippage 'NaN' must be between"),
    (["--max-price", "1"], "--max-price '1' must be between"),
])
def test_absurd_follow_values_are_one_line_and_the_existing_follow_is_unchanged(tmp_path, extra, needle):
    runner = CliRunner()
    env = {"COPYTRADE_HOME": str(tmp_path)}
    record_proxy(tmp_path, FOLLOWER)
    base = ["follow", "add", "--follower", FOLLOWER, "--leader", LEADER]
    ok = runner.invoke(app, [*base, "--amount", "7"], env=env)
    assert ok.exit_code == 0, ok.output
    before = json.loads(runner.invoke(app, ["--json", "follow", "list"], env=env).output)
    res = runner.invoke(app, [*base, *extra], env=env)
    assert res.exit_code == 2, res.output
    lines = [l for l in res.output.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0], res.output
    after = json.loads(runner.invoke(app, ["--json", "follow", "list"], env=env).output)
    assert after == before and after[0]["amount"] == "7"


def test_a_hand_edited_row_past_the_bounds_is_skipped_with_its_reason():
    class Fill:
        side, price, usd, shares_micro, token_id, leader = "BUY", Decimal("0.5"), Decimal(20), 40 * 10**6, "1", LEADER

    rows = [Follow(id=1, follower=FOLLOWER, leader=LEADER, amount="1e400"),
            Follow(id=2, follower=FOLLOWER, leader=LEADER, sizing="proportional", amount="1e300"),
            Follow(id=3, follower=FOLLOWER, leader=LEADER, amount="5")]
    d = decide(Fill(), rows, settings=load_settings(), is_local=True, balances={})
    assert [c.follow.id for c in d.copies] == [3] and d.copies[0].usd_micro == 5 * 10**6
    reasons = {s.follow.id: s.reason for s in d.skips}
    assert set(reasons) == {1, 2}
    assert all(r.startswith("invalid follow config: a copy of") and "above the bound" in r for r in reasons.values())


@pytest.mark.parametrize("name,value", [
    ("COPY_TRADING_MAX_TRADE_USD", "1e400"), ("COPY_TRADING_DAILY_CAP_USD", "1e12"),
    ("COPY_TRADING_WALLET_DAILY_CAP_USD", "1e400"), ("SUPERVISOR_DEDUP_TTL_MS", "9" * 40),
    ("SUPERVISOR_QUEUE_DRAIN_INTERVAL_MS", "99999999999"), ("COPY_TRADING_WORKER_INDEX", "10000000"),
    ("COPYTRADE_NETWORK", "polygon:nowhere"),
])
def test_absurd_env_values_and_unknown_networks_fail_config_check(tmp_path, name, value):
    res = run(["config", "check"], env={name: value}, home=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {name}="), res.stderr


def test_config_show_never_shows_a_url_path_or_password(tmp_path):
    env = {"COPY_TRADING_RPC_URL": "https://polygon-mainnet.g.alchemy.com/v2/SeCrEtKeY",
           "COPY_TRADING_RPC_URLS": "https://b.example/SeCrEtKeY2,https://c.example/?key=SeCrEtKeY3",
           "SUPERVISOR_REDIS_URL": "redis://:RedisPassw0rd@10.1.2.3:6379/0",
           "COPYTRADE_CLOB_URL": "https://clob.example/SeCrEtKeY4"}
    for prefix in ([], ["--json"]):
        res = run([*prefix, "config", "show"], env=env, home=tmp_path)
        assert res.returncode == 0, res.stderr
        text = res.stdout + res.stderr
        for s in ("SeCrEtKeY", "RedisPassw0rd", "/v2/"):
            assert s not in text, (prefix, text)
    data = json.loads(run(["--json", "config", "show"], env=env, home=tmp_path).stdout)
    assert data["COPY_TRADING_RPC_URL"] == "https://polygon-mainnet.g.alchemy.com/..."
    assert data["SUPERVISOR_REDIS_URL"] == "redis://***@10.1.2.3:6379/0"
    assert data["COPY_TRADING_RPC_URLS"] == ["https://b.example/...", "https://c.example/..."]


def test_a_bad_url_value_is_refused_without_echoing_its_path(tmp_path):
    res = run(["config", "check"], env={"COPY_TRADING_RPC_URL": "ftp://rpc.example/v2/SeCrEtKeY"}, home=tmp_path)
    assert res.returncode == 2 and "COPY_TRADING_RPC_URL" in res.stderr
    assert "SeCrEtKeY" not in res.stderr + res.stdout
