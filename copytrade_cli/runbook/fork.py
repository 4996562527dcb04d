"""`fork up|down|status`: a local Polygon (chain id 137) that behaves like mainnet.

Offline (no fork URL) it plants Polymarket's contracts at their real addresses, gives the whale
collateral, creates markets with a market maker, then (unless told not to) deploys Executor + Factory,
creates and funds the operator's proxy from the whale, funds and approves the worker fleet, and starts
the local CLOB (+ activity feed and Data API) in the background. Everything is recorded in state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..chain import node as nodes
from ..chain.accounts import DevAccounts, dev_key, operator_account, trading_wallets, worker_accounts
from ..chain.deploy import addresses, deploy_executor, deploy_factory
from ..chain.network import LOCAL_NETWORK, running_node
from ..chain.proxies import create_proxy, fund_pusd_from_whale
from ..chain.lanes import FeeOracle, TxLane
from ..chain.roles import plan as role_plan
from ..chain.rpc import connect
from ..errors import NodeError
from ..localworld.plant import plant_polymarket
from ..polymarket.world import World
from ..settings import Settings
from ..state import NodeRecord, State, now_iso

OPERATOR_PROXY_FUNDING = 1000 * 10**6


@dataclass
class ForkReport:
    """What `fork up` did, step by step with timings."""

    rpc_url: str = ""
    chain_id: int = 0
    pid: int = 0
    steps: list[tuple[str, str, float]] = field(default_factory=list)
    addresses: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape."""
        return {"rpc_url": self.rpc_url, "chain_id": self.chain_id, "pid": self.pid, "seconds": round(self.seconds, 2),
                "steps": [{"step": s, "detail": d, "seconds": round(t, 3)} for s, d, t in self.steps],
                "addresses": self.addresses}


Progress = Callable[[str], None]


def fork_up(settings: Settings, state: State, *, kind: str = "anvil", port: int | None = None,
            fork_url: str | None = None, deploy: bool = True, block_time: float | None = None,
            clob: bool = True, clob_port: int | None = None, progress: Progress | None = None,
            grandfathered: tuple[str, ...] = (),
            min_tip_gwei: float = nodes.DEFAULT_MIN_TIP_GWEI) -> ForkReport:
    """Start the node, plant Polymarket, deploy and fund; record everything. Refuses if one already runs."""
    say = progress or (lambda _m: None)
    t0 = time.time()
    report = ForkReport()
    current = running_node(state)
    if current:
        raise NodeError(f"a {current.kind} node already runs for this COPYTRADE_HOME (PID {current.pid}, "
                        f"{current.rpc_url}); `copytrade fork down` first")
    stale = state.get_node()
    if stale:
        _stop_clob(stale)
        state.delete_node()

    def step(name: str, detail: str, started: float) -> None:
        report.steps.append((name, detail, time.time() - started))

    s = time.time()
    say(f"starting {kind}")
    started = nodes.start_node(kind, port=port, chain_id=137, log_dir=settings.home / "logs", fork_url=fork_url,
                               block_time=block_time, min_tip_gwei=min_tip_gwei or None)
    report.rpc_url, report.chain_id, report.pid = started.rpc_url, started.chain_id, started.pid
    rec = NodeRecord(name="default", kind=kind, pid=started.pid, rpc_url=started.rpc_url, ws_url=started.ws_url,
                     chain_id=started.chain_id, port=started.port, log_path=str(started.log_path),
                     started_at=now_iso(), fork_url=fork_url, block_time=block_time)
    state.save_node(rec)
    # A new local chain: records of the previous fork's contracts are void.
    state.forget_network(LOCAL_NETWORK)
    step("node", f"{kind} PID {started.pid} on {started.rpc_url} (chain id {started.chain_id})", s)
    try:
        if fork_url is None:
            _offline_setup(settings, state, rec, report, deploy=deploy, clob=clob, clob_port=clob_port,
                           step=step, say=say, grandfathered=tuple(grandfathered))
    except BaseException:
        fork_down(state)
        raise
    report.seconds = time.time() - t0
    return report


