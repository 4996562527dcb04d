# pragma version ~=0.4.3
"""
@title Mock1271Wallet
@notice A minimal ERC-1271 smart wallet for the exchange's POLY_1271 tests: `isValidSignature(hash, sig)` answers
        0x1626ba7e iff `sig` is the owner's plain 65-byte ECDSA signature of `hash`. It holds collateral and
        outcome tokens (ERC-1155 receiver) and lets its owner call `approve` / `setApprovalForAll` through `call`.
@dev Test-only. Polymarket's deposit wallet (contracts/wallet/, H-wallet) validates the SDK's 317-byte
     TypedDataSign wrapper instead; the exchange only sees the 1271 answer either way.
"""

OWNER: immutable(address)


@deploy
def __init__(owner: address):
    OWNER = owner


@external
@view
def owner() -> address:
    return OWNER


@external
@view
def isValidSignature(digest: bytes32, signature: Bytes[512]) -> bytes4:
    if len(signature) != 65:
        return 0xffffffff
    r: uint256 = convert(extract32(signature, 0), uint256)
    s: uint256 = convert(extract32(signature, 32), uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if ecrecover(digest, v, r, s) == OWNER:
        return 0x1626ba7e
    return 0xffffffff


@external
def call(target: address, data: Bytes[1024]):
    assert msg.sender == OWNER, "not owner"
    raw_call(target, data)


@external
def onERC1155Received(operator: address, sender: address, id: uint256, amount: uint256, data: Bytes[1024]) -> bytes4:
    return 0xf23a6e61


@external
def onERC1155BatchReceived(operator: address, sender: address, ids: DynArray[uint256, 128], amounts: DynArray[uint256, 128], data: Bytes[1024]) -> bytes4:
    return 0xbc197c81
