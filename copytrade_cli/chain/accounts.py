"""Keys: the operator account and the worker fleet, from the settings. Keys never leave these objects
as text; what we print is addresses."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import DEV_MNEMONIC, Settings

WORKER_PATH_OFFSET = 100  # workers live at m/44'/60'/0'/0/{100+i}: clear of the dev accounts 0..9 the fork uses


@dataclass(frozen=True)
class DevAccounts:
    """The fork's well-known roles (anvil's public dev keys; never used on a live network)."""

    operator: int = 0
    leader: int = 1
    market_maker: int = 2
    exchange_operator: int = 3


@functools.lru_cache(maxsize=8)
def _seed(mnemonic: str) -> bytes:
    from eth_account.hdaccount import seed_from_mnemonic

    return seed_from_mnemonic(mnemonic, "")


def derive_keys(mnemonic: str, indices: list[int]) -> list[str]:
    """Private keys (hex) at m/44'/60'/0'/0/i; the PBKDF2 seed is computed once per mnemonic."""
    from eth_account.hdaccount import key_from_seed

    seed = _seed(mnemonic)
    return ["0x" + key_from_seed(seed, f"m/44'/60'/0'/0/{i}").hex() for i in indices]


def dev_key(index: int) -> str:
    """A dev account's key on the fork."""
    return derive_keys(DEV_MNEMONIC, [index])[0]


def operator_account(settings: Settings):
    """The operator/deployer/funder account: TRADING_PRIVATE_KEY, else (fork only) dev account 0."""
    from eth_account import Account

    if settings.trading_private_key is not None:
        return Account.from_key(settings.trading_private_key.get_secret_value())
    if settings.is_local:
        return Account.from_key(dev_key(DevAccounts.operator))
    raise ConfigError("TRADING_PRIVATE_KEY is not set: a live network needs an explicit operator account "
                      "(e.g. TRADING_PRIVATE_KEY=0x<64 hex digits> in the environment or .env)")


def worker_account_for(settings: Settings, address: str, max_instances: int = 64):
    """The worker wallet at `address` from the configured keys, whatever instance's shard it is in (to
    adopt a stopped instance's worker for one group); ConfigError if no configured key matches."""
    from eth_account import Account

    want = address.lower()
    if settings.copy_trading_worker_keys:
        for k in settings.copy_trading_worker_keys:
            acct = Account.from_key(k.get_secret_value())
            if acct.address.lower() == want:
                return acct
    else:
        mnemonic = (settings.trading_mnemonic.get_secret_value() if settings.trading_mnemonic is not None
                    else DEV_MNEMONIC if settings.is_local else None)
        if mnemonic is not None:
            n = settings.supervisor_worker_pool_size
            for block in range(max_instances):
                idx = [WORKER_PATH_OFFSET + block * n + i for i in range(n)]
                for k in derive_keys(mnemonic, idx):
                    acct = Account.from_key(k)
                    if acct.address.lower() == want:
                        return acct
    raise ConfigError(f"worker {address} is not derived from the configured keys (TRADING_MNEMONIC / "
                      "COPY_TRADING_WORKER_KEYS): every instance must share the same key set")


def worker_accounts(settings: Settings, count: int | None = None) -> list:
    """This instance's worker wallets: COPY_TRADING_WORKER_KEYS (sharded by COPY_TRADING_WORKER_INDEX),
    else derived from TRADING_MNEMONIC (fork: the dev mnemonic)."""
    from eth_account import Account

    n = count or settings.supervisor_worker_pool_size
    start = settings.copy_trading_worker_index * n
    if settings.copy_trading_worker_keys:
        keys = [k.get_secret_value() for k in settings.copy_trading_worker_keys][start:start + n]
        if not keys:
            raise ConfigError(f"COPY_TRADING_WORKER_INDEX={settings.copy_trading_worker_index} selects no keys "
                              f"({len(settings.copy_trading_worker_keys)} keys, {n} per instance)")
        return [Account.from_key(k) for k in keys]
    if settings.trading_mnemonic is not None:
        mnemonic = settings.trading_mnemonic.get_secret_value()
    elif settings.is_local:
        mnemonic = DEV_MNEMONIC
    else:
        raise ConfigError("no worker keys: set TRADING_MNEMONIC or COPY_TRADING_WORKER_KEYS "
                          "(e.g. COPY_TRADING_WORKER_KEYS=0x<key1>,0x<key2>)")
    idx = [WORKER_PATH_OFFSET + start + i for i in range(n)]
    return [Account.from_key(k) for k in derive_keys(mnemonic, idx)]


def trading_wallets(owners: list[str], world=None, *, is_local: bool = False) -> list[str]:
    """Each worker's trading wallet: its Polymarket deposit wallet, derived from the worker's EOA exactly as the
    SDK derives it (LIVE-2026 §6.1; polymarket/wallets.py). On the fork it uses the planted factory and beacon;
    a planted world without a deposit-wallet factory (an older fork record) trades from the EOAs themselves."""
    if is_local and (world is None or world.deposit_wallet_factory is None):
        return list(owners)
    from ..polymarket.wallets import deposit_wallet_address

    if world is not None and world.deposit_wallet_factory is not None:
        kw = {"factory": world.deposit_wallet_factory}
        if world.deposit_wallet_beacon is not None:
            kw["beacon"] = world.deposit_wallet_beacon
        return [deposit_wallet_address(o, **kw) for o in owners]
    return [deposit_wallet_address(o) for o in owners]
