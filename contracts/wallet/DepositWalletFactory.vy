# pragma version ~=0.4.3
"""
@title DepositWalletFactory (local world)
@notice Deploys deposit wallets at the SDK's CREATE2 addresses and is the relayer's entry for WALLET batches.
        - `BEACON()` (0x49493a4d): the SDK asks it to pick the beacon derivation (LIVE-2026 §6.1).
        - `deploy(owner)`: CREATE2 of Solady's ERC-1967 beacon proxy with immutable args
          `abi.encode(factory, bytes32(owner))`, salt = keccak(args): exactly the init code the SDK hashes
          (polymarket/_internal/wallet.py), so the wallet lands at the address the SDK derived.
        - `execute(wallet, calls, nonce, deadline, signature)`: forwards a signed batch to the wallet, which
          checks nonce, deadline and signature itself.
@dev Both entries are the relayer's only (`RELAYER`, set at construction): live users never call the factory,
     the relayer does (the stricter reading, docs/live-assumptions.md). The wallet needs no initialisation
     (its owner is in the proxy's args), so a deployed wallet works from its first block.
"""

interface IDepositWallet:
    def execute(calls: DynArray[Call, MAX_CALLS], nonce: uint256, deadline: uint256, signature: Bytes[512]): nonpayable

MAX_CALLS: constant(uint256) = 32
MAX_DATA: constant(uint256) = 1024

struct Call:
    target: address
    value: uint256
    data: Bytes[MAX_DATA]

# Solady LibClone ERC-1967 beacon proxy with 64 bytes of immutable args: PUSH2 (0x52 + 64) ... PUSH20 beacon,
# then the constant tail (polymarket/_internal/wallet.py: _ERC1967_BEACON_PREFIX_BASE, _CONST3/2/1).
PROXY_PREFIX: constant(Bytes[10]) = x"6100923d8160233d3973"
PROXY_TAIL: constant(Bytes[87]) = x"60195155f3363d3d373d3d363d602036600436635c60da1b60e01b36527fa3f0ad74e5423aebfd80d3ef4346578335a9a72aeaee59ff6cb3582b35133d50545afa5036515af43d6000803e604d573d6000fd5b3d6000f3"

BEACON: public(immutable(address))
RELAYER: public(immutable(address))

event WalletDeployed:
    wallet: indexed(address)
    owner: indexed(address)


@deploy
def __init__(beacon: address, relayer: address):
    BEACON = beacon
    RELAYER = relayer


@internal
@view
def _init_code(owner: address) -> (Bytes[181], bytes32):
    args: Bytes[64] = abi_encode(self, owner)
    return concat(PROXY_PREFIX, convert(BEACON, bytes20), PROXY_TAIL, args), keccak256(args)


@external
@view
def predictWallet(owner: address) -> address:
    """@notice The address `deploy(owner)` creates (equals the SDK's beacon derivation)."""
    init_code: Bytes[181] = b""
    salt: bytes32 = empty(bytes32)
    init_code, salt = self._init_code(owner)
    digest: bytes32 = keccak256(concat(x"ff", convert(self, bytes20), salt, keccak256(init_code)))
    return convert(convert(convert(digest, uint256) & convert(max_value(uint160), uint256), uint160), address)


@external
def deploy(owner: address) -> address:
    """@notice Deploy `owner`'s deposit wallet (the relayer's WALLET-CREATE); reverts if it exists."""
    assert msg.sender == RELAYER, "DepositWalletFactory: only the relayer"
    assert owner != empty(address), "DepositWalletFactory: zero owner"
    init_code: Bytes[181] = b""
    salt: bytes32 = empty(bytes32)
    init_code, salt = self._init_code(owner)
    wallet: address = raw_create(init_code, salt=salt)
    log WalletDeployed(wallet=wallet, owner=owner)
    return wallet


@external
def execute(wallet: address, calls: DynArray[Call, MAX_CALLS], nonce: uint256, deadline: uint256,
            signature: Bytes[512]):
    """@notice Run a signed WALLET batch on `wallet` (the relayer's WALLET submit)."""
    assert msg.sender == RELAYER, "DepositWalletFactory: only the relayer"
    assert wallet.is_contract, "DepositWalletFactory: wallet not deployed"
    extcall IDepositWallet(wallet).execute(calls, nonce, deadline, signature)
