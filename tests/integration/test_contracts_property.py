"""Property: whatever admins, workers, an attacker and users do, a proxy's funds (collateral and outcome
tokens) only ever leave it to its owner or to the trading wallet of a worker registered at that moment.

Random action sequences run against the real anvil; every example starts from the same snapshot and is
rolled back afterwards. Every token movement out of a proxy is read from the receipts' logs
(Transfer / TransferSingle / TransferBatch), so nothing is inferred from balances.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from copytrade_cli.chain.lanes import floor_fees
from copytrade_cli.chain.roles import advance_time
from tests.integration.test_contracts import MAX, USDC, revert_to, snapshot, system_base  # noqa: F401

GAS = 1_500_000  # fixed: reverting calls are mined (status 0) instead of failing estimation

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from([
            "exec_transfer", "exec_approve", "exec_1155", "exec_approval_all", "exec_raw",
            "pull_collateral", "pull_outcome", "push_outcome", "push_collateral",
            "eve_steal_erc20", "eve_steal_1155", "eve_direct_proxy", "eve_owner_calls",
            "admin_add_eve", "admin_remove_worker", "admin_pause", "admin_unpause", "admin_pause_proxy",
            "admin_unpause_proxy", "user_withdraw", "user_deposit",
        ]),
        st.integers(0, 7), st.integers(0, 9), st.integers(0, 3), st.integers(0, 12 * USDC),
    ),
    min_size=3, max_size=14,
)


class Checker:
    def __init__(self, s):
        self.s = s
        w3 = s.w3
        self.proxies = {s.pa.address: s.alice.address, s.pb.address: s.bob.address}
        t = w3.keccak
        self.t_transfer = t(text="Transfer(address,address,uint256)")
        self.t_single = t(text="TransferSingle(address,address,address,uint256,uint256)")
        self.t_batch = t(text="TransferBatch(address,address,address,uint256[],uint256[])")
        self.moves = 0

    def send(self, acct, fn):
        s = self.s
        tx = fn.build_transaction({"from": acct.address, "gas": GAS, **floor_fees(s.w3),
                                   "nonce": s.w3.eth.get_transaction_count(acct.address, "pending"),
                                   "chainId": s.w3.eth.chain_id})
        h = s.w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
        rc = s.w3.eth.wait_for_transaction_receipt(h, timeout=30)
        self.check(rc)
        return rc

    def check(self, rc):
        s = self.s
        for log in rc["logs"]:
            topics = log["topics"]
            if topics[0] == self.t_transfer and log["address"] == s.usdc.address:
                frm, to = (s.w3.to_checksum_address(x[-20:]) for x in topics[1:3])
                if int.from_bytes(bytes(log["data"])[:32], "big") == 0:
                    continue  # a zero-value transferFrom needs no allowance and moves nothing
            elif topics[0] in (self.t_single, self.t_batch) and log["address"] == s.ctf.address:
                frm, to = (s.w3.to_checksum_address(x[-20:]) for x in topics[2:4])
                if topics[0] == self.t_single and int.from_bytes(bytes(log["data"])[32:64], "big") == 0:
                    continue  # (id, value): a zero-value transfer moves nothing
            else:
                continue
            if frm in self.proxies:
                self.moves += 1
                owner = self.proxies[frm]
                assert to == owner or self.registered_wallet(to, rc["blockNumber"]), (
                    f"proxy {frm} paid {to}: neither its owner {owner} nor a registered worker's trading wallet")

    def registered_wallet(self, to, block):
        ex = self.s.executor
        worker = ex.functions.workerOf(to).call(block_identifier=block)
        return (int(worker, 16) != 0 and ex.functions.isWorker(worker).call(block_identifier=block)
                and ex.functions.walletOf(worker).call(block_identifier=block) == to)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_proxy_funds_only_leave_to_owner_or_registered_workers_wallet(system_base, actions):  # noqa: F811
    s = system_base
    snap = snapshot(s.w3)
    try:
        run_actions(s, actions)
    finally:
        revert_to(s.w3, snap)


def run_actions(s, actions):
    c = Checker(s)
    # every example starts with funded proxies (collateral + YES), funded workers
    for user in (s.alice, s.bob):
        s.fund_proxy(user, 20 * USDC)
    s.split(s.mm, 40 * USDC)
    for p in (s.pa, s.pb):
        s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, p.address, s.yes, 10 * USDC, b""))
    for wk in (s.v1, s.w2):  # the workers' trading wallets (w2 is its own)
        s.mint(wk.address, 10 * USDC)
        s.tx(s.mm, s.ctf.functions.safeTransferFrom(s.mm.address, wk.address, s.yes, 5 * USDC, b""))

    people = [s.w1, s.v1, s.w2, s.eve, s.alice, s.bob, s.mm, s.admin]
    proxies = [s.pa, s.pb]
    ex = s.executor
    for kind, i, j, k, amount in actions:
        worker = [s.w1, s.w2, s.eve][k % 3]  # sometimes the attacker tries worker paths
        proxy = proxies[i % 2]
        to = (people + [p for p in proxies])[j % 10]
        to_addr = to.address
        spender = [s.eve.address, s.ex.address, s.usdc.address][k % 3]
        if kind == "exec_transfer":
            c.send(worker, ex.functions.execute(proxy.address, s.usdc.address, s.calldata(s.usdc, "transfer", to_addr, amount)))
        elif kind == "exec_approve":
            c.send(worker, ex.functions.execute(proxy.address, s.usdc.address, s.calldata(s.usdc, "approve", spender, amount)))
        elif kind == "exec_1155":
            frm = proxies[(i + k) % 2].address
            c.send(worker, ex.functions.execute(proxy.address, s.ctf.address,
                                                s.calldata(s.ctf, "safeTransferFrom", frm, to_addr, s.yes, amount, b"")))
        elif kind == "exec_approval_all":
            c.send(worker, ex.functions.execute(proxy.address, s.ctf.address,
                                                s.calldata(s.ctf, "setApprovalForAll", spender, bool(j % 2))))
        elif kind == "exec_raw":
            data = [s.calldata(s.usdc, "transferFrom", proxy.address, to_addr, amount),
                    s.calldata(s.ctf, "safeBatchTransferFrom", proxy.address, to_addr, [s.yes], [amount], b""),
                    bytes.fromhex("a9059cbb") + bytes(12) + bytes.fromhex(to_addr[2:]) + amount.to_bytes(32, "big") + b"\0",
                    bytes.fromhex("a9059cbb") + b"\x01" + bytes(11) + bytes.fromhex(to_addr[2:]) + amount.to_bytes(32, "big")][k]
            c.send(worker, ex.functions.execute(proxy.address, [s.usdc.address, s.ctf.address][j % 2], data))
        elif kind == "pull_collateral":
            c.send(worker, ex.functions.pullCollateral(s.usdc.address, [p.address for p in proxies[: 1 + j % 2]], [amount] * (1 + j % 2)))
        elif kind == "pull_outcome":
            c.send(worker, ex.functions.pullOutcome(s.ctf.address, s.yes, [proxy.address], [amount]))
        elif kind == "push_outcome":
            c.send(worker, ex.functions.pushOutcome(s.ctf.address, s.yes, [proxy.address, to_addr][: 1 + j % 2], [amount // 4] * (1 + j % 2)))
        elif kind == "push_collateral":
            c.send(worker, ex.functions.pushCollateral(s.usdc.address, [proxy.address], [amount // 4]))
        elif kind == "eve_steal_erc20":
            # uses any allowance a worker may have managed to give her
            c.send(s.eve, s.usdc.functions.transferFrom(proxy.address, s.eve.address, amount))
        elif kind == "eve_steal_1155":
            c.send(s.eve, s.ctf.functions.safeTransferFrom(proxy.address, s.eve.address, s.yes, amount, b""))
        elif kind == "eve_direct_proxy":
            c.send([s.eve, s.w1][k % 2], proxy.functions.execute(s.usdc.address, s.calldata(s.usdc, "transfer", s.eve.address, amount)))
        elif kind == "eve_owner_calls":
            fn = [proxy.functions.withdraw(s.usdc.address, amount), proxy.functions.withdraw1155(s.ctf.address, s.yes, amount),
                  proxy.functions.approve(s.usdc.address, s.eve.address, MAX),
                  proxy.functions.setApprovalForAll(s.ctf.address, s.eve.address, True)][k]
            c.send([s.eve, s.w1, s.admin][j % 3], fn)
        elif kind == "admin_add_eve":
            # a sealed Executor's grants wait its delay: queue, let it pass, apply (the delay itself is
            # attacked in test_contracts_attacks.py)
            pair = [s.eve.address, s.eve.address]  # eve as a worker trading from her own address
            if ex.functions.grantEta(ex.functions.grantId(1, pair).call()).call() == 0:
                c.send(s.admin, ex.functions.queueGrant(1, pair))
            advance_time(s.w3, ex.functions.ADMIN_DELAY().call())
            c.send(s.admin, ex.functions.applyGrant(1, pair))
        elif kind == "admin_remove_worker":
            c.send(s.admin, ex.functions.removeWorkers([[s.w1, s.w2, s.eve][k % 3].address]))
        elif kind == "admin_pause":
            c.send(s.admin, ex.functions.pause())
        elif kind == "admin_unpause":
            c.send(s.admin, ex.functions.unpause())
        elif kind == "admin_pause_proxy":
            c.send(s.admin, s.factory.functions.setProxiesPaused([proxy.address], True))
        elif kind == "admin_unpause_proxy":
            c.send(s.admin, s.factory.functions.setProxiesPaused([proxy.address], False))
        elif kind == "user_withdraw":
            owner = [s.alice, s.bob][i % 2]
            bal = s.bal(proxy.address)
            rc = c.send(owner, proxy.functions.withdraw(s.usdc.address, min(amount, bal)))
            assert rc["status"] == 1  # never blocked: not by pause, not by anything a worker did
            ybal = s.yes_bal(proxy.address)
            assert c.send(owner, proxy.functions.withdraw1155(s.ctf.address, s.yes, min(amount, ybal)))["status"] == 1
        elif kind == "user_deposit":
            owner = [s.alice, s.bob][i % 2]
            s.mint(owner.address, amount)
            c.send(owner, s.usdc.functions.approve(proxy.address, amount))
            c.send(owner, proxy.functions.deposit(s.usdc.address, amount))
