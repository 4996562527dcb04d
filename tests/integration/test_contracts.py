"""Executor / ProxyFactory / Proxy / Treasury on a real anvil: privileges, allowlists, narrowing, pause,
ERC-1155 receipt, CREATE2 prediction, and a full copy-trade round trip through MockExchangeV2."""
from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils import event_abi_to_log_topic
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.roles import AccountLane
from copytrade_cli.chain.roles import grant as roles_grant
from tests.conftest import DEV_KEYS

USDC = 10**6
MAX = 2**256 - 1
ZERO32 = b"\0" * 32
ZERO = "0x0000000000000000000000000000000000000000"


def revert_reason(fn, sender) -> str | None:
    """None if an eth_call of `fn` from `sender` succeeds, else the revert message."""
    try:
        fn.call({"from": sender})
    except ContractLogicError as e:
        return str(e.message or e)
    return None


def assert_reverts(fn, sender, match: str = ""):
    reason = revert_reason(fn, sender)
    assert reason is not None, "call did not revert"
    assert match in reason, f"expected {match!r} in {reason!r}"


class System:
    """Mocks (deployed normally) + a copytrade stack + 2 users with proxies, 2 workers, a market maker.

    Worker w1 trades from its own trading wallet v1 (as a deposit-wallet worker does: an address other than its
    signer key; here an EOA standing in for the wallet contract, so its orders are signed by v1); worker w2 is
    registered as its own wallet (a plain-EOA worker)."""

    def __init__(self, w3):
        self.w3 = w3
        self.admin = Account.from_key(DEV_KEYS[0])
        names = ["w1", "v1", "w2", "alice", "bob", "mm", "oracle", "eve"]
        for n in names:
            acct = Account.create()
            setattr(self, n, acct)
            w3.provider.make_request("anvil_setBalance", [acct.address, hex(10**21)])
        a = self.admin
        self.usdc = self.at("MockCollateral", C.deploy(w3, a, "MockCollateral", "Polymarket USD", "pUSD")[0])
        from copytrade_cli.localworld.real_ctf import ctf_abi, deploy_real_ctf

        # the REAL ConditionalTokens (npm bytecode): it calls onERC1155Received on contract receivers
        self.ctf = w3.eth.contract(address=deploy_real_ctf(w3, a), abi=ctf_abi())
        self.ex = self.at("MockExchangeV2", C.deploy(w3, a, "MockExchangeV2", self.usdc.address, self.ctf.address)[0])
        self.tx(a, self.usdc.functions.initialize(a.address))
        self.tx(a, self.ex.functions.initialize(a.address))
        self.tx(a, self.ex.functions.addOperator(a.address))
        self.stack = C.deploy_stack(w3, a, targets=[self.usdc.address, self.ctf.address],
                                    workers=[self.w1.address, self.w2.address],
                                    wallets=[self.v1.address, self.w2.address])
        self.executor = self.at("Executor", self.stack.executor)
        self.factory = self.at("ProxyFactory", self.stack.factory)
        self.proxies = {}
        for user in (self.alice, self.bob):
            self.tx(a, self.factory.functions.createProxy(user.address))
            self.proxies[user.address] = self.at("Proxy", self.factory.functions.proxyOf(user.address).call())
        self.pa, self.pb = self.proxies[self.alice.address], self.proxies[self.bob.address]
        # market: oracle prepares a binary condition on the CTF
        self.question = b"\x07" * 32
        self.tx(self.oracle, self.ctf.functions.prepareCondition(self.oracle.address, self.question, 2))
        self.cid = self.ctf.functions.getConditionId(self.oracle.address, self.question, 2).call()
        self.yes, self.no = (self.ctf.functions.getPositionId(
            self.usdc.address, self.ctf.functions.getCollectionId(ZERO32, self.cid, s).call()).call() for s in (1, 2))
        # trading wallets approve the executor (pushes) and the exchange (trading), as fleet setup does
        for wk in (self.v1, self.w2):
            self.tx(wk, self.usdc.functions.approve(self.executor.address, MAX))
            self.tx(wk, self.usdc.functions.approve(self.ex.address, MAX))
            self.tx(wk, self.ctf.functions.setApprovalForAll(self.executor.address, True))
            self.tx(wk, self.ctf.functions.setApprovalForAll(self.ex.address, True))

    def at(self, name, addr):
        return C.contract(self.w3, name, addr)

    def tx(self, acct, fn):
        return C.transact(self.w3, acct, fn)

    def mint(self, to, amount):
        self.tx(self.admin, self.usdc.functions.mint(to, amount))

    def fund_proxy(self, user, amount):
        """`user` mints collateral and deposits it into its proxy."""
        self.mint(user.address, amount)
        proxy = self.proxies[user.address]
        self.tx(user, self.usdc.functions.approve(proxy.address, amount))
        self.tx(user, proxy.functions.deposit(self.usdc.address, amount))

    def split(self, who, amount):
        """`who` mints collateral and splits it into YES+NO."""
        self.mint(who.address, amount)
        self.tx(who, self.usdc.functions.approve(self.ctf.address, MAX))
        self.tx(who, self.ctf.functions.splitPosition(self.usdc.address, ZERO32, self.cid, [1, 2], amount))

    def bal(self, addr):
        return self.usdc.functions.balanceOf(addr).call()

    def yes_bal(self, addr):
        return self.ctf.functions.balanceOf(addr, self.yes).call()

    def calldata(self, contract, fn_name, *args):
        return bytes.fromhex(contract.encode_abi(fn_name, args=list(args))[2:])

    def grant(self, contract, kind, accounts):
        """A delayed grant as the admin (queue, advance the fork's clock, apply); the applying receipt."""
        name = "ProxyFactory" if any(f.get("name") == "pendingAdmin" for f in contract.abi) else "Executor"
        res = roles_grant(self.w3, AccountLane(self.w3, self.admin), name, contract.address, kind, list(accounts),
                          on_fork=True)
        return self.w3.eth.get_transaction_receipt(res.txs[-1])


