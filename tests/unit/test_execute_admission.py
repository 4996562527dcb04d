"""Admission of a group before its first step (pure parts): legs and numbers checked as the row is loaded,
the switch and the age of a not-started group, the book against its limit, the allowlist per leg, and the
split refusing impossible inputs."""
from __future__ import annotations

import json

import pytest

from copytrade_cli.settings import Settings
from copytrade_cli.supervisor.execute.admission import (InvalidGroup, StartRules, allowlist_refusals, book_refusal,
                                                        check_group, group_refusal, load_legs, not_started)
from copytrade_cli.supervisor.execute.allocation import buy_split, pro_rata
from copytrade_cli.supervisor.model import Leg

P = "0x" + "12" * 20


def _legs(**over) -> str:
    return json.dumps([{"job_id": 1, "proxy": P, "usd_micro": 2_000_000, "shares_micro": 0, **over}])


def _group(**over) -> dict:
    return {"side": "BUY", "flow": "standard", "token_id": "123", "price_limit": "0.55", "stage": "queued",
            **over}


@pytest.mark.parametrize("legs,why", [
    ('[{"job_id": 1, "proxy": "%s", "usd_micro": 1e400, "shares_micro": 0}]' % P, "usd_micro 'inf' is not an integer"),
    (_legs(usd_micro=-5), "usd_micro -5 is outside"),
    (_legs(usd_micro=2.5), "usd_micro '2.5' is not an integer"),
    (_legs(usd_micro=10**20), "is outside"),
    (_legs(proxy="0x12"), "is not an address"),
    (_legs(job_id="7"), "job_id '7' is not an integer"),
    ('[{"job_id": 1, "proxy": "%s", "usd_micro": NaN}]' % P, "NaN is not a number"),
    ("{not json", "legs_json is not JSON"),
    ("[]", "holds no legs"),
])
def test_impossible_legs_are_refused_with_the_reason(legs, why):
    with pytest.raises(InvalidGroup, match=why.replace("(", r"\(")):
        load_legs(legs)


@pytest.mark.parametrize("over,why", [
    ({"price_limit": "1.5"}, "outside \\(0,1\\)"), ({"price_limit": "0"}, "outside"), ({"price_limit": "NaN"}, "outside"),
    ({"price_limit": "abc"}, "outside"), ({"side": "HOLD"}, "neither BUY nor SELL"), ({"token_id": "-1"}, "uint256"),
    ({"spent_micro": -1}, "spent_micro -1"), ({"flow": "x"}, "neither standard"),
])
def test_impossible_group_numbers_are_refused(over, why):
    with pytest.raises(InvalidGroup, match=why):
        check_group(_group(**over), load_legs(_legs()))


def test_a_buy_leg_without_usd_is_refused():
    with pytest.raises(InvalidGroup, match="a BUY leg with usd_micro 0"):
        check_group(_group(), load_legs(_legs(usd_micro=0)))
    check_group(_group(), load_legs(_legs()))  # the planner's rows pass


def test_switch_age_and_fork():
    s = Settings(ENABLE_REAL_TRADING="false", SUPERVISOR_MAX_GROUP_AGE_MS="60000")
    live, fork = StartRules.of(s, live=True), StartRules.of(s, live=False)
    g = _group(t_detected=1000.0)
    assert "ENABLE_REAL_TRADING is off" in group_refusal(live, g, now=1001.0)
    assert group_refusal(fork, g, now=1001.0) is None  # the fork always executes
    assert group_refusal(fork, g, now=1061.0).startswith("stale: detected 61s ago")
    on = StartRules.of(Settings(ENABLE_REAL_TRADING="true"), live=True)
    assert group_refusal(on, g, now=1001.0) is None
    assert not_started(g) and not not_started({**g, "pull_tx": "0x1"}) and not not_started({**g, "stage": "funded"})


def test_max_group_age_is_bounded():
    with pytest.raises(Exception):
        Settings(SUPERVISOR_MAX_GROUP_AGE_MS="10")
    with pytest.raises(Exception):
        Settings(SUPERVISOR_MAX_GROUP_AGE_MS="1e12")


def test_book_against_the_limit():
    book = {"asks": [{"price": "0.52", "size": "100"}, {"price": "0.51", "size": "0"}],
            "bids": [{"price": "0.48", "size": "100"}]}
    assert book_refusal("BUY", "0.55", book) is None
    assert book_refusal("BUY", "0.50", book) == "the book moved past the price limit: best ask 0.52 > limit 0.50"
    assert book_refusal("SELL", "0.45", book) is None
    assert "best bid 0.48 < limit 0.50" in book_refusal("SELL", "0.50", book)
    assert "no asks" in book_refusal("BUY", "0.5", {"asks": [], "bids": []})
    assert book_refusal("BUY", "0.5", None) is None  # unreadable: the FOK order decides


def test_allowlist_per_leg_by_proxy_or_owner():
    rules = StartRules.of(Settings(COPY_TRADING_EXECUTION_ALLOWLIST=P + ",0x" + "99" * 20), live=False)
    legs = [Leg(1, P, 1, 0), Leg(2, "0x" + "34" * 20, 1, 0), Leg(3, "0x" + "56" * 20, 1, 0)]
    out = allowlist_refusals(rules, legs, {3: "0x" + "99" * 20})
    assert list(out) == [2] and "COPY_TRADING_EXECUTION_ALLOWLIST" in out[2]
    assert allowlist_refusals(StartRules.of(Settings(), live=False), legs, {}) == {}


def test_split_refuses_impossible_inputs():
    assert pro_rata(10, [1, 2, 3]) == [2, 3, 5]
    for total, weights in ((float("inf"), [1]), (-1, [1]), (10, [-1, 2]), (10, [1.5])):
        with pytest.raises(InvalidGroup):
            pro_rata(total, weights)
    with pytest.raises(InvalidGroup, match="more than the legs put in"):
        buy_split([Leg(1, P, 3_000_000, 0)], 5_000_000, 30_000_000, standard=True)
