"""The supervisor: detect -> intake -> plan -> queue -> dispatch -> execute -> record, composed here.

- detection channels (detect.py, built in channels.py) hand fills to the intake as plain calls;
- intake (intake.py): dedup, follow filter, signal row, decision (decide.py); the planner (plan.py) turns the
  decision into reservations, jobs, legs and groups and hands back `PlannedGroup`s;
- the dispatcher (dispatch.py) queues them (a full queue is a recorded drop), owns the slots, claims each group,
  runs it on a worker through the flows (execute/) and schedules retries as `Retry` values;
- coordination (coordination/): in process + SQLite, or Redis for several instances, chosen once here;
- the lifecycle (service.py): named loops, one stop event; signal handlers only set it. Start-up failures stop
  before anything runs; shutdown always runs (stop intake, let running groups finish within a grace period,
  final reimbursement, release what is held, bounded join).
Nothing lost: every decision is a row in `jobs` (unique per fill x follower) before it is queued; a full
queue is a recorded drop. Nothing doubled: the unique row and the group journal (see execute/journal.py).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import NotReadyError
from ..polymarket.fills import LeaderFill
from ..settings import Settings
from ..state import State
from .channels import CHANNELS, build_channels
from .coordination import choose
from .coordination.local import TTLSet
from .coordination.base import instance_id
from .decide import FollowBook, Guardrails
from .dispatch import Dispatcher
from .execute import FlowContext, Reimburser
from .ghosts import GhostHandler
from .intake import Intake, signal_key
from .observe import Metrics, SupervisorMetrics, Tally
from .plan import Planner, SizingReader
from .service import Service

log = logging.getLogger("copytrade.supervisor")
JOIN_S = 3.0  # shutdown's bounded wait for every thread, after the grace period
__all__ = ["CHANNELS", "Metrics", "Supervisor", "SupervisorOptions", "TTLSet", "signal_key"]


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


class Supervisor:
    """One supervisor instance: the stages wired together over the coordination chosen for the settings."""

    def __init__(self, settings: Settings, state: State, chain, *, options: SupervisorOptions | None = None,
                 say: Callable[[str], None] | None = None):
        self.settings, self.state, self.chain = settings, state, chain
        self.opts = options or SupervisorOptions()
        self.say = say or (lambda line: log.info(line))
        self.service = Service()
        self.stop_event = self.service.stop
        self.metrics = Metrics()
        self.book = FollowBook(state, shard_count=settings.supervisor_shard_count,
                               shard_index=settings.supervisor_shard_index)
        self.instance_id = instance_id()
        # NOTE: the one place the mode is decided; every stage below talks to `coord` only.
        self.coord = choose(settings, state, self.instance_id, self.say)
        self.guardrails = Guardrails(settings, state, store=self.coord.caps)
        self.queue = self.coord.queue
        self.prom = SupervisorMetrics(self)
        self.tally = Tally(self.metrics, self.prom)
        self.dispatcher = Dispatcher(settings=settings, state=state, chain=chain, coord=self.coord,
                                     guardrails=self.guardrails, tally=self.tally, say=self.say, stop=self.stop_event)
        self.sizing = SizingReader(chain)
        self.planner = Planner(state=state, guardrails=self.guardrails, coord=self.coord,
                               aggregate=self.opts.aggregate, say=self.say, count=self.tally.count)
        self.intake = Intake(settings=settings, state=state, chain=chain, coord=self.coord, book=self.book,
                             planner=self.planner, sizing=self.sizing, tally=self.tally, say=self.say,
                             enqueue=self.dispatcher.enqueue)
        self.ghosts = GhostHandler(state=state, dispatcher=self.dispatcher, say=self.say)
        self.worker_gas: dict[str, int] = {}
        self.status = "starting"
        self.channels: list = []
        self.fleet = None
        self.flow_ctx: FlowContext | None = None
        self.funder = None
        self._shutdown_lock = threading.Lock()
        self._shut = False

    # --- what channels, tests and benchmarks call --------------------------------------------------------
    def on_fill(self, fill: LeaderFill) -> None:
        """A leader fill: dedup, decide for every follower, record, queue (the intake's plain call)."""
        self.intake.on_fill(fill)

    def on_fills(self, fills: list[LeaderFill]) -> None:
        """One poll's fills, committed together (group commit)."""
        self.intake.on_fills(fills)

    @property
    def running(self) -> int:
        """Groups this instance is executing."""
        return self.dispatcher.running

    @property
    def pool(self):
        """The execution thread pool (None before start)."""
        return self.dispatcher.pool

    @property
    def _threads(self) -> list[threading.Thread]:
        return self.service.threads

    def intake_paused(self) -> bool:
        """True while intake waits for the coordination store (Redis unreachable)."""
        return self.intake.paused()

    def queue_depth(self) -> int:
        """Groups waiting (shared queue: waiting or running on any instance)."""
        return self.queue.depth()

    # --- start-up --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Build the fleet, check it, resume unfinished work, start channels and the dispatcher. A failure
        stops here, with whatever was taken released."""
        try:
            self._start()
        except BaseException:
            self.abort()
            raise

    def _start(self) -> None:
        from ..chain.accounts import worker_accounts
        from ..chain.lanes import FeeOracle
        from ..chain.roles import funder_account
        from ..chain.deploy import addresses, contract
        from ..polymarket.addresses import chain_contracts
        from ..polymarket.clob import environment_for, gateway_factory, worker_wallet_mode
        from .execute.admission import StartRules
        from .fleet import Fleet

        # NOTE: the readiness pre-flight runs before this, in runbook.supervise (the supervisor never imports it).
        self.coord.connect()  # start-up failure (Redis unreachable) stops before anything runs
        w3 = self.chain.w3
        addrs = addresses(self.state, self.chain.network)
        executor = self.settings.executor_address or addrs.get("Executor")
        if not executor:
            raise NotReadyError(f"no Executor recorded on {self.chain.network}: run `copytrade deploy executor` "
                                "(or `copytrade fork up`)")
        world = self.chain.world
        contracts = chain_contracts(self.chain.chain_id, world, self.settings)
        collateral, ctf, exchange = contracts.collateral, contracts.ctf, contracts.exchange
        clob_url = self._clob_url()

        rec = self.state.get_node() if self.chain.is_local else None
        clob_factory = gateway_factory(environment_for(
            clob_url=clob_url, rpc_url=self.chain.rpc_url, chain_id=self.chain.chain_id, is_local=self.chain.is_local,
            world=world, relayer_url=getattr(rec, "relayer_url", None) or self.settings_relayer_url()),
            mode=worker_wallet_mode(is_local=self.chain.is_local, world=world))

        self.fleet = Fleet(w3, worker_accounts(self.settings), clob_factory=clob_factory,
                           per_worker=self.settings.supervisor_groups_per_worker,
                           fees=FeeOracle.from_settings(w3, self.settings))
        ex = contract(w3, "Executor", executor)
        registered = {w.address.lower() for w in self.fleet.workers if ex.functions.isWorker(w.address).call()}
        st = self.fleet.status(registered)
        self.say(f"Fleet: {st['ready']}/{st['total']} ready")
        if st["ready"] == 0:
            raise NotReadyError("no worker is ready (registered on the Executor and holding gas): run "
                                "`copytrade deploy executor` and fund the fleet")
        self.coord.acquire_fleet([w.address for w in self.fleet.workers])
        self.worker_gas = {r["address"]: r["gas_wei"] for r in st["workers"]}
        # Derive CLOB credentials up front so the first copy does not pay for it (each worker's SDK client: L1
        # auth + the relayer's deployed check), several at once; not when nothing may trade (live, switch off).
        if self.chain.is_local or self.settings.enable_real_trading:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(8, max(1, len(self.fleet.workers)))) as pool:
                list(pool.map(lambda w: w.clob.ensure_creds(), self.fleet.workers))
        self.sizing.collateral, self.sizing.ctf = collateral, ctf
        self.flow_ctx = FlowContext(w3=w3, state=self.state, executor=executor, collateral=collateral, ctf=ctf,
                                    report=self._report, max_retries=self.settings.copy_trading_max_retry_attempts,
                                    guardrails=self.guardrails, fault_kill_at=self.settings.fault_kill_at,
                                    on_step=self.tally.step, coalesce=self.coord.coalesces and self.opts.aggregate
                                    and self.opts.coalesce,
                                    rules=StartRules.of(self.settings, live=not self.chain.is_local))
        try:
            self.funder = funder_account(self.settings)
        except Exception:  # noqa: BLE001 — refuel is optional without an operator key
            self.funder = None
        self.dispatcher.bind(fleet=self.fleet, flow_ctx=self.flow_ctx, clob_factory=clob_factory,
                             funder=self.funder)
        for name, fn in self.coord.upkeep_loops():
            self.service.spawn(name, fn, upkeep=True)
        self.coord.recover(self.planner.regroup_orphans, self.dispatcher.run_unfinished, self.say)
        self.service.spawn("health", self._health_loop, upkeep=True)
        self.channels = build_channels(self.opts.channels, intake=self.intake, leaders=self.book.leaders,
                                       stop=self.stop_event, settings=self.settings, state=self.state,
                                       chain=self.chain, exchange=exchange, ctf=ctf, world=world,
                                       data_api_poll_s=self.opts.data_api_poll_s, on_ghost=self.ghosts)
        for ch in self.channels:
            ch.start()
            self.service.adopt(ch)
        self.service.spawn("dispatcher", self.dispatcher.loop)
        self.service.spawn("retries", self.dispatcher.retries.loop)
        self.service.spawn("reimburser", self._reimburse_loop)
        self.service.spawn("config-refresh", self._refresh_loop)
        if self.funder is not None:
            self.service.spawn("auto-refuel", self._refuel_loop)
        shared = (f"; shared queue on Redis as {self.instance_id} (shard {self.settings.supervisor_shard_index}/"
                  f"{self.settings.supervisor_shard_count})") if self.coord.mode == "redis" else ""
        self.say(f"[TaskQueue] ready: max {self.settings.supervisor_queue_max_size} groups, drain every "
                 f"{self.settings.supervisor_queue_drain_interval_ms} ms, fan-out "
                 f"{self.settings.supervisor_fanout_concurrency}; watching {len(self.book.leaders())} leaders via "
                 f"{', '.join(c.name_ for c in self.channels)}" + shared)
        self.status = "ok"

    def settings_relayer_url(self) -> str | None:
        """The relayer the workers' deposit wallets are checked at (a `relayer_url` setting, if there is one)."""
        return getattr(self.settings, "relayer_url", None)

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

    # --- loops ---------------------------------------------------------------------------------------------
    def _health_loop(self, halt: threading.Event) -> None:
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
                self.coord.write_health(doc)
                write_health_file(self.settings, self.instance_id, doc)
            except Exception:  # noqa: BLE001
                log.exception("health refresh failed")
            if halt.wait(interval):
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
                "worker_index": self.settings.copy_trading_worker_index, "mode": self.coord.mode,
                "workers": len(self.fleet) if self.fleet else 0, "running": self.running,
                "groups_done": self.metrics.groups_done, "jobs": dict(self.metrics.jobs), "drops": self.metrics.drops,
                "ts": time.time(), "ttl_ms": ttl}

    def _reimburse_loop(self, stop: threading.Event) -> None:
        r = Reimburser(self.flow_ctx, self.fleet)
        while not stop.wait(self.opts.reimburse_every_s):
            try:
                r.run_once()
            except Exception:  # noqa: BLE001
                log.exception("reimbursement round failed; debts stay open and are retried")

    def _refuel_loop(self, stop: threading.Event) -> None:
        """Auto-refuel: top up any worker whose gas fell below the threshold, from the operator (funder)."""
        from ..chain.lanes import TxLane
        from .fleet import REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI

        lane = TxLane(self.chain.w3, self.funder, fees=self.fleet.fees)
        while not stop.wait(self.opts.refuel_every_s):
            try:
                topped = self.fleet.refuel(lane, REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI)
                if topped:
                    self.say(f"[Fleet] auto-refuel: topped up {len(topped)} worker(s)")
            except Exception as exc:  # noqa: BLE001 — a funder without gas must not stop the supervisor
                log.warning("auto-refuel failed: %s", str(exc)[:160])

    def _refresh_loop(self, stop: threading.Event) -> None:
        s = self.settings
        last_full = time.time()
        while not stop.wait(s.supervisor_config_refresh_ms / 1000):
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
                        and self.dispatcher.idle():
                    break
                time.sleep(0.05)
        finally:
            self.shutdown()
        return self.metrics

    def shutdown(self) -> None:
        """Stop intake, let running groups finish within the grace period, repay debts, release, join."""
        with self._shutdown_lock:
            if self._shut:
                return
            self._shut = True
        self.stop_event.set()
        deadline = time.time() + self.opts.grace_s
        while self.running > 0 and time.time() < deadline:
            time.sleep(0.05)
        if self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.fleet and self.flow_ctx and self.state.open_debts():
            try:
                Reimburser(self.flow_ctx, self.fleet).run_once()
            except Exception:  # noqa: BLE001
                log.warning("final reimbursement round failed; debts are repaid at next start")
        self.status = "stopped"
        self._release()
        self.service.join(JOIN_S)

    def abort(self) -> None:
        """A start-up that failed: stop whatever started and release what was taken (nothing ran)."""
        with self._shutdown_lock:
            if self._shut:
                return
            self._shut = True
        self._release()

    def _release(self) -> None:
        from .observe import clear_health_file

        self.service.halt()
        self.coord.release_at_shutdown(self.running)
        clear_health_file(self.settings, self.instance_id)
        self.prom.close()