def snapshot(w3):
    return w3.provider.make_request("evm_snapshot", [])["result"]


def revert_to(w3, snap):
    assert w3.provider.make_request("evm_revert", [snap])["result"] is True


@pytest.fixture(scope="module")
def system_base(anvil):
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(anvil.url, request_kwargs={"timeout": 30}))
    return System(w3)


@pytest.fixture
def s(system_base):
    """The deployed system, rolled back after each test (anvil snapshot/revert)."""
    snap = snapshot(system_base.w3)
    yield system_base
    revert_to(system_base.w3, snap)


# ----------------------------------------------------------------- factory / proxies
def test_one_proxy_per_owner_and_predicted_address(s):
    f = s.factory
    impl = s.stack.proxy_implementation
    for user in (s.alice, s.bob):
        actual = f.functions.proxyOf(user.address).call()
        assert f.functions.predictProxyAddress(user.address).call() == actual
        assert C.predict_proxy_address(f.address, impl, user.address) == actual
        p = s.at("Proxy", actual)
        assert p.functions.owner().call() == user.address
        assert p.functions.factory().call() == f.address
        assert f.functions.isProxy(actual).call()
    # predicted before creation == created
    carol = Account.create().address
    predicted = C.predict_proxy_address(f.address, impl, carol)
    assert f.functions.predictProxyAddress(carol).call() == predicted
    assert s.w3.eth.get_code(predicted) == b""
    rc = s.tx(s.eve, f.functions.createProxy(carol))  # anyone may create it; carol owns it
    assert f.functions.proxyOf(carol).call() == predicted
    assert s.at("Proxy", predicted).functions.owner().call() == carol
    assert rc["gasUsed"] < 175_000
    # one per owner
    assert_reverts(f.functions.createProxy(carol), s.admin.address, "proxy exists")
    assert_reverts(f.functions.createProxy(s.alice.address), s.admin.address, "proxy exists")
    # enumeration
    assert f.functions.proxyCount().call() == 3
    assert [f.functions.proxyAt(i).call() for i in range(3)] == [s.pa.address, s.pb.address, predicted]
    assert_reverts(f.functions.proxyAt(3), s.admin.address, "index out of range")
    assert not f.functions.isProxy(s.alice.address).call()


def test_proxy_and_implementation_cannot_be_reinitialized(s):
    impl = s.at("Proxy", s.stack.proxy_implementation)
    f = s.factory.address
    for target in (impl, s.pa):
        assert_reverts(target.functions.initialize(s.eve.address, s.eve.address), s.eve.address, "only factory")
        assert_reverts(target.functions.initialize(s.eve.address, f), s.eve.address, "only factory")
    # even the factory address could not re-initialize an existing proxy
    assert_reverts(s.pa.functions.initialize(s.eve.address, f), f, "already initialized")
    # the implementation is unusable as a wallet: no owner, and the factory does not know it
    assert impl.functions.owner().call() == "0x" + "0" * 40
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [impl.address], [1]), s.w1.address, "not a proxy")
    # a factory refuses an implementation bound to another factory
    with pytest.raises(Exception):
        C.deploy(s.w3, s.admin, "ProxyFactory", s.executor.address, impl.address, [], 3600, gas=3_000_000)


