"""Go-live readiness (SPEC §5): one row per check, each with what was found and, when it fails, how to fix it.

`run_checks` reads everything it needs in a few round trips (JSON-RPC batches; the endpoint pings, the
CLOB and Redis run in parallel) and never changes anything. `copytrade verify readiness` renders the
report; `Supervisor.start()` runs the same checks and refuses to start on a live network when a required
one fails. Keys are checked for presence and shown as addresses only, never as key material.
"""
from __future__ import annotations

import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from .chain import reads
from .chain.reads import FAILED
from .chain.rpc import redact as redact_url  # one place: chain I/O shows endpoints as scheme://host only
from .errors import ChainError, ConfigError, CopytradeError, NodeError, UsageError
from .settings import DEV_MNEMONIC, Settings
from .state import State

REQUIRED = "required"
WARNING = "warning"
MIN_WORKER_GAS_WEI = 10**16  # 0.01 POL: the same floor `Fleet.status` uses to call a worker ready
MIN_PROXY_MICRO = 10**6  # 1 USDC: below it a follower's copies are all skipped for lack of funds
MIN_ALLOWANCE_MICRO = 10**12  # 1M USDC: "approved" means an allowance no realistic day of trading exhausts
HTTP_TIMEOUT_S = 3.0
SHOWN = 3  # failing items named in a row's detail before "and N more"


@dataclass
class Check:
    """One readiness row: what was checked, whether it passed, and how to fix it when it did not."""

    name: str
    ok: bool
    severity: str
    detail: str
    fix: str | None = None


