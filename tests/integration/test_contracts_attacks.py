"""Attacks on the copytrade contracts (#15) on a real anvil, with an attacker account `eve` and a hostile
contract (contracts/mocks/MockAttacker.vy). Listed in docs/faults.md; the trust model they defend is in
docs/contracts.md."""
from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from copytrade_cli.chain import contracts as C
from copytrade_cli.chain.roles import advance_time
from tests.integration.test_contracts import USDC, assert_reverts, revert_reason, revert_to, snapshot, system_base  # noqa: F401

GRANT_WORKER, GRANT_TARGET, GRANT_FACTORY = 1, 2, 3  # Executor.queueGrant kinds
F_GRANT_EXECUTOR = 1  # ProxyFactory.queueGrant kind
LEG_OK, LEG_NO_CODE, LEG_UNTRUSTED, LEG_NOT_PROXY, LEG_PAUSED, LEG_OTHER_EXECUTOR = range(6)


@pytest.fixture
def s(system_base):
    """The deployed (sealed) system, rolled back after each test."""
    snap = snapshot(system_base.w3)
    yield system_base
    revert_to(system_base.w3, snap)


def attacker(s, deployer=None):
    """A fresh MockAttacker deployed by `deployer` (eve by default)."""
    return s.at("MockAttacker", C.deploy(s.w3, deployer or s.eve, "MockAttacker")[0])


def raw_call_reverts(s, to, data: bytes, sender) -> bool:
    """True if an eth_call of raw `data` to `to` reverts."""
    try:
        s.w3.eth.call({"from": sender, "to": to, "data": "0x" + data.hex()})
    except Exception:  # noqa: BLE001 — any revert, with or without a reason
        return True
    return False


def delay(s) -> int:
    return s.executor.functions.ADMIN_DELAY().call()


# ----------------------------------------------------------------- the delay
def test_malicious_executor_cannot_act_before_the_delay_and_followers_withdraw_first(s):
    s.fund_proxy(s.alice, 10 * USDC)
    s.fund_proxy(s.bob, 10 * USDC)
    f, eve = s.factory, s.eve
    evil = attacker(s)
    drain = lambda p: s.calldata(p, "execute", s.usdc.address, s.calldata(s.usdc, "transfer", eve.address, 10 * USDC))  # noqa: E731
    # the factory admin key is stolen: eve queues her contract as the executor
    rc = s.tx(s.admin, f.functions.queueGrant(F_GRANT_EXECUTOR, [evil.address]))
    ev = f.events.GrantQueued().process_receipt(rc, errors=DISCARD)[0]["args"]
    assert ev["kind"] == F_GRANT_EXECUTOR and ev["accounts"] == [evil.address]
    assert ev["eta"] == s.w3.eth.get_block(rc["blockNumber"])["timestamp"] + delay(s)
    assert f.functions.executor().call() == s.executor.address  # nothing changed yet
    # before the delay: the evil executor cannot move anything, nobody can apply it
    for p in (s.pa, s.pb):
        assert_reverts(evil.functions.call(p.address, drain(p)), eve.address, "not the executor")
    for who in (eve.address, s.admin.address):
        assert_reverts(f.functions.applyGrant(F_GRANT_EXECUTOR, [evil.address]), who, "delay not over")
    advance_time(s.w3, delay(s) - 60)
    assert_reverts(f.functions.applyGrant(F_GRANT_EXECUTOR, [evil.address]), eve.address, "delay not over")
    # ... while the real executor keeps copying, and alice, who saw the event, withdraws everything
    s.tx(s.w1, s.executor.functions.pullCollateral(s.usdc.address, [s.pa.address], [USDC]))
    s.tx(s.alice, s.pa.functions.withdraw(s.usdc.address, 9 * USDC))
    assert s.bal(s.alice.address) == 9 * USDC
    snap = snapshot(s.w3)
    # the legitimate admin (or whoever holds the key first) can cancel it
    rc = s.tx(s.admin, f.functions.cancelGrant(F_GRANT_EXECUTOR, [evil.address]))
    assert f.events.GrantCancelled().process_receipt(rc, errors=DISCARD)
    advance_time(s.w3, 120)
    assert_reverts(f.functions.applyGrant(F_GRANT_EXECUTOR, [evil.address]), eve.address, "not queued")
    revert_to(s.w3, snap)
    # not cancelled: after the delay anyone may apply it; it takes what was left (bob), not alice's
    advance_time(s.w3, 120)
    rc = s.tx(eve, f.functions.applyGrant(F_GRANT_EXECUTOR, [evil.address]))
    assert f.events.ExecutorChanged().process_receipt(rc, errors=DISCARD)[0]["args"]["newExecutor"] == evil.address
    s.tx(eve, evil.functions.call(s.pb.address, drain(s.pb)))
    assert s.bal(eve.address) == 10 * USDC and s.bal(s.alice.address) == 9 * USDC
    # owners' withdrawals stay unconditional, whatever executor is bound
    s.tx(s.alice, s.pa.functions.withdraw(s.usdc.address, 0))


