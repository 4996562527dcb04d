"""Which detection channels to run and where each one listens, built with the intake they hand fills to."""
from __future__ import annotations

import threading
import time

from ..polymarket.addresses import chain_contracts
from .detect import ActivityChannel, Channel, DataApiChannel, FillSink, LogChannel, MempoolChannel, _Rpc
from .ghosts import GhostWatcher

CHANNELS = ("mempool", "logs", "activity", "data_api")


class ChainClock:
    """The "now" of the feeds on the fork: the later of this host's clock and the latest block's time (read at most
    once a second). Fork blocks are stamped with the chain's clock, which an admin-delay grant can push hours or
    days ahead (`evm_increaseTime`); live, the feeds' timestamps are checked against the host's clock."""

    def __init__(self, w3, ttl_s: float = 1.0):
        self.w3, self.ttl_s = w3, ttl_s
        self._at, self._chain = 0.0, 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        now = time.time()
        with self._lock:
            if now - self._at > self.ttl_s:
                try:
                    self._chain = float(self.w3.eth.get_block("latest")["timestamp"])
                except Exception:  # noqa: BLE001 — the node is away: the host's clock alone
                    pass
                self._at = now
            return max(now, self._chain)


def build_channels(names, *, intake: FillSink, leaders, stop: threading.Event, settings, state, chain,
                   exchange: str, ctf: str, world, data_api_poll_s: float, on_ghost=None) -> list[Channel]:
    """The channels named (not started), each built with `intake` and the shared stop event. With `on_ghost`
    (a `ghosts.GhostHandler`), the mempool channel's transactions are watched for ghost fills (started with it)."""
    rpc = chain.rpc_url
    rpcs = list(getattr(chain.w3.provider, "urls", None) or [rpc])  # failover order (COPY_TRADING_RPC_URLS)
    if rpc in rpcs:
        rpcs = rpcs[rpcs.index(rpc):] + rpcs[:rpcs.index(rpc)]
    exchanges = list(chain_contracts(chain.chain_id, world, settings).exchanges)
    rec = state.get_node() if chain.is_local else None
    clock = ChainClock(chain.w3) if chain.is_local else time.time
    out: list[Channel] = []
    for name in names:
        if name == "mempool":
            ch = MempoolChannel(intake, leaders, stop, rpc_url=rpcs, exchanges=exchanges, ctf=ctf,
                                chain_id=chain.chain_id)
            if on_ghost is not None:
                # NOTE: its own RPC client: a keep-alive connection is never shared between two threads.
                ch.ghosts = GhostWatcher(_Rpc(rpcs), on_ghost, stop, after_round=getattr(on_ghost, "follow_up", None))
        elif name == "logs":
            ch = LogChannel(intake, leaders, stop, rpc_url=rpcs, exchanges=exchanges, state=state,
                            cursor_name=log_cursor(settings, state, chain.network), world=world, ws_url=ws_url(rpc))
        elif name == "activity":
            url = settings.activity_ws_url or (rec.feed_url if rec else None) or "wss://ws-live-data.polymarket.com"
            ch = ActivityChannel(intake, leaders, stop, url=url, filter_by_address=settings.supervisor_ws_filter_by_address,
                                 clock=clock)
        elif name == "data_api":
            url = settings.data_api_url or (rec.clob_url if rec else None) or "https://data-api.polymarket.com"
            ch = DataApiChannel(intake, leaders, stop, url=url, state=state, poll_s=data_api_poll_s, clock=clock)
        else:
            raise ValueError(f"unknown channel {name!r}; use {', '.join(CHANNELS)}")
        out.append(ch)
    return out


def log_cursor(settings, state, network: str) -> str:
    """The log channel's cursor: one per shard layout position, since instances sharing the state file
    advance their own. A new layout starts from the unsharded cursor (replays are safe: dedup + unique jobs)."""
    base = f"logs:{network}"
    n, i = settings.supervisor_shard_count, settings.supervisor_shard_index
    if n <= 1:
        return base
    name = f"{base}:shard{i}of{n}"
    if state.get_cursor(name) is None and state.get_cursor(base) is not None:
        state.set_cursor(name, state.get_cursor(base))
    return name


def ws_url(rpc_url: str) -> str | None:
    """The websocket endpoint beside an HTTP RPC endpoint (anvil and hardhat serve both on one port)."""
    if rpc_url.startswith("http://"):
        return "ws://" + rpc_url[len("http://"):]
    if rpc_url.startswith("https://"):
        return "wss://" + rpc_url[len("https://"):]
    return None