@dataclass
class Report:
    """All rows; `ready` is True when every required row passes (warnings never block)."""

    ready: bool
    checks: list[Check]
    network: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape: {"ready", "checks": [{"name", "ok", "severity", "detail", "fix"}]}."""
        return {"ready": self.ready, "checks": [asdict(c) for c in self.checks]}

    def failing(self, severity: str | None = None) -> list[Check]:
        """Rows that did not pass (optionally of one severity)."""
        return [c for c in self.checks if not c.ok and (severity is None or c.severity == severity)]

    def summary(self) -> str:
        """One line: ready, or which required rows fail."""
        warnings = len(self.failing(WARNING))
        if self.ready:
            n = sum(c.severity == REQUIRED for c in self.checks)
            return f"ready: all {n} required checks pass on {self.network} ({warnings} warning(s))"
        names = ", ".join(c.name for c in self.failing(REQUIRED))
        return (f"not ready on {self.network or 'the configured network'}: {names} failed; run "
                f"`copytrade verify readiness` "
                f"for how to fix each")


def config_failed(error: ConfigError) -> Report:
    """The report when the configuration itself does not parse (nothing else can be checked)."""
    return Report(False, [Check("config", False, REQUIRED, str(error),
                                "fix the named variable in the environment, .env or config.toml "
                                "(`copytrade config show` lists them)")])


def _ok(name: str, detail: str, severity: str = REQUIRED) -> Check:
    return Check(name, True, severity, detail)


def _fail(name: str, detail: str, fix: str, severity: str = REQUIRED) -> Check:
    return Check(name, False, severity, detail, fix)


def _short(address: str) -> str:
    return f"{address[:6]}...{address[-4:]}"


def _some(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


# --- the checks ------------------------------------------------------------------------------------------
def run_checks(settings: Settings, state: State, network: str | None = None) -> Report:
    """Run every readiness check against `network` (default: the configured one); changes nothing."""
    from .chain.network import normalize

    t0 = time.perf_counter()
    try:
        name, chain_id, is_local = normalize(network, settings)
    except UsageError as exc:
        return Report(False, [_fail("config", str(exc), "use --network polygon:local, polygon:mainnet or polygon:amoy")],
                      network=str(network), seconds=time.perf_counter() - t0)
    rows: list[Check] = [_ok("config", f"settings parsed; network {name} (chain id {chain_id})"
                                       + (", the local fork" if is_local else ""))]
    node = None
    if is_local:
        from .chain.fork import running_node

        node = running_node(state)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="readiness") as pool:
        try:
            from .chain.network import endpoint_urls

            urls = endpoint_urls(settings, state, name)
        except (NodeError, ChainError) as exc:
            urls = []
            rpc_rows = [_fail("rpc #1", str(exc), "copytrade fork up" if is_local else
                              "set COPY_TRADING_RPC_URL (e.g. COPY_TRADING_RPC_URL=https://polygon-rpc.com)")]
        pings = [pool.submit(_ping, i, u, chain_id, is_local) for i, u in enumerate(urls)]
        clob = pool.submit(_clob_checks, settings, node, name, chain_id, is_local)
        redis = pool.submit(_redis_check, settings)
        if urls:
            rpc_rows = [p.result()[0] for p in pings]
        rows += rpc_rows
        good = next((p.result()[1] for p in pings if p.result()[1] is not None), None)
        key_rows, workers = _key_checks(settings, is_local)
        rows += key_rows
        if good is None:
            rows += _unchecked_chain_rows()
        else:
            rows += _chain_checks(settings, state, name, chain_id, is_local, node, good, workers)
        rows += clob.result()
        rows.append(_real_trading_check(settings, is_local))
        rows.append(redis.result())
        rows.append(_supervisor_health_check(settings))
    ready = all(c.ok for c in rows if c.severity == REQUIRED)
    return Report(ready, rows, network=name, seconds=time.perf_counter() - t0)


def _ping(i: int, url: str, chain_id: int, is_local: bool) -> tuple[Check, Any]:
    """(row, web3 or None): reachable, on the expected chain, and how fast."""
    from .chain.tx import connect

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
        return _fail(name, f"{shown} unreachable ({type(exc).__name__})", fix, severity), None
    ms = (time.perf_counter() - t) * 1000
    if cid != chain_id:
        return _fail(name, f"{shown} is on chain id {cid}, expected {chain_id}",
                     f"point COPY_TRADING_RPC_URL(S) at a chain {chain_id} node", severity), None
    role = "primary" if i == 0 else "failover"
    return _ok(name, f"{shown} ({role}): chain id {cid}, block {block}, {ms:.1f} ms", severity), w3


def _key_checks(settings: Settings, is_local: bool) -> tuple[list[Check], list[str]]:
    """Rows for the operator and worker keys, and the worker addresses (keys never leave the accounts)."""
    from .chain.accounts import operator_account, worker_accounts
    from .localworld.world import DEV_KEYS

    out, addresses = [], []
    try:
        op = operator_account(settings)
        source = "TRADING_PRIVATE_KEY" if settings.trading_private_key is not None else "the fork's dev account 0"
        public = settings.trading_private_key is not None and \
            settings.trading_private_key.get_secret_value().lower().removeprefix("0x") in \
            {k.removeprefix("0x") for k in DEV_KEYS}
        if public and not is_local:
            out.append(_fail("operator key", f"operator {op.address} is a public dev key (anyone can spend from it)",
                             "set TRADING_PRIVATE_KEY to a private key of your own"))
        else:
            out.append(_ok("operator key", f"operator {op.address} from {source} (key not shown)"))
    except ConfigError as exc:
        out.append(_fail("operator key", str(exc).split(":")[0], "set TRADING_PRIVATE_KEY (the operator/deployer "
                         "account) in the environment or .env"))
    try:
        workers = worker_accounts(settings)
        addresses = [a.address for a in workers]
        if settings.copy_trading_worker_keys:
            source = "COPY_TRADING_WORKER_KEYS"
        elif settings.trading_mnemonic is not None:
            source = "TRADING_MNEMONIC"
        else:
            source = "the fork's dev mnemonic"
        public = settings.trading_mnemonic is not None and \
            settings.trading_mnemonic.get_secret_value().strip() == DEV_MNEMONIC
        detail = (f"{len(workers)} workers from {source} (shard {settings.copy_trading_worker_index}), "
                  f"{_short(workers[0].address)} to {_short(workers[-1].address)}; keys not shown")
        if public and not is_local:
            out.append(_fail("worker keys", f"{len(workers)} workers from the public dev mnemonic",
                             "set TRADING_MNEMONIC (or COPY_TRADING_WORKER_KEYS) to keys of your own"))
        else:
            out.append(_ok("worker keys", detail))
    except ConfigError as exc:
        out.append(_fail("worker keys", str(exc).split(" (e.g.")[0],
                         "set TRADING_MNEMONIC or COPY_TRADING_WORKER_KEYS in the environment or .env"))
    return out, addresses


CHAIN_ROWS = ("executor", "executor allowlist", "factory", "factory allowlist", "workers registered",
              "workers gas", "worker approvals", "follower proxies", "follower funding")


def _unchecked_chain_rows() -> list[Check]:
    return [_fail(n, "not checked: no RPC endpoint answered", "fix the rpc rows first") for n in CHAIN_ROWS]


def _chain_checks(settings: Settings, state: State, name: str, chain_id: int, is_local: bool, node, w3,
                  workers: list[str]) -> list[Check]:
    """Contracts, fleet and follower proxies, read in two JSON-RPC batches."""
    from .chain.deploy import addresses
    from .localworld.world import World
    from .polymarket.addresses import chain_contracts

    world = World.from_json(node.world_json) if node is not None and node.world_json else None
    c = chain_contracts(chain_id, world, settings)
    collateral, ctf, exchange, spenders = c.collateral, c.ctf, c.exchange, list(c.spenders)
    addrs = addresses(state, name)
    executor = settings.executor_address or addrs.get("Executor")
    factory = settings.proxy_factory_address or addrs.get("ProxyFactory")
    blocked = state.unroutable_proxies(name)
    followers = sorted({f.follower for f in state.list_follows(status="active")})
    routed = [p for p in followers if p.lower() not in blocked]

    V = reads.view
    plan: dict[str, reads.Read] = {}
    if executor:
        plan.update({"ex.code": reads.has_code(executor), "ex.paused": V(executor, "paused()"),
                     "ex.owner": V(executor, "owner()", returns="address"),
                     "ex.t.collateral": V(executor, "isTarget(address)", collateral),
                     "ex.t.ctf": V(executor, "isTarget(address)", ctf)})
        if factory:
            plan["ex.trusts"] = V(executor, "isFactory(address)", factory)
    if factory:
        plan.update({"f.code": reads.has_code(factory), "f.executor": V(factory, "executor()", returns="address"),
                     "f.t.collateral": V(factory, "isTarget(address)", collateral),
                     "f.t.ctf": V(factory, "isTarget(address)", ctf)})
    for a in workers:
        plan[f"w.gas.{a}"] = reads.balance(a)
        if executor:
            plan[f"w.reg.{a}"] = V(executor, "isWorker(address)", a)
        for label, spender in (("exchange", exchange), ("Executor", executor)):
            if spender:
                plan[f"w.a20.{label}.{a}"] = V(collateral, "allowance(address,address)", a, spender, returns="uint256")
                plan[f"w.a1155.{label}.{a}"] = V(ctf, "isApprovedForAll(address,address)", a, spender)
    for p in routed:
        plan[f"p.code.{p}"] = reads.has_code(p)
        plan[f"p.factory.{p}"] = V(p, "factory()", returns="address")
        plan[f"p.bal.{p}"] = V(collateral, "balanceOf(address)", p, returns="uint256")
    got = dict(zip(plan, reads.read_many(w3, list(plan.values()))))

    # second round: what each follower proxy's own factory says about it
    second: dict[str, reads.Read] = {}
    pfac = {p: str(got[f"p.factory.{p}"]) for p in routed if got[f"p.factory.{p}"] is not FAILED}
    for f in set(pfac.values()):
        second[f"F.executor.{f}"] = V(f, "executor()", returns="address")
        if executor:
            second[f"F.trusted.{f}"] = V(executor, "isFactory(address)", f)
    for p, f in pfac.items():
        second[f"F.isProxy.{p}"] = V(f, "isProxy(address)", p)
        second[f"F.paused.{p}"] = V(f, "isPaused(address)", p)
    got.update(zip(second, reads.read_many(w3, list(second.values()))))

    gen = state.get_deployment(name, "Executor")
    rows = [_executor_row(name, executor, got, gen.generation if gen else None),
            _executor_allowlist_row(executor, got, spenders, collateral, ctf),
            _factory_row(name, factory, executor, got),
            _factory_allowlist_row(factory, got),
            *_worker_rows(workers, executor, exchange, got),
            *_follower_rows(followers, routed, blocked, executor, got)]
    return rows


def _cs(a: Any) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(str(a))


def _same(a: Any, b: str | None) -> bool:
    return a is not FAILED and b is not None and str(a).lower() == b.lower()


def _executor_row(network: str, executor: str | None, got: dict, generation: int | None) -> Check:
    if not executor:
        return _fail("executor", f"no Executor recorded on {network}",
                     "run `copytrade deploy executor` (on the fork: `copytrade fork up`)")
    if not got.get("ex.code"):
        return _fail("executor", f"Executor {executor} is recorded but has no code on chain",
                     "deploy it again: `copytrade deploy executor --force` (a new fork forgets contracts)")
    if got.get("ex.paused") is not False:
        return _fail("executor", f"Executor {executor} is paused: every worker call reverts",
                     f"call Executor.unpause() from its owner {_cs(got['ex.owner']) if got.get('ex.owner') else ''}")
    gen = f" (generation {generation})" if generation else ""
    return _ok("executor", f"Executor {executor}{gen} has code, not paused, owner {_cs(got['ex.owner'])}")


def _executor_allowlist_row(executor: str | None, got: dict, spenders: list[str], collateral: str, ctf: str) -> Check:
    if not executor or not got.get("ex.code"):
        return _fail("executor allowlist", "not checked: no Executor", "deploy the Executor first")
    missing = [n for n, k in (("collateral", "ex.t.collateral"), ("CTF", "ex.t.ctf")) if got.get(k) is not True]
    if missing:
        return _fail("executor allowlist", f"missing on the Executor: {', '.join(missing)}",
                     f"from the Executor owner: queueGrant(2, [{collateral}, {ctf}]) (what is missing), "
                     "then applyGrant after its delay")
    return _ok("executor allowlist", f"targets collateral + CTF, {len(spenders)} exchange spender(s)")


def _factory_row(network: str, factory: str | None, executor: str | None, got: dict) -> Check:
    if not factory:
        return _fail("factory", f"no ProxyFactory recorded on {network}",
                     "run `copytrade deploy factory` (on the fork: `copytrade fork up`)")
    if not got.get("f.code"):
        return _fail("factory", f"ProxyFactory {factory} is recorded but has no code on chain",
                     "deploy it again: `copytrade deploy factory --force`")
    if executor and not _same(got.get("f.executor"), executor):
        return _fail("factory", f"ProxyFactory {factory} is bound to {got.get('f.executor')}, not the Executor {executor}",
                     f"from the factory admin: ProxyFactory.queueGrant(1, [{executor}]), then applyGrant after its delay")
    if executor and got.get("ex.trusts") is not True:
        return _fail("factory", f"the Executor does not trust ProxyFactory {factory} (isFactory is false)",
                     f"from the Executor owner: Executor.queueGrant(3, [{factory}]), then applyGrant after its delay")
    return _ok("factory", f"ProxyFactory {factory} has code, bound to the Executor, trusted by it")


def _factory_allowlist_row(factory: str | None, got: dict) -> Check:
    if not factory or not got.get("f.code"):
        return _fail("factory allowlist", "not checked: no ProxyFactory", "deploy the ProxyFactory first")
    missing = [n for n, k in (("collateral", "f.t.collateral"), ("CTF", "f.t.ctf")) if got.get(k) is not True]
    if missing:
        return _fail("factory allowlist", f"missing on the ProxyFactory: {', '.join(missing)}",
                     "from the factory admin: ProxyFactory.queueGrant(2, [collateral, CTF]), then applyGrant after its delay")
    return _ok("factory allowlist", "targets collateral + CTF")


def _worker_rows(workers: list[str], executor: str | None, exchange: str, got: dict) -> list[Check]:
    if not workers:
        why = "not checked: no worker keys"
        return [_fail(n, why, "fix the worker keys row first")
                for n in ("workers registered", "workers gas", "worker approvals")]
    rows = []
    if not executor or not got.get("ex.code"):
        rows.append(_fail("workers registered", "not checked: no Executor", "deploy the Executor first"))
    else:
        missing = [_short(a) for a in workers if got.get(f"w.reg.{a}") is not True]
        rows.append(_fail("workers registered", f"{len(missing)}/{len(workers)} not registered on the Executor: "
                          f"{_some(missing)}", "`copytrade deploy executor` registers the missing workers")
                    if missing else _ok("workers registered", f"{len(workers)}/{len(workers)} registered on the Executor"))
    low = [f"{_short(a)} {_pol(got.get(f'w.gas.{a}'))}" for a in workers
           if not isinstance(got.get(f"w.gas.{a}"), int) or got[f"w.gas.{a}"] < MIN_WORKER_GAS_WEI]
    gas = [got.get(f"w.gas.{a}") for a in workers if isinstance(got.get(f"w.gas.{a}"), int)]
    rows.append(_fail("workers gas", f"{len(low)}/{len(workers)} below {_pol(MIN_WORKER_GAS_WEI)}: {_some(low)}",
                      "send POL to them (on the fork `copytrade fork up` funds the fleet)")
                if low else _ok("workers gas", f"{len(workers)}/{len(workers)} hold >= {_pol(MIN_WORKER_GAS_WEI)} "
                                              f"(lowest {_pol(min(gas))})"))
    lacking = []
    for a in workers:
        miss = []
        for label, spender in (("exchange", exchange), ("Executor", executor)):
            if not spender:
                miss.append(f"{label} (no address)")
                continue
            allowance = got.get(f"w.a20.{label}.{a}")
            if not isinstance(allowance, int) or allowance < MIN_ALLOWANCE_MICRO:
                miss.append(f"collateral to {label}")
            if got.get(f"w.a1155.{label}.{a}") is not True:
                miss.append(f"CTF to {label}")
        if miss:
            lacking.append(f"{_short(a)}: {', '.join(miss)}")
    rows.append(_fail("worker approvals", f"{len(lacking)}/{len(workers)} workers lack approvals: {_some(lacking)}",
                      "from each worker: collateral.approve(spender, max) and CTF.setApprovalForAll(spender, true) "
                      "for the exchange and the Executor (on the fork `copytrade fork up` does it)")
                if lacking else _ok("worker approvals", f"{len(workers)}/{len(workers)}: collateral + CTF approved to "
                                                        "the exchange and the Executor"))
    return rows


def _pol(wei: Any) -> str:
    if not isinstance(wei, int):
        return "? POL"
    return f"{wei / 10**18:.4g} POL"


def _follower_rows(followers: list[str], routed: list[str], blocked: dict[str, str], executor: str | None,
                   got: dict) -> list[Check]:
    skipped = len(followers) - len(routed)
    note = f"; {skipped} on deprecated or previous-generation proxies, skipped by the supervisor" if skipped else ""
    if not followers:
        return [_fail("follower proxies", "no active follows: the supervisor has nothing to copy",
                      "add one: `copytrade seed` or `copytrade follow add --follower P --leader L`", WARNING),
                _ok("follower funding", "no active follows")]
    if not routed:
        return [_fail("follower proxies", f"all {skipped} active follows are on deprecated or previous-generation "
                      "proxies: the supervisor has nothing to copy",
                      "users re-deposit into new proxies, then `copytrade migrate users` moves their follows", WARNING),
                _ok("follower funding", "no follows on usable proxies")]
    bad = []
    for p in routed:
        f = got.get(f"p.factory.{p}")
        if not got.get(f"p.code.{p}"):
            bad.append(f"{_short(p)}: no contract at this address")
        elif f is FAILED:
            bad.append(f"{_short(p)}: not a copytrade proxy")
        elif got.get(f"F.isProxy.{p}") is not True:
            bad.append(f"{_short(p)}: its factory does not know it")
        elif not _same(got.get(f"F.executor.{f}"), executor) or got.get(f"F.trusted.{f}") is not True:
            bad.append(f"{_short(p)}: bound to another Executor (factory {_short(str(f))})")
        elif got.get(f"F.paused.{p}") is not False:
            bad.append(f"{_short(p)}: paused")
    rows = [_fail("follower proxies", f"{len(bad)}/{len(routed)} proxies of active follows unusable: {_some(bad)}{note}",
                  "create proxies with `copytrade proxy create --owner O` and point follows at them; a paused or "
                  "migrated proxy's follows move to the owner's new proxy (`copytrade migrate users`)")
            if bad else _ok("follower proxies", f"{len(routed)}/{len(routed)} proxies of active follows exist, bound "
                                                f"to this Executor, not paused{note}")]
    poor = [f"{_short(p)} {_usdc(got.get(f'p.bal.{p}'))}" for p in routed
            if not isinstance(got.get(f"p.bal.{p}"), int) or got[f"p.bal.{p}"] < MIN_PROXY_MICRO]
    rows.append(_fail("follower funding", f"{len(poor)}/{len(routed)} proxies hold less than 1 USDC: {_some(poor)}",
                      "the owner deposits USDC into the proxy (on the fork: `copytrade proxy fund --proxy P "
                      "--amount 100`)")
                if poor else _ok("follower funding", f"{len(routed)}/{len(routed)} proxies hold >= 1 USDC"))
    return rows


def _usdc(micro: Any) -> str:
    from .chain.proxies import usd

    return f"{usd(micro)} USDC" if isinstance(micro, int) else "? USDC"


def _clob_checks(settings: Settings, node, network: str, chain_id: int, is_local: bool) -> list[Check]:
    if is_local:
        url = settings.clob_url or (node.clob_url if node is not None else None)
        if not url:
            return [_fail("clob", "no local CLOB recorded for this fork",
                          "`copytrade fork up` starts it (or run `copytrade clob serve`)")]
        return [local_clob_check(url)]
    from .polymarket.addresses import chain_contracts

    return live_clob_checks(settings, settings.clob_url or "https://clob.polymarket.com", chain_id,
                            chain_contracts(chain_id).exchange)


def local_clob_check(url: str) -> Check:
    """The fork's CLOB answers GET /ok."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/ok", timeout=HTTP_TIMEOUT_S) as resp:
            ok = resp.status == 200
    except OSError as exc:
        return _fail("clob", f"local CLOB {url} does not answer ({type(exc).__name__})",
                     "restart the fork (`copytrade fork down && copytrade fork up`) or run `copytrade clob serve`")
    if not ok:
        return _fail("clob", f"local CLOB {url} answered /ok with an error", "restart it: `copytrade fork down && "
                                                                            "copytrade fork up`")
    return _ok("clob", f"local CLOB {url} answers /ok in {(time.perf_counter() - t) * 1000:.1f} ms")


