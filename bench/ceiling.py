"""The chain's ceiling: how many pre-signed transactions/s the node absorbs when they are submitted
concurrently (many senders, many in flight), measured against the node under test.

    .venv/bin/python -m bench.ceiling --rpc URL   # or imported: measure_ceiling(w3, funder_key)

Also the state file's ceiling for the decision pipeline's writes (`state_ceiling`, issue #16; bench.decision
prints it in the same run as its own figures).
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


# --- the state file's ceiling (issue #16) -------------------------------------------------------------------
def state_ceiling(n_fills: int = 20_000, *, per_commit: int = 1, caps: bool = False, copies: int = 10) -> dict:
    """Fills/s the state file itself takes for the packed journal's writes, without any Python logic: per fill
    exactly the statements the decision pipeline runs (the signal row, returning its id; the group row with
    `copies` packed legs; with caps, the totals read, the fill's one packed reservation row and the running
    totals of its wallets and of the day), prepared before the clock starts, `per_commit` fills per transaction (1: one fill at a time;
    100: a channel poll's fills), same schema, indexes, triggers and pragmas (a fresh State)."""
    import json
    import os
    import random
    import tempfile
    import time
    from pathlib import Path

    from copytrade_cli.state import State

    home = Path(tempfile.mkdtemp(prefix="ct-ceiling-"))
    s = State(home / "s.db")
    rnd = random.Random(3)
    tok = str(rnd.getrandbits(255))
    stamp = "2026-01-01T00:00:00.000+00:00"
    sig_cols = ["fill_key", "leader", "tx_hash", "log_index", "token_id", "condition_id", "side", "shares", "price",
                "usd", "channel", "detected_ms", "channels", "seen_at"]
    grp_cols = ["group_id", "fill_key", "flow", "side", "token_id", "condition_id", "price_limit", "t_detected",
                "stage", "status", "legs_json", "t_queued", "jobs_created", "created_at", "updated_at", "attempts"]
    fills = []
    for i in range(n_fills):
        leader = "0x" + rnd.randbytes(20).hex()
        fk = f"{leader}:0x{rnd.randbytes(32).hex()}:0:{tok}:BUY:{2_000_000 + i}"
        followers = ["0x" + rnd.randbytes(20).hex() for _ in range(copies)]
        legs = json.dumps([{"job_id": (i + 2 << 20) + k, "proxy": f, "usd_micro": 1_000_000,
                            "shares_micro": 1_923_076, "reserve_key": f"{fk}:{f}", "follow_id": k, "usd": "1",
                            "shares": "1.923076"} for k, f in enumerate(followers)])
        sig = (fk, leader, "0x" + rnd.randbytes(32).hex(), 0, tok, None, "BUY", "2", "0.5", "1", "mempool",
               1.7e12, "mempool", stamp)
        grp = (os.urandom(8).hex(), fk, "buffer", "BUY", tok, None, "0.52", 1.7e9, "queued", "queued", legs, 1.7e9, 0,
               stamp, stamp, 0)
        pack = (fk, "2026-01-01", json.dumps({f: [f, 1_000_000] for f in followers}, separators=(",", ":")))
        led = [("2026-01-01", w, 1_000_000) for w in ["*", *followers]]
        led = (pack, led)
        fills.append((sig, grp, led, followers))
    conn = s.db.conn
    sig_sql = (f"insert into signals ({','.join(sig_cols)}) values ({','.join('?' * len(sig_cols))}) "
               "on conflict do nothing returning rowid")
    grp_sql = f"insert into groups ({','.join(grp_cols)}) values ({','.join('?' * len(grp_cols))})"
    pack_sql = ("insert into guardrail_packs (pack, day, items_json) values (?, ?, ?) on conflict(pack) "
                "do update set items_json = json_patch(items_json, excluded.items_json)")
    led_sql = ("insert into guardrail_totals (day, wallet, micro) values (?, ?, ?) "
               "on conflict(day, wallet) do update set micro = micro + excluded.micro")
    tot_sql = f"select wallet, micro from guardrail_totals where day=? and wallet in ({','.join('?' * (copies + 1))})"
    w0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, n_fills, per_commit):
        conn.execute("BEGIN IMMEDIATE")
        for sig, grp, led, followers in fills[start:start + per_commit]:
            conn.execute(sig_sql, sig).fetchone()
            if caps:
                conn.execute(tot_sql, ["2026-01-01", "*", *followers]).fetchall()
                conn.execute(pack_sql, led[0])
                conn.executemany(led_sql, led[1])
            conn.execute(grp_sql, grp)
        conn.execute("COMMIT")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    s.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(f"{home / 's.db'}{suffix}")
        except OSError:
            pass
    return {"fills": n_fills, "per_commit": per_commit, "caps": caps, "fills_per_s": n_fills / wall,
            "cpu_fills_per_s": n_fills / cpu if cpu else float("inf"), "seconds": wall}
