"""Queue and dispatch: planned groups go on the queue (a full queue is a recorded drop); the dispatcher owns the
execution slots, claims each group, runs it on a worker (or adopts a dead instance's), records its outcome and
schedules retries of stalled groups as `model.Retry` values (one scheduler thread, not one timer per retry).

Two kinds of slots: a group holds a dispatch slot (and its worker) only up to its order's outcome; the rest of it
(settlement mined, push) runs on in a settling slot, without the worker.
"""
from __future__ import annotations

import heapq
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .backends import Delivery
from .execute import run_group_outcome
from .execute.admission import InvalidGroup, load_legs
from .model import GROUP_TERMINAL, GroupStatus, Outcome, PlannedGroup, Retry, StallCause

log = logging.getLogger("copytrade.supervisor")


def outcome_of(result: "Outcome | str", group: dict[str, Any] | None = None) -> Outcome:
    """What running a group came to, as an `Outcome` (a bare status, e.g. from an adoption that could not
    start, has no typed cause: OTHER when stalled)."""
    if isinstance(result, Outcome):
        return result
    return Outcome.of(result, StallCause.OTHER if result == GroupStatus.STALLED else None)


class RetryScheduler:
    """Deferred re-queues: each `Retry` is put back on the queue once its `defer_s` has passed."""

    def __init__(self, requeue: Callable[[Retry], None]):
        self.requeue = requeue
        self._due: list[tuple[float, int, Retry]] = []
        self._cv = threading.Condition()
        self._n = 0

    def schedule(self, retry: Retry) -> None:
        """Re-queue `retry.group_id` after `retry.defer_s` seconds."""
        with self._cv:
            self._n += 1
            heapq.heappush(self._due, (time.monotonic() + retry.defer_s, self._n, retry))
            self._cv.notify()

    def pending(self) -> int:
        """Retries waiting for their time."""
        with self._cv:
            return len(self._due)

    def loop(self, stop: threading.Event) -> None:
        """Until `stop`: hand every due retry to `requeue` (retries still waiting at stop are dropped; the
        groups stay journalled and resume at the next start)."""
        while not stop.is_set():
            with self._cv:
                now = time.monotonic()
                due = []
                while self._due and self._due[0][0] <= now:
                    due.append(heapq.heappop(self._due)[2])
                if not due:
                    wait = self._due[0][0] - now if self._due else 0.2
                    self._cv.wait(min(wait, 0.2))
                    continue
            for r in due:
                if not stop.is_set():
                    self.requeue(r)


