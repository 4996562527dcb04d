"""Who holds power over the copytrade contracts, and how it changes hands (docs/contracts.md "Trust model").

- The deployer (operator key) deploys and wires; `handover` then ends the Executor's setup phase (`seal`) and
  proposes COPYTRADE_ADMIN as owner of the Executor and Treasury and admin of the ProxyFactory (two-step: the
  admin must accept; on the fork we accept for it by impersonation).
- After the setup phase every grant (worker + its trading wallet, target, trusted factory, new executor) is queued
  on chain and takes effect `ADMIN_DELAY` seconds later: `grant` is the one Python path for "queue, wait (fork:
  advance time), apply".
- `admin_status` reads the roles for readiness (admin unset live, admin = a hot key, hand-over pending).
- `funder_account`: COPYTRADE_FUNDER_PRIVATE_KEY, the key that tops up worker gas (fork: the operator key).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError, DeploymentError

# queueGrant kinds, as in contracts/Executor.vy and contracts/ProxyFactory.vy
EXECUTOR_GRANTS = {"worker": 1, "target": 2, "factory": 3}
FACTORY_GRANTS = {"executor": 1, "target": 2}
DEFAULT_ADMIN_DELAY_S = 172_800  # = the COPYTRADE_ADMIN_DELAY_S default

# per contract: (owner getter, pending getter, propose fn, accept fn)
_ROLE_FNS = {"Executor": ("owner", "pendingOwner", "transferOwnership", "acceptOwnership"),
             "Treasury": ("owner", "pendingOwner", "transferOwnership", "acceptOwnership"),
             "ProxyFactory": ("admin", "pendingAdmin", "transferAdmin", "acceptAdmin")}


@dataclass(frozen=True)
class RolePlan:
    """What a deploy sets up: the admin it hands over to, the on-chain delay, and whether this is the fork."""

    admin: str | None
    delay_s: int = DEFAULT_ADMIN_DELAY_S
    on_fork: bool = True


def plan(settings: Any, deployer: str, is_local: bool) -> RolePlan:
    """The role plan from settings: COPYTRADE_ADMIN (fork default: the deployer), COPYTRADE_ADMIN_DELAY_S."""
    admin = settings.copytrade_admin or (deployer if is_local else None)
    return RolePlan(admin=admin, delay_s=int(settings.copytrade_admin_delay_s), on_fork=is_local)


def funder_account(settings: Any):
    """The gas funder: COPYTRADE_FUNDER_PRIVATE_KEY, else (fork only) the operator account."""
    from eth_account import Account

    from .accounts import operator_account

    if settings.copytrade_funder_private_key is not None:
        return Account.from_key(settings.copytrade_funder_private_key.get_secret_value())
    if settings.is_local:
        return operator_account(settings)
    raise ConfigError("COPYTRADE_FUNDER_PRIVATE_KEY is not set: a live network tops up worker gas only from "
                      "its own funder key (not the operator's)")


class AccountLane:
    """The `.address` / `.transact(tx)` face of a TxLane for a bare eth-account (contracts.deploy_stack)."""

    def __init__(self, w3: Any, account: Any):
        self.w3, self.account, self.address = w3, account, account.address

    def transact(self, tx: dict, *, gas: int | None = None, timeout: float = 60) -> Any:
        """Sign, send and wait for a successful receipt."""
        from .contracts import send_tx

        if gas is not None:
            tx = {**tx, "gas": gas}
        return send_tx(self.w3, self.account, tx, timeout=timeout)


def _c(w3: Any, name: str, address: str) -> Any:
    from .contracts import contract

    return contract(w3, name, address)


def _send_as(w3: Any, lane: Any, who: str, tx: dict, on_fork: bool) -> Any:
    """Send `tx` from `who`: with the lane if it is `who`, else on the fork by impersonation."""
    if who.lower() == lane.address.lower():
        return lane.transact(tx)
    if not on_fork:
        raise DeploymentError(f"only {who} can send this (calldata {tx['data']} to {tx['to']}): "
                              "sign it with that key or multisig")
    from .cheats import Cheats
    from .lanes import floor_fees
    from .rpc import wait_receipt

    cheats = Cheats(w3)
    cheats.impersonate(who)
    try:
        cheats.set_balance(who, max(int(w3.eth.get_balance(who)), 10**18))
        h = w3.eth.send_transaction({"from": who, **floor_fees(w3), **tx})
        return wait_receipt(w3, "0x" + bytes(h).hex())
    finally:
        cheats.stop_impersonating(who)


def advance_time(w3: Any, seconds: int) -> None:
    """Fork only: move the chain clock forward and mine a block (so block.timestamp has moved)."""
    version = str(w3.provider.make_request("web3_clientVersion", [])["result"]).lower()
    if "anvil" not in version and "hardhat" not in version:
        raise DeploymentError("advancing time needs the local fork (anvil/hardhat)")
    w3.provider.make_request("evm_increaseTime", [int(seconds)])
    w3.provider.make_request("evm_mine", [])


def worker_pairs(workers: list, wallets: list[str] | None = None) -> list[str]:
    """The Executor's worker-grant list [worker1, wallet1, worker2, wallet2, ...] (contracts/Executor.vy):
    `workers` are addresses (with `wallets` beside them, or each its own wallet when `wallets` is None) or
    (worker, wallet) tuples."""
    out: list[str] = []
    for i, w in enumerate(workers):
        if isinstance(w, (tuple, list)):
            out += [w[0], w[1]]
        else:
            out += [w, wallets[i] if wallets is not None else w]
    return out


@dataclass
class GrantResult:
    """What `grant` did: `immediate` (setup phase), `applied` (queued then applied) or `queued` (eta later)."""

    contract: str
    kind: str
    accounts: list[str]
    status: str
    eta: int | None = None
    txs: list[str] = field(default_factory=list)


def _hash(r: Any) -> str:
    return "0x" + bytes(r["transactionHash"]).hex()


def grant(w3: Any, lane: Any, name: str, address: str, kind: str, accounts: list[str], *, on_fork: bool,
          max_wait_s: float = 0.0) -> GrantResult:
    """Give `accounts` the power `kind` on Executor/ProxyFactory `address`: at once in the Executor's setup phase,
    else queue (as the owner), wait for the delay (fork: advance time; live: sleep up to `max_wait_s`, otherwise
    return `queued`) and apply (anyone may)."""
    kinds = EXECUTOR_GRANTS if name == "Executor" else FACTORY_GRANTS
    code = kinds[kind]
    # A worker grant names each worker with its trading wallet: (worker, wallet) tuples, or bare addresses
    # (a worker that trades from its own address), flattened as the Executor stores them.
    accounts = worker_pairs(accounts) if name == "Executor" and kind == "worker" else list(accounts)
    res = GrantResult(name, kind, accounts, "immediate")
    c = _c(w3, name, address)
    owner = c.functions.owner().call() if name == "Executor" else c.functions.admin().call()
    if name == "Executor" and not c.functions.sealed().call():
        setup_fn = {"worker": ("addWorkers", [accounts]), "target": ("setTargets", [accounts, True]),
                    "factory": ("setFactories", [accounts, True])}[kind]
        r = _send_as(w3, lane, owner, {"to": address, "data": c.encode_abi(setup_fn[0], args=setup_fn[1])}, on_fork)
        res.txs.append(_hash(r))
        return res
    gid = c.functions.grantId(code, accounts).call()
    eta = int(c.functions.grantEta(gid).call())
    if eta == 0:
        r = _send_as(w3, lane, owner, {"to": address, "data": c.encode_abi("queueGrant", args=[code, accounts])},
                     on_fork)
        res.txs.append(_hash(r))
        eta = int(c.functions.grantEta(gid).call())
    res.eta = eta
    wait = eta - int(w3.eth.get_block("latest")["timestamp"])
    if wait > 0:
        if on_fork:
            advance_time(w3, wait)
        elif wait <= max_wait_s:
            time.sleep(wait + 1)
        else:
            res.status = "queued"
            return res
    r = lane.transact({"to": address, "data": c.encode_abi("applyGrant", args=[code, accounts])})
    res.txs.append(_hash(r))
    res.status = "applied"
    return res


def handover(w3: Any, lane: Any, contracts: dict[str, str], roles: RolePlan) -> list[tuple[str, str, str | None]]:
    """End the Executor's setup phase and hand every contract in `contracts` (name -> address) to `roles.admin`
    (two-step; accepted here on the fork). Returns (what, address, tx hash) per step; idempotent."""
    steps: list[tuple[str, str, str | None]] = []
    admin = roles.admin
    if "Executor" in contracts:
        ex = _c(w3, "Executor", contracts["Executor"])
        if not ex.functions.sealed().call():
            owner = ex.functions.owner().call()
            r = _send_as(w3, lane, owner, {"to": ex.address, "data": ex.encode_abi("seal", args=[])}, roles.on_fork)
            steps.append(("seal the Executor (grants now wait the delay)", ex.address, _hash(r)))
    if admin is None:
        steps.append(("COPYTRADE_ADMIN unset: the deployer stays owner (readiness fails live)", lane.address, None))
        return steps
    for name, address in contracts.items():
        getter, pending_fn, propose, accept = _ROLE_FNS[name]
        c = _c(w3, name, address)
        owner = getattr(c.functions, getter)().call()
        if owner.lower() == admin.lower():
            continue
        if getattr(c.functions, pending_fn)().call().lower() != admin.lower():
            r = _send_as(w3, lane, owner, {"to": address, "data": c.encode_abi(propose, args=[admin])}, roles.on_fork)
            steps.append((f"propose {admin} as {name} {getter}", address, _hash(r)))
        if roles.on_fork:
            r = _send_as(w3, lane, admin, {"to": address, "data": c.encode_abi(accept, args=[])}, True)
            steps.append((f"{admin} accepts {name} {getter} (fork: impersonated)", address, _hash(r)))
        else:
            steps.append((f"{admin} must call {name}.{accept}() to take over", address, None))
    return steps


@dataclass
class AdminStatus:
    """Roles as read from chain, with the problems readiness reports (empty `problems` = fine)."""

    admin: str | None
    holders: dict[str, str | None]  # contract name -> current owner/admin (None: not deployed / unreadable)
    pending: dict[str, str | None]
    sealed: bool | None
    delay_s: dict[str, int | None]
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def admin_status(w3: Any, contracts: dict[str, str], *, admin: str | None, hot_keys: list[str],
                 is_local: bool) -> AdminStatus:
    """Who owns Executor / ProxyFactory / Treasury versus COPYTRADE_ADMIN; live, an unset admin, an admin that
    is one of the supervisor's hot keys (operator, funder, workers) or a hand-over not completed is a problem."""
    st = AdminStatus(admin=admin, holders={}, pending={}, sealed=None, delay_s={})
    for name, address in contracts.items():
        if name not in _ROLE_FNS:
            continue
        getter, pending_fn, _, _ = _ROLE_FNS[name]
        try:
            c = _c(w3, name, address)
            st.holders[name] = getattr(c.functions, getter)().call()
            st.pending[name] = getattr(c.functions, pending_fn)().call()
            if name != "Treasury":
                st.delay_s[name] = int(c.functions.ADMIN_DELAY().call())
            if name == "Executor":
                st.sealed = bool(c.functions.sealed().call())
        except Exception:  # noqa: BLE001 — an old generation without these views
            st.holders[name] = None
    return judge_admin(st, hot_keys, is_local)


def judge_admin(st: AdminStatus, hot_keys: list[str], is_local: bool) -> AdminStatus:
    """Fill `st.problems` from roles already read (by `admin_status`, or in readiness's batched reads)."""
    hot = {h.lower() for h in hot_keys}
    admin = st.admin
    if is_local:
        return st
    if admin is None:
        st.problems.append("COPYTRADE_ADMIN is not set: a live deployment needs a cold admin key or multisig")
    elif admin.lower() in hot:
        st.problems.append(f"COPYTRADE_ADMIN {admin} is a hot key of the supervisor (operator, funder or worker)")
    for name, holder in st.holders.items():
        if holder is None:
            st.problems.append(f"{name}: roles unreadable (a contract generation without two-step ownership)")
        elif holder.lower() in hot:
            st.problems.append(f"{name} is held by hot key {holder}: hand it over to COPYTRADE_ADMIN")
        elif admin is not None and holder.lower() != admin.lower():
            st.problems.append(f"{name} is held by {holder}, not COPYTRADE_ADMIN {admin}")
    if st.sealed is False:
        st.problems.append("the Executor is still in its setup phase (grants are immediate): seal it")
    return st
