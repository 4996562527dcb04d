"""Chain I/O: one transport interface (`base`), one implementation per file (`http` for threads,
`aiohttp_transport` for the local CLOB's event loop), one failover policy (`policy.Endpoints`), one JSON-RPC
client (`client`: call, batch; sync and asyncio), web3's provider on the same policy (`web3_provider`), one
receipt watcher (`receipts`) and the connection that binds them (`connection.ChainIO`, found with `chain_io(w3)`).

Importing this package imports neither web3 nor aiohttp (the CLI's start-up stays cheap); they load on use.
"""
from .base import AsyncTransport, BatchRefused, RpcError, Transport, TransportError, redact, scrub
from .client import AsyncJsonRpc, JsonRpc
from .connection import ChainIO, chain_io, connect, connect_checked
from .http import HttpTransport
from .policy import Endpoints
from .receipts import ReceiptWatcher, essentials, wait_receipt

__all__ = ["AsyncJsonRpc", "AsyncTransport", "BatchRefused", "ChainIO", "Endpoints", "HttpTransport", "JsonRpc",
           "ReceiptWatcher", "RpcError", "Transport", "TransportError", "chain_io", "connect", "connect_checked",
           "essentials", "redact", "scrub", "wait_receipt"]
