"""A live network starts `supervise` in dry-run unless ENABLE_REAL_TRADING=true (an anvil with Amoy's chain id
stands in for the live RPC; nothing here reaches the internet)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import AnvilNode

pytestmark = pytest.mark.timeout(180)


def _supervise(tmp_path, rpc, **env):
    e = {**os.environ, "COPYTRADE_HOME": str(tmp_path / "home"), "COPY_TRADING_RPC_URL": rpc,
         "COPYTRADE_CLOB_URL": "http://127.0.0.1:9", **env}
    return subprocess.run([sys.executable, "-m", "copytrade_cli.cli.main", "supervise", "--network", "polygon:amoy",
                           "--channels", "logs", "--max-seconds", "1"], capture_output=True, text=True, env=e,
                          timeout=120)


def test_live_network_starts_in_dry_run_without_the_switch(tmp_path):
    node = AnvilNode(chain_id=80002, home=tmp_path)
    try:
        res = _supervise(tmp_path, node.url)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0] == "ENABLE_REAL_TRADING is not true: polygon:amoy starts in dry-run (nothing is executed)"
        assert lines[-1].startswith("Dry run stopped: 0 copies simulated as filled; nothing was executed")
        # with the switch on it is the real supervisor: its readiness pre-flight refuses this bare chain (exit 8)
        real = _supervise(tmp_path, node.url, ENABLE_REAL_TRADING="true")
        assert real.returncode == 8 and "dry-run" not in real.stdout
    finally:
        node.stop()
