"""CLOB authentication for the local Polymarket CLOB: L1 (EIP-712 ClobAuth) and L2 (HMAC) checks.

Follows CLOB-WIRE §3–§4. API credentials are derived deterministically from (address, nonce) and a
server seed, so `POST /auth/api-key` and `GET /auth/derive-api-key` agree and a restarted server
hands out the same credentials again.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Mapping

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import to_checksum_address

CLOB_AUTH_DOMAIN_NAME = "ClobAuthDomain"
CLOB_AUTH_DOMAIN_VERSION = "1"
CLOB_AUTH_MESSAGE = "This message attests that I control the given wallet"

L1_ERROR = "Invalid L1 Request headers"
L2_ERROR = "Unauthorized/Invalid api key"

# NOTE: a fixed default seed keeps creds stable across restarts of the local server; it protects
# nothing (the fork is local), it only has to be deterministic.
DEFAULT_AUTH_SEED = b"copytrade-local-clob-auth-seed-v1"


class AuthError(Exception):
    """An L1 or L2 check failed; `message` is the exact error string the real CLOB sends (HTTP 401)."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message if not detail else f"{message} ({detail})")
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class ApiKey:
    """One set of L2 credentials and the EOA that owns them."""

    api_key: str
    secret: str
    passphrase: str
    address: str  # checksummed EOA
    nonce: int

    def as_response(self) -> dict:
        """The JSON body of /auth/api-key and /auth/derive-api-key."""
        return {"apiKey": self.api_key, "secret": self.secret, "passphrase": self.passphrase}


def clob_auth_typed_data(address: str, timestamp: str, nonce: int, chain_id: int) -> dict:
    """The EIP-712 ClobAuth typed data the client signs for L1 headers (no verifyingContract)."""
    return {
        "primaryType": "ClobAuth",
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "ClobAuth": [
                {"name": "address", "type": "address"},
                {"name": "timestamp", "type": "string"},
                {"name": "nonce", "type": "uint256"},
                {"name": "message", "type": "string"},
            ],
        },
        "domain": {"name": CLOB_AUTH_DOMAIN_NAME, "version": CLOB_AUTH_DOMAIN_VERSION, "chainId": chain_id},
        "message": {"address": address, "timestamp": timestamp, "nonce": nonce, "message": CLOB_AUTH_MESSAGE},
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's CIMultiDict is case-insensitive already; plain dicts (unit tests) may not be.
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def verify_l1(headers: Mapping[str, str], chain_id: int, *, max_skew_s: float | None = None,
              now: float | None = None) -> tuple[str, int]:
    """Check L1 headers by EIP-712 recovery; return (checksummed address, nonce) or raise AuthError."""
    address = _header(headers, "POLY_ADDRESS")
    signature = _header(headers, "POLY_SIGNATURE")
    timestamp = _header(headers, "POLY_TIMESTAMP")
    nonce_raw = _header(headers, "POLY_NONCE") or "0"
    if not address or not signature or not timestamp:
        raise AuthError(L1_ERROR, "missing POLY_ADDRESS, POLY_SIGNATURE or POLY_TIMESTAMP")
    try:
        nonce = int(nonce_raw)
        if nonce < 0:
            raise ValueError(nonce_raw)
        ts = int(timestamp)
    except ValueError:
        raise AuthError(L1_ERROR, "POLY_NONCE and POLY_TIMESTAMP must be integers") from None
    if max_skew_s is not None and abs((now if now is not None else time.time()) - ts) > max_skew_s:
        raise AuthError(L1_ERROR, "POLY_TIMESTAMP outside the accepted window")
    try:
        typed = clob_auth_typed_data(address, timestamp, nonce, chain_id)
        recovered = Account.recover_message(encode_typed_data(full_message=typed), signature=signature)
    except Exception as exc:  # malformed address or signature bytes
        raise AuthError(L1_ERROR, f"cannot recover signer: {exc}") from None
    if recovered.lower() != address.lower():
        raise AuthError(L1_ERROR, "signature does not match POLY_ADDRESS")
    return recovered, nonce


