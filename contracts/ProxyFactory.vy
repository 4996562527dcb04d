# pragma version ~=0.4.3
"""
@title ProxyFactory
@notice Creates exactly one Proxy per follower (EIP-1167 clone, CREATE2 salt = owner) and is
        the single source of authority every proxy consults: which executor may drive
        proxies, which token contracts they may call, and which proxies are paused.
@dev Proxies read `executor`, the target allowlist and their pause flag from here on each
     call, so `setExecutor` re-binds every proxy at once (migration to new Executor logic
     is one transaction), and pausing needs no call into the proxies.
     Each proxy's registration and pause flag share one storage word (`_state`), so the
     Executor's isProxy() check warms the slot that the proxy's own checkExecute() reads
     right after: one cold storage read per proxy per batch leg, not two.
"""

interface IProxy:
    def initialize(owner: address, factory: address): nonpayable
    def factory() -> address: view

MAX_TARGETS: constant(uint256) = 16
MAX_BATCH: constant(uint256) = 256

REGISTERED: constant(uint256) = 1
PAUSED: constant(uint256) = 2

# EIP-1167 init code around the implementation address, byte-for-byte what vyper's
# create_minimal_proxy_to deploys (vyper/builtins/functions.py: eip1167_bytecode).
CLONE_PREFIX: constant(Bytes[19]) = x"602d3d8160093d39f3363d3d373d3d3d363d73"
CLONE_SUFFIX: constant(Bytes[15]) = x"5af43d82803e903d91602b57fd5bf3"

event ProxyCreated:
    owner: indexed(address)
    proxy: indexed(address)
    index: uint256

event ExecutorChanged:
    previousExecutor: indexed(address)
    newExecutor: indexed(address)

event TargetSet:
    target: indexed(address)
    allowed: bool

event ProxyPauseSet:
    proxy: indexed(address)
    paused: bool

event AdminTransferred:
    previousAdmin: indexed(address)
    newAdmin: indexed(address)

IMPLEMENTATION: immutable(address)
INIT_CODE_HASH: immutable(bytes32)

admin: public(address)
executor: public(address)
isTarget: public(HashMap[address, bool])
proxyOf: public(HashMap[address, address])
proxyCount: public(uint256)
_proxies: HashMap[uint256, address]
_state: HashMap[address, uint256]   # bit 0: created here, bit 1: paused


@deploy
def __init__(executor_: address, proxyImplementation: address, targets: DynArray[address, MAX_TARGETS]):
    assert proxyImplementation.is_contract, "implementation has no code"
    # The implementation carries its factory as an immutable (see Proxy.vy): it must be ours.
    assert staticcall IProxy(proxyImplementation).factory() == self, "implementation bound to another factory"
    IMPLEMENTATION = proxyImplementation
    INIT_CODE_HASH = keccak256(concat(CLONE_PREFIX, convert(proxyImplementation, bytes20), CLONE_SUFFIX))
    self.admin = msg.sender
    log AdminTransferred(previousAdmin=empty(address), newAdmin=msg.sender)
    self.executor = executor_
    log ExecutorChanged(previousExecutor=empty(address), newExecutor=executor_)
    for t: address in targets:
        self.isTarget[t] = True
        log TargetSet(target=t, allowed=True)


@internal
@view
def _only_admin():
    assert msg.sender == self.admin, "only admin"


# ------------------------------------------------------------------ proxies
@internal
@pure
def _salt(owner: address) -> bytes32:
    # owner left-padded to 32 bytes (Python: bytes(12) + owner)
    return convert(convert(owner, uint256), bytes32)


@external
def createProxy(owner: address) -> address:
    """
    @notice Create `owner`'s proxy. Anyone may call (an operator onboarding a user, or the
            user): the proxy belongs to `owner` regardless of who paid the gas.
    """
    assert owner != empty(address), "zero owner"
    assert self.proxyOf[owner] == empty(address), "proxy exists"
    proxy: address = create_minimal_proxy_to(IMPLEMENTATION, salt=self._salt(owner))
    extcall IProxy(proxy).initialize(owner, self)
    self.proxyOf[owner] = proxy
    self._state[proxy] = REGISTERED
    index: uint256 = self.proxyCount
    self._proxies[index] = proxy
    self.proxyCount = index + 1
    log ProxyCreated(owner=owner, proxy=proxy, index=index)
    return proxy


@external
@view
def predictProxyAddress(owner: address) -> address:
    # CREATE2: keccak256(0xff ++ factory ++ salt ++ keccak256(init_code))[12:]
    h: bytes32 = keccak256(concat(x"ff", convert(self, bytes20), self._salt(owner), INIT_CODE_HASH))
    return convert(convert(h, uint256) & convert(max_value(uint160), uint256), address)


@external
@view
def proxyAt(index: uint256) -> address:
    # Enumeration, so operators can reach every user's proxy (migration, pause, audit).
    assert index < self.proxyCount, "index out of range"
    return self._proxies[index]


@external
@view
def isProxy(addr: address) -> bool:
    return self._state[addr] & REGISTERED != 0


@external
@view
def isPaused(proxy: address) -> bool:
    return self._state[proxy] & PAUSED != 0


@external
@view
def proxyImplementation() -> address:
    return IMPLEMENTATION


@external
@view
def checkExecute(caller: address, target: address) -> bool:
    """
    @notice Called by a proxy (msg.sender) before it executes for `caller`: reverts with the
            reason unless the proxy is ours and not paused, `caller` is the current executor
            and `target` is allow-listed.
    """
    st: uint256 = self._state[msg.sender]
    assert st & REGISTERED != 0, "not a proxy of this factory"
    assert st & PAUSED == 0, "proxy paused"
    assert caller == self.executor, "not the executor"
    assert self.isTarget[target], "target not allowed"
    return True


# ------------------------------------------------------------------ admin
@external
def setExecutor(newExecutor: address):
    # Re-binds every proxy at once. The admin is fully trusted here: a malicious executor
    # could drive proxies (within the target allowlist); owners can still always withdraw.
    self._only_admin()
    log ExecutorChanged(previousExecutor=self.executor, newExecutor=newExecutor)
    self.executor = newExecutor


@external
def setTargets(targets: DynArray[address, MAX_TARGETS], allowed: bool):
    self._only_admin()
    for t: address in targets:
        self.isTarget[t] = allowed
        log TargetSet(target=t, allowed=allowed)


@external
def setProxiesPaused(proxies: DynArray[address, MAX_BATCH], paused: bool):
    # Pause stops the executor path only; owners' withdrawals never check it.
    self._only_admin()
    for p: address in proxies:
        st: uint256 = self._state[p]
        assert st & REGISTERED != 0, "not a proxy of this factory"
        if paused:
            self._state[p] = st | PAUSED
        else:
            self._state[p] = st & ~PAUSED
        log ProxyPauseSet(proxy=p, paused=paused)


@external
def transferAdmin(newAdmin: address):
    self._only_admin()
    assert newAdmin != empty(address), "zero admin"
    log AdminTransferred(previousAdmin=self.admin, newAdmin=newAdmin)
    self.admin = newAdmin
