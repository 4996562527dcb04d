"""Latency: from the leader's transaction entering the node's mempool to our copy's order accepted by the
(local) CLOB, median and p99, at 10, 100 and 500 leader fills/s, one supervisor instance, 20 workers.

    .venv/bin/python -m bench.latency                         # Smart Buffer, 1 follower per fill
    .venv/bin/python -m bench.latency --rates 100 --seconds 20 --flow standard

Set-up: anvil mines on an interval (default 2 s, Polygon's block time), so a leader's transaction really
waits in the pool, as on Polygon; the local CLOB answers POST /order once the match's settlement transaction
is in the node (settle_wait="sent"), as the real CLOB answers on match, before settlement. A driver broadcasts
leader fills (matchOrders by the exchange operator, `--batch` fills per transaction) at the given rate and
records when the node accepted each transaction; the supervisor (mempool + logs channels) journals, per
group, when the fill was detected and when its order was accepted. Fills whose order was not accepted by
the end of the run count as "not placed" (reported; they sit above any percentile of the placed ones).
"""
from __future__ import annotations

import multiprocessing as mp
import time
from typing import Any

from .common import (BenchFork, LeaderDriver, add_follows, clear_follows, make_followers, med, pct, print_header,
                     row, stop_proc, supervise_proc, wait_for_line)

TARGET_MED_MS, TARGET_P99_MS = 50.0, 250.0


def _serve(world_json: str, rpc_url: str, port: int, settle_wait: str) -> None:
    import logging

    from copytrade_cli.localworld.clob_server import serve
    from copytrade_cli.localworld.world import DEV_KEYS, EXCHANGE_OPERATOR, MARKET_MAKER, World

    logging.basicConfig(level=logging.WARNING)
    serve(World.from_json(world_json), rpc_url, "127.0.0.1", port, operator_key=DEV_KEYS[EXCHANGE_OPERATOR],
          market_maker_key=DEV_KEYS[MARKET_MAKER], settle_wait=settle_wait)


def start_clob(fork: BenchFork, settle_wait: str = "sent") -> tuple[mp.Process, str]:
    """Our own local CLOB process (the fork's default one answers after the settlement receipt)."""
    import urllib.request

    from copytrade_cli.chain.node import free_port

    port = free_port()
    proc = mp.get_context("spawn").Process(target=_serve, args=(fork.world.to_json(), fork.rpc_url, port, settle_wait),
                                           daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/ok", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("local CLOB did not start")


def measure(fork: BenchFork, clob_url: str, proxies: list[str], *, rate: float, seconds: float, flow: str,
            per_fill: int, batch: int) -> dict[str, Any]:
    from copytrade_cli.settings import SEED_LEADER

    clear_follows(fork)
    add_follows(fork, proxies[:per_fill], SEED_LEADER, amount="1", flow=flow)
    fork.state.set_cursor(f"logs:{fork.network}", str(fork.w3.eth.block_number))
    proc, log = supervise_proc(fork, "--channels", "mempool,logs", env={"COPYTRADE_CLOB_URL": clob_url})
    try:
        wait_for_line(log, "[TaskQueue] ready", proc)
        time.sleep(1.0)
        drv = LeaderDriver(fork, rate, batch=batch).start()
        time.sleep(seconds)
        drv.stop()
        t_end = time.time()
        time.sleep(min(15.0, 3 + seconds / 2))  # let what was detected finish placing its order
    finally:
        stop_proc(proc)
    # per copy (job): its fill's tx (signals) and its group's order (a coalesced group serves several fills)
    rows = fork.state._q("select s.tx_hash, s.detected_ms / 1000.0 as t_detected, g.t_order_accepted, g.status "
                         "from job_rows j join signals s on s.fill_key = j.fill_key "
                         "left join groups g on g.group_id = j.group_id")
    lat, det, unplaced = [], [], 0
    for r in rows:
        t0 = drv.sent.get((r["tx_hash"] or "").lower())
        if t0 is None:
            continue
        if r["t_detected"]:
            det.append((r["t_detected"] - t0) * 1000)
        if r["t_order_accepted"]:
            lat.append((r["t_order_accepted"] - t0) * 1000)
        else:
            unplaced += 1
    expected = drv.fills
    seen = len(det)
    return {"rate": rate, "seconds": seconds, "fills_sent": expected, "groups": len(rows), "detected": seen,
            "placed": len(lat), "unplaced": unplaced + max(0, expected - seen), "med": med(lat), "p99": pct(lat, 99),
            "p50_detect": med(det), "p99_detect": pct(det, 99), "driver_errors": drv.errors,
            "driver_error": drv.last_error, "flow": flow, "t_end": t_end}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="10,100,500")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--flow", default="buffer", choices=["buffer", "standard"])
    ap.add_argument("--followers", type=int, default=1, help="followers per fill")
    ap.add_argument("--block-time", type=float, default=2.0)
    ap.add_argument("--settle-wait", default="sent", choices=["sent", "receipt", "none"])
    a = ap.parse_args(argv)
    rates = [float(x) for x in a.rates.split(",") if x.strip()]
    print_header("latency: leader tx in the mempool -> our order accepted by the CLOB",
                 workers=20, flow=a.flow, followers_per_fill=a.followers, rates_fills_per_s=a.rates,
                 seconds_per_rate=a.seconds, mining=f"interval {a.block_time} s",
                 clob=f"local CLOB, own process, settle_wait={a.settle_wait}", channels="mempool,logs")
    out = []
    with BenchFork(block_time=a.block_time, clob=False) as fork:
        proxies = make_followers(fork, max(1, a.followers), usdc=5000)
        clob, url = start_clob(fork, a.settle_wait)
        try:
            for rate in rates:
                batch = max(1, min(16, round(rate / 10)))
                r = measure(fork, url, proxies, rate=rate, seconds=a.seconds, flow=a.flow, per_fill=a.followers,
                            batch=batch)
                out.append(r)
                ok = r["med"] <= TARGET_MED_MS and r["p99"] <= TARGET_P99_MS and not r["unplaced"]
                row(f"{rate:g} fills/s ({batch} per leader tx)",
                    f"median {r['med']:.0f} ms, p99 {r['p99']:.0f} ms over {r['placed']} placed copies; "
                    f"{r['unplaced']} of {r['fills_sent']} fills not placed by the end"
                    + (f"  target (<= {TARGET_MED_MS:.0f}/{TARGET_P99_MS:.0f} ms at 100/s): {'MET' if ok else 'NOT MET'}"
                       if rate == 100 else ""))
                row("  of which mempool -> detected", f"median {r['p50_detect']:.0f} ms, p99 {r['p99_detect']:.0f} ms"
                    + (f"; driver errors {r['driver_errors']} ({r['driver_error']})" if r["driver_errors"] else ""))
        finally:
            clob.terminate()
            clob.join(10)
        row("node watchdog", f"{fork.watch.kicks} stalled-pool blocks mined, node peak RSS {fork.watch.peak_rss_mb} MB")
    return out


if __name__ == "__main__":
    main()
