"""Decision pipeline alone (no chain): dedup -> match -> size -> guardrails -> record -> enqueue, through the
supervisor's own `on_fill`, with 10,000 follow configs over 1,000 leaders, on a SQLite state file.

    .venv/bin/python -m bench.decision                 # 20,000 fills
    .venv/bin/python -m bench.decision --fills 5000 --profile

Every fill is new (no duplicate), its leader has 10 followers (fixed 1 USD, Smart Buffer: no balance read is
needed, so no chain); each fill yields one signal row, 10 job rows and one group row, all durable (WAL,
synchronous=NORMAL) before the group is queued. A second run adds per-wallet and global daily caps (one
reservation per copy). Prints fills/s and copies/s with the conditions.
"""
from __future__ import annotations

import random
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from .common import med, print_header, row

TARGET = 20_000.0


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
    t0 = time.perf_counter()
    per = []
    for i in range(0, len(fills), batch):
        chunk = fills[i:i + batch]
        s = time.perf_counter()
        if batch == 1:
            sup.on_fill(chunk[0])
        else:
            sup.on_fills(chunk)  # one channel poll's fills: one commit for all of them (group commit)
        per.append((time.perf_counter() - s) / len(chunk))
    dt = time.perf_counter() - t0
    if prof is not None:
        prof.stop()
    jobs = sup.state.job_counts()
    groups = sup.state.db.execute("select count(*) from groups").fetchone()[0]
    out = {"fills": n_fills, "seconds": dt, "fills_per_s": n_fills / dt, "copies_per_s": 10 * n_fills / dt,
           "us_per_fill_med": med(per) * 1e6, "jobs": jobs, "groups": groups, "queue": sup.queue.depth(),
           "drops": sup.metrics.drops, "caps": caps, "batch": batch,
           "profile": prof.output_text(unicode=False, color=False, show_all=False) if prof else None}
    sup.state.close()
    return out


def sqlite_ceiling(n_rows: int = 55_000) -> float:
    """Rows/s SQLite itself takes for the jobs table (same schema, indexes and pragmas), without Python logic."""
    import os

    from copytrade_cli.state import State

    home = Path(tempfile.mkdtemp(prefix="ct-sqlite-"))
    s = State(home / "s.db")
    cols = ["fill_key", "leader", "side", "token_id", "condition_id", "follower", "follow_id", "flow", "status",
            "reason", "usd", "shares", "price", "group_id", "created_at", "updated_at", "attempts"]
    rnd = random.Random(1)
    tok = str(rnd.getrandbits(255))
    batches = []
    for _b in range(n_rows // 500):
        rows = []
        for _f in range(50):
            fk = f"0x{rnd.randbytes(20).hex()}:0x{rnd.randbytes(32).hex()}:{tok}:BUY:2000000"
            gid = rnd.randbytes(8).hex()
            for j in range(10):
                rows.append((fk, "0x" + "1" * 40, "BUY", tok, None, "0x" + rnd.randbytes(20).hex(), j, "buffer",
                             "queued", None, "1", "0", "0.52", gid, "2026-01-01T00:00:00.000+00:00",
                             "2026-01-01T00:00:00.000+00:00", 0))
        batches.append(rows)
    conn = s.db.conn
    t0 = time.perf_counter()
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"insert into jobs ({','.join(cols)}) values ({','.join('?' * len(cols))})", rows)
        conn.execute("COMMIT")
    rate = sum(len(b) for b in batches) / (time.perf_counter() - t0)
    s.close()
    os.remove(home / "s.db")
    sqlite_ceiling.last = rate
    return rate


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    print_header("decision pipeline alone (no chain)", follows=10_000, leaders=1_000, followers_per_fill=10,
                 fills=a.fills, state="SQLite WAL, synchronous=NORMAL", flow="buffer, fixed 1 USD")
    res = []
    for caps in (False, True):
        for batch in (1, 100):
            r = run(a.fills, caps, a.profile, batch=batch)
            res.append(r)
            label = ("caps on" if caps else "no caps") + (", one fill at a time" if batch == 1 else
                                                            f", {batch} fills per channel poll")
            row(f"fills/s, {label}",
                f"{r['fills_per_s']:,.0f} fills/s = {r['copies_per_s']:,.0f} copies/s ({r['us_per_fill_med']:.0f} "
                f"us/fill median; {r['fills']} fills in {r['seconds']:.2f} s)  target {TARGET:,.0f}: "
                f"{'MET' if r['fills_per_s'] >= TARGET else 'NOT MET'}")
            row("  recorded", f"jobs {r['jobs']}, groups {r['groups']}, queued {r['queue']}, drops {r['drops']}")
            if r["profile"]:
                print(r["profile"])
    print("  ceiling of the state file on this disk (jobs table only, executemany, 500 rows per commit):")
    row("  raw SQLite job-row inserts", f"{sqlite_ceiling():,.0f} rows/s = {sqlite_ceiling.last / 10:,.0f} "
        "fills/s at 10 copies per fill")
    return res


if __name__ == "__main__":
    main()
