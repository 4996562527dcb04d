"""Which chain a command talks to: the local fork (from state) or a live network (from the settings).
Local vs live is decided by the network name the operator gave, never by the chain id (the fork is 137 too)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ChainError, ConfigError, NodeError, UsageError
from ..redact import redact_url
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
        """The trading collateral (pUSD): the planted world's on the fork, the configured one live."""
        return self.world.exchange_collateral if self.world is not None else self._settings.pusd_address

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


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
DEV_NODE_CLIENTS = ("anvil", "hardhat")
_NOT_THE_FORK_FIX = ("unset COPY_TRADING_RPC_URL and COPY_TRADING_RPC_URLS to use the fork `copytrade fork up` "
                     "recorded, or name the live network with --network polygon:mainnet")


def endpoint_urls(settings: Settings, state: State, network: str | None = None) -> list[str]:
    """The RPC endpoints of a network in failover order: on the fork the recorded node (COPY_TRADING_RPC_URL(S)
    may only name that same node, see `local_urls`), live the configured ones. Raises when there are none."""
    name, _, is_local = normalize(network, settings)
    if is_local:
        rec = running_node(state)
        if rec is None:
            raise NodeError("no local fork is running for this COPYTRADE_HOME: start one with `copytrade fork up`")
        return local_urls(settings.rpc_urls(), rec)
    urls = settings.rpc_urls()
    if not urls:
        raise ChainError(f"{name} needs an RPC endpoint: set COPY_TRADING_RPC_URL "
                         "(e.g. COPY_TRADING_RPC_URL=https://polygon-rpc.com)")
    return urls


def _host_port(url: str) -> tuple[str, str, int | None, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.path + ("?" if parts.query else "")


def is_recorded_node(url: str, rec: NodeRecord) -> bool:
    """True when `url` names the node `fork up` recorded: a loopback host, the recorded scheme and port, no path."""
    scheme, host, port, path = _host_port(url)
    r_scheme, _, r_port, _ = _host_port(rec.rpc_url)
    return (host in LOOPBACK_HOSTS and scheme == r_scheme and port is not None and port == r_port
            and path in ("", "/"))


def local_urls(configured: list[str], rec: NodeRecord) -> list[str]:
    """The endpoints polygon:local may use: the recorded node, and configured URLs only if they are that node
    (another loopback port, a remote host or a path is refused: mainnet is chain 137 too, so a live chain would
    otherwise pass as the fork and skip the switch and readiness). Its client must be anvil or hardhat."""
    # NOTE: checked before any request goes out: a refused URL is never contacted.
    foreign = [u for u in configured if not is_recorded_node(u, rec)]
    if foreign:
        shown = ", ".join(redact_url(u) or "" for u in foreign)
        raise ConfigError(f"polygon:local only talks to the fork node recorded by `fork up` "
                          f"({redact_url(rec.rpc_url)}), but COPY_TRADING_RPC_URL(S) name another endpoint ({shown}): "
                          f"{_NOT_THE_FORK_FIX}")
    urls = configured or [rec.rpc_url]
    check_dev_node(urls[0])
    return urls


def check_dev_node(url: str, timeout: float = 3.0) -> str:
    """The node's `web3_clientVersion`, refused unless it is anvil or hardhat (a loopback port can be taken
    over by anything once the fork is gone)."""
    import json
    import urllib.request

    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "web3_clientVersion", "params": []}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 — a loopback URL checked above
            version = str(json.loads(r.read()).get("result") or "")
    except Exception as exc:  # noqa: BLE001 — unreachable, not JSON, not JSON-RPC: all "not the fork"
        raise NodeError(f"the fork node {redact_url(url)} does not answer web3_clientVersion "
                        f"({type(exc).__name__}): restart it with `copytrade fork up`") from None
    if not any(k in version.lower() for k in DEV_NODE_CLIENTS):
        raise ConfigError(f"polygon:local needs an anvil or hardhat node, but {redact_url(url)} answers "
                          f"{version[:40]!r}: {_NOT_THE_FORK_FIX}")
    return version


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
