"""The fork's contracts, planted at Polymarket's real addresses on a real anvil (pUSD, the real ConditionalTokens,
the V2 exchange mock): ABI/topic parity with the installed py_clob_client_v2 V2 exchange ABI, order-hash parity,
and a settled BUY-vs-SELL match. The strict rules (signatures, pause, fees, tip floor) are test_strict_world.py."""
from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from copytrade_cli.chain import contracts as C
from tests.conftest import DEV_KEYS

USDC = 10**6


def v2_abi():
    from py_clob_client_v2.order_utils.abi.abis import exchange_v2_abi

    return exchange_v2_abi


def real_addresses():
    from py_clob_client_v2.config import get_contract_config

    cfg = get_contract_config(137)
    return {"pusd": cfg.collateral, "ctf": cfg.conditional_tokens, "exchange": cfg.exchange_v2,
            "usdce": "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"}


def reverts(fn, sender):
    """True if an eth_call of `fn` from `sender` reverts."""
    try:
        fn.call({"from": sender})
    except ContractLogicError:
        return True
    return False


# ----------------------------------------------------------------- ABI parity (no chain)
def test_match_orders_selector_and_events_match_package_abi():
    ours = C.load_artifact("MockExchangeV2").abi
    theirs = v2_abi()

    def by_name(abi, kind):
        return {e["name"]: e for e in abi if e.get("type") == kind}

    ours_f, theirs_f = by_name(ours, "function"), by_name(theirs, "function")
    sel = function_abi_to_4byte_selector(theirs_f["matchOrders"])
    assert function_abi_to_4byte_selector(ours_f["matchOrders"]) == sel
    # every function we share by name has the real selector
    shared = set(ours_f) & set(theirs_f)
    assert {"matchOrders", "hashOrder", "addOperator", "removeOperator", "isOperator", "getCollateral",
            "getCtf", "orderStatus", "getOrderStatus"} <= shared
    for name in shared:
        assert function_abi_to_4byte_selector(ours_f[name]) == function_abi_to_4byte_selector(theirs_f[name]), name
    # every event we emit exists in the V2 ABI with the same topic0 and the same indexed layout
    ours_e, theirs_e = by_name(ours, "event"), by_name(theirs, "event")
    assert set(ours_e) <= set(theirs_e), set(ours_e) - set(theirs_e)
    for name, ev in ours_e.items():
        assert event_abi_to_log_topic(ev) == event_abi_to_log_topic(theirs_e[name]), name
        assert [i["indexed"] for i in ev["inputs"]] == [i["indexed"] for i in theirs_e[name]["inputs"]], name


def test_artifact_cache_is_fast(tmp_path):
    import time

    names = ["MockCollateral", "MockCollateralToken", "MockCollateralRamp", "MockExchangeV2"]
    for n in names:
        C.compile_contract(n, build_dir=tmp_path)
    C._memo.clear()  # force the on-disk path, not the in-process memo
    t = time.perf_counter()
    arts = [C.load_artifact(n, build_dir=tmp_path) for n in names]
    assert time.perf_counter() - t < 0.05
    assert all(a.bytecode.startswith("0x") and a.runtime_bytecode.startswith("0x") for a in arts)


# ----------------------------------------------------------------- planted world
class PlantedWorld:
    """pUSD, USDC.e, CTF and the V2 exchange planted at their real addresses; an operator and 3 parties."""

    def __init__(self, w3):
        self.w3 = w3
        self.admin = Account.from_key(DEV_KEYS[0])
        self.alice = Account.from_key(DEV_KEYS[1])  # taker (buyer)
        self.mm = Account.from_key(DEV_KEYS[2])  # market maker (seller)
        self.oracle = Account.from_key(DEV_KEYS[3])
        a = real_addresses()
        self.addr = a
        from copytrade_cli.chain.cheats import Cheats
        from copytrade_cli.localworld.real_ctf import ctf_abi, plant_real_ctf

        C.plant(w3, self.admin, "MockCollateralToken", a["pusd"], a["usdce"])
        C.plant(w3, self.admin, "MockCollateral", a["usdce"], "USD Coin (PoS)", "USDC.e")
        plant_real_ctf(w3, Cheats(w3), a["ctf"])
        C.plant(w3, self.admin, "MockExchangeV2", a["exchange"], a["pusd"], a["ctf"])
        self.pusd = C.contract(w3, "MockCollateralToken", a["pusd"])
        self.usdce = C.contract(w3, "MockCollateral", a["usdce"])
        self.ctf = w3.eth.contract(address=a["ctf"], abi=ctf_abi())
        self.ex = C.contract(w3, "MockExchangeV2", a["exchange"])
        self.tx(self.admin, self.pusd.functions.initialize(self.admin.address))
        self.tx(self.admin, self.usdce.functions.initialize(self.admin.address))
        self.tx(self.admin, self.ex.functions.initialize(self.admin.address))
        self.tx(self.admin, self.ex.functions.addOperator(self.admin.address))

    def tx(self, acct, fn):
        return C.transact(self.w3, acct, fn)

    def market(self, question=b"\x01" * 32):
        """Prepare a binary condition; return (conditionId, yesTokenId, noTokenId)."""
        self.tx(self.oracle, self.ctf.functions.prepareCondition(self.oracle.address, question, 2))
        cid = self.ctf.functions.getConditionId(self.oracle.address, question, 2).call()
        ids = []
        for index_set in (1, 2):
            coll = self.ctf.functions.getCollectionId(b"\0" * 32, cid, index_set).call()
            ids.append(self.ctf.functions.getPositionId(self.pusd.address, coll).call())
        return cid, ids[0], ids[1]


