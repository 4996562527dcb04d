"""Attacks on the mempool channel, on the real fork (anvil + planted exchange + local CLOB + a running supervisor):
nobody but the exchange's operator can make followers trade, a stale order signature counts for nothing, and a
fill whose transaction then fails on chain (a ghost) never leaves its copies silently kept.

Each attack is a pending `matchOrders` held in the pool (automine off) long enough for the mempool channel to
read it, then mined; the follower's balances are read from the chain before and after."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from eth_account import Account

from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.localworld.exchange import match_orders_calldata, match_gas
from copytrade_cli.localworld.trades import _client, _signed, leader_trade
from copytrade_cli.localworld.world import DEV_KEYS, LEADER, MARKET_MAKER, TRADE_OPERATOR
from copytrade_cli.state.records import legs_from_json
from copytrade_cli.supervisor.ghosts import ghost_reason

from ..integration.conftest import RunningSupervisor, fork  # noqa: F401
from .ledger import balances, check_once, injected, jobs_for
from .tools import setup_follow

pytestmark = [pytest.mark.timeout(300)]
ATTACKER = Account.from_key(DEV_KEYS[8])
SHARES, USD = 4_000_000, 2_000_000  # the leader BUYs 4 shares at 0.50


def _orders(fork, *, side="BUY", shares=SHARES, usd=USD):
    """The leader's signed order (taker) and the market maker's opposite one, as the CLOB would match them."""
    m = fork.world.market(0)
    token = m.token_id("Yes")
    leader = _signed(DEV_KEYS[LEADER], fork.world, token, side, shares, usd)
    mm = _signed(DEV_KEYS[MARKET_MAKER], fork.world, token, "SELL" if side == "BUY" else "BUY", shares, usd)
    return m.condition_id, leader, mm


def _calldata(fork, leader: dict, mm: dict, cond: str) -> str:
    return "0x" + match_orders_calldata(cond, leader, [mm], USD, [SHARES]).hex()


def _send_raw(fork, account, data: str, gas: int) -> str:
    w3 = fork.w3
    base = w3.eth.get_block("latest")["baseFeePerGas"]
    tx = {"chainId": fork.world.chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
          "to": fork.world.exchange, "value": 0, "gas": gas, "data": data, "maxFeePerGas": 3 * base + 25 * 10**9,
          "maxPriorityFeePerGas": 25 * 10**9}
    return "0x" + w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction).hex().removeprefix("0x")


def _pending_then_mine(fork, send, hold_s: float = 1.0, then=None) -> list[str]:
    """Automine off, `send()` the attack(s), keep them pending `hold_s` (the mempool channel polls at 20 Hz),
    run `then()` while they are still pending, mine one block, automine back on."""
    cheats = Cheats(fork.w3)
    with cheats.mining_lock:
        cheats.automine(False)
        try:
            hashes = send()
            time.sleep(hold_s)
            if then is not None:
                then()
            cheats.mine()
        finally:
            cheats.automine(True)
            if cheats.pending_count():
                cheats.mine()
    return hashes


def _status(fork, h: str) -> int:
    return int(fork.w3.eth.get_transaction_receipt(h)["status"])


def test_forged_and_replayed_matchorders_from_a_non_operator_make_no_copy(fork):
    """A non-operator's pending matchOrders naming the leader — with a garbage signature, and with the leader's
    real signature replayed — is ignored: no job, follower balances unchanged on chain. The real operator's
    trade right after is still copied (the channel is alive and watching)."""
    proxy, token, before = setup_follow(fork, amount="2")
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    try:
        mempool = sup.sup.channels[0]
        cond, leader, mm = _orders(fork)
        garbage = {**leader, "signature": "0x" + "ab" * 65}
        cond2, leader2, mm2 = _orders(fork, shares=SHARES + 10_000)  # another fill key: a distinct attack

        def send():
            return [_send_raw(fork, ATTACKER, _calldata(fork, garbage, mm, cond), match_gas(1)),
                    _send_raw(fork, ATTACKER, "0x" + match_orders_calldata(cond2, leader2, [mm2], USD,
                                                                           [SHARES + 10_000]).hex(), match_gas(1))]

        hashes = _pending_then_mine(fork, send)
        injected("forged matchOrders from a non-operator (garbage signature, replayed signature)", 2)
        assert [_status(fork, h) for h in hashes] == [0, 0]  # NotOperator on chain, as on Polymarket
        time.sleep(1.0)
        assert jobs_for(fork, proxy) == [], [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        assert balances(fork, proxy, token) == before
        assert mempool.refused_sender >= 2, mempool.refused_sender  # seen and refused, not missed
        leader_trade(fork.w3, fork.world, side="BUY", usd=2.0, price="0.5", pending_ms=300)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60), \
            [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
    finally:
        sup.stop()
    (job,) = check_once(fork, proxy, token, before, expect="complete")
    assert "mempool" in (fork.state.get_signal(job["fill_key"])["channels"] or "")


def test_operator_tx_with_a_stale_leader_signature_makes_no_copy(fork):
    """The real operator's pending matchOrders whose leader order was changed after signing (a better price for
    the attacker, the old signature kept): not copied. (The planted exchange trusts its operator; the real one
    rejects the signature, so the attack tx is sent with too little gas to revert, as it would on Polymarket.)"""
    proxy, token, before = setup_follow(fork, amount="2")
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    try:
        mempool = sup.sup.channels[0]
        cond, leader, mm = _orders(fork)
        stale = {**leader, "makerAmount": str(int(leader["makerAmount"]) * 19 // 10)}  # pays 0.95, not 0.50
        op = _client(fork.w3, fork.world, DEV_KEYS[TRADE_OPERATOR])

        def send():
            return [op.send({"to": fork.world.exchange, "data": _calldata(fork, stale, mm, cond), "gas": 90_000})]

        (h,) = _pending_then_mine(fork, send)
        injected("operator matchOrders with a stale leader signature")
        assert _status(fork, h) == 0
        time.sleep(1.0)
        assert jobs_for(fork, proxy) == [], [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]
        assert balances(fork, proxy, token) == before
        assert mempool.refused_signature >= 1 and mempool.refused_sender == 0  # seen, sender fine, order refused
    finally:
        sup.stop()
    check_once(fork, proxy, token, before)


class _HeldSlots:
    """Every dispatch slot busy (a backlog): queued groups wait, as they would behind a full fleet. The
    dispatcher's slot semaphore is swapped for one that never grants; a slot it held meanwhile and gives back
    is handed to the real semaphore on release."""

    def __init__(self, sup):
        self.d = sup.sup.dispatcher
        self.saved = self.d.inflight
        self.returned = 0
        self.d.inflight = self
        # the dispatcher may hold a slot of the real semaphore, waiting on the queue: let that read end
        time.sleep(2.5 * sup.sup.settings.supervisor_queue_drain_interval_ms / 1000 + 0.2)

    def acquire(self, blocking=True, timeout=None) -> bool:
        time.sleep(min(timeout if timeout is not None else 0.05, 0.05))
        return False

    def release(self) -> None:
        self.returned += 1

    def give_back(self) -> None:
        if self.d.inflight is self:
            self.d.inflight = self.saved
            for _ in range(self.returned):
                self.saved.release()
            self.returned = 0


def _genuine_leader_trade(fork, gas: int) -> str:
    """The operator's matchOrders of a real leader BUY (valid signatures), with `gas`: too little reverts it."""
    cond, leader, mm = _orders(fork)
    op = _client(fork.w3, fork.world, DEV_KEYS[TRADE_OPERATOR])
    return op.send({"to": fork.world.exchange, "data": _calldata(fork, leader, mm, cond), "gas": gas})


