"""The migration in progress: its generations, the steps recorded in state, and the reports each step returns."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ...chain.accounts import operator_account
from ...chain.network import connect_network, normalize
from ...chain.operations import collateral_and_ctf
from ...chain.lanes import TxLane
from ...errors import DeploymentError, StateError, UsageError
from ...settings import Settings
from ...state import State

STEPS = ("plan", "deploy", "proxy", "users", "deprecate")
USER_STATUSES = ("not started", "withdrawn", "re-deposited")
DEFAULT_BATCH = 100
MAX_BATCH = 256  # ProxyFactory.setProxiesPaused takes up to 256 proxies per call
DUST_MICRO = 10_000  # below 0.01 USDC a proxy counts as empty
MAX_UINT = 2**256 - 1

Event = Callable[[str], None]


@dataclass
class Action:
    """One thing a step did, found done already, or (dry run) would do."""

    what: str
    status: str  # done | already done | would do | nothing to do
    address: str | None = None
    tx: str | None = None


@dataclass
class StepReport:
    """What one `migrate` step did, with where it resumed from and what to run next."""

    step: str
    network: str
    from_generation: int
    to_generation: int
    dry_run: bool = False
    actions: list[Action] = field(default_factory=list)
    resumed: str | None = None
    summary: str = ""
    next: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["actions"] = [asdict(a) for a in self.actions]
        return out


@dataclass
class Migration:
    """A migration from generation `from_gen` to `to_gen` on one connected network, with its recorded steps."""

    settings: Settings
    state: State
    ctx: Any
    from_gen: int
    to_gen: int
    ops: dict[str, dict[str, Any]]
    recorded: bool  # False: a migration not begun yet (plan/deploy in dry-run describe the next one)

    @property
    def network(self) -> str:
        """The canonical network name."""
        return self.ctx.network

    @property
    def w3(self):
        """The connected web3."""
        return self.ctx.w3

    def dep(self, name: str, generation: int) -> str | None:
        """The recorded address of contract `name` of `generation`, if any."""
        d = self.state.get_deployment(self.network, name, generation)
        return d.address if d else None

    @property
    def old_factory(self) -> str:
        """The ProxyFactory users migrate away from (raises when none is recorded)."""
        f = self.dep("ProxyFactory", self.from_gen)
        if not f:
            raise DeploymentError(f"no ProxyFactory of generation {self.from_gen} recorded on {self.network}")
        return f

    @property
    def new_factory(self) -> str | None:
        """The ProxyFactory of the new generation, once deployed."""
        return self.dep("ProxyFactory", self.to_gen)

    @property
    def new_executor(self) -> str | None:
        """The Executor of the new generation, once deployed."""
        return self.dep("Executor", self.to_gen)

    def done(self, step: str) -> bool:
        """Whether `step` is recorded as done."""
        return (self.ops.get(step) or {}).get("status") == "done"

    def record(self, step: str, status: str, **kw: Any) -> None:
        """Record a step's progress in state (the migration is begun from then on)."""
        self.state.record_migration_op(self.network, self.to_gen, self.from_gen, step, status, **kw)
        self.ops = {r["step"]: r for r in self.state.migration_ops(self.network, self.to_gen)}
        self.recorded = True

    def lane(self):
        """The operator's nonce lane on this chain."""
        return TxLane(self.w3, operator_account(self.settings))

    def report(self, step: str, dry_run: bool) -> StepReport:
        """An empty report of `step` for this migration."""
        return StepReport(step, self.network, self.from_gen, self.to_gen, dry_run=dry_run)


def is_complete(ops: list[dict[str, Any]], target: int) -> bool:
    """Whether the migration to generation `target` is done (its last step, deprecate, recorded done)."""
    return any(r["to_generation"] == target and r["step"] == "deprecate" and r["status"] == "done" for r in ops)


def open_migration(settings: Settings, state: State, network: str | None, *, begin: bool) -> Migration:
    """The migration in progress (or the latest one); with `begin`, the next one if none is in progress."""
    ctx = connect_network(settings, state, network)
    ops = state.migration_ops(ctx.network)
    latest = max((r["to_generation"] for r in ops), default=None)
    if latest is not None and (not is_complete(ops, latest) or not begin):
        rows = [r for r in ops if r["to_generation"] == latest]
        return Migration(settings, state, ctx, rows[0]["from_generation"], latest, {r["step"]: r for r in rows}, True)
    if not begin:
        raise StateError(f"no migration started on {ctx.network}: run `copytrade migrate plan`, then "
                         "`copytrade migrate deploy`")
    active = state.get_deployment(ctx.network, "Executor")
    if active is None or state.get_deployment(ctx.network, "ProxyFactory") is None:
        raise DeploymentError(f"nothing deployed on {ctx.network} to migrate from: deploy first with "
                              "`copytrade deploy executor` and `copytrade deploy factory`")
    return Migration(settings, state, ctx, active.generation, active.generation + 1, {}, False)


def resuming_note(m: Migration, step: str) -> str | None:
    """Says so when an earlier run of this step stopped halfway (recorded as started, never done)."""
    r = m.ops.get(step)
    if not r or r["status"] != "started":
        return None
    items = f", {r['items_done']}/{r['items_total']} done" if r.get("items_total") else ""
    return f"resuming `migrate {step}` interrupted at {r['updated_at']}{items}"


def require_done(m: Migration, step: str, *needed: str) -> None:
    """Refuse `step` until every step it needs is done, naming the one to run."""
    for n in needed:
        if not m.done(n):
            raise UsageError(f"`migrate {step}` needs `migrate {n}` done first (generation {m.to_gen} on "
                             f"{m.network}): run `copytrade migrate {n}`")


def market_token_ids(m: Migration) -> list[int]:
    """Outcome token ids whose positions a proxy may hold: the fork's markets, else those seen in state."""
    if m.ctx.world is not None:
        return [int(t) for mk in m.ctx.world.markets for t in mk.token_ids]
    return [int(t) for t in m.state.known_token_ids()]


def collateral_ctf(m: Migration) -> tuple[str, str]:
    """Collateral and CTF addresses on the migration's chain."""
    return collateral_and_ctf(m.ctx, m.settings)


def any_migration(state: State, settings: Settings, network: str | None) -> bool:
    """Whether any migration was ever recorded on the network."""
    return bool(state.migration_ops(normalize(network, settings)[0]))


def step_statuses(m: Migration) -> dict[str, str]:
    """Each step's recorded status ("not yet" when none)."""
    return {s: (m.ops.get(s) or {}).get("status", "not yet") for s in STEPS}


def next_step(m: Migration) -> str | None:
    """The first step not done yet, or None when the migration is complete."""
    return next((s for s in STEPS if not m.done(s)), None)
