"""Old import path of chain I/O, kept while other areas move over: every name here is an alias.

New homes: `chain.rpc` (connect, connect_checked, chain_io, JsonRpc, HttpTransport, RpcError, ReceiptWatcher,
wait_receipt) and `chain.lanes` (TxLane, FeeOracle, GWEI).
"""
from __future__ import annotations

from ..errors import ChainError  # noqa: F401 — imported from here by older code
from .lanes import GWEI, FeeOracle, TxLane, _revert_reason  # noqa: F401
from .rpc import RpcError, chain_io, connect, connect_checked, wait_receipt  # noqa: F401
from .rpc.client import JsonRpc
from .rpc.http import HttpTransport as JsonHttp  # noqa: F401
from .rpc.receipts import ReceiptWatcher, essentials as _receipt  # noqa: F401


class RawRpc(JsonRpc):
    """Alias: a `JsonRpc` that follows a web3 connection's endpoints (use `chain_io(w3).rpc`)."""

    def __init__(self, w3, timeout: float = 30.0):
        io = chain_io(w3)
        super().__init__(io.endpoints if io is not None else str(w3.provider.endpoint_uri), timeout=timeout)
        self.w3 = w3


def raw_rpc(w3) -> JsonRpc | None:
    """Alias of `chain_io(w3).rpc`: the plain JSON-RPC client of a web3 connection over HTTP (None otherwise)."""
    io = chain_io(w3)
    return io.rpc if io is not None else None


def receipt_watcher(w3) -> ReceiptWatcher | None:
    """Alias of `chain_io(w3).receipts`: the receipt watcher of a web3 connection over HTTP (None otherwise)."""
    io = chain_io(w3)
    return io.receipts if io is not None else None
