"""Decide: match a leader fill to follow configs, size each copy, apply the guardrails. Pure logic over
a `FollowBook` and a few chain reads passed in; every skip carries its reason."""
from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation

from ..errors import UsageError
from ..polymarket.fills.model import value_problem
from ..settings import MAX_CAP_USD, MAX_TRADE_USD, Settings, checksum_address
from ..state import Follow, State

MICRO = 10**6
SIZINGS = ("fixed", "proportional", "percent")
SELL_MODES = ("proportional", "ignore")
SIDES = ("BOTH", "BUY", "SELL")
FLOWS = ("standard", "buffer")
# Largest --amount by sizing: USD for fixed, a multiple of the leader's notional for proportional, percent.
AMOUNT_BOUNDS = {"fixed": MAX_TRADE_USD, "proportional": Decimal(1000), "percent": Decimal(100)}
MAX_COPY_MICRO = int(MAX_TRADE_USD) * MICRO


def _dec(value: str | None, name: str, *, lo: Decimal | None = None, hi: Decimal | None = None,
         example: str = "10") -> str | None:
    if value is None or value == "":
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise UsageError(f"{name} {value!r} is not a number (e.g. {name} {example})") from None
    if not d.is_finite() or (lo is not None and d < lo) or (hi is not None and d > hi):
        rng = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise UsageError(f"{name} {value!r} must be {rng} (e.g. {name} {example})")
    return str(d)


def validate_follow(*, follower: str, leader: str, owner: str | None = None, sizing: str = "fixed",
                    amount: str = "10", min_usd: str | None = None, max_usd: str | None = None,
                    max_slippage: str = "0.05", sell_mode: str = "proportional", side_filter: str = "BOTH",
                    min_leader_usd: str | None = None, max_price: str | None = None,
                    flow: str = "standard") -> Follow:
    """A checked Follow; a bad field is a one-line UsageError naming the option."""
    try:
        follower_c = checksum_address(follower)
    except ValueError as exc:
        raise UsageError(f"--follower: {exc}") from None
    try:
        leader_c = checksum_address(leader)
    except ValueError as exc:
        raise UsageError(f"--leader: {exc}") from None
    if sizing not in SIZINGS:
        raise UsageError(f"--sizing {sizing!r}: use one of {', '.join(SIZINGS)}")
    if sell_mode not in SELL_MODES:
        raise UsageError(f"--sells {sell_mode!r}: use one of {', '.join(SELL_MODES)}")
    side_filter = side_filter.upper()
    if side_filter not in SIDES:
        raise UsageError(f"--side {side_filter!r}: use one of {', '.join(SIDES)}")
    if flow not in FLOWS:
        raise UsageError(f"--flow {flow!r}: use one of {', '.join(FLOWS)}")
    # Every number is bounded where it enters: a typo (1e400) is refused, never stored (see AMOUNT_BOUNDS).
    amt = _dec(amount, "--amount", lo=Decimal("0.000001"), hi=AMOUNT_BOUNDS[sizing], example="10")
    mn = _dec(min_usd, "--min-usd", lo=Decimal(0), hi=MAX_TRADE_USD, example="1")
    mx = _dec(max_usd, "--max-usd", lo=Decimal("0.01"), hi=MAX_TRADE_USD, example="100")
    if mn is not None and mx is not None and Decimal(mn) > Decimal(mx):
        raise UsageError(f"--min-usd {mn} is above --max-usd {mx}")
    return Follow(follower=follower_c, leader=leader_c, owner=checksum_address(owner) if owner else None,
                  sizing=sizing, amount=amt or "10", min_usd=mn, max_usd=mx,
                  max_slippage=_dec(max_slippage, "--max-slippage", lo=Decimal(0), hi=Decimal("0.5"),
                                    example="0.05") or "0.05",
                  sell_mode=sell_mode, side_filter=side_filter,
                  min_leader_usd=_dec(min_leader_usd, "--min-leader-usd", lo=Decimal(0), hi=MAX_CAP_USD, example="5"),
                  max_price=_dec(max_price, "--max-price", lo=Decimal("0.001"), hi=Decimal("0.999"), example="0.9"),
                  flow=flow)


