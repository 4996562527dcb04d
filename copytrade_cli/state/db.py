"""The connection and transaction layer of the state file: one SQLite connection (WAL) per `State`, one
in-process lock, nested write transactions (savepoints inside), recorded migrations, owner-only file modes.

The table modules (`network`, `follows`, `journal`, `groups`, `guardrails`, `debts`, `cursors`,
`generations`) build on `StateDB` and reach SQLite only through it: `_q` for reads, `db`/`db.conn` under
`_lock` for writes, `_begin`/`_commit`/`_rollback` (or `transaction()`) when several statements must land
together.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import sqlite_utils

from ..errors import StateError
from .schema import MIGRATIONS, SCHEMA_VERSION, TABLES

# The state file holds the journal of every copy and the operator's addresses: owner-only, like a key file.
FILE_MODE = 0o600
_SIBLINGS = ("", "-wal", "-shm", "-journal")


_ISO_MEMO: list = [(None, "")]  # [(millisecond, its text)]: the decision hot path stamps many rows per millisecond


def iso_ms(ts: float) -> str:
    """A unix time as the state file's ISO timestamp (UTC, milliseconds), formatted once per millisecond."""
    ms = int(ts * 1000)
    last = _ISO_MEMO[0]  # one tuple, swapped whole: threads never see a millisecond with another's text
    if last[0] != ms:
        text = dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).isoformat(timespec="milliseconds")
        _ISO_MEMO[0] = (ms, text)
        return text
    return last[1]


def now_iso() -> str:
    """UTC timestamp with milliseconds, the one time format of the state file."""
    return iso_ms(time.time())


def dumps(obj: Any) -> str:
    """JSON for state columns."""
    return json.dumps(obj, separators=(",", ":"), default=str)


def _restrict(path: Path) -> None:
    """Create the state file owner-only if it is new, and tighten it and its existing siblings (-wal, -shm)."""
    if str(path) == ":memory:":  # SQLite's in-memory database: no file
        return
    if not path.exists():
        # NOTE: SQLite gives the -wal/-shm files it creates the main file's mode, so creating the main file
        # 0600 before SQLite opens it makes every sibling 0600 too (the umask can only remove bits).
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE))
    for suffix in _SIBLINGS:
        p = Path(f"{path}{suffix}")
        try:
            if p.exists() and stat.S_IMODE(p.stat().st_mode) & ~FILE_MODE:
                os.chmod(p, FILE_MODE)
        except OSError:
            pass  # NOTE: a file we may open but not chmod (another owner) is still usable; opening decides


class StateDB:
    """Open (and migrate) the state file; owns the connection, the lock and the transaction depth."""

    def __init__(self, path: Path | str):
        self.path = Path(path).expanduser()
        self._lock = threading.RLock()
        self._tx_depth = 0  # nesting of write transactions on this connection (guarded by _lock)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _restrict(self.path)
            conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            _restrict(self.path)  # the -wal/-shm files WAL mode just created (or an older run left)
        except (sqlite3.Error, OSError) as exc:
            raise StateError(f"cannot open state file {self.path}: {exc}") from None
        self.db = sqlite_utils.Database(conn)
        self._migrate()

    # --- schema --------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._lock:
            if "_migrations" not in self.db.table_names():
                self.db["_migrations"].create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
            done = {r["name"] for r in self.db["_migrations"].rows}
            unknown = done - {name for name, _ in MIGRATIONS}
            if unknown:
                raise StateError(f"state file {self.path} is from a newer copytrade (migrations {sorted(unknown)}); "
                                 "upgrade copytrade or use another COPYTRADE_HOME")
            for name, fn in MIGRATIONS:
                if name in done:
                    continue
                # NOTE: sqlite-utils commits DDL itself, so each migration's tables are created with
                # if_not_exists and the migration is recorded last: a crash halfway re-runs it harmlessly.
                fn(self.db)
                self.db["_migrations"].insert({"name": name, "applied_at": now_iso()})

    @property
    def schema_version(self) -> int:
        """Number of migrations applied."""
        return self.db["_migrations"].count

    def info(self) -> dict[str, Any]:
        """Path, schema version and row counts, for `copytrade state info`."""
        return {"path": str(self.path), "schema_version": self.schema_version, "latest_version": SCHEMA_VERSION,
                "journal_mode": self.db.execute("PRAGMA journal_mode").fetchone()[0],
                "tables": {t: self.db[t].count for t in TABLES}}

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def rows(self, table: str, limit: int = 1000) -> Iterator[dict[str, Any]]:
        """Raw rows of a table (for diagnostics and tests)."""
        if table not in TABLES:
            raise StateError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        yield from self._q(f"select * from {table} limit ?", [limit])

    # --- reads and transactions ----------------------------------------------------------------------
    def _q(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cur = self.db.execute(sql, list(params))
            cols = [c[0] for c in cur.description] if cur.description else []
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def transaction(self) -> "Transaction":
        """A write transaction (BEGIN IMMEDIATE), holding the in-process lock. Transactions nest: inside one,
        the methods that need their own (create_group, reserve_usd, claim_group...) use a savepoint, so
        a caller can group the writes of one fill (or one batch of fills) into a single commit."""
        return Transaction(self)

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, or a savepoint inside an open transaction (call with _lock held)."""
        if self._tx_depth == 0:
            self.db.conn.execute("BEGIN IMMEDIATE")
        else:
            self.db.conn.execute(f"SAVEPOINT ct_{self._tx_depth}")
        self._tx_depth += 1

    def _commit(self) -> None:
        """COMMIT the outermost transaction, or release the innermost savepoint (call with _lock held)."""
        self._tx_depth -= 1
        if self._tx_depth == 0:
            self.db.conn.execute("COMMIT")
        else:
            self.db.conn.execute(f"RELEASE ct_{self._tx_depth}")

    def _rollback(self) -> None:
        """ROLLBACK the outermost transaction, or undo to the innermost savepoint only (call with _lock held)."""
        self._tx_depth -= 1
        if self._tx_depth == 0:
            self.db.conn.execute("ROLLBACK")
        else:
            self.db.conn.execute(f"ROLLBACK TO ct_{self._tx_depth}")
            self.db.conn.execute(f"RELEASE ct_{self._tx_depth}")


class Transaction:
    """`with state.transaction():` — takes the lock, begins (or opens a savepoint), commits or rolls back."""

    def __init__(self, state: StateDB):
        self.state = state

    def __enter__(self):
        self.state._lock.acquire()
        try:
            self.state._begin()
        except BaseException:
            self.state._lock.release()
            raise
        return self.state

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type:
                self.state._rollback()
            else:
                self.state._commit()
        finally:
            self.state._lock.release()
        return False
