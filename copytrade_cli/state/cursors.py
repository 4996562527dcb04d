"""Detection cursors: the last block processed, the Data API timestamp... persisted so detection resumes
after a restart (table cursors)."""
from __future__ import annotations

from .db import StateDB, now_iso


class CursorTables(StateDB):
    """Persisted detection cursors."""

    def get_cursor(self, name: str) -> str | None:
        """A persisted detection cursor (last block processed, Data API timestamp...)."""
        rows = self._q("select value from cursors where name=?", [name])
        return rows[0]["value"] if rows else None

    def set_cursor(self, name: str, value: str) -> None:
        """Persist a detection cursor."""
        with self._lock:
            self.db.conn.execute("insert into cursors (name, value, updated_at) values (?, ?, ?) on conflict(name) "
                                 "do update set value=excluded.value, updated_at=excluded.updated_at",
                                 [name, value, now_iso()])
