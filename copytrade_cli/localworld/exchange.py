"""Settle matched V2 orders on the planted exchange: signed order dicts -> one `matchOrders` transaction.

Used by the local CLOB server (which may settle from several threads at once) and by the leader-trade
triggers. Each `ExchangeClient` owns one operator nonce lane (`chain.lanes.TxLane`): transactions are
signed locally and sent back-to-back with locally tracked nonces; waiting for receipts is separate.
"""
from __future__ import annotations

import time
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Mapping, Sequence

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak

from copytrade_cli.chain.lanes import TxLane

from copytrade_cli.chain.rpc import wait_receipt
from copytrade_cli.errors import ChainError
from copytrade_cli.localworld.world import World
from copytrade_cli.polymarket.orders import ORDER_V2_ABI, order_v2_hash, order_v2_tuple

MATCH_ORDERS_V2_SIG = (
    f"matchOrders(bytes32,{ORDER_V2_ABI},{ORDER_V2_ABI}[],uint256,uint256[],uint256,uint256[])"
)
MATCH_ORDERS_V2_SELECTOR = keccak(text=MATCH_ORDERS_V2_SIG)[:4]
MATCH_ORDERS_V2_TYPES = ["bytes32", ORDER_V2_ABI, f"{ORDER_V2_ABI}[]", "uint256", "uint256[]", "uint256",
                         "uint256[]"]
MAX_MAKERS = 16  # MockExchangeV2's DynArray bound


class SettlementError(ChainError):
    """A matchOrders transaction reverted or could not be sent."""


def _b32(value: str | bytes) -> bytes:
    raw = bytes(value) if isinstance(value, (bytes, bytearray)) else bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value)
    if len(raw) != 32:
        raise ValueError(f"condition id must be 32 bytes, got {len(raw)}")
    return raw


def match_orders_calldata(condition_id: str | bytes, taker: Mapping[str, Any], makers: Sequence[Mapping[str, Any]],
                          taker_fill: int, maker_fills: Sequence[int], taker_fee: int = 0,
                          maker_fees: Sequence[int] | None = None) -> bytes:
    """ABI-encoded V2 `matchOrders(...)` calldata from wire-JSON orders (CLOB-WIRE §5.6)."""
    if len(makers) != len(maker_fills):
        raise ValueError("one fill amount per maker order")
    fees = list(maker_fees) if maker_fees is not None else [0] * len(makers)
    if len(fees) != len(makers):
        raise ValueError("one fee amount per maker order")
    args = [_b32(condition_id), order_v2_tuple(taker), [order_v2_tuple(m) for m in makers], int(taker_fill),
            [int(x) for x in maker_fills], int(taker_fee), [int(x) for x in fees]]
    return MATCH_ORDERS_V2_SELECTOR + abi_encode(MATCH_ORDERS_V2_TYPES, args)


def match_gas(n_makers: int) -> int:
    """A gas limit that covers matchOrders with `n_makers` maker orders on the mock (measured + margin): with
    on-chain signatures and the real CTF, type-0 orders use ~137k + ~48k per maker (196k for 1, 906k for 16);
    a type-3 order adds its wallet's ERC-1271 check."""
    return 220_000 + 130_000 * max(1, n_makers)


def taker_fee(shares_micro: int, price: float | str | Decimal, rate: float | str | Decimal, exponent: int = 1) -> int:
    """Live's taker fee in micro collateral: `C x rate x (p(1-p))^exponent` (LIVE-2026 §8), floored to a micro unit."""
    p, r = Decimal(str(price)), Decimal(str(rate))
    if not (0 < p < 1) or r < 0 or shares_micro < 0:
        raise ValueError(f"fee needs 0 < price < 1, rate >= 0, shares >= 0 (got {price}, {rate}, {shares_micro})")
    fee = Decimal(int(shares_micro)) * r * (p * (1 - p)) ** int(exponent)
    return int(fee.to_integral_value(rounding=ROUND_FLOOR))


def exchange_for(world: World, market: Any) -> str:
    """The exchange a market's orders are signed for and settled on (LIVE-2026 §5.1)."""
    if getattr(market, "neg_risk", False):
        if not world.neg_risk_exchange:
            raise ValueError(f"market {market.slug} is neg-risk but this world has no neg-risk exchange; re-plant")
        return world.neg_risk_exchange
    return world.exchange