class FollowBook:
    """Active follow configs indexed by leader; refreshed incrementally and fully from state."""

    def __init__(self, state: State, *, shard_count: int = 1, shard_index: int = 0):
        self.state = state
        self.shard_count, self.shard_index = shard_count, shard_index
        self._by_leader: dict[str, list[Follow]] = {}
        self._since: str | None = None
        self._lock = threading.Lock()
        self.full_refresh()

    def owns(self, leader: str) -> bool:
        """True if this shard handles `leader` (stable hash of the address)."""
        if self.shard_count <= 1:
            return True
        return int(leader.lower()[-8:], 16) % self.shard_count == self.shard_index

    def full_refresh(self) -> int:
        """Rebuild the index from every active follow; returns how many."""
        from ..state import now_iso

        stamp = now_iso()
        follows = self.state.list_follows(status="active")
        idx: dict[str, list[Follow]] = {}
        for f in follows:
            if self.owns(f.leader):
                idx.setdefault(f.leader.lower(), []).append(f)
        with self._lock:
            self._by_leader, self._since = idx, stamp
        return len(follows)

    def refresh(self) -> int:
        """Apply follows changed since the last refresh (added, edited, paused); returns how many changed."""
        from ..state import now_iso

        stamp = now_iso()
        changed = self.state.list_follows(updated_since=self._since)
        with self._lock:
            for f in changed:
                for lst in self._by_leader.values():
                    lst[:] = [x for x in lst if x.id != f.id]
                if f.status == "active" and self.owns(f.leader):
                    self._by_leader.setdefault(f.leader.lower(), []).append(f)
            self._since = stamp
        return len(changed)

    def followers_of(self, leader: str) -> list[Follow]:
        """Active follows of a leader."""
        with self._lock:
            return list(self._by_leader.get(leader.lower(), ()))

    def leaders(self) -> set[str]:
        """Leaders somebody follows (lowercase)."""
        with self._lock:
            return {k for k, v in self._by_leader.items() if v}


@dataclass
class CopySpec:
    """One follower's copy of one fill, after sizing and guardrails."""

    follow: Follow
    side: str
    usd_micro: int = 0        # BUY: collateral to spend
    shares_micro: int = 0     # SELL: shares to sell
    price_limit: Decimal = Decimal("0.99")
    reserve_key: str | None = None
    value_micro: int = 0      # what the copy is worth for the guardrails: BUY its USD, SELL shares x price limit


@dataclass
class Skip:
    """A copy not made, and why."""

    follow: Follow
    reason: str


@dataclass
class Decision:
    """All follows' outcomes for one fill."""

    copies: list[CopySpec] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)


