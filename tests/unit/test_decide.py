"""The decision pipeline without a node: sizing modes, filters, guardrails, sells, price limits, pro-rata."""
from __future__ import annotations

from decimal import Decimal

import pytest

from copytrade_cli.errors import UsageError
from copytrade_cli.polymarket.fills import LeaderFill
from copytrade_cli.settings import SEED_LEADER, Settings
from copytrade_cli.supervisor.decide import decide, price_limit, validate_follow
from copytrade_cli.supervisor.execute import pro_rata

PROXY = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def test_pro_rata_rounding_rule():
    assert pro_rata(100, [1, 1, 1]) == [34, 33, 33]
    assert pro_rata(10, [0, 0]) == [0, 0]
    out = pro_rata(19_607_843, [10_000_000, 5_000_000, 2_500_000])
    assert sum(out) == 19_607_843 and out[0] >= 2 * out[1] - 1


def test_price_limit_on_tick():
    assert price_limit(Decimal("0.5"), "BUY", Decimal("0.05")) == Decimal("0.52")
    assert price_limit(Decimal("0.5"), "SELL", Decimal("0.05")) == Decimal("0.48")
    assert price_limit(Decimal("0.98"), "BUY", Decimal("0.5")) == Decimal("0.99")


def _fill(side="BUY", usd=20_000_000, shares=40_000_000):
    return LeaderFill(leader=SEED_LEADER, tx_hash="0x" + "1" * 64, token_id="7", side=side, shares_micro=shares,
                      usd_micro=usd, price=Decimal(usd) / Decimal(shares), source="test")


def _settings(**kw):
    return Settings(COPYTRADE_HOME="/tmp/none", **kw)


def test_sizing_modes_and_filters():
    fixed = validate_follow(follower=PROXY, leader=SEED_LEADER, amount="10")
    prop = validate_follow(follower=PROXY, leader=SEED_LEADER, sizing="proportional", amount="0.25")
    pct = validate_follow(follower=PROXY, leader=SEED_LEADER, sizing="percent", amount="1", flow="buffer")
    capped = validate_follow(follower=PROXY, leader=SEED_LEADER, amount="50", max_usd="12.345")
    sells_only = validate_follow(follower=PROXY, leader=SEED_LEADER, side_filter="SELL")
    big_only = validate_follow(follower=PROXY, leader=SEED_LEADER, min_leader_usd="100")
    cheap_only = validate_follow(follower=PROXY, leader=SEED_LEADER, max_price="0.4")
    d = decide(_fill(), [fixed, prop, pct, capped, sells_only, big_only, cheap_only], settings=_settings(),
               is_local=True, balances={PROXY.lower(): 500_000_000})
    assert [c.usd_micro for c in d.copies] == [10_000_000, 5_000_000, 5_000_000, 12_340_000]
    assert [s.reason for s in d.skips] == ["side filter SELL excludes a BUY",
                                          "leader notional 20 USD below the minimum 100",
                                          "leader price 0.5 above max price 0.4"]


def test_guardrails_in_decision():
    f = validate_follow(follower=PROXY, leader=SEED_LEADER, amount="10")
    d = decide(_fill(), [f], settings=_settings(COPY_TRADING_MAX_TRADE_USD="5"), is_local=True,
               balances={PROXY.lower(): 10**9})
    assert d.skips[0].reason == "10 USD exceeds COPY_TRADING_MAX_TRADE_USD 5"
    d = decide(_fill(), [f], settings=_settings(COPY_TRADING_EXECUTION_ALLOWLIST=SEED_LEADER), is_local=True)
    assert d.skips[0].reason == "follower not in COPY_TRADING_EXECUTION_ALLOWLIST"
    d = decide(_fill(), [f], settings=_settings(), is_local=False, balances={PROXY.lower(): 10**9})
    assert "ENABLE_REAL_TRADING is off" in d.skips[0].reason
    d = decide(_fill(), [f], settings=_settings(), is_local=True, balances={PROXY.lower(): 1_000_000})
    assert d.skips[0].reason == "proxy holds 1.00 USD, copy needs 10.00"


def test_proportional_sell_and_ignore():
    f = validate_follow(follower=PROXY, leader=SEED_LEADER)
    ign = validate_follow(follower=PROXY, leader=SEED_LEADER, sell_mode="ignore")
    d = decide(_fill("SELL", 10_000_000, 20_000_000), [f, ign], settings=_settings(), is_local=True,
               positions={PROXY.lower(): 30_000_000}, leader_position_before=80_000_000)
    assert d.copies[0].shares_micro == 7_500_000  # a quarter of the leader's position -> a quarter of ours
    assert d.skips[0].reason == "sells ignored by this follow config"


@pytest.mark.parametrize("kw,msg", [
    ({"follower": "0x123"}, "--follower"),
    ({"amount": "-1"}, "--amount"),
    ({"max_slippage": "0.9"}, "--max-slippage"),
    ({"min_usd": "5", "max_usd": "1"}, "--min-usd 5 is above --max-usd 1"),
    ({"flow": "turbo"}, "--flow"),
])
def test_bad_follow_configs(kw, msg):
    args = {"follower": PROXY, "leader": SEED_LEADER, **kw}
    with pytest.raises(UsageError) as e:
        validate_follow(**args)
    assert msg in str(e.value)
