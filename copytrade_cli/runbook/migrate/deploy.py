"""`migrate deploy`: generation S+1 (Executor with each worker's deposit wallet, Treasury, Proxy implementation,
ProxyFactory bound to it), the worker wallets' approvals to it (runbook/fleet.py), then S+1 active and S previous
in one state transaction."""
from __future__ import annotations

from ...chain.accounts import trading_wallets, worker_accounts
from ...chain.deploy import deploy_executor, deploy_factory, has_code
from ...chain.operations import targets_and_spenders, write_addresses_file
from ...chain.roles import plan as role_plan
from ...settings import Settings
from ...state import State
from .migration import (Action, Event, Migration, StepReport, any_migration, is_complete, next_step, open_migration,
                        resuming_note)


def migrate_deploy(settings: Settings, state: State, network: str | None = None, *, dry_run: bool = False,
                   on_event: Event | None = None) -> StepReport:
    """Deploy generation S+1 (Executor, Factory bound to it), approve it from the fleet, then activate it."""
    event = on_event or (lambda _w: None)
    m = open_migration(settings, state, network, begin=not any_migration(state, settings, network))
    rep = m.report("deploy", dry_run)
    if m.done("deploy"):
        rep.actions.append(Action(f"generation {m.to_gen} deployed and active", "already done", m.new_executor))
        rep.summary = (f"generation {m.to_gen} is already deployed and active on {m.network}"
                       + ("" if not is_complete(state.migration_ops(m.network), m.to_gen) else
                          "; the migration is complete (start another with `copytrade migrate plan`)"))
        rep.next = next_step(m)
        return rep
    targets, _ = targets_and_spenders(m.ctx, settings)
    accounts = worker_accounts(settings)
    workers = [a.address for a in accounts]
    wallets = trading_wallets(workers, m.ctx.world, is_local=m.ctx.is_local)
    done_before = []
    w3 = m.w3
    new_ex = m.new_executor if m.new_executor and has_code(w3, m.new_executor) else None
    new_f = m.new_factory if m.new_factory and has_code(w3, m.new_factory) else None
    if dry_run:
        rep.actions.append(Action(f"deploy Executor generation {m.to_gen} (+{len(workers)} workers, allowlists)",
                                  "already done" if new_ex else "would do", new_ex))
        rep.actions.append(Action(f"deploy Treasury + Proxy implementation + ProxyFactory generation {m.to_gen}",
                                  "already done" if new_f else "would do", new_f))
        missing = _missing_approvals(settings, state, m, new_ex) if new_ex else accounts
        rep.actions.append(Action(f"approve the new Executor from {len(missing)} worker wallets",
                                  "would do" if missing else "already done"))
        rep.actions.append(Action(f"activate generation {m.to_gen} (generation {m.from_gen} becomes previous)",
                                  "would do"))
        rep.summary = f"dry run: nothing changed on {m.network}"
        rep.next = "deploy"
        return rep
    resuming = resuming_note(m, "deploy")
    m.record("deploy", "started")
    lane = m.lane()
    if new_ex:
        done_before.append("Executor")
        rep.actions.append(Action(f"Executor generation {m.to_gen}", "already done", new_ex))
    else:
        r = deploy_executor(w3, state, m.network, lane, workers=workers, targets=targets, generation=m.to_gen, status="pending",
                            roles=role_plan(settings, lane.address, m.ctx.is_local), wallets=wallets)
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
    missing = _missing_approvals(settings, state, m, new_ex)
    if missing:
        _approve(settings, state, m, new_ex)
        rep.actions.append(Action(f"approve the new Executor from {len(missing)} worker wallets (pUSD + CTF)", "done",
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
    rep.next = next_step(m)
    return rep


def _missing_approvals(settings: Settings, state: State, m: Migration, executor: str) -> list:
    """The worker wallets that have not yet approved `executor` for pUSD and the CTF."""
    from ..fleet import fleet_status

    st = fleet_status(settings, state, m.network, executor=executor)
    return [w for w in st.workers if "pUSD->Executor" in w.missing_approvals or "CTF->Executor" in w.missing_approvals]


def _approve(settings: Settings, state: State, m: Migration, executor: str) -> None:
    """Each wallet approves the new Executor (deposit wallets: one WALLET batch through the relayer, as at fleet
    setup; EOA workers: their own transactions)."""
    from ..fleet import fleet_setup

    fleet_setup(settings, state, m.network, executor=executor, float_usd=0)