def _offline_setup(settings, state, rec, report, *, deploy, clob, clob_port, step, say, grandfathered=()) -> None:
    w3 = connect(rec.rpc_url)
    operator = operator_account(settings)
    s = time.time()
    say("planting Polymarket at its mainnet addresses")
    world = plant_polymarket(w3, dev_key(DevAccounts.operator))
    state.update_node("default", world_json=world.to_json())
    rec.world_json = world.to_json()
    report.addresses.update({"USDC.e": world.collateral, "pUSD": world.pusd, "CTF": world.ctf,
                             "Exchange V2": world.exchange, "Neg-risk Exchange V2": world.neg_risk_exchange,
                             "CollateralOnramp": world.onramp, "CollateralOfframp": world.offramp})
    step("plant", f"USDC.e, pUSD + on/offramp, real CTF, V2 + neg-risk V2 exchanges; {len(world.markets)} markets; "
                  "whale funded", s)
    if deploy:
        setup_contracts(settings, state, w3, world, operator, worker_accounts(settings), report, step, say)
    if clob:
        s = time.time()
        say("starting the local CLOB, activity feed and Data API")
        url, pid = spawn_clob(settings, rec, port=clob_port, grandfathered=grandfathered)
        state.update_node("default", clob_url=url, clob_pid=pid, feed_url=url.replace("http://", "ws://") + "/ws")
        report.addresses["CLOB"] = url
        step("clob", f"local CLOB on {url} (PID {pid})", s)
        s = time.time()
        say("starting the local relayer (deposit wallets)")
        from ..localworld.relayer_server import spawn as spawn_relayer

        url, pid = spawn_relayer(settings)
        state.update_node("default", relayer_url=url, relayer_pid=pid)
        report.addresses["Relayer"] = url
        step("relayer", f"local relayer on {url} (PID {pid}), gas from {world.relayer_account}", s)
    if deploy and (clob or world.deposit_wallet_factory is None):
        setup_fleet(settings, state, step, say)
    elif deploy:
        step("fleet", "skipped: deposit wallets need the local CLOB and relayer (`copytrade fleet setup` later)",
             time.time())


def setup_contracts(settings, state, w3, world, operator, workers, report, step, say) -> None:
    """Deploy Executor + Factory (each worker registered with its deposit wallet), create and fund the operator's
    proxy; with the local CLOB and relayer already up, set the fleet up too (else `_offline_setup` does it after
    starting them)."""
    fees = FeeOracle.from_settings(w3, settings)
    lane = TxLane(w3, operator, fees=fees)
    worker_addrs = [a.address for a in workers]
    wallets = trading_wallets(worker_addrs, world, is_local=True)
    s = time.time()
    say("deploying Executor and registering the worker fleet with their deposit wallets")
    roles = role_plan(settings, operator.address, True)
    targets = [world.exchange_collateral, world.ctf]
    r1 = deploy_executor(w3, state, LOCAL_NETWORK, lane, workers=worker_addrs, targets=targets, roles=roles,
                         wallets=wallets)
    r2 = deploy_factory(w3, state, LOCAL_NETWORK, lane, targets=targets, roles=roles)
    for r in (r1, r2):
        for st in r.steps:
            if st.address and st.what.startswith("deploy"):
                report.addresses[st.what.removeprefix("deploy ")] = st.address
    step("deploy", f"Executor ({len(worker_addrs)} workers), Treasury, ProxyFactory", s)
    s = time.time()
    say("creating the operator's proxy and funding it from the whale")
    factory = report.addresses["ProxyFactory"]
    proxy, _ = create_proxy(w3, state, LOCAL_NETWORK, lane, factory, operator.address)
    fund_pusd_from_whale(w3, world, proxy, OPERATOR_PROXY_FUNDING)
    report.addresses["Operator proxy"] = proxy
    step("proxy", f"{proxy} funded with 1000 pUSD (the whale's USDC.e wrapped through the onramp)", s)
    rec = state.get_node()
    if rec is not None and rec.clob_url and getattr(rec, "relayer_url", None):
        setup_fleet(settings, state, step, say)


def setup_fleet(settings, state, step, say) -> None:
    """`fleet setup` on the fork: signer gas, deposit wallets through the relayer, approvals, pUSD float."""
    from .fleet import fleet_setup

    s = time.time()
    say("setting up the worker fleet: gas, deposit wallets (relayer), approvals, pUSD float")
    r = fleet_setup(settings, state, LOCAL_NETWORK, progress=say)
    d = r.done
    step("fleet", f"{len(r.status.workers)} workers ({r.status.ready} ready): {d['gas']} gas top-ups, "
                  f"{d['wallets']} wallets created, {d['approval_calls']} approvals, {d['float']} float top-ups", s)


