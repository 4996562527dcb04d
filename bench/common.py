"""Shared bench helpers: the conditions header every bench prints, a private fork (library `fork up` in a
temp COPYTRADE_HOME, stopped by PID), bulk follower proxies, percentiles, CPU accounting."""
from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PY = sys.executable


# ------------------------------------------------------------------------------------------ conditions
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def anvil_version() -> str:
    from copytrade_cli.chain.node import find_bin

    try:
        out = subprocess.run([str(find_bin("anvil")), "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0]
    except Exception as exc:  # noqa: BLE001
        return f"? ({exc})"


def git_rev() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except Exception:  # noqa: BLE001
        return "?"


def conditions(**counts: Any) -> dict[str, Any]:
    """Where and when a figure was measured, plus the bench's own counts."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = os.getloadavg()
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {platform.machine()} ({_cpu_model()})",
        "cores": f"{usable} usable of {os.cpu_count()}",
        "load_before": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "python": platform.python_version(),
        "node": anvil_version(),
        "commit": git_rev(),
        **counts,
    }


def print_header(title: str, **counts: Any) -> dict[str, Any]:
    cond = conditions(**counts)
    print(f"\n=== {title} ===")
    for k, v in cond.items():
        print(f"  {k:<18}: {v}")
    sys.stdout.flush()
    return cond


def row(label: str, value: Any, width: int = 44) -> None:
    print(f"  {label:<{width}} {value}")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------ statistics
def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank, p in 0..100)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def med(values: Iterable[float]) -> float:
    v = list(values)
    return statistics.median(v) if v else float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants, from /proc."""
    total, todo, seen = 0.0, [pid], set()
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


# ------------------------------------------------------------------------------------------ the fork
class BenchFork:
    """`fork up` through the library in a private COPYTRADE_HOME (anvil + planted Polymarket + Executor/Factory
    + funded fleet + local CLOB process); `close()` stops exactly those processes, by PID."""

    def __init__(self, *, clob: bool = True, block_time: float | None = None, watch: bool = True, **env: str):
        from copytrade_cli.runbook.fork import LOCAL_NETWORK, fork_up
        from copytrade_cli.chain.network import connect_network
        from copytrade_cli.settings import Settings
        from copytrade_cli.state import open_state

        self.home = Path(tempfile.mkdtemp(prefix="ct-bench-"))
        self.env = {"COPYTRADE_HOME": str(self.home), **env}
        self.settings = Settings(**self.env)
        self.state = open_state(self.settings)
        t0 = time.perf_counter()
        self.report = fork_up(self.settings, self.state, clob=clob, block_time=block_time)
        self.fork_up_s = time.perf_counter() - t0
        self.chain = connect_network(self.settings, self.state, LOCAL_NETWORK)
        self.network = LOCAL_NETWORK
        # With interval mining the node mines on its own clock: the watchdog then only guards memory.
        self.watch = NodeWatch(self.chain.rpc_url, self.state.get_node().pid, kick=block_time is None) \
            if watch else None

    def setup_fleet(self, clob_url: str) -> None:
        """For a fork started with `clob=False` and a CLOB of the bench's own: the local relayer and `fleet setup`
        (deposit wallets, approvals, pUSD float) against that CLOB, as `fork up` does with its own."""
        from copytrade_cli.localworld.relayer_server import spawn as spawn_relayer
        from copytrade_cli.runbook.fork import setup_fleet

        url, pid = spawn_relayer(self.settings)
        self.state.update_node("default", clob_url=clob_url, relayer_url=url, relayer_pid=pid)
        setup_fleet(self.settings, self.state, lambda *a: None, lambda *_a: None)

    @property
    def w3(self):
        return self.chain.w3

    @property
    def world(self):
        return self.chain.world

    @property
    def node_pid(self) -> int:
        return self.state.get_node().pid

    @property
    def clob_pid(self) -> int | None:
        return self.state.get_node().clob_pid

    @property
    def rpc_url(self) -> str:
        return self.chain.rpc_url

    def close(self) -> None:
        from copytrade_cli.runbook.fork import fork_down

        if self.watch is not None:
            self.watch.stop()
        try:
            fork_down(self.state)
        finally:
            self.state.close()

    def __enter__(self) -> "BenchFork":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_followers(fork: BenchFork, n: int, usdc: int = 1000, start_index: int = 1000) -> list[str]:
    """`n` follower proxies (fresh owners), created and funded with pipelined transactions; returns addresses."""
    from eth_account import Account

    from copytrade_cli.chain.accounts import derive_keys, operator_account
    from copytrade_cli.chain.cheats import Cheats
    from copytrade_cli.chain.lanes import floor_fees
    from copytrade_cli.chain.contracts import contract
    from copytrade_cli.chain.proxies import erc20
    from copytrade_cli.chain.lanes import TxLane
    from copytrade_cli.chain.rpc import wait_receipt
    from copytrade_cli.settings import DEV_MNEMONIC
    from copytrade_cli.state import ProxyRecord

    w3 = fork.w3
    factory_addr = fork.report.addresses["ProxyFactory"]
    factory = contract(w3, "ProxyFactory", factory_addr)
    lane = TxLane(w3, operator_account(fork.settings))
    owners = [Account.from_key(k).address for k in derive_keys(DEV_MNEMONIC, list(range(start_index, start_index + n)))]
    hashes = [lane.send({"to": factory_addr, "data": factory.encode_abi("createProxy", args=[o])}, gas=400_000)
              for o in owners]
    for h in hashes:
        wait_receipt(w3, h, timeout=300)
    proxies = [factory.functions.proxyOf(o).call() for o in owners]
    for o, p in zip(owners, proxies):
        fork.state.record_proxy(ProxyRecord(network=fork.network, address=p, owner=o, factory=factory_addr))
    if usdc:
        world = fork.world
        token = erc20(w3, world.exchange_collateral)
        cheats = Cheats(w3)
        cheats.set_balance(world.whale, 10**22)
        cheats.impersonate(world.whale)
        try:
            hs = [w3.eth.send_transaction({"from": world.whale, "to": world.exchange_collateral, "gas": 100_000, **floor_fees(w3),
                                           "data": token.encode_abi("transfer", args=[p, usdc * 10**6])})
                  for p in proxies]
        finally:
            cheats.stop_impersonating(world.whale)
        for h in hs:
            wait_receipt(w3, "0x" + bytes(h).hex(), timeout=300)
    return proxies


def add_follows(fork: BenchFork, proxies: list[str], leader: str, *, amount: str = "1", flow: str = "standard",
                created_at: str | None = None) -> None:
    """Follow configs (fixed `amount` USD) of every proxy on `leader`, written in one transaction."""
    from copytrade_cli.state import Follow, now_iso
    from dataclasses import asdict

    stamp = created_at or now_iso()
    rows = []
    for p in proxies:
        f = Follow(follower=p, leader=leader, sizing="fixed", amount=amount, flow=flow, created_at=stamp,
                   updated_at=stamp)
        r = asdict(f)
        r.pop("id")
        rows.append(r)
    fork.state.db["follows"].insert_all(rows, replace=True)


def clear_follows(fork: BenchFork) -> None:
    fork.state.db.execute("delete from follows")


def supervise_proc(fork: BenchFork, *args: str, env: dict[str, str] | None = None,
                   log_path: Path | None = None) -> tuple[subprocess.Popen, Path]:
    """`copytrade supervise` in its own process (its own GIL), output to a log file; returns (proc, log)."""
    log_path = log_path or fork.home / f"supervise-{int(time.time() * 1000)}.log"
    e = dict(os.environ, **fork.env, PYTHONUNBUFFERED="1", **(env or {}))
    fh = open(log_path, "w")
    proc = subprocess.Popen([PY, "-m", "copytrade_cli", "supervise", *args], env=e, stdout=fh,
                            stderr=subprocess.STDOUT, cwd=ROOT)
    fh.close()
    return proc, log_path


def wait_for_line(log_path: Path, needle: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        if needle in text:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"supervisor exited ({proc.returncode}) before '{needle}':\n{text[-3000:]}")
        time.sleep(0.1)
    raise RuntimeError(f"'{needle}' not seen within {timeout:.0f}s:\n{log_path.read_text(errors='replace')[-3000:]}")


def stop_proc(proc: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM our own child by PID and wait (SIGKILL if it does not stop)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _child_pids(pid: int) -> list[int]:
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return out


def rss_mb(pid: int) -> int:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in [pid, *_child_pids(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) // 1024
        except OSError:
            pass
    return total


class NodeWatch:
    """Watchdog for the bench's anvil.

    anvil's automine can miss ready transactions when nonces of one sender arrive out of order over
    concurrent connections (foundry-rs/foundry#10122): they then sit in the pool until something else is
    mined, and on this anvil (1.7.1) the node also stops automining new ones and its memory grows by ~60 MB/s.
    A real chain includes ready transactions in its next block, so when ready transactions have waited
    `stall_s` without a new block, the watchdog mines one (`evm_mine`) and counts it (`kicks`, printed by
    every bench). It also stops the bench if the node's memory passes `max_rss_mb` (shared machines)."""

    def __init__(self, rpc_url: str, node_pid: int | None, *, stall_s: float = 0.3, period_s: float = 0.1,
                 max_rss_mb: int = 4000, kick: bool = True):
        import threading

        import requests

        self.url, self.pid, self.stall_s, self.period_s, self.max_rss_mb = rpc_url, node_pid, stall_s, period_s, max_rss_mb
        self.kicks = 0
        self.kick = kick
        self.peak_rss_mb = 0
        self.too_big = False
        self._s = requests.Session()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="node-watch", daemon=True)
        self._t.start()

    def _rpc(self, method: str, params: list | None = None):
        r = self._s.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []},
                         timeout=5)
        return r.json().get("result")

    def _run(self) -> None:
        last_block, since = None, time.time()
        n = 0
        while not self._stop.wait(self.period_s):
            try:
                if not self.kick:
                    raise StopIteration  # memory guard only
                block = int(self._rpc("eth_blockNumber"), 16)
                st = self._rpc("txpool_status") or {}
                pending = int(st.get("pending", "0x0"), 16)
                if block != last_block or not pending:
                    last_block, since = block, time.time()
                elif time.time() - since >= self.stall_s:
                    self._rpc("evm_mine")
                    self.kicks += 1
                    since = time.time()
            except (Exception, StopIteration):  # noqa: BLE001 — the node may be busy or stopping
                pass
            n += 1
            if self.pid and n % 10 == 0:
                r = rss_mb(self.pid)
                self.peak_rss_mb = max(self.peak_rss_mb, r)
                if r > self.max_rss_mb and not self.too_big:
                    # protect the shared machine: stop our own node (by PID: the npm wrapper and its child)
                    import signal

                    self.too_big = True
                    print(f"  !! anvil RSS {r} MB > {self.max_rss_mb} MB: stopping it (PID {self.pid})", flush=True)
                    for p in [*_child_pids(self.pid), self.pid]:
                        try:
                            os.kill(p, signal.SIGKILL)
                        except OSError:
                            pass

    def stop(self) -> None:
        self._stop.set()
        self._t.join(5)


class LeaderDriver:
    """Leader fills at a steady rate without waiting for them to be mined: each tick signs `batch` leader orders
    against the market maker into one `matchOrders` and broadcasts it on the trade operator's pipelined lane
    (what Polymarket's operator does), recording when each transaction entered the node's pool."""

    def __init__(self, fork: BenchFork, fills_per_s: float, *, batch: int = 1, usd: float = 1.0,
                 market_index: int = 0, leader: str | None = None):
        import threading

        self.fork, self.rate, self.batch, self.usd = fork, fills_per_s, max(1, batch), usd
        self.market_index = market_index
        self.leader = leader or fork.world.leader
        self.sent: dict[str, float] = {}  # tx hash (lowercase) -> time.time() when the node accepted it
        self.fills = 0
        self.errors = 0
        self.last_error = ""
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def _one_tx(self, n: int, client) -> dict:
        from copytrade_cli.localworld.trades import _key_of, _price, _shares_for, _signed
        from copytrade_cli.localworld.world import DEV_KEYS, MARKET_MAKER
        from decimal import Decimal

        world = self.fork.world
        market = world.market(self.market_index)
        token = market.token_id("Yes")
        p = _price("0.5", market.tick_size)
        key = _key_of(self.leader)
        legs = []
        for i in range(self.batch):
            shares = _shares_for(self.usd, p) + ((n + i) % 97) * 10_000
            legs.append((shares, int(Decimal(shares) * p)))
        makers = [_signed(key, world, token, "BUY", s, u) for s, u in legs]
        total_s, total_u = sum(s for s, _ in legs), sum(u for _, u in legs)
        taker = _signed(DEV_KEYS[MARKET_MAKER], world, token, "SELL", total_s, total_u)
        return client.build_tx(market.condition_id, taker, makers, total_s, [u for _, u in legs])

    def _run(self) -> None:
        from copytrade_cli.localworld.trades import _client
        from copytrade_cli.localworld.world import DEV_KEYS, TRADE_OPERATOR

        client = _client(self.fork.w3, self.fork.world, DEV_KEYS[TRADE_OPERATOR])
        interval = self.batch / self.rate
        nxt = time.time()
        n = 0
        while not self._stop.is_set():
            try:
                tx = self._one_tx(n, client)
                h = client.send(tx)
                self.sent[h.lower()] = time.time()
                self.fills += self.batch
            except Exception as exc:  # noqa: BLE001 — counted and shown
                self.errors += 1
                self.last_error = str(exc)[:200]
            n += self.batch
            nxt += interval
            d = nxt - time.time()
            if d > 0:
                self._stop.wait(d)
            elif d < -1:
                nxt = time.time()  # the driver fell behind: do not burst

    def start(self) -> "LeaderDriver":
        import threading

        self._t = threading.Thread(target=self._run, name="leader-driver", daemon=True)
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._t is not None:
            self._t.join(30)