def order_builder(w3, key):
    from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
    from py_clob_client_v2.signer import Signer

    return ExchangeOrderBuilderV2(real_addresses()["exchange"], w3.eth.chain_id, Signer(key, w3.eth.chain_id))


def signed_order(w3, key, token_id, side, maker_amount, taker_amount):
    """(tuple for the contract, package-computed order hash) for an EOA order signed by `key`."""
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
    from py_clob_client_v2.order_utils.model.side import Side

    b = order_builder(w3, key)
    maker = Account.from_key(key).address
    so = b.build_signed_order(OrderDataV2(maker=maker, tokenId=str(token_id), makerAmount=str(maker_amount),
                                          takerAmount=str(taker_amount), side=Side(side)))
    pkg_hash = b.build_order_hash(b.build_order_typed_data(so))
    tup = (int(so.salt), so.maker, so.signer, int(so.tokenId), int(so.makerAmount), int(so.takerAmount),
           int(so.side), int(so.signatureType), int(so.timestamp), bytes.fromhex(so.metadata[2:].zfill(64)),
           bytes.fromhex(so.builder[2:].zfill(64)), bytes.fromhex(so.signature[2:]))
    return tup, pkg_hash


@pytest.fixture
def world(fresh_anvil):
    from web3 import Web3

    return PlantedWorld(Web3(Web3.HTTPProvider(fresh_anvil.url, request_kwargs={"timeout": 30})))


def test_planted_mocks_keep_immutables_and_initialize_once(world):
    w = world
    assert w.pusd.functions.symbol().call() == "pUSD"
    assert w.usdce.functions.symbol().call() == "USDC.e"
    assert w.pusd.functions.decimals().call() == 6
    assert w.ex.functions.getCollateral().call() == w.pusd.address
    assert w.ex.functions.getCtf().call() == w.ctf.address
    # one-shot initializers
    assert reverts(w.pusd.functions.initialize(w.alice.address), w.alice.address)
    assert reverts(w.ex.functions.initialize(w.alice.address), w.alice.address)
    # privileged calls from an unprivileged caller
    assert reverts(w.pusd.functions.mint(w.alice.address, 1), w.alice.address)
    assert reverts(w.ex.functions.addOperator(w.alice.address), w.alice.address)
    assert reverts(w.ex.functions.removeOperator(w.admin.address), w.alice.address)
    assert reverts(w.ex.functions.setFeeReceiver(w.alice.address), w.alice.address)


