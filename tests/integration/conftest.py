"""A whole local fork (anvil + planted Polymarket + our contracts + local CLOB) for supervisor tests."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Fork:
    settings: Any
    state: Any
    chain: Any
    report: Any

    @property
    def w3(self):
        return self.chain.w3

    @property
    def world(self):
        return self.chain.world


def make_settings(home, **env):
    """Settings for a private COPYTRADE_HOME, with seed env names as overrides."""
    from copytrade_cli.settings import Settings

    return Settings(COPYTRADE_HOME=str(home), **env)


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    """`fork up` through the library in a private home; torn down (by PID) after the module."""
    from copytrade_cli.runbook.fork import LOCAL_NETWORK, fork_down, fork_up
    from copytrade_cli.chain.network import connect_network
    from copytrade_cli.state import open_state

    home = tmp_path_factory.mktemp("ct-home")
    settings = make_settings(home)
    state = open_state(settings)
    report = fork_up(settings, state)
    try:
        chain = connect_network(settings, state, LOCAL_NETWORK)
        yield Fork(settings, state, chain, report)
    finally:
        fork_down(state)


_owner_counter = [300]


def new_follower(fork: Fork, usdc: int = 1000) -> str:
    """A fresh proxy (new owner) funded from the whale; returns its address."""
    from eth_account import Account

    from copytrade_cli.chain.accounts import derive_keys, operator_account
    from copytrade_cli.runbook.fork import LOCAL_NETWORK
    from copytrade_cli.chain.proxies import create_proxy, fund_pusd_from_whale
    from copytrade_cli.chain.lanes import TxLane
    from copytrade_cli.settings import DEV_MNEMONIC

    _owner_counter[0] += 1
    owner = Account.from_key(derive_keys(DEV_MNEMONIC, [_owner_counter[0]])[0])
    proxy, _ = create_proxy(fork.w3, fork.state, LOCAL_NETWORK, TxLane(fork.w3, operator_account(fork.settings)),
                            fork.report.addresses["ProxyFactory"], owner.address)
    if usdc:
        fund_pusd_from_whale(fork.w3, fork.world, proxy, usdc * 10**6)
    return proxy


def clear_follows(fork: Fork) -> None:
    for f in fork.state.list_follows():
        fork.state.delete_follow(f.id)


class RunningSupervisor:
    """A Supervisor in a thread; `stop()` shuts it down cleanly."""

    def __init__(self, fork: Fork, settings=None, **opts):
        from copytrade_cli.runbook.supervise import start_supervisor
        from copytrade_cli.supervisor.runner import Supervisor, SupervisorOptions

        # Start detection at the chain head: earlier fills belong to earlier tests.
        head = fork.w3.eth.block_number
        fork.state.set_cursor(f"logs:{fork.chain.network}", str(head))
        self.lines: list[str] = []
        self.sup = Supervisor(settings or fork.settings, fork.state, fork.chain, say=self.lines.append,
                              options=SupervisorOptions(**{"reimburse_every_s": 0.3, **opts}))
        start_supervisor(self.sup)  # the readiness pre-flight, then start(), as `copytrade supervise` does
        self.thread = threading.Thread(target=self.sup.run, daemon=True)
        self.thread.start()
        time.sleep(0.4)  # channels subscribe

    def wait(self, cond, timeout: float = 60.0) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self.sup.stop_event.set()
        self.thread.join(60)
