"""Readiness rows for the keys (operator and worker fleet; shown as addresses only) and the real-trading switch."""
from __future__ import annotations

from ...chain.accounts import operator_account, worker_accounts
from ...errors import ConfigError
from ...polymarket.world import DEV_KEYS
from ...settings import DEV_MNEMONIC, Settings
from .report import WARNING, Check, failed, passed, short

def key_rows(settings: Settings, is_local: bool) -> tuple[list[Check], list[str]]:
    """Rows for the operator and worker keys, and the worker addresses (keys never leave the accounts)."""
    out, addresses = [], []
    try:
        op = operator_account(settings)
        source = "TRADING_PRIVATE_KEY" if settings.trading_private_key is not None else "the fork's dev account 0"
        public = settings.trading_private_key is not None and \
            settings.trading_private_key.get_secret_value().lower().removeprefix("0x") in \
            {k.removeprefix("0x") for k in DEV_KEYS}
        if public and not is_local:
            out.append(failed("operator key", f"operator {op.address} is a public dev key (anyone can spend from it)",
                              "set TRADING_PRIVATE_KEY to a private key of your own"))
        else:
            out.append(passed("operator key", f"operator {op.address} from {source} (key not shown)"))
    except ConfigError as exc:
        out.append(failed("operator key", str(exc).split(":")[0], "set TRADING_PRIVATE_KEY (the operator/deployer "
                          "account) in the environment or .env"))
    try:
        workers = worker_accounts(settings)
        addresses = [a.address for a in workers]
        if settings.copy_trading_worker_keys:
            source = "COPY_TRADING_WORKER_KEYS"
        elif settings.trading_mnemonic is not None:
            source = "TRADING_MNEMONIC"
        else:
            source = "the fork's dev mnemonic"
        public = settings.trading_mnemonic is not None and \
            settings.trading_mnemonic.get_secret_value().strip() == DEV_MNEMONIC
        detail = (f"{len(workers)} workers from {source} (shard {settings.copy_trading_worker_index}), "
                  f"{short(workers[0].address)} to {short(workers[-1].address)}; keys not shown")
        if public and not is_local:
            out.append(failed("worker keys", f"{len(workers)} workers from the public dev mnemonic",
                              "set TRADING_MNEMONIC (or COPY_TRADING_WORKER_KEYS) to keys of your own"))
        else:
            out.append(passed("worker keys", detail))
    except ConfigError as exc:
        out.append(failed("worker keys", str(exc).split(" (e.g.")[0],
                          "set TRADING_MNEMONIC or COPY_TRADING_WORKER_KEYS in the environment or .env"))
    return out, addresses


def real_trading_row(settings: Settings, is_local: bool) -> Check:
    """A warning row: whether copies spend real funds, and under which caps."""
    name = "real trading"
    allow = settings.copy_trading_execution_allowlist
    only = f"; only {len(allow)} allow-listed follower(s) execute" if allow else ""
    if is_local:
        return passed(name, "the fork: copies always execute (local funds only); ENABLE_REAL_TRADING="
                         f"{str(settings.enable_real_trading).lower()} applies to live networks" + only, WARNING)
    if not settings.enable_real_trading:
        return failed(name, "ENABLE_REAL_TRADING is off: the supervisor records decisions and executes nothing",
                      "set ENABLE_REAL_TRADING=true when you mean to trade real funds", WARNING)
    caps = [(n, v) for n, v in (("max trade", settings.copy_trading_max_trade_usd),
                                ("daily cap", settings.copy_trading_daily_cap_usd),
                                ("per-wallet daily cap", settings.copy_trading_wallet_daily_cap_usd)) if v is not None]
    if not caps:
        return failed(name, "ENABLE_REAL_TRADING is on with no caps: copies spend real USDC without a ceiling" + only,
                      "set COPY_TRADING_MAX_TRADE_USD and COPY_TRADING_DAILY_CAP_USD", WARNING)
    shown = ", ".join(f"{n} {v} USD" for n, v in caps)
    return passed(name, f"ENABLE_REAL_TRADING is on: copies spend real USDC from follower proxies ({shown}){only}",
                  WARNING)
