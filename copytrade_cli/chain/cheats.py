"""A tiny cheatcode layer over a local dev node: anvil_* or hardhat_* picked by `web3_clientVersion`.

Only what the offline fork needs: set code / balance / storage, impersonation, mining and automine.
Works on a raw `Web3` (no ape), so the hot paths stay fast.
"""
from __future__ import annotations

import threading
from typing import Any

from copytrade_cli.errors import ChainError

_mining_locks: dict[str, threading.RLock] = {}
_mining_locks_guard = threading.Lock()


def _hex(data: bytes | str) -> str:
    """0x-prefixed hex for bytes or (maybe unprefixed) hex strings; hardhat rejects unprefixed code."""
    if isinstance(data, (bytes, bytearray)):
        return "0x" + bytes(data).hex()
    return data if data.startswith(("0x", "0X")) else "0x" + data


def _qty(value: int) -> str:
    return hex(int(value))


def _slot(value: int | bytes | str) -> str:
    """A 32-byte, 0x-prefixed storage slot/value (hardhat insists on exactly 32 bytes)."""
    if isinstance(value, int):
        return "0x" + value.to_bytes(32, "big").hex()
    raw = bytes(value) if isinstance(value, (bytes, bytearray)) else bytes.fromhex(_hex(value)[2:].zfill(64))
    return "0x" + raw.rjust(32, b"\0").hex()


class Cheats:
    """Cheatcodes for one node; `Cheats(w3).kind` is "anvil" or "hardhat"."""

    def __init__(self, w3: Any):
        self.w3 = w3
        version = str(self._call("web3_clientVersion", []))
        self.client_version = version
        low = version.lower()
        if "anvil" in low:
            self.kind = "anvil"
        elif "hardhat" in low:
            self.kind = "hardhat"
        else:
            raise ChainError(
                f"node '{version}' is neither anvil nor hardhat: cheatcodes (setCode, impersonation) need a local dev node"
            )
        self._prefix = "anvil_" if self.kind == "anvil" else "hardhat_"

    # -- plumbing -------------------------------------------------------------------------------
    def _call(self, method: str, params: list) -> Any:
        resp = self.w3.provider.make_request(method, params)
        if "error" in resp and resp["error"]:
            err = resp["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise ChainError(f"{method} failed: {msg}")
        return resp.get("result")

    @property
    def mining_lock(self) -> threading.RLock:
        """A per-node lock held while automine is toggled, so two in-process callers do not interleave."""
        key = getattr(self.w3.provider, "endpoint_uri", None) or str(id(self.w3.provider))
        with _mining_locks_guard:
            return _mining_locks.setdefault(str(key), threading.RLock())

    # -- state ----------------------------------------------------------------------------------
    def set_code(self, address: str, code: bytes | str) -> None:
        """Put runtime `code` at `address` (storage untouched)."""
        self._call(self._prefix + "setCode", [address, _hex(code)])

    def set_balance(self, address: str, wei: int) -> None:
        """Set the native (POL) balance of `address`."""
        self._call(self._prefix + "setBalance", [address, _qty(wei)])

    def set_storage_at(self, address: str, slot: int | bytes | str, value: int | bytes | str) -> None:
        """Write one 32-byte storage slot."""
        self._call(self._prefix + "setStorageAt", [address, _slot(slot), _slot(value)])

    def set_nonce(self, address: str, nonce: int) -> None:
        """Set an account's nonce."""
        self._call(self._prefix + "setNonce", [address, _qty(nonce)])

    def impersonate(self, address: str) -> None:
        """Let `eth_sendTransaction` from `address` through without its key."""
        self._call(self._prefix + "impersonateAccount", [address])

    def stop_impersonating(self, address: str) -> None:
        """Undo `impersonate`."""
        self._call(self._prefix + "stopImpersonatingAccount", [address])

    # -- mining ---------------------------------------------------------------------------------
    def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` blocks now (includes pending transactions)."""
        if blocks == 1:
            self._call("evm_mine", [])
        else:
            self._call(self._prefix + "mine", [_qty(blocks)])

    def automine(self, enabled: bool | None = None) -> bool:
        """Read automine (no argument) or set it; returns the state in force afterwards."""
        if enabled is not None:
            self._call("evm_setAutomine", [bool(enabled)])
            return bool(enabled)
        return bool(self._call(self._prefix + "getAutomine", []))

    def interval_mining(self) -> int | None:
        """The block interval in seconds when the node mines on a timer (anvil only; None otherwise)."""
        if self.kind != "anvil":
            return None
        try:
            return self._call("anvil_getIntervalMining", [])
        except ChainError:
            return None

    def pending_count(self) -> int:
        """How many transactions wait in the pool."""
        try:
            if self.kind == "anvil":
                status = self._call("txpool_status", [])
                return int(status.get("pending", "0x0"), 16) + int(status.get("queued", "0x0"), 16)
        except ChainError:
            pass
        block = self._call("eth_getBlockByNumber", ["pending", False]) or {}
        return len(block.get("transactions") or [])

    def snapshot(self) -> str:
        """Take an EVM snapshot; pass the id to `revert`."""
        return self._call("evm_snapshot", [])

    def revert(self, snapshot_id: str) -> bool:
        """Revert to a snapshot (consumes it)."""
        return bool(self._call("evm_revert", [snapshot_id]))
