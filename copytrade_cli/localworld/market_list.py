"""The planted markets as `copytrade market list` shows them: one plain row per market (no I/O here)."""
from __future__ import annotations

from typing import Any

from ..errors import NodeError


def market_rows(world) -> list[dict[str, Any]]:
    """One row per market of `world`: slug, condition id, kind, tick, neg-risk, category, fee, min size, tokens."""
    rows = []
    for m in world.markets:
        rows.append({
            "slug": m.slug,
            "condition_id": m.condition_id,
            "kind": "neg-risk" if m.neg_risk else "binary",
            "tick_size": m.tick_size,
            "tick_changes": [{"after_s": int(after), "tick_size": tick} for after, tick in m.tick_changes],
            "neg_risk": bool(m.neg_risk),
            "category": m.category,
            "fee_rate": float(m.fee_rate),
            "fee_exponent": int(m.fee_exponent),
            "min_order_size": m.min_order_size,
            "outcomes": list(m.outcomes),
            "token_ids": list(m.token_ids),
        })
    return rows


def recorded_markets(state) -> list[dict[str, Any]]:
    """The markets of the fork recorded in `state` (raises NodeError when no planted fork is recorded)."""
    from .world import World

    rec = state.get_node()
    if rec is None or not rec.world_json:
        raise NodeError("no local fork with Polymarket planted is recorded: run `copytrade fork up` first")
    return market_rows(World.from_json(rec.world_json))
