"""Moving users to new contract logic (SPEC §6): `copytrade migrate plan|deploy|proxy|users|deprecate|status`.

A migration takes a network from contract generation S (the active one) to S+1:

  plan       what exists, what will be deployed, which users are affected (recorded: the migration begins)
  deploy     new Executor (+ fleet, allowlists), Treasury, Proxy implementation, ProxyFactory bound to the new
             Executor, the fleet's approvals to the new Executor; then generation S+1 becomes active and S
             "previous" in one state transaction (until then the new rows are "pending" and nothing uses them)
  proxy      the execution wallet's (operator's) proxy on the new factory; `move_funds` moves the operator's
             own collateral from its old proxy (the operator owns both; no user funds are touched)
  users      every old proxy with balances, positions and migration status (not started / withdrawn /
             re-deposited); a re-deposited user's follows move to their new proxy. Users withdraw and
             re-deposit themselves: there is no custodial transfer.
  deprecate  pause the old proxies through the old factory in batches (owners can still withdraw) and mark
             them deprecated in state, so the supervisor stops routing to them
  status     the steps done, from the `migration_ops` table

Every step is idempotent and resumable: progress is recorded in state after each durable unit (a deployed
contract, a batch of pauses), and a rerun skips what is done and says so. `dry_run` changes nothing.
Library code only: it never prints; `on_event` is called after each unit of progress (tests interrupt there).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from .chain import reads
from .chain.reads import FAILED
from .errors import DeploymentError, StateError, UsageError
from .settings import Settings
from .state import ProxyRecord, State

STEPS = ("plan", "deploy", "proxy", "users", "deprecate")
USER_STATUSES = ("not started", "withdrawn", "re-deposited")
DEFAULT_BATCH = 100
MAX_BATCH = 256  # ProxyFactory.setProxiesPaused takes up to 256 proxies per call
DUST_MICRO = 10_000  # below 0.01 USDC a proxy counts as empty
MAX_UINT = 2**256 - 1

Event = Callable[[str], None]


@dataclass
class Action:
    """One thing a step did, found done already, or (dry run) would do."""

    what: str
    status: str  # done | already done | would do | nothing to do
    address: str | None = None
    tx: str | None = None


@dataclass
class StepReport:
    """What one `migrate` step did, with where it resumed from and what to run next."""

    step: str
    network: str
    from_generation: int
    to_generation: int
    dry_run: bool = False
    actions: list[Action] = field(default_factory=list)
    resumed: str | None = None
    summary: str = ""
    next: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["actions"] = [asdict(a) for a in self.actions]
        return out


@dataclass
class UserRow:
    """One user's old proxy and where they are in the migration."""

    owner: str
    old_proxy: str
    old_collateral_micro: int
    old_positions: dict[str, int]
    old_paused: bool
    new_proxy: str | None
    new_collateral_micro: int
    status: str
    follows: int = 0
    follows_moved: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, amounts also in USDC."""
        from .chain.proxies import usd

        d = asdict(self)
        d["old_collateral_usdc"] = usd(self.old_collateral_micro)
        d["new_collateral_usdc"] = usd(self.new_collateral_micro)
        return d


# --- the migration in progress ----------------------------------------------------------------------------
@dataclass
class _Migration:
    settings: Settings
    state: State
    ctx: Any
    from_gen: int
    to_gen: int
    ops: dict[str, dict[str, Any]]
    recorded: bool  # False: a migration not begun yet (plan/deploy in dry-run describe the next one)

    @property
    def network(self) -> str:
        return self.ctx.network

    @property
    def w3(self):
        return self.ctx.w3

    def dep(self, name: str, generation: int) -> str | None:
        d = self.state.get_deployment(self.network, name, generation)
        return d.address if d else None

    @property
    def old_factory(self) -> str:
        f = self.dep("ProxyFactory", self.from_gen)
        if not f:
            raise DeploymentError(f"no ProxyFactory of generation {self.from_gen} recorded on {self.network}")
        return f

    @property
    def new_factory(self) -> str | None:
        return self.dep("ProxyFactory", self.to_gen)

    @property
    def new_executor(self) -> str | None:
        return self.dep("Executor", self.to_gen)

    def done(self, step: str) -> bool:
        return (self.ops.get(step) or {}).get("status") == "done"

    def record(self, step: str, status: str, **kw: Any) -> None:
        self.state.record_migration_op(self.network, self.to_gen, self.from_gen, step, status, **kw)
        self.ops = {r["step"]: r for r in self.state.migration_ops(self.network, self.to_gen)}
        self.recorded = True

    def lane(self):
        from .chain.accounts import operator_account
        from .chain.tx import TxLane

        return TxLane(self.w3, operator_account(self.settings))

    def report(self, step: str, dry_run: bool) -> StepReport:
        return StepReport(step, self.network, self.from_gen, self.to_gen, dry_run=dry_run)


def _complete(ops: list[dict[str, Any]], target: int) -> bool:
    return any(r["to_generation"] == target and r["step"] == "deprecate" and r["status"] == "done" for r in ops)


def _open(settings: Settings, state: State, network: str | None, *, begin: bool) -> _Migration:
    """The migration in progress (or the latest one); with `begin`, the next one if none is in progress."""
    from .chain.network import connect_network

    ctx = connect_network(settings, state, network)
    ops = state.migration_ops(ctx.network)
    latest = max((r["to_generation"] for r in ops), default=None)
    if latest is not None and (not _complete(ops, latest) or not begin):
        rows = [r for r in ops if r["to_generation"] == latest]
        return _Migration(settings, state, ctx, rows[0]["from_generation"], latest, {r["step"]: r for r in rows}, True)
    if not begin:
        raise StateError(f"no migration started on {ctx.network}: run `copytrade migrate plan`, then "
                         "`copytrade migrate deploy`")
    active = state.get_deployment(ctx.network, "Executor")
    if active is None or state.get_deployment(ctx.network, "ProxyFactory") is None:
        raise DeploymentError(f"nothing deployed on {ctx.network} to migrate from: deploy first with "
                              "`copytrade deploy executor` and `copytrade deploy factory`")
    return _Migration(settings, state, ctx, active.generation, active.generation + 1, {}, False)


def _resuming(m: _Migration, step: str) -> str | None:
    """Says so when an earlier run of this step stopped halfway (recorded as started, never done)."""
    r = m.ops.get(step)
    if not r or r["status"] != "started":
        return None
    items = f", {r['items_done']}/{r['items_total']} done" if r.get("items_total") else ""
    return f"resuming `migrate {step}` interrupted at {r['updated_at']}{items}"


def _require(m: _Migration, step: str, *needed: str) -> None:
    for n in needed:
        if not m.done(n):
            raise UsageError(f"`migrate {step}` needs `migrate {n}` done first (generation {m.to_gen} on "
                             f"{m.network}): run `copytrade migrate {n}`")


# --- reading users ----------------------------------------------------------------------------------------
def _token_ids(m: _Migration) -> list[int]:
    if m.ctx.world is not None:
        return [int(t) for mk in m.ctx.world.markets for t in mk.token_ids]
    return [int(t) for t in m.state.known_token_ids()]


def _collateral_ctf(m: _Migration) -> tuple[str, str]:
    from .chain.operations import collateral_and_ctf

    return collateral_and_ctf(m.ctx, m.settings)


def old_proxies(m: _Migration) -> list[tuple[str, str]]:
    """Every proxy of the old factory as (proxy, owner): enumerated on chain (proxyCount/proxyAt) plus state."""
    from eth_utils import to_checksum_address

    factory = m.old_factory
    (count,) = reads.read_many(m.w3, [reads.view(factory, "proxyCount()", returns="uint256")])
    if count is FAILED:
        raise DeploymentError(f"the old ProxyFactory {factory} does not answer proxyCount(): is the node the one "
                              "these contracts were deployed on?")
    found = reads.read_many(m.w3, [reads.view(factory, "proxyAt(uint256)", i, returns="address") for i in range(count)])
    proxies = [to_checksum_address(p) for p in found if p is not FAILED]
    known = {p.lower() for p in proxies}
    proxies += [r.address for r in m.state.list_proxies(m.network, factory=factory) if r.address.lower() not in known]
    owners = reads.read_many(m.w3, [reads.view(p, "owner()", returns="address") for p in proxies])
    return [(p, to_checksum_address(o) if o is not FAILED else "") for p, o in zip(proxies, owners)]


def read_users(m: _Migration) -> list[UserRow]:
    """Each old proxy's balances, positions, pause flag, the owner's new proxy and the migration status."""
    from eth_utils import to_checksum_address

    collateral, ctf = _collateral_ctf(m)
    token_ids = _token_ids(m)
    pairs = old_proxies(m)
    new_factory = m.new_factory
    V = reads.view
    plan: list[reads.Read] = []
    for p, owner in pairs:
        plan.append(V(collateral, "balanceOf(address)", p, returns="uint256"))
        plan.append(V(m.old_factory, "isPaused(address)", p))
        plan.append(V(ctf, "balanceOfBatch(address[],uint256[])", [p] * len(token_ids), token_ids, returns="uint256[]")
                    if token_ids else reads.balance(p))
        plan.append(V(new_factory, "proxyOf(address)", owner, returns="address") if new_factory and owner
                    else reads.balance(p))
    got = reads.read_many(m.w3, plan)
    news = {}
    for i, (p, owner) in enumerate(pairs):
        n = got[4 * i + 3]
        if new_factory and owner and n is not FAILED and int(n, 16) != 0:
            news[p] = to_checksum_address(n)
    nb = reads.read_many(m.w3, [V(collateral, "balanceOf(address)", n, returns="uint256") for n in news.values()])
    new_bal = dict(zip(news, nb))
    follows = m.state.list_follows(status="active")
    rows = []
    for i, (p, owner) in enumerate(pairs):
        bal, paused, pos = got[4 * i], got[4 * i + 1], got[4 * i + 2]
        positions = {str(t): a for t, a in zip(token_ids, pos) if a} if token_ids and pos is not FAILED else {}
        new = news.get(p)
        nbal = new_bal.get(p) if new else 0
        nbal = nbal if isinstance(nbal, int) else 0
        old_empty = isinstance(bal, int) and bal < DUST_MICRO and not positions
        if not old_empty:
            status = "not started"
        elif new and nbal > 0:
            status = "re-deposited"
        else:
            status = "withdrawn"
        rows.append(UserRow(owner=owner, old_proxy=p, old_collateral_micro=bal if isinstance(bal, int) else 0,
                            old_positions=positions, old_paused=paused is True, new_proxy=new,
                            new_collateral_micro=nbal, status=status,
                            follows=sum(f.follower.lower() == p.lower() for f in follows)))
    return rows


# --- plan ---------------------------------------------------------------------------------------------------
def migration_plan(settings: Settings, state: State, network: str | None = None, *,
                   dry_run: bool = False) -> StepReport:
    """What exists, what will be deployed, which users are affected; records the plan (the migration begins)."""
    from .chain.accounts import worker_accounts
    from .chain.operations import targets_and_spenders
    from .chain.proxies import usd

    m = _open(settings, state, network, begin=True)
    rep = m.report("plan", dry_run)
    targets, spenders = targets_and_spenders(m.ctx, settings)
    workers = worker_accounts(settings)
    users = read_users(m)
    for name in ("Executor", "ProxyFactory"):
        rep.actions.append(Action(f"keep {name} generation {m.from_gen}, recorded as previous",
                                  "already done" if m.done("deploy") else "will do", m.dep(name, m.from_gen)))
    steps = [(f"deploy Executor generation {m.to_gen}, register workers, allow collateral + CTF and the exchange",
              m.new_executor),
             (f"deploy Treasury, Proxy implementation, ProxyFactory generation {m.to_gen} bound to the new Executor",
              m.new_factory),
             (f"approve the new Executor from {len(workers)} workers (collateral + CTF)", None),
             (f"make generation {m.to_gen} active", None)]
    for what, addr in steps:
        rep.actions.append(Action(what, "already done" if addr or m.done("deploy") else "will do", addr))
    rep.actions.append(Action("create the execution wallet's proxy on the new factory",
                              "already done" if m.done("proxy") else "will do"))
    rep.actions.append(Action(f"list {len(users)} users' old proxies; they withdraw and re-deposit themselves",
                              "will do"))
    rep.actions.append(Action(f"pause {len(users)} old proxies (owners can still withdraw)",
                              "already done" if m.done("deprecate") else "will do"))
    by_status = {s: sum(u.status == s for u in users) for s in USER_STATUSES}
    debts = state.open_debts()
    rep.data = {"old": {"Executor": m.dep("Executor", m.from_gen), "ProxyFactory": m.old_factory},
                "new": {"Executor": m.new_executor, "ProxyFactory": m.new_factory},
                "targets": targets, "spenders": spenders, "workers": len(workers),
                "users": len(users), "users_by_status": by_status,
                "collateral_in_old_proxies_usdc": usd(sum(u.old_collateral_micro for u in users)),
                "users_with_positions": sum(bool(u.old_positions) for u in users),
                "active_follows_on_old_proxies": sum(u.follows for u in users),
                "open_buffer_debts": len(debts), "steps": _steps(m)}
    notes = []
    if debts:
        notes.append(f"{len(debts)} Smart Buffer debts are open: let the supervisor repay them before `migrate "
                     "deploy` (the new Executor cannot pull from old proxies)")
    rep.summary = (f"migration of {m.network} from generation {m.from_gen} to {m.to_gen}: {len(users)} users, "
                   f"{rep.data['collateral_in_old_proxies_usdc']} USDC in old proxies" + ("; " + "; ".join(notes)
                                                                                          if notes else ""))
    if not dry_run and not m.done("plan"):
        m.record("plan", "done", detail={k: v for k, v in rep.data.items() if k != "steps"})
        rep.data["steps"] = _steps(m)
    rep.next = _next(m)
    return rep


# --- deploy -------------------------------------------------------------------------------------------------
def migrate_deploy(settings: Settings, state: State, network: str | None = None, *, dry_run: bool = False,
                   on_event: Event | None = None) -> StepReport:
    """Deploy generation S+1 (Executor, Factory bound to it), approve it from the fleet, then activate it."""
    from .chain.accounts import worker_accounts
    from .chain.deploy import deploy_executor, deploy_factory, has_code
    from .chain.operations import targets_and_spenders, write_addresses_file
    from .chain.roles import plan as role_plan

    event = on_event or (lambda _w: None)
    m = _open(settings, state, network, begin=not _any_migration(state, settings, network))
    rep = m.report("deploy", dry_run)
    if m.done("deploy"):
        rep.actions.append(Action(f"generation {m.to_gen} deployed and active", "already done", m.new_executor))
        rep.summary = (f"generation {m.to_gen} is already deployed and active on {m.network}"
                       + ("" if not _complete(state.migration_ops(m.network), m.to_gen) else
                          "; the migration is complete (start another with `copytrade migrate plan`)"))
        rep.next = _next(m)
        return rep
    targets, spenders = targets_and_spenders(m.ctx, settings)
    accounts = worker_accounts(settings)
    workers = [a.address for a in accounts]
    done_before = []
    w3 = m.w3
    new_ex = m.new_executor if m.new_executor and has_code(w3, m.new_executor) else None
    new_f = m.new_factory if m.new_factory and has_code(w3, m.new_factory) else None
    if dry_run:
        rep.actions.append(Action(f"deploy Executor generation {m.to_gen} (+{len(workers)} workers, allowlists)",
                                  "already done" if new_ex else "would do", new_ex))
        rep.actions.append(Action(f"deploy Treasury + Proxy implementation + ProxyFactory generation {m.to_gen}",
                                  "already done" if new_f else "would do", new_f))
        missing = _missing_approvals(m, accounts, new_ex) if new_ex else accounts
        rep.actions.append(Action(f"approve the new Executor from {len(missing)} workers",
                                  "would do" if missing else "already done"))
        rep.actions.append(Action(f"activate generation {m.to_gen} (generation {m.from_gen} becomes previous)",
                                  "would do"))
        rep.summary = f"dry run: nothing changed on {m.network}"
        rep.next = "deploy"
        return rep
    resuming = _resuming(m, "deploy")
    m.record("deploy", "started")
    lane = m.lane()
    if new_ex:
        done_before.append("Executor")
        rep.actions.append(Action(f"Executor generation {m.to_gen}", "already done", new_ex))
    else:
        r = deploy_executor(w3, state, m.network, lane, workers=workers, targets=targets, spenders=spenders,
                            generation=m.to_gen, status="pending", roles=role_plan(settings, lane.address, m.ctx.is_local))
        new_ex = m.new_executor
        rep.actions.append(Action(f"deploy Executor generation {m.to_gen}, register {len(workers)} workers, "
                                  "allowlists", "done", new_ex, r.steps[0].tx if r.steps else None))
        event("executor")
    if new_f:
        done_before.append("ProxyFactory")
        rep.actions.append(Action(f"ProxyFactory generation {m.to_gen}", "already done", new_f))
    else:
        r = deploy_factory(w3, state, m.network, lane, targets=targets, executor=new_ex, generation=m.to_gen,
                           status="pending", roles=role_plan(settings, lane.address, m.ctx.is_local))
        new_f = m.new_factory
        rep.actions.append(Action(f"deploy Treasury, Proxy implementation, ProxyFactory generation {m.to_gen} "
                                  "(trusted by the new Executor)", "done", new_f))
        event("factory")
    missing = _missing_approvals(m, accounts, new_ex)
    if missing:
        _approve(m, missing, new_ex, lane)
        rep.actions.append(Action(f"approve the new Executor from {len(missing)} workers (collateral + CTF)", "done",
                                  new_ex))
        event("approvals")
    else:
        done_before.append("approvals")
        rep.actions.append(Action("workers' approvals to the new Executor", "already done", new_ex))
    state.activate_generation(m.network, m.to_gen)
    write_addresses_file(settings, state, m.network)
    m.record("deploy", "done", detail={"Executor": new_ex, "ProxyFactory": new_f})
    rep.actions.append(Action(f"activate generation {m.to_gen}; generation {m.from_gen} is now previous", "done"))
    event("activate")
    if resuming or done_before:
        rep.resumed = "; ".join(filter(None, [resuming, done_before and
                                              f"{', '.join(done_before)} already done by an earlier run"]))
    rep.summary = (f"generation {m.to_gen} active on {m.network}: Executor {new_ex}, ProxyFactory {new_f}; "
                   "restart running supervisors so they use it")
    rep.next = _next(m)
    return rep


def _any_migration(state: State, settings: Settings, network: str | None) -> bool:
    from .chain.network import normalize

    return bool(state.migration_ops(normalize(network, settings)[0]))


def _missing_approvals(m: _Migration, accounts: list, executor: str) -> list:
    from .readiness import MIN_ALLOWANCE_MICRO

    collateral, ctf = _collateral_ctf(m)
    V = reads.view
    got = reads.read_many(m.w3, [r for a in accounts for r in (
        V(collateral, "allowance(address,address)", a.address, executor, returns="uint256"),
        V(ctf, "isApprovedForAll(address,address)", a.address, executor))])
    return [a for i, a in enumerate(accounts)
            if not (isinstance(got[2 * i], int) and got[2 * i] >= MIN_ALLOWANCE_MICRO and got[2 * i + 1] is True)]


def _approve(m: _Migration, accounts: list, executor: str, lane) -> None:
    from .chain.proxies import erc20, erc1155
    from .chain.tx import TxLane, wait_receipt

    collateral, ctf = _collateral_ctf(m)
    token, ctf_c = erc20(m.w3, collateral), erc1155(m.w3, ctf)
    hashes = []
    for a in accounts:
        wl = TxLane(m.w3, a, fees=lane.fees)
        hashes.append(wl.send({"to": collateral, "data": token.encode_abi("approve", args=[executor, MAX_UINT])},
                              gas=80_000))
        hashes.append(wl.send({"to": ctf, "data": ctf_c.encode_abi("setApprovalForAll", args=[executor, True])},
                              gas=80_000))
    for h in hashes:
        wait_receipt(m.w3, h)


# --- proxy --------------------------------------------------------------------------------------------------
def migrate_proxy(settings: Settings, state: State, network: str | None = None, *, dry_run: bool = False,
                  move_funds: bool = False, on_event: Event | None = None) -> StepReport:
    """Create the execution wallet's proxy on the new factory; optionally move the operator's own collateral."""
    from .chain.accounts import operator_account
    from .chain.proxies import create_proxy, erc20, usd

    event = on_event or (lambda _w: None)
    m = _open(settings, state, network, begin=False)
    _require(m, "proxy", "deploy")
    rep = m.report("proxy", dry_run)
    op = operator_account(settings).address
    collateral, _ = _collateral_ctf(m)
    V = reads.view
    old_p, new_p = reads.read_many(m.w3, [V(m.old_factory, "proxyOf(address)", op, returns="address"),
                                          V(m.new_factory, "proxyOf(address)", op, returns="address")])
    old_p = None if old_p is FAILED or int(old_p, 16) == 0 else _cs(old_p)
    new_p = None if new_p is FAILED or int(new_p, 16) == 0 else _cs(new_p)
    detail = json.loads((m.ops.get("proxy") or {}).get("detail") or "{}")
    if dry_run:
        rep.actions.append(Action(f"create the operator's proxy on ProxyFactory {m.new_factory}",
                                  "already done" if new_p else "would do", new_p))
        if move_funds and old_p:
            bal = erc20(m.w3, collateral).functions.balanceOf(old_p).call()
            rep.actions.append(Action(f"move the operator's {usd(bal)} USDC from {old_p} to the new proxy",
                                      "would do" if bal else "nothing to do"))
        rep.summary = f"dry run: nothing changed on {m.network}"
        rep.next = "proxy"
        return rep
    rep.resumed = _resuming(m, "proxy")
    m.record("proxy", "started")
    lane = m.lane()
    if new_p:
        rep.actions.append(Action("operator's proxy on the new factory", "already done", new_p))
        if state.get_proxy(m.network, new_p) is None:
            create_proxy(m.w3, state, m.network, lane, m.new_factory, op)  # records it
    else:
        new_p, tx = create_proxy(m.w3, state, m.network, lane, m.new_factory, op)
        rep.actions.append(Action("create the operator's proxy on the new factory", "done", new_p, tx))
        event("create")
    if move_funds and old_p:
        _move_operator_funds(m, rep, lane, old_p, new_p, detail, event)
    m.record("proxy", "done", detail={**json.loads((m.ops.get("proxy") or {}).get("detail") or "{}"), "proxy": new_p})
    rep.data = {"proxy": new_p, "old_proxy": old_p}
    rep.summary = f"execution wallet's proxy on the new factory: {new_p}"
    rep.next = _next(m)
    return rep


def _move_operator_funds(m: _Migration, rep: StepReport, lane, old_p: str, new_p: str, detail: dict,
                         event: Event) -> None:
    """Withdraw the operator's collateral from its old proxy and deposit it into the new one (its own funds)."""
    from .chain.deploy import contract
    from .chain.proxies import erc20, usd
    from .chain.tx import wait_receipt

    collateral, _ = _collateral_ctf(m)
    token = erc20(m.w3, collateral)
    moving = detail.get("withdraw")
    if moving and not moving.get("deposited"):
        # NOTE: an earlier run sent the withdrawal and journalled it; deposit only what it really withdrew.
        try:
            ok = wait_receipt(m.w3, moving["tx"], timeout=60, check=False)["status"] == 1
        except Exception:  # noqa: BLE001 — never mined (a new node): start over from the balance
            ok = False
        moving = moving if ok else None
    if not moving or moving.get("deposited"):
        bal = token.functions.balanceOf(old_p).call()
        if not bal:
            rep.actions.append(Action("operator's old proxy holds no collateral", "nothing to do", old_p))
            return
        data = contract(m.w3, "Proxy", old_p).encode_abi("withdraw", args=[collateral, bal])
        h = lane.send({"to": old_p, "data": data})
        moving = {"tx": h, "amount": bal, "deposited": False}
        m.record("proxy", "started", detail={"proxy": new_p, "withdraw": moving})
        wait_receipt(m.w3, h)
        rep.actions.append(Action(f"withdraw the operator's {usd(bal)} USDC from the old proxy", "done", old_p, h))
        event("withdraw")
    r = lane.transact({"to": collateral, "data": token.encode_abi("transfer", args=[new_p, moving["amount"]])})
    moving = {**moving, "deposited": True}
    m.record("proxy", "started", detail={"proxy": new_p, "withdraw": moving})
    rep.actions.append(Action(f"deposit {usd(moving['amount'])} USDC into the new proxy", "done", new_p,
                              "0x" + bytes(r["transactionHash"]).hex()))
    event("deposit")


