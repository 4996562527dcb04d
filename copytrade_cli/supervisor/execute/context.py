"""What a group's flow is given: the chain, addresses and state (`FlowContext`), what it needs from the worker it
runs on (`FlowWorker`), and the contract objects it reuses (`Contracts`, one set per supervisor)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Protocol

from ...chain.deploy import contract
from ...chain.proxies import erc20, erc1155
from ...chain.lanes import TxLane
from ...state import State
from .chain_io import kill_here_if


class FlowWorker(Protocol):
    """What a flow needs from its worker (`fleet.Worker`): its address, nonce lane and CLOB client, and the
    collateral that groups still settling on it hold (so a Smart Buffer check never spends it as float)."""

    lane: TxLane
    clob: Any  # polymarket.clob.ClobGateway: build_market_order / post / lookup / settlement_txs
    wallet: str  # the trading (deposit) wallet: holds the float and the fills (Executor.walletOf(signer))
    check_lock: ContextManager[Any]  # held across a Smart Buffer check and its reservation

    @property
    def address(self) -> str:
        """The worker's account address."""
        ...

    def reserve(self, group_id: str, amount: int) -> None:
        """Set (or with 0 drop) what the group holds of this worker's collateral."""
        ...

    def reserved_except(self, group_id: str) -> int:
        """Collateral held by the other groups in flight on this worker."""
        ...


def build_contract(kind: str, w3: Any, address: str) -> Any:
    """A web3 contract object: the Executor, an ERC-20 or an ERC-1155 at `address`."""
    if kind == "Executor":
        return contract(w3, "Executor", address)
    return (erc20 if kind == "erc20" else erc1155)(w3, address)


class Contracts:
    """Contract objects of one node connection, built once per (kind, address): building one re-reads and
    hashes the artifact sources (and web3 re-parses the ABI), which the profile showed on every group."""

    def __init__(self, w3: Any):
        self.w3 = w3
        self._built: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, address: str) -> Any:
        """The contract of `kind` ("Executor", "erc20", "erc1155") at `address`."""
        key = (kind, address)
        c = self._built.get(key)
        if c is None:
            c = build_contract(kind, self.w3, address)
            with self._lock:
                c = self._built.setdefault(key, c)
        return c


@dataclass
class FlowContext:
    """What a flow needs: chain, addresses, state, and where to report steps."""

    w3: Any
    state: State
    executor: str
    collateral: str
    ctf: str
    report: Callable[[str, str, str], None]  # (group_id, step, detail)
    max_retries: int = 3
    guardrails: Any = None
    fault_kill_at: str | None = None
    on_step: Callable[[str, str, float | None], None] | None = None  # (step, status, seconds): metrics
    stuck_after_s: float = 30.0
    coalesce: bool = False  # in process: a group starting now takes in queued groups of the same order
    coalesce_max_legs: int = 150
    rules: Any = None  # admission.StartRules: what a not-started group is re-checked against (None: values only)
    contracts: Contracts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.contracts = Contracts(self.w3)

    def fault(self, point: str) -> None:
        """Fault injection for the crash tests: die exactly here, as `kill -9` would."""
        kill_here_if(self.fault_kill_at, point)


def commits_in_state(caps: Any) -> bool:
    """Whether the caps' commits belong inside the state file's transaction (the caps live in that file)."""
    return bool(caps.commits_in_state)