def utc_day() -> str:
    """The guardrail window: the UTC calendar day."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")


def price_limit(leader_price: Decimal, side: str, slippage: Decimal, tick: Decimal = Decimal("0.01")) -> Decimal:
    """Worst acceptable price: leader's price moved against us by the slippage, on the tick grid. There is no
    default price: a fill without one (or outside (0, 1)) is refused (`decide` skips it before this)."""
    if leader_price is None or not 0 < leader_price < 1:
        raise ValueError(f"leader price {leader_price} is not in (0, 1)")
    p = leader_price
    if side == "BUY":
        lim = (p * (1 + slippage) / tick).to_integral_value(ROUND_DOWN) * tick
        return min(max(lim, tick), 1 - tick)
    lim = (p * (1 - slippage) / tick).to_integral_value(ROUND_CEILING) * tick
    return min(max(lim, tick), 1 - tick)


def decide(fill, follows: list[Follow], *, settings: Settings, is_local: bool,
           balances: dict[str, int] | None = None, positions: dict[str, int] | None = None,
           leader_position_before: int | None = None, unroutable: dict[str, str] | None = None) -> Decision:
    """Size each follower's copy of `fill` and apply the per-copy guardrails (caps are reserved later).
    `unroutable` maps proxies copies must not go to (deprecated by a migration) to the reason."""
    out = Decision()
    price = fill.price
    leader_usd = fill.usd
    side = fill.side
    allow = {a.lower() for a in settings.copy_trading_execution_allowlist}
    max_trade = settings.copy_trading_max_trade_usd
    blocked = not is_local and not settings.enable_real_trading
    limits: dict[str, Decimal] = {}  # price limit by slippage: the same for every follow of this fill
    # A copy needs the leader's price (it sets the limit): none is never guessed, and a fill whose numbers are
    # impossible (size <= 0, price outside (0, 1), notional != size x price) is refused, whatever built it.
    bad_price = _fill_problem(fill)
    for f in follows:
        try:
            if f.sizing not in SIZINGS or f.flow not in FLOWS or f.side_filter not in SIDES or \
                    f.sell_mode not in SELL_MODES:
                bad = [f"{name} {value!r}" for name, value, allowed in (
                    ("sizing", f.sizing, SIZINGS), ("flow", f.flow, FLOWS), ("side filter", f.side_filter, SIDES),
                    ("sell handling", f.sell_mode, SELL_MODES)) if value not in allowed]
                out.skips.append(Skip(f, f"invalid follow config: {', '.join(bad)}"))
                continue
            if unroutable and f.follower.lower() in unroutable:
                out.skips.append(Skip(f, unroutable[f.follower.lower()]))
                continue
            if f.side_filter != "BOTH" and f.side_filter != side:
                out.skips.append(Skip(f, f"side filter {f.side_filter} excludes a {side}"))
                continue
            if f.min_leader_usd and leader_usd is not None and leader_usd < _dec_of(f.min_leader_usd):
                out.skips.append(Skip(f, f"leader notional {leader_usd} USD below the minimum {f.min_leader_usd}"))
                continue
            if f.max_price and price is not None and side == "BUY" and price > _dec_of(f.max_price):
                out.skips.append(Skip(f, f"leader price {price} above max price {f.max_price}"))
                continue
            if allow and f.follower.lower() not in allow and (f.owner or "").lower() not in allow:
                out.skips.append(Skip(f, "follower not in COPY_TRADING_EXECUTION_ALLOWLIST"))
                continue
            if blocked:
                out.skips.append(Skip(f, "ENABLE_REAL_TRADING is off (decision recorded, nothing executed)"))
                continue
            if bad_price:
                out.skips.append(Skip(f, bad_price))
                continue
            slip = _dec_of(f.max_slippage)
            if side == "BUY":
                spec = _size_buy(f, fill, balances or {})
                if isinstance(spec, Skip):
                    out.skips.append(spec)
                    continue
                if max_trade is not None and Decimal(spec) / MICRO > max_trade:
                    out.skips.append(Skip(f, f"{Decimal(spec) / MICRO} USD exceeds COPY_TRADING_MAX_TRADE_USD "
                                             f"{max_trade}"))
                    continue
                lim = limits.get(f.max_slippage)
                if lim is None:
                    lim = limits[f.max_slippage] = price_limit(price, side, slip)
                out.copies.append(CopySpec(f, "BUY", usd_micro=spec, price_limit=lim, value_micro=spec))
            else:
                if f.sell_mode == "ignore":
                    out.skips.append(Skip(f, "sells ignored by this follow config"))
                    continue
                held = (positions or {}).get(f.follower.lower(), 0)
                if held <= 0:
                    out.skips.append(Skip(f, "no position to sell"))
                    continue
                # Never sell everything on a guess: the fraction needs the leader's position before the fill.
                before = leader_position_before
                if before is None:
                    out.skips.append(Skip(f, "leader's position before the sell unknown; not copying a sell "
                                             "of unknown size"))
                    continue
                if before <= 0:
                    out.skips.append(Skip(f, "leader held no position before this sell on record; not copying"))
                    continue
                frac = min(Decimal(1), Decimal(fill.shares_micro) / Decimal(before))
                shares = int((Decimal(held) * frac).to_integral_value(ROUND_DOWN))
                shares -= shares % 10_000  # the CLOB takes sizes in 0.01 shares
                if shares <= 0:
                    out.skips.append(Skip(f, "proportional sell rounds to zero shares"))
                    continue
                lim = limits.get(f.max_slippage)
                if lim is None:
                    lim = limits[f.max_slippage] = price_limit(price, side, slip)
                # A SELL is worth at least shares x its limit: that is what max trade and the caps see. Above
                # max trade the size is cut to it (the follower still exits as far as the guardrail allows).
                value = _sell_value(shares, lim)
                if max_trade is not None and value > _micro(max_trade):
                    shares = int(Decimal(_micro(max_trade)) / lim)
                    shares -= shares % 10_000
                    if shares <= 0:
                        out.skips.append(Skip(f, f"a sell at {lim} cut to COPY_TRADING_MAX_TRADE_USD {max_trade} "
                                                 "rounds to zero shares"))
                        continue
                    value = _sell_value(shares, lim)
                out.copies.append(CopySpec(f, "SELL", shares_micro=shares, price_limit=lim, value_micro=value))
        except (ArithmeticError, ValueError, TypeError, AttributeError, KeyError) as exc:
            # A malformed follow row (edited by hand, written by an older version...) costs only its own copy,
            # with the reason recorded; never the fill for every other follower.
            out.skips.append(Skip(f, f"invalid follow config: {type(exc).__name__}: {str(exc)[:120]}"))
    return out


def _fill_problem(fill) -> str | None:
    """Why no copy can be made of this fill (None: it can), as the skip reason."""
    if fill.price is None:
        return "leader price unknown on this channel; a copy needs it"
    why = value_problem(fill.shares_micro, getattr(fill, "usd_micro", None), fill.price)
    return None if why is None else f"leader fill refused: {why}"


def _sell_value(shares_micro: int, limit: Decimal) -> int:
    """A SELL's guardrail value in micro USD: shares x price limit, rounded up (never undercounted)."""
    return int((Decimal(shares_micro) * limit).to_integral_value(ROUND_CEILING))