def spawn_clob(settings: Settings, rec: NodeRecord, port: int | None = None, timeout: float = 20.0,
               grandfathered: tuple[str, ...] = ()) -> tuple[str, int]:
    """Start `copytrade clob serve` in the background for this node; return (url, pid) when it answers.
    `grandfathered`: makers the local CLOB lets post signature types 0/1/2 (docs/local-clob.md)."""
    from ..localworld.app_thread import spawn_server

    port = port or nodes.free_port()
    extra = [arg for a in grandfathered for arg in ("--grandfathered", a)]
    return spawn_server(settings, ["copytrade_cli", "clob", "serve", "--port", str(port), *extra], what="local CLOB",
                        port=port, stop_marker="copytrade_cli", timeout=timeout)


def _stop_relayer(rec: NodeRecord) -> bool:
    if rec.relayer_pid and nodes.pid_alive(rec.relayer_pid):
        return nodes.stop_pid(rec.relayer_pid, "copytrade_cli.localworld.relayer_server")
    return False


def _stop_clob(rec: NodeRecord) -> bool:
    _stop_relayer(rec)
    if rec.clob_pid and nodes.pid_alive(rec.clob_pid):
        return nodes.stop_pid(rec.clob_pid, "copytrade_cli")
    return False


def fork_down(state: State) -> dict[str, Any]:
    """Stop exactly the processes `fork up` started (node, CLOB, relayer), by PID, and forget them."""
    rec = state.get_node()
    if rec is None:
        return {"stopped": False, "reason": "no node recorded"}
    relayer = _stop_relayer(rec)
    clob = _stop_clob(rec)
    node = nodes.stop_pid(rec.pid, rec.kind) if nodes.pid_alive(rec.pid) else False
    state.delete_node()
    return {"stopped": node, "pid": rec.pid, "clob_stopped": clob, "clob_pid": rec.clob_pid, "kind": rec.kind,
            "relayer_stopped": relayer, "relayer_pid": rec.relayer_pid}


def fork_status(state: State) -> dict[str, Any]:
    """What runs: rpc_url, chain_id, block, pid, addresses (from state, checked against the node)."""
    rec = state.get_node()
    if rec is None:
        return {"running": False}
    alive = nodes.pid_alive(rec.pid)
    out: dict[str, Any] = {"running": alive, "kind": rec.kind, "pid": rec.pid, "rpc_url": rec.rpc_url,
                           "ws_url": rec.ws_url, "chain_id": rec.chain_id, "started_at": rec.started_at,
                           "fork_url": rec.fork_url, "log": rec.log_path,
                           "clob_url": rec.clob_url if rec.clob_pid and nodes.pid_alive(rec.clob_pid) else None,
                           "clob_pid": rec.clob_pid,
                           "relayer_url": rec.relayer_url if rec.relayer_pid and nodes.pid_alive(rec.relayer_pid) else None,
                           "relayer_pid": rec.relayer_pid}
    if alive:
        try:
            out["block"] = int(nodes.rpc(rec.rpc_url, "eth_blockNumber", timeout=2), 16)
        except NodeError as exc:
            out["running"] = False
            out["error"] = str(exc)
    addrs: dict[str, str] = {}
    if rec.world_json:
        w = World.from_json(rec.world_json)
        addrs.update({"USDC.e": w.collateral, "pUSD": w.pusd, "CTF": w.ctf, "Exchange V2": w.exchange})
        if w.deposit_wallet_factory:
            addrs["Deposit-wallet factory"] = w.deposit_wallet_factory
    addrs.update(addresses(state, LOCAL_NETWORK))
    # after a migration, the operator's proxy is the one on the active factory
    proxies = [p for p in state.list_proxies(LOCAL_NETWORK) if p.factory == addrs.get("ProxyFactory")] or \
        state.list_proxies(LOCAL_NETWORK)
    if proxies:
        addrs["Operator proxy"] = proxies[0].address
    out["addresses"] = addrs
    return out
