"""The Data API half of the local activity feed: the trade record it keeps and the `GET /activity` and
`GET /trades` queries over those records (CLOB-WIRE §8). Pure: no I/O; bad parameters raise ValueError."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

ACTIVITY_MAX_LIMIT = 500
TRADES_MAX_LIMIT = 10_000
MAX_OFFSET = 10_000


@dataclass
class TradeRecord:
    """One fill as the feed keeps it: the public payload plus what sorting and filtering need."""

    payload: dict[str, Any]
    usdc_size: float
    block_number: int
    log_index: int
    is_taker: bool
    user: str = field(init=False)

    def __post_init__(self) -> None:
        self.user = self.payload["proxyWallet"].lower()

    def trade_row(self) -> dict[str, Any]:
        """A Data API `/trades` row."""
        return {**self.payload, "profileImageOptimized": ""}

    def activity_row(self) -> dict[str, Any]:
        """A Data API `/activity` row (type TRADE)."""
        return {**self.payload, "type": "TRADE", "usdcSize": self.usdc_size, "profileImageOptimized": ""}


def activity_rows(records: Iterable[TradeRecord], q: Mapping[str, str]) -> list[dict[str, Any]]:
    """`/activity?user=&type=&start=&end=&limit=&offset=&market=&side=&sortBy=&sortDirection=` rows."""
    user = _user(q.get("user"), required=True)
    limit = _bounded(q.get("limit"), 100, ACTIVITY_MAX_LIMIT, "limit")
    offset = _bounded(q.get("offset"), 0, MAX_OFFSET, "offset")
    start = _opt_int(q.get("start"), "start")
    end = _opt_int(q.get("end"), "end")
    types = {t.strip().upper() for t in q.get("type", "").split(",") if t.strip()}
    side = _side(q.get("side"))
    markets = _csv_lower(q.get("market"))
    sort_by = q.get("sortBy", "TIMESTAMP").upper()
    desc = q.get("sortDirection", "DESC").upper() != "ASC"
    if sort_by not in ("TIMESTAMP", "TOKENS", "CASH"):
        raise ValueError("sortBy must be TIMESTAMP, TOKENS or CASH")
    if types and "TRADE" not in types:
        return []
    rows = [t for t in records if t.user == user
            and (start is None or t.payload["timestamp"] >= start)
            and (end is None or t.payload["timestamp"] <= end)
            and (side is None or t.payload["side"] == side)
            and (not markets or t.payload["conditionId"].lower() in markets)]
    key = {"TIMESTAMP": lambda t: (t.payload["timestamp"], t.block_number, t.log_index),
           "TOKENS": lambda t: (t.payload["size"], t.block_number, t.log_index),
           "CASH": lambda t: (t.usdc_size, t.block_number, t.log_index)}[sort_by]
    rows.sort(key=key, reverse=desc)
    return [t.activity_row() for t in rows[offset:offset + limit]]


def trade_rows(records: Iterable[TradeRecord], q: Mapping[str, str]) -> list[dict[str, Any]]:
    """`/trades?user=&limit=&offset=&takerOnly=&market=&side=` rows, newest first."""
    user = _user(q.get("user"), required=False)
    limit = _bounded(q.get("limit"), 100, TRADES_MAX_LIMIT, "limit")
    offset = _bounded(q.get("offset"), 0, MAX_OFFSET, "offset")
    side = _side(q.get("side"))
    markets = _csv_lower(q.get("market"))
    taker_only = q.get("takerOnly", "true").lower() != "false"
    rows = [t for t in records if (user is None or t.user == user)
            and (not taker_only or t.is_taker)
            and (side is None or t.payload["side"] == side)
            and (not markets or t.payload["conditionId"].lower() in markets)]
    rows.sort(key=lambda t: (t.payload["timestamp"], t.block_number, t.log_index), reverse=True)
    return [t.trade_row() for t in rows[offset:offset + limit]]


def _user(value: str | None, *, required: bool) -> str | None:
    if not value:
        if required:
            raise ValueError("user is required")
        return None
    v = value.strip().lower()
    if len(v) != 42 or not v.startswith("0x") or any(c not in "0123456789abcdef" for c in v[2:]):
        raise ValueError("user must be 0x + 40 hex")
    return v


def _bounded(value: str | None, default: int, maximum: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if n < 0 or n > maximum:
        raise ValueError(f"{name} must be between 0 and {maximum}")
    return n


def _opt_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer (epoch seconds)") from None


def _side(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().upper()
    if v not in ("BUY", "SELL"):
        raise ValueError("side must be BUY or SELL")
    return v


def _csv_lower(value: str | None) -> set[str]:
    return {x.strip().lower() for x in (value or "").split(",") if x.strip()}