def _cs(a: str) -> str:
    from eth_utils import to_checksum_address

    return to_checksum_address(a)


# --- users --------------------------------------------------------------------------------------------------
def migrate_users(settings: Settings, state: State, network: str | None = None, *,
                  dry_run: bool = False) -> StepReport:
    """Every user's old proxy with balances, positions and migration status; records each status and moves a
    re-deposited user's follows to their new proxy (state only: funds move only by the owner's own hand)."""
    m = _open(settings, state, network, begin=False)
    rep = m.report("users", dry_run)
    users = read_users(m)
    moved = 0
    follows = state.list_follows(status="active")
    for u in users:
        mine = [f for f in follows if f.follower.lower() == u.old_proxy.lower()]
        if u.status == "re-deposited" and mine:
            u.follows_moved = len(mine)
            moved += len(mine)
    if not dry_run:
        _record_users(m, users, follows)
        counts = {s: sum(u.status == s for u in users) for s in USER_STATUSES}
        m.record("users", "done", items_done=counts["re-deposited"], items_total=len(users),
                 detail={"by_status": counts, "follows_moved": moved})
    for u in users:
        if u.follows_moved:
            rep.actions.append(Action(f"move {u.follows_moved} follow(s) of {u.owner} to the new proxy",
                                      "would do" if dry_run else "done", u.new_proxy))
    counts = {s: sum(u.status == s for u in users) for s in USER_STATUSES}
    rep.data = {"users": [u.as_dict() for u in users], "by_status": counts, "follows_moved": moved}
    rep.summary = (f"{len(users)} users on generation {m.from_gen}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                   + (f"; {moved} follow(s) {'would move' if dry_run else 'moved'} to new proxies" if moved else ""))
    rep.next = _next(m)
    return rep


def _record_users(m: _Migration, users: list[UserRow], follows: list) -> None:
    from .state import Follow

    st = m.state
    for u in users:
        if st.get_proxy(m.network, u.old_proxy) is None:
            st.record_proxy(ProxyRecord(network=m.network, address=u.old_proxy, owner=u.owner, factory=m.old_factory,
                                        status="deprecated" if u.old_paused else "active"))
        st.set_proxy_fields(m.network, st.get_proxy(m.network, u.old_proxy).address, migration_status=u.status)
        if u.new_proxy and st.get_proxy(m.network, u.new_proxy) is None:
            st.record_proxy(ProxyRecord(network=m.network, address=u.new_proxy, owner=u.owner,
                                        factory=m.new_factory or ""))
        if u.status != "re-deposited":
            continue
        for f in follows:
            if f.follower.lower() != u.old_proxy.lower():
                continue
            # NOTE: the new follow is written before the old one is paused: a crash in between leaves
            # both, and the old one is skipped anyway (its proxy is deprecated); never neither.
            fields = {k: v for k, v in asdict(f).items() if k not in ("id", "created_at", "updated_at", "follower")}
            st.upsert_follow(Follow(follower=u.new_proxy, **{**fields, "owner": f.owner or u.owner}))
            st.set_follow_status(f.id, "paused")


def users_export(rows: list[dict[str, Any]], fmt: str) -> str:
    """The user list as CSV or JSON text for the operations team."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt != "csv":
        raise UsageError(f"--format {fmt!r}: use table, csv or json")
    cols = ["owner", "old_proxy", "old_collateral_usdc", "old_positions", "old_paused", "new_proxy",
            "new_collateral_usdc", "status", "follows", "follows_moved"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "old_positions": ";".join(f"{t}:{a}" for t, a in r["old_positions"].items()),
                    "new_proxy": r["new_proxy"] or ""})
    return buf.getvalue()


# --- deprecate ----------------------------------------------------------------------------------------------
def migrate_deprecate(settings: Settings, state: State, network: str | None = None, *, dry_run: bool = False,
                      batch_size: int = DEFAULT_BATCH, on_event: Event | None = None) -> StepReport:
    """Pause every old proxy via the old factory in batches and mark it deprecated (owners can still withdraw)."""
    from .chain.accounts import operator_account
    from .chain.deploy import call_tx

    event = on_event or (lambda _w: None)
    if not 1 <= batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size {batch_size}: use 1 to {MAX_BATCH}")
    m = _open(settings, state, network, begin=False)
    _require(m, "deprecate", "deploy", "proxy")
    rep = m.report("deprecate", dry_run)
    pairs = old_proxies(m)
    V = reads.view
    paused = reads.read_many(m.w3, [V(m.old_factory, "isPaused(address)", p) for p, _ in pairs])
    todo = [(p, o) for (p, o), z in zip(pairs, paused) if z is not True]
    already = len(pairs) - len(todo)
    resuming = _resuming(m, "deprecate")
    if resuming or (already and todo):
        rep.resumed = f"{resuming or 'resuming'}: {already} of {len(pairs)} old proxies already paused"
    if dry_run:
        for i in range(0, len(todo), batch_size):
            rep.actions.append(Action(f"pause {len(todo[i:i + batch_size])} old proxies and mark them deprecated",
                                      "would do", m.old_factory))
        if not todo:
            rep.actions.append(Action(f"all {len(pairs)} old proxies paused", "already done"))
        rep.summary = f"dry run: nothing changed on {m.network}"
        rep.next = "deprecate"
        return rep
    (admin,) = reads.read_many(m.w3, [V(m.old_factory, "admin()", returns="address")])
    op = operator_account(settings).address
    if todo and (admin is FAILED or str(admin).lower() != op.lower()):
        raise UsageError(f"the operator {op} is not the admin of the old ProxyFactory {m.old_factory} (admin "
                         f"{admin}): set TRADING_PRIVATE_KEY to the factory admin's key")
    m.record("deprecate", "started", items_done=already, items_total=len(pairs))
    # Proxies paused on chain by an earlier (interrupted) run but not yet marked: mark them now.
    for (p, o), z in zip(pairs, paused):
        if z is True:
            _mark_deprecated(m, p, o)
    lane = m.lane()
    done = already
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        # NOTE: marked in state first (the supervisor stops routing at once), then paused on chain; a crash
        # in between is repaired by the rerun, which pauses whatever is not paused yet.
        for p, o in batch:
            _mark_deprecated(m, p, o)
        r = call_tx(lane, m.w3, "ProxyFactory", m.old_factory, "setProxiesPaused", [p for p, _ in batch], True)
        done += len(batch)
        m.record("deprecate", "started", items_done=done, items_total=len(pairs))
        rep.actions.append(Action(f"paused {len(batch)} old proxies (deprecated)", "done", m.old_factory,
                                  "0x" + bytes(r["transactionHash"]).hex()))
        event(f"paused {done}/{len(pairs)}")
    if not todo:
        rep.actions.append(Action(f"all {len(pairs)} old proxies paused", "already done", m.old_factory))
    m.record("deprecate", "done", items_done=len(pairs), items_total=len(pairs))
    rep.data = {"paused": len(pairs), "newly_paused": len(todo)}
    rep.summary = (f"{len(pairs)} old proxies of generation {m.from_gen} paused and deprecated ({len(todo)} now); "
                   "owners can still withdraw; the migration is complete")
    rep.next = None
    return rep


def _mark_deprecated(m: _Migration, proxy: str, owner: str) -> None:
    rec = m.state.get_proxy(m.network, proxy)
    if rec is None:
        m.state.record_proxy(ProxyRecord(network=m.network, address=proxy, owner=owner, factory=m.old_factory,
                                         status="deprecated"))
    elif rec.status != "deprecated":
        m.state.set_proxy_fields(m.network, rec.address, status="deprecated")


# --- status -------------------------------------------------------------------------------------------------
def migration_status(settings: Settings, state: State, network: str | None = None) -> StepReport:
    """The steps of the latest migration on a network: done, started (interrupted) or not yet."""
    from .chain.network import normalize

    name = normalize(network, settings)[0]
    ops = state.migration_ops(name)
    if not ops:
        rep = StepReport("status", name, 0, 0, summary=f"no migration started on {name}: begin with "
                                                       "`copytrade migrate plan`", next="plan")
        return rep
    latest = max(r["to_generation"] for r in ops)
    rows = {r["step"]: r for r in ops if r["to_generation"] == latest}
    from_gen = next(iter(rows.values()))["from_generation"]
    rep = StepReport("status", name, from_gen, latest)
    for step in STEPS:
        r = rows.get(step)
        if r is None:
            rep.actions.append(Action(step, "not yet"))
            continue
        items = f" ({r['items_done']}/{r['items_total']})" if r.get("items_total") is not None else ""
        rep.actions.append(Action(f"{step}{items}", "done" if r["status"] == "done" else "interrupted: rerun it"
                                  if r["status"] == "started" else r["status"]))
    complete = _complete(ops, latest)
    nxt = next((s for s in STEPS if (rows.get(s) or {}).get("status") != "done"), None)
    rep.data = {"steps": {s: {k: rows[s][k] for k in ("status", "items_done", "items_total", "updated_at")}
                          | {"detail": json.loads(rows[s]["detail"]) if rows[s].get("detail") else None}
                          for s in rows}, "complete": complete,
                "generations": {d.name: {"address": d.address, "generation": d.generation, "status": d.status}
                                for d in state.list_deployments(name) if d.name in ("Executor", "ProxyFactory")
                                and d.generation in (from_gen, latest) and d.status == "active"}}
    rep.summary = (f"migration {from_gen} -> {latest} on {name}: " +
                   ("complete" if complete else f"next: `copytrade migrate {nxt}`"))
    rep.next = None if complete else nxt
    return rep


def _steps(m: _Migration) -> dict[str, str]:
    return {s: (m.ops.get(s) or {}).get("status", "not yet") for s in STEPS}


def _next(m: _Migration) -> str | None:
    return next((s for s in STEPS if not m.done(s)), None)
