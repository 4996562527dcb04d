"""Readiness rows for what the supervisor reaches over the network: the RPC endpoints, the CLOB, Redis, and
what running supervisors say of themselves."""
from __future__ import annotations

import time
import urllib.request
from typing import Any

import redis

from ...chain.accounts import worker_accounts
from ...chain.rpc import connect
from ...errors import ConfigError, CopytradeError
from ...polymarket.clob import ClobGateway, environment_for
from ...settings import Settings
from ...supervisor.observe import check_health
from ...polymarket.addresses import chain_contracts
from .report import HTTP_TIMEOUT_S, REQUIRED, WARNING, Check, failed, passed, redact_url

def ping_row(i: int, url: str, chain_id: int, is_local: bool) -> tuple[Check, Any]:
    """The row of endpoint `i` and its web3 (None when it fails): reachable, on the expected chain, and how fast."""
    name = f"rpc #{i + 1}"
    severity = REQUIRED if i == 0 else WARNING
    shown = redact_url(url)
    w3 = connect(url, timeout=HTTP_TIMEOUT_S)
    t = time.perf_counter()
    try:
        ans = w3.provider.make_batch_request([("eth_chainId", []), ("eth_blockNumber", [])])
        got = {a["id"]: a.get("result") for a in ans} if isinstance(ans, list) else {}
        cid, block = [int(got[k], 16) for k in sorted(got)]
    except Exception as exc:  # noqa: BLE001 — any transport failure means "unreachable"
        fix = ("start the fork with `copytrade fork up`, or fix COPY_TRADING_RPC_URL(S)" if is_local else
               "check the URL and its API key, or remove it from COPY_TRADING_RPC_URL(S)")
        return failed(name, f"{shown} unreachable ({type(exc).__name__})", fix, severity), None
    ms = (time.perf_counter() - t) * 1000
    if cid != chain_id:
        return failed(name, f"{shown} is on chain id {cid}, expected {chain_id}",
                      f"point COPY_TRADING_RPC_URL(S) at a chain {chain_id} node", severity), None
    role = "primary" if i == 0 else "failover"
    return passed(name, f"{shown} ({role}): chain id {cid}, block {block}, {ms:.1f} ms", severity), w3


def clob_rows(settings: Settings, node, network: str, chain_id: int, is_local: bool) -> list[Check]:
    """The CLOB rows: the fork's local CLOB answers, or the live CLOB answers and derives credentials."""
    if is_local:
        url = settings.clob_url or (node.clob_url if node is not None else None)
        if not url:
            return [failed("clob", "no local CLOB recorded for this fork",
                           "`copytrade fork up` starts it (or run `copytrade clob serve`)")]
        return [local_clob_check(url)]
    return live_clob_checks(settings, settings.clob_url or "https://clob.polymarket.com", chain_id,
                            chain_contracts(chain_id).exchange)


def local_clob_check(url: str) -> Check:
    """The fork's CLOB answers GET /ok."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ok", timeout=HTTP_TIMEOUT_S) as resp:
            ok = resp.status == 200
    except OSError as exc:
        return failed("clob", f"local CLOB {url} does not answer ({type(exc).__name__})",
                      "restart the fork (`copytrade fork down && copytrade fork up`) or run `copytrade clob serve`")
    if not ok:
        return failed("clob", f"local CLOB {url} answered /ok with an error", "restart it: `copytrade fork down && "
                                                                            "copytrade fork up`")
    return passed("clob", f"local CLOB {url} answers /ok in {(time.perf_counter() - t) * 1000:.1f} ms")


def live_clob_checks(settings: Settings, url: str, chain_id: int, exchange: str) -> list[Check]:
    """The CLOB answers and a worker key derives API credentials (py-clob-client-v2, L1 auth)."""
    shown = redact_url(url)
    try:
        account = worker_accounts(settings, 1)[0]
    except ConfigError:
        account = None
    if account is None:
        return [failed("clob", f"{shown}: not checked without a worker key", "fix the worker keys row first"),
                failed("clob credentials", "no worker key to derive API credentials with",
                       "fix the worker keys row first")]
    key = account.key.hex() if isinstance(account.key, bytes) else account.key
    gateway = ClobGateway(environment_for(clob_url=url, rpc_url="", chain_id=chain_id, is_local=False), key)
    t = time.perf_counter()
    try:
        gateway.ping()
    except Exception as exc:  # noqa: BLE001 — the client raises its own exception types
        return [failed("clob", f"{shown} unreachable ({type(exc).__name__})",
                       "check network access to the CLOB, or COPYTRADE_CLOB_URL"),
                failed("clob credentials", "not checked: the CLOB is unreachable", "fix the clob row first")]
    rows = [passed("clob", f"{shown} answers in {(time.perf_counter() - t) * 1000:.0f} ms")]
    try:
        gateway.ensure_creds(check_wallet=False)  # the wallets rows check deployment at the relayer
        rows.append(passed("clob credentials", f"API credentials derived for worker {account.address} (not shown)"))
    except CopytradeError as exc:
        rows.append(failed("clob credentials", str(exc), "check the worker key; the CLOB derives credentials for any "
                                                        "valid key (L1 auth), so a refusal means a bad key or clock"))
    return rows


def supervisor_health_row(settings: Settings) -> Check:
    """A warning row: what running supervisors say of themselves (health key in Redis, or file in the home)."""
    try:
        ok, docs, summary = check_health(settings)
    except Exception as exc:  # noqa: BLE001 — health is informative; its store may be down (see the redis row)
        # The store's own row (redis) already fails; this one only says it cannot know.
        return passed("supervisor health", f"unknown: health not readable ({type(exc).__name__}); see the redis row",
                      WARNING)
    if not docs:
        return passed("supervisor health", "no supervisor instance running (start one with `copytrade supervise`)",
                      WARNING)
    if ok:
        return passed("supervisor health", summary, WARNING)
    return failed("supervisor health", summary, "check the instances' logs; `copytrade supervise --health` lists them",
                  WARNING)


def redis_row(settings: Settings) -> Check:
    """A warning row: Redis answers PING when configured (one instance without it)."""
    url = settings.redis
    if not url:
        return passed("redis", "not configured: one supervisor instance, in-process queue (SUPERVISOR_REDIS_URL "
                            "scales out)", WARNING)
    shown = redact_url(url)
    t = time.perf_counter()
    try:
        client = redis.Redis.from_url(url, socket_timeout=HTTP_TIMEOUT_S, socket_connect_timeout=HTTP_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 — any failure means unreachable
        return failed("redis", f"{shown} unreachable ({type(exc).__name__})",
                      "start Redis or fix SUPERVISOR_REDIS_URL / REDIS_URL (or unset it to run one instance)")
    return passed("redis", f"{shown} answers PING in {(time.perf_counter() - t) * 1000:.1f} ms")
