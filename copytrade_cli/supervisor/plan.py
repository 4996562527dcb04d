"""Plan: a fill's decision becomes reservations and its one signal row plus group rows with the copies packed
as legs (job rows are created when a group starts), handed on as `PlannedGroup`s for the queue. Legs are built
here and only here.

Also what sizing needs from the chain (`SizingReader`, read before any state transaction), and recovery's
regrouping of jobs a dead process claimed but never grouped.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import time
import uuid
from decimal import Decimal
from typing import Any, Callable

from ..polymarket.fills import LeaderFill
from ..state.db import iso_ms
from .decide import Decision
from .model import JobStatus, Leg, PlannedGroup, legs_to_json

# The columns of a job row as tuples for `State.claim_jobs` (job rows made one by one, as before the packed
# journal: older files' orphans, tests that journal a backlog by hand).
_JOB_COLS = ["fill_key", "leader", "side", "token_id", "condition_id", "follower", "follow_id", "flow", "status",
             "reason", "usd", "shares", "price", "group_id"]
ChainInputs = tuple[dict, dict, "int | None"]  # (balances, positions, leader position before the fill)


@functools.lru_cache(maxsize=4096)
def _usd_str(micro: int) -> str:
    """A micro amount as the jobs table's decimal string (one Decimal division per distinct amount)."""
    return str(Decimal(micro) / 10**6)


@functools.lru_cache(maxsize=65_536)
def _follower_json(follower: str, follow_id: int | None) -> tuple[str, str]:
    """A follower's fixed part of its legs' JSON (proxy, follow id) and its lowercase address as JSON text
    (the reservation key's tail), encoded once per follow instead of once per copy."""
    return (f'"proxy":{json.dumps(follower)},"follow_id":{json.dumps(follow_id)}',
            json.dumps(follower.lower())[1:-1])


def iso(ts: float) -> str:
    """A unix time as the state file's ISO timestamp (UTC, milliseconds)."""
    return iso_ms(ts)


class SizingReader:
    """Chain reads sizing needs: follower balances (BUY, standard flow or percent sizing), or positions and the
    leader's position before the fill (SELL). `collateral` and `ctf` are set at start-up."""

    def __init__(self, chain):
        self.chain = chain
        self.collateral: str | None = None
        self.ctf: str | None = None

    def follower_balances(self, token: str, follows) -> dict[str, int]:
        """Collateral of every follower, in ONE JSON-RPC batch (was one round trip per follower)."""
        from ..chain.reads import erc20_balances

        addrs = list(dict.fromkeys(f.follower for f in follows))
        try:
            vals = erc20_balances(self.chain.w3, token, addrs)
        except Exception:  # noqa: BLE001 — a node without batch support: one call each
            from ..chain.proxies import erc20

            tok = erc20(self.chain.w3, token)
            vals = [tok.functions.balanceOf(a).call() for a in addrs]
        return {a.lower(): int(v) for a, v in zip(addrs, vals)}

    def read(self, fill: LeaderFill, follows) -> ChainInputs:
        """(balances, positions, leader position before) for this fill's follows."""
        from ..chain.proxies import erc1155

        balances, positions, before = {}, {}, None
        if fill.side == "BUY":
            if any(f.sizing == "percent" or f.flow == "standard" for f in follows):
                balances = self.follower_balances(self.collateral, follows)
        else:
            ctf = erc1155(self.chain.w3, self.ctf)
            ids = [int(fill.token_id)] * len(follows)
            bals = ctf.functions.balanceOfBatch([f.follower for f in follows], ids).call()
            positions = {f.follower.lower(): b for f, b in zip(follows, bals)}
            before = self.leader_position_before(ctf, fill)
        return balances, positions, before

    @staticmethod
    def leader_position_before(ctf, fill: LeaderFill) -> int | None:
        """The leader's position in the fill's token before the fill, or None when it cannot be known (the
        decision then skips the SELL: never sell everything on a guess).
        - mined (block known): the balance at the block before, read from the node; a node without that
          state (pruned, an old backfill) -> None. Several fills of one tx are all measured against it.
        - pending (mempool): the balance now (the tx has not moved anything yet).
        - a feed row (mined, block not carried): the balance now plus what this fill sold (approximate)."""
        token = int(fill.token_id)
        if fill.block_number is not None:
            if fill.block_number <= 0:
                return None
            try:
                return int(ctf.functions.balanceOf(fill.leader, token).call(block_identifier=fill.block_number - 1))
            except Exception:  # noqa: BLE001 — history unavailable: unknown, the SELL is skipped with the reason
                return None
        held_now = int(ctf.functions.balanceOf(fill.leader, token).call())
        return held_now if fill.source == "mempool" else held_now + fill.shares_micro


