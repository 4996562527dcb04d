# pragma version ~=0.4.3
"""
@title Executor
@notice The only door through which copytrade workers touch followers' proxies.
@dev Two allowlists, both owner-managed:
       - workers:   hot signer keys of the worker fleet, the only callers of execute/batches,
                    each registered together with its trading wallet (its Polymarket deposit
                    wallet, LIVE-2026 §6: the contract that holds the worker's pUSD and outcome
                    tokens and makes its CLOB orders; = the worker itself for a plain-EOA worker);
       - targets:   token contracts a proxy may be made to call (collateral(s), the CTF);
     plus trusted factories (whose proxies the batch functions accept) and a global pause.

     Roles and delay (docs/contracts.md "Trust model"): the owner is meant to be a cold
     admin key or multisig, handed over with a two-step transfer (transferOwnership
     proposes, acceptOwnership by the proposed owner completes; the same semantics as
     snekmate's ownable_2step, under the camelCase names the rest of the ABI uses).
     Every grant of power (a worker, a target, a trusted factory) takes effect only
     ADMIN_DELAY seconds after it was queued (queueGrant / applyGrant, cancelGrant);
     revocations and the pause are immediate, since they only take power away. The
     deployer's initial wiring is immediate during a one-time setup phase that ends with
     seal() or with the first ownership proposal, whichever comes first.

     Worker wallets: a worker grant names (worker, wallet) pairs (addWorkers / queueGrant(GRANT_WORKER)
     take them flattened: [worker1, wallet1, worker2, wallet2, ...]), so a wallet is power granted
     like the worker itself (setup phase or ADMIN_DELAY). One wallet belongs to one worker at a time.
     Every batch moves funds between the proxies and the CALLING worker's wallet only:
     pullCollateral / pullOutcome pay walletOf[msg.sender]; pushOutcome / pushCollateral spend from
     walletOf[msg.sender] (which approved this Executor for the CTF and pUSD at fleet setup).

     Narrowing (SPEC §2): a worker cannot make a proxy do arbitrary calls. `execute`
     decodes the calldata and accepts only
       ERC-20   transfer(to, amt)                    to = a registered worker's wallet or the proxy's owner
       ERC-1155 safeTransferFrom(proxy, to, id, amt, data)  to = a registered worker's wallet or the proxy's owner
     (approve / setApprovalForAll were removed with their spender allowlist: nothing
     off-chain used them, and an approval is the one call that outlives the transaction)
     so a stolen worker key cannot send a proxy's funds to an arbitrary address (see
     docs/contracts.md for what it still can do).

     Proxy rule for every leg (execute and all batches): `proxy` must be a proxy of a
     factory this Executor trusts: F = proxy.factory(), isFactory[F] and F.isProxy(proxy).
     (The proxy independently checks that its factory names this executor, the target is
     allow-listed there and the proxy is not paused.) Checking per leg keeps events honest
     and pushes from turning into a generic transfer router; it costs ~1.5k gas per leg
     because the proxy account and the factory's per-proxy slot are warmed for the call
     that follows anyway.

     The Executor holds no funds. The approvals it receives (worker wallets' approvals, used by
     pushCollateral / pushOutcome) are only ever spent from walletOf[msg.sender], i.e. a worker
     can only spend its own wallet's approval.
"""

interface IProxy:
    def execute(target: address, data: Bytes[MAX_DATA]) -> Bytes[MAX_RET]: nonpayable
    def owner() -> address: view
    def factory() -> address: view

interface IFactory:
    def isProxy(addr: address) -> bool: view

interface IERC20:
    def transferFrom(sender: address, to: address, amount: uint256) -> bool: nonpayable

interface IERC1155:
    def safeTransferFrom(sender: address, to: address, id: uint256, amount: uint256, data: Bytes[32]): nonpayable

MAX_DATA: constant(uint256) = 1024
MAX_RET: constant(uint256) = 256
MAX_WORKERS: constant(uint256) = 256
MAX_LIST: constant(uint256) = 16
MAX_BATCH: constant(uint256) = 256

SEL_TRANSFER: constant(bytes4) = method_id("transfer(address,uint256)", output_type=bytes4)
SEL_SAFE_TRANSFER_FROM: constant(bytes4) = method_id("safeTransferFrom(address,address,uint256,uint256,bytes)", output_type=bytes4)

# What a queued grant adds (queueGrant's `kind`).
GRANT_WORKER: constant(uint256) = 1
GRANT_TARGET: constant(uint256) = 2
GRANT_FACTORY: constant(uint256) = 3

