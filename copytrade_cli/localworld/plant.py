"""Plant an offline Polymarket on a local node: the mocks at the real mainnet addresses, funded
accounts, binary markets with market-maker inventory, and every approval the trades need.

Fast by construction: every transaction is signed locally and sent back-to-back on per-sender nonce
lanes; receipts are awaited once per stage (three stages in all). Re-running on a node that is
already planted skips what is in place (code, initialization, operators, conditions, approvals)
and only tops balances up to their targets.
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterable, Literal, Sequence

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.errors import DeploymentError
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
GAS = {"initialize": 120_000, "addOperator": 80_000, "mint": 90_000, "approve": 70_000,
       "setApprovalForAll": 70_000, "prepareCondition": 120_000, "splitPosition": 400_000}

MARKET_TITLES = (
    "Will it rain in Lisbon tomorrow?",
    "Will BTC close above $100k this week?",
    "Will the home team win the final?",
    "Will the bill pass the senate vote?",
    "Will the launch happen on schedule?",
)

_runtime_cache: dict[tuple, bytes] = {}


def question_id(index: int) -> bytes:
    """The deterministic question id of local market `index` (same on every plant)."""
    return keccak(text=f"copytrade/local-market/{index}")


def _title(i: int) -> str:
    base = MARKET_TITLES[i % len(MARKET_TITLES)]
    return base if i < len(MARKET_TITLES) else f"{base} (#{i})"


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
        h = self.w3.eth.send_transaction({"from": self.address, "to": to, "data": data, "gas": gas})
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
    n_markets: int = 3,
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
    """Plant USDC.e, pUSD, the CTF and the V2 exchange at their Polygon addresses and set up trading.

    Amounts are whole USDC / shares. The market maker ends with `mm_usdc` collateral plus `mm_shares`
    of each outcome of every market; each leader with `leader_usdc` plus `leader_shares` of each outcome
    (so leader SELLs work); the whale with `whale_usdc` USDC.e and pUSD. Leaders that are not anvil dev
    accounts are set up by impersonation. `exchange_collateral` picks what the planted exchange settles
    in and backs the CTF positions: pUSD by default, as the real V2 exchange (followers, proxies and worker
    wallets hold pUSD; the whale holds USDC.e to wrap), or "usdc" for the pre-pUSD world. On a fork of the live chain the real contracts are already
    there, so planting mocks over them is refused unless `allow_on_fork`.
    """
    cheats = Cheats(w3)
    upstream = _forked_from(cheats)
    if upstream and not allow_on_fork:
        raise DeploymentError(f"this node forks {upstream}: Polymarket's real contracts are already there, so "
                              "planting mocks over them would break them; plant only on the offline fork")
    chain_id = int(w3.eth.chain_id)
    addrs = polymarket_addresses(chain_id if chain_id in (137, 80002) else 137)
    deployer = Account.from_key(deployer_key)
    mm_key = market_maker_key or DEV_KEYS[MARKET_MAKER]
    mm = Account.from_key(mm_key).address
    ex_op = to_checksum_address(exchange_operator or DEV_ADDRESSES[EXCHANGE_OPERATOR])
    tr_op = to_checksum_address(trade_operator or DEV_ADDRESSES[TRADE_OPERATOR])
    leaders = [to_checksum_address(a) for a in (leaders or [SEED_LEADER])]
    whale = to_checksum_address(whale)
    collateral_addr = addrs.usdc_e if exchange_collateral == "usdc" else addrs.pusd
    lane = TxLane(w3, deployer, chain_id=chain_id)

    # ---- stage 1: code at the real addresses --------------------------------------------------
    specs = [
        ("MockCollateral", ("USD Coin (PoS)", "USDC.e")),
        ("MockCollateral", ("Polymarket USD", "pUSD")),
        ("MockConditionalTokens", ()),
        ("MockExchangeV2", (collateral_addr, addrs.ctf)),
    ]
    targets = [addrs.usdc_e, addrs.pusd, addrs.ctf, addrs.exchange_v2]
    existing = [bytes(w3.eth.get_code(a)) for a in targets]
    cached = [_runtime_cache.get(_cache_key(*s)) for s in specs]
    if any(not code or code != want for code, want in zip(existing, cached)):
        codes = _planted_code(w3, lane, specs)
        for addr, have, want in zip(targets, existing, codes):
            if have != want:
                cheats.set_code(addr, want)

    erc20 = w3.eth.contract(abi=C.load_artifact("MockCollateral").abi)
    ctf = w3.eth.contract(address=addrs.ctf, abi=C.load_artifact("MockConditionalTokens").abi)
    ex = w3.eth.contract(address=addrs.exchange_v2, abi=C.load_artifact("MockExchangeV2").abi)
    tokens = {a: w3.eth.contract(address=a, abi=erc20.abi) for a in (addrs.usdc_e, addrs.pusd)}

    # ---- stage 2: deployer: initialize, operators, conditions, mints -----------------------------
    sent: list[str] = []

    def dsend(contract: Any, fn: str, *args: Any) -> None:
        sent.append(lane.send({"to": contract.address, "data": contract.encode_abi(fn, args=list(args))},
                              gas=GAS[fn]))

    for tok in tokens.values():
        if int(tok.functions.minter().call(), 16) == 0:
            dsend(tok, "initialize", deployer.address)
    if not ex.functions.initialized().call():
        dsend(ex, "initialize", deployer.address)
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
        title = _title(i)
        markets.append(Market(condition_id="0x" + bytes(cid).hex(), question_id="0x" + qid.hex(),
                              slug=_slug(title, i), title=title, token_ids=[str(ids[0]), str(ids[1])]))
        token_ids.append(ids)

    # Who needs what: collateral targets and outcome-token inventory per market.
    holders = [(mm, mm_key, mm_usdc, mm_shares)] + [(a, dev_key_for(a), leader_usdc, leader_shares) for a in leaders]
    splits: dict[str, list[tuple[bytes, int]]] = {}
    coll = tokens[collateral_addr]
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
            dsend(coll, "mint", who, want - bal)
    for tok in tokens.values():
        bal = tok.functions.balanceOf(whale).call()
        if bal < whale_usdc * USDC:
            dsend(tok, "mint", whale, whale_usdc * USDC - bal)
    for who in dict.fromkeys([whale, mm, ex_op, tr_op, *leaders]):
        if w3.eth.get_balance(who) < GAS_FLOOR:
            cheats.set_balance(who, 10 * GAS_FLOOR)
    _wait_all(w3, sent, "initialize / conditions / mints")

    # ---- stage 3: participants: approvals and splits (each on its own lane) -----------------------
    sent = []
    for who, key, _usd, _shares in holders:
        s = _Sender(w3, cheats, who, key, chain_id)

        def psend(contract: Any, fn: str, *args: Any) -> None:
            sent.append(s.send(contract.address, contract.encode_abi(fn, args=list(args)), GAS[fn]))

        for spender in (addrs.exchange_v2, addrs.ctf):
            if coll.functions.allowance(who, spender).call() < MAX_UINT // 2:
                psend(coll, "approve", spender, MAX_UINT)
        if not ctf.functions.isApprovedForAll(who, addrs.exchange_v2).call():
            psend(ctf, "setApprovalForAll", addrs.exchange_v2, True)
        for cid, amount in splits[who]:
            psend(ctf, "splitPosition", collateral_addr, ZERO32, cid, [1, 2], amount)
    _wait_all(w3, sent, "approvals / splits")
    wallets = plant_deposit_wallets(w3, deployer_key)  # deposit-wallet factory/beacon + relayer gas (H-wallet)

    world = World(
        chain_id=chain_id, collateral=addrs.usdc_e, pusd=addrs.pusd, exchange_collateral=collateral_addr,
        ctf=addrs.ctf, exchange=addrs.exchange_v2, exchange_operator=ex_op, trade_operator=tr_op,
        market_maker=mm, whale=whale, deployer=deployer.address, leaders=leaders, markets=markets,
        deposit_wallet_factory=wallets.factory, deposit_wallet_beacon=wallets.beacon,
        relayer_account=wallets.relayer_account, planted_block=int(w3.eth.block_number),
    )
    return world


def fund_collateral(w3: Any, world: World, deployer_key: str, to: str, usdc: float, *,
                    token: str | None = None) -> str:
    """Mint `usdc` of the world's collateral (or `token`) to `to` (the deployer is the minter); returns the tx hash."""
    lane = TxLane(w3, Account.from_key(deployer_key), chain_id=world.chain_id)
    tok = w3.eth.contract(address=token or world.exchange_collateral, abi=ERC20_ABI + [
        {"type": "function", "name": "mint", "stateMutability": "nonpayable",
         "inputs": [{"name": "to", "type": "address"}, {"name": "amount", "type": "uint256"}], "outputs": []}])
    h = lane.send({"to": tok.address, "data": tok.encode_abi("mint", args=[to_checksum_address(to),
                                                                          int(round(usdc * USDC))])},
                  gas=GAS["mint"])
    wait_receipt(w3, h)
    return h


def world_fingerprint(world: World) -> str:
    """A short stable hash of a world's addresses and markets (for state records and logs)."""
    return hashlib.sha256(world.to_json(exclude={"planted_block"}).encode()).hexdigest()[:12]
