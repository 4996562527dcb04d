"""Feeds -> fills: the activity websocket's trade messages and the Data API's trade rows."""
from __future__ import annotations

import functools
import json
import math
import time
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from .model import (FUTURE_TOLERANCE_S, DecodeError, LeaderFill, MICRO, SOURCE_ACTIVITY_WS, SOURCE_DATA_API,
                    value_problem)
from .parse import _DEC, _HEX, _MAX_INPUT, _UINT256, _b32hex, _checksum, _int, _leader_set, _wanted


def _micro(value: Any, what: str) -> int:
    """A share/USDC amount (number or numeric string) -> integer micro-units, rounded half-even."""
    if isinstance(value, bool) or value is None:
        raise DecodeError(f"{what}: missing or not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DecodeError(f"{what}: not finite")
        d = Decimal(repr(value))
    elif isinstance(value, (int, str, Decimal)):
        if isinstance(value, str) and len(value) > 80:
            raise DecodeError(f"{what}: too long")
        try:
            d = Decimal(value.strip() if isinstance(value, str) else value)
        except (InvalidOperation, ValueError):
            raise DecodeError(f"{what}: not a number") from None
    else:
        raise DecodeError(f"{what}: not a number")
    if not d.is_finite() or d < 0 or d > Decimal(10) ** 60:
        raise DecodeError(f"{what}: out of range")
    try:
        return int((d * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except InvalidOperation:
        raise DecodeError(f"{what}: out of range") from None


def _price_of(value: Any) -> Decimal:
    """A feed price: a number in (0, 1) exclusive (0, 1 and above are not prices of an outcome share)."""
    if isinstance(value, bool):
        raise DecodeError("price: not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DecodeError("price: not finite")
        value = repr(value)
    if not isinstance(value, (int, str, Decimal)) or isinstance(value, str) and len(value) > 80:
        raise DecodeError("price: not a number")
    try:
        p = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise DecodeError("price: not a number") from None
    if not p.is_finite() or not 0 < p < 1:
        raise DecodeError(f"price {value} is not in (0, 1)")
    p = p.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    if not 0 < p < 1:
        raise DecodeError(f"price {value} is not in (0, 1)")
    return p


def _token_id(value: Any) -> str:
    if isinstance(value, bool):
        raise DecodeError("asset: not a token id")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and len(value.strip()) <= 78 and _DEC.match(value.strip()):
        n = int(value.strip())
    else:
        raise DecodeError("asset: not a decimal token id")
    if not 0 < n < _UINT256:
        raise DecodeError("asset: out of range")
    return str(n)


def _tx_hash_str(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 66 or value[:2].lower() != "0x" or not _HEX.match(value[2:]):
        raise DecodeError("transactionHash: expected 0x + 64 hex")
    return value.lower()


def _side_str(value: Any) -> str:
    if isinstance(value, str) and value.strip().upper() in ("BUY", "SELL"):
        return value.strip().upper()
    raise DecodeError("side: expected BUY or SELL")


def _timestamp_s(value: Any, now: float | None = None) -> int | None:
    """A feed timestamp (s or ms) -> seconds; missing -> None; unreadable or in the future (beyond
    FUTURE_TOLERANCE_S of this host's clock) -> DecodeError: a future stamp would also push the Data API
    cursor past real trades."""
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    ts = _int(value, "timestamp")
    if ts > 10**11:  # milliseconds
        ts //= 1000
    if not 0 <= ts < 10**11:
        raise DecodeError("timestamp: out of range")
    now = time.time() if now is None else now
    if ts > now + FUTURE_TOLERANCE_S:
        raise DecodeError(f"timestamp: {ts - int(now)}s in the future")
    return ts


def _trade_row_fill(row: Mapping[str, Any], wanted: frozenset[str] | None, source: str,
                    seen_at: float | None, now: float | None = None) -> LeaderFill | None:
    leader = _checksum(row.get("proxyWallet"), "proxyWallet")
    if not _wanted(leader, wanted):
        return None
    side = _side_str(row.get("side"))
    shares = _micro(row.get("size"), "size")
    if shares == 0:
        raise DecodeError("size: zero")
    # Every number is checked before the row becomes a fill: a price (required, in (0, 1) exclusive; never
    # defaulted), and usdcSize, when given, within USD_TOLERANCE / USD_TOLERANCE_MICRO of size x price.
    if row.get("price") is None:
        raise DecodeError("price: missing")
    price = _price_of(row.get("price"))
    if row.get("usdcSize") is not None:
        usd = _micro(row.get("usdcSize"), "usdcSize")
    else:
        usd = int((Decimal(shares) * price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    why = value_problem(shares, usd, price)
    if why is not None:
        raise DecodeError(why if why.startswith("price") else f"usdcSize: {why}")
    ts = _timestamp_s(row.get("timestamp"), now)
    cond = row.get("conditionId")
    if cond is not None:
        cond = _b32hex(cond, "conditionId") if isinstance(cond, str) else None
    return LeaderFill(
        leader=leader, tx_hash=_tx_hash_str(row.get("transactionHash")), token_id=_token_id(row.get("asset")),
        side=side, shares_micro=shares, usd_micro=usd, price=price, source=source,
        seen_at=time.time() if seen_at is None else seen_at, condition_id=cond,
        timestamp=ts,
    )


_REJECTED: Counter = Counter()  # source -> rows refused (malformed or hostile), since start


def rejected_rows() -> dict[str, int]:
    """How many feed rows each source's decoder refused since start (each also raised its reason)."""
    return dict(_REJECTED)


def _counted(source: str):
    def wrap(fn):
        @functools.wraps(fn)
        def run(*a, **kw):
            try:
                return fn(*a, **kw)
            except DecodeError:
                _REJECTED[source] += 1
                raise
        return run
    return wrap


@_counted(SOURCE_ACTIVITY_WS)
def decode_activity_message(message: Any, leaders: Iterable[str] | None = None, *,
                            seen_at: float | None = None, now: float | None = None) -> LeaderFill | None:
    """An RTDS activity websocket frame (str/bytes JSON or dict) -> the trade's fill, filtered by leader.
    `now` is the clock a timestamp may not be ahead of (default: this host's; a fork whose chain clock was
    advanced stamps its feed with block time, so its caller passes the chain's).

    Non-trade frames (pong, other topics, keep-alives) -> None. The server cannot filter by address, so
    this is where the leader filter happens.
    """
    if isinstance(message, (bytes, bytearray)):
        if len(message) > _MAX_INPUT:
            raise DecodeError("activity frame too large")
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("activity frame: not UTF-8") from None
    if isinstance(message, str):
        if "payload" not in message:
            return None
        if len(message) > _MAX_INPUT:
            raise DecodeError("activity frame too large")
        try:
            message = json.loads(message)
        except (ValueError, RecursionError):
            raise DecodeError("activity frame: not JSON") from None
    if not isinstance(message, Mapping):
        raise DecodeError("activity frame: expected an object")
    if message.get("topic") not in (None, "activity"):
        return None
    if message.get("type") not in (None, "trades", "orders_matched"):
        return None
    payload = message.get("payload")
    if payload is None:
        return None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            raise DecodeError("activity payload: not JSON") from None
    if not isinstance(payload, Mapping):
        raise DecodeError("activity payload: expected an object")
    return _trade_row_fill(payload, _leader_set(leaders), SOURCE_ACTIVITY_WS, seen_at, now)


@_counted(SOURCE_DATA_API)
def decode_data_api_row(row: Any, leaders: Iterable[str] | None = None, *,
                        seen_at: float | None = None, now: float | None = None) -> LeaderFill | None:
    """A Data API `/activity` row (type TRADE) or `/trades` row -> the trade's fill; other types -> None
    (`now`: as for `decode_activity_message`)."""
    if not isinstance(row, Mapping):
        raise DecodeError("Data API row: expected an object")
    kind = row.get("type")
    if kind is not None and str(kind).upper() != "TRADE":
        return None
    return _trade_row_fill(row, _leader_set(leaders), SOURCE_DATA_API, seen_at, now)
