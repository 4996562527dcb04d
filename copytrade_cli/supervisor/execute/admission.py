"""Admission: what a group must satisfy before its first step, and the one place its journalled values are checked.

- `load_legs` / `check_group`: the group's legs and numbers as read from the state file (a hand-edited row, a bug
  of an older version): an impossible value (1e400, a negative or fractional micro amount, a price limit outside
  (0,1)) is an `InvalidGroup` with its reason, and the group fails into a terminal, journalled state.
- `StartRules` / `group_refusal`: a group that has not started (stage queued, nothing pulled or ordered) is refused
  as a whole when the real-trading switch is off on a live network, when it is older than
  SUPERVISOR_MAX_GROUP_AGE_MS, or when the CLOB's book has moved past its price limit; `leg_refusals` drops the legs
  whose follower left COPY_TRADING_EXECUTION_ALLOWLIST. Resume, orphan regrouping and the shared-queue refill all
  run groups through here, so none of them executes a backlog the switch or the allowlist no longer permits.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ...errors import CopytradeError
from ..model import Leg

MICRO = 10**6
MAX_LEGS = 256  # the Executor's MAX_BATCH: a batch call takes no more
MAX_MICRO = 10**15  # 1e9 USD or shares in micro-units: far above any copy (decide bounds one at 1e7 USD)
# A group picked up within this many seconds of its fill was priced from the leader's fill moments ago: the FOK
# order itself refuses any fill past its limit (nothing lost: a Standard pull is refunded). An older one (a
# backlog, a resume, an orphan regrouped, a shared-queue refill) is checked against the book first (one GET
# /book) so a limit the market has left is skipped before anything is pulled.
BOOK_CHECK_AFTER_S = 2.0
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NOT_STARTED_STAGE = "queued"


class InvalidGroup(CopytradeError):
    """A group row (or a value computed from it) that no execution can be made of; the message says which."""


def _int(value: Any, what: str, *, lo: int = 0, hi: int = MAX_MICRO) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidGroup(f"{what} {str(value)[:40]!r} is not an integer")
    if not lo <= value <= hi:
        raise InvalidGroup(f"{what} {value} is outside [{lo}, {hi}]")
    return value


def _refuse_constant(name: str) -> Any:
    raise InvalidGroup(f"{name} is not a number")


def load_legs(text: str | None) -> list[Leg]:
    """The legs of a group row, every field checked (job id, proxy address, integral micro amounts in bounds)."""
    try:
        raw = json.loads(text or "[]", parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidGroup(f"legs_json is not JSON: {str(exc)[:80]}") from None
    if not isinstance(raw, list) or not raw:
        raise InvalidGroup("legs_json holds no legs")
    if len(raw) > MAX_LEGS:
        raise InvalidGroup(f"{len(raw)} legs, more than one batch takes ({MAX_LEGS})")
    legs = []
    for i, d in enumerate(raw):
        if not isinstance(d, dict):
            raise InvalidGroup(f"leg {i} is not an object")
        proxy = d.get("proxy")
        if not isinstance(proxy, str) or not _ADDRESS.match(proxy):
            raise InvalidGroup(f"leg {i}: proxy {str(proxy)[:44]!r} is not an address")
        key = d.get("reserve_key")
        if key is not None and not isinstance(key, str):
            raise InvalidGroup(f"leg {i}: reserve_key is not text")
        legs.append(Leg(job_id=_int(d.get("job_id"), f"leg {i}: job_id", lo=1, hi=2**63 - 1), proxy=proxy,
                        usd_micro=_int(d.get("usd_micro", 0), f"leg {i}: usd_micro"),
                        shares_micro=_int(d.get("shares_micro", 0), f"leg {i}: shares_micro"), reserve_key=key))
    return legs


def check_group(g: dict[str, Any], legs: list[Leg]) -> None:
    """The group's own numbers: side, flow, token id, a price limit inside (0,1), journalled amounts in bounds,
    and every leg sized for its side."""
    if g.get("side") not in ("BUY", "SELL"):
        raise InvalidGroup(f"side {str(g.get('side'))[:20]!r} is neither BUY nor SELL")
    if g.get("flow") not in ("standard", "buffer"):
        raise InvalidGroup(f"flow {str(g.get('flow'))[:20]!r} is neither standard nor buffer")
    tok = str(g.get("token_id") or "")
    if not tok.isdigit() or int(tok) >= 2**256:
        raise InvalidGroup(f"token id {tok[:40]!r} is not a uint256")
    try:
        lim = Decimal(str(g.get("price_limit")))
    except (InvalidOperation, ValueError):
        lim = None
    if lim is None or not lim.is_finite() or not Decimal(0) < lim < Decimal(1):
        raise InvalidGroup(f"price limit {str(g.get('price_limit'))[:40]!r} is outside (0,1)")
    for f in ("filled_shares", "spent_micro", "proceeds_micro"):
        if g.get(f) is not None:
            _int(g[f], f)
    field = "usd_micro" if g["side"] == "BUY" else "shares_micro"
    for leg in legs:
        if getattr(leg, field) <= 0:
            raise InvalidGroup(f"job {leg.job_id}: a {g['side']} leg with {field} {getattr(leg, field)}")


def not_started(g: dict[str, Any]) -> bool:
    """Nothing of the group has happened yet: stage queued, no pull sent, no order built."""
    return g.get("stage") == _NOT_STARTED_STAGE and not g.get("pull_tx") and not g.get("order_id")


@dataclass(frozen=True)
class StartRules:
    """What a not-started group is checked against, from the settings and the network (live or the fork)."""

    live: bool  # a live network: the real-trading switch applies (the fork always executes, as in decide)
    real_trading: bool
    allowlist: frozenset[str]
    max_age_s: float
    book_check_after_s: float = BOOK_CHECK_AFTER_S

    @classmethod
    def of(cls, settings: Any, *, live: bool) -> "StartRules":
        """The rules of these settings on a live network (`live`) or the fork."""
        return cls(live=live, real_trading=bool(settings.enable_real_trading),
                   allowlist=frozenset(a.lower() for a in settings.copy_trading_execution_allowlist),
                   max_age_s=settings.supervisor_max_group_age_ms / 1000)


def group_age_s(g: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds since the group's fill was detected (else since it was queued); None if the row says neither."""
    t = g.get("t_detected") or g.get("t_queued")
    return None if not t else (now or time.time()) - float(t)


