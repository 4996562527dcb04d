"""What the BUY and SELL stage machines share: the worker they hold, the pull's confirmation, the pro-rata push and
the completion of the group, the refund, and the caps.

The worker is held exclusively only up to its order's outcome (filled amounts from the CLOB's answer,
journalled): then it is given back (`release`) and the rest (settlement mined, push, refund) runs on without it,
its collateral still committed to the group recorded on the worker (`FlowWorker.reserve`) so a Smart Buffer check
of a later group on the same worker never counts it as float.
"""
from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

from ...errors import ChainError
from ..model import GroupStatus, JobStatus
from .context import commits_in_state
from .journal import MICRO, Finished, Restart, human

if TYPE_CHECKING:
    from .chain_io import GroupChain
    from .context import FlowContext, FlowWorker
    from .journal import Journal
    from .orders import OrderDesk


# Executor.legStatus codes (contracts/Executor.vy): why a proxy would make a batch revert.
LEG_STATUS = {1: "no contract at the proxy's address", 2: "the proxy's factory is not trusted by the Executor",
              3: "not a proxy of its factory", 4: "the proxy is paused", 5: "the proxy's factory names another executor"}


class Flow:
    """The stages both sides run; `BuyFlow` / `SellFlow` drive them from the journalled stage (`run()`)."""

    def __init__(self, ctx: "FlowContext", journal: "Journal", chain: "GroupChain", orders: "OrderDesk",
                 worker: "FlowWorker", release: Callable[[], None] | None = None):
        self.c, self.j, self.tx, self.orders, self.w = ctx, journal, chain, orders, worker
        self._release_cb = release  # gives the worker back to the fleet once the order's outcome is journalled

    def run(self) -> str:
        """Drive the group from its journalled stage to a final status (or the stage it stopped at)."""
        raise NotImplementedError

    # --- the worker: given back early, collateral still committed ----------------------------------------
    def release(self) -> None:
        """The order's outcome is journalled: the worker may take the next order (same nonce lane)."""
        cb, self._release_cb = self._release_cb, None
        if cb is not None:
            cb()

    def hold(self, amount: int) -> None:
        """Record what of the worker's collateral this group holds (0: nothing any more)."""
        self.w.reserve(self.j.gid, amount)

    def held_elsewhere(self) -> int:
        """The worker's collateral that its other groups in flight hold."""
        return self.w.reserved_except(self.j.gid)

    # --- legs that cannot take part: dropped before the first step ----------------------------------------
    def screen_legs(self, balances: str | None) -> int:
        """Before the pull (the Smart Buffer check too): one batched read of `Executor.legStatus` for every
        proxy and, with `balances` ("collateral" / "outcome"), their balances; a leg whose proxy is paused,
        foreign or not a proxy, cannot pay its copy (drained since the decision, or named by several coalesced
        legs), or whose follower left COPY_TRADING_EXECUTION_ALLOWLIST is skipped with its reason, so one such
        proxy never reverts the batch and fails every other follower's copy. Returns the new total (USD for a
        BUY, shares for a SELL); raises Finished when no leg is left. A read that fails: go ahead (a pull that
        reverts fails the group, nothing moved)."""
        legs = self.j.legs
        drops = self._not_allowed(legs)
        drops.update(self._unfit(legs, balances, drops))
        field = "usd_micro" if self.j.g["side"] == "BUY" else "shares_micro"
        if drops:
            self.drop_legs(drops)
        return sum(getattr(leg, field) for leg in self.j.legs)

    def _not_allowed(self, legs) -> dict[int, str]:
        from .admission import allowlist_refusals

        rules = self.c.rules
        if rules is None or not rules.allowlist or all(leg.proxy.lower() in rules.allowlist for leg in legs):
            return {}
        owners: dict[int, str | None] = {}
        for j in self.c.state.jobs_by_ids([leg.job_id for leg in legs]):
            f = self.c.state.get_follow(j["follow_id"]) if j.get("follow_id") is not None else None
            owners[j["id"]] = f.owner if f else None
        return allowlist_refusals(rules, legs, owners)

    def _unfit(self, legs, balances: str | None, dropped: dict[int, str]) -> dict[int, str]:
        from ...chain.reads import FAILED, read_many, view

        proxies = list(dict.fromkeys(leg.proxy.lower() for leg in legs if leg.job_id not in dropped))
        if not proxies:
            return {}
        reads = [view(self.c.executor, "legStatus(address[])", proxies, returns="uint256[]")]
        if balances == "collateral":
            reads += [view(self.c.collateral, "balanceOf(address)", p, returns="uint256") for p in proxies]
        elif balances == "outcome":
            tok = int(self.j.g["token_id"])
            reads += [view(self.c.ctf, "balanceOf(address,uint256)", p, tok, returns="uint256") for p in proxies]
        try:
            got = read_many(self.c.w3, reads)
        except Exception:  # noqa: BLE001 — unknown: go ahead
            return {}
        status = got[0]
        status = dict(zip(proxies, status)) if status is not FAILED and len(status) == len(proxies) else {}
        left = {p: v for p, v in zip(proxies, got[1:]) if v is not FAILED} if balances else {}
        field, unit = ("usd_micro", "USD") if balances != "outcome" else ("shares_micro", "shares")
        out: dict[int, str] = {}
        for leg in legs:
            p = leg.proxy.lower()
            if leg.job_id in dropped:
                continue
            code = int(status.get(p, 0))
            if code:
                out[leg.job_id] = f"{LEG_STATUS.get(code, f'leg status {code}')} (at pull time)"
                continue
            if p not in left:
                continue
            need = getattr(leg, field)
            if left[p] >= need:
                left[p] -= need
            else:
                out[leg.job_id] = (f"proxy has {left[p] / MICRO:.2f} {unit}, the copy needs {need / MICRO:.2f} "
                                   "(at pull time)")
        return out

    def screen_market(self) -> None:
        """Before anything moves: an order under the market's minimum size (BUY: its fee-inclusive budget at the
        limit) is never placed; every leg is skipped with the reason (visible in `jobs show`), caps released."""
        why = self.orders.below_minimum()
        if why:
            self.drop_legs({leg.job_id: why for leg in self.j.legs}, error=f"skipped: {why}")

    def drop_legs(self, drops: dict[int, str], error: str = "no leg could take part at pull time") -> None:
        """Skip these legs (job id -> reason) before anything moved: jobs skipped with their reason, their cap
        reservations released, the rest of the group goes on. No leg left: the group fails (Finished)."""
        keep = [leg for leg in self.j.legs if leg.job_id not in drops]
        gone = [leg for leg in self.j.legs if leg.job_id in drops]
        with self.j.batch():
            for leg in gone:
                self.c.state.update_jobs([leg.job_id], status=JobStatus.SKIPPED.value, reason=drops[leg.job_id])
                if self.c.guardrails and leg.reserve_key:
                    self.c.guardrails.release(leg.reserve_key)
            self.j.step("Check Legs", "skipped", detail=f"{len(gone)} of {len(self.j.legs)} legs cannot take part; "
                                                         f"skipped ({sorted(set(drops.values()))[0]})")
            if keep:
                self.j.set_legs(keep)
            else:
                self.j.set_legs(keep, stage="failed", status=GroupStatus.FAILED.value, error=error[:300])
        if not keep:
            raise Finished(GroupStatus.FAILED.value)

    # --- pull -------------------------------------------------------------------------------------------
    def confirm_pull(self, t0: float | None = None, detail: str = "") -> None:
        """Stage `pull_sent`: the pull mined -> `funded`; never broadcast -> start over; reverted -> failed."""
        g = self.j.g
        if self.tx.never_broadcast(g["pull_tx"]):
            self.j.set(stage="queued", pull_tx=None)  # nothing moved: start over
            raise Restart()
        try:
            self.tx.wait(g["pull_tx"], "pull_tx")
        except ChainError as exc:
            # The pull did not happen (reverted or never mined): nothing moved, nothing to refund.
            self.j.step("Pull Funds", "failed", tx=g["pull_tx"], detail=str(exc), t0=t0)
            self.j.set(stage="failed", status=GroupStatus.FAILED.value, error=f"pull failed: {exc}")
            self.j.jobs(JobStatus.FAILED.value, f"pull failed: {exc}")
            self.release_caps()
            raise Finished(GroupStatus.FAILED.value)
        with self.j.batch():
            self.j.step("Pull Funds", "ok", tx=g["pull_tx"], detail=detail or "pulled", t0=t0)
            self.j.set(stage="funded")
        self.c.fault("pull")

    # --- push and completion ----------------------------------------------------------------------------
    def send_push(self, fn: str, *args, split: dict[str, list[int]]) -> str:
        """Send the push of the pro-rata `split` (journalled with it into `order_json`): stage `push_sent`."""
        order_json = json.dumps({**json.loads(self.j.g["order_json"]), **split})
        tx = self.tx.send(fn, *args, intent={"stage": "push_sent", "order_json": order_json}, tx_field="push_tx")
        self.j.set(stage="push_sent", push_tx=tx, order_json=order_json)
        return tx

    def confirm_push(self, t0: float | None = None) -> str:
        """Stage `push_sent`: wait for the push (and a Standard BUY's change), then complete the group."""
        g = self.j.g
        if self.tx.never_broadcast(g["push_tx"]):
            self.j.set(stage="filled", push_tx=None)  # the tokens are still on the worker: push them now
            raise Restart()
        info = json.loads(g["order_json"])
        self.tx.wait(g["push_tx"], "push_tx")
        side = g["side"]
        what = "outcome tokens" if side == "BUY" else "proceeds"
        if side == "BUY" and g["flow"] == "standard" and any(info.get("refunds", [])):
            # Unspent cents of the pull go straight back (same batch rule).
            h = info.get("change_tx")
            if h is None or self.tx.never_broadcast(h):
                def journal(txh: str) -> None:
                    """Write-ahead: the change tx is named in `order_json` before it is broadcast."""
                    info["change_tx"] = txh
                    self.j.set(order_json=json.dumps(info))

                h = self.tx.send("pushCollateral", self.c.collateral, self.j.proxies(), info["refunds"],
                                 journal=journal)
            self.tx.wait(h)
        # Everything that completes the group is one transaction (one commit; all or nothing): the steps,
        # every follower's job, the Smart Buffer debts, the cap commits (when the caps live in this file), and
        # the group's final stage.
        caps = self.c.guardrails
        caps_here = caps is None or commits_in_state(caps)
        committed: list[tuple[str, int]] = []
        with self.j.batch():
            self._complete(side, what, info, t0, committed, caps if caps_here else None)
        if caps is not None and not caps_here:
            for key, amount in committed:
                caps.commit(key, amount)  # a shared store (Redis): outside the state file's transaction
        self.c.report(self.j.gid, "Job Complete", f"{len(self.j.legs)} copies")
        return GroupStatus.COMPLETE.value

    def _complete(self, side: str, what: str, info: dict[str, Any], t0: float | None,
                  committed: list[tuple[str, int]], caps) -> None:
        g, legs = self.j.g, self.j.legs
        self.j.step("Push", "ok", tx=g["push_tx"], detail=f"{what} to {len(legs)} proxies", t0=t0)
        if info.get("change_tx"):
            self.j.step("Refund Change", "ok", tx=info["change_tx"],
                        detail=f"{sum(info['refunds']) / MICRO:.6f} USD unspent")
        if side == "BUY" and g["flow"] == "buffer":
            self.c.state.add_debts([{"group_id": self.j.gid, "job_id": leg.job_id, "worker": self.w.address,
                                     "proxy": leg.proxy, "token": self.c.collateral, "amount": amt}
                                    for leg, amt in zip(legs, info["spent"]) if amt > 0])
        # Same price for every follower: what the order paid (BUY) or got (SELL) per share filled.
        price = f"{Decimal(g['spent_micro' if side == 'BUY' else 'proceeds_micro']) / Decimal(g['filled_shares']):.6f}"
        for i, (leg, sh) in enumerate(zip(legs, info["shares"])):
            if side == "BUY":
                usd_spent = info["spent"][i]
                self.c.state.update_job(leg.job_id, status=JobStatus.COMPLETE.value, shares=human(sh),
                                        usd=human(usd_spent), price=price)
            else:
                usd_spent = sh  # a SELL leg's proceeds (its cap reservation was shares x price limit)
                self.c.state.update_job(leg.job_id, status=JobStatus.COMPLETE.value, usd=human(sh),
                                        shares=human(leg.shares_micro), price=price)
            if self.c.guardrails and leg.reserve_key:
                if caps is not None:
                    caps.commit(leg.reserve_key, usd_spent)
                else:
                    committed.append((leg.reserve_key, usd_spent))
        self.j.set(stage="complete", status=GroupStatus.COMPLETE.value, t_done=time.time())

    # --- refund -----------------------------------------------------------------------------------------
    def send_refund(self, fn: str, *args) -> str:
        """Send what was pulled back to the proxies (`refund_sent`), then wait and finish as refunded."""
        t0 = time.time()
        tx = self.tx.send(fn, *args, intent={"stage": "refund_sent"}, tx_field="refund_tx")
        self.j.set(stage="refund_sent", refund_tx=tx)
        return self.confirm_refund(t0)

    def confirm_refund(self, t0: float | None = None) -> str:
        """Stage `refund_sent`: wait for the refund; never broadcast -> back to `order_failed` and send it again."""
        g = self.j.g
        if self.tx.never_broadcast(g["refund_tx"]):
            self.j.set(stage="order_failed", refund_tx=None)
            raise Restart()
        self.tx.wait(g["refund_tx"], "refund_tx")
        what = "collateral" if g["side"] == "BUY" else "outcome tokens"
        self.j.step("Refund", "ok", tx=g["refund_tx"], detail=f"{what} back to {len(self.j.legs)} proxies", t0=t0)
        self.j.set(stage="refunded", status=GroupStatus.REFUNDED.value, t_done=time.time())
        self.j.jobs(JobStatus.REFUNDED.value, g.get("error") or "order failed")
        self.release_caps()
        return GroupStatus.REFUNDED.value

    def release_caps(self) -> None:
        """Give back every leg's cap reservation (the copies did not spend)."""
        if self.c.guardrails:
            for leg in self.j.legs:
                if leg.reserve_key:
                    self.c.guardrails.release(leg.reserve_key)
