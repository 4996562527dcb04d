"""`copytrade migrate` on a real fork: a full migration, interrupted at every unit of progress and resumed,
ends with the new contracts recorded, old proxies paused (owners can still withdraw), the supervisor copying
only into new proxies, and the user list showing each user's state. Every `--dry-run` changes nothing."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from eth_account import Account
from typer.testing import CliRunner

from copytrade_cli.chain.accounts import derive_keys, operator_account, worker_accounts
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.deploy import addresses, contract
from copytrade_cli.runbook.fork import LOCAL_NETWORK
from copytrade_cli.chain.proxies import create_proxy, erc20, erc1155, fund_pusd_from_whale, withdraw
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.cli.main import app
from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.runbook.migrate import (migrate_deploy, migrate_deprecate, migrate_proxy, migrate_users, migration_plan,
                                   migration_status)
from copytrade_cli.runbook.readiness import run_checks
from copytrade_cli.settings import DEV_MNEMONIC, SEED_LEADER
from copytrade_cli.state.store import TABLES
from copytrade_cli.supervisor.configs import add_follow

from .conftest import RunningSupervisor

pytestmark = pytest.mark.timeout(300)
USDC = 10**6


class Interrupted(Exception):
    """Raised from a step's progress hook: the step stops there, as a crash or Ctrl-C would stop it."""


@dataclass
class User:
    owner: Any
    old: str
    new: str | None = None


def _user(fork, index: int, usdc: int) -> User:
    owner = Account.from_key(derive_keys(DEV_MNEMONIC, [index])[0])
    Cheats(fork.w3).set_balance(owner.address, 10**19)  # gas for the owner's own withdraw/deposit
    factory = addresses(fork.state, LOCAL_NETWORK)["ProxyFactory"]
    proxy, _ = create_proxy(fork.w3, fork.state, LOCAL_NETWORK, TxLane(fork.w3, operator_account(fork.settings)),
                            factory, owner.address)
    fund_pusd_from_whale(fork.w3, fork.world, proxy, usdc * USDC)
    add_follow(fork.state, follower=proxy, owner=owner.address, leader=SEED_LEADER, amount="5")
    return User(owner, proxy)


def _usdc(fork, who: str) -> int:
    return erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(who).call()


def _deposit(fork, user: User, proxy: str, amount: int) -> None:
    token = erc20(fork.w3, fork.world.exchange_collateral)
    TxLane(fork.w3, user.owner).transact({"to": fork.world.exchange_collateral,
                                          "data": token.encode_abi("transfer", args=[proxy, amount])})


def _fingerprint(fork) -> dict[str, Any]:
    """Every state row, and the chain facts a migration step could change."""
    w3 = fork.w3
    rows = {t: list(fork.state.rows(t, 10**6)) for t in TABLES}
    proxies = {}
    for p in fork.state.list_proxies(LOCAL_NETWORK):
        f = contract(w3, "ProxyFactory", p.factory)
        proxies[p.address] = (_usdc(fork, p.address), f.functions.isPaused(p.address).call())
    chain = {"block": w3.eth.block_number, "pending": Cheats(w3).pending_count(),
             "operator_nonce": w3.eth.get_transaction_count(operator_account(fork.settings).address),
             "worker_nonces": [w3.eth.get_transaction_count(a.address) for a in worker_accounts(fork.settings)],
             "proxies": proxies}
    return {"state": rows, "chain": chain}


def _dry_run_changes_nothing(fork, call: Callable[[], Any]):
    before = _fingerprint(fork)
    report = call()
    assert report.dry_run
    assert _fingerprint(fork) == before
    return report


def _interrupted_until_done(fork, step: str, run: Callable[[Callable[[str], None]], Any]) -> tuple[Any, list[str]]:
    """Run a step, interrupting it at its first progress event each time, until a run completes. Each rerun
    must resume past what the earlier ones did (no event twice) and `migrate status` must say it stopped."""
    stops: list[str] = []

    def stop(what: str) -> None:
        raise Interrupted(what)

    for _ in range(20):
        try:
            report = run(stop)
        except Interrupted as exc:
            assert str(exc) not in stops, f"{step}: no progress after resuming at {exc}"
            stops.append(str(exc))
            status = {a.what.split(" ")[0]: a.status for a in migration_status(fork.settings, fork.state).actions}
            assert status[step] in ("interrupted: rerun it", "done"), status
            continue
        return report, stops
    raise AssertionError(f"{step} never completed: {stops}")


def _cli(fork, *args):
    return CliRunner().invoke(app, list(args), env={"COPYTRADE_HOME": str(fork.settings.home)})


