"""Follow-config operations behind `copytrade follow ...` and `copytrade seed`."""
from __future__ import annotations

from typing import Any

from ..errors import StateError, UsageError
from ..settings import SEED_LEADER, Settings
from ..state import Follow, State
from .decide import validate_follow


def add_follow(state: State, **fields: Any) -> Follow:
    """Validate and write (insert or update) a follow config. The follower is taken as given: checking that it
    is a proxy of a trusted factory is the caller's (`add_checked_follow`, used by `follow add` and `seed`)."""
    return state.upsert_follow(validate_follow(**fields))


def add_checked_follow(settings: Settings, state: State, network: str | None = None, **fields: Any) -> Follow:
    """`add_follow` for the CLI: the fields validated, then the follower checked (`check_follower`) before
    anything is written."""
    f = validate_follow(**fields)
    check_follower(settings, state, f.follower, network)
    return state.upsert_follow(f)


def trusted_factories(settings: Settings, state: State, network: str) -> set[str]:
    """ProxyFactory addresses this state trusts on `network` (lowercase): every recorded generation, plus
    PROXY_FACTORY_ADDRESS when set."""
    out = {d.address.lower() for d in state.list_deployments(network) if d.name == "ProxyFactory"}
    if settings.proxy_factory_address:
        out.add(settings.proxy_factory_address.lower())
    return out


def check_follower(settings: Settings, state: State, follower: str, network: str | None = None) -> str:
    """The follower must be a proxy of a trusted factory on the network: recorded in state (`proxy create`
    records it), or verified on chain: it has code, its `factory()` is a trusted ProxyFactory, and that
    factory's `proxyOf(owner())` is the follower (a contract lying about `factory()` fails here). Returns how
    it was established; raises a one-line error otherwise (nothing is written)."""
    from ..chain.network import normalize

    name, _, _ = normalize(network, settings)
    rec = state.get_proxy(name, follower)
    if rec is not None:
        return "recorded"
    trusted = trusted_factories(settings, state, name)
    how = ("create it with `copytrade proxy create --owner <owner>` (or name its network with --network)")
    if not trusted:
        raise UsageError(f"--follower {follower} is not a proxy recorded on {name} and no ProxyFactory is recorded "
                         f"there to verify it: {how}")
    return _verify_on_chain(settings, state, name, follower, trusted, how)


def _verify_on_chain(settings: Settings, state: State, name: str, follower: str, trusted: set[str],
                     how: str) -> str:
    from ..chain.contracts import contract
    from ..chain.network import connect_network
    from ..errors import CopytradeError, NodeError

    try:
        w3 = connect_network(settings, state, name).w3
    except CopytradeError as exc:
        raise NodeError(f"--follower {follower} is not a proxy recorded on {name} and no node is reachable to "
                        f"verify it ({str(exc).rstrip('.')}): {how}") from None
    not_proxy = f"--follower {follower} is not a proxy of a trusted ProxyFactory on {name}"
    try:
        code = w3.eth.get_code(follower)
    except Exception as exc:  # noqa: BLE001 — the node failed mid-check: say so in one line
        raise NodeError(f"--follower {follower}: the node failed while verifying it ({type(exc).__name__}); "
                        "try again") from None
    if not code:
        raise UsageError(f"{not_proxy}: it has no code (an EOA?); {how}")
    try:
        proxy = contract(w3, "Proxy", follower)
        claimed = proxy.functions.factory().call()
        owner = proxy.functions.owner().call()
    except Exception:  # noqa: BLE001 — reverts, empty or malformed answers: not our proxy
        raise UsageError(f"{not_proxy}: it does not answer factory()/owner() like a proxy; {how}") from None
    if str(claimed).lower() not in trusted:
        raise UsageError(f"{not_proxy}: its factory() {claimed} is not a ProxyFactory recorded on {name}; {how}")
    try:
        known = contract(w3, "ProxyFactory", claimed).functions.proxyOf(owner).call()
    except Exception:  # noqa: BLE001
        known = None
    if str(known).lower() != follower.lower():
        raise UsageError(f"{not_proxy}: its factory {claimed} does not list it as the proxy of its owner {owner} "
                         f"(a contract claiming a factory it does not belong to); {how}")
    return "verified on chain"


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
    return add_checked_follow(settings, state, network, follower=proxy, owner=owner, leader=leader, sizing="fixed",
                              amount=amount, flow=flow)


def set_status(state: State, follow_id: int, status: str) -> Follow:
    """Pause or resume a follow."""
    if not state.set_follow_status(follow_id, status):
        raise UsageError(f"no follow with id {follow_id} (see `copytrade follow list`)")
    return state.get_follow(follow_id)  # type: ignore[return-value]


def remove(state: State, follow_id: int) -> None:
    """Delete a follow."""
    if not state.delete_follow(follow_id):
        raise UsageError(f"no follow with id {follow_id} (see `copytrade follow list`)")