def derive_api_key(address: str, nonce: int, seed: bytes = DEFAULT_AUTH_SEED) -> ApiKey:
    """Deterministic credentials for (address, nonce): UUID key, standard base64 secret (padded), hex passphrase."""
    base = hmac.new(seed, f"{address.lower()}:{nonce}".encode(), hashlib.sha256).digest()
    key_bytes = hmac.new(base, b"api-key", hashlib.sha256).digest()[:16]
    secret_bytes = hmac.new(base, b"secret", hashlib.sha256).digest()
    passphrase = hmac.new(base, b"passphrase", hashlib.sha256).hexdigest()
    return ApiKey(
        api_key=str(uuid.UUID(bytes=key_bytes, version=4)),
        # NOTE: standard alphabet with '=' padding: Python's urlsafe_b64decode and the TS client's atob both
        # accept it (CLOB-WIRE §3).
        secret=base64.b64encode(secret_bytes).decode(),
        passphrase=passphrase,
        address=to_checksum_address(address),
        nonce=nonce,
    )


def l2_signature(secret: str, timestamp: str, method: str, path: str, body: str = "") -> str:
    """The POLY_SIGNATURE value for an L2 request: urlsafe base64 HMAC-SHA256 (as the client computes it)."""
    key = base64.urlsafe_b64decode(secret)
    message = f"{timestamp}{method}{path}{body}"
    return base64.urlsafe_b64encode(hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()).decode()


class ApiKeyRegistry:
    """The server's API keys: issued by L1 endpoints, looked up by L2 requests. Thread-safe."""

    def __init__(self, chain_id: int, seed: bytes = DEFAULT_AUTH_SEED, *, max_skew_s: float | None = None):
        self.chain_id = chain_id
        self.seed = seed
        self.max_skew_s = max_skew_s
        self._keys: dict[str, ApiKey] = {}
        self._lock = threading.Lock()

    def issue(self, address: str, nonce: int) -> ApiKey:
        """Register (idempotently) and return the credentials for (address, nonce)."""
        creds = derive_api_key(address, nonce, self.seed)
        with self._lock:
            self._keys[creds.api_key] = creds
        return creds

    def get(self, api_key: str) -> ApiKey | None:
        """The credentials behind an API key, if issued."""
        return self._keys.get(api_key)

    def keys_of(self, address: str) -> list[ApiKey]:
        """Every API key issued to an address."""
        return [k for k in list(self._keys.values()) if k.address.lower() == address.lower()]

    def authenticate_l1(self, headers: Mapping[str, str]) -> tuple[str, int]:
        """Verify L1 headers; return (address, nonce)."""
        return verify_l1(headers, self.chain_id, max_skew_s=self.max_skew_s)

    def authenticate_l2(self, headers: Mapping[str, str], method: str, path: str, body: bytes,
                        *, now: float | None = None) -> ApiKey:
        """Verify L2 headers over the raw body bytes and the path without query; return the API key or raise AuthError."""
        address = _header(headers, "POLY_ADDRESS")
        signature = _header(headers, "POLY_SIGNATURE")
        timestamp = _header(headers, "POLY_TIMESTAMP")
        api_key = _header(headers, "POLY_API_KEY")
        passphrase = _header(headers, "POLY_PASSPHRASE")
        if not (address and signature and timestamp and api_key and passphrase):
            raise AuthError(L2_ERROR, "missing L2 headers")
        creds = self.get(api_key)
        if creds is None:
            raise AuthError(L2_ERROR, "unknown api key")
        if not hmac.compare_digest(passphrase, creds.passphrase):
            raise AuthError(L2_ERROR, "wrong passphrase")
        if address.lower() != creds.address.lower():
            raise AuthError(L2_ERROR, "POLY_ADDRESS is not the owner of the api key")
        if self.max_skew_s is not None:
            try:
                ts = int(timestamp)
            except ValueError:
                raise AuthError(L2_ERROR, "bad POLY_TIMESTAMP") from None
            if abs((now if now is not None else time.time()) - ts) > self.max_skew_s:
                raise AuthError(L2_ERROR, "POLY_TIMESTAMP outside the accepted window")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError(L2_ERROR, "body is not UTF-8") from None
        expected = l2_signature(creds.secret, timestamp, method.upper(), path, text)
        if hmac.compare_digest(signature, expected):
            return creds
        # NOTE: the Python client signs `str(body).replace("'", '"')`, so a body containing a single quote is
        # signed with it replaced; accept that variant too.
        if "'" in text:
            alt = l2_signature(creds.secret, timestamp, method.upper(), path, text.replace("'", '"'))
            if hmac.compare_digest(signature, alt):
                return creds
        raise AuthError(L2_ERROR, "bad HMAC signature")
