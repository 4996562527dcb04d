"""chain/roles.py on a real anvil: the hand-over to an admin that is not the deployer (two-step, accepted by
impersonation on the fork), delayed grants through `grant`, and `admin_status` for readiness."""
from __future__ import annotations

import pytest
from eth_account import Account

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain import roles
from copytrade_cli.errors import DeploymentError
from tests.conftest import DEV_KEYS


@pytest.fixture
def w3(anvil):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield w3
    w3.provider.make_request("evm_revert", [snap])


def test_handover_to_a_separate_admin_then_grants_wait_and_status(w3):
    deployer = Account.from_key(DEV_KEYS[0])
    admin, worker, extra = (Account.create().address for _ in range(3))
    token = Account.create().address  # a target address (never called here)
    st = C.deploy_stack(w3, deployer, targets=[token], workers=[worker], admin_delay=600, seal=False)
    contracts = {"Executor": st.executor, "ProxyFactory": st.factory, "Treasury": st.treasury}
    lane = roles.AccountLane(w3, deployer)
    ex = C.contract(w3, "Executor", st.executor)
    # in the setup phase a grant is immediate
    assert roles.grant(w3, lane, "Executor", st.executor, "worker", [extra], on_fork=True).status == "immediate"
    assert ex.functions.isWorker(extra).call()
    # live without the admin's acceptance: proposals only, and the status says so
    steps = roles.handover(w3, lane, contracts, roles.RolePlan(admin=admin, delay_s=600, on_fork=False))
    assert [s for s in steps if "must call" in s[0]] and ex.functions.sealed().call()
    status = roles.admin_status(w3, contracts, admin=admin, hot_keys=[deployer.address, worker], is_local=False)
    assert not status.ok and status.pending["Executor"] == admin
    assert any("held by hot key" in p for p in status.problems)
    # the fork accepts for the admin (impersonation); idempotent
    roles.handover(w3, lane, contracts, roles.RolePlan(admin=admin, delay_s=600, on_fork=True))
    assert roles.handover(w3, lane, contracts, roles.RolePlan(admin=admin, delay_s=600, on_fork=True)) == []
    status = roles.admin_status(w3, contracts, admin=admin, hot_keys=[deployer.address, worker], is_local=False)
    assert status.ok, status.problems
    assert status.holders == {"Executor": admin, "ProxyFactory": admin, "Treasury": admin}
    assert status.sealed is True and status.delay_s == {"Executor": 600, "ProxyFactory": 600}
    # the deployer has no power left; live, a grant it cannot queue is a clear error with the calldata
    with pytest.raises(DeploymentError, match="only 0x"):
        roles.grant(w3, lane, "Executor", st.executor, "worker", [Account.create().address], on_fork=False)
    # on the fork the admin's queue is sent by impersonation, the clock advanced, the grant applied
    new_worker = Account.create().address
    new_wallet = Account.create().address
    res = roles.grant(w3, lane, "Executor", st.executor, "worker", [(new_worker, new_wallet)], on_fork=True)
    assert res.status == "applied" and ex.functions.isWorker(new_worker).call()
    assert ex.functions.walletOf(new_worker).call() == new_wallet and ex.functions.workerOf(new_wallet).call() == new_worker
    later = Account.create().address
    res = roles.grant(w3, lane, "ProxyFactory", st.factory, "target", [later], on_fork=True)
    assert res.status == "applied"
    assert C.contract(w3, "ProxyFactory", st.factory).functions.isTarget(later).call()


def test_admin_status_live_problems(w3):
    deployer = Account.from_key(DEV_KEYS[0])
    st = C.deploy_stack(w3, deployer, targets=[], seal=False)
    contracts = {"Executor": st.executor, "ProxyFactory": st.factory, "Treasury": st.treasury}
    unset = roles.admin_status(w3, contracts, admin=None, hot_keys=[deployer.address], is_local=False)
    assert any("COPYTRADE_ADMIN is not set" in p for p in unset.problems)
    assert any("setup phase" in p for p in unset.problems)
    hot = roles.admin_status(w3, contracts, admin=deployer.address, hot_keys=[deployer.address], is_local=False)
    assert any("is a hot key" in p for p in hot.problems)
    assert roles.admin_status(w3, contracts, admin=None, hot_keys=[], is_local=True).ok  # the fork: no problems


def test_role_plan_and_funder_defaults():
    from copytrade_cli.settings import load_settings

    fork = load_settings(COPYTRADE_NETWORK="polygon:local")
    p = roles.plan(fork, "0x" + "11" * 20, True)
    assert p.admin == "0x" + "11" * 20 and p.delay_s == 172_800 and p.on_fork
    assert roles.plan(fork, "0x" + "11" * 20, False).admin is None  # live: no default admin
    from copytrade_cli.chain.accounts import operator_account

    assert roles.funder_account(fork).address == operator_account(fork).address  # fork default: the operator
    funder = load_settings(COPYTRADE_NETWORK="polygon:local", COPYTRADE_FUNDER_PRIVATE_KEY=DEV_KEYS[2])
    assert roles.funder_account(funder).address == Account.from_key(DEV_KEYS[2]).address
