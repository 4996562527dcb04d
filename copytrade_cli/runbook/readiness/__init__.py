"""Go-live readiness (SPEC §5): one row per check, each with what was found and, when it fails, how to fix it.

`run_checks` reads everything it needs in a few round trips (JSON-RPC batches; the endpoint pings, the
CLOB and Redis run in parallel) and never changes anything. `copytrade verify readiness` renders the
report; `copytrade supervise` runs the same checks as its pre-flight (`runbook.supervise`) and refuses to
start on a live network when a required one fails. Keys are checked for presence and shown as addresses
only, never as key material.

Where each row is: `report` (the row and report types), `endpoints` (RPC, CLOB, Redis, supervisor health),
`keys` (operator and worker keys, the real-trading switch), `onchain` (contracts, follower proxies), `wallets`
(the fleet's signers and deposit wallets, the relayer, the tip floor).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from ...chain.network import endpoint_urls, normalize, running_node
from ...errors import ChainError, NodeError, UsageError
from ...settings import Settings
from ...state import State
from .endpoints import clob_rows, live_clob_checks, local_clob_check, ping_row, redis_row, supervisor_health_row
from .keys import key_rows, real_trading_row
from .onchain import CHAIN_ROWS, chain_rows, unchecked_chain_rows
from .wallets import relayer_row
from .report import (HTTP_TIMEOUT_S, MIN_ALLOWANCE_MICRO, MIN_PROXY_MICRO, MIN_WORKER_GAS_WEI, REQUIRED, SHOWN, WARNING,
                     Check, Report, config_failed, failed, passed, redact_url)

__all__ = ["CHAIN_ROWS", "HTTP_TIMEOUT_S", "MIN_ALLOWANCE_MICRO", "MIN_PROXY_MICRO", "MIN_WORKER_GAS_WEI", "REQUIRED",
           "SHOWN", "WARNING", "Check", "Report", "config_failed", "live_clob_checks", "local_clob_check", "redact_url",
           "run_checks"]


def run_checks(settings: Settings, state: State, network: str | None = None) -> Report:
    """Run every readiness check against `network` (default: the configured one); changes nothing."""
    t0 = time.perf_counter()
    try:
        name, chain_id, is_local = normalize(network, settings)
    except UsageError as exc:
        return Report(False, [failed("config", str(exc), "use --network polygon:local, polygon:mainnet or polygon:amoy")],
                      network=str(network), seconds=time.perf_counter() - t0)
    rows: list[Check] = [passed("config", f"settings parsed; network {name} (chain id {chain_id})"
                                       + (", the local fork" if is_local else ""))]
    node = None
    if is_local:
        node = running_node(state)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness") as pool:
        try:
            urls = endpoint_urls(settings, state, name)
        except (NodeError, ChainError) as exc:
            urls = []
            rpc_rows = [failed("rpc #1", str(exc), "copytrade fork up" if is_local else
                               "set COPY_TRADING_RPC_URL (e.g. COPY_TRADING_RPC_URL=https://polygon-rpc.com)")]
        pings = [pool.submit(ping_row, i, u, chain_id, is_local) for i, u in enumerate(urls)]
        clob = pool.submit(clob_rows, settings, node, name, chain_id, is_local)
        relayer = pool.submit(relayer_row, settings, node, is_local)
        redis = pool.submit(redis_row, settings)
        if urls:
            rpc_rows = [p.result()[0] for p in pings]
        rows += rpc_rows
        good = next((p.result()[1] for p in pings if p.result()[1] is not None), None)
        keys, workers = key_rows(settings, is_local)
        rows += keys
        if good is None:
            rows += unchecked_chain_rows()
        else:
            rows += chain_rows(settings, state, name, chain_id, is_local, node, good, workers)
        rows += clob.result()
        rows.append(relayer.result())
        rows.append(real_trading_row(settings, is_local))
        rows.append(redis.result())
        rows.append(supervisor_health_row(settings))
    ready = all(c.ok for c in rows if c.severity == REQUIRED)
    return Report(ready, rows, network=name, seconds=time.perf_counter() - t0)
