"""Readiness rows of the worker fleet as Polymarket sees it today (LIVE-2026 §6-7, §16): each worker is a signer
(gas) plus its deposit wallet (deployed, approvals, pUSD float, registered with the Executor as the signer's
wallet); the relayer that creates wallets and runs their batches; the tip floor every transaction meets.

`worker_plan` adds the worker reads to the first JSON-RPC batch of `onchain.chain_rows`; `worker_rows` judges them.
"""
from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal
from typing import Any

from ...chain import reads
from ...chain.proxies import usd
from ...settings import Settings
from .report import (HTTP_TIMEOUT_S, MIN_ALLOWANCE_MICRO, MIN_WORKER_GAS_WEI, WARNING, Check, failed, passed,
                     redact_url, short, some_of)

POLYGON_MIN_TIP_GWEI = Decimal(25)  # bor refuses lower tips at pool admission (LIVE-2026 §16)
ZERO = "0x0000000000000000000000000000000000000000"
WORKER_ROWS = ("workers registered", "workers gas", "worker wallets", "worker approvals", "worker float")


def worker_plan(workers: list[str], wallets: list[str], executor: str | None, collateral: str, ctf: str,
                spenders: dict[str, str]) -> dict[str, reads.Read]:
    """The reads of every worker: signer gas, wallet code, pUSD float, approvals, registration + wallet."""
    V = reads.view
    plan: dict[str, reads.Read] = {}
    for a, w in zip(workers, wallets):
        plan[f"w.gas.{a}"] = reads.balance(a)
        plan[f"w.code.{a}"] = reads.has_code(w)
        plan[f"w.float.{a}"] = V(collateral, "balanceOf(address)", w, returns="uint256")
        if executor:
            plan[f"w.reg.{a}"] = V(executor, "isWorker(address)", a)
            plan[f"w.wallet.{a}"] = V(executor, "walletOf(address)", a, returns="address")
        for label, spender in spenders.items():
            plan[f"w.a20.{label}.{a}"] = V(collateral, "allowance(address,address)", w, spender, returns="uint256")
            plan[f"w.a1155.{label}.{a}"] = V(ctf, "isApprovedForAll(address,address)", w, spender)
    return plan


def _pol(wei: Any) -> str:
    return f"{wei / 10**18:.4g} POL" if isinstance(wei, int) else "? POL"


def worker_rows(workers: list[str], wallets: list[str], executor: str | None, spenders: dict[str, str],
                got: dict) -> list[Check]:
    """workers registered / gas / wallets / approvals / float."""
    if not workers:
        return [failed(n, "not checked: no worker keys", "fix the worker keys row first") for n in WORKER_ROWS]
    n = len(workers)
    rows = []
    if not executor or not got.get("ex.code"):
        rows.append(failed("workers registered", "not checked: no Executor", "deploy the Executor first"))
    else:
        missing = [short(a) for a in workers if got.get(f"w.reg.{a}") is not True]
        wrong = [f"{short(a)} -> {short(str(got.get(f'w.wallet.{a}')))}, not {short(w)}"
                 for a, w in zip(workers, wallets)
                 if got.get(f"w.reg.{a}") is True and str(got.get(f"w.wallet.{a}")).lower() != w.lower()]
        if missing or wrong:
            rows.append(failed("workers registered", some_of([f"{len(missing)}/{n} not registered on the Executor",
                                                              *missing, *wrong]),
                               "`copytrade deploy executor` registers the missing workers with their deposit wallets "
                               "(after the admin delay on a sealed Executor)"))
        else:
            rows.append(passed("workers registered", f"{n}/{n} registered on the Executor, each with its deposit wallet"))
    low = [f"{short(a)} {_pol(got.get(f'w.gas.{a}'))}" for a in workers
           if not isinstance(got.get(f"w.gas.{a}"), int) or got[f"w.gas.{a}"] < MIN_WORKER_GAS_WEI]
    gas = [got[f"w.gas.{a}"] for a in workers if isinstance(got.get(f"w.gas.{a}"), int)]
    rows.append(failed("workers gas", f"{len(low)}/{n} signers below {_pol(MIN_WORKER_GAS_WEI)}: {some_of(low)}",
                       "`copytrade fleet setup` tops them up from the funder (or send POL to the signers)")
                if low else passed("workers gas", f"{n}/{n} signers hold >= {_pol(MIN_WORKER_GAS_WEI)} "
                                                  f"(lowest {_pol(min(gas))})"))
    eoa = sum(a.lower() == w.lower() for a, w in zip(workers, wallets))
    undeployed = [short(w) for a, w in zip(workers, wallets) if a.lower() != w.lower() and got.get(f"w.code.{a}") is not True]
    how = (f"{eoa} trade from their signer (a fork planted without deposit wallets)" if eoa == n else
           f"{n - eoa} deposit wallets deployed at the SDK-derived addresses")
    rows.append(failed("worker wallets", f"{len(undeployed)}/{n} deposit wallets not deployed: {some_of(undeployed)}",
                       "`copytrade fleet setup` creates them through the relayer (WALLET-CREATE)")
                if undeployed else passed("worker wallets", f"{n}/{n}: {how}"))
    lacking = []
    for a, w in zip(workers, wallets):
        miss = []
        for label in spenders:
            allowance = got.get(f"w.a20.{label}.{a}")
            if not isinstance(allowance, int) or allowance < MIN_ALLOWANCE_MICRO:
                miss.append(f"pUSD to {label}")
            if got.get(f"w.a1155.{label}.{a}") is not True:
                miss.append(f"CTF to {label}")
        if miss:
            lacking.append(f"{short(w)}: {', '.join(miss)}")
    names = ", ".join(spenders)
    rows.append(failed("worker approvals", f"{len(lacking)}/{n} wallets lack approvals: {some_of(lacking)}",
                       "`copytrade fleet setup` sends each wallet one WALLET batch of the missing approvals")
                if lacking else passed("worker approvals", f"{n}/{n} wallets: pUSD + CTF approved to {names}"))
    floats = [got.get(f"w.float.{a}") for a in workers]
    empty = [short(w) for w, f in zip(wallets, floats) if not isinstance(f, int) or f == 0]
    total = sum(f for f in floats if isinstance(f, int))
    rows.append(failed("worker float", f"{len(empty)}/{n} wallets hold no pUSD float: {some_of(empty)} (Smart Buffer "
                                       "copies need it; Standard copies do not)",
                       "`copytrade fleet setup --float 2000` (live: from the funder's pUSD)", WARNING)
                if empty else passed("worker float", f"{n}/{n} wallets hold pUSD float, {usd(total)} pUSD in all", WARNING))
    return rows


