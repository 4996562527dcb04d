"""Signed V2 orders as the local CLOB receives them: parsing, EIP-712 hashing, signer recovery, checks.

Everything here is pure (no chain, no I/O) so it can be unit-tested and reused by the matching engine.
Wire shapes and error strings follow CLOB-WIRE §5–§6.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from eth_utils import to_checksum_address

from py_clob_client_v2.config import get_contract_config

from ..polymarket.orders import OrderFormatError, order_v2_digest, order_v2_tuple, recover_signer

ORDER_TYPES = ("GTC", "GTD", "FOK", "FAK")
RESTING_TYPES = ("GTC", "GTD")
TAKE_ONLY_TYPES = ("FOK", "FAK")
SIDE_BUY, SIDE_SELL = "BUY", "SELL"
UNIT = 10**6  # USDC and outcome shares both have 6 decimals
VALID_TICKS = ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")
GTD_SECURITY_THRESHOLD_S = 60

SIG_EOA, SIG_POLY_PROXY, SIG_POLY_GNOSIS_SAFE, SIG_POLY_1271 = 0, 1, 2, 3

# Polymarket's own wallets on Polygon, CREATE2-derived from the signing EOA (the exchange's PolyProxyLib /
# PolySafeLib; the same constants as Polymarket's relayer clients): type 1 POLY_PROXY's maker is the signer's proxy
# wallet, type 2 POLY_GNOSIS_SAFE's maker the signer's Safe.
POLY_PROXY_FACTORY = "0xaB45c5A4B0c941a2F231C04C3f49182e1A254052"
POLY_PROXY_INIT_CODE_HASH = "0xd21df8dc65880a8606f09fe0ce3df9b8869287ab0b058be05aa9e8af6330a00b"
POLY_SAFE_FACTORY = "0xaacFeEa03eb1561C4e67d661e40682Bd20E3541b"
POLY_SAFE_INIT_CODE_HASH = "0x2bce2127ff07fb632d16c8347c4ebf501f4841168bed00d9e6ef715ddb6fcecf"

# Error strings of the real CLOB (CLOB-WIRE §6.2).
ERR_PAYLOAD = "Invalid order payload"
ERR_VERSION = "order_version_mismatch"
ERR_SIGNATURE = "invalid signature"
ERR_OWNER = "the order owner has to be the owner of the API KEY"
ERR_SIGNER = "the order signer address has to be the address of the API KEY"
ERR_BALANCE = "not enough balance / allowance"
ERR_FOK = "order couldn't be fully filled. FOK orders are fully filled or killed."
ERR_FAK = ("no orders found to match with FAK order. "
           "FAK orders are partially filled or killed if no match is found.")
ERR_EXPIRATION = "invalid expiration"
ERR_POST_ONLY_CROSS = "invalid post-only order: order crosses book"
ERR_POST_ONLY_TYPE = "invalid post-only order: only GTC and GTD orders can be post-only"


class ClobApiError(Exception):
    """A request the CLOB rejects: HTTP `status` with body `{"error": message}` (extra keys in `extra`)."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        """The JSON error body."""
        return {"error": self.message, **self.extra}


def err_tick(order_id: str, price, tick: str) -> ClobApiError:
    """Price not on the market's tick."""
    return ClobApiError(f"order {order_id} is invalid. Price ({price}) breaks minimum tick size rule: {tick}")


def err_min_size(order_id: str, size, minimum) -> ClobApiError:
    """Size under the market's minimum order size."""
    return ClobApiError(f"order {order_id} is invalid. Size ({size}) lower than the minimum: {minimum}")


def err_duplicate(order_id: str) -> ClobApiError:
    """Same order hash posted twice."""
    return ClobApiError(f"order {order_id} is invalid. Duplicated.")


def exchange_address(chain_id: int, neg_risk: bool) -> str:
    """The V2 exchange (or neg-risk V2 exchange) that orders for this chain are signed against."""
    cfg = get_contract_config(chain_id)
    return to_checksum_address(cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2)


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value[2:] if value.startswith(("0x", "0X")) else value)
    if len(raw) != 32:
        raise ValueError("bytes32 field must be 32 bytes")
    return raw


