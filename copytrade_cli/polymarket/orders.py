"""Polymarket order structs: wire JSON <-> exchange ABI tuples, EIP-712 digests, signer recovery, signing.

Hashing is done by hand (typeHash + abi-encoded fields) rather than through `encode_typed_data`: it is
~20x faster and gives the same digest as py_clob_client_v2's `build_order_hash` (checked in tests).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME = "Polymarket CTF Exchange"
_DOMAIN_TYPEHASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")

ORDER_V2_TYPE = (
    "Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,uint256 takerAmount,"
    "uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)"
)
ORDER_V1_TYPE = (
    "Order(uint256 salt,address maker,address signer,address taker,uint256 tokenId,uint256 makerAmount,"
    "uint256 takerAmount,uint256 expiration,uint256 nonce,uint256 feeRateBps,uint8 side,uint8 signatureType)"
)
_ORDER_V2_TYPEHASH = keccak(text=ORDER_V2_TYPE)
_ORDER_V1_TYPEHASH = keccak(text=ORDER_V1_TYPE)

# ABI tuple type strings, as the exchanges' functions take them (signature last).
ORDER_V2_ABI = "(uint256,address,address,uint256,uint256,uint256,uint8,uint8,uint256,bytes32,bytes32,bytes)"
ORDER_V1_ABI = "(uint256,address,address,address,uint256,uint256,uint256,uint256,uint256,uint256,uint8,uint8,bytes)"

BUY, SELL = 0, 1
_ZERO32 = b"\0" * 32


class OrderFormatError(ValueError):
    """An order dict/tuple that cannot be turned into an exchange order."""


def side_int(side: Any) -> int:
    """0 for BUY, 1 for SELL, from "BUY"/"SELL" (any case) or 0/1."""
    if isinstance(side, str):
        s = side.strip().upper()
        if s in ("BUY", "0"):
            return BUY
        if s in ("SELL", "1"):
            return SELL
    elif isinstance(side, int) and not isinstance(side, bool) and side in (0, 1):
        return int(side)
    raise OrderFormatError(f"side must be BUY or SELL, got {side!r}")


def side_str(side: Any) -> str:
    """"BUY" or "SELL" from any accepted side spelling."""
    return "BUY" if side_int(side) == BUY else "SELL"


def _uint(value: Any, name: str, bits: int = 256) -> int:
    if isinstance(value, bool):
        raise OrderFormatError(f"{name} must be an integer, got {value!r}")
    try:
        if isinstance(value, int):
            out = value
        elif isinstance(value, str):
            v = value.strip()
            out = int(v, 16) if v.lower().startswith("0x") else int(v, 10)
        else:
            raise TypeError
    except (TypeError, ValueError):
        raise OrderFormatError(f"{name} must be an unsigned integer, got {value!r}") from None
    if not 0 <= out < (1 << bits):
        raise OrderFormatError(f"{name} out of range: {value!r}")
    return out


def _addr(value: Any, name: str) -> str:
    try:
        if isinstance(value, (bytes, bytearray)) and len(value) == 20:
            return to_checksum_address(bytes(value))
        if isinstance(value, str) and len(value) == 42 and value[:2].lower() == "0x":
            return to_checksum_address(value)
    except ValueError:
        pass
    raise OrderFormatError(f"{name} must be a 20-byte address, got {value!r}")


def _b32(value: Any, name: str) -> bytes:
    if value is None:
        return _ZERO32
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
    elif isinstance(value, str):
        try:
            raw = bytes.fromhex(value[2:] if value[:2].lower() == "0x" else value)
        except ValueError:
            raise OrderFormatError(f"{name} must be hex, got {value!r}") from None
    else:
        raise OrderFormatError(f"{name} must be bytes32, got {value!r}")
    if len(raw) > 32:
        raise OrderFormatError(f"{name} longer than 32 bytes")
    return raw.rjust(32, b"\0")


def _sig(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value[2:] if value[:2].lower() == "0x" else value)
        except ValueError:
            pass
    raise OrderFormatError(f"signature must be hex bytes, got {value!r}")


# --------------------------------------------------------------------------------------------- V2
def order_v2_tuple(order: Mapping[str, Any]) -> tuple:
    """The V2 exchange's `Order` ABI tuple from a wire-JSON order (CLOB-WIRE §5.6) or an equivalent dict."""
    if not isinstance(order, Mapping):
        raise OrderFormatError("order must be a mapping")
    try:
        return (
            _uint(order["salt"], "salt"),
            _addr(order["maker"], "maker"),
            _addr(order.get("signer") or order["maker"], "signer"),
            _uint(order["tokenId"], "tokenId"),
            _uint(order["makerAmount"], "makerAmount"),
            _uint(order["takerAmount"], "takerAmount"),
            side_int(order["side"]),
            _uint(order.get("signatureType", 0), "signatureType", 8),
            _uint(order.get("timestamp", 0), "timestamp"),
            _b32(order.get("metadata"), "metadata"),
            _b32(order.get("builder"), "builder"),
            _sig(order.get("signature", b"")),
        )
    except KeyError as exc:
        raise OrderFormatError(f"order lacks {exc.args[0]!r}") from None


