# pragma version ~=0.4.3
"""
@title Executor
@notice The only door through which copytrade workers touch followers' proxies.
@dev Three allowlists, all owner-managed:
       - workers:   hot wallets of the worker fleet, the only callers of execute/batches;
       - targets:   token contracts a proxy may be made to call (collateral(s), the CTF);
       - spenders:  addresses a proxy may be made to approve (the exchanges);
     plus trusted factories (whose proxies the batch functions accept) and a global pause.

     Narrowing (SPEC §2): a worker cannot make a proxy do arbitrary calls. `execute`
     decodes the calldata and accepts only
       ERC-20   transfer(to, amt)                    to = a registered worker or the proxy's owner
       ERC-20   approve(spender, amt)                spender allow-listed (or amt == 0: revoking is always safe)
       ERC-1155 safeTransferFrom(proxy, to, id, amt, data)  to = a registered worker or the proxy's owner
       ERC-1155 setApprovalForAll(op, approved)     op allow-listed (or approved == false)
     so a stolen worker key cannot send a proxy's funds to an arbitrary address (see
     docs/contracts.md for what it still can do).

     Proxy rule for every leg (execute and all batches): `proxy` must be a proxy of a
     factory this Executor trusts: F = proxy.factory(), isFactory[F] and F.isProxy(proxy).
     (The proxy independently checks that its factory names this executor, the target is
     allow-listed there and the proxy is not paused.) Checking per leg keeps events honest
     and pushes from turning into a generic transfer router; it costs ~1.5k gas per leg
     because the proxy account and the factory's per-proxy slot are warmed for the call
     that follows anyway.

     The Executor holds no funds. The approvals it receives (workers' approvals, used by
     pushCollateral / pushOutcome) are only ever spent from msg.sender, i.e. a worker can
     only spend its own approval.
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
SEL_APPROVE: constant(bytes4) = method_id("approve(address,uint256)", output_type=bytes4)
SEL_SAFE_TRANSFER_FROM: constant(bytes4) = method_id("safeTransferFrom(address,address,uint256,uint256,bytes)", output_type=bytes4)
SEL_SET_APPROVAL_FOR_ALL: constant(bytes4) = method_id("setApprovalForAll(address,bool)", output_type=bytes4)

# ---- events ----
event OwnershipTransferred:
    previousOwner: indexed(address)
    newOwner: indexed(address)

event WorkerAdded:
    worker: indexed(address)

event WorkerRemoved:
    worker: indexed(address)

event TargetSet:
    target: indexed(address)
    allowed: bool

event SpenderSet:
    spender: indexed(address)
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

owner: public(address)
paused: public(bool)
isWorker: public(HashMap[address, bool])
isTarget: public(HashMap[address, bool])
isSpender: public(HashMap[address, bool])
isFactory: public(HashMap[address, bool])


@deploy
def __init__():
    self.owner = msg.sender
    log OwnershipTransferred(previousOwner=empty(address), newOwner=msg.sender)


# ------------------------------------------------------------------ admin
@internal
@view
def _only_owner():
    assert msg.sender == self.owner, "only owner"


@external
def transferOwnership(newOwner: address):
    self._only_owner()
    assert newOwner != empty(address), "zero owner"
    log OwnershipTransferred(previousOwner=self.owner, newOwner=newOwner)
    self.owner = newOwner


@external
def addWorkers(workers: DynArray[address, MAX_WORKERS]):
    self._only_owner()
    for w: address in workers:
        assert w != empty(address), "zero worker"
        self.isWorker[w] = True
        log WorkerAdded(worker=w)


@external
def removeWorkers(workers: DynArray[address, MAX_WORKERS]):
    self._only_owner()
    for w: address in workers:
        self.isWorker[w] = False
        log WorkerRemoved(worker=w)


@external
def setTargets(targets: DynArray[address, MAX_LIST], allowed: bool):
    self._only_owner()
    for t: address in targets:
        self.isTarget[t] = allowed
        log TargetSet(target=t, allowed=allowed)


@external
def setSpenders(spenders: DynArray[address, MAX_LIST], allowed: bool):
    self._only_owner()
    for s: address in spenders:
        self.isSpender[s] = allowed
        log SpenderSet(spender=s, allowed=allowed)


@external
def setFactories(factories: DynArray[address, MAX_LIST], trusted: bool):
    self._only_owner()
    for f: address in factories:
        self.isFactory[f] = trusted
        log FactorySet(factory=f, trusted=trusted)


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
    if self.isWorker[to]:
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
    elif sel == SEL_APPROVE:
        assert len(data) == 68, "bad calldata"
        assert self.isSpender[self._arg_address(data, 0)] or self._arg(data, 1) == 0, "spender not allowed"
    elif sel == SEL_SAFE_TRANSFER_FROM:
        # head (5 words) + at least the bytes length word
        assert len(data) >= 4 + 32 * 6, "bad calldata"
        assert self._arg_address(data, 0) == proxy, "can only move the proxy's own tokens"
        assert self._recipient_ok(proxy, self._arg_address(data, 1)), "recipient not allowed"
    elif sel == SEL_SET_APPROVAL_FOR_ALL:
        assert len(data) == 68, "bad calldata"
        approved: uint256 = self._arg(data, 1)
        assert approved <= 1, "bad bool"
        assert self.isSpender[self._arg_address(data, 0)] or approved == 0, "operator not allowed"
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
    if sel == SEL_TRANSFER or sel == SEL_APPROVE:
        assert self._returned_true(ret), "token call returned false"
    log Executed(worker=msg.sender, proxy=proxy, target=target, selector=sel)
    return ret


@external
@nonreentrant
def pullCollateral(token: address, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice ERC-20 `token` from each proxy to the calling worker (Standard-mode pulls,
            Smart-Buffer reimbursements). Zero amounts are skipped.
    """
    self._only_worker()
    assert self.isTarget[token], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        ret: Bytes[MAX_RET] = extcall IProxy(proxy).execute(token, abi_encode(msg.sender, amount, method_id=SEL_TRANSFER))
        assert self._returned_true(ret), "token call returned false"
        total += amount
    log CollateralPulled(worker=msg.sender, token=token, legs=len(proxies), total=total)


