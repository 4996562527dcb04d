"""Intake: what a detection channel hands over, as plain calls on the channel's thread (its cursor advances only
after the fill is recorded): dedup, the follow filter, the signal row, the decision, then the planner; the
planned groups go to the queue once their transaction has committed (group commit for a poll's fills)."""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Callable

from ..polymarket.fills import LeaderFill
from .decide import Decision, decide
from .model import PlannedGroup
from .plan import ChainInputs, Planner, SizingReader, iso

log = logging.getLogger("copytrade.supervisor")


def signal_key(fill: LeaderFill) -> str:
    """The supervisor's dedup key: the leader plus the fill's canonical key, so two leaders with identical
    fills in one transaction stay two signals."""
    return f"{fill.leader.lower()}:{fill.key}"


class Intake:
    """Dedup -> follow filter -> record -> decide -> plan, for one fill or one poll's fills."""

    def __init__(self, *, settings, state, chain, coord, book, planner: Planner, sizing: SizingReader, tally,
                 say: Callable[[str], None], enqueue: Callable[[PlannedGroup], None]):
        self.settings, self.state, self.chain, self.coord, self.book = settings, state, chain, coord, book
        self.planner, self.sizing, self.tally, self.say, self.enqueue = planner, sizing, tally, say, enqueue
        self._lock = threading.RLock()  # one decision at a time (the planner's reads and writes go together)
        self._read_ahead: dict[str, ChainInputs] = {}  # fill key -> chain inputs read before the transaction
        self._unroutable_memo: tuple[float, dict[str, str]] = (0.0, {})

    # --- what channels call --------------------------------------------------------------------------------
    def on_fill(self, fill: LeaderFill) -> None:
        """A channel saw a leader fill: record and plan it, then queue its groups."""
        for g in self.take(fill):
            self.enqueue(g)

    def on_fills(self, fills: list[LeaderFill]) -> None:
        """Several fills from one channel poll (a block's logs, a mempool poll): exactly `on_fill` for each,
        but with group commit their state writes commit together (one transaction, one savepoint per fill so
        a bad fill is rolled back alone) and their groups are queued after that commit. Without it (shared
        mode: its dedup marks a fill done only once that fill is durably recorded) they go one by one."""
        if not self.coord.group_commit or len(fills) < 2:
            for f in fills:
                try:
                    self.on_fill(f)
                except Exception:  # noqa: BLE001 — a bad fill must never take the batch (or the channel) down
                    log.exception("processing fill %s failed", f.key)
            return
        # Chain reads first, with no lock held: the state lock must never wait on the node (executors
        # journal through it). Fills another channel already brought are skipped here (dedup decides later).
        for f in fills:
            key = signal_key(f)
            if self.coord.dedup.seen(key) or key in self._read_ahead:
                continue
            follows = self._follows(f)
            if follows:
                try:
                    self._read_ahead[key] = self.sizing.read(f, follows)
                except Exception:  # noqa: BLE001 — read again (and fail loudly) in the fill's own path
                    log.debug("read-ahead for %s failed", key, exc_info=True)
        planned: list[PlannedGroup] = []
        with self._lock:
            try:
                with self.state.transaction():
                    for f in fills:
                        planned += self._take_in_batch(f)
            finally:
                for f in fills:  # reads of fills that turned out to be duplicates
                    self._read_ahead.pop(signal_key(f), None)
        for g in planned:
            self.enqueue(g)

    def paused(self) -> bool:
        """True while intake waits for the coordination store."""
        return self.coord.paused()

    # --- the steps ----------------------------------------------------------------------------------------
    def take(self, fill: LeaderFill, in_tx: bool = False) -> list[PlannedGroup]:
        """Dedup, filter, record and plan one fill; returns its groups, to queue once the caller's transaction
        (if any: `in_tx`, this thread's own, then no second savepoint) commits."""
        self.tally.signal(fill.source)
        key = signal_key(fill)
        dedup = self.coord.dedup
        new_key, new_channel = self.coord.through_outage(lambda: dedup.add(key, fill.source))
        if not new_key:
            self.tally.duplicate()
            if new_channel and self.state.get_signal(key):
                self.state.record_signal({"fill_key": key, "channel": fill.source})
            return []
        follows = self._follows(fill)
        if not follows:
            self.coord.through_outage(lambda: dedup.done(key))
            return []
        planned = self._record(fill, key, follows, in_tx)
        self.coord.through_outage(lambda: dedup.done(key))
        return planned

    def _take_in_batch(self, fill: LeaderFill) -> list[PlannedGroup]:
        """`take` inside a batch: a failure is logged and rolled back for this fill only (as a channel would)."""
        try:
            with self.state.transaction():
                return self.take(fill, in_tx=True)
        except Exception:  # noqa: BLE001 — a bad fill must never take the batch (or the channel) down
            log.exception("processing fill %s failed", fill.key)
            return []

    def _follows(self, fill: LeaderFill):
        """Follows of the fill's leader that existed when it happened (never a leader's earlier trades)."""
        when = iso(fill.timestamp if fill.timestamp else fill.seen_at)
        return [f for f in self.book.followers_of(fill.leader) if f.created_at <= when]

    def _record(self, fill: LeaderFill, key: str, follows, in_tx: bool = False) -> list[PlannedGroup]:
        # NOTE: with group commit, the signal row and its group rows are written in ONE transaction (one commit
        # per fill, or per poll) and the groups are queued only after it commits. Shared mode: the Redis call
        # (reservations) stays outside SQLite transactions, so an outage never holds the file's lock.
        if key not in self._read_ahead:
            self._read_ahead[key] = self.sizing.read(fill, follows)  # node reads outside any transaction

        def announce() -> None:
            px = f" @ {fill.price}" if fill.price is not None else ""
            self.say(f"🚨 SIGNAL DETECTED via {fill.source}: {fill.leader} {fill.side} "
                     f"{fill.shares:.2f} shares{px} (tx {fill.tx_hash[:18]}…)")

        with self._lock:
            with self.state.transaction() if self.coord.group_commit and not in_tx else contextlib.nullcontext():
                signal = {"fill_key": key, "leader": fill.leader, "tx_hash": fill.tx_hash, "log_index": fill.log_index,
                          "token_id": fill.token_id, "condition_id": fill.condition_id, "side": fill.side,
                          "shares": str(fill.shares), "price": None if fill.price is None else str(fill.price),
                          "usd": None if fill.usd is None else str(fill.usd), "channel": fill.source,
                          "detected_ms": fill.seen_at * 1000}
                return self.planner.plan(fill, key, self._decide(fill, key, follows), signal, announce)

    def _decide(self, fill: LeaderFill, key: str, follows) -> Decision:
        pre = self._read_ahead.pop(key, None)
        if pre is not None and (pre[0] or pre[1]):
            wanted = {f.follower.lower() for f in follows}
            if pre[0] and not wanted <= set(pre[0]) or pre[1] and not wanted <= set(pre[1]):
                pre = None  # the follow book changed in between: read again
        balances, positions, before = pre if pre is not None else self.sizing.read(fill, follows)
        return decide(fill, follows, settings=self.settings, is_local=self.chain.is_local, balances=balances,
                      positions=positions, leader_position_before=before, unroutable=self._unroutable())

    def _unroutable(self) -> dict[str, str]:
        """Proxies a migration deprecated (re-read at most once a second): their copies are skipped, with why."""
        at, cached = self._unroutable_memo
        if time.time() - at > 1.0:
            cached = self.state.unroutable_proxies(self.chain.network)
            self._unroutable_memo = (time.time(), cached)
        return cached
