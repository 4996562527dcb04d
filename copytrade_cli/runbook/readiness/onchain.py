"""Readiness rows read on chain: the Executor and ProxyFactory, the worker fleet (signers and deposit wallets,
readiness/wallets.py), the tip floor, the follower proxies (two JSON-RPC batches in all)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from eth_utils import to_checksum_address

from ...chain import reads
from ...chain.deploy import addresses
from ...chain.proxies import usd
from ...polymarket.addresses import chain_contracts
from ...polymarket.world import World
from ...settings import Settings
from ...state import State
from .report import MIN_PROXY_MICRO, WARNING, Check, failed, passed, short, some_of
from .wallets import WORKER_ROWS, tip_floor_row, worker_plan, worker_rows

FAILED = reads.FAILED
CHAIN_ROWS = ("executor", "executor allowlist", "factory", "factory allowlist", "admin", *WORKER_ROWS, "tip floor",
              "follower proxies", "follower funding")


def unchecked_chain_rows() -> list[Check]:
    """The on-chain rows, each failed as not checked (no endpoint answered)."""
    return [failed(n, "not checked: no RPC endpoint answered", "fix the rpc rows first") for n in CHAIN_ROWS]


def chain_rows(settings: Settings, state: State, name: str, chain_id: int, is_local: bool, node, w3,
                  workers: list[str]) -> list[Check]:
    """Contracts, fleet (signers + deposit wallets) and follower proxies, read in two JSON-RPC batches."""
    from ...chain.accounts import trading_wallets
    from ..fleet import spenders_of

    world = World.from_json(node.world_json) if node is not None and node.world_json else None
    c = chain_contracts(chain_id, world, settings)
    collateral, ctf = c.collateral, c.ctf
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
    roles = {k: v for k, v in (("Executor", executor), ("ProxyFactory", factory), ("Treasury", addrs.get("Treasury")))
             if v}
    for n, a in roles.items():
        holder, pending = ("admin()", "pendingAdmin()") if n == "ProxyFactory" else ("owner()", "pendingOwner()")
        plan[f"adm.holder.{n}"] = V(a, holder, returns="address")
        plan[f"adm.pending.{n}"] = V(a, pending, returns="address")
        if n != "Treasury":
            plan[f"adm.delay.{n}"] = V(a, "ADMIN_DELAY()", returns="uint256")
    if executor:
        plan["adm.sealed"] = V(executor, "sealed()")
    wallets = trading_wallets(workers, world, is_local=is_local)
    spenders = spenders_of(SimpleNamespace(world=world, chain_id=chain_id), executor)
    plan.update(worker_plan(workers, wallets, executor, collateral, ctf, spenders))
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
            _executor_allowlist_row(executor, got, collateral, ctf),
            _factory_row(name, factory, executor, got),
            _factory_allowlist_row(factory, got),
            admin_row(settings, roles, got, is_local, workers),
            *worker_rows(workers, wallets, executor, spenders, got),
            tip_floor_row(settings, w3, chain_id, is_local),
            *_follower_rows(followers, routed, blocked, executor, got)]
    return rows


def hot_keys(settings: Settings, workers: list[str]) -> list[str]:
    """The addresses of every key the supervisor holds: operator, funder, workers (a key that fails to load is
    reported by its own row)."""
    from ...chain.accounts import operator_account
    from ...chain.roles import funder_account
    from ...errors import ConfigError

    out = list(workers)
    for load in (operator_account, funder_account):
        try:
            out.append(load(settings).address)
        except ConfigError:
            pass
    return out


def admin_row(settings: Settings, contracts: dict[str, str], got: dict, is_local: bool, workers: list[str]) -> Check:
    """Who holds the Executor, ProxyFactory and Treasury (read in the first batch, judged by chain/roles.py):
    live, COPYTRADE_ADMIN must be set, not a hot key of the supervisor, hold every contract, and the Executor
    must be sealed."""
    from ...chain.roles import AdminStatus, judge_admin

    if not contracts and is_local:
        return passed("admin", "the fork: no contracts deployed yet (live, COPYTRADE_ADMIN must hold them)")
    if not contracts:
        return failed("admin", "not checked: no contracts recorded", "deploy the Executor and ProxyFactory first")

    def value(key: str) -> Any:
        v = got.get(key, FAILED)
        return None if v is FAILED else v

    def holder(n: str) -> str | None:  # None: some role view failed (a generation without two-step ownership)
        keys = [f"adm.holder.{n}", f"adm.pending.{n}"] + ([f"adm.delay.{n}"] if n != "Treasury" else []) + \
            (["adm.sealed"] if n == "Executor" else [])
        return _cs(got[keys[0]]) if all(got.get(k, FAILED) is not FAILED for k in keys) else None

    holders = {n: holder(n) for n in contracts}
    is_sealed = value("adm.sealed") if "Executor" in contracts else None
    st = judge_admin(AdminStatus(admin=settings.copytrade_admin, holders=holders,
                                 pending={n: value(f"adm.pending.{n}") for n in contracts},
                                 sealed=None if is_sealed is None else bool(is_sealed),
                                 delay_s={n: value(f"adm.delay.{n}") for n in contracts if n != "Treasury"}),
                     hot_keys(settings, workers), is_local)
    by: dict[str, list[str]] = {}
    for n, h in st.holders.items():
        by.setdefault(_cs(h) if h else "?", []).append(n)
    held = "; ".join(f"{', '.join(ns)} held by {h}" for h, ns in by.items())
    sealed = {True: "sealed", False: "not sealed (setup phase)", None: "seal state unknown"}[st.sealed]
    if is_local:
        return passed("admin", f"the fork: {held}; Executor {sealed}. Live, COPYTRADE_ADMIN (a cold key or "
                               "multisig, not a supervisor key) must hold them all")
    if st.problems:
        return failed("admin", some_of(st.problems),
                      "set COPYTRADE_ADMIN to a cold key or multisig (not TRADING_PRIVATE_KEY, the funder or a "
                      "worker), run `copytrade deploy factory` (it seals the Executor and proposes the hand-over), "
                      "then accept from the admin: acceptOwnership() on Executor and Treasury, acceptAdmin() on "
                      "the ProxyFactory")
    delays = sorted({d for d in st.delay_s.values() if d is not None})
    delay = f"; grants wait {'/'.join(str(d) for d in delays)} s" if delays else ""
    return passed("admin", f"COPYTRADE_ADMIN {_cs(st.admin)} holds {', '.join(st.holders)}; Executor {sealed}{delay}")


def _cs(a: Any) -> str:
    return to_checksum_address(str(a))


def _same(a: Any, b: str | None) -> bool:
    return a is not FAILED and b is not None and str(a).lower() == b.lower()


def _executor_row(network: str, executor: str | None, got: dict, generation: int | None) -> Check:
    if not executor:
        return failed("executor", f"no Executor recorded on {network}",
                      "run `copytrade deploy executor` (on the fork: `copytrade fork up`)")
    if not got.get("ex.code"):
        return failed("executor", f"Executor {executor} is recorded but has no code on chain",
                      "deploy it again: `copytrade deploy executor --force` (a new fork forgets contracts)")
    if got.get("ex.paused") is not False:
        return failed("executor", f"Executor {executor} is paused: every worker call reverts",
                      f"call Executor.unpause() from its owner {_cs(got['ex.owner']) if got.get('ex.owner') else ''}")
    gen = f" (generation {generation})" if generation else ""
    return passed("executor", f"Executor {executor}{gen} has code, not paused, owner {_cs(got['ex.owner'])}")


def _executor_allowlist_row(executor: str | None, got: dict, collateral: str, ctf: str) -> Check:
    if not executor or not got.get("ex.code"):
        return failed("executor allowlist", "not checked: no Executor", "deploy the Executor first")
    missing = [n for n, k in (("collateral", "ex.t.collateral"), ("CTF", "ex.t.ctf")) if got.get(k) is not True]
    if missing:
        return failed("executor allowlist", f"missing on the Executor: {', '.join(missing)}",
                      f"from the Executor owner: queueGrant(2, [{collateral}, {ctf}]) (what is missing), "
                      "then applyGrant after its delay")
    return passed("executor allowlist", "targets collateral + CTF")


def _factory_row(network: str, factory: str | None, executor: str | None, got: dict) -> Check:
    if not factory:
        return failed("factory", f"no ProxyFactory recorded on {network}",
                      "run `copytrade deploy factory` (on the fork: `copytrade fork up`)")
    if not got.get("f.code"):
        return failed("factory", f"ProxyFactory {factory} is recorded but has no code on chain",
                      "deploy it again: `copytrade deploy factory --force`")
    if executor and not _same(got.get("f.executor"), executor):
        return failed("factory", f"ProxyFactory {factory} is bound to {got.get('f.executor')}, not the Executor {executor}",
                      f"from the factory admin: ProxyFactory.queueGrant(1, [{executor}]), then applyGrant after its delay")
    if executor and got.get("ex.trusts") is not True:
        return failed("factory", f"the Executor does not trust ProxyFactory {factory} (isFactory is false)",
                      f"from the Executor owner: Executor.queueGrant(3, [{factory}]), then applyGrant after its delay")
    return passed("factory", f"ProxyFactory {factory} has code, bound to the Executor, trusted by it")


def _factory_allowlist_row(factory: str | None, got: dict) -> Check:
    if not factory or not got.get("f.code"):
        return failed("factory allowlist", "not checked: no ProxyFactory", "deploy the ProxyFactory first")
    missing = [n for n, k in (("collateral", "f.t.collateral"), ("CTF", "f.t.ctf")) if got.get(k) is not True]
    if missing:
        return failed("factory allowlist", f"missing on the ProxyFactory: {', '.join(missing)}",
                      "from the factory admin: ProxyFactory.queueGrant(2, [collateral, CTF]), then applyGrant after its delay")
    return passed("factory allowlist", "targets collateral + CTF")


def _follower_rows(followers: list[str], routed: list[str], blocked: dict[str, str], executor: str | None,
                   got: dict) -> list[Check]:
    skipped = len(followers) - len(routed)
    note = f"; {skipped} on deprecated or previous-generation proxies, skipped by the supervisor" if skipped else ""
    if not followers:
        return [failed("follower proxies", "no active follows: the supervisor has nothing to copy",
                       "add one: `copytrade seed` or `copytrade follow add --follower P --leader L`", WARNING),
                passed("follower funding", "no active follows")]
    if not routed:
        return [failed("follower proxies", f"all {skipped} active follows are on deprecated or previous-generation "
                       "proxies: the supervisor has nothing to copy",
                       "users re-deposit into new proxies, then `copytrade migrate users` moves their follows", WARNING),
                passed("follower funding", "no follows on usable proxies")]
    bad = []
    for p in routed:
        f = got.get(f"p.factory.{p}")
        if not got.get(f"p.code.{p}"):
            bad.append(f"{short(p)}: no contract at this address")
        elif f is FAILED:
            bad.append(f"{short(p)}: not a copytrade proxy")
        elif got.get(f"F.isProxy.{p}") is not True:
            bad.append(f"{short(p)}: its factory does not know it")
        elif not _same(got.get(f"F.executor.{f}"), executor) or got.get(f"F.trusted.{f}") is not True:
            bad.append(f"{short(p)}: bound to another Executor (factory {short(str(f))})")
        elif got.get(f"F.paused.{p}") is not False:
            bad.append(f"{short(p)}: paused")
    rows = [failed("follower proxies", f"{len(bad)}/{len(routed)} proxies of active follows unusable: {some_of(bad)}{note}",
                   "create proxies with `copytrade proxy create --owner O` and point follows at them; a paused or "
                   "migrated proxy's follows move to the owner's new proxy (`copytrade migrate users`)")
            if bad else passed("follower proxies", f"{len(routed)}/{len(routed)} proxies of active follows exist, bound "
                                                f"to this Executor, not paused{note}")]
    poor = [f"{short(p)} {_usdc(got.get(f'p.bal.{p}'))}" for p in routed
            if not isinstance(got.get(f"p.bal.{p}"), int) or got[f"p.bal.{p}"] < MIN_PROXY_MICRO]
    rows.append(failed("follower funding", f"{len(poor)}/{len(routed)} proxies hold less than 1 pUSD: {some_of(poor)}",
                       "the owner deposits pUSD into the proxy (USDC.e wraps into pUSD through the CollateralOnramp; "
                       "on the fork: `copytrade proxy fund --proxy P --amount 100`)")
                if poor else passed("follower funding", f"{len(routed)}/{len(routed)} proxies hold >= 1 pUSD"))
    return rows


def _usdc(micro: Any) -> str:
    return f"{usd(micro)} pUSD" if isinstance(micro, int) else "? pUSD"


