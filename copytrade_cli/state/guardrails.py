"""Daily spending caps: reservations journalled in guardrail_ledger, checked against running totals
(guardrail_totals, kept by triggers) atomically with the reservation.

Packed reservations (issue #16): the copies of one fill reserved in one call are ONE row of guardrail_packs
(pack = the job keys' common prefix, the fill key; items: key suffix -> [wallet, micro]) whose amounts are added to
the totals directly. Settling (commit or release) a packed copy first moves it out into a guardrail_ledger row
(the totals unchanged), then settles that row as always; every reader sees both kinds."""
from __future__ import annotations

import json
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
                if self._q("select 1 from guardrail_ledger where job_key=?", [job_key]) or self._packed(job_key):
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
                seen |= self._packed_keys(keys)
                wallets = list(dict.fromkeys(w for w, _u, _k in items)) if wallet_cap_micro is not None else []
                want = (["*"] if global_cap_micro is not None else []) + wallets
                spent = dict.fromkeys(want, 0)
                if want:
                    spent.update(conn.execute(
                        f"select wallet, micro from guardrail_totals where day=? and wallet in "
                        f"({','.join('?' * len(want))})", [day, *want]).fetchall())
                new: list[tuple[str, int, str]] = []
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
                    new.append((wallet, usd_micro, key))
                    out.append((True, "reserved"))
                if new:
                    self._pack(day, new)
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
            if self._packed(job_key) is not None:
                return
            self.db.execute("insert or ignore into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                            "values (?, ?, ?, ?, 'reserved', ?)", [day, wallet, usd, job_key, now_iso()])

    def record_reservations(self, *, day: str, rows: list[tuple[str, str, str]]) -> None:
        """`record_reservation` for several (wallet, usd, job_key) at once (one statement; idempotent)."""
        with self._lock:
            self._begin()
            try:
                keys = [k for _w, _u, k in rows]
                known = {r[0] for r in self.db.conn.execute(
                    f"select job_key from guardrail_ledger where job_key in ({','.join('?' * len(keys))})", keys)}
                known |= self._packed_keys(keys)
                self._pack(day, [(w, int(Decimal(u) * 10**6), k) for w, u, k in rows if k not in known])
                self._commit()
            except Exception:
                self._rollback()
                raise

    # --- packed reservations ---------------------------------------------------------------------------
    @staticmethod
    def _split(job_key: str) -> tuple[str, str]:
        pack, sep, item = job_key.rpartition(":")
        return (pack, item) if sep else (job_key, "")

    def _pack(self, day: str, items: list[tuple[str, int, str]]) -> None:
        """Journal reservations already checked against the caps: one guardrail_packs row per job-key prefix
        (a fill), the totals raised directly (call inside a transaction, with _lock held)."""
        if not items:
            return
        conn = self.db.conn
        packs: dict[str, dict[str, list]] = {}
        totals: dict[str, int] = {}
        for wallet, micro, key in items:
            pack, item = self._split(key)
            packs.setdefault(pack, {})[item] = [wallet, micro]
            totals[wallet] = totals.get(wallet, 0) + micro
            totals["*"] = totals.get("*", 0) + micro
        conn.executemany("insert into guardrail_packs (pack, day, items_json) values (?, ?, ?) on conflict(pack) "
                         "do update set items_json = json_patch(items_json, excluded.items_json)",
                         [(p, day, json.dumps(v, separators=(",", ":"))) for p, v in packs.items()])
        conn.executemany("insert into guardrail_totals (day, wallet, micro) values (?, ?, ?) "
                         "on conflict(day, wallet) do update set micro = micro + excluded.micro",
                         [(day, w, v) for w, v in totals.items()])

    def _packed_keys(self, keys: list[str]) -> set[str]:
        """Which of these job keys are reserved in a pack."""
        by_pack: dict[str, list[str]] = {}
        for k in keys:
            pack, item = self._split(k)
            by_pack.setdefault(pack, []).append(item)
        packs = list(by_pack)
        out: set[str] = set()
        for pack, text in self.db.conn.execute(
                f"select pack, items_json from guardrail_packs where pack in ({','.join('?' * len(packs))})", packs):
            have = json.loads(text)
            out.update(f"{pack}:{i}" if i else pack for i in by_pack[pack] if i in have)
        return out

    def _packed(self, job_key: str) -> dict[str, Any] | None:
        """A packed reservation as a ledger row (status reserved), or None."""
        pack, item = self._split(job_key)
        got = self.db.conn.execute("select day, items_json from guardrail_packs where pack=?", [pack]).fetchone()
        if got is None:
            return None
        hit = json.loads(got[1]).get(item)
        if hit is None:
            return None
        return {"id": None, "day": got[0], "wallet": hit[0], "usd": str(Decimal(hit[1]) / 10**6), "job_key": job_key,
                "status": "reserved", "created_at": None}

    def _unpack(self, job_key: str) -> None:
        """Move a packed reservation out into its own guardrail_ledger row, the totals unchanged (the row's
        insert trigger adds what is taken off here); call inside a transaction, with _lock held."""
        row = self._packed(job_key)
        if row is None:
            return
        conn = self.db.conn
        pack, item = self._split(job_key)
        micro = int(Decimal(row["usd"]) * 10**6)
        conn.executemany("update guardrail_totals set micro = micro - ? where day=? and wallet=?",
                         [(micro, row["day"], row["wallet"]), (micro, row["day"], "*")])
        conn.execute("update guardrail_packs set items_json = json_remove(items_json, ?) where pack=?",
                     [f'$."{item}"', pack])
        conn.execute("delete from guardrail_packs where pack=? and items_json = '{}'", [pack])
        conn.execute("insert into guardrail_ledger (day, wallet, usd, job_key, status, created_at) "
                     "values (?, ?, ?, ?, 'reserved', ?)", [row["day"], row["wallet"], row["usd"], job_key, now_iso()])

    def _packed_rows(self, day: str, wallet: str | None = None) -> list[dict[str, Any]]:
        out = []
        for pack, text in self.db.conn.execute("select pack, items_json from guardrail_packs where day=?", [day]):
            for item, (w, micro) in json.loads(text).items():
                if wallet is None or w == wallet:
                    out.append({"id": None, "day": day, "wallet": w, "usd": str(Decimal(micro) / 10**6),
                                "job_key": f"{pack}:{item}" if item else pack, "status": "reserved",
                                "created_at": None})
        return out

    def reservations(self, day: str) -> list[dict[str, Any]]:
        """The day's reservations not released (to rebuild shared counters)."""
        with self._lock:
            return (self._q("select * from guardrail_ledger where day=? and status!='released' order by id", [day])
                    + self._packed_rows(day))

    def get_reservation(self, job_key: str) -> dict[str, Any] | None:
        """One ledger row by its job key."""
        rows = self._q("select * from guardrail_ledger where job_key=?", [job_key])
        if rows:
            return rows[0]
        with self._lock:
            return self._packed(job_key)

    def settle_reservation(self, job_key: str, status: str, usd: str | None = None) -> None:
        """Commit (optionally with the actual amount) or release a reservation."""
        with self._lock:
            self._begin()
            try:
                self._unpack(job_key)
                if usd is None:
                    self.db.conn.execute("update guardrail_ledger set status=? where job_key=?", [status, job_key])
                else:
                    self.db.conn.execute("update guardrail_ledger set status=?, usd=? where job_key=?",
                                         [status, usd, job_key])
                self._commit()
            except Exception:
                self._rollback()
                raise

    def spent_usd(self, day: str, wallet: str | None = None) -> str:
        """USD reserved or committed on a day (all wallets, or one)."""
        sql, params = "select usd from guardrail_ledger where day=? and status!='released'", [day]
        if wallet:
            sql += " and wallet=?"
            params.append(wallet)
        with self._lock:
            rows = self._q(sql, params) + self._packed_rows(day, wallet or None)
        return str(sum((Decimal(r["usd"]) for r in rows), Decimal(0)))
