# pragma version ~=0.4.3
"""
@title DepositWalletBeacon (local world)
@notice The beacon every deposit-wallet proxy asks for its implementation (`implementation()`, 0x5c60da1b).
@dev The implementation is an immutable: the runtime code planted at the beacon's mainnet address
     (anvil_setCode) carries it, so the plant needs no storage writes. Live's beacon is upgradeable by
     Polymarket; upgrades are out of scope for the local world.
"""

IMPLEMENTATION: immutable(address)


@deploy
def __init__(implementation: address):
    IMPLEMENTATION = implementation


@external
@view
def implementation() -> address:
    """@notice The DepositWallet implementation the proxies delegate to."""
    return IMPLEMENTATION
