"""Execution flows: the names the rest of the supervisor imports, re-exported from `supervisor/execute/`
(journal, chain I/O, order placement, allocation, the BUY and SELL stage machines, the reimburser).

Standard BUY:     Pull Funds -> Place Order -> Push (pro rata) ; refund on failure.
Smart Buffer BUY: Check Buffer -> Place Order -> Push -> debts recorded ; Reimburse later, batched.
SELL:             Pull Tokens -> Place Order -> Push proceeds pro rata ; tokens pushed back on failure.
"""
from __future__ import annotations

from typing import Any

from .execute import FlowContext, FlowWorker, GroupRunner, Reimburser, pro_rata, run_group, run_group_outcome
from .execute.context import build_contract

__all__ = ["FlowContext", "FlowWorker", "GroupRunner", "Reimburser", "pro_rata", "run_group", "run_group_outcome"]


def _cached_contract(kind: str, w3: Any, address: str) -> Any:
    """Compatibility for runner.py's per-follower balance fallback (a node without batch calls): the contract,
    built each time; the flows reuse theirs through `FlowContext.contracts` (no process-global cache)."""
    return build_contract(kind, w3, address)