@dataclass
class SignedOrder:
    """A V2 order as posted (wire JSON) with its integer fields parsed."""

    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: str  # "BUY" | "SELL"
    expiration: int
    signature_type: int
    timestamp: int
    metadata: str
    builder: str
    signature: str
    wire: dict = field(repr=False, default_factory=dict)
    _tuple: tuple | None = field(repr=False, default=None, compare=False)

    @property
    def side_int(self) -> int:
        """0 for BUY, 1 for SELL (as signed)."""
        return 0 if self.side == SIDE_BUY else 1

    @property
    def price(self) -> Fraction:
        """Limit price in USDC per share, exact: BUY maker/taker, SELL taker/maker."""
        if self.side == SIDE_BUY:
            return Fraction(self.maker_amount, self.taker_amount)
        return Fraction(self.taker_amount, self.maker_amount)

    @property
    def size_units(self) -> int:
        """Size in share units (1e-6 share): BUY takerAmount, SELL makerAmount."""
        return self.taker_amount if self.side == SIDE_BUY else self.maker_amount

    def contract_tuple(self) -> tuple:
        """The Order struct as the V2 exchange ABI takes it (salt … builder, signature)."""
        if self._tuple is None:
            self._tuple = order_v2_tuple(self.wire)
        return self._tuple

    def digest(self, chain_id: int, verifying_contract: str) -> bytes:
        """The EIP-712 digest that is signed; its hex is the orderID."""
        return order_v2_digest(self.contract_tuple(), chain_id, verifying_contract)


def _as_int(value, name: str) -> int:
    if isinstance(value, bool):
        raise ValueError(name)
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        out = int(value)
    else:
        raise ValueError(name)
    if out < 0:
        raise ValueError(name)
    return out


def is_v1_order(order: dict) -> bool:
    """True for a V1-shaped order body (nonce/feeRateBps/taker, no timestamp)."""
    return "timestamp" not in order and any(k in order for k in ("nonce", "feeRateBps", "taker"))


def parse_order(order: dict) -> SignedOrder:
    """Parse the `order` object of a POST /order body; V1 bodies raise order_version_mismatch."""
    if not isinstance(order, dict):
        raise ClobApiError(ERR_PAYLOAD)
    if is_v1_order(order):
        raise ClobApiError(ERR_VERSION)
    try:
        side = order["side"]
        if isinstance(side, int) and not isinstance(side, bool):
            side = SIDE_BUY if side == 0 else SIDE_SELL if side == 1 else ""
        side = str(side).upper()
        if side not in (SIDE_BUY, SIDE_SELL):
            raise ValueError("side")
        parsed = SignedOrder(
            salt=_as_int(order["salt"], "salt"),
            maker=to_checksum_address(order["maker"]),
            signer=to_checksum_address(order["signer"]),
            token_id=_as_int(order["tokenId"], "tokenId"),
            maker_amount=_as_int(order["makerAmount"], "makerAmount"),
            taker_amount=_as_int(order["takerAmount"], "takerAmount"),
            side=side,
            expiration=_as_int(order.get("expiration", "0") or "0", "expiration"),
            signature_type=_as_int(order.get("signatureType", 0), "signatureType"),
            timestamp=_as_int(order["timestamp"], "timestamp"),
            metadata=str(order.get("metadata") or "0x" + "00" * 32),
            builder=str(order.get("builder") or "0x" + "00" * 32),
            signature=str(order["signature"]),
            wire=order,
        )
        _bytes32(parsed.metadata)
        _bytes32(parsed.builder)
        parsed._tuple = order_v2_tuple(order)  # the exchange must be able to take it as is
        if parsed.signature_type not in (SIG_EOA, SIG_POLY_PROXY, SIG_POLY_GNOSIS_SAFE, SIG_POLY_1271):
            raise ValueError("signatureType")
        if parsed.maker_amount == 0 or parsed.taker_amount == 0:
            raise ValueError("amounts")
    except (KeyError, ValueError, TypeError, OrderFormatError):
        raise ClobApiError(ERR_PAYLOAD) from None
    return parsed


