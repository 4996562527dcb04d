"""Decision pipeline alone (no chain): dedup -> match -> size -> guardrails -> record -> enqueue, through the
supervisor's own `on_fill`, with 10,000 follow configs over 1,000 leaders, on a SQLite state file.

    .venv/bin/python -m bench.decision                 # 20,000 fills
    .venv/bin/python -m bench.decision --fills 5000 --profile

Every fill is new (no duplicate), its leader has 10 followers (fixed 1 USD, Smart Buffer: no balance read is
needed, so no chain); each fill yields its signal row and one group row with its 10 copies packed (the packed
journal, issue #16: job rows come when a group starts), durable (WAL, synchronous=NORMAL) before the group is
queued. A second pair of runs adds per-wallet and global daily caps (all copies of a fill reserved in one call).
Prints fills/s (wall clock, and per CPU second of this process: the machine is shared), the state file's own
ceiling for the same writes measured in the same run (bench.ceiling.state_ceiling), and the ratio.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from .common import med, print_header, row

TARGET = 20_000.0
TARGET_CAPS = 10_000.0


class _Chain:
    """No chain: what `Supervisor` needs to exist without a node (Smart Buffer + fixed sizing read nothing)."""

    network = "polygon:local"
    chain_id = 137
    is_local = True
    w3 = None
    rpc_url = "http://127.0.0.1:1"
    world = None


def build(n_follows: int, n_leaders: int, home: Path, caps: bool) -> tuple[Any, list[str]]:
    from eth_account import Account

    from copytrade_cli.settings import Settings
    from copytrade_cli.state import Follow, open_state
    from copytrade_cli.supervisor.runner import Supervisor
    from dataclasses import asdict

    env = {"COPYTRADE_HOME": str(home), "SUPERVISOR_QUEUE_MAX_SIZE": "10000000"}
    if caps:
        env.update(COPY_TRADING_DAILY_CAP_USD="100000000", COPY_TRADING_WALLET_DAILY_CAP_USD="1000000")
    settings = Settings(**env)
    state = open_state(settings)
    rnd = random.Random(7)
    leaders = [Account.from_key(rnd.randbytes(32)).address for _ in range(n_leaders)]
    followers = [Account.from_key(rnd.randbytes(32)).address for _ in range(n_follows)]
    stamp = "2000-01-01T00:00:00.000+00:00"
    rows = []
    for i, f in enumerate(followers):
        r = asdict(Follow(follower=f, leader=leaders[i % n_leaders], amount="1", flow="buffer", created_at=stamp,
                          updated_at=stamp))
        r.pop("id")
        rows.append(r)
    state.db["follows"].insert_all(rows, batch_size=1000)
    sup = Supervisor(settings, state, _Chain(), say=lambda _l: None)
    return sup, leaders


def fills_for(leaders: list[str], n: int, seed: int = 1) -> list:
    from copytrade_cli.polymarket.fills import LeaderFill

    rnd = random.Random(seed)
    token = str(rnd.getrandbits(255))
    out = []
    for i in range(n):
        out.append(LeaderFill(leader=leaders[rnd.randrange(len(leaders))], tx_hash="0x" + rnd.randbytes(32).hex(),
                              token_id=token, side="BUY", shares_micro=2_000_000 + i, usd_micro=1_000_000,
                              price=Decimal("0.5"), source="mempool", log_index=0))
    return out


def run(n_fills: int, caps: bool, profile: bool = False, batch: int = 1) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="ct-decide-"))
    sup, leaders = build(10_000, 1_000, home, caps)
    warm = fills_for(leaders, 500, seed=99)
    for f in warm:
        sup.on_fill(f)
    fills = fills_for(leaders, n_fills)
    prof = None
    if profile:
        from pyinstrument import Profiler

        prof = Profiler(interval=0.0005)
        prof.start()
    t0, c0 = time.perf_counter(), time.process_time()
    per = []
    for i in range(0, len(fills), batch):
        chunk = fills[i:i + batch]
        s = time.perf_counter()
        if batch == 1:
            sup.on_fill(chunk[0])
        else:
            sup.on_fills(chunk)  # one channel poll's fills: one commit for all of them (group commit)
        per.append((time.perf_counter() - s) / len(chunk))
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof is not None:
        prof.stop()
    jobs = sup.state.job_counts()
    groups = sup.state.db.execute("select count(*) from groups").fetchone()[0]
    out = {"fills": n_fills, "seconds": dt, "fills_per_s": n_fills / dt, "cpu_fills_per_s": n_fills / cpu, "copies_per_s": 10 * n_fills / dt,
           "us_per_fill_med": med(per) * 1e6, "jobs": jobs, "groups": groups, "queue": sup.queue.depth(),
           "drops": sup.metrics.drops, "caps": caps, "batch": batch,
           "profile": prof.output_text(unicode=False, color=False, show_all=False) if prof else None}
    sup.state.close()
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    print_header("decision pipeline alone (no chain)", follows=10_000, leaders=1_000, followers_per_fill=10,
                 fills=a.fills, state="SQLite WAL, synchronous=NORMAL", flow="buffer, fixed 1 USD",
                 journal="packed: signal row + group row per fill, job rows when a group starts")
    from .ceiling import state_ceiling

    res = []
    for caps in (False, True):
        for batch in (1, 100):
            r = run(a.fills, caps, a.profile, batch=batch)
            c = state_ceiling(a.fills, per_commit=batch, caps=caps)
            r["ceiling"] = c
            res.append(r)
            target = TARGET if not caps else TARGET_CAPS
            label = ("caps on" if caps else "no caps") + (", one fill at a time" if batch == 1 else
                                                            f", {batch} fills per channel poll")
            ratio = r["fills_per_s"] / c["fills_per_s"]
            met = r["fills_per_s"] >= target or ratio >= 0.8
            row(f"fills/s, {label}",
                f"{r['fills_per_s']:,.0f} fills/s = {r['copies_per_s']:,.0f} copies/s ({r['us_per_fill_med']:.0f} "
                f"us/fill median; {r['fills']} fills in {r['seconds']:.2f} s); {r['cpu_fills_per_s']:,.0f} per CPU s")
            row("  state file's ceiling, same writes",
                f"{c['fills_per_s']:,.0f} fills/s ({c['cpu_fills_per_s']:,.0f} per CPU s; {c['per_commit']} "
                f"fill(s) per commit{', with the cap ledger' if caps else ''})")
            row("  ratio to the ceiling",
                f"{100 * ratio:.0f}% (CPU: {100 * r['cpu_fills_per_s'] / c['cpu_fills_per_s']:.0f}%)  target "
                f"{target:,.0f} fills/s or 80% of the ceiling: {'MET' if met else 'NOT MET'}")
            row("  recorded", f"jobs {r['jobs']}, groups {r['groups']}, queued {r['queue']}, drops {r['drops']}")
            if r["profile"]:
                print(r["profile"])
    print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return res


if __name__ == "__main__":
    main()
