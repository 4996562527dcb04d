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

Where: `model` (LeaderFill, the key, DecodeError), `parse` (input checks, event signatures, the normalized
log), one module per kind of input: `logs` (mined logs), `pending` (pending transactions), `feeds` (activity
websocket, Data API). Import from this package: `from copytrade_cli.polymarket.fills import LeaderFill`.
"""
from __future__ import annotations

from .model import (DecodeError, LeaderFill, MICRO, SOURCE_ACTIVITY_WS, SOURCE_CTF_TRANSFER, SOURCE_DATA_API,
                    SOURCE_LOG_V1, SOURCE_LOG_V2, SOURCE_MEMPOOL, fill_key)
from .parse import (ORDER_FILLED_V1, ORDER_FILLED_V1_TOPIC, ORDER_FILLED_V2, ORDER_FILLED_V2_TOPIC, TRANSFER_BATCH,
                    TRANSFER_BATCH_TOPIC, TRANSFER_SINGLE, TRANSFER_SINGLE_TOPIC)
from .logs import decode_ctf_transfer, decode_log, decode_order_filled_v1, decode_order_filled_v2
from .pending import _selectors, decode_pending_tx  # noqa: F401 - _selectors: the fault tests check the table
from .feeds import decode_activity_message, decode_data_api_row

__all__ = ["DecodeError", "LeaderFill", "MICRO", "ORDER_FILLED_V1", "ORDER_FILLED_V1_TOPIC", "ORDER_FILLED_V2",
           "ORDER_FILLED_V2_TOPIC", "SOURCE_ACTIVITY_WS", "SOURCE_CTF_TRANSFER", "SOURCE_DATA_API",
           "SOURCE_LOG_V1", "SOURCE_LOG_V2", "SOURCE_MEMPOOL", "TRANSFER_BATCH", "TRANSFER_BATCH_TOPIC",
           "TRANSFER_SINGLE", "TRANSFER_SINGLE_TOPIC", "decode_activity_message", "decode_ctf_transfer",
           "decode_data_api_row", "decode_log", "decode_order_filled_v1", "decode_order_filled_v2",
           "decode_pending_tx", "fill_key"]
