"""Session signers through the local relayer (LIVE-2026 §6.3): the SDK's authorization and revocation routes.

`POST /v1/session-signers/authorizations` (builder key) and `/revocations` carry a batch the owner signed over one
call, `wallet.authorizeSessionSigner(signer, validUntil)` or `wallet.revokeSessionSigner(signer)`; the relayer
rebuilds that call from the body, checks and sends it as a WALLET batch (same rules as /submit), records the scopes,
and answers `{status, transactionId, ...}`. An `Idempotency-Key` seen before gets the first answer again.
"""
from __future__ import annotations

from typing import Any, Mapping

from eth_utils import is_address, to_checksum_address

from .relayer import _AUTHORIZE, _REVOKE, LocalRelayer, TxState
from .relayer_auth import RelayerRejection


async def session_operation(relayer: LocalRelayer, kind: str, body: Any, headers: Mapping[str, str], *, path: str,
                            raw_body: str | None) -> dict[str, Any]:
    """POST /v1/session-signers/authorizations|revocations: a signed one-call batch on the owner's wallet."""
    key = headers.get("Idempotency-Key") or headers.get("idempotency-key")
    if key and key in relayer.idempotent:
        return relayer.idempotent[key]
    if not isinstance(body, dict):
        raise RelayerRejection("invalid request body: expected a JSON object")
    wallet, signer = body.get("walletAddress"), body.get("sessionSignerAddress")
    if not (isinstance(wallet, str) and is_address(wallet) and isinstance(signer, str) and is_address(signer)):
        raise RelayerRejection("invalid 'walletAddress' / 'sessionSignerAddress': must be addresses")
    wallet, signer = to_checksum_address(wallet), to_checksum_address(signer)
    view = await relayer.io(relayer.wallet_view, wallet, signer)
    if not view["deployed"]:
        raise RelayerRejection(f"deposit wallet {wallet} is not deployed")
    owner = view["owner"]
    relayer.options.auth.check(headers, owner, method="POST", path=path, body=raw_body,
                               builder_only=(kind == "authorize"))
    relayer.take_fault()
    if kind == "authorize":
        until = body.get("validUntil")
        scopes = body.get("scopes")
        if not isinstance(until, str) or not until.isdigit():
            raise RelayerRejection("invalid 'validUntil' field: must be a decimal string of unix seconds")
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s for s in scopes):
            raise RelayerRejection("invalid 'scopes' field: expected a non-empty list of strings")
        data = _AUTHORIZE + bytes(12) + bytes.fromhex(signer[2:]) + int(until).to_bytes(32, "big")
    else:
        scopes = None
        data = _REVOKE + bytes(12) + bytes.fromhex(signer[2:])
    fake = {"nonce": body.get("nonce"), "signature": body.get("signature")}
    params = {"depositWallet": wallet, "deadline": body.get("deadline"),
              "calls": [{"target": wallet, "value": "0", "data": "0x" + data.hex()}]}
    _w, nonce, deadline, calls, signature = relayer.parse_batch(fake, params)
    accepted = await relayer.run_batch(owner, wallet, nonce, deadline, calls, signature,
                                    metadata=f"session signer {kind}")
    tx = accepted.tx
    if scopes is not None:
        tx.scopes = list(scopes)
    if tx.state == TxState.FAILED:
        out = {"status": "FAILED", "transactionId": tx.id, "transactionHash": tx.hash, "fenced": False}
    elif kind == "authorize":
        out = {"status": "SUBMITTED", "transactionId": tx.id, "transactionHash": tx.hash}
    else:
        out = {"status": "CHAIN_SUBMITTED", "fenced": True, "transactionId": tx.id}
    if key:
        relayer.idempotent[key] = out
    return out
