"""Pending transactions -> fills: exchange `matchOrders`/`fillOrder(s)` calldata and CTF transfers, with the
order signatures checked before a fill is believed."""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from ..addresses import polymarket_addresses
from ..orders import order_v1_digest, order_v2_digest, recover_signer
from .model import DecodeError, LeaderFill, SOURCE_MEMPOOL
from .parse import _MAX_INPUT, _b32hex, _bytes, _checksum, _get, _leader_set, _opt_int, _price


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


# Longest array a real call carries (the exchanges take at most a few dozen maker orders per match; a CTF
# batch transfer of a market's outcomes is small). Checked before decoding: a hostile length word with element
# offsets pointing back at the same bytes would make the ABI decoder build millions of elements.
_MAX_ARRAY = 256


def _check_array_lengths(func: tuple[str, list[str]], body: bytes) -> None:
    """Refuse calldata whose top-level dynamic arrays claim more than _MAX_ARRAY elements (or point outside)."""
    name, types = func
    for i, t in enumerate(types):
        if not t.endswith("[]"):
            continue
        head = body[32 * i:32 * i + 32]
        if len(head) < 32:
            raise DecodeError(f"{name} calldata: truncated head")
        offset = int.from_bytes(head, "big")
        if offset > len(body) - 32:
            raise DecodeError(f"{name} calldata: array offset outside the input")
        length = int.from_bytes(body[offset:offset + 32], "big")
        if length > _MAX_ARRAY:
            raise DecodeError(f"{name} calldata: an array of {min(length, 10**9)} elements (at most {_MAX_ARRAY})")


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


# ERC-1271 check for a type 3 (POLY_1271, deposit wallet) order: (wallet, order hash, signature) -> valid.
# Pure decoding cannot answer it (it asks the wallet contract); the caller passes one that does an eth_call.
Erc1271Check = Callable[[str, bytes, bytes], bool]
ERC1271_MAGIC = bytes.fromhex("1626ba7e")


def _signed_by(o: _Ord, chain_id: int, exchange: str, erc1271: Erc1271Check | None = None) -> bool:
    """True when the order's signature is valid as the exchange checks it: types 0-2 (V1 and V2) recover with
    ECDSA to the signer (type 0 also needs signer == maker); type 3 (V2 only) needs signer == maker and the
    wallet's `isValidSignature(orderHash, sig) == 0x1626ba7e`, asked through `erc1271`. Anything that cannot be
    verified (no `erc1271`, an unknown type, a digest that does not build) is refused."""
    try:
        digest = order_v2_digest(o.raw, chain_id, exchange) if o.version == 2 else order_v1_digest(o.raw, chain_id,
                                                                                                  exchange)
    except Exception:  # noqa: BLE001
        return False
    if o.signature_type == 3:
        if o.version != 2 or erc1271 is None or o.signer.lower() != o.maker.lower():
            return False
        try:
            return bool(erc1271(o.maker, digest, bytes(o.raw[-1])))
        except Exception:  # noqa: BLE001 — a wallet that cannot answer has not signed
            return False
    if o.signature_type not in (0, 1, 2):
        return False
    if o.signature_type == 0 and o.signer.lower() != o.maker.lower():
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
    erc1271: Erc1271Check | None = None,
    refused: list[LeaderFill] | None = None,
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
    `verify_signatures` an exchange order only counts when its signature verifies (see `_signed_by`; type 3
    needs `erc1271`, else it is refused) and, with `operators`, only when the sender is a known exchange
    operator. The supervisor's mempool channel passes both (operators read from the chain). Fills refused for
    their signature are appended to `refused` when given (for counting; never to act on).
    """
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
    _check_array_lengths(_FUNCS[kind], data[4:])
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
        fill = LeaderFill(
            leader=who, tx_hash=tx_hash, token_id=str(o.token_id), side="BUY" if o.side == 0 else "SELL",
            shares_micro=shares, usd_micro=usd, price=_price(usd, shares), source=SOURCE_MEMPOOL, seen_at=now,
            condition_id=cond, block_number=block, exchange=to, counterparty=_safe_checksum(other),
        )
        if verify_signatures and not _signed_by(o, chain_id, to, erc1271):
            if refused is not None:
                refused.append(fill)
            continue
        out.append(fill)
    return out


def _safe_checksum(value: Any) -> str | None:
    try:
        return to_checksum_address(value)
    except Exception:  # noqa: BLE001
        return None
