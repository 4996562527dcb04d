"""Smart Buffer debts: what a proxy owes the worker that fronted its copy, until reimbursed (table debts); the
reimbursement tx is journalled before it is broadcast."""
from __future__ import annotations

from typing import Any

from .db import StateDB, now_iso


class DebtTables(StateDB):
    """Open, paying and paid debts."""

    def add_debts(self, rows: list[dict[str, Any]]) -> None:
        """Record Smart Buffer debts (proxy owes worker) until reimbursed."""
        if not rows:
            return
        stamp = now_iso()
        cols = list(dict.fromkeys([*rows[0], "status", "created_at"]))
        with self._lock:
            self.db.conn.executemany(
                f"insert into debts ({','.join(cols)}) values ({','.join('?' * len(cols))})",
                [[{**r, "status": "open", "created_at": stamp}.get(c) for c in cols] for r in rows])

    def open_debts(self, worker: str | None = None) -> list[dict[str, Any]]:
        """Debts not yet reimbursed (open, or being paid by a journalled tx not yet confirmed)."""
        if worker:
            return self._q("select * from debts where status in ('open','paying') and worker=? order by id", [worker])
        return self._q("select * from debts where status in ('open','paying') order by id")

    def mark_debts_paying(self, ids: list[int], tx_hash: str) -> None:
        """Journal the reimbursement tx of these debts before it is broadcast (write-ahead)."""
        if not ids:
            return
        with self._lock:
            self.db.conn.execute(f"update debts set status='paying', paid_tx=? where status in ('open','paying') "
                                 f"and id in ({','.join('?' * len(ids))})", [tx_hash, *ids])

    def paying_debts(self) -> list[dict[str, Any]]:
        """Debts whose reimbursement tx was journalled but not yet confirmed."""
        return self._q("select * from debts where status='paying' order by id")

    def reopen_debts(self, ids: list[int]) -> None:
        """Debts whose reimbursement did not happen (reverted, never broadcast): open again."""
        if not ids:
            return
        with self._lock:
            self.db.conn.execute(f"update debts set status='open', paid_tx=null where status='paying' and id in "
                                 f"({','.join('?' * len(ids))})", list(ids))

    def mark_debts_paid(self, ids: list[int], tx_hash: str) -> None:
        """Mark debts reimbursed by a transaction."""
        if not ids:
            return
        with self._lock:
            self.db.execute(f"update debts set status='paid', paid_tx=?, paid_at=? where id in ({','.join('?' * len(ids))})",
                            [tx_hash, now_iso(), *ids])