def _jobs(fork, proxy):
    return [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)]


@pytest.mark.parametrize("how", ["reverted", "dropped"])
def test_ghost_fill_queued_copies_are_dropped(fork, how):
    """A genuine operator fill that the mempool channel copied, whose tx then reverts on chain (out of gas) or
    never mines (dropped from the pool): its copies that no worker has started are dropped with the reason,
    reservations released, nothing moved on chain; a `[Ghost]` line says so."""
    proxy, token, before = setup_follow(fork, amount="2")
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    held = _HeldSlots(sup)
    cheats = Cheats(fork.w3)
    try:
        with cheats.mining_lock:
            cheats.automine(False)
            try:
                h = _genuine_leader_trade(fork, gas=90_000 if how == "reverted" else match_gas(1))
                assert sup.wait(lambda: [s for s, _r in _jobs(fork, proxy)] == ["queued"], 20), _jobs(fork, proxy)
                if how == "reverted":
                    cheats.mine()
                else:
                    cheats._call("anvil_dropTransaction", [h])
                    cheats.mine(8)  # gone from the pool and not mined after DROPPED_AFTER_BLOCKS blocks
            finally:
                cheats.automine(True)
        injected(f"ghost fill ({how})")
        if how == "reverted":
            assert _status(fork, h) == 0
        reason = ghost_reason(how)
        assert sup.wait(lambda: _jobs(fork, proxy) == [("dropped", reason)], 20), (_jobs(fork, proxy), sup.lines[-3:])
        held.give_back()
        time.sleep(1.5)  # the dispatcher reads the dropped group off the queue: it must not run it
        assert any(line.startswith("[Ghost] leader tx " + h.lower()) and how in line for line in sup.lines), \
            sup.lines[-5:]
        (job,) = jobs_for(fork, proxy)
        g = fork.state.get_group(job["group_id"])
        assert (g["status"], g["worker"]) == ("dropped", None)
        assert [s["step"] for s in fork.state.steps(g["group_id"])] == ["ghost fill"]
        keys = [leg.reserve_key for leg in legs_from_json(g["legs_json"]) if leg.reserve_key]
        assert keys and all(r["status"] == "released" for k in keys
                            for r in fork.state.db["guardrail_ledger"].rows_where("job_key = ?", [k]))
    finally:
        held.give_back()
        sup.stop()
    check_once(fork, proxy, token, before, expect="dropped")


