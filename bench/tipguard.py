"""The tip guard's overhead: the chain ceiling (pre-signed transfers submitted concurrently) and sequential
send+receipt transactions, on anvil with the guard in front (the default) and without it, interleaved.

    .venv/bin/python -m bench.tipguard [--rounds 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from .ceiling import ceiling_rounds
from .common import row


def sequential_tx_per_s(w3, key: str, n: int = 200) -> float:
    """`n` transfers, each sent and waited for (the supervisor's one-at-a-time path)."""
    from eth_account import Account

    from copytrade_cli.chain.lanes import TxLane

    lane = TxLane(w3, Account.from_key(key))
    t = time.perf_counter()
    for _ in range(n):
        lane.transact({"to": lane.address, "value": 0}, gas=21_000)
    return n / (time.perf_counter() - t)


def main() -> None:
    from web3 import Web3

    from copytrade_cli.chain.node import start_node, stop_pid
    from copytrade_cli.localworld.world import DEV_KEYS

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    results: dict[str, list] = {"guard": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.rounds):
            for label, floor in (("bare", None), ("guard", 25.0)):
                n = start_node("anvil", port=None, chain_id=137, log_dir=Path(tmp) / f"{label}{i}", min_tip_gwei=floor)
                try:
                    w3 = Web3(Web3.HTTPProvider(n.rpc_url, request_kwargs={"timeout": 30}))
                    c = ceiling_rounds(w3, rounds=1)
                    s = sequential_tx_per_s(w3, DEV_KEYS[1])
                    results[label].append((c["tx_per_s"], s, c["errors"]))
                finally:
                    stop_pid(n.pid, "anvil")
    for label, rs in results.items():
        ceil = sorted(r[0] for r in rs)[len(rs) // 2]
        seq = sorted(r[1] for r in rs)[len(rs) // 2]
        row(f"anvil {label}", f"ceiling {ceil:,.0f} tx/s (runs {[round(r[0]) for r in rs]}), sequential send+receipt "
            f"{seq:,.0f} tx/s (runs {[round(r[1]) for r in rs]}), errors {[r[2] for r in rs]}")
    g = sorted(r[0] for r in results["guard"])[len(rs) // 2] / sorted(r[0] for r in results["bare"])[len(rs) // 2]
    q = sorted(r[1] for r in results["guard"])[len(rs) // 2] / sorted(r[1] for r in results["bare"])[len(rs) // 2]
    row("guard / bare", f"ceiling x{g:.2f}, sequential x{q:.2f}")


if __name__ == "__main__":
    main()
