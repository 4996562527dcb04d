"""Moving users to new contract logic (SPEC §6): `copytrade migrate plan|deploy|proxy|users|deprecate|status`.

A migration takes a network from contract generation S (the active one) to S+1:

  plan       what exists, what will be deployed, which users are affected (recorded: the migration begins)
  deploy     new Executor (+ fleet, allowlists), Treasury, Proxy implementation, ProxyFactory bound to the new
             Executor, the fleet's approvals to the new Executor; then generation S+1 becomes active and S
             "previous" in one state transaction (until then the new rows are "pending" and nothing uses them)
  proxy      the execution wallet's (operator's) proxy on the new factory; `move_funds` moves the operator's
             own collateral from its old proxy (the operator owns both; no user funds are touched)
  users      every old proxy with balances, positions and migration status (not started / withdrawn /
             re-deposited); a re-deposited user's follows move to their new proxy. Users withdraw and
             re-deposit themselves: there is no custodial transfer.
  deprecate  pause the old proxies through the old factory in batches (owners can still withdraw) and mark
             them deprecated in state, so the supervisor stops routing to them
  status     the steps done, from the `migration_ops` table

Every step is idempotent and resumable: progress is recorded in state after each durable unit (a deployed
contract, a batch of pauses), and a rerun skips what is done and says so. `dry_run` changes nothing.
Library code only: it never prints; `on_event` is called after each unit of progress (tests interrupt there).

One module per step (`plan`, `deploy`, `proxy`, `users`, `deprecate`, `status`) over `migration` (the
migration in progress, its records in state and the reports every step returns).
"""
from __future__ import annotations

from .deploy import migrate_deploy
from .deprecate import migrate_deprecate
from .migration import DEFAULT_BATCH, MAX_BATCH, STEPS, USER_STATUSES, Action, StepReport
from .plan import migration_plan
from .proxy import migrate_proxy
from .status import migration_status
from .users import UserRow, migrate_users, old_proxies, read_users, users_export

__all__ = ["DEFAULT_BATCH", "MAX_BATCH", "STEPS", "USER_STATUSES", "Action", "StepReport", "UserRow", "migrate_deploy",
           "migrate_deprecate", "migrate_proxy", "migrate_users", "migration_plan", "migration_status", "old_proxies",
           "read_users", "users_export"]
