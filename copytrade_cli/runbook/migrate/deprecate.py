"""`migrate deprecate`: pause the old proxies through the old factory in batches (owners can still withdraw) and
mark them deprecated in state, so the supervisor stops routing to them."""
from __future__ import annotations

from ...chain import reads
from ...chain.accounts import operator_account
from ...chain.deploy import call_tx
from ...errors import UsageError
from ...settings import Settings
from ...state import ProxyRecord, State
from .migration import (DEFAULT_BATCH, MAX_BATCH, Action, Event, Migration, StepReport, open_migration,
                        require_done, resuming_note)
from .users import old_proxies

FAILED = reads.FAILED


def migrate_deprecate(settings: Settings, state: State, network: str | None = None, *, dry_run: bool = False,
                      batch_size: int = DEFAULT_BATCH, on_event: Event | None = None) -> StepReport:
    """Pause every old proxy via the old factory in batches and mark it deprecated (owners can still withdraw)."""
    event = on_event or (lambda _w: None)
    if not 1 <= batch_size <= MAX_BATCH:
        raise UsageError(f"--batch-size {batch_size}: use 1 to {MAX_BATCH}")
    m = open_migration(settings, state, network, begin=False)
    require_done(m, "deprecate", "deploy", "proxy")
    rep = m.report("deprecate", dry_run)
    pairs = old_proxies(m)
    V = reads.view
    paused = reads.read_many(m.w3, [V(m.old_factory, "isPaused(address)", p) for p, _ in pairs])
    todo = [(p, o) for (p, o), z in zip(pairs, paused) if z is not True]
    already = len(pairs) - len(todo)
    resuming = resuming_note(m, "deprecate")
    if resuming or (already and todo):
        rep.resumed = f"{resuming or 'resuming'}: {already} of {len(pairs)} old proxies already paused"
    if dry_run:
        for i in range(0, len(todo), batch_size):
            rep.actions.append(Action(f"pause {len(todo[i:i + batch_size])} old proxies and mark them deprecated",
                                      "would do", m.old_factory))
        if not todo:
            rep.actions.append(Action(f"all {len(pairs)} old proxies paused", "already done"))
        rep.summary = f"dry run: nothing changed on {m.network}"
        rep.next = "deprecate"
        return rep
    (admin,) = reads.read_many(m.w3, [V(m.old_factory, "admin()", returns="address")])
    op = operator_account(settings).address
    if todo and (admin is FAILED or str(admin).lower() != op.lower()):
        raise UsageError(f"the operator {op} is not the admin of the old ProxyFactory {m.old_factory} (admin "
                         f"{admin}): set TRADING_PRIVATE_KEY to the factory admin's key")
    m.record("deprecate", "started", items_done=already, items_total=len(pairs))
    # Proxies paused on chain by an earlier (interrupted) run but not yet marked: mark them now.
    for (p, o), z in zip(pairs, paused):
        if z is True:
            _mark_deprecated(m, p, o)
    lane = m.lane()
    done = already
    for i in range(0, len(todo), batch_size):
        batch = todo[i:i + batch_size]
        # NOTE: marked in state first (the supervisor stops routing at once), then paused on chain; a crash
        # in between is repaired by the rerun, which pauses whatever is not paused yet.
        for p, o in batch:
            _mark_deprecated(m, p, o)
        r = call_tx(lane, m.w3, "ProxyFactory", m.old_factory, "setProxiesPaused", [p for p, _ in batch], True)
        done += len(batch)
        m.record("deprecate", "started", items_done=done, items_total=len(pairs))
        rep.actions.append(Action(f"paused {len(batch)} old proxies (deprecated)", "done", m.old_factory,
                                  "0x" + bytes(r["transactionHash"]).hex()))
        event(f"paused {done}/{len(pairs)}")
    if not todo:
        rep.actions.append(Action(f"all {len(pairs)} old proxies paused", "already done", m.old_factory))
    m.record("deprecate", "done", items_done=len(pairs), items_total=len(pairs))
    rep.data = {"paused": len(pairs), "newly_paused": len(todo)}
    rep.summary = (f"{len(pairs)} old proxies of generation {m.from_gen} paused and deprecated ({len(todo)} now); "
                   "owners can still withdraw; the migration is complete")
    rep.next = None
    return rep


def _mark_deprecated(m: Migration, proxy: str, owner: str) -> None:
    rec = m.state.get_proxy(m.network, proxy)
    if rec is None:
        m.state.record_proxy(ProxyRecord(network=m.network, address=proxy, owner=owner, factory=m.old_factory,
                                         status="deprecated"))
    elif rec.status != "deprecated":
        m.state.set_proxy_fields(m.network, rec.address, status="deprecated")
