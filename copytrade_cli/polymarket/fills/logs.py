"""Mined logs -> fills: the exchange's V2 and V1 `OrderFilled` and the CTF's ERC-1155 transfers."""
from __future__ import annotations

import time
from typing import Any, Iterable

from eth_abi import decode as abi_decode

from .model import DecodeError, LeaderFill, SOURCE_CTF_TRANSFER, SOURCE_LOG_V1, SOURCE_LOG_V2
from .parse import (ORDER_FILLED_V1, ORDER_FILLED_V2, TRANSFER_BATCH, TRANSFER_SINGLE, _Log, _addr_from_topic, _bytes,
                    _get, _leader_set, _price, _require_tx, _topic, _wanted)


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
