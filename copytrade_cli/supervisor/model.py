"""The supervisor's unit of work as types: statuses with one terminal set, the leg of a group, and what a run
comes to (outcome, stall cause, deferred retry).

The statuses and the leg live in `state/records.py` (state is below supervisor, and its queries need the
terminal sets); they are re-exported here so `from copytrade_cli.supervisor.model import ...` keeps working.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..state.records import *  # noqa: F401,F403 — re-export: GroupStatus, JobStatus, the terminal sets, Leg
from ..state.records import GROUP_TERMINAL, GroupStatus


class StallCause(str, Enum):
    """Why a group stalled (a retryable failure): decides what the retry does first."""

    OUT_OF_GAS = "out_of_gas"  # the worker lacks gas: refuel the fleet, then retry
    RPC = "rpc"  # the node was unreachable or answered an error
    OTHER = "other"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Outcome:
    """What running (or resuming) a group came to: its status and, for a STALLED group, the typed cause."""

    status: GroupStatus
    cause: StallCause | None = None

    @property
    def final(self) -> bool:
        """The group will never run again."""
        return self.status in GROUP_TERMINAL

    @classmethod
    def of(cls, result: "Outcome | str", cause: StallCause | None = None) -> "Outcome":
        """An Outcome from what a flow returned: an Outcome as it is, a bare status string with `cause`."""
        if isinstance(result, Outcome):
            return result
        return cls(GroupStatus(str(result)), cause)


@dataclass(frozen=True)
class Retry:
    """A deferred re-queue of a stalled group (a value the dispatcher schedules, not a sleeping thread)."""

    group_id: str
    attempt: int
    defer_s: float
    cause: StallCause = StallCause.OTHER


@dataclass(frozen=True)
class PlannedGroup:
    """A group the planner recorded (its jobs attached): the queue takes it once its transaction committed."""

    group_id: str
    jobs: int
