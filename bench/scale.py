"""Copies per second for 1, 2 and 4 `copytrade supervise` instances sharing work through Redis, in ONE run on
ONE local fork (so the ratios compare like with like), printing the figures and the conditions.

Each round: N instances (shard i of N, worker index i, POOL workers each) on a private Redis key prefix;
four leaders (one per shard of four) each followed by F followers at a fixed 1 USD; B batches of K leader
fills (one transaction each); copies/s = complete copies / (last job complete - first signal recorded).
Start-up time is excluded (instances are ready before the first fill). Every round checks zero duplicates.

    .venv/bin/python bench/scale.py [--batches 4] [--per-batch 16] [--followers 3] [--pool 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copytrade_cli.localworld.world import DEV_ADDRESSES, DEV_KEYS  # noqa: E402

LEADERS = [DEV_ADDRESSES[1], DEV_ADDRESSES[6], DEV_ADDRESSES[0], DEV_ADDRESSES[8]]


def spawn(home: Path, i: int, n: int, prefix: str, pool: int, redis_url: str) -> tuple[subprocess.Popen, threading.Event]:
    env = dict(os.environ, COPYTRADE_HOME=str(home), PYTHONUNBUFFERED="1", SUPERVISOR_REDIS_URL=redis_url,
               SUPERVISOR_REDIS_PREFIX=prefix, SUPERVISOR_SHARD_COUNT=str(n), SUPERVISOR_SHARD_INDEX=str(i),
               COPY_TRADING_WORKER_INDEX=str(i), SUPERVISOR_WORKER_POOL_SIZE=str(pool),
               SUPERVISOR_QUEUE_DRAIN_INTERVAL_MS="50")
    proc = subprocess.Popen([sys.executable, "-m", "copytrade_cli", "supervise", "--channels", "mempool,logs"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            if "[TaskQueue] ready" in line:
                ready.set()
            if "Error" in line and not ready.is_set():
                print(f"  instance {i}: {line.rstrip()}")
    threading.Thread(target=read, daemon=True).start()
    return proc, ready


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--per-batch", type=int, default=16)
    ap.add_argument("--followers", type=int, default=3)
    ap.add_argument("--pool", type=int, default=5, help="workers per instance (4 x 5 = the 20 `fork up` funds)")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--instances", default="1,2,4")
    args = ap.parse_args()

    import redis

    from copytrade_cli.runbook.fork import LOCAL_NETWORK, fork_down, fork_up
    from copytrade_cli.chain.network import connect_network
    from copytrade_cli.localworld.plant import plant_polymarket
    from copytrade_cli.localworld.trades import leader_batch
    from copytrade_cli.settings import Settings
    from copytrade_cli.state import open_state
    from copytrade_cli.supervisor.configs import add_follow

    sys.path.insert(0, str(ROOT / "tests"))
    from integration.conftest import Fork, new_follower  # the test helpers create and fund proxies

    home = Path(tempfile.mkdtemp(prefix="ct-bench-scale-"))
    settings = Settings(COPYTRADE_HOME=str(home))
    state = open_state(settings)
    t0 = time.time()
    report = fork_up(settings, state)
    rows = []
    try:
        chain = connect_network(settings, state, LOCAL_NETWORK)
        fork = Fork(settings, state, chain, report)
        plant_polymarket(chain.w3, DEV_KEYS[0], leaders=LEADERS)
        print(f"fork up + 4 leaders planted in {time.time() - t0:.1f}s")
        for n in [int(x) for x in args.instances.split(",")]:
            for f in state.list_follows():
                state.delete_follow(f.id)
            proxies = [new_follower(fork, usdc=args.batches * args.per_batch + 50) for _ in range(args.followers)]
            for p in proxies:
                for leader in LEADERS:
                    add_follow(state, follower=p, leader=leader, sizing="fixed", amount="1", flow="standard")
            prefix = f"ct-bench-{uuid.uuid4().hex[:6]}:"
            head = str(chain.w3.eth.block_number)
            state.set_cursor(f"logs:{LOCAL_NETWORK}", head)
            for i in range(n):
                state.set_cursor(f"logs:{LOCAL_NETWORK}:shard{i}of{n}", head)
            procs = [spawn(home, i, n, prefix, args.pool, args.redis) for i in range(n)]
            try:
                for _p, ready in procs:
                    if not ready.wait(120):
                        raise SystemExit("an instance did not start")
                want = {p.lower() for p in proxies}
                t_fire = time.time()
                for _ in range(args.batches):
                    leader_batch(chain.w3, chain.world, count=args.per_batch, leaders=LEADERS, usd=2.0, price="0.5")
                total = args.batches * args.per_batch * len(proxies)
                deadline = time.time() + 600
                while time.time() < deadline:
                    jobs = [j for j in state.list_jobs(limit=100_000) if j["follower"].lower() in want]
                    done = [j for j in jobs if j["status"] == "complete"]
                    if len(done) >= total:
                        break
                    time.sleep(0.2)
                jobs = [j for j in state.list_jobs(limit=100_000) if j["follower"].lower() in want]
                pairs = [(j["fill_key"], j["follower"]) for j in jobs]
                dups = len(pairs) - len(set(pairs))
                done = [j for j in jobs if j["status"] == "complete"]
                first = min(j["created_at"] for j in jobs)
                last = max(j["updated_at"] for j in done)
                import datetime as dt

                span = (dt.datetime.fromisoformat(last) - dt.datetime.fromisoformat(first)).total_seconds()
                groups = {j["group_id"] for j in done}
                owners = {state.get_group(g)["owner"] for g in groups}
                rows.append({"instances": n, "copies": len(done), "expected": total, "duplicates": dups,
                             "seconds": span, "copies_s": len(done) / span if span else 0.0, "groups": len(groups),
                             "executing_instances": len(owners), "fire_s": time.time() - t_fire})
                print(f"  {n} instance(s): {len(done)}/{total} copies in {span:.1f}s = {rows[-1]['copies_s']:.1f} "
                      f"copies/s ({len(groups)} groups, executed by {len(owners)} instance(s), duplicates {dups})")
            finally:
                for p, _ in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                for p, _ in procs:
                    try:
                        p.wait(40)
                    except subprocess.TimeoutExpired:
                        p.kill()
                r = redis.Redis.from_url(args.redis)
                for key in r.scan_iter(match=prefix + "*"):
                    r.delete(key)
    finally:
        fork_down(state)
    base = rows[0]["copies_s"] if rows else 0
    print("\nScale-out on one fork (figures from this run; ratios vs its own 1-instance baseline)")
    print(f"conditions: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), anvil automine + local "
          f"CLOB + N supervisor processes on the same machine; {args.pool} workers/instance; {len(LEADERS)} leaders, "
          f"{args.followers} followers each at 1 USD fixed (aggregated: one order + batch pull/push per fill); "
          f"{args.batches} batches x {args.per_batch} fills; channels mempool+logs; Redis {args.redis}")
    print(f"{'instances':>9} {'copies':>7} {'seconds':>8} {'copies/s':>9} {'vs 1':>6} {'dups':>5}")
    for r in rows:
        ratio = r["copies_s"] / base if base else 0
        print(f"{r['instances']:>9} {r['copies']:>7} {r['seconds']:>8.1f} {r['copies_s']:>9.1f} {ratio:>5.2f}x "
              f"{r['duplicates']:>5}")


if __name__ == "__main__":
    main()
