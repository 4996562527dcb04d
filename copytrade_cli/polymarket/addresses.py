"""Polymarket contract addresses and ABIs (Polygon 137, Amoy 80002).

Addresses come from the installed `py_clob_client_v2.config` wherever the package has them (SPEC §8 says
to trust the package over the table); the ones it lacks (USDC.e) are written here with their source.
Exchange ABIs come from `py_clob_client_v2.order_utils.abi.abis`; the ERC-20 / ERC-1155 / CTF ABIs are
minimal hand-written subsets (only what copytrade calls or decodes).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from eth_utils import to_checksum_address

POLYGON = 137
AMOY = 80002

# NOTE: the package's `collateral` is pUSD (V2 collateral); bridged USDC.e is not in the package.
# USDC.e on Polygon: SPEC §8. Amoy test USDC: py-clob-client (V1) config for chain 80002.
_USDC_E = {
    POLYGON: "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174",
    AMOY: "0x9c4e1703476e875070ee25b56a58b008cfb8fa78",
}
# pUSD's CollateralOnramp / CollateralOfframp (LIVE-2026 §7, docs concepts/pusd; not in the packages' configs).
_COLLATERAL_ONRAMP = {POLYGON: "0x93070a847efEf7F70739046A929D47a521F5B8ee"}
_COLLATERAL_OFFRAMP = {POLYGON: "0x2957922Eb93258b93368531d39fAcCA3B4dC5854"}
# The Binance hot wallet the seed impersonates for USDC.e on a mainnet fork (SPEC §1 T2b).
DEFAULT_WHALE = "0xe7804c37c13166fF0b37F5aE0BB07A3aEbb6e245"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
BYTES32_ZERO = "0x" + "00" * 32


@dataclass(frozen=True)
class PolymarketAddresses:
    """Every Polymarket contract address copytrade needs on one chain (checksummed)."""

    chain_id: int
    usdc_e: str
    """Bridged USDC (USDC.e), the collateral the seed and our proxies hold."""
    pusd: str
    """pUSD, the V2 exchange's collateral (the package's `collateral`)."""
    ctf: str
    """ConditionalTokens (ERC-1155 outcome tokens)."""
    exchange_v1: str
    exchange_v2: str
    neg_risk_exchange_v1: str
    neg_risk_exchange_v2: str
    neg_risk_adapter: str
    exchange_v3: str | None = None
    collateral_onramp: str | None = None
    """CollateralOnramp: `wrap(asset, to, amount)` USDC.e -> pUSD 1:1."""
    collateral_offramp: str | None = None
    """CollateralOfframp: `unwrap(asset, to, amount)` pUSD -> USDC.e 1:1."""

    @property
    def exchanges(self) -> tuple[str, ...]:
        """All exchange addresses (V1, V2, neg-risk V1/V2, V3) whose fills detection should decode."""
        out = [self.exchange_v1, self.exchange_v2, self.neg_risk_exchange_v1, self.neg_risk_exchange_v2]
        if self.exchange_v3:
            out.append(self.exchange_v3)
        return tuple(out)


@lru_cache(maxsize=None)
def polymarket_addresses(chain_id: int = POLYGON) -> PolymarketAddresses:
    """The Polymarket addresses for `chain_id` (137 or 80002), read from py_clob_client_v2's config."""
    from py_clob_client_v2.config import get_contract_config

    try:
        cfg = get_contract_config(chain_id)
    except Exception as exc:  # the package raises a bare Exception for unknown chains
        raise ValueError(f"no Polymarket contracts known for chain id {chain_id}; use 137 or 80002") from exc
    cs = to_checksum_address
    return PolymarketAddresses(
        chain_id=chain_id,
        usdc_e=cs(_USDC_E[chain_id]),
        pusd=cs(cfg.collateral),
        ctf=cs(cfg.conditional_tokens),
        exchange_v1=cs(cfg.exchange),
        exchange_v2=cs(cfg.exchange_v2),
        neg_risk_exchange_v1=cs(cfg.neg_risk_exchange),
        neg_risk_exchange_v2=cs(cfg.neg_risk_exchange_v2),
        neg_risk_adapter=cs(cfg.neg_risk_adapter),
        exchange_v3=cs(cfg.exchange_v3) if getattr(cfg, "exchange_v3", None) else None,
        collateral_onramp=cs(_COLLATERAL_ONRAMP[chain_id]) if chain_id in _COLLATERAL_ONRAMP else None,
        collateral_offramp=cs(_COLLATERAL_OFFRAMP[chain_id]) if chain_id in _COLLATERAL_OFFRAMP else None,
    )


@dataclass(frozen=True)
class ChainContracts:
    """The contracts copytrade trades through on one chain: the one answer to "which collateral, CTF and
    exchange(s) here" for the supervisor, readiness, deploys and migrations."""

    collateral: str
    """What follower proxies and worker wallets hold and the Executor pulls and pushes: pUSD (PUSD_ADDRESS; on the
    fork the planted world's `exchange_collateral`)."""
    ctf: str
    """ConditionalTokens (the outcome tokens)."""
    exchange: str
    """The exchange our CLOB orders are signed for (V2)."""
    exchanges: tuple[str, ...]
    """Every exchange whose fills detection decodes."""
    spenders: tuple[str, ...]
    """The exchanges the Executor lets collateral and outcome tokens be approved to."""

    @property
    def targets(self) -> list[str]:
        """The Executor's and the factory's target allowlist: collateral + CTF."""
        return [self.collateral, self.ctf]


