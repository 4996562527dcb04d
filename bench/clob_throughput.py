"""Orders settled per second by the local CLOB, driven by the UNMODIFIED py_clob_client_v2.

    .venv/bin/python bench/clob_throughput.py                      # 8 client threads, 20 s, own anvil
    .venv/bin/python bench/clob_throughput.py --threads 4 --seconds 10 --settle-wait sent
    .venv/bin/python bench/clob_throughput.py --inproc             # server in this process (shares the GIL)

Each client thread is one funded trader posting `create_and_post_market_order` FOK BUYs of $1 (spread over
the markets' YES/NO tokens); every accepted order is a matchOrders transaction mined on anvil before the
answer (with the default --settle-wait receipt). The server runs in its own process by default, so the
clients and the server do not share a GIL. Prints orders/s, latency percentiles and the server's counters.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _serve(world_json: str, rpc_url: str, port: int, settle_wait: str, levels: int, level_size: float) -> None:
    import logging

    from copytrade_cli.localworld.clob_server import serve
    from copytrade_cli.localworld.world import DEV_KEYS, EXCHANGE_OPERATOR, MARKET_MAKER, World

    logging.basicConfig(level=logging.WARNING)
    serve(World.from_json(world_json), rpc_url, "127.0.0.1", port, operator_key=DEV_KEYS[EXCHANGE_OPERATOR],
          market_maker_key=DEV_KEYS[MARKET_MAKER], settle_wait=settle_wait, levels=levels, level_size=level_size)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants (the npm `anvil` is a node wrapper), from /proc."""
    import os

    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def _wait_http(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if httpx.get(url + "/ok", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"local CLOB did not answer on {url}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--markets", type=int, default=2)
    ap.add_argument("--amount", type=float, default=1.0, help="USD per market BUY")
    ap.add_argument("--settle-wait", default="receipt", choices=["receipt", "sent", "none"])
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--level-size", type=float, default=5000.0)
    ap.add_argument("--inproc", action="store_true", help="run the server in this process")
    args = ap.parse_args()

    from eth_account import Account
    from py_clob_client_v2.client import ClobClient
    from py_clob_client_v2.clob_types import MarketOrderArgsV2, OrderType
    from web3 import Web3

    from copytrade_cli.chain.node import free_port
    from copytrade_cli.localworld.clob_server import ClobServerThread
    from copytrade_cli.localworld.plant import plant_polymarket
    from copytrade_cli.localworld.world import DEV_KEYS, EXCHANGE_OPERATOR, MARKET_MAKER
    from tests.conftest import AnvilNode

    node = AnvilNode(home=Path(tempfile.mkdtemp(prefix="clobbench-")))
    proc = srv = None
    try:
        w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
        traders = [Account.create() for _ in range(args.threads)]
        world = plant_polymarket(w3, DEV_KEYS[0], n_markets=args.markets, leaders=[t.address for t in traders],
                                 leader_usdc=100_000, leader_shares=0)
        if args.inproc:
            srv = ClobServerThread(world, node.url, operator_key=DEV_KEYS[EXCHANGE_OPERATOR],
                                   market_maker_key=DEV_KEYS[MARKET_MAKER], settle_wait=args.settle_wait,
                                   levels=args.levels, level_size=args.level_size)
            url = srv.start()
        else:
            port = free_port()
            proc = mp.get_context("spawn").Process(
                target=_serve, args=(world.to_json(), node.url, port, args.settle_wait, args.levels, args.level_size),
                daemon=True)
            proc.start()
            url = f"http://127.0.0.1:{port}"
            _wait_http(url)
        tokens = [t for m in world.markets for t in m.token_ids]

        clients = []
        for t in traders:
            c = ClobClient(url, 137, key=t.key.hex())
            c.set_api_creds(c.create_or_derive_api_key())
            for tok in tokens:  # warm the client's caches (markets-by-token, clob-markets, version)
                c.get_tick_size(tok)
            clients.append(c)

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()
        start_evt = threading.Event()
        deadline = [0.0]

        def run(i: int, c) -> None:
            start_evt.wait()
            n = i
            while time.time() < deadline[0]:
                tok = tokens[n % len(tokens)]
                n += 1
                t0 = time.perf_counter()
                try:
                    r = c.create_and_post_market_order(MarketOrderArgsV2(token_id=tok, amount=args.amount, side="BUY"),
                                                       order_type=OrderType.FOK)
                    ok = r.get("status") == "matched" and (r.get("transactionsHashes") or args.settle_wait == "none")
                except Exception as exc:  # noqa: BLE001 — counted and reported
                    ok, r = False, str(exc)
                dt = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(dt)
                    else:
                        errors.append(str(r)[:160])

        threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(clients)]
        for th in threads:
            th.start()
        import os

        pids = {"anvil": node.proc.pid, "clients": os.getpid()}
        if proc is not None:
            pids["server"] = proc.pid
        cpu0 = {k: _cpu_seconds(p) for k, p in pids.items()}
        t_start = time.time()
        deadline[0] = t_start + args.seconds
        start_evt.set()
        for th in threads:
            th.join()
        elapsed = time.time() - t_start
        cpu = {k: _cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
        if "server" in cpu:
            cpu["clients"] -= cpu["server"]  # the server process is a child of this one

        blocks = w3.eth.block_number
        n = len(latencies)
        print(f"client threads     : {args.threads} (server {'in-process' if args.inproc else 'own process'}, "
              f"settle_wait={args.settle_wait})")
        print(f"orders settled     : {n} in {elapsed:.1f} s  ->  {n / elapsed:.1f} orders/s")
        if latencies:
            q = statistics.quantiles(latencies, n=20) if n >= 20 else [max(latencies)] * 19
            print(f"latency per order  : p50 {statistics.median(latencies) * 1e3:.1f} ms, "
                  f"p95 {q[18] * 1e3:.1f} ms (GET /book + POST /order + settlement)")
        print(f"errors             : {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))
        print(f"chain height       : {blocks}")
        print("cpu seconds        : " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items())
              + f"  (of {elapsed * (os.cpu_count() or 1):.0f} available on {os.cpu_count()} cores)")
        import httpx

        stats = httpx.get(url + "/local/stats", timeout=10).json()
        print(f"server stats       : {json.dumps(stats)}")
    finally:
        if srv is not None:
            srv.stop()
        if proc is not None:
            proc.terminate()
            proc.join(10)
        node.stop()


if __name__ == "__main__":
    main()
