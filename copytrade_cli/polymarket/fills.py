"""Leader fills: one model, one dedup key, and a decoder per detection channel.

Every channel (mined exchange logs, CTF transfer logs, pending transactions, the activity websocket,
the Data API) turns what it sees into `LeaderFill`s whose `key` is the same for the same fill:

    f"{tx_hash.lower()}:{token_id}:{side}:{shares_micro}"

with `shares_micro` the fill size in 1e-6 shares (websocket / Data API floats are rounded to micro
units). All decoders are pure functions (no node) and never raise anything but `DecodeError` on
hostile or malformed input; input that is well-formed but not a fill (another event, another
address, a non-trade message) returns None / an empty list.

Amount conventions (all Polymarket amounts are 6-decimal integers):
- V2 `OrderFilled(..., uint8 side, uint256 tokenId, makerAmountFilled, takerAmountFilled, ...)`: `side`
  is the side of the order whose `maker` the event names. BUY: maker paid `makerAmountFilled` USDC for
  `takerAmountFilled` shares; SELL: maker gave `makerAmountFilled` shares for `takerAmountFilled` USDC.
- V1 `OrderFilled(..., makerAssetId, takerAssetId, making, taking, fee)`: makerAssetId == 0 means the
  maker paid collateral, i.e. bought `takerAssetId`.
"""
from __future__ import annotations

import json
import math
import re
import time
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Iterable, Mapping

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from copytrade_cli.errors import CopytradeError

MICRO = 10**6
_UINT256 = 1 << 256
_MAX_INPUT = 256 * 1024  # calldata/log data larger than this is not a Polymarket fill


_HEX = re.compile(r"[0-9a-fA-F]*\Z")
_DEC = re.compile(r"[0-9]+\Z")


class DecodeError(CopytradeError, ValueError):
    """Input that claims to be a fill but cannot be decoded (malformed, truncated or hostile)."""


# ------------------------------------------------------------------------------------------ model
SOURCE_LOG_V2 = "log_v2"
SOURCE_LOG_V1 = "log_v1"
SOURCE_CTF_TRANSFER = "ctf_transfer"
SOURCE_MEMPOOL = "mempool"
SOURCE_ACTIVITY_WS = "activity_ws"
SOURCE_DATA_API = "data_api"


def fill_key(tx_hash: str, token_id: int | str, side: str, shares_micro: int) -> str:
    """The canonical dedup key of a fill; identical whichever channel saw it."""
    return f"{tx_hash.lower()}:{int(token_id)}:{side}:{int(shares_micro)}"