def test_privileged_functions_reject_unprivileged_callers(s):
    eve = s.eve.address
    ex, f, pa = s.executor, s.factory, s.pa
    tre = s.at("Treasury", s.stack.treasury)
    for fn in (ex.functions.transferOwnership(eve), ex.functions.addWorkers([eve]), ex.functions.removeWorkers([s.w1.address]),
               ex.functions.setTargets([eve], True), ex.functions.setTargets([eve], False),
               ex.functions.setFactories([eve], True), ex.functions.setFactories([eve], False),
               ex.functions.queueGrant(1, [eve]), ex.functions.cancelGrant(1, [eve]), ex.functions.seal(),
               ex.functions.pause(), ex.functions.unpause()):
        assert_reverts(fn, eve, "only owner")
    for fn in (f.functions.queueGrant(1, [eve]), f.functions.cancelGrant(1, [eve]), f.functions.setTargets([eve], False),
               f.functions.setProxiesPaused([pa.address], True), f.functions.transferAdmin(eve)):
        assert_reverts(fn, eve, "only admin")
    for fn in (pa.functions.withdraw(s.usdc.address, 1), pa.functions.withdraw1155(s.ctf.address, s.yes, 1),
               pa.functions.approve(s.usdc.address, eve, 1), pa.functions.setApprovalForAll(s.ctf.address, eve, True)):
        assert_reverts(fn, eve, "only owner")
        assert_reverts(fn, s.w1.address, "only owner")  # a worker is not the owner either
        assert_reverts(fn, s.admin.address, "only owner")  # nor is the operator/admin
    for fn in (tre.functions.withdraw(s.usdc.address, eve, 1), tre.functions.transferOwnership(eve)):
        assert_reverts(fn, eve, "only owner")
    # worker entry points from a non-worker (even the owner/admin is not a worker)
    data = s.calldata(s.usdc, "transfer", eve, 1)
    for who in (eve, s.admin.address, s.alice.address):
        for fn in (ex.functions.execute(pa.address, s.usdc.address, data),
                   ex.functions.pullCollateral(s.usdc.address, [pa.address], [1]),
                   ex.functions.pullOutcome(s.ctf.address, s.yes, [pa.address], [1]),
                   ex.functions.pushOutcome(s.ctf.address, s.yes, [pa.address], [1]),
                   ex.functions.pushCollateral(s.usdc.address, [pa.address], [1])):
            assert_reverts(fn, who, "only worker")
    # the proxy obeys only the factory's executor: a worker (or anyone) calling it directly fails
    for who in (eve, s.w1.address, s.alice.address, s.admin.address):
        assert_reverts(pa.functions.execute(s.usdc.address, s.calldata(s.usdc, "transfer", who, 1)), who, "not the executor")


def test_admin_functions_work_for_admin(s):
    ex, f = s.executor, s.factory
    rc = s.grant(ex, "worker", [s.eve.address])
    assert ex.functions.isWorker(s.eve.address).call()
    assert ex.events.WorkerAdded().process_receipt(rc, errors=DISCARD)[0]["args"]["worker"] == s.eve.address
    s.tx(s.admin, ex.functions.removeWorkers([s.eve.address]))
    assert not ex.functions.isWorker(s.eve.address).call()
    s.tx(s.admin, ex.functions.transferOwnership(s.bob.address))
    s.tx(s.bob, ex.functions.acceptOwnership())
    assert ex.functions.owner().call() == s.bob.address
    assert_reverts(ex.functions.pause(), s.admin.address, "only owner")
    s.tx(s.admin, f.functions.transferAdmin(s.bob.address))
    s.tx(s.bob, f.functions.acceptAdmin())
    assert f.functions.admin().call() == s.bob.address
    # treasury: receives fees, owner withdraws
    tre = s.at("Treasury", s.stack.treasury)
    s.mint(tre.address, 5 * USDC)
    rc = s.tx(s.admin, tre.functions.withdraw(s.usdc.address, s.eve.address, 2 * USDC))
    assert s.bal(s.eve.address) == 2 * USDC and s.bal(tre.address) == 3 * USDC
    assert tre.events.Withdrawn().process_receipt(rc, errors=DISCARD)[0]["args"]["amount"] == 2 * USDC