def live_clob_checks(settings: Settings, url: str, chain_id: int, exchange: str) -> list[Check]:
    """The CLOB answers and a worker key derives API credentials (py-clob-client-v2, L1 auth)."""
    from .chain.accounts import worker_accounts
    from .polymarket.clob import ClobGateway

    shown = redact_url(url)
    try:
        account = worker_accounts(settings, 1)[0]
    except ConfigError:
        account = None
    if account is None:
        return [_fail("clob", f"{shown}: not checked without a worker key", "fix the worker keys row first"),
                _fail("clob credentials", "no worker key to derive API credentials with",
                      "fix the worker keys row first")]
    key = account.key.hex() if isinstance(account.key, bytes) else account.key
    gateway = ClobGateway(url, chain_id, key, exchange)
    t = time.perf_counter()
    try:
        gateway.client.get_ok()
    except Exception as exc:  # noqa: BLE001 — the client raises its own exception types
        return [_fail("clob", f"{shown} unreachable ({type(exc).__name__})",
                      "check network access to the CLOB, or COPYTRADE_CLOB_URL"),
                _fail("clob credentials", "not checked: the CLOB is unreachable", "fix the clob row first")]
    rows = [_ok("clob", f"{shown} answers in {(time.perf_counter() - t) * 1000:.0f} ms")]
    try:
        gateway.ensure_creds()
        rows.append(_ok("clob credentials", f"API credentials derived for worker {account.address} (not shown)"))
    except CopytradeError as exc:
        rows.append(_fail("clob credentials", str(exc), "check the worker key; the CLOB derives credentials for any "
                                                        "valid key (L1 auth), so a refusal means a bad key or clock"))
    return rows


