"""Transaction lanes: one per sending account, signing locally and pipelining nonces (send many, wait
later), recovering from nonce gaps, and replacing stuck transactions with a higher fee; EIP-1559 fees."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..errors import ChainError, OutOfGasError
from .rpc import chain_io, wait_receipt

GWEI = 10**9
MIN_TIP_GWEI = 25.0
"""Polygon's pool floor (LIVE-2026 §16) and the default of COPY_TRADING_MIN_PRIORITY_FEE_GWEI."""
log = logging.getLogger("copytrade.tx")


class FeeOracle:
    """EIP-1559 fees, cached briefly so a burst of sends costs one RPC call. The tip is never below the floor
    (`min_priority_gwei`, COPY_TRADING_MIN_PRIORITY_FEE_GWEI): a lower configured or bumped tip is clamped up
    and `maxFeePerGas` is rebuilt from the clamped tip."""

    def __init__(self, w3, priority_gwei: float | None = None, ttl: float = 2.0,
                 min_priority_gwei: float = MIN_TIP_GWEI):
        self.w3 = w3
        self.min_priority = int(float(min_priority_gwei) * GWEI)
        self.priority = max(int(float(priority_gwei if priority_gwei is not None else min_priority_gwei) * GWEI),
                            self.min_priority)
        self.ttl = ttl
        self._at = 0.0
        self._base = 0
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, w3, settings, **kwargs) -> "FeeOracle":
        """The oracle with the operator's floor (COPY_TRADING_MIN_PRIORITY_FEE_GWEI)."""
        return cls(w3, min_priority_gwei=float(settings.copy_trading_min_priority_fee_gwei), **kwargs)

    def base_fee(self) -> int:
        """The pending block's base fee (cached for `ttl` seconds)."""
        with self._lock:
            if time.time() - self._at > self.ttl:
                block = self.w3.eth.get_block("pending")
                self._base = int(block.get("baseFeePerGas") or self.w3.eth.gas_price)
                self._at = time.time()
            return self._base

    def fees(self, bump: float = 1.0) -> dict[str, int]:
        """maxFeePerGas / maxPriorityFeePerGas, multiplied by `bump` for replacements."""
        base = self.base_fee()
        prio = max(int(self.priority * bump), self.min_priority)
        return {"maxFeePerGas": max(int((2 * base + self.priority) * bump), 2 * base + prio),
                "maxPriorityFeePerGas": prio}


def floor_fees(w3, min_priority_gwei: float = MIN_TIP_GWEI) -> dict[str, int]:
    """EIP-1559 fee fields for a one-off send that does not go through a TxLane (e.g. an impersonated
    eth_sendTransaction on the fork): the tip at the floor, maxFeePerGas = 2 x base + tip."""
    return FeeOracle(w3, min_priority_gwei=min_priority_gwei, ttl=0).fees()


