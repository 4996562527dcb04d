# pragma version ~=0.4.3
"""
@title MockCollateralToken
@notice pUSD on the offline fork: a 6-decimal ERC-20 backed 1:1 by USDC.e it holds itself, minted only by
        `wrap` (callable by the wrappers: the CollateralOnramp and CollateralOfframp) and by the minters
        (the deployer, for planting). Polymarket's CollateralToken (ctf-exchange-v2 src/collateral) keeps the
        backing in a separate vault; here the token is its own vault.
@dev Planted with anvil_setCode: immutables (the USDC.e address) travel with the code, storage (owner, roles)
     is set by the one-shot initialize(owner). Revert reasons carry the real contract's error names
     (Solady OwnableRoles / ERC20: Unauthorized, InvalidAsset, InsufficientBalance, InsufficientAllowance).
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event Wrapped:
    caller: indexed(address)
    asset: indexed(address)
    to: indexed(address)
    amount: uint256

event Unwrapped:
    caller: indexed(address)
    asset: indexed(address)
    to: indexed(address)
    amount: uint256

event RolesUpdated:
    user: indexed(address)
    roles: indexed(uint256)

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable

MINTER_ROLE: constant(uint256) = 1
WRAPPER_ROLE: constant(uint256) = 2

USDCE: immutable(address)

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)
owner: public(address)
rolesOf: public(HashMap[address, uint256])


@deploy
def __init__(usdce: address):
    # Deliberately no storage writes: the same code must behave identically once planted.
    USDCE = usdce


@external
@view
def name() -> String[32]:
    return "Polymarket USD"


@external
@view
def symbol() -> String[8]:
    return "pUSD"


@external
@view
def decimals() -> uint8:
    return 6


@external
@view
def usdce() -> address:
    return USDCE


@external
def initialize(owner_: address):
    """One-shot (storage is empty after planting): the owner grants roles; it is also the first minter."""
    assert self.owner == empty(address), "InvalidInitialization"
    assert owner_ != empty(address), "zero owner"
    self.owner = owner_
    self.rolesOf[owner_] = MINTER_ROLE
    log RolesUpdated(user=owner_, roles=MINTER_ROLE)


@internal
def _set_role(who: address, role: uint256, on: bool):
    assert msg.sender == self.owner, "Unauthorized"
    roles: uint256 = self.rolesOf[who]
    roles = (roles | role) if on else (roles & ~role)
    self.rolesOf[who] = roles
    log RolesUpdated(user=who, roles=roles)


@external
def addMinter(who: address):
    self._set_role(who, MINTER_ROLE, True)


@external
def removeMinter(who: address):
    self._set_role(who, MINTER_ROLE, False)


@external
def addWrapper(who: address):
    self._set_role(who, WRAPPER_ROLE, True)


@external
def removeWrapper(who: address):
    self._set_role(who, WRAPPER_ROLE, False)


@external
@view
def minter() -> address:
    """The planting minter (the owner); kept so plant/fund code can tell an initialized token."""
    return self.owner


@internal
def _mint(to: address, amount: uint256):
    assert to != empty(address), "mint to zero"
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _burn(who: address, amount: uint256):
    bal: uint256 = self.balanceOf[who]
    assert bal >= amount, "InsufficientBalance"
    self.balanceOf[who] = bal - amount
    self.totalSupply -= amount
    log Transfer(sender=who, receiver=empty(address), value=amount)


@external
def mint(to: address, amount: uint256):
    assert self.rolesOf[msg.sender] & MINTER_ROLE != 0, "Unauthorized"
    self._mint(to, amount)


@external
def wrap(_asset: address, _to: address, _amount: uint256, _callbackReceiver: address, _data: Bytes[256]):
    """Mint `_amount` pUSD to `_to` for USDC.e the caller (a wrapper) already moved into this contract."""
    assert self.rolesOf[msg.sender] & WRAPPER_ROLE != 0, "Unauthorized"
    assert _asset == USDCE, "InvalidAsset"
    assert _callbackReceiver == empty(address), "callbacks unsupported"
    self._mint(_to, _amount)
    log Wrapped(caller=msg.sender, asset=_asset, to=_to, amount=_amount)


@external
def unwrap(_asset: address, _to: address, _amount: uint256, _callbackReceiver: address, _data: Bytes[256]):
    """Pay `_amount` USDC.e to `_to` and burn the pUSD the caller (a wrapper) already moved into this contract."""
    assert self.rolesOf[msg.sender] & WRAPPER_ROLE != 0, "Unauthorized"
    assert _asset == USDCE, "InvalidAsset"
    assert _callbackReceiver == empty(address), "callbacks unsupported"
    assert extcall IERC20(_asset).transfer(_to, _amount, default_return_value=True), "TransferFailed"
    self._burn(self, _amount)
    log Unwrapped(caller=msg.sender, asset=_asset, to=_to, amount=_amount)


@internal
def _transfer(sender: address, to: address, amount: uint256):
    assert to != empty(address), "transfer to zero"
    bal: uint256 = self.balanceOf[sender]
    assert bal >= amount, "InsufficientBalance"
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
    # max_value means "infinite approval": not decremented (as Solady's ERC20).
    if allowed != max_value(uint256):
        assert allowed >= amount, "InsufficientAllowance"
        self.allowance[sender][msg.sender] = allowed - amount
    self._transfer(sender, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True
