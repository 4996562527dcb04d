"""Running (or resuming) one execution group on one exclusively held worker: start it atomically (coalescing
queued copies of the same order), drive its BUY or SELL stage machine from the journalled stage, and say what it
came to as an `Outcome` (a stalled group with its typed cause)."""
from __future__ import annotations

import logging
from typing import Any, Callable

from ...errors import ChainError, CopytradeError, OutOfGasError
from ..model import GROUP_TERMINAL, GroupStatus, JobStatus, Outcome, StallCause, legs_from_json
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
        self.j = Journal(ctx, group, legs_from_json(group["legs_json"]), worker.address)
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
        except CopytradeError as exc:
            return self._stall(str(exc), stall_cause(exc))

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
        for r in taken:
            legs.extend(legs_from_json(r["legs_json"]))
        t_det = [x for x in [self.g.get("t_detected"), *(r.get("t_detected") for r in taken)] if x]
        self.j.set_legs(legs, t_detected=min(t_det) if t_det else None)

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