def order_v2_json(t: tuple | list) -> dict:
    """The wire-JSON shape (as py_clob_client_v2 posts it) of a decoded V2 ABI order tuple."""
    salt, maker, signer, token, making, taking, side, sig_type, ts, meta, builder, sig = t
    return {
        "salt": int(salt), "maker": to_checksum_address(maker), "signer": to_checksum_address(signer),
        "tokenId": str(int(token)), "makerAmount": str(int(making)), "takerAmount": str(int(taking)),
        "side": side_str(int(side)), "expiration": "0", "signatureType": int(sig_type), "timestamp": str(int(ts)),
        "metadata": "0x" + bytes(meta).hex(), "builder": "0x" + bytes(builder).hex(),
        "signature": "0x" + bytes(sig).hex(),
    }


@lru_cache(maxsize=64)
def domain_separator(chain_id: int, exchange: str, version: str) -> bytes:
    """EIP-712 domain separator of a Polymarket exchange (name "Polymarket CTF Exchange")."""
    return keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [_DOMAIN_TYPEHASH, keccak(text=DOMAIN_NAME), keccak(text=version), int(chain_id),
         to_checksum_address(exchange)],
    ))


def order_v2_digest(order: Mapping[str, Any] | tuple, chain_id: int, exchange: str, version: str = "2") -> bytes:
    """The EIP-712 digest of a V2 order (== py_clob_client_v2 `build_order_hash`, == the CLOB order id)."""
    t = order if isinstance(order, tuple) else order_v2_tuple(order)
    struct = keccak(abi_encode(
        ["bytes32", "uint256", "address", "address", "uint256", "uint256", "uint256", "uint8", "uint8", "uint256",
         "bytes32", "bytes32"],
        [_ORDER_V2_TYPEHASH, *t[:11]],
    ))
    return keccak(b"\x19\x01" + domain_separator(chain_id, exchange, version) + struct)


def order_v2_hash(order: Mapping[str, Any] | tuple, chain_id: int, exchange: str, version: str = "2") -> str:
    """`order_v2_digest` as 0x-hex."""
    return "0x" + order_v2_digest(order, chain_id, exchange, version).hex()


