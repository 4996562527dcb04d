# pragma version ~=0.4.3
"""
@title Treasury
@notice Receives copytrade fees (plain ERC-20 transfers to this address); the owner withdraws.
@dev Deliberately minimal: no allowlists, no pause. Anything sent here is the owner's.
"""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable

event Withdrawn:
    token: indexed(address)
    to: indexed(address)
    amount: uint256

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

owner: public(address)


@deploy
def __init__():
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)


@external
def withdraw(token: address, to: address, amount: uint256):
    assert msg.sender == self.owner, "only owner"
    assert to != empty(address), "zero recipient"
    assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "transfer failed"
    log Withdrawn(token=token, to=to, amount=amount)


@external
def transferOwnership(newOwner: address):
    assert msg.sender == self.owner, "only owner"
    assert newOwner != empty(address), "zero owner"
    log OwnershipTransferred(previousOwner=self.owner, newOwner=newOwner)
    self.owner = newOwner
