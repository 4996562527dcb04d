"""`copytrade verify readiness` on a real fork: the right rows fail before deployment, every row passes after
`fork up`, and each failure mode flips exactly its own row (chain changes are undone with anvil snapshots)."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from copytrade_cli.chain.lanes import floor_fees
from copytrade_cli.chain.accounts import operator_account, worker_accounts
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.deploy import addresses, call_tx, contract
from copytrade_cli.runbook.fork import LOCAL_NETWORK, fork_down, fork_up, setup_contracts
from copytrade_cli.chain.node import free_port
from copytrade_cli.chain.proxies import erc20
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.cli.main import app
from copytrade_cli.errors import NotReadyError
from copytrade_cli.runbook.readiness import run_checks
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.state import open_state
from copytrade_cli.supervisor.configs import add_follow

from .conftest import clear_follows, make_settings, new_follower

pytestmark = pytest.mark.timeout(240)

ROWS = ["config", "rpc #1", "operator key", "worker keys", "executor", "executor allowlist", "factory",
        "factory allowlist", "admin", "workers registered", "workers gas", "worker wallets", "worker approvals",
        "worker float", "tip floor", "follower proxies", "follower funding", "clob", "relayer", "real trading", "redis",
        "supervisor health"]


def _failing(report) -> set[str]:
    return {c.name for c in report.checks if not c.ok}


def _oks(report) -> dict[str, bool]:
    return {c.name: c.ok for c in report.checks}


def test_fresh_fork_fails_before_deployment_and_passes_after(tmp_path):
    settings = make_settings(tmp_path)
    state = open_state(settings)
    report = fork_up(settings, state, deploy=False)
    try:
        before = run_checks(settings, state, LOCAL_NETWORK)
        assert not before.ready
        assert _failing(before) == {"executor", "executor allowlist", "factory", "factory allowlist",
                                    "workers registered", "workers gas", "worker wallets", "worker approvals",
                                    "worker float", "follower proxies"}
        assert {c.name for c in before.failing("required")} == _failing(before) - {"follower proxies", "worker float"}
        assert all(c.fix for c in before.failing()), "every failing row says how to fix it"
        assert "copytrade deploy executor" in next(c.fix for c in before.checks if c.name == "executor")

        from copytrade_cli.chain.network import connect_network

        chain = connect_network(settings, state, LOCAL_NETWORK)
        setup_contracts(settings, state, chain.w3, chain.world, operator_account(settings),
                        worker_accounts(settings), report, lambda *a: None, lambda m: None)
        after = run_checks(settings, state, LOCAL_NETWORK)
        assert after.ready, after.failing()
        assert _failing(after) == {"follower proxies"}  # a warning: nobody follows anyone yet
    finally:
        fork_down(state)


def test_full_fork_up_is_ready_fast_and_shows_no_keys(fork):
    clear_follows(fork)
    report = run_checks(fork.settings, fork.state, LOCAL_NETWORK)
    assert report.ready, report.failing()
    assert [c.name for c in report.checks] == ROWS
    assert not report.failing("required")
    assert report.seconds < 5
    text = json.dumps(report.as_dict())
    for key in [k.key.hex() for k in worker_accounts(fork.settings)] + [operator_account(fork.settings).key.hex()]:
        assert key.removeprefix("0x") not in text


@pytest.fixture
def baseline(fork):
    """A follow on a funded proxy, so every row (follower rows included) passes; chain restored afterwards."""
    clear_follows(fork)
    proxy = new_follower(fork, usdc=50)
    add_follow(fork.state, follower=proxy, leader=SEED_LEADER, amount="5")
    report = run_checks(fork.settings, fork.state, LOCAL_NETWORK)
    assert report.ready and not _failing(report), report.failing()
    cheats = Cheats(fork.w3)
    snap = cheats.snapshot()
    yield proxy
    cheats.revert(snap)
    clear_follows(fork)


def _flipped(fork, settings=None) -> set[str]:
    after = run_checks(settings or fork.settings, fork.state, LOCAL_NETWORK)
    return {n for n, ok in _oks(after).items() if not ok}


def _operator(fork) -> TxLane:
    return TxLane(fork.w3, operator_account(fork.settings))


def _executor(fork) -> str:
    return addresses(fork.state, LOCAL_NETWORK)["Executor"]


def test_paused_executor_flips_only_its_row(fork, baseline):
    call_tx(_operator(fork), fork.w3, "Executor", _executor(fork), "pause")
    assert _flipped(fork) == {"executor"}


def test_unregistered_worker_flips_only_its_row(fork, baseline):
    worker = worker_accounts(fork.settings)[3].address
    call_tx(_operator(fork), fork.w3, "Executor", _executor(fork), "removeWorkers", [worker])
    assert _flipped(fork) == {"workers registered"}
    row = next(c for c in run_checks(fork.settings, fork.state, LOCAL_NETWORK).checks if c.name == "workers registered")
    assert "1/20" in row.detail and worker[:6] in row.detail


def test_missing_allowlist_entry_flips_only_its_row(fork, baseline):
    call_tx(_operator(fork), fork.w3, "Executor", _executor(fork), "setTargets", [fork.world.ctf], False)
    assert _flipped(fork) == {"executor allowlist"}


def test_empty_proxy_flips_only_its_row(fork, baseline):
    owner = contract(fork.w3, "Proxy", baseline).functions.owner().call()
    cheats = Cheats(fork.w3)
    cheats.set_balance(owner, 10**18)
    cheats.impersonate(owner)
    try:
        bal = erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(baseline).call()
        data = contract(fork.w3, "Proxy", baseline).encode_abi("withdraw", args=[fork.world.exchange_collateral, bal])
        fork.w3.eth.wait_for_transaction_receipt(fork.w3.eth.send_transaction({"from": owner, "to": baseline,
                                                                               "data": data, "gas": 200_000,
                                                                               **floor_fees(fork.w3)}))
    finally:
        cheats.stop_impersonating(owner)
    assert _flipped(fork) == {"follower funding"}


def _as_wallet(fork, worker_index: int, to: str, data: str) -> str:
    """Send `data` to `to` from worker `worker_index`'s deposit wallet (anvil impersonates the contract)."""
    wallet = contract(fork.w3, "Executor", _executor(fork)).functions.walletOf(
        worker_accounts(fork.settings)[worker_index].address).call()
    cheats = Cheats(fork.w3)
    cheats.set_balance(wallet, 10**18)
    cheats.impersonate(wallet)
    try:
        fork.w3.eth.wait_for_transaction_receipt(fork.w3.eth.send_transaction(
            {"from": wallet, "to": to, "data": data, "gas": 200_000, **floor_fees(fork.w3)}))
    finally:
        cheats.stop_impersonating(wallet)
    return wallet


