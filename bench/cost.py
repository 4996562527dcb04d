"""Cost per copy: gas and CLOB orders per copy with 1, 10 and 100 followers per leader fill, both flows.

    .venv/bin/python -m bench.cost                     # 1 warm-up + 3 measured fills per case
    .venv/bin/python -m bench.cost --followers 10 --fills 5

Each case copies single leader fills one at a time (no coalescing: one fill = one order), waits until every
copy is complete (and, for Smart Buffer, reimbursed), then reads the receipts of every transaction mined
meanwhile: ours (worker pulls, pushes, change refunds, reimbursements) and the CLOB's settlement
(`matchOrders` by the exchange operator; on Polygon the operator pays it, but it is block space all the
same). The leader's own trades and the market maker's inventory top-ups are not counted. The warm-up fill
is excluded: a proxy's first buy of a token writes a fresh balance slot (~17k more gas per follower).
"""
from __future__ import annotations

import time
from typing import Any

from .common import (BenchFork, add_follows, clear_follows, make_followers, print_header, row, stop_proc,
                     supervise_proc, wait_for_line)

POLYGON_GAS_PER_S = 80e6
BASELINE_COPIES_PER_S = 579
TARGET_GAS, TARGET_ORDERS = 50_000, 0.1


def _wait_done(fork: BenchFork, n_groups: int, flow: str, timeout: float = 120, debts: bool = True) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = fork.state._q("select status, count(*) n from groups group by status")
        done = sum(r["n"] for r in st if r["status"] in ("complete", "refunded", "failed", "merged"))
        busy = sum(r["n"] for r in st if r["status"] not in ("complete", "refunded", "failed", "merged", "dropped"))
        if done >= n_groups and not busy and (flow != "buffer" or not debts or not fork.state.open_debts()):
            return
        time.sleep(0.2)
    raise RuntimeError(f"copies not complete within {timeout:.0f}s: {st}")


def run_case(fork: BenchFork, proxies: list[str], *, flow: str, per_fill: int, fills: int) -> dict[str, Any]:
    from copytrade_cli.chain.accounts import worker_accounts
    from copytrade_cli.localworld.trades import leader_trade
    from copytrade_cli.settings import SEED_LEADER

    clear_follows(fork)
    add_follows(fork, proxies[:per_fill], SEED_LEADER, amount="2", flow=flow)
    fork.state.db.execute("delete from groups")
    fork.state.set_cursor(f"logs:{fork.network}", str(fork.w3.eth.block_number))
    proc, log = supervise_proc(fork, "--channels", "mempool,logs", env={"SUPERVISOR_CONFIG_REFRESH_MS": "500"})
    try:
        wait_for_line(log, "[TaskQueue] ready", proc)
        leader_trade(fork.w3, fork.world, side="BUY", usd=5.0, price="0.5", pending_ms=0)  # warm-up (first buys)
        _wait_done(fork, 1, flow)
        time.sleep(0.5)
        b0 = fork.w3.eth.block_number
        fork.state.db.execute("delete from groups")
        for k in range(fills):
            leader_trade(fork.w3, fork.world, side="BUY", usd=5.0 + k, price="0.5", pending_ms=0)
            if flow != "buffer":
                _wait_done(fork, k + 1, flow)
            else:
                # Smart Buffer debts are repaid asynchronously, in rounds (every 2 s by default), summed per
                # proxy: the fills follow each other as a leader's would, and the debts are awaited at the end.
                time.sleep(0.3)
        _wait_done(fork, fills, flow)
        time.sleep(0.5)
        b1 = fork.w3.eth.block_number
        groups = fork.state._q("select legs_json, status from groups where status='complete'")
    finally:
        stop_proc(proc)
    import json

    copies = sum(len(json.loads(g["legs_json"])) for g in groups)
    workers = {a.address.lower() for a in worker_accounts(fork.settings)}
    ex_op = fork.world.exchange_operator.lower()
    ours = settle = 0
    n_ours = n_settle = 0
    for b in range(b0 + 1, b1 + 1):
        blk = fork.w3.eth.get_block(b, full_transactions=True)
        for tx in blk["transactions"]:
            frm = tx["from"].lower()
            if frm in workers or frm == ex_op:
                gas = fork.w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]
                if frm in workers:
                    ours += gas
                    n_ours += 1
                else:
                    settle += gas
                    n_settle += 1
    return {"flow": flow, "per_fill": per_fill, "fills": fills, "copies": copies, "orders": len(groups),
            "gas_ours": ours, "gas_settle": settle, "tx_ours": n_ours, "tx_settle": n_settle}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flows", default="standard,buffer")
    ap.add_argument("--followers", default="1,10,100")
    ap.add_argument("--fills", type=int, default=3)
    a = ap.parse_args(argv)
    sizes = [int(x) for x in a.followers.split(",") if x.strip()]
    flows = [f.strip() for f in a.flows.split(",") if f.strip()]
    print_header("cost per copy: gas and CLOB orders", followers_per_fill=a.followers, flows=a.flows,
                 measured_fills_per_case=a.fills, copy_size="2 USD fixed", mining="interval 0.1 s",
                 polygon_capacity="~80M gas/s (140M-gas blocks every ~1.75 s)")
    out = []
    with BenchFork(block_time=0.1) as fork:
        proxies = make_followers(fork, max(sizes), usdc=500)
        for flow in flows:
            for n in sizes:
                r = run_case(fork, proxies, flow=flow, per_fill=n, fills=a.fills)
                out.append(r)
                c = max(1, r["copies"])
                ours, total = r["gas_ours"] / c, (r["gas_ours"] + r["gas_settle"]) / c
                orders = r["orders"] / c
                share = BASELINE_COPIES_PER_S * total / POLYGON_GAS_PER_S
                verdict = ""
                if n == 10:
                    ok = total <= TARGET_GAS and orders <= TARGET_ORDERS
                    verdict = f"  target (<= {TARGET_GAS // 1000}k gas, <= {TARGET_ORDERS} orders): " \
                              f"{'MET' if ok else 'NOT MET'}"
                row(f"{flow}, {n} follower(s) per fill",
                    f"{total:,.0f} gas/copy (ours {ours:,.0f} in {r['tx_ours']} tx + CLOB settlement "
                    f"{r['gas_settle'] / c:,.0f} in {r['tx_settle']} tx), {orders:.3f} orders/copy "
                    f"({r['copies']} copies){verdict}")
                row("  seed baseline (579 copies/s) at this cost", f"{share:.1%} of Polygon's ~80M gas/s; "
                    f"{BASELINE_COPIES_PER_S * orders * 600:,.0f} orders per 10 min (CLOB sustained limit 36,000)")
    return out


if __name__ == "__main__":
    main()
