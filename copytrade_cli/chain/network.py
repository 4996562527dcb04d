"""Which chain a command talks to: the local fork (from state) or a live network (from the settings).
Local vs live is decided by the network name the operator gave, never by the chain id (the fork is 137 too)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ChainError, NodeError, UsageError
from ..settings import NETWORKS, Settings
from ..state import NodeRecord, State
from .rpc import connect_checked

if TYPE_CHECKING:
    from ..polymarket.world import World

LOCAL_NETWORK = "polygon:local"

KNOWN = NETWORKS  # one table, in settings (where COPYTRADE_NETWORK is validated)


@dataclass
class ChainContext:
    """A connected chain: name, web3, whether it is the local fork, and the local world if so."""

    network: str
    chain_id: int
    is_local: bool
    w3: Any
    rpc_url: str
    world: World | None = None

    @property
    def collateral(self) -> str:
        """The collateral token: the planted world's on the fork, the configured one live."""
        return self.world.collateral if self.world is not None else self._settings.usdc_address

    _settings: Any = None


def running_node(state: State) -> NodeRecord | None:
    """The recorded node if its process is alive."""
    from . import node as nodes  # NOTE: lazily, like World below: `normalize` alone must stay a cheap import

    rec = state.get_node()
    if rec and nodes.pid_alive(rec.pid):
        return rec
    return None


def normalize(network: str | None, settings: Settings) -> tuple[str, int, bool]:
    """Canonical (network, chain id, is_local) for an ape-style network choice."""
    choice = (network or settings.network).strip().lower()
    if choice not in KNOWN:
        raise UsageError(f"unknown network {choice!r}; use one of polygon:local, polygon:mainnet, polygon:amoy")
    return KNOWN[choice]


def endpoint_urls(settings: Settings, state: State, network: str | None = None) -> list[str]:
    """The RPC endpoints of a network in failover order: on the fork the recorded node (unless
    COPY_TRADING_RPC_URL overrides it), live the configured ones. Raises when there are none."""
    name, _, is_local = normalize(network, settings)
    if is_local:
        rec = running_node(state)
        if rec is None:
            raise NodeError("no local fork is running for this COPYTRADE_HOME: start one with `copytrade fork up`")
        return settings.rpc_urls(rec.rpc_url) if settings.copy_trading_rpc_url else [rec.rpc_url]
    urls = settings.rpc_urls()
    if not urls:
        raise ChainError(f"{name} needs an RPC endpoint: set COPY_TRADING_RPC_URL "
                         "(e.g. COPY_TRADING_RPC_URL=https://polygon-rpc.com)")
    return urls


def connect_network(settings: Settings, state: State, network: str | None = None) -> ChainContext:
    """Connect to the network: the recorded fork for polygon:local, else the configured RPC endpoints."""
    # NOTE: lazily: World pulls in eth_account (~0.1 s), and commands that only name a network (`follow add`,
    # `migrate status`, `deploy addresses`) import this module for `normalize`.
    from ..polymarket.world import World

    name, chain_id, is_local = normalize(network, settings)
    urls = endpoint_urls(settings, state, name)
    world = None
    if is_local:
        rec = running_node(state)
        world = World.from_json(rec.world_json) if rec and rec.world_json else None
    w3 = connect_checked(urls, expect_chain_id=chain_id)
    ctx = ChainContext(network=name, chain_id=chain_id, is_local=is_local, w3=w3,
                       rpc_url=w3.provider.endpoint_uri, world=world)
    ctx._settings = settings
    return ctx
