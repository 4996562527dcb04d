# pragma version ~=0.4.3
"""
@title MockCollateralRamp
@notice Polymarket's CollateralOnramp / CollateralOfframp on the offline fork (one source, planted twice):
        onramp  `wrap(address _asset, address _to, uint256 _amount)`: pulls `_amount` USDC.e from the caller
                (its allowance to the onramp) into pUSD, which mints `_amount` pUSD to `_to` (1:1);
        offramp `unwrap(address _asset, address _to, uint256 _amount)`: pulls `_amount` pUSD from the caller
                (its allowance to the offramp) into pUSD, which burns it and pays `_amount` USDC.e to `_to`.
@dev As ctf-exchange-v2 src/collateral/Collateral{On,Off}ramp.sol. A pull that fails reverts with Solady
     SafeTransferLib's error name `TransferFromFailed` (the real ramps do not bubble the token's reason).
     Per-asset pauses of the real ramps are not implemented. Immutables only: planting needs no initialize.
"""

interface ICollateralToken:
    def wrap(_asset: address, _to: address, _amount: uint256, _callbackReceiver: address, _data: Bytes[256]): nonpayable
    def unwrap(_asset: address, _to: address, _amount: uint256, _callbackReceiver: address, _data: Bytes[256]): nonpayable

COLLATERAL_TOKEN: immutable(address)
IS_ONRAMP: immutable(bool)


@deploy
def __init__(collateral_token: address, onramp: bool):
    COLLATERAL_TOKEN = collateral_token
    IS_ONRAMP = onramp


@external
@view
def collateralToken() -> address:
    return COLLATERAL_TOKEN


@internal
def _pull(token: address, sender: address, amount: uint256):
    ok: bool = False
    resp: Bytes[32] = b""
    ok, resp = raw_call(
        token,
        abi_encode(sender, COLLATERAL_TOKEN, amount, method_id=method_id("transferFrom(address,address,uint256)")),
        max_outsize=32, revert_on_failure=False)
    assert ok and (len(resp) == 0 or convert(resp, bool)), "TransferFromFailed"


@external
def wrap(_asset: address, _to: address, _amount: uint256):
    assert IS_ONRAMP, "not the onramp"
    self._pull(_asset, msg.sender, _amount)
    extcall ICollateralToken(COLLATERAL_TOKEN).wrap(_asset, _to, _amount, empty(address), b"")


@external
def unwrap(_asset: address, _to: address, _amount: uint256):
    assert not IS_ONRAMP, "not the offramp"
    self._pull(COLLATERAL_TOKEN, msg.sender, _amount)
    extcall ICollateralToken(COLLATERAL_TOKEN).unwrap(_asset, _to, _amount, empty(address), b"")
