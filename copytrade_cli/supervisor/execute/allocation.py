"""Allocation: how one order's fill is split over the group's followers.

Pro-rata rule: each follower gets floor(total * weight_i / sum(weights)); the leftover micro-units go one each to
the largest fractional remainders (ties: the earlier leg, as before: lower job id). Same price for every follower.
"""
from __future__ import annotations

from ..model import Leg
from .admission import MAX_MICRO, InvalidGroup

_MAX_SUM = MAX_MICRO * 256  # a batch's legs at their bound


def _micro(v, what: str, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
        raise InvalidGroup(f"{what} {str(v)[:40]!r} is not a micro amount in [0, {hi}]")
    return v


def pro_rata(total: int, weights: list[int]) -> list[int]:
    """Split `total` micro-units by `weights`: floors, then leftover units to the largest remainders. An
    impossible input (not an integer, negative, past the bounds) is an `InvalidGroup`, never a wrong split."""
    total = _micro(total, "amount to split", _MAX_SUM)
    weights = [_micro(w, "weight", MAX_MICRO) for w in weights]
    wsum = sum(weights)
    if wsum <= 0 or total <= 0:
        return [0] * len(weights)
    shares = [total * w // wsum for w in weights]
    rema = [(total * w % wsum, -i) for i, w in enumerate(weights)]
    left = total - sum(shares)
    for _, neg_i in sorted(rema, reverse=True)[:left]:
        shares[-neg_i] += 1
    return shares


def buy_split(legs: list[Leg], filled_shares: int, spent_micro: int, *, standard: bool) -> dict[str, list[int]]:
    """A BUY's per-follower split, weighted by what each leg put in: `shares` (outcome tokens pushed), `spent`
    (USD of the order each one paid) and, in the Standard flow, `refunds` (the unspent part of each pull).
    Keys in this order: the split is journalled into `order_json` as is."""
    weights = [leg.usd_micro for leg in legs]
    if isinstance(spent_micro, int) and spent_micro > sum(weights):
        raise InvalidGroup(f"spent {spent_micro} is more than the legs put in ({sum(weights)})")
    shares = pro_rata(filled_shares, weights)
    spent = pro_rata(spent_micro, weights)
    if standard:
        return {"shares": shares, "refunds": [w - s for w, s in zip(weights, spent)], "spent": spent}
    return {"shares": shares, "spent": spent}


def sell_split(legs: list[Leg], proceeds_micro: int) -> dict[str, list[int]]:
    """A SELL's per-follower split: `shares` holds the USD proceeds pushed, weighted by the shares each sold."""
    return {"shares": pro_rata(proceeds_micro, [leg.shares_micro for leg in legs])}