class Dispatcher:
    """Slots, claims, workers and retries of one instance."""

    def __init__(self, *, settings, state, chain, coord, guardrails, tally, say: Callable[[str], None],
                 stop: threading.Event):
        self.settings, self.state, self.chain, self.coord = settings, state, chain, coord
        self.guardrails, self.tally, self.say, self.stop = guardrails, tally, say, stop
        self.queue = coord.queue
        self.inflight = threading.Semaphore(max(1, settings.supervisor_fanout_concurrency))
        self.settling: threading.Semaphore | None = None
        self.running = 0
        self._running_lock = threading.Lock()
        self.fleet = None
        self.flow_ctx = None
        self.pool: ThreadPoolExecutor | None = None
        self.funder = None
        self.clob_factory: Callable[[Any], Any] | None = None
        self.retries = RetryScheduler(self._requeue)

    def bind(self, *, fleet, flow_ctx, clob_factory, funder) -> None:
        """Start-up: the fleet and the flows' context are known; size the slots and the thread pool."""
        self.fleet, self.flow_ctx, self.clob_factory, self.funder = fleet, flow_ctx, clob_factory, funder
        fanout = self.settings.supervisor_fanout_concurrency
        self.inflight = threading.Semaphore(self.coord.dispatch_slots(max(1, fanout), len(fleet) * fleet.per_worker))
        tails = max(50, 10 * len(fleet))
        self.settling = threading.Semaphore(tails)
        self.pool = ThreadPoolExecutor(max_workers=max(1, fanout) + tails, thread_name_prefix="exec")

    def idle(self) -> bool:
        """Nothing queued for this instance and nothing running."""
        return self.queue.idle() and self.running == 0

    # --- queue -------------------------------------------------------------------------------------------
    def enqueue(self, g: PlannedGroup) -> None:
        """Queue a recorded group; a full queue drops it, recorded (jobs dropped, reservations released)."""
        verdict = self.coord.enqueue(g.group_id)
        if verdict != "full":
            self.tally.count("queued", g.jobs)
            return
        if not self.drop_queued(g.group_id, "queue full", "queue full (SUPERVISOR_QUEUE_MAX_SIZE)"):
            return  # a worker took its copies into its own order meanwhile (coalescing): not a drop
        self.say(f"[TaskQueue] FULL: dropped group {g.group_id} ({g.jobs} jobs), recorded")

    def drop_queued(self, gid: str, error: str, job_reason: str | None = None) -> bool:
        """Drop a group no worker has started (its jobs `dropped` with the reason, reservations released); False
        if it already started or was absorbed (the flow's start re-reads the status under the same lock)."""
        with self.state.transaction():
            if not self.state.drop_group(gid, error):
                return False
            # its packed copies become job rows, dropped with the reason (or, an older file's rows, are marked so)
            self.state.create_group_jobs(gid, status="dropped", reason=job_reason or error)
            jobs = [r["id"] for r in self.state.list_jobs(group_id=gid, limit=10_000)]
            self.state.update_jobs(jobs, status="dropped", reason=job_reason or error)
        self.tally.drop(len(jobs))
        try:
            legs = load_legs(self.state.get_group(gid)["legs_json"])
        except InvalidGroup:
            legs = []  # nothing reserved can be named from an unreadable row; its jobs are dropped all the same
        for leg in legs:
            if leg.reserve_key:
                self.guardrails.release(leg.reserve_key)
        return True

    def _requeue(self, retry: Retry) -> None:
        if self.coord.enqueue(retry.group_id) == "full":
            log.warning("queue full: stalled group %s waits for the next start", retry.group_id)

    # --- dispatch ----------------------------------------------------------------------------------------
    def loop(self, stop: threading.Event) -> None:
        """Take a slot, then read the queue (a shared queue is never read beyond what we can run); run."""
        interval = self.settings.supervisor_queue_drain_interval_ms / 1000
        while not stop.is_set():
            if not self.inflight.acquire(timeout=interval):
                continue
            try:
                d = self.queue.get(timeout=interval)
            except Exception as exc:  # noqa: BLE001 — store down: wait for it, nothing is lost
                d = None
                log.debug("queue read failed: %s", exc)
                self.coord.wait_after_read_error(interval)
            if d is None:
                self.inflight.release()
                continue
            with self._running_lock:
                self.running += 1
            self.pool.submit(self.execute, d.group_id, None, d)

    def run_unfinished(self) -> None:
        """Recovery in process: finish what a previous run left open (crash, kill): continue or refund, never
        repeat; each group in turn, before intake starts."""
        open_groups = self.state.unfinished_groups()
        if not open_groups:
            return
        self.say(f"[TaskQueue] resuming {len(open_groups)} unfinished group(s) from the journal")
        for g in open_groups:
            self.inflight.acquire()
            with self._running_lock:
                self.running += 1
            self.execute(g["group_id"])

    def execute(self, gid: str, worker_address: str | None = None, delivery: Delivery | None = None) -> None:
        """Claim, run and record one group (the caller took a dispatch slot and counted it running)."""
        final = False
        settling = []  # set once the group gave its worker back: it then holds a settling slot, not a dispatch one

        def to_settling() -> None:
            if settling or self.settling is None:
                return
            self.settling.acquire()  # full: keep the dispatch slot until one frees (backpressure on the queue)
            settling.append(self.settling)
            self.inflight.release()

        try:
            group = self.coord.claim(gid, delivery)
            if group is None:
                return
            if group.get("jobs_created") == 0 and group.get("status") not in GROUP_TERMINAL:
                # the group starts: its packed copies become job rows (once; the flow journals them from here)
                self.state.create_group_jobs(gid)
                group["jobs_created"] = 1
            result = self._run_on_worker(group, worker_address, to_settling)
            g = self.state.get_group(gid)
            outcome = outcome_of(result, g)
            self.tally.count(str(outcome.status))
            final = outcome.final  # also a group refused before its first step (dropped): never redelivered
            if outcome.status in (GroupStatus.COMPLETE, GroupStatus.REFUNDED, GroupStatus.FAILED):
                self.tally.group_done(g)
            elif outcome.status == GroupStatus.STALLED:
                if outcome.cause == StallCause.RPC:
                    self.tally.rpc_error("execute")
                if not self.coord.redelivers_stalled:
                    self._retry_stalled(gid, g or {}, outcome.cause or StallCause.OTHER)
        except Exception:  # noqa: BLE001 — the group stays journalled; resume() picks it up
            log.exception("group %s failed unexpectedly", gid)
        finally:
            if delivery is not None:
                self.coord.settle(gid, delivery, final)
            with self._running_lock:
                self.running -= 1
            if settling:
                settling[0].release()
            else:
                self.inflight.release()

    def _retry_stalled(self, gid: str, g: dict[str, Any], cause: StallCause) -> None:
        """A group stalled by a transient cause (node unreachable, worker out of gas...) is queued again after
        a backoff, resuming from its journalled stage, up to COPY_TRADING_MAX_RETRY_ATTEMPTS more times; after
        that it waits for the next start (resume). A worker out of gas is refuelled first."""
        attempts = int(g.get("attempts") or 1)
        error = (g.get("error") or "")[:120]
        if attempts > self.settings.copy_trading_max_retry_attempts + 1 or self.stop.is_set():
            self.say(f"[TaskQueue] group {gid} left stalled after {attempts} attempts ({error}); "
                     "resumed at the next start")
            return
        if cause == StallCause.OUT_OF_GAS and self.funder is not None:
            from ..chain.lanes import TxLane
            from .fleet import REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI

            try:
                topped = self.fleet.refuel(TxLane(self.chain.w3, self.funder), REFUEL_BELOW_WEI, REFUEL_TOP_UP_WEI)
                if topped:
                    self.say(f"[Fleet] refuelled {len(topped)} worker(s) out of gas")
            except Exception as exc:  # noqa: BLE001 — the funder may be dry too: the retry will tell
                log.warning("refuel for stalled group %s failed: %s", gid, str(exc)[:160])
        retry = Retry(gid, attempts, min(10.0, 0.5 * 2 ** (attempts - 1)), cause)
        self.retries.schedule(retry)
        self.say(f"[TaskQueue] group {gid} stalled ({error}); retrying in {retry.defer_s:.1f}s")

    # --- workers -----------------------------------------------------------------------------------------
    def _run_on_worker(self, group: dict[str, Any], worker_address: str | None, on_release=None):
        """Run the group on the worker its journal names (or any free one); a worker of a dead instance is
        adopted for this one group where the coordination allows it, so its half-done flow finishes where the
        funds are. The worker goes back to the fleet as soon as the group's order outcome is journalled."""
        addr = worker_address or group.get("worker")
        if addr and self.coord.adopts_workers and addr.lower() not in self.fleet.by_address:
            return self._run_adopted(group, addr, on_release)
        with self.fleet.lease(addr) as lease:
            def release() -> None:
                lease.give_back()
                if on_release is not None:
                    on_release()

            return run_group_outcome(self.flow_ctx, group, lease.worker, release)

    def _run_adopted(self, group: dict[str, Any], addr: str, on_release=None):
        from ..chain.accounts import worker_account_for
        from ..chain.lanes import TxLane
        from .fleet import Worker

        if not self.coord.adopt_worker(addr):
            log.warning("group %s needs worker %s, still held by its instance; left for later", group["group_id"],
                        addr)
            return GroupStatus.STALLED.value
        try:
            account = worker_account_for(self.settings, addr)
            w = Worker(-1, account, TxLane(self.chain.w3, account, fees=self.fleet.fees), self.clob_factory(account))
            w.lane.resync()
            w.clob.ensure_creds()
            self.say(f"[TaskQueue] adopting worker {addr} of a stopped instance to finish group {group['group_id']}")
            return run_group_outcome(self.flow_ctx, group, w, on_release)
        finally:
            self.coord.release_worker(addr)
