"""The local relayer's key policy against the headers the SDK builds (polymarket/_internal/actions/relayer/auth.py)."""
from __future__ import annotations

import base64

import pytest

from copytrade_cli.localworld.relayer_auth import ERR_AUTH, BuilderKey, RelayerAuth, RelayerRejection

EOA = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OTHER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
SECRET = base64.urlsafe_b64encode(b"s" * 32).decode()


def _relayer_headers(key="k", address=EOA):
    from polymarket._internal.actions.relayer.auth import make_relayer_header_resolver_sync
    from polymarket.auth import RelayerApiKey

    return dict(make_relayer_header_resolver_sync(RelayerApiKey(key=key, address=address))("POST", "/submit", "{}"))


def _builder_headers(body="{}", secret=SECRET, path="/submit"):
    from polymarket._internal.actions.relayer.auth import build_builder_key_headers
    from polymarket.auth import BuilderApiKey

    return build_builder_key_headers(creds=BuilderApiKey(key="b", secret=secret, passphrase="p"), method="POST",
                                     path=path, body=body)


def _refused(auth, headers, sender=EOA, **kw) -> RelayerRejection:
    with pytest.raises(RelayerRejection) as exc:
        auth.check(headers, sender, method="POST", path=kw.pop("path", "/submit"), body=kw.pop("body", "{}"), **kw)
    assert exc.value.status == 401
    return exc.value


def test_relayer_key_must_be_for_the_sender():
    auth = RelayerAuth()
    assert auth.check(_relayer_headers(), EOA, method="POST", path="/submit", body="{}") == "relayer"
    assert "must be " + OTHER in _refused(auth, _relayer_headers(), sender=OTHER).message
    assert _refused(auth, {}).message == ERR_AUTH


def test_configured_relayer_keys_are_checked():
    auth = RelayerAuth(relayer_keys={"good": EOA})
    assert auth.check(_relayer_headers("good"), EOA, method="POST", path="/submit", body="{}") == "relayer"
    assert _refused(auth, _relayer_headers("bad")).message == "invalid authorization: unknown relayer API key"


def test_builder_hmac_is_verified_when_keys_are_configured():
    auth = RelayerAuth(builder_keys={"b": BuilderKey(secret=SECRET, passphrase="p")})
    assert auth.check(_builder_headers(), EOA, method="POST", path="/submit", body="{}") == "builder"
    assert "bad builder signature" in _refused(auth, _builder_headers(body='{"x":1}')).message  # body changed
    other = base64.urlsafe_b64encode(b"t" * 32).decode()
    assert "bad builder signature" in _refused(auth, _builder_headers(secret=other)).message
    assert "bad builder signature" in _refused(auth, _builder_headers(path="/other")).message


def test_session_authorization_needs_a_builder_key():
    auth = RelayerAuth()
    assert "needs a builder API key" in _refused(auth, _relayer_headers(), builder_only=True).message
    assert auth.check(_builder_headers(), EOA, method="POST", path="/submit", body="{}", builder_only=True) == "builder"
