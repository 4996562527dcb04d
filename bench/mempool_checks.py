"""What the mempool channel's trust checks cost: detection latency (leader tx accepted by the node -> its fills
handed to the intake) with the checks (sender is an exchange operator, read from the chain and cached; every
leader order's signature verified) and without them, on a local anvil mining every 2 s (Polygon's block time).

    .venv/bin/python -m bench.mempool_checks                       # 20 fills/s, 1 and 8 leader fills per tx
    .venv/bin/python -m bench.mempool_checks --rate 50 --seconds 15 --batches 1,16

The same driver as bench/latency (the trade operator's matchOrders of signed leader orders, not waiting for
them to be mined) feeds one MempoolChannel at a time, so the two runs do not share the CPU. Per run: detection
latency median and p99 over every fill seen, and the channel's own time per transaction (decode + checks,
without the node round trips of the poll). The first transaction of a run also pays the operator read (one
eth_call), reported apart as "first sight".
"""
from __future__ import annotations

import argparse
import threading
import time

from .common import BenchFork, LeaderDriver, med, pct, print_header, row


class _Sink:
    """The intake's place: records when each tx's fills arrived."""

    def __init__(self):
        self.at: dict[str, float] = {}
        self.fills = 0

    def on_fill(self, f) -> None:
        self.on_fills([f])

    def on_fills(self, fills) -> None:
        now = time.time()
        for f in fills:
            self.at.setdefault(f.tx_hash.lower(), now)
        self.fills += len(fills)


def run(fork: BenchFork, *, verify: bool, rate: float, batch: int, seconds: float) -> dict:
    """One run: a fresh channel (cold operator cache) against a steady leader driver."""
    from copytrade_cli.supervisor.detect import MempoolChannel

    sink, stop = _Sink(), threading.Event()
    leaders = {fork.world.leader.lower()}
    ch = MempoolChannel(sink, lambda: leaders, stop, rpc_url=fork.rpc_url, exchanges=[fork.world.exchange],
                        ctf=fork.world.ctf, chain_id=fork.world.chain_id, verify=verify)
    spent: list[float] = []
    inner = ch.fills_of

    def timed(txs, lead):
        t0 = time.perf_counter()
        out = inner(txs, lead)
        n = sum(1 for tx in txs if tx)
        if n:
            spent.append((time.perf_counter() - t0) * 1000 / n)
        return out

    ch.fills_of = timed
    ch.start()
    time.sleep(0.5)
    drv = LeaderDriver(fork, rate, batch=batch).start()
    time.sleep(seconds)
    drv.stop()
    time.sleep(1.0)
    stop.set()
    ch.join(5)
    lat = sorted((sink.at[h] - t) * 1000 for h, t in drv.sent.items() if h in sink.at)
    first = min(drv.sent, key=drv.sent.get) if drv.sent else None
    return {"sent": len(drv.sent), "seen": len(lat), "p50": med(lat), "p99": pct(lat, 99),
            "first": (sink.at[first] - drv.sent[first]) * 1000 if first in sink.at else float("nan"),
            "per_tx_ms": med(spent), "refused": ch.refused_sender + ch.refused_signature,
            "operator_reads": ch.operators.reads, "driver_errors": drv.errors}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=20.0, help="leader fills per second")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--batches", default="1,8", help="leader fills per transaction, one run pair each")
    a = ap.parse_args(argv)
    batches = [int(b) for b in a.batches.split(",")]
    with BenchFork(clob=False, block_time=2) as fork:
        print_header("mempool checks: leader tx accepted by the node -> fills handed to the intake",
                     rate=f"{a.rate:g} fills/s", seconds=a.seconds, node="anvil, 2 s blocks",
                     checks="operator (isOperator, cached) + order signatures")
        for batch in batches:
            for verify in (False, True):
                r = run(fork, verify=verify, rate=a.rate, batch=batch, seconds=a.seconds)
                label = f"{batch} fill(s)/tx, checks {'on' if verify else 'off'}"
                row(label, f"median {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms ({r['seen']}/{r['sent']} txs)")
                row("  channel time per tx", f"{r['per_tx_ms']:.2f} ms; first sight {r['first']:.1f} ms; "
                                             f"operator reads {r['operator_reads']}, refused {r['refused']}")


if __name__ == "__main__":
    main()