def test_ghost_fill_after_the_copy_started_is_reported_with_its_cost(fork):
    """The ghost's copy had already started when the leader tx reverted: it is not silently kept — the group
    carries a `ghost fill` step with what it spent, the job says why, and a `[Ghost]` line reports the cost."""
    proxy, token, before = setup_follow(fork, amount="2")
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    cheats = Cheats(fork.w3)
    try:
        with cheats.mining_lock:
            cheats.automine(False)
            try:
                h = _genuine_leader_trade(fork, gas=90_000)

                def started():
                    js = jobs_for(fork, proxy)
                    return js and js[0]["group_id"] and fork.state.get_group(js[0]["group_id"])["status"] == "running"

                assert sup.wait(started, 20), _jobs(fork, proxy)
                time.sleep(0.5)  # its first transaction is in the pool with the ghost
                cheats.mine()
            finally:
                cheats.automine(True)
                if cheats.pending_count():
                    cheats.mine()
        injected("ghost fill (copy already started)")
        assert _status(fork, h) == 0
        assert sup.wait(lambda: any(line.startswith("[Ghost] group") for line in sup.lines), 90), sup.lines[-8:]
        (job,) = jobs_for(fork, proxy)
        line = next(line for line in sup.lines if line.startswith("[Ghost] group"))
        steps = [s for s in fork.state.steps(job["group_id"]) if s["step"] == "ghost fill"]
        assert job["status"] == "complete" and job["reason"].startswith(ghost_reason("reverted")), job
        assert f"bought {Decimal(job['shares']):.2f} shares for {Decimal(job['usd']):.2f} USD" in line, line
        assert steps[-1]["status"] == "loss" and Decimal(steps[-1]["amount"]) == Decimal(job["usd"])
        shown = subprocess.run([sys.executable, "-m", "copytrade_cli", "jobs", "show", str(job["id"])],
                               env=dict(os.environ, COPYTRADE_HOME=str(fork.settings.home)), capture_output=True,
                               text=True, timeout=60)
        first, rest = shown.stdout.split("\n", 1) if "\n" in shown.stdout else (shown.stdout, "")
        assert shown.returncode == 0 and "ghost fill: leader tx reverted" in first, shown.stdout + shown.stderr
        assert "ghost fill" in rest and "loss" in rest, shown.stdout  # the group's step
    finally:
        sup.stop()
    check_once(fork, proxy, token, before)
