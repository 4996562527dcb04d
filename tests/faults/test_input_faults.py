"""Feed and input faults: the activity websocket dropped again and again, undecodable pending transactions,
bad follow configs (in the CLI and in the state file), bad env values, wrong-checksum addresses, and hostile
fills through the decision pipeline (hypothesis): a clear error or a recorded skip, never a supervisor crash,
never a wrong trade."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from copytrade_cli.errors import ConfigError, UsageError
from copytrade_cli.localworld.trades import leader_trade
from copytrade_cli.settings import SEED_LEADER
from copytrade_cli.supervisor.configs import add_follow

from ..integration.conftest import RunningSupervisor, clear_follows, fork, make_settings, new_follower  # noqa: F401
from .ledger import balances, check_once, injected, jobs_for
from .tools import setup_follow

pytestmark = [pytest.mark.timeout(240)]


class DroppingFeed:
    """An activity websocket that sends a garbage frame and then the given trade on every connection, and
    drops the connection (no close frame) right after."""

    def __init__(self, message: dict):
        from websockets.asyncio.server import serve

        self.message, self.connections = message, 0
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handler(ws):
            self.connections += 1
            try:
                await asyncio.wait_for(ws.recv(), 5)  # the subscribe message
                await ws.send("{not json")
                await ws.send(json.dumps({"topic": "activity", "type": "trades", "payload": {"size": "NaN"}}))
                await ws.send(json.dumps(self.message))
                await asyncio.sleep(0.2)
            finally:
                ws.transport.abort()  # dropped, not closed

        async def main():
            self._server = await serve(handler, "127.0.0.1", 0)
            self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
            ready.set()
            try:
                await self._server.serve_forever()
            except asyncio.CancelledError:
                pass

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(main())
            except Exception:  # noqa: BLE001 — closed at teardown
                pass

        threading.Thread(target=run, daemon=True).start()
        assert ready.wait(10)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)


@pytest.mark.slow
def test_activity_websocket_dropped_repeatedly(fork):
    proxy, token, before = setup_follow(fork, amount="2")
    res = leader_trade(fork.w3, fork.world, side="BUY", usd=5.0, price="0.5", pending_ms=0)
    f = res.fills[0]
    payload = {"proxyWallet": f.leader, "transactionHash": f.tx_hash, "asset": f.token_id, "side": f.side,
               "size": f.shares_micro / 1e6, "price": str(f.price), "usdcSize": f.usd_micro / 1e6,
               "conditionId": fork.world.market(0).condition_id, "type": "TRADE"}
    feed = DroppingFeed({"topic": "activity", "type": "trades", "payload": payload})
    s = make_settings(fork.settings.home, COPYTRADE_ACTIVITY_WS_URL=feed.url)
    sup = RunningSupervisor(fork, settings=s, channels=("activity",))
    try:
        ok = sup.wait(lambda: feed.connections >= 4
                      and [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60)
        injected("activity websocket dropped", feed.connections)
        assert ok, (feed.connections, [(j["status"], j["reason"]) for j in jobs_for(fork, proxy)])
        time.sleep(0.5)
        ch = sup.sup.channels[0]
        assert ch.errors >= 3 and sup.thread.is_alive()
    finally:
        sup.stop()
        feed.close()
    check_once(fork, proxy, token, before, expect="complete")


@pytest.mark.slow
def test_undecodable_pending_transactions(fork):
    from eth_account import Account

    from copytrade_cli.chain.cheats import Cheats
    from copytrade_cli.localworld.world import DEV_KEYS
    from copytrade_cli.polymarket.fills import _selectors

    proxy, token, before = setup_follow(fork, amount="2")
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    try:
        sender = Account.from_key(DEV_KEYS[7])
        sel = sorted(_selectors())[0]
        junk = [b"", b"\x01\x02", sel + b"\x00" * 7, sel + os.urandom(200), os.urandom(300),
                sel + (2**255).to_bytes(32, "big") * 40]
        cheats = Cheats(fork.w3)
        n = fork.w3.eth.get_transaction_count(sender.address, "pending")
        base = fork.w3.eth.get_block("latest")["baseFeePerGas"]
        with cheats.mining_lock:
            cheats.automine(False)
            try:
                for i, data in enumerate(junk):
                    tx = {"chainId": 137, "nonce": n + i, "to": fork.world.exchange, "value": 0, "gas": 300_000,
                          "data": data, "maxFeePerGas": 3 * base + 25 * 10**9, "maxPriorityFeePerGas": 25 * 10**9}
                    fork.w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
                time.sleep(0.5)  # pending long enough for the mempool channel to read them
                cheats.mine()
            finally:
                cheats.automine(True)
        injected("undecodable pending txs", len(junk))
        leader_trade(fork.w3, fork.world, side="BUY", usd=5.0, price="0.5", pending_ms=300)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, proxy)] == ["complete"], 60)
        assert sup.thread.is_alive() and all(c.is_alive() for c in sup.sup.channels)
    finally:
        sup.stop()
    check_once(fork, proxy, token, before, expect="complete")


def test_bad_follow_configs_clear_errors_or_recorded_skips(fork):
    from copytrade_cli.state import Follow

    good = new_follower(fork)
    bad_cli = [dict(leader="0x1234"), dict(leader=SEED_LEADER.lower()[:-1] + "G"), dict(sizing="weird"),
               dict(amount="abc"), dict(amount="-3"), dict(min_usd="9", max_usd="2"), dict(max_slippage="2"),
               dict(side_filter="BOTHWAYS"), dict(flow="turbo"), dict(sizing="percent", amount="250"),
               dict(leader="0x70997970c51812dc3a010c7d01b50e0d17dc79C8")]  # mixed case, wrong checksum
    for bad in bad_cli:
        with pytest.raises(UsageError) as e:
            add_follow(fork.state, **{"follower": good, "leader": SEED_LEADER, **bad})
        assert e.value.args[0].startswith("--"), e.value.args[0]  # names the option
        injected("bad follow config (CLI)")
    clear_follows(fork)
    add_follow(fork.state, follower=good, leader=SEED_LEADER, amount="2")
    # rows that bypassed validation (hand-edited state file, an older version)
    odd = [new_follower(fork) for _ in range(3)]
    rows = [Follow(follower=odd[0], leader=SEED_LEADER, amount="abc"),
            Follow(follower=odd[1], leader=SEED_LEADER, sizing="bogus", amount="5"),
            Follow(follower=odd[2], leader=SEED_LEADER, amount="2", max_slippage="lots")]
    for r in rows:
        d = asdict(r)
        d.pop("id")
        fork.state.db["follows"].insert(d)
    injected("bad follow config (state file)", len(rows))
    time.sleep(1.0 - time.time() % 1.0 + 0.05)  # trade in the second after the follows exist
    token = int(fork.world.market(0).token_id("Yes"))
    befores = {p: balances(fork, p, token) for p in [good, *odd]}
    sup = RunningSupervisor(fork, channels=("mempool", "logs"))
    try:
        leader_trade(fork.w3, fork.world, side="BUY", usd=5.0, price="0.5", pending_ms=300)
        assert sup.wait(lambda: [j["status"] for j in jobs_for(fork, good)] == ["complete"]
                        and all(len(jobs_for(fork, p)) == 1 for p in odd), 60), \
            [(p, [(j["status"], j["reason"]) for j in jobs_for(fork, p)]) for p in [good, *odd]]
        assert sup.thread.is_alive()
    finally:
        sup.stop()
    for p in odd:
        (job,) = check_once(fork, p, token, befores[p], expect="skipped")
        assert job["reason"], "a skip always says why"
    check_once(fork, good, token, befores[good], expect="complete")


BAD_ENV = [("SUPERVISOR_QUEUE_MAX_SIZE", "abc"), ("SUPERVISOR_QUEUE_MAX_SIZE", "0"),
           ("COPY_TRADING_MAX_TRADE_USD", "-5"), ("COPY_TRADING_RPC_URLS", "not-a-url"),
           ("COPY_TRADING_EXECUTION_ALLOWLIST", "0x70997970c51812dc3a010c7d01b50e0d17dc79C8"),
           ("SUPERVISOR_REDIS_URL", "http://x"), ("COPY_TRADING_WORKER_KEYS", "0x1234"),
           ("TRADING_MNEMONIC", "two words"), ("ENABLE_REAL_TRADING", "perhaps"), ("COPYTRADE_FAULT_KILL_AT", "lunch")]


@pytest.mark.parametrize("name,value", BAD_ENV)
def test_bad_env_values_are_one_line_errors(name, value, monkeypatch, tmp_path):
    from copytrade_cli.settings import load_settings

    monkeypatch.setenv("COPYTRADE_HOME", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as e:
        load_settings()
    msg = str(e.value)
    assert name in msg and "\n" not in msg, msg
    if "KEY" in name or "MNEMONIC" in name:
        assert value not in msg  # secrets are never echoed
    injected("bad env value")


def test_bad_env_value_stops_supervise_cleanly(tmp_path):
    env = dict(os.environ, COPYTRADE_HOME=str(tmp_path), SUPERVISOR_FANOUT_CONCURRENCY="many")
    p = subprocess.run([sys.executable, "-m", "copytrade_cli", "supervise"], env=env, capture_output=True, text=True,
                       timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert "SUPERVISOR_FANOUT_CONCURRENCY" in out and "Traceback" not in out, out
    injected("bad env value (supervise)")


def test_wrong_checksum_addresses():
    from copytrade_cli.polymarket.fills import decode_activity_message
    from copytrade_cli.settings import checksum_address

    wrong = "0x70997970c51812dc3a010c7d01b50e0d17dc79C8"  # mixed case with a bad EIP-55 checksum
    with pytest.raises(ValueError, match="checksum"):
        checksum_address(wrong)
    assert checksum_address(wrong.lower()) == SEED_LEADER  # all-lowercase carries no checksum: accepted
    # A feed's address is identified by its 20 bytes (feeds send lowercase): never another leader's trade.
    payload = {"proxyWallet": wrong, "transactionHash": "0x" + "ab" * 32, "asset": "1", "side": "BUY", "size": 2,
               "price": 0.5}
    f = decode_activity_message({"topic": "activity", "type": "trades", "payload": payload}, [SEED_LEADER])
    assert f is not None and f.leader == SEED_LEADER
    other = decode_activity_message({"topic": "activity", "type": "trades",
                                     "payload": {**payload, "proxyWallet": "0x" + "11" * 20}}, [SEED_LEADER])
    assert other is None
    injected("wrong-checksum addresses", 2)


# --- hostile fills through the decision pipeline (no chain) ------------------------------------------------
class _NoChain:
    network, chain_id, is_local, w3, rpc_url, world = "polygon:local", 137, True, None, "http://127.0.0.1:1", None


@pytest.fixture(scope="module")
def nochain_sup(tmp_path_factory):
    from eth_account import Account

    from copytrade_cli.settings import Settings
    from copytrade_cli.state import open_state
    from copytrade_cli.supervisor.runner import Supervisor

    home = tmp_path_factory.mktemp("decide-fuzz")
    s = Settings(COPYTRADE_HOME=str(home), COPY_TRADING_MAX_TRADE_USD="50", SUPERVISOR_QUEUE_MAX_SIZE="1000000")
    state = open_state(s)
    followers = [Account.create().address for _ in range(6)]
    cfgs = [dict(sizing="fixed", amount="3"), dict(sizing="proportional", amount="0.5", max_usd="20"),
            dict(sizing="fixed", amount="100"), dict(sizing="proportional", amount="2", min_usd="1"),
            dict(sizing="fixed", amount="1", side_filter="SELL"), dict(sizing="fixed", amount="2", max_price="0.6")]
    for f, c in zip(followers, cfgs):
        add_follow(state, follower=f, leader=SEED_LEADER, flow="buffer", **c)
    sup = Supervisor(s, state, _NoChain(), say=lambda _l: None)
    return sup


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(shares=st.integers(0, 10**15), usd=st.none() | st.integers(0, 10**15),
       price=st.none() | st.decimals(min_value=Decimal("-1"), max_value=Decimal("5"), places=6, allow_nan=False),
       n=st.integers(0, 2**60))
def test_hostile_fills_never_make_a_wrong_trade(nochain_sup, shares, usd, price, n):
    from copytrade_cli.polymarket.fills import LeaderFill
    from copytrade_cli.supervisor.runner import signal_key

    sup = nochain_sup
    fill = LeaderFill(leader=SEED_LEADER, tx_hash="0x" + f"{n:064x}", token_id="12345", side="BUY",
                      shares_micro=shares, usd_micro=usd, price=price, source="test")
    sup.on_fill(fill)  # must not raise
    injected("hostile fill (decision fuzz)")
    jobs = sup.state._q("select * from job_rows where fill_key=?", [signal_key(fill)])  # this fill's, packed or not
    if not jobs:
        return  # a fill nobody follows yet (cannot happen here) or an exact replay
    assert len(jobs) == 6, "every follow gets exactly one recorded decision"
    for j in jobs:
        assert j["status"] in ("queued", "skipped")
        if j["status"] == "skipped":
            assert j["reason"]
            continue
        amount = Decimal(j["usd"])
        assert Decimal("0.01") <= amount <= 50 and amount % Decimal("0.01") == 0, j
        assert Decimal("0.01") <= Decimal(j["price"]) <= Decimal("0.99"), j
        assert j["side"] == "BUY"
