"""The CLOB gateway: Polymarket's official SDK (`polymarket-client`, through `polymarket.sdk`) for one worker.

A worker is a signer key plus its deposit wallet W: orders are type 3 (POLY_1271), maker = signer = W, signed by
the key's EOA (LIVE-2026 §5.2). The same code runs live and on the fork; only the environment differs (the local
CLOB, relayer and node on the fork). Orders are signed for the market's tick, neg-risk exchange and amounts as
the SDK does, and their id (the EIP-712 hash, `polymarket.orders.order_v2_hash`) is known BEFORE posting, so it
is journalled first. Settlement is asynchronous: an order's trades go MATCHED -> MINED -> CONFIRMED, or RETRYING
(a new transaction) or FAILED; `settlement_of` says where a set of trades stands.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable

from ..errors import ClobError
from .market_rules import MarketRules, on_tick

PENDING_STATUSES = ("MATCHED", "MATCHED_NOT_BROADCASTED", "MINED", "RETRYING")
FINAL_STATUSES = ("CONFIRMED", "FAILED")


class ClobRateLimited(ClobError):
    """The CLOB refused for rate limits (429); `retry_after` seconds (None: not said). Nothing was placed."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ClobRestricted(ClobError):
    """The CLOB takes no new orders for now (cancel-only, post-only, restarting). Nothing was placed."""

    def __init__(self, message: str, restriction: str | None = None):
        super().__init__(message)
        self.restriction = restriction


@dataclass
class PlacedOrder:
    """What the CLOB said about one order."""

    order_id: str
    order_json: dict[str, Any]
    response: dict[str, Any] | None
    accepted: bool
    error: str | None = None

    @property
    def tx_hashes(self) -> list[str]:
        return list((self.response or {}).get("transactionsHashes") or [])

    @property
    def trade_ids(self) -> list[str]:
        """The trades the order's fills created at placement (their status says when they settled)."""
        return [str(t) for t in (self.response or {}).get("tradeIDs") or []]

    @property
    def making_micro(self) -> int | None:
        """What the order gave (BUY: USD, SELL: shares) in 1e-6 units, from `makingAmount`; None if absent."""
        return _micro((self.response or {}).get("makingAmount"))

    @property
    def taking_micro(self) -> int | None:
        """What the order got (BUY: shares, SELL: USD) in 1e-6 units, from `takingAmount`; None if absent."""
        return _micro((self.response or {}).get("takingAmount"))


def _micro(v: Any) -> int | None:
    """A decimal amount ('5', '9.090909') as integer 1e-6 units (None if not a number)."""
    if v is None or v == "":
        return None
    try:
        return int((Decimal(str(v)) * 1_000_000).to_integral_value())
    except Exception:  # noqa: BLE001 — decimal.InvalidOperation and friends
        return None


@dataclass(frozen=True)
class Settlement:
    """Where an order's trades stand: `pending` (some not final), `confirmed` (every trade final, at least one
    CONFIRMED: `hashes` are their transactions), or `failed` (every trade FAILED: nothing was filled)."""

    state: str
    hashes: tuple[str, ...] = ()
    trades: dict[str, dict[str, Any]] = field(default_factory=dict)


def trade_status(raw: Any) -> str:
    """A trade status as the SDK spells it (`TRADE_STATUS_` prefix dropped, upper case)."""
    s = str(raw or "").upper()
    return s[len("TRADE_STATUS_"):] if s.startswith("TRADE_STATUS_") else s


def settlement_of(trades: dict[str, dict[str, Any]]) -> Settlement:
    """The settlement state of these trades (id -> {"status", "tx"}), by the SDK's rule: CONFIRMED and FAILED are
    final; MATCHED / MINED / RETRYING wait (a RETRYING trade's hash is replaced: only a CONFIRMED one counts)."""
    if not trades:
        return Settlement("pending")
    statuses = {tid: trade_status(t.get("status")) for tid, t in trades.items()}
    if any(s not in FINAL_STATUSES for s in statuses.values()):
        return Settlement("pending", trades=trades)
    if all(s == "FAILED" for s in statuses.values()):
        return Settlement("failed", trades=trades)
    hashes = tuple(dict.fromkeys(str(trades[t]["tx"]) for t, s in statuses.items() if s == "CONFIRMED"
                                 and trades[t].get("tx")))
    if not hashes:  # CONFIRMED without a transaction: not final for us
        return Settlement("pending", trades=trades)
    return Settlement("confirmed", hashes, trades)