class TxLane:
    """Sends transactions for one account with locally tracked, pipelined nonces."""

    def __init__(self, w3, account, chain_id: int | None = None, fees: FeeOracle | None = None):
        self.w3 = w3
        self.account = account
        self.address = account.address
        self.chain_id = chain_id or w3.eth.chain_id
        self.fees = fees or FeeOracle(w3)
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self.sent: dict[int, dict[str, Any]] = {}  # nonce -> tx (for speed-ups)
        self.nonce_of: dict[str, int] = {}  # tx hash -> nonce

    def resync(self) -> int:
        """Re-read the next nonce from the node (after a gap or a restart)."""
        with self._lock:
            self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
            return self._nonce

    def send(self, tx: dict[str, Any], *, gas: int | None = None, retries: int = 2,
             before_send: Callable[[str], None] | None = None) -> str:
        """Sign and send without waiting; returns the tx hash. Nonce errors resync once and retry.
        `before_send(hash)` runs after signing and before broadcasting (write-ahead journalling)."""
        for attempt in range(retries + 1):
            with self._lock:
                if self._nonce is None:
                    self._nonce = self.w3.eth.get_transaction_count(self.address, "pending")
                nonce = self._nonce
                full = {"chainId": self.chain_id, "nonce": nonce, "from": self.address, "value": 0, **tx}
                full.update(self.fees.fees())
                if gas is not None:
                    full["gas"] = gas
                elif "gas" not in full:
                    full["gas"] = self._estimate(full)
                full.pop("from", None)
                signed = self.account.sign_transaction(full)
                if before_send is not None:
                    before_send("0x" + bytes(signed.hash).hex())
                try:
                    io = chain_io(self.w3)
                    if io is not None:
                        h = bytes.fromhex(io.rpc.call("eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()])[2:])
                    else:
                        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:  # noqa: BLE001 — classify the node's answer
                    msg = str(exc).lower()
                    if "nonce" in msg and attempt < retries:
                        self._nonce = None
                        continue
                    if "insufficient funds" in msg:
                        raise OutOfGasError(f"{self.address} lacks gas to send a transaction; fund it "
                                         "(on the fork `copytrade fork up` funds the fleet)") from None
                    raise ChainError(f"transaction from {self.address} rejected: {str(exc)[:200]}") from None
                self._nonce = nonce + 1
                self.sent[nonce] = full
                if len(self.sent) > 256:
                    self.sent.pop(min(self.sent))
                hx = "0x" + bytes(h).hex()
                self.nonce_of[hx] = nonce
                if len(self.nonce_of) > 512:
                    self.nonce_of.pop(next(iter(self.nonce_of)))
                return hx
        raise ChainError(f"could not send from {self.address}: nonce kept moving")

    def _estimate(self, tx: dict[str, Any]) -> int:
        try:
            est = self.w3.eth.estimate_gas({k: v for k, v in tx.items() if k not in ("nonce", "maxFeePerGas",
                                                                                    "maxPriorityFeePerGas")})
        except Exception as exc:  # noqa: BLE001
            raise ChainError(f"transaction would revert: {_revert_reason(exc)}") from None
        return int(est * 1.25) + 10_000

    def transact(self, tx: dict[str, Any], *, gas: int | None = None, timeout: float = 60) -> dict[str, Any]:
        """Send and wait for a successful receipt."""
        return wait_receipt(self.w3, self.send(tx, gas=gas), timeout=timeout)

    def speed_up(self, nonce: int, bump: float = 1.3) -> str:
        """Replace a stuck transaction (same nonce) with a higher fee."""
        with self._lock:
            old = dict(self.sent[nonce])
            fees = self.fees.fees(bump)
            old["maxFeePerGas"] = max(fees["maxFeePerGas"], int(old["maxFeePerGas"] * bump) + 1)
            old["maxPriorityFeePerGas"] = max(fees["maxPriorityFeePerGas"], int(old["maxPriorityFeePerGas"] * bump) + 1)
            signed = self.account.sign_transaction(old)
            h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            self.sent[nonce] = old
            hx = "0x" + bytes(h).hex()
            self.nonce_of[hx] = nonce
            return hx

    def plug_gaps(self, below: int) -> list[int]:
        """Nonce gap recovery: if the node holds no transaction of ours for some nonce below `below` (one was
        dropped or never reached it), our later ones can never be mined; fill each missing nonce with a
        zero-value self-transfer. Returns the nonces plugged."""
        try:
            ready = self.w3.eth.get_transaction_count(self.address, "pending")
        except Exception:  # noqa: BLE001 — node unreachable: try again at the next check
            return []
        missing = list(range(ready, below))
        if not missing:
            return []
        with self._lock:
            fees = self.fees.fees(1.2)
            for n in missing:
                tx = {"chainId": self.chain_id, "nonce": n, "to": self.address, "value": 0, "gas": 21_000, **fees}
                signed = self.account.sign_transaction(tx)
                try:
                    self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:  # noqa: BLE001 — e.g. it arrived meanwhile: fine either way
                    log.info("plugging nonce %d of %s: %s", n, self.address, str(exc)[:120])
        log.warning("nonce gap of %s at %s filled with zero-value self-transfers", self.address, missing)
        return missing

    def wait(self, tx_hash: str, *, stuck_after: float = 30.0, timeout: float = 180.0,
             on_replace=None) -> dict[str, Any]:
        """Wait for a receipt; a transaction still pending after `stuck_after` seconds is replaced by the
        same nonce with a higher fee (`on_replace(new_hash)` lets the caller journal it). Whichever of the
        hashes is mined wins; a revert raises ChainError."""
        hashes = [tx_hash]
        deadline = time.time() + timeout
        bump_at = time.time() + stuck_after
        io = chain_io(self.w3)
        watcher = io.receipts if io is not None else None
        while True:
            if watcher is not None:
                got = watcher.wait_any(hashes, max(0.0, min(bump_at, deadline) - time.time()))
                if got is not None:
                    h, r = got
                    if r["status"] != 1:
                        raise ChainError(f"transaction {h} reverted (gas used {r['gasUsed']})")
                    return r
            else:
                for h in list(hashes):
                    try:
                        r = self.w3.eth.get_transaction_receipt(h)
                    except Exception:  # noqa: BLE001 — not mined yet
                        r = None
                    if r is not None:
                        if r["status"] != 1:
                            raise ChainError(f"transaction {h} reverted (gas used {r['gasUsed']})")
                        return r
            now = time.time()
            if now > deadline:
                raise ChainError(f"transaction {tx_hash} not mined within {timeout:.0f}s (also after speed-ups)")
            nonce = self.nonce_of.get(hashes[-1])
            if now >= bump_at and nonce is not None and self.plug_gaps(nonce):
                bump_at = now + stuck_after  # a lower nonce was missing: it is filled now, ours can be mined
                continue
            if now >= bump_at and nonce is not None and nonce in self.sent:
                try:
                    new = self.speed_up(nonce)
                    hashes.append(new)
                    if on_replace:
                        on_replace(new)
                except Exception:  # noqa: BLE001 — e.g. already mined meanwhile: keep waiting
                    pass
                bump_at = now + stuck_after
            if watcher is None:
                time.sleep(0.02)


def _revert_reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("execution reverted: ", "reverted: "):
        if marker in text:
            return text.split(marker, 1)[1].split("'")[0].split('"')[0][:160]
    return text[:160]