# --------------------------------------------------------------------------------------------- V1
def order_v1_tuple(order: Mapping[str, Any]) -> tuple:
    """The V1 exchange's `Order` ABI tuple from a V1 wire-JSON order."""
    if not isinstance(order, Mapping):
        raise OrderFormatError("order must be a mapping")
    try:
        return (
            _uint(order["salt"], "salt"),
            _addr(order["maker"], "maker"),
            _addr(order.get("signer") or order["maker"], "signer"),
            _addr(order.get("taker") or "0x" + "00" * 20, "taker"),
            _uint(order["tokenId"], "tokenId"),
            _uint(order["makerAmount"], "makerAmount"),
            _uint(order["takerAmount"], "takerAmount"),
            _uint(order.get("expiration", 0), "expiration"),
            _uint(order.get("nonce", 0), "nonce"),
            _uint(order.get("feeRateBps", 0), "feeRateBps"),
            side_int(order["side"]),
            _uint(order.get("signatureType", 0), "signatureType", 8),
            _sig(order.get("signature", b"")),
        )
    except KeyError as exc:
        raise OrderFormatError(f"order lacks {exc.args[0]!r}") from None


def order_v1_digest(order: Mapping[str, Any] | tuple, chain_id: int, exchange: str) -> bytes:
    """The EIP-712 digest of a V1 order (domain version "1")."""
    t = order if isinstance(order, tuple) else order_v1_tuple(order)
    struct = keccak(abi_encode(
        ["bytes32", "uint256", "address", "address", "address", "uint256", "uint256", "uint256", "uint256",
         "uint256", "uint256", "uint8", "uint8"],
        [_ORDER_V1_TYPEHASH, *t[:12]],
    ))
    return keccak(b"\x19\x01" + domain_separator(chain_id, exchange, "1") + struct)


# ------------------------------------------------------------------------------------ signatures
def recover_signer(digest: bytes, signature: bytes | str) -> str | None:
    """The address that signed `digest` with a 65-byte ECDSA signature, or None if it does not recover."""
    try:
        sig = _sig(signature)
        if len(sig) != 65:
            return None
        return Account._recover_hash(digest, signature=sig)
    except Exception:  # noqa: BLE001 - any malformed signature simply does not recover
        return None


def sign_order_v2(private_key: str, order: Mapping[str, Any], chain_id: int, exchange: str) -> str:
    """Sign a V2 order dict (EOA, type 0) and return the 0x signature (what py_clob_client_v2 produces)."""
    digest = order_v2_digest(order_v2_tuple({**order, "signature": b""}), chain_id, exchange)
    signed = Account._sign_hash(digest, private_key=private_key)
    return "0x" + bytes(signed.signature).hex()


def build_signed_order_v2(
    private_key: str,
    *,
    token_id: int | str,
    side: str | int,
    maker_amount: int,
    taker_amount: int,
    chain_id: int,
    exchange: str,
    maker: str | None = None,
    salt: int | None = None,
    timestamp_ms: int | None = None,
) -> dict:
    """A signed V2 EOA order in wire-JSON shape, built with py_clob_client_v2's own order builder."""
    from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2
    from py_clob_client_v2.order_utils.model.side import Side
    from py_clob_client_v2.signer import Signer

    signer = Signer(private_key, chain_id)
    kwargs = {}
    if salt is not None:
        kwargs["generate_salt"] = lambda: str(salt)
    builder = ExchangeOrderBuilderV2(to_checksum_address(exchange), chain_id, signer, **kwargs)
    signed = builder.build_signed_order(OrderDataV2(
        maker=maker or signer.address(),
        signer=signer.address(),
        tokenId=str(int(token_id)),
        makerAmount=str(int(maker_amount)),
        takerAmount=str(int(taker_amount)),
        side=Side(side_int(side)),
        timestamp=str(timestamp_ms) if timestamp_ms else None,
    ))
    return {
        "salt": int(signed.salt), "maker": signed.maker, "signer": signed.signer, "tokenId": signed.tokenId,
        "makerAmount": signed.makerAmount, "takerAmount": signed.takerAmount, "side": side_str(signed.side),
        "expiration": signed.expiration, "signatureType": int(signed.signatureType),
        "timestamp": signed.timestamp, "metadata": signed.metadata, "builder": signed.builder,
        "signature": signed.signature if signed.signature.startswith("0x") else "0x" + signed.signature,
    }