def test_worker_target_and_factory_grants_wait_the_delay(s):
    ex, eve = s.executor, s.eve.address
    assert ex.functions.sealed().call()
    # the setup-phase paths are closed once sealed (removals stay immediate)
    assert_reverts(ex.functions.addWorkers([eve, eve]), s.admin.address, "sealed")
    assert_reverts(ex.functions.setTargets([eve], True), s.admin.address, "sealed")
    assert_reverts(ex.functions.setFactories([eve], True), s.admin.address, "sealed")
    assert_reverts(s.factory.functions.setTargets([eve], True), s.admin.address, "queueGrant")
    accounts = {GRANT_WORKER: [eve, eve], GRANT_TARGET: [eve], GRANT_FACTORY: [eve]}  # a worker comes with its wallet
    for kind in (GRANT_WORKER, GRANT_TARGET, GRANT_FACTORY):
        s.tx(s.admin, ex.functions.queueGrant(kind, accounts[kind]))
        assert_reverts(ex.functions.queueGrant(kind, accounts[kind]), s.admin.address, "already queued")
        assert_reverts(ex.functions.applyGrant(kind, accounts[kind]), eve, "delay not over")
    assert not (ex.functions.isWorker(eve).call() or ex.functions.isTarget(eve).call()
                or ex.functions.isFactory(eve).call())
    advance_time(s.w3, delay(s))
    for kind in (GRANT_WORKER, GRANT_TARGET, GRANT_FACTORY):
        rc = s.tx(s.bob, ex.functions.applyGrant(kind, accounts[kind]))  # anyone may apply an announced grant
        assert ex.events.GrantApplied().process_receipt(rc, errors=DISCARD)[0]["args"]["kind"] == kind
        assert_reverts(ex.functions.applyGrant(kind, accounts[kind]), eve, "not queued")  # once
    assert ex.functions.isWorker(eve).call() and ex.functions.isTarget(eve).call() and ex.functions.isFactory(eve).call()
    # revocations are immediate
    s.tx(s.admin, ex.functions.removeWorkers([eve]))
    s.tx(s.admin, ex.functions.setTargets([eve], False))
    s.tx(s.admin, ex.functions.setFactories([eve], False))
    assert not (ex.functions.isWorker(eve).call() or ex.functions.isTarget(eve).call()
                or ex.functions.isFactory(eve).call())


# ----------------------------------------------------------------- two-step ownership
def test_two_step_ownership_proposed_owner_has_no_power_until_accept(s):
    ex, f = s.executor, s.factory
    tre = s.at("Treasury", s.stack.treasury)
    s.mint(tre.address, 5 * USDC)
    bob, eve, admin = s.bob.address, s.eve.address, s.admin.address
    cases = [(ex, "transferOwnership", "acceptOwnership", "owner", "pendingOwner", "only owner",
              lambda c: c.functions.pause()),
             (f, "transferAdmin", "acceptAdmin", "admin", "pendingAdmin", "only admin",
              lambda c: c.functions.setProxiesPaused([s.pa.address], True)),
             (tre, "transferOwnership", "acceptOwnership", "owner", "pendingOwner", "only owner",
              lambda c: c.functions.withdraw(s.usdc.address, bob, USDC))]
    for c, propose, accept, getter, pending, refusal, power in cases:
        s.tx(s.admin, getattr(c.functions, propose)(eve))  # a typo / a wrong address first
        s.tx(s.admin, getattr(c.functions, propose)(bob))  # re-proposing replaces it
        assert getattr(c.functions, pending)().call() == bob and getattr(c.functions, getter)().call() == admin
        assert_reverts(power(c), bob, refusal)  # the proposed owner has no power yet
        assert revert_reason(power(c), admin) is None  # the old owner keeps it
        for third in (eve, s.w1.address):  # nobody else can accept, not the earlier proposal either
            assert_reverts(getattr(c.functions, accept)(), third, "only pending")
        s.tx(s.bob, getattr(c.functions, accept)())
        assert getattr(c.functions, getter)().call() == bob
        assert getattr(c.functions, pending)().call() == "0x" + "0" * 40
        assert_reverts(power(c), admin, refusal)  # the old owner lost it
        assert revert_reason(power(c), bob) is None
    # the new Executor owner can queue grants, the old one cannot
    assert_reverts(ex.functions.queueGrant(GRANT_WORKER, [eve, eve]), admin, "only owner")
    s.tx(s.bob, ex.functions.queueGrant(GRANT_WORKER, [eve, eve]))


