"""Who may make an order on the local CLOB, as live decides it since the deposit-wallet flow (LIVE-2026 §6.5):
API key ↔ signer EOA ↔ deposit wallet.

- Type 3 (POLY_1271): maker = signer = W, and W is the deposit wallet derived from the key's EOA (`POLY_ADDRESS`),
  or a wallet that authorised the key's EOA as a live session signer (read on chain: `sessionSigners(eoa)` ≥ the
  block time). W must have code, and the 317-byte TypedDataSign wrapper must recover to the key's EOA for this
  order hash on the market's exchange (`wallets.recover_1271_signer`, the same check the wallet makes on chain).
- Types 0/1/2: refused with live's `maker address not allowed, please use the deposit wallet flow`, unless the maker
  is grandfathered (`ClobOptions.grandfathered`, `clob serve --grandfathered`; off by default). The CLOB's own
  market maker rests its quotes without this check (it is the CLOB's, not an API user).

Also the reverse map the balance routes need: (POLY_ADDRESS EOA, signature_type) → the wallet that funds orders.
"""
from __future__ import annotations

import time

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from ..polymarket.wallets import DEPOSIT_WALLET_BEACON, DEPOSIT_WALLET_FACTORY, deposit_wallet_address, \
    recover_1271_signer
from .clob_chain import ChainView, RpcError
from .clob_orders import (
    ERR_SIGNATURE,
    ERR_SIGNER,
    SIG_EOA,
    SIG_POLY_1271,
    SIG_POLY_GNOSIS_SAFE,
    SIG_POLY_PROXY,
    ClobApiError,
    SignedOrder,
    poly_proxy_wallet,
    poly_safe_wallet,
)

ERR_MAKER_NOT_ALLOWED = "maker address not allowed, please use the deposit wallet flow"

_SEL_SESSION_SIGNERS = function_signature_to_4byte_selector("sessionSigners(address)")
TOPIC_SESSION_AUTHORIZED = "0x" + keccak(text="SessionSignerAuthorized(address,uint256)").hex()
TOPIC_SESSION_REVOKED = "0x" + keccak(text="SessionSignerRevoked(address)").hex()


