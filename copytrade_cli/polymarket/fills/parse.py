"""Input checks shared by the decoders: bytes, hex, ints and addresses from hostile input, event topics and
the normalized log. Everything here raises `DecodeError` and nothing else."""
from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Iterable, Mapping

from eth_utils import keccak, to_checksum_address

from .model import DecodeError


_UINT256 = 1 << 256
_MAX_INPUT = 256 * 1024  # calldata/log data larger than this is not a Polymarket fill
_HEX = re.compile(r"[0-9a-fA-F]*\Z")
_DEC = re.compile(r"[0-9]+\Z")


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        v = value[2:] if value[:2] in ("0x", "0X") else value
        if len(v) % 2 or not _HEX.match(v):
            raise DecodeError(f"{what}: not even-length hex")
        return bytes.fromhex(v)
    raise DecodeError(f"{what}: expected bytes or hex string, got {type(value).__name__}")


def _b32hex(value: Any, what: str) -> str:
    raw = _bytes(value, what)
    if len(raw) != 32:
        raise DecodeError(f"{what}: expected 32 bytes, got {len(raw)}")
    return "0x" + raw.hex()


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise DecodeError(f"{what}: not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        v = value.strip()
        if len(v) > 80:
            raise DecodeError(f"{what}: too long")
        if v[:2].lower() == "0x" and len(v) > 2 and _HEX.match(v[2:]):
            return int(v[2:], 16)
        if _DEC.match(v):
            return int(v, 10)
        raise DecodeError(f"{what}: not an integer")
    raise DecodeError(f"{what}: not an integer")


def _opt_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _addr_from_topic(topic: Any, what: str) -> str:
    raw = _bytes(topic, what)
    if len(raw) != 32 or any(raw[:12]):
        raise DecodeError(f"{what}: not an address topic")
    return to_checksum_address(raw[12:])


def _checksum(value: Any, what: str) -> str:
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return to_checksum_address(bytes(value))
    if isinstance(value, str) and len(value) == 42 and value[:2].lower() == "0x" and _HEX.match(value[2:]):
        return to_checksum_address(value)
    raise DecodeError(f"{what}: not an address")


def _leader_set(leaders: Iterable[str] | None) -> frozenset[str] | None:
    if leaders is None:
        return None
    return frozenset(str(a).lower() for a in leaders)


def _wanted(addr: str, leaders: frozenset[str] | None) -> bool:
    return leaders is None or addr.lower() in leaders


def _price(usd_micro: int, shares_micro: int) -> Decimal | None:
    if shares_micro <= 0:
        return None
    try:
        return (Decimal(usd_micro) / Decimal(shares_micro)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)
    except InvalidOperation:  # a ratio past the context's precision (hostile amounts): no price of a share
        raise DecodeError("amounts give a price out of range") from None


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


@lru_cache(maxsize=None)
def _topic(signature: str) -> bytes:
    return keccak(text=signature)


ORDER_FILLED_V2 = "OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)"
ORDER_FILLED_V1 = "OrderFilled(bytes32,address,address,uint256,uint256,uint256,uint256,uint256)"
TRANSFER_SINGLE = "TransferSingle(address,address,address,uint256,uint256)"
TRANSFER_BATCH = "TransferBatch(address,address,address,uint256[],uint256[])"
ORDER_FILLED_V2_TOPIC = "0x" + _topic(ORDER_FILLED_V2).hex()
ORDER_FILLED_V1_TOPIC = "0x" + _topic(ORDER_FILLED_V1).hex()
TRANSFER_SINGLE_TOPIC = "0x" + _topic(TRANSFER_SINGLE).hex()
TRANSFER_BATCH_TOPIC = "0x" + _topic(TRANSFER_BATCH).hex()


class _Log:
    """The fields of a log we need, normalized from a web3 AttributeDict or a raw JSON-RPC dict."""

    __slots__ = ("topics", "data", "tx_hash", "log_index", "block_number", "address", "timestamp")

    def __init__(self, log: Any):
        if not isinstance(log, Mapping) and not hasattr(log, "topics"):
            raise DecodeError("log: expected a mapping")
        topics = _get(log, "topics")
        if not isinstance(topics, (list, tuple)) or not topics or len(topics) > 4:
            raise DecodeError("log: bad topics")
        self.topics = [_bytes(t, "log topic") for t in topics]
        if any(len(t) != 32 for t in self.topics):
            raise DecodeError("log: topic is not 32 bytes")
        self.data = _bytes(_get(log, "data", b""), "log data")
        if len(self.data) > _MAX_INPUT:
            raise DecodeError("log: data too large")
        tx = _get(log, "transactionHash")
        self.tx_hash = _b32hex(tx, "log transactionHash") if tx is not None else None
        self.log_index = _opt_int(_get(log, "logIndex"), "log logIndex")
        self.block_number = _opt_int(_get(log, "blockNumber"), "log blockNumber")
        ts = _get(log, "blockTimestamp")
        self.timestamp = _opt_int(ts, "log blockTimestamp") if ts is not None else None
        addr = _get(log, "address")
        self.address = _checksum(addr, "log address") if addr is not None else None


def _require_tx(lg: _Log) -> str:
    if lg.tx_hash is None:
        raise DecodeError("log: no transactionHash (pending logs cannot be keyed)")
    return lg.tx_hash
