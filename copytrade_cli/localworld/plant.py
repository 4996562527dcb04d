"""Plant an offline Polymarket on a local node, as strict as live: USDC.e, pUSD with its CollateralOnramp /
Offramp, the REAL ConditionalTokens (npm bytecode), the CTF Exchange V2 and the Neg-risk Exchange V2 (strict
mocks: on-chain signatures, fees, pause), all at their mainnet addresses; funded accounts, binary markets of
several ticks / fee categories / a neg-risk one, market-maker inventory, and every approval the trades need.

Fast by construction: every transaction is signed locally and sent back-to-back on per-sender nonce
lanes; receipts are awaited once per stage (three stages in all). Re-running on a node that is
already planted skips what is in place (code, initialization, operators, conditions, approvals)
and only tops balances up to their targets.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable, Literal, NamedTuple, Sequence

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.lanes import TxLane, floor_fees
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.errors import DeploymentError
from copytrade_cli.localworld.real_ctf import ctf_abi, plant_real_ctf
from copytrade_cli.polymarket.world import (
    DEV_ADDRESSES, DEV_KEYS, EXCHANGE_OPERATOR, MARKET_MAKER, SEED_LEADER, TRADE_OPERATOR, Market, World,
    dev_key_for,
)
from copytrade_cli.polymarket.addresses import DEFAULT_WHALE, ERC20_ABI, polymarket_addresses

from .wallets_plant import plant_deposit_wallets

USDC = 10**6
MAX_UINT = 2**256 - 1
ZERO32 = b"\0" * 32
GAS_FLOOR = 100 * 10**18  # top up native balances below this (100 POL)

# Fixed gas limits: pipelined transactions cannot be estimated against state that is not mined yet.
GAS = {"initialize": 120_000, "addOperator": 80_000, "mint": 90_000, "approve": 70_000, "addWrapper": 70_000,
       "setApprovalForAll": 70_000, "prepareCondition": 150_000, "splitPosition": 500_000, "wrap": 150_000,
       "setMaxFeeRate": 60_000}
# The fork's max fee rate (bps of a fill's cash value): live's is not published; the contract's default 500
# would refuse crypto's 0.07 x (1-p) at low prices (docs/live-assumptions.md).
MAX_FEE_RATE_BPS = 1000


class MarketSpec(NamedTuple):
    """What a planted market looks like to the CLOB and the SDK (Market fields)."""

    title: str
    tick_size: str = "0.01"
    category: str = "other"
    fee_rate: float = 0.0
    min_order_size: int = 5
    neg_risk: bool = False
    tick_changes: tuple[tuple[int, str], ...] = ()


# The first three are the long-standing 0.01-tick, fee-free markets the suites trade; then one per live
# variety (LIVE-2026 §5.4, §8): a 0.1 and a 0.001 tick, fee categories, a scheduled tick change, a neg-risk one.
MARKET_SPECS: tuple[MarketSpec, ...] = (
    MarketSpec("Will it rain in Lisbon tomorrow?"),
    MarketSpec("Will BTC close above $100k this week?"),
    MarketSpec("Will the home team win the final?"),
    MarketSpec("Will the bill pass the senate vote?", tick_size="0.1", category="politics", fee_rate=0.04),
    MarketSpec("Will ETH close above $5k this month?", tick_size="0.001", category="crypto", fee_rate=0.07,
               min_order_size=15),
    MarketSpec("Will the ceasefire hold through March?", category="geopolitics", tick_changes=((120, "0.001"),)),
    MarketSpec("Will candidate A win the primary?", category="politics", fee_rate=0.04, neg_risk=True),
)


# pUSD's ramps on Polygon, for a chain without them in addresses.py (Amoy): the fork plants at these anyway.
ONRAMP_137 = "0x93070a847efEf7F70739046A929D47a521F5B8ee"
OFFRAMP_137 = "0x2957922Eb93258b93368531d39fAcCA3B4dC5854"

_runtime_cache: dict[tuple, bytes] = {}


def question_id(index: int) -> bytes:
    """The deterministic question id of local market `index` (same on every plant)."""
    return keccak(text=f"copytrade/local-market/{index}")


def market_spec(i: int) -> MarketSpec:
    """The spec of local market `i`: MARKET_SPECS, then plain 0.01-tick markets cycling the first titles."""
    if i < len(MARKET_SPECS):
        return MARKET_SPECS[i]
    return MarketSpec(f"{MARKET_SPECS[i % 3].title} (#{i})")


def _slug(title: str, i: int) -> str:
    words = "".join(c if c.isalnum() else " " for c in title.lower()).split()
    return "-".join(words[:6]) + f"-{i}"


class _Sender:
    """One account's transactions: a local-key nonce lane, or eth_sendTransaction when impersonated."""

    def __init__(self, w3: Any, cheats: Cheats, address: str, key: str | None, chain_id: int):
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.lane = TxLane(w3, Account.from_key(key), chain_id=chain_id) if key else None
        if self.lane is None:
            cheats.impersonate(self.address)

    def send(self, to: str, data: str, gas: int) -> str:
        if self.lane is not None:
            return self.lane.send({"to": to, "data": data}, gas=gas)
        h = self.w3.eth.send_transaction({"from": self.address, "to": to, "data": data, "gas": gas,
                                          **floor_fees(self.w3)})
        return "0x" + bytes(h).hex()


