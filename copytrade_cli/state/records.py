"""The unit of work as types: statuses with one terminal set, and the leg of a group.

A *job* is one copy (one follower x one leader fill); a *group* executes the copies of one fill (or several
coalesced fills of the same order) together; a *leg* is one job inside its group: which proxy, how much.
Every module that asks "is this finished?" asks `GROUP_TERMINAL` / `JOB_TERMINAL`, nothing else.

It lives in `state/` (the lowest package that stores these values, below `supervisor/`) so the state file's
queries and the supervisor share one vocabulary without a package cycle; `supervisor/model.py` re-exports it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable

__all__ = ["GROUP_PARKED", "GROUP_TERMINAL", "JOB_TERMINAL", "GroupStatus", "JobStatus", "Leg", "legs_from_json",
           "legs_to_json", "sql_in"]


class GroupStatus(str, Enum):
    """Where an execution group is. `TERMINAL`: it never runs again; `dlq` waits for an operator's retry."""

    QUEUED = "queued"
    RUNNING = "running"
    STALLED = "stalled"  # a retryable failure: re-queued after a delay
    DLQ = "dlq"  # dead-lettered after too many attempts (`copytrade jobs dlq list|retry`)
    COMPLETE = "complete"
    REFUNDED = "refunded"
    FAILED = "failed"
    DROPPED = "dropped"  # never started (queue full), reservations released
    MERGED = "merged"  # coalesced into another group that a worker started

    def __str__(self) -> str:  # str(GroupStatus.QUEUED) == "queued", as stored in the state file
        return self.value


GROUP_TERMINAL: frozenset[str] = frozenset({GroupStatus.COMPLETE, GroupStatus.REFUNDED, GroupStatus.FAILED,
                                            GroupStatus.DROPPED, GroupStatus.MERGED})
# Not terminal, but never picked up by resume or orphan regrouping: only `jobs dlq retry` revives it.
GROUP_PARKED: frozenset[str] = frozenset({GroupStatus.DLQ})


class JobStatus(str, Enum):
    """Where one copy (follower x fill) is."""

    QUEUED = "queued"
    RUNNING = "running"
    SKIPPED = "skipped"
    COMPLETE = "complete"
    REFUNDED = "refunded"
    FAILED = "failed"
    DROPPED = "dropped"

    def __str__(self) -> str:
        return self.value


JOB_TERMINAL: frozenset[str] = frozenset({JobStatus.SKIPPED, JobStatus.COMPLETE, JobStatus.REFUNDED,
                                          JobStatus.FAILED, JobStatus.DROPPED})


def sql_in(values: Iterable[str]) -> str:
    """`('a','b')` for a SQL `in` clause over status values (fixed enum values only, never user input)."""
    return "(" + ",".join(f"'{str(v)}'" for v in sorted(str(v) for v in values)) + ")"


@dataclass(slots=True)
class Leg:
    """One copy inside a group: the job it belongs to, the follower's proxy, and its size."""

    job_id: int
    proxy: str
    usd_micro: int
    shares_micro: int
    reserve_key: str | None = None  # the guardrail reservation to release if the copy never spends

    def to_dict(self) -> dict[str, Any]:
        """The leg as the JSON object stored in `groups.legs_json`."""
        # NOTE: spelled out, not dataclasses.asdict: asdict deep-copies each field and cost ~15 us a leg, ~20% of
        # the decision pipeline's time per 10-follower fill (bench.decision, measured before/after).
        return {"job_id": self.job_id, "proxy": self.proxy, "usd_micro": self.usd_micro,
                "shares_micro": self.shares_micro, "reserve_key": self.reserve_key}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Leg":
        """A leg from its stored JSON object (unknown keys from older rows are ignored)."""
        return cls(job_id=int(d["job_id"]), proxy=d["proxy"], usd_micro=int(d.get("usd_micro") or 0),
                   shares_micro=int(d.get("shares_micro") or 0), reserve_key=d.get("reserve_key"))


def legs_to_json(legs: Iterable[Leg]) -> str:
    """Legs as stored in the group row."""
    return json.dumps([leg.to_dict() for leg in legs])


def legs_from_json(text: str | None) -> list[Leg]:
    """Legs of a group row."""
    return [Leg.from_dict(d) for d in json.loads(text or "[]")]

