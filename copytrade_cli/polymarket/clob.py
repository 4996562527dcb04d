"""The CLOB gateway: py-clob-client-v2 for one worker (EOA, signature type 0). The same code runs live
and on the fork; only the host differs (the local CLOB on the fork)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..errors import ClobError


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
    def making_micro(self) -> int | None:
        """What the order gave (BUY: USD, SELL: shares) in 1e-6 units, from `makingAmount`; None if absent."""
        return _micro((self.response or {}).get("makingAmount"))

    @property
    def taking_micro(self) -> int | None:
        """What the order got (BUY: shares, SELL: USD) in 1e-6 units, from `takingAmount`; None if absent."""
        return _micro((self.response or {}).get("takingAmount"))


def _micro(v: Any) -> int | None:
    """A decimal amount string of the CLOB ('5', '9.090909') as integer 1e-6 units (None if not a number)."""
    if v is None or v == "":
        return None
    try:
        return int((Decimal(str(v)) * 1_000_000).to_integral_value())
    except Exception:  # noqa: BLE001 — decimal.InvalidOperation and friends
        return None


class ClobGateway:
    """Signs and posts market orders for one worker through the unmodified py-clob-client-v2."""

    def __init__(self, host: str, chain_id: int, private_key: str, exchange: str):
        from py_clob_client_v2.client import ClobClient

        self.host = host
        self.chain_id = chain_id
        self.exchange = exchange
        self._key = private_key
        self.client = ClobClient(host, chain_id=chain_id, key=private_key, signature_type=0)
        self._creds_lock = threading.Lock()
        self._has_creds = False

    def ensure_creds(self) -> None:
        """Derive (or create) this worker's API credentials once (L1 auth)."""
        with self._creds_lock:
            if self._has_creds:
                return
            try:
                creds = self.client.create_or_derive_api_key()
            except Exception as exc:  # noqa: BLE001 — the client raises its own exception types
                raise ClobError(f"could not derive CLOB API credentials at {self.host}: {_msg(exc)}") from None
            self.client.set_api_creds(creds)
            self._has_creds = True

    def build_market_order(self, token_id: str, side: str, amount: Decimal, price_limit: Decimal,
                           order_type: str = "FOK") -> tuple[Any, dict[str, Any], str]:
        """Sign a market order (BUY: amount in USD; SELL: in shares) with a worst-price limit; returns
        (signed order, wire JSON, order id) so the id can be journalled BEFORE posting."""
        from py_clob_client_v2.clob_types import MarketOrderArgsV2, OrderType, PartialCreateOrderOptions
        from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2

        from .orders import order_v2_hash

        self.ensure_creds()
        try:
            signed = self.client.create_market_order(
                MarketOrderArgsV2(token_id=str(token_id), amount=float(amount), side=side, price=float(price_limit),
                                  order_type=getattr(OrderType, order_type)),
                PartialCreateOrderOptions(tick_size="0.01", neg_risk=False))
        except Exception as exc:  # noqa: BLE001
            raise ClobError(f"could not build the {side} order: {_msg(exc)}") from None
        wire = order_to_json_v2(signed, self.client.creds.api_key, getattr(OrderType, order_type), False, False)
        order_id = order_v2_hash(wire["order"], self.chain_id, self.exchange)
        return signed, wire, order_id

    def post(self, signed: Any, order_id: str, wire: dict[str, Any], order_type: str = "FOK") -> PlacedOrder:
        """Post a signed order; a refusal is returned (accepted=False), a transport failure raises."""
        from py_clob_client_v2.clob_types import OrderType
        from py_clob_client_v2.exceptions import PolyApiException

        try:
            resp = self.client.post_order(signed, getattr(OrderType, order_type))
        except PolyApiException as exc:
            status = getattr(exc, "status_code", None)
            if status is not None and 400 <= int(status) < 500:
                return PlacedOrder(order_id, wire, None, False, _msg(exc))
            raise ClobError(f"CLOB error {status}: {_msg(exc)}") from None
        except Exception as exc:  # noqa: BLE001 — timeout/network: outcome unknown, reconcile by query
            raise ClobError(f"CLOB unreachable while posting {order_id}: {_msg(exc)}") from None
        if isinstance(resp, dict) and (resp.get("error") or resp.get("success") is False):
            return PlacedOrder(order_id, wire, resp, False, str(resp.get("error") or resp.get("errorMsg")))
        return PlacedOrder(order_id, wire, resp, True)

    def book(self, token_id: str) -> dict[str, Any] | None:
        """The CLOB's order book of `token_id` (`GET /book`: bids and asks with price and size), or None if it
        could not be read (the caller then relies on its FOK order)."""
        try:
            got = self.client.get_order_book(str(token_id))
        except Exception:  # noqa: BLE001 — the client raises its own exception types; unreadable is None
            return None
        return got if isinstance(got, dict) else None

    def lookup(self, order_id: str) -> dict[str, Any] | None:
        """The CLOB's record of an order (to reconcile an order whose outcome is unknown), or None."""
        from py_clob_client_v2.exceptions import PolyApiException

        self.ensure_creds()
        try:
            res = self.client.get_order(order_id)
        except PolyApiException as exc:
            if getattr(exc, "status_code", None) == 404:
                return None
            raise ClobError(f"CLOB lookup of {order_id} failed: {_msg(exc)}") from None
        except Exception as exc:  # noqa: BLE001
            raise ClobError(f"CLOB unreachable looking up {order_id}: {_msg(exc)}") from None
        return res or None

    def settlement_txs(self, rec: dict[str, Any]) -> list[str] | None:
        """The settlement transaction hashes of an order's trades (`associate_trades` of its record), FAILED
        trades left out; None while some trade has no transaction yet."""
        from py_clob_client_v2.clob_types import TradeParams
        from py_clob_client_v2.exceptions import PolyApiException

        hashes: list[str] = []
        for tid in rec.get("associate_trades") or []:
            try:
                rows = self.client.get_trades(TradeParams(id=str(tid)), only_first_page=True)
            except PolyApiException as exc:
                raise ClobError(f"CLOB trade lookup of {tid} failed: {_msg(exc)}") from None
            except Exception as exc:  # noqa: BLE001
                raise ClobError(f"CLOB unreachable looking up trade {tid}: {_msg(exc)}") from None
            row = next((r for r in rows or [] if str(r.get("id")) == str(tid)), None)
            if row is None:
                return None
            if str(row.get("status", "")).upper() in ("FAILED", "TRADE_STATUS_FAILED"):
                continue
            h = row.get("transaction_hash")
            if not h:
                return None
            hashes.append(str(h))
        return hashes


def _msg(exc: Exception) -> str:
    em = getattr(exc, "error_msg", None)
    if isinstance(em, dict):
        return str(em.get("error") or em)
    return str(em or exc)[:200]