# ----------------------------------------------------------------- trading wallets
def test_batches_move_funds_between_proxies_and_the_calling_workers_wallet_only(s):
    ex, w1, v1, w2 = s.executor, s.w1, s.v1.address, s.w2.address
    assert (ex.functions.walletOf(w1.address).call(), ex.functions.workerOf(v1).call()) == (v1, w1.address)
    assert (ex.functions.walletOf(w2).call(), ex.functions.workerOf(w2).call()) == (w2, w2)
    s.fund_proxy(s.alice, 10 * USDC)
    # pulls land in the caller's wallet, never in its signer key nor in another worker's wallet
    s.tx(w1, ex.functions.pullCollateral(s.usdc.address, [s.pa.address], [4 * USDC]))
    assert (s.bal(v1), s.bal(w1.address), s.bal(w2)) == (4 * USDC, 0, 0)
    s.split(s.mm, 6 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 6 * USDC, b""))
    s.tx(w1, ex.functions.pullOutcome(s.ctf.address, s.yes, [s.pa.address], [6 * USDC]))
    assert (s.yes_bal(v1), s.yes_bal(w1.address)) == (6 * USDC, 0)
    # pushes spend the caller's wallet (its approval to the Executor), not the signer's own funds
    s.mint(w1.address, 5 * USDC)
    s.tx(w1, s.usdc.functions.approve(ex.address, MAX))  # even an approval of the signer key is never used
    s.tx(w1, ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [4 * USDC]))
    s.tx(w1, ex.functions.pushOutcome(s.ctf.address, s.yes, [s.pa.address], [6 * USDC]))
    assert (s.bal(v1), s.yes_bal(v1), s.bal(w1.address)) == (0, 0, 5 * USDC)
    assert (s.bal(s.pa.address), s.yes_bal(s.pa.address)) == (10 * USDC, 6 * USDC)
    assert_reverts(ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [1]), w1.address)  # v1 has nothing left
    # w2 cannot spend v1's approval: its pushes come from its own wallet (empty)
    s.mint(v1, USDC)
    assert_reverts(ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [1]), w2)
    assert s.bal(v1) == USDC


def test_worker_grants_pair_each_worker_with_one_wallet(s):
    ex, eve, bob = s.executor, s.eve.address, s.bob.address
    # odd lists are refused (every worker needs its wallet)
    assert_reverts(ex.functions.queueGrant(1, [eve]), s.admin.address, "pairs")
    assert_reverts(ex.functions.grantId(1, [eve, eve, bob]), s.admin.address, "pairs")
    # a wallet belongs to one worker: v1 (w1's) cannot be given to eve
    s.tx(s.admin, ex.functions.queueGrant(1, [eve, s.v1.address]))
    s.w3.provider.make_request("evm_increaseTime", [3601])
    s.w3.provider.make_request("evm_mine", [])
    assert_reverts(ex.functions.applyGrant(1, [eve, s.v1.address]), s.admin.address, "wallet taken")
    # a new wallet for an existing worker is a grant like any other (delayed); the old wallet is released
    rc = s.grant(ex, "worker", [(s.w1.address, bob)])
    ev = ex.events.WorkerAdded().process_receipt(rc, errors=DISCARD)[0]["args"]
    assert (ev["worker"], ev["wallet"]) == (s.w1.address, bob)
    assert ex.functions.walletOf(s.w1.address).call() == bob and ex.functions.workerOf(s.v1.address).call() == ZERO
    s.fund_proxy(s.alice, 2 * USDC)
    s.tx(s.w1, ex.functions.pullCollateral(s.usdc.address, [s.pa.address], [USDC]))
    assert (s.bal(bob), s.bal(s.v1.address)) == (USDC, 0)
    # removal: the worker and its wallet lose their power at once
    rc = s.tx(s.admin, ex.functions.removeWorkers([s.w1.address]))
    ev = ex.events.WorkerRemoved().process_receipt(rc, errors=DISCARD)[0]["args"]
    assert (ev["worker"], ev["wallet"]) == (s.w1.address, bob)
    assert (ex.functions.walletOf(s.w1.address).call(), ex.functions.workerOf(bob).call()) == (ZERO, ZERO)
    assert_reverts(ex.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]), s.w1.address, "only worker")