def test_proposing_an_owner_ends_the_setup_phase(s):
    new = s.at("Executor", C.deploy(s.w3, s.admin, "Executor", 3600)[0])
    s.tx(s.admin, new.functions.addWorkers([s.w1.address, s.v1.address]))  # setup: immediate
    assert not new.functions.sealed().call()
    s.tx(s.admin, new.functions.transferOwnership(s.bob.address))
    assert new.functions.sealed().call()
    assert_reverts(new.functions.addWorkers([s.eve.address, s.eve.address]), s.admin.address, "sealed")
    s.tx(s.bob, new.functions.acceptOwnership())
    assert_reverts(new.functions.addWorkers([s.eve.address, s.eve.address]), s.bob.address, "sealed")  # never for the new owner


# ----------------------------------------------------------------- calldata
def test_dirty_address_bits_and_non_bools_in_raw_calldata_are_refused(s):
    s.fund_proxy(s.alice, 10 * USDC)
    s.split(s.mm, 5 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 5 * USDC, b""))
    ex, pa, w1, v1 = s.executor, s.pa, s.w1.address, s.v1.address

    def dirty(data: bytes, word: int) -> bytes:
        b = bytearray(data)
        b[4 + 32 * word] = 0x01  # a high byte of the address word
        return bytes(b)

    def via(target, data):
        return ex.functions.execute(pa.address, target, data)

    # ERC-20 approve: the path is gone, clean or dirty spender
    approve = s.calldata(s.usdc, "approve", s.ex.address, USDC)
    for data in (approve, dirty(approve, 0)):
        assert_reverts(via(s.usdc.address, data), w1, "call not allowed")
    # ERC-1155 safeTransferFrom: dirty `from` or `to`
    stf = s.calldata(s.ctf, "safeTransferFrom", pa.address, v1, s.yes, 1, b"")  # to w1's trading wallet
    assert revert_reason(via(s.ctf.address, stf), w1) is None  # the clean one passes
    for word in (0, 1):
        assert_reverts(via(s.ctf.address, dirty(stf, word)), w1, "dirty address")
    # setApprovalForAll with approved = 2 (and the path is gone anyway)
    safa = bytearray(s.calldata(s.ctf, "setApprovalForAll", s.ex.address, True))
    safa[-1] = 2
    assert_reverts(via(s.ctf.address, bytes(safa)), w1, "call not allowed")
    # the Executor's own arguments: dirty address words in the outer calldata are refused by the ABI decoder
    for fn, word in ((ex.functions.pullCollateral(s.usdc.address, [pa.address], [USDC]), 0),
                     (ex.functions.execute(pa.address, s.ctf.address, stf), 0),
                     (ex.functions.execute(pa.address, s.ctf.address, stf), 1)):
        data = bytes.fromhex(fn._encode_transaction_data()[2:])
        assert not raw_call_reverts(s, ex.address, data, w1)
        assert raw_call_reverts(s, ex.address, dirty(data, word), w1)
    assert s.yes_bal(v1) == 0 and s.bal(v1) == 0  # nothing moved (eth_call only)


