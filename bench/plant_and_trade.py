"""Time the offline Polymarket: plant on a fresh anvil (cold: deploys included; warm: runtime code cached in
process), re-plant (idempotent path), one leader trade and one 16-fill batch. Prints figures, asserts nothing.

    .venv/bin/python bench/plant_and_trade.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from web3 import Web3

    from copytrade_cli.localworld.plant import plant_polymarket
    from copytrade_cli.localworld.trades import leader_batch, leader_trade
    from copytrade_cli.localworld.world import DEV_KEYS
    from tests.conftest import AnvilNode

    for label in ("cold", "warm"):
        node = AnvilNode(home=Path(tempfile.mkdtemp()))
        try:
            w3 = Web3(Web3.HTTPProvider(node.url))
            t = time.perf_counter()
            world = plant_polymarket(w3, DEV_KEYS[0])
            print(f"plant ({label} process, fresh anvil): {time.perf_counter() - t:.3f}s")
            t = time.perf_counter()
            plant_polymarket(w3, DEV_KEYS[0])
            print(f"re-plant (already planted):           {time.perf_counter() - t:.3f}s")
            t = time.perf_counter()
            leader_trade(w3, world, pending_ms=0)
            print(f"leader_trade (pending_ms=0):          {time.perf_counter() - t:.3f}s")
            t = time.perf_counter()
            res = leader_batch(w3, world, count=16, usd=1, pending_ms=0)
            gas = w3.eth.get_transaction_receipt(res.tx_hash)["gasUsed"]
            print(f"leader_batch 16 fills (pending_ms=0):  {time.perf_counter() - t:.3f}s, {gas} gas")
        finally:
            node.stop()


if __name__ == "__main__":
    main()