def group_refusal(rules: StartRules, g: dict[str, Any], now: float | None = None) -> str | None:
    """Why a not-started group may not run at all (the switch, its age), or None. No I/O."""
    if rules.live and not rules.real_trading:
        return "ENABLE_REAL_TRADING is off (re-checked at start: nothing executed)"
    age = group_age_s(g, now)
    if age is not None and age > rules.max_age_s:
        return (f"stale: detected {age:.0f}s ago, more than SUPERVISOR_MAX_GROUP_AGE_MS "
                f"{rules.max_age_s * 1000:.0f} (its price limit is that old)")
    return None


def book_refusal(side: str, limit: str, book: dict[str, Any] | None) -> str | None:
    """Why the book says the group's FOK order must fail (the best price is past its limit), or None.
    A BUY needs an ask at or below the limit; a SELL a bid at or above it. An unreadable book: None (FOK)."""
    if not isinstance(book, dict):
        return None
    lim = Decimal(str(limit))
    levels = book.get("asks" if side == "BUY" else "bids") or []
    prices = []
    for lv in levels:
        try:
            p = Decimal(str(lv.get("price") if isinstance(lv, dict) else getattr(lv, "price", None)))
            s = Decimal(str(lv.get("size") if isinstance(lv, dict) else getattr(lv, "size", None)))
        except (InvalidOperation, ValueError, TypeError):
            continue
        if p.is_finite() and s.is_finite() and s > 0:
            prices.append(p)
    if not prices:
        return f"the book has no {'asks' if side == 'BUY' else 'bids'} (price limit {lim})"
    best = min(prices) if side == "BUY" else max(prices)
    if side == "BUY" and best > lim:
        return f"the book moved past the price limit: best ask {best} > limit {lim}"
    if side == "SELL" and best < lim:
        return f"the book moved past the price limit: best bid {best} < limit {lim}"
    return None


def allowlist_refusals(rules: StartRules | None, legs: list[Leg], owners: dict[int, str | None]) -> dict[int, str]:
    """Legs (by job id) whose follower (proxy or its owner, as decide checks) is not in the allowlist."""
    if rules is None or not rules.allowlist:
        return {}
    out = {}
    for leg in legs:
        if leg.proxy.lower() in rules.allowlist or (owners.get(leg.job_id) or "").lower() in rules.allowlist:
            continue
        out[leg.job_id] = "follower not in COPY_TRADING_EXECUTION_ALLOWLIST (re-checked at start)"
    return out
