"""The chain's ceiling: how many pre-signed transactions/s the node absorbs when they are submitted
concurrently (many senders, many in flight), measured against the node under test.

    .venv/bin/python -m bench.ceiling --rpc URL   # or imported: measure_ceiling(w3, funder_key)
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from .common import row


def measure_ceiling(w3: Any, funder_key: str, *, n_tx: int = 1000, senders: int = 20, in_flight: int = 20) -> dict:
    """Pre-sign `n_tx` plain transfers from `senders` fresh accounts, submit them concurrently (each sender's
    in nonce order, `senders` requests in flight), and time first send -> last one mined. Returns {"tx_per_s", "n", "seconds", ...}."""
    import aiohttp
    from eth_account import Account

    from copytrade_cli.chain.lanes import TxLane

    from copytrade_cli.chain.rpc import wait_receipt

    chain_id = w3.eth.chain_id
    funder = Account.from_key(funder_key)
    lane = TxLane(w3, funder)
    accts = [Account.create() for _ in range(senders)]
    hs = [lane.send({"to": a.address, "value": 10**18}, gas=21_000) for a in accts]
    for h in hs:
        wait_receipt(w3, h)
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    per = n_tx // senders
    t_sign = time.perf_counter()
    by_sender: list[list[str]] = [[] for _ in accts]
    for i in range(per):
        for k, a in enumerate(accts):
            tx = {"chainId": chain_id, "nonce": i, "to": funder.address, "value": 1, "gas": 21_000,
                  "maxFeePerGas": 4 * base + 25 * 10**9, "maxPriorityFeePerGas": 25 * 10**9}
            by_sender[k].append("0x" + a.sign_transaction(tx).raw_transaction.hex())
    sign_s = time.perf_counter() - t_sign
    url = w3.provider.endpoint_uri
    start_block = w3.eth.block_number

    first_error: dict[str, str] = {}

    async def submit() -> tuple[float, float, int]:
        errors = 0
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as s:
            async def lane(k: int):
                # one sender's transactions in nonce order (never out of order over concurrent connections)
                nonlocal errors
                for raw in by_sender[k]:
                    async with s.post(url, json={"jsonrpc": "2.0", "id": k, "method": "eth_sendRawTransaction",
                                                 "params": [raw]}) as resp:
                        data = await resp.json(content_type=None)
                        if "error" in data:
                            errors += 1
                            first_error.setdefault("e", str(data["error"])[:200])
            t0 = time.perf_counter()
            await asyncio.gather(*(lane(k) for k in range(senders)))
            t_sent = time.perf_counter()
            # wait until every sender's last nonce is mined
            deadline = time.time() + 30
            while time.time() < deadline:
                body = [{"jsonrpc": "2.0", "id": i, "method": "eth_getTransactionCount",
                         "params": [a.address, "latest"]} for i, a in enumerate(accts)]
                async with s.post(url, json=body) as resp:
                    counts = [int(d["result"], 16) for d in await resp.json(content_type=None)]
                if all(c >= per for c in counts):
                    break
                await asyncio.sleep(0.01)
            return t0, t_sent, errors, all(c >= per for c in counts)

    t0, t_sent, errors, complete = asyncio.run(submit())
    t_end = time.perf_counter()
    n = per * senders
    blocks = w3.eth.block_number - start_block
    return {"tx_per_s": n / (t_end - t0), "complete": complete, "n": n, "seconds": t_end - t0, "submit_s": t_sent - t0,
            "errors": errors, "first_error": first_error.get("e"), "senders": senders, "in_flight": in_flight, "blocks": blocks, "sign_s": sign_s}


def ceiling_rounds(w3: Any, rounds: int = 3, **kw: Any) -> dict:
    """`rounds` bursts (fresh senders each), median tx/s; each burst is kept to 1,000 transactions because
    anvil 1.7.1's automine wedges under larger concurrent bursts on this machine (see common.NodeWatch)."""
    from copytrade_cli.localworld.world import DEV_KEYS

    runs = [measure_ceiling(w3, DEV_KEYS[9 - (i % 4)], **kw) for i in range(rounds)]
    out = dict(sorted(runs, key=lambda r: r["tx_per_s"])[len(runs) // 2])
    out["runs"] = [round(r["tx_per_s"]) for r in runs]
    out["all_complete"] = all(r["complete"] for r in runs)
    return out


def print_ceiling(c: dict, label: str = "chain ceiling (pre-signed transfers)") -> None:
    runs = f"median of {c['runs']} tx/s; " if "runs" in c else ""
    row(label, f"{c['tx_per_s']:,.0f} tx/s  ({runs}{c['n']} tx per burst from {c['senders']} senders, "
        f"{c['in_flight']} in flight, {c['blocks']} blocks, {c['errors']} errors"
        + ("" if c.get("all_complete", c.get("complete", True)) else ", SOME BURST NOT MINED WITHIN 30 s") + ")")


if __name__ == "__main__":
    import argparse

    from web3 import Web3

    from copytrade_cli.localworld.world import DEV_KEYS

    ap = argparse.ArgumentParser()
    ap.add_argument("--rpc", required=True)
    ap.add_argument("--n", type=int, default=1000)
    a = ap.parse_args()
    print_ceiling(ceiling_rounds(Web3(Web3.HTTPProvider(a.rpc)), n_tx=a.n))
