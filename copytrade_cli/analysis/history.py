"""A leader's history as the Data API v2 and Gamma return it, normalised into small typed rows.

The raw rows are kept as they came (so `--save` writes exactly the JSON the APIs returned and `--from-file` reads
it back): `{"user", "trades": [/v2/trades rows], "taker_trades": [/v2/trades?taker_only=true rows],
"activity": [/v2/activity rows], "markets": [Gamma /markets/keyset rows]}`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Trade:
    """One fill of the leader (v2 /trades row)."""

    side: str
    token_id: str
    condition_id: str
    size: Decimal
    price: Decimal
    timestamp: int
    tx_hash: str
    outcome: str = ""
    outcome_index: int | None = None
    title: str = ""
    is_taker: bool | None = None

    @property
    def usd(self) -> Decimal:
        """Notional in USD (size x price)."""
        return self.size * self.price

    @property
    def key(self) -> tuple:
        """What identifies the fill across the two /trades downloads (all fills, taker-only fills)."""
        return (self.tx_hash.lower(), self.token_id, self.side, self.size)


@dataclass(frozen=True)
class Redeem:
    """One REDEEM activity row: collateral paid out for a resolved market."""

    condition_id: str
    usd: Decimal
    timestamp: int
    tx_hash: str


@dataclass(frozen=True)
class MarketInfo:
    """What the report needs from Gamma about one market."""

    condition_id: str
    question: str
    category: str
    neg_risk: bool
    token_ids: tuple[str, ...]
    prices: tuple[Decimal | None, ...]
    closed: bool
    resolved: bool
    min_order_size: Decimal | None = None
    tick_size: Decimal | None = None
    fees_enabled: bool | None = None
    """Gamma's `feesEnabled`: False = no taker fee; None (not said) = the category's rate."""

    def payout(self, token_id: str) -> Decimal | None:
        """Payout per share of `token_id` once resolved (1 or 0; None while unresolved)."""
        if not self.resolved or token_id not in self.token_ids:
            return None
        return self.prices[self.token_ids.index(token_id)]

    def price(self, token_id: str) -> Decimal | None:
        """Current price of `token_id` (Gamma's outcome price)."""
        if token_id not in self.token_ids:
            return None
        return self.prices[self.token_ids.index(token_id)]

    @property
    def kind(self) -> str:
        """"neg-risk" or "binary"."""
        return "neg-risk" if self.neg_risk else "binary"


@dataclass
class History:
    """Everything downloaded (or loaded) about one leader."""

    user: str
    raw: dict[str, Any] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    redeems: list[Redeem] = field(default_factory=list)
    markets: dict[str, MarketInfo] = field(default_factory=dict)
    other_activity: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], since: int | None = None) -> "History":
        """Parse the raw JSON (as saved); a malformed row is one clear UsageError naming it."""
        if not isinstance(raw, dict) or not isinstance(raw.get("trades"), list):
            raise UsageError("history file must be a JSON object with a \"trades\" list (as `--save` writes)")
        user = str(raw.get("user") or "")
        taker = raw.get("taker_trades")
        taker_keys = None if taker is None else {_trade(r, i, "taker_trades").key for i, r in enumerate(taker)}
        trades = []
        for i, r in enumerate(raw["trades"]):
            t = _trade(r, i, "trades")
            if since is not None and t.timestamp < since:
                continue
            if taker_keys is not None:
                t = Trade(**{**t.__dict__, "is_taker": t.key in taker_keys})
            trades.append(t)
        trades.sort(key=lambda t: (t.timestamp, t.tx_hash))
        redeems, other = [], {}
        for i, r in enumerate(raw.get("activity") or []):
            kind = str(r.get("type", "")).upper() if isinstance(r, dict) else ""
            if kind == "REDEEM":
                ts = _int(r, "timestamp", i, "activity")
                if since is None or ts >= since:
                    redeems.append(Redeem(str(r.get("condition_id", "")).lower(), _dec(r, "usdc_size", i, "activity"),
                                          ts, str(r.get("transaction_hash", ""))))
            elif kind != "TRADE":
                other[kind or "?"] = other.get(kind or "?", 0) + 1
        markets = {}
        for i, r in enumerate(raw.get("markets") or []):
            m = _market(r, i)
            markets[m.condition_id] = m
        return cls(user=user, raw=raw, trades=trades, redeems=sorted(redeems, key=lambda r: r.timestamp),
                   markets=markets, other_activity=other)

    def save(self, path: Path) -> None:
        """Write the raw rows (the JSON the APIs returned)."""
        Path(path).write_text(json.dumps(self.raw, indent=1, default=str))


