"""Daily spending caps: reservations journalled in guardrail_ledger, checked against running totals
(guardrail_totals, kept by triggers) atomically with the reservation."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from .db import StateDB, now_iso


class GuardrailTables(StateDB):
    """Cap reservations and the USD spent per day and wallet."""

    def reserve_usd(self, *, day: str, wallet: str, usd: str, job_key: str, wallet_cap: str | None,
                    global_cap: str | None) -> tuple[bool, str]:
        """Atomically reserve `usd` against the day's caps; (False, reason) if a cap would be exceeded."""
        with self._lock:
            conn = self.db.conn
            self._begin()
            try:
                if self._q("select 1 from guardrail_ledger where job_key=?", [job_key]):
                    self._commit()
                    return True, "already reserved"
                if global_cap is not None:
                    spent = self._spent_micro(day) / Decimal(10**6)
                    if spent + Decimal(usd) > Decimal(global_cap):
                        self._commit()
                        return False, f"daily cap {global_cap} USD reached ({spent} used)"
                if wallet_cap is not None:
                    spent = self._spent_micro(day, wallet) / Decimal(10**6)
                    if spent + Decimal(usd) > Decimal(wallet_cap):
                        self._commit()
                        return False, f"wallet daily cap {wallet_cap} USD reached ({spent} used)"
                conn.execute("insert into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                             "values (?, ?, ?, ?, 'reserved', ?)", [day, wallet, usd, job_key, now_iso()])
                self._commit()
                return True, "reserved"
            except Exception:
                self._rollback()
                raise

    def reserve_usd_many(self, *, day: str, items: list[tuple[str, int, str]], wallet_cap_micro: int | None,
                         global_cap_micro: int | None) -> list[tuple[bool, str]]:
        """`reserve_usd` for several copies at once, (wallet, usd_micro, job_key) each, checked in order against
        the caps with running totals (read once, two rows per wallet at most, instead of one SELECT per copy),
        and journalled with one executemany, atomically: same verdicts as one `reserve_usd` call per item."""
        if not items:
            return []
        m = Decimal(10**6)
        out: list[tuple[bool, str]] = []
        with self._lock:
            conn = self.db.conn
            self._begin()
            try:
                keys = list(dict.fromkeys(k for _w, _u, k in items))
                seen = {r[0] for r in conn.execute(
                    f"select job_key from guardrail_ledger where job_key in ({','.join('?' * len(keys))})", keys)}
                wallets = list(dict.fromkeys(w for w, _u, _k in items)) if wallet_cap_micro is not None else []
                want = (["*"] if global_cap_micro is not None else []) + wallets
                spent = dict.fromkeys(want, 0)
                if want:
                    spent.update(conn.execute(
                        f"select wallet, micro from guardrail_totals where day=? and wallet in "
                        f"({','.join('?' * len(want))})", [day, *want]).fetchall())
                stamp, new = now_iso(), []
                for wallet, usd_micro, key in items:
                    if key in seen:
                        out.append((True, "already reserved"))
                        continue
                    if global_cap_micro is not None and spent["*"] + usd_micro > global_cap_micro:
                        out.append((False, f"daily cap {Decimal(global_cap_micro) / m} USD reached "
                                           f"({int(spent['*']) / m} used)"))
                        continue
                    if wallet_cap_micro is not None and spent[wallet] + usd_micro > wallet_cap_micro:
                        out.append((False, f"wallet daily cap {Decimal(wallet_cap_micro) / m} USD reached "
                                           f"({int(spent[wallet]) / m} used)"))
                        continue
                    seen.add(key)
                    if global_cap_micro is not None:
                        spent["*"] += usd_micro
                    if wallet_cap_micro is not None:
                        spent[wallet] += usd_micro
                    new.append((day, wallet, str(Decimal(usd_micro) / m), key, stamp))
                    out.append((True, "reserved"))
                if new:
                    conn.executemany("insert into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                                     "values (?, ?, ?, ?, 'reserved', ?)", new)
                self._commit()
                return out
            except Exception:
                self._rollback()
                raise

    def _spent_micro(self, day: str, wallet: str | None = None) -> int:
        """Micro-USD reserved or committed on a day (one wallet, or all), from the running totals the ledger's
        triggers keep (migration 005): O(1) per reservation instead of summing the day's ledger."""
        row = self.db.conn.execute("select micro from guardrail_totals where day=? and wallet=?",
                                   [day, "*" if wallet is None else wallet]).fetchone()
        return int(row[0]) if row else 0

    def record_reservation(self, *, day: str, wallet: str, usd: str, job_key: str) -> None:
        """Journal a reservation another store (Redis) already checked against the caps; idempotent."""
        with self._lock:
            self.db.execute("insert or ignore into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                            "values (?, ?, ?, ?, 'reserved', ?)", [day, wallet, usd, job_key, now_iso()])

    def record_reservations(self, *, day: str, rows: list[tuple[str, str, str]]) -> None:
        """`record_reservation` for several (wallet, usd, job_key) at once (one statement; idempotent)."""
        stamp = now_iso()
        with self._lock:
            self.db.conn.executemany("insert or ignore into guardrail_ledger (day, wallet, usd, job_key, status, "
                                     "created_at) values (?, ?, ?, ?, 'reserved', ?)",
                                     [(day, w, u, k, stamp) for w, u, k in rows])

    def reservations(self, day: str) -> list[dict[str, Any]]:
        """The day's reservations not released (to rebuild shared counters)."""
        return self._q("select * from guardrail_ledger where day=? and status!='released'", [day])

    def get_reservation(self, job_key: str) -> dict[str, Any] | None:
        """One ledger row by its job key."""
        rows = self._q("select * from guardrail_ledger where job_key=?", [job_key])
        return rows[0] if rows else None

    def settle_reservation(self, job_key: str, status: str, usd: str | None = None) -> None:
        """Commit (optionally with the actual amount) or release a reservation."""
        with self._lock:
            if usd is None:
                self.db.execute("update guardrail_ledger set status=? where job_key=?", [status, job_key])
            else:
                self.db.execute("update guardrail_ledger set status=?, usd=? where job_key=?", [status, usd, job_key])

    def spent_usd(self, day: str, wallet: str | None = None) -> str:
        """USD reserved or committed on a day (all wallets, or one)."""
        sql, params = "select usd from guardrail_ledger where day=? and status!='released'", [day]
        if wallet:
            sql += " and wallet=?"
            params.append(wallet)
        return str(sum((Decimal(r["usd"]) for r in self._q(sql, params)), Decimal(0)))