# ----------------------------------------------------------------- narrowing
def test_worker_cannot_send_proxy_funds_to_arbitrary_address(s):
    s.fund_proxy(s.alice, 10 * USDC)
    s.split(s.mm, 5 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 5 * USDC, b""))
    ex, pa, w1, v1 = s.executor, s.pa, s.w1.address, s.v1.address
    eve = s.eve.address

    def ex_call(data, target=None):
        return ex.functions.execute(pa.address, target or s.usdc.address, data)

    # ERC-20 transfer: only to a registered worker's trading wallet or the proxy's owner
    assert_reverts(ex_call(s.calldata(s.usdc, "transfer", eve, USDC)), w1, "recipient not allowed")
    # w1's signer key is not a trading wallet (its wallet is v1): refused, even by w1 itself
    assert_reverts(ex_call(s.calldata(s.usdc, "transfer", w1, USDC)), w1, "recipient not allowed")
    assert_reverts(ex_call(s.calldata(s.usdc, "transfer", s.bob.address, USDC)), w1, "recipient not allowed")  # another user
    assert_reverts(ex_call(s.calldata(s.usdc, "transfer", s.pb.address, USDC)), w1, "recipient not allowed")  # another proxy
    s.tx(s.w1, ex_call(s.calldata(s.usdc, "transfer", s.w2.address, USDC)))  # any registered worker's wallet
    s.tx(s.w1, ex_call(s.calldata(s.usdc, "transfer", v1, USDC)))  # its own wallet
    s.tx(s.w1, ex_call(s.calldata(s.usdc, "transfer", s.alice.address, USDC)))  # back to the owner
    assert s.bal(s.w2.address) == USDC and s.bal(v1) == USDC and s.bal(s.alice.address) == USDC
    assert s.bal(w1) == 0
    # dirty high bits in the address word are refused (a masking token would pay someone else)
    dirty = bytearray(s.calldata(s.usdc, "transfer", v1, USDC))
    dirty[4] = 0x01
    assert_reverts(ex_call(bytes(dirty)), w1, "dirty address")
    # ERC-20 approve: no path at all any more (#15: unused, and an approval outlives the transaction),
    # not even to the exchange or a revocation
    for spender, amount in ((eve, MAX), (s.ex.address, MAX), (eve, 0)):
        assert_reverts(ex_call(s.calldata(s.usdc, "approve", spender, amount)), w1, "call not allowed")
    assert s.usdc.functions.allowance(pa.address, s.ex.address).call() == 0
    # ERC-1155: the proxy's own tokens, to a worker or the owner only
    ctf = s.ctf.address
    assert_reverts(ex_call(s.calldata(s.ctf, "safeTransferFrom", pa.address, eve, s.yes, 1, b""), ctf), w1, "recipient not allowed")
    assert_reverts(ex_call(s.calldata(s.ctf, "safeTransferFrom", pa.address, w1, s.yes, 1, b""), ctf), w1, "recipient not allowed")
    assert_reverts(ex_call(s.calldata(s.ctf, "safeTransferFrom", s.pb.address, v1, s.yes, 1, b""), ctf), w1, "proxy's own tokens")
    s.tx(s.w1, ex_call(s.calldata(s.ctf, "safeTransferFrom", pa.address, v1, s.yes, 2, b""), ctf))
    assert s.yes_bal(v1) == 2 and s.yes_bal(w1) == 0
    for op, approved in ((eve, True), (s.ex.address, True), (eve, False)):
        assert_reverts(ex_call(s.calldata(s.ctf, "setApprovalForAll", op, approved), ctf), w1, "call not allowed")
    assert not s.ctf.functions.isApprovedForAll(pa.address, s.ex.address).call()
    # anything else: refused (transferFrom, batch transfer, unknown selectors, short data)
    assert_reverts(ex_call(s.calldata(s.usdc, "transferFrom", pa.address, eve, 1)), w1, "call not allowed")
    assert_reverts(ex_call(s.calldata(s.ctf, "safeBatchTransferFrom", pa.address, v1, [s.yes], [1], b""), ctf), w1, "call not allowed")
    assert_reverts(ex_call(b"\xde\xad\xbe\xef"), w1, "call not allowed")
    assert_reverts(ex_call(b"\xa9\x05"), w1, "no selector")
    assert_reverts(ex_call(s.calldata(s.usdc, "transfer", v1, 1) + b"\0" * 32), w1, "bad calldata")
    # a removed worker's wallet stops being a recipient at once
    s.tx(s.admin, ex.functions.removeWorkers([s.w2.address]))
    assert_reverts(ex_call(s.calldata(s.usdc, "transfer", s.w2.address, 1)), w1, "recipient not allowed")
    # the Executed event names worker, proxy, target, selector
    rc = s.tx(s.w1, ex_call(s.calldata(s.usdc, "transfer", v1, 1)))
    ev = ex.events.Executed().process_receipt(rc, errors=DISCARD)[0]["args"]
    assert (ev["worker"], ev["proxy"], ev["target"], ev["selector"]) == (w1, pa.address, s.usdc.address, bytes.fromhex("a9059cbb"))


