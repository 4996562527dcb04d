"""SIGKILL the supervisor at each step of each flow, restart it, and check chain balances and state:
every copy ends executed once or refunded — never both, never twice."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copytrade_cli.chain.proxies import erc20, erc1155
from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from ..integration.conftest import clear_follows, fork, new_follower  # noqa: F401 — the module fixture

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
from .ledger import LEDGER as SUMMARY  # noqa: E402 — session-wide (printed by tests/faults/conftest.py)


def _supervise(fork, *extra, fault: str | None = None) -> subprocess.Popen:
    env = dict(os.environ, COPYTRADE_HOME=str(fork.settings.home), PYTHONUNBUFFERED="1")
    env.pop("COPYTRADE_FAULT_KILL_AT", None)
    if fault:
        env["COPYTRADE_FAULT_KILL_AT"] = fault
    fork.state.set_cursor(f"logs:{fork.chain.network}", str(fork.w3.eth.block_number))
    proc = subprocess.Popen([sys.executable, "-m", "copytrade_cli", "supervise", "--channels", "mempool,logs", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc


def _wait_ready(proc: subprocess.Popen, timeout: float = 60) -> list[str]:
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "[TaskQueue] ready" in line:
            return lines
    raise AssertionError("supervisor did not start:\n" + "\n".join(lines))


def _balances(fork, proxy, token):
    return (erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(proxy).call(),
            erc1155(fork.w3, fork.world.ctf).functions.balanceOf(proxy, token).call())


@pytest.mark.parametrize("flow,fault", [("standard", "pull"), ("standard", "order"), ("standard", "push"),
                                        ("buffer", "order"), ("buffer", "push"), ("buffer", "reimburse")])
def test_kill_at_step_then_restart_executes_once(fork, flow, fault):
    clear_follows(fork)
    proxy = new_follower(fork)
    add_follow(fork.state, follower=proxy, leader=SEED_LEADER, amount="4", flow=flow)
    token = int(fork.world.market(0).token_id("Yes"))
    before = _balances(fork, proxy, token)
    proc = _supervise(fork, fault=fault)
    out = _wait_ready(proc)
    leader_trade(fork.w3, fork.world, side="BUY", usd=8.0, price="0.5")
    out += proc.stdout.read().splitlines()
    assert proc.wait(60) == -9, "the fault should have SIGKILLed the supervisor:\n" + "\n".join(out[-15:])
    SUMMARY["faults"] += 1
    SUMMARY["kinds"].append("SIGKILL")
    jobs = [j for j in fork.state.list_jobs(limit=1000) if j["follower"] == proxy]
    assert len(jobs) == 1
    if fault != "reimburse":
        assert jobs[0]["status"] not in ("complete",), "killed mid-flow, the job cannot be complete yet"
    # restart without the fault: the journal is resumed
    t0 = time.time()
    proc2 = _supervise(fork, "--max-seconds", "20", "--exit-after", "1")
    out2, _ = proc2.communicate(timeout=120)
    print(f"restart took {time.time() - t0:.1f}s:\n{out2}")
    assert proc2.returncode == 0, out2[-2000:]
    jobs = [j for j in fork.state.list_jobs(limit=1000) if j["follower"] == proxy]
    group = fork.state.get_group(jobs[0]["group_id"])
    after = _balances(fork, proxy, token)
    SUMMARY["jobs"] += len(jobs)
    assert len(jobs) == 1
    status = jobs[0]["status"]
    assert status in ("complete", "refunded"), (status, group["stage"], group["error"], out2[-1500:])
    if status == "complete":
        # executed exactly once: charged exactly the copy, tokens exactly the group's fill
        duplicated = after[1] - before[1] != group["filled_shares"]
        SUMMARY["duplicates"] += int(duplicated)
        assert not duplicated
        assert before[0] - after[0] == 4_000_000
        assert not [d for d in fork.state.open_debts() if d["proxy"] == proxy], "Smart Buffer debt left unpaid"
    else:
        lost = after != before
        SUMMARY["losses"] += int(lost)
        assert not lost, "refunded: the proxy must be exactly where it started"
    # the worker keeps nothing of the follower's
    worker = group["worker"]
    assert erc1155(fork.w3, fork.world.ctf).functions.balanceOf(worker, token).call() == 0


def test_fault_summary():
    """The suite's summary line (faults injected, jobs checked, duplicates, losses)."""
    print(f"\nFAULT SUMMARY: faults injected {SUMMARY['faults']}, jobs checked {SUMMARY['jobs']}, "
          f"duplicates found {SUMMARY['duplicates']}, losses found {SUMMARY['losses']}")
    assert SUMMARY["duplicates"] == 0 and SUMMARY["losses"] == 0