def _wait_all(w3: Any, hashes: Iterable[str], what: str) -> None:
    for h in hashes:
        r = wait_receipt(w3, h, timeout=120, check=False)
        if r["status"] != 1:
            raise DeploymentError(f"planting Polymarket failed at '{what}' (tx {h} reverted); "
                                  "restart the fork from a clean state and plant again")


def _cache_key(name: str, args: tuple) -> tuple:
    # The artifact's init code is part of the key: an edited mock never reuses stale runtime code.
    return (name, args, hashlib.sha256(C.load_artifact(name).bytecode.encode()).hexdigest())


def _planted_code(w3: Any, lane: TxLane, specs: Sequence[tuple[str, tuple]]) -> list[bytes]:
    """Runtime code (immutables baked in) for each (contract name, constructor args): deployed once, cached."""
    keys = [_cache_key(name, args) for name, args in specs]
    sent = []
    for key in dict.fromkeys(k for k in keys if k not in _runtime_cache):
        art = C.load_artifact(key[0])
        factory = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        data = factory.constructor(*key[1]).data_in_transaction
        sent.append((key, lane.send({"data": data}, gas=6_000_000)))
    for key, h in sent:
        r = wait_receipt(w3, h, timeout=120)
        code = bytes(w3.eth.get_code(r["contractAddress"]))
        if not code:
            raise DeploymentError(f"deploying {key[0]} left no code; check the node's code-size limit")
        _runtime_cache[key] = code
    return [_runtime_cache[k] for k in keys]


def _forked_from(cheats: Cheats) -> str | None:
    """The upstream URL when the node is a live-chain fork (anvil only; hardhat forks are not detected)."""
    if cheats.kind != "anvil":
        return None
    try:
        info = cheats._call("anvil_nodeInfo", []) or {}
    except Exception:  # noqa: BLE001 - older anvils lack nodeInfo
        return None
    return (info.get("forkConfig") or {}).get("forkUrl")


