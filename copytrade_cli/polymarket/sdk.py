"""The one module that imports Polymarket's official SDK (`polymarket-client`, pinned 0.14.0).

Everything of ours that talks to Polymarket's CLOB, relayer, Gamma or Data API goes through what this module
hands out: the environment (production, or local: the SDK's own `create_environment(replace(PRODUCTION_CONFIG,
...))`, LIVE-2026 §1 — the SDK has no public host override and no Amoy environment), the secure client of one
worker, and the few SDK internals we rely on (market metadata, the fee formula, rounding), each named here so a
change of the SDK breaks one test (`tests/unit/test_sdk_pin.py`) and not a run.

py-clob-client-v2 is no longer used by the supervisor or readiness. It stays only where the SDK lacks something:
an EOA (type 0) order signed from explicit amounts (`polymarket.orders.build_signed_order_v2`: the local world's own
market maker and leader trades, which are not SDK clients), and the local CLOB serving it as a second unmodified
client (SPEC: third-party bots still use it). The SDK signs only from a market's metadata it fetches itself.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any

import polymarket as _pm
from polymarket import SecureClient
from polymarket.auth import BuilderApiKey, RelayerApiKey  # noqa: F401 — re-exported: the relayer's keys
from polymarket.calls import erc20_approval_call, erc1155_set_approval_for_all_call  # noqa: F401 — re-exported
from polymarket._internal.actions.orders import post as _post
from polymarket._internal.actions.orders.context import resolve_order_exchange_address, resolve_rounding_config
from polymarket._internal.actions.orders.market import (
    adjust_buy_amount_for_fees,
    prepare_market_order_draft_sync,
    validate_market_order_params,
)
from polymarket._internal.actions.orders.market_data import MarketInfo, PlatformFeeInfo
from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment, get_environment_config
from polymarket._internal.wallet import derive_beacon_deposit_wallet_address
from polymarket.environments import PRODUCTION, Environment
from polymarket.errors import (
    InsufficientLiquidityError,
    PolymarketError,
    RateLimitError,
    RequestRejectedError,
    TimeoutError as SdkTimeoutError,
    TransactionFailedError,
    TransportError,
    UnexpectedResponseError,
    UserInputError,
)
from polymarket.models.clob.order_response import AcceptedOrder, RejectedOrder
from polymarket.models.clob.orders import SignedOrder

SDK_VERSION = "0.14.0"
"""The pinned `polymarket-client` (pyproject.toml); `check_sdk()` refuses any other."""

# The fields of the SDK's environment config we build the local one from (LIVE-2026 §1, §9). A new, renamed
# or removed field makes `check_sdk()` fail loudly, before a worker signs against a half-filled environment.
CONFIG_FIELDS = (
    "chain_id", "wallet_derivation", "collateral_token", "conditional_tokens", "neg_risk_adapter",
    "collateral_adapter", "neg_risk_collateral_adapter", "standard_exchange", "neg_risk_exchange",
    "auto_redeem_operator", "safe_multisend", "relay_hub", "clob_url", "clob_market_ws_url", "clob_user_ws_url",
    "relayer_url", "gamma_url", "data_url", "rfq_url", "rtds_ws_url", "sports_ws_url", "rpc_url", "exchange_v3",
    "protocol_v2_router", "binary_module", "neg_risk_module", "combinatorial_module", "position_manager",
    "rfq_quoter_ws_url", "rfq_quoter_ws_headers", "builder_gateway_url", "collateral_return_url", "perps_url",
    "perps_ws_url", "realtime_ws_url", "realtime_ws_headers", "perps_deposit_contract", "relayer_max_polls",
    "relayer_poll_frequency_ms",
)
WALLET_DERIVATION_FIELDS = (
    "proxy_factory", "proxy_implementation", "safe_factory", "safe_init_code_hash", "deposit_wallet_factory",
    "deposit_wallet_implementation", "deposit_wallet_beacon",
)

__all__ = [
    "AcceptedOrder", "CONFIG_FIELDS", "Environment", "InsufficientLiquidityError", "MarketInfo", "PRODUCTION",
    "PlatformFeeInfo", "PolymarketError", "RateLimitError", "RejectedOrder", "RequestRejectedError", "SDK_VERSION",
    "SdkTimeoutError", "SecureClient", "SignedOrder", "TransactionFailedError", "TransportError",
    "UnexpectedResponseError", "UserInputError", "adjust_buy_amount_for_fees", "amount_decimals", "check_sdk",
    "config_of", "create_client", "deposit_wallet_of", "local_environment", "market_info", "order_exchange",
    "production_environment", "sdk_version", "sign_market_order", "wire_of", "with_clob_url",
]


def sdk_version() -> str:
    """The installed polymarket-client version."""
    return str(_pm.__version__)


def _share_default_tls_context() -> None:
    """Build httpx's default TLS context (certifi's CA bundle) once per process instead of once per HTTP client.

    NOTE: every SDK client opens one httpx client per service (CLOB, relayer, Gamma, Data, RPC) and httpx loads
    the whole CA bundle for each (~50 ms of CPU): measured with py-spy, 20 workers' `SecureClient.create` spent
    2/3 of `fleet setup` there. The shared context has exactly the settings httpx would build (verify=True, no
    client certificate, the same SSL_CERT_FILE/SSL_CERT_DIR handling); httpcore sets ALPN on it per connection, and
    every httpx user in this process (this SDK, py-clob-client-v2) asks for the same ("http/1.1", "h2").
    """
    import os
    import threading

    import httpx._transports.default as _default

    if getattr(_default.create_ssl_context, "_copytrade_shared", False):
        return
    original = _default.create_ssl_context
    cache: dict[tuple, Any] = {}
    lock = threading.Lock()

    def create_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True):
        if verify is not True or cert is not None:
            return original(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE") if trust_env else None,
               os.environ.get("SSL_CERT_DIR") if trust_env else None)
        with lock:
            if key not in cache:
                cache[key] = original(verify=verify, cert=cert, trust_env=trust_env)
            return cache[key]

    create_ssl_context._copytrade_shared = True  # type: ignore[attr-defined]
    _default.create_ssl_context = create_ssl_context


_share_default_tls_context()


def check_sdk() -> None:
    """Fail loudly (RuntimeError, one line) if the installed SDK is not the one this module was written against."""
    if sdk_version() != SDK_VERSION:
        raise RuntimeError(f"polymarket-client {sdk_version()} installed, copytrade is pinned to {SDK_VERSION}: "
                           "run scripts/setup.sh")
    got = tuple(f.name for f in fields(PRODUCTION_CONFIG))
    if got != CONFIG_FIELDS:
        raise RuntimeError(f"polymarket-client's environment fields changed: {sorted(set(got) ^ set(CONFIG_FIELDS))}")
    got_w = tuple(f.name for f in fields(PRODUCTION_CONFIG.wallet_derivation))
    if got_w != WALLET_DERIVATION_FIELDS:
        raise RuntimeError("polymarket-client's wallet derivation fields changed: "
                           f"{sorted(set(got_w) ^ set(WALLET_DERIVATION_FIELDS))}")


def config_of(environment: Environment) -> Any:
    """The SDK's config dataclass of an environment (read-only)."""
    return get_environment_config(environment)


