"""What stands between a request and the book: per-signer rate limits (LIVE-2026 §12), cancel-only mode, and the
faults tests inject (429s, RETRYING / FAILED settlements for the next N trades).

Pure state, no I/O: `LocalClob` asks `admit(...)` before it takes an order or a cancel, and `Settlement` asks
`next_settlement_fault()` once per trade. The local admin route (`POST /local/faults`) changes it at run time.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from .clob_orders import ClobApiError

# Live's texts where known; where not, the stricter reading with the words the SDK keys on (docs/live-assumptions.md).
ERR_RATE_LIMITED = "Too Many Requests"
ERR_CANCEL_ONLY = "trading is in cancel-only mode: only cancels are accepted, try again later (cancel-only)"

FAULT_RETRYING = "RETRYING"
FAULT_FAILED = "FAILED"


@dataclass
class TokenBucket:
    """A bucket of `burst` tokens refilled at `rate` per second."""

    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, cost: float, now: float) -> float:
        """Take `cost` tokens (all or nothing); 0.0 when admitted, else the seconds until it would be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if cost <= self.tokens:
            self.tokens -= cost
            return 0.0
        if cost > self.burst:
            return math.inf
        return (cost - self.tokens) / self.rate


def rate_limited(retry_after: float) -> ClobApiError:
    """The 429 the SDK turns into RateLimitError(retry_after=...)."""
    wait = max(1, math.ceil(retry_after)) if math.isfinite(retry_after) else 60
    return ClobApiError(ERR_RATE_LIMITED, status=429, headers={"Retry-After": str(wait)}, retry_after_seconds=wait)


@dataclass
class Guard:
    """Rate limits, cancel-only mode and injected faults of one CLOB (thread-safe)."""

    rate_per_s: float = 50.0
    burst: float = 500.0
    cancel_only: bool = False
    retry_delay_s: float = 0.5
    fail_delay_s: float = 0.5
    injected_429: int = 0
    """The next N order/cancel requests are answered 429 whatever the buckets say."""
    injected_retry_after: float = 1.0
    settlement_faults: list[str] = field(default_factory=list)
    """One entry per upcoming trade: RETRYING or FAILED, consumed in match order."""
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, signer: str, cost: float, *, placing: bool, now: float | None = None) -> dict[str, str]:
        """Let a request of `cost` from `signer` through or raise (503 cancel-only for orders, 429); returns the
        Poly-RateLimit-* headers to send with the answer."""
        if placing and self.cancel_only:
            raise ClobApiError(ERR_CANCEL_ONLY, status=503)
        with self._lock:
            if self.injected_429 > 0:
                self.injected_429 -= 1
                raise rate_limited(self.injected_retry_after)
            if self.rate_per_s <= 0:
                return {}
            now = time.monotonic() if now is None else now
            bucket = self._buckets.get(signer.lower())
            if bucket is None:
                bucket = self._buckets[signer.lower()] = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            wait = bucket.take(cost, now)
            if wait > 0:
                raise rate_limited(wait)
            return {"Poly-RateLimit-Remaining": str(int(bucket.tokens)),
                    "Poly-RateLimit-Reset": str(math.ceil((bucket.burst - bucket.tokens) / bucket.rate))}

    def next_settlement_fault(self) -> str | None:
        """The fault injected for the next trade (consumed), or None."""
        with self._lock:
            return self.settlement_faults.pop(0) if self.settlement_faults else None

    def configure(self, body: dict) -> dict:
        """Apply an admin body: {"rate_limit": {"count", "retry_after"}, "cancel_only", "retrying": N, "failed": N,
        "rate_per_s", "burst"}; returns the resulting state."""
        if not isinstance(body, dict):
            raise ClobApiError("Invalid payload")
        try:
            with self._lock:
                if body.get("clear"):  # first, so {"clear": true, "retrying": 1} means "exactly one"
                    self.settlement_faults.clear()
                    self.injected_429 = 0
                if "rate_limit" in body:
                    rl = body["rate_limit"] or {}
                    self.injected_429 = int(rl.get("count", 1))
                    self.injected_retry_after = float(rl.get("retry_after", 1.0))
                if "cancel_only" in body:
                    self.cancel_only = bool(body["cancel_only"])
                for key, fault in (("retrying", FAULT_RETRYING), ("failed", FAULT_FAILED)):
                    if key in body:
                        self.settlement_faults.extend([fault] * int(body[key]))
                if "rate_per_s" in body:
                    self.rate_per_s = float(body["rate_per_s"])
                    self._buckets.clear()
                if "burst" in body:
                    self.burst = float(body["burst"])
                    self._buckets.clear()
        except (TypeError, ValueError, AttributeError):
            raise ClobApiError("Invalid payload") from None
        return self.snapshot()

    def snapshot(self) -> dict:
        """The current switches and queues (GET /local/faults)."""
        return {"cancel_only": self.cancel_only, "rate_limit_pending": self.injected_429,
                "settlement_faults": list(self.settlement_faults), "rate_per_s": self.rate_per_s, "burst": self.burst}