def _real_trading_check(settings: Settings, is_local: bool) -> Check:
    name = "real trading"
    allow = settings.copy_trading_execution_allowlist
    only = f"; only {len(allow)} allow-listed follower(s) execute" if allow else ""
    if is_local:
        return _ok(name, "the fork: copies always execute (local funds only); ENABLE_REAL_TRADING="
                         f"{str(settings.enable_real_trading).lower()} applies to live networks" + only, WARNING)
    if not settings.enable_real_trading:
        return _fail(name, "ENABLE_REAL_TRADING is off: the supervisor records decisions and executes nothing",
                     "set ENABLE_REAL_TRADING=true when you mean to trade real funds", WARNING)
    caps = [(n, v) for n, v in (("max trade", settings.copy_trading_max_trade_usd),
                                ("daily cap", settings.copy_trading_daily_cap_usd),
                                ("per-wallet daily cap", settings.copy_trading_wallet_daily_cap_usd)) if v is not None]
    if not caps:
        return _fail(name, "ENABLE_REAL_TRADING is on with no caps: copies spend real USDC without a ceiling" + only,
                     "set COPY_TRADING_MAX_TRADE_USD and COPY_TRADING_DAILY_CAP_USD", WARNING)
    shown = ", ".join(f"{n} {v} USD" for n, v in caps)
    return _ok(name, f"ENABLE_REAL_TRADING is on: copies spend real USDC from follower proxies ({shown}){only}",
               WARNING)


