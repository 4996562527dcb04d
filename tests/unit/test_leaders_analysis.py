"""Leader report and backtest on a hand-made history: every figure checked against values computed by hand."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from copytrade_cli.analysis.backtest import Options, run_backtest
from copytrade_cli.analysis.history import History, load_file
from copytrade_cli.analysis.ledger import wilson
from copytrade_cli.analysis.report import build_report
from copytrade_cli.errors import UsageError
from copytrade_cli.settings import Settings
from copytrade_cli.supervisor.decide import validate_follow

LEADER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FOLLOWER = "0x8779A122f2Bf8eb8E1Cc97cE340354828F22F073"
A, B, C = "0x" + "a" * 64, "0x" + "b" * 64, "0x" + "c" * 64


def _t(side, token, cond, size, price, ts, tx):
    return {"proxy_wallet": LEADER, "side": side, "token_id": token, "condition_id": cond, "size": size,
            "price": price, "timestamp": ts, "transaction_hash": "0x" + tx * 64, "title": cond[:6]}


def _m(cond, tokens, prices, category, closed, neg_risk=False):
    return {"conditionId": cond, "question": f"market {cond[2]}", "category": category, "negRisk": neg_risk,
            "clobTokenIds": json.dumps(tokens), "outcomePrices": json.dumps(prices), "closed": closed,
            "orderMinSize": 5, "orderPriceMinTickSize": 0.01}


def raw_history():
    trades = [_t("BUY", "1", A, 20, 0.5, 1000, "1"), _t("BUY", "3", B, 10, 0.4, 1500, "2"),
              _t("SELL", "1", A, 10, 0.6, 2000, "3"), _t("SELL", "3", B, 10, 0.2, 3000, "4"),
              _t("BUY", "5", C, 10, 0.5, 4000, "5")]
    return {"user": LEADER, "trades": trades, "taker_trades": [trades[0], trades[2], trades[4]],
            "activity": [{"type": "REDEEM", "proxy_wallet": LEADER, "condition_id": A, "usdc_size": 10,
                          "timestamp": 5000, "transaction_hash": "0x" + "6" * 64},
                         {"type": "DEPOSIT", "proxy_wallet": LEADER, "usdc_size": 100, "timestamp": 1,
                          "transaction_hash": "0x" + "7" * 64}],
            "markets": [_m(A, ["1", "2"], ["1", "0"], "politics", True),
                        _m(B, ["3", "4"], ["0.3", "0.7"], "crypto", False),
                        _m(C, ["5", "6"], ["0.7", "0.3"], "sports", False, neg_risk=True)]}


def test_report_figures_by_hand():
    r = build_report(History.from_raw(raw_history()))
    assert (r["trades"], r["buys"], r["sells"], r["redeems"]) == (5, 3, 2, 1)
    assert Decimal(r["volume"]) == 27  # 10 + 4 + 6 + 2 + 5
    # A: +1 (sell 10 @0.6 on a 0.5 basis) +5 (redeem 10 on a 5 basis); B: -2; C: 10 x 0.7 - 5 = +2 unrealized
    assert Decimal(r["realized_pnl"]) == 4 and Decimal(r["unrealized_pnl"]) == 2 and Decimal(r["pnl"]) == 6
    assert (r["markets_traded"], r["markets_decided"], r["wins"], r["win_rate"]) == (3, 2, 1, 0.5)
    lo, hi = r["win_rate_ci95"]
    assert lo == pytest.approx(0.0945, abs=1e-4) and hi == pytest.approx(0.9055, abs=1e-4)
    assert r["maker_taker"] == {"taker": 3, "maker": 2, "unknown": 0, "taker_share": 0.6}
    assert {k: Decimal(v) for k, v in r["size_usd"].items()} == {"min": 2, "p25": 4, "median": 5, "p75": 6,
                                                                "max": 10, "mean": Decimal("5.4")}
    assert r["categories"]["politics"] == {"trades": 2, "volume": "16.000000"} and r["kinds"]["neg-risk"] == {"trades": 1, "volume": "5.000000"}
    assert r["holding_s"]["round_trips"] == 2 and r["holding_s"]["median"] == (4000 + 1500) / 2
    assert r["best_market"]["condition_id"] == A and r["best_market_share"] == 1.0
    assert r["other_activity"] == {"DEPOSIT": 1}
    assert [m["status"] for m in r["per_market"]] == ["resolved", "open", "exited"]


def test_wilson_interval():
    assert wilson(0, 0) is None
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)


def _follow(**kw):
    return validate_follow(follower=FOLLOWER, leader=LEADER, **{"sizing": "fixed", "amount": "10", **kw})


def test_backtest_by_hand_no_fees_no_latency(tmp_path):
    res = run_backtest(History.from_raw(raw_history()), _follow(), Settings(COPYTRADE_HOME=str(tmp_path)),
                       Options(fees=False))
    assert (res["copies"], res["skipped"]) == (5, 0)
    assert Decimal(res["spent"]) == 30 and Decimal(res["received"]) == 11  # 10 x 0.6 + 25 x 0.2
    assert Decimal(res["redeemed"]) == Decimal("10.000001")  # 10.000001 shares of A kept after the half sell
    # A: +6, B: 5 - 10 = -5, C: 20 x 0.7 - 10 = +4 (to a few micro-USD of exchange rounding)
    assert abs(Decimal(res["made"]) - 5) < Decimal("0.00001")
    assert Decimal(res["leader_totals"]["made"]) == 6


def test_backtest_fees_skips_and_latency(tmp_path):
    s = Settings(COPYTRADE_HOME=str(tmp_path), COPY_TRADING_DAILY_CAP_USD="25")
    res = run_backtest(History.from_raw(raw_history()), _follow(), s, Options(fees=True))
    # caps count BUY USD and SELL shares x limit: 10 + 10, then the A sell (10 x 0.57 = 5.7 -> 25.7) is refused,
    # the B sell (25 x 0.19 = 4.75 -> 24.75) passes, the C buy (-> 34.75) is refused
    assert res["skips_by_reason"] == {"daily cap # USD reached (# used)": 2}
    assert [s["tx"][2] for s in res["skip_list"]] == ["3", "5"]
    # politics fee 0.04 x 20.000001 x 0.25 + crypto 0.07 x 25.000002 x 0.24 on the buys, and on the two sells
    assert Decimal(res["fees_paid"]) > Decimal("0.6")
    h = History.from_raw(raw_history())
    slow = run_backtest(h, _follow(max_slippage="0.5"), Settings(COPYTRADE_HOME=str(tmp_path)),
                        Options(fees=False, latency_ms=1000))
    assert slow["copies"] == 5  # no later same-side fill within 1 s of any fill: the same prices
    tight = run_backtest(h, _follow(sizing="proportional", amount="0.1", min_usd="2"), Settings(COPYTRADE_HOME=str(tmp_path)),
                         Options(fees=False))
    # 0.1 x the leader's notional: 1, 0.4 and 0.5 USD are below the minimum 2; nothing held, so no sell
    assert tight["copies"] == 0 and tight["skips_by_reason"] == {
        "copy of # USD is below the follow's minimum #": 3, "no position to sell": 2}


def test_from_file_refuses_bad_rows(tmp_path):
    p = tmp_path / "h.json"
    p.write_text(json.dumps({"trades": [{"side": "HOLD"}]}))
    with pytest.raises(UsageError, match=r"trades\[0\]: side 'HOLD' is not BUY or SELL"):
        load_file(p)
    p.write_text("{")
    with pytest.raises(UsageError, match="not readable JSON"):
        load_file(p)
    p.write_text(json.dumps(raw_history()))
    assert len(load_file(p, since=2000).trades) == 3


def test_fees_by_category_and_fees_enabled(tmp_path):
    s = Settings(COPYTRADE_HOME=str(tmp_path))
    raw = raw_history()
    on = run_backtest(History.from_raw(raw), _follow(), s, Options(fees=True))
    # taker fee = shares x rate x p(1-p): politics 0.04 (A), crypto 0.07 (B), sports 0.03 (C)
    a_buy = Decimal("20.000001") * Decimal("0.04") * Decimal("0.25")
    a_sell = Decimal(10) * Decimal("0.04") * Decimal("0.24")
    b_buy = Decimal("25.000002") * Decimal("0.07") * Decimal("0.24")
    b_sell = Decimal(25) * Decimal("0.07") * Decimal("0.16")
    c_buy = Decimal("20.000001") * Decimal("0.03") * Decimal("0.25")
    assert abs(Decimal(on["fees_paid"]) - (a_buy + a_sell + b_buy + b_sell + c_buy)) <= Decimal("0.000005")
    raw["markets"][1]["feesEnabled"] = False  # B charges nothing
    off = run_backtest(History.from_raw(raw), _follow(), s, Options(fees=True))
    assert abs(Decimal(off["fees_paid"]) - (a_buy + a_sell + c_buy)) <= Decimal("0.000005")
