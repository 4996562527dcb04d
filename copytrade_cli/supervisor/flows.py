"""Execution flows for one group of copies of one leader fill, on one exclusively held worker.

Standard BUY:     Pull Funds (proxies -> worker, one batch tx) -> Place Order (one FOK order for the sum)
                  -> Push (outcome tokens -> proxies, one batch tx, pro rata) ; refund on failure.
Smart Buffer BUY: Check Buffer (worker float covers the sum) -> Place Order -> Push -> debts recorded;
                  Reimburse (proxies -> worker) runs later, batched (see `Reimburser`).
SELL:             Pull Tokens (proxies -> worker) -> Place Order (FOK sell) -> Push proceeds pro rata ;
                  tokens pushed back on failure.

Every side effect is journalled in the group row BEFORE (intent: tx hash / order id) and AFTER (result),
so `resume()` after a crash continues or refunds, and never repeats a pull, an order or a push.
The worker is held exclusively only up to its order's outcome (filled amounts from the CLOB's answer,
journalled): then it is given back (`release`) and the rest (settlement mined, push, refund) runs on without
it, its collateral still committed to the group recorded on the worker (`Worker.reserve`) so a Smart Buffer
check of a later group on the same worker never counts it as float.
Pro-rata rule: each follower gets floor(total * weight_i / sum(weights)); the leftover micro-units go one
each to the largest fractional remainders (ties: lower job id). Same price for every follower.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from ..chain.contracts import encode_call
from ..chain.reads import erc20_balances
from ..chain.deploy import contract
from ..chain.proxies import erc20, erc1155
from ..chain.tx import raw_rpc, receipt_watcher, wait_receipt
from ..errors import ChainError, ClobError, CopytradeError
from ..state import State

log = logging.getLogger("copytrade.flows")
MICRO = 10**6
DONE = ("complete", "refunded", "failed", "dropped", "merged")


def pro_rata(total: int, weights: list[int]) -> list[int]:
    """Split `total` micro-units by `weights`: floors, then leftover units to the largest remainders."""
    wsum = sum(weights)
    if wsum <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [total * w // wsum for w in weights]
    rema = [(total * w % wsum, -i) for i, w in enumerate(weights)]
    left = total - sum(shares)
    for _, neg_i in sorted(rema, reverse=True)[:left]:
        shares[-neg_i] += 1
    return shares


@dataclass
class FlowContext:
    """What a flow needs: chain, addresses, state, and where to report steps."""

    w3: Any
    state: State
    executor: str
    collateral: str
    ctf: str
    report: Callable[[str, str, str], None]  # (group_id, step, detail)
    max_retries: int = 3
    guardrails: Any = None
    fault_kill_at: str | None = None
    on_step: Callable[[str, str, float | None], None] | None = None  # (step, status, seconds): metrics
    stuck_after_s: float = 30.0
    coalesce: bool = False  # in process: a group starting now takes in queued groups of the same order
    coalesce_max_legs: int = 150

    def fault(self, point: str) -> None:
        """Fault injection for the crash tests: die exactly here, as `kill -9` would."""
        if self.fault_kill_at == point:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


_contract_cache: dict[tuple[str, int, str], tuple[Any, Any]] = {}


def _cached_contract(kind: str, w3, address: str):
    """Contract objects are built once per (node connection, address): building one re-reads and hashes the
    artifact sources (and web3 re-parses the ABI), which the profile showed on every group."""
    key = (kind, id(w3), address)
    hit = _contract_cache.get(key)
    if hit is not None and hit[0] is w3:
        return hit[1]
    c = contract(w3, "Executor", address) if kind == "Executor" else (erc20 if kind == "erc20" else erc1155)(w3, address)
    _contract_cache[key] = (w3, c)
    return c


class GroupRunner:
    """Runs (or resumes) one execution group on one worker."""

    def __init__(self, ctx: FlowContext, group: dict[str, Any], worker, release: Callable[[], None] | None = None):
        self.c = ctx
        self._release_cb = release  # gives the worker back to the fleet once the order's outcome is journalled
        self.g = group
        self.w = worker
        self.gid = group["group_id"]
        self.legs: list[dict[str, Any]] = json.loads(group["legs_json"])
        self.executor = _cached_contract("Executor", ctx.w3, ctx.executor)
        self._sent: set[str] = set()  # tx hashes this process broadcast (send returned): no need to ask the node
        self._receipts: dict[str, dict[str, Any]] = {}  # receipts already waited for in this run
        self._unsaved: dict[str, Any] = {}  # metrics written with the next journal write (no commit of their own)

    # --- journal helpers -----------------------------------------------------------------------------
    def _set(self, **values: Any) -> None:
        if self._unsaved:
            values = {**self._unsaved, **values}
            self._unsaved = {}
        elif all(k in self.g and self.g[k] == v for k, v in values.items()):
            return  # already journalled (e.g. the write-ahead intent named this very tx): no second write
        self.g.update(values)
        self.c.state.update_group(self.gid, **values)

    def _batch(self):
        """One state transaction for several journal writes that belong together (one commit, atomic)."""
        return self.c.state.transaction()

    def _step(self, step: str, status: str, *, tx: str | None = None, detail: str | None = None,
              amount: str | None = None, t0: float | None = None) -> None:
        ms = None if t0 is None else (time.time() - t0) * 1000
        self.c.state.add_step(group_id=self.gid, step=step, status=status, tx_hash=tx, detail=detail, amount=amount,
                              ms=ms)
        if self.c.on_step is not None:
            self.c.on_step(step, status, None if ms is None else ms / 1000)
        if status in ("ok", "failed", "skipped"):
            self.c.report(self.gid, step, (detail or "") + (f" tx {tx}" if tx else ""))

    def _jobs(self, status: str, reason: str | None = None) -> None:
        self.c.state.update_jobs([l["job_id"] for l in self.legs], status=status, reason=reason, worker=self.w.address)

    def _send_executor(self, fn: str, *args, intent: dict[str, Any] | None = None, tx_field: str | None = None,
                       journal: Callable[[str], None] | None = None) -> str:
        """Send an Executor call; with `intent`, the stage and the tx hash (`tx_field`) are journalled after
        signing and BEFORE broadcasting, so a crash at any instant leaves a journal that names the tx."""
        data = encode_call("Executor", fn, *args)  # = self.executor.encode_abi(...), ~15x less CPU
        gas = 120_000 + 60_000 * len(self.legs)
        before = journal if intent is None else (lambda h: self._set(**intent, **{tx_field: h}))
        h = self.w.lane.send({"to": self.c.executor, "data": data}, gas=gas, before_send=before)
        self._sent.add(h)
        return h

    def _never_broadcast(self, tx: str) -> bool:
        """The journalled tx is unknown to the node: the process died between journalling and broadcasting."""
        if tx in self._sent:
            return False  # broadcast by this very run (the node accepted it): only a resume needs to ask
        rr = raw_rpc(self.c.w3)
        if rr is not None:
            got = rr.batch([("eth_getTransactionByHash", [tx]), ("eth_getTransactionReceipt", [tx])])
            if all(not isinstance(g, Exception) for g in got):
                return not got[0] and not got[1]
        try:
            self.c.w3.eth.get_transaction(tx)
            return False
        except Exception:  # noqa: BLE001 — TransactionNotFound
            try:
                self.c.w3.eth.get_transaction_receipt(tx)
                return False
            except Exception:  # noqa: BLE001
                return True

    def _wait(self, tx: str, field: str | None = None) -> dict[str, Any]:
        """Wait for our transaction; one stuck past `stuck_after_s` is re-sent with a higher fee and the
        journal follows the replacement (so a resume waits for the hash that can still be mined)."""
        if tx in self._receipts:
            return self._receipts[tx]  # already mined and checked in this run (one receipt read, not two)
        if tx in self.w.lane.nonce_of:
            def replaced(new: str) -> None:
                self._sent.add(new)
                if field:
                    self._set(**{field: new})

            r = self.w.lane.wait(tx, stuck_after=self.c.stuck_after_s, timeout=max(120.0, 4 * self.c.stuck_after_s),
                                 on_replace=replaced)
        else:
            r = wait_receipt(self.c.w3, tx, timeout=120)
        self._receipts[tx] = r
        return r

    def _proxies(self) -> list[str]:
        return [l["proxy"] for l in self.legs]

    # --- entry ---------------------------------------------------------------------------------------
    def run(self) -> str:
        """Drive the group to a final status from whatever stage it is in; returns the status."""
        if self.g["status"] in DONE:
            return self.g["status"]
        with self._batch():
            if self.g["worker"] is None:
                # Start a fresh group atomically against coalescing by another worker (same transaction).
                now = self.c.state.get_group(self.gid) or self.g
                if now["status"] != "queued" or now["worker"] is not None:
                    if now["status"] in DONE:
                        return now["status"]  # merged into a group another worker started
                    self.g = now
                elif self.c.coalesce and self.g["stage"] == "queued":
                    self._coalesce()
            if self.g["worker"] is None:
                self._set(worker=self.w.address, status="running", attempts=(self.g.get("attempts") or 0) + 1)
            else:
                self._set(status="running", attempts=(self.g.get("attempts") or 0) + 1)
            self._jobs("running")
        try:
            for _ in range(3):
                try:
                    return self._final(self._buy() if self.g["side"] == "BUY" else self._sell())
                except _Restart:
                    continue  # a journalled tx was never broadcast: redo that stage
            return self._fail_safely("a journalled transaction kept disappearing")
        except _Finished as f:
            return self._final(f.status)
        except CopytradeError as exc:
            return self._fail_safely(str(exc))

    def _final(self, status: str) -> str:
        if status in DONE:
            self._hold(0)  # nothing of the worker's collateral is this group's any more
        return status

    # --- the worker: given back early, collateral still committed ----------------------------------------
    def _release(self) -> None:
        """The order's outcome is journalled: the worker may take the next order (same nonce lane)."""
        cb, self._release_cb = self._release_cb, None
        if cb is not None:
            cb()

    def _hold(self, amount: int) -> None:
        reserve = getattr(self.w, "reserve", None)
        if reserve is not None:
            reserve(self.gid, amount)

    def _held_elsewhere(self) -> int:
        f = getattr(self.w, "reserved_except", None)
        return f(self.gid) if f is not None else 0

    def _coalesce(self) -> None:
        """Under backlog, copies of other fills waiting for the same order (flow, side, token, price limit)
        join this one: one order and one pull/push batch for all of them, each job keeping its own leg (same
        price for every follower, pro-rata split as usual). Runs inside the start transaction."""
        room = self.c.coalesce_max_legs - len(self.legs)
        if room <= 0:
            return
        taken = self.c.state.absorb_queued_groups(self.gid, flow=self.g["flow"], side=self.g["side"],
                                                  token_id=self.g["token_id"], price_limit=self.g["price_limit"],
                                                  max_legs=room)
        if not taken:
            return
        for r in taken:
            self.legs.extend(json.loads(r["legs_json"]))
        t_det = [x for x in [self.g.get("t_detected"), *(r.get("t_detected") for r in taken)] if x]
        self._set(legs_json=json.dumps(self.legs), t_detected=min(t_det) if t_det else None)

    # --- BUY -------------------------------------------------------------------------------------------
    def _buy(self) -> str:
        total = sum(l["usd_micro"] for l in self.legs)
        buffer = self.g["flow"] == "buffer"
        stage = self.g["stage"]
        if stage == "queued":
            if buffer:
                t0 = time.time()
                # Reservations first, then the balance: a settlement mined in between is counted twice (safe),
                # never not at all. Check and reservation are one step per worker (several groups may run on it).
                with getattr(self.w, "check_lock", None) or contextlib.nullcontext():
                    held = self._held_elsewhere()
                    have = erc20_balances(self.c.w3, self.c.collateral, [self.w.address])[0]
                    have -= held
                    if have >= total:
                        self._hold(total)
                if have < total:
                    self._step("Check Buffer", "failed", detail=f"float {have / MICRO:.2f} < {total / MICRO:.2f} USD; "
                               "falling back to Standard", t0=t0)
                    self._set(flow="standard")
                    return self._buy()
                self._step("Check Buffer", "ok", detail=f"float {have / MICRO:.2f} USD covers {total / MICRO:.2f}", t0=t0)
                self._set(stage="funded")
            else:
                self._pull_collateral(total)
        elif stage == "pull_sent":
            self._confirm_pull()
        stage = self.g["stage"]
        total = sum(l["usd_micro"] for l in self.legs)  # legs a dry proxy could not pay were dropped before the pull
        if stage in ("funded", "order_built", "order_posted", "filled", "order_failed"):
            self._hold(total)  # committed to the order / parked on the worker until the settlement is mined
        if stage == "funded":
            self._place_order("BUY", Decimal(total) / MICRO)
        elif stage in ("order_built", "order_posted"):
            self._reconcile_order()
        self._release()
        if self.g["stage"] == "filled":
            self._await_settlement()
            if self.g["stage"] == "filled":
                # Settled: a Smart Buffer group's spend has left the balance; a Standard group's change is still
                # the proxies' until it is refunded.
                self._hold(0 if buffer else total - self.g["spent_micro"])
        stage = self.g["stage"]
        if stage == "filled":
            return self._push_outcome()
        if stage == "push_sent":
            return self._confirm_push()
        if stage == "order_failed":
            return self._refund_collateral()
        if stage == "refund_sent":
            return self._confirm_refund()
        return self.g["status"]

    def _pull_collateral(self, total: int) -> None:
        t0 = time.time()
        total = self._drop_unfunded_legs(total)
        self._hold(total)  # the pulled collateral is this group's from the moment it lands: never another's float
        tx = self._send_executor("pullCollateral", self.c.collateral, self._proxies(), [l["usd_micro"] for l in self.legs],
                                 intent={"stage": "pull_sent"}, tx_field="pull_tx")
        self._set(stage="pull_sent", pull_tx=tx)
        self._confirm_pull(t0, f"{total / MICRO:.2f} USD from {len(self.legs)} proxies")

    def _drop_unfunded_legs(self, total: int) -> int:
        """Before a Standard pull (also a Smart Buffer group that fell back to it): one batched read of the
        proxies' collateral. A leg whose proxy cannot pay it (drained since the decision, or named by several
        coalesced legs) is skipped with the reason, so one dry proxy never reverts the whole batch and fails
        every other follower's copy. Returns the new total; raises _Finished when no leg is left."""
        need: dict[str, int] = {}
        for l in self.legs:
            need[l["proxy"].lower()] = need.get(l["proxy"].lower(), 0) + l["usd_micro"]
        who = list(need)
        try:
            left = dict(zip(who, erc20_balances(self.c.w3, self.c.collateral, who)))
        except Exception:  # noqa: BLE001 — unknown: go ahead; a pull that reverts fails the group, nothing moved
            return total
        if all(left[p] >= n for p, n in need.items()):
            return total
        keep, drop = [], []
        for l in self.legs:
            p = l["proxy"].lower()
            if left[p] >= l["usd_micro"]:
                left[p] -= l["usd_micro"]
                keep.append(l)
            else:
                drop.append(l)
        with self._batch():
            for l in drop:
                self.c.state.update_jobs([l["job_id"]], status="skipped",
                                         reason=f"proxy has {left[l['proxy'].lower()] / MICRO:.2f} USD, the copy needs "
                                                f"{l['usd_micro'] / MICRO:.2f} (at pull time)")
                if self.c.guardrails and l.get("reserve_key"):
                    self.c.guardrails.release(l["reserve_key"])
            self.legs = keep
            self._step("Check Balances", "skipped", detail=f"{len(drop)} of {len(drop) + len(keep)} proxies cannot "
                                                           "pay their copy; skipped")
            if not keep:
                self._set(legs_json=json.dumps(keep), stage="failed", status="failed",
                          error="no proxy could pay its copy at pull time")
        if not keep:
            raise _Finished("failed")
        self._set(legs_json=json.dumps(keep))
        return sum(l["usd_micro"] for l in keep)

    def _confirm_pull(self, t0: float | None = None, detail: str = "") -> None:
        if self._never_broadcast(self.g["pull_tx"]):
            self._set(stage="queued", pull_tx=None)  # nothing moved: start over
            raise _Restart()
        try:
            self._wait(self.g["pull_tx"], "pull_tx")
        except ChainError as exc:
            # The pull did not happen (reverted or never mined): nothing moved, nothing to refund.
            self._step("Pull Funds", "failed", tx=self.g["pull_tx"], detail=str(exc), t0=t0)
            self._set(stage="failed", status="failed", error=f"pull failed: {exc}")
            self._jobs("failed", f"pull failed: {exc}")
            self._release_caps()
            raise _Finished("failed")
        with self._batch():
            self._step("Pull Funds", "ok", tx=self.g["pull_tx"], detail=detail or "pulled", t0=t0)
            self._set(stage="funded")
        self.c.fault("pull")

    def _place_order(self, side: str, amount: Decimal) -> None:
        t0 = time.time()
        signed, wire, order_id = self.w.clob.build_market_order(self.g["token_id"], side, amount,
                                                                Decimal(self.g["price_limit"]))
        self._set(stage="order_built", order_id=order_id, order_json=json.dumps({"wire": wire}))
        try:
            placed = self.w.clob.post(signed, order_id, wire)
            self.c.fault("order")
        except ClobError as exc:
            # Outcome unknown (timeout after posting?): never re-post blindly; reconcile by querying.
            self._step("Place Order", "unknown", detail=str(exc), t0=t0)
            self._set(stage="order_posted")
            self._reconcile_order()
            return
        self.g["t_order_accepted"] = self._unsaved["t_order_accepted"] = time.time() if placed.accepted else None
        if not placed.accepted:
            self._step("Place Order", "failed", detail=f"{side} {amount} rejected: {placed.error}", t0=t0)
            self._set(stage="order_failed", error=placed.error)
            return
        gave, got = placed.making_micro, placed.taking_micro
        if gave is None or got is None:
            # The CLOB did not say how much was filled: the settlement's own logs say it (exact).
            gave, got = self._fill_from_chain(placed.tx_hashes)
        # NOTE: no balance deltas: with the worker given back after this, other orders of the same worker
        # may settle meanwhile. The settlement itself is awaited after the worker is given back.
        self._record_fill(side, t0, placed.tx_hashes, gave, got)

    def _settled(self, hashes: list[str], timeout: float = 60.0) -> dict[str, int]:
        """Wait until the CLOB's settlement transactions are mined, one batched poll; their receipt statuses.
        One not mined within `timeout` raises (the group stalls and is retried: never pushed blind)."""
        out: dict[str, int] = {}
        if not hashes:
            return out
        rr = raw_rpc(self.c.w3)
        deadline = time.time() + timeout
        if rr is None:
            for h in hashes:
                try:
                    out[h] = wait_receipt(self.c.w3, h, timeout=max(0.0, deadline - time.time()), check=False)["status"]
                except ChainError as exc:
                    raise ChainError(f"settlement {h} not mined: {exc}") from None
            return out
        watcher = receipt_watcher(self.c.w3)
        for h in hashes:
            got = watcher.wait_any([h], max(0.0, deadline - time.time()))
            if got is None:
                raise ChainError(f"settlement {h} of order {self.g.get('order_id')} not mined within {timeout:.0f}s")
            out[h] = int(got[1]["status"])
        return out

    def _fill_from_chain(self, hashes: list[str]) -> tuple[int, int]:
        """What our order gave and got, from its settlement transactions' `OrderFilled` logs (reverted ones
        count nothing): the taker log (topic orderHash = our order id) says what we got; what we gave is what
        the makers took from us (their logs in the same transaction), or the taker log's making without any."""
        from ..polymarket.fills import ORDER_FILLED_V2_TOPIC

        self._settled(hashes)
        oid = str(self.g["order_id"]).lower()
        gave = got = 0
        for h in hashes:
            r = self._full_receipt(h)
            if not r or int(str(r.get("status") or "0x0"), 16) != 1:
                continue
            mine, makers = None, 0
            for lg in r.get("logs") or []:
                topics = [str(t).lower() for t in lg.get("topics") or []]
                if len(topics) < 4 or topics[0] != ORDER_FILLED_V2_TOPIC.lower():
                    continue
                data = str(lg.get("data") or "0x")[2:]
                words = [int(data[i:i + 64], 16) for i in range(0, len(data), 64)]
                if len(words) < 4:
                    continue
                if topics[1] == oid:
                    mine = words
                else:
                    makers += words[3]  # what this maker took (from us, the transaction's one taker)
            if mine is not None:
                got += mine[3]
                gave += makers if makers else mine[2]
        return gave, got

    def _full_receipt(self, h: str) -> dict[str, Any] | None:
        rr = raw_rpc(self.c.w3)
        if rr is not None:
            return rr.call("eth_getTransactionReceipt", [h])
        r = self.c.w3.eth.get_transaction_receipt(h)
        return {"status": hex(r["status"]), "logs": [{"topics": ["0x" + bytes(t).hex() for t in lg["topics"]],
                                                     "data": "0x" + bytes(lg["data"]).hex()} for lg in r["logs"]]}

    def _await_settlement(self) -> None:
        """Stage `filled`: the CLOB's settlement transactions must be mined before anything is pushed. If one
        reverted, the amounts journalled from the CLOB's answer are replaced by what the chain shows."""
        info = json.loads(self.g["order_json"] or "{}")
        hashes = info.get("settle_txs") or []
        if not hashes:
            return
        statuses = self._settled(hashes)
        if all(v == 1 for v in statuses.values()):
            return
        gave, got = self._fill_from_chain(hashes)
        side = self.g["side"]
        filled, paid = (got, gave) if side == "BUY" else (gave, got)
        log.warning("group %s: a settlement of order %s reverted; filled %d (not %d)", self.gid,
                    self.g["order_id"], filled, self.g["filled_shares"])
        if filled <= 0:
            with self._batch():
                self._step("Settlement", "failed", detail="the CLOB's settlement reverted: nothing filled")
                self._set(stage="order_failed", error="settlement reverted")
            return
        money = {"spent_micro": paid} if side == "BUY" else {"proceeds_micro": paid}
        self._set(filled_shares=filled, **money)

    def _record_fill(self, side: str, t0: float | None, txs: list[str] | None, gave: int, got: int) -> None:
        """Journal the fill (stage `filled`) from what the order gave and got, with its settlement txs."""
        info = json.loads(self.g["order_json"] or "{}")
        order_json = json.dumps({**info, "settle_txs": list(txs or [])})
        if side == "BUY":
            filled, spent = got, gave
            if filled <= 0:
                self._step("Place Order", "failed", detail="order accepted but nothing filled", t0=t0)
                self._set(stage="order_failed", error="nothing filled")
                return
            fields = {"stage": "filled", "filled_shares": filled, "spent_micro": spent}
            detail = f"BUY filled {filled / MICRO:.2f} shares for {spent / MICRO:.2f} USD"
        else:
            sold, proceeds = gave, got
            if sold <= 0:
                self._step("Place Order", "failed", detail="order accepted but nothing sold", t0=t0)
                self._set(stage="order_failed", error="nothing sold")
                return
            fields = {"stage": "filled", "filled_shares": sold, "proceeds_micro": proceeds}
            detail = f"SELL {sold / MICRO:.2f} shares for {proceeds / MICRO:.2f} USD"
        with self._batch():
            self._set(**fields, order_json=order_json)
            self._step("Place Order", "ok", tx=(txs or [None])[0],
                       detail=f"{detail} (order {self.g['order_id'][:10]}…)", t0=t0)

    def _reconcile_order(self) -> None:
        """After a crash or a lost response: ask the CLOB what became of the journalled order id."""
        rec = None
        try:
            rec = self.w.clob.lookup(self.g["order_id"])
        except ClobError as exc:
            raise ClobError(f"cannot reconcile order {self.g['order_id']}: {exc}") from None
        status = str((rec or {}).get("status", "")).upper()
        if rec and status in ("MATCHED", "FILLED", "MINED", "CONFIRMED"):
            # The amounts come from the settlement's logs, never from balance deltas: other orders of this
            # worker may have settled since this one was built.
            hashes = None
            deadline = time.time() + 10.0
            while True:
                try:
                    hashes = self.w.clob.settlement_txs(rec)
                except ClobError as exc:
                    raise ClobError(f"cannot reconcile order {self.g['order_id']}: {exc}") from None
                if hashes is not None or time.time() > deadline:
                    break
                time.sleep(0.25)
            if hashes is None:
                raise ClobError(f"order {self.g['order_id']} matched but its settlement is not known yet")
            gave, got = self._fill_from_chain(hashes)
            self._record_fill(self.g["side"], None, hashes, gave, got)
        else:
            self._step("Place Order", "failed", detail=f"order {self.g['order_id'][:10]}… not filled "
                                                      f"({status or 'unknown to the CLOB'}); refunding")
            self._set(stage="order_failed", error=f"order {status or 'not found'}")

    def _push_outcome(self) -> str:
        t0 = time.time()
        weights = [l["usd_micro"] for l in self.legs]
        shares = pro_rata(self.g["filled_shares"], weights)
        extra = {}
        if self.g["flow"] == "standard":
            spent = pro_rata(self.g["spent_micro"], weights)
            refunds = [w - s for w, s in zip(weights, spent)]
            extra = {"refunds": refunds, "spent": spent}
        else:
            extra = {"spent": pro_rata(self.g["spent_micro"], weights)}
        order_json = json.dumps({**json.loads(self.g["order_json"]), "shares": shares, **extra})
        tx = self._send_executor("pushOutcome", self.c.ctf, int(self.g["token_id"]), self._proxies(), shares,
                                 intent={"stage": "push_sent", "order_json": order_json}, tx_field="push_tx")
        self._set(stage="push_sent", push_tx=tx, order_json=order_json)
        self._wait(tx, "push_tx")
        self.c.fault("push")
        return self._confirm_push(t0)

    def _confirm_push(self, t0: float | None = None) -> str:
        if self._never_broadcast(self.g["push_tx"]):
            self._set(stage="filled", push_tx=None)  # the tokens are still on the worker: push them now
            raise _Restart()
        info = json.loads(self.g["order_json"])
        self._wait(self.g["push_tx"], "push_tx")
        side = self.g["side"]
        what = "outcome tokens" if side == "BUY" else "proceeds"
        if side == "BUY" and self.g["flow"] == "standard" and any(info.get("refunds", [])):
            # Unspent cents of the pull go straight back (same batch rule).
            h = info.get("change_tx")
            if h is None or self._never_broadcast(h):
                def journal(txh: str) -> None:
                    info["change_tx"] = txh
                    self._set(order_json=json.dumps(info))

                h = self._send_executor("pushCollateral", self.c.collateral, self._proxies(), info["refunds"],
                                        journal=journal)
            self._wait(h)
        # Everything that completes the group is one transaction (one commit; all or nothing): the steps,
        # every follower's job, the Smart Buffer debts, the cap commits (when the caps live in this file), and
        # the group's final stage.
        from .backends import SqliteCaps

        caps = self.c.guardrails
        caps_here = caps is None or isinstance(getattr(caps, "store", None), SqliteCaps)
        committed: list[tuple[str, int]] = []
        with self._batch():
            self._finish_push(side, what, info, t0, committed, caps if caps_here else None)
        if caps is not None and not caps_here:
            for key, amount in committed:
                caps.commit(key, amount)  # a shared store (Redis): outside the state file's transaction
        self.c.report(self.gid, "Job Complete", f"{len(self.legs)} copies")
        return "complete"

    def _finish_push(self, side: str, what: str, info: dict[str, Any], t0: float | None,
                     committed: list[tuple[str, int]], caps) -> None:
        self._step("Push", "ok", tx=self.g["push_tx"], detail=f"{what} to {len(self.legs)} proxies", t0=t0)
        if info.get("change_tx"):
            self._step("Refund Change", "ok", tx=info["change_tx"],
                       detail=f"{sum(info['refunds']) / MICRO:.6f} USD unspent")
        if side == "BUY" and self.g["flow"] == "buffer":
            self.c.state.add_debts([{"group_id": self.gid, "job_id": l["job_id"], "worker": self.w.address,
                                     "proxy": l["proxy"], "token": self.c.collateral, "amount": amt}
                                    for l, amt in zip(self.legs, info["spent"]) if amt > 0])
        for l, sh, i in zip(self.legs, info["shares"], range(len(self.legs))):
            if side == "BUY":
                usd_spent = info["spent"][i]
                self.c.state.update_job(l["job_id"], status="complete", shares=_human(sh), usd=_human(usd_spent),
                                        price=f"{Decimal(self.g['spent_micro']) / Decimal(self.g['filled_shares']):.6f}")
                if self.c.guardrails and l.get("reserve_key"):
                    if caps is not None:
                        caps.commit(l["reserve_key"], usd_spent)
                    else:
                        committed.append((l["reserve_key"], usd_spent))
            else:
                self.c.state.update_job(l["job_id"], status="complete", usd=_human(sh),
                                        shares=_human(l["shares_micro"]),
                                        price=f"{Decimal(self.g['proceeds_micro']) / Decimal(self.g['filled_shares']):.6f}")
        self._set(stage="complete", status="complete", t_done=time.time())

    def _refund_collateral(self) -> str:
        if self.g["flow"] == "buffer":
            # Nothing was taken from the proxies: the copy simply did not happen.
            self._set(stage="failed", status="failed")
            self._jobs("failed", self.g.get("error") or "order failed")
            self._release_caps()
            return "failed"
        t0 = time.time()
        tx = self._send_executor("pushCollateral", self.c.collateral, self._proxies(),
                                 [l["usd_micro"] for l in self.legs], intent={"stage": "refund_sent"},
                                 tx_field="refund_tx")
        self._set(stage="refund_sent", refund_tx=tx)
        return self._confirm_refund(t0)

    def _confirm_refund(self, t0: float | None = None) -> str:
        if self._never_broadcast(self.g["refund_tx"]):
            self._set(stage="order_failed", refund_tx=None)
            raise _Restart()
        self._wait(self.g["refund_tx"], "refund_tx")
        what = "collateral" if self.g["side"] == "BUY" else "outcome tokens"
        self._step("Refund", "ok", tx=self.g["refund_tx"], detail=f"{what} back to {len(self.legs)} proxies", t0=t0)
        self._set(stage="refunded", status="refunded", t_done=time.time())
        self._jobs("refunded", self.g.get("error") or "order failed")
        self._release_caps()
        return "refunded"

    def _release_caps(self) -> None:
        if self.c.guardrails:
            for l in self.legs:
                if l.get("reserve_key"):
                    self.c.guardrails.release(l["reserve_key"])

    # --- SELL ------------------------------------------------------------------------------------------
    def _sell(self) -> str:
        stage = self.g["stage"]
        total = sum(l["shares_micro"] for l in self.legs)
        if stage == "queued":
            t0 = time.time()
            tx = self._send_executor("pullOutcome", self.c.ctf, int(self.g["token_id"]), self._proxies(),
                                     [l["shares_micro"] for l in self.legs], intent={"stage": "pull_sent"},
                                     tx_field="pull_tx")
            self._set(stage="pull_sent", pull_tx=tx)
            self._confirm_pull(t0, f"{total / MICRO:.2f} shares from {len(self.legs)} proxies")
        elif stage == "pull_sent":
            self._confirm_pull()
        stage = self.g["stage"]
        if stage == "funded":
            self._place_order("SELL", Decimal(total) / MICRO)
        elif stage in ("order_built", "order_posted"):
            self._reconcile_order()
        if self.g["stage"] in ("filled", "push_sent"):
            self._hold(self.g["proceeds_micro"] or 0)  # the proceeds sit on the worker until pushed
        self._release()
        if self.g["stage"] == "filled":
            self._await_settlement()
            if self.g["stage"] == "filled":
                self._hold(self.g["proceeds_micro"] or 0)
        stage = self.g["stage"]
        if stage == "filled":
            t0 = time.time()
            proceeds = pro_rata(self.g["proceeds_micro"], [l["shares_micro"] for l in self.legs])
            order_json = json.dumps({**json.loads(self.g["order_json"]), "shares": proceeds})
            tx = self._send_executor("pushCollateral", self.c.collateral, self._proxies(), proceeds,
                                     intent={"stage": "push_sent", "order_json": order_json}, tx_field="push_tx")
            self._set(stage="push_sent", push_tx=tx, order_json=order_json)
            return self._confirm_push(t0)
        if stage == "push_sent":
            return self._confirm_push()
        if stage == "order_failed":
            t0 = time.time()
            tx = self._send_executor("pushOutcome", self.c.ctf, int(self.g["token_id"]), self._proxies(),
                                     [l["shares_micro"] for l in self.legs], intent={"stage": "refund_sent"},
                                     tx_field="refund_tx")
            self._set(stage="refund_sent", refund_tx=tx)
            return self._confirm_refund(t0)
        if stage == "refund_sent":
            return self._confirm_refund()
        return self.g["status"]

    def _fail_safely(self, error: str) -> str:
        """An unexpected error mid-flow: leave the journal where it is (resume() picks it up) and say so."""
        log.warning("group %s stopped at stage %s: %s", self.gid, self.g["stage"], error)
        self._set(status="stalled", error=error[:300])
        self.c.report(self.gid, "Stalled", f"at {self.g['stage']}: {error[:160]}")
        return "stalled"


