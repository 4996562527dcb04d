"""Users of the old generation: every old proxy with its balances, positions and migration status
(`migrate users`), and the export for the operations team."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Any

from eth_utils import to_checksum_address

from ...chain import reads
from ...chain.proxies import usd
from ...errors import DeploymentError, UsageError
from ...settings import Settings
from ...state import Follow, ProxyRecord, State
from .migration import (DUST_MICRO, USER_STATUSES, Action, Migration, StepReport, collateral_ctf, market_token_ids,
                        next_step, open_migration)

FAILED = reads.FAILED


@dataclass
class UserRow:
    """One user's old proxy and where they are in the migration."""

    owner: str
    old_proxy: str
    old_collateral_micro: int
    old_positions: dict[str, int]
    old_paused: bool
    new_proxy: str | None
    new_collateral_micro: int
    status: str
    follows: int = 0
    follows_moved: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, amounts also in USDC."""
        d = asdict(self)
        d["old_collateral_usdc"] = usd(self.old_collateral_micro)
        d["new_collateral_usdc"] = usd(self.new_collateral_micro)
        return d


def old_proxies(m: Migration) -> list[tuple[str, str]]:
    """Every proxy of the old factory as (proxy, owner): enumerated on chain (proxyCount/proxyAt) plus state."""
    factory = m.old_factory
    (count,) = reads.read_many(m.w3, [reads.view(factory, "proxyCount()", returns="uint256")])
    if count is FAILED:
        raise DeploymentError(f"the old ProxyFactory {factory} does not answer proxyCount(): is the node the one "
                              "these contracts were deployed on?")
    found = reads.read_many(m.w3, [reads.view(factory, "proxyAt(uint256)", i, returns="address") for i in range(count)])
    proxies = [to_checksum_address(p) for p in found if p is not FAILED]
    known = {p.lower() for p in proxies}
    proxies += [r.address for r in m.state.list_proxies(m.network, factory=factory) if r.address.lower() not in known]
    owners = reads.read_many(m.w3, [reads.view(p, "owner()", returns="address") for p in proxies])
    return [(p, to_checksum_address(o) if o is not FAILED else "") for p, o in zip(proxies, owners)]


def read_users(m: Migration) -> list[UserRow]:
    """Each old proxy's balances, positions, pause flag, the owner's new proxy and the migration status."""
    collateral, ctf = collateral_ctf(m)
    token_ids = market_token_ids(m)
    pairs = old_proxies(m)
    new_factory = m.new_factory
    V = reads.view
    plan: list[reads.Read] = []
    for p, owner in pairs:
        plan.append(V(collateral, "balanceOf(address)", p, returns="uint256"))
        plan.append(V(m.old_factory, "isPaused(address)", p))
        plan.append(V(ctf, "balanceOfBatch(address[],uint256[])", [p] * len(token_ids), token_ids, returns="uint256[]")
                    if token_ids else reads.balance(p))
        plan.append(V(new_factory, "proxyOf(address)", owner, returns="address") if new_factory and owner
                    else reads.balance(p))
    got = reads.read_many(m.w3, plan)
    news = {}
    for i, (p, owner) in enumerate(pairs):
        n = got[4 * i + 3]
        if new_factory and owner and n is not FAILED and int(n, 16) != 0:
            news[p] = to_checksum_address(n)
    nb = reads.read_many(m.w3, [V(collateral, "balanceOf(address)", n, returns="uint256") for n in news.values()])
    new_bal = dict(zip(news, nb))
    follows = m.state.list_follows(status="active")
    rows = []
    for i, (p, owner) in enumerate(pairs):
        bal, paused, pos = got[4 * i], got[4 * i + 1], got[4 * i + 2]
        positions = {str(t): a for t, a in zip(token_ids, pos) if a} if token_ids and pos is not FAILED else {}
        new = news.get(p)
        nbal = new_bal.get(p) if new else 0
        nbal = nbal if isinstance(nbal, int) else 0
        old_empty = isinstance(bal, int) and bal < DUST_MICRO and not positions
        if not old_empty:
            status = "not started"
        elif new and nbal > 0:
            status = "re-deposited"
        else:
            status = "withdrawn"
        rows.append(UserRow(owner=owner, old_proxy=p, old_collateral_micro=bal if isinstance(bal, int) else 0,
                            old_positions=positions, old_paused=paused is True, new_proxy=new,
                            new_collateral_micro=nbal, status=status,
                            follows=sum(f.follower.lower() == p.lower() for f in follows)))
    return rows


def migrate_users(settings: Settings, state: State, network: str | None = None, *,
                  dry_run: bool = False) -> StepReport:
    """Every user's old proxy with balances, positions and migration status; records each status and moves a
    re-deposited user's follows to their new proxy (state only: funds move only by the owner's own hand)."""
    m = open_migration(settings, state, network, begin=False)
    rep = m.report("users", dry_run)
    users = read_users(m)
    moved = 0
    follows = state.list_follows(status="active")
    for u in users:
        mine = [f for f in follows if f.follower.lower() == u.old_proxy.lower()]
        if u.status == "re-deposited" and mine:
            u.follows_moved = len(mine)
            moved += len(mine)
    if not dry_run:
        _record_users(m, users, follows)
        counts = {s: sum(u.status == s for u in users) for s in USER_STATUSES}
        m.record("users", "done", items_done=counts["re-deposited"], items_total=len(users),
                 detail={"by_status": counts, "follows_moved": moved})
    for u in users:
        if u.follows_moved:
            rep.actions.append(Action(f"move {u.follows_moved} follow(s) of {u.owner} to the new proxy",
                                      "would do" if dry_run else "done", u.new_proxy))
    counts = {s: sum(u.status == s for u in users) for s in USER_STATUSES}
    rep.data = {"users": [u.as_dict() for u in users], "by_status": counts, "follows_moved": moved}
    rep.summary = (f"{len(users)} users on generation {m.from_gen}: " + ", ".join(f"{n} {s}" for s, n in counts.items())
                   + (f"; {moved} follow(s) {'would move' if dry_run else 'moved'} to new proxies" if moved else ""))
    rep.next = next_step(m)
    return rep


def _record_users(m: Migration, users: list[UserRow], follows: list) -> None:
    st = m.state
    for u in users:
        if st.get_proxy(m.network, u.old_proxy) is None:
            st.record_proxy(ProxyRecord(network=m.network, address=u.old_proxy, owner=u.owner, factory=m.old_factory,
                                        status="deprecated" if u.old_paused else "active"))
        st.set_proxy_fields(m.network, st.get_proxy(m.network, u.old_proxy).address, migration_status=u.status)
        if u.new_proxy and st.get_proxy(m.network, u.new_proxy) is None:
            st.record_proxy(ProxyRecord(network=m.network, address=u.new_proxy, owner=u.owner,
                                        factory=m.new_factory or ""))
        if u.status != "re-deposited":
            continue
        for f in follows:
            if f.follower.lower() != u.old_proxy.lower():
                continue
            # NOTE: the new follow is written before the old one is paused: a crash in between leaves
            # both, and the old one is skipped anyway (its proxy is deprecated); never neither.
            fields = {k: v for k, v in asdict(f).items() if k not in ("id", "created_at", "updated_at", "follower")}
            st.upsert_follow(Follow(follower=u.new_proxy, **{**fields, "owner": f.owner or u.owner}))
            st.set_follow_status(f.id, "paused")


def users_export(rows: list[dict[str, Any]], fmt: str) -> str:
    """The user list as CSV or JSON text for the operations team."""
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt != "csv":
        raise UsageError(f"--format {fmt!r}: use table, csv or json")
    cols = ["owner", "old_proxy", "old_collateral_usdc", "old_positions", "old_paused", "new_proxy",
            "new_collateral_usdc", "status", "follows", "follows_moved"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**r, "old_positions": ";".join(f"{t}:{a}" for t, a in r["old_positions"].items()),
                    "new_proxy": r["new_proxy"] or ""})
    return buf.getvalue()
