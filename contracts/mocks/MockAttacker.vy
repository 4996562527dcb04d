# pragma version ~=0.4.3
"""
@title MockAttacker (tests only)
@notice A hostile contract for the attack tests (tests/integration/test_contracts_attacks.py): it lies
        about being a proxy (factory() names whatever it is told, isProxy() says yes to everything),
        obeys anyone (execute / call), and re-enters a configured call once from onERC1155Received.
"""

claimedFactory: public(address)
claimedExecutor: public(address)
reenterTarget: public(address)
reenterData: public(Bytes[1024])
reentered: public(uint256)
reenterSucceeded: public(bool)


@external
def configure(claimedFactory: address, claimedExecutor: address, reenterTarget: address, reenterData: Bytes[1024]):
    self.claimedFactory = claimedFactory
    self.claimedExecutor = claimedExecutor
    self.reenterTarget = reenterTarget
    self.reenterData = reenterData
    self.reentered = 0
    self.reenterSucceeded = False


@external
@view
def factory() -> address:
    return self.claimedFactory


@external
@view
def isProxy(addr: address) -> bool:
    return True


@external
@view
def isPaused(addr: address) -> bool:
    return False


@external
@view
def executor() -> address:
    return self.claimedExecutor


@external
@view
def owner() -> address:
    return self


@external
def execute(target: address, data: Bytes[1024]) -> Bytes[256]:
    return raw_call(target, data, max_outsize=256)


@external
def call(target: address, data: Bytes[1024]) -> Bytes[256]:
    return raw_call(target, data, max_outsize=256)


@external
def onERC1155Received(operator: address, sender: address, id: uint256, amount: uint256, data: Bytes[1024]) -> bytes4:
    if self.reenterTarget != empty(address) and self.reentered == 0:
        self.reentered = 1
        self.reenterSucceeded = raw_call(self.reenterTarget, self.reenterData, revert_on_failure=False)
    return 0xf23a6e61


@external
@pure
def supportsInterface(interface_id: bytes4) -> bool:
    return interface_id in [0x01ffc9a7, 0x4e2312e0]