def test_target_allowlists_on_executor_and_factory(s):
    s.fund_proxy(s.alice, 10 * USDC)
    other = s.at("MockCollateral", C.deploy(s.w3, s.admin, "MockCollateral", "Other", "OTH")[0])
    s.tx(s.admin, other.functions.initialize(s.admin.address))
    w1 = s.w1.address
    data = s.calldata(s.usdc, "transfer", w1, 1)
    # not on the executor's list
    assert_reverts(s.executor.functions.execute(s.pa.address, other.address, data), w1, "target not allowed")
    assert_reverts(s.executor.functions.pullCollateral(other.address, [s.pa.address], [1]), w1, "target not allowed")
    # on the executor's list but not the factory's: the proxy itself refuses
    s.grant(s.executor, "target", [other.address])
    assert_reverts(s.executor.functions.pullCollateral(other.address, [s.pa.address], [1]), w1, "target not allowed")
    # both: allowed
    s.grant(s.factory, "target", [other.address])
    s.tx(s.admin, other.functions.mint(s.pa.address, 5))
    s.tx(s.w1, s.executor.functions.pullCollateral(other.address, [s.pa.address], [5]))
    assert other.functions.balanceOf(s.v1.address).call() == 5 and other.functions.balanceOf(w1).call() == 0
    # removing it from the factory list stops it again
    s.tx(s.admin, s.factory.functions.setTargets([s.usdc.address], False))
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]), w1, "target not allowed")


def test_batches_accept_only_proxies_of_trusted_factories(s):
    w1 = s.w1.address
    s.fund_proxy(s.alice, 10 * USDC)
    # not a proxy at all (an EOA, a token contract)
    assert_reverts(s.executor.functions.pushCollateral(s.usdc.address, [s.eve.address], [1]), w1)
    assert_reverts(s.executor.functions.pushCollateral(s.usdc.address, [s.usdc.address], [1]), w1)
    # a proxy of a second factory the executor does not trust (even though it names this executor)
    f2 = s.at("ProxyFactory", C.deploy_factory(s.w3, s.admin, s.executor.address, [s.usdc.address])[0])
    s.tx(s.admin, f2.functions.createProxy(s.eve.address))
    p2 = f2.functions.proxyOf(s.eve.address).call()
    s.mint(p2, USDC)
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [p2], [1]), w1, "untrusted factory")
    assert_reverts(s.executor.functions.pushCollateral(s.usdc.address, [p2], [1]), w1, "untrusted factory")
    s.grant(s.executor, "factory", [f2.address])
    s.tx(s.w1, s.executor.functions.pullCollateral(s.usdc.address, [p2, s.pa.address], [USDC, USDC]))
    assert s.bal(s.v1.address) == 2 * USDC
    # untrusting the original factory cuts its proxies off
    s.tx(s.admin, s.executor.functions.setFactories([s.factory.address], False))
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]), w1, "untrusted factory")
    # length mismatch
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [p2], [1, 2]), w1, "length mismatch")


def test_set_executor_rebinds_every_proxy(s):
    s.fund_proxy(s.alice, 10 * USDC)
    s.fund_proxy(s.bob, 10 * USDC)
    new = s.at("Executor", C.deploy(s.w3, s.admin, "Executor", 3600)[0])
    s.tx(s.admin, new.functions.setFactories([s.factory.address], True))  # the new Executor's setup phase
    s.tx(s.admin, new.functions.setTargets([s.usdc.address, s.ctf.address], True))
    s.tx(s.admin, new.functions.addWorkers([s.w2.address, s.w2.address]))
    rc = s.grant(s.factory, "executor", [new.address])  # queued, delay passed, applied
    ev = s.factory.events.ExecutorChanged().process_receipt(rc, errors=DISCARD)[0]["args"]
    assert (ev["previousExecutor"], ev["newExecutor"]) == (s.executor.address, new.address)
    # old executor: every proxy refuses it now
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]), s.w1.address, "not the executor")
    assert_reverts(s.executor.functions.pullCollateral(s.usdc.address, [s.pb.address], [1]), s.w1.address, "not the executor")
    s.tx(s.w2, new.functions.pullCollateral(s.usdc.address, [s.pa.address, s.pb.address], [USDC, 2 * USDC]))
    assert s.bal(s.w2.address) == 3 * USDC


