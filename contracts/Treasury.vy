# pragma version ~=0.4.3
"""
@title Treasury
@notice Receives copytrade fees (plain ERC-20 transfers to this address); the owner withdraws.
@dev Deliberately minimal: no allowlists, no pause. Anything sent here is the owner's.
     Ownership moves in two steps (transferOwnership proposes, acceptOwnership completes),
     like the Executor's, so a typo in the admin address cannot strand the fees.
"""

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable

event Withdrawn:
    token: indexed(address)
    to: indexed(address)
    amount: uint256

event OwnershipTransferStarted:
    previousOwner: indexed(address)
    newOwner: indexed(address)

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

owner: public(address)
pendingOwner: public(address)


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
    """@notice Step 1 of 2: propose `newOwner`, who has no power until acceptOwnership()."""
    assert msg.sender == self.owner, "only owner"
    assert newOwner != empty(address), "zero owner"
    self.pendingOwner = newOwner
    log OwnershipTransferStarted(previousOwner=self.owner, newOwner=newOwner)


@external
def acceptOwnership():
    """@notice Step 2 of 2: the proposed owner takes over."""
    assert msg.sender == self.pendingOwner, "only pending owner"
    log OwnershipTransferred(previousOwner=self.owner, newOwner=msg.sender)
    self.owner = msg.sender
    self.pendingOwner = empty(address)