@dataclass(frozen=True, slots=True)
class LeaderFill:
    """One fill of one trader's order, as any detection channel reports it."""

    leader: str
    """Checksummed address of the trader (order maker / proxyWallet)."""
    tx_hash: str
    """0x + 64 lowercase hex."""
    token_id: str
    """ERC-1155 position id, decimal string."""
    side: str
    """"BUY" or "SELL", from the trader's point of view."""
    shares_micro: int
    """Outcome tokens moved, in 1e-6 shares."""
    usd_micro: int | None = None
    """Collateral moved, in 1e-6 USDC (None when the channel cannot know, e.g. a CTF transfer)."""
    price: Decimal | None = None
    """USDC per share (None when unknown)."""
    source: str = ""
    """Which channel produced it: log_v2, log_v1, ctf_transfer, mempool, activity_ws, data_api."""
    seen_at: float = field(default_factory=time.time)
    """Unix seconds when this process saw it."""
    log_index: int | None = None
    condition_id: str | None = None
    block_number: int | None = None
    timestamp: int | None = None
    """Chain/feed timestamp in seconds when the channel carries one."""
    order_hash: str | None = None
    exchange: str | None = None
    counterparty: str | None = None

    @property
    def key(self) -> str:
        """The canonical dedup key (see module docstring)."""
        return fill_key(self.tx_hash, self.token_id, self.side, self.shares_micro)

    @property
    def shares(self) -> Decimal:
        """Size in shares."""
        return Decimal(self.shares_micro) / MICRO

    @property
    def usd(self) -> Decimal | None:
        """Notional in USDC."""
        return None if self.usd_micro is None else Decimal(self.usd_micro) / MICRO

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (Decimals as strings) including the key."""
        d = asdict(self)
        d["price"] = None if self.price is None else str(self.price)
        d["key"] = self.key
        return d


# ------------------------------------------------------------------------------------- primitives
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
    return (Decimal(usd_micro) / Decimal(shares_micro)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN)


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


# ----------------------------------------------------------------------------------- exchange logs
def decode_order_filled_v2(log: Any, leaders: Iterable[str] | None = None, *, seen_at: float | None = None,
                           condition_id: str | None = None) -> LeaderFill | None:
    """A V2 `OrderFilled` log -> the fill of the order's maker (None if another event or not a leader)."""
    lg = _Log(log)
    if lg.topics[0] != _topic(ORDER_FILLED_V2):
        return None
    if len(lg.topics) != 4:
        raise DecodeError("OrderFilled(V2): expected 4 topics")
    maker = _addr_from_topic(lg.topics[2], "OrderFilled maker")
    if not _wanted(maker, _leader_set(leaders)):
        return None
    taker = _addr_from_topic(lg.topics[3], "OrderFilled taker")
    if len(lg.data) != 7 * 32:
        raise DecodeError("OrderFilled(V2): data must be 7 words")
    try:
        side, token, making, taking, _fee, _builder, _meta = abi_decode(
            ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"], lg.data)
    except Exception as exc:  # noqa: BLE001 - eth_abi raises several types for bad padding
        raise DecodeError(f"OrderFilled(V2): {type(exc).__name__}") from None
    if side not in (0, 1):
        raise DecodeError("OrderFilled(V2): side must be 0 or 1")
    shares, usd = (taking, making) if side == 0 else (making, taking)
    return LeaderFill(
        leader=maker, tx_hash=_require_tx(lg), token_id=str(token), side="BUY" if side == 0 else "SELL",
        shares_micro=shares, usd_micro=usd, price=_price(usd, shares), source=SOURCE_LOG_V2,
        seen_at=time.time() if seen_at is None else seen_at, log_index=lg.log_index, condition_id=condition_id,
        block_number=lg.block_number, timestamp=lg.timestamp, order_hash="0x" + lg.topics[1].hex(),
        exchange=lg.address, counterparty=taker,
    )


def decode_order_filled_v1(log: Any, leaders: Iterable[str] | None = None, *, seen_at: float | None = None,
                           condition_id: str | None = None) -> LeaderFill | None:
    """A V1 `OrderFilled` log -> the fill of the order's maker (makerAssetId == 0: the maker bought)."""
    lg = _Log(log)
    if lg.topics[0] != _topic(ORDER_FILLED_V1):
        return None
    if len(lg.topics) != 4:
        raise DecodeError("OrderFilled(V1): expected 4 topics")
    maker = _addr_from_topic(lg.topics[2], "OrderFilled maker")
    if not _wanted(maker, _leader_set(leaders)):
        return None
    taker = _addr_from_topic(lg.topics[3], "OrderFilled taker")
    if len(lg.data) != 5 * 32:
        raise DecodeError("OrderFilled(V1): data must be 5 words")
    maker_asset, taker_asset, making, taking, _fee = (int.from_bytes(lg.data[i:i + 32], "big")
                                                      for i in range(0, 160, 32))
    if (maker_asset == 0) == (taker_asset == 0):
        raise DecodeError("OrderFilled(V1): exactly one asset id must be 0 (collateral)")
    if maker_asset == 0:
        side, token, shares, usd = "BUY", taker_asset, taking, making
    else:
        side, token, shares, usd = "SELL", maker_asset, making, taking
    return LeaderFill(
        leader=maker, tx_hash=_require_tx(lg), token_id=str(token), side=side, shares_micro=shares,
        usd_micro=usd, price=_price(usd, shares), source=SOURCE_LOG_V1,
        seen_at=time.time() if seen_at is None else seen_at, log_index=lg.log_index, condition_id=condition_id,
        block_number=lg.block_number, timestamp=lg.timestamp, order_hash="0x" + lg.topics[1].hex(),
        exchange=lg.address, counterparty=taker,
    )


def decode_ctf_transfer(log: Any, leaders: Iterable[str] | None = None, *, seen_at: float | None = None,
                        include_mint_burn: bool = False) -> list[LeaderFill]:
    """CTF `TransferSingle` / `TransferBatch` -> fills for the leader(s) it touches (receiving = BUY, sending = SELL).

    A weaker signal than `OrderFilled` (no price, and not every transfer is a trade); its key matches the
    exchange log's when the leader's shares moved in one transfer. Mints and burns (split / merge /
    redeem) are skipped unless `include_mint_burn`.
    """
    lg = _Log(log)
    t0 = lg.topics[0]
    if t0 not in (_topic(TRANSFER_SINGLE), _topic(TRANSFER_BATCH)):
        return []
    if len(lg.topics) != 4:
        raise DecodeError("ERC-1155 transfer: expected 4 topics")
    operator = _addr_from_topic(lg.topics[1], "transfer operator")
    sender = _addr_from_topic(lg.topics[2], "transfer from")
    receiver = _addr_from_topic(lg.topics[3], "transfer to")
    if t0 == _topic(TRANSFER_SINGLE):
        if len(lg.data) != 64:
            raise DecodeError("TransferSingle: data must be 2 words")
        moves = [(int.from_bytes(lg.data[:32], "big"), int.from_bytes(lg.data[32:], "big"))]
    else:
        try:
            ids, values = abi_decode(["uint256[]", "uint256[]"], lg.data)
        except Exception as exc:  # noqa: BLE001
            raise DecodeError(f"TransferBatch: {type(exc).__name__}") from None
        if len(ids) != len(values):
            raise DecodeError("TransferBatch: ids and values differ in length")
        moves = list(zip(ids, values))
    wanted = _leader_set(leaders)
    zero = "0x" + "00" * 20
    parties = []
    if receiver.lower() != zero and (include_mint_burn or sender.lower() != zero) and _wanted(receiver, wanted):
        parties.append((receiver, "BUY", sender))
    if sender.lower() != zero and (include_mint_burn or receiver.lower() != zero) and _wanted(sender, wanted):
        parties.append((sender, "SELL", receiver))
    if not parties:
        return []
    tx = _require_tx(lg)
    now = time.time() if seen_at is None else seen_at
    out = []
    for who, side, other in parties:
        for token, value in moves:
            if value == 0:
                continue
            out.append(LeaderFill(
                leader=who, tx_hash=tx, token_id=str(token), side=side, shares_micro=value, source=SOURCE_CTF_TRANSFER,
                seen_at=now, log_index=lg.log_index, block_number=lg.block_number, timestamp=lg.timestamp,
                exchange=operator, counterparty=other,
            ))
    return out


def decode_log(log: Any, leaders: Iterable[str] | None = None, *, seen_at: float | None = None,
               condition_id: str | None = None) -> list[LeaderFill]:
    """Any log copytrade follows (V2/V1 OrderFilled, CTF transfers) -> leader fills; others -> []."""
    lg_topics = _get(log, "topics")
    if not isinstance(lg_topics, (list, tuple)) or not lg_topics:
        raise DecodeError("log: bad topics")
    t0 = _bytes(lg_topics[0], "log topic")
    if t0 == _topic(ORDER_FILLED_V2):
        f = decode_order_filled_v2(log, leaders, seen_at=seen_at, condition_id=condition_id)
        return [f] if f else []
    if t0 == _topic(ORDER_FILLED_V1):
        f = decode_order_filled_v1(log, leaders, seen_at=seen_at, condition_id=condition_id)
        return [f] if f else []
    if t0 in (_topic(TRANSFER_SINGLE), _topic(TRANSFER_BATCH)):
        return decode_ctf_transfer(log, leaders, seen_at=seen_at)
    return []


# ------------------------------------------------------------------------------ pending transactions
_V2_ORDER = "(uint256,address,address,uint256,uint256,uint256,uint8,uint8,uint256,bytes32,bytes32,bytes)"
_V1_ORDER = "(uint256,address,address,address,uint256,uint256,uint256,uint256,uint256,uint256,uint8,uint8,bytes)"
_FUNCS: dict[str, tuple[str, list[str]]] = {
    "v2_match": ("matchOrders", ["bytes32", _V2_ORDER, f"{_V2_ORDER}[]", "uint256", "uint256[]", "uint256",
                                 "uint256[]"]),
    "v1_match": ("matchOrders", [_V1_ORDER, f"{_V1_ORDER}[]", "uint256", "uint256[]"]),
    "v1_fill": ("fillOrder", [_V1_ORDER, "uint256"]),
    "v1_fills": ("fillOrders", [f"{_V1_ORDER}[]", "uint256[]"]),
    "ctf_single": ("safeTransferFrom", ["address", "address", "uint256", "uint256", "bytes"]),
    "ctf_batch": ("safeBatchTransferFrom", ["address", "address", "uint256[]", "uint256[]", "bytes"]),
}


@lru_cache(maxsize=None)
def _selectors() -> dict[bytes, str]:
    return {keccak(text=f"{name}({','.join(types)})")[:4]: kind for kind, (name, types) in _FUNCS.items()}


@dataclass(frozen=True, slots=True)
class _Ord:
    """The fields of a V1 or V2 order the fill arithmetic needs."""

    maker: str
    signer: str
    token_id: int
    maker_amount: int
    taker_amount: int
    side: int
    signature_type: int
    raw: tuple
    version: int


def _ord_v2(t: tuple) -> _Ord:
    return _Ord(to_checksum_address(t[1]), to_checksum_address(t[2]), t[3], t[4], t[5], t[6], t[7], tuple(t), 2)


def _ord_v1(t: tuple) -> _Ord:
    return _Ord(to_checksum_address(t[1]), to_checksum_address(t[2]), t[4], t[5], t[6], t[10], t[11], tuple(t), 1)


def _taking(making: int, o: _Ord) -> int:
    if o.maker_amount == 0:
        raise DecodeError("order with makerAmount 0")
    return making * o.taker_amount // o.maker_amount


def _shares_usd(side: int, making: int, taking: int) -> tuple[int, int]:
    return (taking, making) if side == 0 else (making, taking)


def _signed_by(o: _Ord, chain_id: int, exchange: str) -> bool:
    """True when an EOA-style order signature (types 0-2) recovers to its signer; type 3 is not checkable here."""
    from copytrade_cli.polymarket.orders import order_v1_digest, order_v2_digest, recover_signer

    if o.signature_type == 3:
        return True
    try:
        digest = order_v2_digest(o.raw, chain_id, exchange) if o.version == 2 else order_v1_digest(o.raw, chain_id,
                                                                                                  exchange)
    except Exception:  # noqa: BLE001
        return False
    who = recover_signer(digest, o.raw[-1])
    return who is not None and who.lower() == o.signer.lower()


def _who(o: _Ord, wanted: frozenset[str] | None) -> str | None:
    if wanted is None or o.maker.lower() in wanted:
        return o.maker
    if o.signer.lower() in wanted:
        return o.signer
    return None


def decode_pending_tx(
    tx: Any,
    leaders: Iterable[str] | None = None,
    *,
    exchanges: Iterable[str] | None = None,
    ctf: str | None = None,
    operators: Iterable[str] | None = None,
    chain_id: int = 137,
    verify_signatures: bool = True,
    seen_at: float | None = None,
) -> list[LeaderFill]:
    """A pending (or mined) transaction -> the fills it will produce for leaders, before it is mined.

    Exchange calls: V2 `matchOrders`, V1 `matchOrders` / `fillOrder` / `fillOrders` sent to one of
    `exchanges` (default: Polymarket's on Polygon). An order counts when a leader is its maker or signer.
    Amounts follow the exchange's arithmetic so the key equals the one the mined `OrderFilled` gives:
    a maker fills `making = makerFillAmounts[i]` and takes `making * takerAmount // makerAmount`; the taker
    takes what the makers put in. CTF calls: `safeTransferFrom` / `safeBatchTransferFrom` to `ctf`
    moving a leader's tokens (SELL) or to a leader (BUY), no price.

    Spoofing guard: anyone can broadcast a doomed matchOrders naming a leader. With
    `verify_signatures` an exchange order only counts when its EIP-712 signature recovers to its signer
    (and, with `operators`, only when the sender is a known exchange operator).
    """
    from copytrade_cli.polymarket.addresses import polymarket_addresses

    if not isinstance(tx, Mapping) and not hasattr(tx, "input"):
        raise DecodeError("tx: expected a mapping")
    to = _get(tx, "to")
    if to is None:
        return []  # contract creation
    to = _checksum(to, "tx to")
    data = _get(tx, "input")
    if data is None:
        data = _get(tx, "data", b"")
    data = _bytes(data, "tx input")
    if len(data) < 4:
        return []
    if len(data) > _MAX_INPUT:
        raise DecodeError("tx input too large")
    kind = _selectors().get(data[:4])
    if kind is None:
        return []
    if exchanges is None:
        exchanges = polymarket_addresses(chain_id).exchanges
    ex_set = {e.lower() for e in exchanges}
    is_ctf_call = kind.startswith("ctf_")
    if is_ctf_call:
        ctf_addr = ctf or polymarket_addresses(chain_id).ctf
        if to.lower() != ctf_addr.lower():
            return []
    elif to.lower() not in ex_set:
        return []
    h = _get(tx, "hash")
    if h is None:
        raise DecodeError("tx: no hash")
    tx_hash = _b32hex(h, "tx hash")
    sender = _get(tx, "from")
    sender = _checksum(sender, "tx from") if sender is not None else None
    if operators is not None and not is_ctf_call:
        if sender is None or sender.lower() not in {o.lower() for o in operators}:
            return []
    try:
        args = abi_decode(_FUNCS[kind][1], data[4:])
    except Exception as exc:  # noqa: BLE001 - eth_abi raises many types on hostile calldata
        raise DecodeError(f"{_FUNCS[kind][0]} calldata: {type(exc).__name__}") from None
    wanted = _leader_set(leaders)
    now = time.time() if seen_at is None else seen_at
    block = _opt_int(_get(tx, "blockNumber"), "tx blockNumber")

    if is_ctf_call:
        sender_a, receiver_a, ids, values = args[0], args[1], args[2], args[3]
        if kind == "ctf_single":
            ids, values = [ids], [values]
        if len(ids) != len(values):
            raise DecodeError("safeBatchTransferFrom: ids and values differ in length")
        out = []
        for who, side, other in ((receiver_a, "BUY", sender_a), (sender_a, "SELL", receiver_a)):
            who = to_checksum_address(who)
            if wanted is None or who.lower() not in wanted or int(who, 16) == 0:
                continue
            for token, value in zip(ids, values):
                if value:
                    out.append(LeaderFill(leader=who, tx_hash=tx_hash, token_id=str(token), side=side,
                                          shares_micro=value, source=SOURCE_MEMPOOL, seen_at=now, block_number=block,
                                          exchange=to, counterparty=to_checksum_address(other)))
        return out

    fills: list[tuple[_Ord, int, int, str]] = []  # order, shares, usd, counterparty
    if kind in ("v2_match", "v1_match"):
        if kind == "v2_match":
            cond = "0x" + bytes(args[0]).hex()
            taker, makers, taker_fill, maker_fills = _ord_v2(args[1]), [_ord_v2(m) for m in args[2]], args[3], args[4]
        else:
            cond = None
            taker, makers, taker_fill, maker_fills = _ord_v1(args[0]), [_ord_v1(m) for m in args[1]], args[2], args[3]
        if len(makers) != len(maker_fills):
            raise DecodeError("matchOrders: makerOrders and makerFillAmounts differ in length")
        taker_taking = 0
        for m, making in zip(makers, maker_fills):
            taking = _taking(making, m)
            if m.side == taker.side:
                # MINT (both buy) / MERGE (both sell) across complementary tokens (real exchange only).
                taker_taking += taking if taker.side == 0 else making - taking
            else:
                taker_taking += making
            s, u = _shares_usd(m.side, making, taking)
            fills.append((m, s, u, taker.maker))
        if taker_taking < 0:
            raise DecodeError("matchOrders: makers take more than the merge yields")
        s, u = _shares_usd(taker.side, taker_fill, taker_taking)
        fills.append((taker, s, u, to))
    else:
        cond = None
        if kind == "v1_fill":
            orders, amounts = [_ord_v1(args[0])], [args[1]]
        else:
            orders, amounts = [_ord_v1(o) for o in args[0]], list(args[1])
            if len(orders) != len(amounts):
                raise DecodeError("fillOrders: orders and fillAmounts differ in length")
        op = sender or to
        for o, making in zip(orders, amounts):
            s, u = _shares_usd(o.side, making, _taking(making, o))
            fills.append((o, s, u, op))

    out = []
    for o, shares, usd, other in fills:
        who = _who(o, wanted)
        if who is None or shares == 0 or o.side not in (0, 1):
            continue
        if verify_signatures and not _signed_by(o, chain_id, to):
            continue
        out.append(LeaderFill(
            leader=who, tx_hash=tx_hash, token_id=str(o.token_id), side="BUY" if o.side == 0 else "SELL",
            shares_micro=shares, usd_micro=usd, price=_price(usd, shares), source=SOURCE_MEMPOOL, seen_at=now,
            condition_id=cond, block_number=block, exchange=to, counterparty=_safe_checksum(other),
        ))
    return out


def _safe_checksum(value: Any) -> str | None:
    try:
        return to_checksum_address(value)
    except Exception:  # noqa: BLE001
        return None


# ------------------------------------------------------------------------ activity websocket / Data API
def _micro(value: Any, what: str) -> int:
    """A share/USDC amount (number or numeric string) -> integer micro-units, rounded half-even."""
    if isinstance(value, bool) or value is None:
        raise DecodeError(f"{what}: missing or not a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DecodeError(f"{what}: not finite")
        d = Decimal(repr(value))
    elif isinstance(value, (int, str, Decimal)):
        if isinstance(value, str) and len(value) > 80:
            raise DecodeError(f"{what}: too long")
        try:
            d = Decimal(value.strip() if isinstance(value, str) else value)
        except (InvalidOperation, ValueError):
            raise DecodeError(f"{what}: not a number") from None
    else:
        raise DecodeError(f"{what}: not a number")
    if not d.is_finite() or d < 0 or d > Decimal(10) ** 60:
        raise DecodeError(f"{what}: out of range")
    try:
        return int((d * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except InvalidOperation:
        raise DecodeError(f"{what}: out of range") from None


def _decimal(value: Any, what: str) -> Decimal:
    micro = _micro(value, what)
    return Decimal(micro) / MICRO


def _token_id(value: Any) -> str:
    if isinstance(value, bool):
        raise DecodeError("asset: not a token id")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and len(value.strip()) <= 78 and _DEC.match(value.strip()):
        n = int(value.strip())
    else:
        raise DecodeError("asset: not a decimal token id")
    if not 0 < n < _UINT256:
        raise DecodeError("asset: out of range")
    return str(n)


def _tx_hash_str(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 66 or value[:2].lower() != "0x" or not _HEX.match(value[2:]):
        raise DecodeError("transactionHash: expected 0x + 64 hex")
    return value.lower()


def _side_str(value: Any) -> str:
    if isinstance(value, str) and value.strip().upper() in ("BUY", "SELL"):
        return value.strip().upper()
    raise DecodeError("side: expected BUY or SELL")


def _timestamp_s(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and math.isfinite(value):
        value = int(value)
    try:
        ts = _int(value, "timestamp")
    except DecodeError:
        return None
    if ts > 10**11:  # milliseconds
        ts //= 1000
    return ts if 0 <= ts < 10**11 else None


def _trade_row_fill(row: Mapping[str, Any], wanted: frozenset[str] | None, source: str,
                    seen_at: float | None) -> LeaderFill | None:
    leader = _checksum(row.get("proxyWallet"), "proxyWallet")
    if not _wanted(leader, wanted):
        return None
    side = _side_str(row.get("side"))
    shares = _micro(row.get("size"), "size")
    if shares == 0:
        raise DecodeError("size: zero")
    price = _decimal(row.get("price"), "price") if row.get("price") is not None else None
    if row.get("usdcSize") is not None:
        usd = _micro(row.get("usdcSize"), "usdcSize")
    elif price is not None:
        usd = int((Decimal(shares) * price).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    else:
        usd = None
    cond = row.get("conditionId")
    if cond is not None:
        cond = _b32hex(cond, "conditionId") if isinstance(cond, str) else None
    return LeaderFill(
        leader=leader, tx_hash=_tx_hash_str(row.get("transactionHash")), token_id=_token_id(row.get("asset")),
        side=side, shares_micro=shares, usd_micro=usd, price=price, source=source,
        seen_at=time.time() if seen_at is None else seen_at, condition_id=cond,
        timestamp=_timestamp_s(row.get("timestamp")),
    )


def decode_activity_message(message: Any, leaders: Iterable[str] | None = None, *,
                            seen_at: float | None = None) -> LeaderFill | None:
    """An RTDS activity websocket frame (str/bytes JSON or dict) -> the trade's fill, filtered by leader.

    Non-trade frames (pong, other topics, keep-alives) -> None. The server cannot filter by address, so
    this is where the leader filter happens.
    """
    if isinstance(message, (bytes, bytearray)):
        if len(message) > _MAX_INPUT:
            raise DecodeError("activity frame too large")
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("activity frame: not UTF-8") from None
    if isinstance(message, str):
        if "payload" not in message:
            return None
        if len(message) > _MAX_INPUT:
            raise DecodeError("activity frame too large")
        try:
            message = json.loads(message)
        except (ValueError, RecursionError):
            raise DecodeError("activity frame: not JSON") from None
    if not isinstance(message, Mapping):
        raise DecodeError("activity frame: expected an object")
    if message.get("topic") not in (None, "activity"):
        return None
    if message.get("type") not in (None, "trades", "orders_matched"):
        return None
    payload = message.get("payload")
    if payload is None:
        return None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            raise DecodeError("activity payload: not JSON") from None
    if not isinstance(payload, Mapping):
        raise DecodeError("activity payload: expected an object")
    return _trade_row_fill(payload, _leader_set(leaders), SOURCE_ACTIVITY_WS, seen_at)


def decode_data_api_row(row: Any, leaders: Iterable[str] | None = None, *,
                        seen_at: float | None = None) -> LeaderFill | None:
    """A Data API `/activity` row (type TRADE) or `/trades` row -> the trade's fill; other types -> None."""
    if not isinstance(row, Mapping):
        raise DecodeError("Data API row: expected an object")
    kind = row.get("type")
    if kind is not None and str(kind).upper() != "TRADE":
        return None
    return _trade_row_fill(row, _leader_set(leaders), SOURCE_DATA_API, seen_at)