# ----------------------------------------------------------------- pause
def test_pause_semantics_owner_can_always_withdraw(s):
    s.fund_proxy(s.alice, 10 * USDC)
    s.split(s.mm, 4 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 4 * USDC, b""))
    ex, w1 = s.executor, s.w1.address
    # global executor pause: every worker path stops
    rc = s.tx(s.admin, ex.functions.pause())
    assert ex.functions.paused().call() and ex.events.Paused().process_receipt(rc, errors=DISCARD)
    assert_reverts(ex.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]), w1, "paused")
    assert_reverts(ex.functions.execute(s.pa.address, s.usdc.address, s.calldata(s.usdc, "transfer", w1, 1)), w1, "paused")
    assert_reverts(ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [1]), w1, "paused")
    s.tx(s.alice, s.pa.functions.withdraw(s.usdc.address, USDC))
    s.tx(s.admin, ex.functions.unpause())
    s.tx(s.w1, ex.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]))
    # per-proxy pause on the factory: that proxy stops, the other one keeps working
    s.fund_proxy(s.bob, 10 * USDC)
    rc = s.tx(s.admin, s.factory.functions.setProxiesPaused([s.pa.address], True))
    assert s.factory.functions.isPaused(s.pa.address).call() and not s.factory.functions.isPaused(s.pb.address).call()
    assert_reverts(ex.functions.pullCollateral(s.usdc.address, [s.pa.address], [1]), w1, "proxy paused")
    assert_reverts(ex.functions.pullOutcome(s.ctf.address, s.yes, [s.pa.address], [1]), w1, "proxy paused")
    s.tx(s.w1, ex.functions.pullCollateral(s.usdc.address, [s.pb.address], [1]))
    # ... and its owner can still take everything out, ERC-20 and ERC-1155
    s.tx(s.alice, s.pa.functions.withdraw(s.usdc.address, s.bal(s.pa.address)))
    s.tx(s.alice, s.pa.functions.withdraw1155(s.ctf.address, s.yes, 4 * USDC))
    assert s.bal(s.pa.address) == 0 and s.yes_bal(s.pa.address) == 0
    assert s.bal(s.alice.address) == 10 * USDC - 1 and s.yes_bal(s.alice.address) == 4 * USDC
    # deposits and pushes into a paused proxy still work (the owner can withdraw them)
    s.mint(s.w2.address, 5)
    s.tx(s.w2, ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [5]))
    assert s.bal(s.pa.address) == 5
    assert_reverts(s.factory.functions.setProxiesPaused([s.eve.address], True), s.admin.address, "not a proxy")
    s.tx(s.admin, s.factory.functions.setProxiesPaused([s.pa.address], False))
    assert not s.factory.functions.isPaused(s.pa.address).call()


def test_owner_approvals_and_deposit(s):
    s.fund_proxy(s.alice, 3 * USDC)
    assert s.bal(s.pa.address) == 3 * USDC
    s.tx(s.alice, s.pa.functions.approve(s.usdc.address, s.eve.address, 7))
    assert s.usdc.functions.allowance(s.pa.address, s.eve.address).call() == 7  # owner may approve anyone
    s.tx(s.alice, s.pa.functions.setApprovalForAll(s.ctf.address, s.eve.address, True))
    assert s.ctf.functions.isApprovedForAll(s.pa.address, s.eve.address).call()


# ----------------------------------------------------------------- ERC-1155 receipt
def test_proxy_accepts_erc1155_single_and_batch(s):
    s.split(s.mm, 10 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 3 * USDC, b"hello"))
    s.tx(s.mm, s.ctf.functions.safeBatchTransferFrom(s.mm.address, s.pa.address, [s.yes, s.no], [1 * USDC, 2 * USDC], b""))
    assert s.ctf.functions.balanceOfBatch([s.pa.address] * 2, [s.yes, s.no]).call() == [4 * USDC, 2 * USDC]
    assert s.pa.functions.supportsInterface(bytes.fromhex("4e2312e0")).call()
    assert s.pa.functions.supportsInterface(bytes.fromhex("01ffc9a7")).call()
    assert not s.pa.functions.supportsInterface(bytes.fromhex("ffffffff")).call()
    # contracts without the hooks are refused by the CTF (the original proxy's bug)
    assert_reverts(s.ctf.functions.safeTransferFrom(s.mm.address, s.usdc.address, s.yes, 1, b""), s.mm.address)


# ----------------------------------------------------------------- round trip
def make_order(w3, exchange, key, token_id, side, maker_amount, taker_amount):
    """(contract tuple, package order hash) of an EOA V2 order signed with py_clob_client_v2."""
    from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
    from py_clob_client_v2.order_utils.model.side import Side
    from py_clob_client_v2.signer import Signer

    b = ExchangeOrderBuilderV2(exchange, w3.eth.chain_id, Signer(key, w3.eth.chain_id))
    so = b.build_signed_order(OrderDataV2(maker=Account.from_key(key).address, tokenId=str(token_id),
                                          makerAmount=str(maker_amount), takerAmount=str(taker_amount), side=Side(side)))
    tup = (int(so.salt), so.maker, so.signer, int(so.tokenId), int(so.makerAmount), int(so.takerAmount), int(so.side),
           int(so.signatureType), int(so.timestamp), bytes.fromhex(so.metadata[2:].zfill(64)),
           bytes.fromhex(so.builder[2:].zfill(64)), bytes.fromhex(so.signature[2:]))
    return tup, b.build_order_hash(b.build_order_typed_data(so))


