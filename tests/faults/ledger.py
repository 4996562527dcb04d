"""The fault suite's session-wide ledger: faults injected, jobs checked against chain balances, duplicates and
losses found. Every fault test adds to it; tests/faults/conftest.py prints it as the suite's last line and fails
the session if anything was duplicated or lost."""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

LEDGER: dict[str, Any] = {"faults": 0, "jobs": 0, "duplicates": 0, "losses": 0, "kinds": []}
MICRO = 10**6


def injected(kind: str, n: int = 1) -> None:
    LEDGER["faults"] += n
    LEDGER["kinds"].append(kind)


def balances(fork, proxy: str, token: int) -> tuple[int, int]:
    from copytrade_cli.chain.proxies import erc20, erc1155

    return (erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(proxy).call(),
            erc1155(fork.w3, fork.world.ctf).functions.balanceOf(proxy, token).call())


def jobs_for(fork, proxy: str) -> list[dict[str, Any]]:
    return [j for j in fork.state.list_jobs(limit=100_000) if j["follower"].lower() == proxy.lower()]


def wait_settled(fork, proxies: list[str], timeout: float = 90.0) -> None:
    """Until no job of these proxies is in flight and no Smart Buffer debt of theirs is open."""
    want = {p.lower() for p in proxies}
    deadline = time.time() + timeout
    while time.time() < deadline:
        busy = [j for j in fork.state.list_jobs(limit=100_000)
                if j["follower"].lower() in want and j["status"] in ("pending", "queued", "running")]
        debts = [d for d in fork.state.open_debts() if d["proxy"].lower() in want]
        if not busy and not debts:
            return
        time.sleep(0.2)
    raise AssertionError(f"copies still in flight after {timeout:.0f}s")


def check_once(fork, proxy: str, token: int, before: tuple[int, int], *, expect: str | None = None) -> list[dict]:
    """The proxy's chain balances moved by exactly what its journal says: complete copies counted once,
    everything else (refunded, failed, skipped, dropped) not at all. Records duplicates and losses."""
    jobs = jobs_for(fork, proxy)
    after = balances(fork, proxy, token)
    done = [j for j in jobs if j["status"] == "complete"]
    exp_tok = sum(int(Decimal(j["shares"]) * MICRO) for j in done)
    exp_usd = sum(int(Decimal(j["usd"]) * MICRO) for j in done)
    d_usd, d_tok = before[0] - after[0], after[1] - before[1]
    LEDGER["jobs"] += len(jobs)
    dup = d_tok > exp_tok
    loss = d_tok < exp_tok or d_usd != exp_usd
    LEDGER["duplicates"] += int(dup)
    LEDGER["losses"] += int(loss)
    detail = (f"proxy {proxy}: tokens {d_tok} (journal {exp_tok}), collateral -{d_usd} (journal -{exp_usd}); "
              f"jobs {[(j['status'], j['reason']) for j in jobs]}")
    assert not dup, "executed twice: " + detail
    assert not loss, "lost or unbalanced: " + detail
    if expect is not None:
        assert {j["status"] for j in jobs} == {expect}, detail
    return jobs
