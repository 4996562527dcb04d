"""Ghost fills: a fill the mempool channel believed whose transaction then failed on chain (receipt status 0) or
never mined (dropped or replaced: gone from the pool and not mined after `DROPPED_AFTER_BLOCKS` blocks).

The mempool channel hands every transaction it emitted fills for to a `GhostWatcher` (one thread, one batched
`eth_getTransactionReceipt` per poll through chain.rpc). A ghost goes to `GhostHandler`, which unwinds what it
can and reports the rest, never keeps it silently:
- a group no worker has started is dropped through the dispatcher's drop path (jobs `dropped` with the reason,
  reservations released) — the flow's start re-reads the group's status in the same lock, so a group is either
  dropped or started, never both;
- a group already started is journalled (a `ghost fill` step on the group, the reason on its jobs once it
  finishes) and reported with what it spent or sold: a `[Ghost] ...` line, visible in `copytrade jobs show`.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from ..state.records import GROUP_TERMINAL

log = logging.getLogger("copytrade.ghosts")

# NOTE: a tx gone from the pool is a ghost only after this many blocks without a receipt: an RPC node behind a
# load balancer may briefly not know a tx another node has, and a replacement (same nonce, higher fee) is mined
# within a block or two. On Polygon (~2 s blocks) that is ~10 s.
DROPPED_AFTER_BLOCKS = 5
# A tx still pending after this long stops being watched (logged): it is neither a fill nor a ghost yet.
MAX_WATCH_S = 3600.0
REVERTED, DROPPED = "reverted", "dropped"


def ghost_reason(why: str) -> str:
    """The one reason a ghost's copies carry: `ghost fill: leader tx reverted` / `... dropped`."""
    return f"ghost fill: leader tx {why}"


@dataclass
class _Watched:
    since: float
    last_seen_block: int | None = None  # the head when the node last knew the tx (pending)
    missing: int = 0  # consecutive rounds the node did not know it


class GhostWatcher(threading.Thread):
    """Watches the transactions the mempool channel emitted fills for, until each is mined or is a ghost."""

    def __init__(self, rpc, on_ghost: Callable[[str, str], None], stop: threading.Event, *, poll_s: float = 0.5,
                 dropped_after_blocks: int = DROPPED_AFTER_BLOCKS, max_watch_s: float = MAX_WATCH_S,
                 after_round: Callable[[], None] | None = None):
        super().__init__(name="detect-ghosts", daemon=True)
        self.rpc, self.on_ghost, self.stop_event, self.poll_s = rpc, on_ghost, stop, poll_s
        self.after_round = after_round  # the handler's follow-up of started ghost groups (same thread)
        self.dropped_after_blocks, self.max_watch_s = dropped_after_blocks, max_watch_s
        self._watched: dict[str, _Watched] = {}
        self._lock = threading.Lock()
        self._head: int | None = None  # the chain head at the last round
        self.ghosts = 0
        self.errors = 0

    def watch(self, tx_hash: str) -> None:
        """Follow `tx_hash` (a pending tx whose fills were emitted) until it is mined or a ghost."""
        with self._lock:
            # NOTE: the node knew the tx at (about) the last head this watcher read: a tx dropped before the
            # watcher's next round still needs `dropped_after_blocks` blocks from there, not from a later head.
            self._watched.setdefault(tx_hash.lower(), _Watched(time.time(), self._head))

    def watching(self) -> int:
        """Transactions still watched."""
        with self._lock:
            return len(self._watched)

    def run(self) -> None:
        backoff = self.poll_s
        while not self.stop_event.wait(backoff):
            try:
                self.check_once()
                if self.after_round is not None:
                    self.after_round()
                backoff = self.poll_s
            except Exception as exc:  # noqa: BLE001 — the node may be away: try again, nothing is forgotten
                self.errors += 1
                backoff = min(max(backoff, 0.2) * 2, 10.0)
                log.warning("ghost watcher: %s; retrying in %.1fs", str(exc)[:160], backoff)
        log.debug("ghost watcher stopped with %d transactions watched", self.watching())

    def check_once(self) -> list[tuple[str, str]]:
        """One round: receipts of every watched tx; returns the ghosts found (and hands each to `on_ghost`)."""
        head = int(self.rpc.call("eth_blockNumber"), 16)
        with self._lock:
            self._head = head
            hashes = list(self._watched)
        if not hashes:
            return []
        found: list[tuple[str, str]] = []
        for start in range(0, len(hashes), 200):
            chunk = hashes[start:start + 200]
            receipts = self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in chunk])
            missing = [h for h, r in zip(chunk, receipts) if not r]
            txs = dict(zip(missing, self.rpc.batch([("eth_getTransactionByHash", [h]) for h in missing]))) \
                if missing else {}
            for h, r in zip(chunk, receipts):
                why = self._verdict(h, r, txs.get(h), head)
                if why:
                    found.append((h, why))
        for h, why in found:
            self.ghosts += 1
            try:
                self.on_ghost(h, why)
            except Exception:  # noqa: BLE001 — a failed unwind is logged; the watcher keeps watching the rest
                log.exception("handling ghost fill %s failed", h)
        return found

    def _verdict(self, h: str, receipt: Any, tx: Any, head: int) -> str | None:
        with self._lock:
            w = self._watched.get(h)
            if w is None:
                return None
            if receipt:
                del self._watched[h]
                return REVERTED if int(str(receipt.get("status", "0x1")), 16) == 0 else None
            if tx:  # still pending (or mined and the receipt not indexed yet)
                w.last_seen_block, w.missing = head, 0
                if time.time() - w.since > self.max_watch_s:
                    del self._watched[h]
                    log.info("pending tx %s not mined after %.0fs: no longer watched", h, self.max_watch_s)
                return None
            # NOTE: gone from the pool; a ghost once it stayed gone for two rounds in a row (one node's hiccup is
            # not enough) and `dropped_after_blocks` blocks were mined since the node last knew it.
            if w.last_seen_block is None:
                w.last_seen_block = head
            w.missing += 1
            if w.missing >= 2 and head - w.last_seen_block >= self.dropped_after_blocks:
                del self._watched[h]
                return DROPPED
            return None