@functools.lru_cache(maxsize=4096, typed=True)
def _dec_of(value) -> Decimal:
    """Decimal(value), parsed once per distinct follow-config string (follow rows hold their numbers as text)."""
    return Decimal(value)


@functools.lru_cache(maxsize=4096, typed=True)
def _fixed_micro(amount, max_usd, min_usd) -> int | str:
    """A fixed-size BUY's micro amount from the follow's text fields, or why it is skipped (pure: cached)."""
    usd = _dec_of(amount)
    if max_usd is not None and usd > _dec_of(max_usd):
        usd = _dec_of(max_usd)
    if min_usd is not None and usd < _dec_of(min_usd):
        return f"copy of {usd:.2f} USD is below the follow's minimum {min_usd}"
    micro = int((usd * MICRO).to_integral_value(ROUND_DOWN))
    micro -= micro % 10_000  # the CLOB takes BUY amounts in cents
    if micro <= 0:
        return "copy rounds to zero USD"
    return micro


def _size_buy(f: Follow, fill, balances: dict[str, int]) -> int | Skip:
    micro = _size_buy_unchecked(f, fill, balances)
    if not isinstance(micro, Skip) and micro > MAX_COPY_MICRO:
        # A row edited by hand (or by an older version) past the bounds `follow add` enforces.
        return Skip(f, f"invalid follow config: a copy of {Decimal(micro) / MICRO:.2E} USD is above the bound "
                       f"of {MAX_TRADE_USD} USD")
    return micro


