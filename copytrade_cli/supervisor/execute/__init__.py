"""Execution of one group of copies of one leader fill, on one exclusively held worker.

Modules, in the order a group meets them:
- `context`: `FlowContext` (chain, addresses, state, reporting, one `Contracts` cache), `FlowWorker` (what a flow
  needs from a worker) and `commits_in_state` (do cap commits go into the state file's transaction?).
- `admission`: the group row's values checked as it is loaded (`InvalidGroup`), and what a group that has not
  started is re-checked against before its first step (`StartRules`: the switch, its age, the book, the allowlist).
- `group`: `GroupRunner` / `run_group_outcome` / `run_group`: start the group (coalescing), run its stage machine,
  return a `model.Outcome` (a stall with its `StallCause`).
- `buy`, `sell`: the BUY and SELL stage machines; `flow`: what both share (pull confirmation, push and completion,
  refund, caps, the worker's hold and early release).
- `journal`: the group's write-ahead journal (row, legs as `model.Leg`, steps, jobs, batches).
- `chain_io`: the group's transactions (Executor calls on the worker's nonce lane), waits, receipts, fault hook.
- `orders`: the CLOB order: place, reconcile, the fill from the settlement's logs (the `polymarket.fills` decoder).
- `allocation`: `pro_rata` and the per-follower split of a fill.
- `reimburse`: `Reimburser`, the Smart Buffer debts repaid in batches.
"""
from __future__ import annotations

from .allocation import pro_rata
from .context import FlowContext, FlowWorker
from .group import GroupRunner, run_group, run_group_outcome
from .reimburse import Reimburser

__all__ = ["FlowContext", "FlowWorker", "GroupRunner", "Reimburser", "pro_rata", "run_group", "run_group_outcome"]