class ExchangeClient:
    """Builds and sends `matchOrders` on the planted V2 exchange for one operator key (thread-safe)."""

    def __init__(self, w3: Any, world: World, operator_key: str, *, lane: TxLane | None = None,
                 exchange: str | None = None):
        self.w3 = w3
        self.world = world
        self.account = Account.from_key(operator_key)
        self.address = self.account.address
        self.exchange = exchange or world.exchange
        self.chain_id = world.chain_id
        self.lane = lane or TxLane(w3, self.account, chain_id=world.chain_id)

    @classmethod
    def for_market(cls, w3: Any, world: World, operator_key: str, market: Any, *, lane: TxLane | None = None
                   ) -> "ExchangeClient":
        """The client for the exchange `market` settles on (the neg-risk exchange for a neg-risk market)."""
        return cls(w3, world, operator_key, lane=lane, exchange=exchange_for(world, market))

    def resync(self) -> int:
        """Re-read the operator's next nonce from the node (after a revert, restart or foreign send)."""
        return self.lane.resync()

    def order_hash(self, order: Mapping[str, Any]) -> str:
        """The order's EIP-712 V2 digest (0x-hex) for this exchange: the CLOB order id."""
        return order_v2_hash(order, self.chain_id, self.exchange)

    def build_tx(self, condition_id: str, taker: Mapping[str, Any], makers: Sequence[Mapping[str, Any]],
                 taker_fill: int, maker_fills: Sequence[int], *, taker_fee: int = 0,
                 maker_fees: Sequence[int] | None = None) -> dict[str, Any]:
        """The unsigned `matchOrders` transaction (to, data, gas)."""
        if not makers:
            raise ValueError("matchOrders needs at least one maker order")
        if len(makers) > MAX_MAKERS:
            raise ValueError(f"at most {MAX_MAKERS} maker orders per matchOrders on the local exchange")
        data = match_orders_calldata(condition_id, taker, makers, taker_fill, maker_fills, taker_fee, maker_fees)
        return {"to": self.exchange, "data": "0x" + data.hex(), "gas": match_gas(len(makers))}

    def simulate(self, tx: Mapping[str, Any]) -> None:
        """eth_call the transaction; raise SettlementError with the revert reason if it would fail."""
        try:
            self.w3.eth.call({"from": self.address, "to": tx["to"], "data": tx["data"], "gas": tx["gas"]})
        except Exception as exc:  # noqa: BLE001 - web3 raises ContractLogicError and friends
            raise SettlementError(f"matchOrders would revert: {_reason(exc)}") from None

    def send(self, tx: Mapping[str, Any]) -> str:
        """Sign with the operator key and send on the pipelined lane; return the tx hash (not waited)."""
        body = {"to": tx["to"], "data": tx["data"]}
        return self.lane.send(body, gas=int(tx["gas"]))

    def settle(self, condition_id: str, taker: Mapping[str, Any], makers: Sequence[Mapping[str, Any]],
               taker_fill: int, maker_fills: Sequence[int], wait: bool = True, *, taker_fee: int = 0,
               maker_fees: Sequence[int] | None = None, simulate: bool = False, timeout: float = 60) -> str:
        """Send one `matchOrders(conditionId, taker, makers, ...)`; with `wait`, return once it is mined OK.

        Orders are wire-JSON dicts as py_clob_client_v2 posts them. Raises SettlementError on revert
        (with the revert reason when the node gives one).
        """
        tx = self.build_tx(condition_id, taker, makers, taker_fill, maker_fills, taker_fee=taker_fee,
                           maker_fees=maker_fees)
        if simulate:
            self.simulate(tx)
        tx_hash = self.send(tx)
        if wait:
            self.wait(tx_hash, timeout=timeout)
        return tx_hash

    def wait(self, tx_hash: str, timeout: float = 60) -> Mapping[str, Any]:
        """Wait for a settlement receipt; raise SettlementError (with the reason) if it reverted."""
        receipt = wait_receipt(self.w3, tx_hash, timeout=timeout, check=False)
        if receipt["status"] != 1:
            raise SettlementError(f"matchOrders {tx_hash} reverted: {self._replay_reason(tx_hash, receipt)}")
        return receipt

    def _replay_reason(self, tx_hash: str, receipt: Mapping[str, Any]) -> str:
        """Best effort: re-run the call on the parent block (or on latest when the node prunes history)."""
        try:
            tx = self.w3.eth.get_transaction(tx_hash)
        except Exception as exc:  # noqa: BLE001
            return f"unknown reason ({_reason(exc)})"
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]}
        for block in (max(0, int(receipt["blockNumber"]) - 1), "latest"):
            try:
                self.w3.eth.call(call, block_identifier=block)
            except Exception as exc:  # noqa: BLE001
                reason = _reason(exc)
                if block != "latest" and ("BlockOutOfRange" in reason or "pruned" in reason.lower()
                                          or "missing trie node" in reason or "header not found" in reason):
                    continue
                return reason
        return "unknown reason (the call succeeds when replayed)"


def _reason(exc: Exception) -> str:
    """A short revert reason from a web3 exception."""
    msg = getattr(exc, "message", None) or str(exc)
    for marker in ("execution reverted: ", "reverted: "):
        if marker in msg:
            return msg.split(marker, 1)[1].strip("'\" )")[:200]
    return msg[:200]


def wait_all(w3: Any, tx_hashes: Sequence[str], timeout: float = 60) -> list[Mapping[str, Any]]:
    """Wait for several receipts (any order); raise ChainError if any reverted."""
    deadline = time.time() + timeout
    return [wait_receipt(w3, h, timeout=max(0.1, deadline - time.time())) for h in tx_hashes]
