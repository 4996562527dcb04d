"""Several `copytrade supervise` instances (subprocesses sharing one COPYTRADE_HOME) on one fork, sharing work
through the machine's real Redis (private key prefix): zero duplicates and zero losses checked against chain
balances and state, one instance SIGKILLed mid-job, caps across instances, a private Redis restarted mid-run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest

from copytrade_cli.chain.proxies import erc20, erc1155
from copytrade_cli.localworld.trades import leader_batch
from copytrade_cli.localworld.world import DEV_ADDRESSES, DEV_KEYS
from copytrade_cli.supervisor.configs import add_follow

from .conftest import clear_follows, make_settings, new_follower
from ..faults.ledger import LEDGER, injected

pytestmark = pytest.mark.timeout(300)
URL = "redis://127.0.0.1:6379/0"
# One leader per shard of 4 (and two per shard of 2): owns() hashes the address's last 8 hex digits.
LEADERS = [DEV_ADDRESSES[1], DEV_ADDRESSES[6], DEV_ADDRESSES[0], DEV_ADDRESSES[8]]
POOL = 4  # workers per instance: instances 0..3 use the fleet `fork up` registered and funded (20 workers)
LEASE_MS = 3000


@pytest.fixture(scope="module")
def world4(fork):
    """The fork with four funded, approved leaders (one per shard of four)."""
    from copytrade_cli.localworld.plant import plant_polymarket

    plant_polymarket(fork.w3, DEV_KEYS[0], leaders=LEADERS)
    return fork


class Instance:
    """One `copytrade supervise` subprocess; its output is collected by a reader thread."""

    def __init__(self, fork, index: int, count: int, redis_url: str, prefix: str, **env):
        e = dict(os.environ, COPYTRADE_HOME=str(fork.settings.home), PYTHONUNBUFFERED="1",
                 SUPERVISOR_REDIS_URL=redis_url, SUPERVISOR_REDIS_PREFIX=prefix,
                 SUPERVISOR_SHARD_COUNT=str(count), SUPERVISOR_SHARD_INDEX=str(index),
                 COPY_TRADING_WORKER_INDEX=str(index), SUPERVISOR_WORKER_POOL_SIZE=str(POOL),
                 SUPERVISOR_LEASE_MS=str(LEASE_MS), SUPERVISOR_QUEUE_DRAIN_INTERVAL_MS="100",
                 SUPERVISOR_HEALTH_INTERVAL_MS="500")
        e.pop("COPYTRADE_FAULT_KILL_AT", None)
        e.update(env)
        self.index = index
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "copytrade_cli", "supervise", "--channels", "mempool,logs"],
                                     env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip())
            if "[TaskQueue] ready" in line:
                self.ready.set()

    def wait_ready(self, timeout: float = 90) -> None:
        if not self.ready.wait(timeout):
            raise AssertionError(f"instance {self.index} did not start:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start(fork, count: int, redis_url: str, prefix: str, faults: dict[int, dict] | None = None) -> list[Instance]:
    """`count` instances, shard i of count, worker index i; cursors start at the chain head."""
    head = str(fork.w3.eth.block_number)
    net = fork.chain.network
    fork.state.set_cursor(f"logs:{net}", head)
    for n in (2, 4):
        for i in range(n):
            fork.state.set_cursor(f"logs:{net}:shard{i}of{n}", head)
    insts = [Instance(fork, i, count, redis_url, prefix, **(faults or {}).get(i, {})) for i in range(count)]
    for inst in insts:
        inst.wait_ready()
    return insts


def followers(fork, n: int, usdc: int = 200) -> list[str]:
    """`n` fresh funded proxies, each following every leader with a fixed 1 USD per copy."""
    clear_follows(fork)
    out = [new_follower(fork, usdc=usdc) for _ in range(n)]
    for p in out:
        for leader in LEADERS:
            add_follow(fork.state, follower=p, leader=leader, sizing="fixed", amount="1", flow="standard")
    return out


def balances(fork, proxies, token):
    usdc, ctf = erc20(fork.w3, fork.world.exchange_collateral), erc1155(fork.w3, fork.world.ctf)
    return {p: (usdc.functions.balanceOf(p).call(), ctf.functions.balanceOf(p, token).call()) for p in proxies}


def jobs_of(fork, proxies):
    want = {p.lower() for p in proxies}
    return [j for j in fork.state.list_jobs(limit=100_000) if j["follower"].lower() in want]


def wait(cond, timeout: float, what: str, insts=()) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- instance {i.index}:\n" + "\n".join(i.lines[-12:]) for i in insts)
    raise AssertionError(f"timed out waiting for {what}\n{tails}")


def check_exactly_once(fork, proxies, fill_keys, before, token):
    """Every fill x follower is one complete job; chain balances moved by exactly what the jobs say."""
    jobs = jobs_of(fork, proxies)
    pairs = [(j["fill_key"], j["follower"].lower()) for j in jobs]
    LEDGER["jobs"] += len(jobs)
    LEDGER["duplicates"] += len(pairs) - len(set(pairs))
    LEDGER["losses"] += len({(k, p.lower()) for k in fill_keys for p in proxies} - set(pairs))
    assert len(pairs) == len(set(pairs)), "a fill was copied twice for one follower"
    assert set(pairs) == {(k, p.lower()) for k in fill_keys for p in proxies}, "a copy is missing"
    assert all(j["status"] == "complete" for j in jobs), {j["status"] for j in jobs}
    after = balances(fork, proxies, token)
    for p in proxies:
        mine = [j for j in jobs if j["follower"].lower() == p.lower()]
        spent = sum(Decimal(j["usd"]) for j in mine)
        shares = sum(Decimal(j["shares"]) for j in mine)
        assert before[p][0] - after[p][0] == int(spent * 10**6), p  # unspent cents were refunded
        assert after[p][1] - before[p][1] == int(shares * 10**6), p
    groups = {j["group_id"] for j in jobs}
    for gid in groups:
        g = fork.state.get_group(gid)
        assert g["status"] == "complete" and erc1155(fork.w3, fork.world.ctf).functions.balanceOf(
            g["worker"], token).call() == 0
    return jobs


def _fire(fork, batches: int, per_batch: int) -> list[str]:
    keys = []
    from copytrade_cli.supervisor.runner import signal_key

    for _ in range(batches):
        res = leader_batch(fork.w3, fork.world, count=per_batch, leaders=LEADERS, usd=2.0, price="0.5")
        keys += [signal_key(f) for f in res.fills]
    return keys


def test_two_instances_split_fills_exactly_once(world4, redis_prefix):
    fork = world4
    proxies = followers(fork, 3)
    token = int(fork.world.market(0).token_id("Yes"))
    before = balances(fork, proxies, token)
    insts = start(fork, 2, URL, redis_prefix)
    try:
        keys = _fire(fork, batches=3, per_batch=8)
        assert len(set(keys)) == 24
        wait(lambda: sum(j["status"] == "complete" for j in jobs_of(fork, proxies)) >= 24 * 3, 120,
             "every copy complete", insts)
        time.sleep(1.0)  # nothing late may show up
    finally:
        for i in insts:
            i.stop()
    jobs = check_exactly_once(fork, proxies, keys, before, token)
    owners = {fork.state.get_group(g)["owner"] for g in {j["group_id"] for j in jobs}}
    assert len(owners) == 2, "both instances executed groups from the shared queue"
    detected = [sum("SIGNAL DETECTED" in l for l in i.lines) for i in insts]
    assert detected == [12, 12], "each instance detects only its shard's leaders"
    assert all(i.proc.returncode == 0 for i in insts), [i.lines[-3:] for i in insts]


@pytest.mark.slow
def test_four_instances_one_killed_mid_job_reclaimed_and_completed_once(world4, redis_prefix):
    fork = world4
    proxies = followers(fork, 2)
    token = int(fork.world.market(0).token_id("Yes"))
    before = balances(fork, proxies, token)
    insts = start(fork, 4, URL, redis_prefix, faults={3: {"COPYTRADE_FAULT_KILL_AT": "push"}})
    restarted = None
    try:
        keys = _fire(fork, batches=2, per_batch=8)
        assert insts[3].proc.wait(60) == -signal.SIGKILL, "the fault should have SIGKILLed instance 3"
        injected("instance SIGKILLed (Redis mode)")
        fleet3 = {w.lower() for w in _fleet_addresses(fork, 3)}
        # Its half-done groups are reclaimed by the live instances after the lease, on its adopted workers.
        wait(lambda: any("adopting worker" in l for i in insts[:3] for l in i.lines), 60, "a reclaim", insts)
        stuck = lambda: [g for g in fork.state.list_groups(500) if g["worker"] and g["worker"].lower() in fleet3
                         and g["status"] != "complete"]
        wait(lambda: not stuck(), 90, "instance 3's groups finished by the others", insts)
        # Restart it (as a process manager would): its shard's later fills are detected from its cursor.
        restarted = Instance(fork, 3, 4, URL, redis_prefix)
        restarted.wait_ready()
        wait(lambda: sum(j["status"] == "complete" for j in jobs_of(fork, proxies)) >= len(keys) * 2, 120,
             "every copy complete", insts[:3] + [restarted])
        time.sleep(1.0)
    finally:
        for i in insts + ([restarted] if restarted else []):
            i.stop()
    check_exactly_once(fork, proxies, keys, before, token)
    adopted = [l for i in insts[:3] for l in i.lines if "adopting worker" in l]
    assert adopted, "a live instance finished the killed instance's group"


def _fleet_addresses(fork, index: int) -> list[str]:
    from copytrade_cli.chain.accounts import worker_accounts

    s = make_settings(fork.settings.home, COPY_TRADING_WORKER_INDEX=str(index), SUPERVISOR_WORKER_POOL_SIZE=str(POOL))
    return [a.address for a in worker_accounts(s)]


def test_caps_hold_across_instances_under_concurrency(world4, redis_prefix):
    """Two instances (in process, each with its own state connection and fleet) race 50 fills for one
    follower's 5 USD daily cap: exactly 5 copies pass, on chain too."""
    from copytrade_cli.polymarket.fills import LeaderFill
    from copytrade_cli.state import State
    from copytrade_cli.supervisor.runner import Supervisor, SupervisorOptions

    fork = world4
    clear_follows(fork)
    p = new_follower(fork, usdc=100)
    for leader in LEADERS[:2]:
        add_follow(fork.state, follower=p, leader=leader, amount="1")
    token = fork.world.market(2).token_id("Yes")
    before = erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(p).call()
    sups = []
    for i in range(2):
        s = make_settings(fork.settings.home, SUPERVISOR_REDIS_URL=URL, SUPERVISOR_REDIS_PREFIX=redis_prefix,
                          COPY_TRADING_WALLET_DAILY_CAP_USD="5", COPY_TRADING_WORKER_INDEX=str(i),
                          SUPERVISOR_WORKER_POOL_SIZE=str(POOL), SUPERVISOR_LEASE_MS=str(LEASE_MS),
                          SUPERVISOR_SHARD_COUNT="2", SUPERVISOR_SHARD_INDEX=str(i))
        sup = Supervisor(s, State(s.state_path), fork.chain, say=lambda _l: None,
                         options=SupervisorOptions(channels=(), reimburse_every_s=0.3))
        sup.start()
        threading.Thread(target=sup.run, daemon=True).start()
        sups.append(sup)
    fills = [LeaderFill(leader=LEADERS[i % 2], tx_hash="0x" + f"{i + 7000:064x}", token_id=token, side="BUY",
                        shares_micro=2_000_000, usd_micro=1_000_000, price=Decimal("0.5"), source="test")
             for i in range(50)]
    try:
        threads = [threading.Thread(target=sups[i % 2].on_fill, args=(f,)) for i, f in enumerate(fills)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        jobs = jobs_of(fork, [p])
        assert len(jobs) == 50
        assert sum(j["status"] != "skipped" for j in jobs) == 5
        assert all("cap" in (j["reason"] or "") for j in jobs if j["status"] == "skipped")
        wait(lambda: sum(j["status"] == "complete" for j in jobs_of(fork, [p])) == 5, 60, "5 copies")
    finally:
        for sup in sups:
            sup.stop_event.set()
        time.sleep(1.5)
    assert before - erc20(fork.w3, fork.world.exchange_collateral).functions.balanceOf(p).call() == 5_000_000


class PrivateRedis:
    """A redis-server this test starts (no persistence) and stops by its own PID; restartable on its port."""

    def __init__(self):
        from ..conftest import free_port

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.start()

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.mark.slow
def test_private_redis_restarted_mid_run_loses_nothing_acknowledged(world4):
    fork = world4
    proxies = followers(fork, 2)
    token = int(fork.world.market(0).token_id("Yes"))
    before = balances(fork, proxies, token)
    rds = PrivateRedis()
    insts = []
    try:
        insts = start(fork, 2, rds.url, "ct-restart:")
        keys = _fire(fork, batches=2, per_batch=8)
        wait(lambda: len(jobs_of(fork, proxies)) >= 8, 60, "fills recorded", insts)
        rds.stop()  # mid-run: queued entries, dedup keys, counters, worker keys all gone
        injected("Redis restarted (multi-instance)")
        keys += _fire(fork, batches=1, per_batch=8)  # fills while Redis is down: intake pauses on them
        time.sleep(1.5)
        rds.start()  # empty: the instances re-fill it from SQLite on reconnect
        wait(lambda: sum(j["status"] == "complete" for j in jobs_of(fork, proxies)) >= len(keys) * 2, 120,
             "every copy complete after the restart", insts)
        time.sleep(1.0)
    finally:
        for i in insts:
            i.stop()
        rds.stop()
    check_exactly_once(fork, proxies, keys, before, token)
    out = [l for i in insts for l in i.lines]
    assert any("Redis initialised" in l for l in out), "the restarted Redis was re-initialised from SQLite"
    assert sum("Redis reconnected" in l for l in out) == 2
    print("\n".join(l for l in out if "Redis initialised" in l))
