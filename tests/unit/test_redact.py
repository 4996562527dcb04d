"""The one redaction: URLs shown as scheme://host:port only, secrets masked, in text and in log records."""
from __future__ import annotations

import io
import logging

import pytest

from copytrade_cli.redact import MASK, RedactingFilter, redact_text, redact_url


@pytest.mark.parametrize("url,shown", [
    ("https://polygon-mainnet.g.alchemy.com/v2/SeCrEtKeY", "https://polygon-mainnet.g.alchemy.com/..."),
    ("https://rpc.example/?apikey=SeCrEtKeY", "https://rpc.example/..."),
    ("wss://node.example:8546/ws/SeCrEtKeY", "wss://node.example:8546/..."),
    ("redis://:SeCrEtKeY@10.0.0.5:6379/0", "redis://***@10.0.0.5:6379/0"),
    ("redis://user:SeCrEtKeY@10.0.0.5:6379", "redis://***@10.0.0.5:6379"),
    ("rediss://10.0.0.5:6380/12", "rediss://10.0.0.5:6380/12"),
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
    ("https://user:SeCrEtKeY@rpc.example#frag", "https://***@rpc.example/..."),
])
def test_a_url_keeps_only_scheme_host_and_port(url, shown):
    assert redact_url(url) == shown
    assert "SeCrEtKeY" not in redact_url(url)


def test_text_with_urls_and_secrets_is_scrubbed_everywhere_in_it():
    key = "0x" + "ab" * 32
    text = (f"failover from https://a.example/v2/SeCrEtKeY to 'wss://b.example/SeCrEtKeY2', "
            f"key {key} and bare {key[2:]}; (redis://:pw@h:6379/1)")
    out = redact_text(text, [key])
    for s in ("SeCrEtKeY", "SeCrEtKeY2", key, key[2:], ":pw@"):
        assert s not in out, out
    assert "https://a.example/..." in out and "wss://b.example/..." in out and "redis://***@h:6379/1" in out
    assert out.count(MASK) == 2


def test_log_records_and_their_tracebacks_are_redacted_before_any_handler():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["topsecret"]))
    log = logging.getLogger("copytrade.test.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("RPC %s failed, key %s", "https://rpc.example/v2/SeCrEtKeY", "topsecret")
        try:
            raise ConnectionError("connecting to https://rpc.example/v2/SeCrEtKeY refused")
        except ConnectionError:
            log.exception("while polling %s", "https://rpc.example/v2/SeCrEtKeY")
    finally:
        log.removeHandler(handler)
    out = stream.getvalue()
    assert "SeCrEtKeY" not in out and "topsecret" not in out, out
    assert "https://rpc.example/..." in out and "ConnectionError" in out and "Traceback" in out


def test_installed_redaction_covers_the_last_resort_handler(capsys):
    from copytrade_cli.redact import install_log_redaction

    install_log_redaction(["topsecret"])
    log = logging.getLogger("copytrade.test.lastresort")
    saved = logging.getLogger().handlers[:]
    logging.getLogger().handlers[:] = []  # nothing configured: the last-resort handler prints
    try:
        log.warning("dial https://rpc.example/v2/SeCrEtKeY with topsecret")
    finally:
        logging.getLogger().handlers[:] = saved
    err = capsys.readouterr().err
    assert "https://rpc.example/..." in err and "SeCrEtKeY" not in err and "topsecret" not in err
