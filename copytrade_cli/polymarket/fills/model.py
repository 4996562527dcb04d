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


# How far a feed's `usdcSize` may be from size x price: 1% of the notional or 1 cent, whichever is larger
# (the feed rounds both; anything further is not the same trade).
USD_TOLERANCE = Decimal("0.01")
USD_TOLERANCE_MICRO = 10_000
# How far in the future a feed timestamp may be (clock skew between Polymarket's servers and this host).
FUTURE_TOLERANCE_S = 5


def value_problem(shares_micro: Any, usd_micro: Any, price: Any) -> str | None:
    """Why a fill's numbers cannot be copied (None: they can): size > 0, price in (0, 1) exclusive, and the
    notional within tolerance of size x price when both are given. One rule for every channel: the feed
    decoders refuse such a row, the decision skips such a fill (whatever built it)."""
    if isinstance(shares_micro, bool) or not isinstance(shares_micro, int) or shares_micro <= 0:
        return f"size {shares_micro!r} is not positive"
    if price is None:
        return "no price"
    if not isinstance(price, Decimal) or not price.is_finite() or not 0 < price < 1:
        return f"price {price} is not in (0, 1)"
    if usd_micro is not None:
        if isinstance(usd_micro, bool) or not isinstance(usd_micro, int) or usd_micro < 0:
            return f"notional {usd_micro!r} is not a non-negative amount"
        expect = Decimal(shares_micro) * price
        if abs(Decimal(usd_micro) - expect) > max(expect * USD_TOLERANCE, Decimal(USD_TOLERANCE_MICRO)):
            return (f"notional {Decimal(usd_micro) / MICRO} USD does not match size x price "
                    f"{(expect / MICRO).quantize(Decimal('0.000001'))}")
    return None


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
