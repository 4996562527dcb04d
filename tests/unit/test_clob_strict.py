"""The strict local CLOB's pure parts: rate-limit buckets and injected faults, the taker fee, scheduled tick changes,
the maker rule and the (EOA, signature_type) → wallet map, and `copytrade market list`."""
from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copytrade_cli.localworld.clob_guard import ERR_CANCEL_ONLY, ERR_RATE_LIMITED, FAULT_FAILED, FAULT_RETRYING, \
    Guard, TokenBucket
from copytrade_cli.localworld.clob_makers import ERR_MAKER_NOT_ALLOWED, MakerPolicy
from copytrade_cli.localworld.clob_orders import ClobApiError, parse_order, poly_proxy_wallet, poly_safe_wallet
from copytrade_cli.localworld.clob_trades import fee_rate_bps, taker_fee
from copytrade_cli.localworld.exchange import taker_fee as exchange_taker_fee
from copytrade_cli.localworld.market_list import market_rows
from copytrade_cli.polymarket.wallets import deposit_wallet_address
from copytrade_cli.polymarket.world import Market, World

from .test_clob_book import MAKER, TRADER, book_order, limit_wire

OWNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
A = "0x" + "11" * 20


# ------------------------------------------------------------------------------------------------ guard
def test_bucket_admits_up_to_its_burst_then_says_how_long_to_wait():
    b = TokenBucket(rate=2.0, burst=3.0, tokens=3.0, updated=0.0)
    assert [b.take(1, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(1, 0.0) == pytest.approx(0.5)  # one token refills in 1/rate s
    assert b.take(1, 0.5) == 0.0
    assert b.take(5, 0.5) == math.inf  # more than the bucket holds: never


def test_guard_429_carries_retry_after_and_batches_are_all_or_nothing():
    g = Guard(rate_per_s=1.0, burst=3.0)
    g.admit(A, 2, placing=True, now=0.0)
    with pytest.raises(ClobApiError) as err:
        g.admit(A, 2, placing=True, now=0.0)  # a batch of 2 with 1 token left: refused whole
    assert (err.value.status, err.value.message) == (429, ERR_RATE_LIMITED)
    assert err.value.headers == {"Retry-After": "1"} and err.value.body()["retry_after_seconds"] == 1
    g.admit(A, 1, placing=True, now=0.0)  # the refused batch took nothing
    g.admit("0x" + "22" * 20, 3, placing=True, now=0.0)  # buckets are per signer


def test_guard_injections_and_cancel_only():
    g = Guard()
    g.configure({"rate_limit": {"count": 2, "retry_after": 7}, "retrying": 1, "failed": 2})
    for _ in range(2):
        with pytest.raises(ClobApiError) as err:
            g.admit(A, 1, placing=False)
        assert err.value.status == 429 and err.value.headers["Retry-After"] == "7"
    g.admit(A, 1, placing=False)
    assert [g.next_settlement_fault() for _ in range(4)] == [FAULT_RETRYING, FAULT_FAILED, FAULT_FAILED, None]
    g.configure({"cancel_only": True})
    with pytest.raises(ClobApiError) as err:
        g.admit(A, 1, placing=True)
    assert err.value.status == 503 and "cancel-only" in err.value.message and err.value.message == ERR_CANCEL_ONLY
    g.admit(A, 1, placing=False)  # cancels still go through
    g.configure({"failed": 3})
    assert g.configure({"clear": True, "retrying": 1})["settlement_faults"] == [FAULT_RETRYING]  # clear comes first
    with pytest.raises(ClobApiError):
        g.configure({"retrying": "many"})


# ------------------------------------------------------------------------------------------------- fees
def test_taker_fee_is_shares_times_rate_times_p_one_minus_p_floored():
    maker = book_order(limit_wire(MAKER, "SELL", 0.51, 100)[0])
    from copytrade_cli.localworld.book import MakerFill

    fills = [MakerFill(maker, 100_000_000, 51_000_000, shares=100_000_000, usdc=51_000_000)]
    assert taker_fee(fills, 0.04, 1) == int(Fraction(100_000_000) * Fraction("0.04") * Fraction(51, 100)
                                             * Fraction(49, 100)) == 999_600
    assert taker_fee(fills, 0.04, 1) == exchange_taker_fee(100_000_000, "0.51", "0.04", 1)  # = the chain's
    assert taker_fee(fills, 0.0, 1) == 0
    assert taker_fee(fills, 0.07, 2) == int(100_000_000 * Fraction("0.07") * (Fraction(51, 100) * Fraction(49, 100)) ** 2)
    assert (fee_rate_bps(0.04), fee_rate_bps(0.07), fee_rate_bps(0.0)) == ("400", "700", "0")


# ------------------------------------------------------------------------------------------------ ticks
def _market(slug="m", tick="0.01", changes=(), **kw):
    return Market(condition_id="0x" + slug.encode().hex().ljust(64, "0"), question_id="0x" + "00" * 32, slug=slug,
                  title=slug, token_ids=[str(len(slug)) + "1", str(len(slug)) + "2"], tick_size=tick,
                  tick_changes=list(changes), **kw)


def _world(*markets):
    return World(collateral=A, pusd=A, exchange_collateral=A, ctf=A, exchange=A, exchange_operator=A,
                 trade_operator=A, market_maker=A, whale=A, deployer=A, markets=list(markets))


def test_scheduled_tick_changes_apply_when_due():
    from copytrade_cli.localworld.book import MatchingEngine
    from copytrade_cli.localworld.clob_markets import ClobMarkets

    m = _market("ticky", changes=[(5, "0.001"), (10, "0.01")])
    markets = ClobMarkets(_world(m, _market("flat")), MatchingEngine())
    assert markets.apply_tick_changes(4.9) == [] and markets.tick_of(m) == "0.01"
    assert markets.apply_tick_changes(5.0) == [(m, "0.001")]
    assert markets.tick_of(m) == "0.001" == markets.book(m.token_ids[1]).tick_size
    assert markets.clob_market_info(m.condition_id)["mts"] == 0.001
    assert markets.book(m.token_ids[0]).summary()["tick_size"] == "0.001"
    assert markets.apply_tick_changes(60) == [(m, "0.01")] and markets.apply_tick_changes(99) == []
    with pytest.raises(ClobApiError):
        markets.set_tick(m, "0.02")


# ----------------------------------------------------------------------------------------------- makers
def test_types_0_1_2_need_a_grandfathered_maker():
    policy = MakerPolicy(137)
    order = parse_order(limit_wire(TRADER, "BUY", 0.5, 10)[0])
    with pytest.raises(ClobApiError) as err:
        policy.check_maker(order)
    assert (err.value.status, err.value.message) == (400, ERR_MAKER_NOT_ALLOWED)
    policy.grandfather([order.maker])
    policy.check_maker(order)


def test_funder_maps_eoa_and_signature_type_to_the_wallet():
    policy = MakerPolicy(137)
    assert policy.funder(OWNER, 3) == "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50" == deposit_wallet_address(OWNER)
    assert policy.funder(OWNER, 0) == OWNER
    assert policy.funder(OWNER, 1) == poly_proxy_wallet(OWNER) and policy.funder(OWNER, 2) == poly_safe_wallet(OWNER)
    with pytest.raises(ClobApiError):
        policy.funder(OWNER, 4)


# ---------------------------------------------------------------------------------------------- market list
def test_market_rows_show_tick_neg_risk_fees_and_minimum():
    rows = market_rows(_world(_market("a"), _market("bb", tick="0.001", changes=[(30, "0.01")], neg_risk=True,
                                                   category="crypto", fee_rate=0.07, min_order_size=10)))
    assert rows[0]["kind"] == "binary" and rows[0]["fee_rate"] == 0.0 and rows[0]["tick_changes"] == []
    b = rows[1]
    assert (b["kind"], b["tick_size"], b["neg_risk"], b["category"], b["fee_rate"], b["min_order_size"]) == \
        ("neg-risk", "0.001", True, "crypto", 0.07, 10)
    assert b["tick_changes"] == [{"after_s": 30, "tick_size": "0.01"}] and b["token_ids"] == ["21", "22"]


def test_market_list_command(tmp_path):
    from copytrade_cli.cli.main import app
    from copytrade_cli.state import State
    from copytrade_cli.state.network import NodeRecord

    world = _world(_market("a"), _market("bb", tick="0.001", fee_rate=0.04, category="politics"))
    State(Path(tmp_path) / "state.db").save_node(NodeRecord(
        name="default", kind="anvil", pid=1, rpc_url="http://127.0.0.1:1", ws_url="", chain_id=137, port=1,
        log_path="", started_at="", world_json=world.to_json()))
    env = {"COPYTRADE_HOME": str(tmp_path)}
    res = CliRunner().invoke(app, ["market", "list", "--json"], env=env)
    assert res.exit_code == 0, res.output
    assert [(r["slug"], r["tick_size"], r["fee_rate"]) for r in json.loads(res.output)] == \
        [("a", "0.01", 0.0), ("bb", "0.001", 0.04)]
    res = CliRunner().invoke(app, ["market", "list"], env=env)
    assert res.exit_code == 0 and "politics" in res.output and "0.001" in res.output


def test_market_list_without_a_fork_is_one_line(tmp_path):
    from copytrade_cli.cli.main import app

    res = CliRunner().invoke(app, ["market", "list"], env={"COPYTRADE_HOME": str(tmp_path)})
    assert res.exit_code == 4 and "copytrade fork up" in res.output and len(res.output.strip().splitlines()) == 1