def _create2(factory: str, salt: bytes, init_code_hash: str) -> str:
    from eth_utils import keccak

    raw = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + bytes.fromhex(init_code_hash[2:]))
    return to_checksum_address(raw[12:])


def poly_proxy_wallet(signer: str) -> str:
    """The signer's Polymarket proxy wallet: CREATE2(proxy factory, keccak(abi.encodePacked(signer)))."""
    from eth_utils import keccak

    return _create2(POLY_PROXY_FACTORY, keccak(bytes.fromhex(to_checksum_address(signer)[2:])),
                    POLY_PROXY_INIT_CODE_HASH)


def poly_safe_wallet(signer: str) -> str:
    """The signer's Polymarket Safe: CREATE2(Safe factory, keccak(abi.encode(signer)))."""
    from eth_utils import keccak

    return _create2(POLY_SAFE_FACTORY, keccak(bytes(12) + bytes.fromhex(to_checksum_address(signer)[2:])),
                    POLY_SAFE_INIT_CODE_HASH)


def owned_maker(order: SignedOrder) -> str | None:
    """The only maker an order of type 0/1/2 may name: the signer itself, its proxy wallet, its Safe."""
    return {SIG_EOA: lambda s: to_checksum_address(s), SIG_POLY_PROXY: poly_proxy_wallet,
            SIG_POLY_GNOSIS_SAFE: poly_safe_wallet}.get(order.signature_type, lambda s: None)(order.signer)


def verify_order_signature(order: SignedOrder, chain_id: int, neg_risk: bool,
                           verifying_contract: str | None = None) -> str:
    """Check the order's EIP-712 signature against `signer`; return the orderID (0x digest) or raise.

    The domain's verifyingContract is the chain's V2 (neg-risk) exchange from py_clob_client_v2's config,
    unless given.
    """
    try:
        digest = order.digest(chain_id, verifying_contract or exchange_address(chain_id, neg_risk))
    except OrderFormatError:
        raise ClobApiError(ERR_PAYLOAD) from None
    order_id = "0x" + digest.hex()
    if order.signature_type == SIG_POLY_1271:
        # NOTE: a POLY_1271 signature is validated by the deposit wallet contract (ERC-1271) on chain; the
        # caller does that check. Here we only insist on the documented layout (65-byte ECDSA + suffix).
        sig = order.signature[2:] if order.signature.startswith("0x") else order.signature
        if len(sig) < 2 * (65 + 32 + 32):
            raise ClobApiError(ERR_SIGNATURE)
        return order_id
    recovered = recover_signer(digest, order.signature)
    if recovered is None or recovered.lower() != order.signer.lower():
        raise ClobApiError(ERR_SIGNATURE)
    # NOTE: the exchange treats a maker the signer does not own as an invalid signature (type 0: maker = signer;
    # 1: the signer's proxy wallet; 2: its Safe), so the CLOB refuses it the same way (docs/live-assumptions.md).
    if order.maker.lower() != (owned_maker(order) or "").lower():
        raise ClobApiError(ERR_SIGNATURE)
    return order_id


def price_on_tick(price: Fraction, tick: str) -> bool:
    """True if `price` is an exact multiple of the tick and within [tick, 1 - tick]."""
    t = Fraction(Decimal(tick))
    if price < t or price > 1 - t:
        return False
    return (price / t).denominator == 1


def fraction_to_decimal_str(value: Fraction, places: int = 6) -> str:
    """Render an exact price/size as a short decimal string ('0.55', '100', '9.090909')."""
    d = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal(1).scaleb(-places))
    text = format(d.normalize(), "f")
    return text if text not in ("-0",) else "0"


def units_to_str(units: int) -> str:
    """Render an integer amount in 1e-6 units as a decimal string ('5', '9.090909')."""
    return fraction_to_decimal_str(Fraction(units, UNIT))