class ClobGateway:
    """Signs, posts and follows market orders for one worker (signer key + deposit wallet) through the SDK."""

    def __init__(self, environment: Any, private_key: str, wallet: str | None = None, *, order_type: str = "FOK",
                 rate_limit_wait_s: float = 10.0):
        from eth_account import Account

        from . import sdk

        self.environment = environment
        self.config = sdk.config_of(environment)
        self.host = self.config.clob_url
        self.chain_id = int(self.config.chain_id)
        self.signer = Account.from_key(private_key).address
        self.wallet = wallet or sdk.deposit_wallet_of(self.signer, environment)
        self.order_type = order_type
        self.rate_limit_wait_s = rate_limit_wait_s
        self._key = private_key
        self._client: Any = None
        self._lock = threading.Lock()

    # --- the SDK client: credentials derived once -------------------------------------------------------
    @property
    def client(self) -> Any:
        """The SDK's secure client (created on first use: credentials derived, the wallet checked deployed)."""
        self.ensure_creds()
        return self._client

    def ensure_creds(self, check_wallet: bool = True) -> None:
        """Create the SDK client once: API credentials derived (L1 auth), the deposit wallet checked at the relayer
        (`check_wallet=False`: credentials only, for readiness, whose wallet rows check the wallets)."""
        with self._lock:
            if self._client is not None:
                return
            from . import sdk

            try:
                self._client = sdk.create_client(self._key, wallet=self.wallet, environment=self.environment,
                                                 check_wallet=check_wallet)
            except Exception as exc:  # noqa: BLE001 — mapped to one line
                raise ClobError(f"could not derive CLOB API credentials for {self.signer} (wallet {self.wallet}) "
                                f"at {self.host}: {_msg(exc)}") from None

    def ping(self) -> None:
        """Raise ClobError unless the CLOB answers (GET /ok, no auth)."""
        import httpx

        try:
            httpx.get(self.host.rstrip("/") + "/ok", timeout=5.0).raise_for_status()
        except Exception as exc:  # noqa: BLE001
            raise ClobError(f"CLOB {self.host} does not answer: {type(exc).__name__}") from None

    # --- market rules -------------------------------------------------------------------------------------
    def market(self, token_id: str) -> MarketRules:
        """The token's order rules: tick / neg-risk / fee from the SDK's market metadata, the minimum size, the live
        tick and the resting levels from /book. When the book's tick differs from the metadata the SDK cached
        (the tick changed), the metadata is fetched again, so the order signed next uses the new tick."""
        from . import sdk

        c = self.client
        try:
            book = c.get_order_book(token_id=str(token_id))
            info = sdk.market_info(c, str(token_id))
            if Decimal(book.tick_size) != info.tick_size or bool(book.neg_risk) != info.neg_risk:
                info = sdk.market_info(c, str(token_id), refresh=True)
        except Exception as exc:  # noqa: BLE001
            raise _mapped(exc, f"could not read market rules of token {str(token_id)[:16]}…") from None
        return MarketRules(token_id=str(token_id), tick=info.tick_size, neg_risk=info.neg_risk,
                           fee_rate=Decimal(info.fee_info.rate), fee_exponent=Decimal(info.fee_info.exponent),
                           min_size=Decimal(book.min_order_size),
                           asks=tuple(Decimal(lv.price) for lv in book.asks),
                           bids=tuple(Decimal(lv.price) for lv in book.bids))

    def book(self, token_id: str) -> dict[str, Any] | None:
        """The CLOB's order book of `token_id` (bids and asks with price and size, strings), or None if unreadable."""
        try:
            b = self.client.get_order_book(token_id=str(token_id))
        except Exception:  # noqa: BLE001 — unreadable is None
            return None
        return {"bids": [{"price": str(x.price), "size": str(x.size)} for x in b.bids],
                "asks": [{"price": str(x.price), "size": str(x.size)} for x in b.asks],
                "tick_size": str(b.tick_size), "min_order_size": str(b.min_order_size), "neg_risk": bool(b.neg_risk)}

    # --- orders -------------------------------------------------------------------------------------------
    def build_market_order(self, token_id: str, side: str, amount: Decimal, price_limit: Decimal,
                           order_type: str | None = None, rules: MarketRules | None = None
                           ) -> tuple[Any, dict[str, Any], str]:
        """Sign a protected market order (BUY: `amount` USD with `price_limit` as max price; SELL: `amount` shares
        with it as min price), the limit moved onto the market's tick (never to a worse price); returns (signed
        order, wire JSON, order id) so the id is journalled BEFORE posting."""
        from . import sdk
        from .orders import order_v2_hash

        c = self.client
        rules = rules or self.market(token_id)
        side = str(side).upper()
        limit = on_tick(Decimal(price_limit), side, rules.tick)
        kind = order_type or self.order_type
        try:
            signed = sdk.sign_market_order(c, token_id=str(token_id), side=side, amount=Decimal(amount), limit=limit,
                                           order_type=kind)
        except Exception as exc:  # noqa: BLE001
            raise ClobError(f"could not build the {side} order: {_msg(exc)}") from None
        wire = sdk.wire_of(signed, c.credentials.key)
        exchange, version = sdk.order_exchange(self.environment, str(token_id), rules.neg_risk)
        order_id = order_v2_hash(wire["order"], self.chain_id, exchange, version)
        return signed, wire, order_id

    def post(self, signed: Any, order_id: str, wire: dict[str, Any], order_type: str | None = None,
             sleep: Callable[[float], None] = time.sleep) -> PlacedOrder:
        """Post a signed order. A refusal (a rejected order, a 4xx, cancel-only, rate limits past
        `rate_limit_wait_s`) is returned as accepted=False with one line; a transport failure (outcome unknown)
        raises ClobError. A 429 with a short Retry-After is waited out and the same order posted again (it was
        not placed)."""
        from . import sdk

        for _ in range(3):
            try:
                resp = self.client.post_order(signed)
            except Exception as exc:  # noqa: BLE001
                err = _mapped(exc, f"posting {order_id}")
                if isinstance(err, ClobRateLimited) and err.retry_after is not None \
                        and err.retry_after <= self.rate_limit_wait_s:
                    sleep(max(float(err.retry_after), 0.0))
                    continue
                if isinstance(err, (ClobRateLimited, ClobRestricted)) or _is_refusal(exc):
                    return PlacedOrder(order_id, wire, None, False, str(err))
                raise err from None
            if isinstance(resp, sdk.RejectedOrder):
                return PlacedOrder(order_id, wire, None, False, f"{resp.code}: {resp.message}"[:300])
            body = {"orderID": resp.order_id, "status": resp.status, "makingAmount": str(resp.making_amount),
                    "takingAmount": str(resp.taking_amount), "tradeIDs": list(resp.trade_ids),
                    "transactionsHashes": [str(h) for h in resp.transactions_hashes]}
            if str(resp.order_id).lower() != str(order_id).lower():
                return PlacedOrder(order_id, wire, body, False,
                                   f"the CLOB answered for order {resp.order_id}, not {order_id}")
            return PlacedOrder(order_id, wire, body, True)
        return PlacedOrder(order_id, wire, None, False, "rate limited by the CLOB (429) three times")

    def lookup(self, order_id: str) -> dict[str, Any] | None:
        """The CLOB's record of an order (status, matched size, its trades), or None if the CLOB does not know it."""
        from . import sdk

        try:
            o = self.client.get_order(order_id=str(order_id))
        except sdk.RequestRejectedError as exc:
            if exc.status == 404:
                return None
            raise _mapped(exc, f"lookup of {order_id}") from None
        except Exception as exc:  # noqa: BLE001
            raise _mapped(exc, f"lookup of {order_id}") from None
        return {"id": o.id, "status": str(o.status).upper(), "size_matched": str(getattr(o, "size_matched", "")),
                "associate_trades": list(o.associate_trades)}

    def trades(self, trade_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The status and transaction hash of each trade (GET /data/trades?id=); a trade the CLOB does not list
        is left out (still pending for `settlement_of`)."""
        out: dict[str, dict[str, Any]] = {}
        for tid in trade_ids:
            try:
                page = self.client.list_account_trades(id=str(tid)).first_page()
            except Exception as exc:  # noqa: BLE001
                raise _mapped(exc, f"trade lookup of {tid}") from None
            for t in page.items:
                if str(t.id) == str(tid):
                    out[str(tid)] = {"status": trade_status(t.status), "tx": t.transaction_hash or None}
        return out

    def settlement_txs(self, rec: dict[str, Any]) -> list[str] | None:
        """The settled transactions of an order record's trades (FAILED ones left out); None while pending, []
        when every trade FAILED."""
        ids = [str(t) for t in rec.get("associate_trades") or []]
        s = settlement_of(self.trades(ids)) if ids else Settlement("confirmed")
        if s.state == "pending" or (ids and len(s.trades) < len(ids)):
            return None
        return list(s.hashes)


def _is_refusal(exc: Exception) -> bool:
    """A 4xx answer to POST /order: the order was refused, not placed."""
    status = getattr(exc, "status", None)
    return isinstance(status, int) and 400 <= status < 500


def _mapped(exc: Exception, what: str) -> ClobError:
    """The SDK's error as ours, one line: rate limits (with the wait), trading restrictions, refusals, transport."""
    from . import sdk

    if isinstance(exc, ClobError):
        return exc
    if isinstance(exc, sdk.RateLimitError):
        wait = exc.retry_after
        return ClobRateLimited(f"rate limited by the CLOB ({what}); retry after "
                               f"{'an unknown time' if wait is None else f'{wait:g} s'}", wait)
    if isinstance(exc, sdk.RequestRejectedError):
        if exc.restriction:
            text = {"cancel_only": "in cancel-only mode", "post_only": "in post-only mode",
                    "restarting": "restarting"}.get(exc.restriction, exc.restriction)
            return ClobRestricted(f"the CLOB is {text} ({what}): {_msg(exc)}", exc.restriction)
        return ClobError(f"CLOB refused ({what}), HTTP {exc.status}: {_msg(exc)}")
    if isinstance(exc, (sdk.TransportError, sdk.SdkTimeoutError)):
        return ClobError(f"CLOB unreachable ({what}): {_msg(exc)}")
    return ClobError(f"CLOB error ({what}): {_msg(exc)}")


def _msg(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]


def environment_for(*, clob_url: str, rpc_url: str, chain_id: int, is_local: bool, world: Any = None,
                    relayer_url: str | None = None) -> Any:
    """The SDK environment the supervisor's workers trade in: on a local fork the local CLOB / relayer / node with
    the planted world's addresses; live, production (its CLOB URL replaced only when another one is configured)."""
    from . import sdk

    if is_local:
        return sdk.local_environment(clob_url, relayer_url, rpc_url, chain_id=chain_id,
                                     addresses=sdk.LocalAddresses.of_world(world))
    env = sdk.production_environment()
    if clob_url and clob_url.rstrip("/") != sdk.config_of(env).clob_url:
        return sdk.with_clob_url(env, clob_url)
    return env


def worker_wallet_mode(*, is_local: bool, world: Any = None) -> str:
    """How workers trade: "deposit" (type 3 through their deposit wallet: live, and any fork with the deposit-wallet
    factory planted) or "eoa" (type 0 from the signer itself: only a fork planted without deposit wallets)."""
    if is_local and world is not None and not getattr(world, "deposit_wallet_factory", None):
        return "eoa"
    return "deposit"


def gateway_factory(environment: Any, *, mode: str = "deposit", **kwargs: Any) -> Callable[[Any], ClobGateway]:
    """A function making each worker account's gateway: its key and its deposit wallet derived as the SDK does
    (`mode="eoa"`: the signer itself as the wallet, type 0)."""
    def make(account: Any) -> ClobGateway:
        key = account.key.hex() if isinstance(account.key, bytes) else account.key
        key = key if str(key).startswith("0x") else "0x" + str(key)
        wallet = account.address if mode == "eoa" else None
        return ClobGateway(environment, key, wallet, **kwargs)

    return make