# legStatus codes: why a proxy would make a batch revert (0 = it would not).
LEG_OK: constant(uint256) = 0
LEG_NO_CODE: constant(uint256) = 1
LEG_UNTRUSTED_FACTORY: constant(uint256) = 2
LEG_NOT_A_PROXY: constant(uint256) = 3
LEG_PAUSED: constant(uint256) = 4
LEG_OTHER_EXECUTOR: constant(uint256) = 5

# ---- events ----
event OwnershipTransferStarted:
    previousOwner: indexed(address)
    newOwner: indexed(address)

event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

event Sealed:
    owner: indexed(address)

event GrantQueued:
    id: indexed(bytes32)
    kind: uint256
    accounts: DynArray[address, MAX_WORKERS]
    eta: uint256

event GrantApplied:
    id: indexed(bytes32)
    kind: uint256
    accounts: DynArray[address, MAX_WORKERS]

event GrantCancelled:
    id: indexed(bytes32)
    kind: uint256
    accounts: DynArray[address, MAX_WORKERS]

event WorkerAdded:
    worker: indexed(address)
    wallet: indexed(address)

event WorkerRemoved:
    worker: indexed(address)
    wallet: indexed(address)

event TargetSet:
    target: indexed(address)
    allowed: bool

event FactorySet:
    factory: indexed(address)
    trusted: bool

event Paused:
    account: indexed(address)

event Unpaused:
    account: indexed(address)

event Executed:
    worker: indexed(address)
    proxy: indexed(address)
    target: indexed(address)
    selector: bytes4

# One event per batch (per-leg detail is in the tokens' own Transfer/TransferSingle events;
# a per-leg event would add ~2k gas per leg).
event CollateralPulled:
    worker: indexed(address)
    token: indexed(address)
    legs: uint256
    total: uint256

event CollateralPushed:
    worker: indexed(address)
    token: indexed(address)
    legs: uint256
    total: uint256

event OutcomePulled:
    worker: indexed(address)
    ctf: indexed(address)
    tokenId: indexed(uint256)
    legs: uint256
    total: uint256

event OutcomePushed:
    worker: indexed(address)
    ctf: indexed(address)
    tokenId: indexed(uint256)
    legs: uint256
    total: uint256

ADMIN_DELAY: public(immutable(uint256))

owner: public(address)
pendingOwner: public(address)
sealed: public(bool)
paused: public(bool)
isWorker: public(HashMap[address, bool])
walletOf: public(HashMap[address, address])   # worker -> its trading (deposit) wallet
workerOf: public(HashMap[address, address])   # trading wallet -> the worker it belongs to
isTarget: public(HashMap[address, bool])
isFactory: public(HashMap[address, bool])
grantEta: public(HashMap[bytes32, uint256])   # queued grant id -> earliest apply time (0 = none)


@deploy
def __init__(adminDelay: uint256):
    ADMIN_DELAY = adminDelay
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)


# ------------------------------------------------------------------ admin
@internal
@view
def _only_owner():
    assert msg.sender == self.owner, "only owner"


@internal
def _end_setup():
    if not self.sealed:
        self.sealed = True
        log Sealed(owner=self.owner)


@external
def seal():
    """@notice End the setup phase: from now on every grant waits ADMIN_DELAY. One way."""
    self._only_owner()
    self._end_setup()


@external
def transferOwnership(newOwner: address):
    """@notice Step 1 of 2: propose `newOwner`, who has no power until acceptOwnership().
            Also ends the setup phase (a handed-over Executor never grants at once)."""
    self._only_owner()
    assert newOwner != empty(address), "zero owner"
    self._end_setup()
    self.pendingOwner = newOwner
    log OwnershipTransferStarted(previousOwner=self.owner, newOwner=newOwner)


@external
def acceptOwnership():
    """@notice Step 2 of 2: the proposed owner takes over."""
    assert msg.sender == self.pendingOwner, "only pending owner"
    self._end_setup()
    log OwnershipTransferred(previousOwner=self.owner, newOwner=msg.sender)
    self.owner = msg.sender
    self.pendingOwner = empty(address)


@internal
def _add_worker(worker: address, wallet: address):
    assert worker != empty(address) and wallet != empty(address), "zero address"
    holder: address = self.workerOf[wallet]
    assert holder == empty(address) or holder == worker, "wallet taken"
    old: address = self.walletOf[worker]
    if old != empty(address) and old != wallet:
        self.workerOf[old] = empty(address)
    self.isWorker[worker] = True
    self.walletOf[worker] = wallet
    self.workerOf[wallet] = worker
    log WorkerAdded(worker=worker, wallet=wallet)


