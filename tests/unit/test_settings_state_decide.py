"""Settings, state file and the decision pipeline, without a node."""
from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from copytrade_cli.errors import ConfigError, UsageError
from copytrade_cli.polymarket.fills import LeaderFill
from copytrade_cli.settings import SEED_LEADER, Settings, load_settings
from copytrade_cli.state import Follow, State
from copytrade_cli.supervisor.decide import decide, price_limit, validate_follow
from copytrade_cli.supervisor.flows import pro_rata

PROXY = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def test_seed_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("COPYTRADE_HOME", str(tmp_path))
    s = load_settings()
    assert (s.supervisor_fanout_concurrency, s.supervisor_queue_max_size, s.supervisor_queue_drain_interval_ms,
            s.supervisor_dedup_ttl_ms, s.supervisor_guardrail_cache_ttl_ms, s.supervisor_market_meta_ttl_ms,
            s.supervisor_worker_pool_size, s.supervisor_config_refresh_ms, s.supervisor_config_full_refresh_ms) == \
        (25, 5000, 500, 60000, 5000, 300000, 20, 10000, 300000)
    assert s.supervisor_ws_filter_by_address is True and s.enable_real_trading is False
    assert s.state_path == tmp_path / "state.db"


def test_lists_and_redis_fallback(monkeypatch, tmp_path):
    monkeypatch.setenv("COPYTRADE_HOME", str(tmp_path))
    monkeypatch.setenv("COPY_TRADING_RPC_URLS", "http://a.example, http://b.example")
    monkeypatch.setenv("COPY_TRADING_EXECUTION_ALLOWLIST", PROXY.lower())
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/3")
    s = load_settings()
    assert s.copy_trading_rpc_urls == ["http://a.example", "http://b.example"]
    assert s.copy_trading_execution_allowlist == [PROXY]
    assert s.redis == "redis://127.0.0.1:6379/3"
    monkeypatch.setenv("SUPERVISOR_REDIS_URL", "redis://127.0.0.1:6379/4")
    assert load_settings().redis == "redis://127.0.0.1:6379/4"


def test_toml_file_and_env_priority(monkeypatch, tmp_path):
    (tmp_path / "config.toml").write_text('SUPERVISOR_WORKER_POOL_SIZE = 7\nSUPERVISOR_QUEUE_MAX_SIZE = 9\n')
    monkeypatch.setenv("COPYTRADE_HOME", str(tmp_path))
    monkeypatch.setenv("SUPERVISOR_QUEUE_MAX_SIZE", "11")
    s = load_settings()
    assert s.supervisor_worker_pool_size == 7 and s.supervisor_queue_max_size == 11


def test_bad_key_error_never_shows_the_key(monkeypatch, tmp_path):
    monkeypatch.setenv("COPYTRADE_HOME", str(tmp_path))
    monkeypatch.setenv("TRADING_PRIVATE_KEY", "0x" + "zz" * 32)
    with pytest.raises(ConfigError) as e:
        load_settings()
    assert "TRADING_PRIVATE_KEY=<secret>" in str(e.value) and "zz" not in str(e.value)


def test_migrations_recorded_and_reopen(tmp_path):
    s = State(tmp_path / "s.db")
    assert s.schema_version >= 2
    s.close()
    assert State(tmp_path / "s.db").schema_version >= 2


def test_claim_job_is_at_most_once_under_threads(tmp_path):
    s = State(tmp_path / "s.db")
    got = []
    threads = [threading.Thread(target=lambda: got.append(s.claim_job({"fill_key": "k", "follower": PROXY,
                                                                       "status": "pending"}))) for _ in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(g is not None for g in got) == 1


def test_daily_cap_reservation_is_atomic(tmp_path):
    s = State(tmp_path / "s.db")
    results = []

    def reserve(i):
        results.append(s.reserve_usd(day="2026-11-25", wallet="w", usd="1", job_key=f"j{i}", wallet_cap="5",
                                     global_cap="100")[0])

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(50)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(results) == 5
    assert s.spent_usd("2026-11-25", "w") == "5"
    s.settle_reservation("j0", "released")
    assert s.spent_usd("2026-11-25") == "4"


def test_batched_cap_reservation_matches_one_by_one(tmp_path):
    """reserve_usd_many (one fill's copies at once) gives the verdicts, reasons and ledger of reserve_usd per copy."""
    items = [("w1", 2_000_000, "k1"), ("w2", 3_000_000, "k2"), ("w1", 2_000_000, "k3"), ("w1", 1_500_000, "k4"),
             ("w3", 4_000_000, "k5"), ("w2", 1_000_000, "k2"), ("w3", 10_000, "k6")]
    one, many = State(tmp_path / "one.db"), State(tmp_path / "many.db")
    for st in (one, many):  # some spending earlier in the day, and one key already reserved
        st.reserve_usd(day="d", wallet="w1", usd="0.5", job_key="k0", wallet_cap="5", global_cap="12")
        st.reserve_usd(day="d", wallet="w3", usd="1", job_key="k6", wallet_cap="5", global_cap="12")
    by_one = [one.reserve_usd(day="d", wallet=w, usd=str(Decimal(u) / 10**6), job_key=k, wallet_cap="5",
                              global_cap="12") for w, u, k in items]
    with many.transaction():
        by_many = many.reserve_usd_many(day="d", items=items, wallet_cap_micro=5_000_000, global_cap_micro=12_000_000)
    assert by_many == by_one
    assert [ok for ok, _ in by_many] == [True, True, True, False, False, True, True]  # k2 and k6: already reserved
    rows = lambda st: sorted((r["wallet"], r["usd"], r["job_key"]) for r in st.reservations("d"))  # noqa: E731
    assert rows(many) == rows(one)
    assert [many.spent_usd("d", w) for w in ("w1", "w2", "w3", None)] == [one.spent_usd("d", w) for w in
                                                                         ("w1", "w2", "w3", None)]
    assert many._spent_micro("d") == one._spent_micro("d") == 8_500_000


def test_claim_jobs_tuples_and_dicts_at_most_once(tmp_path):
    s = State(tmp_path / "s.db")
    cols = ["fill_key", "follower", "status"]
    assert s.claim_jobs([("f", "a", "queued"), ("f", "b", "queued")], cols=cols) == [1, 2]
    got = s.claim_jobs([{"fill_key": "f", "follower": "b", "status": "x"}, {"fill_key": "f", "follower": "c",
                                                                          "status": "x"}])
    assert got == [None, 3]
    assert s.get_job(3)["attempts"] == 0 and s.get_job(3)["created_at"]


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
