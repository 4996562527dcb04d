"""The order desk's settlement by trade status, on a real state file: each transition journalled, RETRYING
followed to the hash it has when CONFIRMED, the taker fee in what the followers are charged, FAILED journalled
once as `order_failed` (the stage the refund starts from) across a restart in between; and the min-size skip."""
from __future__ import annotations

import json
from decimal import Decimal
from types import SimpleNamespace

import pytest
from eth_abi import encode

from copytrade_cli.errors import ClobError
from copytrade_cli.polymarket.fills import ORDER_FILLED_V2_TOPIC
from copytrade_cli.polymarket.market_rules import MarketRules
from copytrade_cli.state import State
from copytrade_cli.supervisor.execute.journal import Journal
from copytrade_cli.supervisor.execute.orders import OrderDesk, order_fee
from copytrade_cli.supervisor.model import Leg, legs_to_json

OID = "0x" + "ab" * 32
TOKEN = "7132" + "1" * 70
TX_A, TX_B = "0x" + "aa" * 32, "0x" + "bb" * 32


def _log(order_hash: str, side: int, making: int, taking: int, fee: int) -> dict:
    data = encode(["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"],
                  [side, int(TOKEN), making, taking, fee, b"\0" * 32, b"\0" * 32])
    topic = "0x" + "00" * 12 + "11" * 20
    return {"topics": [ORDER_FILLED_V2_TOPIC, order_hash, topic, topic], "data": "0x" + data.hex(),
            "transactionHash": TX_B, "address": "0x" + "33" * 20}


class ScriptedClob:
    """A FAKE gateway: each `trades()` call answers the next scripted status set (the last one repeats)."""

    def __init__(self, script: list[dict[str, tuple[str, str | None]]], rules: MarketRules | None = None):
        self.script, self.calls, self._rules = script, 0, rules

    def trades(self, ids):
        got = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        return {t: {"status": s, "tx": h} for t, (s, h) in got.items() if t in ids}

    def market(self, token_id):
        return self._rules


class Chain:
    """A FAKE GroupChain: receipts by hash, every settlement mined."""

    def __init__(self, receipts: dict[str, dict]):
        self.receipts = receipts

    def settled(self, hashes):
        return {h: int(self.receipts[h]["status"], 16) for h in hashes}

    def receipt(self, h):
        return self.receipts.get(h)


def _desk(state: State, gid: str, clob, chain=None, timeout: float = 5.0) -> OrderDesk:
    ctx = SimpleNamespace(state=state, on_step=None, report=lambda *a: None, fault=lambda p: None,
                          settle_timeout_s=timeout)
    g = state.get_group(gid)
    from copytrade_cli.supervisor.model import legs_from_json

    j = Journal(ctx, g, legs_from_json(g["legs_json"]), "0x" + "77" * 20)
    return OrderDesk(j, chain or Chain({}), SimpleNamespace(clob=clob))


def _group(state: State, side: str = "BUY", trades=None, legs=None) -> str:
    legs = legs or [Leg(1, "0x" + "a1" * 20, 3_000_000, 0), Leg(2, "0x" + "a2" * 20, 2_000_000, 0)]
    info = {"wire": {}, "settle_txs": [], "trades": trades or {"t-1": {"status": "MATCHED", "tx": None}}}
    state.create_group({"group_id": "g1", "fill_key": "f", "flow": "standard", "side": side, "status": "running",
                        "stage": "filled", "token_id": TOKEN, "price_limit": "0.5", "order_id": OID,
                        "filled_shares": 10_000_000, "spent_micro": 4_900_000, "legs_json": legs_to_json(legs),
                        "order_json": json.dumps(info)}, [])
    return "g1"


@pytest.fixture(autouse=True)
def fast_poll(monkeypatch):
    monkeypatch.setattr("copytrade_cli.supervisor.execute.orders._POLL_S", 0.01)


