"""Decision-side hardening (#15 items 5, 6a, 9b) without a node: SELLs valued at their limit against max trade,
no sell of everything on an unknown prior position, no default price, hostile feed rows refused (counted), and
`follow add` refusing a follower that is not a recorded proxy when nothing can verify it."""
from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from copytrade_cli.cli.main import app
from copytrade_cli.polymarket.fills import DecodeError, LeaderFill, decode_activity_message, decode_data_api_row
from copytrade_cli.polymarket.fills import feeds
from copytrade_cli.settings import SEED_LEADER, Settings
from copytrade_cli.supervisor.decide import decide, price_limit, validate_follow

PROXY = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
TX = "0x" + "ab" * 32


def _settings(**kw):
    return Settings(COPYTRADE_HOME="/tmp/none", **kw)


def _fill(side="SELL", shares=20_000_000, usd=10_000_000, price=Decimal("0.5"), **kw):
    return LeaderFill(leader=SEED_LEADER, tx_hash=TX, token_id="7", side=side, shares_micro=shares, usd_micro=usd,
                      price=price, source="test", **kw)


FOLLOW = validate_follow(follower=PROXY, leader=SEED_LEADER)


@pytest.mark.parametrize("before,reason", [
    (None, "leader's position before the sell unknown; not copying a sell of unknown size"),
    (0, "leader held no position before this sell on record; not copying"),
])
def test_a_sell_against_an_unknown_or_empty_prior_position_is_skipped(before, reason):
    # A forged 1,000,000-share SELL: before the fix this sold the follower's whole position (fraction 1).
    d = decide(_fill(shares=10**12, usd=10**11, price=Decimal("0.1")), [FOLLOW], settings=_settings(),
               is_local=True, positions={PROXY.lower(): 30_000_000}, leader_position_before=before)
    assert d.copies == [] and [s.reason for s in d.skips] == [reason]


def test_a_known_prior_position_stays_proportional_and_capped_at_one():
    d = decide(_fill(shares=20_000_000), [FOLLOW], settings=_settings(), is_local=True,
               positions={PROXY.lower(): 30_000_000}, leader_position_before=80_000_000)
    assert d.copies[0].shares_micro == 7_500_000
    d = decide(_fill(shares=90_000_000, usd=45_000_000), [FOLLOW], settings=_settings(), is_local=True,
               positions={PROXY.lower(): 30_000_000}, leader_position_before=80_000_000)
    assert d.copies[0].shares_micro == 30_000_000  # never more than the follower holds


def test_a_sell_is_valued_at_its_limit_and_cut_to_max_trade():
    # Leader sells its whole position at 0.5; the follower holds 100 shares -> limit 0.48, worth 48 USD.
    f = _fill(shares=20_000_000, usd=10_000_000)
    d = decide(f, [FOLLOW], settings=_settings(), is_local=True, positions={PROXY.lower(): 100_000_000},
               leader_position_before=20_000_000)
    (cp,) = d.copies
    assert cp.price_limit == Decimal("0.48") and cp.shares_micro == 100_000_000 and cp.value_micro == 48_000_000
    d = decide(f, [FOLLOW], settings=_settings(COPY_TRADING_MAX_TRADE_USD="5"), is_local=True,
               positions={PROXY.lower(): 100_000_000}, leader_position_before=20_000_000)
    (cp,) = d.copies
    # 5 USD / 0.48 = 10.416 shares -> 10.41 (the CLOB's 0.01-share grid); worth at most 5 USD at the limit.
    assert cp.shares_micro == 10_410_000 and cp.value_micro == 4_996_800 <= 5_000_000
    d = decide(f, [FOLLOW], settings=_settings(COPY_TRADING_MAX_TRADE_USD="0.001"), is_local=True,
               positions={PROXY.lower(): 100_000_000}, leader_position_before=20_000_000)
    assert d.copies == [] and "rounds to zero shares" in d.skips[0].reason


def test_a_buy_carries_its_usd_as_guardrail_value():
    d = decide(_fill("BUY"), [FOLLOW], settings=_settings(), is_local=True, balances={PROXY.lower(): 10**9})
    assert d.copies[0].value_micro == d.copies[0].usd_micro == 10_000_000


@pytest.mark.parametrize("side", ["BUY", "SELL"])
@pytest.mark.parametrize("kw,reason", [
    ({"price": None}, "leader price unknown on this channel; a copy needs it"),
    ({"price": Decimal(0)}, "leader fill refused: price 0 is not in (0, 1)"),
    ({"price": Decimal(1)}, "leader fill refused: price 1 is not in (0, 1)"),
    ({"price": Decimal("1.5")}, "leader fill refused: price 1.5 is not in (0, 1)"),
    ({"usd": 19_000_000}, "leader fill refused: notional 19 USD does not match size x price 10.000000"),
    ({"shares": 0, "usd": 0}, "leader fill refused: size 0 is not positive"),
])
def test_a_fill_with_impossible_numbers_makes_no_copy(side, kw, reason):
    # Before the fix a fill without a price got a limit around 0.5 and was copied.
    d = decide(_fill(side, **kw), [FOLLOW], settings=_settings(), is_local=True, balances={PROXY.lower(): 10**9},
               positions={PROXY.lower(): 30_000_000}, leader_position_before=80_000_000)
    assert d.copies == [] and [s.reason for s in d.skips] == [reason]


