"""The Redis connection of one supervisor instance: a pool plus the up/down state, reconnect with backoff.

Every key starts with SUPERVISOR_REDIS_PREFIX. Lua scripts build some keys from that prefix, so this
needs a single Redis node (not Redis Cluster).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from ...errors import NotReadyError
from ...redact import redact_text, redact_url

log = logging.getLogger("copytrade.redis")
GROUP = "supervisors"
DAY_TTL_S = 3 * 86_400  # counters and reservations outlive their UTC day by two days


class RedisDown(Exception):
    """Redis could not be reached; the caller pauses and the link reconnects with backoff."""


class RedisLink:
    """One Redis connection pool plus the up/down state: operations that fail mark it down, a reconnect
    thread pings with backoff and, once Redis answers, runs the `on_up` hooks (re-fill after a restart)."""

    def __init__(self, url: str, prefix: str):
        import redis

        self.url, self.prefix = url, prefix
        self.r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, decode_responses=True)
        self.up = threading.Event()
        self.on_up: list[Callable[[], None]] = []  # before the gate opens (raw client only)
        self.after_up: list[Callable[[], None]] = []  # after it opened (may use call())
        self.downs = 0
        self._scripts: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def k(self, *parts: str) -> str:
        """A key under this deployment's prefix."""
        return self.prefix + ":".join(parts)

    def script(self, name: str, lua: str):
        """A registered Lua script (redis-py reloads it after a Redis restart: NOSCRIPT is handled)."""
        s = self._scripts.get(name)
        if s is None:
            s = self._scripts[name] = self.r.register_script(lua)
        return s

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Redis operation; a connection problem marks the link down and raises RedisDown."""
        import redis

        if not self.up.is_set():
            raise RedisDown("Redis is down; reconnecting")
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError) as exc:
            self.mark_down(exc)
            raise RedisDown(str(exc)) from None
        except redis.ResponseError as exc:
            if "LOADING" in str(exc) or "MASTERDOWN" in str(exc):
                self.mark_down(exc)
                raise RedisDown(str(exc)) from None
            raise

    def connect(self) -> None:
        """First connection (start-up): fail fast with a message that says what to do."""
        try:
            self.r.ping()
        except Exception as exc:  # noqa: BLE001
            raise NotReadyError(f"Redis at {_safe_url(self.url)} is unreachable ({redact_text(str(exc))}): start it, "
                                "or unset "
                                "SUPERVISOR_REDIS_URL/REDIS_URL to run one instance in process") from None
        for hook in self.on_up:
            hook()
        self.up.set()
        self._after_up()

    def _after_up(self) -> None:
        for hook in self.after_up:
            try:
                hook()
            except RedisDown:
                return  # down again: the reconnect loop runs the hooks next time
            except Exception:  # noqa: BLE001
                log.exception("post-reconnect step failed")

    def mark_down(self, exc: BaseException) -> None:
        """Note the outage once; the reconnect thread takes over."""
        with self._lock:
            if self.up.is_set():
                self.up.clear()
                self.downs += 1
                log.warning("Redis connection lost (%s): intake paused, reconnecting with backoff",
                            redact_text(str(exc))[:120])

    def reconnect_loop(self, stop: threading.Event) -> None:
        """Ping with exponential backoff while down; on success run the hooks, then open the gate."""
        backoff = 0.1
        while not stop.is_set():
            if self.up.is_set():
                stop.wait(0.2)
                continue
            try:
                self.r.ping()
                for hook in self.on_up:
                    hook()
                self.up.set()
                backoff = 0.1
                log.warning("Redis reconnected: intake resumed")
                self._after_up()
            except Exception as exc:  # noqa: BLE001 — keep trying
                log.info("Redis still down (%s); retry in %.1fs", redact_text(str(exc))[:80], backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def wait_up(self, timeout: float | None = None) -> bool:
        """Block until Redis is reachable again (or the timeout passes)."""
        return self.up.wait(timeout)

    def close(self) -> None:
        """Close the pool."""
        try:
            self.r.close()
        except Exception:  # noqa: BLE001
            pass


def _safe_url(url: str) -> str:
    """The URL as it may be shown: scheme://host:port[/db], no password, no path (copytrade_cli.redact)."""
    return redact_url(url) or ""
