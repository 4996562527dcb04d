"""`migrate proxy`: the execution wallet's (operator's) proxy on the new factory, and optionally the operator's
own collateral moved into it from its old proxy (no user funds are touched)."""
from __future__ import annotations

import json

from eth_utils import to_checksum_address

from ...chain import reads
from ...chain.accounts import operator_account
from ...chain.deploy import contract
from ...chain.proxies import create_proxy, erc20, usd
from ...chain.rpc import wait_receipt
from ...settings import Settings
from ...state import State
from .migration import (Action, Event, Migration, StepReport, collateral_ctf, next_step, open_migration,
                        require_done, resuming_note)

FAILED = reads.FAILED


def migrate_proxy(settings: Settings, state: State, network: str | None = None, *, dry_run: bool = False,
                  move_funds: bool = False, on_event: Event | None = None) -> StepReport:
    """Create the execution wallet's proxy on the new factory; optionally move the operator's own collateral."""
    event = on_event or (lambda _w: None)
    m = open_migration(settings, state, network, begin=False)
    require_done(m, "proxy", "deploy")
    rep = m.report("proxy", dry_run)
    op = operator_account(settings).address
    collateral, _ = collateral_ctf(m)
    V = reads.view
    old_p, new_p = reads.read_many(m.w3, [V(m.old_factory, "proxyOf(address)", op, returns="address"),
                                          V(m.new_factory, "proxyOf(address)", op, returns="address")])
    old_p = None if old_p is FAILED or int(old_p, 16) == 0 else _cs(old_p)
    new_p = None if new_p is FAILED or int(new_p, 16) == 0 else _cs(new_p)
    detail = json.loads((m.ops.get("proxy") or {}).get("detail") or "{}")
    if dry_run:
        rep.actions.append(Action(f"create the operator's proxy on ProxyFactory {m.new_factory}",
                                  "already done" if new_p else "would do", new_p))
        if move_funds and old_p:
            bal = erc20(m.w3, collateral).functions.balanceOf(old_p).call()
            rep.actions.append(Action(f"move the operator's {usd(bal)} USDC from {old_p} to the new proxy",
                                      "would do" if bal else "nothing to do"))
        rep.summary = f"dry run: nothing changed on {m.network}"
        rep.next = "proxy"
        return rep
    rep.resumed = resuming_note(m, "proxy")
    m.record("proxy", "started")
    lane = m.lane()
    if new_p:
        rep.actions.append(Action("operator's proxy on the new factory", "already done", new_p))
        if state.get_proxy(m.network, new_p) is None:
            create_proxy(m.w3, state, m.network, lane, m.new_factory, op)  # records it
    else:
        new_p, tx = create_proxy(m.w3, state, m.network, lane, m.new_factory, op)
        rep.actions.append(Action("create the operator's proxy on the new factory", "done", new_p, tx))
        event("create")
    if move_funds and old_p:
        _move_operator_funds(m, rep, lane, old_p, new_p, detail, event)
    m.record("proxy", "done", detail={**json.loads((m.ops.get("proxy") or {}).get("detail") or "{}"), "proxy": new_p})
    rep.data = {"proxy": new_p, "old_proxy": old_p}
    rep.summary = f"execution wallet's proxy on the new factory: {new_p}"
    rep.next = next_step(m)
    return rep


def _move_operator_funds(m: Migration, rep: StepReport, lane, old_p: str, new_p: str, detail: dict,
                         event: Event) -> None:
    """Withdraw the operator's collateral from its old proxy and deposit it into the new one (its own funds)."""
    collateral, _ = collateral_ctf(m)
    token = erc20(m.w3, collateral)
    moving = detail.get("withdraw")
    if moving and not moving.get("deposited"):
        # NOTE: an earlier run sent the withdrawal and journalled it; deposit only what it really withdrew.
        try:
            ok = wait_receipt(m.w3, moving["tx"], timeout=60, check=False)["status"] == 1
        except Exception:  # noqa: BLE001 — never mined (a new node): start over from the balance
            ok = False
        moving = moving if ok else None
    if not moving or moving.get("deposited"):
        bal = token.functions.balanceOf(old_p).call()
        if not bal:
            rep.actions.append(Action("operator's old proxy holds no collateral", "nothing to do", old_p))
            return
        data = contract(m.w3, "Proxy", old_p).encode_abi("withdraw", args=[collateral, bal])
        h = lane.send({"to": old_p, "data": data})
        moving = {"tx": h, "amount": bal, "deposited": False}
        m.record("proxy", "started", detail={"proxy": new_p, "withdraw": moving})
        wait_receipt(m.w3, h)
        rep.actions.append(Action(f"withdraw the operator's {usd(bal)} USDC from the old proxy", "done", old_p, h))
        event("withdraw")
    r = lane.transact({"to": collateral, "data": token.encode_abi("transfer", args=[new_p, moving["amount"]])})
    moving = {**moving, "deposited": True}
    m.record("proxy", "started", detail={"proxy": new_p, "withdraw": moving})
    rep.actions.append(Action(f"deposit {usd(moving['amount'])} USDC into the new proxy", "done", new_p,
                              "0x" + bytes(r["transactionHash"]).hex()))
    event("deposit")


def _cs(a: str) -> str:
    return to_checksum_address(a)