def test_malformed_bytes_offsets_are_refused(s):
    s.split(s.mm, 5 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 5 * USDC, b""))
    ex, pa, w1 = s.executor, s.pa, s.w1.address
    stf = bytearray(s.calldata(s.ctf, "safeTransferFrom", pa.address, s.v1.address, s.yes, 1, b"\x01\x02"))
    assert revert_reason(ex.functions.execute(pa.address, s.ctf.address, bytes(stf)), w1) is None
    # inner (the ERC-1155 call's bytes argument): offset not 0xa0, length beyond the data, trailing junk
    bad_offset = bytearray(stf)
    bad_offset[4 + 32 * 4 + 31] = 0x20
    bad_len = bytearray(stf)
    bad_len[4 + 32 * 5 + 31] = 0x40
    for data in (bytes(bad_offset), bytes(bad_len), bytes(stf) + b"\0" * 32, bytes(stf)[:-1]):
        assert_reverts(ex.functions.execute(pa.address, s.ctf.address, data), w1, "bad calldata")
    # outer (Executor.execute's own `data`): an offset or a length pointing outside the calldata
    outer = bytearray(bytes.fromhex(ex.functions.execute(pa.address, s.ctf.address, bytes(stf))
                                    ._encode_transaction_data()[2:]))
    assert not raw_call_reverts(s, ex.address, bytes(outer), w1)
    far = bytearray(outer)
    far[4 + 32 * 2:4 + 32 * 3] = (2**64).to_bytes(32, "big")
    long = bytearray(outer)
    long[4 + 32 * 3:4 + 32 * 4] = (10_000).to_bytes(32, "big")
    for data in (far, long):
        assert raw_call_reverts(s, ex.address, bytes(data), w1)


# ----------------------------------------------------------------- hostile contracts
def test_a_contract_lying_about_factory_cannot_be_used_as_a_proxy(s):
    s.fund_proxy(s.alice, 10 * USDC)
    ex, w1 = s.executor, s.w1.address
    liar = attacker(s)
    s.mint(w1, 5 * USDC)
    # names our trusted factory, which does not know it
    s.tx(s.eve, liar.functions.configure(s.factory.address, ex.address, "0x" + "0" * 40, b""))
    for fn in (ex.functions.pullCollateral(s.usdc.address, [liar.address], [1]),
               ex.functions.pushCollateral(s.usdc.address, [liar.address], [USDC]),
               ex.functions.pushOutcome(s.ctf.address, s.yes, [liar.address], [1]),
               ex.functions.execute(liar.address, s.usdc.address, s.calldata(s.usdc, "transfer", w1, 1))):
        assert_reverts(fn, w1, "not a proxy")
    # names itself as the factory (and says yes to isProxy): not a factory the Executor trusts
    s.tx(s.eve, liar.functions.configure(liar.address, ex.address, "0x" + "0" * 40, b""))
    assert_reverts(ex.functions.pushCollateral(s.usdc.address, [liar.address], [USDC]), w1, "untrusted factory")
    assert ex.functions.legStatus([liar.address, s.pa.address]).call() == [LEG_UNTRUSTED, LEG_OK]
    # and it cannot drive a real proxy itself
    assert_reverts(liar.functions.call(s.pa.address, s.calldata(s.pa, "execute", s.usdc.address,
                                                                 s.calldata(s.usdc, "transfer", s.eve.address, 1))),
                   s.eve.address, "not the executor")
    assert s.bal(s.pa.address) == 10 * USDC


def test_reentry_from_onERC1155Received_cannot_move_funds_twice(s):
    s.split(s.mm, 20 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, s.pa.address, s.yes, 20 * USDC, b""))
    ex = s.executor
    evil = attacker(s)
    s.grant(ex, "worker", [evil.address])  # even a worker the admin registered (after the delay)
    pull = s.calldata(ex, "pullOutcome", s.ctf.address, s.yes, [s.pa.address], [4 * USDC])
    stf = s.calldata(ex, "execute", s.pa.address, s.ctf.address,
                     s.calldata(s.ctf, "safeTransferFrom", s.pa.address, evil.address, s.yes, 4 * USDC, b""))
    for outer, inner in ((pull, pull), (pull, stf), (stf, pull)):
        before = s.yes_bal(s.pa.address)
        s.tx(s.eve, evil.functions.configure(s.factory.address, ex.address, ex.address, inner))
        s.tx(s.eve, evil.functions.call(ex.address, outer))
        assert evil.functions.reentered().call() == 1  # the hook did try
        assert not evil.functions.reenterSucceeded().call()  # ... and the Executor refused (nonreentrant)
        assert s.yes_bal(s.pa.address) == before - 4 * USDC  # moved once
    assert s.yes_bal(evil.address) == 12 * USDC
    # re-entering the proxy directly from the hook fails too: only the Executor may drive it
    direct = s.calldata(s.pa, "execute", s.ctf.address,
                        s.calldata(s.ctf, "safeTransferFrom", s.pa.address, evil.address, s.yes, 1, b""))
    s.tx(s.eve, evil.functions.configure(s.factory.address, ex.address, s.pa.address, direct))
    s.tx(s.eve, evil.functions.call(ex.address, pull))
    assert not evil.functions.reenterSucceeded().call()
    assert s.yes_bal(s.pa.address) == 4 * USDC and s.yes_bal(evil.address) == 16 * USDC


