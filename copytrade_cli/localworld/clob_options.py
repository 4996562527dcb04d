"""The local CLOB's configuration: book shape (market maker), settlement policy, auth and housekeeping."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from eth_utils import to_checksum_address

from .clob_auth import DEFAULT_AUTH_SEED
from .market_maker import LadderConfig

SETTLE_WAIT_MODES = ("receipt", "sent", "none")


@dataclass
class ClobOptions:
    """Everything tunable about the local CLOB (book shape, settlement policy, auth)."""

    mid: float = 0.5
    """Market-maker mid for each market's first outcome (the second is quoted around 1 - mid)."""
    mids: Mapping[str, float] = field(default_factory=dict)
    """Per-token mid overrides."""
    levels: int = 10
    """Market-maker price levels per side."""
    level_size: float = 5000.0
    """Shares per market-maker level."""
    spread_ticks: int = 1
    """Ticks between the mid and the best quotes."""
    quote_bids: bool = True
    """Whether the market maker also quotes BUY ladders."""
    replenish: bool = True
    """Re-quote a market-maker level as soon as it fills out."""
    settle_wait: str = "receipt"
    """When POST /order answers: "receipt" (settlement mined and successful; a revert is an error),
    "sent" (node accepted the tx), "none" (right after matching; trades resolve via /data/trades)."""
    receipt_timeout_s: float = 60.0
    answer_within_s: float = 4.0
    """With settle_wait="receipt": answer after at most this long even if the receipt is not in yet
    (the client's HTTP timeout is 5 s); the settlement is then confirmed in the background."""
    mm_inventory_interval_s: float = 1.0
    """How often the market maker tops up its inventory (split collateral into outcomes when its quotes
    outgrow its tokens, merge outcomes back when its bids outgrow its collateral); 0 disables."""
    check_balances: bool = True
    """Check the poster's balance/allowance on chain (real CLOB behaviour)."""
    page_size: int = 100
    heartbeat_timeout_s: float = 10.0
    """Cancel a key's orders when its heartbeats stop for this long (0 disables)."""
    max_history: int = 100_000
    """Settled trades kept for /data/trades (finished orders: twice that); older ones are forgotten."""
    confirm_blocks: int = 2
    """A MINED trade becomes CONFIRMED once the chain is this many blocks past its receipt's block ..."""
    confirm_delay_s: float = 1.0
    """... or this long after it was MINED, whichever comes first (anvil only mines when there are txs)."""
    grandfathered: tuple[str, ...] = ()
    """Makers allowed to post signature types 0/1/2 (live refuses them: "maker address not allowed, please use the
    deposit wallet flow"). Empty by default; the CLOB's own market maker never goes through this check."""
    rate_limit_per_s: float = 50.0
    """Per-signer token bucket (LIVE-2026 §12): refill per second (POST /order costs 1, /orders one per order,
    cancels 1 per id / 1 + cancelled); 0 disables."""
    rate_limit_burst: float = 500.0
    """The bucket's size."""
    cancel_only: bool = False
    """Start in cancel-only mode: new orders get 503 (the SDK's `cancel_only` restriction); cancels work."""
    retry_delay_s: float = 0.5
    """An injected RETRYING trade sits on its dropped first hash this long before the replacement is sent."""
    fail_delay_s: float = 0.5
    """An injected FAILED trade is marked FAILED this long after matching."""
    priority_fee_gwei: float = 25.0
    """The settlement transactions' priority fee (Polygon refuses tips under 25 gwei, LIVE-2026 §16)."""
    auth_seed: bytes = DEFAULT_AUTH_SEED
    max_clock_skew_s: float | None = None
    access_log: bool = False

    def ladder(self) -> LadderConfig:
        """The market maker's part of the options."""
        return LadderConfig(mid=self.mid, mids=dict(self.mids), levels=self.levels, level_size=self.level_size,
                            spread_ticks=self.spread_ticks, quote_bids=self.quote_bids, replenish=self.replenish)


def resolve_options(options: ClobOptions | None, overrides: Mapping[str, Any]) -> ClobOptions:
    """`options` (or the defaults) with keyword `overrides` of its fields applied, checked."""
    names = {f.name for f in fields(ClobOptions)}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"unknown CLOB option(s): {', '.join(sorted(unknown))}")
    opts = options or ClobOptions()
    if overrides:
        opts = ClobOptions(**{**{n: getattr(opts, n) for n in names}, **overrides})
    opts.grandfathered = tuple(to_checksum_address(a) for a in opts.grandfathered)
    if opts.settle_wait not in SETTLE_WAIT_MODES:
        raise ValueError(f"settle_wait must be one of {SETTLE_WAIT_MODES}, got {opts.settle_wait!r}")
    return opts