def plant_polymarket(
    w3: Any,
    deployer_key: str,
    *,
    n_markets: int = len(MARKET_SPECS),
    whale: str = DEFAULT_WHALE,
    whale_usdc: int = 10_000_000,
    mm_usdc: int = 1_000_000,
    leader_usdc: int = 100_000,
    mm_shares: int = 100_000,
    leader_shares: int = 1_000,
    leaders: Sequence[str] | None = None,
    market_maker_key: str | None = None,
    exchange_operator: str | None = None,
    trade_operator: str | None = None,
    exchange_collateral: Literal["usdc", "pusd"] = "pusd",
    allow_on_fork: bool = False,
) -> World:
    """Plant USDC.e, pUSD (+ on/offramp), the real CTF and both V2 exchanges at their Polygon addresses; set up trading.

    Amounts are whole USDC / shares. The market maker ends with `mm_usdc` collateral plus `mm_shares`
    of each outcome of every market; each leader with `leader_usdc` plus `leader_shares` of each outcome
    (so leader SELLs work); the whale with `whale_usdc` USDC.e and as much pUSD (wrapped through the onramp,
    so pUSD stays fully backed). Leaders that are not anvil dev accounts are set up by impersonation.
    `exchange_collateral` picks what both exchanges settle in and back the CTF positions: pUSD by default
    (live's V2 collateral, what followers' proxies and worker wallets hold; every pUSD balance is wrapped
    from USDC.e by the deployer through the onramp), or "usdc" (the pre-pUSD world). On a fork of the live chain the real contracts are already
    there, so planting mocks over them is refused unless `allow_on_fork`.
    """
    cheats = Cheats(w3)
    upstream = _forked_from(cheats)
    if upstream and not allow_on_fork:
        raise DeploymentError(f"this node forks {upstream}: Polymarket's real contracts are already there, so "
                              "planting mocks over them would break them; plant only on the offline fork")
    if exchange_collateral not in ("usdc", "pusd"):
        raise DeploymentError(f"exchange collateral must be 'usdc' or 'pusd', not {exchange_collateral!r}")
    chain_id = int(w3.eth.chain_id)
    addrs = polymarket_addresses(chain_id if chain_id in (137, 80002) else 137)
    onramp, offramp = addrs.collateral_onramp or ONRAMP_137, addrs.collateral_offramp or OFFRAMP_137
    deployer = Account.from_key(deployer_key)
    mm_key = market_maker_key or DEV_KEYS[MARKET_MAKER]
    mm = Account.from_key(mm_key).address
    ex_op = to_checksum_address(exchange_operator or DEV_ADDRESSES[EXCHANGE_OPERATOR])
    tr_op = to_checksum_address(trade_operator or DEV_ADDRESSES[TRADE_OPERATOR])
    leaders = [to_checksum_address(a) for a in (leaders or [SEED_LEADER])]
    whale = to_checksum_address(whale)
    collateral_addr = addrs.usdc_e if exchange_collateral == "usdc" else addrs.pusd
    exchanges = [addrs.exchange_v2, addrs.neg_risk_exchange_v2]
    lane = TxLane(w3, deployer, chain_id=chain_id)

    # ---- stage 1: code at the real addresses --------------------------------------------------
    specs = [
        ("MockCollateral", ("USD Coin (PoS)", "USDC.e")),
        ("MockCollateralToken", (addrs.usdc_e,)),
        ("MockExchangeV2", (collateral_addr, addrs.ctf)),
        ("MockExchangeV2", (collateral_addr, addrs.ctf)),
        ("MockCollateralRamp", (addrs.pusd, True)),
        ("MockCollateralRamp", (addrs.pusd, False)),
    ]
    targets = [addrs.usdc_e, addrs.pusd, *exchanges, onramp, offramp]
    existing = [bytes(w3.eth.get_code(a)) for a in targets]
    cached = [_runtime_cache.get(_cache_key(*s)) for s in specs]
    if any(not code or code != want for code, want in zip(existing, cached)):
        codes = _planted_code(w3, lane, specs)
        for addr, have, want in zip(targets, existing, codes):
            if have != want:
                cheats.set_code(addr, want)
    plant_real_ctf(w3, cheats, addrs.ctf)

    usdce = w3.eth.contract(address=addrs.usdc_e, abi=C.load_artifact("MockCollateral").abi)
    pusd = w3.eth.contract(address=addrs.pusd, abi=C.load_artifact("MockCollateralToken").abi)
    ramp = w3.eth.contract(address=onramp, abi=C.load_artifact("MockCollateralRamp").abi)
    ctf = w3.eth.contract(address=addrs.ctf, abi=ctf_abi())
    ex_abi = C.load_artifact("MockExchangeV2").abi
    exs = [w3.eth.contract(address=a, abi=ex_abi) for a in exchanges]
    coll = usdce if exchange_collateral == "usdc" else pusd

    # ---- stage 2: deployer: initialize, roles, operators, conditions, funding ----------------------
    sent: list[str] = []

    def dsend(contract: Any, fn: str, *args: Any) -> None:
        sent.append(lane.send({"to": contract.address, "data": contract.encode_abi(fn, args=list(args))},
                              gas=GAS[fn]))

    if int(usdce.functions.minter().call(), 16) == 0:
        dsend(usdce, "initialize", deployer.address)
    if int(pusd.functions.owner().call(), 16) == 0:
        dsend(pusd, "initialize", deployer.address)
    for r in (onramp, offramp):
        if not pusd.functions.rolesOf(r).call() & 2:
            dsend(pusd, "addWrapper", r)
    for ex in exs:
        if not ex.functions.initialized().call():
            dsend(ex, "initialize", deployer.address)
        if ex.functions.getMaxFeeRate().call() != MAX_FEE_RATE_BPS:
            dsend(ex, "setMaxFeeRate", MAX_FEE_RATE_BPS)
        for op in dict.fromkeys([ex_op, tr_op]):
            if not ex.functions.isOperator(op).call():
                dsend(ex, "addOperator", op)

    markets: list[Market] = []
    token_ids: list[tuple[int, int]] = []
    for i in range(n_markets):
        qid = question_id(i)
        cid = ctf.functions.getConditionId(deployer.address, qid, 2).call()
        ids = tuple(ctf.functions.getPositionId(collateral_addr, ctf.functions.getCollectionId(ZERO32, cid, s).call())
                    .call() for s in (1, 2))
        if ctf.functions.getOutcomeSlotCount(cid).call() == 0:
            dsend(ctf, "prepareCondition", deployer.address, qid, 2)
        spec = market_spec(i)
        markets.append(Market(condition_id="0x" + bytes(cid).hex(), question_id="0x" + qid.hex(),
                              slug=_slug(spec.title, i), title=spec.title, token_ids=[str(ids[0]), str(ids[1])],
                              tick_size=spec.tick_size, neg_risk=spec.neg_risk, min_order_size=spec.min_order_size,
                              category=spec.category, fee_rate=spec.fee_rate,
                              tick_changes=[tuple(c) for c in spec.tick_changes]))
        token_ids.append(ids)

    # Who needs what: collateral targets and outcome-token inventory per market.
    holders = [(mm, mm_key, mm_usdc, mm_shares)] + [(a, dev_key_for(a), leader_usdc, leader_shares) for a in leaders]
    splits: dict[str, list[tuple[bytes, int]]] = {}
    wraps: list[tuple[str, int]] = []  # pUSD to wrap from the deployer's USDC.e: (to, amount)
    for who, _key, usd, shares in holders:
        need_split = []
        for m, ids in zip(markets, token_ids):
            have = min(ctf.functions.balanceOf(who, ids[0]).call(), ctf.functions.balanceOf(who, ids[1]).call())
            missing = shares * USDC - have
            if missing > 0:
                need_split.append((bytes.fromhex(m.condition_id[2:]), missing))
        splits[who] = need_split
        want = usd * USDC + sum(x for _, x in need_split)
        bal = coll.functions.balanceOf(who).call()
        if bal < want:
            if coll is usdce:
                dsend(usdce, "mint", who, want - bal)
            else:
                wraps.append((who, want - bal))
    bal = usdce.functions.balanceOf(whale).call()
    if bal < whale_usdc * USDC:
        dsend(usdce, "mint", whale, whale_usdc * USDC - bal)
    bal = pusd.functions.balanceOf(whale).call()
    if bal < whale_usdc * USDC:
        wraps.append((whale, whale_usdc * USDC - bal))
    if wraps:
        # NOTE: pUSD only comes out of the onramp, backed 1:1 by the USDC.e it locks (as on Polygon).
        dsend(usdce, "mint", deployer.address, sum(x for _, x in wraps))
        if usdce.functions.allowance(deployer.address, onramp).call() < MAX_UINT // 2:
            dsend(usdce, "approve", onramp, MAX_UINT)
        for who, amount in wraps:
            dsend(ramp, "wrap", addrs.usdc_e, who, amount)
    for who in dict.fromkeys([whale, mm, ex_op, tr_op, *leaders]):
        if w3.eth.get_balance(who) < GAS_FLOOR:
            cheats.set_balance(who, 10 * GAS_FLOOR)
    _wait_all(w3, sent, "initialize / conditions / funding")

    # ---- stage 3: participants: approvals and splits (each on its own lane) -----------------------
    sent = []
    for who, key, _usd, _shares in holders:
        s = _Sender(w3, cheats, who, key, chain_id)

        def psend(contract: Any, fn: str, *args: Any) -> None:
            sent.append(s.send(contract.address, contract.encode_abi(fn, args=list(args)), GAS[fn]))

        for spender in (*exchanges, addrs.ctf):
            if coll.functions.allowance(who, spender).call() < MAX_UINT // 2:
                psend(coll, "approve", spender, MAX_UINT)
        for ex_addr in exchanges:
            if not ctf.functions.isApprovedForAll(who, ex_addr).call():
                psend(ctf, "setApprovalForAll", ex_addr, True)
        for cid, amount in splits[who]:
            psend(ctf, "splitPosition", collateral_addr, ZERO32, cid, [1, 2], amount)
    _wait_all(w3, sent, "approvals / splits")
    wallets = plant_deposit_wallets(w3, deployer_key)  # deposit-wallet factory/beacon + relayer gas (H-wallet)

    world = World(
        chain_id=chain_id, collateral=addrs.usdc_e, pusd=addrs.pusd, exchange_collateral=collateral_addr,
        ctf=addrs.ctf, exchange=addrs.exchange_v2, neg_risk_exchange=addrs.neg_risk_exchange_v2,
        onramp=onramp, offramp=offramp, exchange_operator=ex_op, trade_operator=tr_op,
        market_maker=mm, whale=whale, deployer=deployer.address, leaders=leaders, markets=markets,
        deposit_wallet_factory=wallets.factory, deposit_wallet_beacon=wallets.beacon,
        relayer_account=wallets.relayer_account, planted_block=int(w3.eth.block_number),
    )
    return world


