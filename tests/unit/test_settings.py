"""Settings: seed defaults, list and Redis fallbacks, TOML and env priority, secrets never shown."""
from __future__ import annotations

import pytest

from copytrade_cli.errors import ConfigError
from copytrade_cli.settings import load_settings

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
