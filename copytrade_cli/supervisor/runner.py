"""The supervisor: detect -> dedup -> match -> size -> guardrails -> queue -> fleet -> execute -> record.

One stop event; signal handlers only set it. Start-up failures stop before anything runs; shutdown
always runs (stop intake, let running groups finish within a grace period, persist cursors).
Nothing lost: every decision is a row in `jobs` (unique per fill x follower) before it is queued; a full
queue is a recorded drop. Nothing doubled: the unique row and the group journal (see flows.py).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from ..errors import NotReadyError
from ..polymarket.fills import LeaderFill
from ..settings import Settings
from ..state import State
from .decide import Decision, FollowBook, Guardrails, decide
from .flows import FlowContext, Reimburser, run_group

log = logging.getLogger("copytrade.supervisor")
CHANNELS = ("mempool", "logs", "activity", "data_api")


@dataclass
class SupervisorOptions:
    """How to run: channels, aggregation, and when to stop (for demos and tests)."""

    channels: tuple[str, ...] = ("mempool", "logs", "activity")
    aggregate: bool = True
    reimburse_every_s: float = 2.0
    max_seconds: float | None = None
    exit_after_groups: int | None = None
    grace_s: float = 30.0
    data_api_poll_s: float = 2.0
    refuel_every_s: float = 15.0


@dataclass
class Metrics:
    """Counters the live view and the metrics endpoint read."""

    signals: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    jobs: dict[str, int] = field(default_factory=dict)
    drops: int = 0
    groups_done: int = 0
    latency_ms: list[float] = field(default_factory=list)


class TTLSet:
    """In-memory dedup with a TTL (the fast path; the durable rule is the unique job row). Remembers which
    channels saw each key, so a duplicate from a new channel can still be noted."""

    def __init__(self, ttl_s: float, max_items: int = 200_000):
        self.ttl, self.max = ttl_s, max_items
        self._d: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str, channel: str = "") -> tuple[bool, bool]:
        """(new key, new channel for this key) within the TTL."""
        now = time.time()
        with self._lock:
            while self._d and (next(iter(self._d.values()))[0] < now - self.ttl or len(self._d) > self.max):
                self._d.popitem(last=False)
            hit = self._d.get(key)
            if hit is not None:
                if channel in hit[1]:
                    return False, False
                hit[1].add(channel)
                return False, True
            self._d[key] = (now, {channel})
            return True, True


class Supervisor:
    """One supervisor instance on the embedded defaults (in-process queue, SQLite state)."""

    def __init__(self, settings: Settings, state: State, chain, *, options: SupervisorOptions | None = None,
                 say: Callable[[str], None] | None = None):
        self.settings, self.state, self.chain = settings, state, chain
        self.opts = options or SupervisorOptions()
        self.say = say or (lambda line: log.info(line))
        self.stop_event = threading.Event()
        self.metrics = Metrics()
        self.dedup = TTLSet(settings.supervisor_dedup_ttl_ms / 1000)
        self.book = FollowBook(state, shard_count=settings.supervisor_shard_count,
                               shard_index=settings.supervisor_shard_index)
        self.guardrails = Guardrails(settings, state)
        self.queue: queue.Queue[str] = queue.Queue(maxsize=settings.supervisor_queue_max_size)
        self._fill_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.channels: list = []
        self.fleet = None
        self.flow_ctx: FlowContext | None = None
        self.pool: ThreadPoolExecutor | None = None
        self._inflight = threading.Semaphore(max(1, settings.supervisor_fanout_concurrency))
        self._running = 0
        self._running_lock = threading.Lock()

    # --- start-up --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the fleet, check it, resume unfinished work, start channels and the dispatcher."""
        from ..chain.accounts import operator_account, worker_accounts
        from ..chain.deploy import addresses
        from ..polymarket.clob import ClobGateway
        from .fleet import Fleet

        w3 = self.chain.w3
        addrs = addresses(self.state, self.chain.network)
        executor = self.settings.executor_address or addrs.get("Executor")
        if not executor:
            raise NotReadyError(f"no Executor recorded on {self.chain.network}: run `copytrade deploy executor` "
                                "(or `copytrade fork up`)")
        world = self.chain.world
        collateral = world.collateral if world else self.settings.usdc_address
        ctf = world.ctf if world else self.settings.ctf_address
        exchange = world.exchange if world else _live_exchange(self.chain.chain_id)
        clob_url = self._clob_url()
        accounts = worker_accounts(self.settings)
        self.fleet = Fleet(w3, accounts, clob_factory=lambda a: ClobGateway(clob_url, self.chain.chain_id, a.key.hex()
                                                                            if isinstance(a.key, bytes) else a.key,
                                                                            exchange))
        from ..chain.deploy import contract

        ex = contract(w3, "Executor", executor)
        registered = {w.address.lower() for w in self.fleet.workers if ex.functions.isWorker(w.address).call()}
        st = self.fleet.status(registered)
        self.say(f"Fleet: {st['ready']}/{st['total']} ready")
        if st["ready"] == 0:
            raise NotReadyError("no worker is ready (registered on the Executor and holding gas): run "
                                "`copytrade deploy executor` and fund the fleet")
        # Derive CLOB credentials up front so the first copy does not pay for it.
        for w in self.fleet.workers:
            w.clob.ensure_creds()
        self.flow_ctx = FlowContext(w3=w3, state=self.state, executor=executor, collateral=collateral, ctf=ctf,
                                    report=self._report, max_retries=self.settings.copy_trading_max_retry_attempts,
                                    guardrails=self.guardrails, fault_kill_at=self.settings.fault_kill_at)
        self.pool = ThreadPoolExecutor(max_workers=len(self.fleet), thread_name_prefix="exec")
        try:
            self.funder = operator_account(self.settings)
        except Exception:  # noqa: BLE001 — refuel is optional without an operator key
            self.funder = None
        self._resume()
        self._start_channels(exchange, ctf, world)
        self._spawn(self._dispatch_loop, "dispatcher")
        self._spawn(self._reimburse_loop, "reimburser")
        self._spawn(self._refresh_loop, "config-refresh")
        if self.funder is not None:
            self._spawn(self._refuel_loop, "auto-refuel")
        self.say(f"[TaskQueue] ready: max {self.settings.supervisor_queue_max_size} groups, drain every "
                 f"{self.settings.supervisor_queue_drain_interval_ms} ms, fan-out "
                 f"{self.settings.supervisor_fanout_concurrency}; watching {len(self.book.leaders())} leaders via "
                 f"{', '.join(c.name_ for c in self.channels)}")

    def _clob_url(self) -> str:
        if self.settings.clob_url:
            return self.settings.clob_url
        if self.chain.is_local:
            rec = self.state.get_node()
            if not rec or not rec.clob_url:
                raise NotReadyError("the local CLOB is not running: `copytrade fork up` starts it "
                                    "(or `copytrade clob serve`)")
            return rec.clob_url
        return "https://clob.polymarket.com"

    def _start_channels(self, exchange: str, ctf: str, world) -> None:
        from .detect import ActivityChannel, DataApiChannel, LogChannel, MempoolChannel

        leaders = self.book.leaders
        rpc = self.chain.rpc_url
        exchanges = [exchange]
        if not self.chain.is_local:
            from ..polymarket.addresses import polymarket_addresses

            exchanges = list(polymarket_addresses(self.chain.chain_id).exchanges)
        rec = self.state.get_node() if self.chain.is_local else None
        for name in self.opts.channels:
            if name == "mempool":
                ch = MempoolChannel(self.on_fill, leaders, self.stop_event, rpc_url=rpc, exchanges=exchanges, ctf=ctf,
                                    chain_id=self.chain.chain_id)
            elif name == "logs":
                ch = LogChannel(self.on_fill, leaders, self.stop_event, rpc_url=rpc, exchanges=exchanges,
                                state=self.state, cursor_name=f"logs:{self.chain.network}", world=world)
            elif name == "activity":
                url = self.settings.activity_ws_url or (rec.feed_url if rec else None) or \
                    "wss://ws-live-data.polymarket.com"
                ch = ActivityChannel(self.on_fill, leaders, self.stop_event, url=url,
                                     filter_by_address=self.settings.supervisor_ws_filter_by_address)
            elif name == "data_api":
                url = self.settings.data_api_url or (rec.clob_url if rec else None) or "https://data-api.polymarket.com"
                ch = DataApiChannel(self.on_fill, leaders, self.stop_event, url=url, state=self.state,
                                    poll_s=self.opts.data_api_poll_s)
            else:
                raise ValueError(f"unknown channel {name!r}; use {', '.join(CHANNELS)}")
            self.channels.append(ch)
            ch.start()

    def _spawn(self, fn, name: str) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # --- detect -> decide -> queue ----------------------------------------------------------------------
    def on_fill(self, fill: LeaderFill) -> None:
        """A channel saw a leader fill: dedup, decide for every follower, record, queue."""
        self.metrics.signals[fill.source] = self.metrics.signals.get(fill.source, 0) + 1
        key = signal_key(fill)
        new_key, new_channel = self.dedup.add(key, fill.source)
        if not new_key:
            self.metrics.duplicates += 1
            if new_channel and self.state.get_signal(key):
                self.state.record_signal({"fill_key": key, "channel": fill.source})
            return
        # A follow copies fills from the moment it exists, never a leader's earlier trades.
        when = _iso(fill.timestamp if fill.timestamp else fill.seen_at)
        follows = [f for f in self.book.followers_of(fill.leader) if f.created_at <= when]
        if not follows:
            return
        with self._fill_lock:
            new = self.state.record_signal({
                "fill_key": key, "leader": fill.leader, "tx_hash": fill.tx_hash, "log_index": fill.log_index,
                "token_id": fill.token_id, "condition_id": fill.condition_id, "side": fill.side,
                "shares": str(fill.shares), "price": None if fill.price is None else str(fill.price),
                "usd": None if fill.usd is None else str(fill.usd), "channel": fill.source,
                "detected_ms": fill.seen_at * 1000})
            if new:
                px = f" @ {fill.price}" if fill.price is not None else ""
                self.say(f"🚨 SIGNAL DETECTED via {fill.source}: {fill.leader} {fill.side} {fill.shares:.2f} shares"
                         f"{px} (tx {fill.tx_hash[:18]}…)")
            self._decide_and_queue(fill, follows)

    def _decide_and_queue(self, fill: LeaderFill, follows) -> None:
        from ..chain.proxies import erc20, erc1155

        w3 = self.chain.w3
        ctx = self.flow_ctx
        balances, positions, before = {}, {}, None
        if fill.side == "BUY":
            if any(f.sizing == "percent" or f.flow == "standard" for f in follows):
                tok = erc20(w3, ctx.collateral)
                for f in follows:
                    balances[f.follower.lower()] = tok.functions.balanceOf(f.follower).call()
        else:
            ctf = erc1155(w3, ctx.ctf)
            ids = [int(fill.token_id)] * len(follows)
            bals = ctf.functions.balanceOfBatch([f.follower for f in follows], ids).call()
            positions = {f.follower.lower(): b for f, b in zip(follows, bals)}
            held_now = ctf.functions.balanceOf(fill.leader, int(fill.token_id)).call()
            # A mined fill already left the leader's balance; a pending one has not.
            before = held_now + fill.shares_micro if fill.block_number is not None or fill.source != "mempool" \
                else held_now
        decision: Decision = decide(fill, follows, settings=self.settings, is_local=self.chain.is_local,
                                    balances=balances, positions=positions, leader_position_before=before)
        base = {"fill_key": signal_key(fill), "leader": fill.leader, "side": fill.side, "token_id": fill.token_id,
                "condition_id": fill.condition_id}
        for skip in decision.skips:
            jid = self.state.claim_job({**base, "follower": skip.follow.follower, "follow_id": skip.follow.id,
                                        "flow": skip.follow.flow, "status": "skipped", "reason": skip.reason})
            if jid is not None:
                self._count("skipped")
                self.say(f"Skipped copy for {skip.follow.follower}: {skip.reason}")
        legs_by_group: dict[tuple, list[dict[str, Any]]] = {}
        for cp in decision.copies:
            key = f"{signal_key(fill)}:{cp.follow.follower.lower()}"
            if cp.side == "BUY":
                ok, why = self.guardrails.reserve(cp.follow.follower, cp.usd_micro, key)
                if not ok:
                    jid = self.state.claim_job({**base, "follower": cp.follow.follower, "follow_id": cp.follow.id,
                                                "flow": cp.follow.flow, "status": "skipped", "reason": why,
                                                "usd": str(Decimal(cp.usd_micro) / 10**6)})
                    if jid is not None:
                        self._count("skipped")
                        self.say(f"Skipped copy for {cp.follow.follower}: {why}")
                    continue
            jid = self.state.claim_job({**base, "follower": cp.follow.follower, "follow_id": cp.follow.id,
                                        "flow": cp.follow.flow if cp.side == "BUY" else "standard",
                                        "status": "pending", "usd": str(Decimal(cp.usd_micro) / 10**6),
                                        "shares": str(Decimal(cp.shares_micro) / 10**6), "price": str(cp.price_limit)})
            if jid is None:
                continue  # this fill x follower already has its job: never twice
            flow = cp.follow.flow if cp.side == "BUY" else "standard"
            gkey = (flow, cp.side, str(cp.price_limit)) if self.opts.aggregate else (flow, cp.side, jid)
            legs_by_group.setdefault(gkey, []).append({"job_id": jid, "proxy": cp.follow.follower,
                                                       "usd_micro": cp.usd_micro, "shares_micro": cp.shares_micro,
                                                       "reserve_key": key if cp.side == "BUY" else None})
        n_jobs = sum(len(v) for v in legs_by_group.values())
        if n_jobs:
            self.say(f"Dispatching {n_jobs} jobs... ({len(legs_by_group)} group(s))")
        for (flow, side, extra), legs in legs_by_group.items():
            gid = uuid.uuid4().hex[:16]
            limit = extra if isinstance(extra, str) else str(next(c.price_limit for c in decision.copies
                                                                 if c.follow.follower == legs[0]["proxy"]))
            self.state.create_group({"group_id": gid, "fill_key": signal_key(fill), "flow": flow, "side": side,
                                     "token_id": fill.token_id, "condition_id": fill.condition_id,
                                     "price_limit": limit, "stage": "queued", "status": "queued",
                                     "legs_json": json.dumps(legs), "t_detected": fill.seen_at,
                                     "t_queued": time.time()}, [l["job_id"] for l in legs])
            self._enqueue(gid, len(legs))

    def _enqueue(self, gid: str, n: int) -> None:
        try:
            self.queue.put_nowait(gid)
            self._count("queued", n)
        except queue.Full:
            self.metrics.drops += n
            self.state.update_group(gid, status="dropped", stage="dropped", error="queue full")
            jobs = [r["id"] for r in self.state.list_jobs(group_id=gid, limit=10_000)]
            self.state.update_jobs(jobs, status="dropped", reason="queue full (SUPERVISOR_QUEUE_MAX_SIZE)")
            for key in [json.loads(self.state.get_group(gid)["legs_json"])]:
                for leg in key:
                    if leg.get("reserve_key"):
                        self.guardrails.release(leg["reserve_key"])
            self.say(f"[TaskQueue] FULL: dropped group {gid} ({n} jobs), recorded")

    def _count(self, what: str, n: int = 1) -> None:
        self.metrics.jobs[what] = self.metrics.jobs.get(what, 0) + n

    # --- execute -------------------------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        interval = self.settings.supervisor_queue_drain_interval_ms / 1000
        while not self.stop_event.is_set():
            try:
                gid = self.queue.get(timeout=interval)
            except queue.Empty:
                continue
            self._inflight.acquire()
            with self._running_lock:
                self._running += 1
            self.pool.submit(self._execute, gid)

    def _execute(self, gid: str, worker_address: str | None = None) -> None:
        try:
            group = self.state.get_group(gid)
            if group is None:
                return
            with self.fleet.checkout(worker_address or group.get("worker")) as w:
                status = run_group(self.flow_ctx, group, w)
            self._count(status)
            if status in ("complete", "refunded", "failed"):
                self.metrics.groups_done += 1
                g = self.state.get_group(gid)
                if g and g.get("t_order_accepted") and g.get("t_detected"):
                    self.metrics.latency_ms.append((g["t_order_accepted"] - g["t_detected"]) * 1000)
        except Exception:  # noqa: BLE001 — the group stays journalled; resume() picks it up
            log.exception("group %s failed unexpectedly", gid)
        finally:
            with self._running_lock:
                self._running -= 1
            self._inflight.release()

    def _resume(self) -> None:
        """Finish what a previous run left open (crash, kill): continue or refund, never repeat."""
        self._regroup_orphans()
        open_groups = self.state.unfinished_groups()
        if not open_groups:
            return
        self.say(f"[TaskQueue] resuming {len(open_groups)} unfinished group(s) from the journal")
        for g in open_groups:
            self._inflight.acquire()
            with self._running_lock:
                self._running += 1
            self._execute(g["group_id"])

    def _regroup_orphans(self) -> None:
        """Jobs claimed but not yet grouped when the process died: group them now (nothing accepted is lost)."""
        orphans = [j for j in self.state.list_jobs(status="pending", limit=100_000) if not j.get("group_id")]
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for j in orphans:
            groups.setdefault((j["fill_key"], j["flow"], j["side"], j["price"], j["token_id"], j["condition_id"]),
                              []).append(j)
        for (fill_key, flow, side, price, token, cond), jobs in groups.items():
            legs = [{"job_id": j["id"], "proxy": j["follower"],
                     "usd_micro": int(Decimal(j["usd"] or 0) * 10**6) if side == "BUY" else 0,
                     "shares_micro": int(Decimal(j["shares"] or 0) * 10**6) if side == "SELL" else 0,
                     "reserve_key": f"{fill_key}:{j['follower'].lower()}" if side == "BUY" else None} for j in jobs]
            sig = self.state.get_signal(fill_key) or {}
            self.state.create_group({"group_id": uuid.uuid4().hex[:16], "fill_key": fill_key, "flow": flow,
                                     "side": side, "token_id": token, "condition_id": cond, "price_limit": price,
                                     "stage": "queued", "status": "queued", "legs_json": json.dumps(legs),
                                     "t_detected": (sig.get("detected_ms") or 0) / 1000 or None,
                                     "t_queued": time.time()}, [j["id"] for j in jobs])

    def _reimburse_loop(self) -> None:
        r = Reimburser(self.flow_ctx, self.fleet)
        while not self.stop_event.wait(self.opts.reimburse_every_s):
            try:
                r.run_once()
            except Exception:  # noqa: BLE001
                log.exception("reimbursement round failed; debts stay open and are retried")

    def _refuel_loop(self) -> None:
        """Auto-refuel: top up any worker whose gas fell below the threshold, from the operator (funder)."""
        from ..chain.tx import TxLane
        from .fleet import REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI

        lane = TxLane(self.chain.w3, self.funder)
        while not self.stop_event.wait(self.opts.refuel_every_s):
            try:
                topped = self.fleet.refuel(lane, REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI)
                if topped:
                    self.say(f"[Fleet] auto-refuel: topped up {len(topped)} worker(s)")
            except Exception as exc:  # noqa: BLE001 — a funder without gas must not stop the supervisor
                log.warning("auto-refuel failed: %s", str(exc)[:160])

    def _refresh_loop(self) -> None:
        s = self.settings
        last_full = time.time()
        while not self.stop_event.wait(s.supervisor_config_refresh_ms / 1000):
            try:
                if time.time() - last_full >= s.supervisor_config_full_refresh_ms / 1000:
                    self.book.full_refresh()
                    last_full = time.time()
                else:
                    self.book.refresh()
            except Exception:  # noqa: BLE001
                log.exception("follow-config refresh failed")

    def _report(self, gid: str, step: str, detail: str) -> None:
        tag = "✅ " if step == "Job Complete" else ""
        self.say(f"[CopyExec {gid[:8]}] {tag}{step}: {detail}")

    # --- run / stop ----------------------------------------------------------------------------------------
    def run(self) -> Metrics:
        """Block until stopped (signal, max_seconds or exit_after_groups), then shut down cleanly."""
        t0 = time.time()
        try:
            while not self.stop_event.is_set():
                if self.opts.max_seconds is not None and time.time() - t0 >= self.opts.max_seconds:
                    break
                if self.opts.exit_after_groups is not None and self.metrics.groups_done >= self.opts.exit_after_groups \
                        and self.queue.empty() and self._running == 0:
                    break
                time.sleep(0.05)
        finally:
            self.shutdown()
        return self.metrics

    def shutdown(self) -> None:
        """Stop intake, let running groups finish within the grace period, stop threads."""
        self.stop_event.set()
        deadline = time.time() + self.opts.grace_s
        while self._running > 0 and time.time() < deadline:
            time.sleep(0.05)
        if self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.fleet and self.flow_ctx and self.state.open_debts():
            try:
                Reimburser(self.flow_ctx, self.fleet).run_once()
            except Exception:  # noqa: BLE001
                log.warning("final reimbursement round failed; debts are repaid at next start")


def signal_key(fill: LeaderFill) -> str:
    """The supervisor's dedup key: the leader plus the fill's canonical key, so two leaders with identical
    fills in one transaction stay two signals."""
    return f"{fill.leader.lower()}:{fill.key}"


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds")


def _live_exchange(chain_id: int) -> str:
    from ..polymarket.addresses import polymarket_addresses

    return polymarket_addresses(chain_id).exchange_v2
