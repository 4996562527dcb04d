"""The one typed config: every variable the seed runbook names (same names, same defaults), plus where
things live, which network, and the keys (secret types, never printed).

Sources, highest priority first: environment, `.env` in the working directory (or `COPYTRADE_ENV_FILE`),
a TOML file (`COPYTRADE_CONFIG`, else `$COPYTRADE_HOME/config.toml`), defaults. Load it once with
`load_settings()` and pass it down; nothing deeper reads `os.environ`.
"""
from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import TomlConfigSettingsSource

from .errors import ConfigError
from .redact import redact_text, redact_url

# Polymarket on Polygon (SPEC §8); py_clob_client_v2.config agrees.
POLYGON_USDC_E = "0x2791Bca1f2de4661ED88A30C99A7a9449Aa84174"
POLYGON_PUSD = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"
POLYGON_CTF = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"
SEED_LEADER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SEED_WHALE = "0xe7804c37c13166fF0b37F5aE0BB07A3aEbb6e245"
# anvil/hardhat's public development mnemonic: the fork's default, never a real wallet.
DEV_MNEMONIC = "test test test test test test test test test test test junk"

# Upper bounds of money settings and follow amounts: far above any real copy, low enough that no arithmetic
# downstream (micro-units, sums of a day) can overflow or a typo (1e400) can pass.
MAX_TRADE_USD = Decimal(10_000_000)
MAX_CAP_USD = Decimal(1_000_000_000)

# ape-style network names -> (canonical name, chain id, is the local fork)
NETWORKS: dict[str, tuple[str, int, bool]] = {
    "polygon:local": ("polygon:local", 137, True),
    "polygon:fork": ("polygon:local", 137, True),
    "local": ("polygon:local", 137, True),
    "polygon:local:foundry": ("polygon:local", 137, True),
    "polygon:local:hardhat": ("polygon:local", 137, True),
    "polygon:mainnet": ("polygon:mainnet", 137, False),
    "polygon": ("polygon:mainnet", 137, False),
    "polygon:amoy": ("polygon:amoy", 80002, False),
    "amoy": ("polygon:amoy", 80002, False),
}

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def checksum_address(value: str, name: str = "address") -> str:
    """Return the EIP-55 form of `value`, refusing malformed input and mixed case with a wrong checksum."""
    from eth_utils import to_checksum_address

    value = value.strip()
    if not _ADDRESS_RE.match(value):
        raise ValueError(f"not a 0x-prefixed 40-hex-digit address: {value!r}")
    good = to_checksum_address(value)
    body = value[2:]
    if body != body.lower() and body != body.upper() and value != good:
        raise ValueError(f"bad EIP-55 checksum in {value!r} (did you mean {good}?)")
    return good