def _size_buy_unchecked(f: Follow, fill, balances: dict[str, int]) -> int | Skip:
    if f.sizing == "fixed":
        micro = _fixed_micro(f.amount, f.max_usd, f.min_usd)
        if isinstance(micro, str):
            return Skip(f, micro)
        if balances and f.flow == "standard":
            bal = balances.get(f.follower.lower())
            if bal is not None and bal < micro:
                return Skip(f, f"proxy holds {bal / MICRO:.2f} USD, copy needs {micro / MICRO:.2f}")
        return micro
    amount = Decimal(f.amount)
    if f.sizing == "fixed":
        usd = amount
    elif f.sizing == "proportional":
        if fill.usd is None:
            return Skip(f, "leader notional unknown on this channel; proportional sizing needs it")
        usd = fill.usd * amount
    else:
        bal = balances.get(f.follower.lower())
        if bal is None:
            return Skip(f, "follower balance unknown")
        usd = Decimal(bal) / MICRO * amount / 100
    if f.max_usd is not None and usd > Decimal(f.max_usd):
        usd = Decimal(f.max_usd)
    if f.min_usd is not None and usd < Decimal(f.min_usd):
        return Skip(f, f"copy of {usd:.2f} USD is below the follow's minimum {f.min_usd}")
    micro = int((usd * MICRO).to_integral_value(ROUND_DOWN))
    micro -= micro % 10_000  # the CLOB takes BUY amounts in cents
    if micro <= 0:
        return Skip(f, "copy rounds to zero USD")
    bal = balances.get(f.follower.lower())
    if bal is not None and f.flow == "standard" and bal < micro:
        return Skip(f, f"proxy holds {bal / MICRO:.2f} USD, copy needs {micro / MICRO:.2f}")
    return micro


class Guardrails:
    """Daily caps (UTC calendar day), reserved atomically in a `CapStore`: the state file's ledger by default,
    Redis (shared by every instance) when configured."""

    def __init__(self, settings: Settings, state: State, store=None):
        from .backends import SqliteCaps

        self.settings, self.state = settings, state
        self.store = store or SqliteCaps(state)

    def reserve(self, wallet: str, usd_micro: int, key: str) -> tuple[bool, str]:
        """Reserve `usd_micro` against the global and per-wallet caps for today; (ok, reason)."""
        s = self.settings
        if s.copy_trading_daily_cap_usd is None and s.copy_trading_wallet_daily_cap_usd is None:
            return True, "no caps"
        return self.store.reserve(
            day=utc_day(), wallet=wallet.lower(), usd_micro=usd_micro, job_key=key,
            wallet_cap_micro=_micro(s.copy_trading_wallet_daily_cap_usd),
            global_cap_micro=_micro(s.copy_trading_daily_cap_usd))

    def reserve_many(self, items: list[tuple[str, int, str]], day: str | None = None) -> list[tuple[bool, str]]:
        """`reserve` for every (wallet, usd_micro, key) of one fill, in order, in one call to the store. `day`
        (default today, UTC) is the window; the backtest passes the replayed fill's day."""
        s = self.settings
        if s.copy_trading_daily_cap_usd is None and s.copy_trading_wallet_daily_cap_usd is None:
            return [(True, "no caps")] * len(items)
        return self.store.reserve_many(day=day or utc_day(), items=[(w.lower(), u, k) for w, u, k in items],
                                       wallet_cap_micro=_micro(s.copy_trading_wallet_daily_cap_usd),
                                       global_cap_micro=_micro(s.copy_trading_daily_cap_usd))

    @property
    def commits_in_state(self) -> bool:
        """Cap commits belong in the state file's transaction (the store is the state file's ledger)."""
        return bool(self.store.commits_in_state)

    def commit(self, key: str, usd_micro: int | None = None) -> None:
        """The copy executed: keep the reservation (with the actual amount)."""
        self.store.commit(key, usd_micro)

    def release(self, key: str) -> None:
        """The copy did not execute: give the reservation back."""
        self.store.release(key)


def _micro(usd: Decimal | None) -> int | None:
    return None if usd is None else int((Decimal(usd) * MICRO).to_integral_value(ROUND_DOWN))