def _human(micro: int) -> str:
    """Micro-units as a decimal string (the journal's unit for USD and shares)."""
    return str(Decimal(micro) / MICRO)


class _Restart(CopytradeError):
    """Re-enter the flow from the stage the journal now holds."""


class _Finished(CopytradeError):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def run_group(ctx: FlowContext, group: dict[str, Any], worker, release: Callable[[], None] | None = None) -> str:
    """Run or resume a group; returns its final (or stalled) status. `release()` is called once the order's
    outcome is journalled (the worker may then serve other groups while this one settles and pushes)."""
    try:
        return GroupRunner(ctx, group, worker, release).run()
    except _Finished as f:
        return f.status


class Reimburser:
    """Smart Buffer: pull what proxies owe their workers, batched per worker, asynchronously."""

    def __init__(self, ctx: FlowContext, fleet, batch: int = 100):
        self.c, self.fleet, self.batch = ctx, fleet, batch

    def run_once(self) -> int:
        """Repay open debts of this fleet's workers; returns how many debts were paid.

        Per worker, debts are summed per proxy (one leg per proxy, however many copies it owes for), the
        proxies' balances are read in one batched request, and each chunk is one `pullCollateral`. The debts
        are journalled as "paying" with the tx hash BEFORE it is broadcast, so after a crash they are settled
        from that transaction's fate (mined: paid; reverted or never sent: open again), never pulled twice."""
        self._settle_in_flight()
        paid = 0
        debts = [d for d in self.c.state.open_debts() if d["status"] == "open"]
        by_worker: dict[str, list[dict[str, Any]]] = {}
        for d in debts:
            if d["worker"].lower() in self.fleet.by_address:
                by_worker.setdefault(d["worker"].lower(), []).append(d)
        for addr, rows in by_worker.items():
            per_proxy: dict[str, list[dict[str, Any]]] = {}
            for d in rows:
                per_proxy.setdefault(d["proxy"], []).append(d)
            proxies = list(per_proxy)
            balances = self._balances(proxies)
            legs: list[tuple[str, int, list[dict[str, Any]]]] = []
            for p in proxies:
                owed, take = 0, []
                for d in per_proxy[p]:  # oldest first, as far as the proxy's balance goes
                    if owed + d["amount"] > balances.get(p, 0):
                        break
                    owed += d["amount"]
                    take.append(d)
                if take:
                    legs.append((p, owed, take))
            if not legs:
                continue
            with self.fleet.checkout(addr) as w:
                for i in range(0, len(legs), self.batch):
                    chunk = legs[i:i + self.batch]
                    payable = [d for _p, _a, ds in chunk for d in ds]
                    self.c.fault("reimburse")
                    t0 = time.time()
                    data = encode_call("Executor", "pullCollateral", self.c.collateral, [p for p, _a, _d in chunk],
                                       [a for _p, a, _d in chunk])
                    ids = [d["id"] for d in payable]
                    tx = w.lane.send({"to": self.c.executor, "data": data}, gas=120_000 + 60_000 * len(chunk),
                                     before_send=lambda h, ids=ids: self.c.state.mark_debts_paying(ids, h))
                    try:
                        wait_receipt(self.c.w3, tx, timeout=120)
                    except ChainError:
                        self.c.state.reopen_debts(ids)  # reverted or lost: nothing was pulled
                        raise
                    with self.c.state.transaction():
                        self.c.state.mark_debts_paid(ids, tx)
                        for gid in sorted({d["group_id"] for d in payable}):
                            self.c.state.add_step(group_id=gid, step="Reimburse", status="ok", tx_hash=tx,
                                                  ms=(time.time() - t0) * 1000)
                    if self.c.on_step is not None:
                        self.c.on_step("Reimburse", "ok", time.time() - t0)
                    for gid in sorted({d["group_id"] for d in payable}):
                        self.c.report(gid, "Reimburse", f"{len(payable)} debts, tx {tx}")
                    paid += len(payable)
        return paid

    def _balances(self, proxies: list[str]) -> dict[str, int]:
        try:
            return dict(zip(proxies, erc20_balances(self.c.w3, self.c.collateral, proxies)))
        except ChainError:
            pass  # one more time through web3 (its own retries), per proxy
        token = _cached_contract("erc20", self.c.w3, self.c.collateral)
        return {p: token.functions.balanceOf(p).call() for p in proxies}

    def _settle_in_flight(self) -> None:
        """Debts journalled as being paid by a tx when the process stopped: paid if it was mined, open again if
        it reverted or never reached the node; left alone while it is still pending."""
        rows = [d for d in self.c.state.paying_debts() if d["worker"].lower() in self.fleet.by_address]
        by_tx: dict[str, list[int]] = {}
        for d in rows:
            by_tx.setdefault(d["paid_tx"], []).append(d["id"])
        for tx, ids in by_tx.items():
            try:
                r = self.c.w3.eth.get_transaction_receipt(tx)
            except Exception:  # noqa: BLE001 — not mined (yet?)
                r = None
            if r is not None:
                if r["status"] == 1:
                    self.c.state.mark_debts_paid(ids, tx)
                else:
                    self.c.state.reopen_debts(ids)
                continue
            try:
                self.c.w3.eth.get_transaction(tx)  # still pending: wait for it
            except Exception:  # noqa: BLE001 — unknown to the node: it was never broadcast
                self.c.state.reopen_debts(ids)