def _csv(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _home_default() -> Path:
    return Path(os.environ.get("COPYTRADE_HOME") or Path.home() / ".copytrade").expanduser()


class Settings(BaseSettings):
    """copytrade's configuration; field aliases are the seed's environment variable names."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, validate_default=True,
        case_sensitive=False, use_attribute_docstrings=True,
    )

    # --- where things live -------------------------------------------------------------------------
    copytrade_home: Path = Field(default_factory=_home_default, alias="COPYTRADE_HOME",
                                 json_schema_extra={"example": "~/.copytrade"})
    """Folder holding the state file, node logs and PID files (one per operator or test run)."""
    state_file: Path | None = Field(None, alias="COPYTRADE_STATE_FILE",
                                    json_schema_extra={"example": "~/.copytrade/state.db"})
    """SQLite state file; default `$COPYTRADE_HOME/state.db`."""
    network: str = Field("polygon:local", alias="COPYTRADE_NETWORK",
                         json_schema_extra={"example": "polygon:local"})
    """ape-style network choice: `polygon:local` (the fork), `polygon:mainnet`, `polygon:amoy`."""

    # --- execution guardrails (seed) ---------------------------------------------------------------
    enable_real_trading: bool = Field(False, alias="ENABLE_REAL_TRADING", json_schema_extra={"example": "true"})
    """Master switch for live networks: off, `supervise` runs in dry-run there (detects, decides, simulates each copy
    against the order book and journals it; no transaction, no order). The fork always executes unless `--dry-run`."""
    copy_trading_execution_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="COPY_TRADING_EXECUTION_ALLOWLIST",
        json_schema_extra={"example": "0xabc...,0xdef..."})
    """Optional: only these follower wallets/proxies may be executed (comma-separated addresses)."""
    copy_trading_max_trade_usd: Decimal | None = Field(None, alias="COPY_TRADING_MAX_TRADE_USD", gt=0, le=MAX_TRADE_USD,
                                                       json_schema_extra={"example": "100"})
    """Optional: largest single copy in USD."""
    copy_trading_daily_cap_usd: Decimal | None = Field(None, alias="COPY_TRADING_DAILY_CAP_USD", gt=0, le=MAX_CAP_USD,
                                                       json_schema_extra={"example": "50000"})
    """Optional: total USD copied per UTC day, all wallets."""
    copy_trading_wallet_daily_cap_usd: Decimal | None = Field(
        None, alias="COPY_TRADING_WALLET_DAILY_CAP_USD", gt=0, le=MAX_CAP_USD, json_schema_extra={"example": "500"})
    """Optional: USD copied per follower wallet per UTC day."""

    # --- RPC ---------------------------------------------------------------------------------------
    copy_trading_rpc_url: str | None = Field(None, alias="COPY_TRADING_RPC_URL",
                                             json_schema_extra={"example": "https://polygon-rpc.com"})
    """Execution RPC endpoint; on the fork, taken from the state file when unset (polygon:local accepts only the
    node `fork up` recorded: a loopback URL with its port)."""
    copy_trading_rpc_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="COPY_TRADING_RPC_URLS",
        json_schema_extra={"example": "https://a.example,https://b.example"})
    """Failover RPC endpoints, comma-separated, tried in order."""

    # --- keys (secret) -----------------------------------------------------------------------------
    trading_private_key: SecretStr | None = Field(None, alias="TRADING_PRIVATE_KEY",
                                                  json_schema_extra={"example": "0x<64 hex digits>"})
    """The operator/execution account's key (deploys, funder). Never printed."""
    trading_mnemonic: SecretStr | None = Field(None, alias="TRADING_MNEMONIC",
                                               json_schema_extra={"example": "twelve words ..."})
    """Mnemonic the worker fleet is derived from (m/44'/60'/0'/0/{100+i}). Never printed."""
    copytrade_funder_private_key: SecretStr | None = Field(None, alias="COPYTRADE_FUNDER_PRIVATE_KEY",
                                                           json_schema_extra={"example": "0x<64 hex digits>"})
    """Key that tops up worker gas (auto-refuel); on the fork defaults to the operator key, live no refuel
    without it. Never printed."""
    copy_trading_worker_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list, alias="COPY_TRADING_WORKER_KEYS",
        json_schema_extra={"example": "0x<key1>,0x<key2>"})
    """Explicit worker keys (comma-separated); overrides the mnemonic. Never printed."""
    copy_trading_worker_index: int = Field(0, alias="COPY_TRADING_WORKER_INDEX", ge=0, le=100_000,
                                           json_schema_extra={"example": "0"})
    """This instance's shard of the worker keys: it takes keys [index*pool, (index+1)*pool)."""
    copy_trading_max_retry_attempts: int = Field(3, alias="COPY_TRADING_MAX_RETRY_ATTEMPTS", ge=0, le=20,
                                                 json_schema_extra={"example": "3"})
    """Retries for steps that are safe to retry."""
    copy_trading_min_priority_fee_gwei: Decimal = Field(Decimal(25), alias="COPY_TRADING_MIN_PRIORITY_FEE_GWEI",
                                                        ge=0, le=10_000, json_schema_extra={"example": "25"})
    """The least tip (priority fee, gwei) of every transaction of ours: Polygon refuses tips under 25 gwei."""

    # --- scale-out ---------------------------------------------------------------------------------
    supervisor_redis_url: str | None = Field(None, alias="SUPERVISOR_REDIS_URL",
                                             json_schema_extra={"example": "redis://127.0.0.1:6379/0"})
    """Shared queue/dedup/guardrails in Redis (preferred name)."""
    redis_url: str | None = Field(None, alias="REDIS_URL", json_schema_extra={"example": "redis://127.0.0.1:6379/0"})
    """Fallback name for the Redis URL."""
    supervisor_shard_count: int = Field(1, alias="SUPERVISOR_SHARD_COUNT", ge=1, le=1024,
                                        json_schema_extra={"example": "4"})
    """Number of supervisor instances splitting leaders."""
    supervisor_shard_index: int = Field(0, alias="SUPERVISOR_SHARD_INDEX", ge=0, le=1023,
                                        json_schema_extra={"example": "0"})
    """This instance's shard, 0-based, below SUPERVISOR_SHARD_COUNT."""

    supervisor_redis_prefix: str = Field("copytrade:", alias="SUPERVISOR_REDIS_PREFIX", min_length=1, max_length=100,
                                         json_schema_extra={"example": "copytrade:"})
    """Prefix of every Redis key this deployment uses (several deployments can share one Redis)."""
    supervisor_lease_ms: int = Field(30_000, alias="SUPERVISOR_LEASE_MS", ge=500, le=3_600_000,
                                     json_schema_extra={"example": "30000"})
    """Redis mode: lease of a claimed job group and of a worker key; a dead instance's work is reclaimed
    after it lapses (renewed every third of it while the owner lives)."""
    supervisor_max_deliveries: int = Field(5, alias="SUPERVISOR_MAX_DELIVERIES", ge=1, le=1000,
                                           json_schema_extra={"example": "5"})
    """Redis mode: deliveries of one queued group before it moves to the dead-letter stream."""
    supervisor_health_interval_ms: int = Field(2000, alias="SUPERVISOR_HEALTH_INTERVAL_MS", ge=100, le=600_000,
                                               json_schema_extra={"example": "2000"})
    """How often the health key/file is refreshed; it expires after three intervals without a refresh."""

    # --- supervisor tuning (seed defaults) ---------------------------------------------------------
    supervisor_ws_filter_by_address: bool = Field(True, alias="SUPERVISOR_WS_FILTER_BY_ADDRESS",
                                                  json_schema_extra={"example": "true"})
    """Drop activity messages of traders nobody follows, client side."""
    supervisor_fanout_concurrency: int = Field(25, alias="SUPERVISOR_FANOUT_CONCURRENCY", ge=1, le=10_000,
                                               json_schema_extra={"example": "25"})
    """Followers of one fill processed concurrently."""
    supervisor_queue_max_size: int = Field(5000, alias="SUPERVISOR_QUEUE_MAX_SIZE", ge=1, le=10_000_000,
                                           json_schema_extra={"example": "5000"})
    """Queue capacity; beyond it jobs are dropped and recorded, never silently."""
    supervisor_queue_drain_interval_ms: int = Field(500, alias="SUPERVISOR_QUEUE_DRAIN_INTERVAL_MS", ge=1, le=600_000,
                                                    json_schema_extra={"example": "500"})
    """Queue drain period in milliseconds."""
    supervisor_dedup_ttl_ms: int = Field(60_000, alias="SUPERVISOR_DEDUP_TTL_MS", ge=1, le=604_800_000,
                                         json_schema_extra={"example": "60000"})
    """How long a seen fill stays in the fast dedup set (the state file keeps it forever)."""
    supervisor_max_group_age_ms: int = Field(60_000, alias="SUPERVISOR_MAX_GROUP_AGE_MS", ge=1_000, le=86_400_000,
                                             json_schema_extra={"example": "60000"})
    """A queued group older than this (since its fill was detected) is refused before its first step, its
    jobs skipped with the reason: its price limit was set from a fill that long ago (resume, orphan regrouping,
    a shared-queue refill, a backlog)."""
    supervisor_guardrail_cache_ttl_ms: int = Field(5000, alias="SUPERVISOR_GUARDRAIL_CACHE_TTL_MS", ge=0, le=3_600_000,
                                                   json_schema_extra={"example": "5000"})
    """Cache period of guardrail counters read from the shared store."""
    supervisor_market_meta_ttl_ms: int = Field(300_000, alias="SUPERVISOR_MARKET_META_TTL_MS", ge=0, le=86_400_000,
                                               json_schema_extra={"example": "300000"})
    """Cache period of market metadata (tick size, neg-risk)."""
    supervisor_worker_pool_size: int = Field(20, alias="SUPERVISOR_WORKER_POOL_SIZE", ge=1, le=1000,
                                             json_schema_extra={"example": "20"})
    """Worker wallets per instance."""
    supervisor_groups_per_worker: int = Field(1, alias="SUPERVISOR_GROUPS_PER_WORKER", ge=1, le=16,
                                              json_schema_extra={"example": "2"})
    """Job groups one worker wallet takes at once up to their orders' outcomes (its nonce lane pipelines their
    transactions; a Smart Buffer check reserves float per group, atomically). 1 = one group at a time."""
    supervisor_config_refresh_ms: int = Field(10_000, alias="SUPERVISOR_CONFIG_REFRESH_MS", ge=10, le=86_400_000,
                                              json_schema_extra={"example": "10000"})
    """Incremental follow-config refresh period."""
    supervisor_config_full_refresh_ms: int = Field(300_000, alias="SUPERVISOR_CONFIG_FULL_REFRESH_MS", ge=10, le=86_400_000,
                                                   json_schema_extra={"example": "300000"})
    """Full follow-config rebuild period."""

    # --- contracts ---------------------------------------------------------------------------------
    usdc_address: str = Field(POLYGON_USDC_E, alias="USDC_ADDRESS",
                              json_schema_extra={"example": POLYGON_USDC_E})
    """Bridged USDC (USDC.e on Polygon): what followers deposit and the CollateralOnramp wraps into pUSD."""
    pusd_address: str = Field(POLYGON_PUSD, alias="PUSD_ADDRESS", json_schema_extra={"example": POLYGON_PUSD})
    """pUSD, Polymarket's collateral (LIVE-2026 §7): what follower proxies and worker deposit wallets hold and the
    Executor pulls and pushes."""
    ctf_address: str = Field(POLYGON_CTF, alias="CTF_ADDRESS", json_schema_extra={"example": POLYGON_CTF})
    """ConditionalTokens (ERC-1155) contract."""
    proxy_factory_address: str | None = Field(None, alias="PROXY_FACTORY_ADDRESS",
                                              json_schema_extra={"example": "0x5FbDB2315678afecb367f032d93F642f64180aa3"})
    """Override of the ProxyFactory recorded in state."""
    executor_address: str | None = Field(None, alias="EXECUTOR_ADDRESS",
                                         json_schema_extra={"example": "0x5FbDB2315678afecb367f032d93F642f64180aa3"})
    """Override of the Executor recorded in state."""
    copytrade_admin: str | None = Field(None, alias="COPYTRADE_ADMIN",
                                        json_schema_extra={"example": "0x5FbDB2315678afecb367f032d93F642f64180aa3"})
    """Cold key or multisig the deploy hands Executor, factory and Treasury to (two-step); fork default: the
    deployer. Required live."""
    copytrade_admin_delay_s: int = Field(172_800, alias="COPYTRADE_ADMIN_DELAY_S", ge=0, le=30 * 86_400,
                                         json_schema_extra={"example": "172800"})
    """Seconds a new executor, target or worker waits on chain before it takes effect (set at deploy)."""

    # --- Polymarket endpoints (live) ---------------------------------------------------------------
    clob_url: str | None = Field(None, alias="COPYTRADE_CLOB_URL",
                                 json_schema_extra={"example": "https://clob.polymarket.com"})
    """CLOB REST host; on the fork, the local CLOB recorded in state."""
    polymarket_builder_api_key: SecretStr | None = Field(None, alias="POLYMARKET_BUILDER_API_KEY",
                                                         json_schema_extra={"example": "<builder key>"})
    """Builder API key the relayer takes `fleet setup`'s wallet creations and approval batches with (live; the fork's
    relayer takes a relayer key per signer). Needs POLYMARKET_BUILDER_SECRET and POLYMARKET_BUILDER_PASSPHRASE."""
    polymarket_builder_secret: SecretStr | None = Field(None, alias="POLYMARKET_BUILDER_SECRET",
                                                        json_schema_extra={"example": "<base64 secret>"})
    """The builder API key's HMAC secret."""
    polymarket_builder_passphrase: SecretStr | None = Field(None, alias="POLYMARKET_BUILDER_PASSPHRASE",
                                                            json_schema_extra={"example": "<passphrase>"})
    """The builder API key's passphrase."""
    data_api_url: str | None = Field(None, alias="COPYTRADE_DATA_API_URL",
                                     json_schema_extra={"example": "https://data-api.polymarket.com"})
    """Data API host; on the fork, the local one."""
    gamma_url: str | None = Field(None, alias="COPYTRADE_GAMMA_URL",
                                  json_schema_extra={"example": "https://gamma-api.polymarket.com"})
    """Gamma (market metadata and resolutions) host for `leaders report` / `backtest`; on the fork, the local one."""
    activity_ws_url: str | None = Field(None, alias="COPYTRADE_ACTIVITY_WS_URL",
                                        json_schema_extra={"example": "wss://ws-live-data.polymarket.com"})
    """Activity websocket; on the fork, the local one."""

    # --- fault injection (tests only) --------------------------------------------------------------
    fault_kill_at: str | None = Field(None, alias="COPYTRADE_FAULT_KILL_AT",
                                      json_schema_extra={"example": "pull"})
    """Testing only: the supervisor SIGKILLs itself right after this step (pull, order, push, reimburse)."""

    # --- validators --------------------------------------------------------------------------------
    @field_validator("network")
    @classmethod
    def _network(cls, v: str) -> str:
        if v.strip().lower() not in NETWORKS:
            raise ValueError("unknown network; use one of polygon:local, polygon:mainnet, polygon:amoy")
        return v.strip()

    @field_validator("copy_trading_execution_allowlist", mode="before")
    @classmethod
    def _allowlist(cls, v: Any) -> list[str]:
        return [checksum_address(a) for a in _csv(v)]

    @field_validator("copy_trading_rpc_urls", mode="before")
    @classmethod
    def _urls(cls, v: Any) -> list[str]:
        urls = _csv(v)
        for u in urls:
            _check_url(u)
        return urls

    @field_validator("copy_trading_rpc_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return _check_url(v) if v else None

    @field_validator("supervisor_redis_url", "redis_url")
    @classmethod
    def _redis(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"not a redis:// URL: {redact_url(v)!r}")
        return v or None

    @field_validator("copy_trading_worker_keys", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> list[SecretStr]:
        keys = [k.get_secret_value() if isinstance(k, SecretStr) else k for k in _csv(v)]
        for i, k in enumerate(keys):
            if not _is_private_key(k):
                raise ValueError(f"key #{i + 1} is not 32 bytes of hex")
        return [SecretStr(k) for k in keys]

    @field_validator("trading_private_key", "copytrade_funder_private_key", mode="before")
    @classmethod
    def _key(cls, v: Any) -> Any:
        raw = v.get_secret_value() if isinstance(v, SecretStr) else v
        if raw in (None, ""):
            return None
        if not _is_private_key(str(raw)):
            raise ValueError("not 32 bytes of hex")
        return v

    @field_validator("trading_mnemonic", mode="before")
    @classmethod
    def _mnemonic(cls, v: Any) -> Any:
        raw = v.get_secret_value() if isinstance(v, SecretStr) else v
        if raw in (None, ""):
            return None
        if len(str(raw).split()) not in (12, 15, 18, 21, 24):
            raise ValueError("a mnemonic has 12, 15, 18, 21 or 24 words")
        return v

    @field_validator("fault_kill_at")
    @classmethod
    def _fault(cls, v: str | None) -> str | None:
        if v and v not in ("pull", "order", "push", "reimburse"):
            raise ValueError("use one of pull, order, push, reimburse")
        return v or None

    @field_validator("usdc_address", "pusd_address", "ctf_address", "proxy_factory_address", "executor_address", "copytrade_admin")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        return checksum_address(v) if v else None

    @model_validator(mode="after")
    def _builder_key(self) -> "Settings":
        parts = (self.polymarket_builder_api_key, self.polymarket_builder_secret, self.polymarket_builder_passphrase)
        if any(p is not None for p in parts) and not all(p is not None for p in parts):
            raise ValueError("POLYMARKET_BUILDER_API_KEY, POLYMARKET_BUILDER_SECRET and POLYMARKET_BUILDER_PASSPHRASE "
                             "go together: set all three or none")
        return self

    @model_validator(mode="after")
    def _shards(self) -> "Settings":
        if self.supervisor_shard_index >= self.supervisor_shard_count:
            raise ValueError(
                f"SUPERVISOR_SHARD_INDEX={self.supervisor_shard_index} must be below "
                f"SUPERVISOR_SHARD_COUNT={self.supervisor_shard_count}")
        return self

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource):
        toml = os.environ.get("COPYTRADE_CONFIG") or str(_home_default() / "config.toml")
        return (init_settings, env_settings, dotenv_settings,
                TomlConfigSettingsSource(settings_cls, toml_file=toml))

    # --- derived -----------------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        """Where the SQLite state file lives."""
        return Path(self.state_file or self.copytrade_home / "state.db").expanduser()

    @property
    def home(self) -> Path:
        """COPYTRADE_HOME, expanded."""
        return Path(self.copytrade_home).expanduser()

    @property
    def redis(self) -> str | None:
        """The Redis URL in effect (SUPERVISOR_REDIS_URL wins over REDIS_URL)."""
        return self.supervisor_redis_url or self.redis_url

    @property
    def is_local(self) -> bool:
        """True when the network is the local fork (decided by the network name, never the chain id)."""
        return self.network.split(":")[-1] in ("local", "fork") or self.network in ("local", "fork")

    def rpc_urls(self, fallback: str | None = None) -> list[str]:
        """Execution endpoints in failover order: COPY_TRADING_RPC_URL, COPY_TRADING_RPC_URLS, then `fallback`."""
        urls = [u for u in [self.copy_trading_rpc_url, *self.copy_trading_rpc_urls] if u]
        if not urls and fallback:
            urls = [fallback]
        seen: list[str] = []
        for u in urls:
            if u not in seen:
                seen.append(u)
        return seen

    def secret_values(self) -> list[str]:
        """Every secret configured (to scrub output); never print what this returns."""
        out = [k.get_secret_value() for k in self.copy_trading_worker_keys]
        for s in (self.trading_private_key, self.trading_mnemonic, self.copytrade_funder_private_key):
            if s is not None:
                out.append(s.get_secret_value())
        return [s for s in out if s]

    def public_dict(self) -> dict[str, Any]:
        """All settings by their environment names, secrets masked."""
        out: dict[str, Any] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            key = field.alias or name.upper()
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else None
            elif isinstance(value, list) and value and isinstance(value[0], SecretStr):
                value = [f"******** ({len(value)} keys)"]
            elif isinstance(value, (Path, Decimal)):
                value = str(value)
            elif isinstance(value, str) and "://" in value:
                value = redact_url(value)
            elif isinstance(value, list) and value and isinstance(value[0], str):
                value = [redact_url(v) if "://" in v else v for v in value]
            out[key] = value
        return out


def _is_private_key(s: str) -> bool:
    s = s.strip()
    return bool(re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", s))


def _check_url(u: str) -> str:
    if not re.match(r"^(https?|wss?)://[^\s/]+", u):
        raise ValueError(f"not an http(s):// or ws(s):// URL: {redact_url(u)!r}")
    return u


def _field_by_alias(name: str):
    for fname, field in Settings.model_fields.items():
        if (field.alias or "").upper() == name.upper() or fname == name:
            return fname, field
    return None, None


def load_settings(**overrides: Any) -> Settings:
    """Read the configuration once; a bad value becomes a one-line ConfigError naming the variable."""
    env_file = os.environ.get("COPYTRADE_ENV_FILE") or ".env"
    try:
        return Settings(_env_file=env_file if Path(env_file).is_file() else None, **overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ()
        fname = str(loc[0]) if loc else ""
        _, field = _field_by_alias(fname)
        alias = (field.alias if field is not None and field.alias else fname.upper()) or "configuration"
        example = ((field.json_schema_extra or {}).get("example") if field is not None else None)
        value = err.get("input")
        shown = "<secret>" if field is not None and "SecretStr" in str(field.annotation) else redact_text(repr(value))
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        hint = f" (e.g. {alias}={example})" if example else ""
        if fname in ("", "__root__") or not loc:
            raise ConfigError(f"invalid configuration: {msg}") from None
        raise ConfigError(f"{alias}={shown}: {msg}{hint}") from None
    except Exception as exc:  # a broken TOML/.env file
        raise ConfigError(f"could not read configuration: {exc}") from None
