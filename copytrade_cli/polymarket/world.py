"""The offline Polymarket "world" planted on a local fork: addresses, roles and markets, as one JSON-able record.

It lives here, beside the live chains' addresses (`addresses.py`), because it is the same kind of value: which
Polymarket contracts sit at which addresses on this chain. `localworld/` plants and serves it; `chain/` reads it
from the node record to know the fork's collateral, CTF and exchange (so `chain` never imports `localworld`).

The local accounts are anvil's (and hardhat's) public dev accounts from the well-known mnemonic
`test test ... junk`; their keys are public knowledge, listed here so the fork can sign without any
secret. They are never printed, and `World` itself stores addresses only.
"""
from __future__ import annotations

from typing import Annotated

from eth_account import Account
from eth_utils import is_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# anvil / hardhat dev accounts 0..9 (mnemonic "test test test test test test test test test test test junk").
DEV_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)
DEV_ADDRESSES: tuple[str, ...] = tuple(Account.from_key(k).address for k in DEV_KEYS)

# Which dev account plays which part on the fork.
DEPLOYER = 0  # operator / deployer; also the CTF oracle and the collateral minter
LEADER = 1  # the seed's leader 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
MARKET_MAKER = 2
EXCHANGE_OPERATOR = 3  # settles CLOB matches (the local CLOB server's lane)
TRADE_OPERATOR = 4  # settles the triggered leader trades (own nonce lane, so it never races the CLOB server)

SEED_LEADER = DEV_ADDRESSES[LEADER]


def dev_key_for(address: str) -> str | None:
    """The public dev key of `address` if it is one of the 10 anvil dev accounts, else None."""
    try:
        idx = [a.lower() for a in DEV_ADDRESSES].index(str(address).lower())
    except ValueError:
        return None
    return DEV_KEYS[idx]


def _checksum(value: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ValueError(f"not an address: {value!r}")
    return to_checksum_address(value)


Address = Annotated[str, AfterValidator(_checksum)]


class Market(BaseModel):
    """One binary market prepared on the local CTF (ids as the CLOB and Data API spell them)."""

    model_config = ConfigDict(frozen=True)

    condition_id: str
    """0x + 64 hex."""
    question_id: str
    """0x + 64 hex."""
    slug: str
    title: str
    outcomes: list[str] = Field(default_factory=lambda: ["Yes", "No"])
    token_ids: list[str]
    """ERC-1155 position ids, decimal strings, in `outcomes` order."""
    tick_size: str = "0.01"
    """The market's tick (one of 0.1, 0.01, 0.005, 0.0025, 0.001, 0.0001; LIVE-2026 §5.4)."""
    neg_risk: bool = False
    """Neg-risk market: orders are signed for and settled on the neg-risk exchange."""
    min_order_size: int = 5
    """The CLOB's minimum order size in shares (`min_order_size` of /book)."""
    category: str = "other"
    """Fee category (LIVE-2026 §8): crypto, sports, finance, politics, economics, culture, weather, geopolitics,
    tech, mentions, other."""
    fee_rate: float = 0.0
    """Taker fee rate `r` of `fee = C x r x (p(1-p))^e` (`fd.r` of /clob-markets); 0 = no fee."""
    fee_exponent: int = 1
    """Fee exponent `e` (`fd.e` of /clob-markets)."""
    tick_changes: list[tuple[int, str]] = Field(default_factory=list)
    """Scheduled tick changes on the fork: (seconds after the CLOB starts, new tick)."""

    def token_id(self, outcome: str | int) -> str:
        """The token id of an outcome, by name ("Yes") or index (0)."""
        return self.token_ids[self.outcome_index(outcome)]

    def outcome_index(self, outcome: str | int) -> int:
        """The index of an outcome given by name (case-insensitive) or index."""
        if isinstance(outcome, int):
            if not 0 <= outcome < len(self.outcomes):
                raise ValueError(f"outcome index {outcome} out of range for {self.slug}")
            return outcome
        for i, name in enumerate(self.outcomes):
            if name.lower() == str(outcome).lower():
                return i
        raise ValueError(f"market {self.slug} has no outcome {outcome!r}; it has {self.outcomes}")


class World(BaseModel):
    """Everything planted by `plant_polymarket`: contract addresses, role accounts, markets."""

    chain_id: int = 137
    collateral: Address
    """USDC.e: what the seed's whale and our proxies hold."""
    pusd: Address
    """pUSD (V2 collateral), planted too."""
    exchange_collateral: Address
    """The ERC-20 the planted exchange settles in and the CTF positions are backed by."""
    ctf: Address
    exchange: Address
    """CTF Exchange V2."""
    neg_risk_exchange: Address | None = None
    """Neg-risk CTF Exchange V2 (orders of neg-risk markets are signed for it)."""
    onramp: Address | None = None
    """CollateralOnramp: `wrap(asset, to, amount)` USDC.e -> pUSD 1:1."""
    offramp: Address | None = None
    """CollateralOfframp: `unwrap(asset, to, amount)` pUSD -> USDC.e 1:1."""
    deposit_wallet_factory: Address | None = None
    """Polymarket's deposit-wallet factory (CREATE2 beacon proxies, LIVE-2026 §6.1)."""
    deposit_wallet_beacon: Address | None = None
    relayer_account: Address | None = None
    """The local relayer's own gas account (it pays for WALLET-CREATE and WALLET batches)."""
    exchange_operator: Address
    trade_operator: Address
    market_maker: Address
    whale: Address
    deployer: Address
    leaders: list[Address] = Field(default_factory=lambda: [SEED_LEADER])
    markets: list[Market] = Field(default_factory=list)
    planted_block: int = 0
    """The block height right after planting (a good `from_block` for log followers)."""

    @property
    def leader(self) -> str:
        """The first (seed) leader."""
        return self.leaders[0]

    def to_json(self, **kwargs) -> str:
        """Serialize to JSON (addresses only; no keys)."""
        return self.model_dump_json(**kwargs)

    @classmethod
    def from_json(cls, data: str | bytes) -> "World":
        """Parse a World written by `to_json`."""
        return cls.model_validate_json(data)

    def market(self, index_or_id: int | str) -> Market:
        """A market by list index, condition id or slug."""
        if isinstance(index_or_id, int):
            return self.markets[index_or_id]
        key = str(index_or_id).lower()
        for m in self.markets:
            if m.condition_id.lower() == key or m.slug.lower() == key:
                return m
        raise KeyError(f"no market {index_or_id!r} in this world")

    def token_index(self) -> dict[str, tuple[Market, int]]:
        """Map token id (decimal string) -> (market, outcome index)."""
        return {tid: (m, i) for m in self.markets for i, tid in enumerate(m.token_ids)}

    def market_for_token(self, token_id: int | str) -> tuple[Market, int] | None:
        """The market and outcome index holding `token_id`, or None."""
        return self.token_index().get(str(int(token_id)) if str(token_id).isdigit() else str(token_id))