def relayer_row(settings: Settings, node, is_local: bool) -> Check:
    """The relayer that creates deposit wallets and runs their batches answers the SDK's `/deployed` read."""
    if is_local:
        url = getattr(node, "relayer_url", None) if node is not None else None
        if not url:
            return failed("relayer", "no local relayer recorded for this fork", "`copytrade fork up` starts it")
    else:
        from polymarket._internal.environment import PRODUCTION_CONFIG

        url = PRODUCTION_CONFIG.relayer_url
    shown = redact_url(url)
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/deployed?address={ZERO}&type=WALLET",
                                    timeout=HTTP_TIMEOUT_S) as resp:
            body = json.loads(resp.read() or b"{}")
    except (OSError, ValueError) as exc:
        return failed("relayer", f"{shown} does not answer /deployed ({type(exc).__name__})",
                      "restart the fork (`copytrade fork down && copytrade fork up`)" if is_local else
                      "check network access to the Polymarket relayer")
    if not isinstance(body, dict) or "deployed" not in body:
        return failed("relayer", f"{shown} answered /deployed without `deployed`", "check the relayer URL")
    return passed("relayer", f"{shown} answers /deployed in {(time.perf_counter() - t) * 1000:.1f} ms")


def tip_floor_row(settings: Settings, w3, chain_id: int, is_local: bool) -> Check:
    """Every transaction tips at least COPY_TRADING_MIN_PRIORITY_FEE_GWEI; live, that is at least Polygon's 25 gwei."""
    from ...chain.lanes import FeeOracle

    floor = Decimal(settings.copy_trading_min_priority_fee_gwei)
    if chain_id == 137 and not is_local and floor < POLYGON_MIN_TIP_GWEI:
        return failed("tip floor", f"COPY_TRADING_MIN_PRIORITY_FEE_GWEI={floor} is below Polygon's "
                                   f"{POLYGON_MIN_TIP_GWEI} gwei: every transaction would be refused "
                                   "(`transaction gas price below minimum`)",
                      f"set COPY_TRADING_MIN_PRIORITY_FEE_GWEI={POLYGON_MIN_TIP_GWEI} (or more)")
    try:
        fees = FeeOracle.from_settings(w3, settings).fees()
    except Exception as exc:  # noqa: BLE001 — the node did not answer the fee reads
        return failed("tip floor", f"fees not readable from the node ({type(exc).__name__})", "fix the rpc rows first")
    tip = fees.get("maxPriorityFeePerGas", 0) / 10**9
    where = "the fork's node guard refuses lower tips" if is_local else "Polygon refuses lower tips"
    return passed("tip floor", f"transactions tip >= {floor} gwei (now {tip:g} gwei, max fee "
                               f"{fees.get('maxFeePerGas', 0) / 10**9:g} gwei); {where}")
