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

     Roles and delay (docs/contracts.md "Trust model"): the admin is handed over with a
     two-step transfer (transferAdmin proposes, acceptAdmin completes). Binding a new
     executor and allowing a new target are grants: queued, applied by anyone after
     ADMIN_DELAY, cancellable by the admin meanwhile (queueGrant / applyGrant /
     cancelGrant), so followers see a hostile executor coming and can withdraw first.
     Removing a target and pausing proxies stay immediate. The constructor's executor and
     targets are the initial wiring and need no delay: nothing is in a proxy yet.
"""

interface IProxy:
    def initialize(owner: address, factory: address): nonpayable
    def factory() -> address: view

MAX_TARGETS: constant(uint256) = 16
MAX_BATCH: constant(uint256) = 256

# What a queued grant does (queueGrant's `kind`).
GRANT_EXECUTOR: constant(uint256) = 1   # accounts = [new executor]
GRANT_TARGET: constant(uint256) = 2

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

event AdminTransferStarted:
    previousAdmin: indexed(address)
    newAdmin: indexed(address)

event AdminTransferred:
    previousAdmin: indexed(address)
    newAdmin: indexed(address)

event GrantQueued:
    id: indexed(bytes32)
    kind: uint256
    accounts: DynArray[address, MAX_TARGETS]
    eta: uint256

event GrantApplied:
    id: indexed(bytes32)
    kind: uint256
    accounts: DynArray[address, MAX_TARGETS]

event GrantCancelled:
    id: indexed(bytes32)
    kind: uint256
    accounts: DynArray[address, MAX_TARGETS]

IMPLEMENTATION: immutable(address)
INIT_CODE_HASH: immutable(bytes32)
ADMIN_DELAY: public(immutable(uint256))

admin: public(address)
pendingAdmin: public(address)
grantEta: public(HashMap[bytes32, uint256])   # queued grant id -> earliest apply time (0 = none)
executor: public(address)
isTarget: public(HashMap[address, bool])
proxyOf: public(HashMap[address, address])
proxyCount: public(uint256)
_proxies: HashMap[uint256, address]
_state: HashMap[address, uint256]   # bit 0: created here, bit 1: paused


@deploy
def __init__(executor_: address, proxyImplementation: address, targets: DynArray[address, MAX_TARGETS],
             adminDelay: uint256):
    assert proxyImplementation.is_contract, "implementation has no code"
    # The implementation carries its factory as an immutable (see Proxy.vy): it must be ours.
    assert staticcall IProxy(proxyImplementation).factory() == self, "implementation bound to another factory"
    IMPLEMENTATION = proxyImplementation
    ADMIN_DELAY = adminDelay
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
@internal
@pure
def _grant_id(kind: uint256, accounts: DynArray[address, MAX_TARGETS]) -> bytes32:
    assert kind == GRANT_EXECUTOR or kind == GRANT_TARGET, "bad kind"
    if kind == GRANT_EXECUTOR:
        assert len(accounts) == 1, "one executor"
    return keccak256(abi_encode(kind, accounts))


@external
@pure
def grantId(kind: uint256, accounts: DynArray[address, MAX_TARGETS]) -> bytes32:
    """@notice The id under which queueGrant(kind, accounts) is stored (grantEta) and logged."""
    return self._grant_id(kind, accounts)


@external
def queueGrant(kind: uint256, accounts: DynArray[address, MAX_TARGETS]) -> bytes32:
    """
    @notice Announce a grant (GRANT_EXECUTOR 1 with [executor], GRANT_TARGET 2) that anyone
            may apply ADMIN_DELAY seconds from now, unless the admin cancels it first.
    """
    self._only_admin()
    id: bytes32 = self._grant_id(kind, accounts)
    assert self.grantEta[id] == 0, "already queued"
    for a: address in accounts:
        assert a != empty(address), "zero address"
    eta: uint256 = block.timestamp + ADMIN_DELAY
    self.grantEta[id] = eta
    log GrantQueued(id=id, kind=kind, accounts=accounts, eta=eta)
    return id


@external
def applyGrant(kind: uint256, accounts: DynArray[address, MAX_TARGETS]):
    """
    @notice Apply a queued grant once its delay is over. Anyone may call: it was announced.
            GRANT_EXECUTOR re-binds every proxy at once (within the target allowlist; owners
            can still always withdraw).
    """
    id: bytes32 = self._grant_id(kind, accounts)
    eta: uint256 = self.grantEta[id]
    assert eta != 0, "not queued"
    assert block.timestamp >= eta, "delay not over"
    self.grantEta[id] = 0
    if kind == GRANT_EXECUTOR:
        log ExecutorChanged(previousExecutor=self.executor, newExecutor=accounts[0])
        self.executor = accounts[0]
    else:
        for t: address in accounts:
            self.isTarget[t] = True
            log TargetSet(target=t, allowed=True)
    log GrantApplied(id=id, kind=kind, accounts=accounts)


@external
def cancelGrant(kind: uint256, accounts: DynArray[address, MAX_TARGETS]):
    """@notice Drop a queued grant before anyone applies it."""
    self._only_admin()
    id: bytes32 = self._grant_id(kind, accounts)
    assert self.grantEta[id] != 0, "not queued"
    self.grantEta[id] = 0
    log GrantCancelled(id=id, kind=kind, accounts=accounts)


@external
def setTargets(targets: DynArray[address, MAX_TARGETS], allowed: bool):
    """@notice Removal only (immediate); adding a target is queueGrant(GRANT_TARGET, ...)."""
    self._only_admin()
    assert not allowed, "adding: queueGrant"
    for t: address in targets:
        self.isTarget[t] = False
        log TargetSet(target=t, allowed=False)


@external
def setProxiesPaused(proxies: DynArray[address, MAX_BATCH], paused: bool):
    # Pause stops the executor path only; owners' withdrawals never check it. Unpausing
    # restores what the proxy had, not more, so it needs no delay either.
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
    """@notice Step 1 of 2: propose `newAdmin`, who has no power until acceptAdmin()."""
    self._only_admin()
    assert newAdmin != empty(address), "zero admin"
    self.pendingAdmin = newAdmin
    log AdminTransferStarted(previousAdmin=self.admin, newAdmin=newAdmin)


@external
def acceptAdmin():
    """@notice Step 2 of 2: the proposed admin takes over."""
    assert msg.sender == self.pendingAdmin, "only pending admin"
    log AdminTransferred(previousAdmin=self.admin, newAdmin=msg.sender)
    self.admin = msg.sender
    self.pendingAdmin = empty(address)