def test_worker_cannot_use_another_workers_approval_or_funds(s):
    ex, w1, w2 = s.executor, s.w1, s.w2
    s.mint(w2.address, 5 * USDC)  # only w2 holds collateral and YES; both approved the Executor
    s.split(s.mm, 5 * USDC)
    s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, w2.address, s.yes, 5 * USDC, b""))
    assert s.usdc.functions.allowance(w2.address, ex.address).call() > 0
    # the pushes spend msg.sender's approval only: w1 has nothing, so they fail for w1
    assert revert_reason(ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [USDC]), w1.address) is not None
    assert revert_reason(ex.functions.pushOutcome(s.ctf.address, s.yes, [s.pa.address], [USDC]), w1.address) is not None
    # and execute cannot be pointed at w2's approval (transferFrom is not a narrowed call)
    assert_reverts(ex.functions.execute(s.pa.address, s.usdc.address,
                                        s.calldata(s.usdc, "transferFrom", w2.address, w1.address, USDC)),
                   w1.address, "call not allowed")
    assert_reverts(ex.functions.execute(s.pa.address, s.ctf.address,
                                        s.calldata(s.ctf, "safeTransferFrom", w2.address, w1.address, s.yes, 1, b"")),
                   w1.address, "proxy's own tokens")
    assert s.bal(w2.address) == 5 * USDC and s.yes_bal(w2.address) == 5 * USDC
    # w2 itself can
    s.tx(w2, ex.functions.pushCollateral(s.usdc.address, [s.pa.address], [USDC]))
    assert s.bal(s.pa.address) == USDC


# ----------------------------------------------------------------- aggregated batches
def test_pausing_one_proxy_inside_an_aggregated_batch_the_others_still_copy(s):
    ex, f, w1 = s.executor, s.factory, s.w1.address
    carol = Account.create()
    s.w3.provider.make_request("anvil_setBalance", [carol.address, hex(10**20)])
    s.tx(s.admin, f.functions.createProxy(carol.address))
    pc = s.at("Proxy", f.functions.proxyOf(carol.address).call())
    for p in (s.pa, s.pb, pc):
        s.mint(p.address, 10 * USDC)
    # foreign legs: a proxy of a factory the Executor does not trust, one of a trusted factory bound to
    # another executor, an EOA
    other_ex = C.deploy(s.w3, s.admin, "Executor", 3600)[0]
    f_untrusted = s.at("ProxyFactory", C.deploy_factory(s.w3, s.admin, ex.address, [s.usdc.address])[0])
    f_other = s.at("ProxyFactory", C.deploy_factory(s.w3, s.admin, other_ex, [s.usdc.address])[0])
    s.grant(ex, "factory", [f_other.address])
    foreign = []
    for fac in (f_untrusted, f_other):
        s.tx(s.admin, fac.functions.createProxy(s.eve.address))
        foreign.append(fac.functions.proxyOf(s.eve.address).call())
    s.tx(s.admin, f.functions.setProxiesPaused([s.pb.address], True))
    legs = [s.pa.address, s.pb.address, pc.address, *foreign, s.eve.address]
    status = ex.functions.legStatus(legs).call()
    assert status == [LEG_OK, LEG_PAUSED, LEG_OK, LEG_UNTRUSTED, LEG_OTHER_EXECUTOR, LEG_NO_CODE]
    # the batch itself stays fail-closed: one paused leg reverts the whole pull
    assert_reverts(ex.functions.pullCollateral(s.usdc.address, legs[:3], [USDC] * 3), w1, "proxy paused")
    # so the off-chain side drops the flagged legs (with their reason) before the pull; the others copy
    kept = [p for p, st in zip(legs, status) if st == LEG_OK]
    s.tx(s.w1, ex.functions.pullCollateral(s.usdc.address, kept, [USDC] * len(kept)))
    assert (s.bal(s.pa.address), s.bal(s.pb.address), s.bal(pc.address)) == (9 * USDC, 10 * USDC, 9 * USDC)
    assert s.bal(s.v1.address) == 2 * USDC  # into w1's trading wallet
