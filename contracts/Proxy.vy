# pragma version ~=0.4.3
"""
@title Proxy
@notice A follower's wallet for copy trading. The follower (owner) deposits and can withdraw
        at any time; the copytrade Executor (the one the factory currently names) can make it
        call allow-listed token contracts, which is how workers move funds for trades.
@dev Deployed by ProxyFactory as an EIP-1167 minimal-proxy clone of one implementation
     (`create_minimal_proxy_to`, CREATE2 salt = owner): a proxy costs ~1/10 of a full deploy
     and its address is known before it exists. Clones start with empty storage and never run
     the constructor, hence the one-shot initialize() called by the factory in the same tx.

     Authority is read from the factory on every call (executor, target allowlist, pause
     flag) rather than copied into each proxy: re-binding the executor or pausing is a single
     factory write that applies to every proxy at once (see docs/contracts.md).

     The factory address is an immutable of the implementation (clones run the
     implementation's code, immutables included), not a storage slot in each clone: that
     saves a cold storage read (2.1k gas) on every executor leg and a 22k write per proxy.
     The implementation is therefore deployed for exactly one factory, whose constructor
     checks `implementation.factory() == self` (deploy_stack predicts the address).
"""

interface IFactory:
    def checkExecute(caller: address, target: address) -> bool: view

interface IERC20:
    def transfer(to: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, to: address, amount: uint256) -> bool: nonpayable
    def approve(spender: address, amount: uint256) -> bool: nonpayable

interface IERC1155:
    def safeTransferFrom(sender: address, to: address, id: uint256, amount: uint256, data: Bytes[32]): nonpayable
    def setApprovalForAll(operator: address, approved: bool): nonpayable

MAX_DATA: constant(uint256) = 1024
MAX_RET: constant(uint256) = 256

event Initialized:
    owner: indexed(address)
    factory: indexed(address)

event Deposited:
    token: indexed(address)
    sender: indexed(address)
    amount: uint256

event Withdrawn:
    token: indexed(address)
    to: indexed(address)
    id: uint256       # 0 for ERC-20
    amount: uint256

event OwnerApproval:
    token: indexed(address)
    spender: indexed(address)
    amount: uint256   # ERC-20 amount, or 0/1 for ERC-1155 setApprovalForAll

FACTORY: immutable(address)

owner: public(address)


@deploy
def __init__(factory_: address):
    # No storage writes: clones never run this; only FACTORY (in the code) carries over.
    assert factory_ != empty(address), "zero factory"
    FACTORY = factory_


@external
@view
def factory() -> address:
    return FACTORY


@external
def initialize(owner_: address, factory_: address):
    # One-shot (owner unset) and only by our factory, which creates and initializes the
    # clone in one transaction: no window for anyone else. The factory never calls this on
    # the implementation itself, so the implementation stays ownerless and unusable
    # (its execute() fails the factory's "not a proxy" check).
    assert msg.sender == FACTORY and factory_ == FACTORY, "only factory"
    assert self.owner == empty(address), "already initialized"
    assert owner_ != empty(address), "zero owner"
    self.owner = owner_
    log Initialized(owner=owner_, factory=factory_)


# ------------------------------------------------------------------ executor path
@external
def execute(target: address, data: Bytes[MAX_DATA]) -> Bytes[MAX_RET]:
    """
    @notice Call `target` with `data` as this proxy. Only the factory's current executor,
            only allow-listed targets, only while this proxy is not paused: the factory
            checks all three in one view call (and reverts with the reason).
    @dev What the call may do (which selectors, which recipients) is the Executor's job.
    """
    assert staticcall IFactory(FACTORY).checkExecute(msg.sender, target), "not authorized"
    return raw_call(target, data, max_outsize=MAX_RET)


# ------------------------------------------------------------------ owner path (never paused)
@internal
@view
def _only_owner():
    assert msg.sender == self.owner, "only owner"


@external
def withdraw(token: address, amount: uint256):
    # Deliberately no pause / allowlist check: the owner can always take funds out.
    self._only_owner()
    assert extcall IERC20(token).transfer(msg.sender, amount, default_return_value=True), "transfer failed"
    log Withdrawn(token=token, to=msg.sender, id=0, amount=amount)


@external
def withdraw1155(token: address, id: uint256, amount: uint256):
    self._only_owner()
    extcall IERC1155(token).safeTransferFrom(self, msg.sender, id, amount, b"")
    log Withdrawn(token=token, to=msg.sender, id=id, amount=amount)


@external
def approve(token: address, spender: address, amount: uint256):
    self._only_owner()
    assert extcall IERC20(token).approve(spender, amount, default_return_value=True), "approve failed"
    log OwnerApproval(token=token, spender=spender, amount=amount)


@external
def setApprovalForAll(token: address, operator: address, approved: bool):
    self._only_owner()
    extcall IERC1155(token).setApprovalForAll(operator, approved)
    log OwnerApproval(token=token, spender=operator, amount=convert(approved, uint256))


@external
def deposit(token: address, amount: uint256):
    # Anyone may fund anyone's proxy (e.g. an onboarding flow paying for a user); the funds
    # belong to the owner either way.
    assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "transferFrom failed"
    log Deposited(token=token, sender=msg.sender, amount=amount)


# ------------------------------------------------------------------ ERC-1155 receiver
# The original proxy lacked these, so every push of real CTF tokens into it reverted.
@external
def onERC1155Received(operator: address, sender: address, id: uint256, amount: uint256, data: Bytes[1024]) -> bytes4:
    return 0xf23a6e61


@external
def onERC1155BatchReceived(operator: address, sender: address, ids: DynArray[uint256, 256], amounts: DynArray[uint256, 256], data: Bytes[1024]) -> bytes4:
    return 0xbc197c81


@external
@pure
def supportsInterface(interface_id: bytes4) -> bool:
    # ERC-165 and ERC-1155 TokenReceiver
    return interface_id in [0x01ffc9a7, 0x4e2312e0]
