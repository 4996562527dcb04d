"""The one redaction: what may be shown of a URL, and scrubbing secrets and URL paths out of any text.

RPC providers put API keys in the URL path (`https://polygon-mainnet.g.alchemy.com/v2/<key>`) or the query,
Redis URLs carry passwords (`redis://:pw@host:6379/0`). So a URL is only ever shown as scheme, host and port
(plus a Redis database number); the path and query become `/...`, a password `***`. Config output, log records, error lines and
status documents all go through here.
"""
from __future__ import annotations

import logging
import re
from typing import Iterable

MASK = "********"
_URL_RE = re.compile(r"\b[a-z][a-z0-9+.-]{1,15}://[^\s'\"<>,)\]}]+", re.IGNORECASE)
_DB_PATH = re.compile(r"^/\d{1,3}$")  # a Redis database number is not a secret


def redact_url(url: str | None) -> str | None:
    """`url` reduced to what may be shown: scheme://host[:port], userinfo and path/query/fragment masked."""
    if url is None:
        return None
    text = str(url)
    if "://" not in text:
        return text
    scheme, rest = text.split("://", 1)
    netloc, sep, tail = _split_netloc(rest)
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    shown = f"{scheme}://{netloc}"
    if sep or tail:
        path = sep + tail
        if path in ("/", "") or (scheme.lower().startswith("redis") and _DB_PATH.match(path)):
            shown += path
        else:
            shown += "/..."
    return shown


def _split_netloc(rest: str) -> tuple[str, str, str]:
    for i, ch in enumerate(rest):
        if ch in "/?#":
            return rest[:i], ch, rest[i + 1:]
    return rest, "", ""


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every configured secret masked (also without its 0x prefix) and every URL redacted."""
    for s in secrets:
        if not s:
            continue
        if s in text:
            text = text.replace(s, MASK)
        if s.startswith("0x") and len(s) > 2 and s[2:] in text:
            text = text.replace(s[2:], MASK)
    if "://" in text:
        text = _URL_RE.sub(lambda m: redact_url(m.group(0)) or "", text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's final message (secrets and URL paths) before any handler."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        """Format the record once, redact it, and freeze the result (args cleared): always keep the record."""
        try:
            msg = record.getMessage()
        except Exception:  # noqa: BLE001 — a broken format string: keep the raw template
            msg = str(record.msg)
        clean = redact_text(msg, self.secrets)
        if record.exc_info and not record.exc_text:
            # NOTE: exception text (e.g. a connection error) often embeds the URL: the traceback is rendered
            # here, redacted; handlers use exc_text when it is set.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info), self.secrets)
        record.msg, record.args = clean, None
        return True


def install_log_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Redact every log record of this process: one filter on the root's and copytrade's handlers and on
    logging's last-resort stderr handler (what prints warnings when nothing is configured)."""
    flt = RedactingFilter(secrets)
    handlers = [*logging.getLogger().handlers, *logging.getLogger("copytrade").handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for h in handlers:
        for old in [f for f in h.filters if isinstance(f, RedactingFilter)]:
            h.removeFilter(old)
        h.addFilter(flt)
    return flt
