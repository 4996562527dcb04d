"""`copytrade demo`: the whole runbook in one process on the embedded defaults, proved on chain.

fork up -> (deploy, operator proxy funded: done by fork up) -> a second follower on Smart Buffer ->
seed -> supervise -> the leader trades -> wait for Job Complete of both flows -> check the proxies'
positions and collateral on chain -> tear down. Returns a report; `ok` only if the copies really happened.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from eth_account import Account

from ..chain.accounts import DevAccounts, dev_key
from ..chain.network import LOCAL_NETWORK, connect_network
from ..chain.proxies import create_proxy, erc20, erc1155, fund_pusd_from_whale
from ..chain.lanes import TxLane
from ..localworld.trades import leader_trade
from ..settings import SEED_LEADER, Settings
from ..state import State
from ..supervisor.configs import add_follow, seed
from ..supervisor.runner import Supervisor, SupervisorOptions
from .fork import fork_down, fork_up
from .supervise import start_supervisor

SECOND_OWNER_INDEX = 5  # dev account that owns the Smart Buffer follower's proxy


@dataclass
class DemoReport:
    """What the demo did and measured."""

    ok: bool = False
    seconds: float = 0.0
    fork_seconds: float = 0.0
    trade_tx: str = ""
    followers: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)  # the copies' OrderFilled rows of our workers' orders
    problems: list[str] = field(default_factory=list)


def run_demo(settings: Settings, state: State, say: Callable[[str], None], *, usd: float = 10.0,
             timeout: float = 90.0, keep: bool = False) -> DemoReport:
    """Run the runbook end to end; always tears down what it started unless `keep`."""
    rep = DemoReport()
    t0 = time.time()
    say("== T1/T2: fork up (node, Polymarket planted, Executor + Factory, operator proxy funded)")
    fr = fork_up(settings, state, progress=lambda m: say(f"   fork up: {m}"))
    rep.fork_seconds = fr.seconds
    say(f"   fork ready in {fr.seconds:.1f}s: {fr.rpc_url}, CLOB {fr.addresses.get('CLOB')}")
    sup = None
    try:
        chain = connect_network(settings, state, LOCAL_NETWORK)
        w3, world = chain.w3, chain.world
        owner2 = Account.from_key(dev_key(SECOND_OWNER_INDEX))
        factory = fr.addresses["ProxyFactory"]
        proxy2, _ = create_proxy(w3, state, LOCAL_NETWORK, TxLane(w3, Account.from_key(dev_key(DevAccounts.operator))),
                                 factory, owner2.address)
        fund_pusd_from_whale(w3, world, proxy2, 1000 * 10**6)
        say("== T3a: seed follow configs")
        f1 = seed(settings, state, amount=str(usd), flow="standard")
        f2 = add_follow(state, follower=proxy2, owner=owner2.address, leader=SEED_LEADER, sizing="fixed",
                        amount=str(usd / 2), flow="buffer")
        say(f"   #{f1.id} {f1.follower} follows {f1.leader}: fixed {f1.amount} USD, Standard flow")
        say(f"   #{f2.id} {f2.follower} follows {f2.leader}: fixed {f2.amount} USD, Smart Buffer flow")
        market = world.market(0)
        token = int(market.token_id("Yes"))
        usdc, ctf = erc20(w3, world.exchange_collateral), erc1155(w3, world.ctf)
        before = {p: (usdc.functions.balanceOf(p).call(), ctf.functions.balanceOf(p, token).call())
                  for p in (f1.follower, f2.follower)}
        say("== T3b: supervise")
        sup = Supervisor(settings, state, chain, say=lambda l: say("   " + l),
                         options=SupervisorOptions(channels=("mempool", "logs", "activity"), reimburse_every_s=0.5))
        start_supervisor(sup)
        runner = threading.Thread(target=sup.run, daemon=True)
        runner.start()
        time.sleep(0.5)  # let the channels subscribe
        say("== T4: the leader trades (impersonated)")
        start_block = int(w3.eth.block_number) + 1
        res = leader_trade(w3, world, side="BUY", usd=25.0, price="0.5")
        rep.trade_tx = res.tx_hash
        say(f"   ✅ Signal Sent! tx {res.tx_hash}")
        deadline = time.time() + timeout
        while time.time() < deadline:
            if sup.metrics.groups_done >= 2 and not state.open_debts():
                break
            time.sleep(0.1)
        sup.stop_event.set()
        runner.join(60)
        sup_fleet = [(wk.address, wk.wallet) for wk in sup.fleet.workers] if sup.fleet is not None else []
        sup = None
        for f in (f1, f2):
            bal, pos = usdc.functions.balanceOf(f.follower).call(), ctf.functions.balanceOf(f.follower, token).call()
            b0, p0 = before[f.follower]
            row = {"follower": f.follower, "flow": f.flow, "usdc_before": b0 / 1e6, "usdc_after": bal / 1e6,
                   "spent": (b0 - bal) / 1e6, "shares_before": p0 / 1e6, "shares_after": pos / 1e6}
            rep.followers.append(row)
            if pos <= p0:
                rep.problems.append(f"{f.follower} ({f.flow}) holds no new outcome tokens")
            if bal >= b0:
                rep.problems.append(f"{f.follower} ({f.flow}) collateral did not go down")
        rep.problems += _fills_by_deposit_wallets(w3, world, sup_fleet, start_block, rep, say)
        jobs = state.list_jobs(limit=100)
        done = [j for j in jobs if j["status"] == "complete"]
        if len(done) < 2:
            rep.problems.append(f"expected 2 completed jobs, found {len(done)} ({[j['status'] for j in jobs]})")
        if state.open_debts():
            rep.problems.append("Smart Buffer debt not reimbursed")
        rep.ok = not rep.problems
    finally:
        if sup is not None:
            sup.stop_event.set()
            sup.shutdown()
        if not keep:
            fork_down(state)
            say("== teardown: fork down")
        rep.seconds = time.time() - t0
    return rep


ORDER_FILLED = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"  # LIVE-2026 §9


def _fills_by_deposit_wallets(w3, world, fleet: list[tuple[str, str]], from_block: int, rep: DemoReport,
                              say: Callable[[str], None]) -> list[str]:
    """On chain: the copies' `OrderFilled` rows whose maker is one of our workers must name its deposit wallet (an
    address with code), never the signer EOA; at least one per copy. Returns the problems found."""
    signers = {s.lower() for s, _w in fleet}
    wallets = {w.lower(): s for s, w in fleet}
    exchanges = [a for a in (world.exchange, world.neg_risk_exchange) if a]
    logs = w3.eth.get_logs({"fromBlock": from_block, "toBlock": "latest", "address": exchanges,
                            "topics": [ORDER_FILLED]})
    problems = []
    for lg in logs:
        maker = "0x" + bytes(lg["topics"][2])[-20:].hex()
        if maker.lower() in signers and maker.lower() not in wallets:
            problems.append(f"an OrderFilled maker is the worker signer {maker}, not its deposit wallet")
        if maker.lower() in wallets:
            code = len(w3.eth.get_code(w3.to_checksum_address(maker))) > 0
            rep.fills.append({"tx": "0x" + bytes(lg["transactionHash"]).hex(), "maker": w3.to_checksum_address(maker),
                              "signer": wallets[maker.lower()], "maker_has_code": code})
            if not code:
                problems.append(f"the OrderFilled maker {maker} (a worker wallet) has no code")
    for f in rep.fills:
        say(f"   OrderFilled maker {f['maker']} = deposit wallet of worker {f['signer']} (code: {f['maker_has_code']})")
    if len(rep.fills) < 2:
        problems.append(f"expected an OrderFilled by a worker's deposit wallet for each of the 2 copies, found "
                        f"{len(rep.fills)}")
    return problems
