"""L1/L2 auth of the local CLOB against headers produced by the unmodified py_clob_client_v2."""
from __future__ import annotations

import base64
import json

import pytest
from py_clob_client_v2.clob_types import ApiCreds, RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.signer import Signer

from copytrade_cli.localworld.clob_auth import (
    L1_ERROR,
    L2_ERROR,
    ApiKeyRegistry,
    AuthError,
    derive_api_key,
    verify_l1,
)
from tests.conftest import DEV_KEYS

KEY = DEV_KEYS[1]
OTHER = DEV_KEYS[2]


def test_l1_headers_from_the_client_verify():
    signer = Signer(KEY, 137)
    headers = create_level_1_headers(signer, nonce=7)
    address, nonce = verify_l1(headers, 137)
    assert address == signer.address()
    assert nonce == 7


def test_l1_default_nonce_is_zero():
    headers = create_level_1_headers(Signer(KEY, 137))
    assert verify_l1(headers, 137)[1] == 0


@pytest.mark.parametrize("mutate", [
    lambda h: h.update(POLY_ADDRESS=Signer(OTHER, 137).address()),  # claims another wallet
    lambda h: h.update(POLY_TIMESTAMP=str(int(h["POLY_TIMESTAMP"]) + 1)),  # signed another timestamp
    lambda h: h.update(POLY_NONCE="1"),  # signed nonce 0
    lambda h: h.update(POLY_SIGNATURE=h["POLY_SIGNATURE"][:-4] + "0000"),  # corrupted signature
    lambda h: h.pop("POLY_SIGNATURE"),
])
def test_l1_rejects_tampered_headers(mutate):
    headers = create_level_1_headers(Signer(KEY, 137))
    mutate(headers)
    with pytest.raises(AuthError) as err:
        verify_l1(headers, 137)
    assert err.value.message == L1_ERROR


def test_l1_is_bound_to_the_chain_id():
    headers = create_level_1_headers(Signer(KEY, 80002))
    with pytest.raises(AuthError):
        verify_l1(headers, 137)


def test_l1_clock_window_when_enabled():
    headers = create_level_1_headers(Signer(KEY, 137), timestamp=1_000)
    verify_l1(headers, 137)  # no window by default
    with pytest.raises(AuthError):
        verify_l1(headers, 137, max_skew_s=60, now=5_000)


def test_creds_are_deterministic_and_padded_standard_base64():
    a = derive_api_key("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 0)
    b = derive_api_key("0x70997970c51812dc3a010c7d01b50e0d17dc79c8", 0)
    c = derive_api_key("0x70997970C51812dc3A010C7d01b50e0d17dc79C8", 1)
    assert a == b and a.api_key != c.api_key and a.secret != c.secret
    assert a.secret.endswith("=") and len(a.secret) % 4 == 0
    raw = base64.b64decode(a.secret, validate=True)
    assert base64.urlsafe_b64decode(a.secret) == raw and len(raw) == 32
    assert len(a.api_key) == 36 and a.api_key.count("-") == 4


def _l2(creds, method, path, body=None, key=KEY):
    serialized = json.dumps(body, separators=(",", ":"), ensure_ascii=False) if body is not None else None
    headers = create_level_2_headers(
        Signer(key, 137),
        ApiCreds(creds.api_key, creds.secret, creds.passphrase),
        RequestArgs(method=method, request_path=path, body=body, serialized_body=serialized),
    )
    return headers, (serialized or "").encode()


@pytest.fixture
def registry():
    return ApiKeyRegistry(137)


def test_l2_headers_from_the_client_verify(registry):
    creds = registry.issue(Signer(KEY, 137).address(), 0)
    body = {"order": {"salt": 1, "side": "BUY"}, "owner": creds.api_key, "orderType": "FOK"}
    headers, raw = _l2(creds, "POST", "/order", body)
    assert registry.authenticate_l2(headers, "POST", "/order", raw) == creds
    headers, raw = _l2(creds, "GET", "/data/trades")
    assert registry.authenticate_l2(headers, "GET", "/data/trades", raw) == creds
    headers, raw = _l2(creds, "GET", "/data/order/0xabc")
    assert registry.authenticate_l2(headers, "GET", "/data/order/0xabc", raw) == creds


def test_l2_accepts_the_clients_quote_rewrite(registry):
    creds = registry.issue(Signer(KEY, 137).address(), 0)
    body = {"note": "it's"}  # the client signs with ' replaced by "
    headers, raw = _l2(creds, "DELETE", "/order", body)
    assert registry.authenticate_l2(headers, "DELETE", "/order", raw) == creds


@pytest.mark.parametrize("case", ["body", "path", "method", "passphrase", "api_key", "address", "signature"])
def test_l2_rejects_tampering(registry, case):
    creds = registry.issue(Signer(KEY, 137).address(), 0)
    registry.issue(Signer(OTHER, 137).address(), 0)
    body = {"orderID": "0x01"}
    headers, raw = _l2(creds, "DELETE", "/order", body)
    method, path = "DELETE", "/order"
    if case == "body":
        raw = raw.replace(b"0x01", b"0x02")
    elif case == "path":
        path = "/orders"
    elif case == "method":
        method = "POST"
    elif case == "passphrase":
        headers["POLY_PASSPHRASE"] = "x" + headers["POLY_PASSPHRASE"][1:]
    elif case == "api_key":
        headers["POLY_API_KEY"] = "00000000-0000-4000-8000-000000000000"
    elif case == "address":
        headers["POLY_ADDRESS"] = Signer(OTHER, 137).address()
    elif case == "signature":
        headers["POLY_SIGNATURE"] = headers["POLY_SIGNATURE"][:-3] + "AA="
    with pytest.raises(AuthError) as err:
        registry.authenticate_l2(headers, method, path, raw)
    assert err.value.message == L2_ERROR
