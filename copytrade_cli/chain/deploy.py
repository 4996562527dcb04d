"""Deploying copytrade's contracts and recording them in state: Executor (+ worker fleet and allowlists),
Treasury + Proxy implementation + ProxyFactory bound to the Executor, then the hand-over to the admin
(chain/roles.py: seal the Executor's setup phase, two-step transfer to COPYTRADE_ADMIN). Idempotent: an
existing deployment with code on chain is reported and kept unless `force`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import DeploymentError
from ..state import Deployment, State
from .contracts import create_address
from .contracts import deploy as deploy_artifact
from .contracts import load_artifact
from .lanes import TxLane
from .roles import RolePlan, grant, handover, worker_pairs
from .rpc import wait_receipt


@dataclass
class DeployStep:
    """One thing a deploy did or would do."""

    what: str
    address: str | None = None
    tx: str | None = None
    gas_used: int | None = None
    skipped: bool = False


@dataclass
class DeployReport:
    """What a deploy command did (or, with dry_run, would do)."""

    network: str
    steps: list[DeployStep] = field(default_factory=list)
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"network": self.network, "dry_run": self.dry_run, "steps": [s.__dict__ for s in self.steps]}


def contract(w3, name: str, address: str):
    """A web3 contract object for one of our artifacts."""
    return w3.eth.contract(address=address, abi=load_artifact(name).abi)


def call_tx(lane: TxLane, w3, name: str, address: str, fn: str, *args, gas: int | None = None,
            wait: bool = True) -> str | dict:
    """Send a transaction calling `fn(*args)` on one of our contracts."""
    data = contract(w3, name, address).encode_abi(fn, args=list(args))
    tx = {"to": address, "data": data}
    if wait:
        return lane.transact(tx, gas=gas)
    return lane.send(tx, gas=gas)


def has_code(w3, address: str | None) -> bool:
    """True if a contract lives at `address`."""
    return bool(address) and len(w3.eth.get_code(address)) > 0


def existing(w3, state: State, network: str, name: str) -> Deployment | None:
    """The recorded active deployment, if its code is really on chain."""
    dep = state.get_deployment(network, name)
    if dep and has_code(w3, dep.address):
        return dep
    return None


def _record(state: State, network: str, name: str, address: str, tx: str, receipt, deployer: str,
            generation: int, status: str = "active") -> Deployment:
    return state.record_deployment(Deployment(network=network, name=name, address=address, tx=tx,
                                              block=receipt["blockNumber"], gas_used=receipt["gasUsed"],
                                              deployer=deployer, generation=generation, status=status))


def _deploy(w3, lane: TxLane, name: str, *args) -> tuple[str, str, dict]:
    address, tx_hash, block, gas = deploy_artifact(w3, lane.account, name, *args)
    lane.resync()  # contracts.deploy sends outside the lane
    receipt = wait_receipt(w3, tx_hash)
    return address, tx_hash, receipt


def _is_fork(w3) -> bool:
    version = str(w3.provider.make_request("web3_clientVersion", [])["result"]).lower()
    return "anvil" in version or "hardhat" in version


def default_roles(w3, lane: TxLane, roles: RolePlan | None) -> RolePlan:
    """`roles`, or (callers that pass none) the deployer as admin with the default delay."""
    return roles if roles is not None else RolePlan(admin=lane.address, on_fork=_is_fork(w3))


def deploy_executor(w3, state: State, network: str, lane: TxLane, *, workers: list[str], targets: list[str],
                    force: bool = False, dry_run: bool = False,
                    generation: int | None = None, status: str = "active",
                    roles: RolePlan | None = None, wallets: list[str] | None = None) -> DeployReport:
    """Deploy the Executor (delay `roles.delay_s`), register the worker fleet (each worker with its trading wallet
    `wallets[i]`; None: every worker trades from its own address) and the target allowlist in its setup phase
    (`status="pending"` records a migration's new generation without making it the one in use yet)."""
    roles = default_roles(w3, lane, roles)
    wallets = list(wallets) if wallets is not None else list(workers)
    report = DeployReport(network, dry_run=dry_run)
    gen = generation or _current_generation(state, network)
    prior = existing(w3, state, network, "Executor") if generation is None else None
    if prior and not force:
        report.steps.append(DeployStep(f"Executor already deployed (generation {prior.generation}); "
                                       "use --force to deploy a new one", prior.address, prior.tx, skipped=True))
        _sync_workers(w3, state, network, lane, prior.address, workers, wallets, report, dry_run, roles)
        return report
    if dry_run:
        report.steps.append(DeployStep(f"deploy Executor (owner {lane.address}, grant delay {roles.delay_s} s)"))
        report.steps.append(DeployStep(f"register {len(workers)} workers with their trading wallets"))
        report.steps.append(DeployStep(f"allow targets {', '.join(targets)}"))
        return report
    address, tx, receipt = _deploy(w3, lane, "Executor", roles.delay_s)
    report.steps.append(DeployStep("deploy Executor", address, tx, receipt["gasUsed"]))
    hashes = []
    pairs = worker_pairs(workers, wallets)
    for i in range(0, len(pairs), 200):
        hashes.append(("register workers + their trading wallets",
                       call_tx(lane, w3, "Executor", address, "addWorkers", pairs[i:i + 200], wait=False)))
    hashes.append(("allow targets (collateral + CTF)",
                   call_tx(lane, w3, "Executor", address, "setTargets", targets, True, wait=False)))
    for what, h in hashes:
        r = wait_receipt(w3, h)
        report.steps.append(DeployStep(what, address, h, r["gasUsed"]))
    _record(state, network, "Executor", address, tx, receipt, lane.address, gen, status)
    state.record_workers(network, workers)
    return report


def _sync_workers(w3, state: State, network: str, lane: TxLane, executor: str, workers: list[str],
                  wallets: list[str], report: DeployReport, dry_run: bool, roles: RolePlan) -> None:
    from . import reads

    got = reads.read_many(w3, [r for a in workers for r in (reads.view(executor, "isWorker(address)", a),
                                                              reads.view(executor, "walletOf(address)", a,
                                                                         returns="address"))])
    missing = [(a, wl) for i, (a, wl) in enumerate(zip(workers, wallets))
               if got[2 * i] is not True or str(got[2 * i + 1]).lower() != wl.lower()]
    if not missing:
        state.record_workers(network, workers)
        return
    if dry_run:
        report.steps.append(DeployStep(f"register {len(missing)} missing workers (or wallets)", executor))
        return
    # A sealed Executor adds workers only after its delay (queued, then applied; the fork advances time).
    for i in range(0, len(missing), 100):  # <= 128 pairs per grant (the Executor's list bound)
        res = grant(w3, lane, "Executor", executor, "worker", missing[i:i + 100], on_fork=roles.on_fork)
    report.steps.append(DeployStep(f"register {len(missing)} missing workers or wallets ({res.status})", executor,
                                   res.txs[-1] if res.txs else None))
    if res.status != "queued":
        state.record_workers(network, workers)


def deploy_factory(w3, state: State, network: str, lane: TxLane, *, targets: list[str], force: bool = False,
                   dry_run: bool = False, executor: str | None = None, generation: int | None = None,
                   status: str = "active", roles: RolePlan | None = None) -> DeployReport:
    """Deploy Treasury, the Proxy implementation and the ProxyFactory bound to the recorded Executor, have the
    Executor trust it, then hand Executor, factory and Treasury over to `roles.admin` (chain/roles.py)."""
    roles = default_roles(w3, lane, roles)
    report = DeployReport(network, dry_run=dry_run)
    gen = generation or _current_generation(state, network)
    if executor is None:
        ex = state.get_deployment(network, "Executor", gen)
        if ex is None or not has_code(w3, ex.address):
            raise DeploymentError(f"no Executor recorded on {network}: run `copytrade deploy executor` first")
        executor = ex.address
    prior = existing(w3, state, network, "ProxyFactory") if generation is None else None
    if prior and not force:
        report.steps.append(DeployStep(f"ProxyFactory already deployed (generation {prior.generation}); "
                                       "use --force to deploy a new one", prior.address, prior.tx, skipped=True))
        return report
    if dry_run:
        report.steps += [DeployStep("deploy Treasury"), DeployStep("deploy Proxy implementation"),
                         DeployStep(f"deploy ProxyFactory bound to Executor {executor}"),
                         DeployStep("trust ProxyFactory on the Executor"),
                         DeployStep(f"seal the Executor; hand Executor, ProxyFactory, Treasury to {roles.admin}")]
        return report
    t_addr, t_tx, t_r = _deploy(w3, lane, "Treasury")
    report.steps.append(DeployStep("deploy Treasury", t_addr, t_tx, t_r["gasUsed"]))
    # The Proxy implementation holds its factory as an immutable and the factory checks it, so the
    # implementation is deployed first with the factory's future address (next nonce).
    nonce = lane.resync()
    i_addr, i_tx, i_r = _deploy(w3, lane, "Proxy", create_address(lane.address, nonce + 1))
    report.steps.append(DeployStep("deploy Proxy implementation", i_addr, i_tx, i_r["gasUsed"]))
    f_addr, f_tx, f_r = _deploy(w3, lane, "ProxyFactory", executor, i_addr, targets, roles.delay_s)
    report.steps.append(DeployStep("deploy ProxyFactory", f_addr, f_tx, f_r["gasUsed"]))
    # The Executor only moves funds of proxies made by a factory it trusts (and that names it): immediate in
    # its setup phase, after the delay if it is already sealed (a new factory for a running Executor).
    res = grant(w3, lane, "Executor", executor, "factory", [f_addr], on_fork=roles.on_fork)
    report.steps.append(DeployStep(f"trust ProxyFactory on the Executor ({res.status})", executor,
                                   res.txs[-1] if res.txs else None))
    _record(state, network, "Treasury", t_addr, t_tx, t_r, lane.address, gen, status)
    _record(state, network, "ProxyImplementation", i_addr, i_tx, i_r, lane.address, gen, status)
    _record(state, network, "ProxyFactory", f_addr, f_tx, f_r, lane.address, gen, status)
    for what, where, h in handover(w3, lane, {"Executor": executor, "ProxyFactory": f_addr, "Treasury": t_addr},
                                   roles):
        report.steps.append(DeployStep(what, where, h))
    return report


def _current_generation(state: State, network: str) -> int:
    dep = state.get_deployment(network, "Executor")
    return dep.generation if dep else 1


def addresses(state: State, network: str) -> dict[str, str]:
    """Active deployment addresses on a network, by contract name."""
    out: dict[str, str] = {}
    for d in state.list_deployments(network):
        if d.status == "active" and d.name not in out:
            out[d.name] = d.address
    return out


def env_lines(addrs: dict[str, str], collateral: str, ctf: str, pusd: str | None = None) -> list[str]:
    """The addresses as .env lines for tools that read one (the seed's variable names; PUSD_ADDRESS for pUSD)."""
    lines = [f"USDC_ADDRESS={collateral}"] + ([f"PUSD_ADDRESS={pusd}"] if pusd else []) + [f"CTF_ADDRESS={ctf}"]
    if "Executor" in addrs:
        lines.append(f"EXECUTOR_ADDRESS={addrs['Executor']}")
    if "ProxyFactory" in addrs:
        lines.append(f"PROXY_FACTORY_ADDRESS={addrs['ProxyFactory']}")
    if "Treasury" in addrs:
        lines.append(f"TREASURY_ADDRESS={addrs['Treasury']}")
    return lines