def test_ctf_split_merge_report_redeem(world):
    w = world
    cid, yes, no = w.market()
    w.tx(w.admin, w.pusd.functions.mint(w.mm.address, 100 * USDC))
    w.tx(w.mm, w.pusd.functions.approve(w.ctf.address, 2**256 - 1))
    w.tx(w.mm, w.ctf.functions.splitPosition(w.pusd.address, b"\0" * 32, cid, [1, 2], 40 * USDC))
    assert w.ctf.functions.balanceOfBatch([w.mm.address] * 2, [yes, no]).call() == [40 * USDC] * 2
    assert w.pusd.functions.balanceOf(w.ctf.address).call() == 40 * USDC
    w.tx(w.mm, w.ctf.functions.mergePositions(w.pusd.address, b"\0" * 32, cid, [1, 2], 10 * USDC))
    assert w.pusd.functions.balanceOf(w.mm.address).call() == 70 * USDC
    # only the oracle named in the condition id can resolve it
    assert reverts(w.ctf.functions.reportPayouts(b"\x01" * 32, [1, 0]), w.mm.address)
    w.tx(w.oracle, w.ctf.functions.reportPayouts(b"\x01" * 32, [1, 0]))
    assert w.ctf.functions.payoutDenominator(cid).call() == 1
    assert w.ctf.functions.payoutNumerators(cid, 0).call() == 1
    w.tx(w.mm, w.ctf.functions.redeemPositions(w.pusd.address, b"\0" * 32, cid, [1, 2]))
    assert w.pusd.functions.balanceOf(w.mm.address).call() == 100 * USDC  # 70 + 30 YES won
    assert w.ctf.functions.balanceOfBatch([w.mm.address] * 2, [yes, no]).call() == [0, 0]


def test_match_orders_buy_vs_sell_planted(world):
    w = world
    w3 = w.w3
    cid, yes, _ = w.market()
    # market maker gets YES tokens by splitting, alice has collateral; both approve the exchange
    w.tx(w.admin, w.pusd.functions.mint(w.mm.address, 100 * USDC))
    w.tx(w.admin, w.pusd.functions.mint(w.alice.address, 100 * USDC))
    w.tx(w.mm, w.pusd.functions.approve(w.ctf.address, 2**256 - 1))
    w.tx(w.mm, w.ctf.functions.splitPosition(w.pusd.address, b"\0" * 32, cid, [1, 2], 50 * USDC))
    w.tx(w.mm, w.ctf.functions.setApprovalForAll(w.ex.address, True))
    w.tx(w.alice, w.pusd.functions.approve(w.ex.address, 2**256 - 1))

    # alice BUY 20 shares @ 0.60 (pays up to 12 USDC); mm SELL 30 shares @ 0.50
    taker, taker_hash = signed_order(w3, DEV_KEYS[1], yes, 0, 12 * USDC, 20 * USDC)
    maker, maker_hash = signed_order(w3, DEV_KEYS[2], yes, 1, 30 * USDC, 15 * USDC)
    assert "0x" + w.ex.functions.hashOrder(taker).call().hex() == taker_hash
    assert "0x" + w.ex.functions.hashOrder(maker).call().hex() == maker_hash

    # not an operator -> revert
    assert reverts(w.ex.functions.matchOrders(cid, taker, [maker], 12 * USDC, [20 * USDC], 0, [0]), w.alice.address)
    # taker spends 12 USDC (its whole order) and the maker fills 20 shares at 0.50 = 10 USDC:
    # alice gets 20 shares and a 2 USDC refund (price improvement), mm gets 10 USDC.
    rc = w.tx(w.admin, w.ex.functions.matchOrders(cid, taker, [maker], 12 * USDC, [20 * USDC], 0, [0]))
    assert w.ctf.functions.balanceOf(w.alice.address, yes).call() == 20 * USDC
    assert w.pusd.functions.balanceOf(w.alice.address).call() == 90 * USDC
    assert w.ctf.functions.balanceOf(w.mm.address, yes).call() == 30 * USDC
    assert w.pusd.functions.balanceOf(w.mm.address).call() == 60 * USDC
    assert w.pusd.functions.balanceOf(w.ex.address).call() == 0
    assert w.ctf.functions.balanceOf(w.ex.address, yes).call() == 0

    # decode with the PACKAGE's ABI: what the detector will do against the real chain
    pkg = w3.eth.contract(address=w.ex.address, abi=v2_abi())
    fills = pkg.events.OrderFilled().process_receipt(rc, errors=DISCARD)
    matched = pkg.events.OrdersMatched().process_receipt(rc, errors=DISCARD)
    assert len(fills) == 2 and len(matched) == 1
    mf, tf = fills[0]["args"], fills[1]["args"]
    assert "0x" + mf["orderHash"].hex() == maker_hash and mf["maker"] == w.mm.address and mf["taker"] == w.alice.address
    assert (mf["side"], mf["tokenId"], mf["makerAmountFilled"], mf["takerAmountFilled"], mf["fee"]) == (1, yes, 20 * USDC, 10 * USDC, 0)
    assert "0x" + tf["orderHash"].hex() == taker_hash and tf["maker"] == w.alice.address and tf["taker"] == w.ex.address
    assert (tf["side"], tf["tokenId"], tf["makerAmountFilled"], tf["takerAmountFilled"]) == (0, yes, 12 * USDC, 20 * USDC)
    assert matched[0]["args"]["takerOrderMaker"] == w.alice.address
    # only exchange events + token transfer events: nothing else odd from the exchange
    ex_topics = {log["topics"][0] for log in rc["logs"] if log["address"] == w.ex.address}
    assert ex_topics == {event_abi_to_log_topic(e) for e in v2_abi() if e.get("name") in ("OrderFilled", "OrdersMatched")}

    # per-order fill state: the taker order is fully used; the maker has 10 shares left
    assert w.ex.functions.orderStatus(bytes.fromhex(taker_hash[2:])).call() in ([True, 0], (True, 0))
    assert w.ex.functions.getOrderStatus(bytes.fromhex(maker_hash[2:])).call() == (False, 10 * USDC)
    # overfill is impossible: the taker order is done; the maker has only 10 left
    taker2, _ = signed_order(w3, DEV_KEYS[1], yes, 0, 12 * USDC, 20 * USDC)
    assert reverts(w.ex.functions.matchOrders(cid, taker, [maker], 1, [1], 0, [0]), w.admin.address)
    assert reverts(w.ex.functions.matchOrders(cid, taker2, [maker], 6 * USDC, [11 * USDC], 0, [0]), w.admin.address)
    # a non-crossing price (buyer at 0.40 vs seller at 0.50) is refused
    cheap, _ = signed_order(w3, DEV_KEYS[1], yes, 0, 4 * USDC, 10 * USDC)
    assert reverts(w.ex.functions.matchOrders(cid, cheap, [maker], 4 * USDC, [8 * USDC], 0, [0]), w.admin.address)