def test_missing_worker_approval_flips_only_its_row(fork, baseline):
    token = erc20(fork.w3, fork.world.exchange_collateral)
    wallet = _as_wallet(fork, 0, fork.world.exchange_collateral, token.encode_abi("approve", args=[fork.world.exchange, 0]))
    assert _flipped(fork) == {"worker approvals"}
    row = next(c for c in run_checks(fork.settings, fork.state, LOCAL_NETWORK).checks if c.name == "worker approvals")
    assert "1/20 wallets lack approvals" in row.detail and "pUSD to Exchange" in row.detail, row.detail
    assert wallet[:6] in row.detail and wallet[-4:] in row.detail  # the wallet is named, not the signer
    assert wallet != worker_accounts(fork.settings)[0].address


def test_empty_worker_wallet_flips_only_the_float_warning(fork, baseline):
    token = erc20(fork.w3, fork.world.exchange_collateral)
    bal = 2000 * 10**6
    _as_wallet(fork, 2, fork.world.exchange_collateral, token.encode_abi("transfer", args=[SEED_LEADER, bal]))
    report = run_checks(fork.settings, fork.state, LOCAL_NETWORK)
    assert _failing(report) == {"worker float"} and report.ready  # a warning: Standard copies need no float


def test_tip_floor_row_refuses_a_live_tip_under_polygons_floor(fork, baseline):
    low = make_settings(fork.settings.home, COPY_TRADING_MIN_PRIORITY_FEE_GWEI="1")
    report = run_checks(low, fork.state, LOCAL_NETWORK)
    row = next(c for c in report.checks if c.name == "tip floor")
    assert row.ok and "tip >= 1 gwei" in row.detail  # the fork: the operator's choice, shown
    from copytrade_cli.runbook.readiness.wallets import tip_floor_row

    live = tip_floor_row(low, fork.w3, 137, is_local=False)
    assert not live.ok and "below Polygon's 25 gwei" in live.detail
    assert live.fix == "set COPY_TRADING_MIN_PRIORITY_FEE_GWEI=25 (or more)"
    assert tip_floor_row(fork.settings, fork.w3, 137, is_local=False).ok


