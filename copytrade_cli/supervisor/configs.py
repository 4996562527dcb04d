"""Follow-config operations behind `copytrade follow ...` and `copytrade seed`."""
from __future__ import annotations

from typing import Any

from ..errors import StateError, UsageError
from ..settings import SEED_LEADER, Settings
from ..state import Follow, State
from .decide import validate_follow


def add_follow(state: State, **fields: Any) -> Follow:
    """Validate and write (insert or update) a follow config."""
    return state.upsert_follow(validate_follow(**fields))


def operator_proxy(settings: Settings, state: State, network: str | None = None) -> tuple[str, str]:
    """(proxy, owner) of the operator account on the network, from state."""
    from ..chain.accounts import operator_account
    from ..chain.network import normalize

    name, _, _ = normalize(network, settings)
    owner = operator_account(settings).address
    retired = state.unroutable_proxies(name)  # a migration's old proxies never take new follows
    for p in state.list_proxies(name):
        if p.owner.lower() == owner.lower() and p.status == "active" and p.address.lower() not in retired:
            return p.address, owner
    raise StateError(f"the operator {owner} has no proxy recorded on {name}: run `copytrade proxy create` "
                     "(or `copytrade fork up`)")


def seed(settings: Settings, state: State, *, leader: str = SEED_LEADER, amount: str = "10",
         flow: str = "standard", network: str | None = None) -> Follow:
    """The seed's test config: the operator's proxy follows 0x7099...79C8 with a fixed 10 USD per copy."""
    proxy, owner = operator_proxy(settings, state, network)
    return add_follow(state, follower=proxy, owner=owner, leader=leader, sizing="fixed", amount=amount, flow=flow)


def set_status(state: State, follow_id: int, status: str) -> Follow:
    """Pause or resume a follow."""
    if not state.set_follow_status(follow_id, status):
        raise UsageError(f"no follow with id {follow_id} (see `copytrade follow list`)")
    return state.get_follow(follow_id)  # type: ignore[return-value]


def remove(state: State, follow_id: int) -> None:
    """Delete a follow."""
    if not state.delete_follow(follow_id):
        raise UsageError(f"no follow with id {follow_id} (see `copytrade follow list`)")
