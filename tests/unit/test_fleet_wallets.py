"""Worker wallets without a node: the Executor's (worker, wallet) grant list and each worker's trading wallet."""
from __future__ import annotations

from types import SimpleNamespace

from copytrade_cli.chain.accounts import trading_wallets
from copytrade_cli.chain.roles import worker_pairs

OWNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil #0: LIVE-2026 §6.1's worked example
WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
A, B, W1, W2 = ("0x" + c * 40 for c in "abcd")


def test_worker_pairs_flatten_as_the_executor_stores_them():
    assert worker_pairs([A, B], [W1, W2]) == [A, W1, B, W2]
    assert worker_pairs([(A, W1), (B, W2)]) == [A, W1, B, W2]
    assert worker_pairs([A, B]) == [A, A, B, B]  # an EOA worker is its own wallet
    assert worker_pairs([]) == []


def test_live_workers_trade_from_the_sdk_derived_deposit_wallet():
    from polymarket._internal.environment import PRODUCTION_CONFIG
    from polymarket._internal.wallet import derive_beacon_deposit_wallet_address

    assert trading_wallets([OWNER], None, is_local=False) == [WALLET]
    assert trading_wallets([A], None)[0] == derive_beacon_deposit_wallet_address(A, PRODUCTION_CONFIG.wallet_derivation)


def test_fork_workers_use_the_planted_factory_or_their_own_address():
    planted = SimpleNamespace(deposit_wallet_factory="0x00000000000Fb5C9ADea0298D729A0CB3823Cc07",
                              deposit_wallet_beacon="0x7A18EDfe055488A3128f01F563e5B479D92ffc3a")
    assert trading_wallets([OWNER], planted, is_local=True) == [WALLET]
    older = SimpleNamespace(deposit_wallet_factory=None, deposit_wallet_beacon=None)
    assert trading_wallets([OWNER, A], older, is_local=True) == [OWNER, A]
    assert trading_wallets([OWNER], None, is_local=True) == [OWNER]
