"""The state file as one object: `State` is the connection layer (`db.StateDB`) with every table module's
methods. No SQL outside this package.

Where each record lives:
- `network.py`      nodes, deployments, proxies, workers (what copytrade knows about each network)
- `generations.py`  migration_ops; activating a contract generation; proxies no copy is routed to
- `follows.py`      follows (who copies whom, sizing, caps, filters)
- `journal.py`      signals, jobs, job_steps (detection and decision, at most once per fill x follower)
- `groups.py`       groups and their execution leases (what workers run, resumable stage by stage)
- `guardrails.py`   guardrail_ledger and its running totals (daily caps, reserved atomically)
- `debts.py`        debts (Smart Buffer: proxy owes worker until reimbursed)
- `cursors.py`      cursors (where detection resumes after a restart)
- `db.py`           the connection, lock, transactions and savepoints, migrations (schema in `schema.py`)
- `records.py`      the status vocabulary (one terminal set) and the typed `Leg`
"""
from __future__ import annotations

from .cursors import CursorTables
from .db import StateDB, Transaction, dumps, now_iso
from .debts import DebtTables
from .follows import Follow, FollowTables
from .generations import GenerationTables
from .groups import GroupTables
from .guardrails import GuardrailTables
from .journal import JournalTables
from .network import Deployment, NetworkTables, NodeRecord, ProxyRecord
from .schema import TABLES

__all__ = ["TABLES", "Deployment", "Follow", "NodeRecord", "ProxyRecord", "State", "StateDB", "Transaction", "dumps",
           "now_iso", "open_state"]


class State(NetworkTables, GenerationTables, FollowTables, JournalTables, GroupTables, GuardrailTables, DebtTables,
            CursorTables, StateDB):
    """Open (and migrate) the state file; every read and write of copytrade's records goes through here."""


def open_state(settings) -> State:
    """Open the state file named by the settings."""
    return State(settings.state_path)
