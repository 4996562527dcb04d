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

`--delays rpc=60,clob=120,relayer=300` (round trips in ms; `--delays live` is exactly that) puts loopback delay
proxies (bench/delay.py) between the supervisor and the node, the CLOB and the relayer, as a supervisor hosted away
from Polymarket sees them; the leader's driver and the CLOB's own settlement still talk to the node directly
(Polymarket's CLOB sits next to its nodes). The header prints each proxy's measured round trip.
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


LIVE_DELAYS = "rpc=60,clob=120,relayer=300"


def parse_delays(spec: str | None) -> dict[str, float]:
    """`rpc=60,clob=120,relayer=300` (or `live`) -> {"rpc": 60.0, ...}; empty/None -> {}."""
    if not spec:
        return {}
    if spec.strip().lower() == "live":
        spec = LIVE_DELAYS
    out: dict[str, float] = {}
    for part in spec.split(","):
        name, _, ms = part.partition("=")
        name = name.strip().lower()
        if name not in ("rpc", "clob", "relayer"):
            raise SystemExit(f"--delays: unknown endpoint {name!r} (rpc, clob, relayer)")
        try:
            out[name] = float(ms)
        except ValueError:
            raise SystemExit(f"--delays: {part!r} is not NAME=MS") from None
        if not 0 <= out[name] <= 10_000:
            raise SystemExit(f"--delays: {name} must be 0..10000 ms")
    return out


class Delays:
    """The delay proxies of one run: the supervisor's node endpoint (the node record points at the proxy, so
    polygon:local still talks to 'the recorded node'), its CLOB URL and its relayer URL."""

    def __init__(self, fork: BenchFork, clob_url: str, delays: dict[str, float]):
        from .delay import DelayProxy

        self.fork, self.proxies, self.env = fork, {}, {"COPYTRADE_CLOB_URL": clob_url}
        rec = fork.state.get_node()
        self._orig = (rec.rpc_url, rec.ws_url)
        if "rpc" in delays:
            p = self.proxies["rpc"] = DelayProxy(rec.rpc_url, delays["rpc"]).start()
            ws = rec.ws_url.replace(f":{urlport(rec.ws_url)}", f":{p.port}") if rec.ws_url else None
            fork.state.update_node("default", rpc_url=p.url, ws_url=ws)
        if "clob" in delays:
            p = self.proxies["clob"] = DelayProxy(clob_url, delays["clob"]).start()
            self.env["COPYTRADE_CLOB_URL"] = p.url
        relayer = getattr(rec, "relayer_url", None)
        if "relayer" in delays and relayer:
            # NOTE: nothing on the copy path calls the relayer (workers' wallets are set up before the run); the
            # proxy is there so the header shows the distance a `fleet setup` / redemption would see.
            self.proxies["relayer"] = DelayProxy(relayer, delays["relayer"]).start()

    def describe(self) -> str:
        from .delay import measure_rtt

        if not self.proxies:
            return "none (loopback)"
        probe = {"rpc": "", "clob": "/ok", "relayer": "/deployed?address=0x" + "0" * 40 + "&type=WALLET"}
        return ", ".join(f"{n} {p.rtt_ms:g} ms (measured {measure_rtt(p.url + probe[n]):.0f} ms)"
                         for n, p in self.proxies.items())

    def close(self) -> None:
        for p in self.proxies.values():
            p.stop()
        if "rpc" in self.proxies:
            self.fork.state.update_node("default", rpc_url=self._orig[0], ws_url=self._orig[1])


def urlport(url: str) -> int:
    from urllib.parse import urlsplit

    return urlsplit(url).port or 80


def measure(fork: BenchFork, clob_url: str, proxies: list[str], *, rate: float, seconds: float, flow: str,
            per_fill: int, batch: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    from copytrade_cli.settings import SEED_LEADER

    clear_follows(fork)
    add_follows(fork, proxies[:per_fill], SEED_LEADER, amount="1", flow=flow)
    fork.state.set_cursor(f"logs:{fork.network}", str(fork.w3.eth.block_number))
    proc, log = supervise_proc(fork, "--channels", "mempool,logs", env=env or {"COPYTRADE_CLOB_URL": clob_url})
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
    ap.add_argument("--delays", default="", help=f"round trips added on loopback, e.g. {LIVE_DELAYS} (or 'live')")
    a = ap.parse_args(argv)
    rates = [float(x) for x in a.rates.split(",") if x.strip()]
    delays = parse_delays(a.delays)
    out = []
    with BenchFork(block_time=a.block_time, clob=False) as fork:
        proxies = make_followers(fork, max(1, a.followers), usdc=5000)
        clob, url = start_clob(fork, a.settle_wait)
        fork.setup_fleet(url)
        d = Delays(fork, url, delays)
        print_header("latency: leader tx in the mempool -> our order accepted by the CLOB",
                     workers=20, flow=a.flow, followers_per_fill=a.followers, rates_fills_per_s=a.rates,
                     seconds_per_rate=a.seconds, mining=f"interval {a.block_time} s",
                     clob=f"local CLOB, own process, settle_wait={a.settle_wait}", channels="mempool,logs",
                     delays=d.describe())
        try:
            for rate in rates:
                batch = max(1, min(16, round(rate / 10)))
                r = measure(fork, url, proxies, rate=rate, seconds=a.seconds, flow=a.flow, per_fill=a.followers,
                            batch=batch, env=d.env)
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
            d.close()
            clob.terminate()
            clob.join(10)
        row("node watchdog", f"{fork.watch.kicks} stalled-pool blocks mined, node peak RSS {fork.watch.peak_rss_mb} MB")
    return out


if __name__ == "__main__":
    main()
