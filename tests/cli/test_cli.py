"""The CLI as a user runs it: help, exit codes, one-line errors, documented commands, no secrets in output."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from copytrade_cli.cli.docgen import configuration, reference, walk
from copytrade_cli.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
GROUPS = ["config", "state", "fork", "deploy", "proxy", "follow", "seed", "supervise", "trade", "verify", "migrate",
          "jobs", "demo", "clob"]
SECRET_KEY = "0x" + "ab" * 32
SECRET_WORKER = "0x" + "cd" * 32
SECRET_MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow"


def record_proxy(home: Path, address: str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                 network: str = "polygon:local") -> None:
    """Record `address` as a proxy in `home`'s state, as `copytrade proxy create` does: `follow add` only takes
    a follower that is a proxy of a trusted factory (#15)."""
    from copytrade_cli.state import ProxyRecord, State

    State(Path(home) / "state.db").record_proxy(ProxyRecord(
        network=network, address=address, owner="0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        factory="0x5FbDB2315678afecb367f032d93F642f64180aa3"))


def run(args: list[str], env: dict[str, str] | None = None, home: Path | None = None) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    for k in ("TRADING_PRIVATE_KEY", "TRADING_MNEMONIC", "COPY_TRADING_WORKER_KEYS", "SUPERVISOR_QUEUE_MAX_SIZE"):
        e.pop(k, None)
    if home is not None:
        e["COPYTRADE_HOME"] = str(home)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "copytrade_cli", *args], capture_output=True, text=True, env=e,
                          cwd=home or ROOT, timeout=120)


def test_help_lists_every_group_with_a_purpose():
    res = run(["--help"])
    assert res.returncode == 0
    for g in GROUPS:
        line = next((l for l in res.stdout.splitlines() if l.lstrip("│ ").startswith(f"{g} ")), None)
        assert line is not None, f"{g} missing from --help"
        assert len(line.split(g, 1)[1].strip(" │")) > 10, f"{g} has no one-line purpose"


def test_every_command_has_help_with_an_example():
    root = typer.main.get_command(app)
    leaves = list(walk(root, []))
    assert len(leaves) >= 25
    for path, cmd in leaves:
        assert cmd.help and "Example: copytrade" in cmd.help or "SUPERVISOR_QUEUE_MAX_SIZE" in (cmd.help or ""), \
            f"copytrade {' '.join(path)} lacks help with an example"


def test_command_reference_is_up_to_date():
    doc = (ROOT / "docs" / "commands.md").read_text()
    assert doc == reference(), "docs/commands.md is stale: run `python -m copytrade_cli.cli.docgen > docs/commands.md`"


def test_configuration_doc_is_up_to_date():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == configuration(), "docs/configuration.md is stale: run `python -m copytrade_cli.cli.docgen config`"
    for name in ("ENABLE_REAL_TRADING", "COPY_TRADING_WORKER_KEYS", "SUPERVISOR_CONFIG_FULL_REFRESH_MS", "TRADING_MNEMONIC"):
        assert f"`{name}`" in doc


def test_bad_env_value_is_one_line_naming_the_variable_exit_2(tmp_path):
    res = run(["config", "check"], env={"SUPERVISOR_QUEUE_MAX_SIZE": "abc"}, home=tmp_path)
    assert res.returncode == 2
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and res.stdout == ""
    assert lines[0].startswith("Error: SUPERVISOR_QUEUE_MAX_SIZE='abc'")
    assert "e.g. SUPERVISOR_QUEUE_MAX_SIZE=5000" in lines[0]


@pytest.mark.parametrize("env,needle", [
    ({"USDC_ADDRESS": "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84175"}, "USDC_ADDRESS"),
    ({"ENABLE_REAL_TRADING": "maybe"}, "ENABLE_REAL_TRADING"),
    ({"SUPERVISOR_SHARD_INDEX": "4", "SUPERVISOR_SHARD_COUNT": "4"}, "SUPERVISOR_SHARD_INDEX"),
    ({"COPY_TRADING_RPC_URLS": "http://ok.example,not a url"}, "COPY_TRADING_RPC_URLS"),
    ({"COPY_TRADING_WORKER_KEYS": "0x1234"}, "COPY_TRADING_WORKER_KEYS"),
])
def test_each_bad_value_names_its_variable(tmp_path, env, needle):
    res = run(["config", "check"], env=env, home=tmp_path)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_config_show_masks_secrets_and_json_parses(tmp_path):
    env = {"TRADING_PRIVATE_KEY": SECRET_KEY, "TRADING_MNEMONIC": SECRET_MNEMONIC,
           "COPY_TRADING_WORKER_KEYS": f"{SECRET_WORKER},{SECRET_KEY}"}
    res = run(["--json", "config", "show"], env=env, home=tmp_path)
    assert res.returncode == 0
    data = json.loads(res.stdout)
    assert data["TRADING_PRIVATE_KEY"] == "********" and data["TRADING_MNEMONIC"] == "********"
    assert data["SUPERVISOR_QUEUE_MAX_SIZE"] == 5000 and data["SUPERVISOR_WORKER_POOL_SIZE"] == 20


def test_no_command_output_contains_a_configured_secret(tmp_path):
    """Every read-only command, human and --json, plus error paths, with keys and a mnemonic configured."""
    env = {"TRADING_PRIVATE_KEY": SECRET_KEY, "TRADING_MNEMONIC": SECRET_MNEMONIC,
           "COPY_TRADING_WORKER_KEYS": f"{SECRET_WORKER},{SECRET_KEY}"}
    commands = [["config", "show"], ["config", "check"], ["state", "info"], ["fork", "status"],
                ["deploy", "addresses"], ["deploy", "addresses", "--format", "env"], ["follow", "list"],
                ["jobs", "list"], ["jobs", "debts"], ["proxy", "list"], ["deploy", "executor", "--dry-run"],
                ["verify", "readiness"], ["migrate", "status"], ["migrate", "plan", "--dry-run"],
                ["follow", "add", "--follower", "0xbad", "--leader", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"]]
    secrets = [SECRET_KEY, SECRET_KEY[2:], SECRET_WORKER, SECRET_WORKER[2:], SECRET_MNEMONIC, "legal winner thank"]
    for cmd in commands:
        for prefix in ([], ["--json"]):
            res = run(prefix + cmd, env=env, home=tmp_path)
            text = res.stdout + res.stderr
            for s in secrets:
                assert s not in text, f"secret leaked by {' '.join(prefix + cmd)}"


def test_state_info_shows_schema_and_counts(tmp_path):
    res = run(["--json", "state", "info"], home=tmp_path)
    data = json.loads(res.stdout)
    assert data["schema_version"] == data["latest_version"] >= 2
    assert data["path"] == str(tmp_path / "state.db")
    assert set(data["tables"]) >= {"nodes", "deployments", "proxies", "follows", "signals", "jobs", "job_steps",
                                   "guardrail_ledger", "workers", "debts"}


def test_two_homes_never_share_state(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    record_proxy(a)
    r = run(["follow", "add", "--follower", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
             "--leader", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"], home=a)
    assert r.returncode == 0, r.stderr
    assert json.loads(run(["--json", "follow", "list"], home=a).stdout)
    assert json.loads(run(["--json", "follow", "list"], home=b).stdout) == []


def test_fork_commands_without_a_fork_say_so(tmp_path):
    res = run(["fork", "status"], home=tmp_path)
    assert res.returncode == 4 and "No fork running" in res.stdout
    res = run(["proxy", "list"], home=tmp_path)
    assert res.returncode == 4
    assert res.stderr.strip() == ("Error: no local fork is running for this COPYTRADE_HOME: start one with "
                                  "`copytrade fork up`")


def test_follow_validation_is_one_line_and_changes_nothing(tmp_path):
    runner = CliRunner()
    env = {"COPYTRADE_HOME": str(tmp_path)}
    res = runner.invoke(app, ["follow", "add", "--follower", "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
                              "--leader", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "--sizing", "kelly"], env=env)
    assert res.exit_code == 2
    assert "--sizing 'kelly': use one of fixed, proportional, percent" in res.output
    res = runner.invoke(app, ["--json", "follow", "list"], env=env)
    assert json.loads(res.output) == []