@dataclass(frozen=True)
class LocalAddresses:
    """Contract addresses of a local world that differ from production (None: production's)."""

    collateral: str | None = None
    ctf: str | None = None
    exchange: str | None = None
    neg_risk_exchange: str | None = None
    deposit_wallet_factory: str | None = None
    deposit_wallet_beacon: str | None = None

    @classmethod
    def of_world(cls, world: Any) -> "LocalAddresses":
        """The addresses a planted `World` serves (pUSD as the V2 exchanges' collateral)."""
        if world is None:
            return cls()
        return cls(collateral=getattr(world, "exchange_collateral", None) or getattr(world, "pusd", None),
                   ctf=world.ctf, exchange=world.exchange, neg_risk_exchange=world.neg_risk_exchange,
                   deposit_wallet_factory=world.deposit_wallet_factory,
                   deposit_wallet_beacon=world.deposit_wallet_beacon)


def local_environment(clob_url: str, relayer_url: str | None, rpc_url: str, *, data_url: str | None = None,
                      gamma_url: str | None = None, ws_url: str | None = None, chain_id: int = 137,
                      addresses: LocalAddresses | None = None, poll_ms: int = 200) -> Environment:
    """An SDK environment pointing at local servers (the local CLOB, relayer, node), built exactly as the SDK's
    own integration tests build theirs; contract addresses from the planted world where they differ."""
    check_sdk()
    a = addresses or LocalAddresses()
    base = PRODUCTION_CONFIG
    derivation = replace(base.wallet_derivation,
                         deposit_wallet_factory=a.deposit_wallet_factory or base.wallet_derivation.deposit_wallet_factory,
                         deposit_wallet_beacon=a.deposit_wallet_beacon or base.wallet_derivation.deposit_wallet_beacon)
    clob = clob_url.rstrip("/")
    ws = (ws_url or clob.replace("http://", "ws://").replace("https://", "wss://")).rstrip("/")
    config = replace(
        base, chain_id=int(chain_id), wallet_derivation=derivation,
        collateral_token=a.collateral or base.collateral_token, conditional_tokens=a.ctf or base.conditional_tokens,
        standard_exchange=a.exchange or base.standard_exchange,
        neg_risk_exchange=a.neg_risk_exchange or base.neg_risk_exchange,
        clob_url=clob, relayer_url=(relayer_url or clob).rstrip("/"), rpc_url=rpc_url,
        gamma_url=(gamma_url or clob).rstrip("/"), data_url=(data_url or clob).rstrip("/"),
        clob_market_ws_url=f"{ws}/ws/market", clob_user_ws_url=f"{ws}/ws/user", rtds_ws_url=f"{ws}/ws/rtds",
        relayer_poll_frequency_ms=int(poll_ms),
    )
    return create_environment(name="local", config=config)


