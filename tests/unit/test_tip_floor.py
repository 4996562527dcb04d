"""The tip floor without a node: bor's refusal text, the tip of every transaction kind as the guard reads it,
the setting (default 25 gwei, bad values refused in one line), and live's taker-fee formula."""
from __future__ import annotations

import pytest
from eth_account import Account

from copytrade_cli.chain.tipguard import raw_tx_tip, refusal_text
from copytrade_cli.errors import ConfigError
from copytrade_cli.localworld.exchange import taker_fee
from copytrade_cli.settings import load_settings

KEY = "0x" + "11" * 32
GWEI = 10**9


def _raw(tx: dict) -> bytes:
    return bytes(Account.from_key(KEY).sign_transaction({"chainId": 137, "nonce": 0, "to": "0x" + "22" * 20,
                                                         "value": 0, "gas": 21_000, **tx}).raw_transaction)


def test_refusal_text_is_bors():
    assert refusal_text(10**9, 25 * GWEI) == ("transaction gas price below minimum: gas tip cap 1000000000, "
                                             "minimum needed 25000000000")


def test_tip_of_each_transaction_kind():
    base = 30 * GWEI
    assert raw_tx_tip(_raw({"maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": 7 * GWEI}), base) == 7 * GWEI
    # legacy and type-1 gasPrice: what is left above the base fee counts as the tip (stricter than bor)
    assert raw_tx_tip(_raw({"gasPrice": 40 * GWEI}), base) == 10 * GWEI
    assert raw_tx_tip(_raw({"gasPrice": 40 * GWEI, "accessList": []}), base) == 10 * GWEI
    with pytest.raises(ValueError):
        raw_tx_tip(b"", base)


def test_min_priority_fee_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("COPYTRADE_HOME", str(tmp_path))
    assert load_settings().copy_trading_min_priority_fee_gwei == 25
    monkeypatch.setenv("COPY_TRADING_MIN_PRIORITY_FEE_GWEI", "30.5")
    assert float(load_settings().copy_trading_min_priority_fee_gwei) == 30.5
    monkeypatch.setenv("COPY_TRADING_MIN_PRIORITY_FEE_GWEI", "-1")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "COPY_TRADING_MIN_PRIORITY_FEE_GWEI" in str(exc.value) and "\n" not in str(exc.value).strip()


def test_taker_fee_is_lives_formula_floored_to_a_micro_unit():
    assert taker_fee(10_000_000, "0.5", 0.04) == 100_000  # 10 shares x 0.04 x 0.25
    assert taker_fee(3_333_333, "0.07", 0.07) == 15_189  # 3.333333 x 0.07 x 0.0651 = 0.0151899.. floored
    assert taker_fee(10_000_000, "0.5", 0.0) == 0
    assert taker_fee(10_000_000, "0.5", 0.04, exponent=2) == 25_000
    with pytest.raises(ValueError):
        taker_fee(1, "1", 0.04)
