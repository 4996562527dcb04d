"""`fleet setup|status` on a real fork (anvil + planted deposit-wallet factory + the local relayer + the local CLOB):
wallets deployed at the SDK-derived addresses, approvals on chain, pUSD float, registration on the Executor with the
wallet; a re-run sends nothing; the Executor pulls into a worker's wallet and pushes from it; the CLI lines."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from copytrade_cli.chain.accounts import worker_accounts
from copytrade_cli.chain.deploy import contract
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.chain.proxies import erc20, erc1155
from copytrade_cli.cli.main import app
from copytrade_cli.polymarket.wallets import deposit_wallet_address
from copytrade_cli.runbook.fleet import fleet_setup, fleet_status

from .conftest import new_follower

pytestmark = pytest.mark.timeout(300)
MAX = 2**256 - 1


def _env(fork):
    return {"COPYTRADE_HOME": str(fork.settings.home)}


def test_fork_up_sets_up_every_worker_with_its_deposit_wallet(fork):
    w3, world = fork.w3, fork.world
    executor = fork.report.addresses["Executor"]
    ex = contract(w3, "Executor", executor)
    pusd, ctf = erc20(w3, world.exchange_collateral), erc1155(w3, world.ctf)
    assert world.exchange_collateral == world.pusd
    spenders = [world.exchange, world.neg_risk_exchange, executor]
    workers = worker_accounts(fork.settings)
    for a in workers:
        wallet = deposit_wallet_address(a.address, factory=world.deposit_wallet_factory,
                                        beacon=world.deposit_wallet_beacon)
        assert wallet != a.address and len(w3.eth.get_code(wallet)) > 0, "deployed at the SDK-derived address"
        assert ex.functions.isWorker(a.address).call() and ex.functions.walletOf(a.address).call() == wallet
        assert ex.functions.workerOf(wallet).call() == a.address
        for sp in spenders:
            assert pusd.functions.allowance(wallet, sp).call() == MAX
            assert ctf.functions.isApprovedForAll(wallet, sp).call()
        assert pusd.functions.balanceOf(wallet).call() == 2000 * 10**6  # float in pUSD, in the wallet
        assert pusd.functions.balanceOf(a.address).call() == 0  # ... not in the signer
        assert w3.eth.get_balance(a.address) >= 25 * 10**18  # the signer pays the gas of its Executor calls
    st = fleet_status(fork.settings, fork.state)
    assert (st.ready, len(st.workers)) == (len(workers), len(workers))
    assert all(w.deployed and w.registered and not w.missing_approvals for w in st.workers)


def test_rerun_sends_nothing_and_repairs_only_what_is_missing(fork):
    w3 = fork.w3
    before = w3.eth.block_number
    again = fleet_setup(fork.settings, fork.state)
    assert again.done == {"gas": 0, "wallets": 0, "approval_calls": 0, "float": 0}
    assert w3.eth.block_number == before, "an idempotent re-run mines nothing"
    # take one approval and some float away from worker 1's wallet (the wallet itself revokes through a batch)
    row = again.status.workers[1]
    pusd = erc20(w3, fork.world.exchange_collateral)
    from polymarket import SecureClient
    from polymarket.auth import RelayerApiKey

    from copytrade_cli.runbook.fleet import _environment
    from copytrade_cli.chain.network import connect_network

    env = _environment(fork.settings, fork.state, connect_network(fork.settings, fork.state, None))
    acct = worker_accounts(fork.settings)[1]
    client = SecureClient.create(private_key="0x" + acct.key.hex().removeprefix("0x"), wallet=row.wallet,
                                 environment=env, api_key=RelayerApiKey(key="k", address=acct.address))
    try:
        client.approve_erc1155_for_all(token_address=fork.world.ctf, operator_address=fork.report.addresses["Executor"],
                                       approved=False).wait()
        client.transfer_erc20(token_address=fork.world.exchange_collateral, recipient_address=acct.address,
                              amount=1500 * 10**6).wait()
    finally:
        client.close()
    st = fleet_status(fork.settings, fork.state)
    assert st.workers[1].missing_approvals == ["CTF->Executor"] and st.workers[1].float_micro == 500 * 10**6
    assert st.ready == len(st.workers) - 1
    fixed = fleet_setup(fork.settings, fork.state)
    assert fixed.done == {"gas": 0, "wallets": 0, "approval_calls": 1, "float": 1}
    assert pusd.functions.balanceOf(row.wallet).call() == 2000 * 10**6
    assert fixed.status.ready == len(fixed.status.workers)


def test_executor_pulls_into_the_workers_wallet_and_pushes_from_it(fork):
    w3, world = fork.w3, fork.world
    ex_addr = fork.report.addresses["Executor"]
    ex = contract(w3, "Executor", ex_addr)
    signer = worker_accounts(fork.settings)[2]
    wallet = ex.functions.walletOf(signer.address).call()
    proxy = new_follower(fork, usdc=50)
    pusd = erc20(w3, world.exchange_collateral)
    w_before, s_before = pusd.functions.balanceOf(wallet).call(), pusd.functions.balanceOf(signer.address).call()
    lane = TxLane(w3, signer)
    lane.transact({"to": ex_addr, "data": ex.encode_abi("pullCollateral", args=[world.exchange_collateral, [proxy],
                                                                               [20 * 10**6]])})
    assert pusd.functions.balanceOf(proxy).call() == 30 * 10**6
    assert pusd.functions.balanceOf(wallet).call() == w_before + 20 * 10**6
    assert pusd.functions.balanceOf(signer.address).call() == s_before  # nothing went to the signer key
    # the wallet's approval (set by fleet setup's WALLET batch) lets the Executor push back from it
    lane.transact({"to": ex_addr, "data": ex.encode_abi("pushCollateral", args=[world.exchange_collateral, [proxy],
                                                                               [20 * 10**6]])})
    assert pusd.functions.balanceOf(proxy).call() == 50 * 10**6 and pusd.functions.balanceOf(wallet).call() == w_before
    # a transfer out of the proxy to the signer key itself is refused: only the wallet is a worker recipient
    data = pusd.encode_abi("transfer", args=[signer.address, 1])
    with pytest.raises(Exception, match="recipient not allowed"):
        ex.functions.execute(proxy, world.exchange_collateral, bytes.fromhex(data[2:])).call({"from": signer.address})


def test_fleet_cli_status_lines_and_json(fork):
    runner = CliRunner()
    r = runner.invoke(app, ["fleet", "status"], env=_env(fork))
    assert r.exit_code == 0, r.output
    n = len(worker_accounts(fork.settings))
    assert f"Fleet on polygon:local: {n}/{n} ready" in r.output
    first = fleet_status(fork.settings, fork.state).workers[0]
    assert first.signer in r.output and first.wallet in r.output and "6/6" in r.output
    r = runner.invoke(app, ["--json", "fleet", "status"], env=_env(fork))
    data = json.loads(r.output)
    assert data["ready"] == data["total"] == n
    row = data["workers"][0]
    assert {k: row[k] for k in ("signer", "wallet", "deployed", "registered", "missing_approvals", "float")} == {
        "signer": first.signer, "wallet": first.wallet, "deployed": True, "registered": True,
        "missing_approvals": [], "float": "2000"}
    r = runner.invoke(app, ["fleet", "setup"], env=_env(fork))
    assert r.exit_code == 0, r.output
    assert "Fleet setup on polygon:local: 0 gas top-ups, 0 wallets created, 0 approvals, 0 float top-ups" in r.output
    r = runner.invoke(app, ["deploy", "addresses", "--format", "env"], env=_env(fork))
    assert "PUSD_ADDRESS=0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB" in r.output.splitlines()


def test_proxy_fund_wraps_the_whales_usdc_e_into_pusd_through_the_onramp(fork):
    w3, world = fork.w3, fork.world
    usdc, pusd = erc20(w3, world.collateral), erc20(w3, world.pusd)
    proxy = new_follower(fork, usdc=0)
    whale_before, supply_before = usdc.functions.balanceOf(world.whale).call(), pusd.functions.totalSupply().call()
    locked_before = usdc.functions.balanceOf(world.onramp).call()
    r = CliRunner().invoke(app, ["proxy", "fund", "--proxy", proxy, "--amount", "12.5"], env=_env(fork))
    assert r.exit_code == 0, r.output
    assert f"Funded {proxy} with 12.5 pUSD; balance 12.5 pUSD" in r.output
    assert pusd.functions.balanceOf(proxy).call() == 12_500_000
    assert usdc.functions.balanceOf(world.whale).call() == whale_before - 12_500_000  # the whale's USDC.e ...
    assert pusd.functions.totalSupply().call() == supply_before + 12_500_000  # ... minted 1:1 as pUSD
    assert usdc.functions.balanceOf(world.onramp).call() >= locked_before  # locked by the ramp (or its vault)
    tx = w3.eth.get_transaction(r.output.rsplit("(tx ", 1)[1].split(")")[0])
    assert tx["to"] == world.onramp
    bad = CliRunner().invoke(app, ["proxy", "fund", "--proxy", proxy, "--amount", "-1"], env=_env(fork))
    assert bad.exit_code == 2 and "must be positive" in bad.output
    assert pusd.functions.balanceOf(proxy).call() == 12_500_000  # nothing changed