def test_round_trip_pull_buy_push_then_sell_back(s):
    from py_clob_client_v2.order_utils.abi.abis import exchange_v2_abi

    w3, ex, w1, v1 = s.w3, s.executor, s.w1, s.v1  # worker w1 signs the Executor calls, its wallet v1 trades
    s.fund_proxy(s.alice, 20 * USDC)
    s.fund_proxy(s.bob, 10 * USDC)
    s.split(s.mm, 100 * USDC)  # market maker holds YES+NO
    s.mint(s.mm.address, 50 * USDC)  # ... and cash to bid with
    s.tx(s.mm, s.ctf.functions.setApprovalForAll(s.ex.address, True))
    s.tx(s.mm, s.usdc.functions.approve(s.ex.address, MAX))

    # 1. pull the followers' stakes into the worker's trading wallet (alice 6, bob 3)
    s.tx(w1, ex.functions.pullCollateral(s.usdc.address, [s.pa.address, s.pb.address], [6 * USDC, 3 * USDC]))
    assert s.bal(v1.address) == 9 * USDC and s.bal(w1.address) == 0

    # 2. worker BUYs 15 YES @ 0.60 (9 USDC) against the market maker's SELL 50 @ 0.60
    taker, taker_hash = make_order(w3, s.ex.address, v1.key.hex(), s.yes, 0, 9 * USDC, 15 * USDC)
    maker, maker_hash = make_order(w3, s.ex.address, s.mm.key.hex(), s.yes, 1, 50 * USDC, 30 * USDC)
    rc = s.tx(s.admin, s.ex.functions.matchOrders(s.cid, taker, [maker], 9 * USDC, [15 * USDC], 0, [0]))
    assert s.yes_bal(v1.address) == 15 * USDC and s.bal(v1.address) == 0
    pkg = w3.eth.contract(address=s.ex.address, abi=exchange_v2_abi)
    fills = pkg.events.OrderFilled().process_receipt(rc, errors=DISCARD)
    topic = event_abi_to_log_topic(next(e for e in exchange_v2_abi if e.get("name") == "OrderFilled"))
    assert [log["topics"][0] for log in rc["logs"] if log["address"] == s.ex.address].count(topic) == 2
    m, t = fills[0]["args"], fills[1]["args"]
    assert ("0x" + m["orderHash"].hex(), m["maker"], m["taker"], m["side"], m["tokenId"],
            m["makerAmountFilled"], m["takerAmountFilled"], m["fee"]) == (
        maker_hash, s.mm.address, v1.address, 1, s.yes, 15 * USDC, 9 * USDC, 0)
    assert ("0x" + t["orderHash"].hex(), t["maker"], t["taker"], t["side"], t["makerAmountFilled"],
            t["takerAmountFilled"]) == (taker_hash, v1.address, s.ex.address, 0, 9 * USDC, 15 * USDC)

    # 3. push the shares from the wallet to the proxies pro rata (alice 10, bob 5)
    s.tx(w1, ex.functions.pushOutcome(s.ctf.address, s.yes, [s.pa.address, s.pb.address], [10 * USDC, 5 * USDC]))
    assert (s.yes_bal(s.pa.address), s.yes_bal(s.pb.address), s.yes_bal(v1.address)) == (10 * USDC, 5 * USDC, 0)
    assert (s.bal(s.pa.address), s.bal(s.pb.address)) == (14 * USDC, 7 * USDC)

    # 4. the leader sells: pull the shares back, SELL to the market maker's BUY @ 0.70, push proceeds
    s.tx(w1, ex.functions.pullOutcome(s.ctf.address, s.yes, [s.pa.address, s.pb.address], [10 * USDC, 5 * USDC]))
    assert s.yes_bal(v1.address) == 15 * USDC and s.yes_bal(w1.address) == 0
    sell, _ = make_order(w3, s.ex.address, v1.key.hex(), s.yes, 1, 15 * USDC, 21 * USDC // 2)
    bid, _ = make_order(w3, s.ex.address, s.mm.key.hex(), s.yes, 0, 14 * USDC, 20 * USDC)
    s.tx(s.admin, s.ex.functions.matchOrders(s.cid, sell, [bid], 15 * USDC, [21 * USDC // 2], 0, [0]))
    assert s.bal(v1.address) == 21 * USDC // 2
    s.tx(w1, ex.functions.pushCollateral(s.usdc.address, [s.pa.address, s.pb.address], [7 * USDC, 7 * USDC // 2]))
    assert (s.bal(s.pa.address), s.bal(s.pb.address)) == (21 * USDC, 21 * USDC // 2)
    # 5. followers withdraw everything
    s.tx(s.alice, s.pa.functions.withdraw(s.usdc.address, 21 * USDC))
    assert s.bal(s.alice.address) == 21 * USDC
