"""`migrate status`: the steps of the latest migration on a network, from the `migration_ops` table."""
from __future__ import annotations

import json

from ...chain.network import normalize
from ...settings import Settings
from ...state import State
from .migration import STEPS, Action, StepReport, is_complete


def migration_status(settings: Settings, state: State, network: str | None = None) -> StepReport:
    """The steps of the latest migration on a network: done, started (interrupted) or not yet."""
    name = normalize(network, settings)[0]
    ops = state.migration_ops(name)
    if not ops:
        rep = StepReport("status", name, 0, 0, summary=f"no migration started on {name}: begin with "
                                                       "`copytrade migrate plan`", next="plan")
        return rep
    latest = max(r["to_generation"] for r in ops)
    rows = {r["step"]: r for r in ops if r["to_generation"] == latest}
    from_gen = next(iter(rows.values()))["from_generation"]
    rep = StepReport("status", name, from_gen, latest)
    for step in STEPS:
        r = rows.get(step)
        if r is None:
            rep.actions.append(Action(step, "not yet"))
            continue
        items = f" ({r['items_done']}/{r['items_total']})" if r.get("items_total") is not None else ""
        rep.actions.append(Action(f"{step}{items}", "done" if r["status"] == "done" else "interrupted: rerun it"
                                  if r["status"] == "started" else r["status"]))
    complete = is_complete(ops, latest)
    nxt = next((s for s in STEPS if (rows.get(s) or {}).get("status") != "done"), None)
    rep.data = {"steps": {s: {k: rows[s][k] for k in ("status", "items_done", "items_total", "updated_at")}
                          | {"detail": json.loads(rows[s]["detail"]) if rows[s].get("detail") else None}
                          for s in rows}, "complete": complete,
                "generations": {d.name: {"address": d.address, "generation": d.generation, "status": d.status}
                                for d in state.list_deployments(name) if d.name in ("Executor", "ProxyFactory")
                                and d.generation in (from_gen, latest) and d.status == "active"}}
    rep.summary = (f"migration {from_gen} -> {latest} on {name}: " +
                   ("complete" if complete else f"next: `copytrade migrate {nxt}`"))
    rep.next = None if complete else nxt
    return rep
