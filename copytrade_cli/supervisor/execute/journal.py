"""The write-ahead journal of one group: its row in the state file, its legs and its step log.

Every side effect is journalled BEFORE (intent: tx hash / order id) and AFTER (result), so a resume after a
crash continues or refunds, and never repeats a pull, an order or a push. `Restart` and `Finished` are how a
stage tells the flow what the journal now says.
"""
from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...errors import CopytradeError
from ..model import Leg, legs_to_json

if TYPE_CHECKING:
    from .context import FlowContext

MICRO = 10**6


class Restart(CopytradeError):
    """Re-enter the flow from the stage the journal now holds (a journalled tx was never broadcast)."""


class Finished(CopytradeError):
    """The group reached a final status mid-stage (journalled): stop here with it."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


class Journal:
    """The group row (`g`), its legs and its steps; writes go to the state file as they are made."""

    def __init__(self, ctx: "FlowContext", group: dict[str, Any], legs: list[Leg], worker_address: str):
        self.c = ctx
        self.g = group
        self.gid: str = group["group_id"]
        self.legs = legs
        self.worker_address = worker_address
        self._unsaved: dict[str, Any] = {}  # metrics written with the next journal write (no commit of their own)

    def set(self, **values: Any) -> None:
        """Journal these fields of the group row (nothing is written when the row already says so)."""
        if self._unsaved:
            values = {**self._unsaved, **values}
            self._unsaved = {}
        elif all(k in self.g and self.g[k] == v for k, v in values.items()):
            return  # already journalled (e.g. the write-ahead intent named this very tx): no second write
        self.g.update(values)
        self.c.state.update_group(self.gid, **values)

    def later(self, **values: Any) -> None:
        """Fields (metrics) to write with the next journal write, without a commit of their own."""
        self.g.update(values)
        self._unsaved.update(values)

    def set_legs(self, legs: list[Leg], **values: Any) -> None:
        """Replace the group's legs (and journal them with `values`)."""
        self.legs = legs
        self.set(legs_json=legs_to_json(legs), **values)

    def batch(self):
        """One state transaction for several journal writes that belong together (one commit, atomic)."""
        return self.c.state.transaction()

    def step(self, step: str, status: str, *, tx: str | None = None, detail: str | None = None,
             amount: str | None = None, t0: float | None = None) -> None:
        """Journal one step of the flow (with its duration from `t0`), report it and feed the metrics."""
        ms = None if t0 is None else (time.time() - t0) * 1000
        self.c.state.add_step(group_id=self.gid, step=step, status=status, tx_hash=tx, detail=detail, amount=amount,
                              ms=ms)
        if self.c.on_step is not None:
            self.c.on_step(step, status, None if ms is None else ms / 1000)
        if status in ("ok", "failed", "skipped"):
            self.c.report(self.gid, step, (detail or "") + (f" tx {tx}" if tx else ""))

    def jobs(self, status: str, reason: str | None = None) -> None:
        """Every job of the group to `status`."""
        self.c.state.update_jobs([leg.job_id for leg in self.legs], status=status, reason=reason,
                                 worker=self.worker_address)

    def proxies(self) -> list[str]:
        """The followers' proxies, in leg order (the order of every batch call's arrays)."""
        return [leg.proxy for leg in self.legs]

    def order_info(self) -> dict[str, Any]:
        """The journalled order details (`order_json`): wire order, settlement txs, the pro-rata split."""
        return json.loads(self.g["order_json"] or "{}")


def human(micro: int) -> str:
    """Micro-units as a decimal string (the journal's unit for USD and shares)."""
    return str(Decimal(micro) / MICRO)