def load_file(path: str | Path, since: int | None = None) -> History:
    """A history saved by `--save` (or assembled by hand from the API's JSON)."""
    p = Path(path).expanduser()
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"--from-file {p}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--from-file {p}: not readable JSON ({str(exc)[:80]})") from None
    return History.from_raw(raw, since)


def _dec(row: dict, key: str, i: int, where: str) -> Decimal:
    try:
        d = Decimal(str(row[key]))
    except (KeyError, InvalidOperation, TypeError):
        raise UsageError(f"{where}[{i}]: field {key!r} missing or not a number") from None
    if not d.is_finite():
        raise UsageError(f"{where}[{i}]: field {key!r} is not finite")
    return d


def _int(row: dict, key: str, i: int, where: str) -> int:
    try:
        return int(row[key])
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"{where}[{i}]: field {key!r} missing or not an integer") from None


def _trade(r: Any, i: int, where: str) -> Trade:
    if not isinstance(r, dict):
        raise UsageError(f"{where}[{i}] is not an object")
    side = str(r.get("side", "")).upper()
    if side not in ("BUY", "SELL"):
        raise UsageError(f"{where}[{i}]: side {r.get('side')!r} is not BUY or SELL")
    size, price = _dec(r, "size", i, where), _dec(r, "price", i, where)
    if size <= 0 or not 0 < price < 1:
        raise UsageError(f"{where}[{i}]: size {size} / price {price} out of range")
    idx = r.get("outcome_index")
    return Trade(side=side, token_id=str(r.get("token_id", "")), condition_id=str(r.get("condition_id", "")).lower(),
                 size=size, price=price, timestamp=_int(r, "timestamp", i, where),
                 tx_hash=str(r.get("transaction_hash", "")), outcome=str(r.get("outcome") or ""),
                 outcome_index=int(idx) if isinstance(idx, int) else None, title=str(r.get("title") or ""))


def _json_list(value: Any) -> list:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return list(value) if isinstance(value, (list, tuple)) else []


def _market(r: Any, i: int) -> MarketInfo:
    if not isinstance(r, dict) or not r.get("conditionId"):
        raise UsageError(f"markets[{i}]: not a Gamma market object with a conditionId")
    prices = []
    for p in _json_list(r.get("outcomePrices")):
        try:
            prices.append(Decimal(str(p)))
        except InvalidOperation:
            prices.append(None)
    tokens = tuple(str(t) for t in _json_list(r.get("clobTokenIds")))
    closed = bool(r.get("closed"))
    # Resolved: closed with the payout vector on the outcome prices (one outcome at 1, the others at 0).
    resolved = closed and len(prices) == len(tokens) > 0 and all(p in (Decimal(0), Decimal(1)) for p in prices) \
        and sum(prices) == 1
    tick = r.get("orderPriceMinTickSize")
    mos = r.get("orderMinSize")
    return MarketInfo(condition_id=str(r["conditionId"]).lower(), question=str(r.get("question") or ""),
                      category=str(r.get("category") or "other").lower(), neg_risk=bool(r.get("negRisk")),
                      token_ids=tokens, prices=tuple(prices), closed=closed, resolved=resolved,
                      min_order_size=None if mos is None else Decimal(str(mos)),
                      tick_size=None if tick is None else Decimal(str(tick)),
                      fees_enabled=None if r.get("feesEnabled") is None else bool(r.get("feesEnabled")))