def _supervisor_health_check(settings: Settings) -> Check:
    """A warning row: what running supervisors say of themselves (health key in Redis, or file in the home)."""
    from .supervisor.observe import check_health

    try:
        ok, docs, summary = check_health(settings)
    except Exception as exc:  # noqa: BLE001 — health is informative; its store may be down (see the redis row)
        # The store's own row (redis) already fails; this one only says it cannot know.
        return _ok("supervisor health", f"unknown: health not readable ({type(exc).__name__}); see the redis row",
                   WARNING)
    if not docs:
        return _ok("supervisor health", "no supervisor instance running (start one with `copytrade supervise`)",
                   WARNING)
    if ok:
        return _ok("supervisor health", summary, WARNING)
    return _fail("supervisor health", summary, "check the instances' logs; `copytrade supervise --health` lists them",
                 WARNING)


def _redis_check(settings: Settings) -> Check:
    url = settings.redis
    if not url:
        return _ok("redis", "not configured: one supervisor instance, in-process queue (SUPERVISOR_REDIS_URL "
                            "scales out)", WARNING)
    import redis

    shown = redact_url(url)
    t = time.perf_counter()
    try:
        client = redis.Redis.from_url(url, socket_timeout=HTTP_TIMEOUT_S, socket_connect_timeout=HTTP_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 — any failure means unreachable
        return _fail("redis", f"{shown} unreachable ({type(exc).__name__})",
                     "start Redis or fix SUPERVISOR_REDIS_URL / REDIS_URL (or unset it to run one instance)")
    return _ok("redis", f"{shown} answers PING in {(time.perf_counter() - t) * 1000:.1f} ms")