def chain_contracts(chain_id: int, world=None, settings=None) -> ChainContracts:
    """Which collateral, CTF and exchange(s) copytrade uses on `chain_id`: the planted world's on the local fork
    (pass its `World`), else Polymarket's, with collateral and CTF as configured (PUSD_ADDRESS, CTF_ADDRESS)."""
    if world is not None:
        return ChainContracts(world.exchange_collateral, world.ctf, world.exchange, (world.exchange,),
                              (world.exchange,))
    pm = polymarket_addresses(chain_id)
    collateral = settings.pusd_address if settings is not None else pm.pusd
    ctf = settings.ctf_address if settings is not None else pm.ctf
    return ChainContracts(collateral, ctf, pm.exchange_v2, pm.exchanges, (pm.exchange_v2, pm.neg_risk_exchange_v2))


@lru_cache(maxsize=None)
def exchange_v1_abi() -> list[dict]:
    """The CTF Exchange V1 ABI (functions, events, errors) shipped in py_clob_client_v2."""
    from py_clob_client_v2.order_utils.abi import abis

    return json.loads(abis._EXCHANGE_V1_ABI_JSON)


@lru_cache(maxsize=None)
def exchange_v2_abi() -> list[dict]:
    """The CTF Exchange V2 ABI (functions, events, errors) shipped in py_clob_client_v2."""
    from py_clob_client_v2.order_utils.abi import abis

    return json.loads(abis._EXCHANGE_V2_ABI_JSON)


def _fn(name: str, inputs: list[tuple[str, str]], outputs: list[str] | None = None,
        mutability: str = "nonpayable") -> dict:
    return {
        "type": "function", "name": name, "stateMutability": mutability,
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": "", "type": t} for t in (outputs or [])],
    }


def _event(name: str, inputs: list[tuple[str, str, bool]]) -> dict:
    return {
        "type": "event", "name": name, "anonymous": False,
        "inputs": [{"name": n, "type": t, "indexed": i} for n, t, i in inputs],
    }


ERC20_ABI: list[dict] = [
    _fn("name", [], ["string"], "view"),
    _fn("symbol", [], ["string"], "view"),
    _fn("decimals", [], ["uint8"], "view"),
    _fn("totalSupply", [], ["uint256"], "view"),
    _fn("balanceOf", [("account", "address")], ["uint256"], "view"),
    _fn("allowance", [("owner", "address"), ("spender", "address")], ["uint256"], "view"),
    _fn("transfer", [("to", "address"), ("amount", "uint256")], ["bool"]),
    _fn("transferFrom", [("sender", "address"), ("to", "address"), ("amount", "uint256")], ["bool"]),
    _fn("approve", [("spender", "address"), ("amount", "uint256")], ["bool"]),
    _event("Transfer", [("from", "address", True), ("to", "address", True), ("value", "uint256", False)]),
    _event("Approval", [("owner", "address", True), ("spender", "address", True), ("value", "uint256", False)]),
]

ERC1155_ABI: list[dict] = [
    _fn("balanceOf", [("account", "address"), ("id", "uint256")], ["uint256"], "view"),
    _fn("balanceOfBatch", [("accounts", "address[]"), ("ids", "uint256[]")], ["uint256[]"], "view"),
    _fn("isApprovedForAll", [("account", "address"), ("operator", "address")], ["bool"], "view"),
    _fn("setApprovalForAll", [("operator", "address"), ("approved", "bool")]),
    _fn("safeTransferFrom", [("from", "address"), ("to", "address"), ("id", "uint256"),
                             ("value", "uint256"), ("data", "bytes")]),
    _fn("safeBatchTransferFrom", [("from", "address"), ("to", "address"), ("ids", "uint256[]"),
                                  ("values", "uint256[]"), ("data", "bytes")]),
    _event("TransferSingle", [("operator", "address", True), ("from", "address", True), ("to", "address", True),
                              ("id", "uint256", False), ("value", "uint256", False)]),
    _event("TransferBatch", [("operator", "address", True), ("from", "address", True), ("to", "address", True),
                             ("ids", "uint256[]", False), ("values", "uint256[]", False)]),
    _event("ApprovalForAll", [("account", "address", True), ("operator", "address", True),
                              ("approved", "bool", False)]),
]

# The ConditionalTokens calls copytrade makes on top of ERC-1155 (Gnosis CTF signatures).
CTF_ABI: list[dict] = ERC1155_ABI + [
    _fn("prepareCondition", [("oracle", "address"), ("questionId", "bytes32"), ("outcomeSlotCount", "uint256")]),
    _fn("getConditionId", [("oracle", "address"), ("questionId", "bytes32"), ("outcomeSlotCount", "uint256")],
        ["bytes32"], "view"),
    _fn("getCollectionId", [("parentCollectionId", "bytes32"), ("conditionId", "bytes32"), ("indexSet", "uint256")],
        ["bytes32"], "view"),
    _fn("getPositionId", [("collateralToken", "address"), ("collectionId", "bytes32")], ["uint256"], "view"),
    _fn("getOutcomeSlotCount", [("conditionId", "bytes32")], ["uint256"], "view"),
    _fn("splitPosition", [("collateralToken", "address"), ("parentCollectionId", "bytes32"),
                          ("conditionId", "bytes32"), ("partition", "uint256[]"), ("amount", "uint256")]),
    _fn("mergePositions", [("collateralToken", "address"), ("parentCollectionId", "bytes32"),
                           ("conditionId", "bytes32"), ("partition", "uint256[]"), ("amount", "uint256")]),
    _fn("redeemPositions", [("collateralToken", "address"), ("parentCollectionId", "bytes32"),
                            ("conditionId", "bytes32"), ("indexSets", "uint256[]")]),
]
