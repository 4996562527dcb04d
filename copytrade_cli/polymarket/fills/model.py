"""The leader fill: one model and one dedup key for every detection channel (see the package docstring)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from copytrade_cli.errors import CopytradeError


MICRO = 10**6


class DecodeError(CopytradeError, ValueError):
    """Input that claims to be a fill but cannot be decoded (malformed, truncated or hostile)."""


SOURCE_LOG_V2 = "log_v2"
SOURCE_LOG_V1 = "log_v1"
SOURCE_CTF_TRANSFER = "ctf_transfer"
SOURCE_MEMPOOL = "mempool"
SOURCE_ACTIVITY_WS = "activity_ws"
SOURCE_DATA_API = "data_api"


def fill_key(tx_hash: str, token_id: int | str, side: str, shares_micro: int) -> str:
    """The canonical dedup key of a fill; identical whichever channel saw it."""
    return f"{tx_hash.lower()}:{int(token_id)}:{side}:{int(shares_micro)}"


@dataclass(frozen=True, slots=True)
class LeaderFill:
    """One fill of one trader's order, as any detection channel reports it."""

    leader: str
    """Checksummed address of the trader (order maker / proxyWallet)."""
    tx_hash: str
    """0x + 64 lowercase hex."""
    token_id: str
    """ERC-1155 position id, decimal string."""
    side: str
    """"BUY" or "SELL", from the trader's point of view."""
    shares_micro: int
    """Outcome tokens moved, in 1e-6 shares."""
    usd_micro: int | None = None
    """Collateral moved, in 1e-6 USDC (None when the channel cannot know, e.g. a CTF transfer)."""
    price: Decimal | None = None
    """USDC per share (None when unknown)."""
    source: str = ""
    """Which channel produced it: log_v2, log_v1, ctf_transfer, mempool, activity_ws, data_api."""
    seen_at: float = field(default_factory=time.time)
    """Unix seconds when this process saw it."""
    log_index: int | None = None
    condition_id: str | None = None
    block_number: int | None = None
    timestamp: int | None = None
    """Chain/feed timestamp in seconds when the channel carries one."""
    order_hash: str | None = None
    exchange: str | None = None
    counterparty: str | None = None

    @property
    def key(self) -> str:
        """The canonical dedup key (see module docstring)."""
        return fill_key(self.tx_hash, self.token_id, self.side, self.shares_micro)

    @property
    def shares(self) -> Decimal:
        """Size in shares."""
        return Decimal(self.shares_micro) / MICRO

    @property
    def usd(self) -> Decimal | None:
        """Notional in USDC."""
        return None if self.usd_micro is None else Decimal(self.usd_micro) / MICRO

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (Decimals as strings) including the key."""
        d = asdict(self)
        d["price"] = None if self.price is None else str(self.price)
        d["key"] = self.key
        return d
