"""Throughput: copies/s completed end to end by ONE supervisor instance on the fork (real anvil, local CLOB,
20 workers), Standard and Smart Buffer flows, aggregated execution, steady state; with the chain's ceiling
measured on the same node in the same run.

    .venv/bin/python -m bench.throughput                       # both flows, 10 and 100 followers per fill
    .venv/bin/python -m bench.throughput --flows buffer --followers 100 --seconds 30 --profile

The supervisor runs as `copytrade supervise --channels mempool,logs` in its own process. A driver makes the
seed leader trade (batches of fills mined at once, like a busy block) at an offered rate above the target;
completed copies are counted from the journal (groups.t_done x legs) inside the steady window only
(after a warm-up). Offered > completed means the supervisor is the bottleneck: completed is its capacity.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any

from .common import (BenchFork, add_follows, clear_follows, cpu_seconds, make_followers, med, pct, print_header, row,
                     stop_proc, supervise_proc, wait_for_line)

TARGET = 600.0


def _drive(fork: BenchFork, fills_per_s: float, stop: threading.Event, stats: dict[str, Any], usd: float) -> None:
    """Leader fills at `fills_per_s`, in batches (one or more matchOrders in one block)."""
    from copytrade_cli.localworld.trades import leader_batch

    batch = max(1, min(32, round(fills_per_s * 0.25)))
    interval = batch / fills_per_s
    nxt = time.time()
    while not stop.is_set():
        try:
            res = leader_batch(fork.w3, fork.world, count=batch, usd=usd, price="0.5", pending_ms=0)
            stats["fills"] += len(res.fills)
            stats["txs"] += len(res.tx_hashes)
        except Exception as exc:  # noqa: BLE001 — counted; the driver keeps going
            stats["errors"] += 1
            stats["last_error"] = str(exc)[:200]
        nxt += interval
        delay = nxt - time.time()
        if delay > 0:
            stop.wait(delay)
        elif delay < -2:
            nxt = time.time()  # the driver itself fell behind; do not burst


def _window_stats(state, t0: float, t1: float) -> dict[str, Any]:
    rows = state._q("select group_id, status, flow, legs_json, t_detected, t_queued, t_order_accepted, t_done "
                    "from groups")
    done = [r for r in rows if r["status"] == "complete" and r["t_done"] and t0 <= r["t_done"] <= t1]
    merged = sum(1 for r in rows if r["status"] == "merged")
    copies = sum(len(json.loads(r["legs_json"])) for r in done)
    lat = [(r["t_order_accepted"] - r["t_detected"]) * 1000 for r in done if r["t_order_accepted"] and r["t_detected"]]
    e2e = [(r["t_done"] - r["t_detected"]) * 1000 for r in done if r["t_detected"]]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    jobs = state.job_counts()
    return {"groups": len(done), "copies": copies, "merged": merged, "per_s": copies / (t1 - t0), "groups_per_s": len(done) / (t1 - t0),
            "lat_med": med(lat), "lat_p99": pct(lat, 99), "e2e_med": med(e2e), "e2e_p99": pct(e2e, 99),
            "group_status": statuses, "job_status": jobs}


def run_phase(fork: BenchFork, proxies: list[str], *, flow: str, per_fill: int, seconds: float, warmup: float,
              offered: float, profile: bool = False, usd: float = 2.0, coalesce: bool = True) -> dict[str, Any]:
    """One steady-state run of one flow with `per_fill` followers per leader fill."""
    from copytrade_cli.settings import SEED_LEADER

    clear_follows(fork)
    add_follows(fork, proxies[:per_fill], SEED_LEADER, amount="1", flow=flow)
    fork.state.set_cursor(f"logs:{fork.network}", str(fork.w3.eth.block_number))
    fork.state.db.execute("delete from groups")  # count this phase's groups only (fresh journal per phase)
    fork.state.db.execute("delete from jobs")
    fork.state.db.execute("update signals set skips_json = null")  # packed skips (#16) are this phase's jobs too
    proc, log = supervise_proc(fork, "--channels", "mempool,logs", *([] if coalesce else ["--no-coalesce"]))
    try:
        wait_for_line(log, "[TaskQueue] ready", proc)
        fills_per_s = offered / per_fill
        stop = threading.Event()
        dstats = {"fills": 0, "txs": 0, "errors": 0}
        th = threading.Thread(target=_drive, args=(fork, fills_per_s, stop, dstats, usd), daemon=True)
        pids = {"supervisor": proc.pid, "anvil": fork.node_pid, "clob": fork.clob_pid}
        blk0 = fork.w3.eth.block_number
        th.start()
        time.sleep(warmup)
        if fork.watch.too_big:
            raise RuntimeError(f"anvil memory passed {fork.watch.max_rss_mb} MB; bench stopped")
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items() if p}
        t0 = time.time()
        blk_t0 = fork.w3.eth.block_number
        prof_txt = None
        if profile:
            from .profile import record, summarize

            out = record(proc.pid, seconds)
            prof_txt = summarize(out) if out else None
        else:
            while time.time() < t0 + seconds and not fork.watch.too_big:
                time.sleep(0.2)
        if fork.watch.too_big:
            raise RuntimeError("anvil's memory ran away (stalled automine); bench stopped")
        t1 = time.time()
        cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items() if p}
        blk_t1 = fork.w3.eth.block_number
        txs = sum(len(fork.w3.eth.get_block(b)["transactions"]) for b in range(blk_t0 + 1, blk_t1 + 1)) \
            if blk_t1 - blk_t0 < 20_000 else None
        stop.set()
        th.join(30)
        ws = _window_stats(fork.state, t0, t1)
    finally:
        stop_proc(proc)
    ws.update({"flow": flow, "per_fill": per_fill, "coalesce": coalesce, "offered": offered, "driver": dstats, "cpu": cpu,
               "window_s": t1 - t0, "node_tx": txs, "node_tx_per_s": (txs or 0) / (t1 - t0), "profile": prof_txt,
               "blocks": blk_t1 - blk0})
    return ws


def print_phase(r: dict[str, Any], ceiling: dict | None) -> None:
    how = "" if r.get("coalesce", True) else ", coalescing off (one order per fill)"
    print(f"\n  --- {r['flow']} flow, {r['per_fill']} followers per fill{how}, offered {r['offered']:.0f} copies/s ---")
    row("completed copies/s (steady window)",
        f"{r['per_s']:,.1f}  ({r['copies']} copies in {r['groups']} groups over {r['window_s']:.1f} s; "
        f"{r['groups_per_s']:.1f} orders/s, {r['copies'] / max(1, r['groups']):.1f} copies per order)  "
        f"target {TARGET:.0f}: {'MET' if r['per_s'] >= TARGET else 'NOT MET'}")
    row("node transactions/s in the window", f"{r['node_tx_per_s']:,.1f} (all senders)")
    if ceiling:
        row("fraction of the chain's ceiling",
            f"{r['node_tx_per_s'] / ceiling['tx_per_s']:.1%} of its tx/s; copies/s = "
            f"{r['per_s'] / ceiling['tx_per_s']:.2f} x ceiling tx/s")
    row("detected -> order accepted (ms)", f"median {r['lat_med']:.0f}, p99 {r['lat_p99']:.0f} (under load)")
    row("detected -> group complete (ms)", f"median {r['e2e_med']:.0f}, p99 {r['e2e_p99']:.0f}")
    row("cpu seconds in window", ", ".join(f"{k} {v:.1f}" for k, v in r["cpu"].items())
        + f" (of {r['window_s'] * 2:.0f} on 2 cores)")
    row("driver", f"{r['driver']['fills']} fills in {r['driver']['txs']} txs, errors {r['driver']['errors']}"
        + (f" (last: {r['driver'].get('last_error')})" if r["driver"]["errors"] else ""))
    row("groups by status / jobs by status", f"{r['group_status']} / {r['job_status']}")
    if r.get("profile"):
        print("  profile of the supervisor process (py-spy, steady window):")
        print(r["profile"])


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import argparse

    from .ceiling import ceiling_rounds, print_ceiling

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", default="standard,buffer")
    ap.add_argument("--followers", default="10,100", help="followers per leader fill, comma list")
    ap.add_argument("--seconds", type=float, default=30.0, help="steady window per phase (>= 30 for the report)")
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--offered", type=float, default=1200.0,
                    help="copies/s offered (well above the target: completed < offered means we measured capacity)")
    ap.add_argument("--profile", action="store_true", help="py-spy the supervisor during the window")
    ap.add_argument("--no-coalesce-phase", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the smallest follower set with `supervise --no-coalesce`")
    ap.add_argument("--block-time", type=float, default=0.1,
                    help="anvil interval mining (s); 0 = automine (one block per tx, as `fork up` runs it)")
    a = ap.parse_args(argv)
    flows = [f.strip() for f in a.flows.split(",") if f.strip()]
    sizes = [int(x) for x in a.followers.split(",") if x.strip()]
    print_header("throughput: copies/s by one supervisor instance (aggregated execution)",
                 workers=20, flows=",".join(flows), followers_per_fill=",".join(map(str, sizes)),
                 window_s=a.seconds, warmup_s=a.warmup, offered_copies_per_s=a.offered,
                 channels="mempool,logs", clob="local CLOB (own process, settle_wait=receipt)",
                 mining=f"interval {a.block_time} s" if a.block_time else "automine")
    results = []
    # The smallest follower set also without coalescing: one order per leader fill, the capacity when fills
    # never share an order (coalescing under backlog merges fills of the same token and price).
    phases = [(flow, n, True) for flow in flows for n in sizes]
    if a.no_coalesce_phase:
        phases += [(flow, min(sizes), False) for flow in flows]
    for flow, n, coalesce in phases:
        # A fresh node per phase: anvil keeps every block in memory, and two phases at this load passed 4 GB
        # (the watchdog stops it). The chain's ceiling is measured on that same node right before the phase.
        with BenchFork(block_time=a.block_time or None) as fork:
            # Enough collateral that no proxy runs dry (1 USD per copy; the follower set carries the whole
            # offered rate): a dry proxy would turn copies into skips.
            need = a.offered * (a.warmup + a.seconds + 25) / n
            proxies = make_followers(fork, n, usdc=int(min(50_000, max(2_000, need * 1.2))))
            ceiling = ceiling_rounds(fork.w3)
            r = run_phase(fork, proxies, flow=flow, per_fill=n, seconds=a.seconds, warmup=a.warmup,
                          offered=a.offered, profile=a.profile, coalesce=coalesce)
            print_phase(r, ceiling)
            print_ceiling(ceiling, "chain ceiling, same node, before the phase")
            row("node watchdog", f"{fork.watch.kicks} stalled-pool blocks mined, node peak RSS {fork.watch.peak_rss_mb} MB")
            results.append(r)
    return results


if __name__ == "__main__":
    main()
