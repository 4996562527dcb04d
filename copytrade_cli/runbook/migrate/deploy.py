"""`migrate deploy`: generation S+1 (Executor, Treasury, Proxy implementation, ProxyFactory bound to it), the
fleet's approvals to it, then S+1 active and S previous in one state transaction."""
from __future__ import annotations

from ...chain import reads
from ...chain.accounts import worker_accounts
from ...chain.deploy import deploy_executor, deploy_factory, has_code
from ...chain.operations import targets_and_spenders, write_addresses_file
from ...chain.proxies import erc20, erc1155
from ...chain.lanes import TxLane
from ...chain.roles import plan as role_plan
from ...chain.rpc import wait_receipt
from ...settings import Settings
from ...state import State
from ..readiness import MIN_ALLOWANCE_MICRO
from .migration import (MAX_UINT, Action, Event, Migration, StepReport, any_migration, collateral_ctf, is_complete,
                        next_step, open_migration, resuming_note)


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
    resuming = resuming_note(m, "deploy")
    m.record("deploy", "started")
    lane = m.lane()
    if new_ex:
        done_before.append("Executor")
        rep.actions.append(Action(f"Executor generation {m.to_gen}", "already done", new_ex))
    else:
        r = deploy_executor(w3, state, m.network, lane, workers=workers, targets=targets, generation=m.to_gen, status="pending",
                            roles=role_plan(settings, lane.address, m.ctx.is_local))
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
    rep.next = next_step(m)
    return rep


def _missing_approvals(m: Migration, accounts: list, executor: str) -> list:
    collateral, ctf = collateral_ctf(m)
    V = reads.view
    got = reads.read_many(m.w3, [r for a in accounts for r in (
        V(collateral, "allowance(address,address)", a.address, executor, returns="uint256"),
        V(ctf, "isApprovedForAll(address,address)", a.address, executor))])
    return [a for i, a in enumerate(accounts)
            if not (isinstance(got[2 * i], int) and got[2 * i] >= MIN_ALLOWANCE_MICRO and got[2 * i + 1] is True)]


def _approve(m: Migration, accounts: list, executor: str, lane) -> None:
    collateral, ctf = collateral_ctf(m)
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