def test_dead_relayer_flips_only_its_row(fork, baseline):
    rec = fork.state.get_node()
    fork.state.update_node("default", relayer_url=f"http://127.0.0.1:{free_port()}")
    try:
        assert _flipped(fork) == {"relayer"}
    finally:
        fork.state.update_node("default", relayer_url=rec.relayer_url)


def test_dead_rpc_is_refused_on_the_fork(fork, baseline):
    """A second URL form of the recorded node is a failover row; any other endpoint on polygon:local (a dead port
    here) is refused before anything is checked (it could be a live chain id 137: tests/faults/test_attacks_local.py)."""
    from copytrade_cli.errors import ConfigError

    rpc = fork.chain.rpc_url
    alive = make_settings(fork.settings.home, COPY_TRADING_RPC_URL=rpc,
                          COPY_TRADING_RPC_URLS=rpc.replace("127.0.0.1", "localhost"))
    dead = make_settings(fork.settings.home, COPY_TRADING_RPC_URL=f"http://127.0.0.1:{free_port()}",
                         COPY_TRADING_RPC_URLS=rpc.replace("127.0.0.1", "localhost"))
    base = run_checks(alive, fork.state, LOCAL_NETWORK)
    assert base.ready and "rpc #2" in _oks(base) and not _failing(base)
    with pytest.raises(ConfigError, match="only talks to the fork node recorded by `fork up`"):
        run_checks(dead, fork.state, LOCAL_NETWORK)