# Decimals of the USDC/"amount" leg per tick (the SDKs' ROUNDING_CONFIG); share sizes always have 2.
AMOUNT_DECIMALS = {"0.1": 3, "0.01": 4, "0.005": 5, "0.0025": 6, "0.001": 5, "0.0001": 6}
SIZE_DECIMALS = 2
# NOTE: live caps a marketable order's taker amount at 4 decimals whatever the tick (py-clob-client-v2#99: market BUYs
# on 0.001 ticks signed with 5 are refused); the stricter reading, docs/live-assumptions.md.
MARKET_TAKER_DECIMALS = 4


def _decimals_ok(units: int, decimals: int) -> bool:
    return units % 10 ** (6 - decimals) == 0 if decimals < 6 else True


def check_market_amount_precision(order: SignedOrder, tick: str = "0.01") -> None:
    """Marketable (FOK/FAK) orders: maker amount at most 2 decimals, taker amount at most 4 (live's rule and text)."""
    if not _decimals_ok(order.maker_amount, SIZE_DECIMALS) or not _decimals_ok(order.taker_amount,
                                                                               MARKET_TAKER_DECIMALS):
        side = "buy" if order.side == SIDE_BUY else "sell"
        raise ClobApiError(f"invalid amounts, the market {side} orders maker amount supports a max accuracy of "
                           f"{SIZE_DECIMALS} decimals, taker amount a max of {MARKET_TAKER_DECIMALS} decimals")


def check_limit_amount_precision(order: SignedOrder, tick: str) -> None:
    """Resting (GTC/GTD) orders: shares at most 2 decimals, the collateral leg at most the tick's amount decimals
    (live's text: `invalid amounts, the buy orders maker amount supports a max accuracy of 4 decimals, taker amount
    a max of 2 decimals`)."""
    amount = AMOUNT_DECIMALS.get(tick, 6)
    maker_dp, taker_dp = (amount, SIZE_DECIMALS) if order.side == SIDE_BUY else (SIZE_DECIMALS, amount)
    if not _decimals_ok(order.maker_amount, maker_dp) or not _decimals_ok(order.taker_amount, taker_dp):
        side = "buy" if order.side == SIDE_BUY else "sell"
        raise ClobApiError(f"invalid amounts, the {side} orders maker amount supports a max accuracy of {maker_dp} "
                           f"decimals, taker amount a max of {taker_dp} decimals")


def parse_post(payload, api_key: str, key_address: str) -> tuple[SignedOrder, str, bool]:
    """Check a POST /order body against the posting API key: (order, order type, post-only) or raise."""
    if not isinstance(payload, dict) or not isinstance(payload.get("order"), dict):
        raise ClobApiError(ERR_PAYLOAD)
    order = parse_order(payload["order"])
    order_type = str(payload.get("orderType") or "GTC").upper()
    if order_type not in ORDER_TYPES:
        raise ClobApiError(ERR_PAYLOAD)
    post_only = bool(payload.get("postOnly", False))
    if payload.get("owner") != api_key:
        raise ClobApiError(ERR_OWNER)
    if order.signature_type != SIG_POLY_1271 and order.signer.lower() != key_address.lower():
        raise ClobApiError(ERR_SIGNER)
    return order, order_type, post_only


def check_order_terms(order: SignedOrder, order_id: str, order_type: str, tick: str, min_order_size,
                      now: float) -> None:
    """The market's rules for an order: GTD expiration, tick and minimum size (resting), amount precision
    and price range (marketable)."""
    if order_type == "GTD":
        if not order.expiration or order.expiration <= now + GTD_SECURITY_THRESHOLD_S:
            raise ClobApiError(ERR_EXPIRATION)
    price = order.price
    if order_type in RESTING_TYPES:
        if not price_on_tick(price, tick):
            raise err_tick(order_id, fraction_to_decimal_str(price), tick)
        if order.size_units < int(Decimal(str(min_order_size)) * UNIT):
            raise err_min_size(order_id, units_to_str(order.size_units), min_order_size)
        check_limit_amount_precision(order, tick)
    else:
        check_market_amount_precision(order, tick)
        lo = Fraction(Decimal(tick))
        if price < lo or price > 1 - lo:
            raise err_tick(order_id, fraction_to_decimal_str(price), tick)
