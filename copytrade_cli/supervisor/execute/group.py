"""Running (or resuming) one execution group on one exclusively held worker: start it atomically (coalescing
queued copies of the same order), drive its BUY or SELL stage machine from the journalled stage, and say what it
came to as an `Outcome` (a stalled group with its typed cause)."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ...errors import ChainError, CopytradeError, OutOfGasError
from ..model import GROUP_TERMINAL, GroupStatus, JobStatus, Outcome, StallCause
from .admission import InvalidGroup, book_refusal, check_group, group_age_s, group_refusal, load_legs, not_started
from .buy import BuyFlow
from .chain_io import GroupChain
from .context import FlowContext, FlowWorker
from .flow import Flow
from .journal import Finished, Journal, Restart
from .orders import OrderDesk
from .sell import SellFlow

log = logging.getLogger("copytrade.flows")


def stall_cause(exc: BaseException) -> StallCause:
    """Why a flow error stalls its group: the worker out of gas, the node (unreachable or an error), or else."""
    if isinstance(exc, OutOfGasError):
        return StallCause.OUT_OF_GAS
    if isinstance(exc, ChainError):  # includes chain.rpc.RpcError (the node answered an error)
        return StallCause.RPC
    return StallCause.OTHER


class GroupRunner:
    """Runs (or resumes) one execution group on one worker."""

    def __init__(self, ctx: FlowContext, group: dict[str, Any], worker: FlowWorker,
                 release: Callable[[], None] | None = None):
        self.c = ctx
        self.w = worker
        self.gid: str = group["group_id"]
        self.invalid: str | None = None  # why the row cannot be executed (checked once, here, as it is loaded)
        try:
            legs = load_legs(group.get("legs_json"))
            check_group(group, legs)
        except InvalidGroup as exc:
            legs, self.invalid = [], str(exc)
        self.j = Journal(ctx, group, legs, worker.address)
        self.tx = GroupChain(ctx, self.j, worker)
        self.orders = OrderDesk(self.j, self.tx, worker)
        self._release = release  # gives the worker back to the fleet once the order's outcome is journalled

    @property
    def g(self) -> dict[str, Any]:
        """The group row as journalled so far."""
        return self.j.g

    @property
    def legs(self):
        """The group's legs (`model.Leg`)."""
        return self.j.legs

    def run(self) -> Outcome:
        """Drive the group to a final status from whatever stage it is in; its `Outcome`."""
        if self.g["status"] in GROUP_TERMINAL:
            return Outcome(GroupStatus(self.g["status"]))
        if self.invalid is not None:
            return self._fail_invalid(self.invalid)
        if not_started(self.g):
            refused = self._admission()
            if refused is not None:
                return refused
        merged = self._start()
        if merged is not None:
            return Outcome(GroupStatus(merged))
        flow: Flow = (BuyFlow if self.g["side"] == "BUY" else SellFlow)(self.c, self.j, self.tx, self.orders,
                                                                         self.w, self._release)
        try:
            for _ in range(3):
                try:
                    return self._final(flow, flow.run())
                except Restart:
                    continue  # a journalled tx was never broadcast: redo that stage
            return self._stall("a journalled transaction kept disappearing", StallCause.OTHER)
        except Finished as f:
            return self._final(flow, f.status)
        except InvalidGroup as exc:  # a value computed mid-flow (the split) that no transaction can carry
            return self._fail_invalid(str(exc))
        except CopytradeError as exc:
            return self._stall(str(exc), stall_cause(exc))

    # --- admission: before the first step of a group that has not started ---------------------------------
    def _admission(self) -> Outcome | None:
        """Re-check a not-started group (whatever queued it: intake, resume, orphan regrouping, a refill):
        the real-trading switch, its age, and (once it is older than a moment) the book against its price
        limit. Refused: jobs skipped with the reason, reservations released, the group dropped (terminal)."""
        rules = self.c.rules
        if rules is None:
            return None
        why = group_refusal(rules, self.g)
        if why is None:
            age = group_age_s(self.g)
            if age is not None and age > rules.book_check_after_s:
                book = getattr(self.w.clob, "book", None)
                why = book_refusal(self.g["side"], self.g["price_limit"], book(self.g["token_id"]) if book else None)
        return None if why is None else self._refuse(why)

    def _refuse(self, why: str) -> Outcome | None:
        """Refuse the whole (not-started) group with `why`; atomically against coalescing by another worker."""
        with self.j.batch():
            now = self.c.state.get_group(self.gid) or self.g
            if now["status"] in GROUP_TERMINAL:
                return Outcome(GroupStatus(now["status"]))  # merged into a group another worker started
            if not not_started(now):
                self.j.g = now
                return None  # started meanwhile (another instance): it keeps going
            self.j.jobs(JobStatus.SKIPPED.value, why)
            self.j.step("Start", "skipped", detail=why)
            self.j.set(stage="dropped", status=GroupStatus.DROPPED.value, error=why[:300], t_done=time.time())
            self._release_reservations()
        log.info("group %s refused before its first step: %s", self.gid, why)
        return Outcome(GroupStatus.DROPPED)

    def _fail_invalid(self, why: str) -> Outcome:
        """A group whose journalled values no execution can be made of: failed (terminal) with the reason, its
        jobs failed with it, its reservations released. A started one names its stage and worker (the
        operator's to settle: nothing more is sent for it)."""
        g = self.g
        where = "" if not_started(g) else f" (stopped at stage {g.get('stage')} on worker {g.get('worker')})"
        reason = f"invalid group: {why}{where}"[:300]
        rows = [r for r in self.c.state.list_jobs(group_id=self.gid, limit=100_000)
                if r["status"] not in (JobStatus.COMPLETE, JobStatus.SKIPPED)]  # those keep what they say
        with self.j.batch():
            self.c.state.update_jobs([r["id"] for r in rows], status=JobStatus.FAILED.value, reason=reason)
            self.j.step("Validate", "failed", detail=reason)
            self.j.set(stage="failed", status=GroupStatus.FAILED.value, error=reason, t_done=time.time())
            self._release_reservations(rows)
        log.warning("group %s: %s", self.gid, reason)
        return Outcome(GroupStatus.FAILED)

    def _release_reservations(self, rows: list[dict[str, Any]] | None = None) -> None:
        """Give back the cap reservations of the group's legs (or, legs unreadable, of its job rows: the
        planner's key is `fill_key:follower`)."""
        caps = self.c.guardrails
        if not caps:
            return
        keys = {leg.reserve_key for leg in self.j.legs if leg.reserve_key}
        for r in rows or []:
            keys.add(f"{r['fill_key']}:{r['follower'].lower()}")
        for k in sorted(keys):
            caps.release(k)

    def _start(self) -> str | None:
        """Mark the group running on this worker (one transaction); the final status of a group that another
        worker's group took in meanwhile (merged), else None."""
        with self.j.batch():
            if self.g["worker"] is None:
                # Start a fresh group atomically against coalescing by another worker (same transaction).
                now = self.c.state.get_group(self.gid) or self.g
                if now["status"] != GroupStatus.QUEUED or now["worker"] is not None:
                    if now["status"] in GROUP_TERMINAL:
                        return now["status"]  # merged into a group another worker started
                    self.j.g = now
                elif self.c.coalesce and self.g["stage"] == "queued":
                    self._coalesce()
            attempts = (self.g.get("attempts") or 0) + 1
            if self.g["worker"] is None:
                self.j.set(worker=self.w.address, status=GroupStatus.RUNNING.value, attempts=attempts)
            else:
                self.j.set(status=GroupStatus.RUNNING.value, attempts=attempts)
            self.j.jobs(JobStatus.RUNNING.value)
        return None

    def _coalesce(self) -> None:
        """Under backlog, copies of other fills waiting for the same order (flow, side, token, price limit)
        join this one: one order and one pull/push batch for all of them, each job keeping its own leg (same
        price for every follower, pro-rata split as usual). Runs inside the start transaction."""
        room = self.c.coalesce_max_legs - len(self.j.legs)
        if room <= 0:
            return
        taken = self.c.state.absorb_queued_groups(self.gid, flow=self.g["flow"], side=self.g["side"],
                                                  token_id=self.g["token_id"], price_limit=self.g["price_limit"],
                                                  max_legs=room)
        if not taken:
            return
        legs = list(self.j.legs)
        joined, rejected = [], []
        for r in taken:
            why = None
            try:
                more = load_legs(r["legs_json"])
                check_group(r, more)
            except InvalidGroup as exc:
                more, why = [], f"invalid group: {exc}"
            if why is None and self.c.rules is not None:
                why = group_refusal(self.c.rules, r)  # a stale group is not taken in (its limit is that old)
            if why is None:
                legs.extend(more)
                joined.append(r)
            else:
                rejected.append((r, more, why))
        keep = {leg.job_id for leg in legs}
        for r, more, why in rejected:
            self._unmerge(r, more, why, keep)
        taken = joined
        if not taken:
            return
        t_det = [x for x in [self.g.get("t_detected"), *(r.get("t_detected") for r in taken)] if x]
        self.j.set_legs(legs, t_detected=min(t_det) if t_det else None)

    def _unmerge(self, r: dict[str, Any], legs: list, why: str, keep: set[int]) -> None:
        """A queued group absorbed by coalescing that may not run (invalid, stale): its jobs (moved to this
        group by the absorb) skipped or failed with the reason, its reservations released, its row terminal.
        Runs inside the start transaction."""
        rows = [j for j in self.c.state.list_jobs(group_id=self.gid, limit=100_000) if j["id"] not in keep
                and j["status"] not in ("complete", "skipped", "failed", "dropped")]
        if legs:
            ids = {leg.job_id for leg in legs}
            rows = [j for j in rows if j["id"] in ids]
        failed = why.startswith("invalid")
        self.c.state.update_jobs([j["id"] for j in rows], status=(JobStatus.FAILED if failed else JobStatus.SKIPPED).value,
                                 reason=why[:300], group_id=r["group_id"])
        self.c.state.update_group(r["group_id"], status=(GroupStatus.FAILED if failed else GroupStatus.DROPPED).value,
                                  stage="failed" if failed else "dropped", error=why[:300])
        self.c.state.add_step(group_id=r["group_id"], step="Validate" if failed else "Start",
                              status="failed" if failed else "skipped", detail=why[:300])
        if self.c.guardrails:
            keys = {leg.reserve_key for leg in legs if leg.reserve_key} | {f"{j['fill_key']}:{j['follower'].lower()}"
                                                                           for j in rows}
            for k in sorted(keys):
                self.c.guardrails.release(k)

    def _final(self, flow: Flow, status: str) -> Outcome:
        if status in GROUP_TERMINAL:
            flow.hold(0)  # nothing of the worker's collateral is this group's any more
        return Outcome(GroupStatus(status))

    def _stall(self, error: str, cause: StallCause) -> Outcome:
        """An unexpected error mid-flow: leave the journal where it is (resume() picks it up) and say so."""
        log.warning("group %s stopped at stage %s: %s", self.gid, self.g["stage"], error)
        self.j.set(status=GroupStatus.STALLED.value, error=error[:300])
        self.c.report(self.gid, "Stalled", f"at {self.g['stage']}: {error[:160]}")
        return Outcome(GroupStatus.STALLED, cause)


def run_group_outcome(ctx: FlowContext, group: dict[str, Any], worker: FlowWorker,
                      release: Callable[[], None] | None = None) -> Outcome:
    """Run or resume a group; its `Outcome` (final or stalled status, and a stall's cause). `release()` is called
    once the order's outcome is journalled (the worker may then serve other groups while this one settles)."""
    try:
        return GroupRunner(ctx, group, worker, release).run()
    except Finished as f:
        return Outcome(GroupStatus(f.status))


def run_group(ctx: FlowContext, group: dict[str, Any], worker: FlowWorker,
              release: Callable[[], None] | None = None) -> str:
    """`run_group_outcome` as the status string ("complete", "stalled", ...), as runner.py expects today."""
    return run_group_outcome(ctx, group, worker, release).status.value
