"""Gas used by the copytrade contracts on a real anvil.

    .venv/bin/python bench/gas_contracts.py            # starts its own anvil (stopped by PID)
    .venv/bin/python bench/gas_contracts.py --rpc URL  # or use a running dev node

Prints: each deployment, createProxy, one narrowed `execute`, per-proxy gas inside pullCollateral /
pullOutcome / pushOutcome / pushCollateral batches of 1, 10 and 50 (average = total/N; marginal = the
cost of one more leg, (gas(50) - gas(1)) / 49), and one MockExchangeV2.matchOrders settlement.
State is realistic for steady operation: proxies and workers already hold non-zero balances, except
pushOutcome, measured both into proxies that hold none of the token yet (first buy of a market: a
zero-to-non-zero storage write, ~17k more per leg) and into proxies that already hold some.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

USDC = 10**6
MAX = 2**256 - 1
ZERO32 = b"\0" * 32
SIZES = (1, 10, 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rpc", help="use this node instead of starting an anvil")
    args = ap.parse_args()
    node = None
    if args.rpc:
        url = args.rpc
    else:
        import tempfile

        from tests.conftest import AnvilNode

        node = AnvilNode(home=Path(tempfile.mkdtemp(prefix="gasbench-")))
        url = node.url
    try:
        run(url)
    finally:
        if node is not None:
            node.stop()


def run(url: str) -> None:
    from eth_account import Account
    from web3 import Web3

    from copytrade_cli.chain import contracts as C
    from tests.conftest import DEV_KEYS
    from tests.integration.test_contracts import make_order

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    admin = Account.from_key(DEV_KEYS[0])
    worker = Account.from_key(DEV_KEYS[1])
    mm = Account.from_key(DEV_KEYS[2])
    oracle = Account.from_key(DEV_KEYS[3])
    rows: list[tuple[str, str]] = []

    def tx(acct, fn):
        return C.transact(w3, acct, fn)

    # ---- deployments
    deploy_gas = {}
    addr = {}
    for name, dargs in (("MockCollateral", ("Polymarket USD", "pUSD")), ("MockConditionalTokens", ()),):
        addr[name], _, _, deploy_gas[name] = C.deploy(w3, admin, name, *dargs)
    usdc = C.contract(w3, "MockCollateral", addr["MockCollateral"])
    ctf = C.contract(w3, "MockConditionalTokens", addr["MockConditionalTokens"])
    addr["MockExchangeV2"], _, _, deploy_gas["MockExchangeV2"] = C.deploy(w3, admin, "MockExchangeV2", usdc.address, ctf.address)
    ex = C.contract(w3, "MockExchangeV2", addr["MockExchangeV2"])
    tx(admin, usdc.functions.initialize(admin.address))
    tx(admin, ex.functions.initialize(admin.address))
    tx(admin, ex.functions.addOperator(admin.address))
    stack = C.deploy_stack(w3, admin, targets=[usdc.address, ctf.address], workers=[worker.address])
    deploy_gas.update(stack.gas)
    executor = C.contract(w3, "Executor", stack.executor)
    factory = C.contract(w3, "ProxyFactory", stack.factory)
    for name, g in deploy_gas.items():
        rows.append((f"deploy {name}", f"{g:,}"))

    # ---- proxies
    n = sum(SIZES)  # disjoint fresh proxies for the first-buy pushOutcome case
    owners = [Account.create().address for _ in range(n)]
    create_gas = [tx(admin, factory.functions.createProxy(o))["gasUsed"] for o in owners]
    proxies = [factory.functions.proxyOf(o).call() for o in owners]
    rows.append(("createProxy (first / typical)", f"{create_gas[0]:,} / {create_gas[-1]:,}"))

    # market + balances: every proxy holds collateral and YES; the worker holds both too
    question = b"\x42" * 32
    tx(oracle, ctf.functions.prepareCondition(oracle.address, question, 2))
    cid = ctf.functions.getConditionId(oracle.address, question, 2).call()
    yes, no = (ctf.functions.getPositionId(usdc.address, ctf.functions.getCollectionId(ZERO32, cid, s).call()).call()
               for s in (1, 2))
    tx(admin, usdc.functions.mint(mm.address, 10_000 * USDC))
    tx(mm, usdc.functions.approve(ctf.address, MAX))
    tx(mm, ctf.functions.splitPosition(usdc.address, ZERO32, cid, [1, 2], 5_000 * USDC))
    for p in proxies:
        tx(admin, usdc.functions.mint(p, 1_000 * USDC))
    tx(admin, usdc.functions.mint(worker.address, 1_000 * USDC))
    tx(mm, ctf.functions.safeTransferFrom(mm.address, worker.address, yes, 2_000 * USDC, b""))
    tx(worker, usdc.functions.approve(executor.address, MAX))
    tx(worker, ctf.functions.setApprovalForAll(executor.address, True))

    # ---- one execute (transfer proxy -> worker)
    data = bytes.fromhex(usdc.encode_abi("transfer", args=[worker.address, USDC])[2:])
    g = tx(worker, executor.functions.execute(proxies[0], usdc.address, data))["gasUsed"]
    rows.append(("execute: one narrowed ERC-20 transfer (whole tx)", f"{g:,}"))

    def batch(label, fn_for):
        gas = {}
        for size in SIZES:
            gas[size] = tx(worker, fn_for(proxies[:size], [USDC] * size))["gasUsed"]
        marginal = (gas[SIZES[-1]] - gas[SIZES[0]]) / (SIZES[-1] - SIZES[0])
        cells = ", ".join(f"N={k}: {v:,} ({v // k:,}/proxy)" for k, v in gas.items())
        rows.append((f"{label}", f"{cells}; marginal {marginal:,.0f}/proxy"))

    # pushOutcome into proxies holding none of the token yet (0 -> non-zero): disjoint never-touched
    # proxies per batch size; then make sure every proxy holds some.
    fresh, offset = {}, 0
    for size in SIZES:
        chunk = proxies[offset:offset + size]
        offset += size
        fresh[size] = tx(worker, executor.functions.pushOutcome(ctf.address, yes, chunk, [USDC] * size))["gasUsed"]
    tx(worker, executor.functions.pushOutcome(ctf.address, yes, proxies[:max(SIZES)], [USDC] * max(SIZES)))
    cells = ", ".join(f"N={k}: {v:,} ({v // k:,}/proxy)" for k, v in fresh.items())
    marginal = (fresh[SIZES[-1]] - fresh[SIZES[0]]) / (SIZES[-1] - SIZES[0])
    rows.append(("pushOutcome, proxies with no balance of the token", f"{cells}; marginal {marginal:,.0f}/proxy"))
    batch("pushOutcome, proxies already holding the token",
          lambda ps, am: executor.functions.pushOutcome(ctf.address, yes, ps, am))
    batch("pullCollateral", lambda ps, am: executor.functions.pullCollateral(usdc.address, ps, am))
    batch("pullOutcome", lambda ps, am: executor.functions.pullOutcome(ctf.address, yes, ps, am))
    batch("pushCollateral", lambda ps, am: executor.functions.pushCollateral(usdc.address, ps, am))

    # ---- one matchOrders settlement: worker BUY taker vs market maker SELL maker
    tx(mm, ctf.functions.setApprovalForAll(ex.address, True))
    tx(worker, usdc.functions.approve(ex.address, MAX))
    taker, _ = make_order(w3, ex.address, DEV_KEYS[1], yes, 0, 6 * USDC, 10 * USDC)
    maker, _ = make_order(w3, ex.address, DEV_KEYS[2], yes, 1, 100 * USDC, 60 * USDC)
    g = tx(admin, ex.functions.matchOrders(cid, taker, [maker], 6 * USDC, [10 * USDC], 0, [0]))["gasUsed"]
    rows.append(("MockExchangeV2.matchOrders, 1 maker (whole tx)", f"{g:,}"))

    width = max(len(r[0]) for r in rows)
    print(f"gas on {w3.client_version} (chain id {w3.eth.chain_id})")
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