class Planner:
    """Turns one fill's `Decision` into recorded reservations, jobs and groups."""

    def __init__(self, *, state, guardrails, coord, aggregate: bool, say: Callable[[str], None],
                 count: Callable[[str, int], None]):
        self.state, self.guardrails, self.coord = state, guardrails, coord
        self.aggregate, self.say, self.count = aggregate, say, count

    def plan(self, fill: LeaderFill, fkey: str, decision: Decision, signal: dict[str, Any],
             announce: Callable[[], None] | None = None) -> list[PlannedGroup]:
        """Record the fill's one signal row, reserve caps for all its copies in one call, pack its copies into
        its group row(s) (job rows come when a group starts); the groups to queue once the surrounding
        transaction commits. A fill already recorded was decided then: nothing again (never twice)."""
        # Caps for every copy of the fill, BUY and SELL alike, in one call (in process: one read of the totals
        # and one executemany into the ledger, inside the fill's transaction; shared: one Lua call, retried
        # across an outage, safe since a reservation is idempotent by key, outside any SQLite transaction).
        # A BUY counts its USD, a SELL shares x its price limit (`CopySpec.value_micro`).
        items = [(cp.follow.follower, cp.value_micro or cp.usd_micro, f"{fkey}:{cp.follow.follower.lower()}")
                 for cp in decision.copies]
        skips = [{"id": 0, "follower": sk.follow.follower, "follow_id": sk.follow.id, "flow": sk.follow.flow,
                  "reason": sk.reason, "usd": None, "shares": None} for sk in decision.skips]
        if self.coord.group_commit:  # the intake's transaction is open around all of this
            first = self.state.record_fill(signal)
            if first is None:
                return []
            if announce is not None:
                announce()
            verdicts = self.guardrails.reserve_many(items) if items else []
            return self._pack(fill, fkey, decision, items, verdicts, skips, first)
        if self.state.get_signal(fkey) is not None:
            self.state.record_signal({"fill_key": fkey, "channel": signal.get("channel")})
            return []
        verdicts = self.coord.through_outage(lambda: self.guardrails.reserve_many(items)) if items else []
        with self.state.transaction():
            first = self.state.record_fill(signal)
            if first is None:
                return []  # another instance recorded it meanwhile (same reservation keys: those are its own)
            if announce is not None:
                announce()
            return self._pack(fill, fkey, decision, items, verdicts, skips, first)

    def _pack(self, fill: LeaderFill, fkey: str, decision: Decision, items: list, verdicts: list, skips: list,
              first: int) -> list[PlannedGroup]:
        """The fill's copies as legs of its group rows and its copies not made as its signal's `skips_json`:
        copy k (skips first, then the copies, in decision order) has job id `first + k`."""
        for k, sk in enumerate(skips):
            sk["id"] = first + k
        n = len(skips)
        legs_by_group: dict[tuple, list[str]] = {}  # each leg as its JSON object (job_rows reads these fields)
        ekey = json.dumps(fkey)[1:-1]
        gids: dict[tuple, str] = {}
        limits: dict[tuple, str] = {}
        for cp, (_w, _u, key), (ok, why) in zip(decision.copies, items, verdicts):
            f = cp.follow
            if not ok:
                skips.append({"id": first + n, "follower": f.follower, "follow_id": f.id, "flow": f.flow,
                              "reason": why, "usd": _usd_str(cp.usd_micro),
                              "shares": _usd_str(cp.shares_micro) if cp.side == "SELL" else None})
                n += 1
                continue
            flow = f.flow if cp.side == "BUY" else "standard"
            lim = str(cp.price_limit)
            gkey = (flow, cp.side, lim) if self.aggregate else (flow, cp.side, n)
            if gkey not in gids:
                gids[gkey] = os.urandom(8).hex()
                limits[gkey] = lim
            frag, low = _follower_json(f.follower, f.id)
            legs_by_group.setdefault(gkey, []).append(
                f'{{"job_id":{first + n:d},{frag},"usd_micro":{cp.usd_micro:d},"shares_micro":{cp.shares_micro:d},'
                f'"reserve_key":"{ekey}:{low}","usd":"{_usd_str(cp.usd_micro)}","shares":"{_usd_str(cp.shares_micro)}"}}')
            n += 1
        if skips:
            self.state.set_skips(fkey, json.dumps(skips))  # numbered now that the row's id is known
            for sk in skips:
                self.count(str(JobStatus.SKIPPED), 1)
                self.say(f"Skipped copy for {sk['follower']}: {sk['reason']}")
        n_jobs = sum(len(v) for v in legs_by_group.values())
        if n_jobs:
            self.say(f"Dispatching {n_jobs} jobs... ({len(legs_by_group)} group(s))")
        now = time.time()
        planned: list[PlannedGroup] = []
        for gkey, legs in legs_by_group.items():
            gid = gids[gkey]
            self.state.create_group({"group_id": gid, "fill_key": fkey, "flow": gkey[0], "side": gkey[1],
                                     "token_id": fill.token_id, "condition_id": fill.condition_id,
                                     "price_limit": limits[gkey], "t_detected": fill.seen_at, "stage": "queued",
                                     "status": "queued", "legs_json": "[" + ",".join(legs) + "]", "t_queued": now,
                                     "jobs_created": 0}, [])
            planned.append(PlannedGroup(gid, len(legs)))
        return planned

    # --- recovery ----------------------------------------------------------------------------------------
    def regroup_orphans(self, older_than_s: float | None = None) -> None:
        """Jobs claimed but not yet grouped when the process died: group them now (nothing accepted is lost)."""
        orphans = [j for j in self.state.list_jobs(status="pending", limit=100_000) if not j.get("group_id")]
        if older_than_s is not None:
            cutoff = iso(time.time() - older_than_s)
            orphans = [j for j in orphans if j["created_at"] < cutoff]
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for j in orphans:
            groups.setdefault((j["fill_key"], j["flow"], j["side"], j["price"], j["token_id"], j["condition_id"]),
                              []).append(j)
        for (fill_key, flow, side, price, token, cond), jobs in groups.items():
            legs = [Leg(job_id=j["id"], proxy=j["follower"],
                        usd_micro=int(Decimal(j["usd"] or 0) * 10**6) if side == "BUY" else 0,
                        shares_micro=int(Decimal(j["shares"] or 0) * 10**6) if side == "SELL" else 0,
                        reserve_key=f"{fill_key}:{j['follower'].lower()}") for j in jobs]
            sig = self.state.get_signal(fill_key) or {}
            self.create_group({"fill_key": fill_key, "flow": flow, "side": side, "token_id": token,
                               "condition_id": cond, "price_limit": price,
                               "t_detected": (sig.get("detected_ms") or 0) / 1000 or None}, legs)

    def create_group(self, row: dict[str, Any], legs: list[Leg]) -> tuple[str | None, list[Leg]]:
        """Record a group over jobs no other group holds yet (a recovering instance may have grouped some of
        them meanwhile: those are left to that group, never executed twice)."""
        while legs:
            gid = uuid.uuid4().hex[:16]
            if self.state.create_group({**row, "group_id": gid, "stage": "queued", "status": "queued",
                                        "legs_json": legs_to_json(legs), "t_queued": time.time()},
                                       [leg.job_id for leg in legs], exclusive=True):
                return gid, legs
            free = {j["id"] for j in self.state.jobs_by_ids([leg.job_id for leg in legs]) if not j["group_id"]}
            legs = [leg for leg in legs if leg.job_id in free]
        return None, []
