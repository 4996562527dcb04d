"""The sync transport: http.client over one keep-alive connection per thread and endpoint.

NOTE: http.client, not requests: requests cost about 3x the CPU per call, and the supervisor's hot paths
(receipt polls, balance batches, sends) make thousands of calls a minute.
"""
from __future__ import annotations

import http.client
import json
import threading
from typing import Any
from urllib.parse import urlsplit

from .base import Transport, TransportError, no_answer, redact, scrub

_HEADERS = {"Content-Type": "application/json"}


class HttpTransport(Transport):
    """POST a JSON body, read a JSON answer, over this thread's keep-alive connection to the URL. A connection
    the server closed meanwhile is retried once on a fresh one; an unreachable, refusing or timed-out endpoint
    (or one answering without JSON) raises `TransportError`."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self, url: str):
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        c = conns.get(url)
        if c is None:
            u = urlsplit(url)
            cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            c = cls(u.hostname, u.port, timeout=self.timeout)
            c.path_ = (u.path or "/") + (f"?{u.query}" if u.query else "")
            conns[url] = c
        return c

    def _drop(self, url: str) -> None:
        c = (getattr(self._local, "conns", None) or {}).pop(url, None)
        if c is not None:
            c.close()

    def close(self) -> None:
        """Close this thread's connections (other threads' close with them)."""
        for url in list(getattr(self._local, "conns", None) or {}):
            self._drop(url)

    def post(self, url: str, body: Any) -> Any:
        """The JSON answer to `body` POSTed to `url`."""
        data = json.dumps(body).encode()
        for fresh in (False, True):
            c = self._conn(url)
            try:
                c.request("POST", c.path_, body=data, headers=_HEADERS)
                r = c.getresponse()
                raw = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self._drop(url)
                if fresh:
                    raise TransportError(f"RPC {redact(url)} unreachable: {scrub(str(exc), url)}") from None
                continue  # the server closed our idle keep-alive connection: once more on a new one
            except (OSError, http.client.HTTPException) as exc:  # refused, unreachable, timed out
                self._drop(url)
                raise TransportError(f"RPC {redact(url)} unreachable: {scrub(str(exc), url)}") from None
            if no_answer(r.status, raw):
                raise TransportError(f"RPC {redact(url)} answered HTTP {r.status}")
            try:
                return json.loads(raw)
            except ValueError:
                raise TransportError(f"RPC {redact(url)} answered HTTP {r.status} without JSON") from None
        raise TransportError(f"RPC {redact(url)} unreachable")  # pragma: no cover