def fund_collateral(w3: Any, world: World, deployer_key: str, to: str, usdc: float, *,
                    token: str | None = None) -> str:
    """Give `to` `usdc` of the world's collateral (or `token`); returns the (last) tx hash. USDC.e is minted
    (the deployer is its minter); pUSD is wrapped through the onramp from USDC.e minted to the deployer, so it
    stays fully backed."""
    lane = TxLane(w3, Account.from_key(deployer_key), chain_id=world.chain_id)
    target = to_checksum_address(token or world.exchange_collateral)
    amount = int(round(usdc * USDC))
    usdce = w3.eth.contract(address=world.collateral, abi=C.load_artifact("MockCollateral").abi)
    if target == to_checksum_address(world.pusd) and world.onramp:
        hs = [lane.send({"to": usdce.address, "data": usdce.encode_abi("mint", args=[lane.address, amount])},
                        gas=GAS["mint"])]
        if usdce.functions.allowance(lane.address, world.onramp).call() < amount:
            hs.append(lane.send({"to": usdce.address, "data": usdce.encode_abi("approve", args=[world.onramp, MAX_UINT])},
                                gas=GAS["approve"]))
        ramp = w3.eth.contract(address=world.onramp, abi=C.load_artifact("MockCollateralRamp").abi)
        hs.append(lane.send({"to": ramp.address, "data": ramp.encode_abi(
            "wrap", args=[world.collateral, to_checksum_address(to), amount])}, gas=GAS["wrap"]))
        _wait_all(w3, hs, "wrap pUSD")
        return hs[-1]
    tok = w3.eth.contract(address=target, abi=ERC20_ABI + [
        {"type": "function", "name": "mint", "stateMutability": "nonpayable",
         "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}], "outputs": []}])
    h = lane.send({"to": tok.address, "data": tok.encode_abi("mint", args=[to_checksum_address(to), amount])},
                  gas=GAS["mint"])
    wait_receipt(w3, h)
    return h


def wrap_as(w3: Any, world: World, holder: str, usdc: float, *, to: str | None = None) -> str:
    """On the fork: `holder` (e.g. the whale, impersonated) wraps its USDC.e into pUSD for `to` (default itself)
    through the onramp, as a user does on Polygon: approve the onramp, then `wrap`. Returns the wrap tx hash."""
    if not world.onramp:
        raise DeploymentError("this world has no CollateralOnramp; re-plant the fork")
    cheats = Cheats(w3)
    holder = to_checksum_address(holder)
    amount = int(round(usdc * USDC))
    usdce = w3.eth.contract(address=world.collateral, abi=C.load_artifact("MockCollateral").abi)
    ramp = w3.eth.contract(address=world.onramp, abi=C.load_artifact("MockCollateralRamp").abi)
    s = _Sender(w3, cheats, holder, dev_key_for(holder), world.chain_id)
    hs = []
    if usdce.functions.allowance(holder, world.onramp).call() < amount:
        hs.append(s.send(usdce.address, usdce.encode_abi("approve", args=[world.onramp, MAX_UINT]), GAS["approve"]))
    hs.append(s.send(ramp.address, ramp.encode_abi("wrap", args=[world.collateral, to_checksum_address(to or holder),
                                                                 amount]), GAS["wrap"]))
    _wait_all(w3, hs, "wrap pUSD")
    return hs[-1]


def world_fingerprint(world: World) -> str:
    """A short stable hash of a world's addresses and markets (for state records and logs)."""
    return hashlib.sha256(world.to_json(exclude={"planted_block"}).encode()).hexdigest()[:12]