class MakerPolicy:
    """The deposit-wallet rules of one CLOB: which (key, order) pairs may trade, and whose funds back them."""

    def __init__(self, chain_id: int, *, factory: str | None = None, beacon: str | None = None,
                 grandfathered: tuple[str, ...] = ()):
        self.chain_id = chain_id
        self.factory = to_checksum_address(factory or DEPOSIT_WALLET_FACTORY)
        self.beacon = to_checksum_address(beacon or DEPOSIT_WALLET_BEACON)
        self.grandfathered = {a.lower() for a in grandfathered}
        self._wallets: dict[str, str] = {}
        self._deployed: set[str] = set()
        self._sessions: dict[str, set[str]] = {}  # session EOA -> wallets it traded for (orders and trades it sees)

    def grandfather(self, addresses) -> list[str]:
        """Allow these makers to post types 0/1/2 from now on; returns every grandfathered address."""
        for a in addresses:
            self.grandfathered.add(to_checksum_address(a).lower())
        return sorted(self.grandfathered)

    def deposit_wallet(self, eoa: str) -> str:
        """The deposit wallet the factory deploys for `eoa` (cached: it is a pure derivation)."""
        key = eoa.lower()
        w = self._wallets.get(key)
        if w is None:
            w = self._wallets[key] = deposit_wallet_address(to_checksum_address(eoa), self.factory, self.beacon)
        return w

    def wallets_of(self, eoa: str) -> tuple[str, ...]:
        """The wallets `eoa` trades for: its own deposit wallet, then those it signed for as a session signer."""
        return (self.deposit_wallet(eoa), *sorted(self._sessions.get(eoa.lower(), ())))

    def funder(self, eoa: str, signature_type: int) -> str:
        """The address whose balances back orders of (`eoa`, `signature_type`): GET /balance-allowance's subject."""
        if signature_type == SIG_POLY_1271:
            return self.deposit_wallet(eoa)
        if signature_type == SIG_POLY_PROXY:
            return poly_proxy_wallet(eoa)
        if signature_type == SIG_POLY_GNOSIS_SAFE:
            return poly_safe_wallet(eoa)
        if signature_type == SIG_EOA:
            return to_checksum_address(eoa)
        raise ClobApiError(f"invalid signature_type {signature_type}")

    def check_maker(self, order: SignedOrder) -> None:
        """Before any signature work: the deposit-wallet flow only, unless the maker is grandfathered."""
        if order.signature_type == SIG_POLY_1271:
            return
        if order.maker.lower() not in self.grandfathered:
            raise ClobApiError(ERR_MAKER_NOT_ALLOWED)

    async def check_wallet_order(self, order: SignedOrder, order_id: str, key_eoa: str, exchange: str,
                                 chain: ChainView | None) -> None:
        """A type-3 order: W linked to the key's EOA, W deployed, the wrapper recovering to the key's EOA."""
        wallet = order.signer
        if order.maker.lower() != wallet.lower():
            # NOTE: the exchange's POLY_1271 check requires signer == maker (LIVE-2026 §6.5).
            raise ClobApiError(ERR_SIGNATURE)
        if wallet.lower() != self.deposit_wallet(key_eoa).lower():
            if not await self._session_signer(chain, wallet, key_eoa):
                raise ClobApiError(ERR_SIGNER)
            self._sessions.setdefault(key_eoa.lower(), set()).add(wallet)
        if not await self._has_code(chain, wallet):
            # NOTE: live's text for an undeployed wallet is unknown; the exchange would find no code and refuse the
            # signature, so we do too (docs/live-assumptions.md).
            raise ClobApiError(ERR_SIGNATURE)
        try:
            signature = bytes.fromhex(order.signature[2:] if order.signature.startswith("0x") else order.signature)
        except ValueError:
            raise ClobApiError(ERR_SIGNATURE) from None
        signer = recover_1271_signer(bytes.fromhex(order_id[2:]), signature, self.chain_id, wallet, exchange)
        if signer is None or signer.lower() != key_eoa.lower():
            raise ClobApiError(ERR_SIGNATURE)

    async def _has_code(self, chain: ChainView | None, wallet: str) -> bool:
        if wallet.lower() in self._deployed:
            return True
        if chain is None:
            return False
        try:
            deployed = await chain.has_code(wallet)
        except RpcError as exc:
            raise ClobApiError(f"could not read the wallet from the node: {exc}", status=503) from None
        if deployed:
            self._deployed.add(wallet.lower())
        return deployed

    async def _session_signer(self, chain: ChainView | None, wallet: str, eoa: str) -> bool:
        """Whether `wallet` has authorised `eoa` as a session signer that is still valid (on-chain read)."""
        if chain is None:
            return False
        try:
            out, block = await chain.rpc.batch([
                ("eth_call", [{"to": wallet, "data": "0x" + (_SEL_SESSION_SIGNERS + abi_encode(
                    ["address"], [to_checksum_address(eoa)])).hex()}, "latest"]),
                ("eth_getBlockByNumber", ["latest", False]),
            ])
        except RpcError:
            return False
        valid_until = int(out, 16) if out and out != "0x" and len(out) <= 66 else 0
        now = int(block.get("timestamp", "0x0"), 16) if isinstance(block, dict) else int(time.time())
        return valid_until >= now and valid_until > 0

    async def session_signers(self, chain: ChainView | None, eoa: str) -> dict:
        """GET /v1/user/session-signers: the live session signers of the key's deposit wallet, from the wallet's
        SessionSignerAuthorized / SessionSignerRevoked events (scopes are not on chain: listed as ["ALL"])."""
        wallet = self.deposit_wallet(eoa)
        if chain is None:
            return {"signers": [], "wallet": wallet}
        try:
            logs, block = await chain.rpc.batch([
                ("eth_getLogs", [{"address": wallet, "fromBlock": "0x0", "toBlock": "latest",
                                  "topics": [[TOPIC_SESSION_AUTHORIZED, TOPIC_SESSION_REVOKED]]}]),
                ("eth_getBlockByNumber", ["latest", False]),
            ])
        except RpcError as exc:
            raise ClobApiError(f"could not read the wallet from the node: {exc}", status=503) from None
        valid: dict[str, int] = {}
        for log in logs or []:
            signer = to_checksum_address("0x" + log["topics"][1][-40:])
            if log["topics"][0] == TOPIC_SESSION_AUTHORIZED:
                valid[signer] = int(log["data"][:66], 16)
            else:
                valid.pop(signer, None)
        now = int(block.get("timestamp", "0x0"), 16) if isinstance(block, dict) else int(time.time())
        return {"signers": [{"address": a, "scopes": ["ALL"], "valid_until": v} for a, v in valid.items() if v >= now],
                "wallet": wallet}