@internal
def _grant(kind: uint256, accounts: DynArray[address, MAX_WORKERS]):
    if kind == GRANT_WORKER:
        # [worker1, wallet1, worker2, wallet2, ...] (_grant_id checked the length is even)
        for i: uint256 in range(len(accounts) // 2, bound=MAX_WORKERS // 2):
            self._add_worker(accounts[2 * i], accounts[2 * i + 1])
        return
    for a: address in accounts:
        assert a != empty(address), "zero address"
        if kind == GRANT_TARGET:
            self.isTarget[a] = True
            log TargetSet(target=a, allowed=True)
        else:
            self.isFactory[a] = True
            log FactorySet(factory=a, trusted=True)


@internal
@pure
def _grant_id(kind: uint256, accounts: DynArray[address, MAX_WORKERS]) -> bytes32:
    assert kind >= GRANT_WORKER and kind <= GRANT_FACTORY, "bad kind"
    if kind == GRANT_WORKER:
        assert len(accounts) % 2 == 0, "worker grants are (worker, wallet) pairs"
    else:
        assert len(accounts) <= MAX_LIST, "too many"
    return keccak256(abi_encode(kind, accounts))


@external
@pure
def grantId(kind: uint256, accounts: DynArray[address, MAX_WORKERS]) -> bytes32:
    """@notice The id under which queueGrant(kind, accounts) is stored (grantEta) and logged."""
    return self._grant_id(kind, accounts)


@external
def queueGrant(kind: uint256, accounts: DynArray[address, MAX_WORKERS]) -> bytes32:
    """
    @notice Announce a grant (GRANT_WORKER 1, GRANT_TARGET 2, GRANT_FACTORY 3) that anyone
            may apply ADMIN_DELAY seconds from now, unless the owner cancels it first.
            GRANT_WORKER takes (worker, wallet) pairs flattened: [worker1, wallet1, ...].
    """
    self._only_owner()
    id: bytes32 = self._grant_id(kind, accounts)
    assert self.grantEta[id] == 0, "already queued"
    for a: address in accounts:
        assert a != empty(address), "zero address"
    eta: uint256 = block.timestamp + ADMIN_DELAY
    self.grantEta[id] = eta
    log GrantQueued(id=id, kind=kind, accounts=accounts, eta=eta)
    return id


@external
def applyGrant(kind: uint256, accounts: DynArray[address, MAX_WORKERS]):
    """@notice Apply a queued grant once its delay is over. Anyone may call: it was announced."""
    id: bytes32 = self._grant_id(kind, accounts)
    eta: uint256 = self.grantEta[id]
    assert eta != 0, "not queued"
    assert block.timestamp >= eta, "delay not over"
    self.grantEta[id] = 0
    self._grant(kind, accounts)
    log GrantApplied(id=id, kind=kind, accounts=accounts)


@external
def cancelGrant(kind: uint256, accounts: DynArray[address, MAX_WORKERS]):
    """@notice Drop a queued grant before anyone applies it."""
    self._only_owner()
    id: bytes32 = self._grant_id(kind, accounts)
    assert self.grantEta[id] != 0, "not queued"
    self.grantEta[id] = 0
    log GrantCancelled(id=id, kind=kind, accounts=accounts)


@internal
@view
def _only_setup():
    self._only_owner()
    assert not self.sealed, "sealed: queueGrant"


@external
def addWorkers(pairs: DynArray[address, MAX_WORKERS]):
    """
    @notice Register workers with their trading wallets, `pairs` = [worker1, wallet1, worker2,
            wallet2, ...]. Setup phase only (afterwards: queueGrant(GRANT_WORKER, pairs)).
    """
    self._only_setup()
    assert len(pairs) % 2 == 0, "worker grants are (worker, wallet) pairs"
    self._grant(GRANT_WORKER, pairs)


@external
def removeWorkers(workers: DynArray[address, MAX_WORKERS]):
    """@notice Immediate: the worker and its wallet lose every power (the wallet is free again)."""
    self._only_owner()
    for w: address in workers:
        wallet: address = self.walletOf[w]
        if wallet != empty(address):
            self.workerOf[wallet] = empty(address)
        self.walletOf[w] = empty(address)
        self.isWorker[w] = False
        log WorkerRemoved(worker=w, wallet=wallet)


@external
def setTargets(targets: DynArray[address, MAX_LIST], allowed: bool):
    """@notice Removing is always immediate; adding only in the setup phase (then queueGrant)."""
    if allowed:
        self._only_setup()
        self._grant(GRANT_TARGET, targets)
        return
    self._only_owner()
    for t: address in targets:
        self.isTarget[t] = False
        log TargetSet(target=t, allowed=False)


@external
def setFactories(factories: DynArray[address, MAX_LIST], trusted: bool):
    """@notice Untrusting is always immediate; trusting only in the setup phase (then queueGrant)."""
    if trusted:
        self._only_setup()
        self._grant(GRANT_FACTORY, factories)
        return
    self._only_owner()
    for f: address in factories:
        self.isFactory[f] = False
        log FactorySet(factory=f, trusted=False)


@external
def pause():
    self._only_owner()
    self.paused = True
    log Paused(account=msg.sender)


@external
def unpause():
    self._only_owner()
    self.paused = False
    log Unpaused(account=msg.sender)


# ------------------------------------------------------------------ checks
@internal
@view
def _only_worker():
    assert self.isWorker[msg.sender], "only worker"
    assert not self.paused, "paused"


@internal
@view
def _check_proxy(proxy: address):
    f: address = staticcall IProxy(proxy).factory()
    assert self.isFactory[f], "untrusted factory"
    assert staticcall IFactory(f).isProxy(proxy), "not a proxy"


@internal
@view
def _static_word(target: address, data: Bytes[36]) -> (bool, uint256):
    # A view call that cannot revert this view: a hostile or broken contract just fails.
    ok: bool = False
    ret: Bytes[32] = b""
    ok, ret = raw_call(target, data, max_outsize=32, is_static_call=True, revert_on_failure=False)
    if not ok or len(ret) < 32:
        return False, 0
    return True, extract32(ret, 0, output_type=uint256)


@internal
@view
def _leg_status(proxy: address) -> uint256:
    if not proxy.is_contract:
        return LEG_NO_CODE
    ok: bool = False
    word: uint256 = 0
    ok, word = self._static_word(proxy, method_id("factory()"))
    if not ok or word > convert(max_value(uint160), uint256):
        return LEG_UNTRUSTED_FACTORY
    f: address = convert(word, address)
    if not self.isFactory[f]:
        return LEG_UNTRUSTED_FACTORY
    ok, word = self._static_word(f, abi_encode(proxy, method_id=method_id("isProxy(address)")))
    if not ok or word != 1:
        return LEG_NOT_A_PROXY
    ok, word = self._static_word(f, abi_encode(proxy, method_id=method_id("isPaused(address)")))
    if not ok or word != 0:
        return LEG_PAUSED
    ok, word = self._static_word(f, method_id("executor()"))
    if not ok or word != convert(self, uint256):
        return LEG_OTHER_EXECUTOR
    return LEG_OK


@external
@view
def legStatus(proxies: DynArray[address, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """
    @notice Per proxy, 0 if a batch leg for it would pass the proxy checks, else why not
            (1 no code, 2 untrusted factory, 3 not a proxy, 4 paused, 5 its factory names
            another executor). One eth_call lets the off-chain side drop a paused or foreign
            leg, with its reason, before the pull; the batches themselves stay fail-closed.
    """
    out: DynArray[uint256, MAX_BATCH] = []
    for p: address in proxies:
        out.append(self._leg_status(p))
    return out


@internal
@pure
def _arg(data: Bytes[MAX_DATA], i: uint256) -> uint256:
    return extract32(data, 4 + 32 * i, output_type=uint256)


@internal
@pure
def _arg_address(data: Bytes[MAX_DATA], i: uint256) -> address:
    # Reject dirty high bits: a token whose ABI decoder masks them would otherwise pay an
    # address other than the one checked here.
    v: uint256 = self._arg(data, i)
    assert v <= convert(max_value(uint160), uint256), "dirty address"
    return convert(v, address)


@internal
@view
def _recipient_ok(proxy: address, to: address) -> bool:
    # A registered worker's trading wallet (not the worker's signer key, unless it is its own wallet).
    w: address = self.workerOf[to]
    if w != empty(address) and self.isWorker[w]:
        return True
    return to == staticcall IProxy(proxy).owner()


@internal
@view
def _check_call(proxy: address, data: Bytes[MAX_DATA]) -> bytes4:
    assert len(data) >= 4, "no selector"
    sel: bytes4 = convert(slice(data, 0, 4), bytes4)
    if sel == SEL_TRANSFER:
        assert len(data) == 68, "bad calldata"
        assert self._recipient_ok(proxy, self._arg_address(data, 0)), "recipient not allowed"
    elif sel == SEL_SAFE_TRANSFER_FROM:
        # Canonical encoding only: head (5 words), the bytes at offset 0xa0, its length word,
        # then exactly the padded bytes. Anything else is what a lenient decoder could read
        # differently from what was checked here.
        assert len(data) >= 4 + 32 * 6, "bad calldata"
        assert self._arg(data, 4) == 32 * 5, "bad calldata"
        blen: uint256 = self._arg(data, 5)
        assert blen <= MAX_DATA, "bad calldata"
        assert len(data) == 4 + 32 * 6 + (blen + 31) // 32 * 32, "bad calldata"
        assert self._arg_address(data, 0) == proxy, "can only move the proxy's own tokens"
        assert self._recipient_ok(proxy, self._arg_address(data, 1)), "recipient not allowed"
    else:
        raise "call not allowed"
    return sel


@internal
@pure
def _returned_true(ret: Bytes[MAX_RET]) -> bool:
    # SafeERC20 rule: no return data (USDT-style) or an ABI-encoded true.
    if len(ret) == 0:
        return True
    return len(ret) >= 32 and extract32(ret, 0, output_type=uint256) == 1


# ------------------------------------------------------------------ worker entry points
@external
@nonreentrant
def execute(proxy: address, target: address, data: Bytes[MAX_DATA]) -> Bytes[MAX_RET]:
    """
    @notice Make `proxy` call `target` with `data`: a worker only, an allow-listed target
            only, not while paused, and only the narrowed calls listed in the module doc.
    """
    self._only_worker()
    assert self.isTarget[target], "target not allowed"
    self._check_proxy(proxy)
    sel: bytes4 = self._check_call(proxy, data)
    ret: Bytes[MAX_RET] = extcall IProxy(proxy).execute(target, data)
    if sel == SEL_TRANSFER:
        assert self._returned_true(ret), "token call returned false"
    log Executed(worker=msg.sender, proxy=proxy, target=target, selector=sel)
    return ret


@external
@nonreentrant
def pullCollateral(token: address, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice ERC-20 `token` from each proxy to the calling worker's trading wallet (Standard-mode
            pulls, Smart-Buffer reimbursements). Zero amounts are skipped.
    """
    self._only_worker()
    wallet: address = self.walletOf[msg.sender]
    assert self.isTarget[token], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        ret: Bytes[MAX_RET] = extcall IProxy(proxy).execute(token, abi_encode(wallet, amount, method_id=SEL_TRANSFER))
        assert self._returned_true(ret), "token call returned false"
        total += amount
    log CollateralPulled(worker=msg.sender, token=token, legs=len(proxies), total=total)


@external
@nonreentrant
def pullOutcome(ctf: address, tokenId: uint256, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """@notice Outcome token `tokenId` from each proxy to the calling worker's wallet (copying sells)."""
    self._only_worker()
    wallet: address = self.walletOf[msg.sender]
    assert self.isTarget[ctf], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        extcall IProxy(proxy).execute(ctf, abi_encode(proxy, wallet, tokenId, amount, b"", method_id=SEL_SAFE_TRANSFER_FROM))
        total += amount
    log OutcomePulled(worker=msg.sender, ctf=ctf, tokenId=tokenId, legs=len(proxies), total=total)


@external
@nonreentrant
def pushOutcome(ctf: address, tokenId: uint256, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice Outcome token `tokenId` from the calling worker's wallet to each proxy (delivering
            buys). Needs the wallet's ctf.setApprovalForAll(executor, true).
    """
    self._only_worker()
    wallet: address = self.walletOf[msg.sender]
    assert self.isTarget[ctf], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        extcall IERC1155(ctf).safeTransferFrom(wallet, proxy, tokenId, amount, b"")
        total += amount
    log OutcomePushed(worker=msg.sender, ctf=ctf, tokenId=tokenId, legs=len(proxies), total=total)


@external
@nonreentrant
def pushCollateral(token: address, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice ERC-20 `token` from the calling worker's wallet to each proxy (refunds, sell
            proceeds). Needs the wallet's token.approve(executor, ...).
    """
    self._only_worker()
    wallet: address = self.walletOf[msg.sender]
    assert self.isTarget[token], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        assert extcall IERC20(token).transferFrom(wallet, proxy, amount, default_return_value=True), "transferFrom failed"
        total += amount
    log CollateralPushed(worker=msg.sender, token=token, legs=len(proxies), total=total)
