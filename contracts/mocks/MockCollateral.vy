# pragma version ~=0.4.3
"""
@title MockCollateral
@notice 6-decimal ERC-20 standing in for USDC.e and pUSD on the offline fork.
@dev Built to be "planted": the fork deploys this normally, reads the runtime code and
     anvil_setCode's it at the real token address. Immutables (name, symbol) live in the
     runtime code and survive planting; storage does not (the constructor never ran there).
     So everything that must live in storage (the minter) is set by a one-shot initialize().
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event MinterSet:
    minter: indexed(address)

NAME: immutable(String[32])
SYMBOL: immutable(String[16])

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)
minter: public(address)


@deploy
def __init__(name_: String[32], symbol_: String[16]):
    # Deliberately no storage writes: the same code must behave identically once planted.
    NAME = name_
    SYMBOL = symbol_


@external
@view
def name() -> String[32]:
    return NAME


@external
@view
def symbol() -> String[16]:
    return SYMBOL


@external
@view
def decimals() -> uint8:
    return 6


@external
def initialize(minter_: address):
    # One-shot: only while no minter is set. Whoever plants the code calls this in the
    # same setup script, so front-running is not a concern on a local fork.
    assert self.minter == empty(address), "already initialized"
    assert minter_ != empty(address), "zero minter"
    self.minter = minter_
    log MinterSet(minter=minter_)


@external
def mint(to: address, amount: uint256):
    assert msg.sender == self.minter, "not minter"
    assert to != empty(address), "mint to zero"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _transfer(sender: address, to: address, amount: uint256):
    assert to != empty(address), "transfer to zero"
    bal: uint256 = self.balanceOf[sender]
    assert bal >= amount, "ERC20: transfer amount exceeds balance"
    self.balanceOf[sender] = bal - amount
    self.balanceOf[to] += amount
    log Transfer(sender=sender, receiver=to, value=amount)


@external
def transfer(to: address, amount: uint256) -> bool:
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(sender: address, to: address, amount: uint256) -> bool:
    allowed: uint256 = self.allowance[sender][msg.sender]
    # max_value means "infinite approval": not decremented (saves a storage write per pull).
    if allowed != max_value(uint256):
        assert allowed >= amount, "ERC20: transfer amount exceeds allowance"
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True