class GhostHandler:
    """What a ghost does to its copies: queued groups dropped (dispatcher's drop path), started ones reported
    with what they spent, journalled on the group and its jobs."""

    def __init__(self, *, state, dispatcher, say: Callable[[str], None]):
        self.state, self.dispatcher, self.say = state, dispatcher, say
        self._lock = threading.Lock()
        self._following: dict[tuple[str, str], str] = {}  # (started group, ghost tx) -> why, until it finishes

    def __call__(self, tx_hash: str, why: str) -> None:
        """A ghost: unwind its queued copies, report (and follow) the started ones."""
        reason = ghost_reason(why)
        jobs = self.state.jobs_of_tx(tx_hash)
        groups: dict[str, list[dict[str, Any]]] = {}
        for j in jobs:
            if j["group_id"]:
                groups.setdefault(j["group_id"], []).append(j)
        dropped = started = n_drop = 0
        for gid in groups:
            if self.dispatcher.drop_queued(gid, reason):
                dropped += 1
                n_drop += len(groups[gid])
                self.state.add_step(group_id=gid, step="ghost fill", status="dropped", tx_hash=tx_hash,
                                    detail=f"{reason}: never started, reservations released")
                continue
            started += 1
            self.state.add_step(group_id=gid, step="ghost fill", status="warning", tx_hash=tx_hash,
                                detail=f"{reason} after the group started: its outcome is reported")
            with self._lock:
                self._following[(gid, tx_hash)] = why
        self.say(f"[Ghost] leader tx {tx_hash} {why}: {len(jobs)} job(s); {dropped} group(s) dropped "
                 f"({n_drop} jobs, reason \"{reason}\"), {started} already started" +
                 (" (reported when they finish)" if started else ""))
        self.follow_up()

    def follow_up(self) -> None:
        """Report the started groups of ghosts that have finished since (with what they spent or sold)."""
        with self._lock:
            todo = dict(self._following)
        for (gid, tx_hash), why in todo.items():
            g = self.state.get_group(gid)
            if g is None or g["status"] not in GROUP_TERMINAL:
                continue
            with self._lock:
                self._following.pop((gid, tx_hash), None)
            self._report_finished(g, tx_hash, why)

    def pending_reports(self) -> int:
        """Started groups of ghosts not finished yet."""
        with self._lock:
            return len(self._following)

    def _report_finished(self, g: dict[str, Any], tx_hash: str, why: str) -> None:
        reason = ghost_reason(why)
        # the copies of this ghost's fills in the group (a coalesced group may also hold copies of other fills)
        jobs = [j for j in self.state.jobs_of_tx(tx_hash) if j["group_id"] == g["group_id"]]
        done = [j for j in jobs if j["status"] == "complete"]
        shares = sum(Decimal(j["shares"] or 0) for j in done)
        usd = sum(Decimal(j["usd"] or 0) for j in done)
        if done:
            verb = "bought" if g["side"] == "BUY" else "sold"
            loss = (f"{len(done)} copies executed from a fill that never happened: {verb} {shares:.2f} shares for "
                    f"{usd:.2f} USD; positions kept, review them")
        else:
            loss = f"no copy executed (group {g['status']}): nothing spent"
        for j in jobs:
            if (j["reason"] or "").startswith(reason):
                continue
            note = f"{reason}; {j['reason']}" if j["reason"] else reason
            self.state.update_job(j["id"], reason=note[:500])
        self.state.add_step(group_id=g["group_id"], step="ghost fill", status="loss" if done else "ok",
                            tx_hash=tx_hash, detail=f"{reason}: {loss}", amount=str(usd) if done else None)
        self.say(f"[Ghost] group {g['group_id']} (leader tx {tx_hash} {why}): {loss}")