def test_match_orders_sell_taker_with_fees(world):
    w = world
    w3 = w.w3
    cid, yes, _ = w.market(b"\x02" * 32)
    w.tx(w.admin, w.pusd.functions.mint(w.mm.address, 100 * USDC))
    w.tx(w.admin, w.pusd.functions.mint(w.alice.address, 100 * USDC))
    w.tx(w.alice, w.pusd.functions.approve(w.ctf.address, 2**256 - 1))
    w.tx(w.alice, w.ctf.functions.splitPosition(w.pusd.address, b"\0" * 32, cid, [1, 2], 10 * USDC))
    w.tx(w.alice, w.ctf.functions.setApprovalForAll(w.ex.address, True))
    w.tx(w.mm, w.pusd.functions.approve(w.ex.address, 2**256 - 1))
    # alice SELL 10 @ 0.40 (wants >= 4 USDC); mm BUY 10 @ 0.45 (pays 4.5)
    taker, _ = signed_order(w3, DEV_KEYS[1], yes, 1, 10 * USDC, 4 * USDC)
    maker, _ = signed_order(w3, DEV_KEYS[2], yes, 0, 9 * USDC // 2, 10 * USDC)
    fee_rx = w3.to_checksum_address("0x000000000000000000000000000000000000fee0")  # an EOA: fees go where the admin says
    w.tx(w.admin, w.ex.functions.setFeeReceiver(fee_rx))
    rc = w.tx(w.admin, w.ex.functions.matchOrders(cid, taker, [maker], 10 * USDC, [9 * USDC // 2], 100_000, [1_000]))
    # V2: every fee is collateral. alice (SELL taker): 10 YES out, 4.5 pUSD in minus its 0.1 fee;
    # mm (BUY maker): 4.5 pUSD out plus its 0.001 fee on top, 10 YES in (untouched)
    assert w.pusd.functions.balanceOf(w.alice.address).call() == 90 * USDC + 4_400_000
    assert w.ctf.functions.balanceOf(w.alice.address, yes).call() == 0
    assert w.ctf.functions.balanceOf(w.mm.address, yes).call() == 10 * USDC
    assert w.pusd.functions.balanceOf(w.mm.address).call() == 100 * USDC - 4_500_000 - 1_000
    assert w.ctf.functions.balanceOf(fee_rx, yes).call() == 0
    assert w.pusd.functions.balanceOf(fee_rx).call() == 101_000
    pkg = w3.eth.contract(address=w.ex.address, abi=v2_abi())
    assert [e["args"]["amount"] for e in pkg.events.FeeCharged().process_receipt(rc, errors=DISCARD)] == [1_000, 100_000]