def test_cli_before_any_migration(fork):
    st = _cli(fork, "migrate", "status", "--json")
    assert st.exit_code == 0, st.output
    assert json.loads(st.stdout)["next"] == "plan"
    users = _cli(fork, "migrate", "users")
    assert users.exit_code == 3 and "no migration started" in users.output  # StateError, says what to run
    dry = _cli(fork, "migrate", "deploy", "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] is True
    assert fork.state.migration_ops(LOCAL_NETWORK) == []


def test_full_migration_interrupted_and_resumed(fork):
    s, state, w3 = fork.settings, fork.state, fork.w3
    old = addresses(state, LOCAL_NETWORK)
    op = operator_account(s).address
    op_old = contract(w3, "ProxyFactory", old["ProxyFactory"]).functions.proxyOf(op).call()
    a, b, c = _user(fork, 501, 100), _user(fork, 502, 100), _user(fork, 503, 100)

    # --- plan ---------------------------------------------------------------------------------------
    _dry_run_changes_nothing(fork, lambda: migration_plan(s, state, dry_run=True))
    plan = migration_plan(s, state)
    assert (plan.from_generation, plan.to_generation) == (1, 2)
    assert plan.data["users"] == 4 and plan.data["users_by_status"]["not started"] == 4
    assert plan.data["active_follows_on_old_proxies"] == 3 and plan.next == "deploy"
    with pytest.raises(Exception, match="migrate deploy"):
        migrate_proxy(s, state)  # steps run in order, and say which comes first

    # --- deploy: interrupted after the Executor, the Factory, the approvals and the activation ------------
    dry = _dry_run_changes_nothing(fork, lambda: migrate_deploy(s, state, dry_run=True))
    assert [x.status for x in dry.actions] == ["would do"] * 4
    rep, stops = _interrupted_until_done(fork, "deploy", lambda ev: migrate_deploy(s, state, on_event=ev))
    assert stops == ["executor", "factory", "approvals", "activate"]
    assert rep.actions[0].status == "already done"
    new = addresses(state, LOCAL_NETWORK)
    assert new["Executor"] != old["Executor"] and new["ProxyFactory"] != old["ProxyFactory"]
    gens = {(d.name, d.generation): d.status for d in state.list_deployments(LOCAL_NETWORK)}
    assert gens[("Executor", 1)] == gens[("ProxyFactory", 1)] == "previous"
    assert gens[("Executor", 2)] == gens[("ProxyFactory", 2)] == gens[("Treasury", 2)] == "active"
    assert contract(w3, "ProxyFactory", new["ProxyFactory"]).functions.executor().call() == new["Executor"]
    assert migrate_deploy(s, state).actions[0].status == "already done"  # idempotent
    ready = run_checks(s, state, LOCAL_NETWORK)
    assert ready.ready, ready.failing()  # the fleet is registered on, and approved to, the new Executor

    # --- proxy (and the operator's own funds): interrupted after create, withdraw, deposit -----------------
    _dry_run_changes_nothing(fork, lambda: migrate_proxy(s, state, move_funds=True, dry_run=True))
    rep, stops = _interrupted_until_done(fork, "proxy", lambda ev: migrate_proxy(s, state, move_funds=True,
                                                                                  on_event=ev))
    assert stops == ["create", "withdraw", "deposit"]
    op_new = rep.data["proxy"]
    assert contract(w3, "ProxyFactory", new["ProxyFactory"]).functions.proxyOf(op).call() == op_new
    assert _usdc(fork, op_new) == 1000 * USDC and _usdc(fork, op_old) == 0

    # --- the users act for themselves: A withdraws and re-deposits, B withdraws, C waits ----------------
    withdraw(w3, TxLane(w3, a.owner), a.old, fork.world.exchange_collateral, None)
    a.new, _ = create_proxy(w3, state, LOCAL_NETWORK, TxLane(w3, operator_account(s)), new["ProxyFactory"],
                            a.owner.address)
    _deposit(fork, a, a.new, 100 * USDC)
    withdraw(w3, TxLane(w3, b.owner), b.old, fork.world.exchange_collateral, None)

    # --- users --------------------------------------------------------------------------------------
    dry = _dry_run_changes_nothing(fork, lambda: migrate_users(s, state, dry_run=True))
    assert dry.data["follows_moved"] == 1
    rep = migrate_users(s, state)
    status = {u["owner"]: u["status"] for u in rep.data["users"]}
    assert status == {op: "re-deposited", a.owner.address: "re-deposited", b.owner.address: "withdrawn",
                      c.owner.address: "not started"}
    follows = {f.follower: f.status for f in state.list_follows()}
    assert follows[a.new] == "active" and follows[a.old] == "paused"
    assert state.get_proxy(LOCAL_NETWORK, c.old).migration_status == "not started"

    # --- deprecate in batches of one: interrupted after every batch --------------------------------------
    _dry_run_changes_nothing(fork, lambda: migrate_deprecate(s, state, batch_size=1, dry_run=True))
    rep, stops = _interrupted_until_done(
        fork, "deprecate", lambda ev: migrate_deprecate(s, state, batch_size=1, on_event=ev))
    assert stops == ["paused 1/4", "paused 2/4", "paused 3/4", "paused 4/4"]
    assert rep.resumed and "4 of 4 old proxies already paused" in rep.resumed
    old_f = contract(w3, "ProxyFactory", old["ProxyFactory"])
    for p in (op_old, a.old, b.old, c.old):
        assert old_f.functions.isPaused(p).call()
        assert state.get_proxy(LOCAL_NETWORK, p).status == "deprecated"
    assert not contract(w3, "ProxyFactory", new["ProxyFactory"]).functions.isPaused(a.new).call()
    assert migration_status(s, state).data["complete"] is True

    # owners can still withdraw from a paused (deprecated) proxy
    withdraw(w3, TxLane(w3, c.owner), c.old, fork.world.exchange_collateral, 10 * USDC)
    assert _usdc(fork, c.old) == 90 * USDC and _usdc(fork, c.owner.address) == 10 * USDC
    final = {u["owner"]: u["status"] for u in migrate_users(s, state).data["users"]}
    assert final[c.owner.address] == "not started" and final[a.owner.address] == "re-deposited"

    # --- the supervisor copies only into new proxies --------------------------------------------------
    token = int(fork.world.market(0).token_id("Yes"))
    ctf = erc1155(w3, fork.world.ctf)
    sup = RunningSupervisor(fork)
    try:
        leader_trade(w3, fork.world, side="BUY", usd=20.0, price="0.5")

        def jobs():
            return {j["follower"]: j for j in state.list_jobs(limit=1000)}

        assert sup.wait(lambda: jobs().get(a.new, {}).get("status") == "complete"
                        and {b.old, c.old} <= set(jobs())), (jobs(), sup.lines[-10:])
    finally:
        sup.stop()
    j = jobs()
    assert a.old not in j  # its follow moved to the new proxy
    for p in (b.old, c.old):
        assert j[p]["status"] == "skipped" and "deprecated" in j[p]["reason"]
    assert _usdc(fork, a.new) == 95 * USDC and ctf.functions.balanceOf(a.new, token).call() > 0
    assert _usdc(fork, c.old) == 90 * USDC and ctf.functions.balanceOf(c.old, token).call() == 0
    assert any("Skipped copy for" in line and c.old in line for line in sup.lines)


def test_cli_after_migration(fork, tmp_path):
    st = _cli(fork, "migrate", "status", "--json")
    assert st.exit_code == 0
    data = json.loads(st.stdout)
    assert data["data"]["complete"] is True and [a["status"] for a in data["actions"]] == ["done"] * 5

    out = tmp_path / "users.csv"
    users = _cli(fork, "migrate", "users", "--format", "csv", "--output", str(out))
    assert users.exit_code == 0, users.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("owner,old_proxy,old_collateral_usdc,old_positions,old_paused,new_proxy")
    assert sorted(l.split(",")[7] for l in lines[1:]) == ["not started", "re-deposited", "re-deposited", "withdrawn"]
    js = _cli(fork, "migrate", "users", "--format", "json")
    assert js.exit_code == 0 and len(json.loads(js.stdout)) == 4

    again = _cli(fork, "migrate", "deprecate", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["actions"][0]["status"] == "already done"
    bad = _cli(fork, "migrate", "deprecate", "--batch-size", "0")
    assert bad.exit_code == 2 and "--batch-size" in bad.output

    # after the migration, the operator's proxy (status, `seed`) is the new one
    from copytrade_cli.runbook.fork import fork_status
    from copytrade_cli.supervisor.configs import operator_proxy

    op_new = data["data"]["steps"]["proxy"]["detail"]["proxy"]
    assert fork_status(fork.state)["addresses"]["Operator proxy"] == op_new
    assert operator_proxy(fork.settings, fork.state)[0] == op_new

    # the next migration is only planned, never started by a dry run
    before = len(fork.state.migration_ops(LOCAL_NETWORK))
    nxt = _cli(fork, "migrate", "plan", "--dry-run", "--json")
    assert nxt.exit_code == 0 and json.loads(nxt.stdout)["to_generation"] == 3
    assert len(fork.state.migration_ops(LOCAL_NETWORK)) == before