@external
@nonreentrant
def pullOutcome(ctf: address, tokenId: uint256, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """@notice Outcome token `tokenId` from each proxy to the calling worker (copying sells)."""
    self._only_worker()
    assert self.isTarget[ctf], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        extcall IProxy(proxy).execute(ctf, abi_encode(proxy, msg.sender, tokenId, amount, b"", method_id=SEL_SAFE_TRANSFER_FROM))
        total += amount
    log OutcomePulled(worker=msg.sender, ctf=ctf, tokenId=tokenId, legs=len(proxies), total=total)


@external
@nonreentrant
def pushOutcome(ctf: address, tokenId: uint256, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice Outcome token `tokenId` from the calling worker to each proxy (delivering buys).
            Needs the worker's ctf.setApprovalForAll(executor, true).
    """
    self._only_worker()
    assert self.isTarget[ctf], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        extcall IERC1155(ctf).safeTransferFrom(msg.sender, proxy, tokenId, amount, b"")
        total += amount
    log OutcomePushed(worker=msg.sender, ctf=ctf, tokenId=tokenId, legs=len(proxies), total=total)


@external
@nonreentrant
def pushCollateral(token: address, proxies: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice ERC-20 `token` from the calling worker to each proxy (refunds, sell proceeds).
            Needs the worker's token.approve(executor, ...).
    """
    self._only_worker()
    assert self.isTarget[token], "target not allowed"
    assert len(proxies) == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(len(proxies), bound=MAX_BATCH):
        amount: uint256 = amounts[i]
        if amount == 0:
            continue
        proxy: address = proxies[i]
        self._check_proxy(proxy)
        assert extcall IERC20(token).transferFrom(msg.sender, proxy, amount, default_return_value=True), "transferFrom failed"
        total += amount
    log CollateralPushed(worker=msg.sender, token=token, legs=len(proxies), total=total)
