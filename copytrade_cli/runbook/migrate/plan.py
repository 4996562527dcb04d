"""`migrate plan`: what exists, what will be deployed and which users are affected; recording it begins the migration."""
from __future__ import annotations

from ...chain.accounts import worker_accounts
from ...chain.operations import targets_and_spenders
from ...chain.proxies import usd
from ...settings import Settings
from ...state import State
from .migration import USER_STATUSES, Action, StepReport, next_step, open_migration, step_statuses
from .users import read_users


def migration_plan(settings: Settings, state: State, network: str | None = None, *,
                   dry_run: bool = False) -> StepReport:
    """What exists, what will be deployed, which users are affected; records the plan (the migration begins)."""
    m = open_migration(settings, state, network, begin=True)
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
                "open_buffer_debts": len(debts), "steps": step_statuses(m)}
    notes = []
    if debts:
        notes.append(f"{len(debts)} Smart Buffer debts are open: let the supervisor repay them before `migrate "
                     "deploy` (the new Executor cannot pull from old proxies)")
    rep.summary = (f"migration of {m.network} from generation {m.from_gen} to {m.to_gen}: {len(users)} users, "
                   f"{rep.data['collateral_in_old_proxies_usdc']} USDC in old proxies" + ("; " + "; ".join(notes)
                                                                                          if notes else ""))
    if not dry_run and not m.done("plan"):
        m.record("plan", "done", detail={k: v for k, v in rep.data.items() if k != "steps"})
        rep.data["steps"] = step_statuses(m)
    rep.next = next_step(m)
    return rep