def production_environment() -> Environment:
    """Polymarket's production environment (Polygon, chain 137), after the pin check."""
    check_sdk()
    return PRODUCTION


def amount_decimals(tick: Decimal) -> tuple[int, int, int]:
    """(price, size, amount) decimals the SDK rounds an order to on a market of tick `tick` (LIVE-2026 §5.4)."""
    c = resolve_rounding_config(Decimal(tick))
    return c.price, c.size, c.amount


def market_info(client: SecureClient, token_id: str, *, refresh: bool = False) -> MarketInfo:
    """The SDK's market metadata of `token_id` (/markets-by-token + /clob-markets: tick, neg-risk, fee), from its
    10-minute cache, or fetched again with `refresh` (after the book shows another tick)."""
    ctx = client._ctx  # NOTE: the SDK's own cache, so the order it signs next uses the same metadata
    if refresh:
        return ctx.order_metadata.fetch_current_market(ctx, token_id=str(token_id))
    return ctx.order_metadata.resolve_market(ctx, token_id=str(token_id))


def create_client(private_key: str, *, wallet: str | None, environment: Environment,
                  credentials: Any = None, check_wallet: bool = True) -> SecureClient:
    """The SDK's secure client of one signer acting for `wallet` (its deposit wallet): credentials derived (or the
    given ones validated), the wallet checked deployed at the relayer (LIVE-2026 §1). `check_wallet=False` stops
    after the credentials (the SDK's own `_create`, no relayer call): readiness checks the wallet in its own row."""
    if not check_wallet:
        return SecureClient._create(private_key=private_key, wallet=wallet, environment=environment,
                                    credentials=credentials)
    return SecureClient.create(private_key=private_key, wallet=wallet, environment=environment,
                               credentials=credentials)


def deposit_wallet_of(owner: str, environment: Environment) -> str:
    """The deposit wallet the SDK derives for `owner` under this environment's factory and beacon (LIVE-2026 §6.1)."""
    return derive_beacon_deposit_wallet_address(owner, config_of(environment).wallet_derivation)


def order_exchange(environment: Environment, token_id: str, neg_risk: bool) -> tuple[str, str]:
    """(exchange address, EIP-712 domain version) an order of `token_id` is signed for, as the SDK chooses it:
    ExchangeV3 ("3") for Protocol-V2 position ids, else the neg-risk or the standard V2 exchange ("2")."""
    config = config_of(environment)
    exchange = str(resolve_order_exchange_address(config, asset_id=str(token_id), neg_risk=bool(neg_risk)))
    return exchange, ("3" if exchange.lower() == config.exchange_v3.lower() else "2")


def wire_of(signed: SignedOrder, api_key: str) -> dict[str, Any]:
    """The POST /order body the SDK sends for `signed` (LIVE-2026 §5.3)."""
    return _post.build_post_order_request(signed, owner_api_key=api_key)[1]


def with_clob_url(environment: Environment, clob_url: str) -> Environment:
    """`environment` with another CLOB URL (an operator's COPYTRADE_CLOB_URL), everything else unchanged."""
    return create_environment(name=environment.name,
                              config=replace(config_of(environment), clob_url=clob_url.rstrip("/")))


MARKET_TAKER_DECIMALS = 4
"""A marketable order's taker amount is cut to 4 decimals whatever the tick: live refuses more on fine ticks
(`invalid amounts, the market buy orders maker amount supports a max accuracy of 2 decimals, taker amount a max of 4
decimals`, py-clob-client-v2#99) while SDK 0.14.0 signs the tick's 5 or 6 (LIVE-2026 §5.4); the local CLOB refuses
them too. Flooring keeps a BUY's implied price at or above its protected price and a SELL's minimum proceeds lower."""


def sign_market_order(client: SecureClient, *, token_id: str, side: str, amount: Decimal, limit: Decimal,
                      order_type: str = "FOK") -> SignedOrder:
    """A protected market order signed as the SDK signs it (its validation, metadata, exchange choice, rounding and
    type-3 wrapping), the taker amount cut to `MARKET_TAKER_DECIMALS` decimals before signing."""
    if side == "BUY":
        params = validate_market_order_params(token_id=str(token_id), side="BUY", amount=amount, max_price=limit,
                                              order_type=order_type)
    else:
        params = validate_market_order_params(token_id=str(token_id), side="SELL", shares=amount, min_price=limit,
                                              order_type=order_type)
    draft = prepare_market_order_draft_sync(client._ctx, params)
    unit = 10 ** (6 - MARKET_TAKER_DECIMALS)
    requested = draft.requested_amount - draft.requested_amount % unit
    if requested <= 0:
        raise UserInputError(f"the {side} order's taker amount rounds to zero at {MARKET_TAKER_DECIMALS} decimals")
    return client._sign_order(replace(draft, requested_amount=requested), post_only=False)
