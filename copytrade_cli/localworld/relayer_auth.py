"""Who may submit to the local relayer: relayer API keys and builder API keys as the SDK sends them (LIVE-2026 §3).

- Relayer key (`RelayerApiKey(key, address)`): headers `RELAYER_API_KEY` and `RELAYER_API_KEY_ADDRESS`. The address
  must be the transaction's `from` (the signer EOA; for session-signer operations the wallet's owner). With
  `relayer_keys` configured the key must be one of them and belong to that address; without, any non-empty key
  is accepted for its own address (the local default: live issues keys per address in its UI).
- Builder key (`BuilderApiKey`): `POLY_BUILDER_API_KEY`, `_PASSPHRASE`, `_SIGNATURE`, `_TIMESTAMP`, the HMAC of
  `timestamp + method + path + body` under the builder secret. With `builder_keys` configured the key, passphrase
  and HMAC are verified (timestamp within 5 minutes); without, the four headers must be present and non-empty.

Missing or wrong credentials are a 401 that changes nothing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Mapping

ERR_AUTH = "invalid authorization: send RELAYER_API_KEY + RELAYER_API_KEY_ADDRESS, or POLY_BUILDER_* headers"
BUILDER_HEADERS = ("POLY_BUILDER_API_KEY", "POLY_BUILDER_PASSPHRASE", "POLY_BUILDER_SIGNATURE", "POLY_BUILDER_TIMESTAMP")
MAX_CLOCK_SKEW_S = 300


class RelayerRejection(Exception):
    """A refused relayer request: HTTP status and the `error` text (plus Retry-After for 429)."""

    def __init__(self, message: str, status: int = 400, *, retry_after: int | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class BuilderKey:
    """A builder API key the local relayer knows (`BuilderApiKey(key, secret, passphrase)`)."""

    secret: str
    passphrase: str


def builder_hmac(secret: str, timestamp: str, method: str, path: str, body: str | None) -> str:
    """urlsafe_b64(HMAC-SHA256(urlsafe_b64decode(secret), ts+METHOD+path+body)), as the SDK signs it."""
    message = f"{timestamp}{method}{path}{body or ''}"
    digest = hmac.new(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4)), message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass
class RelayerAuth:
    """The relayer's key policy (see the module docstring)."""

    relayer_keys: dict[str, str] = field(default_factory=dict)
    """RELAYER_API_KEY -> its address; empty = any key for its own address."""
    builder_keys: dict[str, BuilderKey] = field(default_factory=dict)
    """POLY_BUILDER_API_KEY -> secret and passphrase; empty = presence of the four headers."""

    def check(self, headers: Mapping[str, str], sender: str, *, method: str, path: str, body: str | None,
              builder_only: bool = False) -> str:
        """Return "relayer" or "builder" for acceptable credentials for `sender`; raise a 401 otherwise."""
        h = {k.upper(): v for k, v in headers.items()}
        if not builder_only and h.get("RELAYER_API_KEY"):
            key, address = h["RELAYER_API_KEY"], h.get("RELAYER_API_KEY_ADDRESS", "")
            if address.lower() != sender.lower():
                raise RelayerRejection(f"invalid authorization: RELAYER_API_KEY_ADDRESS must be {sender}", 401)
            if self.relayer_keys and self.relayer_keys.get(key, "").lower() != sender.lower():
                raise RelayerRejection("invalid authorization: unknown relayer API key", 401)
            return "relayer"
        if all(h.get(name) for name in BUILDER_HEADERS):
            known = self.builder_keys.get(h["POLY_BUILDER_API_KEY"]) if self.builder_keys else None
            if self.builder_keys:
                if known is None or not hmac.compare_digest(known.passphrase, h["POLY_BUILDER_PASSPHRASE"]):
                    raise RelayerRejection("invalid authorization: unknown builder API key", 401)
                ts = h["POLY_BUILDER_TIMESTAMP"]
                if not ts.isdigit() or abs(time.time() - int(ts)) > MAX_CLOCK_SKEW_S:
                    raise RelayerRejection("invalid authorization: builder timestamp out of range", 401)
                want = builder_hmac(known.secret, ts, method, path, body)
                if not hmac.compare_digest(want, h["POLY_BUILDER_SIGNATURE"]):
                    raise RelayerRejection("invalid authorization: bad builder signature", 401)
            return "builder"
        if builder_only:
            raise RelayerRejection("invalid authorization: session-signer authorization needs a builder API key", 401)
        raise RelayerRejection(ERR_AUTH, 401)