def test_redis_row_when_configured(fork, baseline):
    down = make_settings(fork.settings.home, SUPERVISOR_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert _flipped(fork, down) == {"redis"}
    up = make_settings(fork.settings.home, SUPERVISOR_REDIS_URL="redis://127.0.0.1:6379/0")
    assert _flipped(fork, up) == set()


def test_supervisor_refuses_live_start_when_not_ready(fork):
    """A live network (the fork posing as polygon:mainnet): no contracts recorded there, so start() refuses,
    before anything runs. The live CLOB rows run the real client against the local CLOB."""
    from copytrade_cli.chain.network import connect_network
    from copytrade_cli.runbook.supervise import start_supervisor
    from copytrade_cli.supervisor.runner import Supervisor

    live = make_settings(fork.settings.home, COPYTRADE_NETWORK="polygon:mainnet",
                         COPY_TRADING_RPC_URL=fork.chain.rpc_url, COPYTRADE_CLOB_URL=fork.state.get_node().clob_url,
                         COPY_TRADING_WORKER_KEYS="0x" + "5a" * 32, ENABLE_REAL_TRADING="true")
    report = run_checks(live, fork.state)
    rows = {c.name: c for c in report.checks}
    assert not report.ready and report.network == "polygon:mainnet"
    assert not rows["executor"].ok and not rows["operator key"].ok
    assert rows["clob"].ok and rows["clob credentials"].ok, (rows["clob"], rows["clob credentials"])
    assert rows["worker keys"].ok and not rows["real trading"].ok  # on, but no caps: a warning
    chain = connect_network(live, fork.state, "polygon:mainnet")
    sup = Supervisor(live, fork.state, chain)
    with pytest.raises(NotReadyError, match="executor"):
        start_supervisor(sup)
    assert sup.fleet is None and not sup._threads


def test_admin_row_live_needs_a_cold_admin_holding_every_contract(fork, baseline):
    """The fork posing as polygon:mainnet (its contracts named by EXECUTOR_ADDRESS / PROXY_FACTORY_ADDRESS): the
    admin row fails while COPYTRADE_ADMIN is unset or is the operator, funder or a worker key, or while the
    deployer still holds the contracts; after the two-step hand-over to a cold address it passes."""
    from eth_utils import to_checksum_address

    from copytrade_cli.chain.roles import RolePlan, handover
    from copytrade_cli.polymarket.world import DEV_KEYS

    ex, fac = _executor(fork), addresses(fork.state, LOCAL_NETWORK)["ProxyFactory"]
    op, funder, worker = (operator_account(make_settings(fork.settings.home, TRADING_PRIVATE_KEY=k)).address
                          for k in (DEV_KEYS[0], DEV_KEYS[2], DEV_KEYS[3]))
    live = {"COPYTRADE_NETWORK": "polygon:mainnet", "COPY_TRADING_RPC_URL": fork.chain.rpc_url,
            "EXECUTOR_ADDRESS": ex, "PROXY_FACTORY_ADDRESS": fac, "TRADING_PRIVATE_KEY": DEV_KEYS[0],
            "COPYTRADE_FUNDER_PRIVATE_KEY": DEV_KEYS[2], "COPY_TRADING_WORKER_KEYS": DEV_KEYS[3]}

    def admin(**env):
        report = run_checks(make_settings(fork.settings.home, **{**live, **env}), fork.state)
        row = next(c for c in report.checks if c.name == "admin")
        assert row.severity == "required" and (row.ok or (row.fix and not report.ready))
        return row

    unset = admin()
    assert not unset.ok and "COPYTRADE_ADMIN is not set" in unset.detail and "COPYTRADE_ADMIN" in unset.fix
    for hot in (op, funder, worker):
        row = admin(COPYTRADE_ADMIN=hot)
        assert not row.ok and f"COPYTRADE_ADMIN {hot} is a hot key of the supervisor" in row.detail, row.detail
    cold = to_checksum_address("0x" + "c0" * 20)
    held = admin(COPYTRADE_ADMIN=cold)
    assert not held.ok and f"Executor is held by hot key {op}" in held.detail, held.detail
    assert "acceptOwnership" in held.fix
    local = next(c for c in run_checks(fork.settings, fork.state, LOCAL_NETWORK).checks if c.name == "admin")
    assert local.ok and local.detail.startswith(f"the fork: Executor, ProxyFactory, Treasury held by {op}") and "Live, COPYTRADE_ADMIN" in local.detail

    handover(fork.w3, _operator(fork), {"Executor": ex, "ProxyFactory": fac}, RolePlan(admin=cold, on_fork=True))
    done = admin(COPYTRADE_ADMIN=cold)
    assert done.ok and done.detail.startswith(f"COPYTRADE_ADMIN {cold} holds Executor, ProxyFactory; Executor sealed")


def _cli(fork, *args, env=None):
    runner = CliRunner()
    return runner.invoke(app, list(args), env={"COPYTRADE_HOME": str(fork.settings.home), **(env or {})})


def test_cli_exit_codes_and_json_shape(fork, baseline):
    ok = _cli(fork, "verify", "readiness", "--json")
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert set(data) == {"ready", "checks"} and data["ready"] is True
    assert all(set(c) == {"name", "ok", "severity", "detail", "fix"} for c in data["checks"])
    assert [c["name"] for c in data["checks"]] == ROWS
    assert {c["severity"] for c in data["checks"]} == {"required", "warning"}

    human = _cli(fork, "verify", "readiness")
    assert human.exit_code == 0 and "ready: all 18 required checks pass" in human.stdout

    call_tx(_operator(fork), fork.w3, "Executor", _executor(fork), "pause")
    bad = _cli(fork, "verify", "readiness", "--json")
    assert bad.exit_code == NotReadyError.exit_code == 8
    data = json.loads(bad.stdout)
    assert data["ready"] is False
    assert [c["name"] for c in data["checks"] if not c["ok"]] == ["executor"]
    assert "unpause" in next(c["fix"] for c in data["checks"] if c["name"] == "executor")

    broken = _cli(fork, "verify", "readiness", "--json", env={"TRADING_PRIVATE_KEY": "not-a-key"})
    assert broken.exit_code == 8
    data = json.loads(broken.stdout)
    assert data == {"ready": False, "checks": [data["checks"][0]]} and data["checks"][0]["name"] == "config"
    assert "TRADING_PRIVATE_KEY" in data["checks"][0]["detail"] and "not-a-key" not in broken.output