def test_price_limit_has_no_default():
    with pytest.raises(ValueError):
        price_limit(None, "BUY", Decimal("0.05"))


def _row(**over):
    row = {"proxyWallet": SEED_LEADER, "side": "BUY", "size": 20, "price": 0.5, "usdcSize": 10,
           "asset": "123", "transactionHash": TX, "timestamp": int(time.time()) - 3, "type": "TRADE"}
    row.update(over)
    return {k: v for k, v in row.items() if v is not ...}


@pytest.mark.parametrize("over,why", [
    ({"price": 0}, "price 0 is not in (0, 1)"),
    ({"price": "0"}, "price 0 is not in (0, 1)"),
    ({"price": 1}, "price 1 is not in (0, 1)"),
    ({"price": 1.5}, "price 1.5 is not in (0, 1)"),
    ({"price": -0.2}, "price -0.2 is not in (0, 1)"),
    ({"price": 0.0000001}, "price 1e-07 is not in (0, 1)"),  # rounds to 0 on the micro grid
    ({"price": ...}, "price: missing"),
    ({"price": None}, "price: missing"),
    ({"price": "NaN"}, "price NaN is not in (0, 1)"),
    ({"size": 0}, "size: zero"),
    ({"size": -5}, "size: out of range"),
    ({"usdcSize": 10.5}, "usdcSize: notional 10.5 USD does not match size x price 10.000000"),
    ({"usdcSize": 1000}, "usdcSize: notional 1000 USD does not match size x price 10.000000"),
    ({"timestamp": int(time.time()) + 3600}, "in the future"),
    ({"timestamp": (int(time.time()) + 3600) * 1000}, "in the future"),
    ({"timestamp": "yesterday"}, "timestamp: not an integer"),
])
@pytest.mark.parametrize("channel", ["data_api", "activity_ws"])
def test_hostile_feed_rows_never_become_fills(over, why, channel):
    before = feeds.rejected_rows().get(channel, 0)
    with pytest.raises(DecodeError) as e:
        if channel == "data_api":
            decode_data_api_row(_row(**over))
        else:
            decode_activity_message(json.dumps({"topic": "activity", "type": "trades", "payload": _row(**over)}))
    assert why in str(e.value)
    assert feeds.rejected_rows()[channel] == before + 1  # counted


@pytest.mark.parametrize("usdc", [10.0, 10.01, 9.99, 10.1, 9.9])
def test_feed_usdc_within_one_percent_or_a_cent_is_accepted(usdc):
    f = decode_data_api_row(_row(usdcSize=usdc))
    assert f.price == Decimal("0.5") and f.usd_micro == int(Decimal(str(usdc)) * 10**6)
    # a small fill: a cent of slack even when 1% is less than that
    assert decode_data_api_row(_row(size=1, price=0.5, usdcSize=0.51)).usd_micro == 510_000
    with pytest.raises(DecodeError):
        decode_data_api_row(_row(size=1, price=0.5, usdcSize=0.52))


def test_feed_timestamp_tolerance_and_missing_usdc():
    assert decode_data_api_row(_row(timestamp=int(time.time()) + 2)).timestamp  # within FUTURE_TOLERANCE_S
    ahead = int(time.time()) + 3600  # a fork whose chain clock was advanced: its caller passes that clock
    assert decode_data_api_row(_row(timestamp=ahead), now=ahead).timestamp == ahead
    f = decode_data_api_row(_row(usdcSize=None, timestamp=None))
    assert f.usd_micro == 10_000_000 and f.timestamp is None


def test_follow_add_refuses_an_unrecorded_follower_with_nothing_to_verify_it(tmp_path):
    env = {"COPYTRADE_HOME": str(tmp_path)}
    res = CliRunner().invoke(app, ["follow", "add", "--follower", PROXY, "--leader", SEED_LEADER], env=env)
    assert res.exit_code == 2, res.output
    assert res.output == (f"Error: --follower {PROXY} is not a proxy recorded on polygon:local and no "
                          "ProxyFactory is recorded there to verify it: create it with `copytrade proxy create "
                          "--owner <owner>` (or name its network with --network)\n")
    assert json.loads(CliRunner().invoke(app, ["--json", "follow", "list"], env=env).output) == []