def test_retrying_is_followed_to_the_confirmed_hash_and_the_fee_is_charged(tmp_path):
    state = State(tmp_path / "s.db")
    gid = _group(state)
    clob = ScriptedClob([{"t-1": ("MATCHED", None)}, {"t-1": ("MINED", TX_A)}, {"t-1": ("RETRYING", TX_A)},
                         {"t-1": ("RETRYING", TX_B)}, {"t-1": ("CONFIRMED", TX_B)}])
    # Our BUY (taker): 4.9 USD for 10 shares, fee 0.075 USD on top (r 0.03 x 10 x 0.5 x 0.5)
    chain = Chain({TX_B: {"status": "0x1", "logs": [_log(OID, 0, 4_900_000, 10_000_000, 75_000)]}})
    desk = _desk(state, gid, clob, chain)
    desk.await_settlement()
    g = state.get_group(gid)
    info = json.loads(g["order_json"])
    assert info["settled"] and info["settle_txs"] == [TX_B] and info["fee_micro"] == 75_000
    assert (g["stage"], g["filled_shares"], g["spent_micro"]) == ("filled", 10_000_000, 4_975_000)
    steps = [(s["step"], s["status"], s["detail"]) for s in state.steps(gid)]
    assert [s[1] for s in steps if s[0] == "Settlement"] == ["pending", "pending", "pending", "ok"]
    assert f"RETRYING->RETRYING tx {TX_B}" in steps[2][2] and "CONFIRMED" in steps[3][2]
    assert not any(s[1] == "mismatch" for s in steps)  # the fee is no discrepancy


def test_failed_is_journalled_once_across_a_restart_and_never_charged(tmp_path):
    state = State(tmp_path / "s.db")
    gid = _group(state)
    with pytest.raises(ClobError, match="not settled after"):  # still MATCHED: the group stalls, resumes later
        _desk(state, gid, ScriptedClob([{"t-1": ("MATCHED", None)}]), timeout=0.05).await_settlement()
    assert state.get_group(gid)["stage"] == "filled"
    # "restart": a new journal and desk from the state file; now the trade FAILED
    _desk(state, gid, ScriptedClob([{"t-1": ("FAILED", None)}])).await_settlement()
    g = state.get_group(gid)
    assert (g["stage"], g["error"]) == ("order_failed", "trade FAILED: nothing filled")
    # another restart: the settlement is journalled final, nobody asks again, nothing is journalled twice
    again = ScriptedClob([{"t-1": ("CONFIRMED", TX_B)}])
    assert _desk(state, gid, again).follow_trades() == []
    assert again.calls == 0
    assert [s["status"] for s in state.steps(gid) if s["step"] == "Settlement"] == ["failed"]


def test_order_fee_reads_only_our_logs():
    r = {"status": "0x1", "logs": [_log(OID, 0, 1, 1, 7), _log("0x" + "cd" * 32, 1, 1, 1, 9)]}
    assert order_fee([r, {"status": "0x0", "logs": [_log(OID, 0, 1, 1, 5)]}, None], OID) == 7


def test_a_group_under_the_minimum_size_is_not_placed(tmp_path):
    state = State(tmp_path / "s.db")
    gid = _group(state, legs=[Leg(1, "0x" + "a1" * 20, 600_000, 0), Leg(2, "0x" + "a2" * 20, 410_000, 0)])
    rules = MarketRules(token_id=TOKEN, tick=Decimal("0.01"), neg_risk=False, fee_rate=Decimal("0.03"),
                        min_size=Decimal(5))
    desk = _desk(state, gid, ScriptedClob([{}], rules))
    # 1.01 USD less the fee margin (r 0.03 x (1 - 0.5)) = 0.99 < the 1 USD a market order needs
    assert desk.below_minimum() == "order of 0.99 USD is below the minimum of 1 USD for a market order"
    state.update_group(gid, stage="funded")
    desk = _desk(state, gid, ScriptedClob([{}], rules))
    desk.place("BUY", Decimal("1.01"))  # re-checked at placement: never built, journalled order_failed
    g = state.get_group(gid)
    assert g["stage"] == "order_failed" and "minimum of 1 USD" in g["error"]
