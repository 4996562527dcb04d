"""The supervisor: detect -> dedup -> match -> size -> guardrails -> queue -> fleet -> execute -> record.

One stop event; signal handlers only set it. Start-up failures stop before anything runs; shutdown
always runs (stop intake, let running groups finish within a grace period, persist cursors).
Nothing lost: every decision is a row in `jobs` (unique per fill x follower) before it is queued; a full
queue is a recorded drop. Nothing doubled: the unique row and the group journal (see flows.py).
"""
from __future__ import annotations

import functools
import json
import logging
import os
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
from .backends import Delivery, MemoryQueue
from .decide import Decision, FollowBook, Guardrails, decide
from .flows import FlowContext, Reimburser, run_group

log = logging.getLogger("copytrade.supervisor")
CHANNELS = ("mempool", "logs", "activity", "data_api")


@dataclass
class SupervisorOptions:
    """How to run: channels, aggregation, and when to stop (for demos and tests)."""

    channels: tuple[str, ...] = ("mempool", "logs", "activity")
    aggregate: bool = True
    coalesce: bool = True  # in process, under backlog: queued fills of the same order join a starting group
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

    def done(self, key: str) -> None:
        """Nothing to mark in process (the set lives as long as the process)."""


class Supervisor:
    """One supervisor instance on the embedded defaults (in-process queue, SQLite state)."""

    def __init__(self, settings: Settings, state: State, chain, *, options: SupervisorOptions | None = None,
                 say: Callable[[str], None] | None = None):
        self.settings, self.state, self.chain = settings, state, chain
        self.opts = options or SupervisorOptions()
        self.say = say or (lambda line: log.info(line))
        self.stop_event = threading.Event()
        self.metrics = Metrics()
        self.book = FollowBook(state, shard_count=settings.supervisor_shard_count,
                               shard_index=settings.supervisor_shard_index)
        # NOTE: queue, dedup and guardrail counters sit behind small interfaces (backends.py): in process by
        # default, on Redis (redis_backend.py) when a Redis URL is set, so several instances share them.
        from .redis_backend import instance_id

        self.instance_id = instance_id()
        self.scale = None
        if settings.redis:
            from .redis_backend import ScaleOut

            self.scale = ScaleOut(settings, state, self.instance_id, on_dead=self._on_dead_letter)
            self.dedup = self.scale.dedup
            self.guardrails = Guardrails(settings, state, store=self.scale.caps)
            self.queue = self.scale.queue
        else:
            self.dedup = TTLSet(settings.supervisor_dedup_ttl_ms / 1000)
            self.guardrails = Guardrails(settings, state)
            self.queue = MemoryQueue(settings.supervisor_queue_max_size)
        from .observe import SupervisorMetrics

        self.prom = SupervisorMetrics(self)
        self.worker_gas: dict[str, int] = {}
        self._held: dict[str, Delivery] = {}  # group id -> delivery, while this instance runs it (Redis mode)
        self._held_lock = threading.Lock()
        self.status = "starting"
        self._fill_lock = threading.RLock()
        self._deferred: list[tuple[str, int]] | None = None  # groups to queue once the open batch commits
        self._prefetched: dict[str, tuple] = {}  # fill key -> chain inputs read before the batch's transaction
        self._threads: list[threading.Thread] = []
        self.channels: list = []
        self.fleet = None
        self.flow_ctx: FlowContext | None = None
        self.pool: ThreadPoolExecutor | None = None
        self._bg_stop = threading.Event()  # background upkeep (leases, health, reconnect) outlives intake
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

        # NOTE: the readiness pre-flight runs before this, in runbook.supervise (the supervisor never imports it).
        if self.scale is not None:
            self.scale.link.connect()  # start-up failure (Redis unreachable) stops before anything runs
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
                                                                            exchange),
                           per_worker=self.settings.supervisor_groups_per_worker)
        from ..chain.deploy import contract

        ex = contract(w3, "Executor", executor)
        registered = {w.address.lower() for w in self.fleet.workers if ex.functions.isWorker(w.address).call()}
        st = self.fleet.status(registered)
        self.say(f"Fleet: {st['ready']}/{st['total']} ready")
        if st["ready"] == 0:
            raise NotReadyError("no worker is ready (registered on the Executor and holding gas): run "
                                "`copytrade deploy executor` and fund the fleet")
        if self.scale is not None:
            # Two instances must never share a nonce lane: hold one Redis key per worker, or refuse to start.
            self.scale.registry.acquire_fleet([w.address for w in self.fleet.workers],
                                              wait_s=2 * self.settings.supervisor_lease_ms / 1000)
            # Read no more groups than there are workers, so idle instances get the rest of the stream.
            self._inflight = threading.Semaphore(max(1, min(self.settings.supervisor_fanout_concurrency,
                                                            len(self.fleet) * self.fleet.per_worker)))
        self.worker_gas = {r["address"]: r["gas_wei"] for r in st["workers"]}
        self._clob_factory = (lambda a: ClobGateway(
            clob_url, self.chain.chain_id, a.key.hex() if isinstance(a.key, bytes) else a.key, exchange))
        # Derive CLOB credentials up front so the first copy does not pay for it.
        for w in self.fleet.workers:
            w.clob.ensure_creds()
        self.flow_ctx = FlowContext(w3=w3, state=self.state, executor=executor, collateral=collateral, ctf=ctf,
                                    report=self._report, max_retries=self.settings.copy_trading_max_retry_attempts,
                                    guardrails=self.guardrails, fault_kill_at=self.settings.fault_kill_at,
                                    on_step=self._on_step, coalesce=self.scale is None and self.opts.aggregate
                                    and self.opts.coalesce)
        # A group holds a dispatch slot (and its worker) only up to its order's outcome; the rest of it (settlement
        # mined, push) runs on in a settling slot, without the worker. Threads: every slot of both kinds.
        tails = max(50, 10 * len(self.fleet))
        self._tails = threading.Semaphore(tails)
        self.pool = ThreadPoolExecutor(max_workers=max(1, self.settings.supervisor_fanout_concurrency) + tails,
                                       thread_name_prefix="exec")
        try:
            self.funder = operator_account(self.settings)
        except Exception:  # noqa: BLE001 — refuel is optional without an operator key
            self.funder = None
        if self.scale is not None:
            self._spawn(lambda: self.scale.link.reconnect_loop(self._bg_stop), "redis-reconnect")
            self._spawn(self._lease_loop, "leases")
            self._resume_shared()
        else:
            self._resume()
        self._spawn(self._health_loop, "health")
        self._start_channels(exchange, ctf, world)
        self._spawn(self._dispatch_loop, "dispatcher")
        self._spawn(self._reimburse_loop, "reimburser")
        self._spawn(self._refresh_loop, "config-refresh")
        if self.funder is not None:
            self._spawn(self._refuel_loop, "auto-refuel")
        self.say(f"[TaskQueue] ready: max {self.settings.supervisor_queue_max_size} groups, drain every "
                 f"{self.settings.supervisor_queue_drain_interval_ms} ms, fan-out "
                 f"{self.settings.supervisor_fanout_concurrency}; watching {len(self.book.leaders())} leaders via "
                 f"{', '.join(c.name_ for c in self.channels)}"
                 + (f"; shared queue on Redis as {self.instance_id} (shard {self.settings.supervisor_shard_index}/"
                    f"{self.settings.supervisor_shard_count})" if self.scale is not None else ""))
        self.status = "ok"

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
        rpcs = list(getattr(self.chain.w3.provider, "urls", None) or [rpc])  # failover order (COPY_TRADING_RPC_URLS)
        if rpc in rpcs:
            rpcs = rpcs[rpcs.index(rpc):] + rpcs[:rpcs.index(rpc)]
        exchanges = [exchange]
        if not self.chain.is_local:
            from ..polymarket.addresses import polymarket_addresses

            exchanges = list(polymarket_addresses(self.chain.chain_id).exchanges)
        rec = self.state.get_node() if self.chain.is_local else None
        for name in self.opts.channels:
            if name == "mempool":
                ch = MempoolChannel(self.on_fill, leaders, self.stop_event, rpc_url=rpcs, exchanges=exchanges, ctf=ctf,
                                    chain_id=self.chain.chain_id)
            elif name == "logs":
                ch = LogChannel(self.on_fill, leaders, self.stop_event, rpc_url=rpcs, exchanges=exchanges,
                                state=self.state, cursor_name=self._log_cursor(), world=world,
                                ws_url=_ws_url(rpc))
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
            ch.on_fills = self.on_fills  # one state commit per poll's fills (group commit)
            self.channels.append(ch)
            ch.start()

    def _log_cursor(self) -> str:
        """The log channel's cursor: one per shard layout position, since instances sharing the state file
        advance their own. A new layout starts from the unsharded cursor (replays are safe: dedup + unique jobs)."""
        base = f"logs:{self.chain.network}"
        n, i = self.settings.supervisor_shard_count, self.settings.supervisor_shard_index
        if n <= 1:
            return base
        name = f"{base}:shard{i}of{n}"
        if self.state.get_cursor(name) is None and self.state.get_cursor(base) is not None:
            self.state.set_cursor(name, self.state.get_cursor(base))
        return name

    def _spawn(self, fn, name: str) -> None:
        t = threading.Thread(target=fn, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # --- detect -> decide -> queue ----------------------------------------------------------------------
    def on_fill(self, fill: LeaderFill) -> None:
        """A channel saw a leader fill: dedup, decide for every follower, record, queue."""
        self.metrics.signals[fill.source] = self.metrics.signals.get(fill.source, 0) + 1
        self.prom.signals.labels(fill.source).inc()
        key = signal_key(fill)
        new_key, new_channel = self._shared(lambda: self.dedup.add(key, fill.source))
        if not new_key:
            self.metrics.duplicates += 1
            self.prom.duplicates.inc()
            if new_channel and self.state.get_signal(key):
                self.state.record_signal({"fill_key": key, "channel": fill.source})
            return
        # A follow copies fills from the moment it exists, never a leader's earlier trades.
        when = _iso(fill.timestamp if fill.timestamp else fill.seen_at)
        follows = [f for f in self.book.followers_of(fill.leader) if f.created_at <= when]
        if not follows:
            self._shared(lambda: self.dedup.done(key))
            return
        self._record_and_decide(fill, key, follows)
        self._shared(lambda: self.dedup.done(key))

    def _shared(self, op):
        """Run an operation on the shared store; while Redis is unreachable, intake pauses here (the channel
        thread waits, its cursor does not move) until the link is back. In process this is a plain call."""
        if self.scale is None:
            return op()
        from .redis_backend import RedisDown

        while True:
            try:
                return op()
            except RedisDown:
                # NOTE: no stop check: returning would let a channel advance its cursor past an unrecorded
                # fill. A stopping process simply exits with this daemon thread still waiting.
                self.scale.link.wait_up(1.0)

    def intake_paused(self) -> bool:
        """True while Redis is unreachable (shared-queue mode)."""
        return self.scale is not None and not self.scale.link.up.is_set()

    def on_fills(self, fills: list[LeaderFill]) -> None:
        """Several fills from one channel poll (a block's logs, a mempool poll): exactly `on_fill` for each,
        but their state writes commit together (group commit: one transaction, one savepoint per fill so a
        bad fill is rolled back alone) and their groups are queued after that commit. Shared (Redis) mode
        takes them one by one: its dedup marks a fill done only once that fill is durably recorded."""
        if self.scale is not None or len(fills) < 2:
            for f in fills:
                self._emit_one(f)
            return
        # Chain reads first, with no lock held: the state lock must never wait on the node (executors
        # journal through it). Fills another channel already brought are skipped here (dedup decides later).
        seen = getattr(self.dedup, "_d", {})
        for f in fills:
            key = signal_key(f)
            if key in seen or key in self._prefetched:
                continue
            when = _iso(f.timestamp if f.timestamp else f.seen_at)
            follows = [x for x in self.book.followers_of(f.leader) if x.created_at <= when]
            if follows:
                try:
                    self._prefetched[key] = self._chain_inputs(f, follows)
                except Exception:  # noqa: BLE001 — read again (and fail loudly) in the fill's own path
                    log.debug("prefetch for %s failed", key, exc_info=True)
        with self._fill_lock:
            outer = self._deferred is None
            if outer:
                self._deferred = []
            try:
                with self.state.transaction():
                    for f in fills:
                        self._emit_one(f)
            finally:
                pending = self._deferred if outer else []
                if outer:
                    self._deferred = None
                for f in fills:  # reads of fills that turned out to be duplicates
                    self._prefetched.pop(signal_key(f), None)
        for gid, n in pending:
            self._enqueue(gid, n)

    def _emit_one(self, fill: LeaderFill) -> None:
        """`on_fill` inside a batch: a failure is logged and rolled back for this fill only (as a channel would)."""
        try:
            if self.scale is None and self._deferred is not None:
                with self.state.transaction():
                    self.on_fill(fill)
            else:
                self.on_fill(fill)
        except Exception:  # noqa: BLE001 — a bad fill must never take the batch (or the channel) down
            log.exception("processing fill %s failed", fill.key)

    def _record_and_decide(self, fill: LeaderFill, key: str, follows) -> None:
        # NOTE: in process, the signal, its jobs and its groups are written in ONE transaction (one commit per
        # fill instead of one per row) and the groups are queued only after it commits. In shared mode the
        # Redis calls (reservations) stay outside SQLite transactions, so a Redis outage never holds the
        # state file's lock.
        import contextlib

        if key not in self._prefetched:
            self._prefetched[key] = self._chain_inputs(fill, follows)  # node reads outside any transaction
        with self._fill_lock:
            outer = self._deferred is None
            if outer:
                self._deferred = []
            try:
                with self.state.transaction() if self.scale is None else contextlib.nullcontext():
                    new = self.state.record_signal({
                        "fill_key": key, "leader": fill.leader, "tx_hash": fill.tx_hash, "log_index": fill.log_index,
                        "token_id": fill.token_id, "condition_id": fill.condition_id, "side": fill.side,
                        "shares": str(fill.shares), "price": None if fill.price is None else str(fill.price),
                        "usd": None if fill.usd is None else str(fill.usd), "channel": fill.source,
                        "detected_ms": fill.seen_at * 1000})
                    if new:
                        px = f" @ {fill.price}" if fill.price is not None else ""
                        self.say(f"🚨 SIGNAL DETECTED via {fill.source}: {fill.leader} {fill.side} "
                                 f"{fill.shares:.2f} shares{px} (tx {fill.tx_hash[:18]}…)")
                    self._decide_and_queue(fill, follows)
            finally:
                pending = self._deferred if outer else []
                if outer:
                    self._deferred = None
        for gid, n in pending:
            self._enqueue(gid, n)

    def _follower_balances(self, token: str, follows) -> dict[str, int]:
        """Collateral of every follower, in ONE JSON-RPC batch (was one round trip per follower)."""
        from ..chain.reads import erc20_balances

        addrs = list(dict.fromkeys(f.follower for f in follows))
        try:
            vals = erc20_balances(self.chain.w3, token, addrs)
        except Exception:  # noqa: BLE001 — a node without batch support: one call each
            from .flows import _cached_contract

            tok = _cached_contract("erc20", self.chain.w3, token)
            vals = [tok.functions.balanceOf(a).call() for a in addrs]
        return {a.lower(): int(v) for a, v in zip(addrs, vals)}

    def _chain_inputs(self, fill: LeaderFill, follows) -> tuple[dict, dict, int | None]:
        """What sizing needs from the chain: follower balances (BUY, standard flow or percent sizing), or
        positions and the leader's position before the fill (SELL)."""
        from ..chain.proxies import erc1155

        w3 = self.chain.w3
        ctx = self.flow_ctx
        balances, positions, before = {}, {}, None
        if fill.side == "BUY":
            if any(f.sizing == "percent" or f.flow == "standard" for f in follows):
                balances = self._follower_balances(ctx.collateral, follows)
        else:
            ctf = erc1155(w3, ctx.ctf)
            ids = [int(fill.token_id)] * len(follows)
            bals = ctf.functions.balanceOfBatch([f.follower for f in follows], ids).call()
            positions = {f.follower.lower(): b for f, b in zip(follows, bals)}
            held_now = ctf.functions.balanceOf(fill.leader, int(fill.token_id)).call()
            # A mined fill already left the leader's balance; a pending one has not.
            before = held_now + fill.shares_micro if fill.block_number is not None or fill.source != "mempool" \
                else held_now
        return balances, positions, before

    def _decide_and_queue(self, fill: LeaderFill, follows) -> None:
        import contextlib

        fkey = signal_key(fill)
        pre = self._prefetched.pop(fkey, None)
        if pre is not None and (pre[0] or pre[1]):
            wanted = {f.follower.lower() for f in follows}
            if pre[0] and not wanted <= set(pre[0]) or pre[1] and not wanted <= set(pre[1]):
                pre = None  # the follow book changed in between: read again
        balances, positions, before = pre if pre is not None else self._chain_inputs(fill, follows)
        decision: Decision = decide(fill, follows, settings=self.settings, is_local=self.chain.is_local,
                                    balances=balances, positions=positions, leader_position_before=before,
                                    unroutable=self._unroutable())
        # Job rows as tuples in _JOB_COLS order (no dict per job): fill_key, leader, side, token_id,
        # condition_id, then follower, follow_id, flow, status, reason, usd, shares, price, group_id.
        base = (fkey, fill.leader, fill.side, fill.token_id, fill.condition_id)
        rows: list[tuple] = [(*base, sk.follow.follower, sk.follow.id, sk.follow.flow, "skipped", sk.reason, None,
                              None, None, None) for sk in decision.skips]
        what: list[tuple] = [("skip", sk.follow.follower, sk.reason) for sk in decision.skips]
        legs_by_group: dict[tuple, list[dict[str, Any]]] = {}
        gids: dict[tuple, str] = {}
        limits: dict[tuple, str] = {}
        enqueue: list[tuple[str, int]] = []
        # Caps for every BUY copy of the fill in one call (in process: one read of the totals and one
        # executemany into the ledger, inside the fill's transaction). Shared (Redis) mode: one reservation
        # per copy, each retried across a Redis outage, outside any SQLite transaction.
        buys = [(cp.follow.follower, cp.usd_micro, f"{fkey}:{cp.follow.follower.lower()}")
                for cp in decision.copies if cp.side == "BUY"]
        if not buys:
            verdicts: list[tuple[bool, str]] = []
        elif self.scale is None:
            verdicts = self.guardrails.reserve_many(buys)
        else:
            verdicts = [self._shared(lambda b=b: self.guardrails.reserve(*b)) for b in buys]
        nth = iter(zip(buys, verdicts))
        for cp in decision.copies:
            f = cp.follow
            key = None
            if cp.side == "BUY":
                (_w, _u, key), (ok, why) = next(nth)
                if not ok:
                    rows.append((*base, f.follower, f.id, f.flow, "skipped", why, _usd_str(cp.usd_micro), None, None,
                                 None))
                    what.append(("skip", f.follower, why))
                    continue
            flow = f.flow if cp.side == "BUY" else "standard"
            lim = str(cp.price_limit)
            # The group is known before the claim: jobs are inserted already attached to it (status
            # queued), and the group row follows in the same transaction, so nobody can see one without
            # the other and no second write per job is needed.
            gkey = (flow, cp.side, lim) if self.opts.aggregate else (flow, cp.side, len(rows))
            gid = gids.get(gkey)
            if gid is None:
                gid = gids[gkey] = os.urandom(8).hex()
                limits[gkey] = lim
            rows.append((*base, f.follower, f.id, flow, "queued", None, _usd_str(cp.usd_micro),
                         _usd_str(cp.shares_micro), lim, gid))
            what.append(("copy", cp, key, gkey))
        # In process the fill's transaction (_record_and_decide) is open around all of this: reservations, job
        # claims and groups commit together, with no savepoint of their own. Shared mode: claims and groups in
        # one transaction here.
        with self.state.transaction() if self.scale is not None else contextlib.nullcontext():
            ids = self.state.claim_jobs(rows, cols=_JOB_COLS)
            for jid, w in zip(ids, what):
                if jid is None:
                    continue  # this fill x follower already has its job: never twice
                if w[0] == "skip":
                    self._count("skipped")
                    self.say(f"Skipped copy for {w[1]}: {w[2]}")
                    continue
                _, cp, key, gkey = w
                legs_by_group.setdefault(gkey, []).append({"job_id": jid, "proxy": cp.follow.follower,
                                                           "usd_micro": cp.usd_micro,
                                                           "shares_micro": cp.shares_micro,
                                                           "reserve_key": key})
            n_jobs = sum(len(v) for v in legs_by_group.values())
            if n_jobs:
                self.say(f"Dispatching {n_jobs} jobs... ({len(legs_by_group)} group(s))")
            now = time.time()
            for gkey, legs in legs_by_group.items():
                gid = gids[gkey]
                self.state.create_group({"group_id": gid, "fill_key": fkey, "flow": gkey[0], "side": gkey[1],
                                         "token_id": fill.token_id, "condition_id": fill.condition_id,
                                         "price_limit": limits[gkey], "t_detected": fill.seen_at, "stage": "queued",
                                         "status": "queued", "legs_json": json.dumps(legs), "t_queued": now},
                                        [])
                enqueue.append((gid, len(legs)))
        if self._deferred is not None:
            self._deferred.extend(enqueue)  # queued by the caller once its transaction commits
        else:
            for gid, n in enqueue:
                self._enqueue(gid, n)

    def _create_group(self, row: dict[str, Any], legs: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
        """Record a group over jobs no other group holds yet (a recovering instance may have grouped some of
        them meanwhile: those are left to that group, never executed twice)."""
        while legs:
            gid = uuid.uuid4().hex[:16]
            if self.state.create_group({**row, "group_id": gid, "stage": "queued", "status": "queued",
                                        "legs_json": json.dumps(legs), "t_queued": time.time()},
                                       [l["job_id"] for l in legs], exclusive=True):
                return gid, legs
            free = {j["id"] for j in self.state.jobs_by_ids([l["job_id"] for l in legs]) if not j["group_id"]}
            legs = [l for l in legs if l["job_id"] in free]
        return None, []

    def _enqueue(self, gid: str, n: int) -> None:
        verdict = "queued"
        if self.scale is not None:
            from .redis_backend import RedisDown

            try:
                verdict = self.queue.put(gid)
            except RedisDown:
                # Recorded in SQLite already: the sweep after reconnecting queues it. Nothing is lost.
                verdict = "deferred"
        else:
            verdict = self.queue.put(gid)
        if verdict != "full":
            self._count("queued", n)
        else:
            if not self.state.drop_group(gid, "queue full"):
                return  # a worker took its copies into its own order meanwhile (coalescing): not a drop
            self.metrics.drops += n
            self.prom.drops.inc(n)
            jobs = [r["id"] for r in self.state.list_jobs(group_id=gid, limit=10_000)]
            self.state.update_jobs(jobs, status="dropped", reason="queue full (SUPERVISOR_QUEUE_MAX_SIZE)")
            for key in [json.loads(self.state.get_group(gid)["legs_json"])]:
                for leg in key:
                    if leg.get("reserve_key"):
                        self.guardrails.release(leg["reserve_key"])
            self.say(f"[TaskQueue] FULL: dropped group {gid} ({n} jobs), recorded")

    def _count(self, what: str, n: int = 1) -> None:
        self.metrics.jobs[what] = self.metrics.jobs.get(what, 0) + n
        self.prom.jobs.labels(what).inc(n)

    def queue_depth(self) -> int:
        """Groups waiting (shared queue: waiting or running on any instance)."""
        return self.queue.depth()

    def _on_step(self, step: str, status: str, seconds: float | None) -> None:
        if seconds is not None and status == "ok":
            self.prom.steps.labels(step).observe(seconds)

    def _on_dead_letter(self, gid: str, attempts: int, reason: str) -> None:
        self.state.update_group(gid, status="dlq", error=f"dead-lettered after {attempts} attempts: {reason}"[:300])
        self.say(f"[TaskQueue] group {gid} moved to the dead-letter stream after {attempts} attempts "
                 "(`copytrade jobs dlq list|retry`)")

    def _unroutable(self) -> dict[str, str]:
        """Proxies a migration deprecated (re-read at most once a second): their copies are skipped, with why."""
        at, cached = getattr(self, "_unroutable_memo", (0.0, {}))
        if time.time() - at > 1.0:
            cached = self.state.unroutable_proxies(self.chain.network)
            self._unroutable_memo = (time.time(), cached)
        return cached

    # --- execute -------------------------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        interval = self.settings.supervisor_queue_drain_interval_ms / 1000
        while not self.stop_event.is_set():
            # Backpressure: take a slot first, then read; a shared queue is never read beyond what we can run.
            if not self._inflight.acquire(timeout=interval):
                continue
            try:
                d = self.queue.get(timeout=interval)
            except Exception as exc:  # noqa: BLE001 — Redis down: wait for the link, nothing is lost
                d = None
                log.debug("queue read failed: %s", exc)
                if self.scale is not None:
                    self.scale.link.wait_up(interval)
            if d is None:
                self._inflight.release()
                continue
            with self._running_lock:
                self._running += 1
            self.pool.submit(self._execute, d.group_id, None, d)

    def _execute(self, gid: str, worker_address: str | None = None, delivery: Delivery | None = None) -> None:
        final = False
        settling = []  # set once the group gave its worker back: it then holds a settling slot, not a dispatch one

        def to_settling() -> None:
            tails = getattr(self, "_tails", None)
            if settling or tails is None:
                return
            tails.acquire()  # full: keep the dispatch slot until one frees (backpressure on the queue)
            settling.append(tails)
            self._inflight.release()

        try:
            if self.scale is not None and delivery is not None:
                verdict, group = self.state.claim_group(gid, self.instance_id, self.settings.supervisor_lease_ms / 1000)
                if verdict in ("done", "missing"):
                    self.queue.ack(delivery)  # already finished (by us before a restart, or by another instance)
                    return
                if verdict == "busy":
                    self.queue.ack(delivery, only_own=True)  # a live instance runs it; this entry is a duplicate
                    return
                with self._held_lock:
                    self._held[gid] = delivery
            else:
                group = self.state.get_group(gid)
            if group is None:
                return
            status = self._run_on_worker(group, worker_address, to_settling)
            self._count(status)
            if status in ("complete", "refunded", "failed"):
                final = True
                self.metrics.groups_done += 1
                g = self.state.get_group(gid)
                if g and g.get("t_order_accepted") and g.get("t_detected"):
                    self.metrics.latency_ms.append((g["t_order_accepted"] - g["t_detected"]) * 1000)
                    self.prom.latency.observe(g["t_order_accepted"] - g["t_detected"])
                if g and g.get("t_done") and g.get("t_detected"):
                    self.prom.group_seconds.observe(g["t_done"] - g["t_detected"])
            elif status == "stalled":
                g = self.state.get_group(gid) or {}
                if "rpc" in (g.get("error") or "").lower() or "node" in (g.get("error") or "").lower():
                    self.prom.rpc_errors.labels("execute").inc()
                if self.scale is None:
                    self._retry_stalled(gid, g)
        except Exception:  # noqa: BLE001 — the group stays journalled; resume() picks it up
            log.exception("group %s failed unexpectedly", gid)
        finally:
            if delivery is not None and self.scale is not None:
                self._settle_delivery(gid, delivery, final)
            with self._running_lock:
                self._running -= 1
            if settling:
                settling[0].release()
            else:
                self._inflight.release()

    def _retry_stalled(self, gid: str, g: dict[str, Any]) -> None:
        """In process: a group stalled by a transient cause (node unreachable, worker out of gas...) is queued
        again after a backoff, resuming from its journalled stage, up to COPY_TRADING_MAX_RETRY_ATTEMPTS more
        times; after that it waits for the next start (resume). A worker out of gas is refuelled first."""
        attempts = int(g.get("attempts") or 1)
        if attempts > self.settings.copy_trading_max_retry_attempts + 1 or self.stop_event.is_set():
            self.say(f"[TaskQueue] group {gid} left stalled after {attempts} attempts ({(g.get('error') or '')[:120]}); "
                     "resumed at the next start")
            return
        if "lacks gas" in (g.get("error") or "") and getattr(self, "funder", None) is not None:
            from ..chain.tx import TxLane
            from .fleet import REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI

            try:
                topped = self.fleet.refuel(TxLane(self.chain.w3, self.funder), REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI)
                if topped:
                    self.say(f"[Fleet] refuelled {len(topped)} worker(s) out of gas")
            except Exception as exc:  # noqa: BLE001 — the funder may be dry too: the retry will tell
                log.warning("refuel for stalled group %s failed: %s", gid, str(exc)[:160])
        delay = min(10.0, 0.5 * 2 ** (attempts - 1))

        def again() -> None:
            if not self.stop_event.is_set() and self.queue.put(gid) == "full":
                log.warning("queue full: stalled group %s waits for the next start", gid)

        t = threading.Timer(delay, again)
        t.daemon = True
        t.start()
        self.say(f"[TaskQueue] group {gid} stalled ({(g.get('error') or '')[:120]}); retrying in {delay:.1f}s")

    def _settle_delivery(self, gid: str, delivery: Delivery, final: bool) -> None:
        """Acknowledge a finished group; an unfinished one is left pending with its lease given up, so any
        instance reclaims it after the lease (each reclaim is an attempt; too many -> dead-letter)."""
        from .redis_backend import RedisDown

        with self._held_lock:
            self._held.pop(gid, None)
        if not final:
            self.state.release_group_lease(gid, self.instance_id)
            self.queue.forget(delivery)
            return
        self.state.release_group_lease(gid, self.instance_id)
        try:
            self.queue.ack(delivery)
        except RedisDown:
            pass  # the group is final in SQLite: whoever gets the entry later finds it done and acks

    def _run_on_worker(self, group: dict[str, Any], worker_address: str | None, on_release=None) -> str:
        """Run the group on the worker its journal names (or any free one); in shared mode a worker of a dead
        instance is adopted for this one group, so its half-done flow finishes where the funds are. The worker
        goes back to the fleet as soon as the group's order outcome is journalled (`on_release` then runs)."""
        addr = worker_address or group.get("worker")
        if addr and self.scale is not None and addr.lower() not in self.fleet.by_address:
            return self._run_adopted(group, addr, on_release)
        with self.fleet.lease(addr) as lease:
            def release() -> None:
                lease.give_back()
                if on_release is not None:
                    on_release()

            return run_group(self.flow_ctx, group, lease.worker, release)

    def _run_adopted(self, group: dict[str, Any], addr: str, on_release=None) -> str:
        from ..chain.accounts import worker_account_for
        from ..chain.tx import TxLane
        from .fleet import Worker

        if not self._shared(lambda: self.scale.registry.adopt(addr)):
            log.warning("group %s needs worker %s, still held by its instance; left for later", group["group_id"],
                        addr)
            return "stalled"
        try:
            account = worker_account_for(self.settings, addr)
            w = Worker(-1, account, TxLane(self.chain.w3, account, fees=self.fleet.fees), self._clob_factory(account))
            w.lane.resync()
            w.clob.ensure_creds()
            self.say(f"[TaskQueue] adopting worker {addr} of a stopped instance to finish group {group['group_id']}")
            return run_group(self.flow_ctx, group, w, on_release)
        finally:
            try:
                self.scale.registry.release(addr)
            except Exception:  # noqa: BLE001 — the key lapses by itself
                pass

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

    def _resume_shared(self) -> None:
        """Shared mode: regroup orphaned jobs under a lock, then queue (not run) unfinished groups nobody
        leases; the consumer group spreads them over the live instances."""
        link = self.scale.link
        lock = link.k("meta", "regroup-lock")
        if link.call(link.r.set, lock, self.instance_id, nx=True, px=60_000):
            try:
                # Only jobs older than a lease: a live instance may be between claiming jobs and grouping them.
                self._regroup_orphans(older_than_s=self.settings.supervisor_lease_ms / 1000)
            finally:
                link.call(link.r.delete, lock)
        n = self._shared(self.scale.refill)
        if n:
            self.say(f"[TaskQueue] re-queued {n} unfinished group(s) from the journal on the shared queue")

    def _lease_loop(self) -> None:
        """Shared mode: renew worker keys, group leases and stream entries every third of the lease; sweep."""
        from .redis_backend import RedisDown

        period = self.settings.supervisor_lease_ms / 3000
        last_sweep = time.time()
        while not self._bg_stop.wait(period):
            try:
                with self._held_lock:
                    gids = list(self._held)
                self.state.renew_group_leases(gids, self.instance_id, self.settings.supervisor_lease_ms / 1000)
                if not self.scale.link.up.is_set():
                    continue
                lost = self.scale.registry.renew()
                if lost:
                    log.error("worker key(s) %s taken by another instance: overlapping COPY_TRADING_WORKER_INDEX?",
                              ", ".join(lost))
                self.queue.renew()
                if time.time() - last_sweep >= self.settings.supervisor_lease_ms / 1000:
                    last_sweep = time.time()
                    n = self.scale.sweep()
                    if n:
                        self.say(f"[TaskQueue] sweep re-queued {n} orphaned group(s)")
            except RedisDown:
                continue
            except Exception:  # noqa: BLE001 — upkeep must go on
                log.exception("lease upkeep failed")

    def _health_loop(self) -> None:
        """Refresh the health key (Redis) or file (in process) and the worker-gas gauge."""
        from .observe import write_health_file

        interval = self.settings.supervisor_health_interval_ms / 1000
        last_gas = 0.0
        while True:
            try:
                if time.time() - last_gas >= 10 and self.fleet is not None:
                    last_gas = time.time()
                    self.worker_gas = {w.address: self.chain.w3.eth.get_balance(w.address) for w in self.fleet.workers}
                doc = self.health_doc()
                if self.scale is not None:
                    try:
                        self.scale.write_health(doc, doc["ttl_ms"])
                    except Exception:  # noqa: BLE001 — Redis down: the key lapses, which is the signal
                        pass
                write_health_file(self.settings, self.instance_id, doc)
            except Exception:  # noqa: BLE001
                log.exception("health refresh failed")
            if self._bg_stop.wait(interval):
                return

    def health_doc(self) -> dict[str, Any]:
        """What the health key says about this instance."""
        import os
        import socket

        status = self.status
        if status == "ok" and self.intake_paused():
            status = "paused"
        ttl = 3 * self.settings.supervisor_health_interval_ms
        return {"instance": self.instance_id, "status": status, "pid": os.getpid(), "host": socket.gethostname(),
                "shard": f"{self.settings.supervisor_shard_index}/{self.settings.supervisor_shard_count}",
                "worker_index": self.settings.copy_trading_worker_index, "mode": "redis" if self.scale else "in-process",
                "workers": len(self.fleet) if self.fleet else 0, "running": self._running,
                "groups_done": self.metrics.groups_done, "jobs": dict(self.metrics.jobs), "drops": self.metrics.drops,
                "ts": time.time(), "ttl_ms": ttl}

    def _regroup_orphans(self, older_than_s: float | None = None) -> None:
        """Jobs claimed but not yet grouped when the process died: group them now (nothing accepted is lost)."""
        orphans = [j for j in self.state.list_jobs(status="pending", limit=100_000) if not j.get("group_id")]
        if older_than_s is not None:
            cutoff = _iso(time.time() - older_than_s)
            orphans = [j for j in orphans if j["created_at"] < cutoff]
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
            self._create_group({"fill_key": fill_key, "flow": flow, "side": side, "token_id": token,
                                "condition_id": cond, "price_limit": price,
                                "t_detected": (sig.get("detected_ms") or 0) / 1000 or None}, legs)

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
                        and self.queue.idle() and self._running == 0:
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
        self.status = "stopped"
        self._bg_stop.set()
        self._release_shared()
        from .observe import clear_health_file

        clear_health_file(self.settings, self.instance_id)
        self.prom.close()

    def _release_shared(self) -> None:
        """Shared mode, clean stop: hand back entries not started, drop worker keys and the health key.
        Groups still running past the grace period keep their lease and are reclaimed after it lapses."""
        if self.scale is None:
            return
        try:
            self.scale.queue.release_buffered()
            if self._running == 0:
                self.scale.registry.release_all()
            self.scale.clear_health()
        except Exception:  # noqa: BLE001 — Redis down at shutdown: keys lapse by themselves
            log.warning("could not release shared keys at shutdown; they lapse after the lease")


def _ws_url(rpc_url: str) -> str | None:
    """The websocket endpoint beside an HTTP RPC endpoint (anvil and hardhat serve both on one port)."""
    if rpc_url.startswith("http://"):
        return "ws://" + rpc_url[len("http://"):]
    if rpc_url.startswith("https://"):
        return "wss://" + rpc_url[len("https://"):]
    return None


def signal_key(fill: LeaderFill) -> str:
    """The supervisor's dedup key: the leader plus the fill's canonical key, so two leaders with identical
    fills in one transaction stay two signals."""
    return f"{fill.leader.lower()}:{fill.key}"


_JOB_COLS = ["fill_key", "leader", "side", "token_id", "condition_id", "follower", "follow_id", "flow", "status",
             "reason", "usd", "shares", "price", "group_id"]


@functools.lru_cache(maxsize=4096)
def _usd_str(micro: int) -> str:
    """A micro amount as the jobs table's decimal string (one Decimal division per distinct amount)."""
    return str(Decimal(micro) / 10**6)


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds")


def _live_exchange(chain_id: int) -> str:
    from ..polymarket.addresses import polymarket_addresses

    return polymarket_addresses(chain_id).exchange_v2
