"""Plant Polymarket's deposit-wallet contracts on the local fork at the SDK's addresses (LIVE-2026 §6.1).

- the `DepositWallet` implementation at a fixed local address (it has no immutables: its runtime code is planted
  as compiled; live's implementation address is not needed by the SDK);
- the beacon at 0x7A18…fc3a (`implementation()` -> the implementation, an immutable);
- the factory at 0x0000…Cc07 (`BEACON()`, `deploy(owner)`, `execute(wallet, calls, nonce, deadline, sig)`), bound to
  the local relayer's gas account (dev account 5), the only account that may call it — as on live, where only
  Polymarket's relayer sends to the factory;
- gas for the relayer account;
- where Protocol V2's PositionManager has no code, an approvals-only ERC-1155 stand-in (`PositionManagerStandIn.vy`),
  so the SDK's `setup_trading_approvals()` (which reads and grants approvals there) works on the fork.

Beacon and factory carry immutables, so each is deployed once normally and its runtime code copied to the real
address (`anvil_setCode`); re-planting on a node that already has the same code is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.cheats import Cheats
from copytrade_cli.chain.lanes import TxLane
from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.errors import DeploymentError
from copytrade_cli.polymarket.wallets import DEPOSIT_WALLET_BEACON, DEPOSIT_WALLET_FACTORY
from copytrade_cli.polymarket.world import DEV_ADDRESSES, DEV_KEYS

RELAYER_GAS_ACCOUNT = 5
"""Dev account index of the local relayer's gas account (BRIEF: dev account 5)."""
RELAYER_KEY = DEV_KEYS[RELAYER_GAS_ACCOUNT]
RELAYER_ADDRESS = DEV_ADDRESSES[RELAYER_GAS_ACCOUNT]
# No live address is needed for the implementation (the SDK never reads it): a fixed local one, so every plant agrees.
DEPOSIT_WALLET_IMPLEMENTATION = to_checksum_address(keccak(text="copytrade/local-world/deposit-wallet-impl")[12:])
RELAYER_GAS = 1_000 * 10**18  # native balance the relayer account is topped up to
POSITION_MANAGER = "0x006F54F7f9A22e0000CC2AB60031000000ae9fEF"  # the SDK's `position_manager` (LIVE-2026 §9)

_cache: dict[tuple, bytes] = {}


@dataclass(frozen=True)
class DepositWalletContracts:
    """Where the deposit-wallet contracts sit on the fork and who relays for them."""

    factory: str
    beacon: str
    implementation: str
    relayer_account: str


def _runtime_with_immutables(w3: Any, lane: TxLane, name: str, args: tuple) -> bytes:
    art = C.load_artifact(name)
    key = (name, args, art.bytecode)
    if key not in _cache:
        data = w3.eth.contract(abi=art.abi, bytecode=art.bytecode).constructor(*args).data_in_transaction
        r = wait_receipt(w3, lane.send({"data": data}, gas=3_000_000), timeout=120)
        code = bytes(w3.eth.get_code(r["contractAddress"]))
        if not code:
            raise DeploymentError(f"deploying {name} left no code; check the node's code-size limit")
        _cache[key] = code
    return _cache[key]


def plant_deposit_wallets(w3: Any, deployer_key: str, *, relayer: str = RELAYER_ADDRESS,
                          factory: str = DEPOSIT_WALLET_FACTORY, beacon: str = DEPOSIT_WALLET_BEACON,
                          implementation: str = DEPOSIT_WALLET_IMPLEMENTATION) -> DepositWalletContracts:
    """Plant implementation, beacon and factory (bound to `relayer`) and give `relayer` gas; idempotent."""
    cheats = Cheats(w3)
    relayer = to_checksum_address(relayer)
    lane = TxLane(w3, Account.from_key(deployer_key), chain_id=int(w3.eth.chain_id))
    impl_code = bytes.fromhex(C.load_artifact("DepositWallet").runtime_bytecode[2:])
    wanted = {
        implementation: impl_code,
        beacon: _runtime_with_immutables(w3, lane, "DepositWalletBeacon", (to_checksum_address(implementation),)),
        factory: _runtime_with_immutables(w3, lane, "DepositWalletFactory", (to_checksum_address(beacon), relayer)),
    }
    stand_in = bytes.fromhex(C.load_artifact("PositionManagerStandIn").runtime_bytecode[2:])
    if bytes(w3.eth.get_code(POSITION_MANAGER)) in (b"", stand_in):  # never over a real one planted by others
        wanted[POSITION_MANAGER] = stand_in
    for addr, code in wanted.items():
        if bytes(w3.eth.get_code(addr)) != code:
            cheats.set_code(addr, code)
    if w3.eth.get_balance(relayer) < RELAYER_GAS // 10:
        cheats.set_balance(relayer, RELAYER_GAS)
    return DepositWalletContracts(factory=to_checksum_address(factory), beacon=to_checksum_address(beacon),
                                  implementation=to_checksum_address(implementation), relayer_account=relayer)
